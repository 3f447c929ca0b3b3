"""Personal data at rest: the database file holds no name, henkilötunnus, phone number or
words of a proposal; files are private; enrolment does not tell who is a client."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from conftest import open_app
from helpers import HETUS, PLAN, PROVIDERS, enroll, month_ready, propose
from sqlalchemy import text
from sqlmodel import Session

from avain.core import db as dbmod
from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import Conflict, Refused
from avain.core.models import DecisionRow, ProposalRow
from avain.core.services import budget, people, plans, purchases

ADMIN = Actor("admin")
PHONE = "+358401234567"
TEXT = "Tarvitsen siivousta lonkkaleikkauksen jälkeen"
REASON = "Palveluntuottaja ei ole hyväksytty tälle palvelulle"


def _file_bytes(url: str) -> bytes:
    path = dbmod.sqlite_path(url)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_the_database_file_holds_no_name_hetu_phone_or_proposal_words(sqlite_url):
    app = open_app(sqlite_url)
    team, (code, other) = month_ready(app)
    worker = Actor("worker", team["worker"])
    app.run(worker, people.set_phone, code, PHONE)
    proposal = app.run(Actor("client", code), purchases.propose, code, service="cleaning",
                       provider_id=PROVIDERS[0], amount=Money(2000),
                       service_date=dt.date(2018, 1, 15), text=TEXT)["id"]
    rejected = app.run(worker, purchases.reject, proposal, reason=REASON)
    assert (rejected["text"], rejected["reason"]) == (TEXT, REASON)  # the people allowed read them
    shown = app.run(ADMIN, people.identify, code, reason="check")
    assert shown["hetu"] == HETUS[0] and shown["phone"] == "on record"
    found = app.run(ADMIN, people.find, name=shown["name"][2:8].upper(), reason="check")
    assert [f["code"] for f in found] == [code, other]  # name search still works, in memory (same names)
    assert [f["code"] for f in app.run(ADMIN, people.find, hetu=HETUS[0], reason="check")] == [code]
    app.close()
    data = _file_bytes(sqlite_url)
    for secret in (HETUS[0], shown["name"], PHONE, TEXT, REASON, "lonkkaleikkaus", "Palveluntuottaja ei"):
        assert secret.encode("utf-8") not in data, secret
    with Session(dbmod.make_engine(sqlite_url)) as s:
        row = s.get(ProposalRow, proposal)
        assert row.key_id and TEXT.encode() not in row.text and REASON.encode() not in row.reason


def test_a_decision_reason_is_sealed(app, team):
    code = enroll(app, hetu=HETUS[1], worker=team["worker"])
    worker = Actor("worker", team["worker"])
    app.run(worker, plans.set_plan, code, valid_from=dt.date(2018, 1, 1), items=dict(PLAN))
    granted = app.run(worker, budget.grant, code, valid_from=dt.date(2018, 1, 1), valid_to=dt.date(2018, 12, 31),
                      monthly_amount=Money(30000))
    ended = app.run(worker, budget.end_decision, granted["id"], on=dt.date(2018, 6, 30), reason="Muutti Ruotsiin")
    assert ended["change_reason"] == "Muutti Ruotsiin"
    assert app.read(worker, budget.decisions, code)[0]["change_reason"] == "Muutti Ruotsiin"
    with Session(app.engine) as s:
        row = s.get(DecisionRow, granted["id"])
        assert row.key_id and b"Ruotsiin" not in row.change_reason


def test_the_database_and_its_journal_are_readable_by_the_owner_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    engine = dbmod.make_engine(url)
    dbmod.upgrade(engine)
    with engine.connect() as conn:  # while a connection is open, the -wal and -shm files exist
        conn.execute(text("SELECT 1"))
        files = sorted(tmp_path.iterdir())
        assert [f.name for f in files] == ["new.db", "new.db-shm", "new.db-wal"]
        assert {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files} == dict.fromkeys(
            ["new.db", "new.db-shm", "new.db-wal"], 0o600)
    engine.dispose()


def test_enrolment_does_not_tell_others_who_is_a_client(app, team):
    enroll(app, Actor("worker", team["worker"]), hetu=HETUS[0], worker=team["worker"])
    other = Actor("worker", team["other_worker"])
    with pytest.raises(Refused) as theirs:  # another worker's client
        enroll(app, other, hetu=HETUS[0], worker=team["other_worker"])
    message = str(theirs.value)
    assert "already" not in message and "example" not in message and "EX-" not in message
    assert message == "--hetu: this person cannot be enrolled by you; ask the pilot's administrator"
    # the worker of the client and an admin may learn more
    with pytest.raises(Conflict, match=r"already a client of pilot example \(EX-F-01-001\)"):
        enroll(app, Actor("worker", team["worker"]), hetu=HETUS[0], worker=team["worker"])
    with pytest.raises(Conflict, match="already a client of pilot example"):
        enroll(app, ADMIN, hetu=HETUS[0], worker=team["other_worker"])
    # Facts the pilot refuses get the same answer for a client and for anyone else.
    answers = []
    for hetu in (HETUS[0], HETUS[1]):
        with pytest.raises(Refused) as refused:
            enroll(app, other, hetu=hetu, worker=team["other_worker"], assessment={"carer_contract": "no"})
        answers.append(str(refused.value))
    assert answers[0] == answers[1] and "cannot enroll in example" in answers[0]


def test_an_old_database_with_plain_identities_is_sealed_by_the_upgrade(sqlite_url):
    app = open_app(sqlite_url)
    team, (code, _) = month_ready(app)
    worker = Actor("worker", team["worker"])
    proposal = propose(app, code, 2000)
    app.run(worker, purchases.reject, proposal, reason=REASON)
    app.run(worker, people.set_phone, code, PHONE)
    app.close()
    engine = dbmod.make_engine(sqlite_url)
    from alembic import command

    command.downgrade(dbmod.alembic_config(engine), "0011")  # the schema before, its rows in plain text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT hetu, phone FROM client_identity WHERE client_code = :c"),
                            {"c": code}).one() == (HETUS[0], PHONE)
        assert conn.execute(text("SELECT reason FROM proposal WHERE id = :i"), {"i": proposal}).scalar() == REASON
    engine.dispose()
    assert REASON.encode() in _file_bytes(sqlite_url)

    engine = dbmod.make_engine(sqlite_url)
    dbmod.upgrade(engine)
    engine.dispose()
    data = _file_bytes(sqlite_url)
    assert HETUS[0].encode() not in data and PHONE.encode() not in data and REASON.encode() not in data
    app = open_app(sqlite_url)
    shown = app.run(ADMIN, people.identify, code, reason="after the upgrade")
    assert (shown["hetu"], shown["name"], shown["phone"]) == (HETUS[0], "Testi Henkilö", "on record")
    assert app.read(worker, purchases.list_proposals, code=code)[0]["reason"] == REASON
    with pytest.raises(Conflict, match="already a client"):  # the keyed index finds the number
        enroll(app, hetu=HETUS[0], worker=team["worker"])
    app.close()
