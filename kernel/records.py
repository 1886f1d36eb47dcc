"""The value types that pass between packages: a finished call's record and a domain event (what a person would notice
happened on a call), with the time format records print."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kernel.values import HangupBy, LegEnd, Outcome


def iso(t: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC with milliseconds, as records print it."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    for key in ("started_at", "enqueued_at", "answered_at", "ended_at"):
        if key in data:
            data[key] = iso(data[key])
    for key in ("wait_s", "talk_s", "hold_s"):
        if data.get(key) is not None:
            data[key] = round(data[key], 3)
    return data


@dataclass(slots=True)
class Leg:
    """One part of a call: a queue visit (with the agent who answered it), or the time with an agent reached without a
    queue (a transfer to an extension or a number). Per-queue and per-agent figures add up legs."""

    queue: str | None
    agent: str | None
    enqueued_at: float | None
    answered_at: float | None
    ended_at: float
    wait_s: float | None
    talk_s: float | None
    hold_s: float
    ended_by: LegEnd
    callid: str | None = None  # the caller's channel in that queue, as Asterisk's queue_log names the visit

    def to_json(self) -> dict[str, Any]:
        """The leg as JSON-ready data, times in ISO 8601 UTC."""
        return _rounded(asdict(self))


@dataclass(slots=True)
class CallRecord:
    """One finished call, as reports and the database store it.

    `talk_s` excludes `hold_s`, so handle time is talk + hold + wrap-up with
    nothing counted twice; `wait_s` runs from joining the queue to the answer
    (or to leaving the queue unanswered).
    """

    linkedid: str
    caller_number: str | None
    caller_name: str | None
    dnid: str | None
    started_at: float
    ivr_digits: str
    queue: str | None
    enqueued_at: float | None
    answered_at: float | None
    agent: str | None
    ended_at: float
    outcome: Outcome
    wait_s: float | None
    talk_s: float | None
    hold_s: float
    hangup_by: HangupBy
    hangup_cause: int | None
    transfers: int = 0
    resynced: bool = False
    legs: list[Leg] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data, times in ISO 8601 UTC."""
        data = _rounded(asdict(self))
        data["legs"] = [leg.to_json() for leg in self.legs]
        return data


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something a person would notice happened on a call."""

    kind: str
    linkedid: str
    t: float
    data: dict[str, Any] = field(default_factory=dict)
    record: CallRecord | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        out: dict[str, Any] = {"kind": self.kind, "linkedid": self.linkedid, "at": iso(self.t), **self.data}
        if self.record is not None:
            out["record"] = self.record.to_json()
        return out


@dataclass(slots=True)
class Visit:
    """One caller's stay in one queue, as Asterisk's queue_log tells it (or, from the engine's records, with an agent
    reached without a queue: queue None). Reports count visits; the engine recovers what happened in an AMI gap from them."""

    callid: str
    queue: str | None
    entered: int
    caller: str | None
    position: int | None
    outcome: Outcome | None = None  # None while the caller is still in the queue
    agent: str | None = None
    wait_s: float | None = None
    talk_s: float | None = None
    hold_s: float = 0.0
    ring_s: float | None = None
    ended: int | None = None
    completed_by: str | None = None
    transferred: bool = False
    ring_no_answer: list[str] = field(default_factory=list)
    visit: int = 1  # tells apart two stays of one call in the same queue
    agent_channel_id: str | None = None  # CONNECT's: the uniqueid of the agent's channel

    @property
    def key(self) -> str:
        """A stable identity, so importing the same log twice adds nothing."""
        return f"ql:{self.callid}:{self.queue}:{self.entered}"
