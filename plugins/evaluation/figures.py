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

from sqlalchemy import and_, case, func, select

from avain.core.models import (
    AccountRow,
    ClientRow,
    ProposalRow,
    SurveyScoreRow,
    TimeLogRow,
    TransferRow,
)
from avain.core.services import consent, messages, pilots
from avain.core.services.common import actor_pilot, check_actor, in_pilot
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

    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def figures(self, digits: int = 2, *, hide: bool = False) -> dict[str, Any]:
        n = self.n
        if n < MIN_CELL or hide:
            return {"n": n if n == 0 else None, "mean": None, "ci95": None, "sd": None, "suppressed": n > 0}
        mean = self.total / n
        var = max(0.0, (self.squares - n * mean * mean) / (n - 1))
        sd = math.sqrt(var)
        from scipy.stats import t as student_t  # ~1 s to import: only when a figure is computed

        half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        return {"n": n, "mean": round(mean, digits), "ci95": [round(mean - half, digits), round(mean + half, digits)],
                "sd": round(sd, digits), "suppressed": False}


def reportable_pilots(uow: UnitOfWork) -> list[str]:
    """The pilots the actor may report on: an evaluator's own pilot, or every pilot."""
    check_actor(uow, "eval.report")
    own = actor_pilot(uow)
    return [own] if own is not None else [p["id"] for p in pilots.list_pilots(uow)]


def eligible(today: dt.date):
    """Codes of the clients whose consent to the evaluation is in force on ``today``."""
    return consent.consenting("evaluation", today)


def _cells(pilot: str, group: str, control: bool) -> Iterable[tuple[str, str, str]]:
    arm = "control" if control else "hb"
    yield pilot, group, arm
    yield pilot, "*", arm


def compute(uow: UnitOfWork, pilot_ids: list[str], *, today: dt.date | None = None) -> dict[str, Any]:
    """Every figure of the report for ``pilot_ids``, as a JSON-ready dict."""
    check_actor(uow, "eval.report")
    for pid in pilot_ids:
        in_pilot(uow, pid, "eval.report")
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
    totals = client_totals(scope).subquery()
    pr = ProposalRow.__table__.c
    props = (select(pr.client_code, func.sum(case((pr.status == "approved", 1), else_=0)).label("approved"),
                    func.sum(case((pr.status == "rejected", 1), else_=0)).label("rejected"))
             .group_by(pr.client_code).subquery())
    t = totals.c
    per_client = (select(t.pilot_id, t.group_id, t.control, t.spent, t.granted, t.worker_min, t.assistant_min,
                         t.assistant_cost, t.services_cost, t.client_min, func.coalesce(props.c.approved, 0),
                         func.coalesce(props.c.rejected, 0))
                  .select_from(totals.outerjoin(props, props.c.client_code == t.code)))
    cost_cells: dict[tuple, dict[str, Acc]] = {}
    proposal_cells: dict[tuple, list[int]] = {}
    rates = {pid: (p.raw.get("evaluation", {}).get("worker_hourly_cost", 0),
                   p.raw.get("evaluation", {}).get("assistant_hourly_cost", 0)) for pid, p in settings.items()}
    # Streamed in chunks where the connection allows it: a PostgreSQL server-side cursor
    # needs a transaction (`avain eval report` gives it one); a read-only unit on
    # PostgreSQL runs in autocommit and takes the rows at once.
    streamable = conn.dialect.name != "postgresql" or not conn.get_execution_options().get("avain_readonly")
    if streamable:
        per_client = per_client.execution_options(stream_results=True, yield_per=5000)
    for pid, group, control, *sums in conn.execute(per_client):
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

    # levels at the end, for the instruments answered only then (the satisfaction survey)
    stmt = (select(c.pilot_id, c.group_id, c.control, end.c.instrument, end.c.scale, func.count(),
                   func.sum(ev), func.sum(ev * ev))
            .select_from(end.join(ClientRow, c.code == end.c.client_code))
            .where(end.c.point == "end", scope)
            .group_by(c.pilot_id, c.group_id, c.control, end.c.instrument, end.c.scale))
    levels: dict[tuple, Acc] = {}
    for pid, group, control, inst, scale, n, e, e2 in conn.execute(stmt):
        for cell in _cells(pid, group, control):
            levels.setdefault((*cell, inst, scale), Acc()).add(e, n, e2)

    report_pilots = []
    for pid in pilot_ids:
        pilot = settings[pid]
        groups = ["*"] + [g.id for g in pilot.groups]
        hidden = {arm: hidden_groups({g: counts.get((pid, g, arm), 0) for g in groups[1:]}) for arm in ARMS}
        cells = []
        for group in groups:
            for arm in ARMS:
                n = counts.get((pid, group, arm), 0)
                cost = cost_cells.get((pid, group, arm), {})
                suppressed = 0 < n < MIN_CELL or group in hidden[arm]
                pr_counts = proposal_cells.get((pid, group, arm), [0, 0])
                cells.append({
                    "group": group, "arm": arm, "clients": None if suppressed else n, "suppressed": suppressed,
                    "cost_per_client_eur": _fig(cost, "total", hide=suppressed),
                    "cost_parts_eur": {k: _fig(cost, k, hide=suppressed)["mean"]
                                       for k in ("services", "worker", "assistant")},
                    "worker_minutes_per_client": _fig(cost, "worker_minutes", 1, hide=suppressed),
                    "client_minutes_per_client": _fig(cost, "client_minutes", 1, hide=suppressed),
                    "budget_use_share": _fig(cost, "budget_use", 3, hide=suppressed) if arm == "hb" else None,
                    "proposals": ({"approved": None, "rejected": None} if suppressed or n == 0 or arm == "control"
                                  else {"approved": pr_counts[0], "rejected": pr_counts[1]}),
                })
        used = pilot_instruments(pilot)
        outcomes, end_levels = [], []
        for name in used:
            inst = known.get(name)
            if inst is None or "start" not in inst.points or "end" not in inst.points:
                continue
            provisional_scales = set(inst.schema["x-avain"].get("provisional_scales", ()))
            for scale in inst.scales:
                accs = {(g, arm): change.get((pid, g, arm, name, scale)) for g in groups for arm in ARMS}
                visible = _visible({key: a["change"] if a else None for key, a in accs.items()}, groups)
                for group in groups:
                    row = {"instrument": name, "version": inst.version,
                           "provisional": inst.provisional or scale in provisional_scales,
                           "scale": scale, "group": group}
                    for arm in ARMS:
                        acc, hide = accs[(group, arm)], visible[(group, arm)] is None
                        row[arm] = ({k: v.figures(hide=hide) for k, v in acc.items()} if acc
                                    else {"change": Acc().figures(), "start": Acc().figures(), "end": Acc().figures()})
                    row["difference"] = _difference(group, groups, visible)
                    outcomes.append(row)
        for family, variants in _families([known[n] for n in used if n in known and known[n].points == ("end",)]):
            for scale in sorted({s for v in variants.values() for s in v.scales}):
                accs = {(g, arm): levels.get((pid, g, arm, variants[arm].name, scale)) if arm in variants else None
                        for g in groups for arm in ARMS}
                visible = _visible(accs, groups)
                for group in groups:
                    end_levels.append({
                        "family": family, "scale": scale, "group": group,
                        **{arm: (accs[(group, arm)].figures(hide=visible[(group, arm)] is None)
                                 if accs[(group, arm)] else Acc().figures()) for arm in ARMS},
                        "difference": _difference(group, groups, visible)})
        report_pilots.append({"pilot": pid, "name": pilot.name, "groups": groups[1:], "cells": cells,
                              "outcomes": outcomes, "end_levels": end_levels,
                              "cost_effectiveness": _cost_effectiveness(cells, outcomes, groups, cost_cells, pid),
                              "dialogue": _dialogue(uow, pid, today),
                              "unknown_instruments": [n for n in used if n not in known]})
    return {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "as_of": today.isoformat(),
            "min_cell": MIN_CELL, "pilots": report_pilots,
            "note": f"Cells with fewer than {MIN_CELL} clients are suppressed, and so is the next smallest group "
                    "where one suppressed group could otherwise be worked out from the total. Changes are end minus "
                    "start of each client measured at both; confidence intervals are 95 % (Student's t). HB is "
                    "compared with the controls of the same group; across groups, the difference is the average of "
                    "the groups' differences weighted by their clients. Only clients whose consent to the "
                    "evaluation is in force are counted."}


def hidden_groups(ns: dict[str, int]) -> set[str]:
    """The groups whose figures are withheld: those with fewer than ``MIN_CELL`` clients
    (but some), and then the smallest shown groups until the withheld ones hold at least
    ``MIN_CELL`` together — otherwise the total of all groups minus the shown groups would
    give a small group's figures back (secondary suppression)."""
    hidden = {g for g, n in ns.items() if 0 < n < MIN_CELL}
    shown = sorted((n, g) for g, n in ns.items() if n >= MIN_CELL)
    while hidden and sum(ns[g] for g in hidden) < MIN_CELL and shown:
        hidden.add(shown.pop(0)[1])
    return hidden


def _visible(accs: dict[tuple[str, str], Acc | None], groups: list[str]) -> dict[tuple[str, str], Acc | None]:
    """``accs`` (by group and arm) with every withheld figure replaced by None: fewer than
    ``MIN_CELL`` clients, or hidden so that no small group can be worked out from the total."""
    hidden = {arm: hidden_groups({g: (accs[(g, arm)].n if accs[(g, arm)] else 0) for g in groups[1:]})
              for arm in ARMS}
    return {key: a if a is not None and a.n >= MIN_CELL and key[0] not in hidden[key[1]] else None
            for key, a in accs.items()}


def _difference(group: str, groups: list[str], visible: dict[tuple[str, str], Acc | None]) -> float | None:
    """HB minus control in a group; across groups (``*``), the groups' differences weighted
    by their clients, over the groups where both arms are shown (like with like)."""
    members = groups[1:] if group == "*" else [group]
    total = weight = 0.0
    for g in members:
        hb, ctl = visible.get((g, "hb")), visible.get((g, "control"))
        if hb is None or ctl is None:
            continue
        w = hb.n + ctl.n
        total += w * (hb.mean() - ctl.mean())
        weight += w
    return round(total / weight, 2) if weight else None


def _families(instruments) -> list[tuple[str, dict[str, Any]]]:
    """End-only instruments paired by ``x-avain.family``: the HB and control variants."""
    out: dict[str, dict[str, Any]] = {}
    for inst in instruments:
        family = inst.schema["x-avain"].get("family", inst.name)
        arms = ARMS if inst.respondents == "all" else ((inst.respondents,) if inst.respondents in ARMS else ())
        for arm in arms:
            out.setdefault(family, {})[arm] = inst
    return sorted(out.items())


def ledger_totals():
    """Subqueries of each budget account's spending (posted commitments and rail charges)
    and of what it was granted (the months' allocations), in cents, each net of the
    corrections that reversed them. Money carried over from a month is not granted again."""
    tr = TransferRow.__table__.c
    orig = TransferRow.__table__.alias("original")

    def net(kinds: tuple[str, ...], side: str):
        own = (select(getattr(tr, f"{side}_account_id").label("account"), tr.amount.label("cents"))
               .where(tr.kind.in_(kinds)))
        other = "credit" if side == "debit" else "debit"
        undone = (select(getattr(tr, f"{other}_account_id").label("account"), (-tr.amount).label("cents"))
                  .select_from(TransferRow.__table__.join(orig, orig.c.id == tr.reverses))
                  .where(tr.kind == "correction", orig.c.kind.in_(kinds)))
        both = own.union_all(undone).subquery()
        return select(both.c.account, func.sum(both.c.cents).label("cents")).group_by(both.c.account).subquery()

    return net(("post", "charge"), "debit"), net(("allocation",), "credit")


def client_totals(scope):
    """Per client in ``scope`` (a WHERE clause on the client table): code, pilot, group and
    arm, what the budget was granted and spent (cents, from the ledger), and the time
    log's totals: worker, assistant and client minutes, assistant and usual-services costs."""
    c, a, tl = ClientRow.__table__.c, AccountRow.__table__.c, TimeLogRow.__table__.c
    spent, granted = ledger_totals()

    def total(column, who: str, label: str):
        return func.sum(case((tl.who == who, column), else_=0)).label(label)

    time = (select(tl.client_code, total(tl.minutes, "worker", "worker_min"),
                   total(tl.minutes, "assistant", "assistant_min"), total(tl.cost, "assistant", "assistant_cost"),
                   total(tl.cost, "services", "services_cost"), total(tl.minutes, "client", "client_min"))
            .group_by(tl.client_code).subquery())
    zero = lambda column, label: func.coalesce(column, 0).label(label)  # noqa: E731
    return (select(c.code, c.pilot_id, c.group_id, c.control, zero(spent.c.cents, "spent"),
                   zero(granted.c.cents, "granted"),
                   *(zero(time.c[k], k) for k in ("worker_min", "assistant_min", "assistant_cost", "services_cost",
                                                  "client_min")))
            .select_from(ClientRow.__table__
                         .outerjoin(AccountRow, and_(a.pilot_id == c.pilot_id, a.kind == "budget", a.owner == c.code))
                         .outerjoin(spent, spent.c.account == a.id).outerjoin(granted, granted.c.account == a.id)
                         .outerjoin(time, time.c.client_code == c.code))
            .where(scope))


def _fig(cost: dict[str, Acc], key: str, digits: int = 2, *, hide: bool = False) -> dict[str, Any]:
    return cost[key].figures(digits, hide=hide) if key in cost else Acc().figures()


QUADRANTS = {(True, True): "HB better and dearer", (True, False): "HB better and not dearer (dominant)",
             (False, True): "HB not better and dearer (dominated)", (False, False): "HB not better and not dearer"}


def _cost_effectiveness(cells: list[dict], outcomes: list[dict], groups: list[str], cost_cells: dict,
                        pid: str) -> list[dict[str, Any]]:
    """Per group and scale: the difference in mean cost per client (HB minus control, like
    with like) against the difference in mean change of the scale. Where HB is better and
    dearer, the ratio is euros per scale point; otherwise the quadrant says it all, and a
    negative ratio (which could mean either cheaper-and-better or dearer-and-worse) is
    never given."""
    shown = {(c["group"], c["arm"]): not c["suppressed"] and c["cost_per_client_eur"]["mean"] is not None
             for c in cells}
    costs = {key: cost_cells[(pid, *key)]["total"] for key, ok in shown.items() if ok}
    d_cost_of = {g: _difference(g, groups, costs) for g in groups}
    out = []
    for row in outcomes:
        d_cost, d_effect = d_cost_of[row["group"]], row["difference"]
        if d_cost is None or d_effect is None:
            out.append({"instrument": row["instrument"], "scale": row["scale"], "group": row["group"],
                        "cost_difference_eur": None, "effect_difference": None, "quadrant": None,
                        "eur_per_scale_point": None, "suppressed": True})
            continue
        better, dearer = d_effect > 0, d_cost > 0
        out.append({"instrument": row["instrument"], "scale": row["scale"], "group": row["group"],
                    "cost_difference_eur": d_cost, "effect_difference": d_effect,
                    "quadrant": QUADRANTS[(better, dearer)],
                    "eur_per_scale_point": round(d_cost / d_effect, 2) if better and dearer else None,
                    "suppressed": False})
    return out


def _dialogue(uow: UnitOfWork, pilot_id: str, today: dt.date) -> dict[str, Any]:
    """The dialogue's response times for the pilot's consenting clients (no message is
    read); withheld when fewer than ``MIN_CELL`` clients asked anything."""
    total = messages.stats(uow, pilot_id=pilot_id, only=eligible(today))["total"]
    if total["clients"] < MIN_CELL:
        return {"questions": None, "share_by_next_working_day": None, "median_hours_to_answer": None,
                "suppressed": total["clients"] > 0}
    return {**{k: total[k] for k in ("questions", "share_by_next_working_day", "median_hours_to_answer")},
            "suppressed": False}
