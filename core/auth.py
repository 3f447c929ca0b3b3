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
    "decision.read": frozenset({"admin", "worker", "supervisor", "finance", "assistant", "client"}),
    "budget.run": frozenset({"admin", "finance"}),
    "budget.read": frozenset(ROLES),
    "provider.add": frozenset({"admin"}),
    "provider.bank": frozenset({"admin", "finance"}),
    "provider.read": frozenset(ROLES),
    "catalogue.rate": frozenset({"client", "assistant"}),
    "proposal.create": frozenset({"client", "assistant", "worker"}),
    "proposal.decide": frozenset({"worker", "supervisor"}),
    "proposal.read": frozenset({"admin", "worker", "supervisor", "finance", "assistant", "client"}),
    "commitment.cancel": frozenset({"worker", "supervisor", "finance"}),
    "commitment.expire": frozenset({"admin", "finance"}),
    "commitment.confirm": frozenset({"client", "assistant"}),
    "invoice.record": frozenset({"finance"}),
    "invoice.approve": frozenset({"worker", "supervisor", "finance"}),
    "invoice.pay": frozenset({"finance"}),
    "finance.read": frozenset({"admin", "finance"}),
    "invoice.read": frozenset({"admin", "worker", "supervisor", "finance"}),
    "ledger.read": frozenset({"admin", "worker", "supervisor", "finance", "assistant", "client"}),
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

#: Roles that may act without naming who they are (for some actions: see NEEDS_ID).
ANONYMOUS_OK = frozenset({"admin", "finance", "evaluator"})

#: Roles tied to the pilot of their worker id: finance and evaluators reach only that
#: pilot's clients, months, invoices, commitments, payment batches, reports and exports.
PILOT_SCOPED = frozenset({"finance", "evaluator"})

#: What an anonymous-capable role may do only under its own id. Finance moves money
#: only as a named person (separation of duties compares people); an evaluator without
#: an id reads only what every role may (pilots, providers, the catalogue).
NEEDS_ID: dict[str, frozenset[str]] = {
    "finance": frozenset({"budget.run", "commitment.cancel", "commitment.expire", "invoice.record",
                          "invoice.approve", "invoice.pay", "ledger.correct", "eval.timelog"}),
    "evaluator": frozenset(a for a, roles in MATRIX.items() if "evaluator" in roles)
    - {"pilot.read", "provider.read"},
}

#: Why an evaluator is refused what the matrix does not give them.
EVALUATOR_WHY = "evaluators see only consenting clients' pseudonymous data (`avain eval export`)"


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
        why = f"; {EVALUATOR_WHY}" if actor.role == "evaluator" else ""
        raise PermissionDenied(f"{actor.role} is not allowed to {action} "
                               f"(allowed: {', '.join(sorted(allowed))}){why}")
    if actor.id is None and action in NEEDS_ID.get(actor.role, ()):
        what = ("finance moves money only under their own id" if actor.role == "finance"
                else "an evaluator reads per-pilot and per-client data only under their own id")
        raise PermissionDenied(f"--as: {what}: --as {actor.role}:ID (a {actor.role} worker of the pilot) "
                               f"to {action}")


def person(actor_text: str | None) -> tuple[str, str | None]:
    """(role, id) of an actor as stored in a row's ``*_by`` column (``finance:example-04``)."""
    role, _, ident = (actor_text or "").partition(":")
    return role, ident or None


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two stored actors may be the same person: the same id (whatever the role
    word says), or the same role where either has no id (an unnamed user could be anyone
    of that role)."""
    (role_a, id_a), (role_b, id_b) = person(a), person(b)
    if id_a is not None and id_b is not None:
        return id_a == id_b
    return role_a == role_b


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
