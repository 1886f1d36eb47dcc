"""The real Asterisk for the real-PBX tier: the build in ../shared/asterisk (or $CALLCENTER_TEST_ASTERISK) in a scratch folder.

`Asterisk` lays out a scratch folder with the files of `contrib/asterisk/` as
shipped (the least-privilege AMI user of its `manager.conf` on a free port,
with a random secret), the generated prompts, and the test-only contexts of
`tests/data/realpbx/` (caller scripts and agent phones as Local channels);
starts it, answers CLI commands, reads the queue_log and CDR it writes, and
originates test callers through a second, test-only AMI user (`tester`), so
the engine under test keeps only its own least-privilege login.
"""

from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

from pbx.client import ClientOptions
from pbx.codec import AMICodec, Message, encode

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "realpbx"
CONTRIB = ROOT / "contrib" / "asterisk"
TESTER = ("tester", "tester-secret")
CDR_FIELDS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
              "start", "answer", "end", "duration", "billsec", "disposition", "amaflags", "uniqueid", "userfield"]


def run_script() -> Path | None:
    """The `run` script of the Asterisk build to test against, or None when there is none."""
    named = os.environ.get("CALLCENTER_TEST_ASTERISK")
    path = Path(named) if named else ROOT.parent / "shared" / "asterisk"
    path = path / "run" if path.is_dir() else path
    return path if path.is_file() else None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def until(check: Callable[[], object], seconds: float = 15.0, what: str = "condition") -> object:
    """Wait for `check()` to be truthy (polling), or fail naming what was awaited."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not met within {seconds:g} s")


class Asterisk:
    """One real Asterisk in `folder`, configured from contrib/asterisk plus `extras` (see the `run` script's EXTRA forms)."""

    def __init__(self, folder: Path, extras: Iterable[str | Path] = (), manager: Path = CONTRIB / "manager.conf") -> None:
        script = run_script()
        if script is None:
            raise FileNotFoundError("no Asterisk build: ../shared/asterisk/run not found and CALLCENTER_TEST_ASTERISK not set")
        self.script, self.folder = script, folder
        self.port = free_port()
        self.secret = secrets.token_hex(12)
        conf = folder / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        shipped = manager.read_text().replace("port = 5038", f"port = {self.port}")
        shipped = shipped.replace("CHANGE-ME-long-random-secret", self.secret)
        tester = (f"\n[{TESTER[0]}]\nsecret = {TESTER[1]}\ndeny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
                  "read = all\nwrite = all\n")
        (conf / "manager.conf").write_text(shipped + tester)
        self.extras = [str(conf / "manager.conf"), *(str(e) for e in extras)]
        self.run = folder / "run"
        self._tester: socket.socket | None = None
        self._codec = AMICodec()
        self._ids = 0

    # lifecycle ---------------------------------------------------------------------
    def _script(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run([str(self.script), *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "AMI_PORT": str(self.port)})
        if done.returncode != 0:
            raise RuntimeError(f"{self.script} {args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> "Asterisk":
        """Lay out the scratch folder and start; returns once Asterisk is fully booted."""
        self._script("start", str(self.run), *self.extras)
        return self

    def stop(self) -> None:
        """`core stop now` (then a kill if needed)."""
        self.close_tester()
        self._script("stop", str(self.run))

    def crash(self) -> None:
        """Kill -9, as a power cut or a crash would."""
        self.close_tester()
        pid = int((self.run / "run" / "asterisk.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        until(lambda: not _alive(pid), 10, "Asterisk killed")

    def cli(self, command: str) -> str:
        """One CLI command's output."""
        return self._script("cli", str(self.run), command)

    def options(self) -> ClientOptions:
        """How the engine logs in: the shipped least-privilege user."""
        return ClientOptions("127.0.0.1", self.port, "callcenter", self.secret, ping_interval=2.0, ping_timeout=2.0,
                             reconnect_min=0.2, reconnect_max=1.0)

    # what Asterisk wrote -----------------------------------------------------------------
    def queue_log(self) -> list[list[str]]:
        """queue_log lines split on '|'."""
        path = self.run / "log" / "queue_log"
        return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []

    def cdr(self) -> list[dict[str, str]]:
        """The CDR rows cdr_csv wrote."""
        path = self.run / "log" / "cdr-csv" / "Master.csv"
        if not path.exists():
            return []
        with open(path, newline="") as handle:
            return [dict(zip(CDR_FIELDS, row)) for row in csv.reader(handle)]

    # the test's own AMI user -------------------------------------------------------------
    def action(self, fields: dict[str, str], timeout: float = 10.0) -> Message:
        """Send one action as the tester user and return its response."""
        if self._tester is None:
            self._tester = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            self._codec = AMICodec()
            self._tester.sendall(encode({"Action": "Login", "Username": TESTER[0], "Secret": TESTER[1], "Events": "off",
                                         "ActionID": "login"}))
            self._response("login", timeout)
        self._ids += 1
        action_id = f"t{self._ids}"
        self._tester.sendall(encode({**fields, "ActionID": action_id}))
        return self._response(action_id, timeout)

    def _response(self, action_id: str, timeout: float) -> Message:
        assert self._tester is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for item in self._codec.feed(self._tester.recv(65536)):
                if isinstance(item, Message) and item.get("ActionID") == action_id and "Response" in item:
                    return item
        raise AssertionError(f"no response to {action_id} within {timeout} s")

    def close_tester(self) -> None:
        """Drop the tester's connection."""
        if self._tester is not None:
            self._tester.close()
            self._tester = None

    def call(self, entry: str, script: str, number: str, **variables: str) -> Message:
        """A caller: Local/<entry> is the inbound call Asterisk sees; its other half runs `script` in [test-callers]."""
        fields = {"Action": "Originate", "Channel": f"Local/{entry}", "Context": "test-callers", "Exten": script, "Priority": "1",
                  "CallerID": f"<{number}>", "Async": "true", "Timeout": "30000"}
        if variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in variables.items())
        response = self.action(fields)
        assert response.get("Response") == "Success", response
        return response


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# The engine on a real Asterisk -------------------------------------------------------------

def submit_request(users, engine, login: str, name: str, values: dict, ident: int = 1) -> None:
    """A request as the panel sends it: checked against the user's role and the engine's directory, then submitted."""
    from cti_panel.controls import check
    from cti_panel.users import Who

    user = next(u for u in users.list() if u.login == login)
    who = {"user_id": user.id, "login": user.login, "role": user.role, "lang": user.lang, "agent": user.agent,
           "interface": user.interface, "extension": user.extension, "queues": user.queues}
    checked = check(Who(**{**who, "queues": tuple(user.queues or ())}), name, values, engine.directory)
    engine.submit({"who": who, "name": name, "values": checked.values, "sid": login, "id": ident})


def always_open_flow(folder: Path) -> Path:
    """contrib/ivr/main.yaml with business hours open all day every day (tests run at any hour), holidays dropped."""
    text = (ROOT / "contrib" / "ivr" / "main.yaml").read_text()
    text = text.replace('mon-fri: "08:00-20:00"\n      sat: "09:00-14:00"', 'mon-sun: "00:00-24:00"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith("holidays:"))
    assert "mon-sun" in text, "contrib/ivr/main.yaml's hours changed: update always_open_flow"
    path = folder / "main.yaml"
    path.write_text(text)
    return path


class Center:
    """The engine (tracker, IVR, ACD, recorder) on its own loop thread, logged in to `pbx` as the shipped AMI user."""

    def __init__(self, folder: Path, pbx: Asterisk, settings, flows: list, users: list[dict], heartbeat_s: float = 2.0) -> None:
        import asyncio
        import threading

        from sqlalchemy.orm import sessionmaker

        from callcenter.db import CallStore, make_engine, migrate
        from callcenter.engine import Engine
        from cti_panel.notifier import Notifier
        from cti_panel.users import Users

        engine = make_engine(f"sqlite:///{folder}/calls.db")
        migrate(engine)
        self.store = CallStore(engine)
        self.users = Users(sessionmaker(engine, expire_on_commit=False))
        for user in users:
            fields = {k: v for k, v in user.items() if k not in ("login", "role")}
            self.users.add(user["login"], "correct horse battery", user["role"], **fields)
        self.replies: list[tuple[str, dict]] = []
        self.notifier = Notifier()
        self.notifier.to_socket = lambda sid, event, payload: self.replies.append((event, payload))  # type: ignore[method-assign]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.engine = Engine(settings, self.store, flows, self.notifier, options=pbx.options(), out=None)
        self.resyncs = 0
        on_resync = self.engine.client.on_resync
        assert on_resync is not None

        async def counted(snapshot) -> None:
            await on_resync(snapshot)
            self.resyncs += 1
        self.engine.client.on_resync = counted
        self.events: list[Message] = []
        on_event = self.engine.client.on_event
        self.engine.client.on_event = lambda message, arrival: (self.events.append(message), on_event(message, arrival))
        self.heartbeat_s = heartbeat_s
        self.running = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        until(lambda: self.resyncs, 15, "the engine logged in and resynced")
        self._ids = 0

    async def _start(self):
        import asyncio
        return asyncio.create_task(self.engine.run(heartbeat_every=self.heartbeat_s))

    def ask(self, login: str, name: str, values: dict) -> dict:
        """A panel request as `login`; waits for and returns the engine's reply."""
        self._ids += 1
        ident = self._ids
        submit_request(self.users, self.engine, login, name, values, ident)
        return until(lambda: next((p for e, p in self.replies if e == "reply" and p.get("id") == ident), None), 20,
                     f"the engine's reply to {name}")

    def agent_state(self, agent: str) -> str | None:
        state = self.engine.board.agents.get(agent)
        return state.state if state else None

    def call_of(self, agent: str):
        return self.engine.board.call_of(agent)

    def stored(self, number: str, seconds: float = 30.0):
        """The finished call from `number`, once stored."""
        def find():
            return next((c for c in self.store.calls() if c.caller_number == number), None)
        return until(find, seconds, f"the call from {number} stored")

    def stop(self) -> None:
        """Stop the engine as `callcenter engine` does on Ctrl-C."""
        import asyncio

        async def halt() -> None:
            self.running.cancel()
            await asyncio.gather(self.running, return_exceptions=True)
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(halt(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        else:  # it died: its tasks are still there, stopped mid-way; end them here so none is left unfinished
            self.thread.join(5)
            self.loop.run_until_complete(halt())

    def die(self) -> None:
        """The engine dies: its loop stops dead and nothing more is sent (the AMI socket is left as it is)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
