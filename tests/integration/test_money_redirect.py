"""Money that cannot be inflated or redirected: `ledger verify` finds invoices above their
commitments and payables paid below zero; the payment batch pays only to bank details a
second person approved (findings of the hostile-insider review)."""

import datetime as dt

import pytest
from helpers import IBANS, PROVIDERS, approve, month_ready, propose
from sqlalchemy import text
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import PermissionDenied, Refused
from avain.core.services import audit_log, finance, provider_bank, providers, purchases, statements

ADMIN = Actor("admin")
FIN = Actor("finance", "example-04")
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


def test_pay_batch_leaves_out_an_invoice_changed_after_it_was_recorded(app):
    team, (code, other) = month_ready(app)
    inv = approved_invoice(app, team, code)
    approved_invoice(app, team, other, number="N-2")
    sql(app, "UPDATE invoice SET amount = amount * 100 WHERE id = :id", id=inv["id"])
    made = batch(app)
    assert (made["count"], made["total"]) == (1, 840)
    assert made["skipped"] == [{"invoice": inv["id"], "provider": PROVIDERS[0], "reason": (
        f"invoice {inv['id']}: its amount {fi(84000)} is not the {fi(840)} the ledger posted for it: it was "
        "changed outside avain; see `avain ledger verify`")}]


def test_pay_batch_leaves_out_an_invoice_set_approved_or_back_to_approved_in_the_database(app):
    team, (code, other) = month_ready(app)
    paid = approved_invoice(app, team, code)
    app.run(FIN, finance.confirm_batch, batch(app)["id"])
    c = approve(app, team, propose(app, other, 500))
    forged = app.run(Actor("finance", team["finance"]), purchases.record_invoice, provider_id=PROVIDERS[0],
                     number="N-3", amount=Money(500), reference=c["reference"], on_date=D(2018, 1, 21))
    honest = approved_invoice(app, team, other, cents=300, number="N-4")
    # The approval written by hand, and a paid invoice put back to wait for a batch: neither is paid.
    sql(app, "UPDATE invoice SET status = 'approved', approved_by = 'supervisor:x' WHERE id = :id", id=forged["id"])
    sql(app, "UPDATE invoice SET status = 'approved', batch_id = NULL WHERE id = :id", id=paid["id"])
    made = batch(app)
    assert (made["count"], made["total"]) == (1, 300)
    reasons = {s["invoice"]: s["reason"] for s in made["skipped"]}
    assert "has no approval in the audit trail" in reasons[forged["id"]]
    assert "was already paid" in reasons[paid["id"]]
    assert honest["id"] not in reasons


def test_ledger_verify_finds_a_payable_paid_below_zero(app):
    team, (code, _) = month_ready(app)
    inv = approved_invoice(app, team, code)
    made = batch(app)
    # Inflated while its batch waits for the bank, the invoice is paid 840,00 € in the ledger …
    sql(app, "UPDATE invoice SET amount = 84000 WHERE id = :id", id=inv["id"])
    app.run(FIN, finance.confirm_batch, made["id"])
    # … which leaves the provider's payable 831,60 € below zero.
    problems = app.run(ADMIN, statements.verify)["problems"]
    assert any(f"(payable to {PROVIDERS[0]} in example) is negative: {fi(84000)} paid, {fi(840)} owed" in p
               for p in problems), problems


# --- bank details: a change is paid to only after a second person approves it -------------

NEW_IBAN = "FI1410093000123458"  # valid, but nobody approved paying to it
ATTACKER_IBAN = "FI4950009420028730"


def a_changer(app):
    """A named administrator: the person who changes the bank details."""
    from avain.core.services import people

    return Actor("admin", app.run(ADMIN, people.add_worker, pilot_id="example", code="07", name="Worker 07",
                                  role="admin")["id"])


def test_a_change_by_an_unnamed_administrator_is_not_approved_by_a_named_one(app):
    """``admin`` without an id may be any administrator, ``admin:ID`` among them: the
    approval compares people, not the strings the two actors were written as."""
    team, (code, _) = month_ready(app)
    approved_invoice(app, team, code)
    assert app.run(ADMIN, providers.update, PROVIDERS[0], iban=NEW_IBAN)["bank"]["status"] == "pending"
    with pytest.raises(PermissionDenied, match="a second person must approve it"):
        app.run(a_changer(app), provider_bank.approve, PROVIDERS[0])
    approved = app.run(Actor("finance", team["finance"]), provider_bank.approve, PROVIDERS[0])
    assert (approved["changed_by"], approved["iban"]) == ("admin", NEW_IBAN)


def batch(app):
    return app.run(FIN, finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31))


def document(app, batch_id):
    return app.run(FIN, finance.batch_document, batch_id).decode()


def test_an_iban_changed_after_approval_is_not_paid_until_a_second_person_approves_it(app):
    team, (code, other) = month_ready(app)
    changer, finance_person = a_changer(app), Actor("finance", team["finance"])
    inv = approved_invoice(app, team, code)
    c2 = approve(app, team, propose(app, other, 1000, provider=PROVIDERS[1]))
    inv2 = app.run(finance_person, purchases.record_invoice, provider_id=PROVIDERS[1], number="O-1",
                   amount=Money(1000), reference=c2["reference"], on_date=D(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv2["id"])

    changed = app.run(changer, providers.update, PROVIDERS[0], iban=NEW_IBAN)
    assert changed["bank"]["status"] == "pending" and changed["iban"] == NEW_IBAN
    first = batch(app)
    assert first["count"] == 1 and NEW_IBAN not in document(app, first["id"])
    [left_out] = first["skipped"]
    assert left_out["invoice"] == inv["id"]
    assert "wait for a second person's approval" in left_out["reason"]
    assert f"`avain provider approve-bank {PROVIDERS[0]}`" in left_out["reason"]
    app.run(FIN, finance.confirm_batch, first["id"])

    # Not by the person who changed it, nor by someone who does not say who they are.
    with pytest.raises(PermissionDenied, match="a second person must approve it"):
        app.run(changer, provider_bank.approve, PROVIDERS[0])
    with pytest.raises(PermissionDenied, match="needs a named person"):
        app.run(Actor("finance"), provider_bank.approve, PROVIDERS[0])
    with pytest.raises(Refused, match="no approved invoice to pay .*approve-bank"):
        batch(app)
    approved = app.run(finance_person, provider_bank.approve, PROVIDERS[0])
    assert (approved["iban"], approved["changed_by"], approved["approved_by"]) == (
        NEW_IBAN, str(changer), str(finance_person))
    second = batch(app)
    assert (second["count"], second["skipped"]) == (1, []) and NEW_IBAN in document(app, second["id"])
    actions = [e["action"] for e in app.run(ADMIN, audit_log.log, subject=PROVIDERS[0])]
    assert "provider.bank_changed" in actions and "provider.bank_approved" in actions
    assert app.run(ADMIN, providers.show, PROVIDERS[0])["bank"]["status"] == "in force"


def test_an_iban_written_into_the_database_by_hand_is_never_paid(app):
    team, (code, _) = month_ready(app)
    inv = approved_invoice(app, team, code)
    sql(app, "UPDATE provider SET iban = :iban WHERE id = :id", iban=ATTACKER_IBAN, id=PROVIDERS[0])
    with pytest.raises(Refused, match="not the ones approved in avain") as refused:
        batch(app)
    assert f"avain provider update {PROVIDERS[0]} --iban IBAN" in str(refused.value)
    # A forged approval (the row copied with another's signature) is not in force either.
    sql(app, "INSERT INTO provider_bank (provider_id, iban, bic, status, changed_by, changed_at, approved_by, "
             "approved_at, mac) SELECT provider_id, :iban, bic, 'approved', changed_by, changed_at, 'finance:x', "
             "changed_at, mac FROM provider_bank WHERE provider_id = :id", iban=ATTACKER_IBAN, id=PROVIDERS[0])
    with pytest.raises(Refused, match="not the ones approved in avain"):
        batch(app)
    assert app.run(ADMIN, providers.show, PROVIDERS[0])["bank"]["status"] == "unapproved"
    # Back to the approved account, the invoice is paid there.
    sql(app, "UPDATE provider SET iban = :iban WHERE id = :id", iban=IBANS[0], id=PROVIDERS[0])
    sql(app, "DELETE FROM provider_bank WHERE iban = :iban", iban=ATTACKER_IBAN)
    paid = batch(app)
    assert paid["count"] == 1 and IBANS[0] in document(app, paid["id"]) and inv["amount"] == 840


def test_the_first_iban_of_a_provider_without_approved_invoices_takes_effect_at_once(app):
    team, (code, _) = month_ready(app)
    sql(app, "DELETE FROM provider_bank WHERE provider_id = :id", id=PROVIDERS[0])
    sql(app, "UPDATE provider SET iban = NULL WHERE id = :id", id=PROVIDERS[0])
    first = app.run(ADMIN, providers.update, PROVIDERS[0], iban=NEW_IBAN)
    assert first["bank"]["status"] == "in force"
    approved_invoice(app, team, code)
    assert batch(app)["count"] == 1


def test_a_first_iban_set_after_an_invoice_was_approved_needs_a_second_person(app):
    team, (code, _) = month_ready(app)
    sql(app, "DELETE FROM provider_bank WHERE provider_id = :id", id=PROVIDERS[0])
    sql(app, "UPDATE provider SET iban = NULL WHERE id = :id", id=PROVIDERS[0])
    approved_invoice(app, team, code)
    assert app.run(ADMIN, providers.update, PROVIDERS[0], iban=NEW_IBAN)["bank"]["status"] == "pending"
    with pytest.raises(Refused, match="approve-bank"):
        batch(app)


def test_entering_the_approved_iban_again_withdraws_a_pending_change(app):
    team, (code, _) = month_ready(app)
    approved_invoice(app, team, code)
    app.run(ADMIN, providers.update, PROVIDERS[0], iban=NEW_IBAN)
    back = app.run(ADMIN, providers.update, PROVIDERS[0], iban=IBANS[0])
    assert back["bank"]["status"] == "in force"
    assert batch(app)["count"] == 1
    assert [c["status"] for c in app.run(ADMIN, providers.show, PROVIDERS[0])["bank_changes"]] == [
        "registered", "withdrawn"]


def test_the_same_worker_is_the_same_person_whatever_the_role():
    from avain.core.auth import same_person

    assert same_person("admin:kp-07", "finance:kp-07") and same_person("admin", "admin:kp-07")
    assert not same_person("admin:kp-07", "finance:kp-04") and not same_person("admin", "finance:kp-04")


# --- an e-invoice asking payment to another account waits for finance ------------------------


def test_an_e_invoice_with_another_iban_goes_to_review_with_both_accounts(app, tmp_path):
    import finvoice_samples

    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 5000))
    path = tmp_path / "lasku.xml"
    path.write_bytes(finvoice_samples.make(seller_id=PROVIDERS[0], number="E-1", amount=5000,
                                           reference=c["reference"], date=D(2018, 1, 20), iban=ATTACKER_IBAN))
    result = app.run(FIN, finance.import_invoice_file, path)
    assert result["recorded"] == [] and len(result["queued"]) == 1
    [item] = app.run(FIN, finance.review_queue)
    assert item["reason"] == (f"the invoice's IBAN (…8730) differs from the IBAN of provider {PROVIDERS[0]} on "
                              f"record (…0785): check the account with the provider; a new account is set with "
                              f"`avain provider update {PROVIDERS[0]} --iban IBAN` and approved by a second person")
    assert (item["iban"], item["provider_iban"]) == (ATTACKER_IBAN, IBANS[0])  # finance sees both in full
    queued = [e for e in app.run(ADMIN, audit_log.log, subject="finance") if e["action"] == "invoice.queued"]
    assert queued and ATTACKER_IBAN not in str(queued) and IBANS[0] not in str(queued)
    assert app.run(FIN, statements.balance, code)["reserved"] == 5000  # nothing was posted
    # The same invoice with the account on record is recorded.
    path.write_bytes(finvoice_samples.make(seller_id=PROVIDERS[0], number="E-2", amount=5000,
                                           reference=c["reference"], date=D(2018, 1, 20), iban=IBANS[0]))
    assert len(app.run(FIN, finance.import_invoice_file, path)["recorded"]) == 1


def test_ibans_from_before_the_signed_bank_details_are_paid_once_two_people_confirm_them(app):
    team, (code, _) = month_ready(app)
    approved_invoice(app, team, code)
    sql(app, "DELETE FROM provider_bank")  # a database upgraded to 0014: nothing signed yet
    with pytest.raises(Refused, match="not the ones approved in avain"):
        batch(app)
    again = app.run(a_changer(app), providers.update, PROVIDERS[0], iban=IBANS[0])
    assert (again["changed"], again["bank"]["status"]) == ([], "pending")
    app.run(Actor("finance", team["finance"]), provider_bank.approve, PROVIDERS[0])
    assert batch(app)["count"] == 1
