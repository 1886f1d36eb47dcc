"""Asterisk's queue_log, read as a stream: lines -> queue visits and agent state changes.

One line is ``epoch|callid|queue|agent|event|data1|data2|...`` (app_queue).
A caller's stay in one queue (a *visit*) opens with ENTERQUEUE and closes
with CONNECT + COMPLETECALLER/COMPLETEAGENT/(BLIND|ATTENDED)TRANSFER,
ABANDON, EXITWITHTIMEOUT, EXITWITHKEY or EXITEMPTY. Only open visits (and
the keys of the last hour's finished ones) are held in memory, so memory
stays flat in the file's size. A line that cannot be read (not a time of
2000-2099, an event Asterisk does not write, a wait or talk time that is not
whole seconds up to a week, a line out of its visit's order, a visit read
again) is reported with its number and skipped; the rest is read.
"""

from __future__ import annotations

import math
from collections import deque
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
VISIT_EVENTS = frozenset(("ENTERQUEUE", "CONNECT", "RINGNOANSWER", *ANSWER_ENDS, *UNANSWERED_ENDS))
# Asterisk's other queue_log events (app_queue's, the agents', the logger's QUEUESTART; DID as FreePBX writes it): read, not
# counted. Any other event (a typo, a QueueLog() of one's own) is a bad line.
UNUSED_EVENTS = (
    "AGENTCALLBACKLOGIN",
    "AGENTCALLBACKLOGOFF",
    "AGENTDUMP",
    "CONFIGRELOAD",
    "DID",
    "FULL",
    "INFO",
    "JOINEMPTY",
    "JOINUNAVAIL",
    "PENALTY",
    "QUEUESTART",
    "RINGCANCELED",
    "SYSCOMPAT",
)
EVENTS = frozenset((*VISIT_EVENTS, *AGENT_EVENTS, *UNUSED_EVENTS))
# Where app_queue writes each event's wait and talk time: the index in the data fields after the event.
WAIT_FIELD = {
    "CONNECT": 0,
    "COMPLETECALLER": 0,
    "COMPLETEAGENT": 0,
    "TRANSFER": 2,
    "BLINDTRANSFER": 2,
    "ATTENDEDTRANSFER": 2,
    "ABANDON": 2,
    "EXITWITHTIMEOUT": 2,
    "EXITEMPTY": 2,
    "EXITWITHKEY": 3,
}
TALK_FIELD = {"COMPLETECALLER": 1, "COMPLETEAGENT": 1, "TRANSFER": 3, "BLINDTRANSFER": 3, "ATTENDEDTRANSFER": 3}
FIRST_EPOCH, LAST_EPOCH = 946684800, 4102444799  # 2000-01-01 to 2099-12-31 UTC: any other time is no call of ours
MAX_SECONDS = 7 * 86400  # a wait, talk or call over a week is no figure
SECONDS_DIGITS = len(str(MAX_SECONDS))
MAX_LINE = 8192  # Asterisk writes a queue_log line from a buffer of this size: a longer one is not Asterisk's
RECENT_S = 3600  # a visit read again within an hour of log time (a line logged twice) is named
_EPOCH_DIGITS = len(str(LAST_EPOCH))
_TIME_FIELDS = (("wait", WAIT_FIELD), ("talk", TALK_FIELD))


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


def is_seconds(text: str) -> bool:
    """Whether a field is whole seconds from 0 to a week, as app_queue and cdr_csv write them (the SQL's rule too)."""
    return len(text) <= SECONDS_DIGITS and text.isascii() and text.isdigit() and int(text) <= MAX_SECONDS


def parse_line(number: int, text: str) -> LogLine | LineError:
    """One line, or why it cannot be read."""
    line = text.rstrip("\r\n")
    if len(line) > MAX_LINE:
        return LineError(number, f"{len(line)} characters, more than Asterisk writes in a line ({MAX_LINE})", text)
    parts = line.split("|")
    if len(parts) < 5:
        return LineError(number, f"expected at least 5 '|'-separated fields, found {len(parts)}", text)
    epoch, callid, queue, agent, event = parts[:5]
    when = int(epoch) if epoch.isascii() and epoch.isdigit() and len(epoch.lstrip("0")) <= _EPOCH_DIGITS else 0
    if not FIRST_EPOCH <= when <= LAST_EPOCH:
        return LineError(number, f"time {epoch!r} is not a Unix epoch from 2000 to 2099", text)
    if "\x00" in text:
        return LineError(number, "NUL byte in the line", text.replace("\x00", "\\0"))
    if event not in EVENTS:
        return LineError(number, f"event {event!r} is not an Asterisk queue_log event", text)
    if not agent or event in VISIT_EVENTS and not (callid and queue):
        empty = "agent" if not agent else "queue" if not queue else "call id"
        return LineError(number, f"{event} with no {empty} (Asterisk writes NONE for none)", text)
    data = tuple(parts[5:])
    for what, fields in _TIME_FIELDS:
        index = fields.get(event)
        if index is not None and index < len(data) and not is_seconds(data[index]):
            return LineError(number, f"{what} time {data[index]!r} is not whole seconds from 0 to {MAX_SECONDS} (a week)", text)
    return LogLine(number, when, callid, queue, agent, event, data)


def read_lines(path: str | Path) -> Iterator[LogLine | LineError]:
    """Every line of a queue_log file, parsed or explained; bytes that are not UTF-8 are replaced (a BOM is dropped, as
    DuckDB drops it)."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            if text.strip():
                yield parse_line(number, text)


def _num(value: str | None) -> float | None:
    """A count (a position, a ring time): a finite number, else None (nan, inf and words are no figure)."""
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _seconds(data: tuple[str, ...], index: int) -> float | None:
    """A wait or talk field (checked by parse_line), None where the line has fewer fields."""
    return float(data[index]) if index < len(data) else None


class VisitBuilder:
    """Turns lines into finished visits and agent changes, holding only open visits (and the last hour's keys)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Visit] = {}
        self.errors: list[LineError] = []
        self.recent: set[tuple[str, str, int]] = set()
        self._recent_order: deque[tuple[int, tuple[str, str, int]]] = deque()

    def feed(self, line: LogLine) -> Iterator[Visit | AgentChange]:
        """Apply one line; yield what it finished. A line out of its visit's order is named and skipped."""
        event, data = line.event, line.data
        if event in AGENT_EVENTS:
            reason = data[0] if data and event in ("PAUSE", "PAUSEALL") and data[0] else None
            queue = None if line.queue in ("NONE", "") else line.queue
            yield AgentChange(line.epoch, line.agent, queue, AGENT_EVENTS[event], reason)
            return
        if event not in VISIT_EVENTS:
            return
        key = (line.callid, line.queue)
        visit = self.open.get(key)
        if event == "ENTERQUEUE":
            if visit is not None:
                self._skip(line, f"ENTERQUEUE for a call already in queue {line.queue!r} (since {visit.entered})")
            elif (line.callid, line.queue, line.epoch) in self.recent:
                self._skip(line, f"ENTERQUEUE of a visit already read: the same call, queue {line.queue!r} and time")
            else:
                caller = data[1] if len(data) > 1 and data[1] else None
                position = _num(data[2] if len(data) > 2 else None)
                self.open[key] = Visit(line.callid, line.queue, line.epoch, caller, int(position) if position is not None else None)
            return
        if visit is None:
            self._skip(line, f"{event} for a call that is not in queue {line.queue!r}")
            return
        if line.epoch < visit.entered:
            self._skip(line, f"{event} at {line.epoch}, before the call entered queue {line.queue!r} at {visit.entered}")
            return
        if event == "CONNECT":
            visit.agent = line.agent
            visit.outcome = Outcome.ANSWERED
            visit.wait_s = _seconds(data, WAIT_FIELD[event])
            visit.ring_s = _num(data[2] if len(data) > 2 else None)
            visit.agent_channel_id = data[1] if len(data) > 1 and data[1] else None
        elif event == "RINGNOANSWER":
            visit.ring_no_answer.append(line.agent)
        elif event in ANSWER_ENDS:
            wait = _seconds(data, WAIT_FIELD[event])
            visit.agent = visit.agent or line.agent
            visit.outcome = Outcome.ANSWERED
            visit.wait_s = wait if wait is not None else visit.wait_s
            visit.talk_s = _seconds(data, TALK_FIELD[event])
            visit.completed_by = ANSWER_ENDS[event]
            visit.transferred = event.endswith("TRANSFER")
            yield self._close(key, visit, line.epoch)
        else:
            wait = _seconds(data, WAIT_FIELD[event])
            visit.outcome = UNANSWERED_ENDS[event]
            visit.wait_s = wait if wait is not None else float(line.epoch - visit.entered)
            yield self._close(key, visit, line.epoch)

    def _skip(self, line: LogLine, reason: str) -> None:
        """A line the visit cannot take (named with the call, so the report and the import say the same)."""
        self.errors.append(LineError(line.number, reason, line.callid))

    def _close(self, key: tuple[str, str], visit: Visit, epoch: int) -> Visit:
        del self.open[key]
        visit.ended = epoch
        done = (*key, visit.entered)
        self.recent.add(done)
        self._recent_order.append((epoch, done))
        while self._recent_order[0][0] < epoch - RECENT_S:
            self.recent.discard(self._recent_order.popleft()[1])
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
