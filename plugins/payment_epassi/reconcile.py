"""Every difference between the ePassi wallets and avain's ledger for a month. Pure: the
caller fetches both sides, this compares them.

Each difference is a dict: ``kind``, ``client``, ``transaction`` (the ePassi id, when
one is concerned), ``wallet`` and ``ledger`` (cents, None when that side has nothing) and
``detail``, a sentence saying what differs and what usually fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from avain.core.domain import Money, Period

from .report import WalletTransaction

#: Kinds of difference, in the order they are listed.
KINDS = ("unreadable", "missing-in-ledger", "missing-in-wallet", "amount-differs", "client-differs",
         "provider-differs", "cancelled-in-wallet-only", "cancelled-in-ledger-only", "not-loaded",
         "load-differs", "loaded-without-budget", "balance-differs")


def _eur(cents: int | None) -> str:
    return "nothing" if cents is None else Money(cents).fi()


def _diff(kind: str, detail: str, *, client: str | None = None, transaction: str | None = None,
          wallet: int | None = None, ledger: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "client": client, "transaction": transaction, "wallet": wallet,
            "ledger": ledger, "detail": detail}


def differences(period: Period, *, wallet_rows: list[WalletTransaction], unreadable: list[dict[str, str]],
                wallets: list[Mapping[str, Any]], ledger_charges: list[Mapping[str, Any]],
                allocations: Mapping[str, int], available: Mapping[str, int] | None) -> list[dict[str, Any]]:
    """Compare one month. ``wallet_rows`` and ``wallets`` are the pilot's only;
    ``available`` is each budget's available amount in the ledger, or None when the month
    is not open (after it closed the ledger's remainder has lapsed or moved on, while the
    wallet keeps it until the next load)."""
    out = [_diff("unreadable", f"{u['where']}: {u['reason']}") for u in unreadable]
    charges = {r.id: r for r in wallet_rows if r.type == "charge"}
    cancelled = {r.cancels for r in wallet_rows if r.type == "cancel"}
    booked = {c["external_id"]: c for c in ledger_charges}
    for tx_id, r in charges.items():
        c = booked.get(tx_id)
        ref = {"client": r.client_ref, "transaction": tx_id}
        if c is None:
            out.append(_diff("missing-in-ledger", f"ePassi charge {tx_id} of {_eur(r.amount)} on {r.day} by "
                             f"{r.provider} is not in the ledger (run `avain epassi import`)",
                             wallet=r.amount, **ref))
            continue
        if c["amount"] != r.amount:
            out.append(_diff("amount-differs", f"charge {tx_id} is {_eur(r.amount)} in ePassi, "
                             f"{_eur(c['amount'])} in the ledger", wallet=r.amount, ledger=c["amount"], **ref))
        if c["client"] != r.client_ref:
            out.append(_diff("client-differs", f"charge {tx_id} is on the wallet of {r.client_ref} in ePassi, "
                             f"on the budget of {c['client']} in the ledger", **ref))
        if c["provider"] != r.provider:
            out.append(_diff("provider-differs", f"charge {tx_id} was made by {r.provider} in ePassi, "
                             f"by {c['provider']} in the ledger", **ref))
        if tx_id in cancelled and not c["cancelled"]:
            out.append(_diff("cancelled-in-wallet-only", f"charge {tx_id} was cancelled in ePassi but stands in "
                             "the ledger (run `avain epassi import`)", wallet=0, ledger=c["amount"], **ref))
        elif c["cancelled"] and tx_id not in cancelled:
            out.append(_diff("cancelled-in-ledger-only", f"charge {tx_id} is reversed in the ledger but stands "
                             "in ePassi", wallet=r.amount, ledger=0, **ref))
    for tx_id, c in booked.items():
        if tx_id not in charges:
            out.append(_diff("missing-in-wallet", f"the ledger has ePassi charge {tx_id} of {_eur(c['amount'])} "
                             f"that ePassi does not report for {period}", client=c["client"],
                             transaction=tx_id, ledger=c["amount"]))
    by_client = {w["client_ref"]: w for w in wallets}
    month = str(period)
    for code, amount in sorted(allocations.items()):
        w = by_client.get(code)
        if w is None or w["period"] < month:
            out.append(_diff("not-loaded", f"the ledger allocates {_eur(amount)} to {code} for {month}, but "
                             "ePassi has not loaded the month (run `avain budget open-period` again)",
                             client=code, ledger=amount))
        elif w["period"] == month and w["budget"] != amount:
            out.append(_diff("load-differs", f"ePassi holds a budget of {_eur(w['budget'])} for {code} in "
                             f"{month}, the ledger allocates {_eur(amount)}", client=code,
                             wallet=w["budget"], ledger=amount))
    for code, w in sorted(by_client.items()):
        if w["period"] == month and code not in allocations:
            out.append(_diff("loaded-without-budget", f"ePassi holds {_eur(w['balance'])} for {code} in {month}, "
                             "but the ledger allocates nothing", client=code, wallet=w["balance"]))
        elif w["period"] == month and available is not None and w["balance"] != available.get(code, 0):
            out.append(_diff("balance-differs", f"{code}'s wallet holds {_eur(w['balance'])}, the ledger has "
                             f"{_eur(available.get(code, 0))} available", client=code, wallet=w["balance"],
                             ledger=available.get(code, 0)))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda d: (order[d["kind"]], d["client"] or "", d["transaction"] or ""))
