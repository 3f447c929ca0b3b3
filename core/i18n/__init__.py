"""The languages of avain: Finnish, Swedish and English (the source language).

One set of gettext catalogues (``locale/<lang>/LC_MESSAGES/avain.po``, compiled to ``.mo``
and shipped with the package) serves the command line and, later, the web face. The
runtime lookup is the standard library's :mod:`gettext`, so starting a command stays
fast; Babel is needed only to compile the catalogues (``python -m avain.core.i18n compile``).

The current language lives in a context variable: a command sets it once with
:func:`set_language`; a service writing for somebody else (a system message in a client's
thread, in the client's language) switches it for a block with :func:`using`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import gettext as _gettext
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from ..domain import Money

#: The languages avain speaks; the first is the default of a client's language.
LANGUAGES = ("fi", "sv", "en")
#: The language of the msgids in the code.
SOURCE = "en"
DOMAIN = "avain"
LOCALE_DIR = Path(__file__).parent / "locale"
#: The environment variables gettext reads, in its order of precedence.
ENV_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("avain_language", default=SOURCE)


def normalise(value: str | None) -> str | None:
    """``fi``, ``fi_FI.UTF-8``, ``sv-FI`` or ``SV`` into one of LANGUAGES; None otherwise."""
    if not value:
        return None
    code = value.strip().lower().replace("-", "_").split(".")[0].split("@")[0].split("_")[0]
    return code if code in LANGUAGES else None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for, as gettext reads it: the first variable of
    LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set decides (LANGUAGE may list several,
    ``sv:fi``); a language avain does not speak, or ``C``/``POSIX``, means English."""
    environ = os.environ if environ is None else environ
    for var in ENV_VARS:
        value = environ.get(var)
        if not value:
            continue
        if var == "LANGUAGE":
            for part in value.split(":"):
                if normalise(part):
                    return normalise(part)
            continue  # gettext falls through to the locale variables
        return normalise(value) or SOURCE
    return SOURCE


@cache
def translation(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of a language (English: the msgids themselves)."""
    if lang == SOURCE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang])


def set_language(lang: str | None) -> str:
    """Make ``lang`` (or, when None, the environment's language) the current language;
    returns it. Anything avain does not speak is English."""
    chosen = normalise(lang) if lang else from_environment()
    _current.set(chosen or SOURCE)
    return _current.get()


def language() -> str:
    """The current language: fi, sv or en."""
    return _current.get()


@contextlib.contextmanager
def using(lang: str) -> Iterator[str]:
    """Speak ``lang`` inside the block (a client's own language), then the caller's again."""
    token = _current.set(normalise(lang) or SOURCE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` in the current language."""
    return translation(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` of a text that has plurals, by the current language's rules."""
    return translation(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for translation where it is defined; ``_()`` translates it where shown."""
    return message


def money(cents: int) -> str:
    """An amount of euros as the current language writes it: ``1 234,50 €`` in Finnish and
    Swedish (no-break spaces), ``€1,234.50`` in English."""
    amount = Money(cents)
    return amount.en() if _current.get() == "en" else amount.fi()


def date(day: dt.date | str | None) -> str:
    """A date as the current language writes it: ``31.1.2018`` in Finnish and Swedish,
    ``2018-01-31`` in English. Accepts an ISO string; None is an empty string."""
    if day is None:
        return ""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    if _current.get() == "en":
        return day.isoformat()
    return f"{day.day}.{day.month}.{day.year}"
