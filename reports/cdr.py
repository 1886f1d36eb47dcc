"""Asterisk CDR CSV (cdr_csv, Master.csv) into the calls table: the calls that never reached a queue.

Queue calls come from queue_log, so a CDR row is imported only when it is the
leg a call arrived on and it did not go to Queue(): a caller who stayed in
the IVR, or a call the dialplan sent straight to a Dial(). Legs that are the
far side of another row (its dstchannel, or the other half of that Local
channel) and the originating half (;1) of a Local channel are not calls of
their own. The columns are cdr_csv's with the unique id and userfield on, and
newcdrcolumns' peer account, linkedid and sequence where Asterisk writes them
(contrib/asterisk/cdr.conf); a few more after those (a cdr_custom mapping that
adds its own) are read past. A row cdr_csv could not have written (a stray
quote, a time outside 2000-2099, an answer outside the call, a duration or
billsec that is no whole seconds up to a week, dozens of extra columns) is bad.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from kernel.records import CallRecord
from kernel.values import HangupBy, Outcome
from pbx.tracker import local_partner
from reports.queue_log import FIRST_EPOCH, LAST_EPOCH, MAX_SECONDS, LineError, is_seconds
from reports.tail import FileTail

log = logging.getLogger(__name__)

COLUMNS = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
]
# newcdrcolumns = yes adds these (contrib/asterisk/cdr.conf): the linkedid ties a CDR row to the engine's call.
NEW_COLUMNS = ["peeraccount", "linkedid", "sequence"]
CDR_COLUMNS = COLUMNS + NEW_COLUMNS
EXTRA_COLUMNS = 20  # a cdr_custom mapping may add a few columns of its own; more than this is no CDR
IVR_APPS = {"hangup", "playback", "background", "waitexten", "read", "agi", "wait", "noop", "voicemail"}


def _time(value: str) -> float | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def parse_row(number: int, row: list[str]) -> dict[str, str] | LineError:
    """One CDR row by column name (with `line`, its number), or why it cannot be read."""
    text = ",".join(row)
    if not len(COLUMNS) <= len(row) <= len(CDR_COLUMNS) + EXTRA_COLUMNS:
        return LineError(number, f"expected {len(COLUMNS)} to {len(CDR_COLUMNS) + EXTRA_COLUMNS} CDR columns, found {len(row)}", text)
    if "\x00" in text:
        return LineError(number, "NUL byte in the row", text.replace("\x00", "\\0"))
    record = dict(zip(CDR_COLUMNS, row))
    times = {}
    for column in ("start", "answer", "end"):
        try:
            times[column] = _time(record[column])
        except ValueError:
            return LineError(number, f"{column} {record[column][:40]!r} is not 'YYYY-MM-DD HH:MM:SS'", text)
    start, answer, end = times["start"], times["answer"], times["end"]
    if start is None or end is None:
        return LineError(number, "start and end are required", text)
    outside = next((column for column, t in times.items() if t is not None and not FIRST_EPOCH <= t <= LAST_EPOCH), None)
    if outside:
        return LineError(number, f"{outside} {record[outside]} is not a time from 2000 to 2099", text)
    if end < start:
        return LineError(number, f"ends ({record['end']}) before it starts ({record['start']})", text)
    if answer is not None and not start <= answer <= end:
        return LineError(number, f"answered ({record['answer']}) outside the call ({record['start']} to {record['end']})", text)
    for column in ("duration", "billsec"):
        if not is_seconds(record[column]):
            return LineError(number, f"{column} {record[column][:40]!r} is not whole seconds from 0 to {MAX_SECONDS} (a week)", text)
    record["line"] = str(number)
    return record


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, list[str]] | LineError]:
    """csv's rows with their line numbers; a row csv cannot read (a field past its limit, a stray quote) is a LineError
    and reading goes on with the next."""
    reader = csv.reader(lines, strict=True)  # cdr_csv doubles a quote inside a field: a lone one is a broken row
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield LineError(reader.line_num, f"not a CSV row: {exc}", "")
            continue
        if row:
            yield reader.line_num, row


def read_cdr(path: str | Path, errors: list[LineError]) -> list[dict[str, str]]:
    """The rows of a CDR CSV; a row that cannot be read goes to `errors` with its line number."""
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for item in _csv_rows(handle):
            parsed = parse_row(*item) if not isinstance(item, LineError) else item
            if isinstance(parsed, LineError):
                errors.append(parsed)
            else:
                rows.append(parsed)
    return rows


class CdrTail:
    """Asterisk's Master.csv followed as it grows, so the engine can recover the calls of an AMI gap that never reached
    a queue (queue_log has the others). Rows that ended in the last `keep_s` seconds of the file are kept."""

    def __init__(self, path: str | Path, keep_s: float = 6 * 3600) -> None:
        self.file = FileTail(path, "Asterisk's CDR")
        self.keep_s = keep_s
        self.number = 0
        self.kept: list[dict[str, str]] = []
        self.errors = 0
        self.warned = False

    def read(self) -> None:
        """Take in the rows written since the last read."""
        lines = self.file.lines()
        if self.file.restarted:
            self.number = 0
        for item in _csv_rows(lines):
            parsed = parse_row(self.number + item[0], item[1]) if not isinstance(item, LineError) else item
            if isinstance(parsed, LineError):
                self.errors += 1
            else:
                if "linkedid" not in parsed:  # without it a row cannot be told from the calls the engine has
                    if not self.warned:
                        log.warning("%s has no linkedid column: set newcdrcolumns = yes in cdr.conf [csv]", self.file.path)
                        self.warned = True
                    continue
                self.kept.append(parsed)
        self.number += len(lines)
        newest = max((_time(r["end"]) or 0 for r in self.kept), default=0)
        self.kept = [r for r in self.kept if (_time(r["end"]) or 0) >= newest - self.keep_s]

    def rows(self, since: float) -> list[dict[str, str]]:
        """The rows of channels that ended at or after `since`."""
        return [r for r in self.kept if (_time(r["end"]) or 0) >= since]


def cdr_calls(rows: list[dict[str, str]], queue_callids: Collection[str] = (), recovered: bool = False) -> Iterator[CallRecord]:
    """Call records for the arriving legs that never went to a queue, one per call.

    `queue_callids` are queue_log call ids (the queue channel's uniqueid): a leg
    that was in a queue but ended in another application (Hangup() after a
    queue timeout) is known by them, since its CDR no longer says Queue. A row
    with a linkedid (newcdrcolumns) is stored under it, as the engine stores the
    calls it follows, so the same call is never stored twice; any row of that
    call in a queue makes the whole call queue_log's. `recovered`: the engine
    recovering an AMI gap (the records are marked resynced).
    """
    far_sides = {r["dstchannel"] for r in rows if r["dstchannel"]}
    queued = {r.get("linkedid") for r in rows if r["lastapp"].lower() == "queue" or r["uniqueid"] in queue_callids} - {None, ""}
    seen: set[str] = set()
    for r in rows:
        channel = r["channel"]
        partner = local_partner(channel)
        key = r.get("linkedid") or f"cdr:{r['uniqueid'] or r['line']}"
        if (
            r["lastapp"].lower() == "queue"
            or r["uniqueid"] in queue_callids
            or key in queued
            or key in seen
            or channel.endswith(";1")
            or channel in far_sides
            or (partner and partner in far_sides)
        ):
            continue
        seen.add(key)
        started, ended = _time(r["start"]), _time(r["end"])
        answered = _time(r["answer"])
        if r["dstchannel"] and r["disposition"] == "ANSWERED":
            outcome = Outcome.ANSWERED_DIRECT
        elif r["lastapp"].lower() in IVR_APPS or not r["dstchannel"]:
            outcome = Outcome.IVR_ONLY
        else:
            outcome = Outcome.UNANSWERED_DIRECT
        name = r["clid"].split("<")[0].strip().strip('"') or None
        yield CallRecord(
            linkedid=key,
            caller_number=r["src"] or None,
            caller_name=name,
            dnid=None,
            started_at=started or 0.0,
            ivr_digits="",
            queue=None,
            enqueued_at=None,
            answered_at=answered if outcome is Outcome.ANSWERED_DIRECT else None,
            agent=None,
            ended_at=ended or started or 0.0,
            outcome=outcome,
            wait_s=None,
            talk_s=float(r["billsec"]) if outcome is Outcome.ANSWERED_DIRECT else None,
            hold_s=0.0,
            hangup_by=HangupBy.UNKNOWN,
            hangup_cause=None,
            resynced=recovered,
        )
