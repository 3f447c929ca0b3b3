"""``avain message …``: the client–worker dialogue, and ``avain client consent``."""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path

import click

from .. import i18n, outfiles, workdays
from ..domain import CONSENT_PURPOSES, MAX_ATTACHMENT, MAX_ATTACHMENTS
from ..errors import Conflict, ValidationError
from ..i18n import _, ngettext
from .lazy import lazy_module
from .output import emit, json_option, render_table
from .params import DateType
from .people_cmds import client
from .state import state

# read only inside the commands: imported when one of them runs
consent_svc = lazy_module("avain.core.services.consent")
messages = lazy_module("avain.core.services.messages")


@click.group("message")
def message() -> None:
    """The client's secure dialogue with the personal worker (Omasote): one thread per client,
    encrypted at rest, for its participants only."""


@message.command("send")
@click.argument("code")
@click.option("--text", required=True, help="The message; '-' reads it from standard input.")
@click.option("--ref", metavar="KIND:ID",
              help="What it is about: proposal:ID, commitment:ID, invoice:ID or decision:ID.")
@click.option("--attach", "files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"A file to send with it (repeatable; at most {MAX_ATTACHMENTS}, "
                   f"{MAX_ATTACHMENT // 1048576} MiB each).")
@json_option
def send(code, text, ref, files, as_json):
    """Write to CODE's thread, as a participant (--as client:CODE, worker:ID, supervisor:ID
    or assistant:ID)."""
    if text == "-":
        text = sys.stdin.read()
    if len(files) > MAX_ATTACHMENTS:
        raise ValidationError(_("--attach: {n} files; at most {most} per message").format(
            n=len(files), most=MAX_ATTACHMENTS))
    attachments = [(path.name, _read_attachment(path)) for path in files]
    data = state().run(messages.send, code, text=text, ref=ref, attachments=attachments)
    emit(data, as_json, lambda c, d: c.print(
        (ngettext("message {id} sent to {client}'s thread with {n} attachment",
                  "message {id} sent to {client}'s thread with {n} attachments", len(d["attachments"]))
         if d["attachments"] else _("message {id} sent to {client}'s thread")).format(
            id=d["id"], client=d["client"], n=len(d["attachments"])), markup=False))


#: Attachments are read in pieces of this many bytes, never more than the limit in all.
READ_CHUNK = 1024 * 1024


def _too_big(path: Path, size: int) -> ValidationError:
    return ValidationError(_("--attach: {path} is {size} MiB; the limit is {limit} MiB per file").format(
        path=path, size=f"{size / 1048576:.1f}", limit=MAX_ATTACHMENT // 1048576))


def _read_attachment(path: Path) -> bytes:
    """A regular file's content, at most ``MAX_ATTACHMENT`` bytes: the size is checked
    before reading and again while reading (a file that grows, or claims to be empty),
    and a device, pipe or socket is refused before a byte is read (``/dev/zero`` would
    never end). Opened without blocking, so a pipe with no writer cannot hang the command."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValidationError(_("--attach: {path} cannot be read ({reason})").format(
            path=path, reason=exc.strerror)) from None
    with os.fdopen(fd, "rb", buffering=0) as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValidationError(_("--attach: {path} is not a regular file (a device, pipe, socket or "
                                    "folder); attach a file").format(path=path))
        if info.st_size > MAX_ATTACHMENT:
            raise _too_big(path, info.st_size)
        chunks, total = [], 0
        while chunk := fh.read(READ_CHUNK):
            total += len(chunk)
            if total > MAX_ATTACHMENT:
                raise _too_big(path, max(total, info.st_size))
            chunks.append(chunk)
    return b"".join(chunks)


@message.command("thread")
@click.argument("code")
@json_option
def thread(code, as_json):
    """CODE's whole thread, oldest first; what others wrote is marked read by you."""
    data = state().run(messages.thread, code)

    def render(console, d):
        console.rule(f"{d['client']} · {d['pilot']}")
        console.print(_("participants: {who}").format(who=", ".join(d["participants"].values())), markup=False,
                      highlight=False)
        for m in d["messages"]:
            who = messages.role_label(m["author_role"])
            if m["author_role"] != "system":
                who += f" ({m['author']})"
            ref = f" · {m['ref']}" if m["ref"] else ""
            console.print(f"\n#{m['id']} {_when(m['sent_at'])} {who}{ref}", style="bold", markup=False,
                          highlight=False)
            console.print(m["text"], markup=False, highlight=False, soft_wrap=True)
            for a in m["attachments"]:
                console.print("  " + ngettext("attachment {id}: {name} ({n} byte)",
                                              "attachment {id}: {name} ({n} bytes)", a["size"]).format(
                    id=a["id"], name=a["name"], n=a["size"]), markup=False, highlight=False)
            if m["read_by"]:
                console.print("  " + _("read by {readers}").format(
                    readers=", ".join(f"{r['reader']} {_when(r['at'])}" for r in m["read_by"])),
                              style="dim", markup=False, highlight=False)
        if not d["messages"]:
            console.print(_("no messages yet"))
        elif d["waiting_since"]:
            console.print("\n" + _("waiting for an answer since {when}").format(when=_when(d["waiting_since"])),
                          style="yellow")

    emit(data, as_json, render)


def _when(iso: str) -> str:
    """A moment in Finnish time: ``3.1.2018 14.05`` in Finnish and Swedish, ``2018-01-03 14:05`` in English."""
    at = dt.datetime.fromisoformat(iso)
    if i18n.language() == "en":
        return f"{at.astimezone(workdays.FINLAND):%Y-%m-%d %H:%M}"
    return messages.fi_sent(at)


@message.command("attachment")
@click.argument("attachment_id", type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to save the file in (made if missing; an existing file is not overwritten).")
@json_option
def attachment(attachment_id, out_dir, as_json):
    """Save an attachment of a thread you take part in."""
    name, content = state().run(messages.attachment, attachment_id)
    path = outfiles.folder(out_dir) / name
    try:  # O_EXCL: an existing file, or a symbolic link planted there, is never written through
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, outfiles.FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
    except FileExistsError:
        raise Conflict(_("--out: {path} exists; choose another folder").format(path=path)) from None
    emit({"id": attachment_id, "file": str(path), "size": len(content)}, as_json,
         lambda c, d: c.print(ngettext("saved {file} ({n} byte)", "saved {file} ({n} bytes)", d["size"]).format(
             file=d["file"], n=d["size"]), markup=False))


@message.command("inbox")
@json_option
def inbox(as_json):
    """Your clients' threads waiting for an answer, the longest-waiting first (--as worker:ID
    or supervisor:ID)."""
    data = state().read(messages.inbox)

    def render(console, d):
        if not d:
            console.print(_("no thread is waiting for an answer"))
            return
        rows = [{**r, "since": _when(r["waiting_since"]),
                 "due": i18n.date(r["answer_due"])} for r in d]
        render_table([_("client"), _("pilot"), _("worker"), _("waiting since"), _("unanswered"), _("answer by"),
                      _("hours"), _("overdue")],
                     ["client", "pilot", "worker", "since", "unanswered", "due", "hours_waiting", "overdue"],
                     _("Threads waiting for an answer"))(console, rows)

    emit(data, as_json, render)


@message.command("stats")
@click.option("--pilot", "pilot_id", help="One pilot (default: every pilot in your scope).")
@json_option
def stats(pilot_id, as_json):
    """Response times: the share of client questions answered by the next working day, and
    the median time to answer, per pilot and personal worker."""
    data = state().read(messages.stats, pilot_id=pilot_id)

    def render(console, d):
        rows = [{"pilot": _("all"), "worker": "", **d["total"]}, *({"worker": "", **p} for p in d["pilots"]),
                *d["workers"]]
        for r in rows:
            share = r["share_by_next_working_day"]
            r["share"] = "—" if share is None else f"{share:.0%}"
            r["median"] = "—" if r["median_hours_to_answer"] is None else f"{r['median_hours_to_answer']} h"
        render_table([_("pilot"), _("worker"), _("questions"), _("answered"), _("by next working day"),
                      _("share"), _("median"),
                      _("not yet due")],
                     ["pilot", "worker", "questions", "answered", "answered_by_next_working_day", "share", "median",
                      "not_yet_due"], _("Answers to client questions"))(console, rows)
        console.print(d["rule"], style="dim", markup=False, soft_wrap=True)

    emit(data, as_json, render)


@message.command("rotate-key")
@json_option
def rotate_key(as_json):
    """Re-encrypt every message under a new key (key file) or under the first key of
    AVAIN_MESSAGE_KEY; safe to run again after an interruption."""
    st = state()
    data = messages.rotate_key(st.app(), st.actor)
    emit(data, as_json, lambda c, d: c.print(
        _("message key {key} ({source}): {n} messages and attachments re-encrypted").format(
            key=d["key"], source=d["source"], n=d["resealed"])
        + (_("; retired {keys}").format(keys=", ".join(d["retired"])) if d["retired"] else "")
        + (f"\n{d['note']}" if d["note"] else ""), markup=False, soft_wrap=True))


@message.command("dialogue")
@click.argument("code")
@json_option
def dialogue(code, as_json):
    """A consenting client's dialogue for evaluation, free of identifiers (--as evaluator:ID)."""
    data = state().run(messages.dialogue_document, code)

    def render(console, d):
        console.rule(f"{d['client']} · {d['pilot']} · {d['group']} (day 0 = enrolment)")
        for m in d["messages"]:
            event = f" · {m['event']}" if m["event"] else ""
            console.print(f"\n{m['n']}. day {m['day']}, {m['hour']:02d} h · {m['author']}{event}", style="bold",
                          markup=False, highlight=False)
            console.print(m["text"], markup=False, highlight=False, soft_wrap=True)

    emit(data, as_json, render)


@client.command("consent")
@click.argument("code")
@click.option("--purpose", required=True, type=click.Choice(CONSENT_PURPOSES),
              help="evaluation: the client's data in the evaluation; dialogue: the dialogue, free of "
                   "identifiers, for the evaluators.")
@click.option("--withdraw", is_flag=True, help="Record that the client withdrew it.")
@click.option("--date", "on_date", type=DateType(), help="The day given or withdrawn (default today).")
@json_option
def consent(code, purpose, withdraw, on_date, as_json):
    """Record a client's consent for a purpose, or its withdrawal."""
    data = state().run(consent_svc.set_consent, code, purpose=purpose, given=not withdraw, on_date=on_date)
    emit(data, as_json, lambda c, d: c.print(
        _("{client}: consent for {purpose} given {date}").format(client=d["client"], purpose=d["purpose"],
                                                                 date=i18n.date(d["given_on"]))
        + (_(", withdrawn {date}").format(date=i18n.date(d["withdrawn_on"])) if d["withdrawn_on"] else ""),
        markup=False))


COMMANDS = [message]
