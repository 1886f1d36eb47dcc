"""`callcenter playback` and `callcenter monitor` as a user runs them, as separate processes."""

from __future__ import annotations

import io
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

from callcenter.cli import main
from cti_panel.users import Users
from kernel.db import open_store
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
            # the IVR's callers (not those the dialplan's fallback queued while the engine was still starting)
            answered = (
                conn.execute(
                    text(
                        "select agent from calls c where outcome = 'answered' and queue is not null and exists"
                        " (select 1 from call_events e where e.linkedid = c.linkedid and e.kind = 'ivr_done')"
                    )
                )
                .scalars()
                .all()
            )
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


@pytest.fixture
def command(tmp_path, monkeypatch, capsys):
    """`callcenter ARGS` in this process, on a fresh database and tmp_path's callcenter.toml: (exit code, stdout, stderr)."""
    for name in [k for k in os.environ if k.startswith("CALLCENTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", f"sqlite:///{tmp_path}/cc.db")
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize(
    "content, message",
    [
        (b"number,name\n5511911112222,Ana\n5511933334444,Bia\n5511955556666,Caio\n5511977778888,Jo\xe3o\n", ":5: not UTF-8"),
        ("number,name,notes\n5511911112222,Ana," + "x" * 140_000 + "\n", ":2: not a CSV row: field larger than field limit"),
        ("number,name\n5511911112222,Ana\n+55 (11) 91111-2222,Ana Two\n", ":3: number 5511911112222 again (first on line 2)"),
        ("number,name,number\n5511911112222,Ana,5511933334444\n", ":1: column(s) number more than once"),
        ("number,name,notes\n5511911112222," + "N" * 100_000 + ",ok\n", ":2: name: 100000 characters, at most 200"),
        ("number,name\n" + "1" * 500 + ",Ana\n", ":2: number: 500 characters, at most 40"),
        ("number,name\n\u0665\u0665\u0661\u0661\u0669\u0661\u0661\u0661,Ana\n", ":2: number '٥٥١١٩١١١': digits 0-9 only"),
        ('number,name\n5511911112222,"Ana "Q" Souza"\n', ":2: not a CSV row: ',' expected after '\"'"),
        ("number,name\n5511911112222,Ana,ACME\n", ":2: 3 fields, the header has 2 (number,name)"),
        ("number,name,phone2\n5511911112222,Ana,5511933334444\n", ":1: unknown column(s) 'phone2'; the columns are number,name"),
        ("number,name,email\n5511911112222,Ana,ana at example\n", ":2: email 'ana at example': not an email address"),
    ],
    ids=[
        "late-utf8",
        "field-limit",
        "same-number",
        "column-twice",
        "long-name",
        "long-number",
        "arabic-digits",
        "stray-quote",
        "extra-field",
        "unknown-column",
        "email",
    ],
)
def test_a_bad_customers_file_stops_at_its_line_storing_nothing(command, tmp_path, content, message):
    path = tmp_path / "customers.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = command("customers", str(path))
    assert code == 1 and f"callcenter: {path}{message}" in err
    with create_engine(f"sqlite:///{tmp_path}/cc.db").connect() as conn:
        assert conn.execute(text("select count(*) from customers")).scalar() == 0


def test_customers_are_stored_as_written_even_what_a_spreadsheet_would_run(command, tmp_path):
    """No CSV of customers is ever written back, so a cell starting with = is kept as text (nothing to neutralise)."""
    path = tmp_path / "customers.csv"
    path.write_text("number,name,email,notes\n+55 (11) 91111-2222,=cmd|' /C calc'!A0,ana.souza@example.com.br,-2+3\n")
    assert command("customers", str(path))[0] == 0
    with create_engine(f"sqlite:///{tmp_path}/cc.db").connect() as conn:
        assert conn.execute(text("select number, name, email, notes from customers")).all() == [
            ("5511911112222", "=cmd|' /C calc'!A0", "ana.souza@example.com.br", "-2+3")
        ]


QUEUES = "[acd.queues.support]\n[acd.queues.sales]\n"


@pytest.mark.parametrize(
    "args, stdin, toml, message",
    [
        (("u8", "--role", "admin"), b"caf\xe9 au lait\n", "", "the password on stdin is not UTF-8"),
        (("u1", "--role", "admin"), b"x" * 1_000_000 + b"\n", "", "password: at most 1024 characters"),
        (("u2", "--role", "admin"), b"a long\x00password\n", "", "password: a control character"),
        (("s1", "--role", "supervisor", "--queues", "support", "nosuch"), b"a long password\n", QUEUES, "--queues 'nosuch': not a queue"),
        (("s2", "--role", "supervisor", "--queues", "a,b"), b"a long password\n", "", "queue 'a,b': letters, digits"),
        (("s3", "--role", "supervisor", "--queues", ""), b"a long password\n", "", "queue '': letters, digits"),
        (("a5", "--role", "agent", "--agent", "a|b,c", "--interface", "PJSIP/1"), b"a long password\n", "", "agent 'a|b,c': 1-120 of"),
        (("u11", "--role", "admin", "--name", "N" * 20_000), b"a long password\n", "", f"name '{'N' * 40}'...: at most 120 characters"),
        (
            ("u12", "--role", "admin", "--name", "Ana\nSouza"),
            b"a long password\n",
            "",
            "name 'Ana\\nSouza': at most 120 characters, on one line",
        ),
    ],
    ids=["not-utf8", "megabyte", "nul", "unknown-queue", "comma-queue", "empty-queue", "agent-pipe", "long-name", "newline-name"],
)
def test_a_user_the_panel_ami_or_login_could_not_carry_is_refused(command, tmp_path, args, stdin, toml, message):
    (tmp_path / "callcenter.toml").write_text(toml)
    code, _, err = command("users", "add", *args, "--password-stdin", stdin=stdin)
    assert code == 1 and f"callcenter: {message}" in err
    assert command("users", "list")[1] == "", "nobody added"


def test_without_a_terminal_the_password_is_refused_not_read_echoed(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")} | {
        "CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path}/u.db"
    }
    result = subprocess.run(
        cli("users", "add", "u10", "--role", "admin"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # no controlling terminal, as under cron or a deploy script
    )
    assert result.returncode == 1
    assert "callcenter: no terminal to ask the password on: give it on stdin with --password-stdin" in result.stderr
    assert "Traceback" not in result.stderr and "GetPassWarning" not in result.stderr


def test_a_password_too_long_for_anyone_is_refused_at_login_before_scrypt(command, monkeypatch):
    assert command("users", "add", "ana", "--role", "admin", "--password-stdin", stdin=b"a long password\n")[0] == 0
    users = Users(open_store(os.environ["CALLCENTER_DATABASE_URL"]).sessions)
    hashed: list[int] = []
    monkeypatch.setattr("cti_panel.users.check_password_hash", lambda stored, password: hashed.append(len(password)) or False)
    assert users.check("ana", "x" * 1_000_000) is None and hashed == []
    assert users.check("ana", "x" * 1024) is None and hashed == [1024]


def test_a_drawing_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    flow = Path(__file__).resolve().parent.parent / "contrib" / "ivr" / "main.yaml"
    proc = subprocess.Popen(cli("ivr", "draw", "--dot", str(flow)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()  # as `| head -c1` does, before the drawing is written
    assert proc.wait(timeout=30) == 1, "Python's exit code on a broken pipe"
    assert proc.stderr.read() == b""
