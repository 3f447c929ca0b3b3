"""``ledger.post_many``, the one bulk write path of the ledger (the PSOP and ePassi imports
post through it): for any batch it does what posting each transfer with
``ledger.transfer`` would do, never overspends a budget, changes nothing on replay, and
leaves chains that ``ledger.verify`` finds clean."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from avain.core import db as dbmod
from avain.core import ledger
from avain.core.errors import Conflict, NotFound, ValidationError
from avain.core.models import PilotRow, TransferRow

CLIENTS = ("C1", "C2", "C3")
PROVIDERS = ("P1", "P2")
OPEN, CLOSED = "2018-01", "2017-12"


class Books:
    """An in-memory database with a pilot, a funded budget per client and a payable per
    provider."""

    def __init__(self, budgets: dict[str, int]):
        self.engine = dbmod.make_engine("sqlite://")
        SQLModel.metadata.create_all(self.engine)
        with self.tx() as s:
            s.add(PilotRow(id="p", name="p", config="{}", source="test", added_at=dt.datetime.now(dt.UTC)))
            s.flush()
            funding = ledger.account_id(s, "p", "funding")
            self.budget = {c: ledger.account_id(s, "p", "budget", c) for c in CLIENTS}
            self.payable = {p: ledger.account_id(s, "p", "payable", p) for p in PROVIDERS}
            for c, amount in budgets.items():
                ledger.transfer(s, f"alloc-{c}", kind="allocation", debit=funding, credit=self.budget[c],
                                amount=amount, period=OPEN)

    def tx(self):
        return _tx(self.engine)

    def balances(self) -> dict[str, tuple[int, int, int]]:
        with self.tx() as s:
            out = {}
            for c, acc in self.budget.items():
                b = ledger.balance(s, acc)
                out[c] = (b.credits, b.posted, b.available)
            return out

    def transfers(self) -> list[tuple]:
        with self.tx() as s:
            return [tuple(r) for r in s.execute(select(
                TransferRow.id, TransferRow.kind, TransferRow.debit_account_id, TransferRow.credit_account_id,
                TransferRow.amount, TransferRow.period, TransferRow.request_hash, TransferRow.business_date,
                TransferRow.chain_seq, TransferRow.memo).order_by(TransferRow.id))]

    def verify(self) -> list[str]:
        with self.tx() as s:
            return ledger.verify(s)


@contextlib.contextmanager
def _tx(engine):
    """One transaction: committed when the block ends, rolled back when it raises."""
    with Session(engine) as s, s.begin():
        yield s


# One transfer of a batch: (id, client, provider, amount, period, day of January).
rows = st.tuples(st.sampled_from([f"t{i}" for i in range(12)]), st.sampled_from(CLIENTS),
                 st.sampled_from(PROVIDERS), st.integers(1, 40_000), st.sampled_from([OPEN, OPEN, OPEN, CLOSED]),
                 st.integers(1, 31))
batches = st.lists(st.lists(rows, max_size=10), min_size=1, max_size=4)
funds = st.fixed_dictionaries({c: st.integers(1, 100_000) for c in CLIENTS})


def postings(books: Books, batch: list[tuple]) -> ledger.Postings:
    p = ledger.Postings()
    for tid, client, provider, amount, period, day in batch:
        p.add(tid, books.budget[client], books.payable[provider], amount, period, f"charge {tid}",
              dt.date(2018, 1, day))
    return p


def one_by_one(books: Books, batch: list[tuple]) -> list[tuple]:
    """What posting each transfer alone with ``ledger.transfer`` does: ``("posted",)``,
    ``("unchanged",)`` or ``("refused", available)`` (available only for a budget too
    small; None for an id used with other content or a period not open). As one batch
    does it, a new id that came before in the same batch (in an open period) is not tried
    again: with the same content it shares the fate of the first, with other content it is
    refused."""
    out: list[tuple] = []
    first: dict[str, int] = {}
    with books.tx() as s:
        known = set(s.execute(select(TransferRow.id)).scalars())  # in the ledger before the batch
    for i, (tid, client, provider, amount, period, day) in enumerate(batch):
        if tid in first and tid not in known:
            j = first[tid]
            same = batch[j][1:5] == (client, provider, amount, period)
            out.append(("unchanged",) if same and out[j][0] != "refused" else out[j] if same else ("refused", None))
            continue
        with books.tx() as s:
            exists = s.get(TransferRow, tid) is not None
            if not exists and period != OPEN:
                out.append(("refused", None))
                continue
            first[tid] = i
            before = ledger.balance(s, books.budget[client]).available
            try:
                t = ledger.transfer(s, tid, kind="charge", debit=books.budget[client],
                                    credit=books.payable[provider], amount=amount, period=period,
                                    memo=f"charge {tid}", on_date=dt.date(2018, 1, day))
            except ledger.InsufficientFunds:
                out.append(("refused", before))
                continue
            except Conflict:
                out.append(("refused", None))
                continue
            out.append(("unchanged",) if t.replayed else ("posted",))
    return out


def outcomes(result: ledger.BulkResult, n: int) -> list[tuple]:
    out: list[tuple] = [None] * n  # type: ignore[list-item]
    for i in result.posted:
        out[i] = ("posted",)
    for i in result.unchanged:
        out[i] = ("unchanged",)
    for r in result.refused:
        out[r.index] = ("refused", r.available)
    return out


@settings(max_examples=30, deadline=None)
@given(budgets=funds, batches=batches)
def test_a_batch_does_what_posting_each_transfer_alone_would_do(budgets, batches):
    bulk, single = Books(budgets), Books(budgets)
    try:
        for batch in batches:
            with bulk.tx() as s:
                result = ledger.post_many(s, postings(bulk, batch), periods={OPEN})
            got = outcomes(result, len(batch))
            assert None not in got  # every transfer is posted, unchanged or refused
            assert got == one_by_one(single, batch)
            assert result.amount == sum(batch[i][3] for i in result.posted)
            # The books agree, transfer for transfer (but for when they were recorded).
            assert bulk.balances() == single.balances()
            assert bulk.transfers() == single.transfers()
            for credits, posted, available in bulk.balances().values():
                assert available >= 0 and posted <= credits  # never overspent
            assert bulk.verify() == [] and single.verify() == []
    finally:
        bulk.engine.dispose()
        single.engine.dispose()


@settings(max_examples=25, deadline=None)
@given(budgets=funds, batch=st.lists(rows, min_size=1, max_size=12))
def test_replaying_a_batch_changes_nothing(budgets, batch):
    books = Books(budgets)
    try:
        with books.tx() as s:
            first = ledger.post_many(s, postings(books, batch), periods={OPEN})
        before, balances = books.transfers(), books.balances()
        with books.tx() as s:  # also once the month is closed
            again = ledger.post_many(s, postings(books, batch), periods=set())
        assert again.posted == () and again.amount == 0
        # What was posted or found unchanged is found unchanged again; nothing spends.
        assert set(first.posted) | set(first.unchanged) <= set(again.unchanged)
        assert {r.code for r in again.refused} <= {"conflict", "period_closed", "repeated"}
        assert books.transfers() == before and books.balances() == balances
        assert books.verify() == []
    finally:
        books.engine.dispose()


def test_a_budget_too_small_for_the_batch_pays_each_transfer_that_still_fits_in_order():
    books = Books({"C1": 10_000})
    batch = [("a", "C1", "P1", 6_000, OPEN, 3), ("b", "C1", "P2", 5_000, OPEN, 4),
             ("c", "C1", "P1", 4_000, OPEN, 5), ("d", "C1", "P1", 1, OPEN, 6)]
    try:
        with books.tx() as s:
            result = ledger.post_many(s, postings(books, batch))
        assert result.posted == (0, 2) and result.amount == 10_000
        assert [(r.index, r.code, r.available, r.needed) for r in result.refused] == [
            (1, "insufficient_funds", 4_000, 5_000), (3, "insufficient_funds", 0, 1)]
        assert result.refused[0].describe() == "not enough budget: 40,00\u00a0€ available, 50,00\u00a0€ needed"
        assert books.balances()["C1"] == (10_000, 10_000, 0)
        with books.tx() as s:  # the budget's chain: the two charges it paid
            seqs = [r.chain_seq for r in s.execute(select(TransferRow).where(
                TransferRow.debit_account_id == books.budget["C1"]).order_by(TransferRow.chain_seq)).scalars()]
        assert seqs == [1, 2]
        assert books.verify() == []
    finally:
        books.engine.dispose()


def test_a_batch_the_caller_got_wrong_posts_nothing():
    books = Books({"C1": 10_000})
    try:
        for bad in ([("x", "C1", "P1", 0, OPEN, 1)], [("x", "C1", "P1", 1.5, OPEN, 1)]):
            with pytest.raises(ValidationError, match="transfer 1: amount"), books.tx() as s:
                ledger.post_many(s, postings(books, bad))
        with pytest.raises(ValidationError, match="two different accounts"), books.tx() as s:
            p = ledger.Postings()
            p.add("x", books.budget["C1"], books.budget["C1"], 100)
            ledger.post_many(s, p)
        with pytest.raises(NotFound, match="no account 999"), books.tx() as s:
            p = ledger.Postings()
            p.add("x", books.budget["C1"], 999, 100)
            ledger.post_many(s, p)
        with pytest.raises(ValueError, match="not a posted kind"), books.tx() as s:
            ledger.post_many(s, postings(books, [("x", "C1", "P1", 1, OPEN, 1)]), kind="commitment")
        assert [t[0] for t in books.transfers()] == ["alloc-C1"]
    finally:
        books.engine.dispose()


# --- concurrent batches on PostgreSQL -----------------------------------------------------


@pytest.mark.postgres
def test_concurrent_batches_on_one_budget_never_overspend_it_and_each_id_is_posted_once(postgres_url):
    import random
    import threading

    from conftest import _truncate_all

    from avain.core.app import App
    from avain.core.auth import Actor
    from avain.core.plugins import make_plugin_manager

    _truncate_all(postgres_url)
    app = App(dbmod.make_engine(postgres_url), make_plugin_manager())
    try:
        def setup(uow):
            s = uow.session
            s.add(PilotRow(id="p", name="p", config="{}", source="test", added_at=dt.datetime.now(dt.UTC)))
            s.flush()
            funding = ledger.account_id(s, "p", "funding")
            budgets = [ledger.account_id(s, "p", "budget", c) for c in ("C1", "C2")]
            payables = [ledger.account_id(s, "p", "payable", p) for p in PROVIDERS]
            for b in budgets:
                ledger.transfer(s, f"alloc-{b}", kind="allocation", debit=funding, credit=b, amount=50_000,
                                period=OPEN)
            return budgets, payables

        budgets, payables = app.run(Actor("admin"), setup)
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        # 6 writers × 3 batches × 20 charges of 1–20 € on two budgets of 500 € each: several
        # times what the budgets hold. Some ids are in two writers' batches (the same charge
        # reported twice): posted once.
        shared = [(f"s{k}", rng.choice(budgets), rng.choice(payables), rng.randint(100, 2000)) for k in range(10)]
        work = [[[(f"w{w}-{b}-{k}", rng.choice(budgets), rng.choice(payables), rng.randint(100, 2000))
                  for k in range(20)] + rng.sample(shared, 3) for b in range(3)] for w in range(6)]
        results: list = []
        errors: list = []
        barrier = threading.Barrier(len(work))

        def writer(batches):
            try:
                barrier.wait()
                for batch in batches:
                    p = ledger.Postings()
                    for tid, debit, credit, amount in batch:
                        p.add(tid, debit, credit, amount, OPEN)
                    results.append((batch, app.run(Actor("admin"), lambda uow, p=p: ledger.post_many(
                        uow.session, p, periods={OPEN}))))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(mine,)) for mine in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        why = f"(random seed {seed})"
        assert errors == [], why
        posted = {}
        for batch, result in results:
            for i in result.posted:
                assert batch[i][0] not in posted, why  # each id posted once
                posted[batch[i][0]] = batch[i]
            assert {r.code for r in result.refused} <= {"insufficient_funds"}, why
        assert any(r.refused for _, r in results), f"the budgets should run out {why}"

        def check(uow):
            s = uow.session
            for b in budgets:
                bal = ledger.balance(s, b)
                assert bal.posted <= bal.credits, why
                assert bal.posted == sum(a for _, d, _, a in posted.values() if d == b), why
            assert ledger.verify(s) == [], why

        app.run(Actor("admin"), check)
    finally:
        app.close()
