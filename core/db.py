"""Opening databases: URLs, engines, SQLite pragmas, migrations and the schema check."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from .errors import DatabaseError

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


def make_engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"--db: {url!r} is not a database URL or a file path") from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(u, connect_args={"timeout": 30})

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
    cfg = Config()
    cfg.set_main_option("script_location", str(files("avain.core") / "migrations"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database {safe_url(engine.url)}: {_first_line(exc)}; "
            "check --db or AVAIN_DB"
        ) from exc


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
    try:
        command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:
        raise DatabaseError(f"cannot upgrade {safe_url(engine.url)}: {exc}") from exc


def _known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


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
