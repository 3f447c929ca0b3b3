"""Invoices in parts against one payment commitment (maksusitoumus), closing a
commitment, and the ledger's invariants under random sequences of them; on SQLite and
PostgreSQL."""

import datetime as dt

import pytest
from helpers import approve, month_ready, propose
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import Conflict, Refused
from avain.core.ledger import InsufficientFunds
from avain.core.models import TransferRow
from avain.core.services import audit_log, purchases, statements

FIN = Actor("finance", "example-04")
ADMIN = Actor("admin")


def bill(app, c, cents, number, *, final=False, due=None):
    return app.run(FIN, purchases.record_invoice, provider_id=c["provider"], number=number,
                   amount=Money(cents), reference=c["reference"], on_date=dt.date(2018, 1, 20),
                   due_date=due, final=final)


def commitment(app, cid):
    return next(c for c in app.run(ADMIN, purchases.list_commitments) if c["id"] == cid)


def balance(app, code):
    return app.run(ADMIN, statements.balance, code)


def test_a_month_of_weekly_cleaning_is_billed_in_four_parts(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    for week, cents in enumerate((2500, 2500, 2500), 1):
        inv = bill(app, c, cents, f"W-{week}")
        assert (inv["commitment_status"], inv["commitment_left"]) == ("pending", 10000 - 2500 * week)
    now = commitment(app, c["id"])
    assert (now["status"], now["posted"], now["left"]) == ("pending", 7500, 2500)
    b = balance(app, code)
    assert (b["posted"], b["reserved"], b["available"]) == (7500, 2500, 20000)
    last = bill(app, c, 2500, "W-4")
    assert (last["commitment_status"], last["commitment_left"]) == ("posted", 0)
    b = balance(app, code)
    assert (b["posted"], b["reserved"], b["available"]) == (10000, 0, 20000)
    assert [i["commitment"] for i in app.run(ADMIN, purchases.list_invoices)] == [c["id"]] * 4
    assert app.run(ADMIN, statements.verify)["ok"]


def test_an_invoice_above_what_is_left_is_refused_naming_the_remainder(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 5000))
    bill(app, c, 3000, "A-1")
    with pytest.raises(Refused, match=r"above the commitment's remaining 20,00\u00a0€ .*30,00\u00a0€ invoiced"):
        bill(app, c, 2001, "A-2")
    assert balance(app, code)["posted"] == 3000  # nothing of the refused invoice was written
    bill(app, c, 2000, "A-2")
    with pytest.raises(Conflict, match="is posted"):
        bill(app, c, 1, "A-3")


def test_closing_releases_the_rest_once_and_is_audited(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    bill(app, c, 4000, "B-1")
    worker = Actor("worker", team["worker"])
    with pytest.raises(Conflict, match="close it instead"):
        app.run(worker, purchases.cancel, c["id"])
    closed = app.run(worker, purchases.close, c["id"], note="the provider stopped")
    assert (closed["status"], closed["released"], closed["posted"]) == ("closed", 6000, 4000)
    b = balance(app, code)
    assert (b["posted"], b["reserved"], b["available"]) == (4000, 0, 26000)
    with pytest.raises(Conflict, match="closed; only a pending one"):
        app.run(worker, purchases.close, c["id"])
    with pytest.raises(Conflict, match="closed"):
        bill(app, c, 100, "B-2")
    with Session(app.engine) as s:
        releases = s.execute(select(func.count()).select_from(TransferRow).where(
            TransferRow.pending_id == f"commit:{c['proposal']}", TransferRow.kind == "release")).scalar_one()
    assert releases == 1
    events = [e for e in app.run(ADMIN, audit_log.log, subject=code) if e["action"] == "commitment.closed"]
    assert len(events) == 1
    assert app.run(ADMIN, statements.verify)["ok"]


def test_final_invoice_closes_the_commitment(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    bill(app, c, 3000, "F-1")
    last = bill(app, c, 2000, "F-2", final=True)
    assert (last["commitment_status"], last["commitment_left"]) == ("closed", 0)
    assert balance(app, code)["available"] == 25000


def test_expiry_releases_only_what_was_not_invoiced(app):
    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    bill(app, c, 1500, "E-1")
    expires = dt.date.fromisoformat(c["expires_on"])
    out = app.run(FIN, purchases.expire, on_date=expires + dt.timedelta(days=1))
    assert (out["expired"], out["amount"]) == (1, 8500)
    b = balance(app, code)
    assert (b["posted"], b["reserved"], b["available"]) == (1500, 0, 28500)
    assert app.run(ADMIN, statements.verify)["ok"]


_READY: dict[int, tuple[Actor, str]] = {}
OPS = st.lists(st.one_of(st.tuples(st.just("invoice"), st.integers(1, 900)),
                         st.tuples(st.sampled_from(["close", "expire", "cancel"]), st.just(0))),
               max_size=8)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(1, 900), ops=OPS)
def test_random_partial_invoices_close_and_expiry_keep_the_books(app, amount, ops):
    """Whatever the order of partial invoices, closing and expiry: the cached balances are
    the fold of the journal, the budget is never overspent, a commitment is never posted
    above its amount, and its remainder is released exactly once."""
    if id(app) not in _READY:  # one month for all examples: the app outlives them
        team, codes = month_ready(app, clients=1)
        _READY[id(app)] = (Actor("worker", team["worker"]), codes[0])
    team_worker, code = _READY[id(app)]
    before = balance(app, code)
    try:
        c = app.run(team_worker, purchases.approve, propose(app, code, amount), today=dt.date(2018, 1, 10))
    except InsufficientFunds:
        assert balance(app, code) == before
        return
    c = c["commitment"]
    status, posted, n = "pending", 0, 0
    for op, cents in ops:
        n += 1
        if op == "invoice":
            if status == "pending" and cents <= amount - posted:
                bill(app, c, cents, f"P-{c['id']}-{n}")
                posted += cents
                status = "posted" if posted == amount else "pending"
            else:
                with pytest.raises(Refused if status == "pending" else Conflict):
                    bill(app, c, cents, f"P-{c['id']}-{n}")
        elif op == "close":
            if status == "pending":
                assert app.run(team_worker, purchases.close, c["id"])["released"] == amount - posted
                status = "closed"
            else:
                with pytest.raises(Conflict):
                    app.run(team_worker, purchases.close, c["id"])
        elif op == "cancel":
            if status == "pending" and posted == 0:
                app.run(team_worker, purchases.cancel, c["id"])
                status = "voided"
            else:
                with pytest.raises(Conflict):
                    app.run(team_worker, purchases.cancel, c["id"])
        else:
            expired = app.run(FIN, purchases.expire, on_date=dt.date.fromisoformat(c["expires_on"]) + dt.timedelta(1))
            if status == "pending":
                assert c["id"] in expired["commitments"]
                status = "expired"
        now = commitment(app, c["id"])
        assert (now["status"], now["posted"]) == (status, posted)
        assert now["posted"] <= now["amount"]
        check = app.run(ADMIN, statements.verify)
        assert check["ok"], check["problems"]
        b = balance(app, code)
        assert b["available"] >= 0
        open_left = sum(x["left"] for x in app.run(ADMIN, purchases.list_commitments, code=code))
        assert b["reserved"] == open_left


def test_e_invoices_in_parts_keep_their_due_dates_and_reimport_changes_nothing(app, tmp_path):
    import finvoice_samples

    from avain.core.services import finance

    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 9000))
    files = []
    for n, (cents, due) in enumerate(((3000, dt.date(2018, 2, 20)), (3000, dt.date(2018, 2, 6)),
                                      (4000, dt.date(2018, 2, 1))), 1):
        path = tmp_path / f"part{n}.xml"
        path.write_bytes(finvoice_samples.make(seller_id=c["provider"], number=f"K-{n}", amount=cents,
                                               reference=c["reference_rf"], date=dt.date(2018, 1, 20), due_date=due))
        files.append(path)
    results = [app.run(FIN, finance.import_invoice_file, path) for path in files]
    assert [len(r["recorded"]) for r in results] == [1, 1, 0]
    assert "above the commitment's remaining 30,00\u00a0€" in results[2]["queued"][0]["reason"]
    assert [(i["number"], i["due_date"]) for i in app.run(ADMIN, purchases.list_invoices)] == [
        ("K-2", "2018-02-06"), ("K-1", "2018-02-20")]
    assert app.run(FIN, finance.review_queue)[0]["due_date"] == "2018-02-01"
    again = [app.run(FIN, finance.import_invoice_file, path) for path in files]
    assert [(r["recorded"], r["queued"], r["unchanged"]) for r in again] == [([], [], 1)] * 3
    now = commitment(app, c["id"])
    assert (now["status"], now["posted"], now["left"]) == ("pending", 6000, 3000)
    assert app.run(ADMIN, statements.verify)["ok"]


def test_invoices_racing_for_one_commitment_never_post_above_it(app, db_url):
    """Six invoices of 30 € arrive at once against a 100 € commitment, each through its own
    connection: three are posted, three refused with the remainder, nothing else."""
    import threading

    from conftest import open_app

    team, (code, _) = month_ready(app)
    c = approve(app, team, propose(app, code, 10000))
    barrier, outcomes = threading.Barrier(6), []

    def racer(n):
        mine = open_app(db_url)
        try:
            barrier.wait(timeout=60)
            bill(mine, c, 3000, f"R-{n}")
            outcomes.append("ok")
        except Refused as exc:
            outcomes.append("refused" if "remaining" in str(exc) else str(exc))
        except Exception as exc:  # anything else is what the test looks for
            outcomes.append(repr(exc))
        finally:
            mine.close()

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 3
    now = commitment(app, c["id"])
    assert (now["status"], now["posted"], now["left"]) == ("pending", 9000, 1000)
    assert balance(app, code)["reserved"] == 1000
    check = app.run(ADMIN, statements.verify)
    assert check["ok"], check["problems"]
