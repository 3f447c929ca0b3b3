"""The client–worker dialogue, through the services, on SQLite and PostgreSQL: threads for
their participants only, the workflow's steps in the thread, encryption at rest with keys
outside the database, rotation, response times, notifications and the de-identified
dialogue for evaluation."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from conftest import TEST_MESSAGE_KEY, open_app
from helpers import HETUS, approve, enroll, month_ready, pay_approved, propose
from sqlalchemy import func, select, text, update
from sqlmodel import Session, SQLModel

from avain.core import message_keys
from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from avain.core.hookspecs import hookimpl
from avain.core.message_keys import MessageKey, MessageKeyError
from avain.core.models import (
    AuditEventRow,
    MessageAttachmentRow,
    MessageReceiptRow,
    MessageRow,
    MessageThreadRow,
)
from avain.core.plugins import make_plugin_manager
from avain.core.services import audit_log, consent, messages, people, pilots, purchases
from avain.core.workdays import FINLAND

ADMIN = Actor("admin")
MARKER = "Hilla-sarjakuvakerho-4711"  # a phrase found nowhere else in a database


def client(code):
    return Actor("client", code)


def counts(app) -> dict[str, int]:
    with Session(app.engine) as s:
        return {m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
                for m in (MessageRow, MessageAttachmentRow, MessageReceiptRow, MessageThreadRow, AuditEventRow)}


class Clock:
    """A settable clock for the App: messages are stamped with it."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self):
        return self.now

    def set(self, day: dt.date, hour: int, minute: int = 0):
        self.now = dt.datetime.combine(day, dt.time(hour, minute), FINLAND).astimezone(dt.UTC)


@pytest.fixture
def ready(app):
    team, codes = month_ready(app)
    app.run(ADMIN, people.assign_assistant, codes[0], team["assistant"])
    return app, team, codes


# --- the thread and its participants ---------------------------------------------------


def test_a_question_waits_in_the_inbox_until_the_worker_answers(ready):
    app, team, (code, other) = ready
    worker, sup = Actor("worker", team["worker"]), Actor("supervisor", team["supervisor"])
    sent = app.run(client(code), messages.send, code, text="  Voinko siirtää käynnin?  ")
    assert sent["client"] == code and sent["attachments"] == []
    inbox = app.read(worker, messages.inbox)
    assert [(r["client"], r["unanswered"], r["overdue"]) for r in inbox] == [(code, 1, False)]
    assert app.read(sup, messages.inbox) == inbox  # the supervisor sees the team's threads
    assert app.read(Actor("worker", team["other_worker"]), messages.inbox) == []

    thread = app.run(worker, messages.thread, code)
    assert [m["text"] for m in thread["messages"]] == ["Voinko siirtää käynnin?"]  # trimmed
    assert thread["participants"] == {"client": f"client:{code}", "worker": f"worker:{team['worker']}",
                                      "supervisor": f"supervisor:{team['supervisor']}",
                                      "assistant": f"assistant:{team['assistant']}"}
    assert [r["reader"] for r in thread["messages"][0]["read_by"]] == [f"worker:{team['worker']}"]
    app.run(worker, messages.send, code, text="Voit, tee uusi ehdotus.")
    assert app.read(worker, messages.inbox) == []
    seen = app.run(client(code), messages.thread, code)
    assert [m["author_role"] for m in seen["messages"]] == ["client", "worker"]
    assert seen["waiting_since"] is None
    # the client's receipt lands on the worker's message only, once however often they look
    app.run(client(code), messages.thread, code)
    assert [len(m["read_by"]) for m in app.run(worker, messages.thread, code)["messages"]] == [1, 1]
    # the HB assistant asks on the client's behalf: the thread waits again
    app.run(Actor("assistant", team["assistant"]), messages.send, code, text="Kysyn asiakkaan puolesta.")
    assert [r["client"] for r in app.read(worker, messages.inbox)] == [code]
    # threads are per client: the other client's thread is empty
    assert app.run(client(other), messages.thread, other)["messages"] == []


def test_the_workflow_steps_appear_in_the_thread(ready):
    app, team, (code, _) = ready
    worker = Actor("worker", team["worker"])
    pid = propose(app, code, 4000)
    c = approve(app, team, pid)
    app.run(worker, messages.send, code, text="Hyväksytty!", ref=f"commitment:{c['id']}")
    rejected = propose(app, code, 1500, service="meals")
    app.run(worker, purchases.reject, rejected, reason="ateriat tulevat jo kotihoidosta")
    inv = app.run(Actor("finance", team["finance"]), purchases.record_invoice, provider_id=c["provider"],
                  number="INV-7", amount=Money(3900), reference=c["reference"], on_date=dt.date(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    pay_approved(app)
    story = app.run(client(code), messages.thread, code)["messages"]
    assert [(m["author_role"], m["event"], m["ref"]) for m in story] == [
        ("system", "proposal.made", f"proposal:{pid}"),
        ("system", "proposal.approved", f"proposal:{pid}"),
        ("system", "commitment.issued", f"commitment:{c['id']}"),
        ("worker", None, f"commitment:{c['id']}"),
        ("system", "proposal.made", f"proposal:{rejected}"),
        ("system", "proposal.rejected", f"proposal:{rejected}"),
        ("system", "invoice.paid", f"invoice:{inv['id']}"),
    ]
    assert "40,00\u00a0€" in story[0]["text"] and "“please”" in story[0]["text"]
    assert c["reference"] in story[2]["text"]
    assert story[5]["text"].endswith("hylätty (omatyöntekijä): ateriat tulevat jo kotihoidosta")  # a Finnish client
    assert "39,00\u00a0€" in story[6]["text"]
    # a proposal is a question, the decision its answer
    assert [m["side"] for m in story] == ["client", "worker", None, "worker", "client", "worker", None]


def test_only_the_threads_participants_read_or_write_it(ready):
    app, team, (code, other) = ready
    app.run(client(code), messages.send, code, text="Hei")
    before = counts(app)
    outsiders = [Actor("worker", team["other_worker"]), Actor("finance", team["finance"]), Actor("finance"),
                 Actor("evaluator", team["evaluator"]), ADMIN, client(other)]
    for actor in outsiders:
        for fn, kwargs in ((messages.thread, {}), (messages.send, {"text": "Hei"})):
            with pytest.raises(PermissionDenied, match="not a participant"):
                app.run(actor, fn, code, **kwargs)
    assert counts(app) == before  # no message, no receipt, no audit event
    attachment_owner = app.run(client(code), messages.send, code, text="liite", attachments=[("a.txt", b"x")])
    theirs = attachment_owner["attachments"][0]["id"]
    # an outsider is told the same as for an attachment that does not exist
    with pytest.raises(NotFound, match=f"no attachment {theirs} in a thread you take part in"):
        app.read(Actor("worker", team["other_worker"]), messages.attachment, theirs)
    with pytest.raises(NotFound, match="no attachment 999 in a thread you take part in"):
        app.read(client(code), messages.attachment, 999)
    with pytest.raises(PermissionDenied):
        app.read(ADMIN, messages.attachment, theirs)
    for actor in (client(code), Actor("worker", team["worker"]), Actor("supervisor", team["supervisor"]),
                  Actor("assistant", team["assistant"])):
        assert len(app.run(actor, messages.thread, code)["messages"]) == 2
    with pytest.raises(PermissionDenied):  # the inbox is a worker's
        app.read(client(code), messages.inbox)


def test_bad_messages_are_refused_and_nothing_is_written(ready):
    app, team, (code, other) = ready
    other_proposal = propose(app, other, 1000)
    me = client(code)
    before = counts(app)
    cases = [
        ({"text": ""}, ValidationError, "--text: the message is empty"),
        ({"text": " \n\t "}, ValidationError, "--text: the message is empty"),
        ({"text": "x" * (messages.MAX_TEXT + 1)}, ValidationError, "5 001 characters; the limit is 5 000"),
        ({"text": "ok", "ref": "proposal"}, ValidationError, "--ref: 'proposal' is not a reference"),
        ({"text": "ok", "ref": "payment:1"}, ValidationError, "--ref: 'payment:1' is not a reference"),
        ({"text": "ok", "ref": f"proposal:{other_proposal}"}, NotFound, f"--ref: {code} has no proposal"),
        ({"text": "ok", "attachments": [("a", b"1")] * 6}, ValidationError, "6 files; at most 5"),
        ({"text": "ok", "attachments": [("big.pdf", b"0" * (messages.MAX_ATTACHMENT + 1))]}, ValidationError,
         "big.pdf is 5.0 MiB; the limit is 5 MiB"),
        ({"text": "ok", "attachments": [("empty.txt", b"")]}, ValidationError, "empty.txt is empty"),
        ({"text": "ok", "ref": "proposal:²"}, ValidationError, "is not a reference"),
        ({"text": "ok", "ref": "proposal:99999999999999999999"}, ValidationError, "is not a reference"),
        ({"text": "\x1b[31mpunainen\x1b]0;title"}, ValidationError,
         r"control or direction character \(U\+001B\) at character 1"),
        ({"text": "maksa \u202etilille"}, ValidationError, r"control or direction character \(U\+202E\)"),
        ({"text": "rikki \udcff"}, ValidationError, "--text: not valid UTF-8 text"),
        ({"text": "ok", "attachments": [("\udcffnimi.txt", b"1")]}, ValidationError, "--attach: not valid UTF-8"),
    ]
    for kwargs, error, words in cases:
        with pytest.raises(error, match=words):
            app.run(me, messages.send, code, **kwargs)
    assert counts(app) == before
    app.run(me, messages.send, code, text="x" * 5000)  # the limit itself is fine
    sent = app.run(me, messages.send, code, text="rivi 1\r\nrivi 2\tsarake")  # line breaks and tabs are
    assert app.run(me, messages.thread, code)["messages"][-1]["text"] == "rivi 1\nrivi 2\tsarake"
    assert sent["id"]
    control = enroll(app, hetu=HETUS[3], worker=team["worker"], control=True)
    with pytest.raises(Refused, match="control client"):
        app.run(client(control), messages.send, control, text="Hei")


def test_an_attachment_comes_back_as_it_was_sent(ready):
    app, team, (code, _) = ready
    content = bytes(range(256)) * 100
    sent = app.run(client(code), messages.send, code, text="Lausunto liitteenä",
                   attachments=[("../../lausunto.pdf", content)])
    assert sent["attachments"][0]["name"] == "lausunto.pdf"  # no folders from the sender
    name, back = app.run(Actor("worker", team["worker"]), messages.attachment, sent["attachments"][0]["id"])
    assert (name, back) == ("lausunto.pdf", content)


# --- encryption at rest ---------------------------------------------------------------


def _every_stored_byte(app) -> bytes:
    """Every value of every table, as the database returns them (a dump)."""
    out = []
    with app.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    out.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\0".join(out)


def test_a_database_dump_reveals_no_message_text(ready, db_url):
    app, team, (code, _) = ready
    app.run(client(code), messages.send, code, text=f"Salainen: {MARKER}",
            attachments=[(f"{MARKER}.txt", f"sisältö {MARKER}".encode())])
    app.run(Actor("worker", team["worker"]), messages.thread, code)
    dump = _every_stored_byte(app)
    assert MARKER.encode() not in dump and MARKER.encode("utf-16-le") not in dump
    path = message_keys.dbmod.sqlite_path(db_url)
    if path is not None:  # the file itself, write-ahead log included
        app.close()
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                assert MARKER.encode() not in f.read_bytes()
    else:
        with app.engine.connect() as conn:  # PostgreSQL: the rows as text, as pg_dump writes them
            rows = conn.execute(text("SELECT string_agg(m::text, '') FROM message m")).scalar_one()
        assert MARKER not in rows
    assert TEST_MESSAGE_KEY.encode() not in dump  # the key is not in the database either


def test_the_wrong_key_is_refused_clearly_and_nothing_is_written(ready, monkeypatch):
    app, team, (code, _) = ready
    app.run(client(code), messages.send, code, text="Hei")
    before = counts(app)
    monkeypatch.setenv("AVAIN_MESSAGE_KEY", MessageKey.generate().text())
    worker = Actor("worker", team["worker"])
    with pytest.raises(MessageKeyError, match=r"message \d+ was encrypted with message key \w+, which is not "
                                              r"among the keys in AVAIN_MESSAGE_KEY .*wrong key"):
        app.run(worker, messages.thread, code)
    with pytest.raises(MessageKeyError, match="wrong key; nothing was written"):
        app.run(worker, messages.send, code, text="Vastaus")
    # a thread without messages yet: the wrong key is refused all the same, for a
    # participant's message and for a workflow step
    assert app.run(client(other := ready[2][1]), messages.thread, other)["messages"] == []
    with pytest.raises(MessageKeyError, match="wrong key; nothing was written"):
        app.run(client(other), messages.send, other, text="Hei")
    with pytest.raises(MessageKeyError, match="wrong key"):
        propose(app, other, 1000)
    assert counts(app) == before  # no receipts, no message
    with Session(app.engine) as s:
        assert s.execute(select(func.count()).select_from(purchases.ProposalRow)).scalar_one() == 0
    monkeypatch.setenv("AVAIN_MESSAGE_KEY", "not-a-key")
    with pytest.raises(message_keys.ConfigError, match="AVAIN_MESSAGE_KEY \\(key 1\\): not a message key"):
        app.run(worker, messages.thread, code)


def test_a_tampered_or_moved_ciphertext_is_refused(ready):
    app, team, (code, other) = ready
    first = app.run(client(code), messages.send, code, text="Ensimmäinen")["id"]
    second = app.run(client(other), messages.send, other, text="Toinen")["id"]
    worker = Actor("worker", team["worker"])
    with Session(app.engine) as s:
        body = s.get(MessageRow, first).body
        flipped = body[:20] + bytes([body[20] ^ 1]) + body[21:]
        s.execute(update(MessageRow).where(MessageRow.id == first).values(body=flipped))
        s.commit()
    before = counts(app)
    with pytest.raises(MessageKeyError, match=f"message {first} cannot be decrypted: its ciphertext was changed"):
        app.run(worker, messages.thread, code)
    assert counts(app) == before  # no read receipt for what could not be read
    with Session(app.engine) as s:  # a valid ciphertext moved to another client's message
        moved = s.get(MessageRow, second).body
        s.execute(update(MessageRow).where(MessageRow.id == first).values(body=moved))
        s.commit()
    with pytest.raises(MessageKeyError, match=f"message {first} cannot be decrypted"):
        app.run(worker, messages.thread, code)


def test_two_messages_of_one_thread_and_moment_cannot_swap_texts(ready):
    app, team, (code, _) = ready
    app.clock = Clock(dt.datetime(2018, 1, 10, 9, tzinfo=dt.UTC))  # both at the same moment
    a = app.run(client(code), messages.send, code, text="Hyväksy ehdotus 1")["id"]
    b = app.run(client(code), messages.send, code, text="Hylkää ehdotus 2")["id"]
    with Session(app.engine) as s:
        first, second = s.get(MessageRow, a), s.get(MessageRow, b)
        assert first.sent_at == second.sent_at and first.author_role == second.author_role
        bodies = first.body, second.body
        s.execute(update(MessageRow).where(MessageRow.id == a).values(body=bodies[1]))
        s.execute(update(MessageRow).where(MessageRow.id == b).values(body=bodies[0]))
        s.commit()
    with pytest.raises(MessageKeyError, match=f"message {a} cannot be decrypted"):
        app.run(Actor("worker", team["worker"]), messages.thread, code)


def _read_refused(app, team, code, message_id):
    with pytest.raises(MessageKeyError, match=f"message {message_id} cannot be decrypted"):
        app.run(Actor("worker", team["worker"]), messages.thread, code)


def _rewrite(app, message_id, **values):
    with Session(app.engine) as s:
        before = s.execute(select(*(getattr(MessageRow, k) for k in values)).where(MessageRow.id == message_id)).one()
        s.execute(update(MessageRow).where(MessageRow.id == message_id).values(**values))
        s.commit()
    return dict(zip(values, before, strict=True))


def test_a_messages_author_reference_and_step_cannot_be_rewritten(ready):
    app, team, (code, other) = ready
    pid = propose(app, code, 4000)  # the workflow's step: proposal.made
    mine = app.run(client(code), messages.send, code, text="Hyväksytkö tämän?", ref=f"proposal:{pid}")["id"]
    step = app.run(client(code), messages.thread, code)["messages"][0]["id"]
    for message_id, change in ((mine, {"author_id": f"client:{other}"}),  # another client's words
                               (mine, {"author_id": f"worker:{team['worker']}", "author_role": "worker"}),
                               (mine, {"ref_id": pid + 1}), (mine, {"ref_type": None, "ref_id": None}),
                               (mine, {"side": "worker"}),  # a question turned into an answer
                               (step, {"event": "proposal.approved"}), (step, {"author_id": "admin"})):
        original = _rewrite(app, message_id, **change)
        _read_refused(app, team, code, message_id)
        _rewrite(app, message_id, **original)
    assert [m["text"] for m in app.run(client(code), messages.thread, code)["messages"]][1] == "Hyväksytkö tämän?"


def _seal_1_aad(row, part):
    """What a message written before seal 2 was bound to, as that version wrote it."""
    stamp = row.sent_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return f"avain-message\0{row.id}\0{row.client_code}\0{row.author_role}\0{stamp}\0{part}".encode()


def test_messages_sealed_before_seal_2_open_and_rotation_reseals_them(ready, monkeypatch):
    from avain.core.services import audit_log

    app, team, (code, _) = ready
    with monkeypatch.context() as m:  # workflow steps were not in the audit trail then
        m.setattr(messages, "record", lambda *a, **k: None)
        pid = propose(app, code, 4000)
    app.run(client(code), messages.send, code, text="Vanha viesti", ref=f"proposal:{pid}",
            attachments=[("vanha.txt", b"vanha liite")])
    ring = message_keys.load(str(app.engine.url))
    with Session(app.engine) as s:  # as the version before seal 2 left them
        for row in s.execute(select(MessageRow)).scalars():
            text = ring.open(row.key_id, row.body, messages._aad(row, "body"), what="m")
            row.seal, (_, row.body) = 1, ring.seal(text, _seal_1_aad(row, "body"))
        for a in s.execute(select(MessageAttachmentRow)).scalars():
            msg = s.get(MessageRow, a.message_id)
            msg.seal = 2
            name = ring.open(a.key_id, a.name, messages._attachment_aad(msg, a.id, "name"), what="a")
            content = ring.open(a.key_id, a.content, messages._attachment_aad(msg, a.id, "content"), what="a")
            msg.seal = 1
            _, a.name = ring.seal(name, _seal_1_aad(msg, f"attachment {a.id} name"))
            _, a.content = ring.seal(content, _seal_1_aad(msg, f"attachment {a.id} content"))
        s.commit()
    story = app.run(client(code), messages.thread, code)["messages"]
    assert [m["text"] for m in story][1] == "Vanha viesti" and story[1]["attachments"][0]["name"] == "vanha.txt"
    assert app.run(client(code), messages.attachment, story[1]["attachments"][0]["id"]) == ("vanha.txt",
                                                                                              b"vanha liite")
    assert app.read(ADMIN, audit_log.verify)["ok"]  # the old step without its event is not a problem
    done = messages.rotate_key(app, ADMIN)
    assert done["resealed"] == 3  # two messages and an attachment
    with Session(app.engine) as s:
        assert set(s.execute(select(MessageRow.seal)).scalars()) == {2}
        recorded = [json.loads(a) for (a,) in s.execute(select(AuditEventRow.after).where(
            AuditEventRow.action == "message.sent"))]
    assert {r["message"] for r in recorded} == {story[0]["id"], story[1]["id"]}  # the step got its event
    assert app.read(ADMIN, audit_log.verify) == {**app.read(ADMIN, audit_log.verify), "ok": True}
    story = app.run(client(code), messages.thread, code)["messages"]
    assert story[1]["text"] == "Vanha viesti"
    assert app.run(client(code), messages.attachment, story[1]["attachments"][0]["id"])[1] == b"vanha liite"
    _rewrite(app, story[1]["id"], author_id=f"worker:{team['worker']}")  # now sealed with the message
    _read_refused(app, team, code, story[1]["id"])


def test_audit_verify_finds_a_deleted_or_smuggled_message(ready):
    from avain.core.services import audit_log

    app, team, (code, other) = ready
    propose(app, code, 4000)  # a workflow step is a message too
    gone = app.run(client(code), messages.send, code, text="Poistetaan", attachments=[("a.txt", b"a")])["id"]
    kept = app.run(client(code), messages.send, code, text="Jää")["id"]
    app.run(Actor("worker", team["worker"]), messages.thread, code)  # read receipts
    clean = app.read(ADMIN, audit_log.verify)
    assert (clean["ok"], clean["messages"], clean["problems"]) == (True, 3, [])
    with Session(app.engine) as s:  # an insider deletes a message, its attachment and receipts
        for model in (MessageAttachmentRow, MessageReceiptRow):
            s.execute(model.__table__.delete().where(model.__table__.c.message_id == gone))
        s.execute(MessageRow.__table__.delete().where(MessageRow.id == gone))
        s.commit()
    found = app.read(ADMIN, audit_log.verify)
    assert not found["ok"] and found["problems"] == [
        f"message {gone} of {code}'s thread is in the audit trail but not among the messages (deleted outside avain)"]
    with Session(app.engine) as s:  # … and copies another in without avain
        row = s.get(MessageRow, kept)
        s.add(MessageRow(**{k: getattr(row, k) for k in MessageRow.model_fields if k != "id"}))
        s.commit()
        smuggled = s.execute(select(func.max(MessageRow.id))).scalar_one()
        s.execute(update(MessageRow).where(MessageRow.id == kept).values(client_code=other))
        s.commit()
    problems = app.read(ADMIN, audit_log.verify)["problems"]
    assert problems == [
        f"message {kept} is in {other}'s thread, but the audit trail has it sent to {code}'s (moved outside avain)",
        f"message {smuggled} in {code}'s thread has no message.sent event in the audit trail (written outside avain)",
        f"message {gone} of {code}'s thread is in the audit trail but not among the messages (deleted outside avain)"]


def test_audit_verify_finds_a_message_whose_author_was_rewritten(ready):
    from avain.core.services import audit_log

    app, team, (code, _) = ready
    sent = app.run(client(code), messages.send, code, text="Kuka kirjoitti?")["id"]
    assert app.read(ADMIN, audit_log.verify)["ok"]
    with Session(app.engine) as s:  # made to look as if the worker wrote it
        s.execute(update(MessageRow).where(MessageRow.id == sent).values(
            author_role="worker", author_id=f"worker:{team['worker']}"))
        s.commit()
    assert app.read(ADMIN, audit_log.verify)["problems"] == [
        f"message {sent} in {code}'s thread is written as from worker:{team['worker']}, but the audit trail has it "
        f"sent by client:{code} (changed outside avain)"]


def test_reading_a_thread_or_attachment_is_in_the_clients_audit_trail(ready):
    from avain.core.services import audit_log

    app, team, (code, _) = ready
    sent = app.run(client(code), messages.send, code, text=f"Salainen: {MARKER}", attachments=[("a.txt", b"x")])
    worker = Actor("worker", team["worker"])
    app.run(worker, messages.thread, code)
    app.run(Actor("supervisor", team["supervisor"]), messages.thread, code)
    app.run(worker, messages.attachment, sent["attachments"][0]["id"])
    mine = app.read(client(code), audit_log.log)  # the client sees who read their thread
    reads = [(e["actor"], e["action"], e["after"]) for e in mine if e["action"].startswith("message.") and
             e["action"] != "message.sent"]
    assert reads == [(f"worker:{team['worker']}", "message.read", {"messages": 1, "newest": sent["id"]}),
                     (f"supervisor:{team['supervisor']}", "message.read", {"messages": 1, "newest": sent["id"]}),
                     (f"worker:{team['worker']}", "message.attachment_read",
                      {"message": sent["id"], "attachment": sent["attachments"][0]["id"]})]
    assert all(e["subject"] == code and e["stream"] == code for e in mine if e["action"] == "message.read")
    assert MARKER not in json.dumps(mine) and "a.txt" not in json.dumps(mine)


def test_rotation_under_the_environment_key(ready, monkeypatch):
    app, team, (code, _) = ready
    for n in range(3):
        app.run(client(code), messages.send, code, text=f"viesti {n}", attachments=[(f"{n}.txt", b"data")])
    proposal = propose(app, code, 2000)
    app.run(Actor("worker", team["worker"]), purchases.reject, proposal, reason="Hinta on liian korkea")
    app.run(ADMIN, people.identify, code, reason="before the rotation")  # a purpose in the audit trail
    new = MessageKey.generate()
    monkeypatch.setenv("AVAIN_MESSAGE_KEY", f"{new.text()},{TEST_MESSAGE_KEY}")
    done = messages.rotate_key(app, ADMIN, chunk=2)
    # 3 messages, 3 attachments, 2 system messages (proposal made, rejected), 2 identities, 1 proposal,
    # 1 audit purpose
    assert done["key"] == new.id and done["resealed"] == 12 and "drop the old keys" in done["note"]
    monkeypatch.setenv("AVAIN_MESSAGE_KEY", new.text())  # the old key is gone
    shown = app.run(ADMIN, people.identify, code, reason="rotation test")
    assert shown["name"] == "Testi Henkilö" and shown["hetu"] == HETUS[0]  # identities were re-sealed
    assert app.read(ADMIN, purchases.list_proposals, code=code)[0]["reason"] == "Hinta on liian korkea"
    purposes = [e["purpose"] for e in app.read(ADMIN, audit_log.log, subject=code) if e["purpose"]]
    assert purposes == ["before the rotation", "rotation test"]  # re-sealed, the chain untouched
    assert app.read(ADMIN, audit_log.verify)["problems"] == []
    thread = app.run(client(code), messages.thread, code)["messages"]
    assert [m["text"] for m in thread][:3] == ["viesti 0", "viesti 1", "viesti 2"]
    assert app.run(client(code), messages.attachment, thread[2]["attachments"][0]["id"]) == ("2.txt", b"data")
    events = [e for e in app.run(ADMIN, lambda uow: uow.session.execute(
        select(AuditEventRow.action, AuditEventRow.after)).all()) if e[0] == "message.key_rotated"]
    assert len(events) == 1 and new.id in events[0][1] and new.text() not in events[0][1]
    with pytest.raises(PermissionDenied):
        messages.rotate_key(app, Actor("worker", team["worker"]))


@pytest.fixture
def file_keyed(tmp_path, sqlite_template, monkeypatch):
    """A SQLite database whose message key is in a key file beside it."""
    import shutil

    monkeypatch.delenv("AVAIN_MESSAGE_KEY")
    path = tmp_path / "avain.db"
    shutil.copy(sqlite_template, path)
    application = open_app(f"sqlite:///{path}")
    yield application, path.with_name("avain.db.key")
    application.close()


def test_the_first_message_makes_a_key_file_readable_by_the_owner_only(file_keyed):
    app, key_file = file_keyed
    team, (code, _) = month_ready(app)
    # no message yet, but the clients' identities are sealed with the key: the first enrolment made it
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600
    propose(app, code, 1000)  # the proposal's step is the first message
    ring = message_keys.load(str(app.engine.url))
    assert ring.source == "file" and len(ring.keys) == 1
    assert app.read(ADMIN, messages.prepare_key) == {"key": ring.current.id, "where": f"the key file {key_file}",
                                                    "created": False}
    app.run(client(code), messages.send, code, text="Hei")
    key_file.rename(key_file.with_name("elsewhere.key"))  # lost
    with pytest.raises(MessageKeyError, match=f"no message key: .*no key file at {key_file}, but this database "
                                              f"holds messages encrypted with key {ring.current.id}"):
        app.run(client(code), messages.send, code, text="Hei taas")
    assert not key_file.exists()  # no new key was made that would leave the old messages unreadable
    with pytest.raises(MessageKeyError, match="no message key"):
        app.run(client(code), messages.thread, code)


def test_rotating_a_key_file_survives_an_interruption(file_keyed, monkeypatch):
    app, key_file = file_keyed
    team, (code, _) = month_ready(app)
    for n in range(5):
        app.run(client(code), messages.send, code, text=f"viesti {n}")
    old = message_keys.load(str(app.engine.url)).current

    real, calls = messages._reseal_chunk, []

    def crash_after_one_chunk(uow, ring, limit):
        calls.append(limit)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator pressed Ctrl-C
        return real(uow, ring, limit)

    monkeypatch.setattr(messages, "_reseal_chunk", crash_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        messages.rotate_key(app, ADMIN, chunk=2)
    ring = message_keys.load(str(app.engine.url))
    assert [k.id for k in ring.keys][1:] == [old.id] and ring.current.id != old.id  # both keys kept
    with Session(app.engine) as s:
        keys_used = set(s.execute(select(MessageRow.key_id)).scalars())
    assert keys_used == {old.id, ring.current.id}  # half done
    assert len(app.run(client(code), messages.thread, code)["messages"]) == 5  # all readable meanwhile

    monkeypatch.setattr(messages, "_reseal_chunk", real)
    done = messages.rotate_key(app, ADMIN, chunk=2)
    assert done["key"] == ring.current.id and done["retired"] == [old.id]
    final = message_keys.load(str(app.engine.url))
    assert [k.id for k in final.keys] == [ring.current.id] and key_file.stat().st_mode & 0o777 == 0o600
    retired = key_file.with_name(f"avain.db.key.{old.id}.retired")
    assert done["retired_files"] == [str(retired)] and retired.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("AVAIN_MESSAGE_KEY", retired.read_text().splitlines()[-1])  # the old key opens nothing now
    with pytest.raises(MessageKeyError, match="wrong key"):
        app.run(client(code), messages.thread, code)
    monkeypatch.delenv("AVAIN_MESSAGE_KEY")
    assert [m["text"] for m in app.run(client(code), messages.thread, code)["messages"]][-5:] == [
        f"viesti {n}" for n in range(5)]
    again = messages.rotate_key(app, ADMIN)  # a plain rotation later: a fresh key again
    assert again["key"] not in (old.id, ring.current.id) and again["resealed"] == 5 + 2  # and 2 identities
    import fcntl  # while another rotation holds the lock, a second one is refused and changes nothing

    with open(key_file.with_name("avain.db.key.lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="another `avain message rotate-key` is running"):
            messages.rotate_key(app, ADMIN)
    assert [k.id for k in message_keys.load(str(app.engine.url)).keys] == [again["key"]]


# --- response times ---------------------------------------------------------------------


def test_response_times_count_working_days_in_finnish_time(ready):
    app, team, (code, other) = ready
    clock = Clock(dt.datetime(2018, 11, 30, tzinfo=dt.UTC))
    app.clock = clock
    worker, sup = Actor("worker", team["worker"]), Actor("supervisor", team["supervisor"])

    def ask(who, day, hour, minute=0):
        clock.set(day, hour, minute)
        app.run(client(who), messages.send, who, text="Kysymys")

    def answer(who, day, hour, actor=worker):
        clock.set(day, hour)
        app.run(actor, messages.send, who, text="Vastaus")

    # Friday 16.00 → Monday 9.00: on time, 65 hours (the weekend is not a working day)
    ask(code, dt.date(2018, 11, 30), 16)
    answer(code, dt.date(2018, 12, 3), 9)
    # Monday 10.00, a second message 11.00 → Wednesday 10.00: late (Tuesday was the next working day)
    ask(code, dt.date(2018, 12, 3), 10)
    ask(code, dt.date(2018, 12, 3), 11)
    answer(code, dt.date(2018, 12, 5), 10, actor=sup)
    # Wednesday 5.12. 23.30 → Friday 7.12. 15.00: on time, Independence Day (Thursday) is a holiday
    ask(other, dt.date(2018, 12, 5), 23, 30)
    answer(other, dt.date(2018, 12, 7), 15)
    # Friday 14.12. → unanswered: late by Tuesday, not yet due on Monday
    ask(other, dt.date(2018, 12, 14), 12)

    monday = dt.datetime(2018, 12, 17, 15, tzinfo=FINLAND)
    figures = app.read(ADMIN, messages.stats, now=monday)
    assert figures["total"] == {"clients": 2, "questions": 4, "answered": 3, "answered_by_next_working_day": 2,
                                "late_or_unanswered": 1, "not_yet_due": 1, "share_by_next_working_day": 0.6667,
                                "median_hours_to_answer": 48.0}  # 65, 48 and 39.5 hours
    assert [(w["worker"], w["questions"]) for w in figures["workers"]] == [(team["worker"], 4)]
    assert figures["pilots"][0]["pilot"] == "example"
    later = app.read(ADMIN, messages.stats, now=monday + dt.timedelta(days=1))["total"]
    assert (later["late_or_unanswered"], later["not_yet_due"], later["share_by_next_working_day"]) == (2, 0, 0.5)
    # an evaluator sees the figures of the clients consenting to the evaluation; another
    # worker sees none of these threads
    assert app.read(Actor("evaluator", team["evaluator"]), messages.stats, now=monday)["total"]["questions"] == 0
    for c in (code, other):
        app.run(ADMIN, consent.set_consent, c, purpose="evaluation", given=True, on_date=dt.date(2018, 1, 1))
    assert app.read(Actor("evaluator", team["evaluator"]), messages.stats, now=monday)["total"]["questions"] == 4
    assert app.read(Actor("worker", team["other_worker"]), messages.stats, now=monday)["total"]["questions"] == 0
    with pytest.raises(PermissionDenied):
        app.read(client(code), messages.stats)
    with pytest.raises(NotFound, match="--pilot: no pilot 'nope'"):
        app.read(ADMIN, messages.stats, pilot_id="nope")
    inbox = app.read(worker, messages.inbox, now=monday)
    assert [(r["client"], r["answer_due"], r["overdue"]) for r in inbox] == [(other, "2018-12-17", False)]


def test_a_proposal_is_a_question_and_the_decision_its_answer(ready):
    app, team, (code, _) = ready
    clock = Clock(dt.datetime(2018, 1, 8, 8, tzinfo=dt.UTC))
    app.clock = clock
    clock.set(dt.date(2018, 1, 8), 20)
    pid = propose(app, code, 1000)
    assert [r["client"] for r in app.read(Actor("worker", team["worker"]), messages.inbox)] == [code]
    clock.set(dt.date(2018, 1, 9), 9)
    approve(app, team, pid)
    assert app.read(Actor("worker", team["worker"]), messages.inbox) == []
    total = app.read(ADMIN, messages.stats, now=dt.datetime(2018, 2, 1, tzinfo=dt.UTC))["total"]
    assert (total["questions"], total["answered_by_next_working_day"], total["median_hours_to_answer"]) == (1, 1, 13.0)
    # a worker proposing on the client's behalf asks nothing
    propose(app, code, 1000, actor=Actor("worker", team["worker"]))
    assert app.read(Actor("worker", team["worker"]), messages.inbox) == []


# --- notifications ------------------------------------------------------------------------


def test_hook_avain_message_sent(db_url):
    seen = []

    class Recorder:
        @hookimpl
        def avain_message_sent(self, pilot, message):
            seen.append((pilot.id, message))

    app = open_app(db_url, make_plugin_manager(extra=[Recorder()]))
    try:
        team, (code, _) = month_ready(app)
        seen.clear()
        with pytest.raises(ValidationError):
            app.run(client(code), messages.send, code, text="")
        assert seen == []  # nothing for a refused message
        sent = app.run(client(code), messages.send, code, text=f"Hei {MARKER}", attachments=[("a.txt", b"1")])
        (pilot_id, msg), = seen
        assert (pilot_id, msg.id, msg.client_code, msg.author, msg.attachments) == (
            "example", sent["id"], code, f"client:{code}", 1)
        assert msg.recipients == (f"worker:{team['worker']}", f"supervisor:{team['supervisor']}")
        assert MARKER not in repr(msg)  # a notification never carries the text
        approve(app, team, propose(app, code, 1000))
        events = [m.event for _, m in seen[1:]]
        assert events == ["proposal.made", "proposal.approved", "commitment.issued"]
        assert f"client:{code}" in seen[2][1].recipients and f"worker:{team['worker']}" not in seen[2][1].recipients
    finally:
        app.close()


def test_the_notify_log_plugin_writes_one_line_per_recipient(app, tmp_path, caplog):
    team, (code, _) = month_ready(app)
    log_file = tmp_path / "logs" / "notifications.log"
    app.run(ADMIN, pilots.configure_section, "example", "notify_log", {"file": str(log_file),
                                                                       "system_messages": False})
    sent = app.run(client(code), messages.send, code, text=f"Hei {MARKER}")
    approve(app, team, propose(app, code, 1000))  # workflow steps: not wanted by this pilot
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(n["to"], n["message"], n["kind"]) for n in lines] == [
        (f"worker:{team['worker']}", sent["id"], "message"),
        (f"supervisor:{team['supervisor']}", sent["id"], "message")]
    assert MARKER not in log_file.read_text() and "Testi" not in log_file.read_text()
    assert log_file.stat().st_mode & 0o777 == 0o600 and log_file.parent.stat().st_mode & 0o777 == 0o700
    victim = tmp_path / "victim.txt"  # a symbolic link planted where the log goes is not written through
    victim.write_text("keep me")
    planted = tmp_path / "logs" / "planted.log"
    planted.symlink_to(victim)
    app.run(ADMIN, pilots.configure_section, "example", "notify_log", {"file": str(planted)})
    app.run(client(code), messages.send, code, text="Kolmas")
    assert victim.read_text() == "keep me" and "notify_log: cannot write notifications" in caplog.text
    caplog.clear()
    # a log that cannot be written: the message is kept, the failure is logged
    app.run(ADMIN, pilots.configure_section, "example", "notify_log", {"file": str(tmp_path)})  # a folder
    app.run(client(code), messages.send, code, text="Toinen")
    assert "notify_log: cannot write notifications" in caplog.text
    assert len(app.run(client(code), messages.thread, code)["messages"]) == 6


# --- consent and the dialogue for evaluation -------------------------------------------------


def test_the_dialogue_for_evaluation_needs_consent_and_names_no_one(app):
    team, (code, other) = month_ready(app)
    worker = Actor("worker", team["worker"])
    evaluator = Actor("evaluator", team["evaluator"])
    def rename(uow, who, name):  # names are sealed: written through the service's own sealing
        from avain.core.models import ClientIdentityRow

        ident = uow.session.get(ClientIdentityRow, who)
        opened = people.open_identity(message_keys.load(str(app.engine.url)), ident)
        people._seal_identity(uow, ident, name=name, hetu=opened["hetu"], phone=opened["phone"])

    app.run(ADMIN, rename, code, "Maija Virtanen")  # give the people names worth hiding
    app.run(ADMIN, rename, other, "Ossi Kettunen")
    with Session(app.engine) as s:
        from avain.core.models import WorkerRow

        s.get(WorkerRow, team["worker"]).name = "Pekka Laaksonen"
        s.commit()
    app.run(client(code), messages.send, code,
            text="Hei Pekka! Minä, Maija Virtasen perheestä (010594Y123W), asun osoitteessa Kauppakatu 5 B 12, "
                 "87100 Kajaani. Soita 040 123 4567 tai maija.virtanen@example.fi. Ossin kanssa sovittiin jo.")
    app.run(worker, messages.send, code, text="Hei Maija, Laaksoselta terveisiä: käy hyvin.")
    with pytest.raises(PermissionDenied, match="evaluators see only consenting clients' pseudonymous data"):
        app.run(evaluator, messages.dialogue_document, code)
    app.run(worker, consent.set_consent, code, purpose="evaluation", given=True, on_date=dt.date(2018, 1, 1))
    with pytest.raises(Refused, match=f"{code} has not consented to the use of the dialogue"):
        app.run(evaluator, messages.dialogue_document, code)
    app.run(worker, consent.set_consent, code, purpose="dialogue", given=True, on_date=dt.date(2018, 1, 1))
    doc = app.run(evaluator, messages.dialogue_document, code)
    texts = [m["text"] for m in doc["messages"]]
    assert texts[0] == ("Hei [personal worker]! Minä, [client] [client] perheestä ([henkilötunnus]), asun "
                        "osoitteessa [address], [address]. Soita [phone] tai [e-mail]. [name] kanssa sovittiin jo.")
    assert texts[1] == "Hei [client], [personal worker] terveisiä: käy hyvin."
    assert [m["author"] for m in doc["messages"]] == ["client", "personal worker"]
    with Session(app.engine) as s:
        from avain.core.models import ClientRow

        enrolled = s.get(ClientRow, code).enrolled_on
    assert doc["messages"][0]["day"] == (dt.datetime.now(FINLAND).date() - enrolled).days  # day 0: enrolment
    blob = json.dumps(doc, ensure_ascii=False)
    for secret in ("Maija", "Virtanen", "Pekka", "Laaksonen", "Ossi", "010594Y123W", "4567", "Kauppakatu", "87100"):
        assert secret not in blob
    # only evaluators get it; a withdrawal stops it
    with pytest.raises(PermissionDenied):
        app.run(worker, messages.dialogue_document, code)
    app.run(client(code), consent.set_consent, code, purpose="dialogue", given=False, on_date=dt.date(2018, 2, 1))
    with pytest.raises(Refused, match=r"has not consented .* \(withdrawn\)"):
        app.run(evaluator, messages.dialogue_document, code)
    assert app.run(ADMIN, consent.consented, "dialogue") == []
    with pytest.raises(Refused, match="no consent for dialogue in force to withdraw"):
        app.run(worker, consent.set_consent, code, purpose="dialogue", given=False)
    with pytest.raises(ValidationError, match="--purpose: 'marketing' is not a purpose"):
        app.run(worker, consent.set_consent, code, purpose="marketing", given=True)
    # a consent dated in the future is not yet in force
    app.run(worker, consent.set_consent, code, purpose="dialogue", given=True,
            on_date=dt.date.today() + dt.timedelta(days=3))
    with pytest.raises(Refused, match="has not consented"):
        app.run(evaluator, messages.dialogue_document, code)


def test_the_evaluators_copy_hides_outsiders_ibans_and_compact_codes_and_keeps_providers(app):
    from helpers import PROVIDERS

    from avain.core import sealed
    from avain.core.models import ClientIdentityRow, ProviderRow

    team, (code, _) = month_ready(app)

    def rename(uow):  # the client's name, sealed as enrolment seals it
        ring = sealed.ring_for_sealing(uow)
        ident = uow.session.get(ClientIdentityRow, code)
        assert ident.key_id == ring.current.id
        ident.name = sealed.seal(ring, "Tiina Koskinen", "identity", code, "name")

    app.run(ADMIN, rename)
    with Session(app.engine) as s:
        s.get(ProviderRow, PROVIDERS[0]).name = "Koskinen As Oy"
        s.commit()
    app.run(client(code), messages.send, code,
            text="Koskinen As Oy:n siivooja kävi. Maksoin tililtä FI21 1234 5600 0007 85, tunnukseni 160791882W. "
                 "Naapurini Liisa Korhonen auttoi, Koskiselle terveisiä.")
    for purpose in ("evaluation", "dialogue"):
        app.run(Actor("worker", team["worker"]), consent.set_consent, code, purpose=purpose, given=True,
                on_date=dt.date(2018, 1, 1))
    doc = app.run(Actor("evaluator", team["evaluator"]), messages.dialogue_document, code)
    assert doc["messages"][0]["text"] == (
        "Koskinen As Oy:n siivooja kävi. Maksoin tililtä [IBAN], tunnukseni [henkilötunnus]. "
        "Naapurini [name] [name] auttoi, [client] terveisiä.")


# --- PostgreSQL: writers at once ------------------------------------------------------------


@pytest.mark.postgres
def test_messages_written_at_once_all_count(postgres_url):
    from conftest import _truncate_all

    _truncate_all(postgres_url)
    app = open_app(postgres_url)
    try:
        team, (code, _) = month_ready(app)
        errors = []

        def write(actor, n):
            try:
                for i in range(n):
                    app.run(actor, messages.send, code, text=f"{actor.role} {i}")
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(a, 15)) for a in (
            client(code), Actor("worker", team["worker"]), Actor("supervisor", team["supervisor"]), client(code))]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        assert errors == []
        with Session(app.engine) as s:
            thread = s.get(MessageThreadRow, code)
            stored = s.execute(select(func.count()).select_from(MessageRow)
                               .where(MessageRow.client_code == code, MessageRow.author_role != "system")).scalar_one()
        assert stored == 60
        assert thread.messages == 60  # every message counted once in its thread
    finally:
        app.close()


def test_key_files_are_written_whole_and_read_with_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("AVAIN_MESSAGE_KEY")
    path = tmp_path / "keys" / "avain.key"
    monkeypatch.setenv("AVAIN_MESSAGE_KEY_FILE", str(path))
    url = f"sqlite:///{tmp_path}/avain.db"
    assert message_keys.load(url) is None
    first, second = MessageKey.generate(), MessageKey.generate()
    message_keys.write_file(path, (first,), exclusive=True)
    with pytest.raises(FileExistsError):  # two processes making a key at once: the first one's stays
        message_keys.write_file(path, (second,), exclusive=True)
    message_keys.write_file(path, (second, first))
    ring = message_keys.load(url)
    assert [k.id for k in ring.keys] == [second.id, first.id] and ring.describe() == f"the key file {path}"
    assert sorted(p.name for p in path.parent.iterdir()) == ["avain.key"]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("# comments only\n")
    with pytest.raises(message_keys.ConfigError, match=f"{path}: the message key file holds no key"):
        message_keys.load(url)
    path.write_text(f"{first.text()}\nnonsense\n")
    with pytest.raises(message_keys.ConfigError, match=f"{path}, line 2: not a message key"):
        message_keys.load(url)
