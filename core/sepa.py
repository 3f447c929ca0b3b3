"""SEPA credit transfer files (ISO 20022 pain.001): a pure writer, no database.

``build`` turns one debtor account and a list of payments into a customer credit transfer
initiation, pain.001.001.09 (current) or pain.001.001.03 (banks that have not moved on),
and validates the bytes against the official schema shipped with the ``sepaxml`` package
before returning them: an invalid file is a ``ValidationError``, never bytes.

Choices the schemas leave open, made the way Finnish banks expect them:

* one payment information block, batch booked, service level SEPA, charges SLEV, EUR only;
* amounts are written from integer cents as ``euros.cc``, so no float ever rounds a cent;
* the reference is always structured: ``Strd/CdtrRefInf`` with type SCOR and the RF form
  of the national reference; the optional free text goes next to it in
  ``Strd/AddtlRmtInf`` (the EPC rules allow structured *or* unstructured information,
  not both);
* without a BIC the debtor agent is ``Othr/Id = NOTPROVIDED`` and the creditor agent is
  left out, as the EPC implementation guidelines say for both versions;
* names and texts keep to the SEPA Latin set plus the Finnish letters Ä Ö Å; anything
  else is transliterated (é → e, ß → ss, & → +) or becomes a full stop, and names are
  cut to 70 characters; identifiers keep to the plain Latin set and 35 characters.
"""

from __future__ import annotations

import io
import unicodedata
import xml.etree.ElementTree as ET
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files

import xmlschema
from attrs import frozen
from stdnum import bic as bic_mod
from stdnum import iban as iban_mod
from stdnum.exceptions import ValidationError as StdnumError

from .domain import Money, positive_amount
from .errors import ValidationError
from .references import parse_reference, rf_reference

#: The pain.001.001 versions ``build`` writes, newest first.
VERSIONS = ("09", "03")

MAX_NAME = 70
MAX_ID = 35
MAX_TEXT = 140
NOT_PROVIDED = "NOTPROVIDED"

_LATIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
_FINNISH_LETTERS = frozenset("ÄÖÅäöå")
#: Characters whose decomposition says nothing useful about them.
_SUBSTITUTES = {
    "&": "+", "ß": "ss", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe",
    "Þ": "TH", "þ": "th", "Ð": "D", "ð": "d", "Đ": "D", "đ": "d", "Ł": "L", "ł": "l",
    "_": "-", '"': "'", "‘": "'", "’": "'", "“": "'", "”": "'", "–": "-", "—": "-", "⁄": "/",
}


@frozen
class Debtor:
    """The account the money leaves from: the organiser's own bank account."""

    name: str
    iban: str
    bic: str | None = None


@frozen
class Payment:
    """One credit transfer. ``reference`` is the national reference (viitenumero); the file
    carries its RF form. ``end_to_end_id`` comes back on the bank statement."""

    end_to_end_id: str
    creditor_name: str
    creditor_iban: str
    creditor_bic: str | None
    amount: Money
    reference: str
    remittance_text: str | None = None


@frozen
class _Line:
    """A payment checked and cleaned, ready to be written."""

    end_to_end_id: str
    creditor_name: str
    creditor_iban: str
    creditor_bic: str | None
    cents: int
    rf_reference: str
    remittance_text: str | None


def namespace(version: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:pain.001.001.{version}"


# --- characters -------------------------------------------------------------------------


def latin_text(text: str, *, finnish_letters: bool = True) -> str:
    """``text`` in the SEPA Latin character set (with Ä Ö Å unless told otherwise), runs of
    white space as one space, nothing at either end."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _LATIN or (finnish_letters and ch in _FINNISH_LETTERS):
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif ch in _SUBSTITUTES:
            out.append(_SUBSTITUTES[ch])
        elif not unicodedata.combining(ch):
            # é → e, ﬁ → fi, ½ → 1/2; what has no Latin form at all becomes a full stop
            plain = "".join(c if c in _LATIN else _SUBSTITUTES.get(c, "")
                            for c in unicodedata.normalize("NFKD", ch))
            out.append(plain or ".")
    return " ".join("".join(out).split())


def _cut(text: str, limit: int) -> str:
    return text[:limit].rstrip()


def _identifier(text: str) -> str:
    """An id as the EPC rules want it: plain Latin, no ``/`` at either end, no ``//``."""
    value = latin_text(text, finnish_letters=False)
    while "//" in value:
        value = value.replace("//", "/")
    return _cut(value.strip("/ "), MAX_ID).strip("/ ")


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _cents(text: str | None, *, where: str) -> int:
    try:
        cents = Decimal((text or "").strip()) * 100
    except InvalidOperation:
        cents = Decimal("NaN")
    if not cents.is_finite() or cents != cents.to_integral_value():
        raise ValidationError(f"{where}: {text!r} is not an amount in euros and cents")
    return int(cents)


# --- checks -----------------------------------------------------------------------------


def _checked_iban(value: str, where: str, errors: list[str]) -> str:
    try:
        return iban_mod.compact(iban_mod.validate(value))
    except StdnumError:
        errors.append(f"{where}: {value!r} is not a valid IBAN")
        return ""


def _checked_bic(value: str | None, where: str, errors: list[str]) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return bic_mod.compact(bic_mod.validate(value))
    except StdnumError:
        errors.append(f"{where}: {value!r} is not a valid BIC (8 or 11 characters, e.g. NDEAFIHH)")
        return None


def _checked_name(value: str, where: str, errors: list[str]) -> str:
    name = _cut(latin_text(value or ""), MAX_NAME)
    if not name:
        errors.append(f"{where}: must not be empty")
    return name


def _checked_debtor(debtor: Debtor, errors: list[str]) -> Debtor:
    return Debtor(
        name=_checked_name(debtor.name, "debtor.name", errors),
        iban=_checked_iban(debtor.iban, "debtor.iban", errors),
        bic=_checked_bic(debtor.bic, "debtor.bic", errors),
    )


def _checked_line(number: int, payment: Payment, errors: list[str]) -> _Line:
    e2e = _identifier(payment.end_to_end_id or "")
    where = f"payment {number} ({e2e or 'no end-to-end id'})"
    if not e2e:
        errors.append(f"{where}: end_to_end_id: must not be empty")
    cents = 0
    if not isinstance(payment.amount, Money):
        errors.append(f"{where}: amount: must be Money (integer cents), not {type(payment.amount).__name__}")
    elif payment.amount.currency != "EUR":
        errors.append(f"{where}: amount: SEPA credit transfers are in EUR, not {payment.amount.currency}")
    else:
        try:
            cents = positive_amount(payment.amount, field_name=f"{where}: amount").cents
        except ValidationError as exc:
            errors.append(str(exc))
    rf = ""
    try:
        rf = rf_reference(parse_reference(payment.reference or "", field_name=f"{where}: reference"))
    except ValidationError as exc:
        errors.append(str(exc))
    return _Line(
        end_to_end_id=e2e,
        creditor_name=_checked_name(payment.creditor_name, f"{where}: creditor_name", errors),
        creditor_iban=_checked_iban(payment.creditor_iban, f"{where}: creditor_iban", errors),
        creditor_bic=_checked_bic(payment.creditor_bic, f"{where}: creditor_bic", errors),
        cents=cents,
        rf_reference=rf,
        remittance_text=_cut(latin_text(payment.remittance_text or ""), MAX_TEXT) or None,
    )


# --- writing ----------------------------------------------------------------------------


def _sub(parent: ET.Element, path: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append the chain of elements ``A/B/C`` under ``parent``; ``text`` and ``attrib`` go
    on the last one."""
    element = parent
    tags = path.split("/")
    for tag in tags[:-1]:
        element = ET.SubElement(element, tag)
    element = ET.SubElement(element, tags[-1], attrib)
    element.text = text
    return element


def _agent(parent: ET.Element, tag: str, bic: str | None, version: str) -> None:
    institution = _sub(parent, f"{tag}/FinInstnId")
    if bic:
        _sub(institution, "BICFI" if version == "09" else "BIC", bic)
    else:
        _sub(institution, "Othr/Id", NOT_PROVIDED)


def _document(*, message_id: str, debtor: Debtor, lines: list[_Line], execution_date: date,
              created_at: datetime, version: str) -> ET.Element:
    # The namespace is the document's default one, declared on the root: every element is
    # in it and the one attribute (Ccy) is in none, which ET's default_namespace refuses.
    document = ET.Element("Document", xmlns=namespace(version))
    initiation = _sub(document, "CstmrCdtTrfInitn")
    count, total = str(len(lines)), _euros(sum(line.cents for line in lines))

    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", message_id)
    _sub(header, "CreDtTm", created_at.isoformat(timespec="seconds"))
    _sub(header, "NbOfTxs", count)
    _sub(header, "CtrlSum", total)
    _sub(header, "InitgPty/Nm", debtor.name)

    block = _sub(initiation, "PmtInf")
    _sub(block, "PmtInfId", message_id)
    _sub(block, "PmtMtd", "TRF")
    _sub(block, "BtchBookg", "true")
    _sub(block, "NbOfTxs", count)
    _sub(block, "CtrlSum", total)
    _sub(block, "PmtTpInf/SvcLvl/Cd", "SEPA")
    _sub(block, "ReqdExctnDt/Dt" if version == "09" else "ReqdExctnDt", f"{execution_date:%Y-%m-%d}")
    _sub(block, "Dbtr/Nm", debtor.name)
    _sub(block, "DbtrAcct/Id/IBAN", debtor.iban)
    _agent(block, "DbtrAgt", debtor.bic, version)
    _sub(block, "ChrgBr", "SLEV")

    for line in lines:
        transfer = _sub(block, "CdtTrfTxInf")
        _sub(transfer, "PmtId/EndToEndId", line.end_to_end_id)
        _sub(transfer, "Amt/InstdAmt", _euros(line.cents), Ccy="EUR")
        if line.creditor_bic:
            _agent(transfer, "CdtrAgt", line.creditor_bic, version)
        _sub(transfer, "Cdtr/Nm", line.creditor_name)
        _sub(transfer, "CdtrAcct/Id/IBAN", line.creditor_iban)
        structured = _sub(transfer, "RmtInf/Strd")
        reference = _sub(structured, "CdtrRefInf")
        _sub(reference, "Tp/CdOrPrtry/Cd", "SCOR")
        _sub(reference, "Ref", line.rf_reference)
        if line.remittance_text:
            _sub(structured, "AddtlRmtInf", line.remittance_text)
    return document


@cache
def schema(version: str) -> xmlschema.XMLSchema:
    """The official pain.001.001.<version> schema, loaded once per process."""
    source = files("sepaxml") / "schemas" / f"pain.001.001.{version}.xsd"
    with source.open("rb") as xsd:
        return xmlschema.XMLSchema(xsd)


def _check_against_schema(data: bytes, version: str) -> None:
    problems = [f"{error.path}: {error.reason}" for error in schema(version).iter_errors(io.BytesIO(data))]
    if problems:
        raise ValidationError(
            f"the payment file does not validate against pain.001.001.{version}.xsd: " + "; ".join(problems),
            problems,
        )


def build(*, message_id: str, debtor: Debtor, payments: list[Payment], execution_date: date,
          created_at: datetime, version: str = "09") -> bytes:
    """A pain.001.001.<version> credit transfer file paying every payment from ``debtor``'s
    account on ``execution_date``, as UTF-8 bytes that validate against the official schema.

    Every problem in the input is reported at once in one ``ValidationError``; a file that
    the schema refuses is a ``ValidationError`` too, and no bytes are returned.
    """
    if version not in VERSIONS:
        raise ValidationError(f"version: {version!r} is not a pain.001.001 version avain writes "
                              f"({', '.join(VERSIONS)})")
    errors: list[str] = []
    msg_id = _identifier(message_id or "")
    if not msg_id:
        errors.append("message_id: must not be empty")
    checked_debtor = _checked_debtor(debtor, errors)
    if not payments:
        errors.append("payments: a payment file needs at least one payment")
    lines = [_checked_line(number, payment, errors) for number, payment in enumerate(payments, 1)]
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line.end_to_end_id and line.end_to_end_id in seen:
            errors.append(f"payment {number} ({line.end_to_end_id}): end_to_end_id: "
                          f"used by an earlier payment in the file (ids are cut to {MAX_ID} characters)")
        seen.add(line.end_to_end_id)
    if errors:
        raise ValidationError("\n".join(errors), errors)

    document = _document(message_id=msg_id, debtor=checked_debtor, lines=lines,
                         execution_date=execution_date, created_at=created_at, version=version)
    data = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(document, encoding="unicode").encode("utf-8"))
    _check_against_schema(data, version)
    return data


# --- reading ----------------------------------------------------------------------------


def read_totals(data: bytes) -> tuple[int, int]:
    """The number of transactions and the control sum in cents of a pain.001.001.09 or .03
    file, as its group header states them, after checking that the transactions in the
    file add up to the same."""
    try:
        document = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValidationError(f"payment file: not XML ({exc})") from exc
    found = {f"{{{namespace(v)}}}Document": v for v in VERSIONS}
    if document.tag not in found:
        raise ValidationError(f"payment file: not a pain.001.001.{'/'.join(VERSIONS)} document "
                              f"(root element {document.tag})")
    ns = {"p": namespace(found[document.tag])}
    header = document.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    if header is None:
        raise ValidationError("payment file: no group header (GrpHdr)")
    amounts = [_cents(amount.text, where="payment file: InstdAmt")
               for amount in document.iterfind("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns)]
    count_text = header.findtext("p:NbOfTxs", default="", namespaces=ns)
    if not count_text.strip().isdigit():
        raise ValidationError(f"payment file: GrpHdr/NbOfTxs {count_text!r} is not a number")
    count = int(count_text)
    sum_text = header.findtext("p:CtrlSum", namespaces=ns)
    total = sum(amounts) if sum_text is None else _cents(sum_text, where="payment file: GrpHdr/CtrlSum")
    if (count, total) != (len(amounts), sum(amounts)):
        raise ValidationError(
            f"payment file: the header says {count} payments of {Money(total).fi()} in all, "
            f"the file holds {len(amounts)} payments of {Money(sum(amounts)).fi()}"
        )
    return count, total
