"""The budget calculator: cost-neutral, explainable budgets (``avain_compute_budget``).

A pilot uses it by having a ``[plugins.budget_calculator]`` section in its pilot.toml
(own-production prices, carer's day value, cap). Pilots without that section are left to
the next plugin or the core's fallback (the amount written on the decision).
"""

from __future__ import annotations

from avain.core.domain import BudgetAmount, ConfigSection, Money
from avain.core.hookspecs import hookimpl

from . import calculator

NAME = "budget_calculator"


@hookimpl
def avain_config_sections():
    return [ConfigSection(NAME, calculator.SCHEMA, "Own-production prices and budget rules")]


@hookimpl
def avain_compute_budget(pilot, decision, period):
    section = pilot.sections.get(NAME)
    if section is None or decision.monthly_amount is not None:
        return None  # not this pilot's way, or an amount written on the decision wins
    settings = calculator.Settings.from_section(section, pilot.monthly_cap)
    plan = decision.inputs.get("plan") or {}
    result = calculator.compute(plan, settings, period, decision.valid_from, decision.valid_to)
    return BudgetAmount(Money(result.amount), result.explanation(), result.rule,
                        details=result.as_dict())
