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
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from .domain import ConfigSection, Pilot
from .errors import ConfigError
from .schema_words import in_words


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


def validate(data: dict, sections: list[ConfigSection], *, source: str) -> list[str]:
    """All schema and cross-field errors of ``data``, each prefixed with ``source``."""
    validator = Draft202012Validator(
        composed_schema(sections), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = []
    for err in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        path = _path(err)
        errors.append(f"{source}: {path}: {in_words(err)}" if path else f"{source}: {in_words(err)}")
    groups = data.get("groups") if isinstance(data.get("groups"), list) else []
    for key in ("id", "code"):
        seen: set[str] = set()
        for i, group in enumerate(groups):
            value = group.get(key) if isinstance(group, dict) else None
            if value in seen:
                errors.append(f"{source}: groups.{i}.{key}: {value!r} is used by another group")
            if value is not None:
                seen.add(value)
    return errors


def parse_text(text: str, sections: list[ConfigSection], *, source: str) -> tuple[Pilot, dict]:
    """Parse and validate TOML text; returns the Pilot and its plain (JSON-able) data."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    data = _plain(raw)
    errors = validate(data, sections, source=source)
    if errors:
        raise ConfigError("\n".join(errors), errors)
    return Pilot.from_config(data), data


def load_file(path: str | Path, sections: list[ConfigSection]) -> tuple[Pilot, dict]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    return parse_text(text, sections, source=str(path))


def from_stored(config_json: str) -> Pilot:
    """A pilot from the database: it was validated when stored."""
    return Pilot.from_config(json.loads(config_json))
