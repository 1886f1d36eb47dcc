"""A report as a table, CSV, JSON or an HTML page with charts (inline SVG: no scripts, no network)."""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

QUEUE_COLUMNS = [
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timed_out",
    "transferred",
    "transferred_in",
    "asa_s",
    "avg_wait_s",
    "max_wait_s",
    "avg_talk_s",
    "acw_s",
    "aht_s",
    "abandon_rate_pct",
    "service_level_pct",
    "asterisk_sl_pct",
    "asterisk_sl2_pct",
]
AGENT_COLUMNS = ["answered", "talk_s", "avg_talk_s", "acw_s", "aht_s", "transferred", "ring_no_answer", "logged_in_s", "occupancy_pct"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:g}s" for k, v in value.items()) or "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table(title: str, rows: dict[str, dict[str, Any]], columns: list[str]) -> str:
    header = [title] + columns
    body = [[name] + [_cell(row.get(c)) for c in columns] for name, row in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)] if body else [len(h) for h in header]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body])


def as_table(report: dict[str, Any]) -> str:
    """Queues then agents, aligned for a terminal."""
    parts = [_table("queue", report["queues"], QUEUE_COLUMNS)]
    if report["agents"]:
        parts.append(_table("agent", report["agents"], AGENT_COLUMNS + ["pause_s_by_reason"]))
    ivr = report.get("ivr")
    if ivr and ivr["menu"]:
        parts.append(_table("ivr keys", ivr["menu"], ["calls", "reached_queue", "ended_in_ivr", "drop_off_pct"]))
        parts.append("calls outside the queues: " + (", ".join(f"{k} {v}" for k, v in ivr["by_outcome"].items()) or "none"))
    return "\n\n".join(parts) + "\n"


def as_csv(report: dict[str, Any]) -> str:
    """One row per queue, agent and interval, with a `section` column."""
    out = io.StringIO()
    menu = report.get("ivr", {}).get("menu", {})
    columns = sorted(
        {k for rows in (report["queues"].values(), report["agents"].values(), report["intervals"], menu.values()) for r in rows for k in r}
    )
    writer = csv.DictWriter(out, fieldnames=["section", "name"] + [c for c in columns if c not in ("queue",)], extrasaction="ignore")
    writer.writeheader()
    for section in ("queues", "agents"):
        for name, row in report[section].items():
            writer.writerow(
                {"section": section[:-1], "name": name, **{k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}}
            )
    for row in report["intervals"]:
        writer.writerow({"section": "interval", "name": f"{row['queue']}@{row['start']}", **row})
    for keys, row in menu.items():
        writer.writerow({"section": "ivr", "name": keys, **row})
    return out.getvalue()


def as_json(report: dict[str, Any]) -> str:
    """The report data as JSON."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _bars(title: str, labels: list[str], series: list[tuple[str, list[float], str]], unit: str = "", stacked: bool = True) -> str:
    width, height, pad = 760, 220, 40
    totals = [sum(s[1][i] for s in series) if stacked else max(s[1][i] for s in series) for i in range(len(labels))] or [0]
    top = max(max(totals), 1e-9)
    step = (width - 2 * pad) / max(len(labels), 1)
    shapes = []
    for i, label in enumerate(labels):
        base = 0.0
        for index, (name, values, colour) in enumerate(series):
            value = values[i]
            h = (height - 2 * pad) * value / top
            x = pad + i * step + (0 if stacked else index * step / len(series))
            w = step * (0.8 if stacked else 0.8 / len(series))
            y = height - pad - h - (base if stacked else 0)
            shapes.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(label)} {escape(name)}: {value:g}{unit}</title></rect>'
            )
            if stacked:
                base += h
        if len(labels) <= 24 or i % max(1, len(labels) // 12) == 0:
            shapes.append(f'<text x="{pad + i * step:.1f}" y="{height - pad + 14}" font-size="10">{escape(label)}</text>')
    legend = " ".join(f'<tspan fill="{c}">&#9632; {escape(n)}</tspan>' for n, _, c in series)
    return (
        f'<figure><figcaption>{escape(title)}</figcaption><svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
        f'<text x="{pad}" y="16" font-size="12">{legend} (max {top:g}{unit})</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>{"".join(shapes)}</svg></figure>'
    )


def as_html(report: dict[str, Any], title: str = "Call center report") -> str:
    """A page a manager would rather look at than read: volume, service level and ASA per interval, then the tables."""
    sections = []
    for queue in report["queues"]:
        rows = [r for r in report["intervals"] if r["queue"] == queue]
        labels = [r["start"][11:16] if len({r["start"][:10] for r in rows}) == 1 else r["start"][:16].replace("T", " ") for r in rows]
        sections.append(f"<h2>{escape(queue)}</h2>")
        sections.append(
            _bars(
                "Calls per interval",
                labels,
                [
                    ("answered", [r["answered"] for r in rows], "#2e7d32"),
                    ("abandoned", [r["abandoned"] + r["short_abandoned"] for r in rows], "#c62828"),
                    ("timed out", [r["timed_out"] for r in rows], "#ef6c00"),
                ],
            )
        )
        sections.append(
            _bars(
                "Service level per interval", labels, [("service level", [r["service_level_pct"] or 0 for r in rows], "#1565c0")], unit="%"
            )
        )
        sections.append(_bars("ASA per interval", labels, [("ASA", [r["asa_s"] or 0 for r in rows], "#6a1b9a")], unit="s"))
    table = escape(as_table(report))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}figure{margin:1em 0}figcaption{font-weight:bold}pre{font-size:12px}</style>"
        f"</head><body><h1>{escape(title)}</h1>{''.join(sections)}<h2>Figures</h2><pre>{table}</pre>"
        "<p>Definitions: docs/metrics.md</p></body></html>\n"
    )


RENDERERS = {"table": as_table, "csv": as_csv, "json": as_json, "html": as_html}
