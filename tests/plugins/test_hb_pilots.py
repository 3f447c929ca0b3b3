"""The seven pilots of the national HB project: each one's eligibility and intake rules at
their boundaries, its client codes, a sample budget, and a purchase it refuses and one it
allows — all through the same services the commands use, on both engines."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from helpers import IBANS, PROVIDERS, finance_of

from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.errors import Conflict, NotFound, Refused, ValidationError
from avain.core.services import budget, catalogue, payments, people, pilots, plans, providers, purchases
from avain.plugins.payment_epassi import backend as epassi_backend
from avain.plugins.payment_psop import backend as psop_backend

ADMIN = Actor("admin")
SEVEN = ["eksote", "hameenlinna", "kainuu-respite", "kainuu-voucher", "pori", "tampere", "vantaa"]
JAN = Period(2018, 1)
CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(born: dt.date, n: int) -> str:
    """A well-formed henkilötunnus for a birth date (made up: individual numbers 800–899)."""
    digits = f"{born:%d%m%y}{800 + n:03d}"
    return f"{born:%d%m%y}{ {18: '+', 19: '-', 20: 'A'}[born.year // 100]}{digits[6:]}{CHECK[int(digits) % 31]}"


def team(app, pilot_id: str, codes=("01",)) -> list[str]:
    sup = app.run(ADMIN, people.add_worker, pilot_id=pilot_id, code="90", name="Esimies", role="supervisor")["id"]
    return [app.run(ADMIN, people.add_worker, pilot_id=pilot_id, code=c, name=f"Työntekijä {c}", role="worker",
                    supervisor_id=sup)["id"] for c in codes]


def join(app, pilot_id, worker, *, group=None, born=dt.date(1980, 5, 5), n=0, on=dt.date(2018, 1, 1),
         control=False, **assessment) -> str:
    # The national pilots take HB clients only with their consent to the evaluation.
    return app.run(ADMIN, people.enroll, pilot_id=pilot_id, hetu=hetu(born, n), name="Testi Henkilö",
                   worker_id=worker, group_id=group, control=control, assessment=assessment, on_date=on,
                   phone="+358401234567", consents=("evaluation",))["code"]


def refused(app, *args, **kw) -> str:
    with pytest.raises(Refused) as caught:
        join(app, *args, **kw)
    return str(caught.value)


def test_every_pilot_is_listed_and_described_in_words(app):
    listed = [p["id"] for p in app.run(ADMIN, pilots.list_pilots)]
    assert set(SEVEN) <= set(listed)
    rules = {pid: app.run(ADMIN, pilots.show, pid)["rules"] for pid in SEVEN}
    assert "every client: aged under 18 on the day of the enrolment" in rules["kainuu-respite"]
    assert "every client: the need assessment gives avain_status = yes" in rules["kainuu-respite"]
    assert any(r.startswith("client numbers: the worker's code 01–09") for r in rules["kainuu-voucher"])
    assert "no new clients after 2018-08-31" in rules["pori"] and "at most 20 HB clients" in rules["pori"]
    assert "group carer-support: aged under 21 on the day of the enrolment" in rules["tampere"]
    assert "group young-parents: aged at least 18 and under 30 on the day of the enrolment" in rules["vantaa"]


# --- Kainuu -------------------------------------------------------------------------------


def test_kainuu_respite_a_child_under_18_of_a_contracted_carer_with_avain_status(app):
    [worker] = team(app, "kainuu-respite")
    facts = {"carer_contract": "yes", "avain_status": "yes"}
    born = dt.date(2000, 3, 15)
    # The day before the 18th birthday the child may join; on the birthday not.
    assert join(app, "kainuu-respite", worker, born=born, on=dt.date(2018, 3, 14), **facts) == "KO-0101"
    why = refused(app, "kainuu-respite", worker, born=born, n=1, on=dt.date(2018, 3, 15), **facts)
    assert "the client must be under 18 on 2018-03-15 (is 18)" in why
    why = refused(app, "kainuu-respite", worker, born=dt.date(2010, 1, 1), n=2, carer_contract="yes")
    assert "avain_status as yes (give --assess avain_status=yes)" in why
    # No worker discretion: no other fact matters, nor is any other asked.
    assert join(app, "kainuu-respite", worker, born=dt.date(2010, 1, 1), n=3, mood="bad", **facts) == "KO-0102"


def test_kainuu_respite_takes_15_and_numbers_clients_by_worker_codes(app):
    w1, w9, w10 = team(app, "kainuu-respite", ("01", "09", "10"))
    facts = {"carer_contract": "yes", "avain_status": "yes"}
    codes = [join(app, "kainuu-respite", w9 if i % 2 else w1, born=dt.date(2008, 1, 1) + dt.timedelta(days=i),
                  n=i, **facts) for i in range(15)]
    assert codes[:3] == ["KO-0101", "KO-0901", "KO-0102"] and len(set(codes)) == 15
    assert "pilot kainuu-respite is full (15 clients)" in refused(app, "kainuu-respite", w1, born=dt.date(2009, 1, 1),
                                                                  n=20, **facts)
    app.run(ADMIN, people.end, codes[0], on_date=dt.date(2018, 2, 1))
    with pytest.raises(ValidationError, match="by worker codes 01–09; kainuu-respite-10 has code 10"):
        join(app, "kainuu-respite", w10, born=dt.date(2009, 1, 1), n=21, **facts)
    assert join(app, "kainuu-respite", w1, born=dt.date(2009, 1, 1), n=22, **facts) == "KO-0109"


def test_kainuu_respite_pays_300_a_month_through_epassi(app):
    [worker] = team(app, "kainuu-respite")
    code = join(app, "kainuu-respite", worker, born=dt.date(2010, 1, 1), carer_contract="yes", avain_status="yes")
    app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31))
    assert app.run(ADMIN, budget.explain, code, JAN)["amount"] == 30000
    shown = app.run(ADMIN, pilots.show, "kainuu-respite")
    assert "monthly budget at most 300,00\xa0€" in shown["rules"]


def test_kainuu_voucher_needs_a_continuous_wide_need_and_caps_each_group(app):
    [worker] = team(app, "kainuu-voucher")
    ok = {"need": "continuous-wide", "can_plan": "with-support"}
    why = refused(app, "kainuu-voucher", worker, group="elderly", born=dt.date(1940, 1, 1), need="occasional",
                  can_plan="alone")
    assert "need as continuous-wide (it says occasional)" in why
    assert "can_plan as alone or with-support" in refused(app, "kainuu-voucher", worker, group="disabled",
                                                          n=1, need="continuous-wide", can_plan="no")
    for i in range(5):
        join(app, "kainuu-voucher", worker, group="intellectual", n=10 + i, **ok)
    assert "group intellectual of pilot kainuu-voucher is full (5 clients)" in refused(
        app, "kainuu-voucher", worker, group="intellectual", n=20, **ok)
    assert join(app, "kainuu-voucher", worker, group="elderly", born=dt.date(1940, 1, 1), n=21, **ok) == "KS-0106"
    # Controls are checked for comparability, never counted against the caps.
    assert join(app, "kainuu-voucher", worker, group="intellectual", n=22, control=True, **ok) == "KS-0107"


def _buyer(app, pilot_id, group, services, plan_items, open_month=True, **facts):
    """A client with a plan, a decision for 2018 and January open; a provider approved and
    priced for ``services``. Returns (worker, code)."""
    [worker] = team(app, pilot_id)
    code = join(app, pilot_id, worker, group=group, **facts)
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Palvelu Oy", iban=IBANS[0])
    pilot = app.run(ADMIN, pilots.get, pilot_id)
    checks = {c: ("seen", dt.date(2017, 12, 1)) for c in providers.criteria(pilot)}
    app.run(ADMIN, providers.approve, PROVIDERS[0], pilot_id=pilot_id, services=list(services), checks=checks,
            valid_from=dt.date(2018, 1, 1))
    for s in services:
        app.run(ADMIN, catalogue.set_price, provider_id=PROVIDERS[0], service=s, price=Money(9000),
                valid_from=dt.date(2017, 1, 1))
    app.run(Actor("worker", worker), plans.set_plan, code, valid_from=dt.date(2018, 1, 1), items=plan_items)
    app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1),
            valid_to=dt.date(2018, 12, 31))
    if open_month:
        budget.open_period(app, finance_of(app, pilot_id), pilot_id, JAN)
    return worker, code


def _propose(app, code, service, euros):
    return app.run(Actor("client", code), purchases.propose, code, service=service, units=1,
                   provider_id=PROVIDERS[0], amount=Money(euros * 100), service_date=dt.date(2018, 1, 15),
                   text="tarvitsen")["id"]


def test_kainuu_voucher_budget_is_the_plan_at_own_production_prices(app):
    _, code = _buyer(app, "kainuu-voucher", "elderly", ["home-care", "personal-assistance"],
                     {"home-care": 10, "personal-assistance": 20}, open_month=False, need="continuous-wide",
                     can_plan="alone")
    # 10 h home care × 45 € + 20 h personal assistance × 25 € = 950 €.
    assert app.run(ADMIN, budget.explain, code, JAN)["amount"] == 95000


# --- Pori ---------------------------------------------------------------------------------


def test_pori_an_adult_with_a_family_and_a_listed_burdening_factor(app):
    [worker] = team(app, "pori")
    ok = {"family": "yes", "burdening_factor": "single-parent"}
    assert join(app, "pori", worker, **ok) == "PO-P-01-001"
    assert "burdening_factor as" in refused(app, "pori", worker, n=1, family="yes", burdening_factor="unemployment")
    why = refused(app, "pori", worker, born=dt.date(2000, 6, 1), n=2, **ok)
    assert "the client must be at least 18 on 2018-01-01 (is 17)" in why


def test_pori_takes_20_clients_and_none_after_the_summer_of_2018(app):
    [worker] = team(app, "pori")
    ok = {"family": "yes", "burdening_factor": "multiple-pregnancy"}
    for i in range(20):
        join(app, "pori", worker, n=i, **ok)
    assert "pilot pori is full (20 clients)" in refused(app, "pori", worker, n=20, **ok)  # the 21st
    app.run(ADMIN, people.end, "PO-P-01-001", on_date=dt.date(2018, 8, 1))
    assert join(app, "pori", worker, n=21, on=dt.date(2018, 8, 31), **ok) == "PO-P-01-021"  # the last day
    app.run(ADMIN, people.end, "PO-P-01-002", on_date=dt.date(2018, 8, 31))
    why = refused(app, "pori", worker, n=22, on=dt.date(2018, 9, 1), **ok)
    assert "pilot pori takes no new clients after 2018-08-31" in why


def test_pori_refuses_a_purchase_outside_the_plan_and_allows_one_in_it(app):
    worker, code = _buyer(app, "pori", None, ["family-work", "childcare", "speech-therapy"],
                          {"family-work": 4, "childcare": 10}, family="yes", burdening_factor="single-parent")
    # 4 × 60 € family work + 10 × 30 € childcare = 540 €.
    assert app.run(ADMIN, budget.explain, code, JAN)["amount"] == 54000
    outside = _propose(app, code, "speech-therapy", 50)
    with pytest.raises(Refused, match="Puheterapia is not in the client's plan"):
        app.run(Actor("worker", worker), purchases.approve, outside, today=dt.date(2018, 1, 10))
    inside = _propose(app, code, "family-work", 60)
    done = app.run(Actor("worker", worker), purchases.approve, inside, today=dt.date(2018, 1, 10))
    assert done["commitment"]["amount"] == 6000


#: For each pilot paying through commitments: a group, its facts, two services in the plan
#: and one the pilot buys but the plan does not hold.
BUYERS = {
    "tampere": ("disability", {"disability_services": "yes"}, ["personal-assistance", "day-activity"], "childcare"),
    "vantaa": ("family-counselling", {"family_counselling": "yes"}, ["family-work", "childcare"], "hobby"),
    "hameenlinna": (None, {"offered_at_assessment": "yes"}, ["home-care", "cleaning"], "hobby"),
    "eksote": ("disability", {"disability_services": "yes"}, ["personal-assistance", "transport"], "hobby"),
    "pori": (None, {"family": "yes", "burdening_factor": "single-parent"}, ["family-work", "childcare"], "hobby"),
}


@pytest.mark.parametrize("pilot_id", sorted(BUYERS))
def test_each_pilot_refuses_a_purchase_outside_the_plan_and_allows_one_in_it(app, pilot_id):
    group, facts, planned, outside = BUYERS[pilot_id]
    worker, code = _buyer(app, pilot_id, group, [*planned, outside], dict.fromkeys(planned, 4), **facts)
    assert app.run(ADMIN, budget.explain, code, JAN)["amount"] > 0
    refused_id = _propose(app, code, outside, 20)
    with pytest.raises(Refused, match="is not in the client's plan"):
        app.run(Actor("worker", worker), purchases.approve, refused_id, today=dt.date(2018, 1, 10))
    allowed = _propose(app, code, planned[0], 20)
    done = app.run(Actor("worker", worker), purchases.approve, allowed, today=dt.date(2018, 1, 10))
    assert done["commitment"]["amount"] == 2000


@pytest.fixture
def rail(app, tmp_path):
    """``rail(pilot_id)``: the pilot pointed at its backend's local simulator, which runs
    until the test ends."""
    with ExitStack() as running:
        def start(pilot_id):
            pilot = app.run(ADMIN, pilots.get, pilot_id)
            sim = running.enter_context(payments.backend_for(app.pm, pilot).simulator(tmp_path, JAN))
            for section, values in sim.settings.items():
                app.run(ADMIN, pilots.configure_section, pilot_id, section, values)
            return app.run(ADMIN, pilots.get, pilot_id)

        yield start


def test_kainuu_respite_a_wallet_charge_within_the_month_is_allowed_and_one_beyond_it_refused(app, rail):
    pilot = rail("kainuu-respite")
    [worker] = team(app, "kainuu-respite")
    code = join(app, "kainuu-respite", worker, born=dt.date(2010, 1, 1), carer_contract="yes", avain_status="yes")
    app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31))
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Siivous Oy", iban=IBANS[0])
    opened = budget.open_period(app, finance_of(app, "kainuu-respite"), "kainuu-respite", JAN)
    assert opened["backend"]["loaded"] == 1
    charge = epassi_backend.charge(pilot, phone="+358401234567", provider=PROVIDERS[0], amount=Money(12000),
                                   identity_checked=True)
    assert charge["balance"] == 18000
    with pytest.raises(Refused, match="the wallet holds 180,00"):  # 300 € a month, no more
        epassi_backend.charge(pilot, phone="+358401234567", provider=PROVIDERS[0], amount=Money(20000),
                              identity_checked=True)
    with pytest.raises(Refused, match="identity check"):
        epassi_backend.charge(pilot, phone="+358401234567", provider=PROVIDERS[0], amount=Money(1000),
                              identity_checked=False)


def test_kainuu_voucher_an_event_on_the_voucher_is_recorded_and_one_off_it_refused(app, rail):
    pilot = rail("kainuu-voucher")
    _, code = _buyer(app, "kainuu-voucher", "elderly", ["home-care", "personal-assistance"], {"home-care": 10},
                     need="continuous-wide", can_plan="alone")
    client = psop_backend.Settings.of(pilot).client()
    voucher = f"{psop_backend.voucher_prefix(pilot, JAN)}{code}"
    event = {"voucher_id": voucher, "provider": PROVIDERS[0], "date": "2018-01-10", "units": 2,
             "unit_price": 4500, "recorded_on": "2018-01-10"}
    assert client.record_event({**event, "event_id": "e1", "service": "home-care"})["status"] == "recorded"
    off = client.record_event({**event, "event_id": "e2", "service": "personal-assistance"})
    assert off["status"] == "refused" and "personal-assistance is not on the voucher" in off["reason"]
    beyond = client.record_event({**event, "event_id": "e3", "service": "home-care", "units": 9})
    assert beyond["status"] == "refused" and "beyond the remaining value of home-care" in beyond["reason"]


# --- Tampere, Vantaa, Hämeenlinna, Eksote ------------------------------------------------------


def test_tampere_each_group_has_its_own_rule(app):
    [worker] = team(app, "tampere")
    assert join(app, "tampere", worker, group="disability", disability_services="yes") == "TA-V-01-001"
    born = dt.date(1997, 1, 2)  # 21 on 2018-01-02
    assert join(app, "tampere", worker, group="carer-support", born=born, n=1, carer_contract="yes") == "TA-O-01-002"
    why = refused(app, "tampere", worker, group="carer-support", born=born, n=2, on=dt.date(2018, 1, 2),
                  carer_contract="yes")
    assert "the client must be under 21 on 2018-01-02 (is 21)" in why
    assert "temporary_home_help as yes" in refused(app, "tampere", worker, group="home-help", n=3, children="yes")


def test_vantaa_young_parents_under_30_and_families_in_counselling(app):
    [worker] = team(app, "vantaa")
    young = {"parenthood": "expecting", "service": "aftercare"}
    assert join(app, "vantaa", worker, group="young-parents", born=dt.date(1988, 1, 2), **young) == "VA-N-01-001"
    why = refused(app, "vantaa", worker, group="young-parents", born=dt.date(1988, 1, 1), n=1, **young)
    assert "the client must be under 30 on 2018-01-01 (is 30)" in why
    assert join(app, "vantaa", worker, group="family-counselling", born=dt.date(1960, 1, 1), n=2,
                family_counselling="yes") == "VA-P-01-002"


def test_hameenlinna_clients_are_those_offered_hb_at_the_assessment(app):
    [worker] = team(app, "hameenlinna")
    assert "offered_at_assessment as yes" in refused(app, "hameenlinna", worker)
    assert join(app, "hameenlinna", worker, n=1, offered_at_assessment="yes") == "HL-A-01-001"


def test_eksote_minimums_per_unit_are_warnings_never_refusals(app):
    [worker] = team(app, "eksote")
    code = join(app, "eksote", worker, group="aftercare", born=dt.date(1997, 6, 1), aftercare="yes")
    assert code == "EK-J-01-001"
    why = refused(app, "eksote", worker, group="aftercare", born=dt.date(1996, 6, 1), n=1, aftercare="yes")
    assert "the client must be under 21" in why
    warnings = app.run(ADMIN, pilots.show, "eksote")["warnings"]
    assert "1 HB clients enrolled, the target is at least 16" in warnings
    assert "group aftercare: 1 HB clients enrolled, the target is at least 5" in warnings
    assert "group disability: 0 HB clients enrolled, the target is at least 5" in warnings


def test_kainuu_relationships_end_on_31_12_2018_unless_a_new_decision_extends_them(app):
    w1, w2 = team(app, "kainuu-voucher", ("01", "02"))
    ok = {"need": "continuous-wide", "can_plan": "alone"}
    ending = join(app, "kainuu-voucher", w1, group="elderly", **ok)
    extended = join(app, "kainuu-voucher", w1, group="elderly", n=1, **ok)
    control = join(app, "kainuu-voucher", w1, group="elderly", n=2, control=True, **ok)
    theirs = join(app, "kainuu-voucher", w2, group="elderly", n=3, **ok)
    for code, worker, last in ((ending, w1, dt.date(2018, 12, 31)), (extended, w1, dt.date(2018, 12, 31)),
                               (extended, w1, dt.date(2019, 6, 30)), (theirs, w2, dt.date(2018, 12, 31))):
        app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2018, 1, 1), valid_to=last,
                monthly_amount=Money(50000))
    assert "client relationships end on 2018-12-31 unless a new decision extends them" in app.run(
        ADMIN, pilots.show, "kainuu-voucher")["rules"]
    with pytest.raises(Conflict, match="run until 2018-12-31"):
        app.run(ADMIN, people.expire_fixed_term, "kainuu-voucher", on_date=dt.date(2018, 12, 31))
    # A worker ends their own clients' relationships only.
    mine = app.run(Actor("worker", w1), people.expire_fixed_term, "kainuu-voucher", on_date=dt.date(2019, 1, 1))
    assert (mine["ended"], mine["continuing"]) == (sorted([ending, control]), [extended])
    everyone = app.run(ADMIN, people.expire_fixed_term, "kainuu-voucher", on_date=dt.date(2019, 1, 2))
    assert (everyone["ended"], everyone["continuing"]) == ([theirs], [extended])
    assert app.run(ADMIN, people.expire_fixed_term, "kainuu-voucher", on_date=dt.date(2019, 2, 1))["ended"] == []
    ended = {c["code"]: c["ended_on"] for c in app.run(ADMIN, people.list_clients, pilot_id="kainuu-voucher",
                                                        include_ended=True)}
    assert ended == {ending: "2018-12-31", control: "2018-12-31", theirs: "2018-12-31", extended: None}
    with pytest.raises(Conflict, match="not fixed-term"):
        app.run(ADMIN, people.expire_fixed_term, "pori", on_date=dt.date(2019, 1, 1))


# --- the rules live in plugins ------------------------------------------------------------------


def test_an_expired_decision_leaves_the_client_without_a_budget_the_next_month(app):
    worker, code = _buyer(app, "pori", None, ["family-work"], {"family-work": 4}, family="yes",
                          burdening_factor="single-parent")
    app.run(Actor("worker", worker), budget.grant, code, valid_from=dt.date(2019, 1, 1),
            valid_to=dt.date(2019, 1, 31))
    budget.close_period(app, finance_of(app, "pori"), "pori", JAN)
    feb = budget.open_period(app, finance_of(app, "pori"), "pori", Period(2018, 2))
    assert feb["clients"] == 1  # the 2018 decision still runs
    with pytest.raises(NotFound, match="no decision in force in 2019-02"):  # nothing after it ends
        app.run(ADMIN, budget.explain, code, Period(2019, 2))


def test_core_names_no_pilot():
    core = Path(__file__).parents[2] / "core"
    names = [*SEVEN, "kainuu", "hämeenlinna", "example-epassi", "example-psop"]
    found = []
    for path in core.rglob("*"):
        if path.suffix not in (".py", ".json", ".toml", ".mako") or "versions" in path.parts:
            continue
        text = path.read_text(encoding="utf-8").lower()
        found += [f"{path.relative_to(core)}: {n}" for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
    assert not found, found
