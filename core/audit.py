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


#: The prefix of an encrypted purpose: ``enc1:<key id>:<nonce + ciphertext, base64>``.
SEALED = "enc1:"


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
        "purpose": row.purpose,
        "before": row.before,
        "after": row.after,
        "prev": row.prev_hash,
    }
    return key.mac("audit", _canonical(body))


def _purpose_aad(stream: str, seq: int) -> bytes:
    return f"avain-audit-purpose\0{stream}\0{seq}".encode()


def seal_purpose(url: str, stream: str, seq: int, purpose: str) -> str:
    """``purpose`` encrypted with the current message key, bound to its event."""
    ring = message_keys.load(url) or message_keys.ensure(url)[0]
    key_id, blob = ring.seal(purpose.encode("utf-8"), _purpose_aad(stream, seq))
    return f"{SEALED}{key_id}:{base64.b64encode(blob).decode('ascii')}"


def open_purpose(ring: message_keys.Keyring | None, row: AuditEventRow) -> str | None:
    """The purpose of ``row`` as its writer gave it (None when there is none)."""
    stored = row.purpose
    if stored is None or not stored.startswith(SEALED):
        return stored  # written before purposes were encrypted
    if ring is None:
        raise message_keys.MessageKeyError(
            f"stream {row.stream}, event {row.seq}: its purpose is encrypted and there is no message key")
    key_id, _, blob = stored[len(SEALED):].partition(":")
    return ring.open(key_id, base64.b64decode(blob), _purpose_aad(row.stream, row.seq),
                     what=f"the purpose of event {row.seq} of stream {row.stream}").decode("utf-8")


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
    seq = head.seq + 1
    row = AuditEventRow(
        stream=stream,
        seq=seq,
        at=now_utc().isoformat(timespec="microseconds"),
        actor=actor,
        action=action,
        subject=subject,
        purpose=seal_purpose(url, stream, seq, purpose) if purpose else purpose,
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
