"""The ePassi payment backend: load each month's budgets to the clients' wallets, post the
wallet's charges to the ledger, and list every difference between the two.

Everything avain knows goes through its services (``app.run``/``app.read``); everything
ePassi knows goes through :class:`~.client.EpassiClient`. A report is fetched whole
before anything is posted, and posted in one transaction, so a service that fails part
way posts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from avain.core import auth
from avain.core.app import App
from avain.core.auth import Actor
from avain.core.domain import Allocation, Money, PaymentBackend, Period, Pilot
from avain.core.errors import AvainError, PermissionDenied, Refused
from avain.core.services import budget, payments, people, statements
from avain.core.uow import UnitOfWork

from . import reconcile as compare
from . import report
from .client import EpassiClient, ServiceUnavailable
from .report import WalletTransaction
from .settings import BACKEND, Settings

LOAD_PURPOSE = "ePassi wallet load"

#: Who reads the clients' phone numbers when a month is loaded. ``load_period`` is not
#: told who opened the month, and finance — who loads budgets — may not read identities
#: (``client.identify`` in core/auth.py), so the read is the organiser's (admin), logged
#: with ``LOAD_PURPOSE`` for every client.
IDENTITY_READER = Actor("admin")

#: Who reads the ledger for a reconciliation called through the backend record.
LEDGER_READER = Actor("finance")


def connect(pilot: Pilot) -> tuple[Settings, EpassiClient]:
    settings = Settings.of(pilot)
    return settings, EpassiClient(settings.url, timeout=settings.timeout_seconds)


# --- loading a month --------------------------------------------------------------------


def rest_policy(app: App, pilot: Pilot, period: Period) -> str:
    """What the wallet does with the previous month's rest when ``period`` is loaded: the
    pilot's period-end policy for that month (lapse: withdraw it; carry-over: keep it as
    part of the new month's amount, which then includes what the ledger carried in)."""
    policy = app.pm.hook.avain_period_end_policy(pilot=pilot, period=period.previous())
    return "keep" if policy.action == "carry-over" else "withdraw"


def _phones(uow: UnitOfWork, codes: list[str]) -> dict[str, str | None]:
    return {code: payments.client_phone(uow, code, purpose=LOAD_PURPOSE) for code in codes}


def load_period(app: App, pilot: Pilot, period: Period, allocations: list[Allocation]) -> dict[str, Any]:
    """Put each client's budget for ``period`` on their wallet (by phone number).
    Idempotent: a wallet that holds the month already is left as it is. Clients without a
    phone number, and wallets the service refuses, are named in one Refused after the
    others are loaded."""
    settings, client = connect(pilot)
    if not allocations:
        return {"loaded": 0, "unchanged": 0}
    client.health()  # a service that is down costs no identity reads
    phones = app.run(IDENTITY_READER, _phones, [a.client_code for a in allocations])
    rest = rest_policy(app, pilot, period)
    loaded = unchanged = 0
    problems: list[str] = []
    for a in allocations:
        phone = phones.get(a.client_code)
        if phone is None:
            problems.append(f"{a.client_code} has no phone number")
            continue
        try:
            result = client.load_wallet(phone, client_ref=a.client_code, period=str(period),
                                        amount=a.amount.cents, rest=rest,
                                        identity_check_required=settings.identity_check_required)
        except ServiceUnavailable as exc:
            raise ServiceUnavailable(
                f"{exc} ({loaded + unchanged} of {len(allocations)} wallets loaded; the budgets are "
                f"allocated in avain: run `avain budget open-period` again to load the rest)") from exc
        except Refused as exc:
            problems.append(f"{a.client_code}: {str(exc).removeprefix('ePassi refused: ')}")
            continue
        if result.get("changed"):
            loaded += 1
        else:
            unchanged += 1
    if problems:
        raise Refused(f"ePassi: {len(problems)} of {len(allocations)} wallets not loaded for {period} "
                      f"({'; '.join(problems)}); the others are loaded; fix these and run "
                      "`avain budget open-period` again", problems)
    return {"loaded": loaded, "unchanged": unchanged, "rest": rest}


# --- importing transactions -------------------------------------------------------------


def import_file(app: App, actor: Actor, pilot: Pilot, path: str | Path,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Post the charges and cancellations of a report file the service exported."""
    Settings.of(pilot)
    rows, rejected = report.read_file(path)
    return app.run(actor, post_report, pilot.id, rows, rejected, source=str(path), progress=progress)


def import_period(app: App, actor: Actor, pilot: Pilot, period: Period,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Fetch the month's whole report from the service, then post it."""
    _, client = connect(pilot)
    rows, rejected = report.from_service(client.transactions(str(period)))
    return app.run(actor, post_report, pilot.id, rows, rejected, source=f"{client.url} {period}",
                   progress=progress)


def post_report(uow: UnitOfWork, pilot_id: str, rows: list[WalletTransaction],
                rejected: list[dict[str, str]], *, source: str,
                progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Each charge becomes a posted ``charge`` transfer (once per transaction id), each
    cancellation its reversal. A row the ledger refuses (unknown provider, not enough
    budget, a closed month) is named in ``rejected`` and the others go on. The charges
    between two cancellations are posted together (``payments.record_charges``).
    ``progress(done, total)`` as the rows go."""
    auth.require(uow.actor, "invoice.record")
    mine = {c["code"] for c in people.list_clients(uow, pilot_id=pilot_id, include_ended=True)}
    rejected = list(rejected)
    skipped: list[dict[str, str]] = []
    counts = {"charges": 0, "cancellations": 0, "replayed": 0}
    # In the order they happened: a wallet spends money a cancellation gave back, and the
    # ledger must see the cancellation before that charge (ties keep the report's order).
    ledger_rows = sorted((r for r in rows if r.type in ("charge", "cancel")), key=lambda r: r.timestamp)
    run: list[WalletTransaction] = []  # charges not yet posted, in order

    def post_run() -> None:
        if not run:
            return
        done = payments.record_charges(
            uow, backend=BACKEND, pilot_id=pilot_id, external_ids=[r.id for r in run],
            clients=[r.client_ref for r in run], providers=[r.provider for r in run],
            amounts=[r.amount for r in run], days=[r.day for r in run],
            memos=[f"ePassi charge {r.id} by {r.provider} on {r.day.isoformat()}" for r in run])
        counts["charges"] += done.posted
        counts["replayed"] += done.unchanged
        rejected.extend({"where": run[x.index].where, "reason": x.reason} for x in done.refused)
        run.clear()

    for done_rows, r in enumerate(ledger_rows):
        if progress:
            progress(done_rows, len(ledger_rows))
        if r.client_ref not in mine:
            skipped.append({"where": r.where, "reason": f"{r.client_ref} is not a client of {pilot_id}"})
            continue
        if r.type == "charge":
            run.append(r)
            continue
        post_run()
        try:
            with uow.session.begin_nested():
                done = payments.cancel_charge(uow, backend=BACKEND, external_id=r.cancels,
                                              reason=f"cancelled in ePassi on {r.day.isoformat()} ({r.id})")
        except PermissionDenied:
            raise
        except AvainError as exc:
            rejected.append({"where": r.where, "reason": str(exc)})
            continue
        counts["replayed" if done["replayed"] else "cancellations"] += 1
    post_run()
    return {"source": source, "pilot": pilot_id, **counts, "ignored": len(rows) - len(ledger_rows),
            "skipped": skipped, "rejected": rejected}


# --- reconciliation ---------------------------------------------------------------------


def _ledger_side(uow: UnitOfWork, pilot_id: str, period: Period) -> dict[str, Any]:
    clients = {c["code"] for c in people.list_clients(uow, pilot_id=pilot_id, include_ended=True)}
    allocations = {a.client_code: a.amount.cents for a in payments.period_allocations(uow, pilot_id, period)}
    available = None
    if budget.period_status(uow, pilot_id, period) == "open":
        available = {code: statements.balance(uow, code)["available"] for code in sorted(clients)}
    return {"clients": clients, "allocations": allocations, "available": available,
            "charges": payments.ledger_charges(uow, backend=BACKEND, pilot_id=pilot_id, period=period)}


def reconcile(app: App, pilot: Pilot, period: Period, *, actor: Actor = LEDGER_READER) -> list[dict[str, Any]]:
    """Every difference between the wallets and the ledger for ``period`` (empty when in
    step): charges missing on either side, amounts, clients or providers that differ,
    cancellations on one side only, months not loaded, and — while the month is open —
    wallet balances against what the ledger has available."""
    _, client = connect(pilot)
    transactions = client.transactions(str(period))
    wallets = client.wallets()
    side = app.read(actor, _ledger_side, pilot.id, period)
    rows, unreadable = report.from_service(transactions)
    mine = side["clients"]
    return compare.differences(period, wallet_rows=[r for r in rows if r.client_ref in mine],
                               unreadable=unreadable, wallets=[w for w in wallets if w["client_ref"] in mine],
                               ledger_charges=side["charges"], allocations=side["allocations"],
                               available=side["available"])


# --- a provider's side, for demos and operators -----------------------------------------


def charge(pilot: Pilot, *, phone: str, provider: str, amount: Money, identity_checked: bool) -> dict[str, Any]:
    _, client = connect(pilot)
    return client.charge(phone=phone, provider=provider, amount=amount.cents, identity_checked=identity_checked)


def cancel(pilot: Pilot, transaction: str) -> dict[str, Any]:
    _, client = connect(pilot)
    return client.cancel(transaction)


def payment_backend() -> PaymentBackend:
    from .demo import simulation  # the demo module plays the month through this one

    return PaymentBackend(
        BACKEND, "ePassi e-wallet: one month's budget on the client's wallet, charged by providers "
                 "by phone number; charges imported to the ledger and reconciled",
        {"load_period", "charges", "import_statements", "reconcile"},
        load_period=load_period, import_file=import_file, reconcile=reconcile, simulator=simulation)
