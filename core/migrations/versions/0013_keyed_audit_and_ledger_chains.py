"""keyed audit and ledger chains, sealed invoices and providers, encrypted audit purposes

The audit chains are rehashed with the integrity key (HMAC-SHA256), the transfers are
chained per debit account and signed, invoices and providers get their seals, and the
purposes already in the audit trail are encrypted with the message key. A database with
none of these rows needs no key; one with rows gets its integrity key as ``avain init``
makes it (a key file beside a SQLite database; a server database needs
AVAIN_INTEGRITY_KEY or AVAIN_INTEGRITY_KEY_FILE set before upgrading).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:00:00.000000
"""

import base64
from types import SimpleNamespace

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('chain_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('mac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    for table in ('invoice', 'provider'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('mac', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _rekey(op.get_bind())


def _rekey(conn) -> None:
    from avain.core import audit, integrity_key, ledger, message_keys, seals

    counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
              for t in ('audit_event', 'transfer', 'invoice', 'provider')]
    if not any(counts):
        return
    url = conn.engine.url.render_as_string(hide_password=False)
    key = integrity_key.ensure(url)[0]
    # Checkpoints of chains as they were before (an upgrade after a downgrade) name hashes
    # this re-keying replaces: kept aside, not checked against the new chains.
    from avain.core import checkpoints

    old = checkpoints.path_for(url)
    if old is not None and old.exists():
        old.rename(old.with_name(old.name + ".before-0013"))

    # The audit trail: purposes encrypted, then every stream rehashed with the key.
    ring = None
    events = conn.execute(sa.text(
        "SELECT id, stream, seq, at, actor, action, subject, purpose, before, after FROM audit_event "
        "ORDER BY stream, seq")).all()
    if any(e.purpose for e in events):
        try:
            ring = message_keys.load(url) or message_keys.ensure(url)[0]
        except message_keys.MessageKeyError:
            ring = None  # a server database without a message key: purposes stay as they are
    heads: dict[str, tuple[int, str]] = {}
    for e in events:
        purpose = e.purpose
        if purpose and ring is not None and not purpose.startswith(audit.SEALED):
            purpose = audit.sealed_purpose(ring, audit.purpose_digest(key, e.stream, e.seq, purpose), e.stream,
                                           e.seq, purpose)
        prev = heads.get(e.stream, (0, audit.GENESIS))[1]
        row = SimpleNamespace(stream=e.stream, seq=e.seq, at=e.at, actor=e.actor, action=e.action,
                              subject=e.subject, purpose=purpose, before=e.before, after=e.after, prev_hash=prev)
        h = audit.event_hash(row, key)
        conn.execute(sa.text("UPDATE audit_event SET purpose = :p, prev_hash = :prev, hash = :h WHERE id = :id"),
                     {"p": purpose, "prev": prev, "h": h, "id": e.id})
        heads[e.stream] = (e.seq, h)
    for stream, (seq, h) in heads.items():
        conn.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h WHERE stream = :st"),
                     {"s": seq, "h": h, "st": stream})

    # The ledger: each debit account's transfers chained in the order they were recorded.
    sub = key.subkey(ledger.LEDGER_PURPOSE)
    chains: dict[int, list] = {}
    for t in conn.execute(sa.text(
            "SELECT id, kind, debit_account_id, credit_account_id, amount, pending, pending_id, reverses, period, "
            "business_date FROM transfer ORDER BY debit_account_id, created_at, id")).all():
        head = chains.setdefault(t.debit_account_id, [0, ""])
        head[0] += 1
        day = t.business_date if isinstance(t.business_date, str) else t.business_date.isoformat()
        head[1] = ledger.transfer_mac(sub, t.id, t.kind, t.debit_account_id, t.credit_account_id, t.amount,
                                      bool(t.pending), t.pending_id, t.reverses, t.period, day[:10], head[0],
                                      head[1])
        conn.execute(sa.text("UPDATE transfer SET chain_seq = :s, mac = :m WHERE id = :id"),
                     {"s": head[0], "m": head[1], "id": t.id})
    for acc, (seq, h) in chains.items():
        conn.execute(sa.text("UPDATE account SET chain_seq = :s, chain_hash = :h WHERE id = :id"),
                     {"s": seq, "h": h, "id": acc})

    # Invoices and providers sealed as they are now.
    for inv in conn.execute(sa.text(
            "SELECT id, provider_id, number, amount, reference, commitment_id, client_code, pilot_id "
            "FROM invoice")).all():
        conn.execute(sa.text("UPDATE invoice SET mac = :m WHERE id = :id"),
                     {"m": seals.invoice_mac(key, inv), "id": inv.id})
    for p in conn.execute(sa.text("SELECT id, iban, bic FROM provider")).all():
        conn.execute(sa.text("UPDATE provider SET mac = :m WHERE id = :id"),
                     {"m": seals.provider_mac(key, p), "id": p.id})

    # The first checkpoint of the keyed chains, so that verify has one to check against.
    checkpoints.write_file(url, {stream: [seq, h] for stream, (seq, h) in heads.items()},
                           {str(acc): [seq, h] for acc, (seq, h) in chains.items()}, full=True)


def downgrade() -> None:
    # The keyed hashes stay: a chain rehashed with the key is still a chain.
    for table in ('provider', 'invoice'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('mac')
    with op.batch_alter_table('transfer', schema=None) as batch_op:
        batch_op.drop_column('mac')
        batch_op.drop_column('chain_seq')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('chain_hash')
        batch_op.drop_column('chain_seq')
