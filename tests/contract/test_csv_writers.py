"""Every CSV file avain writes opens in a spreadsheet as data, never as a formula: every
writer in the code goes through avain.core.text's csv_writer/csv_dict_writer, and each
writer's file neutralises a text cell that starts like a formula."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from avain.core.text import csv_dict_writer, csv_writer

ROOT = Path(__file__).resolve().parents[2]
FORMULA = '=HYPERLINK("http://evil.example/","x")'


def _csv_writer_calls() -> list[str]:
    """``file:line`` of every call of ``csv.writer`` or ``csv.DictWriter`` outside avain.core.text."""
    found = []
    for folder in ("core", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "core" / "text.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    f = node.func
                    name = (f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else "")
                    if name in ("writer", "DictWriter") and not (isinstance(f, ast.Attribute)
                                                                 and getattr(f.value, "id", "") != "csv"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_csv_writer_goes_through_the_spreadsheet_safe_helper():
    assert _csv_writer_calls() == []


def test_the_walk_finds_the_writers_it_replaced():
    # The helpers are used where CSV files are written: the catalogue export, the
    # evaluation export, the PSOP event file and the ePassi simulator's export.
    users = {"core/services/catalogue.py", "plugins/evaluation/export.py", "plugins/payment_psop/events.py",
             "plugins/payment_epassi/wallets.py"}
    for rel in users:
        source = (ROOT / rel).read_text(encoding="utf-8")
        assert "csv_writer(" in source or "csv_dict_writer(" in source, rel


@pytest.mark.parametrize("make", [
    lambda fh: csv_writer(fh),
    lambda fh: csv_writer(fh, delimiter=";"),
], ids=["writer", "writer ;"])
def test_a_list_row_is_made_safe(tmp_path, make):
    path = tmp_path / "out.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = make(fh)
        w.writerow(["name", "amount"])
        w.writerow([FORMULA, -1250])
    text = path.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "-1250" in text and "'-1250" not in text, text


def test_the_psop_event_file_neutralises_a_merchant_cell(tmp_path):
    from avain.plugins.payment_psop.events import FIELDS, write_csv

    row = {k: "" for k in FIELDS}
    row[FIELDS[0]] = "@SUM(1+1)*cmd|' /C calc'!A0"
    write_csv([row], tmp_path / "events.csv")
    with (tmp_path / "events.csv").open(encoding="utf-8", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert first[FIELDS[0]].startswith("'@SUM")


def test_a_dict_row_is_made_safe(tmp_path):
    path = tmp_path / "out.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv_dict_writer(fh, ["name", "amount"])
        w.writeheader()
        w.writerow({"name": "+cmd", "amount": -5})
    assert path.read_text(encoding="utf-8").splitlines() == ["name,amount", "'+cmd,-5"]
