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
import difflib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kernel.exceptions import AMIError
from pbx.client import ClientOptions
from pbx.codec import AMICodec, Message, encode
from reports.cdr import CDR_COLUMNS
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "realpbx"
CONTRIB = ROOT / "contrib" / "asterisk"
DEBIAN_SOUNDS = "/usr/share/asterisk/sounds/en_US_f_Allison"  # what ../shared/asterisk/run links into its sounds/en
TESTER = ("tester", "tester-secret")


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


class PBXSide:
    """What a test does to a PBX itself, as a user of its own: originate callers, send actions (never through the engine)."""

    _tester: socket.socket | None
    _codec: AMICodec
    _ids: int
    port: int

    def _login(self) -> tuple[str, str]:
        raise NotImplementedError

    def idle(self) -> None:
        """Every channel hung up (between tests)."""
        raise NotImplementedError

    def action(self, fields: dict[str, str], timeout: float = 10.0) -> Message:
        """Send one action as the tester user and return its response."""
        if self._tester is None:
            self._tester = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            self._codec = AMICodec()
            username, secret = self._login()
            self._tester.sendall(encode({"Action": "Login", "Username": username, "Secret": secret, "Events": "off", "ActionID": "login"}))
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
        fields = {
            "Action": "Originate",
            "Channel": f"Local/{entry}",
            "Context": "test-callers",
            "Exten": script,
            "Priority": "1",
            "CallerID": f"<{number}>",
            "Async": "true",
            "Timeout": "30000",
        }
        if variables:
            fields["Variable"] = ",".join(f"{k}={v}" for k, v in variables.items())
        response = self.action(fields)
        assert response.get("Response") == "Success", response
        return response


class Asterisk(PBXSide):
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
        tester = (
            f"\n[{TESTER[0]}]\nsecret = {TESTER[1]}\ndeny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n"
        )
        (conf / "manager.conf").write_text(shipped + tester)
        self.extras = [str(conf / "manager.conf"), *(str(e) for e in extras)]
        self.run = folder / "run"
        self._tester: socket.socket | None = None
        self._codec = AMICodec()
        self._ids = 0

    # lifecycle ---------------------------------------------------------------------
    def _script(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [str(self.script), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "AMI_PORT": str(self.port)}
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.script} {args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def start(self) -> Asterisk:
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
        return ClientOptions(
            "127.0.0.1", self.port, "callcenter", self.secret, ping_interval=2.0, ping_timeout=2.0, reconnect_min=0.2, reconnect_max=1.0
        )

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
            return [dict(zip(CDR_COLUMNS, row)) for row in csv.reader(handle)]

    def _login(self) -> tuple[str, str]:
        return TESTER

    def idle(self) -> None:
        self.action({"Action": "Hangup", "Channel": "/./"})
        until(lambda: "0 active channels" in self.cli("core show channels count"), 10, "the PBX idle")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# The engine on a real Asterisk -------------------------------------------------------------


# The agent's screen sends these with the id of the call it shows.
CALL_ACTIONS = ("hangup", "hold", "unhold", "record", "transfer", "complete", "cancel")


def submit_request(users, engine, login: str, name: str, values: dict, ident: int = 1) -> None:
    """A request as the panel sends it: checked against the user's role and the engine's directory, then submitted (a call
    action for the call the agent's screen shows, unless the test names one)."""
    from cti_panel.controls import check
    from kernel.who import Who

    user = next(u for u in users.list() if u.login == login)
    who = {
        "user_id": user.id,
        "login": user.login,
        "role": user.role,
        "lang": user.lang,
        "agent": user.agent,
        "interface": user.interface,
        "extension": user.extension,
        "queues": user.queues,
    }
    if name in CALL_ACTIONS and "linkedid" not in values:
        shown = engine.board.call_of(user.agent or "")
        values = {**values, "linkedid": shown.linkedid if shown is not None else "no-call"}
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

    def __init__(self, folder: Path, pbx: Asterisk | Simulated, settings, flows: list, users: list[dict], heartbeat_s: float = 2.0) -> None:
        import asyncio
        import threading

        from sqlalchemy.orm import sessionmaker

        from callcenter.engine import Engine
        from cti_panel.notifier import Notifier
        from cti_panel.users import Users
        from kernel.db import CallStore, make_engine, migrate

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
        self.pbx = pbx
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
        self.responses: list[tuple[str, str, str]] = []  # (action, Response, Message) of every action the engine sent
        send_action = self.engine.client.send_action

        async def answered(action, **kwargs):
            try:
                reply = await send_action(action, **kwargs)
            except AMIError as exc:
                self.responses.append((action.get("Action", ""), "Error", getattr(exc, "message", str(exc))))
                raise
            first = reply[0] if isinstance(reply, list) and reply else reply
            if isinstance(first, Message):
                self.responses.append((action.get("Action", ""), first.get("Response", ""), first.get("Message", "")))
            return reply

        self.engine.client.send_action = answered
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
        return until(
            lambda: next((p for e, p in self.replies if e == "reply" and p.get("id") == ident), None), 20, f"the engine's reply to {name}"
        )

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


class Simulated(PBXSide):
    """The simulator in Asterisk's place, with the same files and the same test-side interface, so a scenario runs on both.

    It serves the dialplan of contrib/asterisk plus the tier's contexts and queues on a free port at speed 1 on a
    thread of its own; the tester's actions go through the same AMI socket as any client's (the simulator has one user
    and no read/write classes, see pbx/simulator's differences).
    """

    def __init__(self, folder: Path) -> None:
        import asyncio
        import threading

        from pbx.simulator.dialplan import load_queues
        from pbx.simulator.server import SimulatorServer

        folder.mkdir(parents=True, exist_ok=True)
        dialplan = folder / "extensions.conf"
        dialplan.write_text((CONTRIB / "extensions.conf").read_text() + "\n" + (DATA / "extensions.conf").read_text())
        self.secret = secrets.token_hex(12)
        self.server = SimulatorServer("callcenter", self.secret, speed=1.0, dialplan=dialplan, recordings=folder / "rec")
        self.server.configure(load_queues(DATA / "queues.conf"), None)
        self.server.sim.moh = True  # the tier's Asterisk has Debian's music-on-hold files
        self.server.sim.drop_unread_digits = True  # at speed 1, as Asterisk does
        self.server.sim.sounds = [ROOT / "var" / "prompts" / "sounds", Path(os.environ.get("AST_SOUNDS", DEBIAN_SOUNDS))]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self._tester: socket.socket | None = None
        self._codec = AMICodec()
        self._ids = 0

    def start(self) -> Simulated:
        """Listening, its clock running."""
        import asyncio

        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(10)
        return self

    def stop(self) -> None:
        import asyncio

        self.close_tester()
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def options(self) -> ClientOptions:
        return ClientOptions(
            "127.0.0.1", self.port, "callcenter", self.secret, ping_interval=2.0, ping_timeout=2.0, reconnect_min=0.2, reconnect_max=1.0
        )

    def queue_log(self) -> list[list[str]]:
        return [line.split("|") for line in list(self.server.queue_log_lines)]

    def cdr(self) -> list[dict[str, str]]:
        return [dict(zip(CDR_COLUMNS, map(str, row))) for row in list(self.server.cdr_rows)]

    def _login(self) -> tuple[str, str]:
        return ("callcenter", self.secret)

    def idle(self) -> None:
        for channel in [c.name for c in list(self.server.sim.channels.values())]:
            self.action({"Action": "Hangup", "Channel": channel})
        until(lambda: not self.server.sim.channels, 10, "the simulator idle")


# The same scenario on both PBXs --------------------------------------------------------------

# Seen in either place from one run of the same scenario to the next on Asterisk: a VarSet against the channel's other
# events, app_queue's AgentComplete against the bridge's BridgeLeave.
RACING = {"VarSet", "AgentComplete"}


def engine_reads() -> set[str]:
    """The read classes of contrib's AMI user: what the engine hears from a real Asterisk (the simulator sends all)."""
    line = next(ln for ln in (CONTRIB / "manager.conf").read_text().splitlines() if ln.replace(" ", "").startswith("read="))
    return {c.strip() for c in line.split("=", 1)[1].split(",")}


def differences(real: Center, simulated: Center, real_pbx: PBXSide, sim_pbx: PBXSide, callers: Iterable[str]) -> list[str]:
    """Where the simulator, given the same actions, did not do what Asterisk did: per channel the events and their key
    fields (in order, but for those whose order Asterisk's threads race, RACING), the callers' queue_log lines, and the
    answers to the engine's actions (each kind once: how many heartbeats fit in a run varies)."""
    from tests.fidelity import per_channel

    reads = engine_reads()
    heard = [e for e in simulated.events if e.get("Privilege", "").split(",")[0] in reads]
    out: list[str] = []
    a, b = (_placeless(per_channel(events)) for events in (real.events, heard))
    for who in sorted(set(a) | set(b)):
        mine, theirs = a.get(who, []), b.get(who, [])
        if who == "none":  # global variables: the engine's heartbeat, as often as the run's length allows
            mine, theirs = sorted(set(mine)), sorted(set(theirs))
        elif who.startswith("member "):  # one action on a member in several queues: the queues in each PBX's own order
            mine, theirs = _runs_sorted(mine), _runs_sorted(theirs)
        if sorted(map(repr, mine)) != sorted(map(repr, theirs)) or [e for e in mine if e[0] not in RACING] != [
            e for e in theirs if e[0] not in RACING
        ]:
            if os.environ.get("CALLCENTER_TEST_DIFF_DUMP"):
                Path(os.environ["CALLCENTER_TEST_DIFF_DUMP"]).open("a").write(
                    f"== {who}\n"
                    + "\n".join(line for line in difflib.unified_diff(list(map(repr, mine)), list(map(repr, theirs)), lineterm="", n=30))
                    + "\n"
                )
            changed = [line for line in difflib.ndiff(_brief(mine), _brief(theirs)) if line[:1] in "+-"]
            out.append(f"events of {who} (- Asterisk, + simulator): {'; '.join(changed) or 'in another order'}")
    for caller in callers:
        shape = [
            [
                tuple(_mask(p) for p in line[2:])
                for line in pbx.queue_log()
                if line[1] in {ln[1] for ln in pbx.queue_log() if ln[4] == "ENTERQUEUE" and caller in ln[5:]}
            ]
            for pbx in (real_pbx, sim_pbx)
        ]
        if len(shape[0]) != len(shape[1]) or not all(map(_alike, shape[0], shape[1])):
            out.append(f"queue_log of {caller}: Asterisk {shape[0]}; simulator {shape[1]}")
    gone = ("does not exist", "No such channel")  # an action racing the caller's hang-up: the run's timing, not the PBX
    real_answers, sim_answers = ({r for r in run.responses if not any(g in r[2] for g in gone)} for run in (real, simulated))
    if real_answers != sim_answers:
        out.append(f"responses: Asterisk {sorted(real_answers - sim_answers)}; simulator {sorted(sim_answers - real_answers)}")
    return out


def _runs_sorted(events: list[tuple]) -> list[tuple]:
    """Each run of events of one name (QueueMemberPause in every queue of the member, say) in a fixed order."""
    import itertools

    return [e for _, run in itertools.groupby(events, key=lambda e: e[0]) for e in sorted(run, key=repr)]


def _placeless(channels: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """A VarSet's place in the dialplan races with the channel's other events like its order does: keep what was set."""
    return {
        who: [(name, tuple(f for f in fields if name != "VarSet" or f[0] in ("Variable", "Value"))) for name, fields in events]
        for who, events in channels.items()
    }


def _alike(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Two queue_log lines of live runs: the same but for waits and talk times, which follow the test's own pace (a few
    seconds apart between the two runs when the machine is loaded)."""
    return len(a) == len(b) and all(x == y or (x.isdigit() and y.isdigit() and abs(int(x) - int(y)) <= 3) for x, y in zip(a, b))


def _mask(part: str) -> str:
    import re

    return re.sub(r"\b\d{9,10}\.\d+\b", "<id>", part)


def _brief(events: list[tuple]) -> list[str]:
    return [
        name
        + "("
        + ",".join(f"{k}={v}" for k, v in fields if k in ("Variable", "Value", "Cause", "DialStatus", "Application", "AppData", "Result"))
        + ")"
        for name, fields in events
    ]


def side_by_side(scenario: Callable[..., object], *runs: tuple) -> list[object]:
    """Run a scenario on each (pbx, center, ...) at once, each in a thread: real time is slow."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(runs)) as pool:
        return [f.result() for f in [pool.submit(scenario, *run) for run in runs]]
