"""The questionnaires as data: each a versioned JSON Schema of one response (item ids,
types and scales) with an ``x-avain`` member naming its respondents, measurement points,
summary scales and scoring. Loaded from ``instruments/*.json``; a pilot plugin ships its
own the same way (Hämeenlinna's Kompassi).

Scoring is by name:

``mean``
    each scale is the mean of its answered items, in the items' own units;
``rescaled-mean``
    each answered item is rescaled to 0–10 (its minimum to 0, its maximum to 10) and the
    scale is their mean: avain's provisional stand-in where the instrument's own formula
    is not public (Kykyviisari's feedback, Kompassi);
``none``
    categorical data (the ESR forms): no scale scores.

A scale needs at least half its items answered; otherwise it has no score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from avain.core.domain import MEASUREMENT_POINTS, Instrument
from avain.core.errors import PluginError

PROVISIONAL = {"rescaled-mean"}


def _numeric(schema: dict, item: str) -> tuple[float, float] | None:
    spec = schema["properties"].get(item, {})
    if spec.get("type") == "integer" and "minimum" in spec and "maximum" in spec:
        return float(spec["minimum"]), float(spec["maximum"])
    return None


def scorer(schema: dict) -> Callable[[Mapping[str, Any]], dict[str, float]]:
    """The scoring function the schema's ``x-avain.scoring`` names."""
    meta = schema["x-avain"]
    how = meta.get("scoring", "mean")
    scales: dict[str, list[str]] = meta.get("scales", {})
    if how == "none":
        return lambda answers: {}
    if how not in ("mean", "rescaled-mean"):
        raise PluginError(f"instrument {schema.get('title')}: unknown scoring {how!r} (mean, rescaled-mean, none)")
    bounds = {item: _numeric(schema, item) for items in scales.values() for item in items}

    def score(answers: Mapping[str, Any]) -> dict[str, float]:
        out = {}
        for scale, items in scales.items():
            values = []
            for item in items:
                value = answers.get(item)
                if value is None or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                if how == "rescaled-mean":
                    low, high = bounds[item]
                    value = (value - low) / (high - low) * 10
                values.append(float(value))
            if values and len(values) * 2 >= len(items):
                out[scale] = round(sum(values) / len(values), 4)
        return out

    return score


def check_schema(schema: dict, where: str) -> None:
    """An instrument file is a valid JSON Schema whose scales name its own numeric items."""
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:  # jsonschema.SchemaError
        raise PluginError(f"{where}: not a valid JSON Schema: {getattr(exc, 'message', exc)}") from exc
    meta = schema.get("x-avain")
    if not isinstance(meta, dict) or "version" not in meta:
        raise PluginError(f"{where}: no x-avain member with the instrument's version")
    points = meta.get("points", MEASUREMENT_POINTS)
    if not points or set(points) - set(MEASUREMENT_POINTS):
        raise PluginError(f"{where}: x-avain.points must be among {', '.join(MEASUREMENT_POINTS)}")
    if meta.get("respondents", "all") not in ("all", "hb", "control"):
        raise PluginError(f"{where}: x-avain.respondents must be all, hb or control")
    for scale, items in meta.get("scales", {}).items():
        for item in items:
            if _numeric(schema, item) is None:
                raise PluginError(f"{where}: scale {scale!r} names {item!r}, which is not a bounded integer item")


@lru_cache(maxsize=64)
def load(path: Path, name: str | None = None) -> Instrument:
    """The instrument in the JSON file ``path`` (its name: the file name without .json).
    Read and checked once per process: the files are part of the installed package."""
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    check_schema(schema, str(path))
    meta = schema["x-avain"]
    return Instrument(name or Path(path).stem, schema, scorer(schema),
                      provisional=meta.get("scoring") in PROVISIONAL, description=schema.get("description", ""))


@lru_cache(maxsize=8)
def load_dir(folder: Path) -> tuple[Instrument, ...]:
    return tuple(load(p) for p in sorted(Path(folder).glob("*.json")))
