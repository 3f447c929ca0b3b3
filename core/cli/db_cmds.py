"""``avain init`` and ``avain db upgrade``."""

from __future__ import annotations

import click

from ..auth import Actor
from ..i18n import _
from .lazy import lazy_module
from .output import emit, json_option, render_mapping
from .state import state

# read only inside the commands: imported when one of them runs
dbmod = lazy_module("avain.core.db")
integrity_key = lazy_module("avain.core.integrity_key")
messages = lazy_module("avain.core.services.messages")
pilots = lazy_module("avain.core.services.pilots")


@click.command()
@json_option
def init(as_json: bool) -> None:
    """Create the database (or bring it up to date) and load the plugins' pilots."""
    st = state()
    app = st.app(create=True, check_schema=False)
    dbmod.current_revision(app.engine)  # fails clearly when unreachable
    # the key first: the audit trail of loading the pilots is hashed with it
    ikey, created = integrity_key.ensure_for(app.engine)
    dbmod.upgrade(app.engine)
    touched = app.run(Actor("admin"), pilots.sync_plugin_pilots)
    key = app.read(Actor("admin"), messages.prepare_key)
    data = {"database": dbmod.safe_url(app.engine.url), "schema": dbmod.head_revision(),
            "pilots_loaded": touched,
            "message_key": f"{key['key']} in {key['where']}" + (" (created)" if key["created"] else ""),
            "integrity_key": f"{ikey.id} in {ikey.describe()}" + (" (created)" if created else "")}
    emit(data, as_json, render_mapping(_("avain database ready")))


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@json_option
def upgrade(as_json: bool) -> None:
    """Apply every pending migration, then load new or changed plugin pilots."""
    st = state()
    app = st.app(check_schema=False)
    before = dbmod.current_revision(app.engine)
    dbmod.upgrade(app.engine)
    touched = app.run(Actor("admin"), pilots.sync_plugin_pilots)
    data = {"database": dbmod.safe_url(app.engine.url), "from": before,
            "to": dbmod.head_revision(), "pilots_loaded": touched}
    emit(data, as_json, render_mapping(_("schema upgraded")))


COMMANDS = [init, db]
