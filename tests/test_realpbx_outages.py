"""Outages mid-call on the real Asterisk of ../shared/asterisk: a cut AMI link, a silent one, and restarts.

Each test puts ana on a call from a queue caller, breaks something under the
engine, and checks what Asterisk itself did (its channels, its manager
sessions, its queue_log, its answers) and what the engine shows and stores.

The AMI link is cut from outside the engine: the engine logs in through a TCP
relay (`Link`) that the test can cut (a reset both ways, as a dead router or
a dropped NAT entry would), silence (bytes dropped, nothing closed: only the
keepalive can notice) and keep down (new connections refused), while Asterisk
runs on untouched. `core restart now` and `core restart gracefully` restart
Asterisk in place (the same process re-executes itself and comes back by
itself in about a second); the module has its own Asterisk for that.
"""

from __future__ import annotations

import socket
import time

import pytest

from ivr.flow import load_flow
from pbx.client import ClientOptions
from pbx.codec import AMICodec, Message, encode
from tests.link import Link
from tests.realpbx import TESTER, Asterisk, Center, always_open_flow, run_script
from tests.test_realpbx import ANA, number, queue_log_of, settings, shipped_asterisk
from tests.waiting import until

pytestmark = pytest.mark.skipif(
    run_script() is None, reason="no Asterisk build: ../shared/asterisk/run not found and CALLCENTER_TEST_ASTERISK not set"
)


class Through:
    """`pbx` as the engine sees it through a `Link` (Center only asks its `options()`)."""

    def __init__(self, pbx: Asterisk, link: Link) -> None:
        self.pbx, self.link = pbx, link

    def options(self) -> ClientOptions:
        return self.link.options(self.pbx)


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    with shipped_asterisk(tmp_path_factory, "asterisk-outages") as asterisk:
        yield asterisk


@pytest.fixture
def link(pbx):
    relay = Link(pbx.port)
    yield relay
    relay.close()


@pytest.fixture
def center(tmp_path, pbx):
    made: list[Center] = []

    def make(via: Link | None = None, reads_logs: bool = False) -> Center:
        folder = tmp_path / f"engine{len(made)}"
        folder.mkdir()
        chosen = settings(tmp_path)
        if reads_logs:  # the engine on Asterisk's host, reading its queue_log and CDR ([ami] queue_log, cdr)
            logs = {"queue_log": str(pbx.run / "log" / "queue_log"), "cdr": str(pbx.run / "log" / "cdr-csv" / "Master.csv")}
            chosen = chosen.model_copy(update={"ami": chosen.ami.model_copy(update=logs)})
        made.append(Center(folder, Through(pbx, via) if via else pbx, chosen, [load_flow(always_open_flow(tmp_path))], [ANA]))
        return made[-1]

    yield make
    for c in made:
        c.stop()
    pbx.idle()
    pbx.action({"Action": "QueueRemove", "Queue": "support", "Interface": ANA["interface"]})


def channels(pbx: Asterisk) -> list[dict[str, str]]:
    """Asterisk's own list of channels (`core show channels concise`)."""
    names = [
        "channel",
        "context",
        "exten",
        "priority",
        "state",
        "app",
        "data",
        "callerid",
        "account",
        "peer_account",
        "amaflags",
        "duration",
        "bridged",
        "uniqueid",
    ]
    return [dict(zip(names, line.split("!"))) for line in pbx.cli("core show channels concise").splitlines() if "!" in line]


def engine_sessions(pbx: Asterisk) -> int:
    """How many manager sessions the engine's user has open, by Asterisk's count (`manager show connected`)."""
    return sum(1 for line in pbx.cli("manager show connected").splitlines() if line.split()[:1] == ["callcenter"])


def ana_talks_to(cc: Center, pbx: Asterisk, caller_wait: str = "30") -> str:
    """ana available, a caller into support, ana answers; returns the caller's number."""
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    until(lambda: cc.agent_state("ana") == "available", 10, "ana available")
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, CALLER_WAIT=caller_wait)
    until(lambda: cc.call_of("ana") and cc.call_of("ana").answered_at and cc.call_of("ana").number == caller, 20, "ana talks to the caller")
    until(lambda: cc.agent_state("ana") == "on_call", 5, "ana on_call")
    return caller


def stored_once(cc: Center, caller: str, seconds: float = 20.0):
    call = cc.stored(caller, seconds)
    assert [c.linkedid for c in cc.store.calls() if c.caller_number == caller] == [call.linkedid], "stored once"
    return call


def test_a_cut_ami_link_mid_call_is_resynced_and_the_call_stored_once(pbx, center, link):
    cc = center(via=link)
    caller = ana_talks_to(cc, pbx)
    live = cc.call_of("ana")
    answered_at, linkedid = live.answered_at, live.linkedid
    assert engine_sessions(pbx) == 1

    link.cut()
    until(lambda: cc.resyncs == 2, 10, "the engine reconnects and resyncs by itself")
    assert link.accepted == 2
    assert engine_sessions(pbx) == 1, "Asterisk dropped the cut session: one engine session, not two"
    assert any(c["callerid"] == caller and c["context"] == "test-callers" for c in channels(pbx)), "the caller is still on the line"
    now = cc.call_of("ana")
    assert (now.linkedid, now.number, now.answered_at) == (linkedid, caller, answered_at), "the board still shows ana on the same call"
    assert cc.agent_state("ana") == "on_call"
    assert cc.engine.board.agent_view("ana")["call"]["number"] == caller, "ana's screen, were she to reload it, shows the call"

    assert cc.ask("ana", "hangup", {})["ok"], "call controls work on the resynced call"
    call = stored_once(cc, caller)
    assert (call.linkedid, call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == (
        linkedid,
        "answered",
        "support",
        "ana",
        "agent",
        True,
    )
    assert [(q, a, e) for _, _, q, a, e, *_ in queue_log_of(pbx, caller)] == [
        ("support", "NONE", "ENTERQUEUE"),
        ("support", "ana", "CONNECT"),
        ("support", "ana", "COMPLETEAGENT"),
    ], "Asterisk's own queue_log: one visit, ana answered, ana hung up"
    until(lambda: cc.agent_state("ana") == "available", 10, "ana available again")


def test_a_caller_who_hangs_up_while_the_link_is_silent_is_stored_once_hangup_by_unknown(pbx, center, link):
    cc = center(via=link)
    caller = ana_talks_to(cc, pbx)
    linkedid = cc.call_of("ana").linkedid
    [phone] = [c["channel"] for c in channels(pbx) if c["callerid"] == caller and c["context"] == "test-callers"]

    link.silence()
    until(lambda: not cc.engine.client.connected.is_set(), 10, "the engine notices the silent link (no Pong) and drops it")
    assert pbx.action({"Action": "Hangup", "Channel": phone}).get("Response") == "Success", "the caller hangs up in the gap"
    until(lambda: not channels(pbx), 10, "Asterisk ends the whole call")
    assert cc.call_of("ana") and cc.call_of("ana").linkedid == linkedid, "not seen by the engine yet"
    assert cc.store.calls() == []

    link.restore()
    until(lambda: cc.resyncs == 2, 15, "the engine reconnects and resyncs")
    call = stored_once(cc, caller, 5)
    assert (call.linkedid, call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == (
        linkedid,
        "answered",
        "support",
        "ana",
        "unknown",
        True,
    ), "who hung up fell in the gap"
    assert call.ended_at.timestamp() >= call.answered_at.timestamp()
    assert [e for _, _, _, _, e, *_ in queue_log_of(pbx, caller)] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"], (
        "Asterisk's own word: the caller hung up"
    )
    until(lambda: cc.agent_state("ana") == "available", 5, "ana available again after the resync")
    assert cc.call_of("ana") is None
    until(lambda: engine_sessions(pbx) == 1, 10, "Asterisk let go of the silent session")


def uptime(pbx: Asterisk) -> int | None:
    """Seconds since Asterisk (re)started, or None while it cannot say (down, or shutting down)."""
    try:
        line = pbx.cli("core show uptime seconds")
    except RuntimeError:
        return None
    return int(line.split("System uptime:")[1].split()[0]) if "System uptime:" in line else None


def restarted_within(pbx: Asterisk, began: float, pid: str) -> None:
    """Asterisk came back by itself after `began` (time.monotonic()), as the same process (restarted in place)."""
    until(lambda: (up := uptime(pbx)) is not None and up <= time.monotonic() - began, 30, "Asterisk restarted by itself")
    assert (pbx.run / "run" / "asterisk.pid").read_text() == pid, "the same process, restarted in place"


def answers_to(cc: Center) -> list[tuple[str, object]]:
    """Every action the engine's client sends from now on, with Asterisk's answer (or the error)."""
    answers: list[tuple[str, object]] = []
    send = cc.engine.client.send_action

    async def spied(action, **kwargs):
        try:
            reply = await send(action, **kwargs)
        except Exception as exc:
            answers.append((action.get("Action"), exc))
            raise
        answers.append((action.get("Action"), reply))
        return reply

    cc.engine.client.send_action = spied  # type: ignore[method-assign]
    return answers


def refused(answers: list[tuple[str, object]], action: str) -> bool:
    """Asterisk answered `action` with its shutting-down error."""
    return any(
        name == action and isinstance(reply, dict) and reply.get("Message") == "Asterisk is shutting down" for name, reply in list(answers)
    )


def fresh_login(pbx: Asterisk) -> Message:
    """A fresh login as the tester: Asterisk's answer."""
    with socket.create_connection(("127.0.0.1", pbx.port), timeout=5) as probe:
        probe.sendall(encode({"Action": "Login", "Username": TESTER[0], "Secret": TESTER[1], "Events": "off", "ActionID": "probe"}))
        codec = AMICodec()
        while True:
            for item in codec.feed(probe.recv(65536)):
                if isinstance(item, Message) and item.get("ActionID") == "probe":
                    return item


def command_without_waiting(pbx: Asterisk, command: str) -> None:
    """A CLI command through AMI as the tester, not waiting for its end: `core restart gracefully` blocks until the calls end
    (and a remote console, `asterisk -rx`, hangs on past the restart). Returns once Asterisk is shutting down."""
    with socket.create_connection(("127.0.0.1", pbx.port), timeout=5) as raw:
        raw.sendall(encode({"Action": "Login", "Username": TESTER[0], "Secret": TESTER[1], "Events": "off", "ActionID": "in"}))
        raw.sendall(encode({"Action": "Command", "Command": command, "ActionID": "cmd"}))
        until(lambda: fresh_login(pbx).get("Message") == "Asterisk is shutting down", 5, f"{command}: Asterisk shutting down")


def call_in_a_gap(pbx: Asterisk, center, link: Link, caller_wait: str) -> tuple[Center, str]:
    """ana available, then the engine's AMI link cut (new connections refused) and a caller into support."""
    cc = center(via=link, reads_logs=True)
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    until(lambda: cc.agent_state("ana") == "available", 10, "ana available")
    link.cut(refuse=True)
    until(lambda: not cc.engine.client.connected.is_set(), 10, "the engine sees the link go")
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, CALLER_WAIT=caller_wait)
    return cc, caller


def test_a_call_wholly_inside_an_ami_gap_is_stored_from_asterisks_queue_log(pbx, center, link):
    cc, caller = call_in_a_gap(pbx, center, link, "1")
    until(lambda: [line[4] for line in queue_log_of(pbx, caller)][-1:] == ["COMPLETECALLER"], 20, "ana answers and the caller hangs up")
    until(lambda: not channels(pbx), 10, "Asterisk ends the whole call")
    assert not [c for c in cc.store.calls() if c.caller_number == caller]

    link.restore()
    until(lambda: cc.resyncs == 2, 15, "the engine reconnects and resyncs")
    call = stored_once(cc, caller, 5)
    enter, connect, complete = queue_log_of(pbx, caller)
    assert (call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == ("answered", "support", "ana", "caller", True)
    assert call.enqueued_at.timestamp() == float(enter[0]) and call.answered_at.timestamp() == float(enter[0]) + float(connect[5])
    assert call.talk_s == float(complete[6]) and [leg.callid for leg in call.legs] == [enter[1]]


def test_a_call_that_never_reaches_a_queue_inside_an_ami_gap_is_stored_from_asterisks_cdr(pbx, center, link):
    cc = center(via=link, reads_logs=True)
    link.cut(refuse=True)
    until(lambda: not cc.engine.client.connected.is_set(), 10, "the engine sees the link go")
    caller = number()
    pbx.call("5550100@test-world", "keys", caller, CALLER_WAIT="1")
    arriving = lambda: [r for r in pbx.cdr() if r["src"] == caller and r["channel"].endswith(";2")]  # noqa: E731
    [row] = until(arriving, 20, "Asterisk's CDR of the call, which went to no queue")
    assert not queue_log_of(pbx, caller) and not [c for c in cc.store.calls() if c.caller_number == caller]

    link.restore()
    until(lambda: cc.resyncs == 2, 15, "the engine reconnects and resyncs")
    call = stored_once(cc, caller, 5)
    assert (call.linkedid, call.outcome, call.queue, call.agent, call.resynced, call.legs) == (
        row["linkedid"],
        "ivr_only",
        None,
        None,
        True,
        [],
    ), "stored under Asterisk's linkedid, as the engine stores the calls it follows"
    assert (call.started_at.strftime("%Y-%m-%d %H:%M:%S"), call.ended_at.strftime("%Y-%m-%d %H:%M:%S")) == (row["start"], row["end"])


def test_a_caller_answered_inside_an_ami_gap_is_stored_with_the_agent_and_the_answer_queue_log_gives(pbx, center, link):
    cc, caller = call_in_a_gap(pbx, center, link, "30")
    until(lambda: "CONNECT" in [line[4] for line in queue_log_of(pbx, caller)], 20, "ana answers in the gap")
    link.restore()
    until(lambda: cc.resyncs == 2, 15, "the engine reconnects and resyncs")
    until(lambda: cc.call_of("ana") and cc.call_of("ana").number == caller, 10, "ana's screen shows the call")
    assert cc.ask("ana", "hangup", {})["ok"]
    call = stored_once(cc, caller)
    enter, connect, _ = queue_log_of(pbx, caller)
    assert (call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == ("answered", "support", "ana", "agent", True)
    assert call.answered_at.timestamp() == pytest.approx(float(enter[0]) + float(connect[5]), abs=1.0) and call.wait_s >= 0


def test_core_restart_now_mid_call_ends_the_call_and_the_next_call_works(pbx, center):
    cc = center()
    caller = ana_talks_to(cc, pbx)
    linkedid = cc.call_of("ana").linkedid
    pid = (pbx.run / "run" / "asterisk.pid").read_text()
    pbx.close_tester()  # its socket dies with the restart; the next pbx.action() logs in again
    began = time.monotonic()

    pbx.cli("core restart now")
    restarted_within(pbx, began, pid)
    until(lambda: cc.resyncs == 2, 15, "the engine reconnects and resyncs by itself")
    assert not cc.running.done(), "the engine runs on"
    assert not channels(pbx), "the restart dropped every call"
    call = stored_once(cc, caller, 5)
    # Asterisk hangs every channel up before it goes (SoftHangupRequest Cause 4, AST_SOFTHANGUP_SHUTDOWN) and sends the
    # events, so the call usually ends as seen rather than in the gap (`resynced` then false); the system hung it up,
    # whatever app_queue's COMPLETEAGENT/COMPLETECALLER says.
    assert [e.get("Cause") for e in cc.events if e.get("Event") == "SoftHangupRequest"][:1] == ["4"], (
        "Asterisk's own word: AST_SOFTHANGUP_SHUTDOWN"
    )
    assert (call.linkedid, call.outcome, call.queue, call.agent, call.hangup_by) == (linkedid, "answered", "support", "ana", "system")
    assert queue_log_of(pbx, caller)[-1][4] in ("COMPLETEAGENT", "COMPLETECALLER"), "Asterisk's own queue_log closed the visit"
    assert call.ended_at >= call.answered_at
    assert cc.call_of("ana") is None and not cc.engine.monitor.tracker.calls, "nothing left open"
    until(lambda: cc.agent_state("ana") == "logged_out", 5, "app_queue forgot ana's membership (persistentmembers = no): logged out")
    assert "ana" not in pbx.cli("queue show support"), "Asterisk's own word"
    assert cc.engine.board.agent_view("ana")["call"] is None

    after = ana_talks_to(cc, pbx)
    assert cc.ask("ana", "hangup", {})["ok"]
    call = stored_once(cc, after)
    assert (call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == ("answered", "support", "ana", "agent", False)
    assert [(q, a, e) for _, _, q, a, e, *_ in queue_log_of(pbx, after)] == [
        ("support", "NONE", "ENTERQUEUE"),
        ("support", "ana", "CONNECT"),
        ("support", "ana", "COMPLETEAGENT"),
    ]
    assert [c.caller_number for c in cc.store.calls()] == [caller, after]


def test_core_restart_gracefully_waits_for_the_call_and_a_refused_login_is_retried(pbx, center, link):
    cc = center(via=link)
    caller = ana_talks_to(cc, pbx, caller_wait="6")  # the caller hangs up 6 s after ana answers
    linkedid = cc.call_of("ana").linkedid
    pid = (pbx.run / "run" / "asterisk.pid").read_text()
    answers = answers_to(cc)
    pbx.close_tester()
    began = time.monotonic()

    command_without_waiting(pbx, "core restart gracefully")
    until(lambda: refused(answers, "Ping"), 5, "Asterisk refuses the keepalive's Ping: it is shutting down, waiting for the call")
    assert cc.engine.client.connected.is_set() and cc.engine.client.sessions == 1, "an answer, even that one, is a live link"
    assert cc.call_of("ana").linkedid == linkedid

    link.cut()
    until(lambda: refused(answers, "Login"), 5, "the engine reconnects and Asterisk refuses the login while shutting down")
    assert not cc.running.done(), "a PBX shutting down is not a wrong password: the engine retries"
    restarted_within(pbx, began, pid)
    until(lambda: cc.resyncs == 2, 15, "the engine logs in once Asterisk is back")

    def restarted_after_the_call() -> bool:
        lines = pbx.queue_log()
        visit = next(line[1] for line in lines if line[4] == "ENTERQUEUE" and caller in line[5:])
        hung_up = next(i for i, line in enumerate(lines) if line[1] == visit and line[4] == "COMPLETECALLER")
        return any(line[4] == "QUEUESTART" for line in lines[hung_up:])

    until(restarted_after_the_call, 10, "Asterisk's queue_log: the restart waited for the call's end (QUEUESTART after it)")
    call = stored_once(cc, caller, 5)
    assert (call.linkedid, call.outcome, call.queue, call.agent, call.hangup_by, call.resynced) == (
        linkedid,
        "answered",
        "support",
        "ana",
        "unknown",
        True,
    ), "the caller hung up while the engine was refused"
    assert [e for _, _, _, _, e, *_ in queue_log_of(pbx, caller)] == ["ENTERQUEUE", "CONNECT", "COMPLETECALLER"], (
        "Asterisk's own word: the call ran to its end, the caller hung up"
    )
    until(lambda: cc.agent_state("ana") == "logged_out", 5, "ana logged out: the new Asterisk has no members")
