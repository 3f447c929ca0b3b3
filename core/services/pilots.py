"""Pilots: add from a file, update (a new version), sync from plugins, list, show.

Every configuration a pilot has had is kept as a numbered version; decisions name the
version they were made under."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from .. import pilot_config
from ..audit import ORGANISER
from ..domain import Pilot, thaw
from ..errors import ConfigError, Conflict, NotFound, Refused
from ..models import ClientRow, PilotRow, PilotVersionRow, ServiceRow
from ..plugins import collect
from ..uow import UnitOfWork
from .common import check_actor, record, session


def config_sections(uow: UnitOfWork):
    return collect(uow.app.pm, "avain_config_sections")


def plugin_services(pm) -> set[str]:
    return {svc.code for svc in collect(pm, "avain_services", key=lambda r: r.code)}


def known_services(uow: UnitOfWork) -> set[str]:
    """Service codes a pilot may name: the plugins' and the imported catalogue's."""
    stored = session(uow).execute(select(ServiceRow.code)).scalars()
    return plugin_services(uow.app.pm) | set(stored)


def catalogue_services(uow: UnitOfWork) -> set[str]:
    """The service codes of the catalogue in the database (for ``pilot check``)."""
    return set(session(uow).execute(select(ServiceRow.code)).scalars())


def check_file(pm, path: str | Path, *, catalogue: set[str] = frozenset()) -> Pilot:
    """Validate a pilot.toml without touching the database (``avain pilot check``): the
    schema, sections of plugins that are not loaded, IBAN checksums, and services that no
    plugin nor ``catalogue`` knows."""
    pilot, _ = pilot_config.load_file(path, collect(pm, "avain_config_sections"),
                                      known_services=plugin_services(pm) | set(catalogue))
    return pilot


def add_file(uow: UnitOfWork, path: str | Path) -> Pilot:
    """``avain pilot add FILE``: a data-only pilot. Two pilots with one id are refused."""
    check_actor(uow, "pilot.add")
    pilot, data = pilot_config.load_file(path, config_sections(uow), known_services=known_services(uow))
    _insert(uow, pilot, data, source=f"file {Path(path).name}")
    return pilot


def update_file(uow: UnitOfWork, path: str | Path) -> dict[str, Any]:
    """``avain pilot update FILE``: the pilot the file's ``id`` names gets the file as its
    next version, validated like ``pilot add`` (every error at once). Decisions already
    made keep the version they were made under. A file identical to the current version
    changes nothing. A plugin's pilot is updated through its plugin (``avain init``)."""
    check_actor(uow, "pilot.add")
    pilot, data = pilot_config.load_file(path, config_sections(uow), known_services=known_services(uow))
    s = session(uow)
    row = s.get(PilotRow, pilot.id)
    if row is None:
        raise NotFound(f"{path}: id: no pilot {pilot.id!r} to update; add it with `avain pilot add`")
    if row.source.startswith("plugin "):
        raise Conflict(f"pilot {pilot.id} comes from {row.source}: change that plugin's pilot.toml "
                       "and run `avain init`")
    source = f"file {Path(path).name}"
    changed = _new_version(uow, row, pilot, data, source=source)
    return {"id": pilot.id, "version": row.version, "changed": changed}


def _new_version(uow: UnitOfWork, row: PilotRow, pilot: Pilot, data: dict, *, source: str) -> bool:
    """Store ``data`` as the pilot's next version (audited), unless it is the current one."""
    config = json.dumps(data, sort_keys=True)
    if row.config == config:
        return False
    before = {"version": row.version, "config": json.loads(row.config)}
    row.name = pilot.name
    _store_version(uow, row, config, source=source)
    record(uow, "pilot.updated", row.id, stream=ORGANISER, before=before,
           after={"version": row.version, "source": source, "config": data})
    return True


def _store_version(uow: UnitOfWork, row: PilotRow, config: str, *, source: str) -> None:
    row.config, row.version = config, row.version + 1
    s = session(uow)
    s.add(row)
    s.add(PilotVersionRow(pilot_id=row.id, version=row.version, config=config, source=source,
                          changed_by=str(uow.actor), changed_at=dt.datetime.now(dt.UTC)))


def _insert(uow: UnitOfWork, pilot: Pilot, data: dict, *, source: str) -> None:
    s = session(uow)
    existing = s.get(PilotRow, pilot.id)
    if existing is not None:
        raise Conflict(f"pilot {pilot.id} exists already (from {existing.source})")
    now = dt.datetime.now(dt.UTC)
    config = json.dumps(data, sort_keys=True)
    s.add(PilotRow(id=pilot.id, name=pilot.name, config=config, source=source, added_at=now, version=1))
    s.flush()
    s.add(PilotVersionRow(pilot_id=pilot.id, version=1, config=config, source=source,
                          changed_by=str(uow.actor), changed_at=now))
    record(uow, "pilot.added", pilot.id, stream=ORGANISER,
           after={"id": pilot.id, "source": source, "version": 1})


def missing_plugins(uow: UnitOfWork, pilot: Pilot) -> list[str]:
    """Plugins the pilot's ``[plugins.<name>]`` sections name that are not loaded."""
    return pilot_config.unknown_sections({"plugins": dict(pilot.sections)}, config_sections(uow))


def require_plugins(uow: UnitOfWork, pilot: Pilot) -> None:
    """Refuse to act on a pilot whose rules live partly in a plugin that is not loaded:
    without it, budgets and checks would silently fall back to the defaults."""
    missing = missing_plugins(uow, pilot)
    if missing:
        raise Refused(f"pilot {pilot.id}: " + "; ".join(pilot_config.missing_plugin_message(m) for m in missing)
                      + "; without it the pilot's rules would silently fall back to the defaults",
                      [pilot_config.missing_plugin_message(m) for m in missing])


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
            _new_version(uow, row, pilot, data, source=origin)
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
    _store_version(uow, row, json.dumps(data, sort_keys=True), source=f"plugins.{section} set")
    record(uow, "pilot.updated", pilot_id, stream=ORGANISER, before={section: before, "version": row.version - 1},
           after={section: data["plugins"][section], "version": row.version})
    return Pilot.from_config(data)


def version_of(uow: UnitOfWork, pilot_id: str) -> int:
    """The current version of a pilot's configuration."""
    return session(uow).execute(select(PilotRow.version).where(PilotRow.id == pilot_id)).scalar_one()


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


def versions(uow: UnitOfWork, pilot_id: str) -> list[dict[str, Any]]:
    """Every version of a pilot's configuration: number, where from, who, when."""
    rows = session(uow).execute(select(PilotVersionRow).where(PilotVersionRow.pilot_id == pilot_id)
                                .order_by(PilotVersionRow.version)).scalars()
    return [{"version": r.version, "source": r.source, "changed_by": r.changed_by,
             "changed_at": r.changed_at.isoformat(timespec="seconds")} for r in rows]


def show(uow: UnitOfWork, pilot_id: str, *, version: int | None = None) -> dict[str, Any]:
    """A pilot's rules in words, its workflow options, its versions and warnings about its
    targets and about plugins its configuration needs that are not loaded. With
    ``version``, the rules of that version of its configuration."""
    check_actor(uow, "pilot.read")
    pilot = get(uow, pilot_id, field="ID")
    s = session(uow)
    current = s.get(PilotRow, pilot.id).version
    if version is not None and version != current:
        stored = s.get(PilotVersionRow, (pilot.id, version))
        if stored is None:
            raise NotFound(f"--version: pilot {pilot.id} has versions 1–{current}, not {version}")
        pilot = pilot_config.from_stored(stored.config)
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
    missing = missing_plugins(uow, pilot)
    warnings = [f"plugins.{name}: {pilot_config.missing_plugin_message(name)}; until then budget "
                "open-period is refused" for name in missing]
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
        "version": version or current,
        "current_version": current,
        "versions": versions(uow, pilot.id),
        "missing_plugins": missing,
        "clients": enrolled,
        "controls": controls,
        "rules": rules,
        "warnings": warnings,
        "workflow": {"confirm_receipt": options.confirm_receipt,
                     "invoice_approver": options.invoice_approver,
                     "commitment_days": options.commitment_days},
        "config": thaw(pilot.raw),
    }
