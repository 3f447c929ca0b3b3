"""Property-based test of the ledger: random sequences of allocate, commit, post, void,
expire, close and replay, checked after every step against a simple model."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule
from sqlmodel import Session, SQLModel

from avain.core import db as dbmod
from avain.core import ledger
from avain.core.errors import Refused
from avain.core.models import PilotRow

CLIENTS = ("C1", "C2", "C3")
PROVIDERS = ("P1", "P2")
amounts = st.integers(min_value=1, max_value=50_000)


class LedgerMachine(RuleBasedStateMachine):
    pendings = Bundle("pendings")

    def __init__(self):
        super().__init__()
        self.engine = dbmod.make_engine("sqlite://")
        SQLModel.metadata.create_all(self.engine)
        self.n = 0
        with self.tx() as s:
            import datetime as dt

            s.add(PilotRow(id="p", name="p", config="{}", source="test", added_at=dt.datetime.now(dt.UTC)))
            s.flush()
            self.acc = {("funding", ""): ledger.account_id(s, "p", "funding"),
                        ("lapsed", ""): ledger.account_id(s, "p", "lapsed")}
            for c in CLIENTS:
                self.acc[("budget", c)] = ledger.account_id(s, "p", "budget", c)
            for p in PROVIDERS:
                self.acc[("payable", p)] = ledger.account_id(s, "p", "payable", p)
        # the model: per client granted, posted, pending; per pending its amount left
        self.granted = dict.fromkeys(CLIENTS, 0)
        self.posted = dict.fromkeys(CLIENTS, 0)
        self.pending = dict.fromkeys(CLIENTS, 0)
        self.left: dict[str, tuple[str, int]] = {}
        self.done: list[tuple[str, dict]] = []

    def teardown(self):
        self.engine.dispose()

    class _Tx:
        def __init__(self, engine):
            self.s = Session(engine)

        def __enter__(self):
            self.s.begin()
            return self.s

        def __exit__(self, exc_type, *_):
            if exc_type is None:
                self.s.commit()
            else:
                self.s.rollback()
            self.s.close()

    def tx(self):
        return self._Tx(self.engine)

    def next_id(self, kind):
        self.n += 1
        return f"{kind}-{self.n}"

    def available(self, c):
        return self.granted[c] - self.posted[c] - self.pending[c]

    @rule(client=st.sampled_from(CLIENTS), amount=amounts)
    def allocate(self, client, amount):
        tid = self.next_id("alloc")
        args = dict(kind="allocation", debit=self.acc[("funding", "")],
                    credit=self.acc[("budget", client)], amount=amount)
        with self.tx() as s:
            ledger.transfer(s, tid, **args)
        self.granted[client] += amount
        self.done.append((tid, args))

    @rule(target=pendings, client=st.sampled_from(CLIENTS), provider=st.sampled_from(PROVIDERS),
          amount=amounts)
    def commit(self, client, provider, amount):
        tid = self.next_id("commit")
        expect_ok = amount <= self.available(client)
        try:
            with self.tx() as s:
                ledger.transfer(s, tid, kind="commitment", debit=self.acc[("budget", client)],
                                credit=self.acc[("payable", provider)], amount=amount, pending=True)
        except ledger.InsufficientFunds:
            assert not expect_ok, "refused although the budget covered it"
            return "none"
        assert expect_ok, "committed more than the budget held"
        self.pending[client] += amount
        self.left[tid] = (client, amount)
        return tid

    @rule(pid=consumes(pendings), share=st.integers(min_value=1, max_value=100))
    def post(self, pid, share):
        if pid not in self.left:
            return
        client, amount = self.left.pop(pid)
        part = max(1, amount * share // 100)
        with self.tx() as s:
            ledger.resolve(s, f"post:{pid}", pending_id=pid, kind="post", amount=part)
            if part < amount:
                ledger.resolve(s, f"release:{pid}", pending_id=pid, kind="release", amount=amount - part)
        self.pending[client] -= amount
        self.posted[client] += part

    @rule(pid=consumes(pendings))
    def void(self, pid):  # a cancelled or expired commitment
        if pid not in self.left:
            return
        client, amount = self.left.pop(pid)
        with self.tx() as s:
            ledger.resolve(s, f"void:{pid}", pending_id=pid, kind="void", amount=amount)
        self.pending[client] -= amount

    @rule(pid=pendings, extra=amounts)
    def overpost_is_refused(self, pid, extra):
        if pid not in self.left:
            return
        client, amount = self.left[pid]
        try:
            with self.tx() as s:
                ledger.resolve(s, f"over:{pid}:{extra}", pending_id=pid, kind="post", amount=amount + extra)
        except Refused:
            return
        raise AssertionError("posted more than the commitment reserved")

    @rule(client=st.sampled_from(CLIENTS))
    def close(self, client):  # lapse what is neither spent nor reserved
        left = self.available(client)
        if left <= 0:
            return
        with self.tx() as s:
            ledger.transfer(s, self.next_id("lapse"), kind="lapse", debit=self.acc[("budget", client)],
                            credit=self.acc[("lapsed", "")], amount=left)
        self.posted[client] += left

    @rule(data=st.data())
    def replay(self, data):
        if not self.done:
            return
        tid, args = data.draw(st.sampled_from(self.done))
        with self.tx() as s:
            result = ledger.transfer(s, tid, **args)
        assert result.replayed

    @invariant()
    def books_agree_with_the_model(self):
        with self.tx() as s:
            assert ledger.verify(s) == []
            for c in CLIENTS:
                b = ledger.balance(s, self.acc[("budget", c)])
                assert (b.credits, b.posted, b.pending) == (self.granted[c], self.posted[c], self.pending[c])
                assert b.posted + b.pending <= b.credits


TestLedger = LedgerMachine.TestCase
TestLedger.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
