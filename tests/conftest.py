"""Fixtures: a fresh plugin manager per test, and a fresh database per test on SQLite and,
when ``AVAIN_TEST_POSTGRES_URL`` is set, on PostgreSQL too.

The PostgreSQL server is shared and keeps what earlier runs left, so the session makes a
database of its own (``avain_test_<random>``), migrates it once, empties it between tests
and drops it at the end. If the variable is set and the server cannot be reached, every
PostgreSQL test errors: it is never skipped silently.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from avain.core import db as dbmod
from avain.core import i18n
from avain.core.app import App
from avain.core.auth import Actor
from avain.core.plugins import make_plugin_manager
from avain.core.services import pilots

PG_ENV = "AVAIN_TEST_POSTGRES_URL"

#: The message key every test runs with (tests of key files and rotation unset it).
TEST_MESSAGE_KEY = "dGVzdC1vbmx5LWF2YWluLW1lc3NhZ2Uta2V5LTMyYnk"
#: The integrity key every test runs with (tests of key files unset it).
TEST_INTEGRITY_KEY = "dGVzdC1vbmx5LWF2YWluLWludGVncml0eS1rZXktMzI"


def _use_test_key(mp: pytest.MonkeyPatch) -> None:
    mp.setenv("AVAIN_MESSAGE_KEY", TEST_MESSAGE_KEY)
    mp.delenv("AVAIN_MESSAGE_KEY_FILE", raising=False)
    mp.setenv("AVAIN_INTEGRITY_KEY", TEST_INTEGRITY_KEY)
    mp.delenv("AVAIN_INTEGRITY_KEY_FILE", raising=False)
    mp.delenv("AVAIN_CHECKPOINT_FILE", raising=False)


@pytest.fixture(scope="session", autouse=True)
def session_message_key():
    """Session fixtures (the CLI tests' template databases) write messages with the test
    key too."""
    with pytest.MonkeyPatch.context() as mp:
        _use_test_key(mp)
        yield


@pytest.fixture(autouse=True)
def message_key(monkeypatch):
    """Messages are encrypted with a fixed test key from the environment, so no test
    writes a key file into the working folder, and no key file named by the machine's
    environment is touched. A test may unset it (monkeypatch) to test key files."""
    _use_test_key(monkeypatch)
    return TEST_MESSAGE_KEY


@pytest.fixture(autouse=True)
def english_environment(monkeypatch):
    """Every test starts in English whatever the machine's locale; tests of languages set
    LANG or --lang themselves."""
    for var in i18n.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    i18n.set_language("en")


@pytest.fixture
def pm():
    """A fresh plugin manager for one test."""
    return make_plugin_manager()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = dbmod.make_engine(f"sqlite:///{path}")
    dbmod.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a PostgreSQL database made for this test session, migrated once."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    name = f"avain_test_{secrets.token_hex(4)}"
    admin_url = make_url(base).set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server: fail loudly, never skip
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc}", pytrace=False)
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = dbmod.make_engine(url)
    dbmod.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template, monkeypatch) -> str:
    """A migrated, empty database on each engine. A SQLite database keeps its checkpoints
    beside it; the emptied PostgreSQL database gets a checkpoint file of its own per test."""
    if request.param == "sqlite":
        path = tmp_path / "avain.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    monkeypatch.setenv("AVAIN_CHECKPOINT_FILE", str(tmp_path / "avain.checkpoints"))
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "avain.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def open_app(url: str, pm=None) -> App:
    app = App(dbmod.make_engine(url), pm or make_plugin_manager())
    app.run(Actor("admin"), pilots.sync_plugin_pilots)
    return app


@pytest.fixture
def app(db_url, pm):
    """An App on a fresh database of each engine, with the plugins' pilots loaded."""
    application = open_app(db_url, pm)
    yield application
    application.close()


@pytest.fixture
def admin():
    return Actor("admin")



@pytest.fixture
def team(app, admin):
    """Workers of the example pilot by role (see helpers.add_team)."""
    from helpers import add_team

    return add_team(app)
