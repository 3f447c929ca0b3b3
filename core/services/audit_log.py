"""Reading and verifying the audit trail."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from .. import audit, checkpoints, integrity_key, message_keys
from ..errors import PermissionDenied
from ..models import AuditEventRow
from ..uow import UnitOfWork
from . import messages
from .common import check_actor, session


def log(uow: UnitOfWork, *, subject: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Events, newest last. A client sees the events of their own code only (who read
    their data, and why)."""
    actor = check_actor(uow, "audit.read")
    if actor.role == "client":
        if subject not in (None, actor.id):
            raise PermissionDenied(f"{actor} may read their own audit log only")
        subject = actor.id
    q = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
    if subject:
        q = q.where(AuditEventRow.subject == subject)
    rows = list(session(uow).execute(q).scalars())
    rows.reverse()
    ring = message_keys.load(_url(uow)) if any(r.purpose for r in rows) else None
    key = integrity_key.require(_url(uow)) if ring is not None else None
    return [
        {"stream": r.stream, "seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action,
         "subject": r.subject, "purpose": audit.open_purpose(ring, r, key),
         "before": json.loads(r.before) if r.before else None,
         "after": json.loads(r.after) if r.after else None}
        for r in rows
    ]


def _url(uow: UnitOfWork) -> str:
    return uow.app.engine.url.render_as_string(hide_password=False)


def verify(uow: UnitOfWork) -> dict[str, Any]:
    """Every chain recomputed with the integrity key, then checked against the signed
    checkpoints outside the database (a stream removed or cut short, a forged line)."""
    check_actor(uow, "audit.verify")
    s = session(uow)
    problems = audit.verify(s)
    expected = checkpoints.read(_url(uow))
    events = s.execute(select(func.count()).select_from(AuditEventRow)).scalar_one()
    problems += expected.problems + expected.missing_problem("audit events", events) + \
        checkpoints.check_audit(s, expected)
    dialogue = messages.verify_against_audit(uow)  # each message against its event
    problems += dialogue["problems"]
    return {"ok": not problems, "events": events, "messages": dialogue["messages"], "problems": problems,
            "checkpoints": expected.lines, "checkpoint_file": str(expected.path) if expected.path else None}


def checkpoint(uow: UnitOfWork) -> dict[str, Any]:
    """Write a full checkpoint: the heads of every audit stream and ledger chain."""
    check_actor(uow, "audit.verify")
    audit_heads, ledger_heads = checkpoints.heads(session(uow))
    written = checkpoints.write(uow.app, audit_heads, ledger_heads, full=True)
    path = checkpoints.path_for(_url(uow))
    return {"streams": len(audit_heads), "chains": len(ledger_heads), "at": written["at"],
            "file": str(path) if path else None}
