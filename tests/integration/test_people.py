"""Workers, clients, roles and the audit trail through the services, on SQLite and
PostgreSQL."""

import pytest
from helpers import HETUS, enroll
from sqlalchemy import select, text
from sqlmodel import Session

from avain.core import audit
from avain.core.auth import Actor
from avain.core.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from avain.core.models import AuditEventRow, ClientIdentityRow, ClientRow
from avain.core.services import audit_log, people, pilots


def count(app, table):
    with Session(app.engine) as s:
        return s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_enroll_prints_the_default_code_and_keeps_identity_apart(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    assert code == "EX-F-01-001"
    assert enroll(app, hetu=HETUS[1], worker=team["worker"], group="elderly") == "EX-E-01-002"
    with Session(app.engine) as s:
        row = s.get(ClientRow, code)
        ident = s.get(ClientIdentityRow, code)
    assert HETUS[0].encode() not in ident.hetu and b"Testi" not in ident.name  # sealed at rest
    assert len(ident.hetu_index) == 64 and HETUS[0] not in ident.hetu_index
    shown = app.run(Actor("admin"), people.identify, code, reason="test")
    assert (shown["hetu"], shown["name"]) == (HETUS[0], "Testi Henkilö")
    assert not hasattr(row, "hetu") and not hasattr(row, "name")


def test_century_sign_is_significant_and_duplicates_are_refused(app, team):
    a = enroll(app, hetu="010594Y123W", worker=team["worker"])
    b = enroll(app, hetu="010594-123W", worker=team["worker"])
    assert a != b
    before = count(app, "client")
    with pytest.raises(Conflict, match="already a client"):
        enroll(app, hetu="010594Y123W", worker=team["other_worker"])
    assert count(app, "client") == before


def test_bad_henkilotunnus_is_refused_without_repeating_it(app, team):
    for bad in ("010594Y123X", "320194-123W", "12345", "311299A9008"):
        with pytest.raises(ValidationError) as err:
            enroll(app, hetu=bad, worker=team["worker"])
        assert bad not in str(err.value)
        assert str(err.value).startswith("--hetu: ")
    assert count(app, "client") == 0
    with pytest.raises(ValidationError, match="temporary numbers"):
        enroll(app, hetu="311299A9008", worker=team["worker"])


def test_unknown_pilot_worker_and_group_name_the_field(app, team):
    with pytest.raises(NotFound, match="--pilot: no pilot 'nope'"):
        app.run(Actor("admin"), people.enroll, pilot_id="nope", hetu=HETUS[0], name="X",
                worker_id=team["worker"])
    with pytest.raises(NotFound, match="--worker: no worker 'example-77'"):
        enroll(app, hetu=HETUS[0], worker="example-77")
    with pytest.raises(ValidationError, match="--group: 'kids'"):
        enroll(app, hetu=HETUS[0], worker=team["worker"], group="kids")
    with pytest.raises(ValidationError, match="--worker: example-04 is a finance"):
        enroll(app, hetu=HETUS[0], worker=team["finance"])


def test_eligibility_hook_refuses_with_reasons_and_writes_nothing(app, team):
    with pytest.raises(Refused, match="family-carer contract is required") as err:
        enroll(app, hetu=HETUS[0], worker=team["worker"], assessment={})
    assert err.value.reasons
    assert count(app, "client") == 0
    assert count(app, "client_identity") == 0


def test_intake_caps_count_hb_clients_not_controls(app, team, monkeypatch):
    from avain.core.domain import Pilot

    real = pilots.get

    def small(uow, pilot_id, **kw):
        p = real(uow, pilot_id, **kw)
        return Pilot.from_config({**_thaw(p.raw), "intake": {"max_clients": 1}})

    monkeypatch.setattr(pilots, "get", small)
    enroll(app, hetu=HETUS[0], worker=team["worker"])
    enroll(app, hetu=HETUS[1], worker=team["worker"], control=True)  # controls always fit
    with pytest.raises(Refused, match="pilot example is full \\(1 clients\\)"):
        enroll(app, hetu=HETUS[2], worker=team["worker"])


def _thaw(raw):
    from avain.core.domain import thaw

    return thaw(raw)


def test_intake_closes_after_its_date(app, team):
    import datetime as dt

    with pytest.raises(Refused, match="no new clients after 2030-12-31"):
        enroll(app, hetu=HETUS[0], worker=team["worker"], on_date=dt.date(2031, 1, 1))


def test_worker_acts_on_own_clients_only(app, team):
    mine = enroll(app, hetu=HETUS[0], worker=team["worker"])
    theirs = enroll(app, hetu=HETUS[1], worker=team["other_worker"])
    me = Actor("worker", team["worker"])
    assert [c["code"] for c in app.run(me, people.list_clients)] == [mine]
    assert app.run(me, people.show, mine, reason="plan")["name"] == "Testi Henkilö"
    with pytest.raises(PermissionDenied):
        app.run(me, people.show, theirs, reason="curious")
    with pytest.raises(PermissionDenied):
        app.run(me, people.end, theirs)
    with pytest.raises(PermissionDenied, match="for themself only"):
        enroll(app, me, hetu=HETUS[2], worker=team["other_worker"])


def test_supervisor_sees_their_team(app, team):
    mine = enroll(app, hetu=HETUS[0], worker=team["worker"])
    enroll(app, hetu=HETUS[1], worker=team["other_worker"])
    sup = Actor("supervisor", team["supervisor"])
    assert [c["code"] for c in app.run(sup, people.list_clients)] == [mine]


def test_evaluator_sees_codes_never_identities(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"], consents=("evaluation",))
    ev = Actor("evaluator", team["evaluator"])
    shown = app.run(ev, people.show, code, reason="evaluation")
    assert "name" not in shown and "hetu" not in shown
    with pytest.raises(PermissionDenied):
        app.run(ev, people.identify, code, reason="evaluation")
    assert [c["code"] for c in app.run(ev, people.list_clients)] == [code]


def test_assistant_sees_assigned_clients_and_client_sees_self(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    other = enroll(app, hetu=HETUS[1], worker=team["worker"])
    asst = Actor("assistant", team["assistant"])
    assert app.run(asst, people.list_clients) == []
    app.run(Actor("admin"), people.assign_assistant, code, team["assistant"])
    assert [c["code"] for c in app.run(asst, people.list_clients)] == [code]
    me = Actor("client", code)
    assert app.run(me, people.show, code, reason="own data")["hetu"] == HETUS[0]
    with pytest.raises(PermissionDenied):
        app.run(me, people.show, other, reason="x")


def test_acting_as_someone_who_does_not_exist_is_refused(app, team):
    with pytest.raises(PermissionDenied, match="no worker 'example-99'"):
        app.run(Actor("worker", "example-99"), people.list_clients)
    with pytest.raises(PermissionDenied, match="is a supervisor, not a worker"):
        app.run(Actor("worker", team["supervisor"]), people.list_clients)


def test_every_change_and_identity_read_is_audited_without_personal_data(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    app.run(Actor("worker", team["worker"]), people.identify, code, reason="phone call")
    app.run(Actor("admin"), people.end, code)
    events = app.run(Actor("admin"), audit_log.log, subject=code)
    assert [e["action"] for e in events] == ["client.enrolled", "client.identity_read",
                                             "client.ended"]
    assert events[1]["actor"] == f"worker:{team['worker']}"
    assert events[1]["purpose"] == "phone call"
    assert events[2]["before"]["ended_on"] is None and events[2]["after"]["ended_on"]
    with Session(app.engine) as s:
        dump = " ".join(
            f"{r.before} {r.after} {r.purpose}" for r in s.execute(select(AuditEventRow)).scalars()
        )
    assert HETUS[0] not in dump and "Testi" not in dump


def test_client_reads_who_looked_at_them_but_no_one_else(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    other = enroll(app, hetu=HETUS[1], worker=team["worker"])
    app.run(Actor("worker", team["worker"]), people.identify, code, reason="visit")
    mine = app.run(Actor("client", code), audit_log.log)
    assert {e["subject"] for e in mine} == {code}
    assert any(e["purpose"] == "visit" for e in mine)
    with pytest.raises(PermissionDenied):
        app.run(Actor("client", code), audit_log.log, subject=other)
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["worker"]), audit_log.log)


def test_audit_chain_detects_tampering_and_removal(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    app.run(Actor("admin"), people.end, code)
    assert app.run(Actor("admin"), audit_log.verify)["ok"]
    with Session(app.engine) as s:
        s.execute(text("UPDATE audit_event SET actor = 'someone' WHERE subject = :c AND seq = 1"),
                  {"c": code})
        s.commit()
    result = app.run(Actor("admin"), audit_log.verify)
    assert not result["ok"]
    assert f"stream {code}: event 1 has been altered" in result["problems"]
    with Session(app.engine) as s:
        s.execute(text("DELETE FROM audit_event WHERE subject = :c"), {"c": code})
        s.commit()
    problems = app.run(Actor("admin"), audit_log.verify)["problems"]
    assert any("events removed or added outside avain" in p for p in problems)


def test_audit_streams_are_chained_per_subject(app, team):
    a = enroll(app, hetu=HETUS[0], worker=team["worker"])
    b = enroll(app, hetu=HETUS[1], worker=team["worker"])
    with Session(app.engine) as s:
        seqs = dict(s.execute(select(AuditEventRow.stream, AuditEventRow.seq)
                              .where(AuditEventRow.action == "client.enrolled")).all())
        organiser = s.execute(select(AuditEventRow.seq).where(
            AuditEventRow.stream == audit.ORGANISER)).scalars().all()
    assert seqs == {a: 1, b: 1}
    assert organiser == list(range(1, len(organiser) + 1))


def test_worker_codes_are_unique_within_a_pilot(app, team):
    with pytest.raises(Conflict, match="code 01 already"):
        app.run(Actor("admin"), people.add_worker, pilot_id="example", code="01", name="X",
                role="worker")
    with pytest.raises(PermissionDenied):
        app.run(Actor("worker", team["worker"]), people.add_worker, pilot_id="example",
                code="09", name="X", role="worker")
