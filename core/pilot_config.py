"""pilot.toml: parse, compose the schema with the plugins' sections, validate, convert.

Every error is reported at once, each with the file and the key path, in the form
``pilot.toml: budget.monthly_cap: -5 is less than the minimum of 0``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen
from stdnum import iban
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumError

from .domain import ConfigSection, Pilot
from .errors import ConfigError
from .schema_words import in_words
from .text import unsafe_message, unsafe_strings

if TYPE_CHECKING:  # pragma: no cover
    import jsonschema


@frozen
class Problem:
    """One problem of a configuration: the key path (``budget.monthly_cap``; empty for the
    file as a whole) and what is wrong."""

    path: str
    message: str

    def line(self, source: str) -> str:
        return f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"


@cache
def core_schema() -> dict:
    return json.loads((files("avain.core") / "pilot.schema.json").read_text(encoding="utf-8"))


def composed_schema(sections: list[ConfigSection]) -> dict:
    """The core schema with each plugin's section under ``plugins.<name>``."""
    schema = copy.deepcopy(core_schema())
    props = schema["properties"]["plugins"]["properties"]
    for section in sections:
        props[section.name] = section.schema
    return schema


def _plain(value: Any) -> Any:
    """TOML dates become ISO strings, so the schema (and JSON storage) sees one form."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts)


def _whole_number(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator_class():
    """Draft 2020-12 counts 400.0 as an integer; TOML tells the two apart, and so must we:
    amounts are integer cents, and a float reaching Money would be refused without a path.
    Built when a file is first validated: a command that only reads stored pilots never
    imports jsonschema."""
    import jsonschema

    return jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _whole_number))


def unknown_sections(data: dict, sections: list[ConfigSection]) -> list[str]:
    """Names of the ``[plugins.<name>]`` sections no loaded plugin reads: a pilot whose
    rules live in a plugin that is not loaded would silently fall back to the defaults."""
    plugins = data.get("plugins")
    if not isinstance(plugins, dict):
        return []
    known = {section.name for section in sections}
    return sorted(name for name in plugins if name not in known)


def missing_plugin_message(name: str) -> str:
    return (f"no loaded plugin reads [plugins.{name}]: install the plugin {name} "
            "(and list it in AVAIN_LOAD_PLUGINS if that is set)")


def _ibans(value: Any, path: tuple[str, ...] = ()):
    """(path, value) of every string under a key that names an IBAN."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and "iban" in str(key).lower():
                yield ".".join((*path, str(key))), item
            else:
                yield from _ibans(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _ibans(item, (*path, str(i)))


def _iban_problem(value: str) -> str | None:
    try:
        iban.validate(value)
    except InvalidChecksum:
        return "not a valid IBAN (the check digits do not match)"
    except StdnumError:
        return "not a valid IBAN (wrong country code, length or characters)"
    return None


def problems(data: dict, sections: list[ConfigSection], *,
             known_services: set[str] | None = None) -> list[Problem]:
    """Every schema and cross-field problem of ``data``, each with its key path: the schema
    (a plugin's section that no loaded plugin reads is named as such, not as a stray key),
    duplicate group ids and codes, IBANs that fail their checksum, and — when
    ``known_services`` is given — services nobody knows."""
    from jsonschema import Draft202012Validator

    validator = _validator_class()(composed_schema(sections), format_checker=Draft202012Validator.FORMAT_CHECKER)
    missing = unknown_sections(data, sections)
    checked = data
    if missing:  # validate the rest as if those sections were absent
        checked = {**data, "plugins": {k: v for k, v in data["plugins"].items() if k not in missing}}
    found = [Problem(_path(err), in_words(err)) for err in sorted(
        validator.iter_errors(checked), key=lambda e: (list(map(str, e.absolute_path)), e.message))]
    found += [Problem(f"plugins.{name}", missing_plugin_message(name)) for name in missing]
    found += [Problem(path, unsafe_message(code)) for path, code in unsafe_strings(data)]
    groups = data.get("groups") if isinstance(data.get("groups"), list) else []
    for key in ("id", "code"):
        seen: set[str] = set()
        for i, group in enumerate(groups):
            value = group.get(key) if isinstance(group, dict) else None
            if value in seen:
                found.append(Problem(f"groups.{i}.{key}", f"{value!r} is used by another group"))
            if value is not None:
                seen.add(value)
    for path, value in _ibans(data):
        problem = _iban_problem(value)
        if problem:
            found.append(Problem(path, problem))
    services = data.get("services")
    if known_services is not None and isinstance(services, list):
        for i, code in enumerate(services):
            if isinstance(code, str) and code not in known_services:
                found.append(Problem(f"services.{i}", f"{code!r} is a service no loaded plugin and no "
                                                      "catalogue import knows"))
    return sorted(found, key=lambda p: (p.path.split("."), p.message))


def validate(data: dict, sections: list[ConfigSection], *, source: str,
             known_services: set[str] | None = None) -> list[str]:
    """All problems of ``data`` as lines prefixed with ``source``."""
    return [p.line(source) for p in problems(data, sections, known_services=known_services)]


def config_error(found: list[Problem], source: str) -> ConfigError:
    lines = [p.line(source) for p in found]
    return ConfigError("\n".join(lines), lines, [{"path": p.path, "message": p.message} for p in found])


def parse_text(text: str, sections: list[ConfigSection], *, source: str,
               known_services: set[str] | None = None) -> tuple[Pilot, dict]:
    """Parse and validate TOML text; returns the Pilot and its plain (JSON-able) data."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise config_error([Problem("", f"not valid TOML: {exc}")], source) from exc
    data = _plain(raw)
    found = problems(data, sections, known_services=known_services)
    if found:
        raise config_error(found, source)
    return Pilot.from_config(data), data


def load_file(path: str | Path, sections: list[ConfigSection], *,
              known_services: set[str] | None = None) -> tuple[Pilot, dict]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise config_error([Problem("", "no such file")], str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise config_error([Problem("", f"cannot be read: {exc}")], str(path)) from exc
    return parse_text(text, sections, source=str(path), known_services=known_services)


def from_stored(config_json: str) -> Pilot:
    """A pilot from the database: it was validated when stored."""
    return Pilot.from_config(json.loads(config_json))
