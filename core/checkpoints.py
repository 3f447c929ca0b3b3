"""Signed checkpoints of the audit streams and the ledger chains, kept outside the database.

The chains in the database are keyed (HMAC with the integrity key), so an insider who can
write to the database cannot forge an event or a transfer. They can still cut a chain
short — delete the newest events and move the head back — or delete a whole stream. A
checkpoint records, after every committed unit of work that appended audit events or
transfers, the heads of the streams and ledger chains it touched: ``{stream: [seq, hash]}``
and ``{account id: [seq, hash]}``, signed with the integrity key (purpose ``checkpoint``).

Checkpoints are appended as one JSON line each to a file outside the database:
``AVAIN_CHECKPOINT_FILE``, else beside a SQLite database (``avain.db`` →
``avain.db.checkpoints``). The file is opened with O_APPEND (each line one ``write``,
so concurrent writers never interleave or lose a line), made readable by its owner only,
and fsync'd. Every checkpoint is also handed to the ``avain_checkpoint_written`` hook, so a
deployment can copy it to write-once storage that no one at the database can change.

Verification (``avain audit verify``, ``avain ledger verify``) checks every line's
signature and then the database against the newest head of each stream and chain named:
the event or transfer at that position must still be there, with that hash.
"""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, tuple_

from . import db as dbmod
from . import integrity_key
from .models import AccountRow, AuditEventRow, AuditHeadRow, TransferRow

if TYPE_CHECKING:  # pragma: no cover
    from .app import App

log = logging.getLogger(__name__)

FILE_ENV = "AVAIN_CHECKPOINT_FILE"
SUFFIX = ".checkpoints"
PURPOSE = "checkpoint"
VERSION = 1


# --- what a unit of work touched ----------------------------------------------------------

#: The heads a unit of work moved, collected while it runs (None outside a unit of work).
_touched: ContextVar[dict[str, dict] | None] = ContextVar("avain_checkpoint_touched", default=None)


def start() -> Any:
    """Begin collecting heads for one attempt of a unit of work; returns the token to reset."""
    return _touched.set({"audit": {}, "ledger": {}})


def collected() -> dict[str, dict] | None:
    return _touched.get()


def stop(token: Any) -> None:
    _touched.reset(token)


def note_stream(stream: str, seq: int, mac: str) -> None:
    touched = _touched.get()
    if touched is not None:
        touched["audit"][stream] = [seq, mac]


def note_chain(account: int, seq: int, mac: str) -> None:
    touched = _touched.get()
    if touched is not None:
        touched["ledger"][str(account)] = [seq, mac]


# --- where they go -----------------------------------------------------------------------


def path_for(url: str) -> Path | None:
    """The checkpoint file of the database ``url``: ``AVAIN_CHECKPOINT_FILE``, else beside a
    SQLite file; None for a server database without the variable (then only the hook gets
    checkpoints)."""
    named = os.environ.get(FILE_ENV)
    if named:
        return Path(named)
    path = dbmod.sqlite_path(url)
    return path.with_name(path.name + SUFFIX) if path is not None else None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sign(key: integrity_key.IntegrityKey, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "mac": key.mac(PURPOSE, _canonical(body))}


def append_line(path: Path, line: str) -> None:
    """One line appended in one write, then fsync'd. O_APPEND: concurrent writers (threads
    or processes) each add whole lines, none overwrites another's."""
    # O_NOFOLLOW: a symbolic link planted at the file's place is refused, never written through
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        data = (line + "\n").encode("ascii")
        written = os.write(fd, data)
        if written != len(data):  # a full disk: the rest would be a broken line
            raise OSError(f"{path}: only {written} of {len(data)} bytes of a checkpoint were written")
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(url: str, audit: dict[str, list], ledger: dict[str, list], *, full: bool = False) -> dict[str, Any]:
    """Sign a checkpoint of these heads and append it to the database's checkpoint file (if
    it has one). Returns the checkpoint."""
    key = integrity_key.require(url)
    body = {"v": VERSION, "at": _now(), "key": key.id, "full": full, "audit": audit, "ledger": ledger}
    checkpoint = sign(key, body)
    path = path_for(url)
    if path is not None:
        append_line(path, _canonical(checkpoint))
    return checkpoint


def write(app: App, audit: dict[str, list], ledger: dict[str, list], *, full: bool = False) -> dict[str, Any]:
    """Sign a checkpoint of these heads, append it to the checkpoint file and hand it to the
    ``avain_checkpoint_written`` hook. Returns the checkpoint."""
    checkpoint = write_file(app.engine.url.render_as_string(hide_password=False), audit, ledger, full=full)
    for impl in app.pm.hook.avain_checkpoint_written.get_hookimpls():
        try:
            impl.function(checkpoint=checkpoint)
        except Exception:  # a copy elsewhere failing must not undo what was committed
            log.exception("avain_checkpoint_written failed (plugin %s)", impl.plugin_name)
    return checkpoint


def after_commit(app: App, touched: dict[str, dict] | None) -> None:
    """The checkpoint of a committed unit of work, when it moved any head. A failure to
    write is logged, never raised: the work is committed, and the next checkpoint of the
    same streams covers it."""
    if not touched or not (touched["audit"] or touched["ledger"]):
        return
    try:
        write(app, touched["audit"], touched["ledger"])
    except Exception:
        log.exception("the checkpoint of a committed unit of work could not be written")


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def heads(session) -> tuple[dict[str, list], dict[str, list]]:
    """Every audit stream's head and every ledger chain's head, for a full checkpoint."""
    audit = {h.stream: [h.seq, h.hash] for h in session.execute(select(AuditHeadRow)).scalars()}
    ledger = {str(a.id): [a.chain_seq, a.chain_hash] for a in session.execute(
        select(AccountRow).where(AccountRow.chain_seq > 0)).scalars()}
    return audit, ledger


# --- reading them back ---------------------------------------------------------------------


class Expected:
    """The newest head of each stream and chain over every valid checkpoint line, and the
    problems with the file itself."""

    def __init__(self) -> None:
        self.audit: dict[str, tuple[int, str]] = {}
        self.ledger: dict[int, tuple[int, str]] = {}
        self.problems: list[str] = []
        self.lines = 0
        self.path: Path | None = None
        self.missing = False  # the database has a checkpoint file's place, and no file is there

    def missing_problem(self, what: str, count: int) -> list[str]:
        """The problem of a missing or empty checkpoint file when the database holds
        ``count`` of ``what``."""
        if self.path is None or not count or not (self.missing or (self.lines == 0 and not self.problems)):
            return []
        state = "no checkpoint file" if self.missing else "the checkpoint file holds no checkpoint"
        return [f"{self.path}: {state}, but the database holds {count} {what}: the file was removed, moved or "
                "emptied; restore it (from its backup or its write-once copy) — or, for a database you trust as "
                "it is, start a new one with `avain audit checkpoint`"]


def read(url: str) -> Expected:
    expected = Expected()
    path = expected.path = path_for(url)
    if path is None:
        return expected
    if not path.exists():
        expected.missing = True
        return expected
    key = integrity_key.require(url)
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                mac = entry.pop("mac")
                audit, ledger = entry["audit"], entry["ledger"]
            except (ValueError, KeyError, TypeError, AttributeError):
                expected.problems.append(f"{path}, line {n}: not a checkpoint")
                continue
            if not key.check(PURPOSE, _canonical(entry), mac):
                expected.problems.append(f"{path}, line {n}: the signature does not match "
                                         "(a forged or altered checkpoint)")
                continue
            expected.lines += 1
            for stream, (seq, h) in audit.items():
                if seq >= expected.audit.get(stream, (0, ""))[0]:
                    expected.audit[stream] = (seq, h)
            for acc, (seq, h) in ledger.items():
                if seq >= expected.ledger.get(int(acc), (0, ""))[0]:
                    expected.ledger[int(acc)] = (seq, h)
    return expected


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_audit(session, expected: Expected) -> list[str]:
    """Each stream the checkpoints name must still hold its checkpointed event."""
    problems = []
    found: dict[tuple[str, int], str] = {}
    wanted = [(stream, seq) for stream, (seq, _) in expected.audit.items()]
    for part in _chunks(wanted):
        found.update(((s, q), h) for s, q, h in session.execute(
            select(AuditEventRow.stream, AuditEventRow.seq, AuditEventRow.hash)
            .where(tuple_(AuditEventRow.stream, AuditEventRow.seq).in_(part))))
    present = set(session.execute(select(AuditHeadRow.stream)).scalars())
    for stream, (seq, h) in sorted(expected.audit.items()):
        if stream not in present and not any(s == stream for s, _ in found):
            problems.append(f"stream {stream}: removed (a checkpoint has it at event {seq})")
        elif (stream, seq) not in found:
            problems.append(f"stream {stream}: event {seq} is missing (the chain was cut short; "
                            f"a checkpoint has it)")
        elif found[stream, seq] != h:
            problems.append(f"stream {stream}: event {seq} differs from its checkpoint (the chain was rewritten)")
    return problems


def check_ledger(session, expected: Expected) -> list[str]:
    """Each ledger chain the checkpoints name must still hold its checkpointed transfer."""
    problems = []
    found: dict[tuple[int, int], str] = {}
    wanted = [(acc, seq) for acc, (seq, _) in expected.ledger.items()]
    for part in _chunks(wanted):
        found.update(((a, q), h) for a, q, h in session.execute(
            select(TransferRow.debit_account_id, TransferRow.chain_seq, TransferRow.mac)
            .where(tuple_(TransferRow.debit_account_id, TransferRow.chain_seq).in_(part))))
    for acc, (seq, h) in sorted(expected.ledger.items()):
        if (acc, seq) not in found:
            problems.append(f"account {acc}: transfer {seq} of its chain is missing (transfers removed; "
                            "a checkpoint has it)")
        elif found[acc, seq] != h:
            problems.append(f"account {acc}: transfer {seq} of its chain differs from its checkpoint")
    return problems
