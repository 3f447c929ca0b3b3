"""The purchase workflow end to end through the services, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from helpers import PROVIDERS, approve, month_ready, pay_approved, propose
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Money, Period, PeriodEndPolicy, WorkflowOptions
from avain.core.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from avain.core.hookspecs import hookimpl
from avain.core.models import CommitmentRow, ProposalRow, TransferRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import audit_log, budget, finance, purchases, statements

FIN = Actor("finance", "example-04")
JAN = Period(2018, 1)


def bal(app, code):
    return app.run(Actor("admin"), statements.balance, code)


def record(app, commitment, amount=None, number="INV-1", provider=None, on_date=dt.date(2018, 1, 20),
           final=False):
    return app.run(FIN, purchases.record_invoice,
                   provider_id=provider or commitment["provider"], number=number,
                   amount=Money(amount if amount is not None else commitment["amount"]),
                   reference=commitment["reference"], on_date=on_date, final=final)


def test_a_purchase_from_proposal_to_payment(app):
    team, (code, _) = month_ready(app)
    assert bal(app, code)["available"] == 30000
    pid = propose(app, code, 12000)
    c = approve(app, team, pid)
    assert c["status"] == "pending" and c["reference_rf"].startswith("RF")
    b = bal(app, code)
    assert (b["reserved"], b["available"]) == (12000, 18000)
    inv = record(app, c, amount=10000, final=True)
    b = bal(app, code)
    assert (b["posted"], b["reserved"], b["available"]) == (10000, 0, 20000)  # rest released
    sup = Actor("supervisor", team["supervisor"])
    assert app.run(sup, purchases.approve_invoice, inv["id"])["status"] == "approved"
    batch = app.run(Actor("finance", team["finance"]), finance.create_batch, pilot_id="example",
                    execution_date=dt.date(2018, 1, 31))
    assert (batch["count"], batch["total"]) == (1, 10000)
    with pytest.raises(Conflict, match="batched, not recorded"):
        app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    assert app.run(Actor("finance", team["finance"]), finance.confirm_batch, batch["id"])["invoices"] == [inv["id"]]
    with pytest.raises(Conflict, match="confirmed, not prepared"):
        app.run(Actor("finance", team["finance"]), finance.confirm_batch, batch["id"])
    assert app.run(Actor("admin"), purchases.list_invoices)[0]["status"] == "paid"
    st = app.run(Actor("admin"), statements.statement, code)
    assert st["totals"] == {"granted": 30000, "committed": 12000, "spent": 10000, "released": 2000}
    assert app.run(Actor("admin"), statements.verify)["ok"]
    actions = [e["action"] for e in app.run(Actor("admin"), audit_log.log, subject=code)]
    for step in ("proposal.made", "proposal.approved", "invoice.recorded", "invoice.approved",
                 "invoice.paid"):
        assert step in actions


def test_overspending_is_refused_and_nothing_is_written(app):
    team, (code, _) = month_ready(app)
    approve(app, team, propose(app, code, 25000))
    big = propose(app, code, 6000)
    with pytest.raises(Refused, match="not enough budget: 50,00\u00a0€ available, 60,00\u00a0€ needed"):
        approve(app, team, big)
    with Session(app.engine) as s:
        assert s.get(ProposalRow, big).status == "proposed"
        assert s.execute(select(func.count()).select_from(CommitmentRow)).scalar_one() == 1
    assert bal(app, code)["available"] == 5000


def test_a_proposal_needs_an_open_month(app):
    team, (code, other) = month_ready(app, period=False)
    with pytest.raises(Refused, match="--date: 2018-01-15 .*2018-01 is not open for spending"):
        propose(app, code, 1000)
    budget.open_period(app, FIN, "example", JAN)
    with pytest.raises(Refused, match="--date: 2019-01-05 .*2019-01 is not open"):
        propose(app, code, 1000, day=dt.date(2019, 1, 5))
    pid = propose(app, code, 1000)
    assert approve(app, team, pid)["status"] == "pending"


def test_only_the_clients_own_worker_decides(app):
    team, (code, _) = month_ready(app)
    pid = propose(app, code, 1000)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["other_worker"]), purchases.approve, pid)
    with pytest.raises(PermissionDenied):
        app.run(Actor("admin"), purchases.approve, pid)
    with pytest.raises(PermissionDenied):
        app.run(Actor("client", code), purchases.approve, pid)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["other_worker"]), purchases.reject, pid, reason="no")


def test_rejection_needs_a_reason_and_is_kept(app):
    team, (code, _) = month_ready(app)
    pid = propose(app, code, 1000)
    worker = Actor("worker", team["worker"])
    with pytest.raises(ValidationError, match="--reason"):
        app.run(worker, purchases.reject, pid, reason="  ")
    app.run(worker, purchases.reject, pid, reason="not in the plan")
    kept = app.run(worker, purchases.list_proposals, status="rejected")
    assert [(p["id"], p["reason"]) for p in kept] == [(pid, "not in the plan")]
    with pytest.raises(Conflict):
        approve(app, team, pid)


@pytest.mark.parametrize("amount", ["-5", "0", "12,345", "abc", "99999999"])
def test_bad_amounts_are_refused(app, amount):
    team, (code, _) = month_ready(app)
    with pytest.raises(ValidationError, match="amount"):
        propose(app, code, Money.parse(amount).cents)


def test_unknown_codes_are_refused(app):
    team, (code, _) = month_ready(app)
    with pytest.raises(NotFound, match="no client"):
        propose(app, "EX-F-01-999", 1000, actor=Actor("worker", team["worker"]))
    with pytest.raises(NotFound, match="no provider"):
        propose(app, code, 1000, provider="2345678-0")
    with pytest.raises(NotFound, match="no proposal 999"):
        app.run(Actor("worker", team["worker"]), purchases.approve, 999)


def test_invoice_rules(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 5000))
    with pytest.raises(Refused, match="above the commitment"):
        record(app, c, amount=5001)
    with pytest.raises(Refused, match="was issued to"):
        record(app, c, provider=PROVIDERS[1])
    with pytest.raises(ValidationError, match="--ref"):
        app.run(FIN, purchases.record_invoice, provider_id=PROVIDERS[0], number="X",
                amount=Money(100), reference="12345")
    inv = record(app, c)
    c2 = approve(app, team, propose(app, code, 1000))
    with pytest.raises(Conflict, match="recorded already"):
        record(app, c2, number="INV-1")
    with pytest.raises(Conflict, match="posted"):
        record(app, c, number="INV-2")
    # Invoices are approved by the supervisor (the pilot's setting), never by the recorder.
    with pytest.raises(PermissionDenied, match="approved by the supervisor"):
        app.run(Actor("worker", team["worker"]), purchases.approve_invoice, inv["id"])
    with pytest.raises(PermissionDenied):
        app.run(Actor("supervisor", team["supervisor"]), finance.create_batch, pilot_id="example",
                execution_date=dt.date(2018, 1, 31))
    with pytest.raises(Refused, match="no approved invoice to pay"):
        app.run(FIN, finance.create_batch, pilot_id="example", execution_date=dt.date(2018, 1, 31))


def test_cancelled_and_expired_commitments_release_their_money(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    app.run(Actor("worker", team["worker"]), purchases.cancel, c["id"])
    assert bal(app, code)["available"] == 30000
    with pytest.raises(Conflict):
        app.run(Actor("worker", team["worker"]), purchases.cancel, c["id"])
    c = approve(app, team, propose(app, code, 10000))
    expires = dt.date.fromisoformat(c["expires_on"])
    assert app.run(FIN, purchases.expire, on_date=expires)["expired"] == 0
    assert app.run(FIN, purchases.expire, on_date=expires + dt.timedelta(days=1))["expired"] == 1
    assert bal(app, code)["available"] == 30000
    assert app.run(Actor("admin"), statements.verify)["ok"]


def test_one_month_open_at_a_time_and_closing_lapses_the_rest(app):
    team, (code, _) = month_ready(app)
    with pytest.raises(Refused, match="2018-01 open"):
        budget.open_period(app, FIN, "example", Period(2018, 2))
    c = approve(app, team, propose(app, code, 10000))
    closed = budget.close_period(app, FIN, "example", JAN)
    assert (closed["policy"], closed["amount"]) == ("lapse", 2 * 30000 - 10000)
    assert bal(app, code)["available"] == 0
    assert bal(app, code)["reserved"] == 10000  # the commitment outlives its month
    with pytest.raises(Conflict, match="closed already"):
        budget.close_period(app, FIN, "example", JAN)
    with pytest.raises(Refused, match="cannot be opened again"):
        budget.open_period(app, FIN, "example", JAN)
    # Money released after the month closed lapses too: it belonged to January. (The
    # invoice is dated after January: a day in the closed month is refused.)
    record(app, c, amount=8000, final=True, on_date=dt.date(2018, 2, 2))
    assert bal(app, code)["available"] == 0
    opened = budget.open_period(app, FIN, "example", Period(2018, 2))
    assert opened["clients"] == 2
    assert bal(app, code)["available"] == 30000
    assert app.run(Actor("admin"), statements.verify)["ok"]


def test_open_period_is_idempotent_and_tops_up_late_decisions(app):
    team, codes = month_ready(app, clients=3, grant=False)
    worker = Actor("worker", team["worker"])
    app.run(worker, budget.grant, codes[0], valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 6, 30))
    # month_ready opened January with no decisions; running it again allocates what is new.
    again = budget.open_period(app, FIN, "example", JAN)
    assert again["clients"] == 1
    assert budget.open_period(app, FIN, "example", JAN)["clients"] == 1
    with Session(app.engine) as s:
        n = s.execute(select(func.count()).where(TransferRow.kind == "allocation")).scalar_one()
    assert n == 1


def test_controls_get_no_budget(app):
    from helpers import HETUS, enroll

    team, _ = month_ready(app, clients=1)
    control = enroll(app, hetu=HETUS[3], worker=team["worker"], control=True)
    with pytest.raises(Refused, match="control"):
        app.run(Actor("worker", team["worker"]), budget.grant, control,
                valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31))


# --- hooks ---------------------------------------------------------------------------


@pytest.fixture
def app_with(db_url):
    """Build an App whose plugin manager has one extra test plugin; closed after the test."""
    from conftest import open_app

    apps = []

    def build(plugin):
        apps.append(open_app(db_url, make_plugin_manager(extra=[plugin])))
        return apps[-1]

    yield build
    for a in apps:
        a.close()


def test_hook_avain_compute_budget(app_with):
    class Hours:
        @hookimpl
        def avain_compute_budget(self, pilot, decision, period):
            from avain.core.domain import BudgetAmount

            hours = int(decision.inputs.get("hours", 0))
            return BudgetAmount(Money(hours * 2500), f"{hours} h × 25,00 €", "hours-2018")

    app = app_with(Hours())
    team, (code, _) = month_ready(app, grant=False, period=False)
    app.run(Actor("worker", team["worker"]), budget.grant, code, valid_from=dt.date(2018, 1, 1),
            valid_to=dt.date(2018, 12, 31), inputs={"hours": "4"})
    explained = app.run(Actor("worker", team["worker"]), budget.explain, code, JAN)
    assert (explained["amount"], explained["parts"][0]["rule"]) == (10000, "hours-2018")
    budget.open_period(app, FIN, "example", JAN)
    assert bal(app, code)["available"] == 10000


def test_hook_avain_validate_purchase(app_with):
    class OnlyCleaning:
        @hookimpl
        def avain_validate_purchase(self, pilot, proposal):
            return [] if proposal.service == "cleaning" else [f"{proposal.service} is not in the plan"]

    app = app_with(OnlyCleaning())
    team, (code, _) = month_ready(app)
    with pytest.raises(Refused, match="meals is not in the plan"):
        approve(app, team, propose(app, code, 1000, service="meals"))
    assert approve(app, team, propose(app, code, 1000))["status"] == "pending"


def test_hook_avain_period_end_policy(app_with):
    class CarryOver:
        @hookimpl
        def avain_period_end_policy(self, pilot, period):
            return PeriodEndPolicy("carry-over")

    app = app_with(CarryOver())
    team, (code, _) = month_ready(app)
    approve(app, team, propose(app, code, 10000))
    assert budget.close_period(app, FIN, "example", JAN)["policy"] == "carry-over"
    assert bal(app, code)["available"] == 0
    budget.open_period(app, FIN, "example", Period(2018, 2))
    assert bal(app, code)["available"] == 20000 + 30000
    assert app.run(Actor("admin"), statements.verify)["ok"]


def _recorder():
    seen = []

    class Recorder:
        @hookimpl
        def avain_proposal_made(self, proposal):
            seen.append(("made", proposal.id))

        @hookimpl
        def avain_proposal_approved(self, proposal, commitment):
            seen.append(("approved", proposal.id, commitment.reference))

        @hookimpl
        def avain_proposal_rejected(self, proposal, reason):
            seen.append(("rejected", proposal.id, reason))

        @hookimpl
        def avain_invoice_paid(self, invoice):
            seen.append(("paid", invoice.id, invoice.amount.cents))

    return Recorder(), seen


def test_hook_avain_proposal_made(app_with):
    plugin, seen = _recorder()
    app = app_with(plugin)
    team, (code, _) = month_ready(app)
    pid = propose(app, code, 1000)
    assert seen == [("made", pid)]
    with pytest.raises(ValidationError):
        propose(app, code, 0)
    assert seen == [("made", pid)]  # nothing for a refused proposal


def test_hook_avain_proposal_approved(app_with):
    plugin, seen = _recorder()
    app = app_with(plugin)
    team, (code, _) = month_ready(app)
    pid = propose(app, code, 1000)
    c = approve(app, team, pid)
    assert ("approved", pid, c["reference"]) in seen
    big = propose(app, code, 30000)
    with pytest.raises(Refused):
        approve(app, team, big)
    assert not any(e[0] == "approved" and e[1] == big for e in seen)


def test_hook_avain_proposal_rejected(app_with):
    plugin, seen = _recorder()
    app = app_with(plugin)
    team, (code, _) = month_ready(app)
    pid = propose(app, code, 1000)
    app.run(Actor("worker", team["worker"]), purchases.reject, pid, reason="not now")
    assert ("rejected", pid, "not now") in seen


def test_hook_avain_invoice_paid(app_with):
    plugin, seen = _recorder()
    app = app_with(plugin)
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 4000))
    inv = record(app, c, amount=3500)
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    assert not any(e[0] == "paid" for e in seen)
    pay_approved(app)
    assert ("paid", inv["id"], 3500) in seen


def test_receipt_confirmation_when_the_pilot_uses_it(app_with):
    class Confirming:
        @hookimpl
        def avain_workflow_options(self, pilot):
            return WorkflowOptions(confirm_receipt=True, invoice_approver="worker")

    app = app_with(Confirming())
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 2000))
    with pytest.raises(Refused, match="not confirmed receiving"):
        record(app, c)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["worker"]), purchases.confirm_receipt, c["id"])
    app.run(Actor("client", code), purchases.confirm_receipt, c["id"], on_date=dt.date(2018, 1, 16))
    inv = record(app, c)
    assert app.run(Actor("worker", team["worker"]), purchases.approve_invoice, inv["id"])["status"] == "approved"


def test_receipt_confirmation_is_refused_where_the_step_is_off(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 2000))
    with pytest.raises(Refused, match="does not use receipt confirmation"):
        app.run(Actor("client", code), purchases.confirm_receipt, c["id"])


def test_a_wrong_allocation_is_corrected_by_a_reversing_transfer(app):
    team, (code, other) = month_ready(app)
    alloc = f"alloc:example:2018-01:{code}"
    fin = Actor("finance", team["finance"])
    with pytest.raises(ValidationError, match="--reason"):
        app.run(fin, statements.correct, alloc, reason="")
    with pytest.raises(PermissionDenied):
        app.run(Actor("admin"), statements.correct, alloc, reason="typo")
    done = app.run(fin, statements.correct, alloc, reason="decision was revoked")
    assert done["reverses"] == alloc
    assert bal(app, code)["available"] == 0
    with pytest.raises(Conflict, match="reversed already"):
        app.run(fin, statements.correct, alloc, reason="again")
    # A budget that has spent its money cannot have the allocation taken back.
    approve(app, team, propose(app, other, 10000))
    with pytest.raises(Refused, match="not enough budget"):
        app.run(fin, statements.correct, f"alloc:example:2018-01:{other}", reason="x")
    c = approve(app, team, propose(app, other, 100))
    with pytest.raises(Refused, match="not corrected by reversal"):
        app.run(fin, statements.correct, f"commit:{c['proposal']}", reason="x")
    with Session(app.engine) as s:
        original = s.get(TransferRow, alloc)
    assert original.amount == 30000  # the original stays as it was
    assert app.run(Actor("admin"), statements.verify)["ok"]
