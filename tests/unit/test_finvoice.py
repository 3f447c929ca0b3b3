"""Reading Finvoice 3.0 e-invoices: fields read back exactly, every problem reported at
once with the file and the element, hostile XML refused, the XSD found and loaded once."""

from __future__ import annotations

import datetime as dt
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import finvoice_samples as samples
import pytest

from avain.core import finvoice
from avain.core.domain import Money
from avain.core.errors import ConfigError, ValidationError
from avain.core.finvoice import FinvoiceInvoice
from avain.core.references import rf_reference

REPO = Path(__file__).resolve().parents[2]
#: A copy of the schema in the tests' data (see its README for the source).
SHIPPED_XSD = REPO / "tests" / "data" / "finvoice" / "Finvoice3.0.xsd"

AMOUNT_PATH = "/Finvoice/InvoiceDetails/InvoiceTotalVatIncludedAmount"
REFERENCE_PATH = "/Finvoice/EpiDetails/EpiPaymentInstructionDetails/EpiRemittanceInfoIdentifier"
IBAN_PATH = "/Finvoice/EpiDetails/EpiPartyDetails/EpiBeneficiaryPartyDetails/EpiAccountID"


@pytest.fixture
def xsd(monkeypatch):
    """The Finvoice schema shipped with the tests (tests/data/finvoice), so these tests run
    in a fresh clone too."""
    monkeypatch.setenv(finvoice.XSD_ENV, str(SHIPPED_XSD))
    loaded = finvoice.schema()
    assert loaded is not None
    return loaded


@pytest.fixture
def no_schema(monkeypatch):
    monkeypatch.setattr(finvoice, "schema_path", lambda: None)


def read_one(data: bytes, source: str = "invoice.xml") -> FinvoiceInvoice:
    (invoice,) = finvoice.read(data, source=source)
    return invoice


def errors_of(data: bytes, source: str = "bad.xml") -> list[str]:
    with pytest.raises(ValidationError) as info:
        finvoice.read(data, source=source)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


# --- valid invoices ---------------------------------------------------------------------


def test_the_sample_invoice_is_valid_finvoice_3(xsd):
    """Guards the tests' own sample: if it broke the schema, every test below would lie."""
    assert list(xsd.iter_errors(ET.fromstring(samples.make()))) == []


def test_a_valid_invoice_reads_back_every_field():
    assert finvoice.read(samples.make(), source="lasku-2024-0117.xml") == [FinvoiceInvoice(
        source="lasku-2024-0117.xml",
        seller_id="1572860-0",
        seller_name="Avustajapalvelu Kataja Oy",
        number="2024-0117",
        date=dt.date(2024, 3, 15),
        amount=Money(24_850),
        reference="120241176",
        iban="FI2112345600000785",
        due_date=dt.date(2024, 4, 14),
    )]


def test_the_given_values_are_the_ones_read():
    invoice = read_one(samples.make(
        seller_id="2331972-7", seller_name="Kotiapu Mäkinen Ky", number="A-77",
        date=dt.date(2024, 2, 29), amount=1_234_567, reference="1232",
        iban="FI4950009420028730", due_date=dt.date(2024, 3, 28)))
    assert (invoice.seller_id, invoice.seller_name, invoice.number) == ("2331972-7", "Kotiapu Mäkinen Ky", "A-77")
    assert (invoice.date, invoice.due_date) == (dt.date(2024, 2, 29), dt.date(2024, 3, 28))
    assert invoice.amount == Money(1_234_567)
    assert (invoice.reference, invoice.iban) == ("1232", "FI4950009420028730")


def test_a_file_is_read_from_its_path_and_named_by_source(tmp_path):
    path = tmp_path / "lasku.xml"
    path.write_bytes(samples.make())
    assert read_one(path, source="lasku.xml").number == samples.NUMBER
    assert read_one(str(path), source="lasku.xml").number == samples.NUMBER
    with pytest.raises(ValidationError, match=r"^missing\.xml: no such file$"):
        finvoice.read(tmp_path / "missing.xml", source="missing.xml")


def test_an_iso_8859_15_invoice_keeps_its_scandinavian_letters():
    """Finnish banks still send Finvoice in ISO-8859-15."""
    data = samples.make(seller_name="Hoiva-Äänekoski Oy", encoding="ISO-8859-15")
    assert b"encoding='ISO-8859-15'" in data
    assert read_one(data).seller_name == "Hoiva-Äänekoski Oy"


@pytest.mark.parametrize("text,cents", [
    ("248,50", 24_850),
    ("248", 24_800),
    ("0,01", 1),
    ("1234567,89", 123_456_789),
    ("248,50000", 24_850),  # the schema allows up to five decimals: zeros are still whole cents
])
def test_finnish_decimal_comma_amounts_become_cents(text, cents):
    assert read_one(samples.make(texts={"InvoiceDetails/InvoiceTotalVatIncludedAmount": text})).amount == Money(cents)


@pytest.mark.parametrize("written", ["1572860-0", "15728600", "FI15728600"])
def test_the_seller_business_id_is_normalised_to_the_y_tunnus(written):
    assert read_one(samples.make(seller_id=written)).seller_id == "1572860-0"


def test_an_rf_reference_is_read_in_its_national_form():
    rf = rf_reference(samples.REFERENCE)
    assert rf.startswith("RF")
    assert read_one(samples.make(reference=rf)).reference == samples.REFERENCE


def test_a_national_reference_is_read_as_it_is():
    assert read_one(samples.make(reference="1232")).reference == "1232"


def test_a_seller_name_split_over_several_elements_is_joined():
    data = samples.make(seller_name="Henkilökohtaisen avun ja kotihoidon")
    root = ET.fromstring(data)
    seller = root.find("SellerPartyDetails")
    second = ET.Element("SellerOrganisationName")
    second.text = "palvelut Oy"
    seller.insert(2, second)
    assert read_one(ET.tostring(root)).seller_name == "Henkilökohtaisen avun ja kotihoidon palvelut Oy"


# --- the fields avain uses: every problem, with file and element -----------------------


BAD_FIELDS = [
    pytest.param({"seller_id": "1572860-1"}, "/Finvoice/SellerPartyDetails/SellerPartyIdentifier",
                 "'1572860-1' is not a valid Y-tunnus", id="y-tunnus check digit"),
    pytest.param({"seller_id": "Kataja"}, "/Finvoice/SellerPartyDetails/SellerPartyIdentifier",
                 "is not a valid Y-tunnus", id="y-tunnus not a number"),
    pytest.param({"drop": ["SellerPartyDetails/SellerPartyIdentifier"]},
                 "/Finvoice/SellerPartyDetails/SellerPartyIdentifier", "missing", id="no seller id"),
    pytest.param({"texts": {"SellerPartyDetails/SellerOrganisationName": "  "}},
                 "/Finvoice/SellerPartyDetails/SellerOrganisationName", "is empty", id="blank seller name"),
    pytest.param({"drop": ["InvoiceDetails/InvoiceNumber"]}, "/Finvoice/InvoiceDetails/InvoiceNumber",
                 "missing", id="no invoice number"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceDate": "20240231"}}, "/Finvoice/InvoiceDetails/InvoiceDate",
                 "'20240231' is not a date", id="31 February"),
    pytest.param({"attributes": {"InvoiceDetails/InvoiceDate": {"Format": "DDMMCCYY"}}},
                 "/Finvoice/InvoiceDetails/InvoiceDate", "Format is 'DDMMCCYY', expected 'CCYYMMDD'",
                 id="date format"),
    pytest.param({"currency": "SEK"}, AMOUNT_PATH, "the currency is 'SEK'; avain reads invoices in euros",
                 id="not euros"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceTotalVatIncludedAmount": "248.50"}}, AMOUNT_PATH,
                 "'248.50' is not a Finvoice amount (digits with a decimal comma", id="decimal point"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceTotalVatIncludedAmount": "248,505"}}, AMOUNT_PATH,
                 "'248,505' has fractions of a cent", id="fraction of a cent"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceTotalVatIncludedAmount": "-248,50"}}, AMOUNT_PATH,
                 "the total must be more than 0,00", id="credit note"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceTotalVatIncludedAmount": "0,00"}}, AMOUNT_PATH,
                 "the total must be more than 0,00", id="zero"),
    pytest.param({"texts": {"InvoiceDetails/InvoiceTotalVatIncludedAmount": "99999999,00"}}, AMOUNT_PATH,
                 "is more than avain accepts", id="absurd amount"),
    pytest.param({"reference": "120241177"}, REFERENCE_PATH,
                 "'120241177' is not a valid reference number (the check digit does not match)",
                 id="reference check digit"),
    pytest.param({"reference": "RF71120241176"}, REFERENCE_PATH, "is not a valid RF reference",
                 id="rf check digits"),
    pytest.param({"drop": ["EpiDetails/EpiPaymentInstructionDetails/EpiRemittanceInfoIdentifier"]},
                 REFERENCE_PATH, "missing", id="no reference"),
    pytest.param({"iban": "FI2112345600000786"}, IBAN_PATH, "'FI2112345600000786' is not a valid IBAN",
                 id="iban checksum"),
    pytest.param({"attributes": {"EpiDetails/EpiPartyDetails/EpiBeneficiaryPartyDetails/EpiAccountID":
                                 {"IdentificationSchemeName": "BBAN"}}},
                 IBAN_PATH, "is a domestic (BBAN) account number", id="bban"),
    pytest.param({"texts": {"EpiDetails/EpiPaymentInstructionDetails/EpiDateOptionDate": "20241301"}},
                 "/Finvoice/EpiDetails/EpiPaymentInstructionDetails/EpiDateOptionDate",
                 "'20241301' is not a date", id="due date month 13"),
]


@pytest.mark.parametrize("overrides,path,fragment", BAD_FIELDS)
def test_a_bad_field_names_the_file_and_the_element(overrides, path, fragment):
    errors = errors_of(samples.make(**overrides), source="lasku.xml")
    assert any(e.startswith(f"lasku.xml: {path}: ") and fragment in e for e in errors), errors


@pytest.mark.parametrize("overrides,path,fragment", BAD_FIELDS)
def test_a_bad_field_is_refused_without_a_schema_too(no_schema, overrides, path, fragment):
    """The schema lets most of these through: avain's own checks must not depend on it."""
    errors = errors_of(samples.make(**overrides), source="lasku.xml")
    assert any(e.startswith(f"lasku.xml: {path}: ") and fragment in e for e in errors), errors


def test_every_bad_field_is_reported_at_once():
    data = samples.make(
        seller_id="1572860-1",
        reference="120241177",
        drop=["InvoiceDetails/InvoiceNumber"],
        texts={"InvoiceDetails/InvoiceTotalVatIncludedAmount": "kaksisataa"},
        attributes={"InvoiceDetails/InvoiceTotalVatIncludedAmount": {"AmountCurrencyIdentifier": "USD"}},
    )
    errors = errors_of(data, source="bad.xml")
    expected = [
        ("/Finvoice/SellerPartyDetails/SellerPartyIdentifier", "not a valid Y-tunnus"),
        ("/Finvoice/InvoiceDetails/InvoiceNumber", "missing"),
        (AMOUNT_PATH, "the currency is 'USD'"),
        (AMOUNT_PATH, "'kaksisataa' is not a Finvoice amount"),
        (REFERENCE_PATH, "the check digit does not match"),
    ]
    for path, fragment in expected:
        assert any(e.startswith(f"bad.xml: {path}: ") and fragment in e for e in errors), (path, errors)
    assert all(e.startswith("bad.xml: /Finvoice/") for e in errors), errors


def test_a_field_avain_checked_is_not_reported_again_by_the_schema(xsd):
    errors = errors_of(samples.make(texts={"InvoiceDetails/InvoiceTotalVatIncludedAmount": "248.50"}))
    assert errors == [f"bad.xml: {AMOUNT_PATH}: '248.50' is not a Finvoice amount "
                      "(digits with a decimal comma, e.g. 123,45)"]


# --- the schema -------------------------------------------------------------------------


def test_an_unknown_element_is_named_by_its_path(xsd):
    errors = errors_of(samples.make(append={"InvoiceDetails": "PaymentOverdueFinePercent"}))
    assert errors == ["bad.xml: /Finvoice/InvoiceDetails/PaymentOverdueFinePercent: "
                      "Unexpected child with tag 'PaymentOverdueFinePercent' at position 9."]


def test_a_missing_required_element_names_where_it_was_expected(xsd):
    errors = errors_of(samples.make(drop=["EpiDetails/EpiPaymentInstructionDetails/EpiCharge"]))
    assert len(errors) == 1, errors
    assert errors[0].startswith("bad.xml: /Finvoice/EpiDetails/EpiPaymentInstructionDetails/EpiDateOptionDate: ")
    assert "Tag 'EpiCharge' expected" in errors[0]


def test_a_schema_error_outside_avains_fields_is_reported_with_the_field_errors(xsd):
    errors = errors_of(samples.make(
        seller_id="1572860-1",
        attributes={"EpiDetails/EpiPaymentInstructionDetails/EpiCharge": {"ChargeOption": "FREE"}}))
    assert errors[0].startswith("bad.xml: /Finvoice/SellerPartyDetails/SellerPartyIdentifier: ")
    assert errors[1].startswith("bad.xml: /Finvoice/EpiDetails/EpiPaymentInstructionDetails/EpiCharge: ")
    assert "FREE" in errors[1]
    assert len(errors) == 2


def test_schema_errors_are_capped(xsd):
    root = ET.fromstring(samples.make())
    row = root.find("InvoiceRow")
    row.find("RowVatRatePercent").text = "nolla"
    at = list(root).index(row)
    for _ in range(30):
        root.insert(at, ET.fromstring(ET.tostring(row)))
    errors = errors_of(ET.tostring(root))
    assert len(errors) == finvoice.MAX_SCHEMA_ERRORS + 1
    assert all("/Finvoice/InvoiceRow" in e and "RowVatRatePercent" in e for e in errors[:-1])
    assert errors[-1] == f"bad.xml: more schema errors after the first {finvoice.MAX_SCHEMA_ERRORS} are not shown"


def test_without_a_schema_only_avains_own_checks_run(no_schema):
    data = samples.make(append={"InvoiceDetails": "PaymentOverdueFinePercent"})
    assert read_one(data).number == samples.NUMBER


# --- not an invoice, or hostile ---------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"<Finvoice><InvoiceDetails></Finvoice>",
                                  "Lasku 2024-0117, yhteensä 248,50 €".encode()])
def test_a_file_that_is_not_xml_gives_one_clear_error(data):
    (error,) = errors_of(data, source="lasku.pdf")
    assert error.startswith("lasku.pdf: not an XML document (")


@pytest.mark.parametrize("data,tag", [
    (b"<Invoice><ID>1</ID></Invoice>", "Invoice"),
    (b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>',
     "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"),
    (b"<SOAP-ENV:Envelope xmlns:SOAP-ENV='http://schemas.xmlsoap.org/soap/envelope/'/>",
     "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"),
])
def test_an_xml_document_that_is_not_a_finvoice_gives_one_clear_error(data, tag):
    assert errors_of(data, source="lasku.xml") == [
        f"lasku.xml: not a Finvoice invoice: the document is <{tag}>, not <Finvoice>"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Finvoice [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Finvoice Version="3.0"><SellerPartyDetails><SellerOrganisationName>&lol9;</SellerOrganisationName>
</SellerPartyDetails></Finvoice>"""


def test_an_entity_expansion_bomb_is_refused_not_expanded():
    started = time.monotonic()
    (error,) = errors_of(BILLION_LAUGHS, source="bomb.xml")
    assert error.startswith("bomb.xml: refused: the document declares XML entities")
    assert time.monotonic() - started < 5  # expanding it would take gigabytes and minutes


def test_an_external_entity_is_refused_not_fetched():
    data = (b'<?xml version="1.0"?><!DOCTYPE Finvoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<Finvoice Version=\"3.0\"><InvoiceDetails><InvoiceNumber>&x;</InvoiceNumber>"
            b"</InvoiceDetails></Finvoice>")
    (error,) = errors_of(data, source="xxe.xml")
    assert error.startswith("xxe.xml: refused: the document declares XML entities")


# --- finding and loading the schema ----------------------------------------------------


def test_the_xsd_is_found_beside_the_repository(monkeypatch, tmp_path):
    # a checkout at tmp_path/repo with shared/ beside it, as on the build machines
    beside = tmp_path / "shared" / "data" / "finvoice" / "Finvoice3.0.xsd"
    beside.parent.mkdir(parents=True)
    shutil.copyfile(SHIPPED_XSD, beside)
    monkeypatch.setattr(finvoice, "__file__", str(tmp_path / "repo" / "core" / "finvoice.py"))
    monkeypatch.delenv(finvoice.XSD_ENV, raising=False)
    assert finvoice.schema_path() == beside
    beside.unlink()
    assert finvoice.schema_path() is None  # then only avain's own field checks run


def test_the_environment_variable_names_the_xsd(monkeypatch, tmp_path, xsd):
    copy = tmp_path / "finvoice.xsd"
    shutil.copyfile(finvoice.schema_path(), copy)
    monkeypatch.setenv(finvoice.XSD_ENV, str(copy))
    assert finvoice.schema_path() == copy
    assert finvoice.schema() is not xsd  # another file, another schema object
    errors = errors_of(samples.make(append={"InvoiceDetails": "Bogus"}))
    assert errors[0].startswith("bad.xml: /Finvoice/InvoiceDetails/Bogus: ")


def test_an_environment_variable_naming_no_file_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv(finvoice.XSD_ENV, str(tmp_path / "nowhere.xsd"))
    with pytest.raises(ConfigError, match=r"^AVAIN_FINVOICE_XSD: .*nowhere\.xsd: no such file$"):
        finvoice.read(samples.make(), source="lasku.xml")


def test_a_broken_xsd_is_a_config_error(monkeypatch, tmp_path):
    broken = tmp_path / "broken.xsd"
    broken.write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element/></xs:schema>")
    monkeypatch.setenv(finvoice.XSD_ENV, str(broken))
    with pytest.raises(ConfigError, match=r"broken\.xsd: not a usable Finvoice XML Schema"):
        finvoice.read(samples.make(), source="lasku.xml")


def test_the_schema_is_loaded_once(xsd):
    misses = finvoice._load_schema.cache_info().misses
    read_one(samples.make())
    read_one(samples.make(number="2024-0118"))
    assert finvoice.schema() is xsd
    assert finvoice._load_schema.cache_info().misses == misses


# --- size: refused before it is read ---------------------------------------------------------


def test_a_file_above_the_limit_is_refused_before_it_is_read(tmp_path):
    import tracemalloc

    big = tmp_path / "huge.xml"
    with big.open("wb") as fh:  # 60 MB, as in the review (sparse: nothing is written)
        fh.write(samples.make())
        fh.truncate(60 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as err:
            finvoice.read(big, source="huge.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value) == ("huge.xml: refused: the file is 60.0 MiB (62914560 bytes), more than the "
                              "2.0 MiB (2097152 bytes) a Finvoice invoice may be (the limit is set by "
                              "AVAIN_FINVOICE_MAX_BYTES)")
    assert peak < 1024 * 1024  # the file was not read: before the limit, 60 MB took 450 MB


def test_the_limit_is_set_by_an_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "lasku.xml"
    path.write_bytes(samples.make())
    size = path.stat().st_size
    monkeypatch.setenv(finvoice.MAX_BYTES_ENV, str(size))
    assert finvoice.read(path, source="lasku.xml")[0].number == samples.NUMBER
    monkeypatch.setenv(finvoice.MAX_BYTES_ENV, str(size - 1))
    with pytest.raises(ValidationError, match=rf"^lasku.xml: refused: the file is {size} bytes, more than the "
                                              rf"{size - 1} bytes"):
        finvoice.read(path, source="lasku.xml")
    with pytest.raises(ValidationError, match="more than the"):
        finvoice.read(path.read_bytes(), source="lasku.xml")
    monkeypatch.setenv(finvoice.MAX_BYTES_ENV, "2MB")
    with pytest.raises(ConfigError, match="AVAIN_FINVOICE_MAX_BYTES: '2MB' is not a number of bytes"):
        finvoice.read(path, source="lasku.xml")


def test_a_file_that_grows_after_its_size_was_checked_is_read_no_further(tmp_path, monkeypatch):
    import os

    path = tmp_path / "kasvava.xml"
    path.write_bytes(samples.make() + b" " * 5000)
    real_fstat = os.fstat
    monkeypatch.setattr(finvoice.os, "fstat", lambda fd: type("S", (), {"st_size": 10})() if fd > 2
                        else real_fstat(fd))
    monkeypatch.setenv(finvoice.MAX_BYTES_ENV, "1000")
    with pytest.raises(ValidationError, match="^kasvava.xml: refused: the file is larger than the 1000 bytes"):
        finvoice.read(path, source="kasvava.xml")
