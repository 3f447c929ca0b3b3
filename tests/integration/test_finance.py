"""The finance rail through the services: Finvoice in, SEPA batches out, on SQLite and
PostgreSQL."""

import datetime as dt

import finvoice_samples
import pytest
from helpers import PROVIDERS, approve, month_ready, propose

from avain.core import sepa
from avain.core.auth import Actor
from avain.core.errors import Conflict, Refused, ValidationError
from avain.core.services import finance, providers, purchases, statements

FIN = Actor("finance", "example-04")
D = dt.date


def e_invoice(tmp_path, name, **kw):
    path = tmp_path / name
    path.write_bytes(finvoice_samples.make(**kw))
    return path


def test_an_e_invoice_is_recorded_against_its_commitment_and_reimport_changes_nothing(app, tmp_path):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 12000))
    path = e_invoice(tmp_path, "lasku.xml", seller_id=PROVIDERS[0], number="2018-17", amount=11000,
                     reference=c["reference_rf"], date=D(2018, 1, 20))
    first = app.run(FIN, finance.import_invoice_file, path)
    assert (len(first["recorded"]), first["queued"], first["unchanged"]) == (1, [], 0)
    assert app.run(FIN, statements.balance, code)["posted"] == 11000
    again = app.run(FIN, finance.import_invoice_file, path)
    assert (again["recorded"], again["queued"], again["unchanged"]) == ([], [], 1)
    assert len(app.run(FIN, purchases.list_invoices)) == 1
    assert app.run(Actor("admin"), statements.verify)["ok"]


def test_what_cannot_be_recorded_is_queued_with_the_reason(app, tmp_path):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 5000))
    over = e_invoice(tmp_path, "over.xml", seller_id=PROVIDERS[0], number="A-1", amount=6000,
                     reference=c["reference"], date=D(2018, 1, 20))
    unknown_ref = e_invoice(tmp_path, "ref.xml", seller_id=PROVIDERS[0], number="A-2", amount=100,
                            reference="1232", date=D(2018, 1, 20))
    stranger = e_invoice(tmp_path, "who.xml", seller_id="0201256-6", number="A-3", amount=100,
                         reference=c["reference"], date=D(2018, 1, 20))
    for path in (over, unknown_ref, stranger):
        result = app.run(FIN, finance.import_invoice_file, path)
        assert result["recorded"] == [] and len(result["queued"]) == 1
    reasons = [q["reason"] for q in app.run(FIN, finance.review_queue)]
    assert "above the commitment" in reasons[0]
    assert "no payment commitment has reference 1232" in reasons[1]
    assert "0201256-6" in reasons[2] and "not a registered provider" in reasons[2]
    # Queued once: the same file again adds nothing.
    assert app.run(FIN, finance.import_invoice_file, over)["unchanged"] == 1
    assert len(app.run(FIN, finance.review_queue)) == 3
    # Nothing was posted: the commitment still reserves its money.
    assert app.run(FIN, statements.balance, code)["reserved"] == 5000
    first = app.run(FIN, finance.review_queue)[0]["id"]
    app.run(FIN, finance.resolve_review, first, note="asked the provider for a credit note")
    assert len(app.run(FIN, finance.review_queue)) == 2


def test_a_malformed_e_invoice_is_refused_naming_the_file(app, tmp_path):
    month_ready(app)
    bad = tmp_path / "rikki.xml"
    bad.write_bytes(finvoice_samples.make(texts={"InvoiceDetails/InvoiceNumber": ""}))
    with pytest.raises(ValidationError, match="rikki.xml"):
        app.run(FIN, finance.import_invoice_file, bad)
    assert app.run(FIN, finance.review_queue) == []


def _approved_invoice(app, team, code, amount=4000, number="INV-1"):
    c = approve(app, team, propose(app, code, amount))
    inv = app.run(FIN, purchases.record_invoice, provider_id=c["provider"], number=number,
                  amount=purchases.Money(amount), reference=c["reference"], on_date=D(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    return inv


def test_a_batch_pays_only_when_confirmed_and_a_cancelled_one_leaves_nothing_paid(app):
    team, (code, _) = month_ready(app)
    a = _approved_invoice(app, team, code, 4000, "INV-1")
    b = _approved_invoice(app, team, code, 2550, "INV-2")
    batch = app.run(FIN, finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31))
    assert (batch["count"], batch["total"]) == (2, 6550)
    document = app.run(FIN, finance.batch_document, batch["id"])
    assert sepa.read_totals(document) == (2, 6550)
    assert b"RF" in document and b"FI4950009420028730" in document
    # Nothing is paid yet, in the books or the invoices.
    assert {i["status"] for i in app.run(FIN, purchases.list_invoices)} == {"batched"}
    assert app.run(Actor("admin"), statements.verify)["ok"]
    app.run(FIN, finance.cancel_batch, batch["id"])
    assert {i["status"] for i in app.run(FIN, purchases.list_invoices)} == {"approved"}
    with pytest.raises(Conflict, match="cancelled, not prepared"):
        app.run(FIN, finance.confirm_batch, batch["id"])
    again = app.run(FIN, finance.create_batch, pilot_id="example", execution_date=D(2018, 2, 1), version="03")
    assert b"pain.001.001.03" in app.run(FIN, finance.batch_document, again["id"])
    paid = app.run(FIN, finance.confirm_batch, again["id"])
    assert sorted(paid["invoices"]) == sorted([a["id"], b["id"]])
    assert {i["status"] for i in app.run(FIN, purchases.list_invoices)} == {"paid"}
    with pytest.raises(Refused, match="no approved invoice"):
        app.run(FIN, finance.create_batch, pilot_id="example", execution_date=D(2018, 2, 1))
    assert app.run(Actor("admin"), statements.verify)["ok"]


def test_an_invoice_of_a_provider_without_an_iban_waits(app):
    team, (code, _) = month_ready(app)
    app.run(Actor("admin"), providers.add, business_id="0201256-6", name="Tilitön Oy")
    from helpers import approve_provider

    approve_provider(app, "0201256-6", services=("cleaning",))
    app.run(Actor("admin"), purchases.catalogue.set_price, provider_id="0201256-6", service="cleaning",
            price=purchases.Money(5000), valid_from=D(2018, 1, 1))
    c = approve(app, team, propose(app, code, 3000, provider="0201256-6"))
    inv = app.run(FIN, purchases.record_invoice, provider_id="0201256-6", number="X-1",
                  amount=purchases.Money(3000), reference=c["reference"], on_date=D(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    with pytest.raises(Refused, match="1 waiting for a provider's IBAN"):
        app.run(FIN, finance.create_batch, pilot_id="example", execution_date=D(2018, 1, 31))
