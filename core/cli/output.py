"""Output conventions: exactly one JSON document on stdout with ``--json``, rich tables
for people otherwise, notices and progress on stderr."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import i18n
from ..i18n import _, ngettext

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


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    return t


def render_table(columns: Sequence[str], keys: Sequence[str], title: str | None = None):
    """A renderer for a list of dicts as one table."""

    def render(console: Console, data: list[dict]) -> None:
        if not data:
            console.print(_("(no {what})").format(what=title.lower() if title else _("rows")))
            return
        console.print(table(title, columns, ([_cell(_localised(d, k)) for k in keys] for d in data)))

    return render


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
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return i18n.date(value)
    return "" if value is None else str(value)


def render_mapping(title: str, labels: dict[str, str] | None = None):
    """A renderer for one dict as a two-column table; ``labels`` name its keys for people."""
    labels = labels or {}

    def render(console: Console, data: dict) -> None:
        t = Table(title=title, show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for key, value in data.items():
            t.add_row(labels.get(key, key), _cell(value))
        console.print(t)

    return render


def emit_reconciliation(rail: str, pilot_id: str, period: Any, differences: list[dict[str, Any]],
                        columns: Sequence[str], keys: Sequence[str], as_json: bool) -> None:
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
                                             n).format(pilot=d["pilot"], period=d["period"], n=n))(
            console, d["differences"])

    emit(data, as_json, render)
    if differences:
        click.get_current_context().exit(1)


def notice(message: str) -> None:
    click.echo(message, err=True)
