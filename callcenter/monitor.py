"""Live monitor: AMI client -> call tracker -> printed lines and stored calls."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from kernel.db import CallStore
from kernel.records import DomainEvent
from pbx.client import Snapshot
from pbx.codec import Message
from pbx.tracker import CallTracker, event_time

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
            "ended (joined mid-call: no record)" if d.get("partial") else f"ended: {d.get('outcome')}, hung up by {d.get('hangup_by')}"
        ),
    }.get(event.kind, lambda: event.kind)()
    return f"{clock} {event.linkedid:<18} {what}"


class Monitor:
    """Feeds AMI events to the tracker, prints what happens, stores finished calls, then tells its listeners (the panel's board)."""

    def __init__(
        self,
        tracker: CallTracker,
        store: CallStore | None,
        out: TextIO | None,
        as_json: bool = False,
        listeners: list[Callable[[list[DomainEvent]], None]] | None = None,
    ) -> None:
        self.tracker = tracker
        self.store = store
        self.out = out
        self.listeners = list(listeners or [])
        self.format: Callable[[DomainEvent], str] = (lambda e: json.dumps(e.to_json(), ensure_ascii=False)) if as_json else describe

    def on_event(self, message: Message, arrival: float) -> None:
        """Handle one AMI event from the client."""
        self._publish(self.tracker.feed(message, event_time(message, arrival)))

    def on_acd(self, kind: str, linkedid: str, t: float, **data: object) -> None:
        """What our own ACD did with a call (native mode), for the record and the timeline."""
        self._publish(self.tracker.acd(kind, linkedid, t, **data))

    def on_resync(self, snapshot: Snapshot) -> None:
        """Rebuild live calls from what Asterisk reports after a (re)connect."""
        self._publish(self.tracker.resync(snapshot.channels, snapshot.queue_entries, snapshot.at))

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
