"""The client–worker dialogue (Omasote): one thread per client, sealed at rest.

The only participants of a client's thread are the client, their personal worker, the
worker's supervisor and the client's HB assistant; nobody else reads or writes it, not
even the administrator. The workflow writes its own steps into the thread as system
messages (proposal made, approved or rejected with the reason, commitment issued,
invoice paid), in the same transaction as the step, so the client sees one story.

Each message has a *side*: the client and their HB assistant ask (``client``), the
personal worker and the supervisor answer (``worker``); a proposal counts as a question
and a decision on it as an answer. A thread waits on the worker from its first unanswered
question until the next answer; the inbox and the response-time figures read that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import message_keys, sealed, workdays
from ..audit import ORGANISER
from ..auth import Actor
from ..domain import MAX_ATTACHMENT, MAX_ATTACHMENTS, Message, fi_date
from ..errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from ..i18n import N_, _
from ..models import (
    AuditEventRow,
    ClientIdentityRow,
    ClientRow,
    CommitmentRow,
    ConsentRow,
    DecisionRow,
    InvoiceRow,
    MessageAttachmentRow,
    MessageReceiptRow,
    MessageRow,
    MessageThreadRow,
    ProposalRow,
    ProviderRow,
    WorkerRow,
)
from ..text import clean
from ..uow import UnitOfWork
from . import consent, pilots
from .common import check_actor, reach_client, record, scope_clause, session
from .deidentify import scrub

#: The longest message text, in characters (a long letter; a document goes as an attachment).
MAX_TEXT = 5000
# At most MAX_ATTACHMENTS attachments, each at most MAX_ATTACHMENT bytes (from the domain).
#: What a message may refer to, and the table holding it.
REFERENCES = {"proposal": ProposalRow, "commitment": CommitmentRow, "invoice": InvoiceRow,
              "decision": DecisionRow}
CLIENT_SIDE = frozenset({"client", "assistant"})
WORKER_SIDE = frozenset({"worker", "supervisor"})
#: Who wrote a message, in English: the evaluators' copies and their placeholders use these.
ROLE_LABELS = {"client": N_("client"), "worker": N_("personal worker"), "supervisor": N_("supervisor"),
               "assistant": N_("HB assistant"), "system": N_("system")}


def role_label(role: str) -> str:
    """A role as the current language names it (the thread, the workflow's steps)."""
    return _(ROLE_LABELS[role]) if role in ROLE_LABELS else role


# --- keys ------------------------------------------------------------------------------


def _url(uow: UnitOfWork) -> str:
    return uow.app.engine.url.render_as_string(hide_password=False)


def keyring_for_reading(uow: UnitOfWork) -> message_keys.Keyring:
    url = _url(uow)
    ring = message_keys.load(url)
    if ring is None:
        raise message_keys.MessageKeyError(
            f"no message key: {message_keys.where(url)}; the messages cannot be read without the key "
            "they were encrypted with")
    return ring


#: PostgreSQL advisory lock: every message written holds it shared, the end of a key
#: rotation holds it alone, so no message is sealed with a key being retired.
KEY_LOCK = 0x6176_6169_6E6B_6579


def _hold_key_lock(uow: UnitOfWork, *, exclusive: bool = False) -> None:
    conn = uow.core_connection()
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.exec_driver_sql(f"SELECT {fn}({KEY_LOCK})")
    # SQLite: every writer holds the database's write lock for its whole transaction


def keyring_for_sealing(uow: UnitOfWork, code: str | None = None) -> message_keys.Keyring:
    """The keyring to encrypt with, once it is known to open what the database holds: the
    newest message of all, and of the client's thread, must be under one of its keys (a
    wrong key is refused before anything is written). A database without messages gets a
    key file made for it on first use; one with messages never does."""
    _hold_key_lock(uow)
    url = _url(uow)
    ring = message_keys.load(url)
    s = session(uow)
    newest = select(MessageRow.key_id).order_by(MessageRow.id.desc()).limit(1)
    used = s.execute(newest).scalar_one_or_none()
    if ring is None:
        if used is not None:
            raise message_keys.MessageKeyError(
                f"no message key: {message_keys.where(url)}, but this database holds messages encrypted with "
                f"key {used}; restore that key before writing messages")
        return message_keys.ensure(url)[0]
    known = {k.id for k in ring.keys}
    for key_id in (used, s.execute(newest.where(MessageRow.client_code == code)).scalar_one_or_none()
                   if code else None):
        if key_id is not None and key_id not in known:
            raise message_keys.MessageKeyError(
                f"the messages are encrypted with message key {key_id}, which is not among the keys in "
                f"{ring.describe()} ({', '.join(sorted(known))}): wrong key; nothing was written")
    return ring


def prepare_key(uow: UnitOfWork) -> dict[str, Any]:
    """Make sure messages can be written (``avain init``, ``avain demo``): unless
    ``AVAIN_MESSAGE_KEY`` is set, a key file is created beside the database (mode 0600)."""
    check_actor(uow, "pilot.add")
    had = message_keys.load(_url(uow)) is not None
    ring = keyring_for_sealing(uow)
    return {"key": ring.current.id, "where": ring.describe(), "created": not had}


#: How new messages are sealed (``MessageRow.seal``): 2 binds every field a reader is shown.
SEAL = 2


def _aad(msg: MessageRow, part: str) -> bytes:
    """What a ciphertext is bound to: its own message and part. Moved to another message
    or part, copied or swapped, or its fields rewritten (another author, another
    reference, another workflow step), it no longer opens. Seal 1 (messages written
    before seal 2) binds the id, thread, role and time only; they open as they are until
    ``message rotate-key`` re-seals them."""
    stamp = msg.sent_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if msg.seal == 1:
        return f"avain-message\0{msg.id}\0{msg.client_code}\0{msg.author_role}\0{stamp}\0{part}".encode()
    if msg.seal != SEAL:
        raise message_keys.MessageKeyError(f"message {msg.id} cannot be decrypted: seal {msg.seal!r} is unknown "
                                           "(the database was changed outside avain)")
    fields = [msg.id, msg.client_code, msg.author_role, msg.author_id, msg.side, msg.event, msg.ref_type,
              msg.ref_id, stamp, part]
    return b"avain-message-2\0" + json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def _open_text(ring: message_keys.Keyring, row: MessageRow) -> str:
    return ring.open(row.key_id, row.body, _aad(row, "body"), what=f"message {row.id}").decode("utf-8")


def _attachment_aad(msg: MessageRow, attachment_id: int, part: str) -> bytes:
    return _aad(msg, f"attachment {attachment_id} {part}")


# --- who is in a thread -------------------------------------------------------------------


def participants(uow: UnitOfWork, client: ClientRow) -> dict[str, str]:
    """The thread's participants by role, as ``role:id``."""
    s = session(uow)
    found = {"client": f"client:{client.code}", "worker": f"worker:{client.worker_id}"}
    worker = s.get(WorkerRow, client.worker_id)
    if worker is not None and worker.supervisor_id:
        found["supervisor"] = f"supervisor:{worker.supervisor_id}"
    if client.assistant_id:
        found["assistant"] = f"assistant:{client.assistant_id}"
    return found


def _thread_client(uow: UnitOfWork, code: str, action: str) -> ClientRow:
    """The client whose thread the actor may ``action``: participants only."""
    actor = uow.actor
    if actor.role not in CLIENT_SIDE | WORKER_SIDE:
        raise PermissionDenied(f"{actor.role} is not a participant of any client's dialogue (only the client, "
                               "the personal worker, the worker's supervisor and the client's HB assistant are)")
    try:
        return reach_client(uow, code, action)
    except PermissionDenied as exc:
        raise PermissionDenied(f"{actor} is not a participant of {code}'s dialogue") from exc


# --- writing ------------------------------------------------------------------------------


def _parse_ref(uow: UnitOfWork, code: str, ref: str | None) -> tuple[str | None, int | None]:
    if ref is None:
        return None, None
    kind, _, number = ref.strip().partition(":")
    if kind not in REFERENCES or not re.fullmatch(r"[0-9]{1,9}", number):
        raise ValidationError(f"--ref: {ref!r} is not a reference; write KIND:ID with KIND one of "
                              f"{', '.join(REFERENCES)} (e.g. proposal:12)")
    row = session(uow).get(REFERENCES[kind], int(number))
    if row is None or row.client_code != code:
        raise NotFound(f"--ref: {code} has no {kind} {number}")
    return kind, int(number)


#: Control characters a message may not hold: all but line feed and tab (escape sequences
#: would reach the reader's terminal), and the bidirectional overrides that make text
#: read differently from what it says.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _utf8(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field}: not valid UTF-8 text") from None
    return value


def _check_text(text: str | None) -> str:
    text = _utf8((text or "").replace("\r\n", "\n").strip(), "--text")
    if not text:
        raise ValidationError("--text: the message is empty")
    clean(text, "--text", multiline=True)
    bad = FORBIDDEN.search(text)
    if bad:
        raise ValidationError(f"--text: the message holds a control character (U+{ord(bad.group()):04X}) "
                              f"at position {bad.start() + 1}; only line breaks and tabs are allowed")
    if len(text) > MAX_TEXT:
        raise ValidationError(f"--text: the message has {len(text):,} characters; the limit is {MAX_TEXT:,} "
                              "(send a longer document as an attachment)".replace(",", " "))
    return text


def _check_attachments(attachments: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationError(f"--attach: {len(attachments)} files; at most {MAX_ATTACHMENTS} per message")
    checked = []
    for name, content in attachments:
        base = _utf8(PurePath(name).name, "--attach")
        if not base or FORBIDDEN.search(base):
            raise ValidationError(f"--attach: {name!r} is not a file name")
        if not content:
            raise ValidationError(f"--attach: {base} is empty")
        if len(content) > MAX_ATTACHMENT:
            raise ValidationError(f"--attach: {base} is {len(content) / 1048576:.1f} MiB; the limit is "
                                  f"{MAX_ATTACHMENT // 1048576} MiB per file")
        checked.append((base, content))
    return checked


def _insert_new(uow: UnitOfWork, model, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, leaving alone any whose key is taken (INSERT … ON CONFLICT DO
    NOTHING, in the dialect of the unit's connection)."""
    conn = uow.core_connection()
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(model.__table__).on_conflict_do_nothing(), rows)


def _lock_thread(uow: UnitOfWork, client: ClientRow, at: dt.datetime) -> MessageThreadRow:
    """The client's thread row, made if missing and locked for this transaction, so two
    messages written at once both count."""
    _insert_new(uow, MessageThreadRow, [{"client_code": client.code, "pilot_id": client.pilot_id, "messages": 0,
                                         "last_at": at}])
    s = session(uow)
    return s.execute(select(MessageThreadRow).where(MessageThreadRow.client_code == client.code)
                     .with_for_update().execution_options(populate_existing=True)).scalar_one()


def _append(uow: UnitOfWork, client: ClientRow, *, author_role: str, author: str | None, side: str | None,
            text: str, event: str | None = None, ref: tuple[str | None, int | None] = (None, None),
            attachments: Sequence[tuple[str, bytes]] = ()) -> tuple[MessageRow, list[MessageAttachmentRow]]:
    ring = keyring_for_sealing(uow, client.code)
    s = session(uow)
    at = uow.app.clock()
    row = MessageRow(client_code=client.code, pilot_id=client.pilot_id, author_role=author_role,
                     author_id=author, side=side, event=event, ref_type=ref[0], ref_id=ref[1],
                     key_id=ring.current.id, body=b"", sent_at=at, seal=SEAL)
    s.add(row)
    s.flush()  # the id is part of what the ciphertext is bound to
    row.key_id, row.body = ring.seal(text.encode("utf-8"), _aad(row, "body"))
    files = [MessageAttachmentRow(message_id=row.id, key_id=ring.current.id, name=b"", content=b"",
                                  size=len(content)) for _, content in attachments]
    s.add_all(files)
    s.flush()
    for f, (name, content) in zip(files, attachments, strict=True):
        f.key_id, f.name = ring.seal(name.encode("utf-8"), _attachment_aad(row, f.id, "name"))
        _, f.content = ring.seal(content, _attachment_aad(row, f.id, "content"))
    thread = _lock_thread(uow, client, at)
    thread.messages += 1
    thread.last_at = at
    if side == "client" and thread.waiting_since is None:
        thread.waiting_since = at
    elif side == "worker":
        thread.waiting_since = None
    s.flush()
    people = participants(uow, client)
    recipients = tuple(p for p in people.values() if p != author)
    uow.emit("avain_message_sent", pilot=pilots.get(uow, client.pilot_id),
             message=Message(row.id, client.code, client.pilot_id, author_role, author, event, ref[0], ref[1],
                             at, recipients, len(attachments)))
    return row, files


def send(uow: UnitOfWork, code: str, *, text: str, ref: str | None = None,
         attachments: Sequence[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """A participant writes to the client's thread; nothing is written if any part of the
    message is refused."""
    client = _thread_client(uow, code, "message.send")
    if client.control:
        raise Refused(f"{code} is a control client: the dialogue belongs to the personal budget")
    body = _check_text(text)
    files = _check_attachments(attachments)
    reference = _parse_ref(uow, code, ref)
    actor = uow.actor
    side = "client" if actor.role in CLIENT_SIDE else "worker"
    row, saved = _append(uow, client, author_role=actor.role, author=str(actor), side=side, text=body,
                         ref=reference, attachments=files)
    record(uow, "message.sent", code, after={"message": row.id, "ref": ref, "attachments": len(files),
                                              "key": row.key_id})
    return {"id": row.id, "client": code, "sent_at": row.sent_at.isoformat(), "ref": ref,
            "attachments": [{"id": a.id, "name": n, "size": a.size} for a, (n, _) in zip(saved, files, strict=True)]}


#: Which side a workflow step speaks for: a proposal asks, a decision answers.
EVENT_SIDES = {"proposal.made": "client", "proposal.approved": "worker", "proposal.rejected": "worker"}


def system(uow: UnitOfWork, client: ClientRow, event: str, text: str, *, ref: tuple[str, int]) -> None:
    """Write a workflow step into the client's thread (called by the workflow services, in
    their transaction). A proposal counts as a question when the client side made it; a
    decision on it counts as the answer."""
    if client.control:
        return
    actor = uow.actor
    side = EVENT_SIDES.get(event)
    if side == "client" and actor.role not in CLIENT_SIDE:
        side = None
    if side == "worker" and actor.role not in WORKER_SIDE:
        side = None
    row, _ = _append(uow, client, author_role="system", author=str(actor), side=side, text=text, event=event,
                     ref=ref)
    # in the audit trail like a participant's message, so `audit verify` misses none
    record(uow, "message.sent", client.code, after={"message": row.id, "event": event, "ref": f"{ref[0]}:{ref[1]}",
                                                     "attachments": 0, "key": row.key_id})


# --- reading ------------------------------------------------------------------------------


def _receipts(uow: UnitOfWork, ids: list[int]) -> dict[int, list[dict[str, str]]]:
    found: dict[int, list[dict[str, str]]] = {}
    if not ids:
        return found
    rows = session(uow).execute(select(MessageReceiptRow).where(MessageReceiptRow.message_id.in_(ids))
                                .order_by(MessageReceiptRow.read_at)).scalars()
    for r in rows:
        found.setdefault(r.message_id, []).append({"reader": r.reader, "at": r.read_at.isoformat()})
    return found


def thread(uow: UnitOfWork, code: str) -> dict[str, Any]:
    """The client's whole thread, oldest first, decrypted for a participant; what others
    wrote gets the reader's read receipt."""
    client = _thread_client(uow, code, "message.read")
    s = session(uow)
    rows = list(s.execute(select(MessageRow).where(MessageRow.client_code == code)
                          .order_by(MessageRow.id)).scalars())
    ring = keyring_for_reading(uow) if rows else None
    texts = {r.id: _open_text(ring, r) for r in rows}  # all or nothing: a bad one refuses the read
    files: dict[int, list[dict[str, Any]]] = {}
    by_id = {r.id: r for r in rows}
    a = MessageAttachmentRow.__table__.c  # the names only: the contents stay in the database
    for aid, message_id, key_id, sealed_name, size in s.execute(
            select(a.id, a.message_id, a.key_id, a.name, a.size).join(MessageRow, MessageRow.id == a.message_id)
            .where(MessageRow.client_code == code).order_by(a.id)):
        name = ring.open(key_id, sealed_name, _attachment_aad(by_id[message_id], aid, "name"),
                         what=f"attachment {aid}")
        files.setdefault(message_id, []).append({"id": aid, "name": name.decode("utf-8"), "size": size})
    me = str(uow.actor)
    if rows:  # who read the thread, and how far, on the client's stream (never the text)
        record(uow, "message.read", code, after={"messages": len(rows), "newest": rows[-1].id})
    unread = [r.id for r in rows if r.author_id != me]
    if unread:
        now = uow.app.clock()
        _insert_new(uow, MessageReceiptRow, [{"message_id": i, "reader": me, "read_at": now} for i in unread])
    receipts = _receipts(uow, [r.id for r in rows])
    th = s.get(MessageThreadRow, code)
    return {
        "client": code, "pilot": client.pilot_id, "participants": participants(uow, client),
        "waiting_since": th.waiting_since.isoformat() if th and th.waiting_since else None,
        "messages": [{
            "id": r.id, "sent_at": r.sent_at.isoformat(), "author_role": r.author_role,
            "author": r.author_id, "side": r.side, "event": r.event,
            "ref": f"{r.ref_type}:{r.ref_id}" if r.ref_type else None, "text": texts[r.id],
            "attachments": files.get(r.id, []),
            "read_by": [x for x in receipts.get(r.id, []) if x["reader"] != r.author_id],
        } for r in rows],
    }


def attachment(uow: UnitOfWork, attachment_id: int) -> tuple[str, bytes]:
    """An attachment's name and content, for a participant of its thread; the read goes
    to the client's audit stream (run it with ``App.run``)."""
    s = session(uow)
    check_actor(uow, "message.read")
    a = s.get(MessageAttachmentRow, attachment_id)
    msg = s.get(MessageRow, a.message_id) if a is not None else None
    missing = NotFound(f"no attachment {attachment_id} in a thread you take part in")
    if a is None or msg is None:
        raise missing
    try:  # an outsider learns nothing, not even that the attachment exists
        _thread_client(uow, msg.client_code, "message.read")
    except PermissionDenied:
        raise missing from None
    ring = keyring_for_reading(uow)
    name = ring.open(a.key_id, a.name, _attachment_aad(msg, a.id, "name"), what=f"attachment {a.id}")
    content = ring.open(a.key_id, a.content, _attachment_aad(msg, a.id, "content"), what=f"attachment {a.id}")
    record(uow, "message.attachment_read", msg.client_code, after={"message": msg.id, "attachment": a.id})
    return name.decode("utf-8"), content


def inbox(uow: UnitOfWork, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The actor's threads waiting for an answer, the longest-waiting first: a worker's
    own clients, a supervisor's team's."""
    check_actor(uow, "message.inbox")
    now = now or uow.app.clock()
    t, m = MessageThreadRow.__table__.c, MessageRow.__table__.c
    waiting = (select(func.count()).where(m.client_code == t.client_code, m.side == "client",
                                          m.sent_at >= t.waiting_since).scalar_subquery())
    c = ClientRow.__table__.c
    stmt = (select(t.client_code, t.pilot_id, t.waiting_since, t.last_at, c.worker_id, waiting.label("waiting"))
            .join(ClientRow, c.code == t.client_code).where(t.waiting_since.is_not(None))
            .order_by(t.waiting_since, t.client_code))
    clause = scope_clause(uow, t.client_code)
    if clause is not None:
        stmt = stmt.where(clause)
    out = []
    for code, pilot_id, since, last_at, worker_id, count in uow.core_connection().execute(stmt):
        since = _aware(since)
        due = workdays.answer_due(since)
        out.append({"client": code, "pilot": pilot_id, "worker": worker_id, "waiting_since": since.isoformat(),
                    "unanswered": count, "last_at": _aware(last_at).isoformat(),
                    "answer_due": (due - dt.timedelta(microseconds=1)).date().isoformat(),
                    "hours_waiting": round((now - since).total_seconds() / 3600, 1), "overdue": now >= due})
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    """A moment read with Core (no ORM type processing on some drivers) as aware UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- response times -----------------------------------------------------------------------


def _questions(rows: Iterable[tuple[str, str | None, dt.datetime]]):
    """Per thread (rows ordered by client, then message), each question — the first
    client-side message after an answer — with the moment it was answered, or None."""
    current, asked = None, None
    for code, side, at in rows:
        if code != current:
            if asked is not None:
                yield current, asked, None
            current, asked = code, None
        if side == "client" and asked is None:
            asked = at
        elif side == "worker" and asked is not None:
            yield code, asked, at
            asked = None
    if asked is not None:
        yield current, asked, None


class _Tally:
    def __init__(self) -> None:
        self.questions = self.answered = self.on_time = self.late = self.pending = 0
        self.seconds: list[float] = []
        self.clients: set[str] = set()

    def add(self, code: str, asked: dt.datetime, answered: dt.datetime | None, now: dt.datetime) -> None:
        self.clients.add(code)
        self.questions += 1
        due = workdays.answer_due(asked)
        if answered is not None:
            self.answered += 1
            self.seconds.append((answered - asked).total_seconds())
            if answered < due:
                self.on_time += 1
            else:
                self.late += 1
        elif now >= due:
            self.late += 1
        else:
            self.pending += 1

    def figures(self) -> dict[str, Any]:
        decided = self.on_time + self.late
        return {"clients": len(self.clients), "questions": self.questions, "answered": self.answered,
                "answered_by_next_working_day": self.on_time, "late_or_unanswered": self.late,
                "not_yet_due": self.pending,
                "share_by_next_working_day": round(self.on_time / decided, 4) if decided else None,
                "median_hours_to_answer": (round(statistics.median(self.seconds) / 3600, 2)
                                           if self.seconds else None)}


def stats(uow: UnitOfWork, *, pilot_id: str | None = None, now: dt.datetime | None = None,
          only=None) -> dict[str, Any]:
    """Response times per personal worker and per pilot: of the client questions whose
    answer is due, the share answered by the end of the next working day (Finnish time,
    weekends and public holidays skipped), and the median time to an answer. A question
    not yet answered and not yet due is counted apart, in neither the share nor the median.
    ``only``: a select of client codes to count (the evaluation's consenting clients)."""
    check_actor(uow, "message.stats")
    now = now or uow.app.clock()
    m, c = MessageRow.__table__.c, ClientRow.__table__.c
    stmt = (select(m.client_code, m.side, m.sent_at, m.pilot_id, c.worker_id)
            .join(ClientRow, c.code == m.client_code).where(m.side.is_not(None))
            .order_by(m.client_code, m.id))
    if pilot_id is not None:
        pilots.get(uow, pilot_id)  # an unknown pilot is an error, not zeros
        stmt = stmt.where(m.pilot_id == pilot_id)
    clause = scope_clause(uow, m.client_code)
    if clause is not None:
        stmt = stmt.where(clause)
    if only is not None:
        stmt = stmt.where(m.client_code.in_(only))
    owners: dict[str, tuple[str, str]] = {}

    def rows():
        for code, side, at, pid, worker in uow.core_connection().execute(stmt):
            owners[code] = (pid, worker)
            yield code, side, _aware(at)

    total, per_pilot, per_worker = _Tally(), {}, {}
    for code, asked, answered in _questions(rows()):
        pid, worker = owners[code]
        for tally in (total, per_pilot.setdefault(pid, _Tally()), per_worker.setdefault((pid, worker), _Tally())):
            tally.add(code, asked, answered, now)
    return {
        "as_of": now.isoformat(), "pilot": pilot_id,
        "rule": "a client question (a client's or HB assistant's message, or a proposal they made) is answered "
                "by the first later message or decision of the personal worker or supervisor; on time if "
                "before the end of the next working day, Finnish time",
        "total": total.figures(),
        "pilots": [{"pilot": p, **t.figures()} for p, t in sorted(per_pilot.items())],
        "workers": [{"pilot": p, "worker": w, **t.figures()} for (p, w), t in sorted(per_worker.items())],
    }


# --- the messages against the audit trail ------------------------------------------------


def _sent_events(uow: UnitOfWork, code: str | None = None) -> dict[int, tuple[str, dict[str, Any]]]:
    """Message id → (client, event data) of every ``message.sent`` event (of one client's)."""
    q = select(AuditEventRow.subject, AuditEventRow.after, AuditEventRow.actor).where(
        AuditEventRow.action == "message.sent")
    if code is not None:
        q = q.where(AuditEventRow.subject == code)
    found = {}
    for subject, after, actor in session(uow).execute(q):
        data = json.loads(after) if after else {}
        if isinstance(data, dict) and isinstance(data.get("message"), int):
            found[data["message"]] = (subject, {**data, "_actor": actor})
    return found


def _sent_event(uow: UnitOfWork, row: MessageRow) -> bool:
    return row.id in _sent_events(uow, row.client_code)


def verify_against_audit(uow: UnitOfWork) -> dict[str, Any]:
    """Every message against its ``message.sent`` event (``audit verify``): a message
    without one was written outside avain; an event whose message is gone means a message
    was deleted; a message in another thread, or with other attachments, than its event
    says was moved or changed. Workflow steps written before seal 2 had no event (they
    get one when ``message rotate-key`` re-seals them), so they are not asked for one."""
    sent = _sent_events(uow)
    m, a = MessageRow.__table__.c, MessageAttachmentRow.__table__.c
    conn = uow.core_connection()
    attached = dict(conn.execute(select(a.message_id, func.count()).group_by(a.message_id)).all())
    problems: list[str] = []
    seen: set[int] = set()
    for mid, code, role, author, seal in conn.execute(
            select(m.id, m.client_code, m.author_role, m.author_id, m.seal).order_by(m.id)):
        seen.add(mid)
        event = sent.get(mid)
        if event is None:
            if not (role == "system" and seal == 1):
                problems.append(f"message {mid} in {code}'s thread has no message.sent event in the audit trail "
                                "(written outside avain)")
        elif event[0] != code:
            problems.append(f"message {mid} is in {code}'s thread, but the audit trail has it sent to {event[0]}'s "
                            "(moved outside avain)")
        elif author is not None and author != event[1].get("author", event[1]["_actor"]):
            problems.append(f"message {mid} in {code}'s thread is written as from {author}, but the audit trail has "
                            f"it sent by {event[1].get('author', event[1]['_actor'])} (changed outside avain)")
        elif isinstance(event[1].get("attachments"), int) and attached.get(mid, 0) != event[1]["attachments"]:
            problems.append(f"message {mid} in {code}'s thread has {attached.get(mid, 0)} attachments; "
                            f"{event[1]['attachments']} were sent (changed outside avain)")
    for mid in sorted(sent.keys() - seen):
        problems.append(f"message {mid} of {sent[mid][0]}'s thread is in the audit trail but not among the "
                        "messages (deleted outside avain)")
    return {"messages": len(seen), "problems": problems}


# --- keys: rotation -----------------------------------------------------------------------


#: Attachments re-encrypted per transaction during a rotation (each up to 5 MiB).
RESEAL_ATTACHMENTS = 20


def _reseal_chunk(uow: UnitOfWork, ring: message_keys.Keyring, limit: int) -> int:
    """Re-encrypt up to ``limit`` messages and a few attachments not yet under the current
    key, or not yet under the current seal; returns how many it did (0: none is left)."""
    s = session(uow)
    new = ring.current.id
    rows = list(s.execute(select(MessageRow).where((MessageRow.key_id != new) | (MessageRow.seal != SEAL))
                          .order_by(MessageRow.id).limit(limit)).scalars())
    budget, done = RESEAL_ATTACHMENTS, 0
    for r in rows:
        if r.seal == SEAL:
            aad = _aad(r, "body")
            r.key_id, r.body = ring.seal(ring.open(r.key_id, r.body, aad, what=f"message {r.id}"), aad)
            done += 1
            continue
        # a new seal changes what the attachments are bound to: they move with their message
        attached = list(s.execute(select(MessageAttachmentRow).where(MessageAttachmentRow.message_id == r.id)
                                  .order_by(MessageAttachmentRow.id)).scalars())
        if attached and done and len(attached) > budget:
            break  # the next chunk
        budget -= len(attached)
        text = ring.open(r.key_id, r.body, _aad(r, "body"), what=f"message {r.id}")
        opened = [(ring.open(a.key_id, a.name, _attachment_aad(r, a.id, "name"), what=f"attachment {a.id}"),
                   ring.open(a.key_id, a.content, _attachment_aad(r, a.id, "content"), what=f"attachment {a.id}"))
                  for a in attached]
        if r.author_role == "system" and not _sent_event(uow, r):
            # written before workflow steps went to the audit trail: recorded now, as re-sealed
            record(uow, "message.sent", r.client_code, after={
                "message": r.id, "event": r.event, "ref": f"{r.ref_type}:{r.ref_id}" if r.ref_type else None,
                "attachments": len(attached), "key": new, "recorded": "on re-sealing", "author": r.author_id})
        r.seal = SEAL
        r.key_id, r.body = ring.seal(text, _aad(r, "body"))
        for a, (name, content) in zip(attached, opened, strict=True):
            a.key_id, a.name = ring.seal(name, _attachment_aad(r, a.id, "name"))
            _, a.content = ring.seal(content, _attachment_aad(r, a.id, "content"))
        done += 1 + len(attached)
    s.flush()
    files = list(s.execute(select(MessageAttachmentRow, MessageRow)
                           .join(MessageRow, MessageRow.id == MessageAttachmentRow.message_id)
                           .where(MessageAttachmentRow.key_id != new).order_by(MessageAttachmentRow.id)
                           .limit(min(limit, RESEAL_ATTACHMENTS))))
    for a, msg in files:
        name_aad, content_aad = _attachment_aad(msg, a.id, "name"), _attachment_aad(msg, a.id, "content")
        name = ring.open(a.key_id, a.name, name_aad, what=f"attachment {a.id}")
        content = ring.open(a.key_id, a.content, content_aad, what=f"attachment {a.id}")
        a.key_id, a.name = ring.seal(name, name_aad)
        _, a.content = ring.seal(content, content_aad)
    s.flush()
    return done + len(files) + sealed.reseal_chunk(s, ring, limit)  # names, proposals, … too


def _left_under_old_keys(uow: UnitOfWork, new: str) -> int:
    s = session(uow)
    return (s.execute(select(func.count()).select_from(MessageRow)
                      .where((MessageRow.key_id != new) | (MessageRow.seal != SEAL))).scalar_one()
            + s.execute(select(func.count()).select_from(MessageAttachmentRow)
                        .where(MessageAttachmentRow.key_id != new)).scalar_one()
            + sealed.left_under_old_keys(s, new))


@contextlib.contextmanager
def _rotation_lock(path: Path | None):
    """One rotation of a key file at a time: a second one is refused, not interleaved."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another `avain message rotate-key` is running on {path}; wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rotate_key(app, actor: Actor, *, chunk: int = 500) -> dict[str, Any]:
    """Re-encrypt every message and attachment under a new key without losing one.

    Key file: a new key is generated and written first, in front of the old one;
    messages are re-encrypted in chunks, each its own transaction. Interrupted, the file
    still holds both keys, everything stays readable, and running the command again
    finishes the job. At the end, while no message can be written (a lock every writer
    takes), nothing is left under an old key: the file keeps the new key alone, and the
    old key is moved to a file of its own beside it (``….key.<id>.retired``), for the
    backups it still opens. ``AVAIN_MESSAGE_KEY``: put the new key first (``NEW,OLD``);
    everything is re-encrypted under it, and the old key can then be dropped."""
    def start(uow: UnitOfWork) -> message_keys.Keyring | None:
        check_actor(uow, "message.keys")
        url = _url(uow)
        ring = message_keys.load(url)
        if ring is None:
            used = session(uow).execute(select(MessageRow.key_id).limit(1)).scalar_one_or_none()
            if used is not None:
                raise message_keys.MessageKeyError(
                    f"no message key to rotate: {message_keys.where(url)}, but messages are encrypted with "
                    f"key {used}")
        return ring

    ring = app.run(actor, start)
    url = app.engine.url.render_as_string(hide_password=False)
    if ring is None:  # no key and no messages yet: just make one
        ring = message_keys.ensure(url)[0]
    with _rotation_lock(ring.path):
        if ring.source == "file":
            ring = message_keys.load(url)  # as it is now that the rotation is ours
            if len(ring.keys) == 1:  # else an interrupted rotation: its newest key is first
                ring = message_keys.Keyring((message_keys.MessageKey.generate(), *ring.keys), "file", ring.path)
                message_keys.write_file(ring.path, ring.keys)
        retired = [k for k in ring.keys[1:]]
        done = 0

        def finish(uow: UnitOfWork) -> int:
            check_actor(uow, "message.keys")
            _hold_key_lock(uow, exclusive=True)  # no message is sealed while the keys change
            left = _left_under_old_keys(uow, ring.current.id)
            if left:
                return left
            if ring.source == "file" and retired:
                for old in retired:
                    message_keys.write_file(ring.path.with_name(f"{ring.path.name}.{old.id}.retired"), (old,))
                message_keys.write_file(ring.path, (ring.current,))
            record(uow, "message.key_rotated", ORGANISER,
                   after={"key": ring.current.id, "retired": [k.id for k in retired], "resealed": done})
            return 0

        for _ in range(100):
            while (n := app.run(actor, _reseal_chunk, ring, chunk)):
                done += n
            if app.run(actor, finish) == 0:
                break
        else:  # pragma: no cover - writers kept using an old key
            raise message_keys.MessageKeyError("messages kept arriving under an old key; run rotate-key again")
    return {"key": ring.current.id, "source": ring.describe(), "resealed": done,
            "retired": [k.id for k in retired],
            "retired_files": [str(ring.path.with_name(f"{ring.path.name}.{k.id}.retired")) for k in retired]
            if ring.source == "file" else [],
            "note": (f"drop the old keys from {message_keys.KEY_ENV}: keep only the first"
                     if ring.source == "env" and retired else
                     "keep each retired key with the backups it opens, apart from them, or delete it"
                     if retired else None)}


# --- the dialogue for evaluation ----------------------------------------------------------


def dialogue_document(uow: UnitOfWork, code: str) -> dict[str, Any]:
    """The client's dialogue for the evaluators, free of identifiers: authors as roles,
    names of the participants (and of anyone else known to avain in the pilot) replaced by
    roles, other Finnish names by ``[name]``, identity codes (with or without separator),
    IBANs, phone numbers, e-mail and street addresses removed, the providers' names kept
    as written (see :mod:`.deidentify`). Only for a client whose consent to the dialogue's
    use is in force."""
    client = reach_client(uow, code, "message.evaluate")  # the evaluator's pilot, evaluation consent
    s = session(uow)
    if not consent.in_force(uow, code, "dialogue"):
        given = s.get(ConsentRow, (code, "dialogue"))
        raise Refused(f"{code} has not consented to the use of the dialogue in evaluation"
                      + (" (withdrawn)" if given is not None and given.withdrawn_on is not None else ""))
    names = _known_names(uow, client)
    providers = _provider_names(uow, names)
    record(uow, "identity.read", code, purpose="remove identifiers from the dialogue for evaluation")
    rows = list(s.execute(select(MessageRow).where(MessageRow.client_code == code).order_by(MessageRow.id)).scalars())
    ring = keyring_for_reading(uow) if rows else None
    start = client.enrolled_on
    messages = []
    for r in rows:
        messages.append({
            "n": len(messages) + 1,
            "day": (workdays.local_day(r.sent_at) - start).days,
            "weekday": workdays.local_day(r.sent_at).isoweekday(),
            "hour": r.sent_at.astimezone(workdays.FINLAND).hour,
            "author": ROLE_LABELS.get(r.author_role, r.author_role),
            "side": r.side, "event": r.event, "ref": r.ref_type,
            "text": scrub(_open_text(ring, r), names, providers),
        })
    return {"client": code, "pilot": client.pilot_id, "group": client.group_id,
            "days_since_enrolment": "day 0 is the enrolment day", "messages": messages}


def _provider_names(uow: UnitOfWork, names: dict[str, str]) -> list[str]:
    """The service providers' names, kept as written in the evaluators' copy, but not one
    made of people's names only (a sole trader named like a client is hidden like one)."""
    parts = {p.lower() for name in names for p in re.split(r"[\s-]+", name)}
    return [n for (n,) in session(uow).execute(select(ProviderRow.name))
            if n and any(w.lower() not in parts for w in re.split(r"[\s-]+", n.strip()) if w)]


def _known_names(uow: UnitOfWork, client: ClientRow) -> dict[str, str]:
    """Name → the role label that replaces it: the client, the participants, then every
    other person avain knows in the pilot as ``name``."""
    from .people import open_identity  # names are sealed: opened in memory, within the pilot

    s = session(uow)
    ring = keyring_for_reading(uow)
    names: dict[str, str] = {}
    for ident in s.execute(select(ClientIdentityRow).where(ClientIdentityRow.pilot_id == client.pilot_id)).scalars():
        names[open_identity(ring, ident)["name"]] = "client" if ident.client_code == client.code else "name"
    for (name,) in s.execute(select(WorkerRow.name).where(WorkerRow.pilot_id == client.pilot_id)):
        names[name] = "name"
    own = s.get(ClientIdentityRow, client.code)
    if own is not None:
        names[open_identity(ring, own)["name"]] = "client"
    for role, who in participants(uow, client).items():
        if role == "client":
            continue
        w = s.get(WorkerRow, who.partition(":")[2])
        if w is not None:
            names[w.name] = ROLE_LABELS[role]
    return names


def fi_sent(at: dt.datetime) -> str:
    local = at.astimezone(workdays.FINLAND)
    return f"{fi_date(local.date())} {local:%H.%M}"

