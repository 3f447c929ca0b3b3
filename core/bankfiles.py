"""Read the bank's answers to avain's payment files: a pure reader, no database.

Two ISO 20022 messages close the payment loop:

* **pain.002** (customer payment status report): the bank accepted or rejected the
  payment file, a payment information block, or single transactions, with a reason code
  (``AC04`` closed account, ``AM04`` insufficient funds…) and text;
* **camt.054** (bank-to-customer debit notification): a debit was booked on the
  organiser's account — one entry per transaction, or one per batch.

Both are matched by the ids avain's pain.001 writes (see :mod:`avain.core.sepa`): the
message id (which is also the payment information id) and each payment's EndToEndId.

Parsing goes through defusedxml (no entity expansion, nothing fetched); every document is
validated against the official schema shipped in ``core/schemas/iso20022`` (no Python
package carries the pain.002/camt.054 schemas), and every error names the file and the
element.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from attrs import frozen
from defusedxml import DefusedXmlException, EntitiesForbidden
from defusedxml import ElementTree as SafeElementTree

from .errors import ConfigError, ValidationError

if TYPE_CHECKING:  # importing xmlschema takes ~0.4 s: only when a file is read
    import xmlschema

#: The message versions avain reads: {kind: (version, root child element)}.
MESSAGES = {
    "pain.002": ("pain.002.001.11", "CstmrPmtStsRpt"),
    "camt.054": ("camt.054.001.08", "BkToCstmrDbtCdtNtfctn"),
}

#: Transaction and group statuses (ISO external code sets) that mean the bank took the
#: payment; RJCT means it did not. Anything else (RCVD, ACTC, PDNG…) is not an answer yet.
ACCEPTED = frozenset({"ACCP", "ACSP", "ACSC", "ACWC", "ACCC"})
REJECTED = "RJCT"

MAX_SCHEMA_ERRORS = 20


def namespace(version: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:{version}"


@frozen
class Reason:
    """The bank's reason for a status: an ISO code (or the bank's own) and its words."""

    code: str | None
    text: str | None


@frozen
class TransactionStatus:
    """One payment's status in a pain.002 (``TxInfAndSts``); ``entry`` names it in errors."""

    entry: str
    end_to_end_id: str | None
    status: str | None
    reason: Reason | None


@frozen
class StatusReport:
    """A pain.002: the status of one of our payment files, its blocks and transactions."""

    message_id: str
    original_message_id: str
    group_status: str | None
    group_reason: Reason | None
    block_status: dict[str, tuple[str | None, Reason | None]]  # PmtInfId → status, reason
    transactions: tuple[TransactionStatus, ...]
    kind: str = "pain.002"


@frozen
class BookedDebit:
    """A booked debit of a camt.054: one transaction (``end_to_end_id``) or, batch booked,
    a whole payment information block (``payment_info_id``); amounts in cents."""

    entry: str
    end_to_end_id: str | None
    payment_info_id: str | None
    amount: int


@frozen
class DebitNotification:
    """A camt.054: the booked debits on the organiser's account; entries not booked
    (pending) or not debits are counted in ``ignored``."""

    message_id: str
    debits: tuple[BookedDebit, ...]
    ignored: int
    kind: str = "camt.054"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def schema(version: str) -> xmlschema.XMLSchema:
    """The official schema of ``version``, loaded once per process."""
    import xmlschema

    source = files("avain.core") / "schemas" / "iso20022" / f"{version}.xsd"
    try:
        with source.open("rb") as xsd:
            return xmlschema.XMLSchema(xsd)
    except (xmlschema.XMLSchemaException, OSError) as exc:
        raise ConfigError(f"{version}.xsd: not a usable schema: {exc}") from exc


def read(data: bytes, *, source: str) -> StatusReport | DebitNotification:
    """The bank's message in ``data``, recognised by its namespace, validated against its
    schema. Raises :class:`ValidationError` naming ``source`` and each element at fault."""
    root = _parse(data, source)
    kinds = {f"{{{namespace(version)}}}Document": kind for kind, (version, _) in MESSAGES.items()}
    kind = kinds.get(root.tag)
    if kind is None:
        known = " or ".join(version for version, _ in MESSAGES.values())
        raise ValidationError(f"{source}: not a bank answer avain reads ({known}); the document is <{root.tag}>")
    version, body = MESSAGES[kind]
    problems = _schema_errors(root, version)
    if problems:
        lines = [f"{source}: {p}" for p in problems]
        raise ValidationError("\n".join(lines), lines)
    ns = {"m": namespace(version)}
    top = root.find(f"m:{body}", ns)
    return _status_report(top, ns) if kind == "pain.002" else _debit_notification(top, ns, source)


def _parse(data: bytes, source: str) -> Element:
    try:
        return SafeElementTree.fromstring(data)
    except EntitiesForbidden as exc:
        raise ValidationError(f"{source}: refused: the document declares XML entities, which a bank's "
                              "answer never needs") from exc
    except DefusedXmlException as exc:
        raise ValidationError(f"{source}: refused: {exc}") from exc
    except SafeElementTree.ParseError as exc:
        raise ValidationError(f"{source}: not an XML document ({exc})") from exc


def _schema_errors(root: Element, version: str) -> list[str]:
    found = list(itertools.islice(schema(version).iter_errors(root), MAX_SCHEMA_ERRORS + 1))
    errors = [_plain(f"{err.path or '/'}: {err.reason or err.message}") for err in found[:MAX_SCHEMA_ERRORS]]
    if len(found) > MAX_SCHEMA_ERRORS:
        errors.append(f"more schema errors after the first {MAX_SCHEMA_ERRORS} are not shown")
    return errors


def _plain(text: str) -> str:
    """A schema error without the namespace in every tag: /Document/Foo, not /{urn:…}Document/…"""
    return re.sub(r"\{urn:iso:std:iso:20022:tech:xsd:[^}]*\}", "", text)


def _text(elem: Element | None, path: str, ns: dict[str, str]) -> str | None:
    if elem is None:
        return None
    text = elem.findtext(path, namespaces=ns)
    return text.strip() if text and text.strip() else None


def _reason(parent: Element, ns: dict[str, str]) -> Reason | None:
    """The first status reason (``StsRsnInf``) of an element, if any."""
    info = parent.find("m:StsRsnInf", ns)
    if info is None:
        return None
    code = _text(info, "m:Rsn/m:Cd", ns) or _text(info, "m:Rsn/m:Prtry", ns)
    words = [t.text.strip() for t in info.findall("m:AddtlInf", ns) if t.text and t.text.strip()]
    return Reason(code, " ".join(words) or None)


def _status_report(top: Element, ns: dict[str, str]) -> StatusReport:
    group = top.find("m:OrgnlGrpInfAndSts", ns)
    blocks: dict[str, tuple[str | None, Reason | None]] = {}
    transactions = []
    for b, block in enumerate(top.findall("m:OrgnlPmtInfAndSts", ns), 1):
        block_id = _text(block, "m:OrgnlPmtInfId", ns) or ""
        blocks[block_id] = (_text(block, "m:PmtInfSts", ns), _reason(block, ns))
        for t, tx in enumerate(block.findall("m:TxInfAndSts", ns), 1):
            end_to_end = _text(tx, "m:OrgnlEndToEndId", ns)
            transactions.append(TransactionStatus(
                entry=f"OrgnlPmtInfAndSts[{b}]/TxInfAndSts[{t}]" + (f" ({end_to_end})" if end_to_end else ""),
                end_to_end_id=end_to_end, status=_text(tx, "m:TxSts", ns), reason=_reason(tx, ns)))
    return StatusReport(message_id=_text(top, "m:GrpHdr/m:MsgId", ns) or "",
                        original_message_id=_text(group, "m:OrgnlMsgId", ns) or "",
                        group_status=_text(group, "m:GrpSts", ns), group_reason=_reason(group, ns),
                        block_status=blocks, transactions=tuple(transactions))


def _cents(text: str | None, where: str, source: str) -> int:
    try:
        value = Decimal(text or "") * 100
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value():
        raise ValidationError(f"{source}: {where}: {text!r} is not an amount in euros and cents")
    return int(value)


def _debit_notification(top: Element, ns: dict[str, str], source: str) -> DebitNotification:
    debits, ignored = [], 0
    for n, notification in enumerate(top.findall("m:Ntfctn", ns), 1):
        for e, entry in enumerate(notification.findall("m:Ntry", ns), 1):
            where = f"Ntfctn[{n}]/Ntry[{e}]"
            booked = _text(entry, "m:Sts/m:Cd", ns) == "BOOK" or _text(entry, "m:Sts/m:Prtry", ns) == "BOOK"
            if not booked or _text(entry, "m:CdtDbtInd", ns) != "DBIT" or _text(entry, "m:RvslInd", ns) == "true":
                ignored += 1
                continue
            currency = entry.find("m:Amt", ns).get("Ccy")
            if currency != "EUR":
                raise ValidationError(f"{source}: {where}/Amt: the currency is {currency}; avain pays in EUR only")
            txs = [tx for d in entry.findall("m:NtryDtls", ns) for tx in d.findall("m:TxDtls", ns)]
            refs = [(_text(tx, "m:Refs/m:EndToEndId", ns), tx) for tx in txs]
            if refs and all(end_to_end for end_to_end, _ in refs):
                for t, (end_to_end, tx) in enumerate(refs, 1):
                    # A lone transaction may leave its amount to the entry's.
                    amount = _text(tx, "m:Amt", ns) or (_text(entry, "m:Amt", ns) if len(refs) == 1 else None)
                    if amount is None:
                        raise ValidationError(f"{source}: {where}/TxDtls[{t}]: no amount for {end_to_end}")
                    debits.append(BookedDebit(f"{where}/TxDtls[{t}] ({end_to_end})", end_to_end, None,
                                              _cents(amount, f"{where}/TxDtls[{t}]/Amt", source)))
                continue
            block = (_text(entry, "m:NtryDtls/m:Btch/m:PmtInfId", ns)
                     or next((_text(tx, "m:Refs/m:PmtInfId", ns) for tx in txs if _text(tx, "m:Refs/m:PmtInfId", ns)),
                             None))
            if block is None:
                raise ValidationError(f"{source}: {where}: a booked debit names neither an EndToEndId nor a "
                                      "payment information id (PmtInfId); avain cannot tell what it paid")
            debits.append(BookedDebit(f"{where} ({block})", None, block,
                                      _cents(_text(entry, "m:Amt", ns), f"{where}/Amt", source)))
    return DebitNotification(message_id=_text(top, "m:GrpHdr/m:MsgId", ns) or "", debits=tuple(debits),
                             ignored=ignored)
