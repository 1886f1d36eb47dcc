"""`callcenter playback` and `callcenter monitor` as a user runs them, as separate processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.conftest import TRACES
from tests.waiting import until

SECRET = "cli-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "callcenter.cli", *args]


@pytest.fixture
def playback(tmp_path):
    proc = subprocess.Popen(
        cli("playback", str(TRACES / "answered_caller_hangs_up.jsonl"), "--port", "0", "--secret", SECRET, "--speed", "10"),
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    banner = proc.stdout.readline()
    assert "waiting for a client" in banner
    yield int(re.search(r":(\d+);", banner).group(1))
    proc.kill()
    proc.wait()


def env_for(port: int, tmp_path, secret: str = SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(
        CALLCENTER_AMI_PORT=str(port),
        CALLCENTER_AMI_USERNAME="callcenter",
        CALLCENTER_AMI_SECRET=secret,
        CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/cc.db",
    )
    return env


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_monitor_prints_the_call_and_stores_it(playback, tmp_path, stop):
    """Stopped by Ctrl-C, or by SIGTERM as systemctl and docker stop a service (which used to kill it on the spot)."""
    proc = subprocess.Popen(
        cli("monitor", "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(playback, tmp_path), cwd=tmp_path
    )
    kinds = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        kinds.append(event["kind"])
        if event["kind"] == "call_ended":
            assert event["record"]["agent"] == "Bob" and event["record"]["outcome"] == "answered"
            break
    proc.send_signal(stop)
    assert proc.wait(timeout=10) == 0, "a clean stop"
    assert kinds == ["call_started", "dtmf", "queue_joined", "agent_ringing", "answered", "call_ended"]
    with create_engine(f"sqlite:///{tmp_path}/cc.db").connect() as conn:
        assert conn.execute(text("select caller_number, outcome from calls")).all() == [("5511999990001", "answered")]
    assert SECRET not in proc.stderr.read()


def test_monitor_with_wrong_secret_exits_3_with_a_clear_message(playback, tmp_path):
    result = subprocess.run(
        cli("monitor", "--no-store"),
        capture_output=True,
        text=True,
        timeout=30,
        env=env_for(playback, tmp_path, secret="Wr0ng-Canary-Secret"),
        cwd=tmp_path,
    )
    assert result.returncode == 3
    assert "refused login for user 'callcenter': Authentication failed" in result.stderr
    assert "Wr0ng-Canary-Secret" not in result.stderr


def test_monitor_without_a_secret_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    result = subprocess.run(cli("monitor"), capture_output=True, text=True, timeout=30, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "ami.secret: missing" in result.stderr


def test_a_recorded_simulator_session_replays_to_the_same_calls(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_AMI_SECRET=SECRET, CALLCENTER_AMI_USERNAME="callcenter", CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/m.db")
    port = free_port()
    env.update(CALLCENTER_AMI_PORT=str(port), CALLCENTER_AMI_RECONNECT_MIN="0.05", CALLCENTER_AMI_RECONNECT_MAX="0.1")
    trace = tmp_path / "session.jsonl"
    log, printed = tmp_path / "monitor.log", tmp_path / "monitor.jsonl"
    with open(log, "w") as err, open(printed, "w") as out:
        monitor = subprocess.Popen(cli("monitor", "--json", "--record", str(trace)), stdout=out, stderr=err, env=env, cwd=tmp_path)
    until(lambda: "retrying in" in log.read_text(), 30, "the monitor trying to connect")
    sim = subprocess.Popen(
        cli("simulate", "--speed", "300", "--minutes", "10", "--agents", "3", "--calls-per-minute", "6"),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert sim.stdout.readline().startswith("Simulator on 127.0.0.1:")
    sim_out, _ = sim.communicate(timeout=60)
    until(lambda: "reconnecting to" in log.read_text(), 20, "the monitor read the simulator's last event")
    monitor.send_signal(signal.SIGINT)
    monitor.wait(timeout=20)
    events = [json.loads(line) for line in printed.read_text().splitlines()]
    live = [e["record"] for e in events if e["kind"] == "call_ended" and "record" in e]
    replayed = [
        json.loads(line)
        for line in subprocess.run(cli("replay", str(trace)), capture_output=True, text=True, check=True).stdout.splitlines()
    ]
    assert len(live) > 5
    assert [(r["linkedid"], r["outcome"], r["agent"]) for r in replayed] == [(r["linkedid"], r["outcome"], r["agent"]) for r in live]
    assert "calls generated" in sim_out


def test_engine_stores_calls_and_agent_states_from_a_live_pbx(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    port = free_port()
    env.update(
        CALLCENTER_AMI_SECRET=SECRET,
        CALLCENTER_AMI_USERNAME="callcenter",
        CALLCENTER_AMI_PORT=str(port),
        CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/e.db",
        CALLCENTER_AMI_RECONNECT_MIN="0.05",
        CALLCENTER_AMI_RECONNECT_MAX="0.1",
        CALLCENTER_PANEL_PORT="0",
    )
    log = tmp_path / "engine.log"
    with open(log, "w") as err:
        engine = subprocess.Popen(
            cli("engine", "--flows", str(Path(__file__).resolve().parent.parent / "contrib" / "ivr" / "main.yaml")),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    assert engine.stdout.readline().startswith("Panel: http://127.0.0.1:"), "the engine serves the panel on a free port"
    sim = subprocess.Popen(
        cli("simulate", "--port", str(port), "--speed", "150", "--minutes", "4", "--agents", "3", "--calls-per-minute", "8"),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert sim.stdout.readline().startswith("Simulator on")
    sim.communicate(timeout=60)
    until(lambda: "reconnecting to" in log.read_text(), 20, "the engine read the simulator's last event")
    engine.send_signal(signal.SIGINT)
    engine.wait(timeout=20)
    with create_engine(env["CALLCENTER_DATABASE_URL"]).connect() as conn:
        calls = conn.execute(text("select count(*) from calls")).scalar()
        states = dict(conn.execute(text("select state, count(*) from agent_state_changes group by state")).all())
    assert calls > 5
    assert states.get("ringing", 0) > 0 and states.get("on_call", 0) > 0 and states.get("available", 0) > 0


def test_engine_in_native_mode_answers_simulated_traffic_with_our_acd(tmp_path):
    root = Path(__file__).resolve().parent.parent
    dialplan = tmp_path / "extensions.conf"
    dialplan.write_text(
        (root / "contrib" / "asterisk" / "extensions.conf").read_text()
        + "\n"
        + (root / "pbx" / "simulator" / "etc" / "extensions.conf").read_text()
    )
    conf = tmp_path / "callcenter.toml"
    agents = "".join(
        f'[[acd.agents]]\nname = "agent{i}"\ninterface = "Local/{1000 + i}@sim-agents/n"\nqueues = ["support", "sales"]\n\n'
        for i in range(1, 5)
    )
    conf.write_text(
        f'[acd]\nmode = "native"\n[acd.queues.support]\nstrategy = "longest_idle"\n[acd.queues.sales]\nstrategy = "round_robin"\n\n{agents}'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    port = free_port()
    env.update(
        CALLCENTER_AMI_SECRET=SECRET,
        CALLCENTER_AMI_USERNAME="callcenter",
        CALLCENTER_AMI_PORT=str(port),
        CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/n.db",
        CALLCENTER_CONFIG=str(conf),
        CALLCENTER_PANEL_PORT="0",
    )
    sim = subprocess.Popen(
        cli(
            "simulate",
            "--port",
            str(port),
            "--speed",
            "20",
            "--agents",
            "1",
            "--calls-per-minute",
            "12",
            "--dialplan",
            str(dialplan),
            "--entry",
            "Local/s@callcenter-ivr",
        ),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert sim.stdout.readline().startswith("Simulator on")
    engine = subprocess.Popen(
        cli("engine", "--flows", str(root / "tests" / "data" / "native.yaml"), "--heartbeat-every", "0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    database = create_engine(env["CALLCENTER_DATABASE_URL"])

    def stored():
        with database.connect() as conn:
            answered = conn.execute(text("select agent from calls where outcome = 'answered' and queue is not null")).scalars().all()
            states = {row[0] for row in conn.execute(text("select state from agent_state_changes"))}
            steps = conn.execute(text("select count(*) from call_events where kind = 'ivr_done'")).scalar()
        return answered, states, steps

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and engine.poll() is None:
        try:
            answered, states, steps = stored()
        except OperationalError:  # the engine has not made its tables yet
            answered, states, steps = [], set(), 0
        if answered and {"ringing", "on_call"} <= states and steps:
            break
        time.sleep(0.2)
    engine.send_signal(signal.SIGINT)
    engine.wait(timeout=20)
    sim.send_signal(signal.SIGINT)
    sim.wait(timeout=20)
    answered, states, steps = stored()
    assert answered and all(agent.startswith("agent") for agent in answered), "calls were answered by the native ACD's agents"
    assert {"ringing", "on_call"} <= states, "the native ACD's agent states were stored"
    assert steps > 0, "the IVR handed calls over"
