"""Properties of the dialogue's building blocks: sealing, keys, de-identification and
working days (hypothesis)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.fi import hetu as hetu_mod

from avain.core import workdays
from avain.core.errors import ConfigError
from avain.core.message_keys import Keyring, MessageKey, MessageKeyError
from avain.core.services.messages import scrub

RING = Keyring((MessageKey.generate(),), "env")


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_sealed_text_opens_with_its_key_and_context_only(plain, aad):
    key_id, blob = RING.seal(plain, aad)
    assert key_id == RING.current.id and len(blob) == 12 + len(plain) + 16  # nonce, ciphertext, tag
    if len(plain) >= 8:  # (a byte or two may appear in random bytes by chance)
        assert plain not in blob
    assert RING.open(key_id, blob, aad, what="message 1") == plain
    with pytest.raises(MessageKeyError, match="message 1 cannot be decrypted"):
        RING.open(key_id, blob, aad + b"x", what="message 1")  # moved to another message
    other = Keyring((MessageKey.generate(),), "env")
    with pytest.raises(MessageKeyError, match="wrong key"):
        other.open(key_id, blob, aad, what="message 1")


@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_changed_byte_is_detected(plain, data):
    key_id, blob = RING.seal(plain, b"ctx")
    i = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = blob[:i] + bytes([blob[i] ^ (1 << bit)]) + blob[i + 1:]
    with pytest.raises(MessageKeyError, match="ciphertext was changed"):
        RING.open(key_id, tampered, b"ctx", what="message 9")


def test_two_seals_of_one_text_differ():
    assert RING.seal(b"sama", b"a")[1] != RING.seal(b"sama", b"a")[1]  # a fresh nonce each time


def test_a_key_prints_and_parses_back():
    key = MessageKey.generate()
    assert MessageKey.parse(key.text(), where="x") == key and key.text() not in repr(key)
    with pytest.raises(ConfigError, match="somewhere: not a message key"):
        MessageKey.parse(key.text()[:-2], where="somewhere")


@st.composite
def henkilotunnus(draw):
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)))
    sign = draw(st.sampled_from({19: "-Y", 20: "ABCDEF"}.get(born.year // 100, "+")))
    number = draw(st.integers(2, 899))
    body = f"{born:%d%m%y}{sign}{number:03d}"
    return body + "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(body[:6] + body[7:10]) % 31]


WORDS = st.lists(st.sampled_from(["hei", "asun", "Kajaanissa", "ja", "tunnus", "on", "kiitos", ".", ","]),
                 max_size=6).map(" ".join)


@given(henkilotunnus(), WORDS, WORDS)
def test_an_identity_code_never_survives_de_identification(code, before, after):
    assert hetu_mod.is_valid(code)
    out = scrub(f"{before} {code} {after}", {})
    assert code not in out and code.lower() not in out.lower() and "[henkilötunnus]" in out


@given(henkilotunnus(), WORDS, WORDS)
def test_an_identity_code_without_its_separator_never_survives(code, before, after):
    compact = code[:6] + code[7:]  # 160791882W
    out = scrub(f"{before} {compact} {after}", {})
    assert compact.lower() not in out.lower() and "[henkilötunnus]" in out


@pytest.mark.parametrize("text", ["tilaus 1234567890 saapui", "viite 3112991234", "160791882X"])
def test_ten_digit_numbers_that_are_no_identity_code_are_kept(text):
    assert scrub(text, {}) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("tilille FI21 1234 5600 0007 85 kiitos", "tilille [IBAN] kiitos"),
    ("FI2112345600000785.", "[IBAN]."),
    ("fi55 4234 5670 0000 81 Kiitos", "[IBAN] Kiitos"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [IBAN]"),
    ("FI21 1234 5600 0007 86 on väärin", "FI21 1234 5600 0007 86 on väärin"),  # check digits wrong: no IBAN
])
def test_ibans_are_removed(text, expected):
    assert scrub(text, {}) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Naapurini Liisa Korhonen auttoi, Korhoselle kiitos.", "Naapurini [name] [name] auttoi, [name] kiitos."),
    ("Hei Jussi! Kävin Matin kanssa.", "Hei [name]! Kävin [name] kanssa."),
    ("Jussi soitti. Virtanen Liisa myös.", "[name] soitti. [name] [name] myös."),
    # ordinary words and places are kept, even where they are names too
    ("Toivon, että ehdit. Satu kertoi. Milloin tulet? Veli tuli.",
     "Toivon, että ehdit. Satu kertoi. Milloin tulet? Veli tuli."),
    ("Kiitos! Voinko siirtää käynnin? Kävimme Lahdessa ja Salossa.",
     "Kiitos! Voinko siirtää käynnin? Kävimme Lahdessa ja Salossa."),
])
def test_finnish_names_nobody_told_avain_about_are_hidden(text, expected):
    assert scrub(text, {}) == expected


def test_provider_names_are_kept_whole_even_with_a_clients_surname_in_them():
    names = {"Tiina Koskinen": "client"}
    assert scrub("Koskinen As Oy:n siivooja kävi, Koskiselle kiitos.", names, ["Koskinen As Oy"]) == (
        "Koskinen As Oy:n siivooja kävi, [client] kiitos.")
    assert scrub("koskinen as oy kävi", names, ["Koskinen As Oy"]) == "koskinen as oy kävi"


@pytest.mark.parametrize("phone", ["040 123 4567", "0401234567", "+358 40 123 4567", "+358401234567",
                                   "050-123 45 67", "09 310 1691", "(040) 123 4567", "040/1234567",
                                   "040.123.4567", "358401234567", "00358 40 123 4567"])
def test_phone_numbers_are_removed(phone):
    assert scrub(f"soita {phone} huomenna", {}) == "soita [phone] huomenna"


NAMES = {"Maija Virtanen": "client", "Matti Aho": "personal worker", "Pekka Mäki": "supervisor",
         "Antti Aalto": "name", "Liisa Lahti": "name", "Eva Ek": "name"}


@pytest.mark.parametrize(("text", "expected"), [
    ("Virtasen Maija ja Virtaselle", "[client] [client] ja [client]"),
    ("Matti Aho kävi", "[personal worker] [personal worker] kävi"),
    ("ahon kanssa, Matin luona, matille", "[personal worker] kanssa, [personal worker] luona, [personal worker]"),
    ("Pekan ja Mäen", "[supervisor] ja [supervisor]"),  # consonant gradation: kk → k, k → ∅
    ("Antin, Aallon, Lahden ja Liisan", "[name], [name], [name] ja [name]"),  # tt → t, lt → ll, ht → hd
    ("Ek:n ja Ekin", "[name] ja [name]"),  # a two-letter surname
    ("Kaikki hyvin", "Kaikki hyvin"),
])
def test_names_and_their_inflected_forms_become_roles(text, expected):
    assert scrub(text, NAMES) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Asun Kauppakadulla 5 B 12.", "Asun [address]."),
    ("Puistotiellä 3 A", "[address]"),
    ("00100 HELSINKI", "[address]"),
    ("87100 Kajaani", "[address]"),
    ("maija.virtanen@example.fi", "[e-mail]"),
    ("tunnus 010594Y123Wx", "tunnus [henkilötunnus]x"),
    ("45,00 €, viite 11361, Y-tunnus 1572860-0, 15.1.2018", "45,00 €, viite 11361, Y-tunnus 1572860-0, 15.1.2018"),
])
def test_addresses_and_codes_are_removed_and_money_and_dates_kept(text, expected):
    assert scrub(text, {}) == expected


def test_a_server_database_needs_the_key_named(monkeypatch):
    from avain.core import message_keys

    monkeypatch.delenv("AVAIN_MESSAGE_KEY")
    url = "postgresql+psycopg://db.example/avain"
    assert message_keys.load(url) is None
    with pytest.raises(MessageKeyError, match="a server database keeps its message key where you say: set "
                                              "AVAIN_MESSAGE_KEY .* or AVAIN_MESSAGE_KEY_FILE"):
        message_keys.ensure(url)


@settings(max_examples=300)
@given(st.dates(dt.date(2017, 1, 1), dt.date(2030, 12, 31)))
def test_the_next_working_day_is_the_first_working_day_after(day):
    nxt = workdays.next_working_day(day)
    assert nxt > day and workdays.is_working_day(nxt)
    between = [day + dt.timedelta(days=n) for n in range(1, (nxt - day).days)]
    assert not any(workdays.is_working_day(d) for d in between)


def test_finnish_holidays_are_not_working_days():
    for holiday in (dt.date(2018, 12, 6), dt.date(2018, 12, 24), dt.date(2018, 6, 22), dt.date(2018, 5, 1),
                    dt.date(2018, 3, 30), dt.date(2018, 1, 6)):
        assert not workdays.is_working_day(holiday), holiday
    assert workdays.next_working_day(dt.date(2018, 12, 21)) == dt.date(2018, 12, 27)  # past Christmas
    asked = dt.datetime(2018, 12, 21, 15, tzinfo=workdays.FINLAND)
    assert workdays.answer_due(asked) == dt.datetime(2018, 12, 28, 0, tzinfo=workdays.FINLAND)
