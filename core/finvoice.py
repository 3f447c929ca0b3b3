"""Read Finvoice 3.0 e-invoices into records avain can match against commitments.

A pure reader: bytes (or a file's bytes) in, frozen records out; no database. Parsing goes
through defusedxml, so a document that declares entities (the "billion laughs" attack) or
points at external resources is refused before anything is expanded or fetched.

Two layers of checks run on every document and their errors are reported together:

* the Finvoice 3.0 XML Schema, when one is found (see :func:`schema_path`);
* avain's own checks of the fields it uses (seller business id, invoice number and date,
  total in euros, payment reference, IBAN, due date), which run whether or not a schema is
  available, because the schema lets through things avain cannot pay: a Y-tunnus with a
  wrong check digit, 31 February, fractions of a cent, a reference with a bad check digit.

Every error names the file and the element: ``invoice.xml:
/Finvoice/InvoiceDetails/InvoiceNumber: missing``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from attrs import frozen
from defusedxml import DefusedXmlException, EntitiesForbidden
from defusedxml import ElementTree as SafeElementTree
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fi import ytunnus

from .domain import MAX_CENTS, Money
from .errors import ConfigError, ValidationError
from .references import parse_reference
from .text import unsafe_message, unsafe_strings

if TYPE_CHECKING:  # importing xmlschema takes ~0.4 s: only when an invoice is read
    import xmlschema

#: Environment variable naming the Finvoice 3.0 XSD to validate against.
XSD_ENV = "AVAIN_FINVOICE_XSD"

#: Schema errors reported at most per document; the rest are counted in one line.
MAX_SCHEMA_ERRORS = 20

#: Environment variable setting the largest Finvoice file avain reads, in bytes.
MAX_BYTES_ENV = "AVAIN_FINVOICE_MAX_BYTES"

#: The default limit. A Finvoice invoice is a few kilobytes (attachments travel apart from
#: it); parsing takes several times the file's size in memory, so a file far larger is
#: refused before it is read.
DEFAULT_MAX_BYTES = 2 * 1024 * 1024

ROOT_TAG = "Finvoice"

#: Finvoice amounts: digits and an optional decimal comma (the schema allows 2–5 decimals).
_AMOUNT = re.compile(r"-?[0-9]{1,15}(,[0-9]+)?")

# Paths below the root, as the fields avain uses appear in a Finvoice 3.0 document.
SELLER_ID = "SellerPartyDetails/SellerPartyIdentifier"
SELLER_NAME = "SellerPartyDetails/SellerOrganisationName"
NUMBER = "InvoiceDetails/InvoiceNumber"
DATE = "InvoiceDetails/InvoiceDate"
AMOUNT = "InvoiceDetails/InvoiceTotalVatIncludedAmount"
REFERENCE = "EpiDetails/EpiPaymentInstructionDetails/EpiRemittanceInfoIdentifier"
IBAN = "EpiDetails/EpiPartyDetails/EpiBeneficiaryPartyDetails/EpiAccountID"
DUE_DATE = "EpiDetails/EpiPaymentInstructionDetails/EpiDateOptionDate"
#: Where an invoice without the payment instruction's date states its due date.
TERMS_DUE_DATE = "InvoiceDetails/PaymentTermsDetails/InvoiceDueDate"


@frozen
class FinvoiceInvoice:
    """What avain reads from one Finvoice invoice, every field already checked.

    ``seller_id`` is the Y-tunnus in its usual form (``1572860-0``), ``reference`` the
    national form of the payment reference, ``iban`` compact (no spaces).
    """

    source: str
    seller_id: str
    seller_name: str
    number: str
    date: dt.date
    amount: Money
    reference: str
    iban: str | None
    due_date: dt.date | None


def schema_path() -> Path | None:
    """The Finvoice 3.0 XSD to validate against: ``$AVAIN_FINVOICE_XSD``, else
    ``../shared/data/finvoice/Finvoice3.0.xsd`` beside the repository, else None (then only
    avain's own field checks run).

    A variable that names a missing file is a configuration error, not a silent fallback.
    """
    configured = os.environ.get(XSD_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{XSD_ENV}: {configured}: no such file")
        return path
    # core/ is one level below the repository root; shared/ sits beside the repository.
    beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data" / "finvoice" / "Finvoice3.0.xsd"
    return beside_repo if beside_repo.is_file() else None


def schema() -> xmlschema.XMLSchema | None:
    """The loaded Finvoice schema, built once per path (building it takes about a second)."""
    path = schema_path()
    return None if path is None else _load_schema(str(path))


@functools.cache
def _load_schema(path: str) -> xmlschema.XMLSchema:
    import xmlschema

    try:
        return xmlschema.XMLSchema(path)
    except (xmlschema.XMLSchemaException, OSError) as exc:
        raise ConfigError(f"{path}: not a usable Finvoice XML Schema: {exc}") from exc


def read(path_or_bytes: bytes | str | os.PathLike[str], *, source: str) -> list[FinvoiceInvoice]:
    """Read the invoices of one Finvoice file: ``bytes`` are the document itself, a ``str``
    or path names the file. ``source`` names the file in every error message.

    A file holds one ``<Finvoice>`` invoice; the list is there so callers need not care.
    Raises :class:`ValidationError` listing every problem found (``.errors``).
    """
    data = _read_bytes(path_or_bytes, source)
    root = _parse(data, source)
    reader = _FieldReader(root)
    invoice = reader.invoice(source)
    problems = list(reader.errors)
    flagged = {path for path, _ in problems}
    # The schema error at a path avain already checked says the same in vaguer words.
    problems += [(path, msg) for path, msg in _schema_errors(root) if path not in flagged]
    if problems:
        lines = [f"{source}: {path}: {msg}" if path else f"{source}: {msg}" for path, msg in problems]
        raise ValidationError("\n".join(lines), lines)
    assert invoice is not None  # no field errors means every field was read
    return [invoice]


def max_bytes() -> int:
    """The largest Finvoice file avain reads: ``$AVAIN_FINVOICE_MAX_BYTES``, else
    :data:`DEFAULT_MAX_BYTES`."""
    configured = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not configured:
        return DEFAULT_MAX_BYTES
    if not configured.isdigit() or int(configured) <= 0:
        raise ConfigError(f"{MAX_BYTES_ENV}: {configured!r} is not a number of bytes above 0 "
                          f"(e.g. {DEFAULT_MAX_BYTES})")
    return int(configured)


def _too_large(source: str, size: int | None, limit: int) -> ValidationError:
    what = f"is {_size(size)}, more than" if size is not None else "is larger than"
    return ValidationError(f"{source}: refused: the file {what} the {_size(limit)} a Finvoice invoice may be "
                           f"(the limit is set by {MAX_BYTES_ENV})")


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB ({n} bytes)" if n >= 1024 * 1024 else f"{n} bytes"


def _read_bytes(path_or_bytes: bytes | str | os.PathLike[str], source: str) -> bytes:
    """The document's bytes, never more than :func:`max_bytes`: a file's size is checked
    before it is read, and the read itself stops past the limit (a file may grow)."""
    limit = max_bytes()
    if isinstance(path_or_bytes, bytes):
        if len(path_or_bytes) > limit:
            raise _too_large(source, len(path_or_bytes), limit)
        return path_or_bytes
    try:
        with open(path_or_bytes, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise _too_large(source, size, limit)
            data = fh.read(limit + 1)
    except FileNotFoundError as exc:
        raise ValidationError(f"{source}: no such file") from exc
    except OSError as exc:
        raise ValidationError(f"{source}: cannot be read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise _too_large(source, None, limit)
    return data


def _parse(data: bytes, source: str) -> Element:
    try:
        root = SafeElementTree.fromstring(data)
    except EntitiesForbidden as exc:
        raise ValidationError(
            f"{source}: refused: the document declares XML entities, which a Finvoice invoice "
            "never needs (they are how entity-expansion attacks work)") from exc
    except DefusedXmlException as exc:
        raise ValidationError(f"{source}: refused: {exc}") from exc
    except SafeElementTree.ParseError as exc:
        raise ValidationError(f"{source}: not an XML document ({exc})") from exc
    if root.tag != ROOT_TAG:
        raise ValidationError(
            f"{source}: not a Finvoice invoice: the document is <{root.tag}>, not <{ROOT_TAG}>")
    return root


def _schema_errors(root: Element) -> list[tuple[str, str]]:
    """(element path, reason) of each schema error, at most MAX_SCHEMA_ERRORS of them."""
    loaded = schema()
    if loaded is None:
        return []
    found = list(itertools.islice(loaded.iter_errors(root), MAX_SCHEMA_ERRORS + 1))
    errors = []
    for err in found[:MAX_SCHEMA_ERRORS]:
        path = err.path or ""
        invalid_tag = getattr(err, "invalid_tag", None)
        if invalid_tag:  # an unexpected child: point at the child, not its parent
            path = f"{path}/{invalid_tag}"
        errors.append((path, err.reason or err.message))
    if len(found) > MAX_SCHEMA_ERRORS:
        errors.append(("", f"more schema errors after the first {MAX_SCHEMA_ERRORS} are not shown"))
    return errors


class _FieldReader:
    """Reads the fields avain uses, collecting one (path, message) per problem."""

    def __init__(self, root: Element):
        self.root = root
        self.errors: list[tuple[str, str]] = []

    def invoice(self, source: str) -> FinvoiceInvoice | None:
        fields = {
            "seller_id": self.seller_id(),
            "seller_name": self.seller_name(),
            "number": self.text(NUMBER),
            "date": self.date(DATE, required=True),
            "amount": self.amount(),
            "reference": self.reference(),
            "iban": self.iban(),
            "due_date": self.due_date(),
        }
        if self.errors:
            return None
        return FinvoiceInvoice(source=source, **fields)

    def fail(self, rel_path: str, message: str) -> None:
        self.errors.append((f"/{ROOT_TAG}/{rel_path}", message))

    def element(self, rel_path: str, *, required: bool = True) -> Element | None:
        elem = self.root.find(rel_path)
        if elem is None and required:
            self.fail(rel_path, "missing")
        return elem

    def text(self, rel_path: str, *, required: bool = True) -> str | None:
        elem = self.element(rel_path, required=required)
        if elem is None:
            return None
        text = (elem.text or "").strip()
        if not text and required:
            self.fail(rel_path, "is empty")
        return self.safe(rel_path, text) or None

    def safe(self, rel_path: str, text: str) -> str:
        """``text``, or a problem when it holds a control or direction character."""
        for _path, code in unsafe_strings(text):
            self.fail(rel_path, unsafe_message(code))
            return ""
        return text

    def seller_id(self) -> str | None:
        text = self.text(SELLER_ID)
        if text is None:
            return None
        try:
            return ytunnus.format(ytunnus.validate(text))
        except StdnumError as exc:
            self.fail(SELLER_ID, f"{text!r} is not a valid Y-tunnus (business id such as 1572860-0): "
                                 f"{_reason(exc)}")
            return None

    def seller_name(self) -> str | None:
        # Finvoice splits a long name over several SellerOrganisationName elements.
        parts = [(e.text or "").strip() for e in self.root.findall(SELLER_NAME)]
        name = " ".join(p for p in parts if p)
        if not parts:
            self.fail(SELLER_NAME, "missing")
        elif not name:
            self.fail(SELLER_NAME, "is empty")
        return self.safe(SELLER_NAME, name) or None

    def date(self, rel_path: str, *, required: bool) -> dt.date | None:
        elem = self.element(rel_path, required=required)
        if elem is None:
            return None
        text = (elem.text or "").strip()
        fmt = elem.get("Format")
        if fmt != "CCYYMMDD":
            self.fail(rel_path, f"Format is {fmt!r}, expected 'CCYYMMDD'" if fmt else
                      "has no Format attribute (expected Format=\"CCYYMMDD\")")
            return None
        try:
            if not re.fullmatch(r"[0-9]{8}", text):
                raise ValueError(text)
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            self.fail(rel_path, f"{text!r} is not a date in the form CCYYMMDD (e.g. 20240315)")
            return None

    def due_date(self) -> dt.date | None:
        """The payment instruction's due date, else the one in the payment terms."""
        if self.root.find(DUE_DATE) is not None:
            return self.date(DUE_DATE, required=False)
        return self.date(TERMS_DUE_DATE, required=False)

    def amount(self) -> Money | None:
        elem = self.element(AMOUNT)
        if elem is None:
            return None
        text = (elem.text or "").strip()
        currency = elem.get("AmountCurrencyIdentifier")
        problems = []
        if currency != "EUR":
            problems.append(f"the currency is {currency!r}; avain reads invoices in euros (EUR) only"
                            if currency else "has no AmountCurrencyIdentifier (avain reads EUR only)")
        cents = Decimal(0)
        if not _AMOUNT.fullmatch(text):
            problems.append(f"{text!r} is not a Finvoice amount (digits with a decimal comma, e.g. 123,45)")
        else:
            cents = Decimal(text.replace(",", ".")) * 100
            if cents != cents.to_integral_value():
                problems.append(f"{text!r} has fractions of a cent")
            elif cents <= 0:
                problems.append(f"{text!r}: the total must be more than 0,00 (avain does not read credit notes)")
            elif cents > MAX_CENTS:
                problems.append(f"{text!r} is more than avain accepts ({Money(MAX_CENTS).fi()})")
        for problem in problems:
            self.fail(AMOUNT, problem)
        return None if problems else Money(int(cents))

    def reference(self) -> str | None:
        text = self.text(REFERENCE)
        if text is None:
            return None
        path = f"/{ROOT_TAG}/{REFERENCE}"
        try:
            return parse_reference(text, field_name=path)
        except ValidationError as exc:
            self.fail(REFERENCE, str(exc).removeprefix(f"{path}: "))
            return None

    def iban(self) -> str | None:
        # The schema requires an account; avain itself needs one only when it pays.
        elem = self.element(IBAN, required=False)
        text = (elem.text or "").strip() if elem is not None else ""
        if not text:
            return None
        if elem.get("IdentificationSchemeName") == "BBAN":
            self.fail(IBAN, f"{text!r} is a domestic (BBAN) account number; avain pays to an IBAN")
            return None
        try:
            return stdnum_iban.validate(text)
        except StdnumError as exc:
            self.fail(IBAN, f"{text!r} is not a valid IBAN: {_reason(exc)}")
            return None


def _reason(exc: StdnumError) -> str:
    """python-stdnum's message as the tail of ours: "the number's checksum … is invalid"."""
    return exc.message[:1].lower() + exc.message[1:].rstrip(".")
