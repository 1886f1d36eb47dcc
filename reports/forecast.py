"""A past day's intervals as the staffing forecast for the same weekday a week later (Erlang C per interval)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reports.erlang import agents_needed


def forecast(
    report: dict[str, Any], interval_seconds: int, target_sl: float, answer_within: float, queue: str | None = None
) -> list[dict[str, Any]]:
    """Per interval and queue: last week's offered calls and handle time -> agents needed next week."""
    rows = []
    day_aht = {name: q["aht_s"] for name, q in report["queues"].items()}
    for interval in report["intervals"]:
        if queue is not None and interval["queue"] != queue:
            continue
        aht = interval["aht_s"] or day_aht.get(interval["queue"])
        per_hour = interval["offered"] * 3600.0 / interval_seconds
        start = datetime.fromisoformat(interval["start"].replace("Z", "+00:00")) + timedelta(days=7)
        row: dict[str, Any] = {
            "start": start.isoformat().replace("+00:00", "Z"),
            "queue": interval["queue"],
            "offered": interval["offered"],
            "calls_per_hour": round(per_hour, 2),
            "aht_s": aht,
        }
        if aht:
            row.update(agents_needed(per_hour, aht, target_sl, answer_within).to_json())
        else:
            row.update({"agents": 0, "service_level": None, "asa_s": None, "occupancy": None, "p_wait": None, "erlangs": 0.0})
        rows.append(row)
    return rows
