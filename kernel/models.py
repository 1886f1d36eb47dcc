"""SQLAlchemy 2.x models: calls, their events, agents, agent state changes, queues.

Times are stored as UTC. `UTCDateTime` makes SQLite (which keeps no zone) and
PostgreSQL (timestamptz) both hand back timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Agent(Base):
    """A person who answers calls, bound to a phone interface while logged in."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    interface: Mapped[str | None] = mapped_column(String(200), unique=True)
    state_changes: Mapped[list[AgentStateChange]] = relationship(back_populates="agent", order_by="AgentStateChange.at")


class AgentStateChange(Base):
    """One change of an agent's state (available, paused with a reason, ...), for occupancy and pause reports."""

    __tablename__ = "agent_state_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    agent: Mapped[Agent] = relationship(back_populates="state_changes")


class Call(Base):
    """One finished call: the tracker's record, or one imported from queue_log/CDR."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(20), default="ami")
    caller_number: Mapped[str | None] = mapped_column(String(80), index=True)
    caller_name: Mapped[str | None] = mapped_column(String(120))
    dnid: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ivr_digits: Mapped[str] = mapped_column(String(200), default="")
    queue: Mapped[str | None] = mapped_column(String(80))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent: Mapped[str | None] = mapped_column(String(120))
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(20))
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    hold_s: Mapped[float] = mapped_column(Float, default=0.0)
    hangup_by: Mapped[str] = mapped_column(String(20))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    resynced: Mapped[bool] = mapped_column(default=False)

    legs: Mapped[list[CallLeg]] = relationship(order_by="CallLeg.n", lazy="selectin", cascade="all, delete-orphan")

    __table_args__ = (Index("ix_calls_queue_started", "queue", "started_at"),)


class CallLeg(Base):
    """One leg of a stored call: a queue visit with the agent who answered it, or an agent reached without a queue."""

    __tablename__ = "call_legs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    n: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str | None] = mapped_column(String(80))
    agent: Mapped[str | None] = mapped_column(String(120))
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    hold_s: Mapped[float] = mapped_column(Float, default=0.0)
    ended_by: Mapped[str] = mapped_column(String(30))
    callid: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (Index("ix_call_legs_queue_enqueued", "queue", "enqueued_at"),)


class Wrapup(Base):
    """An agent's disposition and notes for a call they worked: one per agent and call (a transferred call has one per
    agent), saved while the call may still be going on elsewhere, so it is keyed by the linkedid, not by a stored call."""

    __tablename__ = "wrapups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    agent: Mapped[str] = mapped_column(String(120))
    disposition: Mapped[str] = mapped_column(String(80))
    notes: Mapped[str] = mapped_column(Text, default="")
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("linkedid", "agent"),)


class CallEvent(Base):
    """One domain event of a call (joined queue, answered, hold, ...), kept for the call's timeline."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    """Someone who logs in to the panel: an agent (bound to an ACD agent and a phone), a supervisor or an admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(120), default="")
    lang: Mapped[str] = mapped_column(String(10), default="en")
    agent: Mapped[str | None] = mapped_column(String(120), unique=True)
    interface: Mapped[str | None] = mapped_column(String(200))
    extension: Mapped[str | None] = mapped_column(String(20))
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(default=False)
    # Every session carries the epoch it began in: logging out, a new password, disabling or a new role moves it on,
    # which ends every session and socket of the user at once, wherever they were opened.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Customer(Base):
    """A customer record the screen pop finds by the caller's number (imported from CSV)."""

    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)


class Recording(Base):
    """One call recording: where it is kept, what it covers, its checksum, and the spans paused for card data."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str | None] = mapped_column(String(80))
    agent: Mapped[str | None] = mapped_column(String(120), index=True)
    caller_number: Mapped[str | None] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(400))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    encrypted: Mapped[bool] = mapped_column(default=False)
    paused: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)


class RecordingAccess(Base):
    """Who played or downloaded (or was refused) which recording, when and from where."""

    __tablename__ = "recording_access"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[int] = mapped_column(Integer, index=True)
    login: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(String(200))
