"""``avain demo``: a realistic month of a pilot on synthetic people (Faker fi_FI).

For each pilot (every plugin-shipped pilot, or the one asked for) it adds a team of
workers and a few providers, enrolls HB clients and controls, grants decisions, opens
January 2018, runs the month's proposals, approvals, rejections, invoices and payments
through the same services the commands use, closes the month and verifies the books.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from faker import Faker
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from . import checkpoints, integrity_key
from . import db as dbmod
from .app import App
from .auth import Actor
from .domain import Money, Period, RailSimulation
from .errors import Conflict, Refused
from .models import ClientRow, TransferRow, WorkerRow
from .plugins import collect
from .services import (
    budget,
    catalogue,
    evaluation,
    messages,
    payments,
    people,
    pilots,
    plans,
    providers,
    purchases,
    statements,
)
from .services import finance as finance_svc
from .workdays import FINLAND, is_working_day, next_working_day

DEMO_PERIOD = Period(2018, 1)

REJECTIONS = ["the service is not in the client's plan", "the same need is met by home care already",
              "the price is far above the own-production price"]

#: The dialogue's typical exchanges (Omasote): a client's question and the worker's answer.
#: ``{first}`` is the client's first name, ``{worker}`` the worker's, ``{phone}`` and
#: ``{email}`` the client's contacts: the de-identified copy for evaluators hides them all.
EXCHANGES = [
    ("Hei {worker}! Voinko käyttää budjettia ikkunanpesuun ennen kevättä, vai pitääkö se olla "
     "suunnitelmassa erikseen? T. {first}",
     "Hei {first}! Ikkunanpesu käy, kun se kuuluu kotiapuun suunnitelmassasi. Tee ehdotus "
     "laskurissa, niin katson sen vielä tänään."),
    ("Siivousyritys ei päässyt sovittuna päivänä. Voinko siirtää käynnin helmikuulle?",
     "Käynnin voi siirtää, mutta tammikuun budjetti ei siirry: käyttämätön osa raukeaa kuun "
     "lopussa. Tee helmikuulle uusi ehdotus, kun kuukausi on avattu."),
    ("Mistä näen, paljonko tämän kuun budjetista on vielä jäljellä?",
     "Tiliotteelta: siinä näkyy myönnetty, varattu ja käytetty summa. Tällä hetkellä "
     "varauksia on yksi, loput ovat käytettävissä."),
    ("Naapurin yritys tekisi pihatyöt halvemmalla. Voinko ostaa siltä? Soittakaa tarvittaessa "
     "numeroon {phone} tai kirjoittakaa {email}.",
     "Tuottajan pitää olla hyväksytty palvelutarjottimelle. Tarkistan huomenna, onko se "
     "rekisterissä, ja palaan asiaan."),
    ("Lapsen hoitaja sairastui. Voimmeko ostaa lastenhoitoa toiselta tuottajalta tällä viikolla?",
     "Voitte: valitse palvelutarjottimelta toinen hyväksytty tuottaja ja tee ehdotus, niin "
     "hyväksyn sen heti."),
    ("Kiitos maksusitoumuksesta! Pitääkö minun viedä se itse palveluntuottajalle?",
     "Ei tarvitse: tuottaja näkee sitoumuksen viitenumerolla ja laskuttaa suoraan meitä."),
]
#: What clients write with a proposal.
PROPOSAL_TEXTS = ["Tarvitsen apua ennen lapsen syntymäpäiviä.",
                  "Sama tuottaja kuin viime kerralla, se sopi meille hyvin.",
                  "Aamupäivä sopii parhaiten, iltapäivisin olemme terapiassa.",
                  "Tämä korvaa omaishoidon vapaapäivän tässä kuussa.", "Tuottaja pääsee tulemaan jo ensi viikolla.",
                  "Kävin tarjottimella läpi vaihtoehdot, tämä oli lähin."]
#: Hours a worker takes to answer: mostly within the working day, now and then longer.
ANSWER_HOURS = [(0.85, 0.3, 6.0), (0.10, 16.0, 30.0), (0.05, 50.0, 90.0)]


class DemoClock:
    """The simulated time of the demo month: messages are stamped with it."""

    def __init__(self) -> None:
        self.now = dt.datetime.combine(DEMO_PERIOD.first_day, dt.time(8), FINLAND).astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def at(self, day: dt.date, hour: float) -> dt.datetime:
        moment = dt.datetime.combine(day, dt.time(0), FINLAND) + dt.timedelta(hours=hour)
        self.now = max(self.now + dt.timedelta(seconds=1), moment.astimezone(dt.UTC))
        return self.now

    def answer(self, rng: random.Random) -> dt.datetime:
        """Move on to when a worker answers: a realistic delay, then within office hours
        (8–16 on a working day)."""
        local = (self.now + dt.timedelta(hours=_answer_delay(rng))).astimezone(FINLAND)
        if not is_working_day(local.date()) or local.hour >= 16:
            day = next_working_day(local.date())
            local = dt.datetime.combine(day, dt.time(8), FINLAND) + dt.timedelta(hours=rng.uniform(0, 3))
        elif local.hour < 8:
            local = dt.datetime.combine(local.date(), dt.time(8), FINLAND) + dt.timedelta(hours=rng.uniform(0, 2))
        self.now = max(self.now + dt.timedelta(seconds=1), local.astimezone(dt.UTC))
        return self.now

    def later(self, hours: float) -> dt.datetime:
        self.now = self.now + dt.timedelta(hours=hours)
        return self.now

    def reset(self, day: dt.date, hour: float) -> None:
        """Go back to a day for the next client (each thread runs forward in time)."""
        self.now = (dt.datetime.combine(day, dt.time(0), FINLAND) + dt.timedelta(hours=hour)).astimezone(dt.UTC)


def _answer_delay(rng: random.Random) -> float:
    x = rng.random()
    for share, low, high in ANSWER_HOURS:
        if x < share:
            return rng.uniform(low, high)
        x -= share
    return rng.uniform(1, 5)


def is_empty(app: App) -> bool:
    with Session(app.engine) as s:
        return not any(s.execute(select(func.count()).select_from(t)).scalar_one()
                       for t in (ClientRow, WorkerRow, TransferRow))


def reset(app: App) -> None:
    """Empty the database and build the schema afresh. Its checkpoint file is kept, renamed
    (``….checkpoints.reset-<time>``): the chains it names are gone on purpose."""
    with app.engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    dbmod.upgrade(app.engine)
    path = checkpoints.path_for(app.engine.url.render_as_string(hide_password=False))
    if path is not None and path.exists():
        path.rename(path.with_name(f"{path.name}.reset-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"))


def run(app: App, *, pilot_ids: list[str] | None = None, seed: int = 2018,
        clients_per_group: int = 5, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the demo month; returns a machine-readable summary. ``progress(done, total)``
    after each pilot's month.

    A pilot whose payment backend loads budgets into an outside service (an e-wallet, a
    voucher system) runs against the backend's local simulator, started for the demo and
    stopped after it; a backend without one is skipped and named."""
    admin = Actor("admin")
    if not is_empty(app):
        raise Conflict("the database is not empty: give --reset to start it afresh, or point "
                       "--db at a new file")
    # the key first: every audit event and transfer from here on is hashed with it
    ikey, created = integrity_key.ensure(app.engine.url.render_as_string(hide_password=False))
    app.run(admin, pilots.sync_plugin_pilots)
    available = [p.name for p in collect(app.pm, "avain_pilots")]
    for pid in pilot_ids or ():
        app.run(admin, pilots.get, pid)
    chosen, skipped = [], []
    backends = {}
    for pid in pilot_ids or sorted(available):
        backend = payments.backend_for(app.pm, app.run(admin, pilots.get, pid))
        if backend is not None and backend.load_period is not None and backend.simulator is None:
            skipped.append({"pilot": pid, "backend": backend.name,
                            "why": f"needs the {backend.name} service, and its plugin has no simulator"})
            continue
        chosen.append(pid)
        backends[pid] = backend if backend is not None and backend.simulator is not None else None
    fake = Faker("fi_FI")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    summary = {"period": str(DEMO_PERIOD), "pilots": [], "skipped": skipped,
               "message_key": app.read(admin, messages.prepare_key)}
    summary["integrity_key"] = {"key": ikey.id, "where": ikey.describe(), "created": created}
    where = checkpoints.path_for(app.engine.url.render_as_string(hide_password=False))
    summary["checkpoints"] = str(where) if where is not None else None
    provider_ids = _providers(app, fake)
    notifications = _notification_log(app)
    clock, real_clock = DemoClock(), app.clock
    app.clock = clock
    try:
        with tempfile.TemporaryDirectory(prefix="avain-demo-") as workdir, ExitStack() as running:
            for done, pid in enumerate(chosen):
                if progress:
                    progress(done, len(chosen))
                rail = None
                if backends[pid] is not None:
                    folder = Path(workdir) / pid
                    folder.mkdir()
                    rail = running.enter_context(backends[pid].simulator(folder, DEMO_PERIOD))
                    for section, values in rail.settings.items():
                        app.run(admin, pilots.configure_section, pid, section, values)
                if notifications is not None:
                    app.run(admin, pilots.configure_section, pid, "notify_log", {"file": str(notifications)})
                summary["pilots"].append(_pilot_month(app, pid, fake, rng, provider_ids, clients_per_group, rail,
                                                      clock))
        month_end = dt.datetime.combine(DEMO_PERIOD.last_day + dt.timedelta(days=1), dt.time(0), FINLAND)
        for p in summary["pilots"]:
            figures = app.read(admin, messages.stats, pilot_id=p["pilot"], now=month_end)["total"]
            p["dialogue"] = {"messages": app.read(admin, _message_count, p["pilot"]), **figures}
    finally:
        app.clock = real_clock
    if progress:
        progress(len(chosen), len(chosen))
    summary["notifications"] = str(notifications) if notifications is not None else None
    summary["ledger"] = app.run(admin, statements.verify)
    summary["audit_events"] = app.run(admin, _audit_count)
    return summary


def _notification_log(app: App) -> Path | None:
    """Where the demo pilots' notifications of new messages go: beside a SQLite database,
    when the notify_log plugin is loaded."""
    if not any(c.name == "notify_log" for c in collect(app.pm, "avain_config_sections")):
        return None
    path = dbmod.sqlite_path(app.engine.url.render_as_string(hide_password=False))
    if path is None:  # a server database has no folder of its own: no log in whatever folder we run in
        return None
    return path.resolve().parent / "notifications.log"


def _message_count(uow, pilot_id: str) -> int:
    from .models import MessageRow

    return uow.session.execute(select(func.count()).select_from(MessageRow)
                               .where(MessageRow.pilot_id == pilot_id)).scalar_one()


def _audit_count(uow) -> int:
    from .models import AuditEventRow

    return uow.session.execute(select(func.count()).select_from(AuditEventRow)).scalar_one()


def _providers(app: App, fake: Faker) -> list[str]:
    ids = []
    for _ in range(4):
        data = app.run(Actor("admin"), providers.add, business_id=fake.company_business_id(),
                       name=fake.company(), iban=fake.iban(), einvoice_address=f"0037{fake.msisdn()[:8]}",
                       areas=[fake.city() for _ in range(2)])
        ids.append(data["id"])
    return ids


def _catalogue(app: App, pilot, provider_ids: list[str], rng: random.Random) -> list[str]:
    """Approve every demo provider for the pilot's services, with the checklist's evidence,
    and give each a price near the pilot's own-production price."""
    admin = Actor("admin")
    services = list(pilot.raw.get("services") or [s["code"] for s in app.run(admin, catalogue.list_services)])
    own = {p["service"]: p["unit_price"] for p in
           pilot.sections.get("budget_calculator", {}).get("prices", ())}
    checks = {c: ("document seen", DEMO_PERIOD.first_day - dt.timedelta(days=30))
              for c in providers.criteria(pilot)}
    for pid in provider_ids:
        offered = sorted(rng.sample(services, k=max(1, len(services) * 2 // 3)))
        app.run(admin, providers.approve, pid, pilot_id=pilot.id, services=offered, checks=checks,
                valid_from=DEMO_PERIOD.first_day - dt.timedelta(days=31))
        for code in offered:
            if app.run(admin, lambda uow, p=pid, c=code: catalogue.price_on(uow, p, c, DEMO_PERIOD.first_day)):
                continue  # priced already for another pilot: one price list per provider
            base = own.get(code, 3000)
            app.run(admin, catalogue.set_price, provider_id=pid, service=code,
                    price=Money(base * rng.randint(85, 115) // 100 // 10 * 10),
                    valid_from=dt.date(2017, 1, 1))
    return services


def _pilot_month(app: App, pilot_id: str, fake: Faker, rng: random.Random,
                 provider_ids: list[str], n_clients: int, rail: RailSimulation | None,
                 clock: DemoClock) -> dict[str, Any]:
    admin = Actor("admin")
    pilot = app.run(admin, pilots.get, pilot_id)
    wf = app.run(admin, lambda uow: uow.hooks.avain_workflow_options(pilot=pilot))
    names: dict[str, str] = {}

    def add(code, role, sup=None):
        name = fake.name()
        wid = app.run(admin, people.add_worker, pilot_id=pilot_id, code=code, name=name,
                      role=role, supervisor_id=sup)["id"]
        names[wid] = name
        return wid

    sup = add("90", "supervisor")
    workers = [add("01", "worker", sup), add("02", "worker", sup)]
    finance = add("91", "finance")
    controller = add("94", "finance")  # a second pair of eyes where finance approves invoices
    add("92", "evaluator")
    assistant = add("93", "assistant")

    start = DEMO_PERIOD.first_day
    taken: set[str] = set()
    hb: list[str] = []
    controls: list[str] = []
    refused: list[str] = []
    # Each client group gets its HB clients and as many controls (matched by pilot and
    # group, for the evaluation), the two personal workers taking turns.
    plan = [(group, control, i) for group in pilot.groups for control in (False, True) for i in range(n_clients)]
    for n, (group, control, i) in enumerate(plan):
        worker = workers[n % len(workers)]
        name = fake.name()
        try:
            # Consent to the evaluation is a condition of joining; HB clients also let the
            # evaluators read their dialogue, free of identifiers.
            code = app.run(Actor("worker", worker), people.enroll, pilot_id=pilot_id,
                           hetu=_hetu(pilot, group.id, rng, taken), name=name,
                           worker_id=worker, group_id=group.id, control=control,
                           assessment=_assessment(pilot, group.id), on_date=start,
                           phone=f"+35840{rng.randint(1000000, 9999999)}",
                           consents=("evaluation",) if control else ("evaluation", "dialogue"),
                           language=_language(pilot, group.id, i))["code"]
        except Refused as exc:
            refused.append(str(exc))
            continue
        names[code] = name
        (controls if control else hb).append(code)
    if hb:
        app.run(admin, people.assign_assistant, hb[0], assistant)
    services = _catalogue(app, pilot, provider_ids, rng)
    priced = [s for s in services if s in {p["service"] for p in
                                            pilot.sections.get("budget_calculator", {}).get("prices", ())}]
    plans_of: dict[str, list[str]] = {}
    for code in hb:
        worker = Actor("worker", _worker_of(app, code))
        chosen = sorted(rng.sample(priced or services, k=min(3, len(priced or services))))
        plans_of[code] = chosen
        app.run(worker, plans.set_plan, code, valid_from=start,
                items={s: rng.randint(2, 6) for s in chosen}, carer_days_off=rng.random() < 0.5)
        app.run(worker, budget.grant, code, valid_from=start, valid_to=dt.date(2018, 12, 31))
    opened = budget.open_period(app, Actor("finance", finance), pilot_id, DEMO_PERIOD)
    talk = _Dialogue(app, rng, clock, names, sup, assistant if hb else None, hb[0] if hb else None)
    if rail is not None:
        for code in hb:
            clock.reset(start, 7)
            for day in sorted(start + dt.timedelta(days=rng.randint(1, 24)) for _ in range(rng.randint(1, 2))):
                talk.exchange(code, day)
        # The rail is the purchase: providers charge the wallet or record service events,
        # and finance imports what the rail reports.
        played = rail.play_month(app, app.run(admin, pilots.get, pilot_id), DEMO_PERIOD, clients=hb,
                                 providers=provider_ids, finance=Actor("finance", finance), rng=rng)
        evaluated = _evaluation(app, pilot, hb, controls, assistant, finance, rng)
        return _month_end(app, pilot_id, finance, hb, controls, refused, opened,
                          {"rail": played, "evaluation": evaluated})

    counts = {"proposed": 0, "approved": 0, "rejected": 0, "refused_budget": 0, "refused_rules": 0,
              "invoiced": 0,
              "paid": 0, "cancelled": 0}
    for code in hb:
        worker = Actor("worker", _worker_of(app, code))
        proposer = Actor("assistant", assistant) if code == hb[0] else Actor("client", code)
        clock.reset(start, 7)
        days = sorted(start + dt.timedelta(days=rng.randint(0, 27)) for _ in range(rng.randint(3, 7)))
        asks = set(rng.sample(range(len(days)), k=min(len(days), rng.randint(1, 2))))
        for n, day in enumerate(days):
            if n in asks:  # a question in the dialogue before the proposal
                talk.exchange(code, day)
            outside = [s for s in services if s not in plans_of[code]]
            # Now and then a client proposes something outside the plan: the rules say no.
            service = rng.choice(outside if outside and rng.random() < 0.08 else plans_of[code])
            clock.at(day, rng.uniform(8, 21))
            # The client looks the service up in the catalogue and picks an approved provider.
            offers = app.run(proposer, catalogue.search, service=service, pilot_id=pilot_id, on_date=day)
            provider = rng.choice(offers)["provider"] if offers else rng.choice(provider_ids)
            units = rng.randint(1, 3)
            price = app.run(admin, lambda uow, p=provider, s=service, d=day: catalogue.price_on(uow, p, s, d))
            amount = Money(units * (price if price else 4000) - rng.choice([0, 0, 500]))
            p = app.run(proposer, purchases.propose, code, service=service, units=units,
                        provider_id=provider, amount=amount, service_date=day,
                        text=rng.choice(PROPOSAL_TEXTS))
            counts["proposed"] += 1
            clock.answer(rng)  # the worker decides on it, mostly the same or the next working day
            if rng.random() < 0.1:
                app.run(worker, purchases.reject, p["id"], reason=rng.choice(REJECTIONS))
                counts["rejected"] += 1
                continue
            try:
                c = app.run(worker, purchases.approve, p["id"], note="approved: fits the plan",
                            today=day)["commitment"]
            except Refused as exc:
                app.run(worker, purchases.reject, p["id"], reason="; ".join(exc.reasons) or str(exc))
                counts["refused_budget" if "budget" in str(exc) else "refused_rules"] += 1
                continue
            counts["approved"] += 1
            if rng.random() < 0.1:
                app.run(worker, purchases.cancel, c["id"], on_date=day)
                counts["cancelled"] += 1
                continue
            if wf.confirm_receipt:
                app.run(proposer, purchases.confirm_receipt, c["id"], on_date=day)
            billed = Money(c["amount"] - (rng.choice([0, 0, 0, 500]) if c["amount"] > 1000 else 0))
            inv = app.run(Actor("finance", finance), purchases.record_invoice,
                          provider_id=c["provider"], number=f"{rng.randint(10000, 99999)}-{c['id']}",
                          amount=billed, reference=c["reference"],
                          on_date=day + dt.timedelta(days=rng.randint(1, 10)), final=True)
            counts["invoiced"] += 1
            approver = {"supervisor": Actor("supervisor", sup), "worker": worker,
                        "finance": Actor("finance", controller)}[wf.invoice_approver]
            app.run(approver, purchases.approve_invoice, inv["id"])
    # Finance pays the month's approved invoices in one SEPA batch, confirmed by the bank.
    clock.reset(DEMO_PERIOD.last_day + dt.timedelta(days=1), 10)
    if counts["invoiced"]:
        batch = app.run(Actor("finance", finance), finance_svc.create_batch, pilot_id=pilot_id,
                        execution_date=DEMO_PERIOD.last_day)
        paid = app.run(Actor("finance", finance), finance_svc.confirm_batch, batch["id"])
        counts["paid"] = len(paid["invoices"])
        counts["payment_batch"] = batch["message_id"]
    evaluated = _evaluation(app, pilot, hb, controls, assistant, finance, rng)
    return _month_end(app, pilot_id, finance, hb, controls, refused, opened,
                      {"workflow": counts, "evaluation": evaluated})


#: When the demo's measurements are answered: at the start of the relationship and at its
#: end, the year after (the pilots' relationships ran to the end of 2018).
START_DAY, END_DAY = dt.date(2018, 1, 3), dt.date(2018, 12, 14)
#: Minutes a personal worker spends on a client in the demo month, per activity: an HB
#: client's (the plan, proposals and dialogue) and a control's (usual client work).
WORKER_TIME = {False: [("assessment", 60, 120), ("planning", 45, 90), ("decisions", 10, 40), ("dialogue", 10, 60)],
               True: [("assessment", 60, 120), ("guidance", 30, 90), ("meetings", 30, 60)]}


def _evaluation(app: App, pilot, hb: list[str], controls: list[str], assistant: str, finance: str,
                rng: random.Random) -> dict[str, int]:
    """The evaluation's data of the demo clients: start and end measurements with every
    instrument the pilot uses (HB clients improving a little more than controls, as a
    made-up example), workers' and clients' time, the HB assistant's time and costs, and
    the cost of the controls' usual services."""
    instruments = evaluation.registry_of(app.pm)
    used = [instruments[n] for n in evaluation.pilot_instruments(pilot) if n in instruments]
    counts = {"responses": 0, "time_entries": 0}
    for code in hb + controls:
        control = code in controls
        worker = Actor("worker", _worker_of(app, code))
        gain = rng.gauss(0.03, 0.06) if control else rng.gauss(0.10, 0.06)
        level = rng.uniform(0.3, 0.6)
        for inst in used:
            if inst.respondents != "all" and (inst.respondents == "hb") == control:
                continue
            for point, day, shift in (("start", START_DAY, 0.0), ("end", END_DAY, gain)):
                if point not in inst.points:
                    continue
                answers = _answers(inst, level + shift, rng)
                app.run(worker, evaluation.record_response, code, instrument=inst.name, point=point,
                        answered_on=day, answers=answers)
                counts["responses"] += 1
        for activity, low, high in WORKER_TIME[control]:
            app.run(worker, evaluation.log_time, code, activity=activity, minutes=rng.randint(low, high),
                    on_date=DEMO_PERIOD.first_day + dt.timedelta(days=rng.randint(2, 25)))
            counts["time_entries"] += 1
        if control:  # usual services, from the organiser's own systems
            app.run(Actor("finance", finance), evaluation.log_time, code, activity="usual-services",
                    cost=rng.randint(150, 450) * 100, on_date=DEMO_PERIOD.last_day)
        else:  # the client's own time arranging services
            app.run(Actor("client", code), evaluation.log_time, code, activity="arranging",
                    minutes=rng.randint(20, 120), on_date=DEMO_PERIOD.first_day + dt.timedelta(days=rng.randint(2, 25)))
        counts["time_entries"] += 1
    if hb:
        app.run(Actor("assistant", assistant), evaluation.log_time, hb[0], activity="assistance",
                minutes=rng.randint(60, 180), cost=rng.randint(5, 20) * 100,
                on_date=DEMO_PERIOD.first_day + dt.timedelta(days=10))
        counts["time_entries"] += 1
    return counts


def _answers(inst, level: float, rng: random.Random) -> dict[str, Any]:
    """A made-up response: each numeric item near ``level`` of its range (0–1), yes/no
    and choice items at random, and a short free-text answer where the form has one."""
    out: dict[str, Any] = {}
    for item, spec in inst.schema["properties"].items():
        if spec.get("type") == "integer":
            low, high = spec["minimum"], spec["maximum"]
            x = min(1.0, max(0.0, rng.gauss(level, 0.12)))
            out[item] = round(low + x * (high - low))
        elif spec.get("type") == "boolean":
            out[item] = rng.random() < 0.7
        elif "enum" in spec:
            out[item] = rng.choice(spec["enum"])
        elif spec.get("type") == "string":
            out[item] = rng.choice(["Palvelut toimivat hyvin.", "Toivoisin enemmän tietoa vaihtoehdoista.",
                                    "Budjetin seuraaminen oli helppoa."])
    return out


class _Dialogue:
    """Writes the demo's exchanges: a client (or their HB assistant) asks, and the personal
    worker — or the supervisor, when the worker is away — answers after a realistic delay."""

    def __init__(self, app: App, rng: random.Random, clock: DemoClock, names: dict[str, str], supervisor: str,
                 assistant: str | None, assisted: str | None):
        self.app, self.rng, self.clock, self.names = app, rng, clock, names
        self.supervisor, self.assistant, self.assisted = supervisor, assistant, assisted

    def exchange(self, code: str, day: dt.date) -> None:
        rng = self.rng
        worker = _worker_of(self.app, code)
        question, answer = rng.choice(EXCHANGES)
        words = {"first": self.names[code].split()[0], "worker": self.names[worker].split()[0],
                 "phone": f"040 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                 "email": f"{self.names[code].split()[0].lower()}@example.fi"}
        asker = Actor("assistant", self.assistant) if code == self.assisted else Actor("client", code)
        self.clock.at(day, rng.uniform(7, 22))
        self.app.run(asker, messages.send, code, text=question.format(**words))
        self.clock.answer(rng)
        answerer = Actor("supervisor", self.supervisor) if rng.random() < 0.15 else Actor("worker", worker)
        self.app.run(answerer, messages.thread, code)  # opening the thread marks the question read
        self.app.run(answerer, messages.send, code, text=answer.format(**words))
        if rng.random() < 0.7:  # the client reads the answer that evening
            self.clock.later(rng.uniform(1, 8))
            self.app.run(asker, messages.thread, code)


def _month_end(app: App, pilot_id: str, finance: str, hb: list[str], controls: list[str], refused: list[str],
               opened: dict[str, Any], month: dict[str, Any]) -> dict[str, Any]:
    """Close the month and gather each client's statement."""
    admin = Actor("admin")
    closed = budget.close_period(app, Actor("finance", finance), pilot_id, DEMO_PERIOD)
    client_rows = []
    for code in hb:
        st = app.run(admin, statements.statement, code)
        t = st["totals"]
        client_rows.append({
            "client": code, "lines": len(st["lines"]), "available": st["balance"]["available"],
            **{k: Money(t.get(k, 0)).fi() for k in ("granted", "spent", "corrected", "released", "lapsed")},
            "reserved": Money(st["balance"]["reserved"]).fi()})
    return {"pilot": pilot_id, "clients": len(hb), "controls": len(controls),
            "enrolment_refusals": refused, "opened": opened, **month, "closed": closed,
            "pilot_rules": _pilot_rules(app, pilot_id),
            "statements": client_rows}


def _pilot_rules(app: App, pilot_id: str) -> list[str]:
    """The rules the pilot's own plugins apply, in their words (``avain_pilot_rules``)."""
    pilot = app.run(Actor("admin"), pilots.get, pilot_id)
    return [line for words in app.pm.hook.avain_pilot_rules(pilot=pilot) for line in words or ()]


def _demo_of(pilot, group_id: str) -> dict[str, Any]:
    """The group's ``demo`` table of pilot.toml: how to make a typical client of it."""
    return next((g.get("demo") or {} for g in pilot.raw.get("groups", []) if g["id"] == group_id), {})


def _assessment(pilot, group_id: str) -> dict[str, str]:
    """Need-assessment facts of a typical client of the group (its pilot.toml ``demo``
    table), else facts that make a client of the example pilots eligible."""
    return dict(_demo_of(pilot, group_id).get("assessment")
                or {"carer_contract": "yes", "need": "continuous", "can_plan": "yes", "group": group_id})


def _language(pilot, group_id: str, i: int) -> str:
    """The language of the group's i-th demo client: its ``demo.languages`` weights in turn
    (``{fi = 4, sv = 1}``: every fifth speaks Swedish), else Finnish."""
    turns = [lang for lang, weight in (_demo_of(pilot, group_id).get("languages") or {"fi": 1}).items()
             for _ in range(weight)]
    return turns[i % len(turns)] if turns else "fi"


_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def _hetu(pilot, group_id: str, rng: random.Random, taken: set[str]) -> str:
    """A synthetic henkilötunnus of someone whose age on the demo month's first day is in the
    group's ``demo.ages`` (default 1–90). It is only well-formed: date, individual number
    (800–899, not the temporary 900–999 the pilots refuse) and check character are made up,
    as Faker's are, and may match a real person's by chance; the names are Faker's."""
    low, high = _demo_of(pilot, group_id).get("ages") or (1, 90)
    while True:
        years = rng.randint(low, high)
        born = DEMO_PERIOD.first_day.replace(year=DEMO_PERIOD.first_day.year - years - 1) + dt.timedelta(
            days=rng.randint(1, 364))
        sign = {18: "+", 19: "-", 20: "A"}[born.year // 100]
        digits = f"{born:%d%m%y}{rng.randint(800, 899):03d}"
        code = f"{born:%d%m%y}{sign}{digits[6:]}{_HETU_CHECK[int(digits) % 31]}"
        if code not in taken:
            taken.add(code)
            return code


def _worker_of(app: App, code: str) -> str:
    with Session(app.engine) as s:
        return s.get(ClientRow, code).worker_id
