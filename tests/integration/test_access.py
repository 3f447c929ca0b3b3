"""Who may do what, cell by cell, beyond the role × action matrix: separation of duties
compares people (not actor strings), the proposer never decides their own proposal,
finance and evaluators reach only their own pilot, and evaluators see only consenting
clients' pseudonymous data. On SQLite and PostgreSQL."""

import datetime as dt
import json

import pytest
from helpers import OTHER_PILOT, PROVIDERS, approve, finance_of, month_ready, propose
from sqlalchemy import update

from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.errors import PermissionDenied
from avain.core.models import PilotRow
from avain.core.services import (
    budget,
    consent,
    evaluation,
    finance,
    people,
    pilots,
    provider_bank,
    providers,
    purchases,
    statements,
)
from avain.plugins.evaluation import export as export_mod
from avain.plugins.evaluation import figures

D = dt.date
ADMIN = Actor("admin")
WHY = "evaluators see only consenting clients' pseudonymous data"


def _finance_approves(app) -> None:
    """The example pilot, with invoices approved by finance (``[workflow] invoice_approver``)."""
    with app.engine.begin() as conn:
        config = json.loads(conn.execute(PilotRow.__table__.select().where(PilotRow.id == "example")).one().config)
        config["workflow"] = {**config.get("workflow", {}), "invoice_approver": "finance"}
        conn.execute(update(PilotRow).where(PilotRow.id == "example").values(config=json.dumps(config)))


@pytest.fixture
def world(app, tmp_path):
    """The example pilot with January open, a pending commitment, an invoice recorded by
    finance:example-04, a proposal the worker made, a consenting and a non-consenting
    client; and a second pilot, ``other``, with its own finance and evaluator."""
    _finance_approves(app)
    team, codes = month_ready(app, clients=2)
    fin = Actor("finance", team["finance"])
    pending = approve(app, team, propose(app, codes[0], 5000))
    billed = approve(app, team, propose(app, codes[0], 4000))
    invoice = app.run(fin, purchases.record_invoice, provider_id=PROVIDERS[0], number="A-1",
                      amount=Money(4000), reference=billed["reference"], on_date=D(2018, 1, 20))
    by_worker = propose(app, codes[1], 3000, actor=Actor("worker", team["worker"]))
    consenting, withheld = codes
    app.run(Actor("worker", team["worker"]), consent.set_consent, consenting, purpose="evaluation", given=True,
            on_date=D(2018, 1, 2))
    toml = tmp_path / "other.toml"
    toml.write_text(OTHER_PILOT)
    app.run(ADMIN, pilots.add_file, toml)
    app.run(ADMIN, people.add_worker, pilot_id="other", code="E1", name="Arvioija", role="evaluator")
    return {"team": team, "fin": fin, "second_fin": finance_of(app, "example", "F2"),
            "other_fin": finance_of(app, "other"), "other_eval": Actor("evaluator", "other-E1"),
            "eval": Actor("evaluator", team["evaluator"]), "pending": pending, "invoice": invoice,
            "by_worker": by_worker, "consenting": consenting, "withheld": withheld, "out": tmp_path / "out"}


#: (cell, what is attempted, the refusal a user reads). Each is refused, and what
#: it would have changed is unchanged (checked by the test).
REFUSED = [
    # people, not strings: finance moves money under their own id only, and the recorder
    # never approves what they recorded
    ("anonymous finance approves", lambda app, w: app.run(
        Actor("finance"), purchases.approve_invoice, w["invoice"]["id"]),
     "finance moves money only under their own id"),
    ("recorder approves their own invoice", lambda app, w: app.run(
        w["fin"], purchases.approve_invoice, w["invoice"]["id"]),
     "must be approved by someone other than who recorded it"),
    ("anonymous finance records", lambda app, w: app.run(
        Actor("finance"), purchases.record_invoice, provider_id=PROVIDERS[0], number="A-2", amount=Money(100),
        reference=w["pending"]["reference"], on_date=D(2018, 1, 21)),
     "finance moves money only under their own id"),
    ("anonymous finance opens a month", lambda app, w: budget.open_period(
        app, Actor("finance"), "example", Period(2018, 2)), "finance moves money only under their own id"),
    ("anonymous finance cancels a commitment", lambda app, w: app.run(
        Actor("finance"), purchases.cancel, w["pending"]["id"]), "finance moves money only under their own id"),
    ("anonymous finance pays", lambda app, w: app.run(
        Actor("finance"), finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31)),
     "finance moves money only under their own id"),
    # the proposer may not decide
    ("worker approves their own proposal", lambda app, w: app.run(
        Actor("worker", w["team"]["worker"]), purchases.approve, w["by_worker"], today=D(2018, 1, 10)),
     "a proposal is decided by someone other than who proposed it"),
    ("worker rejects their own proposal", lambda app, w: app.run(
        Actor("worker", w["team"]["worker"]), purchases.reject, w["by_worker"], reason="no"),
     "a proposal is decided by someone other than who proposed it"),
    # cross-pilot: finance of pilot other on the example pilot's month, invoice, commitment
    ("finance of another pilot opens the month", lambda app, w: budget.open_period(
        app, w["other_fin"], "example", Period(2018, 2)), "works in pilot other: may not budget run in pilot example"),
    ("finance of another pilot closes the month", lambda app, w: budget.close_period(
        app, w["other_fin"], "example", Period(2018, 1), force=True), "works in pilot other"),
    ("finance of another pilot records an invoice", lambda app, w: app.run(
        w["other_fin"], purchases.record_invoice, provider_id=PROVIDERS[0], number="A-3", amount=Money(100),
        reference=w["pending"]["reference"], on_date=D(2018, 1, 21)), "works in pilot other"),
    ("finance of another pilot approves an invoice", lambda app, w: app.run(
        w["other_fin"], purchases.approve_invoice, w["invoice"]["id"]), "works in pilot other"),
    ("finance of another pilot cancels a commitment", lambda app, w: app.run(
        w["other_fin"], purchases.cancel, w["pending"]["id"]), "works in pilot other"),
    ("finance of another pilot pays its invoices", lambda app, w: app.run(
        w["other_fin"], finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31)),
     "works in pilot other"),
    ("finance of another pilot approves a provider's bank change", lambda app, w: (
        app.run(ADMIN, providers.update, PROVIDERS[0], iban="FI1410093000123458"),
        app.run(w["other_fin"], provider_bank.approve, PROVIDERS[0])),
     "serves other pilots, not it"),
    ("finance of another pilot reads a client's ledger", lambda app, w: app.read(
        w["other_fin"], statements.statement, w["consenting"]), "works in pilot other"),
    # cross-pilot: the evaluator of pilot other on the example pilot's export and report
    ("evaluator of another pilot exports it", lambda app, w: app.run(
        w["other_eval"], export_mod.export, w["out"], pilot_ids=["example"]),
     "works in pilot other: may not eval export in pilot example"),
    ("evaluator of another pilot reports on it", lambda app, w: app.read(
        w["other_eval"], figures.compute, ["example"]), "works in pilot other"),
    ("evaluator of another pilot reads a consenting client", lambda app, w: app.read(
        w["other_eval"], people.show, w["consenting"], reason="x"), "works in pilot other"),
    # evaluators: pseudonymous data of consenting clients only, never free text
    ("evaluator lists proposals (their text)", lambda app, w: app.read(
        w["eval"], purchases.list_proposals, code=w["consenting"]), WHY),
    ("evaluator reads a ledger statement (memos)", lambda app, w: app.read(
        w["eval"], statements.statement, w["consenting"]), WHY),
    ("evaluator reads a decision", lambda app, w: app.read(
        w["eval"], budget.decisions, w["consenting"]), WHY),
    ("evaluator lists invoices", lambda app, w: app.read(w["eval"], purchases.list_invoices), WHY),
    ("evaluator reads a client without consent", lambda app, w: app.read(
        w["eval"], people.show, w["withheld"], reason="x"), WHY),
    ("evaluator reads responses without consent", lambda app, w: app.read(
        w["eval"], evaluation.responses_of, w["withheld"]), WHY),
    ("anonymous evaluator lists clients", lambda app, w: app.read(
        Actor("evaluator"), people.list_clients), "an evaluator reads per-pilot and per-client data only under "
                                                  "their own id"),
    ("anonymous evaluator exports", lambda app, w: app.run(
        Actor("evaluator"), export_mod.export, w["out"]), "only under their own id"),
]


@pytest.mark.parametrize("cell", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_cell_of_the_access_rules_is_refused(app, world, cell):
    _, attempt, words = cell
    before = (app.read(ADMIN, purchases.list_invoices), app.read(ADMIN, purchases.list_commitments),
              app.read(ADMIN, purchases.list_proposals), app.read(ADMIN, budget.periods, "example"))
    with pytest.raises(PermissionDenied) as refused:
        attempt(app, world)
    assert words in str(refused.value)
    after = (app.read(ADMIN, purchases.list_invoices), app.read(ADMIN, purchases.list_commitments),
             app.read(ADMIN, purchases.list_proposals), app.read(ADMIN, budget.periods, "example"))
    assert after == before  # nothing was written
    assert not world["out"].exists()


def test_another_finance_person_approves_and_pays_what_finance_recorded(app, world):
    approved = app.run(world["second_fin"], purchases.approve_invoice, world["invoice"]["id"])
    assert (approved["status"], approved["recorded_by"], approved["approved_by"]) == (
        "approved", "finance:example-04", "finance:example-F2")
    batch = app.run(world["fin"], finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31))
    assert app.run(world["fin"], finance.confirm_batch, batch["id"])["invoices"] == [world["invoice"]["id"]]


def test_the_supervisor_decides_what_the_worker_proposed(app, world):
    done = app.run(Actor("supervisor", world["team"]["supervisor"]), purchases.approve, world["by_worker"],
                   today=D(2018, 1, 10))
    assert (done["proposal"]["proposed_by"], done["proposal"]["decided_by"]) == (
        f"worker:{world['team']['worker']}", f"supervisor:{world['team']['supervisor']}")


def test_finance_and_evaluators_see_only_their_own_pilot(app, world):
    other_fin, other_eval = world["other_fin"], world["other_eval"]
    assert app.read(other_fin, people.list_clients) == []
    assert app.read(other_fin, purchases.list_invoices) == []
    assert app.read(other_fin, purchases.list_commitments) == []
    assert app.read(world["fin"], purchases.list_invoices)[0]["id"] == world["invoice"]["id"]
    assert app.run(other_eval, export_mod.export, world["out"])["clients"] == 0  # its own pilot: no one
    assert app.read(other_eval, figures.reportable_pilots) == ["other"]
    # a finance worker's expiry touches their own pilot's commitments only
    assert app.run(other_fin, purchases.expire, on_date=D(2100, 1, 1))["expired"] == 0
    assert app.run(world["fin"], purchases.expire, on_date=D(2100, 1, 1))["expired"] == 1


def test_evaluators_see_consenting_clients_without_free_text_and_not_after_a_withdrawal(app, world):
    ev, code = world["eval"], world["consenting"]
    assert [c["code"] for c in app.read(ev, people.list_clients)] == [code]
    shown = app.read(ev, people.show, code, reason="x")
    assert shown["code"] == code and "assessment" not in shown and "name" not in shown
    assert app.read(ev, evaluation.responses_of, code) == []
    app.run(Actor("worker", world["team"]["worker"]), consent.set_consent, code, purpose="evaluation",
            given=False, on_date=dt.date.today())
    with pytest.raises(PermissionDenied, match=WHY):
        app.read(ev, people.show, code, reason="x")
    assert app.read(ev, people.list_clients) == []
