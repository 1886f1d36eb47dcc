"""Calls outside the queues: what became of them, and where callers dropped off in the IVR menus."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from kernel.db import CallStore
from kernel.models import Call
from kernel.records import CallRecord
from reports.metrics import percent


def ivr_section(rows: Iterable[tuple[str, bool, str, int]]) -> dict[str, Any]:
    """(digits keyed, reached a queue, outcome, calls) rows -> outcomes and per-menu-path drop-off."""
    outcomes: dict[str, int] = defaultdict(int)
    paths: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "reached_queue": 0, "ended_in_ivr": 0})
    for digits, reached_queue, outcome, calls in rows:
        if not reached_queue:
            outcomes[outcome] += calls
        path = paths[digits or "(none)"]
        path["calls"] += calls
        path["reached_queue" if reached_queue else "ended_in_ivr"] += calls
    menu = {key: {**value, "drop_off_pct": percent(value["ended_in_ivr"], value["calls"])} for key, value in sorted(paths.items())}
    return {"calls_outside_queues": sum(outcomes.values()), "by_outcome": dict(sorted(outcomes.items())), "menu": menu}


def stored_ivr_rows(store: CallStore, start: float | None, end: float | None) -> list[tuple[str, bool, str, int]]:
    """The database's calls grouped for `ivr_section` (counted by the database, not in Python)."""
    reached = Call.queue.is_not(None)
    query = select(Call.ivr_digits, reached, Call.outcome, func.count()).group_by(Call.ivr_digits, reached, Call.outcome)
    if start is not None:
        query = query.where(Call.started_at >= datetime.fromtimestamp(start, tz=UTC))
    if end is not None:
        query = query.where(Call.started_at < datetime.fromtimestamp(end, tz=UTC))
    with store.sessions() as session:
        return [(digits or "", bool(in_queue), outcome, count) for digits, in_queue, outcome, count in session.execute(query)]


def record_rows(records: Iterable[CallRecord], start: float | None, end: float | None) -> list[tuple[str, bool, str, int]]:
    """Call records (from a CDR file) grouped for `ivr_section`."""
    counts: dict[tuple[str, bool, str], int] = defaultdict(int)
    for r in records:
        if (start is None or r.started_at >= start) and (end is None or r.started_at < end):
            counts[(r.ivr_digits, r.queue is not None, r.outcome)] += 1
    return [(*key, count) for key, count in counts.items()]
