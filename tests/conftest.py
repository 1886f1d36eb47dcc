"""Shared fixtures: the recorded Asterisk traces, and real PostgreSQL when it runs here."""

from __future__ import annotations

import csv
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from reports.cdr import CDR_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
TRACES = Path(os.environ.get("CALLCENTER_TRACES", ROOT.parent / "shared" / "ami-traces"))
PG_ADMIN_URL = os.environ.get("CALLCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def trace_names() -> list[str]:
    """Every recorded scenario, by name."""
    if not TRACES.is_dir():
        raise RuntimeError(f"recorded traces not found at {TRACES}: set CALLCENTER_TRACES")
    return sorted(p.stem for p in TRACES.glob("*.jsonl"))


@dataclass(frozen=True)
class QueueLogLine:
    """One app_queue log line: epoch|callid|queue|agent|event|data..."""

    epoch: int
    callid: str
    queue: str
    agent: str
    event: str
    data: list[str]


def queue_log(name: str) -> list[QueueLogLine]:
    """The queue_log app_queue wrote during a scenario."""
    lines = []
    for raw in (TRACES / f"{name}.queue_log").read_text().splitlines():
        epoch, callid, queue, agent, event, *data = raw.split("|")
        lines.append(QueueLogLine(int(epoch), callid, queue, agent, event, data))
    return lines


def cdr_rows(name: str) -> list[dict[str, str]]:
    """The CDR rows (cdr_csv, GMT) Asterisk wrote during a scenario."""
    with open(TRACES / f"{name}.Master.csv", newline="") as handle:
        return [dict(zip(CDR_COLUMNS, row)) for row in csv.reader(handle)]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """A reachable PostgreSQL server's admin URL, or a skip saying why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc.orig}); set CALLCENTER_TEST_PG_URL")
    engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A migrated call store on SQLite and on PostgreSQL (skipped where PostgreSQL is not running)."""
    from kernel.db import CallStore, make_engine, migrate

    url = f"sqlite:///{tmp_path}/r.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    migrate(engine)
    yield CallStore(engine)
    engine.dispose()
