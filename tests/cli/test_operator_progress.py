"""Progress on the jobs that take seconds: a bar on stderr when stderr is a terminal,
nothing elsewhere, and never anything but the one JSON document on stdout."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import finvoice_samples
import pytest
from operator_cli import avain, copy_of, initialised

from avain.core.cli import output
from avain.core.cli.output import progress_bar

PROVIDER = "1572860-0"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return initialised(tmp_path_factory.mktemp("progress"),
                       ("provider", "add", "--ytunnus", PROVIDER, "--name", "Kotiapu Oy"),
                       ("worker", "add", "--pilot", "example", "--code", "05", "--name", "E", "--role", "evaluator"),
                       ("worker", "add", "--pilot", "example", "--code", "04", "--name", "F", "--role", "finance"))


@pytest.fixture
def db(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


@pytest.fixture
def terminal(monkeypatch):
    """stderr is a terminal (CliRunner's is not)."""
    monkeypatch.setattr(output, "stderr_is_terminal", lambda: True)


def test_the_bar_is_drawn_on_a_terminal_and_nowhere_else(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress_bar("importing prices.csv") as progress:
        for done in range(1, 4):
            progress(done, 3)
    assert "importing prices.csv" in screen.getvalue() and "3/3" in screen.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress_bar("importing prices.csv") as progress:
        progress(1, 3)
    assert pipe.getvalue() == ""


def services_csv(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "services.csv"
    path.write_text("code;name_fi;category;unit\n" + "".join(f"palvelu-{i};Palvelu {i};home;hour\n" for i in range(n)),
                    encoding="utf-8")
    return path


def test_catalogue_import_shows_its_rows_and_keeps_stdout_one_json_document(db, tmp_path, terminal):
    result = avain(db, "catalogue", "import", services_csv(tmp_path, 12), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 12
    assert "importing services.csv" in result.stderr and "12/12" in result.stderr


def test_no_bar_when_stderr_is_not_a_terminal(db, tmp_path):
    result = avain(db, "catalogue", "import", services_csv(tmp_path, 3), "--json")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_invoice_import_counts_files(db, tmp_path, terminal):
    files = []
    for i in range(2):
        path = tmp_path / f"lasku-{i}.xml"
        path.write_bytes(finvoice_samples.make())
        files.append(path)
    result = avain(db, "--as", "finance:example-04", "invoice", "import", *files, "--json")
    json.loads(result.stdout)  # one document, whatever became of the invoices
    assert "importing e-invoices" in result.stderr and "2/2" in result.stderr


def test_demo_counts_pilots(tmp_path, terminal):
    result = avain(tmp_path / "demo.db", "demo", "--pilot", "example", "--clients", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pilots"][0]["pilot"] == "example"
    assert "demo month" in result.stderr and "1/1" in result.stderr


def test_eval_report_counts_pilots(db, tmp_path, terminal):
    result = avain(db, "--as", "evaluator:example-05", "eval", "report", "--pilot", "example",
                   "--out", tmp_path / "report", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pilots"] == ["example"]
    assert "evaluation report" in result.stderr and "1/1" in result.stderr
