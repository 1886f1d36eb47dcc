"""Live monitor: AMI client -> call tracker -> printed lines and stored calls."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kernel.db import CallStore
from kernel.records import CallRecord, DomainEvent, Visit
from pbx.client import Snapshot
from pbx.codec import Message
from pbx.tracker import CallTracker, event_time
from reports.cdr import CdrTail, cdr_calls
from reports.queue_log import QueueLogTail
from reports.store import visits_record

# How far before the last event seen a gap's queue_log visits and CDR rows are looked at (a call that ended just before
# the cut may have been told late); what the engine stored or followed itself is never taken twice.
GAP_MARGIN_S = 60.0

log = logging.getLogger(__name__)


def describe(event: DomainEvent) -> str:
    """One line a supervisor can read at a glance."""
    d = event.data
    clock = datetime.fromtimestamp(event.t, tz=UTC).strftime("%H:%M:%S")
    what = {
        "call_started": lambda: f"call from {d.get('caller_number')} ({d.get('caller_name') or 'no name'})",
        "dtmf": lambda: f"keyed {d.get('digit')}" + (" while waiting" if d.get("in_queue") else ""),
        "queue_joined": lambda: (
            f"waiting in {d.get('queue')} at position {d.get('position')}" + (" (found after reconnect)" if d.get("resynced") else "")
        ),
        "agent_ringing": lambda: f"ringing {d.get('agent')} ({d.get('interface')})",
        "agent_no_answer": lambda: f"{d.get('agent')} did not answer",
        "answered": lambda: f"answered by {d.get('agent')} in {d.get('queue')} after {d.get('wait_s', 0):.1f} s",
        "queue_left": lambda: f"left {d.get('queue')}: {d.get('reason')} after {d.get('wait_s') or 0:.1f} s",
        "hold": lambda: "on hold",
        "unhold": lambda: "off hold",
        "transferred": lambda: f"{d.get('how')} transfer to {d.get('target')}",
        "call_ended": lambda: (
            "ended (joined mid-call: no record)"
            if d.get("partial")
            else f"ended: {d.get('outcome')}, hung up by {d.get('hangup_by')}"
            + (f" (recovered from {d['recovered']})" if d.get("recovered") else "")
        ),
    }.get(event.kind, lambda: event.kind)()
    return f"{clock} {event.linkedid:<18} {what}"


class Monitor:
    """Feeds AMI events to the tracker, prints what happens, stores finished calls, then tells its listeners (the panel's board).

    One clock: a call's times are Asterisk's (the events' Timestamp); what the engine itself stamps (a resync, our
    ACD's doings) is moved onto that clock by the offset of the last timestamped event.
    """

    def __init__(
        self,
        tracker: CallTracker,
        store: CallStore | None,
        out: TextIO | None,
        as_json: bool = False,
        listeners: list[Callable[[list[DomainEvent]], None]] | None = None,
        queue_log: str | Path = "",
        cdr: str | Path = "",
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.out = out
        self.listeners = list(listeners or [])
        self.queue_log = QueueLogTail(queue_log) if queue_log else None
        self.cdr = CdrTail(cdr) if cdr else None
        self.skew = 0.0
        self.last_seen: float | None = None
        self.format: Callable[[DomainEvent], str] = (lambda e: json.dumps(e.to_json(), ensure_ascii=False)) if as_json else describe

    def on_event(self, message: Message, arrival: float) -> None:
        """Handle one AMI event from the client."""
        t = event_time(message, arrival)
        if "Timestamp" in message and t != arrival:
            self.skew = t - arrival
        self.last_seen = t
        self._publish(self.tracker.feed(message, t))

    def on_session(self, number: int) -> None:
        """A new AMI session (after the first): calls that end before its resync wait for what the resync can tell."""
        if number > 1:
            self.tracker.reconnected()

    def on_acd(self, kind: str, linkedid: str, t: float, **data: object) -> None:
        """What our own ACD did with a call (native mode), for the record and the timeline."""
        self._publish(self.tracker.acd(kind, linkedid, t + self.skew, **data))

    async def on_resync(self, snapshot: Snapshot) -> None:
        """Rebuild live calls from what Asterisk reports after a (re)connect, and from its queue_log and CDR when we can
        read them: calls that started, were answered or ended in the gap are stored, marked resynced, never twice."""
        since = self._since()
        visits = await self._gap_visits(since)
        stored = {row[0] for row in self.store.legs_holding(v.callid for v in visits)} if self.store is not None and visits else set()
        fresh = [v for v in visits if v.callid not in stored]
        self._publish(self.tracker.resync(snapshot.channels, snapshot.queue_entries, snapshot.at + self.skew, fresh))
        lost: dict[str, list[Visit]] = {}
        for v in fresh:
            if not self.tracker.knows(v.callid):
                lost.setdefault(v.callid, []).append(v)
        records = [visits_record(vs, recovered=True) for vs in lost.values() if all(v.outcome is not None for v in vs)]
        # Every channel queue_log saw in a queue, not only this gap's: a caller who timed out just before the gap's start
        # and hung up inside it has a CDR row (Hangup, not Queue) of a call that is queue_log's.
        outside = await self._gap_calls_outside_queues(since, self.queue_log.callids() if self.queue_log else set())
        if records or outside:
            log.info("%d call(s) of the AMI gap recovered from queue_log, %d from the CDR", len(records), len(outside))
        events = [
            DomainEvent("call_ended", r.linkedid, r.ended_at, {"outcome": r.outcome, "hangup_by": r.hangup_by, "recovered": source}, r)
            for source, batch in (("queue_log", records), ("CDR", outside))
            for r in batch
        ]
        self._publish(events)

    def _since(self) -> float | None:
        """Where a gap begins: the last event seen, or at the engine's start the end of the last call stored."""
        if self.last_seen is not None:
            return self.last_seen - GAP_MARGIN_S
        last = self.store.last_end() if self.store is not None else None
        return None if last is None else last - GAP_MARGIN_S

    async def _gap_visits(self, since: float | None) -> list[Visit]:
        """queue_log's visits since the gap began (those of calls already stored included: their call ids tell the CDR's
        queue calls apart)."""
        if self.queue_log is None or since is None:
            return []
        await asyncio.to_thread(self.queue_log.read)
        return self.queue_log.visits(since)

    async def _gap_calls_outside_queues(self, since: float | None, queue_callids: set[str]) -> list[CallRecord]:
        """The CDR's calls of the gap that never reached a queue and that the engine neither followed nor stored."""
        if self.cdr is None or since is None:
            return []
        await asyncio.to_thread(self.cdr.read)
        rows = self.cdr.rows(since)
        live = set(self.tracker.open_calls())
        followed = {r["linkedid"] for r in rows if r["linkedid"] in live or self.tracker.knows(r["uniqueid"])}
        records = list(cdr_calls([r for r in rows if r["linkedid"] not in followed], queue_callids, recovered=True))
        if self.store is not None and records:
            stored = self.store.stored(r.linkedid for r in records)
            records = [r for r in records if r.linkedid not in stored]
        return records

    def _publish(self, events: list[DomainEvent]) -> None:
        if self.out is not None:
            for event in events:
                print(self.format(event), file=self.out, flush=True)
        records = [e.record for e in events if e.record is not None]
        if self.store is not None and events:
            self.store.save(records, events)
        if events:
            for listener in self.listeners:
                listener(events)
