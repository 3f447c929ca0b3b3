"""Money that cannot be inflated or redirected: `ledger verify` finds invoices above their
commitments and payables paid below zero; the payment batch pays only to bank details a
second person approved (findings of the hostile-insider review)."""

import datetime as dt

from helpers import PROVIDERS, approve, month_ready, pay_approved, propose
from sqlalchemy import text
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.services import purchases, statements

ADMIN = Actor("admin")
FIN = Actor("finance")
D = dt.date


def approved_invoice(app, team, code, cents=840, number="N-1"):
    c = approve(app, team, propose(app, code, cents))
    inv = app.run(Actor("finance", team["finance"]), purchases.record_invoice, provider_id=PROVIDERS[0],
                  number=number, amount=Money(cents), reference=c["reference"], on_date=D(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    return inv


def fi(cents):
    return Money(cents).fi()


def sql(app, statement, **params):
    with Session(app.engine) as s:
        s.execute(text(statement), params)
        s.commit()


def test_ledger_verify_finds_an_invoice_multiplied_after_it_was_recorded(app):
    team, (code, _) = month_ready(app)
    inv = approved_invoice(app, team, code)
    assert app.run(ADMIN, statements.verify)["ok"]
    sql(app, "UPDATE invoice SET amount = amount * 100 WHERE id = :id", id=inv["id"])
    problems = app.run(ADMIN, statements.verify)["problems"]
    assert any(f"commitment {inv['commitment']}: its 1 invoice(s) total {fi(84000)}, more than the {fi(840)} "
               "committed" in p for p in problems), problems
    assert any(f"but the ledger posted {fi(840)}" in p for p in problems), problems


def test_ledger_verify_finds_a_payable_paid_below_zero(app):
    team, (code, _) = month_ready(app)
    inv = approved_invoice(app, team, code)
    # The insider also raises the commitment, so the invoice alone looks covered …
    sql(app, "UPDATE invoice SET amount = 84000 WHERE id = :id", id=inv["id"])
    sql(app, "UPDATE commitment SET amount = 84000 WHERE id = :id", id=inv["commitment"])
    pay_approved(app)
    # … the payment of 840,00 € leaves the provider's payable 831,60 € below zero.
    problems = app.run(ADMIN, statements.verify)["problems"]
    assert any(f"(payable to {PROVIDERS[0]} in example) is negative: {fi(84000)} paid, {fi(840)} owed" in p
               for p in problems), problems
