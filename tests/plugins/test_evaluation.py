"""The evaluation, on SQLite and PostgreSQL: instruments as data, responses validated item
by item, the survey import all-or-nothing, consent, time and cost, the report with its
suppressed cells, and the pseudonymous export that no planted identity survives."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from conftest import open_app
from helpers import HETUS, add_team, approve, enroll, month_ready, propose, seal_fields
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Instrument
from avain.core.errors import NotFound, PermissionDenied, Refused, ValidationError
from avain.core.hookspecs import hookimpl
from avain.core.models import ClientIdentityRow, SurveyResponseRow, SurveyScoreRow, TimeLogRow, WorkerRow
from avain.core.plugins import make_plugin_manager
from avain.core.services import consent, evaluation, messages, people, pilots
from avain.plugins.evaluation import export as export_mod
from avain.plugins.evaluation import figures, report
from avain.plugins.evaluation import instruments as inst_mod

ADMIN = Actor("admin")
DAY = dt.date.today()
START, END = DAY - dt.timedelta(days=200), DAY - dt.timedelta(days=5)


def worker(team):
    return Actor("worker", team["worker"])


def osallisuus(level: int) -> dict[str, int]:
    return {f"item_{i:02d}": level for i in range(1, 15)}


def responses(app) -> int:
    with Session(app.engine) as s:
        return s.execute(select(func.count()).select_from(SurveyResponseRow)).scalar_one()


@pytest.fixture
def cohort(app):
    """The example pilot with its team and 6 HB clients and 6 controls in the family group,
    enrolled 200 days ago with consent to the evaluation."""
    team = add_team(app)
    hb = [enroll(app, hetu=h, worker=team["worker"], on_date=START, consents=("evaluation",)) for h in HB_HETUS]
    controls = [enroll(app, hetu=h, worker=team["worker"], control=True, on_date=START, consents=("evaluation",))
                for h in CONTROL_HETUS]
    return team, hb, controls


#: Made-up, valid henkilötunnus numbers (python-stdnum checks them; none temporary).
HB_HETUS = [*HETUS[:5], "070707-3453"]
CONTROL_HETUS = ["010101-2348", "020202-234Y", "030303-234N", "040404-234C", "050505-2343", "060606-234T"]


# --- instruments ------------------------------------------------------------------------------


def test_the_shipped_instruments_are_versioned_schemas_with_their_scales(app):
    known = app.read(ADMIN, evaluation.registry)
    assert set(known) >= {"kykyviisari", "osallisuustesti", "satisfaction-hb", "satisfaction-control",
                          "esr-start", "esr-end", "kompassi"}
    kv = known["kykyviisari"]
    assert {k: len(v) for k, v in kv.scales.items()} == {"general": 4, "participation": 12, "mind": 9,
                                                         "everyday": 11, "skills": 10, "body": 2, "work_future": 4}
    assert kv.schema["properties"]["work_ability"] == {"type": "integer", "minimum": 0, "maximum": 10,
                                                       "description": kv.schema["properties"]["work_ability"]
                                                       ["description"]}
    assert kv.schema["properties"]["life_satisfaction"]["maximum"] == 5 and kv.provisional
    assert known["esr-start"].respondents == "hb" and known["esr-start"].points == ("start",)
    assert known["satisfaction-control"].respondents == "control" and not known["osallisuustesti"].provisional
    # each pilot names its set: the ESR forms are not in Kainuu's state-funded voucher trial
    uses = {i["name"]: i["pilots"] for i in app.read(ADMIN, evaluation.list_instruments)}
    assert "kainuu-voucher" not in uses["esr-start"] and "kainuu-respite" in uses["esr-start"]
    assert uses["kompassi"] == ["hameenlinna"]


def test_scoring_rescales_where_it_is_provisional_and_needs_half_the_items():
    kv = inst_mod.load(Path(inst_mod.__file__).with_name("instruments") / "kykyviisari.json")
    scores = kv.score({"work_ability": 10, "functioning": 0, "life_satisfaction": 5, "self_rated_health": 1,
                       "body_01": 3})
    assert scores == {"general": 5.0, "body": 5.0}  # (10 + 0 + 10 + 0) / 4 on 0–10; body: 1 of 2 items, half
    assert kv.score({"body_01": 3, "body_02": 5})["body"] == 7.5
    assert "participation" not in kv.score({"participation_01": 5})  # 1 of 12 answered: no score


def test_hook_avain_evaluation_instruments(db_url):
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"mood": {"type": "integer", "minimum": 1, "maximum": 3}},
              "x-avain": {"version": "0.1", "points": ["start", "end"], "scales": {"mood": ["mood"]}}}

    class Mood:
        @hookimpl
        def avain_evaluation_instruments(self):
            return [Instrument("mood", schema, score=lambda a: {"mood": float(a["mood"])})]

    app = open_app(db_url, make_plugin_manager(extra=[Mood()]))
    try:
        team = add_team(app)
        code = enroll(app, hetu=HETUS[0], worker=team["worker"], on_date=START)
        with pytest.raises(ValidationError, match="pilot example does not use mood"):
            app.run(worker(team), evaluation.record_response, code, instrument="mood", point="start",
                    answered_on=START, answers={"mood": 2})
        with Session(app.engine) as s:  # the pilot takes the new instrument into its set
            from avain.core.models import PilotRow

            row = s.get(PilotRow, "example")
            config = json.loads(row.config)
            config["evaluation"]["instruments"].append("mood")
            row.config = json.dumps(config)
            s.commit()
        got = app.run(worker(team), evaluation.record_response, code, instrument="mood", point="start",
                      answered_on=START, answers={"mood": 2})
        assert got["scores"] == {"mood": 2.0} and got["version"] == "0.1"
        with pytest.raises(ValidationError, match="--answer mood: 4 is greater than the maximum of 3"):
            app.run(worker(team), evaluation.record_response, code, instrument="mood", point="end",
                    answered_on=END, answers={"mood": 4})
    finally:
        app.close()


# --- responses --------------------------------------------------------------------------------


def test_a_response_is_validated_item_by_item_and_stored_with_its_scores(app, cohort):
    team, hb, controls = cohort
    got = app.run(worker(team), evaluation.record_response, hb[0], instrument="osallisuustesti", point="start",
                  answered_on=START, answers=osallisuus(3))
    assert got["scores"] == {"participation": 3.0, "belonging": 3.0, "influence": 3.0, "community": 3.0}
    before = responses(app)
    with pytest.raises(ValidationError) as err:
        app.run(worker(team), evaluation.record_response, hb[1], instrument="osallisuustesti", point="start",
                answered_on=START, answers={"item_01": 6, "item_02": "kolme", "item_99": 1})
    assert sorted(err.value.errors) == ["--answer item_01: 6 is greater than the maximum of 5",
                                        "--answer item_02: not a whole number",
                                        "--answer item_99: not an item of osallisuustesti"]
    cases = [
        ({"point": "start"}, "--point: .* already has the start measurement"),
        ({"point": "end", "answered_on": START - dt.timedelta(days=1)}, "--date: .* is before the enrolment"),
        ({"point": "end", "answered_on": DAY + dt.timedelta(days=1)}, "--date: .* is in the future"),
        ({"point": "interim", "answered_on": START + dt.timedelta(days=30), "instrument": "kykyviisari",
          "answers": {"work_ability": 5}}, "--point: an interim measurement is for relationships longer than 180"),
    ]
    for kwargs, words in cases:
        args = {"instrument": "osallisuustesti", "point": "end", "answered_on": END, "answers": osallisuus(4),
                **kwargs}
        with pytest.raises(ValidationError) as err:
            app.run(worker(team), evaluation.record_response, hb[0], **args)
        assert any(re.search(words, e) for e in err.value.errors), (words, err.value.errors)
    with pytest.raises(ValidationError, match="--point: 'interim' is not a measurement point of osallisuustesti"):
        app.run(worker(team), evaluation.record_response, hb[0], instrument="osallisuustesti", point="interim",
                answered_on=END, answers=osallisuus(4))
    with pytest.raises(ValidationError, match="esr-start is for HB clients only"):
        app.run(worker(team), evaluation.record_response, controls[0], instrument="esr-start", point="start",
                answered_on=START, answers={"education": "basic"})
    with pytest.raises(ValidationError, match="satisfaction-control is for control clients only"):
        app.run(worker(team), evaluation.record_response, hb[0], instrument="satisfaction-control", point="end",
                answered_on=END, answers={"overall": 4})
    with pytest.raises(NotFound, match="--instrument: no instrument 'wellness'"):
        app.run(worker(team), evaluation.record_response, hb[0], instrument="wellness", point="end",
                answered_on=END, answers={})
    assert responses(app) == before
    # an end before the start: refused, naming both
    app.run(worker(team), evaluation.record_response, hb[1], instrument="osallisuustesti", point="end",
            answered_on=START + dt.timedelta(days=10), answers=osallisuus(4))
    with pytest.raises(ValidationError, match="the start measurement on .* would come after the end measurement"):
        app.run(worker(team), evaluation.record_response, hb[1], instrument="osallisuustesti", point="start",
                answered_on=START + dt.timedelta(days=20), answers=osallisuus(4))
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["other_worker"]), evaluation.record_response, hb[0],
                instrument="osallisuustesti", point="end", answered_on=END, answers=osallisuus(4))


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_the_survey_import_names_every_bad_value_and_imports_all_or_nothing(app, cohort, tmp_path):
    team, hb, controls = cohort
    good = f"client;point;answered_on;item_01;item_02\n{hb[0]};start;{START};4;5\n{controls[0]};start;{START};2;\n"
    done = app.run(ADMIN, evaluation.import_file, _write(tmp_path, "good.csv", good), instrument="osallisuustesti")
    assert done["imported"] == 2 and responses(app) == 2
    before = responses(app)
    bad = (f"client,point,answered_on,item_01,item_02\n"
           f"{hb[1]},start,{START},4,5\n"
           f"{hb[2]},start,{START},9,5\n"
           f"XX-F-99-999,start,{START},1,1\n"
           f"{hb[3]},end,{START},3,x\n"
           f"{hb[3]},start,{END},3,3\n"
           f"{hb[0]},start,{END},3,3\n")
    with pytest.raises(ValidationError) as err:
        app.run(ADMIN, evaluation.import_file, _write(tmp_path, "bad.csv", bad), instrument="osallisuustesti")
    errors = err.value.errors
    assert "bad.csv, row 3, item_01: 9 is greater than the maximum of 5" in errors
    assert "bad.csv, row 4, client: no such client code" in errors  # (a value is never repeated: it may be a name)
    assert "bad.csv, row 5, item_02: not a whole number" in errors
    assert any(e.startswith("bad.csv, row 6, answered_on: the start measurement") for e in errors)
    assert any(e.startswith("bad.csv, row 7, point:") and "already has the start" in e for e in errors)
    assert str(err.value) == errors[-1] == f"bad.csv: nothing was imported ({len(errors) - 1} problems)"
    assert responses(app) == before  # row 2 was good, and is not imported either
    for name, content, words in [
        ("latin1.csv", f"client,point,answered_on,item_01\n{hb[1]},start,{START},4 # ä\n".encode("latin-1"),
         "latin1.csv, line 2: not UTF-8 text"),
        ("cols.csv", f"client,answered_on,item_01\n{hb[1]},{START},4\n", "cols.csv: missing columns: point"),
        ("extra.csv", f"client,point,answered_on,mood\n{hb[1]},start,{START},4\n",
         "extra.csv: columns that are not items of osallisuustesti: mood"),
        ("list.json", json.dumps({"client": hb[1]}), "list.json: expected a list of responses"),
        ("resp.json", json.dumps([{"client": hb[1], "point": "start", "answered_on": "2018-13-01", "answers": {}}]),
         "resp.json, response 1, answered_on: not a date like 2018-01-31"),
    ]:
        with pytest.raises(ValidationError) as err:
            app.run(ADMIN, evaluation.import_file, _write(tmp_path, name, content), instrument="osallisuustesti")
        assert any(words in e for e in err.value.errors), (name, err.value.errors)
    assert responses(app) == before
    ok = json.dumps([{"client": hb[1], "point": "start", "answered_on": str(START), "answers": osallisuus(2)}])
    assert app.run(ADMIN, evaluation.import_file, _write(tmp_path, "ok.json", ok),
                   instrument="osallisuustesti")["imported"] == 1


# --- consent and time ---------------------------------------------------------------------------


def test_hb_participation_requires_consent_where_the_pilot_says_so(app):
    admin = Actor("admin")
    app.run(admin, people.add_worker, pilot_id="pori", code="01", name="W", role="worker")
    facts = {"family": "yes", "burdening_factor": "single-parent"}
    day = dt.date(2018, 3, 1)  # Pori took clients until the end of August 2018
    with pytest.raises(Refused, match="HB participation requires the client's consent to the evaluation"):
        app.run(admin, people.enroll, pilot_id="pori", hetu=HETUS[0], name="N", worker_id="pori-01",
                assessment=facts, on_date=day)
    code = app.run(admin, people.enroll, pilot_id="pori", hetu=HETUS[0], name="N", worker_id="pori-01",
                   assessment=facts, consents=("evaluation",), on_date=day)["code"]
    assert app.read(admin, consent.consents, code) == [{"client": code, "purpose": "evaluation",
                                                        "given_on": day.isoformat(), "withdrawn_on": None}]
    # a control is not required to consent to join
    app.run(admin, people.enroll, pilot_id="pori", hetu=HETUS[1], name="N", worker_id="pori-01",
            assessment=facts, control=True, on_date=day)
    with pytest.raises(ValidationError, match="--purpose: 'marketing'"):
        app.run(admin, people.enroll, pilot_id="pori", hetu=HETUS[2], name="N", worker_id="pori-01",
                assessment=facts, consents=("marketing",), on_date=day)


def test_time_is_logged_by_who_spends_it(app, cohort):
    team, hb, controls = cohort
    day = START + dt.timedelta(days=3)
    assert app.run(worker(team), evaluation.log_time, hb[0], activity="planning", minutes=45,
                   on_date=day)["who"] == "worker"
    assert app.run(Actor("client", hb[0]), evaluation.log_time, hb[0], activity="arranging", minutes=30,
                   on_date=day)["who"] == "client"
    app.run(ADMIN, people.assign_assistant, hb[0], team["assistant"])
    assert app.run(Actor("assistant", team["assistant"]), evaluation.log_time, hb[0], activity="travel",
                   minutes=20, cost=1250, on_date=day)["cost"] == 1250
    assert app.run(Actor("finance", team["finance"]), evaluation.log_time, controls[0], activity="usual-services",
                   cost=40000, on_date=day)["who"] == "services"
    for actor, kwargs, words in [
        (worker(team), {"activity": "arranging", "minutes": 5},
         "--activity: 'arranging' is not an activity of a worker"),
        (worker(team), {"activity": "planning", "minutes": 0}, "--minutes: give the time spent"),
        (worker(team), {"activity": "planning", "minutes": 2000}, "--minutes: a whole number from 0 to 1440"),
        (Actor("finance", team["finance"]), {"activity": "usual-services", "minutes": 10},
         "--cost: usual services are logged"),
    ]:
        with pytest.raises(ValidationError, match=words):
            app.run(actor, evaluation.log_time, hb[0], on_date=day, **kwargs)
    with pytest.raises(ValidationError, match="--date: .* is outside"):
        app.run(worker(team), evaluation.log_time, hb[0], activity="planning", minutes=5,
                on_date=START - dt.timedelta(days=1))
    with pytest.raises(PermissionDenied):
        app.run(Actor("client", hb[1]), evaluation.log_time, hb[0], activity="arranging", minutes=5, on_date=day)
    with Session(app.engine) as s:
        assert s.execute(select(func.count()).select_from(TimeLogRow)).scalar_one() == 4


# --- the report -------------------------------------------------------------------------------


def _measure(app, team, codes, start_level, end_level):
    for code in codes:
        for point, day, level in (("start", START, start_level), ("end", END, end_level)):
            app.run(worker(team), evaluation.record_response, code, instrument="osallisuustesti", point=point,
                    answered_on=day, answers=osallisuus(level))


def test_the_report_compares_like_with_like_and_suppresses_small_cells(app, cohort, tmp_path):
    team, hb, controls = cohort
    _measure(app, team, hb, 2, 4)  # HB: +2
    _measure(app, team, controls[:4], 3, 3)  # only 4 controls measured: that cell is suppressed
    for code in controls:
        app.run(Actor("finance", team["finance"]), evaluation.log_time, code, activity="usual-services", cost=30000,
                on_date=START + dt.timedelta(days=1))
    for code in hb + controls:
        app.run(worker(team), evaluation.log_time, code, activity="assessment", minutes=60,
                on_date=START + dt.timedelta(days=1))
    data = app.read(Actor("evaluator", team["evaluator"]), figures.compute, ["example"])
    pilot = data["pilots"][0]
    rows = {(o["scale"], o["group"]): o for o in pilot["outcomes"] if o["instrument"] == "osallisuustesti"}
    row = rows[("participation", "family")]
    assert row["hb"]["change"] == {"n": 6, "mean": 2.0, "ci95": [2.0, 2.0], "sd": 0.0, "suppressed": False}
    assert row["control"]["change"] == {"n": None, "mean": None, "ci95": None, "sd": None, "suppressed": True}
    assert row["difference"] is None
    cells = {(c["group"], c["arm"]): c for c in pilot["cells"]}
    assert cells[("family", "hb")]["clients"] == 6 and cells[("elderly", "hb")]["clients"] == 0
    assert cells[("family", "control")]["cost_per_client_eur"]["mean"] == 300 + 42.0  # services + an hour at 42 €
    assert cells[("family", "hb")]["worker_minutes_per_client"]["mean"] == 60.0
    # a withdrawal takes two controls out: the control cell falls under five and is suppressed
    for code in controls[:2]:
        app.run(ADMIN, consent.set_consent, code, purpose="evaluation", given=False, on_date=DAY)
    again = app.read(ADMIN, figures.compute, ["example"])["pilots"][0]
    control = {(c["group"], c["arm"]): c for c in again["cells"]}[("family", "control")]
    assert control == {**control, "clients": None, "suppressed": True}
    assert control["cost_per_client_eur"]["mean"] is None
    with pytest.raises(PermissionDenied):
        app.read(worker(team), figures.compute, ["example"])
    done = report.write(data, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text()
    twin = json.loads((tmp_path / "report" / "report.json").read_text())
    assert "n &lt; 5" in html or "n < 5" in html
    assert twin["pilots"][0]["cells"] == pilot["cells"] and done["charts"] >= 5
    for chart in twin["charts"]["example"]:
        assert (tmp_path / "report" / chart["file"]).read_bytes()[:4] == b"\x89PNG"


def test_the_demo_leads_to_a_report_with_every_chart(app, tmp_path):
    from avain.core import demo

    summary = demo.run(app, pilot_ids=["example"], clients_per_group=5)
    assert summary["pilots"][0]["evaluation"]["responses"] > 0
    data = app.read(ADMIN, figures.compute, ["example"])
    pilot = data["pilots"][0]
    for cell in pilot["cells"]:
        assert not cell["suppressed"] and cell["cost_per_client_eur"]["mean"] is not None, cell
    changes = [o for o in pilot["outcomes"] if o["group"] == "*" and o["instrument"] == "kykyviisari"]
    assert changes and all(o["hb"]["change"]["n"] == 10 and o["control"]["change"]["n"] == 10 for o in changes)
    for r in (r for r in pilot["cost_effectiveness"] if r["group"] == "*"):
        assert r["quadrant"] is not None and not r["suppressed"], r
        assert (r["eur_per_scale_point"] is not None) == (r["quadrant"] == "HB better and dearer"), r
    # the end-only satisfaction survey: its HB and control variants compared at the end
    end = {(e["scale"], e["group"]): e for e in pilot["end_levels"] if e["family"] == "satisfaction"}
    assert end[("satisfaction", "*")]["hb"]["n"] == 10 and end[("satisfaction", "*")]["control"]["n"] == 10
    assert end[("satisfaction", "*")]["difference"] is not None
    assert end[("hb_model", "*")]["control"]["n"] == 0  # a scale of the HB variant only
    done = report.write(data, tmp_path / "r")
    titles = {c["title"] for c in json.loads((tmp_path / "r" / "report.json").read_text())["charts"]["example"]}
    assert {"Cost per client", "Worker time per client", "Budget use (spent / granted)",
            "Proposals approved and rejected"} <= titles
    assert {f"{i}: change from start to end" for i in ("kykyviisari", "osallisuustesti")} <= titles
    assert "satisfaction: level at the end" in titles
    assert done["charts"] == len(titles)


# --- the export -------------------------------------------------------------------------------


PLANTED_NAMES = ["Ilmari Kivikangas", "Saara Pöllänen", "Veikko Ruohonen"]


def test_no_planted_identity_reaches_any_exported_byte(app, tmp_path):
    team, (code, other) = month_ready(app)
    for c in (code, other):
        app.run(ADMIN, consent.set_consent, c, purpose="evaluation", given=True, on_date=dt.date(2018, 1, 1))
    app.run(ADMIN, consent.set_consent, code, purpose="dialogue", given=True, on_date=dt.date(2018, 1, 1))
    # names, identity codes and a phone number in the identity tables
    mine = seal_fields(app, ClientIdentityRow, code, "identity", name=PLANTED_NAMES[0], phone="+358401112223")
    hetus = [mine["hetu"], seal_fields(app, ClientIdentityRow, other, "identity", name=PLANTED_NAMES[1])["hetu"]]
    with Session(app.engine) as s:
        s.get(WorkerRow, team["worker"]).name = PLANTED_NAMES[2]
        s.commit()
    # ... and in free text: a message, a proposal's text, a free-text survey answer
    app.run(Actor("client", code), messages.send, code,
            text=f"Olen {PLANTED_NAMES[0]} ({hetus[0]}), puh. 040 111 2223, Ilmarin osoite Koivukuja 3.")
    app.run(Actor("worker", team["worker"]), messages.send, code, text="Hei Ilmari! Terveisin Veikko")
    pid = propose(app, code, 1000)
    from avain.core.models import ProposalRow

    seal_fields(app, ProposalRow, pid, "proposal", text=f"{PLANTED_NAMES[1]} suositteli, hetu {hetus[1]}")
    approve(app, team, pid)
    app.run(worker(team), evaluation.record_response, other, instrument="satisfaction-hb", point="end",
            answered_on=dt.date.today(), answers={"overall": 5, "heard": 4, "trust": 5,
                                                     "open_feedback": f"Kiitos {PLANTED_NAMES[2]}!"})
    out = tmp_path / "export"
    done = app.run(Actor("evaluator", team["evaluator"]), export_mod.export, out)
    assert done["clients"] == 2 and done["files"]["dialogue"] == 1 and done["files"]["responses.csv"] == 3
    blob = b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())
    secrets = [*PLANTED_NAMES, *(n.split()[0] for n in PLANTED_NAMES), *(n.split()[1] for n in PLANTED_NAMES),
               *hetus, "+358401112223", "040 111 2223", "Koivukuja", "Ilmarin"]
    for secret in secrets:
        assert secret.encode() not in blob and secret.lower().encode() not in blob.lower(), secret
    assert code.encode() in blob  # keyed by code
    dialogue = json.loads((out / "dialogue" / f"{code}.json").read_text())
    assert "[client]" in dialogue["messages"][0]["text"] and "[personal worker]" in dialogue["messages"][1]["text"]
    # a withdrawal excludes the client from later exports; only evaluators export; never into a used folder
    app.run(ADMIN, consent.set_consent, code, purpose="evaluation", given=False, on_date=dt.date.today())
    later = app.run(Actor("evaluator", team["evaluator"]), export_mod.export, tmp_path / "later")
    assert later["clients"] == 1 and code.encode() not in b"".join(
        p.read_bytes() for p in (tmp_path / "later").rglob("*") if p.is_file())
    with pytest.raises(PermissionDenied):
        app.run(ADMIN, export_mod.export, tmp_path / "admin")
    from avain.core.errors import Conflict

    with pytest.raises(Conflict, match="is not an empty folder"):
        app.run(Actor("evaluator", team["evaluator"]), export_mod.export, out)
    with Session(app.engine) as s:
        assert s.execute(select(func.count()).select_from(SurveyScoreRow)).scalar_one() == 1


def test_secondary_suppression_keeps_a_small_group_from_being_worked_out():
    hidden = figures.hidden_groups
    assert hidden({"a": 3, "b": 10, "c": 12}) == {"a", "b"}  # else: all groups − b − c = a
    assert hidden({"a": 3, "b": 4, "c": 10}) == {"a", "b"}  # together 7: their sum is no small cell
    assert hidden({"a": 2, "b": 2, "c": 10, "d": 11}) == {"a", "b", "c"}  # 2 + 2 is still small: add c
    assert hidden({"a": 0, "b": 10}) == set() and hidden({"a": 10}) == set() and hidden({"a": 4}) == {"a"}


def test_a_small_group_cannot_be_recovered_from_the_total(app, cohort):
    team, hb, controls = cohort  # 6 HB clients in family
    small = [enroll(app, hetu=h, worker=team["worker"], group="elderly", on_date=START, consents=("evaluation",))
             for h in ("080808-345T", "101010-456T", "111111-456H")]
    assert 0 < len(small) < 5
    for code in hb + small:
        app.run(worker(team), evaluation.log_time, code, activity="planning", minutes=30,
                on_date=START + dt.timedelta(days=1))
    cells = {(c["group"], c["arm"]): c for c in app.read(ADMIN, figures.compute, ["example"])["pilots"][0]["cells"]}
    assert cells[("elderly", "hb")]["suppressed"] and cells[("family", "hb")]["suppressed"]  # secondary
    assert cells[("family", "hb")]["worker_minutes_per_client"]["mean"] is None
    assert cells[("*", "hb")]["clients"] == 6 + len(small) and not cells[("*", "hb")]["suppressed"]


def test_no_answer_text_or_name_is_repeated_in_an_error(app, cohort, tmp_path):
    team, hb, controls = cohort
    bad = _write(tmp_path, "names.csv", f"client,point,answered_on,item_01\n010594Y123W,start,{START},1\n"
                                        f"{hb[0]},start,{START},Matti Virtanen\n")
    with pytest.raises(ValidationError) as err:
        app.run(ADMIN, evaluation.import_file, bad, instrument="osallisuustesti")
    text = " ".join(err.value.errors)
    assert "010594Y123W" not in text and "Matti" not in text and "row 3, item_01: not a whole number" in text
    with pytest.raises(ValidationError) as err:
        app.run(worker(team), evaluation.record_response, controls[0], instrument="satisfaction-control",
                point="end", answered_on=END, answers={"overall": 4, "open_feedback": "Maija Mallikas " * 200})
    assert err.value.errors == ["--answer open_feedback: longer than 2000 characters"]
    # a second interim on the same day is refused by name, not by the database
    interim = {"instrument": "kykyviisari", "point": "interim", "answered_on": END, "answers": {"work_ability": 5}}
    app.run(worker(team), evaluation.record_response, hb[0], **interim)
    with pytest.raises(ValidationError, match="already has the interim measurement"):
        app.run(worker(team), evaluation.record_response, hb[0], **interim)


def test_a_failed_export_leaves_no_files(app, cohort, tmp_path, monkeypatch):
    team, hb, controls = cohort
    app.run(ADMIN, consent.set_consent, hb[0], purpose="dialogue", given=True, on_date=START)
    app.run(Actor("client", hb[0]), messages.send, hb[0], text="Hei")
    monkeypatch.delenv("AVAIN_MESSAGE_KEY")  # the dialogue cannot be read: the export fails at its end
    from avain.core.message_keys import MessageKeyError

    (tmp_path / "exports").mkdir()
    with pytest.raises(MessageKeyError):
        app.run(Actor("evaluator", team["evaluator"]), export_mod.export, tmp_path / "exports" / "out")
    assert list((tmp_path / "exports").iterdir()) == []  # no CSV, no half-written folder


def test_a_pilot_naming_an_instrument_no_plugin_registers_is_warned_of(app):
    with Session(app.engine) as s:
        from avain.core.models import PilotRow

        row = s.get(PilotRow, "example")
        config = json.loads(row.config)
        config["evaluation"]["instruments"].append("kykyviisary")  # a typo
        row.config = json.dumps(config)
        s.commit()
    warnings = app.read(ADMIN, pilots.show, "example")["warnings"]
    assert "evaluation: no loaded plugin registers kykyviisary: responses to it are refused and the report " \
           "leaves it out" in warnings
    assert app.read(ADMIN, figures.compute, ["example"])["pilots"][0]["unknown_instruments"] == ["kykyviisary"]
    assert not any("evaluation" in w for w in app.read(ADMIN, pilots.show, "pori")["warnings"])
