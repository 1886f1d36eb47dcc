"""Asterisk's queue_log, read as a stream: lines -> queue visits and agent state changes.

One line is ``epoch|callid|queue|agent|event|data1|data2|...`` (app_queue).
A caller's stay in one queue (a *visit*) opens with ENTERQUEUE and closes
with CONNECT + COMPLETECALLER/COMPLETEAGENT/(BLIND|ATTENDED)TRANSFER,
ABANDON, EXITWITHTIMEOUT, EXITWITHKEY or EXITEMPTY. Only open visits are held
in memory, so memory stays flat in the file's size. A line that cannot be
read is reported with its number and skipped; the rest is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kernel.records import Visit
from kernel.values import Outcome
from reports.tail import FileTail

__all__ = ["Visit"]  # re-exported: reports name visits from here

ANSWER_ENDS = {
    "COMPLETECALLER": "caller",
    "COMPLETEAGENT": "agent",
    "TRANSFER": "transfer",
    "BLINDTRANSFER": "transfer",
    "ATTENDEDTRANSFER": "transfer",
}
UNANSWERED_ENDS = {
    "ABANDON": Outcome.ABANDONED,
    "EXITWITHTIMEOUT": Outcome.TIMEOUT,
    "EXITWITHKEY": Outcome.EXIT_KEY,
    "EXITEMPTY": Outcome.EXIT_EMPTY,
}
AGENT_EVENTS = {
    "ADDMEMBER": "logged_in",
    "REMOVEMEMBER": "logged_out",
    "AGENTLOGIN": "logged_in",
    "AGENTLOGOFF": "logged_out",
    "PAUSE": "paused",
    "UNPAUSE": "available",
    "PAUSEALL": "paused",
    "UNPAUSEALL": "available",
}
LAST_EPOCH = 253402300799  # 9999-12-31: a later time is no time a report can show
IGNORED = {"QUEUESTART", "CONFIGRELOAD", "SYSCOMPAT", "PENALTY", "RINGCANCELED", "INFO", "DID", "AGENTDUMP"}


class LogLine(NamedTuple):
    """One parsed queue_log line (a tuple: about twice as fast to build as a dataclass, on 3M lines)."""

    number: int
    epoch: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that was skipped, and why."""

    number: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"line {self.number}: {self.reason}: {self.text[:80]!r}"


@dataclass(frozen=True, slots=True)
class AgentChange:
    """An agent (queue member) changed state: logged in or out, paused with a reason, available."""

    epoch: int
    agent: str
    queue: str | None
    state: str
    reason: str | None


def parse_line(number: int, text: str) -> LogLine | LineError:
    """One line, or why it cannot be read."""
    parts = text.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return LineError(number, f"expected at least 5 '|'-separated fields, found {len(parts)}", text)
    epoch, callid, queue, agent, event = parts[:5]
    if not (epoch.isascii() and epoch.isdigit()) or int(epoch) > LAST_EPOCH:
        return LineError(number, f"time {epoch!r} is not a Unix epoch", text)
    if "\x00" in text:
        return LineError(number, "NUL byte in the line", text.replace("\x00", "\\0"))
    if not (event.isupper() and event.replace("_", "").isalnum()):
        return LineError(number, f"event {event!r} is not an app_queue event", text)
    return LogLine(number, int(epoch), callid, queue, agent, event, tuple(parts[5:]))


def read_lines(path: str | Path) -> Iterator[LogLine | LineError]:
    """Every line of a queue_log file, parsed or explained; bytes that are not UTF-8 are replaced."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            if text.strip():
                yield parse_line(number, text)


def _num(value: str | None) -> float | None:
    """A count or a duration: a finite number, else None (nan, inf and words are no figure)."""
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


class VisitBuilder:
    """Turns lines into finished visits and agent changes, holding only open visits."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Visit] = {}
        self.errors: list[LineError] = []

    def feed(self, line: LogLine) -> Iterator[Visit | AgentChange]:
        """Apply one line; yield what it finished."""
        event, data = line.event, line.data
        if event in AGENT_EVENTS:
            reason = data[0] if data and event in ("PAUSE", "PAUSEALL") and data[0] else None
            queue = None if line.queue in ("NONE", "") else line.queue
            yield AgentChange(line.epoch, line.agent, queue, AGENT_EVENTS[event], reason)
            return
        if event in IGNORED:
            return
        key = (line.callid, line.queue)
        if event == "ENTERQUEUE":
            caller = data[1] if len(data) > 1 and data[1] else None
            position = _num(data[2] if len(data) > 2 else None)
            self.open[key] = Visit(line.callid, line.queue, line.epoch, caller, int(position) if position is not None else None)
            return
        visit = self.open.get(key)
        if visit is None:
            if event in ANSWER_ENDS or event in UNANSWERED_ENDS or event in ("CONNECT", "RINGNOANSWER"):
                self.errors.append(LineError(line.number, f"{event} for a call that never entered queue {line.queue!r}", line.callid))
            return
        if event == "CONNECT":
            visit.agent = line.agent
            visit.outcome = Outcome.ANSWERED
            visit.wait_s = self._duration(line, "wait", data[0] if data else None)
            visit.ring_s = _num(data[2] if len(data) > 2 else None)
            visit.agent_channel_id = data[1] if len(data) > 1 and data[1] else None
        elif event == "RINGNOANSWER":
            visit.ring_no_answer.append(line.agent)
        elif event in ANSWER_ENDS:
            offset = 0 if event in ("COMPLETECALLER", "COMPLETEAGENT") else 2
            visit.agent = visit.agent or line.agent
            visit.outcome = Outcome.ANSWERED
            visit.wait_s = self._duration(line, "wait", data[offset]) if len(data) > offset else visit.wait_s
            visit.talk_s = self._duration(line, "talk", data[offset + 1]) if len(data) > offset + 1 else None
            visit.completed_by = ANSWER_ENDS[event]
            visit.transferred = event.endswith("TRANSFER")
            yield self._close(key, visit, line.epoch)
        elif event in UNANSWERED_ENDS:
            offset = 1 if event == "EXITWITHKEY" else 0
            visit.outcome = UNANSWERED_ENDS[event]
            visit.wait_s = self._duration(line, "wait", data[offset + 2]) if len(data) > offset + 2 else float(line.epoch - visit.entered)
            yield self._close(key, visit, line.epoch)

    def _duration(self, line: LogLine, what: str, value: str | None) -> float | None:
        """A wait or talk time of the line; a negative one is reported (with the line) and taken as unknown."""
        seconds = _num(value)
        if seconds is not None and seconds < 0:
            self.errors.append(LineError(line.number, f"{what} time {value} is negative: taken as unknown", line.callid))
            return None
        return seconds

    def _close(self, key: tuple[str, str], visit: Visit, epoch: int) -> Visit:
        del self.open[key]
        visit.ended = epoch
        return visit


def read_visits(lines: Iterable[LogLine | LineError], builder: VisitBuilder | None = None) -> Iterator[Visit | AgentChange]:
    """Finished visits and agent changes from parsed lines; bad lines go to `builder.errors`."""
    builder = builder or VisitBuilder()
    for line in lines:
        if isinstance(line, LineError):
            builder.errors.append(line)
            continue
        yield from builder.feed(line)


class QueueLogTail:
    """Asterisk's queue_log followed as it grows, so the engine can recover the calls of an AMI gap from it.

    Each `read` takes only the lines added since the last one (see `FileTail`); the visits finished in the last
    `keep_s` seconds of the log and those still open are kept.
    """

    def __init__(self, path: str | Path, keep_s: float = 6 * 3600) -> None:
        self.file = FileTail(path, "Asterisk's queue_log")
        self.keep_s = keep_s
        self.number = 0
        self.builder = VisitBuilder()
        self.finished: list[Visit] = []
        self.errors = 0

    def read(self) -> None:
        """Take in the lines written since the last read."""
        lines = self.file.lines()
        if self.file.restarted:
            self.number, self.builder = 0, VisitBuilder()
        for raw in lines:
            self.number += 1
            if not raw.strip():
                continue
            line = parse_line(self.number, raw)
            if isinstance(line, LineError):
                self.errors += 1
                continue
            self.finished.extend(item for item in self.builder.feed(line) if isinstance(item, Visit))
        self.errors += len(self.builder.errors)
        self.builder.errors.clear()
        newest = max((v.ended or 0 for v in self.finished), default=0)
        self.finished = [v for v in self.finished if (v.ended or 0) >= newest - self.keep_s]

    def callids(self) -> set[str]:
        """Every channel that queue_log shows in a queue in what is kept (hours): a CDR row of one is a queue call."""
        return {v.callid for v in self.finished} | {v.callid for v in self.builder.open.values()}

    def visits(self, since: float) -> list[Visit]:
        """The visits that ended at or after `since`, and those still open."""
        return [v for v in self.finished if (v.ended or 0) >= since] + list(self.builder.open.values())
