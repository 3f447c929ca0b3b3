"""Workers who leave, need assessments kept in versions, and finding a client by
henkilötunnus or name (SQLite and PostgreSQL)."""

import datetime as dt
import json

import pytest
from helpers import HETUS, enroll
from sqlalchemy import select
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from avain.core.models import AuditEventRow, ClientRow
from avain.core.services import people

ADMIN = Actor("admin")


def audit(app, action):
    """The events of ``action``, their purposes decrypted (they are stored encrypted)."""
    from helpers import opened_purposes

    with Session(app.engine) as s:
        return opened_purposes(app, s.execute(select(AuditEventRow).where(AuditEventRow.action == action)
                                              .order_by(AuditEventRow.id)).scalars().all())


def test_deactivation_moves_every_client_in_one_transaction_and_audits_each(app, team):
    mine = [enroll(app, hetu=HETUS[i], worker=team["worker"]) for i in range(2)]
    theirs = enroll(app, hetu=HETUS[2], worker=team["other_worker"])  # ordinal 1, like mine[0]
    ended = enroll(app, hetu=HETUS[3], worker=team["worker"])
    app.run(ADMIN, people.end, ended, on_date=dt.date.today())
    with pytest.raises(Refused, match="still has 2 client"):
        app.run(ADMIN, people.deactivate_worker, team["worker"])
    with pytest.raises(PermissionDenied):
        app.run(Actor("supervisor", team["supervisor"]), people.deactivate_worker, team["worker"],
                reassign_to=team["other_worker"])
    done = app.run(ADMIN, people.deactivate_worker, team["worker"], reassign_to=team["other_worker"],
                   on_date=dt.date(2018, 3, 1))
    assert done["reassigned"] == mine and done["clients"] == 2
    with Session(app.engine) as s:
        rows = {r.code: r for r in s.execute(select(ClientRow)).scalars()}
    assert {rows[c].worker_id for c in mine} == {team["other_worker"]}
    assert rows[ended].worker_id == team["worker"]  # history of an ended client stays as it was
    assert sorted(rows[c].ordinal for c in [*mine, theirs]) == [1, 2, 3]
    moves = audit(app, "client.reassigned")
    assert [(e.subject, e.stream) for e in moves] == [(c, c) for c in mine]  # each in its client's stream
    assert json.loads(moves[0].before)["worker"] == team["worker"]
    assert json.loads(moves[0].after)["worker"] == team["other_worker"]
    [event] = audit(app, "worker.deactivated")
    assert json.loads(event.after)["clients"] == 2
    with pytest.raises(PermissionDenied, match="was deactivated on 2018-03-01"):
        app.read(Actor("worker", team["worker"]), people.list_clients)
    with pytest.raises(ValidationError, match="--supervisor: worker .* was deactivated"):
        app.run(ADMIN, people.deactivate_worker, team["supervisor"])  # no clients: allowed
        app.run(ADMIN, people.add_worker, pilot_id="example", code="09", name="N", role="worker",
                supervisor_id=team["supervisor"])
    with pytest.raises(Conflict, match="already"):
        app.run(ADMIN, people.deactivate_worker, team["worker"])


def test_an_assistants_clients_move_to_another_assistant(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    app.run(ADMIN, people.assign_assistant, code, team["assistant"])
    other = app.run(ADMIN, people.add_worker, pilot_id="example", code="07", name="N", role="assistant")["id"]
    with pytest.raises(ValidationError, match="is not another assistant"):
        app.run(ADMIN, people.deactivate_worker, team["assistant"], reassign_to=team["other_worker"])
    app.run(ADMIN, people.deactivate_worker, team["assistant"], reassign_to=other)
    assert app.read(ADMIN, people.list_clients)[0]["assistant"] == other
    with pytest.raises(ValidationError, match="--assistant: worker .* was deactivated"):
        app.run(ADMIN, people.assign_assistant, code, team["assistant"])


def test_need_assessments_are_versions_with_day_and_assessor(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"], on_date=dt.date(2018, 1, 2))
    as_worker = Actor("worker", team["worker"])
    first = app.run(ADMIN, people.show, code, reason="check")
    assert (first["assessments"], first["assessment"]["facts"]) == (1, {"carer_contract": "yes"})
    assert first["assessment"]["assessed_by"] == "admin"
    again = app.run(as_worker, people.assess, code, {"carer_contract": "no"}, on_date=dt.date(2018, 5, 1))
    assert again["version"] == 2 and again["eligibility"]  # the example pilot wants a carer contract
    with pytest.raises(ValidationError, match="--date: 2017-12-01 is before the enrolment"):
        app.run(as_worker, people.assess, code, {"hours": "3"}, on_date=dt.date(2017, 12, 1))
    now = app.run(ADMIN, people.show, code, reason="check")
    assert now["assessments"] == 2
    assert now["assessment"] == {"version": 2, "assessed_on": "2018-05-01",
                                 "assessed_by": f"worker:{team['worker']}", "facts": {"carer_contract": "no"}}
    [event] = audit(app, "client.assessed")
    assert event.subject == code and json.loads(event.after)["version"] == 2


def test_find_by_henkilotunnus_or_name_within_scope(app, team):
    code = enroll(app, hetu=HETUS[0], worker=team["worker"])
    found = app.run(Actor("worker", team["worker"]), people.find, hetu=HETUS[0], reason="phone call")
    assert [(c["code"], c["hetu"]) for c in found] == [(code, HETUS[0])]
    assert [c["code"] for c in app.run(ADMIN, people.find, name="TESTI h", reason="letter")] == [code]
    with pytest.raises(NotFound) as missing:
        app.run(Actor("worker", team["other_worker"]), people.find, hetu=HETUS[0], reason="x")
    assert str(missing.value) == "no client with that henkilötunnus"
    with pytest.raises(NotFound, match="no client whose name contains that text"):
        app.run(ADMIN, people.find, name="100%", reason="x")
    with pytest.raises(PermissionDenied):
        app.run(Actor("finance"), people.find, name="testi", reason="x")
    with pytest.raises(ValidationError, match="--reason"):
        app.run(ADMIN, people.find, name="testi", reason=" ")
    reads = audit(app, "client.identity_read")
    assert [e.purpose for e in reads] == ["phone call", "letter"]


def test_a_name_search_that_matches_too_many_clients_is_refused_without_reading_them(app, team, monkeypatch):
    for i in range(3):
        enroll(app, hetu=HETUS[i], worker=team["worker"])
    monkeypatch.setattr(people, "FIND_AT_MOST", 2)
    with pytest.raises(Refused, match="--name: more than 2 clients match; give more of the name"):
        app.run(ADMIN, people.find, name="testi", reason="x")
    assert audit(app, "client.identity_read") == []
