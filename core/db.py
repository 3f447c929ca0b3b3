"""Opening databases: URLs, engines, SQLite pragmas, migrations and the schema check."""

from __future__ import annotations

import functools
import os
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, OperationalError
from sqlalchemy.exc import DatabaseError as DriverDatabaseError
from sqlalchemy.sql import Executable

from .errors import DatabaseError

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config

DEFAULT_DB = "avain.db"


def resolve_url(db: str | None) -> str:
    """``--db`` value, else ``AVAIN_DB``, else ``./avain.db``. A plain path is SQLite."""
    value = db or os.environ.get("AVAIN_DB") or DEFAULT_DB
    if "://" not in value:
        return f"sqlite:///{value}"
    return value


def safe_url(url: str | URL) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def create_private(path: Path) -> None:
    """Create the SQLite file ``path`` readable by its owner only (0600), unless it is
    there already. SQLite gives its -wal, -shm and -journal files the mode of the
    database file, so they are private too."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except (FileExistsError, FileNotFoundError):
        return  # there already, or no folder for it: the driver says so
    os.close(fd)


def make_engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"--db: {url!r} is not a database URL or a file path") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(u, connect_args={"timeout": 30})

        if u.database and u.database != ":memory:":
            @event.listens_for(engine, "do_connect")
            def _sqlite_private_file(_dialect, _record, _cargs, _cparams):
                create_private(Path(u.database))

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy, not the driver, manage transactions, so BEGIN IMMEDIATE works.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA busy_timeout = 30000")
            if u.database and u.database != ":memory:":
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the write lock at the start: no upgrade deadlocks between them.
            # Read-only units of work begin deferred, so they never wait for a writer (WAL).
            if conn.get_execution_options().get("avain_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        # No pre-ping: it costs a round trip per transaction. Connections are recycled
        # instead, and a dropped connection fails one command with a clear error.
        return create_engine(u, isolation_level="READ COMMITTED", pool_recycle=1800)
    raise DatabaseError(
        f"--db: {safe_url(url)} uses {backend!r}; avain runs on SQLite or PostgreSQL"
    )


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config  # alembic only to migrate: checking needs none of it

    cfg = Config()
    cfg.set_main_option("script_location", str(files("avain.core") / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(?:['\"]([^'\"]+)['\"]|None)\s*$", re.MULTILINE)


@functools.cache
def _revision_graph() -> dict[str, str | None] | None:
    """Each migration's revision and the one it revises, read from the files' text, so that
    every command's schema check runs without importing alembic and every migration (a
    contract test keeps it equal to alembic's reading). None when a file says something
    this reading does not follow, such as a merge of two revisions: alembic decides then."""
    graph: dict[str, str | None] = {}
    for path in (files("avain.core") / "migrations" / "versions").iterdir():
        if not path.name.endswith(".py") or path.name.startswith("__"):
            continue
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None or revision.group(1) in graph:
            return None
        graph[revision.group(1)] = down.group(1)
    return graph


def _script_directory():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    graph = _revision_graph()
    heads = set(graph) - set(graph.values()) if graph else set()
    if len(heads) == 1:
        return heads.pop()
    return _script_directory().get_current_head()  # and its error when there are several


def current_revision(engine: Engine) -> str | None:
    """The schema revision stamped in the database (alembic's version table), or None."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            stamped = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database {safe_url(engine.url)}: {_first_line(exc)}; "
            "check --db or AVAIN_DB"
        ) from exc
    except DriverDatabaseError as exc:  # SQLite: a file that is not a database (text, an image…)
        raise not_a_database(engine.url, exc) from exc
    if len(stamped) > 1:
        raise DatabaseError(f"{safe_url(engine.url)} is stamped with several schema revisions "
                            f"({', '.join(sorted(stamped))}); this avain has one line of migrations")
    return stamped[0] if stamped else None


def not_a_database(url: str | URL, exc: BaseException) -> DatabaseError:
    path = sqlite_path(str(url)) if make_url(url).get_backend_name() == "sqlite" else None
    where = str(path) if path is not None else safe_url(url)
    return DatabaseError(f"--db: {where} is not a database ({_first_line(exc)}); "
                         "give the database file, or run `avain init` with a new file name", field="--db")


def require_existing(url: str) -> None:
    """Refuse a SQLite file that does not exist: only ``avain init`` (and ``avain demo``)
    create one, so a mistyped ``--db`` never makes an empty database silently."""
    try:
        path = sqlite_path(url)
    except ArgumentError:
        return  # not a URL at all: make_engine says so
    if path is not None and not path.exists():
        raise DatabaseError(f"no database at {path}: run `avain init` to create one", field="--db")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not inspect(conn).get_table_names()


def upgrade(engine: Engine) -> None:
    """Apply every migration up to head (``avain db upgrade``), after checking the database
    is avain's (or empty) and not from a newer avain."""
    current = current_revision(engine)
    if current is None and not is_empty(engine):
        raise DatabaseError(f"{safe_url(engine.url)} holds tables that are not avain's; use another database")
    if current is not None and current not in _known_revisions():
        raise DatabaseError(f"{safe_url(engine.url)} was written by a newer avain (schema {current}); upgrade avain")
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:
        raise DatabaseError(f"cannot upgrade {safe_url(engine.url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":  # what a migration replaced leaves the write-ahead log at once
        with engine.connect() as conn:  # outside a transaction (a pragma in one is refused)
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _known_revisions() -> set[str]:
    graph = _revision_graph()
    if graph is not None:
        return set(graph)
    return {rev.revision for rev in _script_directory().walk_revisions()}


def ensure_schema(engine: Engine, *, create: bool) -> bool:
    """Check the schema is current. A brand-new database is migrated when ``create``;
    returns True when it was. An older schema is refused with what to do."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return False
    if current is None and is_empty(engine):
        if not create:
            raise DatabaseError(f"{safe_url(engine.url)} has no avain schema: run `avain init`")
        upgrade(engine)
        return True
    if current is None:
        raise DatabaseError(
            f"{safe_url(engine.url)} holds tables that are not avain's; use another database"
        )
    if current not in _known_revisions():
        raise DatabaseError(
            f"{safe_url(engine.url)} was written by a newer avain (schema {current}); "
            "upgrade avain"
        )
    raise DatabaseError(
        f"{safe_url(engine.url)} has an older schema ({current}, this avain needs {head}): "
        "run `avain db upgrade`"
    )


# --- statements compiled once ----------------------------------------------------------
#
# The hot paths (a purchase's ledger writes, a balance read, a month's allocation) run a
# few one-row statements per unit of work. For those, SQLAlchemy's per-execution work
# (cache key, execution context, result metadata, the driver's cursor description) costs
# more client time than the database spends running them. A Prepared statement keeps what
# SQLAlchemy produces — the compiled SQL, its bind and result type processing, its error
# wrapping and the connection's transaction — and sends it to the driver's cursor itself.


class _Plan:
    """A statement compiled for one dialect: the SQL, how to build the driver's
    parameters, and how to convert the result columns."""

    __slots__ = ("sql", "positional", "names", "given", "fixed", "results", "returns_rows")

    def __init__(self, statement: Executable, dialect: Dialect, keys: Sequence[str] | None):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if (compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names
                or compiled.effective_returning):
            raise ValueError(f"Prepared: {statement} needs SQLAlchemy's execution (expanding or escaped "
                             "parameters, RETURNING)")
        self.sql = compiled.string
        self.positional = compiled.positional
        # The binds the caller gives: (name in the SQL, caller's key, type processor); and
        # those with a value of their own (a literal in the statement), which the caller
        # may override: (name, key, value, processor).
        given, fixed = [], []
        for bind, name in compiled.bind_names.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                given.append((name, bind.key, process))
            else:
                fixed.append((name, bind.key, bind.effective_value, process))
        self.given, self.fixed = tuple(given), tuple(fixed)
        self.names = tuple(compiled.positiontup) if self.positional else ()
        self.returns_rows = statement.is_select
        self.results: tuple[Callable[[Any], Any] | None, ...] = ()
        if self.returns_rows:
            self.results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                                 for c in statement.selected_columns)

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """What SQLAlchemy's ``construct_params`` and bind processors make of ``params``."""
        values = {}
        for name, key, process in self.given:
            if key not in params:
                raise InvalidRequestError(f"A value is required for bind parameter {key!r}")
            value = params[key]
            values[name] = value if process is None else process(value)
        for name, key, value, process in self.fixed:
            if key in params:
                value = params[key]
            values[name] = value if process is None else process(value)
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values

    def rows(self, raw: list[tuple]) -> list[tuple]:
        processors = self.results
        if not any(processors):
            return [tuple(r) for r in raw]
        return [tuple(v if p is None else p(v) for p, v in zip(processors, r, strict=True)) for r in raw]


def _observed(conn: Connection) -> bool:
    """Someone watches this connection's statements (cursor events, SQL echo): those see
    only what SQLAlchemy itself executes."""
    # SQLAlchemy's own flags first (it checks them before it looks for listeners): most
    # connections have no events at all, and looking costs more than the rest of a run.
    if conn._echo:
        return True
    if conn._has_events:  # listeners on this very connection, or joined from its engine
        d = conn.dispatch
        return bool(d.before_cursor_execute or d.after_cursor_execute)
    if conn.engine._has_events:
        d = conn.engine.dispatch
        return bool(d.before_cursor_execute or d.after_cursor_execute)
    return False


_CURSOR = "avain.prepared.cursor"


class Prepared:
    """A Core statement run straight on the driver's cursor of a SQLAlchemy connection.

    ``run(conn, params)`` returns the rows (tuples, after the column types' result
    processing) of a statement that returns rows, else the rowcount. Errors are raised as
    SQLAlchemy raises them (``IntegrityError`` with ``.orig`` and so on; a lost connection
    is invalidated). Runs in the connection's transaction (begun if it has none, like
    SQLAlchemy's autobegin). While cursor events or SQL echo are on, the statement goes
    through ``Connection.execute`` so they see it, with the same results.

    ``keys``: for an INSERT built without ``.values()``, the columns the callers give (as
    SQLAlchemy's ``column_keys``)."""

    __slots__ = ("statement", "keys", "_plans", "_last")

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None):
        self.statement = statement
        self.keys = tuple(keys) if keys else None
        # one plan per dialect instance (each engine has its own), dropped with the engine;
        # the last one used is at hand without the weak-reference lookup
        self._plans: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()
        self._last: tuple[Dialect | None, _Plan | None] = (None, None)

    def plan(self, dialect: Dialect) -> _Plan:
        last_dialect, plan = self._last
        if last_dialect is dialect:
            return plan
        plan = self._plans.get(dialect)
        if plan is None:
            plan = self._plans[dialect] = _Plan(self.statement, dialect, self.keys)
        self._last = (dialect, plan)
        return plan

    def run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        plan = self.plan(conn.dialect)
        if _observed(conn):
            result = conn.execute(self.statement, dict(params))
            return [tuple(r) for r in result] if plan.returns_rows else result.rowcount
        if not conn.in_transaction():
            conn.begin()
        args = plan.parameters(params)
        # One driver cursor per driver connection, kept with it in the pool's info for
        # that connection: making and closing a cursor for every statement costs about as
        # much as building its parameters. Each statement's rows are all fetched before
        # the next one runs.
        proxied = conn.connection
        dbapi_connection, info = proxied.dbapi_connection, proxied.info
        kept = info.get(_CURSOR)
        if kept is None or kept[0] is not dbapi_connection:
            kept = info[_CURSOR] = (dbapi_connection, dbapi_connection.cursor())
        cursor = kept[1]
        try:
            cursor.execute(plan.sql, args)
            return plan.rows(cursor.fetchall()) if plan.returns_rows else cursor.rowcount
        except BaseException as exc:
            info.pop(_CURSOR, None)  # SQLAlchemy closes it below; the next run makes a new one
            # SQLAlchemy's own handling: the DBAPI error wrapped (IntegrityError, …), a
            # lost connection invalidated, handle_error events run.
            conn._handle_dbapi_exception(exc, plan.sql, args, cursor, None)
            raise  # not reached: the call above raises
