"""Value objects and records of the domain. Pure: the stdlib and attrs only, no I/O."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from attrs import field, frozen

from .errors import ValidationError

#: The largest amount any single money value may hold: 10 million euros, in cents.
#: Anything larger is a typing mistake, not a budget.
MAX_CENTS = 1_000_000_000


NBSP = "\u00a0"


def _group_thousands(n: int) -> str:
    return f"{n:,}".replace(",", NBSP)


@frozen(order=True)
class Money:
    """An amount of euros as integer cents. No floats anywhere near money.

    >>> Money(123450).fi()
    '1\u00a0234,50\u00a0€'
    """

    cents: int = field()
    currency: str = field(default="EUR")

    @cents.validator
    def _check_cents(self, _attr, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"money must be whole cents, not {type(value).__name__}")

    @classmethod
    def parse(cls, text: str | int, *, field_name: str = "amount") -> Money:
        """Parse a user-typed amount in euros: ``12``, ``12.5``, ``12,50``, ``1 234,50 €``.

        Fractions of a cent, negative and absurd amounts are refused with the field named.
        """
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(text * 100)
        cleaned = str(text).replace("€", "").replace("\u00a0", "").replace(" ", "").strip()
        cleaned = cleaned.replace(",", ".")
        if not re.fullmatch(r"-?\d+(\.\d+)?", cleaned):
            raise ValidationError(f"{field_name}: {text!r} is not an amount of euros (e.g. 12,50)")
        try:
            value = Decimal(cleaned)
        except InvalidOperation as exc:  # pragma: no cover - regex above guards this
            raise ValidationError(f"{field_name}: {text!r} is not an amount of euros") from exc
        cents = value * 100
        if cents != cents.to_integral_value():
            raise ValidationError(f"{field_name}: {text!r} has fractions of a cent")
        return cls(int(cents))

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.cents + other.cents, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.cents - other.cents, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.cents, self.currency)

    def _same(self, other: object) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot mix Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} with {other.currency}")

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split by integer ratios; the remainder cents go to the first parts so the parts
        always sum to the whole."""
        total = sum(ratios)
        if total <= 0:
            raise ValueError("ratios must sum to a positive number")
        parts = [self.cents * r // total for r in ratios]
        for i in range(self.cents - sum(parts)):
            parts[i % len(parts)] += 1
        return [Money(p, self.currency) for p in parts]

    def decimal(self) -> Decimal:
        return (Decimal(self.cents) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def fi(self) -> str:
        """Finnish (and Swedish) display: ``1 234,50 €`` with no-break spaces."""
        sign = "-" if self.cents < 0 else ""
        euros, cents = divmod(abs(self.cents), 100)
        return f"{sign}{_group_thousands(euros)},{cents:02d}{NBSP}€"

    def sv(self) -> str:
        return self.fi()

    def en(self) -> str:
        sign = "-" if self.cents < 0 else ""
        euros, cents = divmod(abs(self.cents), 100)
        return f"{sign}€{euros:,}.{cents:02d}"

    def __str__(self) -> str:
        return self.fi()


def positive_amount(money: Money, *, field_name: str = "amount") -> Money:
    """Refuse zero, negative and absurdly large amounts, naming the field."""
    if money.cents <= 0:
        raise ValidationError(f"{field_name}: must be more than 0,00 €, got {money.fi()}")
    if money.cents > MAX_CENTS:
        raise ValidationError(
            f"{field_name}: {money.fi()} is larger than the most avain accepts "
            f"({Money(MAX_CENTS).fi()})"
        )
    return money


@frozen(order=True)
class Period:
    """A calendar month, the unit budgets are allocated in (``2018-01``)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValidationError(f"period: {text!r} is not a month like 2018-01")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: dt.date) -> Period:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return self.next().first_day - dt.timedelta(days=1)

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def prorate(monthly: int, period: Period, first: dt.date, last: dt.date) -> tuple[int, str | None]:
    """The part of ``monthly`` cents for the days of ``period`` within [first, last], and a
    note saying so (None for the whole month). Cumulative: the share of days 1..b minus
    the share of days 1..a-1, each rounded down, so the parts of a month split at any days
    add up to exactly the monthly amount (the remainder cents go to the later parts)."""
    start = max(first, period.first_day)
    end = min(last, period.last_day)
    days = period.last_day.day
    if end < start:
        return 0, f"the decision does not cover {period}"
    if start == period.first_day and end == period.last_day:
        return monthly, None
    amount = monthly * end.day // days - monthly * (start.day - 1) // days
    return amount, (f"{end.day - start.day + 1} of {days} days in {period} "
                    f"({start.day}.–{end.day}.{period.month}.): {Money(amount).fi()}")


def clip_words(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, cut at a word boundary with an ellipsis
    when it is longer (a single word longer than the limit is cut at the limit)."""
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    if not text[limit - 1].isspace() and not head[-1].isspace():  # the cut is inside a word
        whole = re.match(r"(?s)(.*\S)\s+\S*$", head)
        head = whole.group(1) if whole else head
    return head.rstrip().rstrip(",;:+–-").rstrip() + "…"


def fi_date(day: dt.date) -> str:
    """Finnish display of a date: ``d.m.yyyy``."""
    return f"{day.day}.{day.month}.{day.year}"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Turn a frozen mapping back into plain dicts and lists (for JSON)."""
    if isinstance(value, MappingProxyType | dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Records that hooks receive and return
# ---------------------------------------------------------------------------

ROLES = ("admin", "worker", "supervisor", "finance", "evaluator", "assistant", "client")

#: What a client may consent to: the evaluation's use of their answers, and the dialogue.
CONSENT_PURPOSES = ("evaluation", "dialogue")

#: Clients per transaction when a period is opened or closed (the default of ``--batch``).
PERIOD_BATCH = 5000

#: At most this many attachments to a dialogue message, each at most MAX_ATTACHMENT bytes.
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT = 5 * 1024 * 1024


@frozen
class ClientGroup:
    """A client group of a pilot (e.g. families, elderly), with its one-letter code."""

    id: str
    code: str
    name: str
    max_clients: int | None = None


@frozen
class Pilot:
    """A pilot's validated configuration, built once from its pilot.toml."""

    id: str
    name: str
    code: str
    organiser: str
    groups: tuple[ClientGroup, ...]
    max_clients: int | None
    intake_closes: dt.date | None
    allow_temporary_hetu: bool
    monthly_cap: Money | None
    sections: MappingProxyType = field(factory=lambda: MappingProxyType({}))
    raw: MappingProxyType = field(factory=lambda: MappingProxyType({}), eq=False, repr=False)

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Pilot:
        """Build from a dict that already passed the composed JSON Schema."""
        intake = data.get("intake", {})
        budget = data.get("budget", {})
        groups = tuple(
            ClientGroup(g["id"], g["code"], g["name"], g.get("max_clients"))
            for g in data.get("groups", [])
        )
        closes = intake.get("closes")
        if isinstance(closes, str):
            closes = dt.date.fromisoformat(closes)
        cap = budget.get("monthly_cap")
        return cls(
            id=data["id"],
            name=data["name"],
            code=data["code"],
            organiser=data.get("organiser", ""),
            groups=groups,
            max_clients=intake.get("max_clients"),
            intake_closes=closes,
            allow_temporary_hetu=intake.get("allow_temporary_hetu", False),
            monthly_cap=Money(cap) if cap is not None else None,
            sections=_freeze(data.get("plugins", {})),
            raw=_freeze(data),
        )

    def group(self, group_id: str | None) -> ClientGroup:
        if group_id is None:
            if len(self.groups) == 1:
                return self.groups[0]
            raise ValidationError(
                f"--group: pilot {self.id} has several groups "
                f"({', '.join(g.id for g in self.groups)}); name one"
            )
        for g in self.groups:
            if g.id == group_id or g.code == group_id:
                return g
        raise ValidationError(
            f"--group: {group_id!r} is not a group of pilot {self.id} "
            f"(known: {', '.join(g.id for g in self.groups)})"
        )


@frozen
class Worker:
    """A person working in a pilot: personal worker, supervisor, finance, evaluator, …"""

    id: str
    pilot_id: str
    code: str
    role: str
    supervisor_id: str | None = None


@frozen
class Client:
    """A client as the rules see them: pseudonymous. Identity lives elsewhere."""

    code: str
    pilot_id: str
    group_id: str
    worker_id: str
    control: bool
    enrolled_on: dt.date
    ended_on: dt.date | None = None
    #: fi, sv or en: what the client reads (system messages in the thread, letters).
    language: str = "fi"


@frozen
class Applicant:
    """A person about to be enrolled. Carries no identity, only what rules may use."""

    pilot_id: str
    group_id: str
    worker_id: str
    control: bool
    birth_date: dt.date | None = None
    #: The day of the enrolment: age limits and time windows are judged on it.
    on_date: dt.date | None = None


@frozen
class WorkflowOptions:
    """Which optional steps of the purchase workflow a pilot uses (a policy record)."""

    confirm_receipt: bool = False
    invoice_approver: str = "supervisor"
    commitment_days: int = 60


@frozen
class ConfigSection:
    """A plugin's own section of pilot.toml: ``[plugins.<name>]`` validated by ``schema``."""

    name: str
    schema: dict
    description: str = ""


@frozen
class PilotSource:
    """A pilot shipped by a plugin: the path of its pilot.toml."""

    name: str
    path: str


@frozen
class Decision:
    """A decision granting HB (päätös): validity, the amount written on it if any, and the
    inputs the budget rules read (e.g. assessed hours, own-production prices)."""

    id: int
    client_code: str
    pilot_id: str
    valid_from: dt.date
    valid_to: dt.date
    monthly_amount: Money | None
    inputs: MappingProxyType = field(factory=lambda: MappingProxyType({}))

    def covers(self, period: Period) -> bool:
        return self.valid_from <= period.last_day and self.valid_to >= period.first_day


@frozen
class BudgetAmount:
    """A period's budget and why: the answer of ``avain_compute_budget``.

    ``whole_month=True`` says ``amount`` is the rule's amount for a whole month: the core
    then prorates it by the days the decision covers (:func:`prorate_budget`), so a pilot
    states only its monthly rule. False (the default) says the amount is final."""

    amount: Money
    explanation: str
    rule: str = "decision"
    details: dict | None = field(default=None, eq=False)  # JSON-able lines for `decision explain`
    whole_month: bool = False


def prorate_budget(result: BudgetAmount, decision: Decision, period: Period) -> BudgetAmount:
    """``result``, a whole month's budget, for the days of ``period`` that ``decision``
    covers (:func:`prorate`: the parts of a month add up to the month). The explanation
    gets the days as a note, the details a ``partial_month`` entry; a month the decision
    covers whole is returned as it is."""
    if decision.valid_from <= period.first_day and decision.valid_to >= period.last_day:
        return result
    cents, note = prorate(result.amount.cents, period, decision.valid_from, decision.valid_to)
    details = result.details
    if isinstance(details, dict):
        details = {**details, "partial_month": {"amount": cents, "note": note}}
    return BudgetAmount(Money(cents, result.amount.currency), f"{result.explanation}; {note}", result.rule,
                        details=details, whole_month=False)


#: What a period-end policy may do with a month's unused remainder.
PERIOD_END_ACTIONS = ("lapse", "carry-over", "carry-once")


@frozen
class PeriodEndPolicy:
    """What happens to a budget's unused remainder when its month closes.

    ``lapse``: all of it goes back to the organiser. ``carry-over``: all of it moves to the
    next month. ``carry-once``: the month's own remainder moves to the next month, and
    money that was carried into this month and is still unused lapses (money carries over
    once, then lapses)."""

    action: str = "lapse"

    def split(self, remainder: int, carried_in: int, spent: int) -> tuple[int, int]:
        """``(carried over, lapsed)`` cents of a budget's unused ``remainder`` when its month
        closes. ``carried_in`` is what was carried into the month, ``spent`` what the month
        spent (net of releases). What a month spends is taken from the money carried in
        first, so the part of the remainder that was carried in is what is left of
        ``carried_in`` after ``spent``, and the rest is the month's own. The two parts
        always add up to ``remainder``."""
        if remainder <= 0:
            return 0, 0
        if self.action == "carry-over":
            return remainder, 0
        if self.action == "carry-once":
            old = min(remainder, max(0, carried_in - max(0, spent)))
            return remainder - old, old
        return 0, remainder


@frozen
class Proposal:
    """A client's proposal to buy a service from a provider on a date."""

    id: int
    client_code: str
    pilot_id: str
    service: str
    provider_id: str
    amount: Money
    service_date: dt.date
    text: str | None
    status: str
    units: int = 1


@frozen
class Commitment:
    """A payment commitment (maksusitoumus) reserving budget for one provider."""

    id: int
    client_code: str
    provider_id: str
    amount: Money
    reference: str
    expires_on: dt.date
    status: str


@frozen
class Invoice:
    """A provider's invoice against a commitment."""

    id: int
    client_code: str
    provider_id: str
    number: str
    amount: Money
    commitment_id: int
    status: str


UNITS = ("hour", "visit", "day", "item", "euro")


@frozen
class Service:
    """A service of the catalogue: code, names in Finnish (Swedish, English where given),
    category and the unit it is priced in."""

    code: str
    name_fi: str
    category: str
    unit: str
    name_sv: str | None = None
    name_en: str | None = None
    note: str | None = None

    def name(self, lang: str = "fi") -> str:
        return {"sv": self.name_sv, "en": self.name_en}.get(lang) or self.name_fi


@frozen
class PurchaseFacts:
    """What the catalogue and the client's plan say about a proposal, gathered by the core
    for the ``avain_validate_purchase`` checks."""

    service: Service | None
    provider_name: str
    provider_approved: bool  # approved in the pilot for this service on the service date
    approval_note: str | None  # why not, in words (revoked on …, expired on …)
    catalogue_price: Money | None  # the provider's price for the service on that date
    plan_services: tuple[str, ...] | None  # None: the client has no plan
    pilot_services: tuple[str, ...] | None  # None: the pilot allows every catalogue service


#: What a payment backend can do; a backend declares the ones it implements.
BACKEND_CAPABILITIES = ("load_period", "charges", "service_events", "import_statements", "reconcile")


@frozen
class RailSimulation:
    """A payment rail running on a local simulator (``PaymentBackend.simulator``).

    ``settings`` points a pilot at the simulator: ``{config section: {key: value}}``
    merged into the pilot's ``[plugins.<section>]``. ``play_month(app, pilot, period, *,
    clients, providers, finance, rng)`` plays a month of purchases on the rail as its
    providers would (charges, service events), imports what the rail reports into the
    ledger as ``finance`` and reconciles; it returns a summary dict.
    """

    settings: Any
    play_month: Any


@frozen
class Allocation:
    """A client's budget for a period, as a backend loads it (to a wallet or a voucher)."""

    client_code: str
    period: Period
    amount: Money


@frozen
class PaymentBackend:
    """A payment rail a pilot names in pilot.toml (``[payment] backend = "<name>"``).

    The callables receive the application and call avain's services through
    ``app.run(actor, …)`` like any other caller; ``load_period`` runs after a month's
    allocation committed, ``import_file`` reads the rail's statement or event file, and
    ``reconcile`` lists every difference between the rail and the ledger.
    """

    name: str
    description: str
    capabilities: frozenset = field(converter=frozenset)
    load_period: Any = None  # (app, pilot, period, allocations) -> dict
    import_file: Any = None  # (app, actor, pilot, path) -> dict
    reconcile: Any = None  # (app, pilot, period) -> list[dict]
    #: ``(workdir, period) -> context manager yielding a RailSimulation``: the rail played
    #: by a local simulator, for ``avain demo`` and training; None when there is none.
    simulator: Any = None

    def __attrs_post_init__(self):
        unknown = set(self.capabilities) - set(BACKEND_CAPABILITIES)
        if unknown:
            raise ValueError(f"backend {self.name}: unknown capabilities {sorted(unknown)}")


@frozen
class Message:
    """A message of a client's dialogue thread as event hooks see it: who wrote it, what
    it refers to and whom to tell, never its text (a notification carries no content).

    ``author`` is ``role:id`` of who wrote it, or of who acted for a workflow step
    (``author_role`` is then ``system``); ``recipients`` are the thread's other
    participants as ``role:id``."""

    id: int
    client_code: str
    pilot_id: str
    author_role: str
    author: str | None
    event: str | None
    ref_type: str | None
    ref_id: int | None
    sent_at: dt.datetime
    recipients: tuple[str, ...]
    attachments: int = 0


#: The measurement points of the evaluation: the start and end of the client relationship,
#: and interim points between them in long relationships.
MEASUREMENT_POINTS = ("start", "interim", "end")

#: What each kind of person logs time for in the evaluation. ``services``: the cost of a
#: client's usual services from the organiser's systems (controls have no budget in avain).
TIMELOG_ACTIVITIES = {
    "worker": ("assessment", "planning", "dialogue", "decisions", "guidance", "meetings", "other"),
    "client": ("arranging",),
    "assistant": ("assistance", "travel"),
    "services": ("usual-services",),
}
#: The most minutes one entry of the time log may hold: a day.
TIMELOG_MAX_MINUTES = 24 * 60


@frozen
class Instrument:
    """A questionnaire of the evaluation (Kykyviisari, a satisfaction survey, …): a
    versioned JSON Schema of one response (``schema``: item ids, types and scales; its
    ``x-avain`` member says who answers it, at which points, and its summary scales) and
    the function that scores a valid response into scale values. ``provisional`` says the
    scoring is avain's stand-in where the instrument's own formula is not public."""

    name: str
    schema: dict
    score: Any = field(eq=False, repr=False)
    provisional: bool = False
    description: str = ""

    @property
    def version(self) -> str:
        return str(self.schema["x-avain"]["version"])

    @property
    def respondents(self) -> str:
        """``all``, ``hb`` (HB clients only, e.g. the ESR forms) or ``control``."""
        return self.schema["x-avain"].get("respondents", "all")

    @property
    def points(self) -> tuple[str, ...]:
        return tuple(self.schema["x-avain"].get("points", MEASUREMENT_POINTS))

    @property
    def scales(self) -> dict[str, list[str]]:
        return dict(self.schema["x-avain"].get("scales", {}))
