"""Shared test helpers: made-up people and a team of workers."""

from pathlib import Path

from avain.core.auth import Actor

#: The example pilot's pilot.toml, and a second data-only pilot for `pilot add`.
EXAMPLE_TOML = Path(__file__).resolve().parents[1] / "plugins" / "example_pilot" / "pilot.toml"
OTHER_PILOT = """\
id = "other"
name = "Another pilot"
code = "OT"

[[groups]]
id = "adults"
code = "A"
name = "Adults"
"""

#: Valid henkilötunnus numbers of made-up people (checked by python-stdnum).
HETUS = ["010594Y123W", "010594-123W", "131052-308T", "150320A1237", "020202A234Y",
         "311299A9008"]


#: The example pilot's finance worker (``add_team`` adds them): finance moves money only
#: under their own id.
FINANCE = Actor("finance", "example-04")


def finance_of(app, pilot_id, code="F1"):
    """A finance worker of ``pilot_id`` (added on first use), who moves that pilot's money."""
    from avain.core.services import people

    worker_id = f"{pilot_id}-{code}"
    if not any(w["id"] == worker_id for w in app.read(Actor("admin"), people.list_workers, pilot_id=pilot_id)):
        app.run(Actor("admin"), people.add_worker, pilot_id=pilot_id, code=code, name=f"Finance {code}",
                role="finance")
    return Actor("finance", worker_id)


def add_team(app):
    """Workers of the example pilot: a supervisor, two personal workers (one supervised),
    finance, an evaluator and an HB assistant. Returns their ids by role."""
    from avain.core.services import people

    def add(code, role, supervisor=None):
        return app.run(Actor("admin"), people.add_worker, pilot_id="example", code=code,
                       name=f"Worker {code}", role=role, supervisor_id=supervisor)["id"]

    ids = {"supervisor": add("02", "supervisor")}
    ids["worker"] = add("01", "worker", ids["supervisor"])
    ids["other_worker"] = add("03", "worker")
    ids["finance"] = add("04", "finance")
    ids["evaluator"] = add("05", "evaluator")
    ids["assistant"] = add("06", "assistant")
    return ids


#: The day test clients are enrolled on: before the 2018 months the tests buy services in.
ENROLLED_ON = __import__("datetime").date(2017, 12, 1)


def enroll(app, actor=None, *, hetu, worker, group="family", control=False, **kw):
    from avain.core.services import people

    assessment = kw.pop("assessment", {"carer_contract": "yes"})
    kw.setdefault("on_date", ENROLLED_ON)
    return app.run(actor or Actor("admin"), people.enroll, pilot_id="example", hetu=hetu,
                   name="Testi Henkilö", worker_id=worker, group_id=group, control=control,
                   assessment=assessment, **kw)["code"]


PROVIDERS = ["1572860-0", "0737546-2"]
IBANS = ["FI2112345600000785", "FI5542345670000081"]
#: A plan with the services the tests buy, monthly quantities.
PLAN = {"cleaning": 4, "meals": 20, "escort": 2}
#: Evidence for every approval criterion of the example pilot.
CHECKS = {c: ("seen", __import__("datetime").date(2017, 12, 1)) for c in (
    "prepayment_register", "provider_register", "service_level", "liability_insurance", "hb_training")}


def approve_provider(app, provider, services=("cleaning", "meals", "escort")):
    import datetime as dt

    from avain.core.services import providers

    return app.run(Actor("admin"), providers.approve, provider, pilot_id="example",
                   services=list(services), checks=dict(CHECKS), valid_from=dt.date(2018, 1, 1),
                   valid_to=dt.date(2019, 12, 31))


def set_prices(app, price_euros=500):
    """Every provider's price for the plan's services: generous, so tests about money are
    not refused by the catalogue price."""
    import json
    import tempfile
    from pathlib import Path

    from avain.core.services import catalogue

    rows = [{"provider": p, "service": s, "price": str(price_euros), "valid_from": "2017-01-01"}
            for p in PROVIDERS for s in PLAN]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prices.json"
        path.write_text(json.dumps(rows))
        result = app.run(Actor("admin"), catalogue.import_file, path)
    assert not result["rejected"], result["rejected"]


def month_ready(app, *, clients=2, period=None, grant=True):
    """The example pilot with a team, providers, ``clients`` HB clients with decisions for
    2018 and January 2018 open. Returns (team, codes)."""
    import datetime as dt

    from avain.core.domain import Money, Period
    from avain.core.services import budget, plans, providers

    team = add_team(app)
    for i, pid in enumerate(PROVIDERS):
        app.run(Actor("admin"), providers.add, business_id=pid, name=f"Provider {i}", iban=IBANS[i])
        approve_provider(app, pid)
    set_prices(app)
    codes = [enroll(app, hetu=HETUS[i], worker=team["worker"]) for i in range(clients)]
    for code in codes:
        app.run(Actor("worker", team["worker"]), plans.set_plan, code, valid_from=dt.date(2018, 1, 1),
                items=dict(PLAN))
    if grant:
        for code in codes:
            app.run(Actor("worker", team["worker"]), budget.grant, code,
                    valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31),
                    monthly_amount=Money(30000))
    if period is not False:
        budget.open_period(app, FINANCE, "example", period or Period(2018, 1))
    return team, codes


def propose(app, code, amount_cents, *, provider=PROVIDERS[0], day=None, service="cleaning",
            actor=None):
    import datetime as dt

    from avain.core.domain import Money
    from avain.core.services import purchases

    return app.run(actor or Actor("client", code), purchases.propose, code, service=service,
                   provider_id=provider, amount=Money(amount_cents),
                   service_date=day or dt.date(2018, 1, 15), text="please")["id"]


def approve(app, team, proposal_id, *, today=None):
    import datetime as dt

    from avain.core.services import purchases

    return app.run(Actor("worker", team["worker"]), purchases.approve, proposal_id,
                   today=today or dt.date(2018, 1, 10))["commitment"]


def pay_approved(app, *, day=None):
    """Pay every approved invoice of the example pilot the only way avain pays: a SEPA
    batch, confirmed. Returns the confirmed batch."""
    import datetime as dt

    from avain.core.services import finance

    batch = app.run(FINANCE, finance.create_batch, pilot_id="example",
                    execution_date=day or dt.date(2018, 1, 31))
    return app.run(FINANCE, finance.confirm_batch, batch["id"])


def opened_purposes(app, rows):
    """Audit event rows read from the database with their purposes decrypted in place (the
    rows are detached: nothing is written back)."""
    from sqlalchemy.orm import make_transient

    from avain.core import audit, integrity_key, message_keys

    url = app.engine.url.render_as_string(hide_password=False)
    ring, key = message_keys.load(url), integrity_key.require(url)
    for row in rows:
        make_transient(row)
        row.purpose = audit.open_purpose(ring, row, key)
    return rows


def seal_fields(app, model, row_id, table: str, **fields):
    """Write ``fields`` of a row whose text is stored encrypted (an identity, a proposal's
    text), sealed as avain seals them; returns the row's other sealed fields opened."""
    from avain.core import sealed

    opened = {}

    def write(uow):
        ring = sealed.ring_for_sealing(uow)
        row = uow.session.get(model, row_id)
        assert row.key_id in (None, ring.current.id)
        for name, value in fields.items():
            setattr(row, name, sealed.seal(ring, value, table, row_id, name))
        row.key_id = ring.current.id
        for name in ("name", "hetu", "phone", "text", "reason"):
            if name not in fields and isinstance(getattr(row, name, None), bytes):
                opened[name] = sealed.open_(ring, row.key_id, getattr(row, name), table, row_id, name)

    app.run(Actor("admin"), write)
    return opened
