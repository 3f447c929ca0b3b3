"""The audit trail and access log: append-only, hash-chained per subject stream.

Each client has a stream of its own (named by the client code), and the organiser has one
(``organiser``) for pilots, workers and bulk runs. One chain per stream, not one global
chain, so writers on different clients never wait for each other. Events hold codes and
ids only, never names or henkilötunnus.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from .models import AuditEventRow, AuditHeadRow

ORGANISER = "organiser"
GENESIS = "0" * 64


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(row: AuditEventRow) -> str:
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
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


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
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.stream == stream).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHeadRow(stream=stream, seq=0, hash=GENESIS)
        session.add(head)
    row = AuditEventRow(
        stream=stream,
        seq=head.seq + 1,
        at=now_utc().isoformat(timespec="microseconds"),
        actor=actor,
        action=action,
        subject=subject,
        purpose=purpose,
        before=_canonical(before) if before is not None else None,
        after=_canonical(after) if after is not None else None,
        prev_hash=head.hash,
        hash="",
    )
    row.hash = event_hash(row)
    head.seq, head.hash = row.seq, row.hash
    session.add(row)
    session.flush()
    return row


def verify(session: Session) -> list[str]:
    """Recompute every chain. Returns the problems found (empty when intact): an altered
    event, a missing or reordered one, or a head that does not match its stream."""
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
        elif event_hash(row) != row.hash:
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
