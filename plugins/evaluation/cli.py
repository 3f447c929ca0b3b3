"""``avain eval …``: instruments, responses, time and cost, the report and the export."""

from __future__ import annotations

import json
from pathlib import Path

import click

from avain.core.cli.lazy import lazy_module
from avain.core.cli.output import emit, json_option, progress_bar, render_table
from avain.core.cli.params import DATE, MONEY_ANY
from avain.core.cli.state import state
from avain.core.domain import TIMELOG_ACTIVITIES, TIMELOG_MAX_MINUTES
from avain.core.errors import ValidationError

# The services, the statistics (scipy) and the charts (matplotlib): imported when a command
# that uses them runs, not for `avain eval --help` or another command.
service = lazy_module("avain.core.services.evaluation")
pilots = lazy_module("avain.core.services.pilots")
export_mod = lazy_module("avain.plugins.evaluation.export")
figures = lazy_module("avain.plugins.evaluation.figures")
report_mod = lazy_module("avain.plugins.evaluation.report")


@click.group("eval")
def evaluation() -> None:
    """The evaluation: instruments and responses, time and cost, reports and the export."""


@evaluation.command("instruments")
@json_option
def instruments(as_json):
    """The questionnaires the plugins register, and the pilots that use each."""
    data = state().read(service.list_instruments)
    for d in data:
        d["scales_text"] = ", ".join(f"{k} ({n})" for k, n in d["scales"].items()) or "—"
        d["pilots_text"] = ", ".join(d["pilots"]) or "—"
    emit(data if not as_json else [{k: v for k, v in d.items() if not k.endswith("_text")} for d in data], as_json,
         render_table(["name", "version", "respondents", "points", "items", "scales", "scoring", "pilots"],
                      ["name", "version", "respondents", "points", "items", "scales_text", "scoring", "pilots_text"],
                      "Instruments"))


def _answers(instrument: str, pairs: tuple[str, ...], file: Path | None) -> dict:
    if file is not None:
        try:
            data = json.loads(file.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"--answers: {file} is not UTF-8 JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError(f"--answers: {file} must hold one object of item: value")
        return data
    inst = state().read(service.get_instrument, instrument)
    answers, problems = {}, []
    for pair in pairs:
        item, sep, value = pair.partition("=")
        if not sep:
            problems.append(f"--answer: {pair!r} is not ITEM=VALUE")
        elif item not in inst.schema["properties"]:
            problems.append(f"--answer {item}: not an item of {instrument}")
        else:
            try:
                answers[item] = service.convert(inst, item, value)
            except ValueError as exc:
                problems.append(f"--answer {item}: {exc}")
    if problems:
        raise ValidationError(problems[0], problems)
    return answers


@evaluation.command("record")
@click.argument("code")
@click.option("--instrument", required=True, help="The instrument's name (see `avain eval instruments`).")
@click.option("--point", required=True, type=click.Choice(["start", "interim", "end"]), help="Measurement point.")
@click.option("--date", "answered_on", required=True, type=DATE, help="The day the client answered.")
@click.option("--answer", "pairs", multiple=True, metavar="ITEM=VALUE", help="One answer (repeatable).")
@click.option("--answers", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON file of {item: value} instead of --answer.")
@json_option
def record_cmd(code, instrument, point, answered_on, pairs, file, as_json):
    """Record a client's answers to an instrument at a measurement point."""
    if bool(pairs) == (file is not None):
        raise click.UsageError("give --answer ITEM=VALUE (repeatable) or --answers FILE, one of them")
    answers = _answers(instrument, pairs, file)
    data = state().run(service.record_response, code, instrument=instrument, point=point,
                       answered_on=answered_on, answers=answers)
    emit(data, as_json, lambda c, d: c.print(
        f"{d['client']}: {d['instrument']} {d['point']} recorded (response {d['id']}); scores: "
        + (", ".join(f"{k} {v}" for k, v in d["scores"].items()) or "none"), markup=False, soft_wrap=True))


@evaluation.command("responses")
@click.argument("code")
@json_option
def responses(code, as_json):
    """A client's recorded responses and their scale scores."""
    data = state().read(service.responses_of, code)
    for d in data:
        d["scores_text"] = ", ".join(f"{k} {v}" for k, v in d["scores"].items()) or "—"
    emit(data if not as_json else [{k: v for k, v in d.items() if k != "scores_text"} for d in data], as_json,
         render_table(["id", "instrument", "version", "point", "answered", "scores"],
                      ["id", "instrument", "version", "point", "answered_on", "scores_text"], f"Responses of {code}"))


@evaluation.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--instrument", required=True, help="The instrument the file holds answers to.")
@json_option
def import_cmd(file, instrument, as_json):
    """Import the survey service's export (CSV or JSON), keyed by client code: all rows or none."""
    with progress_bar(f"importing {file.name}") as progress:
        data = state().run(service.import_file, file, instrument=instrument, progress=progress)
    emit(data, as_json, lambda c, d: c.print(f"{d['file']}: {d['imported']} {d['instrument']} responses imported",
                                             markup=False))


@evaluation.command("timelog")
@click.argument("code")
@click.option("--activity", required=True,
              help="What the time went to: " + "; ".join(f"{who}: {', '.join(acts)}"
                                                        for who, acts in TIMELOG_ACTIVITIES.items()) + ".")
@click.option("--date", "on_date", required=True, type=DATE, help="The day.")
@click.option("--minutes", type=click.IntRange(0, TIMELOG_MAX_MINUTES), default=0, help="Minutes spent.")
@click.option("--cost", type=MONEY_ANY, help="Money spent, in euros (an assistant's costs, usual services).")
@json_option
def timelog(code, activity, on_date, minutes, cost, as_json):
    """Log time (and money) spent on a client: yours, as worker, client, assistant or finance."""
    data = state().run(service.log_time, code, activity=activity, on_date=on_date, minutes=minutes,
                       cost=cost.cents if cost is not None else 0)
    emit(data, as_json, lambda c, d: c.print(f"{d['client']}: {d['minutes']} min of {d['activity']} logged "
                                             f"({d['who']})", markup=False))


@evaluation.command("report")
@click.option("--pilot", "pilot_ids", multiple=True, help="A pilot (repeatable).")
@click.option("--all", "all_pilots", is_flag=True, help="Every pilot.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.html, report.json and charts/.")
@json_option
def report(pilot_ids, all_pilots, out_dir, as_json):
    """Write the evaluation report: HTML with charts, and its JSON twin."""
    if bool(pilot_ids) == all_pilots:
        raise click.UsageError("give --pilot ID (repeatable) or --all")
    st = state()
    chosen = list(pilot_ids) or st.read(figures.reportable_pilots)
    for pid in chosen:
        st.read(pilots.get, pid)
    # On PostgreSQL in a transaction, so the per-client rows stream from a server-side
    # cursor; on SQLite read-only, so the report never holds up a writer.
    app = st.app()
    with progress_bar("evaluation report") as progress:
        progress(0, len(chosen))
        data = (st.run if app.engine.dialect.name == "postgresql" else st.read)(figures.compute, chosen)
        done = report_mod.write(data, out_dir, progress)
    emit(done, as_json, lambda c, d: c.print(f"report of {', '.join(d['pilots'])}: {d['html']} ({d['charts']} charts) "
                                             f"and {d['json']}", markup=False, soft_wrap=True))


@evaluation.command("export")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder for the CSV files.")
@click.option("--pilot", "pilot_ids", multiple=True, help="Only this pilot (repeatable); default all.")
@json_option
def export(out_dir, pilot_ids, as_json):
    """Pseudonymous CSV files of your pilot for the evaluators (--as evaluator:ID)."""
    data = state().run(export_mod.export, out_dir, pilot_ids=list(pilot_ids) or None)
    emit(data, as_json, lambda c, d: c.print(
        f"{d['clients']} clients exported to {d['out']}: "
        + ", ".join(f"{k} {v}" for k, v in d["files"].items()), markup=False, soft_wrap=True))


COMMANDS = [evaluation]
