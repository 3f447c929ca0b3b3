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

from ..domain import Money, fi_date
from ..workdays import FINLAND

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def stdout_console() -> Console:
    return Console(file=sys.stdout, soft_wrap=False, width=_width())


def stderr_console() -> Console:
    return Console(file=sys.stderr, width=_width())


def _width() -> int | None:
    import shutil

    return max(shutil.get_terminal_size((120, 24)).columns, 100)


def emit(data: Any, as_json: bool, render: Callable[[Console, Any], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        render(stdout_console(), data)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          whole: Sequence[int] = ()) -> Table:
    """A rich table; the columns at the indexes ``whole`` are never wrapped or cut, the
    others wrap but are never cut either."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    t = Table(title=title, show_lines=False, header_style="bold")
    for i, col in enumerate(columns):
        if i in whole:
            widest = max([len(col), *(len(r[i]) for r in rows)])
            t.add_column(col, no_wrap=True, min_width=widest)
        else:
            t.add_column(col, overflow="fold")  # a long word wraps, never ends in "…"
    for row in rows:
        t.add_row(*row)
    return t


def render_table(columns: Sequence[str], keys: Sequence[str], title: str | None = None, *,
                 money: Sequence[str] = (), whole: Sequence[str] = ()):
    """A renderer for a list of dicts as one table. ``money``: keys holding cents, shown as
    Finnish euros (``1 234,50 €``); ``whole``: keys operators type (codes), never wrapped
    or cut. A table that shows Finnish money shows its dates in Finnish too (``d.m.yyyy``)."""
    finnish = bool(money) or any(k.endswith("_fi") for k in keys)

    def render(console: Console, data: list[dict]) -> None:
        if not data:
            console.print(f"(no {title.lower() if title else 'rows'})")
            return
        rows = ([_money(d.get(k)) if k in money else _cell(d.get(k), finnish=finnish) for k in keys] for d in data)
        console.print(table(title, columns, rows, whole=[i for i, k in enumerate(keys) if k in whole]))

    return render


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _money(cents: Any) -> str:
    return "" if cents is None else Money(int(cents)).fi()


def _cell(value: Any, *, finnish: bool = False) -> str:
    """A value as people read it: never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v, finnish=finnish)}" for k, v in value.items())
    if isinstance(value, list | tuple):  # a list of records: each one's values (``meals 20``)
        return ", ".join(" ".join(_cell(v, finnish=finnish) for v in item.values()) if isinstance(item, dict)
                         else _cell(item, finnish=finnish) for item in value)
    if isinstance(value, dt.datetime):
        return helsinki_time(value)
    if isinstance(value, dt.date):
        return fi_date(value) if finnish else value.isoformat()
    if finnish and isinstance(value, str) and _ISO_DATE.match(value):
        return fi_date(dt.date.fromisoformat(value))
    return "" if value is None else str(value)


def helsinki_time(moment: dt.datetime | str) -> str:
    """A moment in Finnish time with its offset (``2018-01-15 14:03:07+02:00``); a time
    without a zone is UTC, as avain stores it."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(FINLAND).isoformat(sep=" ", timespec="seconds")


def render_mapping(title: str):
    def render(console: Console, data: dict) -> None:
        t = Table(title=title, show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for key, value in data.items():
            t.add_row(key, _cell(value))
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
            console.print(f"{d['pilot']} {d['period']}: {rail} and the ledger are in step")
            return
        render_table(columns, keys, f"{d['pilot']} {d['period']}: {len(d['differences'])} differences",
                     money=money)(
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
    click.echo(message, err=True)
