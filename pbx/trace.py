"""Recorded AMI conversations (../shared/ami-traces/*.jsonl) read and replayed.

A trace is one JSON object per socket read or write:
``{"t": seconds since connect, "dir": "in" | "out", "data": raw text}``.
Replaying runs the `in` bytes through the same codec and tracker the live
client uses, with event time = the epoch of the connection + the read's `t`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kernel.exceptions import InputError
from kernel.records import CallRecord
from pbx.codec import AMICodec, FrameError, Message
from pbx.tracker import CallTracker, event_time


@dataclass(frozen=True, slots=True)
class Read:
    """One socket read (`in`) or write (`out`) of a recorded conversation."""

    t: float
    dir: str
    data: str


def read_trace(path: str | Path) -> Iterator[Read]:
    """Every read and write of a trace, in order; a bad line raises naming file and line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                read = Read(t=float(raw["t"]), dir=str(raw["dir"]), data=str(raw["data"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{number}: not a trace record ({exc})") from exc
            if read.dir not in ("in", "out"):
                raise InputError(f"{path}:{number}: dir must be 'in' or 'out', not {read.dir!r}")
            yield read


def _parse_eventtv(value: str) -> float | None:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None


def connection_epoch(path: str | Path, look: int = 50) -> float:
    """Epoch of the trace's t=0, from the first event carrying EventTV or Timestamp (else 0)."""
    codec = AMICodec()
    for index, read in enumerate(read_trace(path)):
        if index > look:
            break
        if read.dir != "in":
            continue
        for item in codec.feed(read.data.encode("utf-8")):
            if isinstance(item, Message):
                when = _parse_eventtv(item.get("EventTV", "")) or event_time(item, 0.0)
                if when:
                    return when - read.t
    return 0.0


def replay_messages(path: str | Path) -> Iterator[tuple[float, Message | FrameError]]:
    """(time, item) for every frame Asterisk sent in a trace."""
    epoch = connection_epoch(path)
    codec = AMICodec()
    for read in read_trace(path):
        if read.dir != "in":
            continue
        for item in codec.feed(read.data.encode("utf-8")):
            if isinstance(item, (Message, FrameError)):
                yield epoch + read.t, item


def actions_sent(path: str | Path) -> list[Message]:
    """The actions the recording client sent, parsed."""
    codec = AMICodec()
    codec.feed(b"Asterisk Call Manager/0\r\n")
    out: list[Message] = []
    for read in read_trace(path):
        if read.dir == "out":
            out.extend(m for m in codec.feed(read.data.encode("utf-8")) if isinstance(m, Message))
    return out


def replay(path: str | Path, tracker: CallTracker | None = None) -> list[CallRecord]:
    """Finished call records of a trace, in the order the calls ended. The client's resyncs are replayed as it makes
    them: the CoreShowChannels and QueueStatus answers in the trace are a snapshot, and the events that came after the
    channel list wait until both are in."""
    tracker = tracker or CallTracker()
    records: list[CallRecord] = []
    channels: list[Message] = []
    snapshot: tuple[list[Message], list[Message]] | None = None
    held: list[tuple[float, Message]] = []

    def take(events: list) -> None:
        records.extend(event.record for event in events if event.record is not None)

    def apply(t: float) -> None:
        assert snapshot is not None
        take(tracker.resync(snapshot[0], snapshot[1], t))
        for when, message in held:
            take(tracker.feed(message, event_time(message, when)))
        held.clear()

    last = 0.0
    for t, item in replay_messages(path):
        last = t
        if not (isinstance(item, Message) and item.event):
            continue
        event = item.event
        if event == "CoreShowChannel":
            channels.append(item)
        elif event == "CoreShowChannelsComplete":
            snapshot, channels = (channels, []), []
        elif snapshot is not None and event in ("QueueParams", "QueueMember", "QueueEntry"):
            if event == "QueueEntry":
                snapshot[1].append(item)
        elif snapshot is not None and event == "QueueStatusComplete":
            apply(t)
            snapshot = None
        elif snapshot is not None:
            held.append((t, item))
        else:
            take(tracker.feed(item, event_time(item, t)))
    if snapshot is not None:
        apply(last)
    return records
