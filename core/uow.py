"""The unit of work: one database transaction per use case, events after commit.

Services take a :class:`UnitOfWork` and never commit; :func:`transaction` runs a service,
commits once, retries on serialization failures, deadlocks and a busy SQLite, and only
then calls the event hooks the service queued.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

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
        self.session: Session | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        engine = self.app.engine
        if self.readonly:
            # SQLite: a deferred BEGIN (see db.make_engine). PostgreSQL: no BEGIN/COMMIT round
            # trips; under READ COMMITTED each statement has its own snapshot anyway.
            options = {"avain_readonly": True}
            if engine.dialect.name == "postgresql":
                options["isolation_level"] = "AUTOCOMMIT"
            engine = engine.execution_options(**options)
        self.session = Session(engine, expire_on_commit=False)
        self.session.begin()
        return self

    def __exit__(self, *exc_info) -> None:
        assert self.session is not None
        if not self._committed:
            self.session.rollback()
        self.session.close()

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Queue an event hook call for after the commit."""
        self._events.append((hook_name, kwargs))

    def commit(self) -> None:
        assert self.session is not None
        self.session.commit()
        self._committed = True

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
        try:
            with UnitOfWork(app, actor, readonly=readonly) as uow:
                result = fn(uow, *args, **kwargs)
                uow.commit()
        except Exception as exc:
            if attempt < MAX_ATTEMPTS and _retryable(exc):
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 8)))
                continue
            raise
        uow.dispatch()
        return result
    raise AssertionError("unreachable")  # pragma: no cover
