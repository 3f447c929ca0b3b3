"""The core's own fallbacks for decision and policy hooks, and its intake check.

Registered first and marked ``trylast``, so any plugin that answers wins.
"""

from __future__ import annotations

import datetime as dt
import functools

from .domain import (
    Applicant,
    BudgetAmount,
    Decision,
    Money,
    Period,
    PeriodEndPolicy,
    Pilot,
    Proposal,
    PurchaseFacts,
    Worker,
    WorkflowOptions,
    fi_date,
    prorate,
)
from .hookspecs import hookimpl


@hookimpl(trylast=True)
def avain_client_code(pilot: Pilot, client: Applicant, worker: Worker, ordinal: int) -> str:
    """``<pilot code>-<group code>-<worker code>-<ordinal>``, e.g. ``EX-F-01-003``: the
    national evaluation's pilot–group–worker–ordinal scheme."""
    group = pilot.group(client.group_id)
    return f"{pilot.code}-{group.code}-{worker.code}-{ordinal:03d}"


@hookimpl(trylast=True)
def avain_check_intake(
    pilot: Pilot, client: Applicant, on_date: dt.date, enrolled: dict[str, int]
) -> list[str]:
    """The ``[intake]`` and group caps of pilot.toml."""
    reasons = []
    if pilot.intake_closes is not None and on_date > pilot.intake_closes:
        reasons.append(
            f"pilot {pilot.id} takes no new clients after {pilot.intake_closes.isoformat()}"
        )
    if pilot.max_clients is not None and enrolled.get("*", 0) >= pilot.max_clients:
        reasons.append(f"pilot {pilot.id} is full ({pilot.max_clients} clients)")
    group = pilot.group(client.group_id)
    if group.max_clients is not None and enrolled.get(group.id, 0) >= group.max_clients:
        reasons.append(f"group {group.id} of pilot {pilot.id} is full ({group.max_clients} clients)")
    return reasons


@hookimpl(trylast=True)
def avain_workflow_options(pilot: Pilot) -> WorkflowOptions:
    """``[workflow]`` of pilot.toml, with the training day's defaults: no receipt
    confirmation, invoices approved by the supervisor."""
    wf = pilot.raw.get("workflow", {})
    defaults = WorkflowOptions()
    return WorkflowOptions(
        confirm_receipt=wf.get("confirm_receipt", defaults.confirm_receipt),
        invoice_approver=wf.get("invoice_approver", defaults.invoice_approver),
        commitment_days=wf.get("commitment_days", defaults.commitment_days),
    )


@hookimpl(trylast=True)
def avain_compute_budget(pilot: Pilot, decision: Decision, period: Period) -> BudgetAmount:
    """The amount written on the decision, else the pilot's default, capped by the pilot's
    monthly cap, prorated by days when the decision covers only part of the month (the
    parts of a month add up to the monthly amount; what :func:`prorate_budget` does for a
    plugin's ``whole_month`` answer, inline: this runs once per client every month, so it
    is kept to integer work)."""
    if decision.monthly_amount is not None:
        cents = decision.monthly_amount.cents
        why = f"{_fi(cents)} per month by decision {decision.id}"
    else:
        cents = pilot.raw.get("budget", {}).get("default_monthly", 0)
        why = f"the pilot's default monthly budget {_fi(cents)}"
    cap = pilot.monthly_cap
    if cap is not None and cents > cap.cents:
        cents, why = cap.cents, f"{why}, capped at {_fi(cap.cents)}"
    if decision.valid_from > period.first_day or decision.valid_to < period.last_day:
        cents, note = prorate(cents, period, decision.valid_from, decision.valid_to)
        why = f"{why}; {note}"
    return BudgetAmount(Money(cents), why, "decision")


@functools.lru_cache(maxsize=4096)
def _fi(cents: int) -> str:
    return Money(cents).fi()


@hookimpl(trylast=True)
def avain_period_end_policy(pilot: Pilot, period: Period) -> PeriodEndPolicy:
    """``budget.period_end`` of pilot.toml; lapse unless it says carry-over."""
    return PeriodEndPolicy(pilot.raw.get("budget", {}).get("period_end", "lapse"))


@hookimpl
def avain_validate_purchase(pilot: Pilot, proposal: Proposal, facts: PurchaseFacts) -> list[str]:
    """The rules every pilot shares: the service is in the catalogue, allowed by the pilot
    and in the client's plan; the provider is approved for it on that day; the price is not
    above the provider's catalogue price."""
    reasons = []
    code = proposal.service
    if facts.service is None:
        return [f"{code} is not a service in the catalogue"]
    name = facts.service.name_fi
    day = fi_date(proposal.service_date)
    if facts.pilot_services is not None and code not in facts.pilot_services:
        reasons.append(f"{name} is not among the services this pilot's budgets may buy")
    if facts.plan_services is None:
        reasons.append("the client has no care and service plan yet")
    elif code not in facts.plan_services:
        reasons.append(f"{name} is not in the client's plan")
    if not facts.provider_approved:
        reasons.append(f"{facts.provider_name} is not approved for {name} on {day}"
                       + (f" ({facts.approval_note})" if facts.approval_note else ""))
    if facts.catalogue_price is None:
        reasons.append(f"{facts.provider_name} has no price for {name} on {day} in the catalogue")
    elif facts.service.unit != "euro":
        ceiling = Money(facts.catalogue_price.cents * proposal.units)
        if proposal.amount > ceiling:
            reasons.append(f"{proposal.amount.fi()} is more than {facts.provider_name}'s catalogue price "
                           f"for {proposal.units} × {name} ({proposal.units} × "
                           f"{facts.catalogue_price.fi()} = {ceiling.fi()})")
    return reasons
