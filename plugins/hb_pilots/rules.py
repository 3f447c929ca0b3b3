"""Eligibility as settings: the age limits and need-assessment facts a pilot asks of its
clients, for the whole pilot and per client group.

A pilot's section (``[plugins.<name>]`` in pilot.toml) holds::

    age = { min = 18 }                       # judged on the day of the enrolment
    facts = { family = ["yes"] }             # the assessment must say one of these
    [plugins.<name>.groups.carers]
    age = { max = 20 }
    facts = { carer_contract = ["yes"] }

Settings of a group add to the pilot's (a group's age limit replaces the pilot's). The
reasons name the fact and the values that would do, so the worker knows what to give with
``avain client enroll --assess KEY=VALUE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from avain.core.domain import Applicant, ConfigSection, Pilot, PilotSource, Worker
from avain.core.errors import ValidationError
from avain.core.hookspecs import hookimpl

_AGE = {
    "type": "object",
    "additionalProperties": False,
    "description": "Age limits in whole years on the day of the enrolment (the client's birth date comes from "
                   "the henkilötunnus).",
    "properties": {
        "min": {"type": "integer", "minimum": 0, "maximum": 120, "description": "At least this old."},
        "max": {"type": "integer", "minimum": 0, "maximum": 120, "description": "At most this old (under max + 1)."},
    },
}
_FACTS = {
    "type": "object",
    "description": "Need-assessment facts the client must have: each key one of the listed values.",
    "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
}


def schema(description: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of a pilot plugin's section: the shared eligibility settings plus
    the plugin's own ``extra`` properties."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": description,
        "properties": {
            "age": _AGE,
            "facts": _FACTS,
            "groups": {
                "type": "object",
                "description": "Settings per client group id, added to the pilot's.",
                "additionalProperties": {"type": "object", "additionalProperties": False,
                                         "properties": {"age": _AGE, "facts": _FACTS}},
            },
            **(extra or {}),
        },
    }


def age_on(birth: dt.date, day: dt.date) -> int:
    """Whole years on ``day`` (a birthday on 29 February counts on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _value(assessment: Mapping[str, Any], key: str) -> str:
    return str(assessment.get(key, "")).strip().lower()


def eligibility(settings: Mapping[str, Any], client: Applicant, assessment: Mapping[str, Any]) -> list[str]:
    """The reasons ``client`` is not eligible under ``settings`` (a pilot's section)."""
    group = (settings.get("groups") or {}).get(client.group_id, {})
    reasons = []
    age = group.get("age", settings.get("age"))
    if age:
        day = client.on_date or dt.date.today()
        if client.birth_date is None:
            reasons.append("the age cannot be read from this henkilötunnus")
        else:
            years = age_on(client.birth_date, day)
            if "min" in age and years < age["min"]:
                reasons.append(f"the client must be at least {age['min']} on {day.isoformat()} (is {years})")
            if "max" in age and years > age["max"]:
                reasons.append(f"the client must be under {age['max'] + 1} on {day.isoformat()} (is {years})")
    facts = {**(settings.get("facts") or {}), **(group.get("facts") or {})}
    for key, allowed in sorted(facts.items()):
        if _value(assessment, key) not in {a.lower() for a in allowed}:
            said = _value(assessment, key)
            reasons.append(f"the need assessment must give {key} as {' or '.join(allowed)}"
                           + (f" (it says {said})" if said else f" (give --assess {key}={allowed[0]})"))
    return reasons


def in_words(settings: Mapping[str, Any], pilot: Pilot) -> list[str]:
    """The eligibility settings as sentences, for ``avain pilot show``."""
    out = []

    def said(where: str, part: Mapping[str, Any]) -> None:
        age = part.get("age") or {}
        if age:
            limits = [f"at least {age['min']}" if "min" in age else "",
                      f"under {age['max'] + 1}" if "max" in age else ""]
            out.append(f"{where}: aged {' and '.join(x for x in limits if x)} on the day of the enrolment")
        for key, allowed in sorted((part.get("facts") or {}).items()):
            out.append(f"{where}: the need assessment gives {key} = {' or '.join(allowed)}")

    said("every client", settings)
    for g in pilot.groups:
        said(f"group {g.id}", (settings.get("groups") or {}).get(g.id, {}))
    return out


def worker_number_code(pilot: Pilot, worker: Worker, ordinal: int) -> str:
    """Kainuu's client numbers: the worker's code 01–09 and the worker's running number,
    ``<pilot code>-<worker code><ordinal:02>`` (e.g. ``KO-0312``: worker 03's 12th client)."""
    if not (len(worker.code) == 2 and "01" <= worker.code <= "09"):
        raise ValidationError(f"--worker: pilot {pilot.id} numbers clients by worker codes 01–09; "
                              f"{worker.id} has code {worker.code}")
    if ordinal > 99:
        raise ValidationError(f"--worker: {worker.id} has 99 clients in pilot {pilot.id}, the most a "
                              "two-digit client number holds")
    return f"{pilot.code}-{worker.code}{ordinal:02d}"


class PilotPlugin:
    """A pilot as a plugin: its ``pilot.toml``, its section's schema, and the eligibility
    settings of that section applied and described. A pilot's module makes one (a subclass
    adds hookimpls data can't express) and its entry point names it."""

    def __init__(self, module: str, pilot_id: str, section: str, toml: str, description: str,
                 extra_schema: Mapping[str, Any] | None = None):
        self.__name__ = module  # what `avain plugin list` shows
        self.pilot_id, self.section, self.toml, self.description = pilot_id, section, toml, description
        self.extra_schema = dict(extra_schema or {})

    def settings(self, pilot: Pilot) -> Mapping[str, Any] | None:
        """The section, when ``pilot`` has it: a copy of this pilot.toml under another id
        gets the same rules without a code change."""
        return pilot.sections.get(self.section)

    @hookimpl
    def avain_pilots(self):
        return [PilotSource(self.pilot_id, self.toml)]

    @hookimpl
    def avain_config_sections(self):
        return [ConfigSection(self.section, schema(self.description, self.extra_schema), self.description)]

    @hookimpl
    def avain_check_eligibility(self, pilot, client, assessment):
        settings = self.settings(pilot)
        return None if settings is None else eligibility(settings, client, assessment)

    @hookimpl
    def avain_pilot_rules(self, pilot):
        settings = self.settings(pilot)
        return None if settings is None else in_words(settings, pilot)


class WorkerNumberedPilot(PilotPlugin):
    """A pilot whose client numbers are formed from the worker codes 01–09 (Kainuu's
    practice): the eligibility settings as in :class:`PilotPlugin`, plus the code rule."""

    @hookimpl
    def avain_client_code(self, pilot, client, worker, ordinal):
        return None if self.settings(pilot) is None else worker_number_code(pilot, worker, ordinal)

    @hookimpl
    def avain_pilot_rules(self, pilot):
        words = PilotPlugin.avain_pilot_rules(self, pilot)
        if words is None:
            return None
        return [*words, "client numbers: the worker's code 01–09 and their running number (e.g. "
                        f"{pilot.code}-0312: worker 03's 12th client)"]
