"""The fast paths behave as the slow ones did: a Prepared statement sends SQLAlchemy's own
SQL and parameters and returns its results and errors; a unit of work keeps the ORM and
the Core statements in one transaction (read-only units without a Session); a month's
allocation gives what the budget rules give, chunk by chunk. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import month_ready
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from avain.core import ledger
from avain.core.auth import Actor
from avain.core.domain import Money, Period
from avain.core.errors import NotFound
from avain.core.models import AccountRow, BudgetPeriodRow, TransferRow
from avain.core.services import budget, statements
from avain.core.services.common import connection, session

FINANCE = Actor("finance", "example-04")
JAN = Period(2018, 1)


def _funded_accounts(app) -> tuple[int, int, int]:
    """A funding account, a budget with 1 000,00 € and a payable: their ids."""
    def fn(uow):
        s = session(uow)
        funding = ledger.account_id(s, "example", "funding")
        budget_acc = ledger.account_id(s, "example", "budget", "EX-F-99-001")
        payable = ledger.account_id(s, "example", "payable", "P-1")
        ledger.bulk_post(s, [{"id": "alloc:test", "kind": "allocation", "debit": funding,
                              "credit": budget_acc, "amount": 100000, "period": "2018-01"}])
        return funding, budget_acc, payable

    return app.run(Actor("admin"), fn)


class Capture:
    """The (SQL, parameters) SQLAlchemy hands the driver while it is attached."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append((statement, parameters))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self.seen

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._before)


def test_prepared_statements_send_sqlalchemys_sql_and_return_its_rows(app):
    funding, budget_acc, payable = _funded_accounts(app)
    t = ledger.transfer
    app.run(Actor("admin"), lambda uow: t(session(uow), "c-1", kind="commitment", debit=budget_acc,
                                         credit=payable, amount=1234, pending=True, period="2018-01"))
    cases = [
        (ledger._SELECT_TRANSFER, {"tid": "c-1"}),
        (ledger._SELECT_TRANSFER, {"tid": "missing"}),
        (ledger._RESOLVE_PENDING, {"pid": "c-1"}),
        (ledger._ACCOUNT_ID, {"pilot": "example", "kind": "budget", "owner": "EX-F-99-001"}),
        (ledger._BALANCE, {"acc": budget_acc}),
        (ledger._update_stmt(("debits_pending",), True), {"acc": budget_acc, "d_debits_pending": 0, "spend": 1}),
        (ledger._update_stmt(("credits_posted", "credits_pending"), False),
         {"acc": payable, "d_credits_posted": 0, "d_credits_pending": 0}),
        (statements._BALANCE, {"code": "EX-F-99-001"}),
    ]
    with app.engine.connect() as conn:
        conn.begin()
        for prepared, params in cases:
            fast = prepared.run(conn, params)
            plan = prepared.plan(conn.dialect)
            with Capture(app.engine) as seen:
                result = conn.execute(prepared.statement, params)
                slow = [tuple(r) for r in result] if plan.returns_rows else result.rowcount
                # with a listener attached, run() goes through SQLAlchemy so it is seen
                observed = prepared.run(conn, params)
            assert fast == slow == observed, prepared.statement
            assert seen[0] == seen[1] == (plan.sql, plan.parameters(params))
        conn.rollback()
    # the types come back as SQLAlchemy returns them (a bool, an aware UTC datetime)
    with app.engine.connect() as conn:
        row = dict(zip(ledger._TRANSFER_COLUMNS, ledger._SELECT_TRANSFER.run(conn, {"tid": "c-1"})[0],
                       strict=True))
    assert row["pending"] is True
    assert row["created_at"].utcoffset() == dt.timedelta(0)


def test_a_prepared_insert_binds_as_sqlalchemy_and_refuses_a_missing_value(app):
    funding, budget_acc, _ = _funded_accounts(app)
    values = {"id": "x-fast", "kind": "allocation", "debit_account_id": funding,
              "credit_account_id": budget_acc, "amount": 5, "pending": False, "pending_id": None,
              "reverses": None, "period": "2018-01", "memo": "m", "request_hash": "h" * 64,
              "created_at": dt.datetime(2018, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
              "business_date": dt.date(2018, 1, 1), "chain_seq": None, "mac": None}
    with app.engine.begin() as conn:
        ledger._INSERT_TRANSFER.run(conn, values)
        with Capture(app.engine) as seen:
            conn.execute(ledger._INSERT_TRANSFER.statement, {**values, "id": "x-slow"})
        assert seen[0] == (ledger._INSERT_TRANSFER.plan(conn.dialect).sql,
                           ledger._INSERT_TRANSFER.plan(conn.dialect).parameters({**values, "id": "x-slow"}))
        with pytest.raises(InvalidRequestError, match="'memo'"):
            ledger._INSERT_TRANSFER.run(conn, {k: v for k, v in values.items() if k != "memo"})
        raw = conn.execute(text("SELECT id, created_at FROM transfer WHERE id LIKE 'x-%' ORDER BY id")).all()
    assert raw[0][1] == raw[1][1]  # stored alike, as SQLAlchemy stores it
    with app.engine.connect() as conn:
        stored = conn.execute(select(TransferRow.__table__.c.created_at)
                              .where(TransferRow.__table__.c.id == "x-fast")).scalar_one()
    assert stored == values["created_at"] and stored.utcoffset() == dt.timedelta(0)


def test_prepared_errors_are_sqlalchemys_and_the_connection_goes_on(app):
    funding, budget_acc, _ = _funded_accounts(app)
    values = {"id": "alloc:test", "kind": "allocation", "debit_account_id": funding,
              "credit_account_id": budget_acc, "amount": 5, "pending": False, "pending_id": None,
              "reverses": None, "period": "2018-01", "memo": None, "request_hash": "h" * 64,
              "created_at": ledger.now(), "business_date": dt.date(2018, 1, 1), "chain_seq": None, "mac": None}
    with app.engine.connect() as conn:
        conn.begin()
        with pytest.raises(IntegrityError) as raised:
            ledger._INSERT_TRANSFER.run(conn, values)
        assert ledger._is_duplicate(raised.value, "transfer")
        conn.rollback()
        # the cursor that failed is not used again; the next statement runs
        assert ledger._BALANCE.run(conn, {"acc": budget_acc}) == [(100000, 0, 0)]
        conn.rollback()


def test_a_duplicate_transfer_written_concurrently_is_still_a_retry(app):
    """The ledger's own reading of the wrapped error: a clash on the id is retryable."""
    funding, budget_acc, _ = _funded_accounts(app)
    with app.engine.connect() as conn:
        conn.begin()
        with pytest.raises(ledger.RetryableConflict):
            ledger._insert(conn, {"id": "alloc:test", "kind": "allocation", "debit_account_id": funding,
                                  "credit_account_id": budget_acc, "amount": 5, "pending": False,
                                  "pending_id": None, "reverses": None, "period": None, "memo": None,
                                  "request_hash": "h" * 64, "created_at": ledger.now(),
                                  "business_date": dt.date(2018, 1, 1)}, (1, ""))
        conn.rollback()


def test_the_ledger_is_seen_by_statement_listeners(app):
    _, budget_acc, payable = _funded_accounts(app)
    with Capture(app.engine) as seen:
        app.run(Actor("admin"), lambda uow: ledger.transfer(
            session(uow), "c-2", kind="commitment", debit=budget_acc, credit=payable, amount=10, pending=True))
    statements_seen = [sql.split()[0] for sql, _ in seen if not sql.startswith("BEGIN")]
    # replay check, both accounts' totals, the debit account's chain head (read, then moved)
    assert statements_seen == ["SELECT", "UPDATE", "UPDATE", "SELECT", "INSERT", "UPDATE"]


def test_a_read_only_unit_reads_without_a_session_and_leaves_the_connection_as_it_was(app, admin):
    month_ready(app, clients=1)
    code = app.run(admin, lambda uow: session(uow).execute(select(AccountRow.owner).where(
        AccountRow.kind == "budget")).scalar_one())

    def read(uow):
        result = statements.balance(uow, code)
        return result, uow._session, connection(uow).in_transaction()

    result, made, in_tx = app.read(admin, read)
    assert result["credits"] == 30000 and made is None and in_tx
    # a Session, when a service asks for one, reads in the same unit
    assert app.read(admin, lambda uow: session(uow).get(AccountRow, 1)) is not None
    # the pooled connection is transactional again for the next unit that writes: what a
    # failing unit wrote is rolled back
    with pytest.raises(RuntimeError):
        app.run(admin, _write_then_fail)
    assert app.read(admin, statements.balance, code)["credits"] == 30000


def _write_then_fail(uow):
    s = session(uow)
    if s.bind.dialect.name == "postgresql":
        assert connection(uow).connection.dbapi_connection.autocommit is False
    funding = ledger.account_id(s, "example", "funding")
    acc = s.execute(select(AccountRow.id).where(AccountRow.kind == "budget")).scalar_one()
    ledger.bulk_post(s, [{"id": "extra", "kind": "allocation", "debit": funding, "credit": acc,
                          "amount": 1, "period": "2018-01"}])
    raise RuntimeError("after writing")


def test_orm_changes_and_ledger_statements_share_the_units_transaction(app, admin):
    _, budget_acc, payable = _funded_accounts(app)

    def both(uow, fail: bool):
        s = session(uow)
        s.add(BudgetPeriodRow(pilot_id="example", period="2019-01", status="opening"))
        # the Core statements see the Session's pending row (flushed first), in a savepoint
        with s.begin_nested():
            ledger.transfer(s, "c-3", kind="commitment", debit=budget_acc, credit=payable, amount=7,
                            pending=True)
        seen = connection(uow).execute(text("SELECT count(*) FROM budget_period")).scalar_one()
        if fail:
            raise RuntimeError("undo both")
        return seen

    with pytest.raises(RuntimeError):
        app.run(admin, both, True)
    assert app.read(admin, lambda uow: session(uow).get(BudgetPeriodRow, ("example", "2019-01"))) is None
    assert app.read(admin, lambda uow: ledger.balance(session(uow), budget_acc)).pending == 0
    assert app.run(admin, both, False) == 1
    assert app.read(admin, lambda uow: ledger.balance(session(uow), budget_acc)).pending == 7


def test_a_month_in_small_chunks_allocates_what_the_rules_say(app, admin):
    team, codes = month_ready(app, clients=5, grant=False, period=False)
    worker = Actor("worker", team["worker"])
    D = dt.date
    for code in codes[:3]:
        app.run(worker, budget.grant, code, valid_from=D(2018, 1, 1), valid_to=D(2018, 12, 31),
                monthly_amount=Money(20000 + 1000 * codes.index(code)))
    # renewed mid-month: two parts; and a decision that ended before January: nothing
    app.run(worker, budget.grant, codes[3], valid_from=D(2018, 1, 1), valid_to=D(2018, 12, 31))
    app.run(worker, budget.grant, codes[3], valid_from=D(2018, 1, 17), valid_to=D(2018, 12, 31),
            monthly_amount=Money(10000))
    app.run(worker, budget.grant, codes[4], valid_from=D(2017, 1, 1), valid_to=D(2017, 12, 31))
    # a client whose budget account is missing gets one from the run
    app.run(admin, lambda uow: session(uow).execute(
        AccountRow.__table__.delete().where(AccountRow.owner == codes[1])))
    expected = {c: app.run(worker, budget.explain, c, JAN)["amount"] for c in codes[:4]}
    with pytest.raises(NotFound):
        app.run(worker, budget.explain, codes[4], JAN)

    opened = budget.open_period(app, FINANCE, "example", JAN, batch=2)
    assert (opened["clients"], opened["amount"]) == (4, sum(expected.values()))
    for code, amount in expected.items():
        assert app.read(admin, statements.balance, code)["credits"] == amount
    again = budget.open_period(app, FINANCE, "example", JAN, batch=3)
    assert (again["clients"], again["amount"]) == (4, sum(expected.values()))
    assert app.read(admin, statements.verify)["ok"]
    assert app.read(admin, statements.balance, codes[4])["credits"] == 0
