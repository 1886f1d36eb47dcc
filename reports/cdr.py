"""Asterisk CDR CSV (cdr_csv, Master.csv) into the calls table: the calls that never reached a queue.

Queue calls come from queue_log, so a CDR row is imported only when it is the
leg a call arrived on and it did not go to Queue(): a caller who stayed in
the IVR, or a call the dialplan sent straight to a Dial(). Legs that are the
far side of another row (its dstchannel, or the other half of that Local
channel) and the originating half (;1) of a Local channel are not calls of
their own. The columns are cdr_csv's with the unique id and userfield on.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from kernel.records import CallRecord
from kernel.values import HangupBy, Outcome
from pbx.tracker import local_partner
from reports.queue_log import LineError

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
IVR_APPS = {"hangup", "playback", "background", "waitexten", "read", "agi", "wait", "noop", "voicemail"}


def _time(value: str) -> float | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def read_cdr(path: str | Path, errors: list[LineError]) -> list[dict[str, str]]:
    """The rows of a CDR CSV; a row that cannot be read goes to `errors` with its line number."""
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row:
                continue
            if len(row) < len(COLUMNS):
                errors.append(LineError(number, f"expected {len(COLUMNS)} CDR columns, found {len(row)}", ",".join(row)))
                continue
            record = dict(zip(COLUMNS, row))
            try:
                _time(record["start"]), _time(record["end"])
            except ValueError:
                errors.append(
                    LineError(number, f"start/end {record['start']!r}/{record['end']!r} is not 'YYYY-MM-DD HH:MM:SS'", ",".join(row))
                )
                continue
            record["line"] = str(number)
            rows.append(record)
    return rows


def cdr_calls(rows: list[dict[str, str]], queue_callids: Collection[str] = ()) -> Iterator[CallRecord]:
    """Call records for the arriving legs that never went to a queue.

    `queue_callids` are queue_log call ids (the queue channel's uniqueid): a leg
    that was in a queue but ended in another application (Hangup() after a
    queue timeout) is known by them, since its CDR no longer says Queue.
    """
    far_sides = {r["dstchannel"] for r in rows if r["dstchannel"]}
    for r in rows:
        channel = r["channel"]
        partner = local_partner(channel)
        if (
            r["lastapp"].lower() == "queue"
            or r["uniqueid"] in queue_callids
            or channel.endswith(";1")
            or channel in far_sides
            or (partner and partner in far_sides)
        ):
            continue
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
            linkedid=f"cdr:{r['uniqueid'] or r['line']}",
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
            talk_s=float(r["billsec"]) if outcome is Outcome.ANSWERED_DIRECT and r["billsec"].isdigit() else None,
            hold_s=0.0,
            hangup_by=HangupBy.UNKNOWN,
            hangup_cause=None,
        )
