"""The letters' formatting without a database: money and dates as each language writes
them, the request-for-review deadline, the phrase tables, escaping, and how files are
written (owner-only, renamed into place, no symlink followed)."""

from __future__ import annotations

import datetime as dt
import os
import stat
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avain.core import letters
from avain.core.errors import Refused, ValidationError
from avain.core.letters.phrases import PHRASES
from avain.core.services.letters import review_deadline

NBSP = "\u00a0"


def test_money_is_written_the_way_each_language_writes_it():
    assert letters.money(123450, "fi") == f"1{NBSP}234,50{NBSP}€"
    assert letters.money(123450, "sv") == f"1{NBSP}234,50{NBSP}€"
    assert letters.money(123450, "en") == "€1,234.50"
    assert letters.money(5, "en") == "€0.05"


@given(st.integers(min_value=0, max_value=10**11))
def test_every_amount_reads_back_to_its_cents(cents):
    fi = letters.money(cents, "fi").replace(NBSP, "").removesuffix("€").replace(",", "")
    en = letters.money(cents, "en").removeprefix("€").replace(",", "").replace(".", "")
    assert int(fi) == cents == int(en)


def test_dates_are_day_month_year_in_finnish_and_swedish():
    day = dt.date(2018, 1, 5)
    assert letters.date(day, "fi") == letters.date(day, "sv") == "5.1.2018"
    assert letters.date("2018-01-05", "en") == "5 January 2018"
    assert letters.period("2018-03", "fi") == "3/2018"
    assert letters.period("2018-03", "en") == "March 2018"


@pytest.mark.parametrize(("sent", "notified", "deadline"), [
    # 10.12. + 30 days is Saturday 9.1.: the deadline moves to Monday.
    (dt.date(2026, 12, 3), dt.date(2026, 12, 10), dt.date(2027, 1, 11)),
    # A weekday deadline stays where it is.
    (dt.date(2018, 1, 1), dt.date(2018, 1, 8), dt.date(2018, 2, 7)),
    # Independence Day (Monday 6.12.2027) moves it to Tuesday.
    (dt.date(2027, 10, 30), dt.date(2027, 11, 6), dt.date(2027, 12, 7)),
])
def test_the_review_deadline_is_30_days_from_notification_on_a_working_day(sent, notified, deadline):
    assert review_deadline(sent) == (notified, deadline)


def test_every_language_has_every_phrase():
    keys = {lang: set(table) for lang, table in PHRASES.items()}
    assert keys["fi"] == keys["sv"] == keys["en"]
    for key, value in PHRASES["fi"].items():
        for lang in ("sv", "en"):
            other = PHRASES[lang][key]
            assert type(other) is type(value), (lang, key)
            if isinstance(value, dict):
                assert set(other) == set(value), (lang, key)
            if isinstance(value, list):
                assert len(other) == len(value), (lang, key)


def test_the_appeal_instructions_are_the_statutory_ones():
    assert "30 päivän kuluessa päätöksen tiedoksisaannista" in PHRASES["fi"]["appeal_time"]
    assert "seitsemäntenä päivänä" in PHRASES["fi"]["appeal_time"]
    assert PHRASES["fi"]["appeal_heading"] == "Oikaisuvaatimusohje"
    assert "inom 30 dagar från delfåendet" in PHRASES["sv"]["appeal_time"]
    assert PHRASES["sv"]["appeal_heading"] == "Anvisning om begäran om omprövning"
    assert "within 30 days of notification" in PHRASES["en"]["appeal_time"]


def test_an_unknown_language_is_refused_naming_the_option():
    with pytest.raises(ValidationError, match="--lang: 'de'"):
        letters.check_language("de")


def test_references_are_grouped_in_fives_from_the_right():
    assert letters.group_reference("10029") == "10029"
    assert letters.group_reference("1234561") == "12 34561"
    assert letters.group_reference("123456789012") == "12 34567 89012"


def _commitment_doc(provider_name: str) -> dict:
    today = dt.date(2018, 1, 10)
    notified, deadline = review_deadline(today)
    return {"kind": "commitment", "lang": "fi",
            "organiser": {"name": "Esimerkkilän kaupunki", "pilot": "Example", "pilot_id": "example",
                          "review_body": None, "review_address": None, "einvoice_address": "003712345678",
                          "einvoice_operator": None, "buyer": "Esimerkkilän kaupunki"},
            "provider": {"id": "1572860-0", "name": provider_name},
            "commitment": {"id": 7, "client": "EX-F-01-001", "amount": 12345, "expires_on": dt.date(2018, 3, 1),
                           "issued_on": today, "status": "pending", "period": "2018-01", "reference": "10029",
                           "reference_grouped": "10029", "reference_rf": "RF4510029", "service": "Siivous",
                           "units": 1, "service_date": dt.date(2018, 1, 15)},
            "sent_on": today, "notified_on": notified, "deadline": deadline}


def test_the_html_is_well_formed_and_escapes_what_it_is_given():
    html = letters.render_html("commitment", _commitment_doc("Hack & <script>alert(1)</script> Oy"), "fi")
    assert "<script>" not in html
    root = ET.fromstring(html.removeprefix("<!DOCTYPE html>\n"))
    text = "".join(root.itertext())
    assert "Hack & <script>alert(1)</script> Oy" in text  # shown as text, not run
    assert f"123,45{NBSP}€" in text and "003712345678" in text


def test_files_are_owner_only_and_renamed_into_place(tmp_path):
    out = tmp_path / "letters"
    written = letters.write_files(out, {"a.html": b"<p/>", "a.pdf": b"%PDF"})
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "a.pdf"]  # no work folder left
    assert [p.read_bytes() for p in written] == [b"<p/>", b"%PDF"]
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700


def test_a_symlink_in_the_way_is_refused_not_followed(tmp_path):
    out = tmp_path / "letters"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "a.html").symlink_to(victim)
    with pytest.raises(Refused, match="a.html is a symbolic link"):
        letters.write_files(out, {"a.html": b"letter", "a.pdf": b"%PDF"})
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["a.html"]  # nothing half-written, no work folder


def test_an_out_folder_that_is_a_symlink_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(Refused, match="symbolic link"):
        letters.write_files(tmp_path / "link", {"a.html": b"x"})
    assert not any(real.iterdir())


def test_commands_start_without_loading_jinja2_or_weasyprint():
    import subprocess
    import sys

    code = ("import sys, avain.core.cli; "
            "print(sorted(m for m in ('jinja2', 'weasyprint') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
