"""The application object: one database and one plugin manager, handed to services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from . import db
from .auth import Actor
from .errors import DatabaseError
from .plugins import AvainPluginManager, make_plugin_manager
from .uow import transaction

T = TypeVar("T")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class App:
    def __init__(self, engine: Engine, pm: AvainPluginManager):
        self.engine = engine
        self.pm = pm
        #: The time messages are stamped with. Only a simulation (``avain demo`` playing a
        #: past month) sets another clock; nothing on the command line can.
        self.clock: Callable[[], dt.datetime] = utc_now

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True, check_schema: bool = True,
             plugins: Iterable[Any] = (), pm: AvainPluginManager | None = None) -> App:
        """Open ``url`` (``--db``/``AVAIN_DB``/``./avain.db``). With ``create`` a new database
        is created, migrated and given the plugins' pilots; without, a missing SQLite file is
        refused. An out-of-date one is refused."""
        full_url = db.resolve_url(url)
        if not create:
            db.require_existing(full_url)
        engine = db.make_engine(full_url)
        app = cls(engine, pm or make_plugin_manager(plugins))
        if check_schema:
            try:
                created = db.ensure_schema(engine, create=create)
            except OperationalError as exc:
                raise DatabaseError(
                    f"cannot use the database {db.safe_url(full_url)}: {db._first_line(exc)}"
                ) from exc
            if created:
                from . import integrity_key
                from .services import pilots

                # a new database's audit trail is keyed from its first event
                integrity_key.ensure(full_url)
                app.run(Actor("admin"), pilots.sync_plugin_pilots)
        return app

    def run(self, actor: Actor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one service function as ``actor`` in its own transaction."""
        return transaction(self, actor, fn, *args, **kwargs)

    def read(self, actor: Actor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a service that only reads (no audit event either): on SQLite it does not
        wait for, or block, writers."""
        return transaction(self, actor, fn, *args, readonly=True, **kwargs)

    def close(self) -> None:
        self.engine.dispose()
