"""personal data sealed at rest: client identities, proposal texts and reasons, decision reasons

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

IDENTITY_FIELDS = ('name', 'hetu', 'phone')


def _url() -> str:
    return op.get_bind().engine.url.render_as_string(hide_password=False)


def _identity_table(sealed_columns: bool) -> None:
    if sealed_columns:
        columns = [sa.Column('hetu_index', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
                   sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
                   sa.Column('hetu', sa.LargeBinary(), nullable=False),
                   sa.Column('name', sa.LargeBinary(), nullable=False),
                   sa.Column('phone', sa.LargeBinary(), nullable=True)]
        unique = sa.UniqueConstraint('pilot_id', 'hetu_index', name='uq_identity_pilot_hetu')
    else:
        columns = [sa.Column('hetu', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
                   sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
                   sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)]
        unique = sa.UniqueConstraint('pilot_id', 'hetu', name='uq_identity_pilot_hetu')
    op.create_table(
        'client_identity',
        sa.Column('client_code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('pilot_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(['client_code'], ['client.code'], ),
        sa.ForeignKeyConstraint(['pilot_id'], ['pilot.id'], ),
        sa.PrimaryKeyConstraint('client_code'),
        unique,
    )


def _retype(table: str, fields: tuple[str, ...], *, sealed_columns: bool) -> None:
    """Replace the text columns ``fields`` of ``table`` (empty after this) by their other form."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for f in fields:
            batch_op.drop_column(f)
        if not sealed_columns:
            batch_op.drop_column('key_id')
    with op.batch_alter_table(table, schema=None) as batch_op:
        for f in fields:
            batch_op.add_column(sa.Column(f, sa.LargeBinary() if sealed_columns else sqlmodel.sql.sqltypes.AutoString(),
                                          nullable=True))
        if sealed_columns:
            batch_op.add_column(sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True))


def upgrade() -> None:
    # Names, henkilötunnus numbers, phone numbers and the words of proposals and decisions
    # are sealed with the message key (AES-GCM, bound to their row and field) and the
    # henkilötunnus is found by its keyed hash: a copy of the database alone reveals none
    # of them. A database without keys gets them made beside it, as `avain init` does.
    from avain.core import integrity_key, message_keys
    from avain.core.sealed import HETU_PURPOSE, seal

    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':  # the plain text's pages are overwritten, not left in free space
        bind.exec_driver_sql('PRAGMA secure_delete = ON')
    identities = bind.execute(sa.text('SELECT client_code, pilot_id, hetu, name, phone FROM client_identity')).all()
    proposals = bind.execute(sa.text('SELECT id, text, reason FROM proposal '
                                     'WHERE text IS NOT NULL OR reason IS NOT NULL')).all()
    decisions = bind.execute(sa.text('SELECT id, change_reason FROM decision WHERE change_reason IS NOT NULL')).all()
    ring = key = None
    if identities or proposals or decisions:
        ring = message_keys.ensure(_url())[0]
        key = integrity_key.ensure(_url())[0]

    op.drop_table('client_identity')
    _identity_table(sealed_columns=True)
    _retype('proposal', ('text', 'reason'), sealed_columns=True)
    _retype('decision', ('change_reason',), sealed_columns=True)

    identity = sa.table('client_identity', sa.column('client_code'), sa.column('pilot_id'), sa.column('hetu_index'),
                        sa.column('key_id'), *(sa.column(f, sa.LargeBinary()) for f in IDENTITY_FIELDS))
    if identities:
        op.bulk_insert(identity, [
            {'client_code': r.client_code, 'pilot_id': r.pilot_id,
             'hetu_index': key.mac(HETU_PURPOSE, r.hetu.strip().upper()), 'key_id': ring.current.id,
             **{f: seal(ring, getattr(r, f), 'identity', r.client_code, f) for f in IDENTITY_FIELDS}}
            for r in identities])
    proposal = sa.table('proposal', sa.column('id'), sa.column('key_id'), sa.column('text', sa.LargeBinary()),
                        sa.column('reason', sa.LargeBinary()))
    for r in proposals:
        bind.execute(proposal.update().where(proposal.c.id == r.id).values(
            key_id=ring.current.id, text=seal(ring, r.text, 'proposal', r.id, 'text'),
            reason=seal(ring, r.reason, 'proposal', r.id, 'reason')))
    decision = sa.table('decision', sa.column('id'), sa.column('key_id'), sa.column('change_reason', sa.LargeBinary()))
    for r in decisions:
        bind.execute(decision.update().where(decision.c.id == r.id).values(
            key_id=ring.current.id, change_reason=seal(ring, r.change_reason, 'decision', r.id, 'change_reason')))


def downgrade() -> None:
    from avain.core import message_keys
    from avain.core.sealed import open_

    bind = op.get_bind()
    identities = bind.execute(sa.text('SELECT client_code, pilot_id, key_id, hetu, name, phone '
                                      'FROM client_identity')).all()
    proposals = bind.execute(sa.text('SELECT id, key_id, text, reason FROM proposal WHERE key_id IS NOT NULL')).all()
    decisions = bind.execute(sa.text('SELECT id, key_id, change_reason FROM decision '
                                     'WHERE key_id IS NOT NULL')).all()
    ring = None
    if identities or proposals or decisions:
        ring = message_keys.load(_url())
        if ring is None:
            raise message_keys.MessageKeyError(f"no message key: {message_keys.where(_url())}; the personal data "
                                               "cannot be decrypted for the older schema")
    plain_identities = [{'client_code': r.client_code, 'pilot_id': r.pilot_id,
                         **{f: open_(ring, r.key_id, getattr(r, f), 'identity', r.client_code, f)
                            for f in IDENTITY_FIELDS}} for r in identities]
    plain_proposals = [{'id': r.id, **{f: open_(ring, r.key_id, getattr(r, f), 'proposal', r.id, f)
                                       for f in ('text', 'reason')}} for r in proposals]
    plain_decisions = [{'id': r.id, 'change_reason': open_(ring, r.key_id, r.change_reason, 'decision', r.id,
                                                           'change_reason')} for r in decisions]

    op.drop_table('client_identity')
    _identity_table(sealed_columns=False)
    _retype('proposal', ('text', 'reason'), sealed_columns=False)
    _retype('decision', ('change_reason',), sealed_columns=False)

    if plain_identities:
        op.bulk_insert(sa.table('client_identity', *(sa.column(c) for c in plain_identities[0])), plain_identities)
    proposal = sa.table('proposal', sa.column('id'), sa.column('text'), sa.column('reason'))
    for r in plain_proposals:
        bind.execute(proposal.update().where(proposal.c.id == r['id']).values(text=r['text'], reason=r['reason']))
    decision = sa.table('decision', sa.column('id'), sa.column('change_reason'))
    for r in plain_decisions:
        bind.execute(decision.update().where(decision.c.id == r['id']).values(change_reason=r['change_reason']))
