"""Providers, approvals, prices, search, ratings, the public register and the budget
calculator through the services, on SQLite and PostgreSQL."""

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from helpers import CHECKS, HETUS, PROVIDERS, approve, approve_provider, enroll, month_ready, pay_approved, propose

from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from avain.core.services import budget, catalogue, plans, providers, purchases

ADMIN = Actor("admin")
D = dt.date


def test_providers_are_validated_on_registration(app):
    with pytest.raises(ValidationError, match="--ytunnus: '1572860-1' is not a valid Y-tunnus"):
        app.run(ADMIN, providers.add, business_id="1572860-1", name="X")
    with pytest.raises(ValidationError, match="--iban: 'FI00 1234' is not a valid IBAN"):
        app.run(ADMIN, providers.add, business_id="1572860-0", name="X", iban="FI00 1234")
    data = app.run(ADMIN, providers.add, business_id="15728600", name="Kotiapu Oy",
                   iban="FI21 1234 5600 0007 85", einvoice_address="003715728600", areas=["Kajaani", "Sotkamo"])
    assert (data["id"], data["iban"], data["areas"]) == ("1572860-0", "FI2112345600000785", ["Kajaani", "Sotkamo"])
    with pytest.raises(Conflict):
        app.run(ADMIN, providers.add, business_id="1572860-0", name="Again")


def test_approval_needs_evidence_for_every_criterion_including_the_pilots_own(app):
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Kotiapu Oy")
    partial = {k: v for k, v in CHECKS.items() if k != "hb_training"}
    with pytest.raises(ValidationError) as err:
        app.run(ADMIN, providers.approve, PROVIDERS[0], pilot_id="example", services=["cleaning", "sauna"],
                checks=partial, valid_from=D(2018, 1, 1))
    assert "--check: hb_training (The provider's staff took part in the organiser's HB briefing) has no evidence" \
        in err.value.errors
    assert "--service: sauna is not in the catalogue" in err.value.errors
    a = app.run(ADMIN, providers.approve, PROVIDERS[0], pilot_id="example", services=["cleaning"],
                checks=dict(CHECKS), valid_from=D(2018, 1, 1))
    assert a["valid_to"] == "2019-12-31"  # the pilot's 24 months
    assert a["checklist"]["liability_insurance"]["checked_on"] == "2017-12-01"


def test_approval_and_revocation_timeline(app):
    team, (code, _) = month_ready(app)
    ok = approve(app, team, propose(app, code, 1000, day=D(2018, 1, 10)))
    assert ok["flag"] is None
    pending = approve(app, team, propose(app, code, 2000, day=D(2018, 1, 20)))
    revoked = app.run(ADMIN, providers.revoke, PROVIDERS[0], pilot_id="example",
                      reason="liability insurance lapsed", on_date=D(2018, 1, 15))
    assert set(revoked["flagged_commitments"]) == {ok["id"], pending["id"]}
    flagged = app.run(ADMIN, purchases.list_commitments, status="pending")
    assert all("liability insurance lapsed" in c["flag"] for c in flagged)
    # Revocation takes effect at once: nothing new is approved, even for an earlier day.
    early = propose(app, code, 500, day=D(2018, 1, 12))
    with pytest.raises(Refused, match="approval revoked on 2018-01-15: liability insurance lapsed"):
        approve(app, team, early, today=D(2018, 1, 16))
    # The other provider is unaffected.
    assert approve(app, team, propose(app, code, 500, provider=PROVIDERS[1]))["status"] == "pending"
    with pytest.raises(NotFound):
        app.run(ADMIN, providers.revoke, PROVIDERS[0], pilot_id="example", reason="again", on_date=D(2018, 2, 1))


def test_purchase_rules_come_back_in_words(app):
    team, (code, _) = month_ready(app)
    with pytest.raises(Refused) as err:
        approve(app, team, propose(app, code, 1000, service="laundry"))
    assert err.value.reasons == [
        "Vaatehuoltopalvelu is not in the client's plan",
        "Provider 0 is not approved for Vaatehuoltopalvelu on 15.1.2018 (no approval for this service)",
        "Provider 0 has no price for Vaatehuoltopalvelu on 15.1.2018 in the catalogue",
    ]
    with pytest.raises(Refused, match="more than Provider 0's catalogue price for 2 × Siivouspalvelu"):
        _approve_units(app, team, code)
    with pytest.raises(NotFound, match="'sauna' is not in the catalogue"):
        propose(app, code, 1000, service="sauna")


def _approve_units(app, team, code):
    pid = app.run(Actor("client", code), purchases.propose, code, service="cleaning", units=2,
                  provider_id=PROVIDERS[0], amount=Money(100001), service_date=D(2018, 1, 5))["id"]
    return app.run(Actor("worker", team["worker"]), purchases.approve, pid, today=D(2018, 1, 5))


def test_a_service_the_pilot_does_not_allow_is_refused(app):
    team, (code, _) = month_ready(app)
    app.run(Actor("worker", team["worker"]), plans.set_plan, code, valid_from=D(2018, 1, 2),
            items={"cleaning": 2, "speech-therapy": 1})
    with pytest.raises(Refused, match="Puheterapia is not among the services this pilot's budgets may buy"):
        approve(app, team, propose(app, code, 1000, service="speech-therapy", day=D(2018, 1, 3)))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_accepts_good_rows_names_bad_ones_and_is_idempotent(app, tmp_path):
    for i, pid in enumerate(PROVIDERS):
        app.run(ADMIN, providers.add, business_id=pid, name=f"P{i}")
    path = write(tmp_path, "prices.csv", "\n".join([
        "provider,service,price,valid_from,valid_to",
        "1572860-0,cleaning,\"32,50\",2018-01-01,2018-06-30",   # line 2: good, comma decimal
        "1572860-0,cleaning,33.50,2018-07-01,",                  # line 3: good, dot decimal
        "1572860-0,cleaning,34.00,2018-06-01,2018-12-31",        # line 4: overlaps line 2
        "1572860-0,sauna,10,2018-01-01,",                        # line 5: unknown service
        "1572860-1,meals,10,2018-01-01,",                        # line 6: bad Y-tunnus
        "0737546-2,meals,abc,2018-01-01,",                       # line 7: bad price
        "0737546-2,meals,\"8,5\",2018-01-01,",                   # line 8: good
        "0737546-2,meals,8.555,2018-01-01,",                     # line 9: fraction of a cent
        "",
    ]))
    result = app.run(ADMIN, catalogue.import_file, path)
    assert (result["added"], result["unchanged"]) == (3, 0)
    where = {r["where"]: r["reason"] for r in result["rejected"]}
    assert set(where) == {"line 4", "line 5", "line 6", "line 7", "line 9"}
    assert "overlaps the price of 2018-01-01–2018-06-30" in where["line 4"]
    assert "'sauna' is not in the catalogue" in where["line 5"]
    assert "provider: '1572860-1' is not a valid Y-tunnus" in where["line 6"]
    assert where["line 7"].startswith("price: ")
    again = app.run(ADMIN, catalogue.import_file, path)
    assert (again["added"], again["unchanged"], len(again["rejected"])) == (0, 3, 5)
    assert app.run(ADMIN, lambda uow: catalogue.price_on(uow, "1572860-0", "cleaning", D(2018, 8, 1))) == 3350


def test_import_of_services_from_json(app, tmp_path):
    path = write(tmp_path, "services.json", json.dumps([
        {"code": "music-therapy", "name_fi": "Musiikkiterapia", "category": "rehabilitation", "unit": "visit"},
        {"code": "Bad Code", "name_fi": "X", "category": "x", "unit": "visit"},
        {"code": "dog-walking", "name_fi": "Koiran ulkoilutus", "category": "support", "unit": "week"},
    ]))
    result = app.run(ADMIN, catalogue.import_file, path)
    assert result["added"] == 1
    assert [r["where"] for r in result["rejected"]] == ["row 2", "row 3"]
    assert result["rejected"][1]["reason"].startswith("unit: 'week' is not one of")


def test_search_sorts_by_price_or_rating_and_export_has_no_personal_data(app, tmp_path):
    team, (code, _) = month_ready(app)
    cheap = "0201256-6"
    app.run(ADMIN, providers.add, business_id=cheap, name="Edullinen Oy", areas=["Kajaani"])
    approve_provider(app, cheap, services=("cleaning",))
    app.run(ADMIN, catalogue.set_price, provider_id=cheap, service="cleaning", price=Money(4000),
            valid_from=D(2018, 1, 1), valid_to=D(2018, 12, 31))
    with pytest.raises(ValidationError, match="overlaps"):
        app.run(ADMIN, catalogue.set_price, provider_id=cheap, service="cleaning", price=Money(4100),
                valid_from=D(2018, 6, 1))
    cheapest = app.run(ADMIN, catalogue.search, service="cleaning", on_date=D(2018, 2, 1))
    assert [r["provider"] for r in cheapest][0] == cheap
    assert [r["provider"] for r in app.run(ADMIN, catalogue.search, service="cleaning", area="kajaani",
                                           max_price=Money(4500), on_date=D(2018, 2, 1))] == [cheap]
    # A paid purchase from the dearer provider, rated 5 by the client.
    c = approve(app, team, propose(app, code, 5000))
    inv = app.run(Actor("finance", "example-04"), purchases.record_invoice, provider_id=PROVIDERS[0], number="1",
                  amount=Money(5000), reference=c["reference"], on_date=D(2018, 1, 20))
    with pytest.raises(Conflict, match="not paid yet"):
        app.run(Actor("client", code), catalogue.rate, inv["id"], stars=5)
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    pay_approved(app)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["worker"]), catalogue.rate, inv["id"], stars=5)
    with pytest.raises(ValidationError, match="--stars"):
        app.run(Actor("client", code), catalogue.rate, inv["id"], stars=6)
    rated = app.run(Actor("client", code), catalogue.rate, inv["id"], stars=5, text="Hyvä")
    assert (rated["average"], rated["ratings"]) == (5.0, 1)
    with pytest.raises(Conflict):
        app.run(Actor("client", code), catalogue.rate, inv["id"], stars=4)
    best = app.run(ADMIN, catalogue.search, service="cleaning", on_date=D(2018, 2, 1), sort="rating")
    assert best[0]["provider"] == PROVIDERS[0]
    data = app.run(ADMIN, catalogue.export, on_date=D(2018, 2, 1))
    written = catalogue.write_export(data, tmp_path / "public")
    text = "".join(Path(p).read_text(encoding="utf-8") for p in written)
    for secret in (*HETUS[:2], code, "Testi", "FI21", "Hyvä"):
        assert secret not in text
    rows = list(csv.DictReader(io.StringIO(Path(written[1]).read_text(encoding="utf-8"))))
    assert {r["service"] for r in rows} == {"cleaning", "meals", "escort"}


def test_the_calculator_budget_is_kept_on_the_decision_and_reproducible(app):
    team, (code, _) = month_ready(app, grant=False, period=False)
    worker = Actor("worker", team["worker"])
    # The example pilot prices cleaning at 35,00 € until 30.6.2018 and 36,50 € after it.
    app.run(worker, plans.set_plan, code, valid_from=D(2018, 1, 1), items={"cleaning": 4})
    d1 = app.run(worker, budget.grant, code, valid_from=D(2018, 1, 1), valid_to=D(2018, 6, 30))
    assert d1["rule"] == "budget_calculator/1" and d1["at_grant"]["amount"] == 14000
    d2 = app.run(worker, budget.grant, code, valid_from=D(2018, 7, 1), valid_to=D(2018, 12, 31))
    assert d2["at_grant"]["amount"] == 14600
    explained = app.run(worker, budget.explain, code, Period(2018, 3))
    assert explained["amount"] == 14000
    assert explained["parts"][0]["details"]["lines"][0]["detail"].startswith("4 × 35,00")
    with pytest.raises(ValidationError, match="'plan' is reserved"):
        app.run(worker, budget.grant, code, valid_from=D(2018, 1, 1), valid_to=D(2018, 1, 31),
                inputs={"plan": "x"})


def test_a_decision_renewed_mid_month_gives_the_month_in_two_parts(app):
    team, (code, _) = month_ready(app, grant=False, period=False)
    worker = Actor("worker", team["worker"])
    app.run(worker, budget.grant, code, valid_from=D(2018, 1, 1), valid_to=D(2018, 12, 31))
    app.run(worker, plans.set_plan, code, valid_from=D(2018, 1, 17), items={"cleaning": 8})
    app.run(worker, budget.grant, code, valid_from=D(2018, 1, 17), valid_to=D(2018, 12, 31))
    explained = app.run(worker, budget.explain, code, Period(2018, 1))
    assert [p["days"] for p in explained["parts"]] == ["2018-01-01–2018-01-16", "2018-01-17–2018-01-31"]
    # first plan 4×35 + 20×8,50 + 2×30 = 370 € capped at 300 €; second 8×35 = 280 €
    assert explained["amount"] == 30000 * 16 // 31 + (28000 - 28000 * 16 // 31)
    opened = budget.open_period(app, Actor("finance", "example-04"), "example", Period(2018, 1))
    assert opened["amount"] == explained["amount"]
    feb = app.run(worker, budget.explain, code, Period(2018, 2))
    assert feb["amount"] == 28000


def test_plans_refuse_unknown_services_and_silly_quantities(app):
    team, (code, _) = month_ready(app, grant=False, period=False)
    worker = Actor("worker", team["worker"])
    with pytest.raises(ValidationError, match="sauna not in the catalogue"):
        app.run(worker, plans.set_plan, code, valid_from=D(2018, 1, 1), items={"sauna": 1})
    with pytest.raises(ValidationError, match="cleaning=0"):
        app.run(worker, plans.set_plan, code, valid_from=D(2018, 1, 1), items={"cleaning": 0})
    other = enroll(app, hetu=HETUS[3], worker=team["other_worker"])
    with pytest.raises(PermissionDenied):
        app.run(worker, plans.set_plan, other, valid_from=D(2018, 1, 1), items={"cleaning": 1})
    assert [p["version"] for p in app.run(worker, plans.show, code)] == [1]
