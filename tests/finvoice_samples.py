"""Finvoice 3.0 invoices for tests: a provider of personal assistance bills a wellbeing
services county. ``make()`` gives a document that validates against the Finvoice 3.0 XSD;
its keywords change the fields avain reads, and ``drop``/``texts``/``attributes``/``append``
break it on purpose for negative tests.

Paths in those keywords are relative to ``<Finvoice>``, e.g. ``InvoiceDetails/InvoiceNumber``.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from avain.core.references import fi_reference

SELLER_ID = "1572860-0"
SELLER_NAME = "Avustajapalvelu Kataja Oy"
NUMBER = "2024-0117"
DATE = dt.date(2024, 3, 15)
DUE_DATE = dt.date(2024, 4, 14)
AMOUNT = 24_850  # cents: ten hours of personal assistance at 24,85 €
REFERENCE = fi_reference(2024117)  # what avain printed on the payment commitment
IBAN = "FI2112345600000785"
BUYER = "Kainuun sote"


def euros(cents: int) -> str:
    """Cents in Finvoice's form: a decimal comma and two decimals (``248,50``)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole},{part:02d}"


def ccyymmdd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _el(tag: str, text: str | None = None, children: Iterable[ET.Element] = (), **attrib: str) -> ET.Element:
    elem = ET.Element(tag, attrib)
    elem.text = text
    elem.extend(children)
    return elem


def _date(tag: str, day: dt.date) -> ET.Element:
    return _el(tag, ccyymmdd(day), Format="CCYYMMDD")


def make(
    *,
    seller_id: str = SELLER_ID,
    seller_name: str = SELLER_NAME,
    number: str = NUMBER,
    date: dt.date = DATE,
    amount: int = AMOUNT,
    reference: str = REFERENCE,
    iban: str = IBAN,
    currency: str = "EUR",
    due_date: dt.date = DUE_DATE,
    encoding: str = "UTF-8",
    drop: Iterable[str] = (),
    texts: Mapping[str, str] = {},  # noqa: B006 - read only
    attributes: Mapping[str, Mapping[str, str]] = {},  # noqa: B006 - read only
    append: Mapping[str, str] = {},  # noqa: B006 - read only
) -> bytes:
    """A Finvoice 3.0 invoice as bytes in ``encoding``.

    ``drop``: paths of elements to remove. ``texts``: path → replacement text.
    ``attributes``: path → attributes to set. ``append``: parent path → tag of an element
    (with text ``x``) added as the parent's last child, e.g. one the schema does not know.
    """
    hours = 10
    scheme = "ISO" if reference.upper().startswith("RF") else "SPY"
    rows = [
        _el("InvoiceRow", children=[
            _el("ArticleIdentifier", "HA-01"),
            _el("ArticleName", "Henkilökohtainen apu, arki-ilta"),
            _el("InvoicedQuantity", str(hours), QuantityUnitCode="h"),
            _date("StartDate", date - dt.timedelta(days=14)),
            _date("EndDate", date - dt.timedelta(days=1)),
            _el("UnitPriceAmount", euros(amount // hours), AmountCurrencyIdentifier=currency),
            _el("RowFreeText", "Palvelu henkilökohtaisella budjetilla, maksusitoumuksen mukaan"),
            _el("RowVatRatePercent", "0"),
            _el("RowVatCode", "E"),  # social services are exempt from VAT (AVL 37 §)
            _el("RowVatAmount", euros(0), AmountCurrencyIdentifier=currency),
            _el("RowVatExcludedAmount", euros(amount), AmountCurrencyIdentifier=currency),
            _el("RowAmount", euros(amount), AmountCurrencyIdentifier=currency),
        ]),
    ]
    root = _el("Finvoice", children=[
        _el("SellerPartyDetails", children=[
            _el("SellerPartyIdentifier", seller_id),
            _el("SellerOrganisationName", seller_name),
            _el("SellerPostalAddressDetails", children=[
                _el("SellerStreetName", "Kauppakatu 21"),
                _el("SellerTownName", "Kajaani"),
                _el("SellerPostCodeIdentifier", "87100"),
                _el("CountryCode", "FI"),
            ]),
        ]),
        _el("BuyerPartyDetails", children=[
            _el("BuyerOrganisationName", BUYER),
            _el("BuyerOrganisationDepartment", "Henkilökohtainen budjetti"),
            _el("BuyerPostalAddressDetails", children=[
                _el("BuyerStreetName", "Sotkamontie 13"),
                _el("BuyerTownName", "Kajaani"),
                _el("BuyerPostCodeIdentifier", "87140"),
                _el("CountryCode", "FI"),
            ]),
        ]),
        _el("InvoiceDetails", children=[
            _el("InvoiceTypeCode", "INV01"),
            _el("InvoiceTypeText", "LASKU"),
            _el("OriginCode", "Original"),
            _el("InvoiceNumber", number),
            _date("InvoiceDate", date),
            _el("InvoiceTotalVatExcludedAmount", euros(amount), AmountCurrencyIdentifier=currency),
            _el("InvoiceTotalVatAmount", euros(0), AmountCurrencyIdentifier=currency),
            _el("InvoiceTotalVatIncludedAmount", euros(amount), AmountCurrencyIdentifier=currency),
        ]),
        *rows,
        _el("EpiDetails", children=[
            _el("EpiIdentificationDetails", children=[
                _date("EpiDate", date),
                _el("EpiReference", "0"),
            ]),
            _el("EpiPartyDetails", children=[
                _el("EpiBfiPartyDetails", children=[
                    _el("EpiBfiIdentifier", "NDEAFIHH", IdentificationSchemeName="BIC"),
                ]),
                _el("EpiBeneficiaryPartyDetails", children=[
                    _el("EpiNameAddressDetails", seller_name[:35]),
                    _el("EpiBei", seller_id),
                    _el("EpiAccountID", iban, IdentificationSchemeName="IBAN"),
                ]),
            ]),
            _el("EpiPaymentInstructionDetails", children=[
                _el("EpiRemittanceInfoIdentifier", reference, IdentificationSchemeName=scheme),
                _el("EpiInstructedAmount", euros(amount), AmountCurrencyIdentifier=currency),
                _el("EpiCharge", "SLEV", ChargeOption="SLEV"),
                _date("EpiDateOptionDate", due_date),
            ]),
        ]),
    ], Version="3.0")
    root.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root.set("xsi:noNamespaceSchemaLocation", "Finvoice3.0.xsd")

    for path, text in texts.items():
        _find(root, path).text = text
    for path, attrib in attributes.items():
        _find(root, path).attrib.update(attrib)
    for parent, tag in append.items():
        _find(root, parent).append(_el(tag, "x"))
    for path in drop:
        parent_path, _, tag = path.rpartition("/")
        parent = _find(root, parent_path) if parent_path else root
        parent.remove(_find(parent, tag))
    ET.indent(root)
    return ET.tostring(root, encoding=encoding, xml_declaration=True)


def _find(root: ET.Element, path: str) -> ET.Element:
    elem = root.find(path)
    if elem is None:
        raise KeyError(f"the sample has no element {path}")
    return elem
