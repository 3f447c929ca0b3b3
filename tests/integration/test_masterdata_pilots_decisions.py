"""Records that can be corrected without rewriting history: pilots that are versioned and
refuse to run without the plugins their configuration names, and decisions that are
amended or ended from the first month not yet opened (SQLite and PostgreSQL)."""

import datetime as dt
import json

import pytest
from helpers import HETUS, OTHER_PILOT, month_ready
from sqlalchemy import select
from sqlmodel import Session

from avain.core import db as dbmod
from avain.core.app import App
from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.errors import ConfigError, Conflict, NotFound, Refused, ValidationError
from avain.core.models import AuditEventRow, BudgetPeriodRow, DecisionRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import budget, people, pilots

ADMIN = Actor("admin")


def events(app, action):
    """The events of ``action``, their purposes decrypted (they are stored encrypted)."""
    from helpers import opened_purposes

    with Session(app.engine) as s:
        return opened_purposes(app, s.execute(select(AuditEventRow).where(AuditEventRow.action == action)
                                              .order_by(AuditEventRow.id)).scalars().all())


# --- a pilot whose plugin is missing -------------------------------------------------------


def test_a_pilot_whose_budget_plugin_is_not_loaded_is_refused_not_defaulted(app, db_url, monkeypatch):
    """Regression: with AVAIN_LOAD_PLUGINS=catalogue_fi the example pilot's clients got the
    default budget instead of the calculator's, without a word."""
    team, codes = month_ready(app, clients=1, period=False)
    monkeypatch.setenv("AVAIN_LOAD_PLUGINS", "catalogue_fi")
    limited = App(dbmod.make_engine(db_url), make_plugin_manager())
    try:
        with pytest.raises(Refused) as refused:
            budget.open_period(limited, Actor("finance", "example-04"), "example", Period(2018, 2))
        message = str(refused.value)
        assert "pilot example" in message and "[plugins.budget_calculator]" in message
        assert "[plugins.example_pilot]" in message
        with Session(limited.engine) as s:
            assert s.get(BudgetPeriodRow, ("example", "2018-02")) is None  # nothing allocated
        shown = limited.read(ADMIN, pilots.show, "example")
        assert shown["missing_plugins"] == ["budget_calculator", "example_pilot"]
        assert any(w.startswith("plugins.budget_calculator: no loaded plugin reads") for w in shown["warnings"])
        with pytest.raises(Refused, match="budget_calculator"):
            limited.run(Actor("worker", team["worker"]), budget.grant, codes[0],
                        valid_from=dt.date(2019, 1, 1), valid_to=dt.date(2019, 6, 30))
    finally:
        limited.close()
    monkeypatch.delenv("AVAIN_LOAD_PLUGINS")
    assert app.read(ADMIN, pilots.show, "example")["missing_plugins"] == []
    opened = budget.open_period(app, Actor("finance", "example-04"), "example", Period(2018, 2))
    assert opened["clients"] == 1


# --- pilot versions -----------------------------------------------------------------------


def _other(tmp_path, text=OTHER_PILOT, name="other.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pilot_update_makes_a_version_and_decisions_keep_theirs(app, tmp_path):
    pilots_file = _other(tmp_path)
    app.run(ADMIN, pilots.add_file, pilots_file)
    worker = app.run(ADMIN, people.add_worker, pilot_id="other", code="01", name="W", role="worker")["id"]
    code = app.run(ADMIN, people.enroll, pilot_id="other", hetu=HETUS[0], name="N", worker_id=worker,
                   on_date=dt.date(2018, 1, 1))["code"]
    as_worker = Actor("worker", worker)
    first = app.run(as_worker, budget.grant, code, valid_from=dt.date(2018, 1, 1),
                    valid_to=dt.date(2018, 6, 30), monthly_amount=Money(20000))
    assert first["pilot_version"] == 1

    changed = _other(tmp_path, OTHER_PILOT.replace('name = "Another pilot"', 'name = "Another pilot, renamed"')
                     + "\n[budget]\nmonthly_cap = 50000\n", "other-v2.toml")
    assert app.run(ADMIN, pilots.update_file, changed) == {"id": "other", "version": 2, "changed": True}
    assert app.run(ADMIN, pilots.update_file, changed) == {"id": "other", "version": 2, "changed": False}
    second = app.run(as_worker, budget.grant, code, valid_from=dt.date(2018, 7, 1),
                     valid_to=dt.date(2018, 12, 31), monthly_amount=Money(20000))
    assert second["pilot_version"] == 2
    assert [d["pilot_version"] for d in app.read(ADMIN, budget.decisions, code)] == [1, 2]

    now = app.read(ADMIN, pilots.show, "other")
    assert (now["version"], now["current_version"], now["name"]) == (2, 2, "Another pilot, renamed")
    assert [v["version"] for v in now["versions"]] == [1, 2]
    assert "monthly budget at most 500,00\xa0€" in now["rules"]
    then = app.read(ADMIN, pilots.show, "other", version=1)
    assert (then["version"], then["name"]) == (1, "Another pilot")
    assert not any("monthly budget" in r for r in then["rules"])
    with pytest.raises(NotFound, match="--version: pilot other has versions 1–2, not 3"):
        app.read(ADMIN, pilots.show, "other", version=3)
    updated = events(app, "pilot.updated")
    assert len(updated) == 1
    assert json.loads(updated[0].before)["version"] == 1 and json.loads(updated[0].after)["version"] == 2


def test_pilot_update_reports_every_error_and_changes_nothing(app, tmp_path):
    app.run(ADMIN, pilots.add_file, _other(tmp_path))
    bad = _other(tmp_path, 'services = ["cleaning", "unicorn-rides"]\n' + OTHER_PILOT + '\n[budget]\n'
                 'monthly_cap = 400.0\n[payment]\ndebtor_iban = "FI2112345600000786"\n', "bad.toml")
    with pytest.raises(ConfigError) as error:
        app.run(ADMIN, pilots.update_file, bad)
    assert [p["path"] for p in error.value.problems] == ["budget.monthly_cap", "payment.debtor_iban",
                                                         "services.1"]
    assert app.read(ADMIN, pilots.show, "other")["current_version"] == 1
    assert events(app, "pilot.updated") == []


def test_a_plugins_pilot_and_an_unknown_pilot_are_not_updated_from_a_file(app, tmp_path):
    from helpers import EXAMPLE_TOML

    with pytest.raises(Conflict, match="comes from plugin example: change"):
        app.run(ADMIN, pilots.update_file, EXAMPLE_TOML)
    with pytest.raises(NotFound, match="no pilot 'other' to update"):
        app.run(ADMIN, pilots.update_file, _other(tmp_path))


# --- amending and ending decisions ------------------------------------------------------------


def _decision_of(app, code):
    return app.read(ADMIN, budget.decisions, code)[-1]["id"]


def test_an_amendment_applies_from_the_first_month_not_opened_and_keeps_the_old_decision(app):
    team, codes = month_ready(app, clients=1)  # January 2018 is open
    code, as_worker = codes[0], Actor("worker", team["worker"])
    old_id = _decision_of(app, code)
    with pytest.raises(Refused, match=r"--from: example 2018-01 is opened already.*from 2018-02-01"):
        app.run(as_worker, budget.amend, old_id, valid_from=dt.date(2018, 1, 15),
                monthly_amount=Money(20000), reason="fewer hours")
    with pytest.raises(ValidationError, match="--reason"):
        app.run(as_worker, budget.amend, old_id, valid_from=dt.date(2018, 3, 1), monthly_amount=Money(20000),
                reason=" ")
    march_before = app.read(ADMIN, budget.explain, code, Period(2018, 3))["amount"]
    new = app.run(as_worker, budget.amend, old_id, valid_from=dt.date(2018, 3, 1), monthly_amount=Money(20000),
                  reason="fewer hours")
    assert (new["amends"], new["from"], new["to"], new["monthly_amount"]) == (old_id, "2018-03-01",
                                                                            "2018-12-31", 20000)
    assert new["change_reason"] == "fewer hours" and new["pilot_version"] == 1
    decisions = app.read(ADMIN, budget.decisions, code)
    assert [(d["id"], d["to"]) for d in decisions] == [(old_id, "2018-02-28"), (new["id"], "2018-12-31")]
    assert app.read(ADMIN, budget.explain, code, Period(2018, 2))["parts"][0]["decision"] == old_id
    march = app.read(ADMIN, budget.explain, code, Period(2018, 3))
    assert [p["decision"] for p in march["parts"]] == [new["id"]]
    assert march["amount"] != march_before or march_before <= 20000
    [amended] = events(app, "decision.amended")
    assert amended.purpose == "fewer hours" and amended.subject == code
    assert json.loads(amended.after)["new"]["id"] == new["id"]


def test_an_amendment_from_the_first_day_replaces_the_decision(app):
    team, codes = month_ready(app, clients=1, period=False)
    old_id = _decision_of(app, codes[0])
    new = app.run(Actor("worker", team["worker"]), budget.amend, old_id, monthly_amount=Money(25000),
                  reason="the assessment was corrected")
    old = app.read(ADMIN, budget.decisions, codes[0])[0]
    assert old["revoked_on"] == dt.date(2018, 1, 1) and old["to"] == "2018-12-31"
    assert [p["decision"] for p in app.read(ADMIN, budget.explain, codes[0], Period(2018, 1))["parts"]] \
        == [new["id"]]
    with pytest.raises(Conflict, match=f"decision {old_id} was replaced"):
        app.run(Actor("worker", team["worker"]), budget.end_decision, old_id, on=dt.date(2018, 6, 30),
                reason="x")


def test_ending_a_decision_keeps_it_and_never_reaches_into_an_opened_month(app):
    team, codes = month_ready(app, clients=1)  # January 2018 is open
    code, as_worker = codes[0], Actor("worker", team["worker"])
    decision_id = _decision_of(app, code)
    with pytest.raises(Refused, match=r"--on: example 2018-01 is opened already.*from 2018-02-01"):
        app.run(as_worker, budget.end_decision, decision_id, on=dt.date(2018, 1, 20), reason="moved away")
    ended = app.run(as_worker, budget.end_decision, decision_id, on=dt.date(2018, 1, 31), reason="moved away")
    assert (ended["to"], ended["change_reason"]) == ("2018-01-31", "moved away")
    with pytest.raises(NotFound, match="no decision in force in 2018-02"):
        app.read(ADMIN, budget.explain, code, Period(2018, 2))
    budget.close_period(app, Actor("finance", "example-04"), "example", Period(2018, 1))
    assert budget.open_period(app, Actor("finance", "example-04"), "example", Period(2018, 2))["clients"] == 0
    with pytest.raises(Conflict, match="ends on 2018-01-31 already"):
        app.run(as_worker, budget.end_decision, decision_id, on=dt.date(2018, 3, 31), reason="again")
    [event] = events(app, "decision.ended")
    assert event.purpose == "moved away" and json.loads(event.before)["to"] == "2018-12-31"
    with Session(app.engine) as s:
        assert s.get(DecisionRow, decision_id) is not None


def test_only_the_clients_worker_changes_a_decision(app):
    team, codes = month_ready(app, clients=1, period=False)
    decision_id = _decision_of(app, codes[0])
    from avain.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["other_worker"]), budget.end_decision, decision_id,
                on=dt.date(2018, 6, 30), reason="not mine")
    with pytest.raises(PermissionDenied):
        app.run(Actor("finance"), budget.amend, decision_id, monthly_amount=Money(100), reason="no")
