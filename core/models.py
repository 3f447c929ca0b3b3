"""Table models of the engine: pilots, people, identities, audit.

Table classes never leave the persistence layer: services turn rows into the frozen
records of :mod:`avain.core.domain` before hooks or callers see them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class PilotRow(SQLModel, table=True):
    """A pilot and its validated pilot.toml (as JSON)."""

    __tablename__ = "pilot"
    id: str = Field(primary_key=True, max_length=64)
    name: str
    config: str = Field(sa_column=Column(Text, nullable=False))
    source: str  # "plugin <name>" or "file <path>"
    added_at: dt.datetime
    version: int = 1  # the newest of its PilotVersionRow rows


class PilotVersionRow(SQLModel, table=True):
    """Every configuration a pilot has had: version 1 when added, one more per update.
    A decision names the version it was made under."""

    __tablename__ = "pilot_version"
    pilot_id: str = Field(foreign_key="pilot.id", primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    config: str = Field(sa_column=Column(Text, nullable=False))
    source: str
    changed_by: str = Field(max_length=100)
    changed_at: dt.datetime


class WorkerRow(SQLModel, table=True):
    """A person working in a pilot. ``id`` is ``<pilot>-<code>``."""

    __tablename__ = "worker"
    __table_args__ = (UniqueConstraint("pilot_id", "code", name="uq_worker_pilot_code"),)
    id: str = Field(primary_key=True, max_length=80)
    pilot_id: str = Field(foreign_key="pilot.id", index=True)
    code: str = Field(max_length=8)
    name: str
    role: str = Field(max_length=16)
    supervisor_id: str | None = Field(default=None, foreign_key="worker.id")
    active: bool = True  # a deactivated worker can no longer act nor be assigned clients
    deactivated_on: dt.date | None = None


class ClientRow(SQLModel, table=True):
    """A client, known by the pseudonymous code only. Identity is in ClientIdentityRow."""

    __tablename__ = "client"
    __table_args__ = (
        UniqueConstraint("pilot_id", "worker_id", "ordinal", name="uq_client_worker_ordinal"),
    )
    code: str = Field(primary_key=True, max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", index=True)
    group_id: str = Field(max_length=32)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    assistant_id: str | None = Field(default=None, foreign_key="worker.id")
    ordinal: int
    control: bool = False
    enrolled_on: dt.date
    ended_on: dt.date | None = None
    #: The client's language (fi, sv, en): the dialogue's system messages and letters use it.
    language: str = Field(default="fi", max_length=2, sa_column_kwargs={"server_default": "fi"})


class ClientIdentityRow(SQLModel, table=True):
    """Name, henkilötunnus and phone, kept apart from the code and sealed with the message
    key ``key_id`` (see ``core/sealed.py``); read only through the service that writes the
    access log. A henkilötunnus is found by its keyed hash ``hetu_index``, unique per pilot."""

    __tablename__ = "client_identity"
    __table_args__ = (UniqueConstraint("pilot_id", "hetu_index", name="uq_identity_pilot_hetu"),)
    client_code: str = Field(primary_key=True, foreign_key="client.code", max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id")
    hetu_index: str = Field(max_length=64)  # HMAC-SHA256 of the henkilötunnus (integrity key)
    key_id: str = Field(max_length=12)
    hetu: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    name: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    phone: bytes | None = Field(default=None, sa_column=Column(LargeBinary))  # for payment rails that need it


class NeedAssessmentRow(SQLModel, table=True):
    """The facts of a client's need assessment, versioned per client (1, 2, …): who
    assessed, on which day. The newest version is the one in force."""

    __tablename__ = "need_assessment"
    __table_args__ = (UniqueConstraint("client_code", "version", name="uq_assessment_client_version"),)
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", index=True, max_length=64)
    version: int
    assessed_on: dt.date
    assessed_by: str = Field(max_length=100)
    facts: str = Field(sa_column=Column(Text, nullable=False))  # JSON object of key -> value
    recorded_at: dt.datetime


class AuditHeadRow(SQLModel, table=True):
    """The newest event of each audit stream: its sequence number and hash. Locked while
    an event is appended, so each stream's chain is written one event at a time."""

    __tablename__ = "audit_head"
    stream: str = Field(primary_key=True, max_length=80)
    seq: int
    hash: str = Field(max_length=64)


class AuditEventRow(SQLModel, table=True):
    """An append-only, hash-chained event: a state change or a read of identified data."""

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("stream", "seq", name="uq_audit_stream_seq"),
        Index("ix_audit_subject", "subject"),
    )
    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=80)
    seq: int
    at: str = Field(max_length=32)  # ISO 8601 UTC, kept as text so the hash is stable
    actor: str = Field(max_length=100)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=80)
    purpose: str | None = None
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


# --- budgets and the ledger ---------------------------------------------------------


class DecisionRow(SQLModel, table=True):
    """A decision granting HB to a client for a validity range, with the inputs its
    budget is computed from (päätös)."""

    __tablename__ = "decision"
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", index=True, max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    valid_from: dt.date
    valid_to: dt.date
    monthly_amount: int | None = None  # cents, as written on the decision
    inputs: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    decided_by: str = Field(max_length=100)
    decided_at: dt.datetime
    revoked_on: dt.date | None = None
    rule: str | None = Field(default=None, max_length=64)
    explanation: str | None = Field(default=None, sa_column=Column(Text))  # JSON, at grant
    pilot_version: int | None = None  # the pilot's configuration version it was made under
    amends: int | None = Field(default=None, foreign_key="decision.id")  # the decision it replaces
    change_reason: bytes | None = Field(default=None, sa_column=Column(LargeBinary))  # why amended or ended, sealed
    key_id: str | None = Field(default=None, max_length=12)  # the message key change_reason is sealed with


class AccountRow(SQLModel, table=True):
    """A money bucket with running totals in integer cents. ``limited`` accounts (client
    budgets) may never have posted + pending debits above their posted credits."""

    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("pilot_id", "kind", "owner", name="uq_account_owner"),
        CheckConstraint(
            "limited = false OR debits_posted + debits_pending <= credits_posted",
            name="ck_account_not_overspent",
        ),
        CheckConstraint(
            "debits_posted >= 0 AND debits_pending >= 0 AND credits_posted >= 0 "
            "AND credits_pending >= 0",
            name="ck_account_totals_not_negative",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    kind: str = Field(max_length=16)  # funding, budget, payable, bank, lapsed, carried
    owner: str = Field(default="", max_length=64)  # client code, provider id or ""
    limited: bool = False
    debits_posted: int = Field(default=0, sa_type=BigInteger)
    debits_pending: int = Field(default=0, sa_type=BigInteger)
    credits_posted: int = Field(default=0, sa_type=BigInteger)
    credits_pending: int = Field(default=0, sa_type=BigInteger)
    #: The head of the chain of transfers debiting this account: how many, and the keyed
    #: hash (``transfer.mac``) of the newest (see ledger.transfer_mac).
    chain_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    chain_hash: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})


class TransferRow(SQLModel, table=True):
    """An immutable transfer between two accounts, keyed by the caller's id. Pending
    transfers (commitments) are resolved by later post/void/release transfers that name
    them in ``pending_id``; corrections name the transfer they reverse in ``reverses``."""

    __tablename__ = "transfer"
    __table_args__ = (
        Index("ix_transfer_debit", "debit_account_id"),
        Index("ix_transfer_credit", "credit_account_id"),
        Index("ix_transfer_pending", "pending_id"),
        CheckConstraint("amount > 0", name="ck_transfer_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="ck_transfer_two_accounts"),
    )
    id: str = Field(primary_key=True, max_length=120)
    kind: str = Field(max_length=16)
    debit_account_id: int = Field(foreign_key="account.id")
    credit_account_id: int = Field(foreign_key="account.id")
    amount: int = Field(sa_type=BigInteger)
    pending: bool = False
    pending_id: str | None = Field(default=None, max_length=120)
    reverses: str | None = Field(default=None, max_length=120)
    period: str | None = Field(default=None, max_length=7)
    memo: str | None = None
    request_hash: str = Field(max_length=64)
    created_at: dt.datetime  # when it was recorded
    #: The day it happened in business terms: the service date of a commitment, the
    #: invoice date of a posting, the payment date, the first day of its month for an
    #: allocation, lapse or carry-over. Statements show this date.
    business_date: dt.date
    #: Its place in the chain of its debit account's transfers, and its keyed hash (HMAC
    #: with the integrity key over what it does, its place and the previous one's hash).
    chain_seq: int | None = None
    mac: str | None = Field(default=None, max_length=64)


class BudgetPeriodRow(SQLModel, table=True):
    """A month of a pilot: open for spending, then closed. Also the resumable job state
    of its allocation and closing runs (cursor = last client code done)."""

    __tablename__ = "budget_period"
    pilot_id: str = Field(foreign_key="pilot.id", primary_key=True, max_length=64)
    period: str = Field(primary_key=True, max_length=7)
    status: str = Field(max_length=16)  # opening, open, closing, closed
    cursor: str = Field(default="", max_length=64)
    allocated: int = 0
    allocated_cents: int = Field(default=0, sa_type=BigInteger)
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None


class ProviderRow(SQLModel, table=True):
    """A service provider (palveluntuottaja), known by its business id (Y-tunnus)."""

    __tablename__ = "provider"
    id: str = Field(primary_key=True, max_length=9)  # Y-tunnus, e.g. 1572860-0
    name: str
    iban: str | None = Field(default=None, max_length=34)
    bic: str | None = Field(default=None, max_length=11)  # the IBAN's bank, when the bank wants it
    einvoice_address: str | None = Field(default=None, max_length=35)
    contact: str | None = None  # the company's service contact (not published)
    areas: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    added_at: dt.datetime
    #: HMAC with the integrity key over the id, IBAN and BIC (see avain.core.seals).
    mac: str | None = Field(default=None, max_length=64)


class ProviderBankRow(SQLModel, table=True):
    """The bank details a provider is paid to, one row per change: those it was registered
    with (``registered``), a change waiting for a second person (``pending``), a change a
    second person approved (``approved``), or one replaced before it was (``withdrawn``).
    The newest registered or approved row is in force. ``mac``, a keyed hash made with the
    integrity key kept outside the database, binds the row's content: a row written into
    the database by hand is not in force."""

    __tablename__ = "provider_bank"
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", max_length=9, index=True)
    iban: str = Field(max_length=34)
    bic: str | None = Field(default=None, max_length=11)
    status: str = Field(max_length=16)  # registered, pending, approved, withdrawn
    changed_by: str = Field(max_length=100)
    changed_at: dt.datetime
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: dt.datetime | None = None
    mac: str | None = Field(default=None, max_length=64)


class ProviderApprovalRow(SQLModel, table=True):
    """An organiser's approval of a provider for a pilot under the service-voucher act
    (569/2009 §5): the checklist with evidence and dates, a validity, and a revocation."""

    __tablename__ = "provider_approval"
    __table_args__ = (Index("ix_approval_provider_pilot", "provider_id", "pilot_id"),)
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", max_length=9)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    services: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of codes
    checklist: str = Field(sa_column=Column(Text, nullable=False))  # JSON {criterion: {...}}
    valid_from: dt.date
    valid_to: dt.date
    approved_by: str = Field(max_length=100)
    approved_at: dt.datetime
    revoked_on: dt.date | None = None
    revoked_by: str | None = Field(default=None, max_length=100)
    revoke_reason: str | None = None


class ServiceRow(SQLModel, table=True):
    """A service of the catalogue (palvelutarjotin)."""

    __tablename__ = "service"
    code: str = Field(primary_key=True, max_length=64)
    name_fi: str
    name_sv: str | None = None
    name_en: str | None = None
    category: str = Field(max_length=64)
    unit: str = Field(max_length=8)  # hour, visit, day, item, euro
    note: str | None = None
    source: str = Field(max_length=100)


class PriceRow(SQLModel, table=True):
    """A provider's price for a service over a validity range (no overlaps)."""

    __tablename__ = "price"
    __table_args__ = (
        UniqueConstraint("provider_id", "service_code", "valid_from", name="uq_price_start"),
        CheckConstraint("price >= 0", name="ck_price_not_negative"),
    )
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", max_length=9)
    service_code: str = Field(foreign_key="service.code", max_length=64)
    price: int = Field(sa_type=BigInteger)
    valid_from: dt.date
    valid_to: dt.date | None = None


class RatingRow(SQLModel, table=True):
    """A client's rating of a provider after a paid purchase: 1–5 stars and words."""

    __tablename__ = "rating"
    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="ck_rating_stars"),)
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", unique=True)
    provider_id: str = Field(foreign_key="provider.id", max_length=9, index=True)
    client_code: str = Field(foreign_key="client.code", max_length=64)
    stars: int
    text: str | None = None
    rated_at: dt.datetime


class PlanRow(SQLModel, table=True):
    """A version of a client's care and service plan (asiakassuunnitelma): the services
    with monthly quantities, and whether carer's days off are part of it."""

    __tablename__ = "plan"
    __table_args__ = (UniqueConstraint("client_code", "version", name="uq_plan_version"),)
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", max_length=64, index=True)
    version: int
    valid_from: dt.date
    items: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    carer_days_off: bool = False
    round_the_clock: bool = False
    made_by: str = Field(max_length=100)
    made_at: dt.datetime


class ProposalRow(SQLModel, table=True):
    """A client's proposal to use the budget: kept whatever the decision (evaluation
    needs the rejected ones too)."""

    __tablename__ = "proposal"
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", index=True, max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    service: str = Field(max_length=64)
    provider_id: str = Field(foreign_key="provider.id", max_length=9)
    amount: int = Field(sa_type=BigInteger)
    units: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    service_date: dt.date
    text: bytes | None = Field(default=None, sa_column=Column(LargeBinary))  # the client's words, sealed
    status: str = Field(max_length=16)  # proposed, approved, rejected, expired
    proposed_by: str = Field(max_length=100)
    proposed_at: dt.datetime
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: dt.datetime | None = None
    reason: bytes | None = Field(default=None, sa_column=Column(LargeBinary))  # the decider's words, sealed
    key_id: str | None = Field(default=None, max_length=12)  # the message key text and reason are sealed with


class CommitmentRow(SQLModel, table=True):
    """A payment commitment (maksusitoumus): a pending transfer reserving budget for one
    provider. Invoices post it in parts (``amount_posted`` so far, never above ``amount``)
    until it is fully invoiced (posted), closed (the rest released), cancelled or expired,
    each exactly once."""

    __tablename__ = "commitment"
    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", unique=True)
    client_code: str = Field(foreign_key="client.code", index=True, max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    provider_id: str = Field(foreign_key="provider.id", max_length=9)
    amount: int = Field(sa_type=BigInteger)
    amount_posted: int = Field(default=0, sa_type=BigInteger)
    period: str = Field(max_length=7)
    reference: str = Field(unique=True, max_length=25)
    transfer_id: str = Field(max_length=120)
    status: str = Field(max_length=16, index=True)  # pending, posted, closed, voided, expired
    expires_on: dt.date
    received_on: dt.date | None = None
    flag: str | None = None  # e.g. the provider's approval was revoked while it was open
    issued_at: dt.datetime
    resolved_at: dt.datetime | None = None


class InvoiceRow(SQLModel, table=True):
    """A provider's invoice against a commitment (one of several when the provider bills in
    parts): recorded, approved, batched, paid. A payment the bank rejected returns the
    invoice to approved with the bank's reason."""

    __tablename__ = "invoice"
    __table_args__ = (UniqueConstraint("provider_id", "number", name="uq_invoice_provider_number"),)
    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(foreign_key="provider.id", max_length=9)
    number: str = Field(max_length=64)
    amount: int = Field(sa_type=BigInteger)
    reference: str = Field(max_length=25)
    commitment_id: int = Field(foreign_key="commitment.id", index=True)
    client_code: str = Field(foreign_key="client.code", max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    status: str = Field(max_length=16, index=True)  # recorded, approved, batched, paid
    due_date: dt.date | None = None  # from the e-invoice, or as recorded
    bank_reason_code: str | None = Field(default=None, max_length=35)  # last rejection by the bank
    bank_reason: str | None = None
    batch_id: int | None = Field(default=None, foreign_key="payment_batch.id")
    recorded_by: str = Field(max_length=100)
    recorded_at: dt.datetime
    approved_by: str | None = Field(default=None, max_length=100)
    approved_at: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    #: HMAC with the integrity key over the amount and what the invoice is held against
    #: (see avain.core.seals).
    mac: str | None = Field(default=None, max_length=64)


# --- the finance rail -----------------------------------------------------------------


class InvoiceReviewRow(SQLModel, table=True):
    """An e-invoice that could not be recorded by itself (no matching commitment, above
    it, a duplicate number…): kept with the reason until finance handles it."""

    __tablename__ = "invoice_review"
    __table_args__ = (Index("ix_review_provider_number", "provider_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=255)
    provider_id: str = Field(max_length=20)
    provider_name: str | None = None
    number: str = Field(max_length=64)
    amount: int = Field(sa_type=BigInteger)
    reference: str | None = Field(default=None, max_length=25)
    iban: str | None = Field(default=None, max_length=34)  # the account the e-invoice asks payment to
    due_date: dt.date | None = None
    reason: str
    status: str = Field(default="open", max_length=16)  # open, resolved
    received_at: dt.datetime
    resolved_by: str | None = Field(default=None, max_length=100)
    resolution: str | None = None


class PaymentBatchRow(SQLModel, table=True):
    """A SEPA credit-transfer batch of approved invoices: prepared (file written), then
    confirmed (the bank took it: invoices paid) or cancelled (invoices approved again)."""

    __tablename__ = "payment_batch"
    id: int | None = Field(default=None, primary_key=True)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    message_id: str = Field(unique=True, max_length=35)
    execution_date: dt.date
    version: str = Field(max_length=2)
    status: str = Field(max_length=16)  # prepared, confirmed, cancelled, rejected
    count: int
    total: int = Field(sa_type=BigInteger)
    document: str = Field(sa_column=Column(Text, nullable=False))  # the pain.001 XML as sent
    created_by: str = Field(max_length=100)
    created_at: dt.datetime
    resolved_at: dt.datetime | None = None


class BankFileRow(SQLModel, table=True):
    """A bank's answer read by ``pay import`` (pain.002 status report, camt.054 debit
    notification): kept by its content digest and message id, so a file read twice
    changes nothing."""

    __tablename__ = "bank_file"
    __table_args__ = (UniqueConstraint("kind", "message_id", name="uq_bank_file_message"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # pain.002, camt.054
    message_id: str = Field(max_length=35)
    digest: str = Field(unique=True, max_length=64)  # sha256 of the file's bytes
    source: str = Field(max_length=255)
    summary: str = Field(sa_column=Column(Text, nullable=False))  # JSON: what was applied
    applied_by: str = Field(max_length=100)
    applied_at: dt.datetime


# --- the client–worker dialogue ---------------------------------------------------------


class ConsentRow(SQLModel, table=True):
    """A client's consent for one purpose (``evaluation``: their data in the evaluation;
    ``dialogue``: their dialogue, free of identifiers, for the evaluators), given on a day
    and perhaps withdrawn later; a withdrawal excludes the client from later exports."""

    __tablename__ = "consent"
    client_code: str = Field(foreign_key="client.code", primary_key=True, max_length=64)
    purpose: str = Field(primary_key=True, max_length=16)
    given_on: dt.date
    withdrawn_on: dt.date | None = None
    recorded_by: str = Field(max_length=100)
    recorded_at: dt.datetime


class MessageThreadRow(SQLModel, table=True):
    """The one dialogue thread of a client (Omasote): who it waits on, since when. A
    question is waiting from the first client-side message after the last answer."""

    __tablename__ = "message_thread"
    __table_args__ = (Index("ix_thread_waiting", "waiting_since"),)
    client_code: str = Field(foreign_key="client.code", primary_key=True, max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    messages: int = 0
    last_at: dt.datetime
    waiting_since: dt.datetime | None = None


class MessageRow(SQLModel, table=True):
    """A message of a client's thread, written by a participant or by the workflow itself
    (``system``). The text is sealed with a message key kept outside the database;
    ``key_id`` names the key; the message's own fields (``seal`` says which) are bound to
    the ciphertext, so it cannot be moved to another message, nor the fields rewritten,
    unnoticed."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_client_id", "client_code", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    author_role: str = Field(max_length=16)  # client, worker, supervisor, assistant, system
    author_id: str | None = Field(default=None, max_length=100)  # role:id of who wrote or acted
    side: str | None = Field(default=None, max_length=8)  # client (asks), worker (answers), or None
    event: str | None = Field(default=None, max_length=32)  # system messages: proposal.approved, …
    ref_type: str | None = Field(default=None, max_length=16)  # proposal, commitment, invoice, decision
    ref_id: int | None = None
    key_id: str = Field(max_length=12)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sent_at: dt.datetime
    #: What the ciphertext is bound to: 1 = id, client, role and time (messages written
    #: before 0015); 2 = also the author, side, event and reference. Rotation re-seals to 2.
    seal: int = Field(default=2, sa_column_kwargs={"server_default": "1"})


class MessageAttachmentRow(SQLModel, table=True):
    """A file sent with a message: its name and content sealed like the text."""

    __tablename__ = "message_attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    key_id: str = Field(max_length=12)
    name: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int


class MessageReceiptRow(SQLModel, table=True):
    """A read receipt: a participant (``role:id``) opened the thread holding the message."""

    __tablename__ = "message_receipt"
    message_id: int = Field(foreign_key="message.id", primary_key=True)
    reader: str = Field(primary_key=True, max_length=100)
    read_at: dt.datetime


# --- evaluation -----------------------------------------------------------------------------


class SurveyResponseRow(SQLModel, table=True):
    """One client's answers to one instrument at one measurement point (start, interim,
    end), keyed by the client code only, as recorded by a worker or imported from the
    survey service's export. ``answers`` is JSON validated against the instrument's schema."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("client_code", "instrument", "point", "answered_on", name="uq_response_point_day"),
        Index("ix_response_pilot_instrument", "pilot_id", "instrument"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", max_length=64, index=True)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    instrument: str = Field(max_length=64)
    version: str = Field(max_length=32)
    point: str = Field(max_length=8)  # start, interim, end
    answered_on: dt.date
    answers: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=255)
    recorded_by: str = Field(max_length=100)
    recorded_at: dt.datetime


class SurveyScoreRow(SQLModel, table=True):
    """A scale score of a response, as the instrument's scoring gave it: one narrow row per
    scale, so reports aggregate in the database."""

    __tablename__ = "survey_score"
    __table_args__ = (Index("ix_score_instrument_scale", "instrument", "scale", "point", "client_code"),)
    response_id: int = Field(foreign_key="survey_response.id", primary_key=True)
    scale: str = Field(primary_key=True, max_length=64)
    client_code: str = Field(foreign_key="client.code", max_length=64)
    instrument: str = Field(max_length=64)
    point: str = Field(max_length=8)
    value: float


class TimeLogRow(SQLModel, table=True):
    """Time (and money) spent on a client, for the cost evaluation: a worker's minutes per
    activity, the client's own time arranging services, an HB assistant's time and costs,
    or the cost of a control client's usual services. No free text."""

    __tablename__ = "time_log"
    __table_args__ = (
        Index("ix_time_client", "client_code"),
        CheckConstraint("minutes >= 0 AND cost >= 0", name="ck_time_not_negative"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_code: str = Field(foreign_key="client.code", max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id", max_length=64)
    who: str = Field(max_length=16)  # worker, client, assistant, services
    person: str | None = Field(default=None, max_length=100)  # role:id of who logged it
    activity: str = Field(max_length=32)
    on_date: dt.date
    minutes: int = 0
    cost: int = Field(default=0, sa_type=BigInteger)  # cents
    recorded_at: dt.datetime
