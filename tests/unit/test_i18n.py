"""The languages: choosing one from the environment, plurals, money and dates, and the
catalogues themselves (complete, consistent, compiled)."""

import datetime as dt
import re
import string

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from avain.core import i18n
from avain.core.domain import Money
from avain.core.i18n import catalogues


@pytest.mark.parametrize(("environ", "expected"), [
    ({"LANG": "fi_FI.UTF-8"}, "fi"),
    ({"LANG": "sv_FI.UTF-8"}, "sv"),
    ({"LANG": "sv_SE"}, "sv"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({}, "en"),
    ({"LC_MESSAGES": "sv_FI", "LANG": "fi_FI.UTF-8"}, "sv"),
    ({"LC_ALL": "fi_FI@euro", "LC_MESSAGES": "sv_FI", "LANG": "en_US"}, "fi"),
    ({"LANGUAGE": "sv:fi", "LC_ALL": "fi_FI.UTF-8"}, "sv"),
    ({"LANGUAGE": "de:fi", "LANG": "sv_FI"}, "fi"),     # the first language of LANGUAGE avain speaks
    ({"LANGUAGE": "de", "LANG": "sv_FI"}, "sv"),        # none: the locale variables decide
    ({"LANGUAGE": "", "LC_ALL": "", "LANG": "sv_FI"}, "sv"),  # set but empty counts as unset
])
def test_the_language_comes_from_the_environment_as_gettext_reads_it(environ, expected):
    assert i18n.from_environment(environ) == expected


def test_set_language_takes_a_locale_name_and_falls_back_to_the_environment(monkeypatch):
    assert i18n.set_language("sv_FI.UTF-8") == "sv" and i18n.language() == "sv"
    assert i18n.set_language("FI") == "fi"
    monkeypatch.setenv("LANG", "sv_FI.UTF-8")
    assert i18n.set_language(None) == "sv"
    assert i18n.set_language("klingon") == "en"


def test_using_speaks_another_language_for_a_block_only():
    i18n.set_language("fi")
    with i18n.using("sv"):
        assert i18n._("Clients") == "Klienter"
        with i18n.using("en"):
            assert i18n._("Clients") == "Clients"
        assert i18n.language() == "sv"
    assert i18n._("Clients") == "Asiakkaat"


@pytest.mark.parametrize(("lang", "forms"), [
    ("en", ["0 HB clients", "1 HB client", "2 HB clients"]),
    ("fi", ["0 HB-asiakasta", "1 HB-asiakas", "2 HB-asiakasta"]),
    ("sv", ["0 klienter med personlig budget", "1 klient med personlig budget", "2 klienter med personlig budget"]),
])
def test_counts_take_the_plural_of_the_language(lang, forms):
    with i18n.using(lang):
        assert [i18n.ngettext("{n} HB client", "{n} HB clients", n).format(n=n) for n in (0, 1, 2)] == forms


@pytest.mark.parametrize(("lang", "cents", "shown"), [
    ("fi", 123450, "1\u00a0234,50\u00a0€"),
    ("sv", 123450, "1\u00a0234,50\u00a0€"),
    ("en", 123450, "€1,234.50"),
    ("fi", -5, "-0,05\u00a0€"),
    ("en", -123456789, "-€1,234,567.89"),
    ("en", 0, "€0.00"),
])
def test_money_in_the_language(lang, cents, shown):
    with i18n.using(lang):
        assert i18n.money(cents) == shown


@given(st.integers(min_value=-10**13, max_value=10**13), st.sampled_from(["fi", "sv", "en"]))
def test_money_shown_in_any_language_reads_back_as_the_same_cents(cents, lang):
    """What the CLI prints is what a person may type back: ``1 234,50 €`` parses as typed,
    ``€1,234.50`` once its thousands separators are dropped; groups of three digits only."""
    with i18n.using(lang):
        shown = i18n.money(cents)
    if lang == "en":
        assert re.fullmatch(r"-?€\d{1,3}(,\d{3})*\.\d{2}", shown)
        assert Money.parse(shown.replace(",", "")).cents == cents
    else:
        assert re.fullmatch(r"-?\d{1,3}(\u00a0\d{3})*,\d{2}\u00a0€", shown)
        assert Money.parse(shown).cents == cents


def test_dates_in_the_language():
    day = dt.date(2018, 1, 5)
    with i18n.using("fi"):
        assert i18n.date(day) == "5.1.2018" and i18n.date("2018-12-31") == "31.12.2018" and i18n.date(None) == ""
    with i18n.using("sv"):
        assert i18n.date(day) == "5.1.2018"
    with i18n.using("en"):
        assert i18n.date(day) == "2018-01-05"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_every_text_in_the_code_has_a_translation_with_the_same_placeholders(lang):
    with catalogues.po_files()[lang].open("rb") as fh:
        catalogue = read_po(fh, locale=lang)
    used = catalogues.msgids_in_code()
    assert len(used) > 150  # the walk found the CLI's texts (a broken walk would pass vacuously)
    problems = []
    for key, where in used.items():
        message = catalogue.get(key[0] if isinstance(key, tuple) else key)
        if message is None or message.fuzzy:
            problems.append(f"{where[0]}: {key!r} is not in {lang}.po")
            continue
        if isinstance(key, tuple):
            if not isinstance(message.id, tuple) or message.id[1] != key[1]:
                problems.append(f"{where[0]}: {key!r} has no plural in {lang}.po")
                continue
            pairs = [(key[0], message.string[0]), (key[1], message.string[1])]
        else:
            pairs = [(key, message.string)]
        for source, translated in pairs:
            if not translated or not translated.strip():
                problems.append(f"{where[0]}: {source!r} has an empty {lang} translation")
            elif _fields(translated) != _fields(source):
                problems.append(f"{where[0]}: {source!r}: the {lang} translation has placeholders "
                                f"{sorted(_fields(translated))}, not {sorted(_fields(source))}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang", ["fi", "sv"])
def test_the_catalogues_hold_no_texts_the_code_no_longer_uses(lang):
    with catalogues.po_files()[lang].open("rb") as fh:
        catalogue = read_po(fh, locale=lang)
    used = {k[0] if isinstance(k, tuple) else k for k in catalogues.msgids_in_code()}
    stale = sorted(m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id and
                   (m.id if isinstance(m.id, str) else m.id[0]) not in used)
    assert not stale, f"{lang}.po has texts no code uses (run pybabel update, see docs/i18n.md): {stale}"


def test_the_shipped_mo_files_are_compiled_from_their_po_files():
    assert catalogues.stale() == [], "run: python -m avain.core.i18n compile"


def test_a_changed_po_makes_its_mo_stale(tmp_path, monkeypatch):
    for lang, po in catalogues.po_files().items():
        target = tmp_path / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        (target / po.name).write_bytes(po.read_bytes())
        (target / "avain.mo").write_bytes(po.with_suffix(".mo").read_bytes())
    monkeypatch.setattr(catalogues, "LOCALE_DIR", tmp_path)
    assert catalogues.stale() == []
    po = tmp_path / "sv" / "LC_MESSAGES" / "avain.po"
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Klienter"', 'msgstr "Kunder"'), encoding="utf-8")
    assert catalogues.stale() == [po.with_suffix(".mo")]
    assert catalogues.compile_all() and catalogues.stale() == []


def test_the_compile_command_checks_and_compiles(capsys):
    from avain.core.i18n.__main__ import main

    assert main(["check"]) == 0
    assert main(["translate"]) == 2 and "usage" in capsys.readouterr().err


def test_every_translated_call_in_the_cli_has_literal_texts():
    """``_(name)`` with a variable escapes the catalogue check above: only the role labels
    and the CLI's hints, marked with N_ where they are defined, may be looked up that way."""
    import ast

    root = catalogues.LOCALE_DIR.parent.parent
    dynamic = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "ngettext"):
                texts = node.args[:1] if node.func.id == "_" else node.args[:2]
                if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in texts):
                    dynamic.append(f"{path.relative_to(root)}:{node.lineno}")
    hints = (root / "cli" / "hints.py").read_text(encoding="utf-8").splitlines()
    looked_up = [f"cli/hints.py:{i}" for i, line in enumerate(hints, 1) if "_(message)" in line]
    assert len(looked_up) == 2
    assert sorted(dynamic) == sorted(["services/messages.py:" + str(_role_label_line(root)), *looked_up])


def _role_label_line(root) -> int:
    text = (root / "services" / "messages.py").read_text(encoding="utf-8")
    return next(i for i, line in enumerate(text.splitlines(), 1) if re.search(r"return _\(ROLE_LABELS\[", line))


def test_the_demo_speaks_swedish_where_the_pilot_has_swedish_speakers(pm):
    """Vantaa's family-counselling group and Eksote's disability group have Swedish-speaking
    demo clients (every fifth); other groups, and pilots without languages, Finnish only."""
    from pathlib import Path

    from avain.core import demo
    from avain.core.services import pilots

    root = Path(demo.__file__).resolve().parent.parent / "plugins" / "hb_pilots"
    vantaa = pilots.check_file(pm, root / "vantaa" / "pilot.toml")
    assert [demo._language(vantaa, "family-counselling", i) for i in range(10)] == ["fi"] * 4 + ["sv"] + ["fi"] * 4 + [
        "sv"]
    assert {demo._language(vantaa, "young-parents", i) for i in range(10)} == {"fi"}
    eksote = pilots.check_file(pm, root / "eksote" / "pilot.toml")
    assert demo._language(eksote, "disability", 4) == "sv"
