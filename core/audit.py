"""The audit trail and access log: append-only, hash-chained per subject stream.

Each client has a stream of its own (named by the client code), and the organiser has one
(``organiser``) for pilots, workers and bulk runs. One chain per stream, not one global
chain, so writers on different clients never wait for each other. Events hold codes and
ids only, never names or henkilötunnus.

The chain is keyed: each hash is an HMAC-SHA256 with the integrity key (purpose
``audit``), which lives outside the database, so someone who can write to the database
cannot rehash a chain after changing or deleting an event. What they can still do — cut
a stream short, delete it — the signed checkpoints outside the database catch (see
:mod:`avain.core.checkpoints`). A purpose (why someone read a client's data, in the
reader's words) is encrypted with the message keys, bound to its stream and place.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from . import checkpoints, integrity_key, message_keys
from .models import AuditEventRow, AuditHeadRow

ORGANISER = "organiser"
GENESIS = "0" * 64


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


#: The prefix of an encrypted purpose:
#: ``enc1:<digest>:<key id>:<nonce + ciphertext, base64>``. The chain hashes the prefix and
#: the digest only (an HMAC of the purpose with the integrity key, bound to its event), so
#: ``avain message rotate-key`` can re-seal a purpose under a new key without touching the
#: chain, and the digest still ties the words to their event.
SEALED = "enc1:"
_DIGEST_LEN = 64


def url_of(session: Session) -> str:
    """The URL of the database ``session`` works on (where its keys are looked for)."""
    return session.get_bind().engine.url.render_as_string(hide_password=False)


def event_hash(row: AuditEventRow, key: integrity_key.IntegrityKey) -> str:
    body = {
        "stream": row.stream,
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "purpose": chained_purpose(row.purpose),
        "before": row.before,
        "after": row.after,
        "prev": row.prev_hash,
    }
    return key.mac("audit", _canonical(body))


def _purpose_aad(stream: str, seq: int) -> bytes:
    return f"avain-audit-purpose\0{stream}\0{seq}".encode()


def chained_purpose(stored: str | None) -> str | None:
    """What of a stored purpose the chain hashes: a sealed one by its digest only."""
    if stored is None or not stored.startswith(SEALED):
        return stored
    return stored[:len(SEALED) + _DIGEST_LEN]


def purpose_digest(key: integrity_key.IntegrityKey, stream: str, seq: int, purpose: str) -> str:
    return key.mac("audit-purpose", f"{stream}\0{seq}\0{purpose}")


def sealed_purpose(ring: message_keys.Keyring, digest: str, stream: str, seq: int, purpose: str) -> str:
    key_id, blob = ring.seal(purpose.encode("utf-8"), _purpose_aad(stream, seq))
    return f"{SEALED}{digest}:{key_id}:{base64.b64encode(blob).decode('ascii')}"


def _parts(stored: str) -> tuple[str, str, str]:
    digest, _, rest = stored[len(SEALED):].partition(":")
    key_id, _, blob = rest.partition(":")
    return digest, key_id, blob


def purpose_key_id(stored: str) -> str:
    """The id of the message key a sealed purpose is encrypted with."""
    return _parts(stored)[1]


def seal_purpose(session: Session, key: integrity_key.IntegrityKey, stream: str, seq: int, purpose: str) -> str:
    """``purpose`` encrypted with the current message key, bound to its event."""
    ring = _ring_for_sealing(session)
    return sealed_purpose(ring, purpose_digest(key, stream, seq, purpose), stream, seq, purpose)


def _ring_for_sealing(session: Session) -> message_keys.Keyring:
    """The message keys, made beside a new database's file only when nothing in the
    database is encrypted yet: a missing or wrong key never seals new purposes under a key
    the rest of the database does not use."""
    from .models import ClientIdentityRow

    url = url_of(session)
    used = session.execute(select(ClientIdentityRow.key_id).limit(1)).scalar_one_or_none()
    if used is None:
        stored = session.execute(select(AuditEventRow.purpose).where(
            AuditEventRow.purpose.like(f"{SEALED}%")).limit(1)).scalar_one_or_none()
        used = purpose_key_id(stored) if stored else None
    ring = message_keys.load(url)
    if ring is None:
        if used is not None:
            raise message_keys.MessageKeyError(
                f"no message key: {message_keys.where(url)}, but personal data in this database is encrypted "
                f"with key {used}; restore that key before writing")
        ring = message_keys.ensure(url)[0]
    if used is not None and used not in {k.id for k in ring.keys}:
        raise message_keys.MessageKeyError(
            f"personal data in this database is encrypted with message key {used}, which is not among the keys "
            f"in {ring.describe()}: wrong key; nothing was written")
    return ring


def open_purpose(ring: message_keys.Keyring | None, row: AuditEventRow,
                 key: integrity_key.IntegrityKey | None = None) -> str | None:
    """The purpose of ``row`` as its writer gave it (None when there is none). With the
    integrity ``key``, words that are not the ones the event was written with are refused."""
    stored = row.purpose
    if stored is None or not stored.startswith(SEALED):
        return stored  # written before purposes were encrypted
    if ring is None:
        raise message_keys.MessageKeyError(
            f"stream {row.stream}, event {row.seq}: its purpose is encrypted and there is no message key")
    digest, key_id, blob = _parts(stored)
    what = f"the purpose of event {row.seq} of stream {row.stream}"
    text = ring.open(key_id, base64.b64decode(blob), _purpose_aad(row.stream, row.seq), what=what).decode("utf-8")
    if key is not None and purpose_digest(key, row.stream, row.seq, text) != digest:
        raise message_keys.MessageKeyError(f"{what} is not the one written with the event (altered outside avain)")
    return text


def reseal_purpose(ring: message_keys.Keyring, row: AuditEventRow) -> str:
    """A sealed purpose under the current message key; its digest, and so the chain, unchanged."""
    digest, _, _ = _parts(row.purpose)
    return sealed_purpose(ring, digest, row.stream, row.seq, open_purpose(ring, row))


#: (database, key id) pairs whose integrity key was seen to sign the trail, in this process.
_KEY_CHECKED: set[tuple[str, str]] = set()


def _check_key(session: Session, key: integrity_key.IntegrityKey, head: AuditHeadRow) -> None:
    """Refuse to write with an integrity key that did not sign the stream's newest event: a
    wrong AVAIN_INTEGRITY_KEY (or key file) would otherwise add events that every later
    verify reports as altered."""
    newest = session.execute(select(AuditEventRow).where(
        AuditEventRow.stream == head.stream, AuditEventRow.seq == head.seq)).scalar_one_or_none()
    if newest is not None and event_hash(newest, key) != newest.hash:
        raise integrity_key.IntegrityKeyError(
            f"the integrity key {key.id} in {key.describe()} did not sign event {head.seq} of stream "
            f"{head.stream}: a wrong key, or the event was altered (see avain audit verify); nothing was written")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    stream: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
    purpose: str | None = None,
) -> AuditEventRow:
    """Append one event to ``stream`` (default: the subject's own) in the caller's
    transaction. The stream's head row is locked, so concurrent appends queue up."""
    stream = stream or subject
    url = url_of(session)
    key = integrity_key.require(url)
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.stream == stream).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHeadRow(stream=stream, seq=0, hash=GENESIS)
        session.add(head)
    elif (url, key.id) not in _KEY_CHECKED:
        _check_key(session, key, head)
        _KEY_CHECKED.add((url, key.id))
    seq = head.seq + 1
    row = AuditEventRow(
        stream=stream,
        seq=seq,
        at=now_utc().isoformat(timespec="microseconds"),
        actor=actor,
        action=action,
        subject=subject,
        purpose=seal_purpose(session, key, stream, seq, purpose) if purpose else purpose,
        before=_canonical(before) if before is not None else None,
        after=_canonical(after) if after is not None else None,
        prev_hash=head.hash,
        hash="",
    )
    row.hash = event_hash(row, key)
    head.seq, head.hash = row.seq, row.hash
    session.add(row)
    session.flush()
    checkpoints.note_stream(stream, row.seq, row.hash)
    return row


def verify(session: Session) -> list[str]:
    """Recompute every chain with the integrity key. Returns the problems found (empty when
    intact): an altered event, a missing or reordered one, a head that does not match its
    stream, a chain hashed without the key."""
    key = integrity_key.require(url_of(session))
    problems: list[str] = []
    heads = {h.stream: h for h in session.execute(select(AuditHeadRow)).scalars()}
    expected_prev: dict[str, str] = {}
    expected_seq: dict[str, int] = {}
    rows = session.execute(
        select(AuditEventRow).order_by(AuditEventRow.stream, AuditEventRow.seq)
    ).scalars()
    for row in rows:
        prev = expected_prev.get(row.stream, GENESIS)
        seq = expected_seq.get(row.stream, 0) + 1
        if row.seq != seq:
            problems.append(f"stream {row.stream}: event {seq} is missing (found {row.seq})")
        elif row.prev_hash != prev:
            problems.append(f"stream {row.stream}: event {row.seq} does not follow event {seq - 1}")
        elif event_hash(row, key) != row.hash:
            problems.append(f"stream {row.stream}: event {row.seq} has been altered")
        expected_prev[row.stream] = row.hash
        expected_seq[row.stream] = row.seq
    for stream, head in heads.items():
        if expected_seq.get(stream, 0) != head.seq or expected_prev.get(stream, GENESIS) != head.hash:
            problems.append(
                f"stream {stream}: the newest event is {expected_seq.get(stream, 0)}, "
                f"the head says {head.seq} (events removed or added outside avain)"
            )
    for stream in expected_seq.keys() - heads.keys():
        problems.append(f"stream {stream}: has events but no head")
    return problems
