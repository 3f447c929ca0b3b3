"""Correctable provider records: `provider update`, audited with the old values, and a
provider without an IBAN named with the fix wherever it stops a payment."""

import datetime as dt

import pytest
from helpers import PROVIDERS, approve, approve_provider, month_ready, propose
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import PermissionDenied, Refused, ValidationError
from avain.core.models import ProviderRow
from avain.core.services import audit_log, finance, providers, purchases

ADMIN = Actor("admin")
FIN = Actor("finance", "example-04")


def test_update_changes_only_what_is_given_and_audits_old_and_new(app):
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Siivous Oy", iban="FI2112345600000785",
            contact="Maija Meikäläinen", areas=["Kajaani"])
    out = app.run(ADMIN, providers.update, PROVIDERS[0], iban="FI55 4234 5670 0000 81", bic="NDEAFIHH",
                  contact="Matti Virtanen", areas=["Kajaani", "Sotkamo"])
    assert (out["iban"], out["bic"], out["name"]) == ("FI5542345670000081", "NDEAFIHH", "Siivous Oy")
    assert out["changed"] == ["areas", "bic", "contact", "iban"]
    event = [e for e in app.run(ADMIN, audit_log.log, subject=PROVIDERS[0]) if e["action"] == "provider.updated"][0]
    assert event["before"]["iban"] == "FI2112345600000785" and event["after"]["iban"] == "FI5542345670000081"
    assert event["before"]["areas"] == ["Kajaani"] and event["after"]["areas"] == ["Kajaani", "Sotkamo"]
    # The contact may be a person: neither the old nor the new name is in the audit trail.
    assert "Maija" not in str(event) and "Matti" not in str(event)
    # The same values again change nothing and write no event.
    assert app.run(ADMIN, providers.update, PROVIDERS[0], iban="FI5542345670000081")["changed"] == []
    assert len([e for e in app.run(ADMIN, audit_log.log, subject=PROVIDERS[0])
                if e["action"] == "provider.updated"]) == 1


def test_bad_values_are_refused_together_and_nothing_changes(app):
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Siivous Oy")
    with pytest.raises(ValidationError) as err:
        app.run(ADMIN, providers.update, PROVIDERS[0], iban="FI00 1234", bic="XX", einvoice_address="1")
    assert [e.split(":")[0] for e in err.value.errors] == ["--iban", "--bic", "--einvoice"]
    assert app.run(ADMIN, providers.show, PROVIDERS[0])["iban"] is None
    with pytest.raises(ValidationError, match="at least one of"):
        app.run(ADMIN, providers.update, PROVIDERS[0])
    with pytest.raises(PermissionDenied):
        app.run(FIN, providers.update, PROVIDERS[0], iban="FI2112345600000785")


def test_a_provider_without_iban_is_named_with_the_fix_until_it_is_set(app):
    team, (code, _) = month_ready(app)
    with Session(app.engine) as s:  # as registered without an account
        row = s.get(ProviderRow, PROVIDERS[0])
        row.iban = None
        s.add(row)
        s.commit()
    assert approve_provider(app, PROVIDERS[0])["warnings"] == [providers.missing_iban(PROVIDERS[0])]
    c = approve(app, team, propose(app, code, 4000))
    inv = app.run(FIN, purchases.record_invoice, provider_id=PROVIDERS[0], number="N-1", amount=Money(4000),
                  reference=c["reference"], on_date=dt.date(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    with pytest.raises(Refused, match=rf"provider {PROVIDERS[0]} has no IBAN: .*avain provider update "
                                      rf"{PROVIDERS[0]} --iban IBAN"):
        app.run(FIN, finance.create_batch, pilot_id="example", execution_date=dt.date(2018, 1, 31))
    app.run(ADMIN, providers.update, PROVIDERS[0], iban="FI2112345600000785")
    batch = app.run(FIN, finance.create_batch, pilot_id="example", execution_date=dt.date(2018, 1, 31))
    assert (batch["count"], batch["skipped"]) == (1, [])
