"""Working days in Finland: Monday to Friday except public holidays (the ``holidays``
package's Finnish calendar, which includes Midsummer Eve and Christmas Eve), and the local
day of a moment in Finnish time."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

FINLAND = ZoneInfo("Europe/Helsinki")


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("FI", years=year))


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """The first working day after ``day`` (Friday → Monday; 5.12. → 7.12., past
    Independence Day)."""
    day += dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def local_day(moment: dt.datetime) -> dt.date:
    """The date in Finland of an aware moment."""
    return moment.astimezone(FINLAND).date()


def answer_due(asked: dt.datetime) -> dt.datetime:
    """The moment a question asked at ``asked`` stops being answered "by the next working
    day": the end of the first working day after the day it was asked, Finnish time."""
    due_day = next_working_day(local_day(asked)) + dt.timedelta(days=1)
    return dt.datetime.combine(due_day, dt.time(0), FINLAND).astimezone(dt.UTC)
