"""Compiling and checking the gettext catalogues with Babel (not needed at run time)."""

from __future__ import annotations

import io
from pathlib import Path

from . import DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE


def po_files() -> dict[str, Path]:
    """The ``.po`` of every translated language."""
    return {lang: LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po" for lang in LANGUAGES if lang != SOURCE}


def read(lang: str):
    """A language's catalogue as Babel reads it."""
    from babel.messages.pofile import read_po

    with po_files()[lang].open("rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def compiled(lang: str) -> bytes:
    """The ``.mo`` bytes a language's ``.po`` compiles to (fuzzy entries left out)."""
    from babel.messages.mofile import write_mo

    out = io.BytesIO()
    write_mo(out, read(lang), use_fuzzy=False)
    return out.getvalue()


def compile_all() -> list[Path]:
    written = []
    for lang, po in po_files().items():
        mo = po.with_suffix(".mo")
        mo.write_bytes(compiled(lang))
        written.append(mo)
    return written


def stale() -> list[Path]:
    """The ``.mo`` files that are missing or differ from what their ``.po`` compiles to."""
    out = []
    for lang, po in po_files().items():
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(lang):
            out.append(mo)
    return out


def msgids_in_code(root: Path | None = None) -> dict[str | tuple[str, str], list[str]]:
    """Every text the code marks for translation — ``_("…")``, ``N_("…")`` and
    ``ngettext("…", "…", n)`` with literal texts — with where it is used (``file:line``).
    A plural is keyed by its (singular, plural) pair."""
    import ast

    root = root or Path(__file__).resolve().parent.parent
    found: dict[str | tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            key: str | tuple[str, str] | None = None
            if node.func.id in ("_", "N_") and len(texts) == 1:
                key = texts[0]
            elif node.func.id == "ngettext" and len(texts) == 2:
                key = (texts[0], texts[1])
            if key is not None:
                found.setdefault(key, []).append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found
