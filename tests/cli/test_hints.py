"""The CLI turns a service's structured refusal (code, field, values) into its own words:
the option first, the command that helps after."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from operator_cli import copy_of, initialised

from avain.core.cli import AvainGroup, hints
from avain.core.cli.state import state
from avain.core.domain import Money
from avain.core.errors import Refused


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return initialised(tmp_path_factory.mktemp("hints"))


@pytest.fixture
def db(template, tmp_path):
    return copy_of(template, tmp_path)


def refuse(uow, amount):
    raise Refused("more than the budget holds", field="amount", code="test.over_budget",
                  values={"left": Money(1250)})


@click.group(cls=AvainGroup)
def root():
    pass


@root.command()
@click.option("--amount", type=int, required=True)
@click.option("--json", "as_json", is_flag=True)
def spend(amount, as_json):
    state().run(refuse, amount)


def test_the_option_comes_first_and_the_hint_after(db, monkeypatch):
    monkeypatch.setitem(hints.HINTS, "test.over_budget", "{left} is left: see `avain ledger balance`.")
    result = CliRunner().invoke(root, ["spend", "--amount", "5"], env={"AVAIN_DB": str(db)})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --amount: more than the budget holds €12.50 is left: see `avain ledger balance`.")


def test_the_json_document_carries_code_field_option_and_values(db):
    result = CliRunner().invoke(root, ["spend", "--amount", "5", "--json"],
                                env={"AVAIN_DB": str(db)})
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "type": "refused", "code": "test.over_budget", "field": "amount", "option": "--amount",
        "values": {"left": 1250}, "message": "more than the budget holds",
        "reasons": ["more than the budget holds"]}


def test_a_field_the_command_has_no_option_for_is_left_as_it_is():
    assert hints.option_of(spend, "reason") is None
    assert hints.option_of(spend, "amount") == "--amount"
    error = Refused("no", field="reason", code="nothing.known")
    hints.remember_option(error, spend)
    assert hints.present(error, "no") == "no"
