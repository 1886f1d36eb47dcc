"""Record the real-Asterisk AMI traces of this folder (see README.md): transfers, hold, redirects, a burst.

Run from the repository root, with the repository's venv:

    .venv/bin/python tests/data/traces/record.py [NAME ...] [--keep DIR]

Each scenario gets a fresh Asterisk (../shared/asterisk, or $CALLCENTER_TEST_ASTERISK) laid out by
`tests.realpbx.Asterisk` with contrib/asterisk as shipped and the real-PBX tier's test contexts and queues. A raw TCP
socket logs in as the engine's own least-privilege user (contrib/asterisk/manager.conf, the secret `Asterisk` sets),
with events on, and every read and write on it becomes one line of NAME.jsonl:
``{"t": seconds since connect, "dir": "in" | "out", "data": raw text}``. The scenario is driven by the test-only
`tester` user on a connection of its own (not in the trace; its actions, at the trace's times, go to
NAME.actions.jsonl), with the same AMI actions the CTI panel sends (cti_panel/controls.py). At the end every channel
has hung up (CoreShowChannels polled as the tester), the recorded connection asks CoreShowChannels and QueueStatus and
logs off, Asterisk stops, and its queue_log lines and CDR rows become NAME.queue_log and NAME.Master.csv.
"""

from __future__ import annotations

import argparse
import codecs
import json
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cti_panel.controls import AGENT_DOOR, QUEUE_DOOR, TRANSFER_VARIABLE, phone_side  # noqa: E402
from pbx.codec import AMICodec, Banner, FrameError, Message, encode  # noqa: E402
from pbx.trace import read_trace, replay  # noqa: E402
from tests.realpbx import CONTRIB, DATA, TESTER, Asterisk  # noqa: E402
from tests.waiting import until  # noqa: E402

TRANSFER_CONTEXT, QUEUE_CONTEXT = "callcenter-transfer", "callcenter-queues"  # cti_panel.controls.Directory's defaults
# Agents' phones of tests/data/realpbx/extensions.conf [test-phones]: 1xxx answer after 1 s and stay until hung up,
# 2xxx never answer, 3xxx answer at once and hang up after 2 s.
PHONES = {
    "ana": "Local/1001@test-phones/n",
    "bea": "Local/1002@test-phones/n",
    "cid": "Local/2001@test-phones/n",
    "eve": "Local/3001@test-phones/n",
    "fay": "Local/3002@test-phones/n",
}


def extras() -> list[str]:
    """contrib/asterisk as shipped plus the real-PBX tier's queues and test contexts (as tests/test_realpbx.py lays them out)."""
    return [
        str(DATA / "queues.conf"),
        f"extensions.conf+={CONTRIB / 'extensions.conf'}",
        f"extensions.conf+={DATA / 'extensions.conf'}",
        str(CONTRIB / "features.conf"),
    ]


def matches(message: Message, fields: dict[str, Any]) -> bool:
    """Every field equal (a str) or accepted (a callable)."""
    for key, want in fields.items():
        value = message.get(key)
        if callable(want):
            if value is None or not want(value):
                return False
        elif value != want:
            return False
    return True


class Recorder:
    """The engine's own login (contrib's least-privilege user, events on); every read and write kept as a trace line."""

    def __init__(self, pbx: Asterisk) -> None:
        self.lines: list[dict[str, Any]] = []
        self.raw = bytearray()
        self.messages: list[Message] = []
        self.errors: list[FrameError] = []
        self.banner: Banner | None = None
        self.lock = threading.Lock()
        self.codec = AMICodec()
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.ids = 0
        self.sock = socket.create_connection(("127.0.0.1", pbx.port), timeout=10)
        self.opened, self.epoch = time.monotonic(), time.time()
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        until(lambda: self.banner, 10, "Asterisk's banner")  # a client logs in once greeted
        options = pbx.options()
        login = self.ask({"Action": "Login", "Username": options.username, "Secret": options.secret, "Events": "on"})
        assert login[0].get("Response") == "Success", login

    def now(self) -> float:
        """Seconds since the connection opened (the trace's t)."""
        return round(time.monotonic() - self.opened, 6)

    def _keep(self, direction: str, data: str) -> None:
        self.lines.append({"t": self.now(), "dir": direction, "data": data})

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    tail = self.decoder.decode(b"", final=True)
                    if tail:
                        self._keep("in", tail)
                    return
                self.raw += data
                self._keep("in", self.decoder.decode(data))
                for item in self.codec.feed(data):
                    if isinstance(item, Message):
                        self.messages.append(item)
                    elif isinstance(item, FrameError):
                        self.errors.append(item)
                    elif isinstance(item, Banner):
                        self.banner = item

    def send(self, fields: dict[str, str]) -> str:
        """Send an action (ActionID rec-N, as the shared traces' recorder); its id."""
        self.ids += 1
        action_id = f"rec-{self.ids}"
        payload = encode({"Action": fields["Action"], "ActionID": action_id, **{k: v for k, v in fields.items() if k != "Action"}})
        with self.lock:
            self.sock.sendall(payload)
            self._keep("out", payload.decode("utf-8"))
        return action_id

    def ask(self, fields: dict[str, str], seconds: float = 10.0) -> list[Message]:
        """An action's answer: the response, and for an EventList every item up to its Complete event."""
        action_id = self.send(fields)

        def answered() -> list[Message] | None:
            mine = [m for m in self.snapshot() if m.get("ActionID") == action_id]
            if not mine or (mine[0].get("EventList") == "start" and mine[-1].get("EventList") != "Complete"):
                return None
            return mine

        return until(answered, seconds, f"Asterisk's answer to {fields['Action']}")

    def snapshot(self) -> list[Message]:
        with self.lock:
            return list(self.messages)

    def events(self, name: str, since: int = 0, **fields: Any) -> list[Message]:
        return [m for m in self.snapshot()[since:] if m.get("Event") == name and matches(m, fields)]

    def wait(self, name: str, seconds: float = 15.0, since: int = 0, **fields: Any) -> Message:
        """The first event `name` (from index `since`) with these fields, once it arrives."""
        shown = ", ".join(f"{k}={'<test>' if callable(v) else v}" for k, v in fields.items())
        return until(lambda: next(iter(self.events(name, since, **fields)), None), seconds, f"event {name} ({shown})")

    def mark(self) -> int:
        """Where the events received so far end (for `since`)."""
        return len(self.snapshot())

    def close(self) -> None:
        """Log off as a client does and wait for Asterisk to close the socket."""
        answer = self.ask({"Action": "Logoff"})
        assert answer[0].get("Response") == "Goodbye", answer
        self.reader.join(10)
        self.sock.close()

    def write(self, path: Path) -> None:
        """The trace, after checking that its `in` data is exactly the bytes received."""
        text = "".join(line["data"] for line in self.lines if line["dir"] == "in")
        assert text.encode("utf-8") == bytes(self.raw), "the trace's in data is not the bytes Asterisk sent"
        with open(path, "w", encoding="utf-8") as out:
            for line in self.lines:
                out.write(json.dumps(line) + "\n")


class Lister:
    """The tester's list actions (CoreShowChannels): the items of an EventList, which `Asterisk.action` leaves unread."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.codec = AMICodec()
        self.ids = 0
        self.sock.sendall(encode({"Action": "Login", "Username": TESTER[0], "Secret": TESTER[1], "Events": "off", "ActionID": "login"}))
        assert self._collect("login")[0].get("Response") == "Success"

    def _collect(self, action_id: str) -> list[Message]:
        got: list[Message] = []
        while True:
            for item in self.codec.feed(self.sock.recv(65536)):
                if isinstance(item, Message) and item.get("ActionID") == action_id:
                    got.append(item)
                    if "EventList" not in got[0] or item.get("EventList") == "Complete":
                        return got

    def items(self, fields: dict[str, str]) -> list[Message]:
        self.ids += 1
        action_id = f"l{self.ids}"
        self.sock.sendall(encode({**fields, "ActionID": action_id}))
        return [m for m in self._collect(action_id) if m.get("Event") and m.get("EventList") != "Complete"]

    def close(self) -> None:
        self.sock.close()


class Scene:
    """One scenario on its own Asterisk: the tester's actions (the panel's and the phones'), and waits on what the
    recorded connection hears."""

    def __init__(self, pbx: Asterisk, rec: Recorder) -> None:
        self.pbx, self.rec = pbx, rec
        self.acted: list[dict[str, Any]] = []
        self.lister = Lister(pbx.port)
        sent = pbx.action

        def logged(fields: dict[str, str], timeout: float = 10.0) -> Message:  # every tester action, at the trace's time
            at = rec.now()
            response = sent(fields, timeout)
            self.acted.append({"t": at, "action": dict(fields), "response": dict(response)})
            return response

        pbx.action = logged  # type: ignore[method-assign]  # Asterisk.call sends through it too

    def act(self, fields: dict[str, str], ok: bool = True) -> Message:
        response = self.pbx.action(fields)
        if ok:
            assert response.get("Response") == "Success", (fields, response)
        return response

    # agents (as acd.app_queue.AppQueueACD sends them) --------------------------------------------------------------
    def login(self, agent: str, *queues: str, paused: str | None = None) -> None:
        for queue in queues:
            since = self.rec.mark()
            self.act(
                {"Action": "QueueAdd", "Queue": queue, "Interface": PHONES[agent], "MemberName": agent, "Penalty": "0", "Paused": "false"}
            )
            self.rec.wait("QueueMemberAdded", since=since, Queue=queue, MemberName=agent)
        if paused:
            self.pause(agent, paused)

    def pause(self, agent: str, reason: str) -> None:
        since = self.rec.mark()
        self.act({"Action": "QueuePause", "Interface": PHONES[agent], "Paused": "true", "Reason": reason})
        self.rec.wait("QueueMemberPause", since=since, MemberName=agent, Paused="1")

    def unpause(self, agent: str) -> None:
        since = self.rec.mark()
        self.act({"Action": "QueuePause", "Interface": PHONES[agent], "Paused": "false"})
        self.rec.wait("QueueMemberPause", since=since, MemberName=agent, Paused="0")

    def logout(self, agent: str, queue: str) -> None:
        since = self.rec.mark()
        self.act({"Action": "QueueRemove", "Queue": queue, "Interface": PHONES[agent]})
        self.rec.wait("QueueMemberRemoved", since=since, Queue=queue, MemberName=agent)

    # callers -------------------------------------------------------------------------------------------------------
    def caller(self, queue: str, number: str, **variables: str) -> Message:
        """A caller into contrib's [callcenter-queues] (as the IVR hands them over); the other half runs [test-callers]
        `keys`; returns Asterisk's QueueCallerJoin of them."""
        since = self.rec.mark()
        self.pbx.call(f"{queue}@{QUEUE_CONTEXT}", "keys", number, **variables)
        return self.rec.wait("QueueCallerJoin", since=since, Queue=queue, CallerIDNum=number)

    def originate(self, entry: str, number: str, timeout_s: int, **variables: str) -> None:
        """A caller as `Asterisk.call` makes one, with its own Originate timeout (how long it rings unanswered)."""
        fields = {
            "Action": "Originate",
            "Channel": f"Local/{entry}",
            "Context": "test-callers",
            "Exten": "keys",
            "Priority": "1",
            "CallerID": f"<{number}>",
            "Async": "true",
            "Timeout": str(timeout_s * 1000),
            "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
        }
        self.act(fields)

    def connected(self, agent: str, queue: str, since: int = 0, seconds: float = 15.0) -> Message:
        return self.rec.wait("AgentConnect", seconds, since=since, Queue=queue, MemberName=agent)

    def up(self, channel: str) -> bool:
        return not self.rec.events("Hangup", Channel=channel)

    # the panel's call controls (cti_panel/controls.py) ---------------------------------------------------------------
    def transfer(self, how: str, connect: Message, exten: str, target: str) -> None:
        """Controls._transfer: both legs carry the target, then BlindTransfer / Atxfer of the agent's leg to a door."""
        leg = connect["DestChannel"]
        for channel in (leg, connect["Channel"]):
            self.act({"Action": "Setvar", "Channel": channel, "Variable": f"__{TRANSFER_VARIABLE}", "Value": target})
        action = "BlindTransfer" if how == "blind" else "Atxfer"
        self.act({"Action": action, "Channel": leg, "Context": TRANSFER_CONTEXT, "Exten": exten})

    def hangup(self, connect: Message) -> None:
        """Controls._hangup / _complete: the agent's own phone (the `;2` half of the member's Local channel)."""
        self.act({"Action": "Hangup", "Channel": phone_side(connect["DestChannel"])})

    def hold(self, connect: Message, held: bool) -> None:
        """Controls._hold: MUTEAUDIO on the caller's channel, set with Setvar."""
        self.act({"Action": "Setvar", "Channel": connect["Channel"], "Variable": "MUTEAUDIO(all)", "Value": "on" if held else "off"})

    def move(self, join: Message, queue: str) -> None:
        """The supervisor's move of a waiting caller (AppQueueACD.move_caller): Redirect into [callcenter-queues]."""
        self.act({"Action": "Redirect", "Channel": join["Channel"], "Context": QUEUE_CONTEXT, "Exten": queue, "Priority": "1"})

    def talk(self, seconds: float) -> None:
        """The scenario's own pace: a call talks (or rings, or waits) this long."""
        time.sleep(seconds)

    # the end ---------------------------------------------------------------------------------------------------------
    def idle(self, seconds: float = 40.0) -> None:
        """Every channel hung up, by the tester's CoreShowChannels."""
        until(lambda: not self.lister.items({"Action": "CoreShowChannels"}), seconds, "every channel hung up")


# The scenarios ---------------------------------------------------------------------------------------------------------


def blind_transfer_queue_to_queue(s: Scene) -> None:
    s.login("ana", "support")
    s.login("bea", "sales")
    s.caller("support", "5511991110001", CALLER_WAIT="6")
    a = s.connected("ana", "support")
    s.talk(1.0)
    s.transfer("blind", a, QUEUE_DOOR, "sales")
    s.connected("bea", "sales")
    assert s.up(a["Channel"]), "bea answered before the caller hung up"


def attended_transfer_to_queue(s: Scene) -> None:
    s.login("ana", "support")
    s.login("bea", "sales")
    s.caller("support", "5511991110002", CALLER_WAIT="30")
    a = s.connected("ana", "support")
    s.talk(1.0)
    since = s.rec.mark()
    s.transfer("attended", a, QUEUE_DOOR, "sales")
    b = s.connected("bea", "sales", since)
    s.talk(1.0)  # ana and bea talk; the caller waits
    since = s.rec.mark()
    s.hangup(a)  # "Complete transfer": ana's phone hangs up
    s.rec.wait("AttendedTransfer", since=since)
    s.talk(2.0)  # the caller and bea talk
    s.hangup(b)


def failed_attended_transfer(s: Scene) -> None:
    s.login("ana", "support")
    s.caller("support", "5511991110003", CALLER_WAIT="30")
    a = s.connected("ana", "support")
    s.talk(1.0)
    since = s.rec.mark()
    s.transfer("attended", a, AGENT_DOOR, PHONES["cid"])  # cid's phone never answers
    s.rec.wait("DialBegin", since=since, DestChannel=lambda c: c.startswith("Local/2001@test-phones-"))
    s.talk(2.0)  # it rings
    since = s.rec.mark()
    s.act({"Action": "CancelAtxfer", "Channel": a["DestChannel"]})  # ana gives up (atxferabort)
    s.rec.wait("BridgeEnter", since=since, Channel=a["DestChannel"])
    s.talk(1.5)  # ana and the caller again
    s.hangup(a)


def redirect_waiting_caller(s: Scene) -> None:
    s.login("ana", "support", paused="lunch")
    s.login("bea", "sales")
    join = s.caller("support", "5511991110004", CALLER_WAIT="4")
    s.talk(2.0)  # waits in support, nobody free
    since = s.rec.mark()
    s.move(join, "sales")
    s.connected("bea", "sales", since)
    assert s.up(join["Channel"])


def redirect_answered_call(s: Scene) -> None:
    s.login("ana", "support")
    s.login("bea", "sales")
    s.caller("support", "5511991110005", CALLER_WAIT="6")
    a = s.connected("ana", "support")
    s.talk(2.0)
    since = s.rec.mark()
    s.act({"Action": "Setvar", "Channel": a["Channel"], "Variable": f"__{TRANSFER_VARIABLE}", "Value": "sales"})
    s.act({"Action": "Redirect", "Channel": a["Channel"], "Context": TRANSFER_CONTEXT, "Exten": QUEUE_DOOR, "Priority": "1"})
    s.connected("bea", "sales", since)
    assert s.up(a["Channel"])
    if s.up(phone_side(a["DestChannel"])):  # ana's phone, left alone in the bridge: the panel's hang-up
        s.hangup(a)


def hold(s: Scene) -> None:
    s.login("ana", "support")
    s.caller("support", "5511991110006", CALLER_WAIT="7")
    a = s.connected("ana", "support")
    s.talk(1.0)
    s.hold(a, True)
    s.talk(3.0)
    s.hold(a, False)
    assert s.up(a["Channel"]), "unheld before the caller hung up"


def agent_logged_off_while_ringing(s: Scene) -> None:
    s.login("ana", "support", paused="lunch")
    s.login("cid", "support")
    join = s.caller("support", "5511991110007", CALLER_WAIT="3")
    s.rec.wait("AgentCalled", Queue="support", MemberName="cid")
    s.talk(1.0)  # cid's phone rings
    s.logout("cid", "support")
    s.unpause("ana")
    s.connected("ana", "support")
    assert s.up(join["Channel"])


# The burst's callers: (entry, Originate timeout in s, CALLER_WAIT in s). Through contrib's inbound entry the IVR's
# Answer() starts the caller's script at once (no engine: the stale heartbeat sends them to the fallback queue,
# support), so CALLER_WAIT is their whole patience; straight into [callcenter-queues] (sales) the channel is answered
# only by an agent, so the Originate's timeout is their patience unanswered and CALLER_WAIT their talk.
INBOUND = "08007770000@callcenter-inbound"
BURST = [
    (INBOUND, 30, 3),
    (f"sales@{QUEUE_CONTEXT}", 4, 3),
    (INBOUND, 30, 9),
    (f"sales@{QUEUE_CONTEXT}", 7, 2),
    (INBOUND, 30, 2),
    (f"sales@{QUEUE_CONTEXT}", 3, 4),
    (INBOUND, 30, 6),
    (f"sales@{QUEUE_CONTEXT}", 9, 3),
    (INBOUND, 30, 4),
    (f"sales@{QUEUE_CONTEXT}", 5, 2),
    (INBOUND, 30, 8),
    (f"sales@{QUEUE_CONTEXT}", 6, 3),
    (INBOUND, 30, 5),
    (f"sales@{QUEUE_CONTEXT}", 8, 2),
    (INBOUND, 30, 7),
    (f"sales@{QUEUE_CONTEXT}", 4, 3),
    (INBOUND, 30, 3),
    (f"sales@{QUEUE_CONTEXT}", 10, 2),
    (INBOUND, 30, 10),
    (f"sales@{QUEUE_CONTEXT}", 6, 4),
]


def burst(s: Scene) -> None:
    s.login("ana", "support")
    s.login("eve", "support")
    s.login("bea", "sales")
    s.login("fay", "sales")
    for i, (entry, patience, wait) in enumerate(BURST, 1):
        s.originate(entry, f"55119912000{i:02d}", patience, CALLER_WAIT=str(wait))
        s.talk(0.1)


def agent_hangs_up_first(s: Scene) -> None:
    s.login("ana", "support")
    s.caller("support", "5511991110009", CALLER_WAIT="30")
    a = s.connected("ana", "support")
    s.talk(2.0)
    s.hangup(a)


SCENARIOS: dict[str, Callable[[Scene], None]] = {
    f.__name__: f
    for f in (
        blind_transfer_queue_to_queue,
        attended_transfer_to_queue,
        failed_attended_transfer,
        redirect_waiting_caller,
        redirect_answered_call,
        hold,
        agent_logged_off_while_ringing,
        burst,
        agent_hangs_up_first,
    )
}


def record(name: str, folder: Path, out: Path) -> None:
    """One scenario on a fresh Asterisk in `folder`: NAME.jsonl, .actions.jsonl, .queue_log and .Master.csv into `out`."""
    pbx = Asterisk(folder, extras()).start()
    try:
        rec = Recorder(pbx)
        scene = Scene(pbx, rec)
        SCENARIOS[name](scene)
        scene.idle()
        scene.lister.close()
        for action in ("CoreShowChannels", "QueueStatus"):
            rec.ask({"Action": action})
        rec.close()
        pbx.close_tester()
    finally:
        pbx.stop()
    assert not rec.errors, rec.errors
    rec.write(out / f"{name}.jsonl")
    with open(out / f"{name}.actions.jsonl", "w", encoding="utf-8") as actions:
        for line in scene.acted:
            actions.write(json.dumps(line) + "\n")
    lines = (pbx.run / "log" / "queue_log").read_text().splitlines(keepends=True)
    mine = [line for line in lines if int(line.split("|")[0]) >= int(rec.epoch) and line.split("|")[4] != "QUEUESTART"]
    (out / f"{name}.queue_log").write_text("".join(mine))
    cdr = pbx.run / "log" / "cdr-csv" / "Master.csv"
    (out / f"{name}.Master.csv").write_bytes(cdr.read_bytes() if cdr.exists() else b"")
    etc = out / "asterisk-etc"  # the configuration this Asterisk ran, as laid out (paths and port as the run script's @...@, secrets out)
    etc.mkdir(exist_ok=True)
    for conf in sorted((pbx.run / "etc").iterdir()):
        text = conf.read_text().replace(str(pbx.run), "@RUN@").replace(str(pbx.script.resolve().parent / "prefix"), "@PREFIX@")
        text = re.sub(r"(?m)^(secret\s*=\s*).*$", r"\1<set by tests.realpbx.Asterisk>", text)
        text = re.sub(rf"(?m)^(port\s*=\s*){pbx.port}\b", r"\1@AMI_PORT@", text)
        (etc / conf.name).write_text(text)


def check(path: Path) -> str:
    """A trace loads, its `in` data is whole frames; its replayed calls as JSON lines."""
    from pbx.tracker import record_line

    reads = list(read_trace(path))
    text = "".join(r.data for r in reads if r.dir == "in")
    assert text.startswith("Asterisk Call Manager/") and text.endswith("\r\n\r\n"), path
    codec = AMICodec()
    items = codec.feed(text.encode("utf-8"))
    assert not [i for i in items if isinstance(i, FrameError)], path
    return "\n".join(record_line(r) for r in replay(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"scenarios to record (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--keep", type=Path, help="lay out each Asterisk under this folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=HERE, help="where the traces go (default: this folder)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        parser.error(f"no such scenario: {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(SCENARIOS):
        if args.keep:
            folder = args.keep / name
            shutil.rmtree(folder, ignore_errors=True)
            record(name, folder, args.out)
        else:
            with tempfile.TemporaryDirectory(prefix=f"trace-{name}-") as scratch:
                record(name, Path(scratch), args.out)
        print(f"== {name}")
        print((args.out / f"{name}.queue_log").read_text(), end="")
        print(check(args.out / f"{name}.jsonl"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
