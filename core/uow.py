"""The unit of work: one database transaction per use case, events after commit.

Services take a :class:`UnitOfWork` and never commit; :func:`transaction` runs a service,
commits once, retries on serialization failures, deadlocks and a busy SQLite, and only
then calls the event hooks the service queued.

A unit holds one connection and its transaction, both taken on first use. The ORM Session
is made only when a service asks for it, and works in that transaction: Core statements
(the ledger, a balance lookup) run on the connection itself, without the Session's own
transaction bookkeeping, which costs more than the statements.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

from . import checkpoints
from .auth import Actor

if TYPE_CHECKING:  # pragma: no cover
    from .app import App

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
MAX_ATTEMPTS = 30


class RetryableConflict(Exception):
    """Raised by a service when a concurrent writer won a race it can simply retry."""


class UnitOfWork:
    def __init__(self, app: App, actor: Actor, *, readonly: bool = False):
        self.app = app
        self.actor = actor
        self.readonly = readonly
        self.hooks = app.pm.hook
        self._active = False
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._session: Session | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []

    def _connection(self) -> Connection:
        """The unit's connection, in its transaction (begun on first use)."""
        if self._conn is None:
            if not self._active:
                raise RuntimeError("use the unit of work inside `with`")
            conn = self.app.engine.connect()
            try:
                if self.readonly:
                    # SQLite: a deferred BEGIN (see db.make_engine). PostgreSQL: no BEGIN/COMMIT
                    # round trips; under READ COMMITTED each statement has its own snapshot
                    # anyway. Set on the connection (and reset when it goes back to the pool),
                    # not with Engine.execution_options(), which builds an engine and registers
                    # an event listener on every call.
                    options: dict[str, Any] = {"avain_readonly": True}
                    if conn.dialect.name == "postgresql":
                        options["isolation_level"] = "AUTOCOMMIT"
                    conn.execution_options(**options)
                self._transaction = conn.begin()  # SQLite writers: BEGIN IMMEDIATE
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @property
    def session(self) -> Session | None:
        """The unit's ORM Session, made on first use (None outside ``with``)."""
        if self._session is None and self._active:
            # rollback_only: the Session works in the unit's transaction; its commit()
            # flushes and leaves the transaction to the unit, which commits it (or closes
            # the connection, rolling it back).
            self._session = Session(bind=self._connection(), expire_on_commit=False,
                                    join_transaction_mode="rollback_only")
        return self._session

    def core_connection(self) -> Connection:
        """The connection of this unit's transaction, for Core statements. The Session's
        pending changes are flushed first, as ``Session.execute`` would."""
        s = self._session
        if s is not None and s.autoflush:
            s.flush()
        return self._connection()

    def __enter__(self) -> UnitOfWork:
        self._active = True
        return self

    def __exit__(self, *exc_info) -> None:
        self._active = False
        s = self._session
        try:
            # A Session used for nothing (the ledger runs on the connection) holds nothing
            # to release: closing it would only cost time.
            if s is not None and (s.in_transaction() or s.identity_map or s.new or s.deleted):
                s.close()
        finally:
            if self._conn is not None:
                # rolls back what was not committed; the pool resets the isolation level
                self._conn.close()

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Queue an event hook call for after the commit."""
        self._events.append((hook_name, kwargs))

    def commit(self) -> None:
        # flushes; the transaction is the unit's. A Session that never began (Core
        # statements only) has nothing to flush.
        if self._session is not None and self._session.in_transaction():
            self._session.commit()
        if self._transaction is not None:
            self._transaction.commit()

    def dispatch(self) -> None:
        """Call every handler of every queued event, each on its own: one handler that
        fails is logged and does not keep the others from running."""
        for hook_name, kwargs in self._events:
            for impl in getattr(self.hooks, hook_name).get_hookimpls():
                try:
                    impl.function(**{name: kwargs[name] for name in impl.argnames})
                except Exception:  # an event handler must not undo what was committed
                    log.exception("event hook %s failed (plugin %s)", hook_name, impl.plugin_name)
        self._events.clear()


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableConflict):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate in RETRY_SQLSTATES:
            return True
        if isinstance(exc, OperationalError) and "database is locked" in str(orig):
            return True
        # Two writers creating the same audit stream head: retry, the next sees it.
        if isinstance(exc, IntegrityError) and "audit_head" in str(orig):
            return True
    return False


def transaction(app: App, actor: Actor, fn: Callable[..., T], *args: Any, readonly: bool = False,
                **kwargs: Any) -> T:
    """Run ``fn(uow, *args, **kwargs)`` in one transaction and commit it. ``readonly`` marks
    a use case that only reads: on SQLite it then does not take the write lock."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # The audit streams and ledger chains this attempt moves: checkpointed once it commits.
        token = checkpoints.start()
        try:
            with UnitOfWork(app, actor, readonly=readonly) as uow:
                result = fn(uow, *args, **kwargs)
                uow.commit()
            touched = checkpoints.collected()
        except Exception as exc:
            if attempt < MAX_ATTEMPTS and _retryable(exc):
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 8)))
                continue
            raise
        finally:
            checkpoints.stop(token)
        checkpoints.after_commit(app, touched)
        uow.dispatch()
        return result
    raise AssertionError("unreachable")  # pragma: no cover
