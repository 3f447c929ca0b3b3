"""Workers and clients: add, enroll, show, list, end. Identity is read only through
:func:`identify`, which writes the access log."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, select
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fi import hetu as hetu_mod

from .. import auth, sealed
from ..audit import ORGANISER
from ..domain import ROLES, Applicant, Decision, Pilot
from ..errors import Conflict, NotFound, PermissionDenied, Refused, ValidationError
from ..i18n import LANGUAGES
from ..models import ClientIdentityRow, ClientRow, DecisionRow, NeedAssessmentRow, WorkerRow
from ..text import clean, clean_reason
from ..uow import UnitOfWork
from . import consent, pilots
from .common import (
    check_actor,
    client_record,
    get_worker_row,
    reach_client,
    record,
    scope_clause,
    session,
    worker_record,
)

WORKER_CODE = re.compile(r"^[0-9A-Z]{1,4}$")


# --- workers ----------------------------------------------------------------


def add_worker(uow: UnitOfWork, *, pilot_id: str, code: str, name: str, role: str,
               supervisor_id: str | None = None) -> dict[str, Any]:
    """``avain worker add``: the worker's id is ``<pilot>-<code>``; codes are unique in a
    pilot; a supervisor must be a supervisor of the same pilot."""
    check_actor(uow, "worker.add")
    clean(name, "--name")
    pilot = pilots.get(uow, pilot_id)
    if not WORKER_CODE.match(code):
        raise ValidationError(f"--code: {code!r} must be 1–4 digits or capital letters, e.g. 01")
    if role not in ROLES or role == "client":
        raise ValidationError(f"--role: {role!r} is not a worker role")
    if not name.strip():
        raise ValidationError("--name: must not be empty")
    s = session(uow)
    worker_id = f"{pilot.id}-{code}"
    if s.get(WorkerRow, worker_id) is not None:
        raise Conflict(f"--code: pilot {pilot.id} has a worker with code {code} already")
    if supervisor_id is not None:
        sup = get_worker_row(uow, supervisor_id, field="--supervisor", active=True)
        if sup.role != "supervisor" or sup.pilot_id != pilot.id:
            raise ValidationError(f"--supervisor: {supervisor_id} is not a supervisor of {pilot.id}")
    row = WorkerRow(id=worker_id, pilot_id=pilot.id, code=code, name=name.strip(), role=role,
                    supervisor_id=supervisor_id)
    s.add(row)
    s.flush()
    record(uow, "worker.added", worker_id, stream=ORGANISER,
           after={"id": worker_id, "pilot": pilot.id, "code": code, "role": role,
                  "supervisor": supervisor_id})
    return _worker_dict(row)


def _worker_dict(row: WorkerRow) -> dict[str, Any]:
    return {"id": row.id, "pilot": row.pilot_id, "code": row.code, "name": row.name,
            "role": row.role, "supervisor": row.supervisor_id,
            "status": "active" if row.active else f"deactivated {row.deactivated_on}"}


def deactivate_worker(uow: UnitOfWork, worker_id: str, *, reassign_to: str | None = None,
                      on_date: dt.date | None = None) -> dict[str, Any]:
    """``avain worker deactivate``: the worker can no longer act nor be given clients. Their
    clients (as personal worker, or as HB assistant) move to ``reassign_to``, an active
    worker of the same pilot in a like role, in this one transaction, each move audited in
    the client's stream. Refused while they have clients and no one takes them over."""
    check_actor(uow, "worker.add")
    s = session(uow)
    row = get_worker_row(uow, worker_id, field="ID")
    if not row.active:
        raise Conflict(f"worker {worker_id} was deactivated on {row.deactivated_on} already")
    column = ClientRow.assistant_id if row.role == "assistant" else ClientRow.worker_id
    clients = s.execute(select(ClientRow).where(column == row.id, ClientRow.ended_on.is_(None))
                        .order_by(ClientRow.code)).scalars().all()
    target = None
    if reassign_to is not None:
        target = get_worker_row(uow, reassign_to, field="--reassign-to", active=True)
        wanted = ("assistant",) if row.role == "assistant" else ("worker", "supervisor")
        if target.id == row.id or target.pilot_id != row.pilot_id or target.role not in wanted:
            raise ValidationError(f"--reassign-to: {reassign_to} is not another {' or '.join(wanted)} "
                                  f"of pilot {row.pilot_id}")
    elif clients:
        raise Refused(f"--reassign-to: worker {worker_id} still has {len(clients)} client(s); "
                      "name the worker who takes them over")
    before = _worker_dict(row)
    moved = []
    if target is not None and row.role != "assistant":
        # Ordinals are unique per worker: the moved clients keep their codes and take the
        # next ordinals of the new worker, so the worker's next enrolment gets a fresh one.
        next_ordinal = (s.execute(select(func.max(ClientRow.ordinal)).where(
            ClientRow.pilot_id == row.pilot_id, ClientRow.worker_id == target.id)).scalar_one() or 0)
    for client in clients:
        was = client_dict(client)
        if row.role == "assistant":
            client.assistant_id = target.id
        else:
            next_ordinal += 1
            client.worker_id, client.ordinal = target.id, next_ordinal
        s.add(client)
        record(uow, "client.reassigned", client.code, before=was, after=client_dict(client),
               purpose=f"worker {row.id} deactivated")
        moved.append(client.code)
    row.active, row.deactivated_on = False, on_date or dt.date.today()
    s.add(row)
    after = {**_worker_dict(row), "reassigned_to": target.id if target else None, "clients": len(moved)}
    record(uow, "worker.deactivated", row.id, stream=ORGANISER, before=before, after=after)
    return {**after, "reassigned": moved}


def list_workers(uow: UnitOfWork, *, pilot_id: str | None = None) -> list[dict[str, Any]]:
    check_actor(uow, "worker.read")
    q = select(WorkerRow).order_by(WorkerRow.pilot_id, WorkerRow.code)
    if pilot_id:
        pilots.get(uow, pilot_id)
        q = q.where(WorkerRow.pilot_id == pilot_id)
    return [_worker_dict(r) for r in session(uow).execute(q).scalars()]


# --- clients ----------------------------------------------------------------


def validate_hetu(value: str, pilot: Pilot) -> str:
    """A valid henkilötunnus, compacted, the century sign kept as given. The message never
    repeats the number."""
    try:
        number = hetu_mod.validate(value, allow_temporary=True)
    except InvalidChecksum as exc:
        raise ValidationError("--hetu: not a valid henkilötunnus (the check character "
                              "does not match)") from exc
    except InvalidComponent as exc:
        raise ValidationError("--hetu: not a valid henkilötunnus (the date or century "
                              "sign is wrong)") from exc
    except (InvalidFormat, InvalidLength, StdnumError) as exc:
        raise ValidationError("--hetu: not a valid henkilötunnus (expected DDMMYYCNNNT, "
                              "e.g. 010594Y123W)") from exc
    if int(number[7:10]) >= 900 and not pilot.allow_temporary_hetu:
        raise ValidationError(f"--hetu: temporary numbers (900–999) are not accepted in "
                              f"pilot {pilot.id}")
    return number


def validate_phone(value: str, *, field: str = "--phone") -> str:
    """A Finnish or international phone number in E.164 form (+358401234567). The message
    names ``field`` and never repeats the number."""
    digits = re.sub(r"[\s()-]", "", value)
    if digits.startswith("0"):
        digits = "+358" + digits[1:]
    if not re.fullmatch(r"\+\d{7,15}", digits):
        raise ValidationError(f"{field}: not a phone number (e.g. 040 123 4567 or +358401234567)")
    return digits


_CENTURY = {"+": 1800, **dict.fromkeys("-YXWVU", 1900), **dict.fromkeys("ABCDEF", 2000)}


def birth_date(hetu: str) -> dt.date:
    """Birth date of a valid henkilötunnus (the century sign gives the century)."""
    return dt.date(_CENTURY[hetu[6]] + int(hetu[4:6]), int(hetu[2:4]), int(hetu[0:2]))


def _enrolled_counts(uow: UnitOfWork, pilot_id: str) -> dict[str, int]:
    rows = session(uow).execute(
        select(ClientRow.group_id, func.count())
        .where(ClientRow.pilot_id == pilot_id, ClientRow.control.is_(False),
               ClientRow.ended_on.is_(None))
        .group_by(ClientRow.group_id)
    ).all()
    counts = {group: n for group, n in rows}
    counts["*"] = sum(counts.values())
    return counts


def _reasons(results) -> list[str]:
    return [reason for result in results for reason in (result or [])]


def enroll(uow: UnitOfWork, *, pilot_id: str, hetu: str, name: str, worker_id: str,
           group_id: str | None = None, control: bool = False,
           assessment: dict[str, str] | None = None,
           on_date: dt.date | None = None, phone: str | None = None,
           consents: Sequence[str] = (), language: str = "fi") -> dict[str, Any]:
    """``avain client enroll``: validate, check eligibility and intake through the hooks,
    make the client code, store identity apart from it, record the consents the client
    gave on joining, audit. A pilot whose evaluation requires consent takes HB clients
    only with their consent to the evaluation."""
    actor = check_actor(uow, "client.enroll")
    pilot = pilots.get(uow, pilot_id)
    group = pilot.group(group_id)
    on_date = on_date or dt.date.today()
    if not name.strip():
        raise ValidationError("--name: must not be empty")
    clean(name, "--name")
    hetu_value = validate_hetu(hetu, pilot)
    phone_value = validate_phone(phone) if phone else None
    language = validate_language(language)
    worker = get_worker_row(uow, worker_id, active=True)
    if worker.pilot_id != pilot.id:
        raise ValidationError(f"--worker: {worker_id} does not work in pilot {pilot.id}")
    if worker.role not in ("worker", "supervisor"):
        raise ValidationError(f"--worker: {worker_id} is a {worker.role}, not a personal worker")
    if actor.role == "worker" and actor.id != worker.id:
        raise PermissionDenied(f"{actor} may enroll clients for themself only")
    if actor.role == "supervisor" and actor.id not in (worker.id, worker.supervisor_id):
        raise PermissionDenied(f"{actor} may enroll clients for their own workers only")
    s = session(uow)
    hetu_index = sealed.hetu_index(sealed.url_of(uow), hetu_value)
    applicant = Applicant(pilot_id=pilot.id, group_id=group.id, worker_id=worker.id,
                          control=control, birth_date=birth_date(hetu_value), on_date=on_date)
    reasons = _reasons(uow.hooks.avain_check_eligibility(
        pilot=pilot, client=applicant, assessment=MappingProxyType(dict(assessment or {})), decision=None))
    for purpose in consents:
        consent.check_purpose(purpose)
    if not control:
        reasons += _reasons(uow.hooks.avain_check_intake(
            pilot=pilot, client=applicant, on_date=on_date,
            enrolled=_enrolled_counts(uow, pilot.id)))
        if pilot.raw.get("evaluation", {}).get("consent_required") and "evaluation" not in consents:
            reasons.append("HB participation requires the client's consent to the evaluation "
                           "(give --consent evaluation)")
    if reasons:
        raise Refused(f"cannot enroll in {pilot.id}: " + "; ".join(reasons), reasons)
    # Only after the pilot's own checks: facts that fail them get the same answer whether or
    # not the person is a client, so a failed probe tells nothing either.
    _refuse_enrolled(uow, pilot.id, hetu_index)
    ordinal = (s.execute(
        select(func.max(ClientRow.ordinal)).where(ClientRow.pilot_id == pilot.id,
                                                  ClientRow.worker_id == worker.id)
    ).scalar_one() or 0) + 1
    code = uow.hooks.avain_client_code(pilot=pilot, client=applicant,
                                       worker=worker_record(worker), ordinal=ordinal)
    if s.get(ClientRow, code) is not None:
        raise Conflict(f"client code {code} is taken; the pilot's code rule gave it twice")
    row = ClientRow(code=code, pilot_id=pilot.id, group_id=group.id, worker_id=worker.id,
                    ordinal=ordinal, control=control, enrolled_on=on_date, language=language)
    s.add(row)
    s.flush()
    ident = ClientIdentityRow(client_code=code, pilot_id=pilot.id, hetu_index=hetu_index, key_id="",
                              hetu=b"", name=b"")
    _seal_identity(uow, ident, name=name.strip(), hetu=hetu_value, phone=phone_value)
    s.add(ident)
    consent.record_at_enrolment(uow, code, consents, on_date)
    if assessment:
        _store_assessment(uow, code, dict(assessment), on_date)
    after = client_dict(row)
    if consents:
        after = {**after, "consents": sorted(set(consents))}
    record(uow, "client.enrolled", code, after=after)
    uow.emit("avain_client_enrolled", pilot=pilot, client=client_record(row))
    return after


def _refuse_enrolled(uow: UnitOfWork, pilot_id: str, hetu_index: str) -> None:
    """Refuse a henkilötunnus already enrolled in the pilot. Only who may reach that client
    (its worker, their supervisor, an admin) learns that it is a client, and which one;
    anyone else gets the same answer for every number they may not enroll, so enrolment
    is not a way to find out who is a client."""
    s = session(uow)
    found = s.execute(select(ClientIdentityRow.client_code).where(
        ClientIdentityRow.pilot_id == pilot_id, ClientIdentityRow.hetu_index == hetu_index)).scalar_one_or_none()
    if found is None:
        return
    client = s.get(ClientRow, found)
    try:
        reach_client(uow, found, "client.identify")
    except PermissionDenied:
        raise Refused("--hetu: this person cannot be enrolled by you; ask the pilot's administrator") from None
    raise Conflict(f"--hetu: this person is already a client of pilot {pilot_id} ({client.code})")


def _seal_identity(uow: UnitOfWork, ident: ClientIdentityRow, *, name: str, hetu: str, phone: str | None) -> None:
    """Seal every identity field of ``ident`` under the current message key."""
    ring = sealed.ring_for_sealing(uow)
    code = ident.client_code
    ident.key_id = ring.current.id
    ident.name = sealed.seal(ring, name, "identity", code, "name")
    ident.hetu = sealed.seal(ring, hetu, "identity", code, "hetu")
    ident.phone = sealed.seal(ring, phone, "identity", code, "phone")


def open_identity(ring, ident: ClientIdentityRow) -> dict[str, str | None]:
    """Name, henkilötunnus and phone of a sealed identity row, in memory only."""
    code = ident.client_code
    return {f: sealed.open_(ring, ident.key_id, getattr(ident, f), "identity", code, f)
            for f in ("name", "hetu", "phone")}


def client_dict(row: ClientRow) -> dict[str, Any]:
    return {"code": row.code, "pilot": row.pilot_id, "group": row.group_id,
            "worker": row.worker_id, "assistant": row.assistant_id, "control": row.control,
            "enrolled_on": row.enrolled_on.isoformat(),
            "ended_on": row.ended_on.isoformat() if row.ended_on else None, "language": row.language}


def _store_assessment(uow: UnitOfWork, code: str, facts: dict[str, str], on_date: dt.date) -> int:
    s = session(uow)
    version = (s.execute(select(func.max(NeedAssessmentRow.version)).where(
        NeedAssessmentRow.client_code == code)).scalar_one() or 0) + 1
    s.add(NeedAssessmentRow(client_code=code, version=version, assessed_on=on_date, assessed_by=str(uow.actor),
                            facts=json.dumps(facts, sort_keys=True), recorded_at=dt.datetime.now(dt.UTC)))
    return version


def current_assessment(uow: UnitOfWork, code: str) -> tuple[dict[str, Any] | None, int]:
    """The newest need assessment of a client (None if none) and the number of versions."""
    s = session(uow)
    rows = s.execute(select(NeedAssessmentRow).where(NeedAssessmentRow.client_code == code)
                     .order_by(NeedAssessmentRow.version.desc())).scalars().all()
    if not rows:
        return None, 0
    newest = rows[0]
    return ({"version": newest.version, "assessed_on": newest.assessed_on.isoformat(),
             "assessed_by": newest.assessed_by, "facts": json.loads(newest.facts)}, len(rows))


def assess(uow: UnitOfWork, code: str, facts: dict[str, str], *, on_date: dt.date | None = None) -> dict[str, Any]:
    """``avain client assess``: a new version of the client's need assessment (who, which
    day, the facts), audited. The pilot's eligibility rules read it as at enrolment; what
    they object to is returned (``eligibility``), not refused: the client is a client
    already, and ending the relationship is a decision of its own."""
    row = reach_client(uow, code, "client.assess")
    if not facts:
        raise ValidationError("--assess: give at least one KEY=VALUE fact")
    if row.ended_on is not None:
        raise Refused(f"{code}'s client relationship ended on {row.ended_on.isoformat()}")
    on_date = on_date or dt.date.today()
    if on_date < row.enrolled_on:
        raise ValidationError(f"--date: {on_date.isoformat()} is before the enrolment")
    pilot = pilots.get(uow, row.pilot_id)
    reasons = _reasons(uow.hooks.avain_check_eligibility(
        pilot=pilot, client=applicant_of(uow, row, on_date), assessment=MappingProxyType(dict(facts)),
        decision=None))
    version = _store_assessment(uow, code, dict(facts), on_date)
    data = {"code": code, "version": version, "assessed_on": on_date.isoformat(), "assessed_by": str(uow.actor),
            "facts": dict(facts), "eligibility": reasons}
    record(uow, "client.assessed", code, after={k: v for k, v in data.items() if k != "code"})
    return data


def applicant_of(uow: UnitOfWork, row: ClientRow, on_date: dt.date) -> Applicant:
    """A client as the eligibility rules see them on ``on_date``: the birth date read from
    the sealed henkilötunnus in memory (never returned, logged or audited), no identity."""
    ident = session(uow).get(ClientIdentityRow, row.code)
    hetu = open_identity(sealed.ring_for_reading(uow), ident)["hetu"] if ident is not None else None
    return Applicant(pilot_id=row.pilot_id, group_id=row.group_id, worker_id=row.worker_id, control=row.control,
                     birth_date=birth_date(hetu) if hetu else None, on_date=on_date)


def eligibility_at_decision(uow: UnitOfWork, row: ClientRow, pilot: Pilot, decision: Decision) -> list[str]:
    """The pilot's eligibility rules judged again for a decision being granted: on its
    first day, with the need assessment in force and the decision itself."""
    assessment, _ = current_assessment(uow, row.code)
    return _reasons(uow.hooks.avain_check_eligibility(
        pilot=pilot, client=applicant_of(uow, row, decision.valid_from),
        assessment=MappingProxyType(dict(assessment["facts"]) if assessment else {}), decision=decision))


def show(uow: UnitOfWork, code: str, *, reason: str) -> dict[str, Any]:
    """A client's record with the need assessment in force (and how many versions it has);
    with the name and henkilötunnus when the actor may see them, and then the read is
    written to the access log with ``reason``."""
    row = reach_client(uow, code, "client.read")
    data = client_dict(row)
    if uow.actor.role == "evaluator":  # the export's record only: no assessment, no free text
        return data
    data["assessment"], data["assessments"] = current_assessment(uow, code)
    if uow.actor.role in auth.MATRIX["client.identify"]:
        data.update(identify(uow, code, reason=reason))
    return data


def identify(uow: UnitOfWork, code: str, *, reason: str) -> dict[str, str]:
    """Name and henkilötunnus of a client, and whether a phone number is on record (the
    number itself is for the payment rails only); every call is logged (who, whom, when,
    why)."""
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the client's identity is needed")
    clean_reason(reason)
    reach_client(uow, code, "client.identify")
    ident = session(uow).get(ClientIdentityRow, code)
    if ident is None:  # pragma: no cover - enroll writes both rows in one transaction
        raise NotFound(f"client {code} has no identity record")
    record(uow, "client.identity_read", code, purpose=reason.strip())
    opened = open_identity(sealed.ring_for_reading(uow), ident)
    return {"name": opened["name"], "hetu": opened["hetu"], "phone": "on record" if opened["phone"] else None}


#: Most clients one ``client find --name`` identifies (each one is an access-log entry).
FIND_AT_MOST = 20


def find(uow: UnitOfWork, *, hetu: str | None = None, name: str | None = None,
         reason: str) -> list[dict[str, Any]]:
    """``avain client find``: clients by henkilötunnus or by part of the name, among those
    the actor may reach; for roles that may identify only. Every client found is an
    identity read, written to the access log with ``reason``. Messages never repeat the
    number."""
    check_actor(uow, "client.identify")
    if (hetu is None) == (name is None):
        raise ValidationError("client find: give --hetu or --name (one of them)")
    if not reason or not reason.strip():
        raise ValidationError("--reason: say why the client's identity is needed")
    clean_reason(reason)
    ident = ClientIdentityRow
    q = select(ClientRow).join(ident, ident.client_code == ClientRow.code).order_by(ClientRow.code)
    if hetu is not None:
        try:
            number = hetu_mod.validate(hetu.strip(), allow_temporary=True)
        except StdnumError as exc:
            raise ValidationError("--hetu: not a valid henkilötunnus") from exc
        # The number is stored sealed: it is found by its keyed hash, the same in every pilot.
        q = q.where(ident.hetu_index == sealed.hetu_index(sealed.url_of(uow), number))
        part = None
    else:
        part = name.strip().lower()
        if len(part) < 2:
            raise ValidationError("--name: give at least two letters of the name")
    clause = scope_clause(uow, ClientRow.code)
    if clause is not None:
        q = q.where(clause)
    if part is None:
        rows = session(uow).execute(q.limit(FIND_AT_MOST + 1)).scalars().all()
    else:  # names are sealed: opened in memory, only those of the clients the actor may reach
        ring = sealed.ring_for_reading(uow)
        rows = [row for row, identity in session(uow).execute(q.add_columns(ident))
                if part in open_identity(ring, identity)["name"].lower()][:FIND_AT_MOST + 1]
    if not rows:
        raise NotFound("no client with that henkilötunnus" if hetu is not None
                       else "no client whose name contains that text")
    if len(rows) > FIND_AT_MOST:  # a search is not a way to list identities
        raise Refused(f"--name: more than {FIND_AT_MOST} clients match; give more of the name")
    return [{**client_dict(row), **identify(uow, row.code, reason=reason)} for row in rows]


def list_clients(uow: UnitOfWork, *, pilot_id: str | None = None,
                 include_ended: bool = False) -> list[dict[str, Any]]:
    """Client codes the actor may see (a worker: their own; a supervisor: their team's)."""
    check_actor(uow, "client.read")
    s = session(uow)
    q = select(ClientRow).order_by(ClientRow.pilot_id, ClientRow.code)
    if pilot_id:
        pilots.get(uow, pilot_id)
        q = q.where(ClientRow.pilot_id == pilot_id)
    if not include_ended:
        q = q.where(ClientRow.ended_on.is_(None))
    clause = scope_clause(uow, ClientRow.code)
    if clause is not None:
        q = q.where(clause)
    return [client_dict(r) for r in s.execute(q).scalars()]


def end(uow: UnitOfWork, code: str, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """``avain client end``: the client relationship ends; history stays."""
    row = reach_client(uow, code, "client.end")
    if row.ended_on is not None:
        raise Conflict(f"client {code} ended on {row.ended_on.isoformat()} already")
    before = client_dict(row)
    row.ended_on = on_date or dt.date.today()
    if row.ended_on < row.enrolled_on:
        raise ValidationError(f"--date: {row.ended_on.isoformat()} is before the enrolment")
    session(uow).add(row)
    after = client_dict(row)
    record(uow, "client.ended", code, before=before, after=after)
    return after


def expire_fixed_term(uow: UnitOfWork, pilot_id: str, *, on_date: dt.date | None = None) -> dict[str, Any]:
    """``avain client expire``: where the pilot's client relationships are fixed-term
    (``intake.relationship_ends``), end every relationship that no decision extends beyond
    that day — on that day. Controls end with it too. Idempotent: an ended client stays
    as it is. Refused before the day has passed."""
    check_actor(uow, "client.end")
    pilot = pilots.get(uow, pilot_id)
    ends = pilot.raw.get("intake", {}).get("relationship_ends")
    if ends is None:
        raise Conflict(f"pilot {pilot.id}: client relationships are not fixed-term (no intake.relationship_ends)")
    last_day = dt.date.fromisoformat(str(ends))
    today = on_date or dt.date.today()
    if today <= last_day:
        raise Conflict(f"pilot {pilot.id}: relationships run until {last_day.isoformat()}; expire them after it")
    s = session(uow)
    extended = select(DecisionRow.client_code).where(DecisionRow.pilot_id == pilot.id,
                                                    DecisionRow.valid_to > last_day)
    q = select(ClientRow).where(ClientRow.pilot_id == pilot.id, ClientRow.ended_on.is_(None),
                                ClientRow.enrolled_on <= last_day, ClientRow.code.not_in(extended))
    clause = scope_clause(uow, ClientRow.code)
    if clause is not None:
        q = q.where(clause)
    ended = []
    for row in s.execute(q.order_by(ClientRow.code)).scalars():
        before = client_dict(row)
        row.ended_on = last_day
        s.add(row)
        record(uow, "client.ended", row.code, before=before, after=client_dict(row),
               purpose=f"fixed-term relationship ended on {last_day.isoformat()}")
        ended.append(row.code)
    still = select(ClientRow.code).where(ClientRow.pilot_id == pilot.id, ClientRow.ended_on.is_(None))
    if clause is not None:
        still = still.where(clause)
    continuing = list(s.execute(still.order_by(ClientRow.code)).scalars())
    return {"pilot": pilot.id, "relationship_ends": last_day.isoformat(), "ended": ended, "continuing": continuing}


def set_phone(uow: UnitOfWork, code: str, phone: str | None) -> dict[str, Any]:
    """``avain client phone``: set (or, with None, remove) the phone number a payment rail
    knows the client by. The number is identity data: stored with the name, never in the
    audit trail, which records only that it changed."""
    row = reach_client(uow, code, "client.contact")
    value = validate_phone(phone, field="PHONE") if phone else None
    ident = session(uow).get(ClientIdentityRow, code)
    if ident is None:  # pragma: no cover - enroll writes both rows in one transaction
        raise NotFound(f"client {code} has no identity record")
    opened = open_identity(sealed.ring_for_reading(uow), ident)
    changed = opened["phone"] != value
    if changed:
        _seal_identity(uow, ident, name=opened["name"], hetu=opened["hetu"], phone=value)
        session(uow).add(ident)
        record(uow, "client.phone_set" if value else "client.phone_removed", code)
    return {"code": row.code, "phone": "set" if value else "none", "changed": changed}


def validate_language(value: str, *, field: str = "--lang") -> str:
    """One of the languages avain speaks (fi, sv, en)."""
    if value not in LANGUAGES:
        raise ValidationError(f"{field}: {value!r} is not one of {', '.join(LANGUAGES)}")
    return value


def set_language(uow: UnitOfWork, code: str, language: str) -> dict[str, Any]:
    """``avain client language``: the language the client reads; the dialogue's system
    messages (and letters) follow it from now on. Audited with the old and new value."""
    row = reach_client(uow, code, "client.contact")
    language = validate_language(language, field="LANG")
    before = row.language
    if before != language:
        row.language = language
        session(uow).add(row)
        record(uow, "client.language_set", code, before={"language": before}, after={"language": language})
    return {"code": row.code, "language": language, "changed": before != language}


def assign_assistant(uow: UnitOfWork, code: str, assistant_id: str) -> dict[str, Any]:
    """Give a client an HB assistant of the same pilot."""
    row = reach_client(uow, code, "client.end")
    assistant = get_worker_row(uow, assistant_id, field="--assistant", active=True)
    if assistant.role != "assistant" or assistant.pilot_id != row.pilot_id:
        raise ValidationError(f"--assistant: {assistant_id} is not an HB assistant of {row.pilot_id}")
    before = client_dict(row)
    row.assistant_id = assistant.id
    session(uow).add(row)
    after = client_dict(row)
    record(uow, "client.assistant_assigned", code, before=before, after=after)
    return after
