"""The evaluation's figures, computed in the database and streamed: change in each
instrument scale from start to end (HB against control), cost per client, budget use,
proposals approved and rejected, worker time per client, and cost-effectiveness.

A *cell* is one pilot, one client group (or ``*``: all the pilot's groups) and one arm
(``hb`` or ``control``). Only clients whose consent to the evaluation is in force count.
Any cell with fewer than ``MIN_CELL`` clients is suppressed: its numbers are withheld
(``null``, ``"suppressed": true``), since pilots had only 10–20 clients and a small cell
could point at a person. Memory is flat in the number of clients: every figure is a
running sum per cell.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from scipy.stats import t as student_t
from sqlalchemy import and_, case, func, or_, select

from avain.core.models import (
    AccountRow,
    ClientRow,
    ConsentRow,
    ProposalRow,
    SurveyScoreRow,
    TimeLogRow,
    TransferRow,
)
from avain.core.services import messages, pilots
from avain.core.services.common import check_actor
from avain.core.services.evaluation import pilot_instruments, registry
from avain.core.uow import UnitOfWork

MIN_CELL = 5
ARMS = ("hb", "control")


class Acc:
    """A running mean, standard deviation and 95 % confidence interval."""

    __slots__ = ("n", "total", "squares")

    def __init__(self) -> None:
        self.n, self.total, self.squares = 0, 0.0, 0.0

    def add(self, x: float, n: int = 1, squares: float | None = None) -> None:
        self.n += n
        self.total += x
        self.squares += x * x if squares is None else squares

    def figures(self, digits: int = 2) -> dict[str, Any]:
        n = self.n
        if n < MIN_CELL:
            return {"n": n if n == 0 else None, "mean": None, "ci95": None, "sd": None, "suppressed": n > 0}
        mean = self.total / n
        var = max(0.0, (self.squares - n * mean * mean) / (n - 1))
        sd = math.sqrt(var)
        half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        return {"n": n, "mean": round(mean, digits), "ci95": [round(mean - half, digits), round(mean + half, digits)],
                "sd": round(sd, digits), "suppressed": False}


def eligible(today: dt.date):
    """Codes of the clients whose consent to the evaluation is in force on ``today``."""
    return select(ConsentRow.client_code).where(
        ConsentRow.purpose == "evaluation", ConsentRow.given_on <= today,
        or_(ConsentRow.withdrawn_on.is_(None), ConsentRow.withdrawn_on > today))


def _cells(pilot: str, group: str, control: bool) -> Iterable[tuple[str, str, str]]:
    arm = "control" if control else "hb"
    yield pilot, group, arm
    yield pilot, "*", arm


def compute(uow: UnitOfWork, pilot_ids: list[str], *, today: dt.date | None = None) -> dict[str, Any]:
    """Every figure of the report for ``pilot_ids``, as a JSON-ready dict."""
    check_actor(uow, "eval.report")
    today = today or dt.date.today()
    conn = uow.core_connection()
    c = ClientRow.__table__.c
    elig = eligible(today)
    scope = and_(c.pilot_id.in_(pilot_ids), c.code.in_(elig))
    known = registry(uow)
    settings = {pid: pilots.get(uow, pid) for pid in pilot_ids}

    # clients per cell
    counts: dict[tuple[str, str, str], int] = {}
    for pid, group, control, n in conn.execute(select(c.pilot_id, c.group_id, c.control, func.count())
                                               .where(scope).group_by(c.pilot_id, c.group_id, c.control)):
        for cell in _cells(pid, group, control):
            counts[cell] = counts.get(cell, 0) + n

    # change from start to end, per instrument and scale
    start, end = SurveyScoreRow.__table__.alias("start"), SurveyScoreRow.__table__.alias("finish")
    diff = end.c.value - start.c.value
    sv, ev = start.c.value, end.c.value
    stmt = (select(c.pilot_id, c.group_id, c.control, start.c.instrument, start.c.scale, func.count(),
                   func.sum(diff), func.sum(diff * diff), func.sum(sv), func.sum(sv * sv), func.sum(ev),
                   func.sum(ev * ev))
            .select_from(start.join(end, and_(end.c.client_code == start.c.client_code,
                                              end.c.instrument == start.c.instrument,
                                              end.c.scale == start.c.scale, end.c.point == "end"))
                         .join(ClientRow, c.code == start.c.client_code))
            .where(start.c.point == "start", scope)
            .group_by(c.pilot_id, c.group_id, c.control, start.c.instrument, start.c.scale))
    change: dict[tuple, dict[str, Acc]] = {}
    for pid, group, control, inst, scale, n, d, d2, s, s2, e, e2 in conn.execute(stmt):
        for cell in _cells(pid, group, control):
            acc = change.setdefault((*cell, inst, scale), {"change": Acc(), "start": Acc(), "end": Acc()})
            acc["change"].add(d, n, d2)
            acc["start"].add(s, n, s2)
            acc["end"].add(e, n, e2)

    # per-client costs, time, budget and proposals, streamed
    a, tl, pr = AccountRow.__table__.c, TimeLogRow.__table__.c, ProposalRow.__table__.c
    spent, granted = ledger_totals()
    minutes = lambda who: func.sum(case((tl.who == who, tl.minutes), else_=0))  # noqa: E731
    costs = lambda who: func.sum(case((tl.who == who, tl.cost), else_=0))  # noqa: E731
    time = (select(tl.client_code, minutes("worker").label("worker_min"), minutes("assistant").label("assistant_min"),
                   costs("assistant").label("assistant_cost"), costs("services").label("services_cost"),
                   minutes("client").label("client_min"))
            .group_by(tl.client_code).subquery())
    props = (select(pr.client_code, func.sum(case((pr.status == "approved", 1), else_=0)).label("approved"),
                    func.sum(case((pr.status == "rejected", 1), else_=0)).label("rejected"))
             .group_by(pr.client_code).subquery())
    per_client = (select(c.pilot_id, c.group_id, c.control, func.coalesce(spent.c.cents, 0),
                         func.coalesce(granted.c.cents, 0), func.coalesce(time.c.worker_min, 0),
                         func.coalesce(time.c.assistant_min, 0), func.coalesce(time.c.assistant_cost, 0),
                         func.coalesce(time.c.services_cost, 0), func.coalesce(time.c.client_min, 0),
                         func.coalesce(props.c.approved, 0), func.coalesce(props.c.rejected, 0))
                  .select_from(ClientRow.__table__
                               .outerjoin(AccountRow, and_(a.pilot_id == c.pilot_id, a.kind == "budget",
                                                           a.owner == c.code))
                               .outerjoin(spent, spent.c.account == a.id).outerjoin(granted, granted.c.account == a.id)
                               .outerjoin(time, time.c.client_code == c.code)
                               .outerjoin(props, props.c.client_code == c.code))
                  .where(scope))
    cost_cells: dict[tuple, dict[str, Acc]] = {}
    proposal_cells: dict[tuple, list[int]] = {}
    rates = {pid: (p.raw.get("evaluation", {}).get("worker_hourly_cost", 0),
                   p.raw.get("evaluation", {}).get("assistant_hourly_cost", 0)) for pid, p in settings.items()}
    for pid, group, control, *sums in conn.execute(per_client).yield_per(5000):
        # integer sums (PostgreSQL gives numeric sums of bigint as Decimal)
        sp, gr, wmin, amin, acost, scost, cmin, approved, rejected = map(int, sums)
        wrate, arate = rates[pid]
        worker_cost = wmin * wrate / 60
        assistant = amin * arate / 60 + acost
        total = sp + worker_cost + assistant + scost
        for cell in _cells(pid, group, control):
            acc = cost_cells.setdefault(cell, {k: Acc() for k in (
                "total", "services", "worker", "assistant", "worker_minutes", "client_minutes", "budget_use")})
            acc["total"].add(total / 100)
            acc["services"].add((sp + scost) / 100)
            acc["worker"].add(worker_cost / 100)
            acc["assistant"].add(assistant / 100)
            acc["worker_minutes"].add(float(wmin))
            acc["client_minutes"].add(float(cmin))
            if not control and gr:
                acc["budget_use"].add(sp / gr)
            counts_pr = proposal_cells.setdefault(cell, [0, 0])
            counts_pr[0] += approved
            counts_pr[1] += rejected

    report_pilots = []
    for pid in pilot_ids:
        pilot = settings[pid]
        groups = ["*"] + [g.id for g in pilot.groups]
        cells = []
        for group in groups:
            for arm in ARMS:
                n = counts.get((pid, group, arm), 0)
                cost = cost_cells.get((pid, group, arm), {})
                suppressed = 0 < n < MIN_CELL
                pr_counts = proposal_cells.get((pid, group, arm), [0, 0])
                cells.append({
                    "group": group, "arm": arm, "clients": None if suppressed else n, "suppressed": suppressed,
                    "cost_per_client_eur": _fig(cost, "total"),
                    "cost_parts_eur": {k: _fig(cost, k)["mean"] for k in ("services", "worker", "assistant")},
                    "worker_minutes_per_client": _fig(cost, "worker_minutes", 1),
                    "client_minutes_per_client": _fig(cost, "client_minutes", 1),
                    "budget_use_share": _fig(cost, "budget_use", 3) if arm == "hb" else None,
                    "proposals": ({"approved": None, "rejected": None} if suppressed or n == 0 or arm == "control"
                                  else {"approved": pr_counts[0], "rejected": pr_counts[1]}),
                })
        outcomes = []
        for name in pilot_instruments(pilot):
            inst = known.get(name)
            if inst is None:
                continue
            for scale in inst.scales:
                for group in groups:
                    row = {"instrument": name, "version": inst.version, "provisional": inst.provisional,
                           "scale": scale, "group": group}
                    for arm in ARMS:
                        acc = change.get((pid, group, arm, name, scale))
                        row[arm] = {k: v.figures() for k, v in acc.items()} if acc else {
                            "change": Acc().figures(), "start": Acc().figures(), "end": Acc().figures()}
                    hb, ctl = row["hb"]["change"], row["control"]["change"]
                    row["difference"] = (round(hb["mean"] - ctl["mean"], 2)
                                         if hb["mean"] is not None and ctl["mean"] is not None else None)
                    outcomes.append(row)
        report_pilots.append({"pilot": pid, "name": pilot.name, "groups": groups[1:], "cells": cells,
                              "outcomes": outcomes,
                              "cost_effectiveness": _cost_effectiveness(cells, outcomes, groups),
                              "dialogue": _dialogue(uow, pid)})
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "as_of": today.isoformat(),
            "min_cell": MIN_CELL, "pilots": report_pilots,
            "note": f"Cells with fewer than {MIN_CELL} clients are suppressed. Changes are end minus start of each "
                    "client measured at both; confidence intervals are 95 % (Student's t). Only clients whose "
                    "consent to the evaluation is in force are counted."}


def ledger_totals():
    """Subqueries of each budget account's spending (posted commitments and rail charges)
    and of what it was granted (allocations and carried-over money), in cents."""
    tr = TransferRow.__table__.c
    spent = (select(tr.debit_account_id.label("account"), func.sum(tr.amount).label("cents"))
             .where(tr.kind.in_(("post", "charge"))).group_by(tr.debit_account_id).subquery())
    granted = (select(tr.credit_account_id.label("account"), func.sum(tr.amount).label("cents"))
               .where(tr.kind.in_(("allocation", "carry-over"))).group_by(tr.credit_account_id).subquery())
    return spent, granted


def _fig(cost: dict[str, Acc], key: str, digits: int = 2) -> dict[str, Any]:
    return cost[key].figures(digits) if key in cost else Acc().figures()


def _cost_effectiveness(cells: list[dict], outcomes: list[dict], groups: list[str]) -> list[dict[str, Any]]:
    """Per group and scale: the difference in mean cost per client (HB minus control)
    against the difference in mean change of the scale: euros per scale point."""
    by = {(c["group"], c["arm"]): c for c in cells}
    out = []
    for row in outcomes:
        hb_cost = by[(row["group"], "hb")]["cost_per_client_eur"]["mean"]
        ctl_cost = by[(row["group"], "control")]["cost_per_client_eur"]["mean"]
        d_cost = round(hb_cost - ctl_cost, 2) if hb_cost is not None and ctl_cost is not None else None
        d_effect = row["difference"]
        ratio = round(d_cost / d_effect, 2) if d_cost is not None and d_effect not in (None, 0) else None
        out.append({"instrument": row["instrument"], "scale": row["scale"], "group": row["group"],
                    "cost_difference_eur": d_cost, "effect_difference": d_effect, "eur_per_scale_point": ratio,
                    "suppressed": d_cost is None or d_effect is None})
    return out


def _dialogue(uow: UnitOfWork, pilot_id: str) -> dict[str, Any]:
    """The dialogue's response times for the pilot (no message is read)."""
    total = messages.stats(uow, pilot_id=pilot_id)["total"]
    return {k: total[k] for k in ("questions", "share_by_next_working_day", "median_hours_to_answer")}
