"""The facts of the letters, on SQLite and PostgreSQL: who may have which letter, whose
name is on it, what is audited, and what the monthly statement adds up to."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from helpers import PROVIDERS
from letter_scenarios import HETU, LETTERS, NAME, scenario

from avain.core.auth import Actor
from avain.core.domain import Period
from avain.core.errors import NotFound, PermissionDenied, Refused, ValidationError
from avain.core.services import audit_log, budget, purchases
from avain.core.services import letters as facts

SENT = dt.date(2026, 12, 3)


@pytest.fixture
def month(app):
    return scenario(app)


def _events(app, code):
    return [e for e in app.read(Actor("admin"), audit_log.log, subject=code)]


def test_a_workers_decision_letter_names_the_client_and_logs_the_read(app, month):
    code, worker = month["codes"][0], Actor("worker", month["team"]["worker"])
    doc = app.run(worker, facts.decision_letter, code, reason="decision letter to post", sent_on=SENT)
    assert doc["recipient"] == {"code": code, "name": NAME}
    assert doc["lang"] == "fi"
    assert (doc["notified_on"], doc["deadline"]) == (dt.date(2026, 12, 10), dt.date(2027, 1, 11))
    assert doc["budget"]["monthly"] == 30000
    assert [s["code"] for s in doc["plan"]["services"]] == ["cleaning", "escort", "meals"]
    assert [(c["amount"], c["status"]) for c in doc["commitments"]] == [(12345, "closed"), (5000, "pending")]
    assert doc["decided_by"]["role"] == "worker" and doc["contact"]["role"] == "worker"
    assert doc["organiser"]["review_body"] == LETTERS["review_body"]
    events = _events(app, code)
    reads = [e for e in events if e["action"] == "client.identity_read"]
    assert reads[-1]["purpose"] == "decision letter to post" and reads[-1]["actor"] == str(worker)
    written = [e for e in events if e["action"] == "letter.decision_written"]
    assert len(written) == 1 and NAME not in json.dumps(written) and HETU not in json.dumps(written)


def test_a_role_that_may_not_identify_gets_the_letter_without_the_name(app, month):
    code = month["codes"][0]
    before = [e for e in _events(app, code) if e["action"] == "client.identity_read"]
    doc = app.run(Actor("finance"), facts.decision_letter, code, lang="sv", sent_on=SENT)
    assert doc["recipient"] == {"code": code, "name": None} and doc["lang"] == "sv"
    assert NAME not in json.dumps(doc, default=str)
    after = [e for e in _events(app, code) if e["action"] == "client.identity_read"]
    assert after == before  # nothing identified, nothing to log


def test_decision_letters_are_refused_for_unknown_decisions_and_other_workers_clients(app, month):
    code = month["codes"][0]
    with pytest.raises(NotFound, match="--decision: .* has no decision 999"):
        app.run(Actor("admin"), facts.decision_letter, code, decision_id=999)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", month["team"]["other_worker"]), facts.decision_letter, code)
    with pytest.raises(ValidationError, match="--lang"):
        app.run(Actor("admin"), facts.decision_letter, code, lang="de")


def test_a_decision_letter_picks_the_decision_asked_for(app, month):
    code, worker = month["codes"][0], Actor("worker", month["team"]["worker"])
    first = app.read(worker, budget.decisions, code)[0]["id"]
    newer = app.run(worker, budget.grant, code, valid_from=dt.date(2018, 7, 1), valid_to=dt.date(2018, 12, 31),
                    monthly_amount=budget.Money(20000))
    assert app.run(worker, facts.decision_letter, code)["decision"]["id"] == newer["id"]
    old = app.run(worker, facts.decision_letter, code, decision_id=first)
    assert old["decision"]["id"] == first and old["budget"]["monthly"] == 30000


def test_the_providers_commitment_holds_the_code_and_reference_but_no_name(app, month):
    c = month["paid"]
    doc = app.run(Actor("finance"), facts.commitment_letter, c["id"], lang="en", sent_on=SENT)
    text = json.dumps(doc, default=str)
    assert NAME not in text and HETU not in text
    assert doc["provider"]["id"] == PROVIDERS[0]
    assert doc["commitment"]["client"] == month["codes"][0]
    assert doc["commitment"]["reference"] == c["reference"] and doc["commitment"]["amount"] == 12345
    assert doc["organiser"]["einvoice_address"] == LETTERS["einvoice_address"]
    assert any(e["action"] == "letter.commitment_written" for e in _events(app, month["codes"][0]))


def test_no_commitment_letter_for_unknown_or_cancelled_commitments(app, month):
    with pytest.raises(NotFound, match="no commitment 999"):
        app.run(Actor("finance"), facts.commitment_letter, 999)
    pending = month["pending"]["id"]
    app.run(Actor("worker", month["team"]["worker"]), purchases.cancel, pending)
    with pytest.raises(Refused, match="voided"):
        app.run(Actor("finance"), facts.commitment_letter, pending)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", month["team"]["other_worker"]), facts.commitment_letter, month["paid"]["id"])


def test_the_monthly_statement_adds_up(app, month):
    code = month["codes"][0]
    budget.close_period(app, Actor("finance", "example-04"), "example", Period(2018, 1))
    doc = app.run(Actor("client", code), facts.statement_letter, code, Period(2018, 1), sent_on=SENT)
    s = doc["summary"]
    assert s["granted"] == 30000
    assert s["committed"] == 12345 + 5000
    assert s["invoiced"] == 10000 and s["paid"] == 10000
    assert s["released"] == 2345  # the paid commitment's unused part
    # The example pilot lets the remainder lapse: 300 − 100 spent − 50 still reserved.
    assert s["lapsed"] == 30000 - 10000 - 5000 and s["carried_out"] == 0
    assert doc["balance"]["available"] == 0 and doc["balance"]["reserved"] == 5000
    assert doc["recipient"]["name"] == NAME  # the client's own letter
