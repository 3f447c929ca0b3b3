"""The cost-neutral budget (omatuotantohinta): what the organiser's own production of the
planned services would cost, then the pilot's rules. Pure functions, no I/O.

Steps, each written into the explanation with its inputs, price and rule version:

1. every planned service: monthly quantity × own-production unit price, the price valid
   on the decision's first day (the price table is dated, since prices change);
2. carer's days off (omaishoidon vapaat) converted to money: 2 days a month, 3 when the
   care is round-the-clock (laki omaishoidon tuesta 937/2005 §4), × the pilot's day value;
3. the pilot's monthly cap;
4. proration for a month the decision covers only in part, by days. Proration is
   cumulative — the share of days 1..b minus the share of days 1..a-1 — so the parts of a
   month split between decisions add up to the whole, to the cent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from avain.core.domain import Money, Period, prorate
from avain.core.errors import Refused

RULE = "budget_calculator/1"
CARER_DAYS = {False: 2, True: 3}  # 937/2005 §4: days off a month; 3 when round-the-clock


@frozen
class Price:
    service: str
    unit_price: int  # cents
    valid_from: dt.date
    valid_to: dt.date | None = None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@frozen
class Settings:
    prices: tuple[Price, ...] = ()
    carer_day_value: int = 0  # cents per carer's day off
    monthly_cap: int | None = None

    @classmethod
    def from_section(cls, section: Mapping[str, Any], pilot_cap: Money | None) -> Settings:
        prices = tuple(
            Price(p["service"], p["unit_price"], _date(p["valid_from"]),
                  _date(p["valid_to"]) if p.get("valid_to") else None)
            for p in section.get("prices", ())
        )
        cap = section.get("monthly_cap")
        if cap is None and pilot_cap is not None:
            cap = pilot_cap.cents
        return cls(prices, section.get("carer_day_value", 0), cap)

    def price(self, service: str, day: dt.date) -> Price | None:
        found = [p for p in self.prices if p.service == service and p.valid_on(day)]
        return max(found, key=lambda p: p.valid_from) if found else None


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@frozen
class Line:
    what: str
    amount: int
    detail: str


@frozen
class Result:
    monthly: int
    amount: int
    lines: tuple[Line, ...]
    rule: str

    def explanation(self) -> str:
        parts = [f"{line.what}: {line.detail}" for line in self.lines]
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "monthly": self.monthly, "amount": self.amount,
                "lines": [{"what": x.what, "amount": x.amount, "detail": x.detail} for x in self.lines]}


def monthly_budget(plan: Mapping[str, Any], settings: Settings, on: dt.date) -> Result:
    """The full-month budget for ``plan`` with prices valid on ``on``."""
    lines: list[Line] = []
    total = 0
    for item in plan.get("items", ()):
        service, quantity = item["service"], item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity < 0:
            raise Refused(f"plan: quantity of {service} must be a number of units ≥ 0")
        price = settings.price(service, on)
        if price is None:
            raise Refused(f"no own-production price for {service} on {on.isoformat()}")
        amount = round(quantity * price.unit_price)
        total += amount
        lines.append(Line(service, amount,
                          f"{_qty(quantity)} × {Money(price.unit_price).fi()} (own-production price "
                          f"from {price.valid_from.isoformat()}) = {Money(amount).fi()}"))
    if plan.get("carer_days_off"):
        rtc = bool(plan.get("round_the_clock"))
        days = CARER_DAYS[rtc]
        amount = days * settings.carer_day_value
        total += amount
        lines.append(Line("carer's days off", amount,
                          f"{days} days a month{' (round-the-clock care)' if rtc else ''} × "
                          f"{Money(settings.carer_day_value).fi()} = {Money(amount).fi()} (937/2005 §4)"))
    monthly = total
    if settings.monthly_cap is not None and total > settings.monthly_cap:
        monthly = settings.monthly_cap
        lines.append(Line("monthly cap", monthly - total,
                          f"{Money(total).fi()} is above the pilot's cap: {Money(monthly).fi()} a month"))
    lines.append(Line("monthly budget", monthly, Money(monthly).fi()))
    return Result(monthly, monthly, tuple(lines), RULE)


def _qty(q: float) -> str:
    return str(int(q)) if float(q).is_integer() else str(q).replace(".", ",")


def compute(plan: Mapping[str, Any], settings: Settings, period: Period, valid_from: dt.date,
            valid_to: dt.date) -> Result:
    """The budget of one month under a decision: monthly budget, prorated."""
    full = monthly_budget(plan, settings, valid_from)
    amount, note = prorate(full.monthly, period, valid_from, valid_to)
    lines = full.lines if note is None else (*full.lines, Line("partial month", amount, note))
    return Result(full.monthly, amount, lines, full.rule)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "The budget calculator: own-production prices and the pilot's budget rules.",
    "properties": {
        "monthly_cap": {"type": "integer", "minimum": 0,
                        "description": "Cap of a monthly budget in cents (default: budget.monthly_cap)."},
        "carer_day_value": {"type": "integer", "minimum": 0,
                            "description": "Money value of one carer's day off, in cents."},
        "prices": {
            "type": "array",
            "description": "Dated own-production unit prices; a new row, not an edit, when a price changes.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["service", "unit_price", "valid_from"],
                "properties": {
                    "service": {"type": "string", "description": "Service code from the catalogue."},
                    "unit_price": {"type": "integer", "minimum": 0, "description": "Cents per unit."},
                    "valid_from": {"type": "string", "format": "date", "description": "First day in force."},
                    "valid_to": {"type": "string", "format": "date", "description": "Last day in force."},
                },
            },
        },
    },
}
