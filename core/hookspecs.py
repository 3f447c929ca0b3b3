"""Every hook avain calls, in one place.

Five kinds, each named by what it does:

registration
    ``avain_<plural noun>()``: called once; each plugin returns an iterable of named
    records; the manager flattens them and refuses two records with one name.
decision
    ``firstresult``: the first non-None answer wins; return None to defer. The core's
    own fallback is ``trylast``.
checks
    every plugin may object: each returns a list of reasons (strings); an empty list, or
    None, means no objection. The caller gathers all reasons.
policy
    ``firstresult``: returns a frozen settings record for a pilot.
events
    ``avain_<subject>_<past tense>``: called after the transaction commits; return nothing.

Arguments only ever grow; an implementation names just the arguments it uses.
Records passed in and out are the frozen attrs classes of :mod:`avain.core.domain`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    import click

    from .domain import (
        Applicant,
        BudgetAmount,
        Client,
        Commitment,
        ConfigSection,
        Decision,
        Instrument,
        Invoice,
        Message,
        PaymentBackend,
        Period,
        PeriodEndPolicy,
        Pilot,
        PilotSource,
        Proposal,
        PurchaseFacts,
        Service,
        Worker,
        WorkflowOptions,
    )

PROJECT = "avain"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration ---------------------------------------------------------


@hookspec
def avain_pilots() -> Iterable[PilotSource]:
    """Pilots this plugin ships, as :class:`PilotSource` records (a name and the path of a
    pilot.toml). ``avain init`` and ``avain demo`` load them into the database.

    Kind: registration. Every plugin's records are collected; two with one name are an
    error at start-up.

    Example::

        @hookimpl
        def avain_pilots():
            return [PilotSource("example", str(Path(__file__).with_name("pilot.toml")))]
    """


@hookspec
def avain_config_sections() -> Iterable[ConfigSection]:
    """JSON Schema sections this plugin adds to pilot.toml, each under ``[plugins.<name>]``.

    Kind: registration. The core composes its own schema with every section; a pilot.toml
    that fills a section is validated by it, and all errors are reported together.

    Example::

        @hookimpl
        def avain_config_sections():
            return [ConfigSection("reminders", {"type": "object", "properties": {
                "days": {"type": "integer", "minimum": 1, "description": "…"}},
                "additionalProperties": False})]
    """


@hookspec
def avain_services() -> Iterable[Service]:
    """Services this plugin adds to the catalogue, as :class:`Service` records.

    Kind: registration. Codes must be unique across plugins. ``avain init`` (and every new
    database) loads them; providers' prices and approvals refer to them by code.

    Example::

        @hookimpl
        def avain_services():
            return [Service("cleaning", "Siivous", "support", "hour", name_en="Cleaning")]
    """


@hookspec
def avain_payment_backends() -> Iterable[PaymentBackend]:
    """Payment rails this plugin provides, as :class:`PaymentBackend` records that declare
    what they can do (load a period's budgets, take charges or service events, import
    statements, reconcile).

    Kind: registration. Names must be unique; a pilot names its backend in pilot.toml
    (``[payment] backend = "<name>"``). The core knows no backend by name.

    Example::

        @hookimpl
        def avain_payment_backends():
            return [PaymentBackend("wallet", "An e-wallet", {"load_period", "reconcile"},
                                   load_period=load, reconcile=reconcile)]
    """


@hookspec
def avain_commands() -> Iterable[click.Command]:
    """Click commands (or groups) this plugin adds to the ``avain`` command line.

    Kind: registration. Command names must be unique across plugins and the core. A
    ``LazyCommand`` (:mod:`avain.core.cli.lazy`) stands for a command whose module is
    imported only when it runs or its help is shown.

    Example::

        @hookimpl
        def avain_commands():
            return [LazyCommand("mine", "my_plugin.cli:mine", "What my commands do.")]
    """


@hookspec
def avain_evaluation_instruments() -> Iterable[Instrument]:
    """The questionnaires of the evaluation this plugin brings (registration).

    Kind: registration. Each ``Instrument`` is a versioned JSON Schema of one response
    with its items, scales and scoring; names are unique across plugins. A pilot lists
    the instruments it uses in pilot.toml (``[evaluation] instruments``).

    Example::

        @hookimpl
        def avain_evaluation_instruments():
            return [Instrument("wellbeing", SCHEMA, score=mean_of_scales)]
    """


# --- decision -------------------------------------------------------------


@hookspec(firstresult=True)
def avain_client_code(pilot: Pilot, client: Applicant, worker: Worker, ordinal: int) -> str | None:
    """The pseudonymous client code for a client being enrolled.

    Kind: decision (firstresult). ``ordinal`` is the worker's running number of clients in
    this pilot, starting at 1. Return None to let the next plugin (finally the core's
    default ``<pilot code>-<group code>-<worker code>-<ordinal:03>``) decide. The code must
    not contain any part of the client's identity.

    Example::

        @hookimpl
        def avain_client_code(pilot, worker, ordinal):
            return f"{worker.code}{ordinal:02d}" if pilot.id == "mine" else None
    """


@hookspec(firstresult=True)
def avain_compute_budget(pilot: Pilot, decision: Decision, period: Period) -> BudgetAmount | None:
    """The client's budget for ``period`` under ``decision``, with its explanation.

    Kind: decision (firstresult). Called once per client when a month is opened (so keep it
    cheap: no I/O). Return None to defer; the core's fallback takes the amount written on
    the decision, else the pilot's ``budget.default_monthly``, capped at
    ``budget.monthly_cap``. A zero amount allocates nothing.

    Return ``BudgetAmount(..., whole_month=True)`` to state only the monthly rule: the
    core then prorates the amount by the days of ``period`` the decision covers
    (``avain.core.domain.prorate_budget``); otherwise the amount is taken as final.

    Example::

        @hookimpl
        def avain_compute_budget(pilot, decision, period):
            hours = int(decision.inputs.get("hours", 0))
            return BudgetAmount(Money(hours * 3500), f"{hours} h × 35,00 €", "own-price-2018",
                                whole_month=True)
    """


# --- checks ---------------------------------------------------------------


@hookspec
def avain_check_eligibility(
    pilot: Pilot, client: Applicant, assessment: dict[str, Any], decision: Decision | None
) -> list[str] | None:
    """Reasons why this applicant cannot get HB in this pilot; empty or None when eligible.

    Kind: checks. Called twice in a client's life: at enrolment (``decision`` is None;
    ``assessment`` holds the facts the enrolling worker gave) and again when a decision is
    granted (``decision`` is the decision being granted; ``client.on_date`` is its first
    day and ``assessment`` the client's need assessment in force). Both times
    ``client.birth_date`` comes from the henkilötunnus. A rule written for the enrolment
    day is thus judged again on the decision's first day; a rule about the decision's
    whole validity reads ``decision.valid_to``. Controls are checked at enrolment too:
    they must be comparable clients.

    Example::

        @hookimpl
        def avain_check_eligibility(pilot, assessment):
            if pilot.id == "mine" and not assessment.get("carer_contract"):
                return ["a family-carer contract is required"]
    """


@hookspec
def avain_check_intake(
    pilot: Pilot, client: Applicant, on_date: dt.date, enrolled: dict[str, int]
) -> list[str] | None:
    """Reasons why the pilot takes no new HB client into ``client.group_id`` on
    ``on_date``; empty or None when open. Not called for controls.

    Kind: checks. ``enrolled`` counts the pilot's current HB clients per group id (controls
    are not counted), with the total under ``"*"``. The core's own check applies the
    pilot.toml ``[intake]`` settings.

    Example::

        @hookimpl
        def avain_check_intake(pilot, enrolled):
            if enrolled["*"] >= 15:
                return ["the pilot is full (15 clients)"]
    """


@hookspec
def avain_validate_purchase(pilot: Pilot, proposal: Proposal, facts: PurchaseFacts) -> list[str] | None:
    """Reasons why the worker may not approve this proposal, in words the client
    understands; empty or None when fine.

    Kind: checks. Called when a worker approves a proposal, before the commitment is made;
    any reason refuses the approval and nothing is written. ``facts`` holds what the
    catalogue and the client's plan say (the provider's approval on the service date, its
    catalogue price, the plan's and the pilot's services); the core's own check uses them
    for the rules every pilot shares. Budget sufficiency is the ledger's job, not this
    hook's.

    Example::

        @hookimpl
        def avain_validate_purchase(pilot, proposal):
            if pilot.id == "mine" and proposal.amount.cents > 10000:
                return ["one purchase may be at most 100,00 €"]
    """


# --- policy ---------------------------------------------------------------


@hookspec
def avain_pilot_rules(pilot: Pilot) -> list[str] | None:
    """The pilot's own rules in words (who is eligible, how clients are numbered, …) for
    ``avain pilot show``; None or empty when the pilot is not yours.

    Kind: description. Every plugin's sentences are listed after the core's.

    Example::

        @hookimpl
        def avain_pilot_rules(pilot):
            if pilot.id == "mine":
                return ["a family-carer contract is required"]
    """


@hookspec(firstresult=True)
def avain_workflow_options(pilot: Pilot) -> WorkflowOptions | None:
    """Which optional workflow steps the pilot uses and who approves invoices.

    Kind: policy (firstresult). The core's fallback reads ``[workflow]`` in pilot.toml.

    Example::

        @hookimpl
        def avain_workflow_options(pilot):
            if pilot.id == "mine":
                return WorkflowOptions(confirm_receipt=True, invoice_approver="worker")
    """


@hookspec(firstresult=True)
def avain_period_end_policy(pilot: Pilot, period: Period) -> PeriodEndPolicy | None:
    """What happens to each budget's unused remainder when ``period`` closes: lapse (back
    to the organiser), carry over to the next month, or carry-once (the month's own
    remainder carries over; money carried into the month and still unused lapses).

    Kind: policy (firstresult). The core's fallback reads ``budget.period_end`` in
    pilot.toml (default: lapse). Under carry-once the core splits each remainder with
    ``PeriodEndPolicy.split`` (money carried in is spent first).

    Example::

        @hookimpl
        def avain_period_end_policy(pilot, period):
            if pilot.id == "mine":
                return PeriodEndPolicy("lapse" if period.month == 12 else "carry-once")
    """


# --- events ---------------------------------------------------------------


@hookspec
def avain_client_enrolled(pilot: Pilot, client: Client) -> None:
    """A client was enrolled (HB or control). Called after the enrolment committed.

    Kind: event. Return nothing; an exception here is logged and does not undo the
    enrolment.

    Example::

        @hookimpl
        def avain_client_enrolled(client):
            welcome_queue.append(client.code)
    """


@hookspec
def avain_proposal_made(pilot: Pilot, proposal: Proposal) -> None:
    """A client (or their HB assistant) proposed a purchase. Called after commit.

    Kind: event. Example::

        @hookimpl
        def avain_proposal_made(proposal):
            notify_worker(proposal.client_code)
    """


@hookspec
def avain_proposal_approved(pilot: Pilot, proposal: Proposal, commitment: Commitment) -> None:
    """The worker approved a proposal and a payment commitment was issued. After commit.

    Kind: event. Example::

        @hookimpl
        def avain_proposal_approved(commitment):
            send_commitment_to_provider(commitment.provider_id, commitment.reference)
    """


@hookspec
def avain_proposal_rejected(pilot: Pilot, proposal: Proposal, reason: str) -> None:
    """The worker rejected a proposal with ``reason``. After commit.

    Kind: event. Example::

        @hookimpl
        def avain_proposal_rejected(proposal, reason):
            tell_client(proposal.client_code, reason)
    """


@hookspec
def avain_invoice_paid(pilot: Pilot, invoice: Invoice) -> None:
    """Finance paid an invoice to the provider. After commit.

    Kind: event. Example::

        @hookimpl
        def avain_invoice_paid(invoice):
            bookkeeping.export(invoice.id)
    """


@hookspec
def avain_message_sent(pilot: Pilot, message: Message) -> None:
    """A message was written to a client's dialogue thread, by a participant or by the
    workflow (``message.author_role == "system"``). After commit.

    ``message`` carries no text: who wrote it, what it refers to and its
    ``recipients`` (the other participants, as ``role:id``), so a pilot can send an
    e-mail or SMS saying that a message is waiting, never what it says. The shipped
    ``notify_log`` plugin writes such notifications to a log file.

    Kind: event. Example::

        @hookimpl
        def avain_message_sent(message):
            for who in message.recipients:
                sms_gateway.notify(who, "Uusi viesti Avaimessa")
    """


@hookspec
def avain_checkpoint_written(checkpoint: dict[str, Any]) -> None:
    """A signed checkpoint of the audit streams' and ledger chains' heads was written (after
    every committed unit of work that appended audit events or transfers, and by
    ``avain audit checkpoint``).

    ``checkpoint`` is the JSON object appended to the checkpoint file: ``v``, ``at``,
    ``key`` (the integrity key's id), ``full``, ``audit`` (``{stream: [seq, hash]}``),
    ``ledger`` (``{account id: [seq, hash]}``) and ``mac`` (HMAC-SHA256 with the integrity
    key). It holds codes, numbers and hashes only, never personal data. Send it to storage
    that no one with write access to the database can change (a write-once bucket, a
    remote log), so a chain cut short in the database is still caught. A failing handler
    is logged and does not undo the work.

    Kind: event. Example::

        @hookimpl
        def avain_checkpoint_written(checkpoint):
            worm_bucket.put(f"avain/{checkpoint['at']}.json", json.dumps(checkpoint))
    """
