"""Recording the evaluation's data: responses to the instruments at the measurement
points, item by item, by a worker or from the survey service's export; and the time and
money spent per client. Every function is one use case in the caller's unit of work.

The instruments themselves come from plugins (``avain_evaluation_instruments``): each a
versioned JSON Schema of one response with its scoring; a pilot names the ones it uses in
pilot.toml (``[evaluation] instruments``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select

from ..domain import MEASUREMENT_POINTS, TIMELOG_ACTIVITIES, TIMELOG_MAX_MINUTES, Instrument, Pilot
from ..errors import NotFound, PermissionDenied, Refused, ValidationError
from ..models import ClientRow, SurveyResponseRow, SurveyScoreRow, TimeLogRow
from ..plugins import collect
from ..text import unsafe_message, unsafe_strings
from ..textfile import dialect, read_text
from ..uow import UnitOfWork
from . import pilots
from .common import check_actor, reach_client, record, session

ACTIVITIES = TIMELOG_ACTIVITIES
WHO = {"worker": "worker", "supervisor": "worker", "client": "client", "assistant": "assistant",
       "finance": "services"}
MAX_MINUTES = TIMELOG_MAX_MINUTES
#: Relationships longer than this (days) get interim measurements, unless the pilot says.
INTERIM_AFTER_DAYS = 180


def registry_of(pm) -> dict[str, Instrument]:
    """Every instrument the plugins of ``pm`` register, by name."""
    return {i.name: i for i in collect(pm, "avain_evaluation_instruments")}


def registry(uow: UnitOfWork) -> dict[str, Instrument]:
    return registry_of(uow.app.pm)


def pilot_instruments(pilot: Pilot) -> list[str]:
    return list(pilot.raw.get("evaluation", {}).get("instruments", ()))


def get_instrument(uow: UnitOfWork, name: str, *, field: str = "--instrument") -> Instrument:
    known = registry(uow)
    if name not in known:
        raise NotFound(f"{field}: no instrument {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    return known[name]


def list_instruments(uow: UnitOfWork) -> list[dict[str, Any]]:
    check_actor(uow, "pilot.read")
    used: dict[str, list[str]] = {}
    for p in pilots.list_pilots(uow):
        for name in pilot_instruments(pilots.get(uow, p["id"])):
            used.setdefault(name, []).append(p["id"])
    return [{"name": i.name, "version": i.version, "title": i.schema.get("title", i.name),
             "respondents": i.respondents, "points": list(i.points),
             "items": len(i.schema["properties"]), "scales": {k: len(v) for k, v in i.scales.items()},
             "scoring": i.schema["x-avain"].get("scoring", "mean"), "provisional": i.provisional,
             "pilots": used.get(i.name, [])}
            for i in sorted(registry(uow).values(), key=lambda i: i.name)]


def free_text_items(instrument: Instrument) -> set[str]:
    """Items whose answers are free text: kept in avain, never exported."""
    return {item for item, spec in instrument.schema["properties"].items()
            if spec.get("x-free-text") or (spec.get("type") == "string" and "enum" not in spec)}


_VALIDATORS: dict[tuple[str, str], tuple[dict, Draft202012Validator]] = {}


def _validator(instrument: Instrument) -> Draft202012Validator:
    key = (instrument.name, instrument.version)
    cached = _VALIDATORS.get(key)
    if cached is None or cached[0] is not instrument.schema:
        cached = _VALIDATORS[key] = (instrument.schema, Draft202012Validator(instrument.schema))
    return cached[1]


def validate(instrument: Instrument, answers: Mapping[str, Any]) -> list[str]:
    """Every problem of one response, each naming its item. A message repeats a number
    that is out of range, never a text: a misplaced name must not reach an error."""
    problems = []
    props = instrument.schema["properties"]
    for error in sorted(_validator(instrument).iter_errors(dict(answers)), key=lambda e: list(e.absolute_path)):
        kind, value = error.validator, error.instance
        if kind == "additionalProperties":
            problems += [f"{item}: not an item of {instrument.name}" for item in sorted(set(answers) - set(props))]
        elif kind == "minProperties":
            problems.append("answers: no item is answered")
        elif not error.absolute_path:
            problems.append(f"answers: {kind} not satisfied")
        else:
            item = error.absolute_path[0]
            spec = props.get(item, {})
            if kind in ("minimum", "maximum") and isinstance(value, int | float):
                bound = "less than the minimum" if kind == "minimum" else "greater than the maximum"
                problems.append(f"{item}: {value} is {bound} of {error.validator_value}")
            elif kind == "type":
                problems.append(f"{item}: not {TYPE_WORDS.get(spec.get('type'), spec.get('type'))}")
            elif kind == "enum":
                problems.append(f"{item}: not one of {', '.join(map(str, spec['enum']))}")
            elif kind == "maxLength":
                problems.append(f"{item}: longer than {error.validator_value} characters")
            else:
                problems.append(f"{item}: does not satisfy {kind}")
    return problems + [f"{item}: {unsafe_message(code)}" for item, code in unsafe_strings(dict(answers))]


TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "yes or no", "string": "text"}


def convert(instrument: Instrument, item: str, text: str) -> Any:
    """A CSV cell (or ``--answer`` value) as the item's type; ValueError with the reason."""
    spec = instrument.schema["properties"][item]
    kind = spec.get("type")
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("not a whole number") from None
    if kind == "number":
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            raise ValueError("not a number") from None
    if kind == "boolean":
        word = text.strip().lower()
        if word in ("true", "1", "yes", "kyllä", "k"):
            return True
        if word in ("false", "0", "no", "ei", "e"):
            return False
        raise ValueError("not yes or no")
    return text.strip()


# --- responses ------------------------------------------------------------------------------


def _stored(uow: UnitOfWork, instrument: str, codes: list[str]) -> dict[str, list[tuple[str, dt.date]]]:
    """The measurements already stored of ``instrument`` for ``codes``: (point, day) by client."""
    r = SurveyResponseRow.__table__.c
    found: dict[str, list[tuple[str, dt.date]]] = {}
    for i in range(0, len(codes), 5000):
        for code, point, day in uow.core_connection().execute(
                select(r.client_code, r.point, r.answered_on)
                .where(r.instrument == instrument, r.client_code.in_(codes[i:i + 5000]))):
            found.setdefault(code, []).append((point, day))
    return found


def _check_response(client: ClientRow, pilot: Pilot, instrument: Instrument, point: str, answered_on: dt.date,
                    stored: list[tuple[str, dt.date]]) -> list[str]:
    """What rules out this response before its answers are looked at, as (field: reason);
    ``stored`` are the client's measurements of the instrument already in the database."""
    if instrument.name not in pilot_instruments(pilot):
        return [f"instrument: pilot {pilot.id} does not use {instrument.name} (its instruments: "
                f"{', '.join(pilot_instruments(pilot)) or 'none'})"]
    problems = []
    if instrument.respondents == "hb" and client.control:
        problems.append(f"instrument: {instrument.name} is for HB clients only; {client.code} is a control")
    if instrument.respondents == "control" and not client.control:
        problems.append(f"instrument: {instrument.name} is for control clients only; {client.code} is an HB client")
    if point not in instrument.points:
        problems.append(f"point: {point!r} is not a measurement point of {instrument.name} "
                        f"({', '.join(instrument.points)})")
    interim_after = pilot.raw.get("evaluation", {}).get("interim_after_days", INTERIM_AFTER_DAYS)
    if point == "interim" and (answered_on - client.enrolled_on).days < interim_after:
        problems.append(f"point: an interim measurement is for relationships longer than {interim_after} days; "
                        f"{client.code}'s began on {client.enrolled_on.isoformat()}")
    if answered_on < client.enrolled_on:
        problems.append(f"answered_on: {answered_on.isoformat()} is before the enrolment "
                        f"({client.enrolled_on.isoformat()})")
    if answered_on > dt.date.today():
        problems.append(f"answered_on: {answered_on.isoformat()} is in the future")
    if problems:
        return problems
    return _order_problems(client.code, instrument.name, point, answered_on, stored)


def _order_problems(code: str, instrument: str, point: str, answered_on: dt.date,
                    others: list[tuple[str, dt.date]]) -> list[str]:
    """A second start or end, or points out of order (a start after the end, an interim
    outside them), against the client's other measurements of the instrument."""
    problems = []
    for other_point, other_day in others:
        if other_point == point and (point in ("start", "end") or other_day == answered_on):
            problems.append(f"point: {code} already has the {point} measurement of {instrument} "
                            f"({other_day.isoformat()})")
        order = MEASUREMENT_POINTS.index(point) - MEASUREMENT_POINTS.index(other_point)
        if (order > 0 and answered_on < other_day) or (order < 0 and answered_on > other_day):
            problems.append(f"answered_on: the {point} measurement on {answered_on.isoformat()} would come "
                            f"{'before' if order > 0 else 'after'} the {other_point} measurement on "
                            f"{other_day.isoformat()}")
    return problems


def _store(uow: UnitOfWork, client: ClientRow, instrument: Instrument, point: str, answered_on: dt.date,
           answers: Mapping[str, Any], source: str) -> dict[str, Any]:
    s = session(uow)
    row = SurveyResponseRow(client_code=client.code, pilot_id=client.pilot_id, instrument=instrument.name,
                            version=instrument.version, point=point, answered_on=answered_on,
                            answers=json.dumps(dict(answers), ensure_ascii=False, sort_keys=True), source=source,
                            recorded_by=str(uow.actor), recorded_at=dt.datetime.now(dt.UTC))
    s.add(row)
    s.flush()
    scores = instrument.score(answers)
    s.add_all(SurveyScoreRow(response_id=row.id, scale=scale, client_code=client.code,
                             instrument=instrument.name, point=point, value=value) for scale, value in scores.items())
    record(uow, "survey.recorded", client.code,
           after={"response": row.id, "instrument": instrument.name, "version": instrument.version,
                  "point": point, "answered_on": answered_on.isoformat(), "source": source})
    return {"id": row.id, "client": client.code, "instrument": instrument.name, "version": instrument.version,
            "point": point, "answered_on": answered_on.isoformat(), "scores": scores}


def record_response(uow: UnitOfWork, code: str, *, instrument: str, point: str, answered_on: dt.date,
                    answers: Mapping[str, Any]) -> dict[str, Any]:
    """A worker records a client's answers (from a paper form, say): validated item by
    item; every problem is named, and nothing is stored unless all is well."""
    client = reach_client(uow, code, "eval.record")
    inst = get_instrument(uow, instrument)
    options = {"instrument": "--instrument", "point": "--point", "answered_on": "--date"}
    checked = _check_response(client, pilots.get(uow, client.pilot_id), inst, point, answered_on,
                              _stored(uow, inst.name, [code]).get(code, []))
    problems = [options[field] + ":" + rest for field, rest in (p.split(":", 1) for p in checked)]
    problems += [f"--answer {p}" for p in validate(inst, answers)]
    if problems:
        raise ValidationError(problems[0] if len(problems) == 1 else
                              f"{len(problems)} problems in the response", problems)
    return _store(uow, client, inst, point, answered_on, answers, f"{uow.actor}")


# --- import from the survey service -----------------------------------------------------------

REQUIRED_COLUMNS = ("client", "point", "answered_on")


def _read_rows(path: Path, inst: Instrument) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(row number, record) pairs and the file-level problems. CSV: one row per response,
    columns client, point, answered_on and the items; JSON: a list of objects with those
    keys and ``answers``."""
    name = path.name
    try:
        text = read_text(path, expected="export the survey as UTF-8")
    except ValidationError as exc:
        return [], exc.errors
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [f"{name}, line {exc.lineno}: not JSON: {exc.msg}"]
        if not isinstance(data, list):
            return [], [f"{name}: expected a list of responses"]
        rows, problems = [], []
        for n, item in enumerate(data, 1):
            if not isinstance(item, dict):
                problems.append(f"{name}, response {n}: not an object")
                continue
            missing = [c for c in (*REQUIRED_COLUMNS, "answers") if c not in item]
            if missing:
                problems.append(f"{name}, response {n}: missing {', '.join(missing)}")
                continue
            rows.append((n, {"client": item["client"], "point": item["point"], "answered_on": item["answered_on"],
                             "answers": item["answers"]}))
        return rows, problems
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect(text))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS and c not in inst.schema["properties"]]
    problems = []
    if missing:
        problems.append(f"{name}: missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"{name}: columns that are not items of {inst.name}: {', '.join(unknown)}")
    if problems:
        return [], problems
    rows = []
    try:
        records = list(enumerate(reader, 2))
    except csv.Error as exc:
        return [], [f"{name}, line {reader.line_num}: not readable as CSV ({exc})"]
    for n, row in records:
        if None in row:
            problems.append(f"{name}, row {n}: more cells than columns")
            continue
        answers, bad = {}, []
        for item in (c for c in header if c not in REQUIRED_COLUMNS):
            cell = row.get(item)
            if cell is None or not cell.strip():
                continue  # not answered
            try:
                answers[item] = convert(inst, item, cell)
            except ValueError as exc:
                bad.append(f"{name}, row {n}, {item}: {exc}")
        problems += bad
        rows.append((n, {"client": (row.get("client") or "").strip(), "point": (row.get("point") or "").strip(),
                         "answered_on": (row.get("answered_on") or "").strip(), "answers": answers}))
    return rows, problems


def import_file(uow: UnitOfWork, path: Path, *, instrument: str,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Import the survey service's export of one instrument (CSV or JSON), keyed by client
    code. Every bad value is named with its row and field; nothing is imported unless
    every row is good. ``progress(done, total)``: each row counts twice, checked and stored."""
    check_actor(uow, "eval.record")
    inst = get_instrument(uow, instrument)
    path = Path(path)
    rows, problems = _read_rows(path, inst)
    s = session(uow)
    planned: list[tuple[ClientRow, str, dt.date, dict]] = []
    in_file: dict[str, list[tuple[str, dt.date]]] = {}
    stored = _stored(uow, inst.name, sorted({str(item["client"]) for _, item in rows}))
    pilot_of: dict[str, Pilot] = {}
    tick = progress or (lambda done, total: None)
    for checked, (n, item) in enumerate(rows, start=1):
        tick(checked, 2 * len(rows))
        where = f"{path.name}, row {n}" if path.suffix.lower() != ".json" else f"{path.name}, response {n}"
        code = str(item["client"])
        client = s.get(ClientRow, code)
        if client is None:
            problems.append(f"{where}, client: no such client code")
            continue
        try:
            reach_client(uow, code, "eval.record")
        except PermissionDenied:
            problems.append(f"{where}, client: {code} is not in your scope")
            continue
        try:
            day = dt.date.fromisoformat(str(item["answered_on"]))
        except ValueError:
            problems.append(f"{where}, answered_on: not a date like 2018-01-31")
            continue
        point = str(item["point"])
        answers = item["answers"] if isinstance(item["answers"], dict) else {}
        if not isinstance(item["answers"], dict):
            problems.append(f"{where}, answers: not an object")
        if client.pilot_id not in pilot_of:
            pilot_of[client.pilot_id] = pilots.get(uow, client.pilot_id)
        row_problems = _check_response(client, pilot_of[client.pilot_id], inst, point, day, stored.get(code, []))
        row_problems += validate(inst, answers)
        if point in MEASUREMENT_POINTS:  # against the client's earlier rows of this file
            row_problems += [p.replace("already has", "has, earlier in the file,", 1)
                             for p in _order_problems(code, inst.name, point, day, in_file.get(code, []))]
        in_file.setdefault(code, []).append((point, day))
        problems += [f"{where}, {p}" for p in row_problems]
        if not row_problems:
            planned.append((client, point, day, answers))
    if problems:
        many = "problem" if len(problems) == 1 else "problems"
        summary = f"{path.name}: nothing was imported ({len(problems)} {many})"
        raise ValidationError(summary, [*problems, summary])
    stored = []
    for c, point, day, answers in planned:
        stored.append(_store(uow, c, inst, point, day, answers, f"import {path.name}"))
        tick(len(rows) + len(stored), 2 * len(rows))
    return {"file": path.name, "instrument": inst.name, "imported": len(stored),
            "responses": [r["id"] for r in stored]}


# --- time and cost ------------------------------------------------------------------------------


def log_time(uow: UnitOfWork, code: str, *, activity: str, on_date: dt.date, minutes: int = 0,
             cost: int = 0) -> dict[str, Any]:
    """Log time (and money) spent on a client: a worker's or supervisor's minutes per
    activity, the client's own time arranging services, an HB assistant's time and costs,
    or finance's record of a client's usual services (their cost)."""
    actor = check_actor(uow, "eval.timelog")
    client = reach_client(uow, code, "eval.timelog")
    who = WHO[actor.role]
    if activity not in ACTIVITIES[who]:
        raise ValidationError(f"--activity: {activity!r} is not an activity of a {actor.role} "
                              f"(one of {', '.join(ACTIVITIES[who])})")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_MINUTES:
        raise ValidationError(f"--minutes: a whole number from 0 to {MAX_MINUTES}")
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ValidationError("--cost: an amount of zero or more")
    if not minutes and not cost:
        raise ValidationError("--minutes: give the time spent (or --cost for a cost)")
    if who == "services" and not cost:
        raise ValidationError("--cost: usual services are logged by their cost")
    if on_date < client.enrolled_on or on_date > dt.date.today():
        raise ValidationError(f"--date: {on_date.isoformat()} is outside {code}'s relationship "
                              f"(from {client.enrolled_on.isoformat()} to today)")
    if client.ended_on is not None and on_date > client.ended_on:
        raise Refused(f"{code}'s client relationship ended on {client.ended_on.isoformat()}")
    row = TimeLogRow(client_code=code, pilot_id=client.pilot_id, who=who, person=str(actor), activity=activity,
                     on_date=on_date, minutes=minutes, cost=cost, recorded_at=dt.datetime.now(dt.UTC))
    s = session(uow)
    s.add(row)
    s.flush()
    record(uow, "time.logged", code, after={"id": row.id, "who": who, "activity": activity,
                                             "on_date": on_date.isoformat(), "minutes": minutes, "cost": cost})
    return {"id": row.id, "client": code, "who": who, "activity": activity, "on_date": on_date.isoformat(),
            "minutes": minutes, "cost": cost}


def responses_of(uow: UnitOfWork, code: str) -> list[dict[str, Any]]:
    """A client's recorded responses with their scores (for the worker and the client)."""
    reach_client(uow, code, "client.read")
    s = session(uow)
    rows = s.execute(select(SurveyResponseRow).where(SurveyResponseRow.client_code == code)
                     .order_by(SurveyResponseRow.answered_on, SurveyResponseRow.id)).scalars().all()
    scores: dict[int, dict[str, float]] = {}
    for sc in s.execute(select(SurveyScoreRow).where(SurveyScoreRow.client_code == code)).scalars():
        scores.setdefault(sc.response_id, {})[sc.scale] = sc.value
    return [{"id": r.id, "instrument": r.instrument, "version": r.version, "point": r.point,
             "answered_on": r.answered_on.isoformat(), "scores": scores.get(r.id, {})} for r in rows]

