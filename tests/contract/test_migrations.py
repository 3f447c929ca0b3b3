"""The migrations build exactly the schema the table models describe, on both engines,
and an out-of-date database is refused with what to do."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from avain.core import db as dbmod
from avain.core import models  # noqa: F401
from avain.core.app import App
from avain.core.errors import DatabaseError


def test_migrations_match_the_models(db_url):
    engine = dbmod.make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
        assert dbmod.current_revision(engine) == dbmod.head_revision()
    finally:
        engine.dispose()


def test_an_older_schema_is_refused_until_upgraded(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = dbmod.make_engine(url)
    from alembic import command

    command.upgrade(dbmod.alembic_config(engine), "0001")
    engine.dispose()
    with pytest.raises(DatabaseError, match=r"older schema \(0001.*run `avain db upgrade`"):
        App.open(url)
    app = App.open(url, check_schema=False)
    dbmod.upgrade(app.engine)
    app.close()
    App.open(url).close()


def test_a_foreign_database_is_not_touched(tmp_path):
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id integer)"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="not avain's"):
        App.open(url)
