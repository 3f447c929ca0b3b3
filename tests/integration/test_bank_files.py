"""The bank's answers close the payment loop: pain.002 status reports and camt.054 debit
notifications read by `pay import`, on SQLite and PostgreSQL."""

import datetime as dt

import bank_samples
import pytest
from helpers import PROVIDERS, approve, month_ready, propose
from sqlmodel import Session, select

from avain.core import bankfiles
from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import Conflict, NotFound, ValidationError
from avain.core.models import BankFileRow
from avain.core.services import audit_log, bank_files, finance, purchases, statements

FIN = Actor("finance", "example-04")
ADMIN = Actor("admin")


def two_invoices_batched(app):
    """Two approved invoices of two providers in one prepared batch."""
    team, (code, other) = month_ready(app)
    ids = []
    for n, (client, provider, cents) in enumerate(((code, PROVIDERS[0], 4000), (other, PROVIDERS[1], 2500)), 1):
        c = approve(app, team, propose(app, client, cents, provider=provider))
        inv = app.run(FIN, purchases.record_invoice, provider_id=provider, number=f"N-{n}", amount=Money(cents),
                      reference=c["reference"], on_date=dt.date(2018, 1, 20))
        app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
        ids.append(inv["id"])
    batch = app.run(FIN, finance.create_batch, pilot_id="example", execution_date=dt.date(2018, 1, 31))
    return batch, ids


def put(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def statuses(app):
    return {i["id"]: i["status"] for i in app.run(ADMIN, purchases.list_invoices)}


def test_an_accepted_status_report_pays_the_batch_once(app, tmp_path):
    batch, ids = two_invoices_batched(app)
    path = put(tmp_path, "pain002.xml", bank_samples.pain002(batch["message_id"], group_status="ACCP"))
    out = app.run(FIN, bank_files.import_bank_file, path)
    assert (out["kind"], out["paid"], out["rejected"], out["already_applied"]) == ("pain.002", ids, [], False)
    assert set(statuses(app).values()) == {"paid"}
    assert app.run(FIN, finance.list_batches)[0]["status"] == "confirmed"
    again = app.run(FIN, bank_files.import_bank_file, path)
    assert again["already_applied"] and again["paid"] == ids  # what the first reading did
    assert app.run(ADMIN, statements.verify)["ok"]
    with Session(app.engine) as s:
        assert len(s.exec(select(BankFileRow)).all()) == 1


def test_a_rejected_payment_returns_to_the_payable_queue_with_the_banks_reason(app, tmp_path):
    batch, (first, second) = two_invoices_batched(app)
    report = bank_samples.pain002(batch["message_id"], group_status="PART", transactions=[
        (f"AVAIN-{first}", "RJCT", "AC04", "Tili on suljettu")])
    out = app.run(FIN, bank_files.import_bank_file, put(tmp_path, "sts.xml", report))
    assert out["paid"] == [second]
    assert out["rejected"] == [{"invoice": first, "code": "AC04", "reason": "Tili on suljettu"}]
    listed = {i["id"]: i for i in app.run(ADMIN, purchases.list_invoices)}
    assert (listed[first]["status"], listed[first]["batch"]) == ("approved", None)
    assert (listed[first]["bank_reason_code"], listed[first]["bank_reason"]) == ("AC04", "Tili on suljettu")
    assert listed[second]["status"] == "paid"
    assert app.run(FIN, finance.list_batches)[0]["status"] == "confirmed"
    assert any(e["action"] == "invoice.payment_rejected" for e in app.run(ADMIN, audit_log.log))
    # The next batch pays it again.
    again = app.run(FIN, finance.create_batch, pilot_id="example", execution_date=dt.date(2018, 2, 5))
    assert (again["count"], again["total"]) == (1, 4000)
    assert app.run(ADMIN, statements.verify)["ok"]


def test_a_whole_file_rejected_returns_every_invoice_and_rejects_the_batch(app, tmp_path):
    batch, ids = two_invoices_batched(app)
    report = bank_samples.pain002(batch["message_id"], group_status="RJCT", group_reason=("FF01", "Invalid file"))
    out = app.run(FIN, bank_files.import_bank_file, put(tmp_path, "rjct.xml", report))
    assert [r["code"] for r in out["rejected"]] == ["FF01", "FF01"] and out["paid"] == []
    assert set(statuses(app).values()) == {"approved"}
    assert app.run(FIN, finance.list_batches)[0]["status"] == "rejected"


def test_a_technical_acceptance_changes_nothing_yet(app, tmp_path):
    batch, ids = two_invoices_batched(app)
    out = app.run(FIN, bank_files.import_bank_file,
                  put(tmp_path, "actc.xml", bank_samples.pain002(batch["message_id"], group_status="ACTC")))
    assert (out["paid"], out["unchanged"]) == ([], ids)
    assert set(statuses(app).values()) == {"batched"}


def test_booked_debits_pay_by_end_to_end_id_or_by_batch(app, tmp_path):
    batch, (first, second) = two_invoices_batched(app)
    one = bank_samples.camt054([{"amount": 4000, "end_to_end": [(f"AVAIN-{first}", 4000)]},
                                {"amount": 100, "status": "PDNG", "end_to_end": [(f"AVAIN-{second}", 2500)]}])
    out = app.run(FIN, bank_files.import_bank_file, put(tmp_path, "camt1.xml", one))
    assert (out["kind"], out["paid"], out["ignored_entries"]) == ("camt.054", [first], 1)
    assert app.run(FIN, finance.list_batches)[0]["status"] == "prepared"
    whole = bank_samples.camt054([{"amount": 6500, "batch": batch["message_id"]}], message_id="BANK-NTF-2")
    out = app.run(FIN, bank_files.import_bank_file, put(tmp_path, "camt2.xml", whole))
    assert (out["paid"], out["unchanged"]) == ([second], [first])
    assert app.run(FIN, finance.list_batches)[0]["status"] == "confirmed"
    assert app.run(FIN, bank_files.import_bank_file, tmp_path / "camt2.xml")["already_applied"]
    assert app.run(ADMIN, statements.verify)["ok"]


def test_unknown_references_are_refused_naming_the_file_and_entry_and_nothing_is_applied(app, tmp_path):
    batch, (first, second) = two_invoices_batched(app)
    unknown_batch = put(tmp_path, "a.xml", bank_samples.pain002("AVAIN-EX-999999", group_status="ACCP"))
    with pytest.raises(NotFound, match="a.xml: OrgnlGrpInfAndSts/OrgnlMsgId AVAIN-EX-999999"):
        app.run(FIN, bank_files.import_bank_file, unknown_batch)
    stray = put(tmp_path, "b.xml", bank_samples.pain002(batch["message_id"], group_status="ACCP", transactions=[
        ("AVAIN-424242", "RJCT", "AC01", None)]))
    with pytest.raises(ValidationError, match=r"b.xml: OrgnlPmtInfAndSts\[1\]/TxInfAndSts\[1\] \(AVAIN-424242\)"):
        app.run(FIN, bank_files.import_bank_file, stray)
    half = put(tmp_path, "c.xml", bank_samples.camt054([
        {"amount": 4000, "end_to_end": [(f"AVAIN-{first}", 4000)]},
        {"amount": 999, "end_to_end": [("AVAIN-777", 999)]}]))
    with pytest.raises(ValidationError, match=r"c.xml: Ntfctn\[1\]/Ntry\[2\]/TxDtls\[1\] \(AVAIN-777\)"):
        app.run(FIN, bank_files.import_bank_file, half)
    wrong_sum = put(tmp_path, "d.xml", bank_samples.camt054([{"amount": 6000, "batch": batch["message_id"]}]))
    with pytest.raises(ValidationError, match="d.xml: .*booked 60.00 EUR, avain sent 65.00 EUR"):
        app.run(FIN, bank_files.import_bank_file, wrong_sum)
    assert set(statuses(app).values()) == {"batched"}  # nothing half-written
    with Session(app.engine) as s:
        assert s.exec(select(BankFileRow)).all() == []


def test_malformed_and_invalid_files_are_refused_with_the_file_named(app, team, tmp_path):
    with pytest.raises(ValidationError, match="broken.xml: not an XML document"):
        app.run(FIN, bank_files.import_bank_file, put(tmp_path, "broken.xml", b"<Document><Cstmr"))
    with pytest.raises(ValidationError, match="other.xml: not a bank answer avain reads"):
        app.run(FIN, bank_files.import_bank_file, put(tmp_path, "other.xml", b"<Finvoice/>"))
    invalid = bank_samples.pain002("AVAIN-EX-000001", group_status="ACCP").replace(b"<MsgId>BANK-STS-1</MsgId>", b"")
    with pytest.raises(ValidationError, match="invalid.xml: /Document/CstmrPmtStsRpt/GrpHdr"):
        app.run(FIN, bank_files.import_bank_file, put(tmp_path, "invalid.xml", invalid))
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><Document>&a;</Document>'
    with pytest.raises(ValidationError, match="bomb.xml: refused"):
        app.run(FIN, bank_files.import_bank_file, put(tmp_path, "bomb.xml", bomb))


def test_the_samples_validate_against_the_official_schemas():
    for version, data in (("pain.002.001.11", bank_samples.pain002("M", group_status="ACCP", transactions=[
            ("AVAIN-1", "RJCT", "AC04", "closed")])),
                          ("camt.054.001.08", bank_samples.camt054([{"amount": 1, "batch": "M"}]))):
        assert bankfiles.schema(version).is_valid(data)


def test_after_a_partial_answer_confirm_pays_the_rest_and_cancel_is_refused(app, tmp_path):
    batch, (first, second) = two_invoices_batched(app)
    one = bank_samples.camt054([{"amount": 4000, "end_to_end": [(f"AVAIN-{first}", 4000)]}])
    app.run(FIN, bank_files.import_bank_file, put(tmp_path, "camt.xml", one))
    with pytest.raises(Conflict, match=f"paid invoice {first} of it; it cannot be cancelled"):
        app.run(FIN, finance.cancel_batch, batch["id"])
    assert app.run(FIN, finance.confirm_batch, batch["id"])["invoices"] == [second]
    assert set(statuses(app).values()) == {"paid"}
    assert app.run(ADMIN, statements.verify)["ok"]
