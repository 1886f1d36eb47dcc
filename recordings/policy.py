"""Pure decisions about recordings: whether to record a call, its file name, and what retention deletes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kernel.config import RecordingSettings
from kernel.numbers import normalise

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def should_record(settings: RecordingSettings, queue: str | None, linkedid: str, opted_out: bool) -> tuple[bool, str]:
    """(record?, why): opted-out callers and 'never' queues are not; a sample is chosen by the call's id, so it is repeatable."""
    policy = settings.policy(queue)
    if not settings.enabled:
        return False, "disabled"
    if opted_out:
        return False, "opted_out"
    if policy.mode == "never":
        return False, "policy_never"
    if policy.mode == "on_demand":
        return False, "on_demand"
    if policy.mode == "sample":
        draw = int(hashlib.sha256(linkedid.encode()).hexdigest()[:8], 16) % 10_000 / 100.0
        return (True, "sampled") if draw < policy.sample_pct else (False, "not_sampled")
    return True, "policy_all"


def file_key(started: float, queue: str | None, linkedid: str) -> str:
    """Where a recording lives: date/queue/linkedid.wav, with nothing from the call able to climb out of the folder."""
    day = datetime.fromtimestamp(started, UTC).strftime("%Y/%m/%d")
    return f"{day}/{_safe(queue or 'no-queue')}/{_safe(linkedid)}.wav"


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).replace("..", "_") or "_"


@dataclass(frozen=True)
class Kept:
    """A recording as retention sees it."""

    id: int
    queue: str | None
    caller_number: str | None
    started_at: datetime
    legal_hold: bool


def to_purge(
    rows: Iterable[Kept], settings: RecordingSettings, now: datetime, customer: str | None = None
) -> tuple[list[Kept], list[tuple[Kept, str]]]:
    """(to delete, kept with why): past its queue's retention (never under the legal minimum), or one customer's on request
    (their number however written, as caller IDs and the customers table compare it); never on hold."""
    delete: list[Kept] = []
    kept: list[tuple[Kept, str]] = []
    floor = timedelta(days=settings.min_retention_days)
    wanted = None if customer is None else normalise(customer)
    for row in rows:
        age = now - row.started_at
        if wanted is not None and normalise(row.caller_number) != wanted:
            continue
        if row.legal_hold:
            kept.append((row, "legal hold"))
        elif age < floor:
            if customer is not None:
                kept.append((row, f"younger than the {settings.min_retention_days}-day legal minimum"))
        elif customer is not None or age >= timedelta(days=max(settings.policy(row.queue).retention_days, settings.min_retention_days)):
            delete.append(row)
    return delete, kept
