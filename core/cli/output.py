"""Output conventions: exactly one JSON document on stdout with ``--json``, rich tables
for people otherwise, notices and progress on stderr."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import i18n
from ..i18n import _, ngettext
from ..text import for_terminal, unsafe

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


class SafeConsole(Console):
    """A rich console that never passes a control or direction character of the text it is
    given to the terminal: stored text (a proposal's, a provider's name, a message) is shown
    with such characters as visible escapes (``\\x1b``), whenever it was stored."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(for_terminal(text), **options)


def stdout_console() -> Console:
    return SafeConsole(file=sys.stdout, soft_wrap=False, width=_width())


def stderr_console() -> Console:
    return SafeConsole(file=sys.stderr, width=_width())


def dumps(data: Any) -> str:
    """One JSON document for stdout: control and direction characters inside its strings
    are ``\\uXXXX`` escapes (JSON escapes C0 itself; C1 and the bidi controls it would not)."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if not any(unsafe(c) for c in text if c not in "\n"):
        return text
    return "".join(f"\\u{ord(c):04x}" if c != "\n" and unsafe(c) else c for c in text)


def echo(message: str, *, err: bool = False) -> None:
    """``click.echo`` of a line avain composed around stored or typed text: control and
    direction characters shown as escapes."""
    click.echo(for_terminal(str(message)), err=err)


def _width() -> int | None:
    import shutil

    return max(shutil.get_terminal_size((120, 24)).columns, 100)


def emit(data: Any, as_json: bool, render: Callable[[Console, Any], None]) -> None:
    if as_json:
        click.echo(dumps(data))
    else:
        render(stdout_console(), data)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          whole: Sequence[int] = ()) -> Table:
    """A rich table; the columns at the indexes ``whole`` are never wrapped or cut, the
    others wrap but are never cut either."""
    rows = [["" if v is None else for_terminal(str(v)) for v in row] for row in rows]
    t = Table(title=title, show_lines=False, header_style="bold")
    for i, col in enumerate(columns):
        if i in whole:
            widest = max([len(col), *(len(r[i]) for r in rows)])
            t.add_column(col, no_wrap=True, min_width=widest)
        else:
            t.add_column(col, overflow="fold")  # a long word wraps, never ends in "…"
    for row in rows:
        t.add_row(*(Text(v) for v in row))  # stored text is never read as rich markup
    return t


def render_table(columns: Sequence[str], keys: Sequence[str], title: str | None = None, *,
                 money: Sequence[str] = (), whole: Sequence[str] = ()):
    """A renderer for a list of dicts as one table. ``money``: keys holding cents, shown as
    euros in the output's language (``1 234,50 €``, ``€1,234.50``); ``whole``: keys
    operators type (codes), never wrapped or cut. Dates are written in the output's
    language too (``31.1.2018``, ``2018-01-31``)."""

    def render(console: Console, data: list[dict]) -> None:
        if not data:
            console.print(_("(no {what})").format(what=title.lower() if title else _("rows")))
            return
        rows = ([_money(d.get(k)) if k in money else _cell(_localised(d, k)) for k in keys] for d in data)
        console.print(table(title, columns, rows, whole=[i for i, k in enumerate(keys) if k in whole]))

    return render


def _money(cents: Any) -> str:
    return "" if cents is None else i18n.money(int(cents))


def _localised(row: dict, key: str) -> Any:
    """A service's ``*_fi`` display field in the output's language: ``amount_fi`` from the
    cents in ``amount``, ``service_fi`` as ``service_sv`` or ``service_en`` when there is one."""
    if key.endswith("_fi"):
        base = row.get(key[:-3])
        if isinstance(base, int) and not isinstance(base, bool):
            return i18n.money(base)
        other = row.get(f"{key[:-3]}_{i18n.language()}")
        if other:
            return other
    return row.get(key)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _cell(value: Any) -> str:
    """A value as people read it in the output's language: never a Python repr."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):  # a list of records: each one's values (``meals 20``)
        return ", ".join(" ".join(_cell(v) for v in item.values()) if isinstance(item, dict)
                         else _cell(item) for item in value)
    if isinstance(value, dt.datetime):
        return helsinki_time(value)
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return i18n.date(value)
    return "" if value is None else str(value)


def helsinki_time(moment: dt.datetime | str) -> str:
    """A moment in Finnish time with its offset (``2018-01-15 14:03:07+02:00``); a time
    without a zone is UTC, as avain stores it."""
    from ..workdays import FINLAND  # with the holiday calendar: only where a time is shown

    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(FINLAND).isoformat(sep=" ", timespec="seconds")


def render_mapping(title: str, labels: dict[str, str] | None = None):
    """A renderer for one dict as a two-column table; ``labels`` name its keys for people."""
    labels = labels or {}

    def render(console: Console, data: dict) -> None:
        t = Table(title=title, show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for key, value in data.items():
            t.add_row(labels.get(key, key), Text(for_terminal(_cell(value))))
        console.print(t)

    return render


def emit_reconciliation(rail: str, pilot_id: str, period: Any, differences: list[dict[str, Any]],
                        columns: Sequence[str], keys: Sequence[str], as_json: bool, *,
                        money: Sequence[str] = ()) -> None:
    """A payment rail's reconciliation with the ledger, for the rail plugins' reconcile
    commands: "in step", or a table of every difference and exit 1."""
    data = {"pilot": pilot_id, "period": str(period), "in_step": not differences, "differences": differences}

    def render(console: Console, d: dict[str, Any]) -> None:
        if d["in_step"]:
            console.print(_("{pilot} {period}: {rail} and the ledger are in step").format(
                pilot=d["pilot"], period=d["period"], rail=rail))
            return
        n = len(d["differences"])
        render_table(columns, keys, ngettext("{pilot} {period}: {n} difference", "{pilot} {period}: {n} differences",
                                             n).format(pilot=d["pilot"], period=d["period"], n=n), money=money)(
            console, d["differences"])

    emit(data, as_json, render)
    if differences:
        click.get_current_context().exit(1)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _draw_nothing(done: int, total: int) -> None:
    """Where stderr is not a terminal (a pipe, a log file, a test): no bar."""


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback for a job that takes seconds, as services take
    it: a rich progress bar on stderr while the job runs, when stderr is a terminal. Stdout
    stays the command's own (one JSON document with ``--json``)."""
    if not stderr_is_terminal():
        yield _draw_nothing
        return
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=stderr_console(), transient=False)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        total = max(total, 1)
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=min(done, total), total=total)

    try:
        yield update
    finally:
        bar.stop()


def notice(message: str) -> None:
    echo(message, err=True)
