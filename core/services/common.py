"""Helpers every service uses: the acting user, loading records, audit shortcuts."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlmodel import Session

from .. import audit, auth
from ..auth import Actor
from ..domain import Client, Worker
from ..errors import NotFound, PermissionDenied, ValidationError
from ..models import ClientRow, WorkerRow
from ..text import shown
from ..uow import UnitOfWork


def session(uow: UnitOfWork) -> Session:
    assert uow.session is not None, "use the unit of work inside `with`"
    return uow.session


def connection(uow: UnitOfWork) -> Connection:
    """The connection of the unit's transaction, for Core statements (a read-only unit
    needs no ORM Session for them)."""
    return uow.core_connection()


def check_actor(uow: UnitOfWork, action: str) -> Actor:
    """The actor may attempt ``action``, and the person they claim to be exists in that
    role. Returns the actor."""
    actor = uow.actor
    auth.require(actor, action)
    if actor.id is None:
        return actor
    s = session(uow)
    if actor.role == "client":
        if s.get(ClientRow, actor.id) is None:
            raise PermissionDenied(f"--as: no client {shown(actor.id)}")
        return actor
    row = s.get(WorkerRow, actor.id)
    if row is None:
        raise PermissionDenied(f"--as: no worker {shown(actor.id)}")
    if row.role != actor.role:
        raise PermissionDenied(f"--as: {actor.id} is a {row.role}, not a {actor.role}")
    if not row.active:
        raise PermissionDenied(f"--as: worker {actor.id} was deactivated on {row.deactivated_on}")
    return actor


def actor_pilot(uow: UnitOfWork) -> str | None:
    """The pilot a finance or evaluator worker belongs to (their reach), or None for an
    actor not tied to one pilot."""
    actor = uow.actor
    if actor.role not in auth.PILOT_SCOPED or actor.id is None:
        return None
    row = session(uow).get(WorkerRow, actor.id)
    return row.pilot_id if row is not None else None


def in_pilot(uow: UnitOfWork, pilot_id: str, action: str) -> None:
    """Refuse a finance or evaluator worker acting on another pilot than their own."""
    own = actor_pilot(uow)
    if own is not None and own != pilot_id:
        raise PermissionDenied(f"{uow.actor} works in pilot {own}: may not {action.replace('.', ' ')} "
                               f"in pilot {pilot_id}")


def reach_pilot(uow: UnitOfWork, pilot_id: str, action: str) -> Actor:
    """The actor may ``action`` on the pilot ``pilot_id`` as a whole (a month, a payment
    batch, a report, an export)."""
    actor = check_actor(uow, action)
    in_pilot(uow, pilot_id, action)
    return actor


EVALUATOR_CONSENT = "evaluators see only consenting clients' pseudonymous data"


def worker_record(row: WorkerRow) -> Worker:
    return Worker(row.id, row.pilot_id, row.code, row.role, row.supervisor_id)


def client_record(row: ClientRow) -> Client:
    return Client(row.code, row.pilot_id, row.group_id, row.worker_id, row.control,
                  row.enrolled_on, row.ended_on, row.language)


def get_worker_row(uow: UnitOfWork, worker_id: str, *, field: str = "--worker",
                   active: bool = False) -> WorkerRow:
    """A worker by id; with ``active``, one that was not deactivated (who may be given
    clients)."""
    row = session(uow).get(WorkerRow, worker_id)
    if row is None:
        raise NotFound(f"{field}: no worker {shown(worker_id)}; see `avain worker list`")
    if active and not row.active:
        raise ValidationError(f"{field}: worker {worker_id} was deactivated on {row.deactivated_on}")
    return row


def reach_client(uow: UnitOfWork, code: str, action: str) -> ClientRow:
    """Load a client the actor may ``action``; one outside the actor's scope (another
    worker's client, say) is refused."""
    actor = check_actor(uow, action)
    s = session(uow)
    row = s.get(ClientRow, code)
    if row is not None and actor.role in auth.SCOPED:
        worker = s.get(WorkerRow, row.worker_id)
        supervisor = worker.supervisor_id if worker else None
        if not auth.can_reach_client(actor, code=row.code, worker_id=row.worker_id,
                                     supervisor_id=supervisor, assistant_id=row.assistant_id):
            raise PermissionDenied(f"{actor} may not {action.replace('.', ' ')} {code}")
    if row is None:
        raise NotFound(f"no client {shown(code)}; see `avain client list`")
    if actor.role in auth.PILOT_SCOPED:
        in_pilot(uow, row.pilot_id, action)
    if actor.role == "evaluator":
        from .consent import in_force

        if not in_force(uow, code, "evaluation"):
            raise PermissionDenied(f"{code} has no consent to the evaluation in force: {EVALUATOR_CONSENT}")
    return row


def record(uow: UnitOfWork, action: str, subject: str, *, stream: str | None = None,
           before: dict | None = None, after: dict | None = None,
           purpose: str | None = None) -> None:
    audit.append(session(uow), actor=str(uow.actor), action=action, subject=subject,
                 stream=stream, before=before, after=after, purpose=purpose)


def scope_clause(uow: UnitOfWork, code_column):
    """A WHERE clause limiting rows (by their client-code column) to the clients the actor
    may see, or None for roles that see every client's pseudonymous records."""
    from sqlalchemy import select

    actor = uow.actor
    clients = ClientRow.__table__.c
    if actor.role == "evaluator":
        import datetime as dt

        from .consent import consenting

        return code_column.in_(select(clients.code).where(
            clients.pilot_id == actor_pilot(uow), clients.code.in_(consenting("evaluation", dt.date.today()))))
    if actor.role == "finance" and actor.id is not None:
        return code_column.in_(select(clients.code).where(clients.pilot_id == actor_pilot(uow)))
    if actor.role == "worker":
        return code_column.in_(select(clients.code).where(clients.worker_id == actor.id))
    if actor.role == "supervisor":
        team = select(WorkerRow.id).where(WorkerRow.supervisor_id == actor.id)
        return code_column.in_(select(clients.code).where(
            (clients.worker_id == actor.id) | clients.worker_id.in_(team)))
    if actor.role == "assistant":
        return code_column.in_(select(clients.code).where(clients.assistant_id == actor.id))
    if actor.role == "client":
        return code_column == actor.id
    return None
