"""Closing a month: not before its last day unless forced (and then audited), and the
month's undecided proposals expire with it. Proposals are refused at once when their
date cannot be paid for (before enrolment, or in a month that is not open)."""

import datetime as dt

import ledger_scenarios as L
import pytest
from helpers import HETUS
from ledger_scenarios import FEB, JAN

from avain.core.auth import Actor
from avain.core.errors import Refused, ValidationError
from avain.core.services import audit_log, budget, messages, purchases

ADMIN = Actor("admin")


def _closed_event(app, period=JAN):
    events = app.run(ADMIN, audit_log.log, subject=f"example:{period}")
    return [e for e in events if e["action"] == "budget.period_closed"]


def test_a_month_is_not_closed_before_its_last_day(app):
    """Regression: close-period run on 3 December lapsed money while services dated 22
    December were still committed."""
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    L.buy(app, team, code, 4585, day=dt.date(2018, 1, 22))
    L.buy(app, team, code, 1000, day=dt.date(2018, 1, 23))
    with pytest.raises(Refused, match=r"2018-01 does not end until 2018-01-31 \(today is 2018-01-03\); "
                                      r"2 commitment\(s\) of 55,85\u00a0€ are still pending in it.*--force"):
        L.close_month(app, today=dt.date(2018, 1, 3))
    assert app.run(ADMIN, budget.period_status, "example", JAN) == "open"
    assert L.balance(app, code)["available"] == 30000 - 5585  # nothing lapsed
    assert _closed_event(app) == []

    closed = L.close_month(app, today=dt.date(2018, 1, 3), force=True)
    assert closed["forced"] is True and closed["amount"] == 30000 - 5585
    [event] = _closed_event(app)
    assert event["after"]["forced"] is True


def test_a_month_closes_from_its_last_day_on_without_force(app):
    team = L.set_up(app)
    L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    closed = L.close_month(app, today=dt.date(2018, 1, 31))
    assert closed["forced"] is False and closed["amount"] == 30000
    [event] = _closed_event(app)
    assert event["after"]["forced"] is False
    L.open_month(app, FEB)
    assert L.close_month(app, FEB, today=dt.date(2018, 3, 2))["forced"] is False


def test_a_proposal_before_the_clients_enrolment_is_refused_at_once(app):
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    from helpers import enroll

    late = enroll(app, hetu=HETUS[2], worker=team["worker"], on_date=dt.date(2018, 1, 10))
    with pytest.raises(ValidationError, match=r"--date: 2018-01-05 is before the client was enrolled "
                                              r"\(2018-01-10\)"):
        L.propose(app, late, 1000, day=dt.date(2018, 1, 5))
    assert L.propose(app, code, 1000, day=dt.date(2018, 1, 5))
    assert app.run(ADMIN, purchases.list_proposals, code=late) == []


def test_a_proposal_in_a_month_that_is_not_open_is_refused_at_once(app):
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    with pytest.raises(Refused, match=r"--date: 2018-01-15 .*example 2018-01 is not open for spending "
                                      r"\(not opened\)"):
        L.propose(app, code, 1000)
    L.open_month(app)
    with pytest.raises(Refused, match=r"--date: 2018-02-01 .*2018-02 is not open for spending \(not opened\)"):
        L.propose(app, code, 1000, day=dt.date(2018, 2, 1))
    L.close_month(app, today=dt.date(2018, 2, 1))
    with pytest.raises(Refused, match=r"2018-01 is not open for spending \(closed\)"):
        L.propose(app, code, 1000)
    assert app.run(ADMIN, purchases.list_proposals, code=code) == []


def test_undecided_proposals_expire_when_their_month_closes(app):
    team = L.set_up(app)
    code = L.client_with_budget(app, team, HETUS[0])
    L.open_month(app)
    waiting = L.propose(app, code, 1000, day=dt.date(2018, 1, 20))
    approved = L.propose(app, code, 2000)
    L.approve(app, team, approved)
    rejected = L.propose(app, code, 500)
    app.run(Actor("worker", team["worker"]), purchases.reject, rejected, reason="not needed")

    closed = L.close_month(app, today=dt.date(2018, 2, 1))
    assert closed["proposals_expired"] == 1
    statuses = {p["id"]: p["status"] for p in app.run(ADMIN, purchases.list_proposals, code=code)}
    assert statuses == {waiting: "expired", approved: "approved", rejected: "rejected"}
    thread = app.run(Actor("worker", team["worker"]), messages.thread, code)["messages"]
    [expiry] = [m for m in thread if m["event"] == "proposal.expired"]
    assert expiry["ref"] == f"proposal:{waiting}"
    assert expiry["author_role"] == "system"
    assert f"Ehdotus {waiting} raukesi" in expiry["text"]  # in the client's language (fi)
    assert "kuukausi 2018-01 suljettiin ennen kuin ehdotuksesta päätettiin" in expiry["text"]
    actions = [e["action"] for e in app.run(ADMIN, audit_log.log, subject=code)]
    assert actions.count("proposal.expired") == 1
    # an expired proposal cannot be decided any more
    with pytest.raises(Exception, match="expired"):
        L.approve(app, team, waiting)
    [expired] = [p for p in app.read(ADMIN, purchases.list_proposals, code=code) if p["id"] == waiting]
    assert expired["reason"] == "2018-01 closed"
