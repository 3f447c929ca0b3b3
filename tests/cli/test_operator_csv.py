"""``avain catalogue import`` with the CSV files operators actually have: what Finnish
Excel writes (semicolons, decimal commas, a byte-order mark, Windows-1252), and files it
cannot read, refused naming the file, the line and the encoding expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from operator_cli import avain, copy_of, initialised

PROVIDER = "1572860-0"

SERVICES = "code;name_fi;category;unit\nkotisiivous;Kotisiivous ja ikkunanpesu, 1 h;home;hour\n"
PRICES = (f"provider;service;price;valid_from\n{PROVIDER};kotisiivous;32,50;2018-01-01\n"
          f"{PROVIDER};meals;9,80 €;2018-01-01\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return initialised(tmp_path_factory.mktemp("csv"),
                       ("provider", "add", "--ytunnus", PROVIDER, "--name", "Kotiapu Oy"))


@pytest.fixture
def db(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


def imported(db, path: Path) -> dict:
    result = avain(db, "catalogue", "import", path, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def services(db) -> dict[str, str]:
    return {s["code"]: s["name_fi"] for s in json.loads(avain(db, "catalogue", "services", "--json").stdout)}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp1252", "latin-1"])
def test_excel_semicolon_csv_is_imported_in_any_of_its_encodings(db, tmp_path, encoding):
    name_fi = "Kodinhoito ja pyykinpesu (ä, ö, å)"
    path = tmp_path / "palvelut.csv"
    path.write_bytes(SERVICES.replace("Kotisiivous ja ikkunanpesu, 1 h", name_fi).encode(encoding))
    assert imported(db, path)["added"] == 1
    assert services(db)["kotisiivous"] == name_fi
    prices = tmp_path / "hinnat.csv"
    prices.write_bytes((PRICES.replace(" €", "") if encoding == "latin-1" else PRICES).encode(encoding))
    data = imported(db, prices)
    assert (data["added"], data["rejected"]) == (2, [])


def test_a_windows_1252_euro_sign_and_decimal_comma_are_read(db, tmp_path):
    path = tmp_path / "hinnat.csv"
    path.write_bytes((SERVICES.splitlines()[0] + "\n" + SERVICES.splitlines()[1] + "\n").encode("cp1252"))
    imported(db, path)
    prices = tmp_path / "prices.csv"
    prices.write_bytes(PRICES.encode("cp1252"))
    assert b"\x80" in prices.read_bytes()  # the euro sign, one byte in Windows-1252
    data = imported(db, prices)
    assert (data["added"], data["rejected"]) == (2, [])


def test_comma_csv_still_imports(db, tmp_path):
    path = tmp_path / "services.csv"
    path.write_text(SERVICES.replace(", 1 h", "").replace(";", ","), encoding="utf-8")
    assert imported(db, path)["added"] == 1


@pytest.mark.parametrize(("content", "line", "byte"), [
    (b"code;name_fi;category;unit\nsiivous;Siivous;home;hour\nx;\x81\x8d;home;hour\n", 3, "0x81"),
    ("code;name_fi;category;unit\nsiivous;Siivous;home;hour\n".encode("utf-16"), 1, "0x00"),
], ids=["bytes undefined in Windows-1252", "UTF-16"])
def test_an_unreadable_csv_is_refused_naming_file_line_and_encoding(db, tmp_path, content, line, byte):
    path = tmp_path / "hinnasto.csv"
    path.write_bytes(content)
    result = avain(db, "catalogue", "import", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"error: hinnasto.csv, line {line}: not UTF-8 or Windows-1252 text (byte {byte}); "
                             "save it as CSV UTF-8 or CSV (semicolon delimited)\n")
    assert "siivous" not in services(db)


def test_a_json_catalogue_that_is_not_utf8_is_refused_naming_the_line(db, tmp_path):
    path = tmp_path / "services.json"
    path.write_bytes('[\n{"code": "siivous", "name_fi": "Siivous käsin", "category": "home", "unit": "hour"}\n]'
                     .encode("latin-1"))
    result = avain(db, "catalogue", "import", path)
    assert result.exit_code == 1
    assert result.stderr == "error: services.json, line 2: not UTF-8 text (byte 0xe4); save it as UTF-8\n"


def test_a_bad_price_is_explained_in_words_not_a_regular_expression(db, tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(f"provider;service;price;valid_from\n{PROVIDER};meals;noin kymppi;2018-01-01\n",
                    encoding="utf-8")
    result = avain(db, "catalogue", "import", path, "--json")
    assert result.exit_code == 1
    reasons = [r["reason"] for r in json.loads(result.stdout)["rejected"]]
    assert reasons[0] == "price: 'noin kymppi' does not fit: Euros per unit: 12,50 or 12.50"
    assert not any("^" in r or "\\d" in r for r in reasons)
