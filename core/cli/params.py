"""Click parameter types that turn typed text into domain values with clear errors."""

from __future__ import annotations

import datetime as dt

import click

from ..domain import Money, Period, positive_amount
from ..errors import ValidationError


class MoneyType(click.ParamType):
    """Euros as typed (``12,50``): a bad amount is a refusal (exit 1) naming the option,
    like every other amount rule (zero, negative, too large)."""

    name = "EUROS"

    def convert(self, value, param, ctx):
        if isinstance(value, Money):
            return value
        money = Money.parse(value, field_name=f"--{param.name}" if param else "amount")
        return positive_amount(money, field_name=f"--{param.name}" if param else "amount")


class AnyMoneyType(click.ParamType):
    """Euros that may be zero (a search bound, a price)."""

    name = "EUROS"

    def convert(self, value, param, ctx):
        if isinstance(value, Money):
            return value
        return Money.parse(value, field_name=f"--{param.name}" if param else "amount")


class DateType(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date like 2018-01-31", param, ctx)


class PeriodType(click.ParamType):
    name = "YYYY-MM"

    def convert(self, value, param, ctx):
        if isinstance(value, Period):
            return value
        try:
            return Period.parse(value)
        except ValidationError as exc:
            self.fail(str(exc).split(": ", 1)[-1], param, ctx)


MONEY = MoneyType()
MONEY_ANY = AnyMoneyType()
DATE = DateType()
PERIOD = PeriodType()


def key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``KEY=VALUE`` options into a dict."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        out[key.strip()] = val.strip()
    return out
