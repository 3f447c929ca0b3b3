"""Personal data at rest: the fields that name or quote a person, sealed with the keys of
the dialogue (:mod:`avain.core.message_keys`, AES-256-GCM) so that a copy of the database
alone reveals no name, henkilötunnus, phone number or words of a client.

Each row holds the id of the key its fields are sealed with (``key_id``); every write of a
row seals all its fields again under the current key, so a row is never under two keys and
``avain message rotate-key`` re-seals it with the messages. A ciphertext is bound to its
table, row and field (the associated data): copied to another row or field it no longer
opens.

A henkilötunnus is found by its keyed hash (HMAC, :mod:`avain.core.integrity_key`,
purpose ``hetu``), unique per pilot: equal numbers give equal hashes only with the key.
"""

from __future__ import annotations

from . import integrity_key, message_keys
from .message_keys import Keyring

HETU_PURPOSE = "hetu"


def url_of(uow) -> str:
    return uow.app.engine.url.render_as_string(hide_password=False)


def hetu_index(url: str, hetu: str) -> str:
    """The keyed hash a henkilötunnus is looked up by (give it validated and compacted)."""
    return integrity_key.require(url).mac(HETU_PURPOSE, hetu.strip().upper())


def aad(table: str, row: str | int, field: str) -> bytes:
    return f"avain-{table}\0{row}\0{field}".encode()


def ring_for_sealing(uow) -> Keyring:
    """The keyring to seal with: the dialogue's (a key file is made for a new database;
    a key that does not open the newest message is refused before anything is written)."""
    from sqlalchemy import select

    from .models import ClientIdentityRow
    from .services import messages  # the dialogue owns the key checks and the rotation lock

    used = uow.session.execute(select(ClientIdentityRow.key_id).order_by(
        ClientIdentityRow.client_code).limit(1)).scalar_one_or_none()
    if used is not None and message_keys.load(url_of(uow)) is None:  # never make a new key then
        raise message_keys.MessageKeyError(
            f"no message key: {message_keys.where(url_of(uow))}, but personal data in this database is encrypted "
            f"with key {used}; restore that key before writing")
    ring = messages.keyring_for_sealing(uow)
    if used is not None and used not in {k.id for k in ring.keys}:
        raise message_keys.MessageKeyError(
            f"personal data in this database is encrypted with message key {used}, which is not among the keys "
            f"in {ring.describe()}: wrong key; nothing was written")
    return ring


def ring_for_reading(uow) -> Keyring:
    url = url_of(uow)
    ring = message_keys.load(url)
    if ring is None:
        raise message_keys.MessageKeyError(
            f"no message key: {message_keys.where(url)}; personal data in this database is encrypted with it")
    return ring


def seal(ring: Keyring, value: str | None, table: str, row: str | int, field: str) -> bytes | None:
    """``value`` sealed under the current key (None stays None)."""
    if value is None:
        return None
    return ring.seal(value.encode("utf-8"), aad(table, row, field))[1]


def open_(ring: Keyring, key_id: str | None, blob: bytes | None, table: str, row: str | int,
          field: str) -> str | None:
    """The text of a sealed field (None stays None)."""
    if blob is None:
        return None
    return ring.open(key_id or "", bytes(blob), aad(table, row, field), what=f"{table} {row} {field}").decode("utf-8")


def reseal(ring: Keyring, key_id: str | None, values: dict[str, bytes | None], table: str,
           row: str | int) -> dict[str, bytes | None]:
    """Every field of ``values`` (field → ciphertext under ``key_id``) under the current key."""
    return {f: seal(ring, open_(ring, key_id, blob, table, row, f), table, row, f) for f, blob in values.items()}


def _sealed_tables():
    from .models import ClientIdentityRow, DecisionRow, ProposalRow

    return ((ClientIdentityRow, "identity", "client_code", ("name", "hetu", "phone")),
            (ProposalRow, "proposal", "id", ("text", "reason")),
            (DecisionRow, "decision", "id", ("change_reason",)))


def _purposes_not_under(new: str):
    """The audit events whose sealed purpose is under another key than ``new``."""
    from . import audit
    from .models import AuditEventRow

    under_new = f"{audit.SEALED}{'_' * audit._DIGEST_LEN}:{new}:%"
    return (AuditEventRow.purpose.like(f"{audit.SEALED}%"), AuditEventRow.purpose.not_like(under_new))


def left_under_old_keys(session, new: str) -> int:
    """How many rows with sealed personal data (audit purposes too) are not under the key
    ``new`` yet."""
    from sqlalchemy import func, select

    from .models import AuditEventRow

    return sum(session.execute(select(func.count()).select_from(model).where(
        model.key_id.is_not(None), model.key_id != new)).scalar_one() for model, *_ in _sealed_tables()) + \
        session.execute(select(func.count()).select_from(AuditEventRow).where(
            *_purposes_not_under(new))).scalar_one()


def reseal_chunk(session, ring: Keyring, limit: int) -> int:
    """Re-seal up to ``limit`` rows of each table of personal data not yet under the
    current key (``avain message rotate-key``); returns how many it did."""
    from sqlalchemy import select

    done = 0
    for model, table, key, fields in _sealed_tables():
        rows = session.execute(select(model).where(model.key_id.is_not(None), model.key_id != ring.current.id)
                               .order_by(getattr(model, key)).limit(limit)).scalars().all()
        for row in rows:
            values = reseal(ring, row.key_id, {f: getattr(row, f) for f in fields}, table, getattr(row, key))
            for f, v in values.items():
                setattr(row, f, v)
            row.key_id = ring.current.id
        done += len(rows)
    done += _reseal_purposes(session, ring, limit)
    session.flush()
    return done


def _reseal_purposes(session, ring: Keyring, limit: int) -> int:
    """Audit purposes under the current key: the words re-encrypted, their digest (which
    the chain hashes) kept, so the chain and its checkpoints stay as they are."""
    from sqlalchemy import select

    from . import audit
    from .models import AuditEventRow

    rows = session.execute(select(AuditEventRow).where(*_purposes_not_under(ring.current.id))
                           .order_by(AuditEventRow.id).limit(limit)).scalars().all()
    for row in rows:
        row.purpose = audit.reseal_purpose(ring, row)
    return len(rows)
