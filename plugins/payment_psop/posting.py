"""Booked PSOP events posted as ledger charges, a chunk of events per transaction.

Each event becomes the charge ``payments.record_charge`` would post — transfer id
``psop:<event id>``, kind ``charge``, from the client's budget to the provider's payable,
in the month of the service date — so either path replays the other's work. A chunk is
posted by the core's bulk service ``payments.record_charges`` (and through it
``ledger.post_many``): a few statements per chunk, not a few per event, with the ledger's
one overspend guard, idempotency fingerprint and keyed chains.

This module adds what is PSOP's own: an event's voucher must be its client's voucher for
the month, its amount is units × unit price, and the refusals name the event.

A crash between chunks leaves whole chunks, each of which balances.
"""

from __future__ import annotations

from operator import itemgetter, mul
from typing import Any

from avain.core.domain import Pilot
from avain.core.services import payments
from avain.core.uow import UnitOfWork

from .events import Event

BACKEND = "psop"
#: Events per transaction. Each transaction has a fixed cost (its look-ups, the audit
#: event, the commit writing the touched index pages to the WAL), so bigger chunks import
#: faster; this many keep a chunk's memory at about 20 MB and SQLite's write lock held for
#: a fraction of a second at a time.
DEFAULT_CHUNK = 20_000

_EVENT = itemgetter(1)
_EVENT_ID, _VOUCHER, _CLIENT, _PROVIDER, _DAY, _UNITS, _PRICE = (itemgetter(i) for i in (0, 1, 2, 3, 4, 6, 7))


def _month(day) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def post_chunk(uow: UnitOfWork, pilot: Pilot, rows: list[tuple[int, Event]]) -> dict[str, Any]:
    """Post ``rows`` (``(line, event)``, booked events in file order) in this unit of
    work. Returns counts and the refused rows as ``(line, event id, reason)``."""
    if not rows:
        payments.record_charges(uow, backend=BACKEND, pilot_id=pilot.id, external_ids=[], clients=[],
                                providers=[], amounts=[], days=[])  # checks who may post
        return {"posted": 0, "amount": 0, "unchanged": 0, "rejected": []}
    events = list(map(_EVENT, rows))
    clients, vouchers, days = list(map(_CLIENT, events)), list(map(_VOUCHER, events)), list(map(_DAY, events))
    # A voucher is its client's for the month: checked once per distinct (client, voucher, day).
    wrong = {}
    for key in set(zip(clients, vouchers, days, strict=True)):
        code, voucher, day = key
        period = _month(day)
        if voucher != f"{pilot.code}-{period}-{code}":
            wrong[key] = f"voucher {voucher} is not {code}'s voucher for {period}"
    rejected: list[tuple[int, str, str]] = []  # (index, event id, reason)
    kept = None
    if wrong:
        kept = []
        for i, key in enumerate(zip(clients, vouchers, days, strict=True)):
            reason = wrong.get(key)
            if reason is None:
                kept.append(i)
            else:
                rejected.append((i, events[i].event_id, reason))
        events = [events[i] for i in kept]
    done = payments.record_charges(
        uow, backend=BACKEND, pilot_id=pilot.id, external_ids=list(map(_EVENT_ID, events)),
        clients=list(map(_CLIENT, events)), providers=list(map(_PROVIDER, events)),
        amounts=list(map(mul, map(_UNITS, events), map(_PRICE, events))), days=list(map(_DAY, events)))
    for r in done.refused:
        i = r.index if kept is None else kept[r.index]
        rejected.append((i, r.external_id, _reason(r)))
    rejected.sort()
    return {"posted": done.posted, "amount": done.amount, "unchanged": done.unchanged,
            "rejected": [(rows[i][0], event_id, reason) for i, event_id, reason in rejected]}


def _reason(r: payments.ChargeRefusal) -> str:
    """A refusal as the import names it: by the event."""
    if r.code == "conflict":
        return f"event {r.external_id} was posted before with other details"
    if r.code == "repeated":
        return f"event {r.external_id} appears twice with other details"
    return r.reason
