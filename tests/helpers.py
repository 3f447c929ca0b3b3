"""Shared test helpers: made-up people and a team of workers."""

from avain.core.auth import Actor

#: Valid henkilötunnus numbers of made-up people (checked by python-stdnum).
HETUS = ["010594Y123W", "010594-123W", "131052-308T", "150320A1237", "020202A234Y",
         "311299A9008"]


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


def enroll(app, actor=None, *, hetu, worker, group="family", control=False, **kw):
    from avain.core.services import people

    assessment = kw.pop("assessment", {"carer_contract": "yes"})
    return app.run(actor or Actor("admin"), people.enroll, pilot_id="example", hetu=hetu,
                   name="Testi Henkilö", worker_id=worker, group_id=group, control=control,
                   assessment=assessment, **kw)["code"]


PROVIDERS = ["1572860-0", "0737546-2"]


def month_ready(app, *, clients=2, period=None, grant=True):
    """The example pilot with a team, providers, ``clients`` HB clients with decisions for
    2018 and January 2018 open. Returns (team, codes)."""
    import datetime as dt

    from avain.core.domain import Period
    from avain.core.services import budget, providers

    team = add_team(app)
    for i, pid in enumerate(PROVIDERS):
        app.run(Actor("admin"), providers.add, business_id=pid, name=f"Provider {i}")
    codes = [enroll(app, hetu=HETUS[i], worker=team["worker"]) for i in range(clients)]
    if grant:
        for code in codes:
            app.run(Actor("worker", team["worker"]), budget.grant, code,
                    valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31))
    if period is not False:
        budget.open_period(app, Actor("finance"), "example", period or Period(2018, 1))
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
