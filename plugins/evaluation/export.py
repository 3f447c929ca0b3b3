"""``avain --as evaluator eval export``: pseudonymous CSV files for the evaluators.

Keyed by client code only. No name, henkilötunnus, phone number, address or free text
leaves avain: identity lives in tables this export never reads, free-text survey answers
and proposal texts are left out, dates of the relationship are given as months, and the
client–worker dialogue comes only for clients who consented to it, through the dialogue's
own de-identification. Only clients whose consent to the evaluation is in force are
exported; a withdrawal excludes the client from every later export.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select

from avain.core import outfiles
from avain.core.audit import ORGANISER
from avain.core.models import (
    ClientRow,
    ProposalRow,
    SurveyResponseRow,
    SurveyScoreRow,
    TimeLogRow,
)
from avain.core.services import consent, messages
from avain.core.services.common import actor_pilot, check_actor, in_pilot, record
from avain.core.services.evaluation import free_text_items, registry
from avain.core.text import csv_writer
from avain.core.uow import UnitOfWork

from .figures import client_totals, eligible

README = """Pseudonymous evaluation data exported by avain on {day}.

Every file is keyed by the client code (pilot, group, worker, ordinal); nothing here names
a person. Only clients whose consent to the evaluation was in force on the export day are
included; the dialogue only for those who also consented to its use.

clients.csv    client, pilot, group, arm (hb/control), enrolled and ended (year-month)
responses.csv  client, instrument, version, point, answered_on, item, value (free-text items left out)
scores.csv     client, instrument, point, scale, value (the instrument's scoring; see its schema)
time.csv       client, who (worker/client/assistant/services), activity, on_date, minutes, cost_eur
costs.csv      client, granted_eur, spent_eur (from the ledger), and the time and cost totals of time.csv
proposals.csv  client, proposal, service, amount_eur, service_date, status (no texts, no providers)
dialogue/      CODE.json: the client–worker dialogue with names, identity codes, phone numbers,
               e-mail and street addresses replaced by roles or removed
"""


def _month(day: dt.date | None) -> str:
    return day.strftime("%Y-%m") if day else ""


def _eur(cents: int | None) -> str:
    return f"{(cents or 0) / 100:.2f}"


def export(uow: UnitOfWork, out: Path, *, pilot_ids: list[str] | None = None) -> dict[str, Any]:
    check_actor(uow, "eval.export")
    for pid in pilot_ids or ():
        in_pilot(uow, pid, "eval.export")
    own = actor_pilot(uow)
    if own is not None and not pilot_ids:  # an evaluator exports their own pilot
        pilot_ids = [own]
    out = Path(out)
    # Written into a private folder of its own beside ``out`` and renamed at the end: a
    # failed export (no message key for the dialogue, a full disk) leaves no partial files,
    # and a symbolic link planted at ``out`` is refused, never followed.
    with outfiles.new_folder(out) as work:
        done = _write(uow, work, pilot_ids)
    return {**done, "out": str(out)}


def _write(uow: UnitOfWork, out: Path, pilot_ids: list[str] | None) -> dict[str, Any]:
    today = dt.date.today()
    conn = uow.core_connection()
    c = ClientRow.__table__.c
    scope = c.code.in_(eligible(today))
    if pilot_ids:
        scope = and_(scope, c.pilot_id.in_(pilot_ids))
    written: dict[str, int] = {}

    def table(name: str, header: list[str], rows) -> None:
        n = 0
        with (out / name).open("w", encoding="utf-8", newline="") as fh:
            w = csv_writer(fh)
            w.writerow(header)
            for row in rows:
                w.writerow(row)
                n += 1
        written[name] = n

    codes: list[str] = []

    def clients():
        for code, pid, group, control, enrolled, ended in conn.execute(
                select(c.code, c.pilot_id, c.group_id, c.control, c.enrolled_on, c.ended_on).where(scope)
                .order_by(c.code)):
            codes.append(code)
            yield code, pid, group, "control" if control else "hb", _month(enrolled), _month(ended)

    table("clients.csv", ["client", "pilot", "group", "arm", "enrolled", "ended"], clients())

    known = registry(uow)
    free = {name: free_text_items(i) for name, i in known.items()}
    r = SurveyResponseRow.__table__.c

    def responses():
        for code, inst, version, point, day, answers in conn.execute(
                select(r.client_code, r.instrument, r.version, r.point, r.answered_on, r.answers)
                .join(ClientRow, c.code == r.client_code).where(scope).order_by(r.client_code, r.id)):
            hidden = free.get(inst)
            for item, value in sorted(json.loads(answers).items()):
                if hidden is None or item in hidden:
                    continue  # free text (or an instrument no longer loaded): never exported
                yield code, inst, version, point, day.isoformat(), item, json.dumps(value)

    table("responses.csv", ["client", "instrument", "version", "point", "answered_on", "item", "value"], responses())
    sc = SurveyScoreRow.__table__.c
    table("scores.csv", ["client", "instrument", "point", "scale", "value"],
          conn.execute(select(sc.client_code, sc.instrument, sc.point, sc.scale, sc.value)
                       .join(ClientRow, c.code == sc.client_code).where(scope)
                       .order_by(sc.client_code, sc.response_id, sc.scale)))
    tl = TimeLogRow.__table__.c
    table("time.csv", ["client", "who", "activity", "on_date", "minutes", "cost_eur"],
          ((code, who, act, day.isoformat(), m, _eur(cost)) for code, who, act, day, m, cost in conn.execute(
              select(tl.client_code, tl.who, tl.activity, tl.on_date, tl.minutes, tl.cost)
              .join(ClientRow, c.code == tl.client_code).where(scope).order_by(tl.client_code, tl.on_date, tl.id))))

    def costs():
        totals = client_totals(scope).subquery().c
        for code, g, sp, wmin, cmin, amin, acost, scost in conn.execute(
                select(totals.code, totals.granted, totals.spent, totals.worker_min, totals.client_min,
                       totals.assistant_min, totals.assistant_cost, totals.services_cost).order_by(totals.code)):
            yield code, _eur(g), _eur(sp), int(wmin), int(cmin), int(amin), _eur(acost), _eur(scost)

    table("costs.csv", ["client", "granted_eur", "spent_eur", "worker_minutes", "client_minutes",
                        "assistant_minutes", "assistant_cost_eur", "services_cost_eur"], costs())
    p = ProposalRow.__table__.c
    table("proposals.csv", ["client", "proposal", "service", "amount_eur", "service_date", "status"],
          ((code, pid, service, _eur(amount), day.isoformat(), status) for code, pid, service, amount, day, status in
           conn.execute(select(p.client_code, p.id, p.service, p.amount, p.service_date, p.status)
                        .join(ClientRow, c.code == p.client_code).where(scope).order_by(p.client_code, p.id))))

    dialogues = 0
    wanted = set(codes)
    talk = [code for code in consent.consented(uow, "dialogue", on_date=today) if code in wanted]
    if talk:
        (out / "dialogue").mkdir()
    for code in talk:
        doc = messages.dialogue_document(uow, code)
        (out / "dialogue" / f"{code}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n",
                                                       encoding="utf-8")
        dialogues += 1
    written["dialogue"] = dialogues
    (out / "README.txt").write_text(README.format(day=today.isoformat()), encoding="utf-8")
    record(uow, "eval.exported", ORGANISER, after={"clients": len(codes), "dialogues": dialogues,
                                                   "pilots": pilot_ids or "all", "files": written})
    return {"out": str(out), "clients": len(codes), "files": written}
