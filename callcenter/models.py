"""SQLAlchemy 2.x models: calls, their events, agents, agent state changes, queues.

Times are stored as UTC. `UTCDateTime` makes SQLite (which keeps no zone) and
PostgreSQL (timestamptz) both hand back timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator
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
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Queue(Base):
    """A queue callers wait in, with the service-level threshold reports use."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    strategy: Mapped[str] = mapped_column(String(40), default="leastrecent")
    service_level_s: Mapped[int] = mapped_column(Integer, default=20)


class Agent(Base):
    """A person who answers calls, bound to a phone interface while logged in."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    interface: Mapped[str | None] = mapped_column(String(200), unique=True)
    state_changes: Mapped[list["AgentStateChange"]] = relationship(back_populates="agent", order_by="AgentStateChange.at")


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
    disposition: Mapped[str | None] = mapped_column(String(80))
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_calls_queue_started", "queue", "started_at"),)


class CallEvent(Base):
    """One domain event of a call (joined queue, answered, hold, ...), kept for the call's timeline."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
