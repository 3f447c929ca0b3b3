"""Acting users, roles and the role × action matrix, enforced in the services.

``docs/roles.md`` shows the same matrix for people; a test keeps the two equal.
"""

from __future__ import annotations

from attrs import frozen

from .domain import ROLES
from .errors import PermissionDenied, ValidationError
from .text import shown

#: Which roles may attempt each action. Scope rules (a worker acts on their own clients
#: only, …) narrow it further in :func:`can_reach_client`.
MATRIX: dict[str, frozenset[str]] = {
    "pilot.add": frozenset({"admin"}),
    "pilot.read": frozenset(ROLES),
    "worker.add": frozenset({"admin"}),
    "worker.read": frozenset({"admin", "worker", "supervisor", "finance", "evaluator", "assistant"}),
    "client.enroll": frozenset({"admin", "worker", "supervisor"}),
    "client.read": frozenset(ROLES),
    "client.identify": frozenset({"admin", "worker", "supervisor", "client"}),
    "client.end": frozenset({"admin", "worker", "supervisor"}),
    "client.assess": frozenset({"admin", "worker", "supervisor"}),
    "client.contact": frozenset({"admin", "worker", "supervisor", "client"}),
    "decision.grant": frozenset({"worker", "supervisor"}),
    "decision.read": frozenset({"admin", "worker", "supervisor", "finance", "evaluator", "assistant", "client"}),
    "budget.run": frozenset({"admin", "finance"}),
    "budget.read": frozenset(ROLES),
    "provider.add": frozenset({"admin"}),
    "provider.read": frozenset(ROLES),
    "catalogue.rate": frozenset({"client", "assistant"}),
    "proposal.create": frozenset({"client", "assistant", "worker"}),
    "proposal.decide": frozenset({"worker", "supervisor"}),
    "proposal.read": frozenset(ROLES),
    "commitment.cancel": frozenset({"worker", "supervisor", "finance"}),
    "commitment.expire": frozenset({"admin", "finance"}),
    "commitment.confirm": frozenset({"client", "assistant"}),
    "invoice.record": frozenset({"finance"}),
    "invoice.approve": frozenset({"worker", "supervisor", "finance"}),
    "invoice.pay": frozenset({"finance"}),
    "finance.read": frozenset({"admin", "finance"}),
    "invoice.read": frozenset({"admin", "worker", "supervisor", "finance", "evaluator"}),
    "ledger.read": frozenset(ROLES),
    "ledger.verify": frozenset({"admin", "finance"}),
    "ledger.correct": frozenset({"finance"}),
    "message.send": frozenset({"client", "worker", "supervisor", "assistant"}),
    "message.read": frozenset({"client", "worker", "supervisor", "assistant"}),
    "message.inbox": frozenset({"worker", "supervisor"}),
    "message.stats": frozenset({"admin", "worker", "supervisor", "evaluator"}),
    "message.keys": frozenset({"admin"}),
    "message.evaluate": frozenset({"evaluator"}),
    "client.consent": frozenset({"admin", "worker", "supervisor", "client"}),
    "eval.record": frozenset({"admin", "worker", "supervisor"}),
    "eval.timelog": frozenset({"worker", "supervisor", "assistant", "client", "finance"}),
    "eval.report": frozenset({"admin", "evaluator"}),
    "eval.export": frozenset({"evaluator"}),
    "audit.read": frozenset({"admin", "client"}),
    "audit.verify": frozenset({"admin"}),
}

#: Roles whose view of a client is limited to a scope (their own clients, team, self).
SCOPED = frozenset({"worker", "supervisor", "assistant", "client"})

#: Roles that may act without naming who they are.
ANONYMOUS_OK = frozenset({"admin", "finance", "evaluator"})


@frozen
class Actor:
    """Who is acting: a role and the person's key (client code, worker id), if any."""

    role: str
    id: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Actor:
        """``admin``, ``worker:kp-01``, ``client:EX-F-01-001``; default is ``admin``."""
        if not text:
            return cls("admin")
        role, _, ident = text.partition(":")
        role = role.strip().lower()
        if role not in ROLES:
            raise ValidationError(f"--as: {shown(role)} is not a role (one of {', '.join(ROLES)})")
        ident = ident.strip() or None
        if ident is None and role not in ANONYMOUS_OK:
            raise ValidationError(f"--as: {role} needs an id, e.g. --as {role}:ID")
        return cls(role, ident)

    def __str__(self) -> str:
        return f"{self.role}:{self.id}" if self.id else self.role


def require(actor: Actor, action: str) -> None:
    """Refuse unless the actor's role may attempt ``action`` at all."""
    allowed = MATRIX[action]
    if actor.role not in allowed:
        raise PermissionDenied(f"{actor.role} is not allowed to {action} "
                               f"(allowed: {', '.join(sorted(allowed))})")


def can_reach_client(actor: Actor, *, code: str, worker_id: str, supervisor_id: str | None,
                     assistant_id: str | None) -> bool:
    """Scope: a worker reaches their own clients, a supervisor their workers' clients, an
    assistant the clients they assist, a client themself; other roles every client."""
    if actor.role == "worker":
        return actor.id == worker_id
    if actor.role == "supervisor":
        return actor.id in (supervisor_id, worker_id)
    if actor.role == "assistant":
        return actor.id == assistant_id
    if actor.role == "client":
        return actor.id == code
    return True
