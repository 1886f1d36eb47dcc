"""Scheduled report jobs: each finished interval and each finished day written as CSV and HTML into a folder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from kernel.db import CallStore
from reports.engine import ReportEngine
from reports.ivr import ivr_section, stored_ivr_rows
from reports.metrics import Options
from reports.render import as_csv, as_html
from reports.store import stored_stream


def write_report(store: CallStore, folder: Path, name: str, title: str, options: Options) -> list[Path]:
    """One report over options.start..options.end, as name.csv and name.html."""
    engine = ReportEngine()
    engine.load_stream(stored_stream(store, options.start, options.end))
    data = engine.report(options)
    data["ivr"] = ivr_section(stored_ivr_rows(store, options.start, options.end))
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.csv", folder / f"{name}.html"]
    paths[0].write_text(as_csv(data), encoding="utf-8")
    paths[1].write_text(as_html(data, title), encoding="utf-8")
    return paths


def daily(store: CallStore, folder: Path, day: date, options: Options, tz: ZoneInfo) -> list[Path]:
    """The report of one local day, by interval."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = start + timedelta(days=1)
    return write_report(
        store,
        folder,
        f"daily-{day.isoformat()}",
        f"Daily report {day.isoformat()} ({tz.key})",
        replace(options, start=start.timestamp(), end=end.timestamp()),
    )


def interval(store: CallStore, folder: Path, start: float, options: Options, tz: ZoneInfo) -> list[Path]:
    """The report of one interval that has ended."""
    local = datetime.fromtimestamp(start, tz)
    name = f"interval-{local.strftime('%Y-%m-%dT%H%M')}"
    return write_report(
        store,
        folder,
        name,
        f"Interval from {local.strftime('%Y-%m-%d %H:%M')} ({tz.key})",
        replace(options, start=start, end=start + options.interval_seconds),
    )


def run_due(store: CallStore, folder: Path, options: Options, tz: ZoneInfo, since: float, now: float) -> list[Path]:
    """Write every interval and day that ended after `since` and by `now`; returns the files written."""
    written: list[Path] = []
    step = options.interval_seconds
    boundary = (since // step + 1) * step
    while boundary <= now:
        written += interval(store, folder, boundary - step, options, tz)
        boundary += step
    day = datetime.fromtimestamp(since, tz).date()
    while True:
        ends = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)
        if ends.timestamp() > now:
            break
        if ends.timestamp() > since:
            written += daily(store, folder, day, options, tz)
        day += timedelta(days=1)
    return written


async def schedule(
    store: CallStore,
    folder: Path,
    options: Options,
    tz: ZoneInfo,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.time,
    poll: float = 5.0,
) -> None:
    """Run the jobs as intervals and days end, until `stop` is set."""
    since = clock()
    while not stop.is_set():
        try:
            async with asyncio.timeout(poll):
                await stop.wait()
        except TimeoutError:
            pass
        now = clock()
        await asyncio.to_thread(run_due, store, folder, options, tz, since, now)
        since = now
