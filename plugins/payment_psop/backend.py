"""The PSOP payment backend: balance vouchers issued at period open, booked service events
imported as ledger charges, and reconciliation of the two.

* ``load_period`` (called by ``avain budget open-period`` after the month's allocation
  committed): each client's budget is split over the services of the plan in force — in
  proportion to quantity × the pilot's own-production price when the pilot has a
  ``[plugins.budget_calculator]`` section, else evenly; the parts sum to the budget to the
  cent — and issued to PSOP as the client's voucher for the month, with the providers
  approved for each service. Issuing is idempotent (PUT by voucher id).
* ``import_file`` / :func:`import_from_service`: booked events become ``charge`` transfers
  (see :mod:`.posting`), once per event id; bad rows are named with their line.
* ``reconcile``: every difference between PSOP's booked events and the ledger's charges.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from avain.core.auth import Actor
from avain.core.domain import Allocation, Money, PaymentBackend, Period, Pilot
from avain.core.errors import Conflict, NotFound, ValidationError
from avain.core.services import payments, plans, providers
from avain.core.services.common import check_actor
from avain.core.uow import UnitOfWork
from avain.plugins.budget_calculator.calculator import CARER_DAYS
from avain.plugins.budget_calculator.calculator import Settings as PriceTable

from . import events, posting
from .client import PsopClient, PsopUnavailable

NAME = posting.BACKEND
SECTION = "payment_psop"
DEFAULT_URL = "http://127.0.0.1:8766"
#: The catalogue service a plan's carer's days off are bought as.
CARER_DAY_OFF = "carer-day-off"
#: Who the backend acts as when the core calls it without a user (reading the month's
#: allocations after they committed): the organiser, as finance moves money only by name.
SYSTEM = Actor("admin")
#: At most this many rejected rows are listed (all are counted).
MAX_LISTED = 1000

CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "Where the pilot's PSOP voucher service answers.",
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^https?://[^\\s/?#]+(/[^\\s?#]*)?$",
            "description": f"Base URL of the PSOP API (default {DEFAULT_URL}, the simulator's port).",
        },
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 300,
            "description": "Seconds to wait for one answer before PSOP counts as unreachable (default 10).",
        },
    },
}


@frozen
class Settings:
    url: str = DEFAULT_URL
    timeout: float = 10.0

    @classmethod
    def of(cls, pilot: Pilot) -> Settings:
        section = pilot.sections.get(SECTION) or {}
        return cls(section.get("url", DEFAULT_URL), float(section.get("timeout_seconds", 10)))

    def client(self) -> PsopClient:
        return PsopClient(self.url, self.timeout)


def voucher_prefix(pilot: Pilot, period: Period) -> str:
    return f"{pilot.code}-{period}-"


# --- vouchers ----------------------------------------------------------------------------


def split(amount: Money, items: Sequence[tuple[str, int]],
          price: Callable[[str], int | None] | None = None) -> tuple[list[tuple[str, Money]], str]:
    """``amount`` over the services ``items`` (service, monthly quantity): in proportion to
    quantity × ``price(service)`` when every service has a price, else evenly. The parts
    sum to ``amount`` exactly. Returns the parts and how they were split, in words."""
    if not items:
        raise ValueError("no services to split a budget over")
    prices = [price(s) for s, _ in items] if price else []
    if price and all(p for p in prices):
        ratios = [q * p for (_, q), p in zip(items, prices, strict=True)]
        how = "in proportion to quantity × own-production price"
    else:
        ratios = [1] * len(items)
        missing = [s for (s, _), p in zip(items, prices, strict=False) if not p]
        how = "evenly" + (f" (no own-production price for {', '.join(missing)})" if missing else "")
    parts = amount.allocate(ratios)
    return [(s, m) for (s, _), m in zip(items, parts, strict=True)], how


def plan_items(plan: Mapping[str, Any], pilot: Pilot) -> list[tuple[str, int]]:
    """The services of a plan snapshot with monthly quantities; carer's days off (2 a
    month, 3 with round-the-clock care) as the carer-day-off service; only services the
    pilot's budgets may buy."""
    items = {i["service"]: int(i["quantity"]) for i in plan.get("items", ())}
    if plan.get("carer_days_off") and CARER_DAY_OFF not in items:
        items[CARER_DAY_OFF] = CARER_DAYS[bool(plan.get("round_the_clock"))]
    allowed = pilot.raw.get("services")
    return sorted((s, q) for s, q in items.items() if allowed is None or s in allowed)


def own_price(pilot: Pilot, day: dt.date) -> Callable[[str], int | None] | None:
    """The own-production unit price of a service on ``day`` from the pilot's budget
    calculator section; None when the pilot has none (vouchers are then split evenly)."""
    section = pilot.sections.get("budget_calculator")
    if section is None:
        return None
    table = PriceTable.from_section(section, pilot.monthly_cap)

    def price(service: str) -> int | None:
        found = table.price(service, day)
        if found is not None:
            return found.unit_price
        if service == CARER_DAY_OFF and table.carer_day_value:
            return table.carer_day_value
        return None

    return price


def approved_offers(uow: UnitOfWork, pilot_id: str, period: Period) -> dict[str, list[dict[str, str]]]:
    """For each service, the providers approved for it in the pilot during ``period``, with
    the days of the month their approval covers (a revocation ends it the day before)."""
    out: dict[str, list[dict[str, str]]] = {}
    rows = providers.approvals_between(uow, period.first_day, period.last_day, pilot_id=pilot_id)
    for a in sorted(rows, key=lambda a: (a.provider_id, a.id)):
        start = max(a.valid_from, period.first_day)
        end = min(a.valid_to, period.last_day)
        if a.revoked_on:
            end = min(end, a.revoked_on - dt.timedelta(days=1))
        if start > end:  # revoked before it began
            continue
        for service in json.loads(a.services):
            out.setdefault(service, []).append({"provider": a.provider_id, "from": start.isoformat(),
                                                "to": end.isoformat()})
    return out


def vouchers(uow: UnitOfWork, pilot: Pilot, period: Period,
             allocations: Sequence[Allocation]) -> tuple[list[tuple[str, dict]], list[dict[str, str]]]:
    """The month's vouchers as PSOP takes them, ``(voucher id, body)``, and the clients who
    get none (no plan in force), with why."""
    check_actor(uow, "budget.run")
    offers = approved_offers(uow, pilot.id, period)
    price = own_price(pilot, period.first_day)
    out, problems = [], []
    for alloc in allocations:
        code = alloc.client_code
        row = (plans.plan_in_force(uow, code, period.first_day)
               or plans.plan_in_force(uow, code, period.last_day))
        items = plan_items(plans.snapshot(row), pilot) if row is not None else []
        if not items:
            problems.append({"client": code, "problem": "no care and service plan with the pilot's services "
                                                        f"in force in {period}: no voucher issued"})
            continue
        parts, how = split(alloc.amount, items, price)
        if how.startswith("evenly (") and price is not None:
            problems.append({"client": code, "problem": f"voucher split {how}"})
        out.append((f"{voucher_prefix(pilot, period)}{code}", {
            "client": code, "period": str(period), "valid_from": period.first_day.isoformat(),
            "valid_to": period.last_day.isoformat(), "split": how,
            "lines": [{"service": s, "value": m.cents, "providers": offers.get(s, [])} for s, m in parts]}))
    return out, problems


def load_period(app, pilot: Pilot, period: Period, allocations: Sequence[Allocation]) -> dict[str, Any]:
    """Issue the month's vouchers to PSOP (the backend's ``load_period``)."""
    bodies, problems = app.run(SYSTEM, vouchers, pilot, period, list(allocations))
    client = Settings.of(pilot).client()
    counts = {"issued": 0, "updated": 0, "unchanged": 0}
    for vid, body in bodies:
        try:
            counts[client.put_voucher(vid, body)["status"]] += 1
        except Conflict as exc:
            problems.append({"client": body["client"], "problem": str(exc)})
        except PsopUnavailable as exc:
            raise PsopUnavailable(f"{exc}: {pilot.id} {period} is allocated in avain, {sum(counts.values())} of "
                                  f"{len(bodies)} vouchers were issued; run `avain budget open-period` again to "
                                  "issue the rest") from exc
    return {"url": client.url, "vouchers": len(bodies), **counts, "problems": problems}


# --- import ------------------------------------------------------------------------------


def _may_import(uow: UnitOfWork) -> None:
    check_actor(uow, "invoice.record")


def import_file(app, actor: Actor, pilot: Pilot, path: str | Path, *, period: Period | None = None,
                chunk: int = posting.DEFAULT_CHUNK,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Post a file of PSOP events (JSON lines or CSV), streamed: booked events become
    charges in chunks of ``chunk`` events, one transaction each; events already posted
    change nothing; bad rows are listed with their line and reason. With ``period``, rows
    of other months are skipped. ``progress(line, lines)`` after each chunk."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    with path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    app.run(actor, _may_import)
    summary: dict[str, Any] = {"source": str(path), "pilot": pilot.id, "period": str(period) if period else None,
                               "rows": 0, "posted": 0, "amount": 0, "unchanged": 0,
                               "skipped": {"recorded": 0, "refused": 0, "other_month": 0},
                               "rejected_count": 0, "rejected": []}
    rejected = summary["rejected"]

    def reject(line: int, event_id: str | None, reason: str) -> None:
        summary["rejected_count"] += 1
        if len(rejected) < MAX_LISTED:
            rejected.append({"where": f"line {line}", "event": event_id, "reason": reason})

    def flush(batch: list[tuple[int, events.Event]]) -> None:
        result = app.run(actor, posting.post_chunk, pilot, batch)
        if progress:
            progress(batch[-1][0], lines)
        for key in ("posted", "amount", "unchanged"):
            summary[key] += result[key]
        for line, event_id, reason in result["rejected"]:
            reject(line, event_id, reason)

    batch: list[tuple[int, events.Event]] = []
    skipped = summary["skipped"]
    rows = 0
    for rows, (line, item) in enumerate(events.read(path), start=1):  # noqa: B007 - counted
        if type(item) is events.Event and item.status == "booked":
            if period is None or (item.date.year == period.year and item.date.month == period.month):
                batch.append((line, item))
                if len(batch) >= chunk:
                    flush(batch)
                    batch = []
            else:
                skipped["other_month"] += 1
        elif isinstance(item, ValidationError):
            reject(line, None, str(item))
        else:
            skipped[item.status] += 1
    if batch:
        flush(batch)
    if progress:
        progress(lines, lines)
    summary["rows"] = rows
    summary["amount_fi"] = Money(summary["amount"]).fi()
    return summary


def import_from_service(app, actor: Actor, pilot: Pilot, period: Period, *,
                        chunk: int = posting.DEFAULT_CHUNK,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Fetch the month's booked events of the pilot's vouchers from PSOP, all of them,
    then post them. A service that goes down while they arrive posts nothing."""
    app.run(actor, _may_import)
    client = Settings.of(pilot).client()
    with tempfile.TemporaryDirectory(prefix="avain-psop-") as tmp:
        path = Path(tmp) / "events.jsonl"
        fetched = client.download_events(path, period=str(period), status="booked",
                                         prefix=voucher_prefix(pilot, period))
        summary = import_file(app, actor, pilot, path, period=period, chunk=chunk, progress=progress)
    return {**summary, "source": f"{client.url} ({pilot.id} {period})", "fetched": fetched}


# --- reconciliation ----------------------------------------------------------------------


def reconcile(app, pilot: Pilot, period: Period, *, actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """Every difference between PSOP's booked events of the month and the ledger's PSOP
    charges; empty when they are in step."""
    charges = app.run(actor, payments.ledger_charges, backend=NAME, pilot_id=pilot.id, period=period)
    posted = {c["external_id"]: c for c in charges}
    diffs: list[dict[str, Any]] = []

    def diff(event_id, client, provider, psop, avain, what):
        diffs.append({"event": event_id, "client": client, "provider": provider, "psop": psop,
                      "ledger": avain, "difference": what})

    client = Settings.of(pilot).client()
    with tempfile.TemporaryDirectory(prefix="avain-psop-") as tmp:
        path = Path(tmp) / "events.jsonl"
        client.download_events(path, period=str(period), status="booked", prefix=voucher_prefix(pilot, period))
        for line, e in events.read(path):
            if isinstance(e, ValidationError):
                diff(None, None, None, None, None, f"PSOP exported a row avain cannot read (line {line}: {e})")
                continue
            c = posted.pop(e.event_id, None)
            if c is None:
                diff(e.event_id, e.client, e.provider, e.amount, None, "booked in PSOP, not posted in avain")
            elif c["cancelled"]:
                diff(e.event_id, e.client, e.provider, e.amount, c["amount"],
                     "booked in PSOP, cancelled in avain")
            else:
                problems = []
                if c["amount"] != e.amount:
                    problems.append(f"amount {Money(e.amount).fi()} in PSOP, {Money(c['amount']).fi()} in avain")
                if c["client"] != e.client:
                    problems.append(f"client {e.client} in PSOP, {c['client']} in avain")
                if c["provider"] != e.provider:
                    problems.append(f"provider {e.provider} in PSOP, {c['provider']} in avain")
                if problems:
                    diff(e.event_id, e.client, e.provider, e.amount, c["amount"], "; ".join(problems))
    for event_id, c in sorted(posted.items()):
        if not c["cancelled"]:
            diff(event_id, c["client"], c["provider"], None, c["amount"], "posted in avain, not booked in PSOP")
    return diffs


def _simulation(workdir, period: Period):
    from .demo import simulation  # the demo plays its month through this module

    return simulation(workdir, period)


BACKEND = PaymentBackend(
    NAME,
    "PSOP balance vouchers (saldoseteli): a voucher per client and month, service events booked daily",
    {"load_period", "service_events", "reconcile"},
    load_period=load_period,
    import_file=import_file,
    reconcile=reconcile,
    simulator=_simulation,
)
