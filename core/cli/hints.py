"""What the command line adds to a service's refusal: the option it concerns and the
command that would help.

Services name no command and no option (a web page or the HTTP API presents the same
refusal): they raise an error with a stable ``code``, the ``field`` it is about and the
``values`` that explain it (see :class:`avain.core.errors.AvainError`). Here the CLI
turns them back into its own words:

- ``field`` becomes the running command's option of that name (``amount`` →
  ``--amount: …``), when the command has one;
- ``code`` may have a hint, a sentence naming the command that helps, formatted with
  the error's ``values`` (``See `avain worker list`.``).

A plugin's command adds its own hints with :func:`add`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..i18n import N_, _, date, money

if TYPE_CHECKING:  # pragma: no cover
    import click

    from ..errors import AvainError

#: code → hint, an English gettext message; ``{name}`` fields come from the error's values.
HINTS: dict[str, str] = {}


def add(hints: Mapping[str, str]) -> None:
    """Add hints (code → gettext message, marked with ``N_``); a code has one hint."""
    for code, hint in hints.items():
        if HINTS.get(code, hint) != hint:
            raise ValueError(f"hint for {code} is already given")
        HINTS[code] = hint


def hint(exc: AvainError) -> str | None:
    """The hint for this error's code in the reader's language, or None."""
    message = HINTS.get(getattr(exc, "code", ""))
    if message is None:
        return None
    try:
        return _(message).format(**{name: shown(value) for name, value in exc.values.items()})
    except (KeyError, IndexError, ValueError):
        return _(message)


def shown(value: object) -> object:
    """A value as the reader's language writes it: money and dates; others as they are."""
    import datetime as dt

    if hasattr(value, "cents") and not isinstance(value, (int, str)):
        return money(value.cents)  # type: ignore[attr-defined]
    if isinstance(value, dt.date):
        return date(value)
    return value


def option_of(command: click.Command | None, field: str | None) -> str | None:
    """The option of ``command`` that sets ``field`` (``--amount`` for ``amount``), or None."""
    if command is None or not field:
        return None
    import click

    for param in command.params:
        if isinstance(param, click.Option) and param.name == field.replace("-", "_"):
            return max(param.opts, key=len)
    return None


def present(exc: AvainError, message: str) -> str:
    """``message`` as the CLI shows it: with the option it concerns first and the hint after."""
    option = getattr(exc, "option", None)
    if option and not message.startswith(option):
        message = f"{option}: {message}"
    extra = hint(exc)
    if extra and extra not in message:
        message = f"{message} {extra}"
    return message


def remember_option(exc: AvainError, command: click.Command | None) -> None:
    """Note on ``exc`` the option of the running ``command`` its field names."""
    if getattr(exc, "option", None) is None:
        exc.option = option_of(command, getattr(exc, "field", None))  # type: ignore[attr-defined]


__all__ = ["HINTS", "N_", "add", "hint", "option_of", "present", "remember_option"]
