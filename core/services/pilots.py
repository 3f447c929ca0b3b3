"""Pilots: add from a file, sync from plugins, list, show."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from .. import pilot_config
from ..audit import ORGANISER
from ..domain import Pilot, thaw
from ..errors import ConfigError, Conflict, NotFound
from ..models import ClientRow, PilotRow
from ..plugins import collect
from ..uow import UnitOfWork
from .common import check_actor, record, session


def config_sections(uow: UnitOfWork):
    return collect(uow.app.pm, "avain_config_sections")


def check_file(pm, path: str | Path) -> Pilot:
    """Validate a pilot.toml without touching the database (``avain pilot check``)."""
    pilot, _ = pilot_config.load_file(path, collect(pm, "avain_config_sections"))
    return pilot


def add_file(uow: UnitOfWork, path: str | Path) -> Pilot:
    """``avain pilot add FILE``: a data-only pilot. Two pilots with one id are refused."""
    check_actor(uow, "pilot.add")
    pilot, data = pilot_config.load_file(path, config_sections(uow))
    _insert(uow, pilot, data, source=f"file {Path(path).name}")
    return pilot


def _insert(uow: UnitOfWork, pilot: Pilot, data: dict, *, source: str) -> None:
    s = session(uow)
    existing = s.get(PilotRow, pilot.id)
    if existing is not None:
        raise Conflict(f"pilot {pilot.id} exists already (from {existing.source})")
    s.add(PilotRow(id=pilot.id, name=pilot.name, config=json.dumps(data, sort_keys=True),
                   source=source, added_at=dt.datetime.now(dt.UTC)))
    record(uow, "pilot.added", pilot.id, stream=ORGANISER, after={"id": pilot.id, "source": source})


def sync_plugin_pilots(uow: UnitOfWork) -> list[str]:
    """Load every plugin's services and pilots (``avain init``): new ones are added,
    changed ones are updated (and audited), unchanged ones left alone. Returns the ids of
    the pilots touched."""
    check_actor(uow, "pilot.add")
    from .catalogue import sync_services  # services first: pilots name them

    sync_services(uow)
    s = session(uow)
    touched = []
    sections = config_sections(uow)
    for source in sorted(collect(uow.app.pm, "avain_pilots"), key=lambda source: source.name):
        pilot, data = pilot_config.load_file(source.path, sections)
        origin = f"plugin {source.name}"
        row = s.get(PilotRow, pilot.id)
        config = json.dumps(data, sort_keys=True)
        if row is None:
            _insert(uow, pilot, data, source=origin)
            touched.append(pilot.id)
        elif row.config != config:
            if row.source != origin:
                raise Conflict(f"pilot {pilot.id} from {origin} clashes with one from {row.source}")
            before = json.loads(row.config)
            row.config, row.name = config, pilot.name
            s.add(row)
            record(uow, "pilot.updated", pilot.id, stream=ORGANISER,
                   before={"config": before}, after={"config": data})
            touched.append(pilot.id)
    return touched


def configure_section(uow: UnitOfWork, pilot_id: str, section: str, values: dict[str, Any]) -> Pilot:
    """Set keys of a pilot's ``[plugins.<section>]`` (where a plugin's service answers,
    say), validated like the whole pilot.toml and audited with the old and new values."""
    check_actor(uow, "pilot.add")
    s = session(uow)
    row = s.get(PilotRow, pilot_id)
    if row is None:
        raise NotFound(f"--pilot: no pilot {pilot_id!r}")
    data = json.loads(row.config)
    before = dict(data.get("plugins", {}).get(section) or {})
    data.setdefault("plugins", {})[section] = {**before, **values}
    errors = pilot_config.validate(data, config_sections(uow), source=f"pilot {pilot_id}")
    if errors:
        raise ConfigError("\n".join(errors), errors)
    row.config = json.dumps(data, sort_keys=True)
    s.add(row)
    record(uow, "pilot.updated", pilot_id, stream=ORGANISER, before={section: before},
           after={section: data["plugins"][section]})
    return Pilot.from_config(data)


def get(uow: UnitOfWork, pilot_id: str, *, field: str = "--pilot") -> Pilot:
    row = session(uow).get(PilotRow, pilot_id)
    if row is None:
        known = ", ".join(r.id for r in session(uow).execute(select(PilotRow)).scalars()) or "none"
        raise NotFound(f"{field}: no pilot {pilot_id!r} (known: {known})")
    return pilot_config.from_stored(row.config)


def list_pilots(uow: UnitOfWork) -> list[dict[str, Any]]:
    check_actor(uow, "pilot.read")
    s = session(uow)
    counts = dict(
        s.execute(
            select(ClientRow.pilot_id, func.count())
            .where(ClientRow.control.is_(False), ClientRow.ended_on.is_(None))
            .group_by(ClientRow.pilot_id)
        ).all()
    )
    rows = s.execute(select(PilotRow).order_by(PilotRow.id)).scalars()
    return [
        {"id": r.id, "name": r.name, "source": r.source, "clients": counts.get(r.id, 0)}
        for r in rows
    ]


def show(uow: UnitOfWork, pilot_id: str) -> dict[str, Any]:
    """A pilot's rules in words, its workflow options and warnings about its targets."""
    check_actor(uow, "pilot.read")
    pilot = get(uow, pilot_id, field="ID")
    s = session(uow)
    enrolled = s.execute(
        select(func.count()).where(ClientRow.pilot_id == pilot.id, ClientRow.control.is_(False),
                                   ClientRow.ended_on.is_(None))
    ).scalar_one()
    controls = s.execute(
        select(func.count()).where(ClientRow.pilot_id == pilot.id, ClientRow.control.is_(True))
    ).scalar_one()
    options = uow.hooks.avain_workflow_options(pilot=pilot)
    rules = ["client groups: " + ", ".join(f"{g.name} ({g.code})" for g in pilot.groups)]
    if pilot.max_clients is not None:
        rules.append(f"at most {pilot.max_clients} HB clients")
    for g in pilot.groups:
        if g.max_clients is not None:
            rules.append(f"at most {g.max_clients} HB clients in group {g.id}")
    if pilot.intake_closes:
        rules.append(f"no new clients after {pilot.intake_closes.isoformat()}")
    fixed_term = pilot.raw.get("intake", {}).get("relationship_ends")
    if fixed_term:
        rules.append(f"client relationships end on {fixed_term} unless a new decision extends them")
    rules.append("temporary henkilötunnus numbers " +
                 ("accepted" if pilot.allow_temporary_hetu else "refused"))
    if pilot.monthly_cap is not None:
        rules.append(f"monthly budget at most {pilot.monthly_cap.fi()}")
    rules.append("the client confirms receipt of a service" if options.confirm_receipt
                 else "no receipt confirmation by the client")
    rules.append(f"invoices approved by the {options.invoice_approver}")
    rules.append(f"payment commitments valid {options.commitment_days} days")
    for sentences in uow.hooks.avain_pilot_rules(pilot=pilot):
        rules.extend(sentences or ())
    warnings = []
    target = pilot.raw.get("intake", {}).get("min_clients_target")
    if target is not None and enrolled < target:
        warnings.append(f"{enrolled} HB clients enrolled, the target is at least {target}")
    per_group = dict(s.execute(
        select(ClientRow.group_id, func.count()).where(ClientRow.pilot_id == pilot.id, ClientRow.control.is_(False),
                                                       ClientRow.ended_on.is_(None)).group_by(ClientRow.group_id)
    ).all())
    for g in pilot.raw.get("groups", []):
        minimum = g.get("min_clients_target")
        if minimum is not None and per_group.get(g["id"], 0) < minimum:
            warnings.append(f"group {g['id']}: {per_group.get(g['id'], 0)} HB clients enrolled, "
                            f"the target is at least {minimum}")
    named = pilot.raw.get("evaluation", {}).get("instruments", ())
    if named:
        registered = {i.name for i in collect(uow.app.pm, "avain_evaluation_instruments")}
        unknown = [n for n in named if n not in registered]
        if unknown:
            warnings.append(f"evaluation: no loaded plugin registers {', '.join(unknown)}: responses to it are "
                            "refused and the report leaves it out")
    return {
        "id": pilot.id,
        "name": pilot.name,
        "code": pilot.code,
        "organiser": pilot.organiser,
        "clients": enrolled,
        "controls": controls,
        "rules": rules,
        "warnings": warnings,
        "workflow": {"confirm_receipt": options.confirm_receipt,
                     "invoice_approver": options.invoice_approver,
                     "commitment_days": options.commitment_days},
        "config": thaw(pilot.raw),
    }
