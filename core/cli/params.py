"""Click parameter types that turn typed text into domain values with clear errors."""

from __future__ import annotations

import datetime as dt

import click

from ..domain import Money, Period, positive_amount
from ..errors import ValidationError


class MoneyType(click.ParamType):
    """Euros as typed (``12,50``), more than zero. An amount that is not one (``abc``,
    ``0``, ``-5``, too large) is bad usage (exit 2) naming the option, like a bad date."""

    name = "EUROS"

    def convert(self, value, param, ctx):
        if isinstance(value, Money):
            return value
        return _money(self, value, param, ctx, positive=True)


class AnyMoneyType(click.ParamType):
    """Euros that may be zero but not less (a search bound, a price, a cost)."""

    name = "EUROS"

    def convert(self, value, param, ctx):
        if isinstance(value, Money):
            return value
        return _money(self, value, param, ctx, positive=False)


def _money(kind: click.ParamType, value: str, param, ctx, *, positive: bool) -> Money:
    field_name = f"--{param.name}" if param else "amount"
    try:
        money = Money.parse(value, field_name=field_name)
        if positive:
            return positive_amount(money, field_name=field_name)
        if money.cents < 0:
            raise ValidationError(f"{field_name}: {value!r} is less than zero")
        return money
    except ValidationError as exc:
        kind.fail(str(exc).removeprefix(f"{field_name}: "), param, ctx)


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
