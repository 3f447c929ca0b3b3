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
