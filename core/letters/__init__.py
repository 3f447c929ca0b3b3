"""The documents an authority gives: decision letters, payment commitments for providers
and monthly statements, as HTML and PDF from one Jinja2 template each.

Jinja2 and WeasyPrint are imported inside the functions that use them, so commands that
write no letter start without them. The facts come from ``services.letters``; this module
only formats (money, dates, phrases of the letter's language) and writes files.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from .. import outfiles
from ..domain import Money, fi_date
from ..errors import ValidationError
from .phrases import PHRASES

LANGUAGES = tuple(PHRASES)
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")
TEMPLATES = Path(__file__).with_name("templates")


def check_language(lang: str, *, field_name: str = "--lang") -> str:
    if lang not in PHRASES:
        raise ValidationError(f"{field_name}: {lang!r} is not a letter language (one of {', '.join(LANGUAGES)})")
    return lang


def money(cents: int, lang: str) -> str:
    """``1 234,50 €`` in Finnish and Swedish, ``€1,234.50`` in English."""
    m = Money(int(cents))
    return m.en() if lang == "en" else m.fi()


def date(value: dt.date | str | None, lang: str) -> str:
    """``d.m.yyyy`` in Finnish and Swedish, ``3 December 2026`` in English."""
    if value is None:
        return ""
    day = dt.date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}" if lang == "en" else fi_date(day)


def period(value: str, lang: str) -> str:
    """A month: ``1/2018`` in Finnish and Swedish, ``January 2018`` in English."""
    year, month = (int(p) for p in value.split("-"))
    return f"{MONTHS_EN[month - 1]} {year}" if lang == "en" else f"{month}/{year}"


def group_reference(ref: str) -> str:
    """A national reference in groups of five digits from the right, as printed on bills."""
    head = len(ref) % 5
    parts = ([ref[:head]] if head else []) + [ref[i:i + 5] for i in range(head, len(ref), 5)]
    return " ".join(parts)


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def render_html(kind: str, doc: dict[str, Any], lang: str) -> str:
    """The document ``kind`` (decision, commitment, statement) in ``lang`` as HTML."""
    check_language(lang)
    env = _environment()
    env.filters["money"] = lambda cents: money(cents, lang)
    env.filters["date"] = lambda value: date(value, lang)
    env.filters["month"] = lambda value: period(value, lang)
    return env.get_template(f"{kind}.html").render(doc=doc, t=PHRASES[lang], lang=lang)


def render_pdf(html: str) -> bytes:
    """The same HTML as PDF (A4, fonts of the system)."""
    import logging
    import warnings

    # WeasyPrint logs every CSS property it ignores; the letters need none of that noise.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # Where the system lacks HarfBuzz-Subset, WeasyPrint subsets fonts itself and says so
        # with a DeprecationWarning about its future versions; the PDF is the same.
        warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
        import weasyprint

        return weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


def write_files(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name → bytes) into the folder ``out``: each file is first written,
    readable by its owner only, into a fresh private folder inside ``out`` and then renamed
    into place, so a reader never sees half a letter; a symbolic link in the way is refused,
    never followed (:mod:`avain.core.outfiles`)."""
    written = []
    with outfiles.staged(out) as work:
        for name, data in files.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"not a plain file name: {name!r}")
            fd = os.open(work / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            written.append(Path(out) / name)
    return written


def write_letter(kind: str, doc: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """Render ``doc`` as ``stem.html`` and ``stem.pdf`` in ``out``."""
    html = render_html(kind, doc, doc["lang"])
    pdf = render_pdf(html)
    return write_files(out, {f"{stem}.html": html.encode("utf-8"), f"{stem}.pdf": pdf})
