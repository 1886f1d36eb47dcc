"""Migrations and a round trip of finished calls on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kernel.db import CallStore, downgrade, make_engine, migrate
from kernel.exceptions import DatabaseError
from kernel.models import Agent, AgentStateChange, Base, CallEvent
from pbx.trace import replay_messages
from pbx.tracker import CallTracker, event_time
from tests.conftest import TRACES, trace_names


def all_calls():
    tracker = CallTracker()
    records, events = [], []
    for name in trace_names():
        for t, m in replay_messages(TRACES / f"{name}.jsonl"):
            if getattr(m, "event", None):
                for e in tracker.feed(m, event_time(m, t)):
                    events.append(e)
                    if e.record:
                        records.append(e.record)
    return records, events


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path}/cc.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_migrations_build_exactly_the_models_and_go_back(engine):
    migrate(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"calls", "call_events", "agents", "agent_state_changes"} <= tables and "queues" not in tables, "0004 dropped the unused queues"
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)


def test_round_trip_of_real_calls_is_exact_and_idempotent(engine):
    migrate(engine)
    store = CallStore(engine)
    records, events = all_calls()
    assert store.save(records, events) == len(records) == 6
    assert store.save(records) == 0
    rows = {row.linkedid: row for row in store.calls()}
    for record in records:
        row = rows[record.linkedid]
        assert row.started_at.tzinfo is not None and row.started_at.utcoffset().total_seconds() == 0
        assert abs(row.started_at.timestamp() - record.started_at) < 1e-3
        assert abs(row.ended_at.timestamp() - record.ended_at) < 1e-3
        assert (row.outcome, row.agent, row.queue, row.hangup_by, row.ivr_digits, row.caller_name) == (
            record.outcome,
            record.agent,
            record.queue,
            record.hangup_by,
            record.ivr_digits,
            record.caller_name,
        )
        assert row.wait_s == record.wait_s and row.talk_s == record.talk_s
    with store.sessions() as session:
        kinds = [e.kind for e in session.query(CallEvent).filter_by(linkedid="1795380098.0").order_by(CallEvent.id)]
    assert kinds == ["call_started", "dtmf", "queue_joined", "agent_ringing", "answered"]


def test_agent_state_changes_round_trip_in_utc(engine):
    from datetime import datetime, timedelta

    migrate(engine)
    store = CallStore(engine)
    at = datetime(2026, 11, 22, 17, 30, tzinfo=timezone(timedelta(hours=-3)))
    with store.sessions.begin() as session:
        agent = Agent(name="Alice", interface="PJSIP/1001")
        agent.state_changes.append(AgentStateChange(state="paused", reason="lunch", queue="support", at=at))
        session.add(agent)
    with store.sessions() as session:
        [change] = session.get(Agent, agent.id).state_changes
    assert change.at == at and change.at.utcoffset() == timedelta(0) and change.reason == "lunch"


def test_unreachable_database_is_a_clear_error():
    with pytest.raises(DatabaseError, match="cannot migrate postgresql"):
        migrate(make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))


@pytest.mark.parametrize(
    "content", [b"just some text\n", bytes(range(256)) * 32, b"SQLite format 3\x00 but no more"], ids=["text", "bytes", "header"]
)
def test_a_file_that_is_no_database_is_named_and_left_as_it_was(tmp_path, content):
    path = tmp_path / "cc.db"
    path.write_bytes(content)
    with pytest.raises(DatabaseError, match=f"^{path} is not a SQLite database$"):
        migrate(make_engine(f"sqlite:///{path}"))
    assert path.read_bytes() == content


def test_a_url_whose_driver_is_missing_says_so_and_what_works():
    with pytest.raises(DatabaseError, match=r"mysql://u:\*\*\*@127.0.0.1:1/x: its driver \(MySQLdb\) is not installed: .*sqlite:///FILE"):
        make_engine("mysql://u:secret@127.0.0.1:1/x")


def test_a_database_whose_folder_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DatabaseError, match=f"cannot make the database's folder {tmp_path}/a-file: a file is in the way"):
        make_engine(f"sqlite:///{tmp_path}/a-file/cc.db")


def test_a_database_on_a_read_only_mount_is_named_read_only(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    engine = make_engine(f"sqlite:///{folder}/cc.db")
    migrate(engine)
    engine.dispose()
    read_only = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "sh", "-c", read_only], capture_output=True).returncode:
        pytest.skip("cannot mount a folder read-only here (needs unshare and root)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")} | {
        "CALLCENTER_DATABASE_URL": f"sqlite:///{folder}/cc.db"
    }
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{read_only} && exec "$0" -m callcenter.cli users list', sys.executable],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and f"callcenter: {folder}/cc.db: read-only" in result.stderr
