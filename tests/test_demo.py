"""The main job: `callcenter demo` headless at high speed, checked against the simulator's own ground truth, with an agent in a browser."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.waiting import until

DEMO = ["--agents", "12", "--calls-per-minute", "6", "--speed", "40"]


def start(tmp_path: Path, minutes: str | None) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_PANEL_PORT"] = "0"
    demo = subprocess.Popen(
        [sys.executable, "-m", "callcenter.cli", "demo", *DEMO, *(["--minutes", minutes] if minutes else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    banner: dict[str, str] = {}
    for line in demo.stdout:
        if line.startswith("Demo:"):
            banner["day"] = re.search(r"from (\S+ \S+)", line).group(1)
        elif line.startswith("Panel:"):
            banner["url"] = line.split()[1]
        elif "password" in line:
            role, login, _, password = line.split()
            banner[login] = password
        elif line.startswith("Agents:"):
            return demo, banner
    raise AssertionError("the demo did not print its banner")


def finish(demo: subprocess.Popen) -> list[str]:
    """The demo's output once it has stopped by itself (killed, and the test failed, if it has not within two minutes)."""
    try:
        out, _ = demo.communicate(timeout=120)
    except subprocess.TimeoutExpired as exc:
        demo.kill()
        out, _ = demo.communicate()
        raise AssertionError("the demo did not stop within 120 s; its last lines:\n" + "\n".join(out.splitlines()[-20:])) from exc
    assert demo.returncode == 0
    return out.splitlines()


def stored_calls(folder: Path) -> int:
    """Calls in the demo's database (var/callcenter.db under where it runs)."""
    with closing(sqlite3.connect(folder / "var" / "callcenter.db")) as db:
        return db.execute("select count(*) from calls").fetchone()[0]


def per_queue(truth: str) -> dict[str, tuple[int, int]]:
    return {name: (int(counts.split()[0]), int(counts.split()[2])) for name, counts in (part.split(": ") for part in truth.split("; ")[1:])}


def log_in(browser, banner: dict[str, str], login: str):
    page = browser.new_context().new_page()
    page.goto(f"{banner['url']}/login")
    page.fill("#login", login)
    page.fill("#password", banner[login])
    page.click("#submit")
    return page


def times_in_state(boss) -> list[int]:
    cells = boss.locator("#agents tbody tr td:nth-child(3)").all_text_contents()
    return [sum(int(part) * 60**i for i, part in enumerate(reversed(cell.split(":")))) for cell in cells]


def test_the_demo_runs_a_day_the_reports_match_and_an_agent_gets_pops(tmp_path, browser):
    demo, banner = start(tmp_path, "15")
    pops: list[str] = []
    boss = log_in(browser, banner, "supervisor")
    boss.wait_for_selector("#agents tbody td.state-on_call", timeout=20_000)
    until(lambda: any(times_in_state(boss)), 10, "the supervisor's time-in-state column counting")
    assert max(times_in_state(boss)) < 15 * 60, (
        f"time in state runs on the simulated day's clock, not the browser's: {times_in_state(boss)}"
    )
    assert "08:00" in boss.text_content("#chart"), "the chart's hours are São Paulo's, where the day starts at 08:00"
    page = log_in(browser, banner, "agente1")
    page.click("#go-available")
    page.wait_for_selector("#pop-name:not(:empty)", timeout=30_000)
    pops.append(page.text_content("#pop-name"))
    out = finish(demo)
    assert pops and pops[0], "the agent in the browser got a screen pop with a name"

    truth = next(line for line in out if line.startswith("Simulator:"))
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "callcenter.cli", "report", "--format", "json"], capture_output=True, text=True, cwd=tmp_path, check=True
        ).stdout
    )
    for queue, (answered, abandoned) in per_queue(truth).items():
        # app_queue counts a caller who hangs up and one its timeout lets go alike as abandoned (both QueueCallerAbandon)
        figures = report["queues"].get(queue, {"answered": 0, "abandoned": 0, "short_abandoned": 0, "timed_out": 0})
        gone = figures["abandoned"] + figures["short_abandoned"] + figures["timed_out"]
        assert (figures["answered"], gone) == (answered, abandoned), queue
    stored = int(next(line for line in out if "calls stored" in line).split()[0])
    assert stored == int(truth.split()[1]) > 50, "every generated call was stored"
    assert report["agents"].get("agente1", {}).get("answered", 0) >= 1, "the browser agent's call is in the report"
    assert any(p.suffix == ".html" for p in (tmp_path / "var" / "reports").iterdir()), "the report jobs wrote interval pages"
    listed = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "recordings", "list"], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout.splitlines()
    assert listed and all(" stored " in line for line in listed), "recordings appeared, every one stored"

    again, banner2 = start(tmp_path, None)
    until(lambda: stored_calls(tmp_path) > stored, 60, "a call of the second run stored")
    again.send_signal(signal.SIGINT)
    out2 = finish(again)
    assert banner2["day"] > banner["day"] and banner2["agente1"] == banner["agente1"], "a second start continues the same day and logins"
    generated = int(next(line for line in out2 if line.startswith("Simulator:")).split()[1])
    assert generated > 0 and int(next(line for line in out2 if "calls stored" in line).split()[0]) == stored + generated, (
        "Ctrl-C finished and stored every call of the second run, next to the first run's"
    )


@pytest.mark.parametrize(
    "today, day",
    [("2026-12-02", "2026-12-02"), ("2026-12-06", "2026-12-04"), ("2026-12-05", "2026-12-04"), ("2026-12-26", "2026-12-24")],
)
def test_the_demo_day_is_a_working_day_of_the_ivr(tmp_path, today, day):
    """On a weekend or a holiday the demo's menu is closed: the day it simulates is the last working day before."""
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from callcenter.demo import day_start
    from kernel.db import CallStore, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path}/d.db")
    migrate(engine)
    tz = ZoneInfo("America/Sao_Paulo")
    now = datetime.fromisoformat(today).replace(hour=15, tzinfo=tz).timestamp()
    start = datetime.fromtimestamp(day_start(CallStore(engine), now, {date(2026, 12, 25)}), tz)
    assert (start.date().isoformat(), start.hour, start.minute) == (day, 8, 0)
