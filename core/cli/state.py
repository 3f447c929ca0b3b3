"""Per-invocation state: the database and plugin manager, opened on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import AvainError
from ..plugins import AvainPluginManager, make_plugin_manager
from .hints import remember_option

if TYPE_CHECKING:  # pragma: no cover
    from ..app import App
    from ..auth import Actor

T = TypeVar("T")


class State:
    def __init__(self) -> None:
        self.db: str | None = None
        from ..auth import Actor

        self.actor: Actor = Actor("admin")
        self._pm: AvainPluginManager | None = None
        self._app: App | None = None

    @classmethod
    def of(cls, ctx: click.Context) -> State:
        root = ctx.find_root()
        state = root.meta.get("avain_state")
        if state is None:
            state = root.meta["avain_state"] = cls()
        return state

    @property
    def pm(self) -> AvainPluginManager:
        if self._pm is None:
            self._pm = make_plugin_manager()
        return self._pm

    def app(self, *, create: bool = False, check_schema: bool = True) -> App:
        """The database, opened once. Only commands that set one up (``init``, ``demo``)
        pass ``create``: every other refuses a SQLite file that does not exist."""
        if self._app is None:
            from ..app import App  # the database libraries: only for commands that use one

            self._app = App.open(self.db, create=create, check_schema=check_schema, pm=self.pm)
        return self._app

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a service as the acting user in its own transaction."""
        try:
            return self.app().run(self.actor, fn, *args, **kwargs)
        except AvainError as exc:
            _name_option(exc)
            raise

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read-only service (one that writes no audit event)."""
        try:
            return self.app().read(self.actor, fn, *args, **kwargs)
        except AvainError as exc:
            _name_option(exc)
            raise

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def _name_option(exc: AvainError) -> None:
    """A service names the field a refusal is about; the running command knows its option."""
    ctx = click.get_current_context(silent=True)
    remember_option(exc, ctx.command if ctx is not None else None)


def state() -> State:
    return State.of(click.get_current_context())
