"""Bank answers to build in tests: pain.002.001.11 status reports and camt.054.001.08
debit notifications, shaped as Finnish banks send them (only the elements avain reads
and the schema requires)."""

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11"
CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
ACCOUNT = "FI4950009420028730"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    elem = ET.SubElement(parent, tag, attrib)
    if text is not None:
        elem.text = text
    return elem


def _reason(parent: ET.Element, code: str | None, text: str | None) -> None:
    if code is None and text is None:
        return
    info = _el(parent, "StsRsnInf")
    if code:
        _el(_el(info, "Rsn"), "Cd", code)
    if text:
        _el(info, "AddtlInf", text)


def _document(namespace: str, body: str, message_id: str) -> tuple[ET.Element, ET.Element]:
    """The Document, its message element and the group header every bank message starts with."""
    root = ET.Element("Document", xmlns=namespace)
    message = _el(root, body)
    header = _el(message, "GrpHdr")
    _el(header, "MsgId", message_id)
    _el(header, "CreDtTm", "2018-02-01T08:00:00")
    return root, message


def _bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def pain002(original_message_id: str, *, message_id: str = "BANK-STS-1", group_status: str | None = None,
            group_reason: tuple[str | None, str | None] = (None, None), block_id: str | None = None,
            block_status: str | None = None,
            transactions: Sequence[tuple[str, str, str | None, str | None]] = ()) -> bytes:
    """A status report about our message ``original_message_id``. ``transactions``:
    (EndToEndId, status, reason code, reason text) each."""
    root, report = _document(PAIN002, "CstmrPmtStsRpt", message_id)
    group = _el(report, "OrgnlGrpInfAndSts")
    _el(group, "OrgnlMsgId", original_message_id)
    _el(group, "OrgnlMsgNmId", "pain.001.001.09")
    if group_status:
        _el(group, "GrpSts", group_status)
    _reason(group, *group_reason)
    if block_status or transactions:
        block = _el(report, "OrgnlPmtInfAndSts")
        _el(block, "OrgnlPmtInfId", block_id or original_message_id)
        if block_status:
            _el(block, "PmtInfSts", block_status)
        for end_to_end, status, code, text in transactions:
            tx = _el(block, "TxInfAndSts")
            _el(tx, "OrgnlEndToEndId", end_to_end)
            _el(tx, "TxSts", status)
            _reason(tx, code, text)
    return _bytes(root)


def camt054(entries: Iterable[dict], *, message_id: str = "BANK-NTF-1") -> bytes:
    """A debit notification. Each entry: ``amount`` (cents), and either ``end_to_end``
    (a list of (EndToEndId, cents)) or ``batch`` (the PmtInfId of a batch booking);
    ``status`` (default BOOK) and ``direction`` (default DBIT) optional."""
    root, body = _document(CAMT054, "BkToCstmrDbtCdtNtfctn", message_id)
    notification = _el(body, "Ntfctn")
    _el(notification, "Id", f"{message_id}-1")
    _el(_el(_el(notification, "Acct"), "Id"), "IBAN", ACCOUNT)
    for e in entries:
        entry = _el(notification, "Ntry")
        _el(entry, "Amt", f"{e['amount'] // 100}.{e['amount'] % 100:02d}", Ccy=e.get("currency", "EUR"))
        _el(entry, "CdtDbtInd", e.get("direction", "DBIT"))
        _el(_el(entry, "Sts"), "Cd", e.get("status", "BOOK"))
        _el(_el(entry, "BookgDt"), "Dt", "2018-02-01")
        domain = _el(_el(entry, "BkTxCd"), "Domn")
        _el(domain, "Cd", "PMNT")
        family = _el(domain, "Fmly")
        _el(family, "Cd", "ICDT")
        _el(family, "SubFmlyCd", "ESCT")
        details = _el(entry, "NtryDtls")
        if "batch" in e:
            _el(_el(details, "Btch"), "PmtInfId", e["batch"])
        for end_to_end, cents in e.get("end_to_end", ()):
            tx = _el(details, "TxDtls")
            _el(_el(tx, "Refs"), "EndToEndId", end_to_end)
            _el(tx, "Amt", f"{cents // 100}.{cents % 100:02d}", Ccy="EUR")
    return _bytes(root)
