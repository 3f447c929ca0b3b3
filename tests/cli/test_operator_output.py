"""Output for people, not Python: no dicts or reprs, euros not cents, money and dates as the
output's language writes them, whole service codes, audit times in Helsinki time with the offset."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import HETUS
from operator_cli import avain, copy_of, initialised

from avain.core import i18n
from avain.core.cli.output import _cell, helsinki_time

LONG_CODE = "omaishoitajan-lakisaateinen-vapaa-vuorokausihoitona"
PROVIDER = "1572860-0"


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("output")
    services = folder / "services.csv"
    services.write_text(f"code;name_fi;category;unit\n{LONG_CODE};Omaishoitajan vapaa;care;day\n", encoding="utf-8")
    prices = folder / "prices.csv"
    prices.write_text(f"provider;service;price;valid_from\n{PROVIDER};cleaning;1234,50;2018-01-01\n", encoding="utf-8")
    return initialised(
        folder,
        ("worker", "add", "--pilot", "example", "--code", "01", "--name", "W"),
        ("client", "enroll", "--pilot", "example", "--hetu", HETUS[0], "--name", "Testi Asiakas",
         "--worker", "example-01", "--group", "family", "--assess", "carer_contract=yes"),
        ("--as", "worker:example-01", "plan", "set", "EX-F-01-001", "--from", "2018-01-01",
         "--item", "cleaning=4", "--item", "meals=20"),
        ("--as", "worker:example-01", "decision", "grant", "EX-F-01-001", "--from", "2018-01-01",
         "--to", "2018-12-31", "--amount", "1234,50"),
        ("provider", "add", "--ytunnus", PROVIDER, "--name", "Kotiapu Oy"),
        ("catalogue", "import", services),
        ("catalogue", "import", prices),
    )


@pytest.fixture
def db(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


def test_plan_show_lists_the_services_not_a_python_dict(db):
    out = ok(avain(db, "plan", "show", "EX-F-01-001")).stdout
    assert "cleaning 4, meals 20" in out
    assert "{" not in out and "'service'" not in out


def test_decision_show_gives_euros_and_dates_in_the_output_language_not_cents(db):
    out = ok(avain(db, "--lang", "fi", "decision", "show", "EX-F-01-001")).stdout
    assert "1\u00a0234,50\u00a0€" in out
    assert "1.1.2018" in out and "31.12.2018" in out
    assert "123450" not in out and "cents" not in out
    out = ok(avain(db, "--lang", "en", "decision", "show", "EX-F-01-001")).stdout
    assert "€1,234.50" in out and "2018-01-01" in out and "2018-12-31" in out and "123450" not in out
    assert json.loads(ok(avain(db, "decision", "show", "EX-F-01-001", "--json")).stdout)[0]["monthly_amount"] == 123450


def test_provider_prices_are_in_euros(db):
    out = ok(avain(db, "--lang", "sv", "provider", "show", PROVIDER)).stdout
    assert "1\u00a0234,50\u00a0€" in out and "1.1.2018" in out
    assert "cents" not in out
    assert "€1,234.50" in ok(avain(db, "provider", "show", PROVIDER)).stdout


def test_catalogue_services_shows_every_code_whole(db):
    out = ok(avain(db, "catalogue", "services")).stdout
    assert LONG_CODE in out  # on one line, not wrapped, not cut with "…"
    codes = [s["code"] for s in json.loads(ok(avain(db, "catalogue", "services", "--json")).stdout)]
    assert all(code in out for code in codes)


def test_audit_log_times_are_helsinki_time_with_the_offset(db):
    events = json.loads(ok(avain(db, "audit", "log", "--json")).stdout)
    out = ok(avain(db, "audit", "log", "--limit", "100000")).stdout
    assert "at (Helsinki)" in out
    for event in events:
        local = dt.datetime.fromisoformat(event["at"]).astimezone(ZoneInfo("Europe/Helsinki"))
        assert local.strftime("%Y-%m-%d %H:%M:%S") + local.strftime("%z")[:3] in out


def test_helsinki_time_follows_summer_time():
    assert helsinki_time("2018-01-15T12:00:00+00:00") == "2018-01-15 14:00:00+02:00"
    assert helsinki_time(dt.datetime(2018, 7, 15, 12, 0)) == "2018-07-15 15:00:00+03:00"  # naive is UTC


@pytest.mark.parametrize(("value", "shown"), [
    ({"cleaning": 4}, "cleaning: 4"),
    ([{"service": "meals", "quantity": 20}], "meals 20"),
    ((True, None), "yes, "),
    (dt.date(2018, 1, 5), "2018-01-05"),
])
def test_a_cell_is_never_a_python_repr(value, shown):
    assert _cell(value) == shown
    with i18n.using("fi"):
        assert _cell(dt.date(2018, 1, 5)) == _cell("2018-01-05") == "5.1.2018"
        assert _cell(True) == "kyllä"
