"""Reading and verifying the audit trail."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from .. import audit
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
    return [
        {"stream": r.stream, "seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action,
         "subject": r.subject, "purpose": r.purpose,
         "before": json.loads(r.before) if r.before else None,
         "after": json.loads(r.after) if r.after else None}
        for r in rows
    ]


def verify(uow: UnitOfWork) -> dict[str, Any]:
    check_actor(uow, "audit.verify")
    s = session(uow)
    problems = audit.verify(s)
    events = s.execute(select(func.count()).select_from(AuditEventRow)).scalar_one()
    dialogue = messages.verify_against_audit(uow)  # each message against its event
    problems += dialogue["problems"]
    return {"ok": not problems, "events": events, "messages": dialogue["messages"], "problems": problems}
