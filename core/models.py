"""Table models of the engine: pilots, people, identities, audit.

Table classes never leave the persistence layer: services turn rows into the frozen
records of :mod:`avain.core.domain` before hooks or callers see them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class PilotRow(SQLModel, table=True):
    """A pilot and its validated pilot.toml (as JSON)."""

    __tablename__ = "pilot"
    id: str = Field(primary_key=True, max_length=64)
    name: str
    config: str = Field(sa_column=Column(Text, nullable=False))
    source: str  # "plugin <name>" or "file <path>"
    added_at: dt.datetime


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


class ClientIdentityRow(SQLModel, table=True):
    """Name and henkilötunnus, kept apart from the code; read only through the service
    that writes the access log."""

    __tablename__ = "client_identity"
    __table_args__ = (UniqueConstraint("pilot_id", "hetu", name="uq_identity_pilot_hetu"),)
    client_code: str = Field(primary_key=True, foreign_key="client.code", max_length=64)
    pilot_id: str = Field(foreign_key="pilot.id")
    hetu: str = Field(max_length=11)
    name: str


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
