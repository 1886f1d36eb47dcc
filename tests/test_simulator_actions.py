"""Simulator actions beyond the recorded scenarios: Dial, Bridge, BlindTransfer, MixMonitor with a silent muted span."""

from __future__ import annotations

import wave
from array import array

import pytest

from pbx.codec import Message
from pbx.simulator import actions
from pbx.simulator.app_queue import QueueEngine
from pbx.simulator.core import Sim
from pbx.simulator.dialplan import MemberConf, QueueConf, load_dialplan
from pbx.tracker import CallTracker

START = 1_795_500_000.0
DIALPLAN = """
[inbound]
exten => s,1,Answer()
 same => n,Dial(Local/2001@phones/n&Local/2002@phones/n,20)
 same => n,Hangup()
exten => q,1,Answer()
 same => n,Queue(support,,,,60)
 same => n,Hangup()
exten => billing,1,Queue(billing,,,,60)
 same => n,Hangup()

[phones]
exten => 2001,1,Wait(5)
 same => n,Hangup()
exten => 2002,1,Wait(1)
 same => n,Answer()
 same => n,Wait(8)
 same => n,Hangup()

[agents]
exten => _30XX,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()

[callers]
exten => stay,1,Wait(120)
 same => n,Hangup()
"""


@pytest.fixture
def pbx(tmp_path):
    conf = tmp_path / "extensions.conf"
    conf.write_text(DIALPLAN)
    events: list[dict[str, str]] = []
    log: list[str] = []
    sim = Sim(load_dialplan(conf), start=START, emit=events.append, queue_log=log.append)
    sim.recordings.folder = tmp_path / "rec"
    QueueEngine(
        sim,
        {
            "support": QueueConf(
                "support", strategy="linear", timeout=10, members=[MemberConf("Local/3001@agents/n", 0, "Alice", "Local/3001@agents")]
            ),
            "billing": QueueConf(
                "billing", strategy="linear", timeout=10, members=[MemberConf("Local/3002@agents/n", 0, "Bob", "Local/3002@agents")]
            ),
        },
    )
    return sim, events, log


def call(sim: Sim, exten: str) -> list[dict[str, str]]:
    return actions.handle(
        sim,
        Message(
            [
                ("Action", "Originate"),
                ("ActionID", "o1"),
                ("Channel", f"Local/{exten}@inbound"),
                ("Context", "callers"),
                ("Exten", "stay"),
                ("CallerID", '"Ana" <5511911112222>'),
            ]
        ),
    )


def names(events, event):
    return [e for e in events if e["Event"] == event]


def test_dial_rings_both_bridges_the_one_that_answers_and_continues(pbx):
    sim, events, _ = pbx
    assert call(sim, "s")[0]["Message"] == "Originate successfully queued"
    sim.advance(START + 60)
    ends = [(e["DestChannel"].split("-")[0], e["DialStatus"]) for e in names(events, "DialEnd") if "Channel" in e]
    assert ends == [("Local/2002@phones", "ANSWER"), ("Local/2001@phones", "CANCEL")]
    assert [e["Variable"] for e in names(events, "VarSet") if e["Value"] == "ANSWER"] == ["DIALSTATUS", "DIALSTATUS"], (
        "at the answer and when the call ends, as Asterisk"
    )
    assert len(names(events, "BridgeEnter")) == 2 and not sim.channels


def test_blind_transfer_moves_the_caller_to_another_queue(pbx):
    sim, events, log = pbx
    call(sim, "q")
    sim.advance(START + 5)
    agent = next(e["Channel"] for e in names(events, "BridgeEnter") if "agents" in e["Channel"])
    reply = actions.handle(
        sim, Message([("Action", "BlindTransfer"), ("ActionID", "t1"), ("Channel", agent), ("Context", "inbound"), ("Exten", "billing")])
    )
    assert reply[0]["Message"] == "Transfer succeeded"
    sim.advance(START + 200)
    complete = names(events, "AgentComplete")
    assert [(e["MemberName"], e["Reason"]) for e in complete] == [("Alice", "transfer"), ("Bob", "agent")]
    assert [line.split("|")[4] for line in log] == ["ENTERQUEUE", "CONNECT", "BLINDTRANSFER", "ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    tracker = CallTracker()
    domain = [ev for e in events for ev in tracker.feed(Message(e.items()), START)]
    assert [(ev.data["how"], ev.data["target"]) for ev in domain if ev.kind == "transferred"] == [("blind", "billing")]
    records = [ev.record for ev in domain if ev.record]
    assert [(r.outcome, r.transfers, r.agent) for r in records] == [("answered", 1, "Bob")]
    [record] = records
    assert [(leg.queue, leg.agent, leg.ended_by) for leg in record.legs] == [
        ("support", "Alice", "transferred_blind"),
        ("billing", "Bob", "completed"),
    ], "the first queue keeps Alice's leg, the second Bob's (as queue_log's two visits)"


def test_bridge_and_error_wording(pbx):
    sim, events, _ = pbx
    assert (
        actions.handle(sim, Message([("Action", "Bridge"), ("Channel1", "nope"), ("Channel2", "nope2")]))[0]["Message"]
        == "Channel1 does not exist: nope"
    )
    assert actions.handle(sim, Message([("Action", "Originate")]))[0]["Message"] == "Channel not specified"
    assert actions.handle(sim, Message([("Action", "Hangup"), ("Channel", "PJSIP/x-1")]))[0]["Message"] == "No such channel"


def test_mixmonitor_writes_a_wav_whose_muted_span_is_silent(pbx):
    sim, events, _ = pbx
    call(sim, "q")
    sim.advance(START + 3)
    caller = next(e["Channel"] for e in names(events, "QueueCallerJoin"))
    for at, action in (
        (3, [("Action", "MixMonitor"), ("Channel", caller), ("File", "2026/support/call.wav")]),
        (5, [("Action", "MixMonitorMute"), ("Channel", caller), ("Direction", "both"), ("State", "1")]),
        (8, [("Action", "MixMonitorMute"), ("Channel", caller), ("Direction", "both"), ("State", "0")]),
        (10, [("Action", "StopMixMonitor"), ("Channel", caller)]),
    ):
        sim.advance(START + at)
        assert actions.handle(sim, Message(action))[0]["Response"] == "Success"
    [path] = sim.recordings.written
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        samples = array("h", wav.readframes(wav.getnframes()))
    assert len(samples) == 7 * 8000
    second = lambda s: samples[s * 8000 : (s + 1) * 8000]  # noqa: E731
    assert max(map(abs, second(0))) > 1000 and max(map(abs, second(6))) > 1000
    assert max(map(abs, samples[2 * 8000 : 5 * 8000])) == 0
    assert [e["State"] for e in names(events, "MixMonitorMute")] == ["1", "0"]


def test_supervisor_listens_through_chanspy_until_the_call_ends(pbx, tmp_path):
    sim, events, _ = pbx
    call(sim, "q")
    sim.advance(START + 5)
    agent = next(e["Channel"] for e in names(events, "BridgeEnter") if "agents" in e["Channel"])
    reply = actions.handle(
        sim,
        Message(
            [
                ("Action", "Originate"),
                ("ActionID", "spy"),
                ("Channel", "Local/2002@phones"),
                ("Application", "ChanSpy"),
                ("Data", agent.split(";")[0] + ",qB"),
                ("CallerID", '"Supervisor" <9000>'),
            ]
        ),
    )
    assert reply[0]["Response"] == "Success"
    sim.advance(START + 9)
    [start] = names(events, "ChanSpyStart")
    assert start["SpyeeChannel"].startswith("Local/3001@agents") and start["SpyerChannel"].startswith("Local/2002@phones")
    assert [e["Value"] for e in names(events, "VarSet") if e["Variable"] == "SPY_MODE"] == ["barge"]
    sim.advance(START + 200)
    assert len(names(events, "ChanSpyStop")) == 1 and not sim.channels


def _agent_leg(events):
    return next(
        e["Channel"] for e in names(events, "BridgeEnter") if e["Channel"].startswith("Local/3001@agents") and e["Channel"].endswith(";1")
    )


def test_attended_transfer_hands_the_caller_to_the_target_when_the_agent_hangs_up(pbx):
    sim, events, log = pbx
    call(sim, "q")
    sim.advance(START + 5)
    agent = _agent_leg(events)
    reply = actions.handle(sim, Message([("Action", "Atxfer"), ("Channel", agent), ("Context", "phones"), ("Exten", "2002")]))
    assert reply[0]["Message"] == "Atxfer successfully queued"
    sim.advance(START + 7)
    assert actions.handle(sim, Message([("Action", "Hangup"), ("Channel", agent)]))[0]["Response"] == "Success"
    sim.advance(START + 200)
    [done] = names(events, "AttendedTransfer")
    assert done["TransfereeChannel"].startswith("Local/q@inbound") and done["TransferTargetChannel"].startswith("Local/2002@phones")
    caller_holds = [e["Event"] for e in events if e["Event"].startswith("MusicOnHold")]
    assert caller_holds == ["MusicOnHoldStart", "MusicOnHoldStop"]
    assert [line.split("|")[4] for line in log] == ["ENTERQUEUE", "CONNECT", "ATTENDEDTRANSFER"]
    assert [e["Reason"] for e in names(events, "AgentComplete")] == ["transfer"]
    tracker = CallTracker()
    domain = [ev for e in events for ev in tracker.feed(Message(e.items()), START)]
    assert [ev.data["how"] for ev in domain if ev.kind == "transferred"] == ["attended"]
    [record] = [ev.record for ev in domain if ev.record]
    assert (record.outcome, record.agent, record.transfers) == ("answered", "Alice", 1)
    assert not sim.channels


def test_attended_transfer_dropped_before_the_target_answers_ends_the_call(pbx):
    sim, events, log = pbx
    call(sim, "q")
    sim.advance(START + 5)
    agent = _agent_leg(events)
    actions.handle(sim, Message([("Action", "Atxfer"), ("Channel", agent), ("Context", "phones"), ("Exten", "2002")]))
    actions.handle(sim, Message([("Action", "Hangup"), ("Channel", agent)]))
    sim.advance(START + 200)
    assert not names(events, "AttendedTransfer")
    assert [(e["DialStatus"]) for e in names(events, "DialEnd") if e.get("DestChannel", "").startswith("Local/2002")] == ["CANCEL"]
    assert [line.split("|")[4] for line in log] == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    assert not sim.channels


AGI_PLAN = """
[ivr]
exten => s,1,Answer()
 same => n,AGI(agi:async)
 same => n,Hangup()
exten => after,1,Wait(2)
 same => n,Hangup()

[callers]
exten => keys,1,Wait(1.5)
 same => n,SendDTMF(4321#)
 same => n,Wait(30)
 same => n,Hangup()
"""


def test_async_agi_commands_answer_like_asterisk(tmp_path):
    conf = tmp_path / "extensions.conf"
    conf.write_text(AGI_PLAN)
    events: list[dict[str, str]] = []
    sim = Sim(load_dialplan(conf), start=START, emit=events.append)
    actions.handle(
        sim,
        Message(
            [
                ("Action", "Originate"),
                ("Channel", "Local/s@ivr"),
                ("Context", "callers"),
                ("Exten", "keys"),
                ("CallerID", "<5511933334444>"),
            ]
        ),
    )
    sim.advance(START + 1)
    channel = next(e["Channel"] for e in names(events, "AsyncAGIStart"))
    commands = [
        "GET DATA welcome 3000 4",
        "SET VARIABLE ACCOUNT 4321",
        "GET VARIABLE ACCOUNT",
        "GET VARIABLE NOPE",
        "STREAM FILE goodbye 0",
        "EXEC Playback silence/1",
        "FROB NICATE",
        "SET EXTENSION after",
        "SET PRIORITY 1",
        "ASYNCAGI BREAK",
    ]
    for number, command in enumerate(commands):
        answer = actions.handle(sim, Message([("Action", "AGI"), ("Channel", channel), ("Command", command), ("CommandID", f"c{number}")]))
        assert answer[0]["Message"] == "Added AGI command to queue"
    sim.advance(START + 40)
    from urllib.parse import unquote

    results = {e["CommandId"]: unquote(e["Result"]).strip() for e in names(events, "AsyncAGIExec")}
    assert results == {
        "c0": "200 result=4321",
        "c1": "200 result=1",
        "c2": "200 result=1 (4321)",
        "c3": "200 result=0",
        "c4": "200 result=0 endpos=8000",
        "c5": "200 result=0",
        "c6": "510 Invalid or unknown command",
        "c7": "200 result=0",
        "c8": "200 result=0",
        "c9": "200 result=0",
    }
    assert [e["Application"] for e in names(events, "Newexten") if e["Channel"] == channel][-2:] == ["Wait", "Hangup"]
    assert names(events, "AsyncAGIEnd")
    late = actions.handle(sim, Message([("Action", "AGI"), ("Channel", channel), ("Command", "ANSWER")]))
    assert late[0]["Message"] == "Channel does not exist."


def test_setvar_getvar_and_redirect(pbx):
    sim, events, _ = pbx
    call(sim, "s")
    sim.advance(START + 0.5)
    caller = next(e["Channel"] for e in names(events, "Newchannel") if e["Channel"].endswith(";2"))
    assert (
        actions.handle(sim, Message([("Action", "Setvar"), ("Channel", caller), ("Variable", "VIP"), ("Value", "yes")]))[0]["Message"]
        == "Variable Set"
    )
    got = actions.handle(sim, Message([("Action", "Getvar"), ("Channel", caller), ("Variable", "VIP")]))[0]
    assert (got["Variable"], got["Value"]) == ("VIP", "yes")
    moved = actions.handle(
        sim, Message([("Action", "Redirect"), ("Channel", caller), ("Context", "inbound"), ("Exten", "q"), ("Priority", "1")])
    )
    assert moved[0]["Message"] == "Redirect successful"
    sim.advance(START + 10)
    assert [e["Queue"] for e in names(events, "QueueCallerJoin")] == ["support"]
