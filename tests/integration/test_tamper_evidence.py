"""Tamper evidence against an insider who can write to the database: each attack is raw
SQL on a database built through the services, and `audit verify` / `ledger verify` must
report it. The chains are keyed with the integrity key and checkpointed, signed, in a
file outside the database."""

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from helpers import IBANS, PROVIDERS, approve, month_ready, propose
from sqlalchemy import text

from avain.core import audit
from avain.core.auth import Actor
from avain.core.hookspecs import hookimpl
from avain.core.services import audit_log, people, purchases, statements

ADMIN = Actor("admin")
FIN = Actor("finance", "example-04")


def _sql(app, statement, **params):
    with app.engine.begin() as conn:
        return conn.execute(text(statement), params)


def _rows(app, statement, **params):
    with app.engine.connect() as conn:
        return conn.execute(text(statement), params).all()


@pytest.fixture
def built(app):
    """Two clients, an identity read, a purchase invoiced and approved: everything verifies."""
    team, codes = month_ready(app)
    code = codes[0]
    worker = Actor("worker", team["worker"])
    app.run(worker, people.identify, code, reason="phone call with client about the XYZZY plan")
    c = approve(app, team, propose(app, code, 4200))
    inv = app.run(FIN, purchases.record_invoice, provider_id=c["provider"], number="INV-1",
                  amount=purchases.Money(840), reference=c["reference"], on_date=dt.date(2018, 1, 20))
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    assert app.read(ADMIN, audit_log.verify)["ok"], app.read(ADMIN, audit_log.verify)["problems"]
    assert app.read(ADMIN, statements.verify)["ok"], app.read(ADMIN, statements.verify)["problems"]
    return {"team": team, "code": code, "other": codes[1], "invoice": inv["id"]}


def _audit_problems(app):
    data = app.read(ADMIN, audit_log.verify)
    assert not data["ok"]
    return "\n".join(data["problems"])


def _ledger_problems(app):
    data = app.read(ADMIN, statements.verify)
    assert not data["ok"]
    return "\n".join(data["problems"])


def test_deleting_the_newest_audit_event_and_moving_the_head_back_is_caught(app, built):
    code = built["code"]
    seq, = _rows(app, "SELECT seq FROM audit_head WHERE stream = :s", s=code)[0]
    prev, = _rows(app, "SELECT hash FROM audit_event WHERE stream = :s AND seq = :q", s=code, q=seq - 1)[0]
    _sql(app, "DELETE FROM audit_event WHERE stream = :s AND seq = :q", s=code, q=seq)
    _sql(app, "UPDATE audit_head SET seq = :q, hash = :h WHERE stream = :s", q=seq - 1, h=prev, s=code)
    with _session(app) as s:
        assert audit.verify(s) == []  # the chain alone looks whole
    assert f"stream {code}: event {seq} is missing (the chain was cut short" in _audit_problems(app)


def _session(app):
    from sqlmodel import Session

    return Session(app.engine)


def test_deleting_a_clients_whole_stream_is_caught(app, built):
    other = built["other"]
    _sql(app, "DELETE FROM audit_event WHERE stream = :s", s=other)
    _sql(app, "DELETE FROM audit_head WHERE stream = :s", s=other)
    assert f"stream {other}: removed (a checkpoint has it at event" in _audit_problems(app)


def _legacy_hash(row) -> str:
    """The plain SHA-256 chain avain used before its chains were keyed."""
    body = {"stream": row["stream"], "seq": row["seq"], "at": row["at"], "actor": row["actor"],
            "action": row["action"], "subject": row["subject"], "purpose": row["purpose"],
            "before": row["before"], "after": row["after"], "prev": row["prev_hash"]}
    return hashlib.sha256(audit._canonical(body).encode()).hexdigest()


def test_rehashing_a_stream_after_deleting_identity_reads_is_caught(app, built):
    code = built["code"]
    _sql(app, "DELETE FROM audit_event WHERE stream = :s AND action = 'client.identity_read'", s=code)
    with app.engine.begin() as conn:
        rows = conn.execute(text("SELECT * FROM audit_event WHERE stream = :s ORDER BY seq"), {"s": code}).mappings()
        prev, seq = audit.GENESIS, 0
        for r in [dict(r) for r in rows]:
            seq += 1
            r.update(seq=seq, prev_hash=prev)
            r["hash"] = prev = _legacy_hash(r)
            conn.execute(text("UPDATE audit_event SET seq = :seq, prev_hash = :p, hash = :h WHERE id = :id"),
                         {"seq": seq, "p": r["prev_hash"], "h": r["hash"], "id": r["id"]})
        conn.execute(text("UPDATE audit_head SET seq = :q, hash = :h WHERE stream = :s"),
                     {"q": seq, "h": prev, "s": code})
    problems = _audit_problems(app)
    assert f"stream {code}: event 1 has been altered" in problems


def test_a_forged_checkpoint_line_is_reported(app, built):
    from avain.core import checkpoints

    path = checkpoints.path_for(app.engine.url.render_as_string(hide_password=False))
    lines = path.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["audit"] = {built["code"]: [1, "0" * 64]}
    with path.open("a") as fh:
        fh.write(json.dumps(forged) + "\n")
    assert f"{path}, line {len(lines) + 1}: the signature does not match" in _audit_problems(app)


def test_a_checkpoint_file_removed_or_emptied_is_reported(app, built):
    from avain.core import checkpoints

    path = checkpoints.path_for(app.engine.url.render_as_string(hide_password=False))
    saved = path.read_bytes()
    path.write_bytes(b"")
    assert f"{path}: the checkpoint file holds no checkpoint, but the database holds" in _audit_problems(app)
    assert "the checkpoint file holds no checkpoint" in _ledger_problems(app)
    path.unlink()
    assert f"{path}: no checkpoint file, but the database holds" in _audit_problems(app)
    path.write_bytes(saved)
    assert app.read(ADMIN, audit_log.verify)["ok"]


def test_a_transfer_changed_with_its_account_totals_is_caught(app, built):
    """A client's month's allocation raised by 100 €, the funding and budget totals with it:
    the books still balance and the totals still fold from the transfers."""
    tid, debit, credit = _rows(
        app, "SELECT id, debit_account_id, credit_account_id FROM transfer WHERE kind = 'allocation'")[0]
    _sql(app, "UPDATE transfer SET amount = amount + 10000 WHERE id = :t", t=tid)
    _sql(app, "UPDATE account SET debits_posted = debits_posted + 10000 WHERE id = :a", a=debit)
    _sql(app, "UPDATE account SET credits_posted = credits_posted + 10000 WHERE id = :a", a=credit)
    problems = _ledger_problems(app)
    assert "differ from the transfers" not in problems and "do not balance" not in problems
    assert f"transfer {tid} has been altered outside avain" in problems


def test_the_newest_transfer_deleted_with_totals_fixed_is_caught(app, built):
    """The newest allocation deleted, the totals and the chain's head moved back: every
    row left in the database is consistent; only the checkpoint remembers."""
    tid, debit, credit, amount, seq = _rows(
        app, "SELECT id, debit_account_id, credit_account_id, amount, chain_seq FROM transfer "
             "WHERE kind = 'allocation' ORDER BY chain_seq DESC")[0]
    _sql(app, "DELETE FROM transfer WHERE id = :t", t=tid)
    _sql(app, "UPDATE account SET debits_posted = debits_posted - :x, chain_seq = chain_seq - 1, "
              "chain_hash = (SELECT mac FROM transfer WHERE debit_account_id = :a AND chain_seq = :q) "
              "WHERE id = :a", x=amount, a=debit, q=seq - 1)
    _sql(app, "UPDATE account SET credits_posted = credits_posted - :x WHERE id = :a", x=amount, a=credit)
    with _session(app) as s:
        from avain.core import ledger

        assert ledger.verify(s) == []  # the rows left are consistent
    problems = _ledger_problems(app)
    assert f"account {debit}: transfer {seq} of its chain is missing (transfers removed" in problems


def test_an_invoice_multiplied_and_a_new_iban_are_caught(app, built):
    _sql(app, "UPDATE invoice SET amount = amount * 100 WHERE id = :i", i=built["invoice"])
    _sql(app, "UPDATE provider SET iban = :iban WHERE id = :p", iban=IBANS[1], p=PROVIDERS[0])
    problems = _ledger_problems(app)
    assert f"invoice {built['invoice']} ({PROVIDERS[0]} INV-1): its amount or details were changed" in problems
    assert f"provider {PROVIDERS[0]}: its IBAN or BIC was changed outside avain" in problems


def test_a_purpose_is_stored_encrypted_and_shown_decrypted(app, built, db_url):
    code = built["code"]
    shown = [e["purpose"] for e in app.read(ADMIN, audit_log.log, subject=code)]
    assert "phone call with client about the XYZZY plan" in shown
    stored = [p for p, in _rows(app, "SELECT purpose FROM audit_event WHERE purpose IS NOT NULL")]
    assert stored and all(p.startswith(audit.SEALED) and "XYZZY" not in p for p in stored)
    if db_url.startswith("sqlite"):
        app.engine.dispose()
        path = db_url.removeprefix("sqlite:///")
        for name in (Path(path), Path(path + "-wal")):
            if name.exists():
                assert b"XYZZY" not in name.read_bytes()


def test_hook_avain_checkpoint_written(app, built):
    from avain.core import checkpoints

    seen = []

    class Copier:
        @hookimpl
        def avain_checkpoint_written(self, checkpoint):
            seen.append(checkpoint)

    app.pm.register(Copier(), name="copier")
    try:
        app.run(Actor("worker", built["team"]["worker"]), people.identify, built["other"], reason="a call")
        assert len(seen) == 1
        cp = seen[0]
        seq, = _rows(app, "SELECT seq FROM audit_head WHERE stream = :s", s=built["other"])[0]
        assert cp["audit"][built["other"]][0] == seq and cp["full"] is False
        # the same signed line is in the checkpoint file
        path = checkpoints.path_for(app.engine.url.render_as_string(hide_password=False))
        assert json.loads(path.read_text().splitlines()[-1]) == cp
        written = app.read(ADMIN, audit_log.checkpoint)
        assert written["streams"] >= 3 and written["chains"] >= 1 and seen[-1]["full"] is True
    finally:
        app.pm.unregister(name="copier")


def test_the_migration_rekeys_an_older_database(app, built, db_url):
    """A database from before 0013: plain SHA-256 audit chains, purposes in clear text, no
    ledger chains or seals. After the upgrade everything verifies, keyed and sealed."""
    from alembic import command

    from avain.core import db as dbmod

    code = built["code"]
    command.downgrade(dbmod.alembic_config(app.engine), "0011")
    with app.engine.begin() as conn:  # what 0011 wrote: the plain chain, the purpose as given
        for stream, in conn.execute(text("SELECT stream FROM audit_head")).all():
            prev = audit.GENESIS
            for r in conn.execute(text("SELECT * FROM audit_event WHERE stream = :s ORDER BY seq"),
                                  {"s": stream}).mappings().all():
                r = dict(r, prev_hash=prev)
                if r["purpose"]:
                    r["purpose"] = "phone call with client about the XYZZY plan"
                prev = _legacy_hash(r)
                conn.execute(text("UPDATE audit_event SET purpose = :p, prev_hash = :prev, hash = :h "
                                  "WHERE id = :id"), {"p": r["purpose"], "prev": r["prev_hash"], "h": prev,
                                                      "id": r["id"]})
            conn.execute(text("UPDATE audit_head SET hash = :h WHERE stream = :s"), {"h": prev, "s": stream})
    command.upgrade(dbmod.alembic_config(app.engine), "head")
    assert app.read(ADMIN, audit_log.verify)["problems"] == []
    assert app.read(ADMIN, statements.verify)["problems"] == []
    shown = [e["purpose"] for e in app.read(ADMIN, audit_log.log, subject=code)]
    assert "phone call with client about the XYZZY plan" in shown
    assert all("XYZZY" not in p for p, in _rows(app, "SELECT purpose FROM audit_event WHERE purpose IS NOT NULL"))
    assert app.read(ADMIN, audit_log.verify)["checkpoints"] >= 1  # the upgrade wrote the first one
    # and the re-keyed chains are checkpointed again from the next commit on
    app.run(Actor("worker", built["team"]["worker"]), people.identify, code, reason="a call")
    assert app.read(ADMIN, audit_log.verify)["ok"]
