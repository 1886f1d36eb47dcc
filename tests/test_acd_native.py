"""Native mode on the simulator: the IVR hands callers to our ACD, which dials agents with EXEC Dial."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from acd.machine import ACD, Abandoned, Connected, Overflow, Ring, StateChange
from acd.model import QueueSettings
from acd.native import Held, NativeACD
from ivr.engine import IVREngine
from ivr.flow import load_flow
from kernel.values import AgentState
from pbx.client import AMIClient, ClientOptions
from pbx.codec import Message
from pbx.simulator.dialplan import Step
from pbx.simulator.server import SimulatorServer
from pbx.tracker import CallTracker
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp()
FLOW = """\
flow: native
entry: {context: callcenter-ivr}
languages: [en]
start: menu
nodes:
  menu: {kind: menu, prompt: ~, timeout: 2, options: {"1": support}, on_fail: support}
  support: {kind: queue, queue: support, mode: native, priority: 1, skills: []}
"""
EXTRA = """
[phones]
exten => 2001,1,Wait(3)
 same => n,Hangup()
exten => 2002,1,Wait(1)
 same => n,Answer()
 same => n,Wait(6)
 same => n,Hangup()
exten => 2003,1,Answer()
 same => n,Wait(2)
 same => n,Hangup(38)

[callers]
exten => patient,1,Wait(1)
 same => n,SendDTMF(1)
 same => n,Wait(60)
 same => n,Hangup()
exten => impatient,1,Wait(1)
 same => n,SendDTMF(1)
 same => n,Wait(4)
 same => n,Hangup()
"""


ANN_AND_BOB = [("ann", "Local/2001@phones/n"), ("bob", "Local/2002@phones/n")]


class Rig:
    """The simulator with the contrib dialplan, the IVR engine handing callers to a native ACD, over real sockets."""

    def __init__(self, tmp_path, settings: QueueSettings, extra: str = "", more: tuple[QueueSettings, ...] = ()) -> None:
        (tmp_path / "flow.yaml").write_text(FLOW)
        conf = tmp_path / "extensions.conf"
        conf.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + EXTRA + extra)
        self.server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path)
        self.server.configure({}, None)
        self.flow = load_flow(tmp_path / "flow.yaml")
        self.acd = ACD({q.name: q for q in (settings, *more)})
        self.seen: list = []
        self.told: list[tuple[str, dict]] = []
        self.tracker = CallTracker()
        self.domain: list = []
        self.events: list = []
        self.needs: dict[str, int] | None = None

    async def start(self) -> None:
        port = await self.server.start()
        self.client = AMIClient(
            ClientOptions("127.0.0.1", port, "cti", "pw", reconnect_min=0.3, reconnect_max=0.4),
            self._on_event,
            lambda snapshot: self.native.on_resync(snapshot.channels),
        )
        self.native = NativeACD(
            self.client, self.acd, on_commands=self.seen.extend, clock=lambda: self.server.sim.now, on_call=self._on_call
        )
        self.ivr = IVREngine(
            self.client,
            [self.flow],
            clock=lambda: NOON,
            on_handoff=lambda ch, linkedid, done: self.native.handoff(
                ch, linkedid, done["queue"], done["priority"], self.needs, language=done["language"]
            ),
        )
        self.task = asyncio.create_task(self.client.run())
        await self.client.connected.wait()
        await self.ivr.beat()

    def _on_call(self, kind: str, linkedid: str, t: float, **data) -> None:
        self.told.append((kind, data))
        self.domain += self.tracker.acd(kind, linkedid, t, **data)

    def _on_event(self, message, arrival) -> None:
        self.events.append(message)
        self.domain += self.tracker.feed(message, self.server.sim.now)
        self.ivr.on_event(message, arrival)
        self.native.on_event(message, arrival)

    @property
    def records(self) -> list:
        return [e.record for e in self.domain if e.record is not None]

    def call(self, script: str, number: str = "5511977776666") -> None:
        self.began = self.server.sim.now
        self.server.handle(
            Message(
                [
                    ("Action", "Originate"),
                    ("Channel", "Local/s@callcenter-ivr"),
                    ("Context", "callers"),
                    ("Exten", script),
                    ("CallerID", f"<{number}>"),
                ]
            )
        )

    async def until(self, seconds: float, done: Callable[[Rig], bool] | None = None) -> None:
        """Run the sim for `seconds` of its time, or until `done` (then a deadline, not a duration: load slows the engine
        in real time, which the sim at speed 20 counts twentyfold)."""
        while self.server.sim.now < self.began + seconds and not (done is not None and done(self)):
            self.native.tick()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.native.stop()
        await self.ivr.stop()
        await self.client.close()
        await self.task
        await self.server.stop()

    def agi(self) -> list[str]:
        return [a["Command"] for a in self.server.actions if a.get("Action") == "AGI"]


async def scenario(
    tmp_path,
    caller: str,
    agents: list[tuple[str, str]],
    run_for: float,
    strategy: str = "longest_idle",
    skills: dict[str, dict[str, int]] | None = None,
    needs: dict[str, int] | None = None,
    done: Callable[[Rig], bool] | None = None,
    **settings,
) -> Rig:
    rig = Rig(tmp_path, QueueSettings("support", strategy=strategy, ring_timeout_s=2, retry_s=1, **settings))
    rig.needs = needs
    await rig.start()
    for name, interface in agents:
        rig.native.login(name, interface, ["support"], (skills or {}).get(name))
    rig.call(caller)
    await rig.until(run_for, done)
    await rig.stop()
    return rig


def test_the_caller_rings_an_agent_who_does_not_answer_then_one_who_does(tmp_path):
    rig = asyncio.run(
        scenario(
            tmp_path,
            "patient",
            ANN_AND_BOB,
            300,
            done=lambda r: len(r.records) == 1 and not r.server.sim.channels,
        )
    )
    server, seen = rig.server, rig.seen
    assert [c.agent for c in seen if isinstance(c, Ring)][:2] == ["ann", "bob"]
    [connected] = [c for c in seen if isinstance(c, Connected)]
    assert connected.agent == "bob"
    commands = rig.agi()
    assert commands[:3] == ["WAIT FOR DIGIT 2000", "SET MUSIC on default", "EXEC Dial Local/2001@phones/n,2"]
    assert "EXEC Dial Local/2002@phones/n,2" in commands and commands[-1] == "HANGUP"
    assert not server.sim.channels
    timeline = [(e.kind, e.data.get("agent")) for e in rig.domain if e.kind in ("agent_ringing", "answered")]
    assert timeline == [("agent_ringing", "ann"), ("agent_ringing", "bob"), ("answered", "bob")], (
        "each agent's screen pops as the phone rings"
    )
    [record] = rig.records
    assert (record.outcome, record.agent, record.queue) == ("answered", "bob", "support")


def test_an_agent_who_misses_a_ring_is_paused_and_the_next_one_answers(tmp_path):
    rig = asyncio.run(
        scenario(
            tmp_path,
            "patient",
            ANN_AND_BOB,
            300,
            done=lambda rig: any(isinstance(c, Connected) for c in rig.seen),
            autopause_after=1,
        )
    )
    ann = [(c.state.value, c.reason) for c in rig.seen if isinstance(c, StateChange) and c.agent == "ann"]
    assert ann == [("available", None), ("ringing", None), ("paused", "missed_calls")]
    assert [c.agent for c in rig.seen if isinstance(c, Connected)] == ["bob"]
    assert rig.acd.agents["ann"].state.value == "paused", "she stays paused until she comes back herself"


def test_a_caller_over_the_maximum_length_hears_the_message_and_never_joins(tmp_path):
    async def run() -> Rig:
        rig = Rig(tmp_path, QueueSettings("support", max_length=1, overflow="message", overflow_target="cc/all-busy"))
        await rig.start()
        rig.call("patient", "5511900000001")
        await rig.until(30, lambda r: len(r.acd.callers) == 1)
        rig.call("patient", "5511900000002")
        await rig.until(30, lambda r: any(isinstance(c, Overflow) for c in r.seen) and len(r.records) == 1)
        await rig.stop()
        return rig

    rig = asyncio.run(run())
    [full] = [c for c in rig.seen if isinstance(c, Overflow)]
    assert full.why == "full" and list(rig.acd.callers) != [full.caller] and len(rig.acd.callers) == 1
    turned_away = [a["Command"] for a in rig.server.actions if a.get("Action") == "AGI" and a.get("Channel") == full.caller]
    assert turned_away[-3:] == ["SET MUSIC off", "GET DATA cc/all-busy 1 1", "HANGUP"]
    assert [k for k, _ in rig.told] == ["joined", "left"] and rig.told[1][1] == {"reason": "full"}, "only the first caller joined"
    [record] = rig.records
    assert (record.caller_number, record.outcome, record.queue) == ("5511900000002", "full", None), "as app_queue's FULL: no visit"


def test_a_caller_who_hangs_up_while_waiting_is_an_abandon(tmp_path):
    rig = asyncio.run(scenario(tmp_path, "impatient", [], 60, done=lambda r: len(r.records) == 1))
    [gone] = [c for c in rig.seen if isinstance(c, Abandoned)]
    assert gone.queue == "support" and 2 < gone.wait_s < 5
    [record] = rig.records
    assert (record.outcome, record.queue, record.hangup_by) == ("abandoned", "support", "caller") and 2 < record.wait_s < 5


def test_announcements_then_overflow_to_voicemail(tmp_path):
    async def run() -> Rig:
        rig = Rig(
            tmp_path, QueueSettings("support", announce_every_s=5, max_wait_s=12, overflow="voicemail", overflow_target="200@default")
        )
        await rig.start()
        rig.call("patient")
        await rig.until(60, lambda r: "EXEC VoiceMail 200@default,u" in r.agi())
        await rig.stop()
        return rig

    commands = asyncio.run(run()).agi()
    assert commands.count("GET DATA cc/your-position-en 1 1") >= 1 and 'SAY DIGITS 1 ""' in commands, "in the caller's language"
    assert commands[-2:] == ["SET MUSIC off", "EXEC VoiceMail 200@default,u"], "the rest of an announcement is dropped for the overflow"


@pytest.mark.parametrize(
    "script, settings, why",
    [
        ("callme", dict(callback_key="9"), "exit_key"),
        ("patient", dict(max_wait_s=5, overflow="callback"), "timeout"),
    ],
)
def test_callback_keeps_the_place_and_calls_the_caller_back(tmp_path, script, settings, why):
    async def run():
        rig = Rig(
            tmp_path,
            QueueSettings("support", ring_timeout_s=10, announce_every_s=3, **settings),
            "\n[customers]\nexten => _X.,1,Answer()\n same => n,Wait(4)\n same => n,Hangup()\n"
            "\n[callers]\nexten => callme,1,Wait(1)\n same => n,SendDTMF(1)\n same => n,Wait(2)\n same => n,SendDTMF(9)\n"
            " same => n,Wait(30)\n same => n,Hangup()\n",
        )
        rig.server.sim.dialplan.contexts["callcenter-callback"]["_X."][1] = Step(2, "Dial", "Local/${EXTEN}@customers/n,45")
        await rig.start()
        rig.call(script, "5511955554444")
        await rig.until(60, lambda r: "HANGUP" in r.agi() and not r.server.sim.channels)
        waiting_after_hangup = list(rig.acd.callers)
        await rig.until(20)  # nobody free for a while: the place is kept
        rig.native.login("bob", "Local/2002@phones/n", ["support"])
        await rig.until(90, lambda r: any(x.outcome == "callback" for x in r.records) and not r.acd.callers)
        await rig.stop()
        return rig, waiting_after_hangup

    rig, waiting = asyncio.run(run())
    assert len(waiting) == 1, "the caller hung up but kept the place"
    assert not [c for c in rig.seen if isinstance(c, Abandoned)]
    [record] = [r for r in rig.records if r.caller_number == "5511955554444" and r.queue]
    assert (record.outcome, record.queue) == (why, "support"), "the call is recorded as a call back, not an abandon"
    assert rig.agi()[-3:] == ["SET MUSIC off", "GET DATA cc/callback-ok-en 1 1", "HANGUP"]
    assert len([c for c in rig.seen if isinstance(c, Overflow)]) == (why == "timeout"), "waiting for the call back is no more overflow"
    [connected] = [c for c in rig.seen if isinstance(c, Connected)]
    assert connected.agent == "bob"
    originate = [a for a in rig.server.actions if a.get("Action") == "Originate" and a.get("Context") == "callcenter-callback"]
    assert [(a["Channel"], a["Exten"]) for a in originate] == [("Local/2002@phones/n", "5511955554444")]
    [called_back] = [r for r in rig.records if r.outcome == "callback"]
    assert (called_back.caller_number, called_back.agent, called_back.queue) == ("5511955554444", "bob", None), "not a second visit"
    [pop] = [e for e in rig.domain if e.kind == "agent_ringing" and e.linkedid == called_back.linkedid]
    assert (pop.data["agent"], pop.data["queue"]) == ("bob", "support"), "bob's screen pops with whom he calls back"
    [talking] = [e for e in rig.domain if e.kind == "answered" and e.linkedid == called_back.linkedid]
    assert talking.data["agent"] == "bob" and "customers" in talking.data["channel"], "bob's call card has the caller's leg"
    assert 3 < called_back.talk_s < 6, "the talk is counted from the caller answering"
    assert not rig.acd.callers, "the call back ended and the caller is done"
    dialled = [e["DestChannel"] for e in rig.events if e.get("Event") == "DialBegin" and "customers" in e.get("DestChannel", "")]
    assert [d.split("-")[0] for d in dialled] == ["Local/5511955554444@customers"], "after the agent answered, the caller was dialled"


@pytest.mark.parametrize(
    "strategy, first_dial",
    [
        ("longest_idle", "EXEC Dial Local/2001@phones/n,2"),
        ("ring_all", "EXEC Dial Local/2001@phones/n&Local/2002@phones/n,2"),
        ("round_robin", "EXEC Dial Local/2001@phones/n,2"),
        ("skills", "EXEC Dial Local/2002@phones/n,2"),
        ("fewest_calls", "EXEC Dial Local/2001@phones/n,2"),
        ("random", None),
    ],
)
def test_each_policy_on_the_simulator_ends_with_bob(tmp_path, strategy, first_dial):
    rig = asyncio.run(
        scenario(
            tmp_path,
            "patient",
            ANN_AND_BOB,
            120,
            strategy=strategy,
            skills={"ann": {"es": 2}, "bob": {"es": 9}},
            needs={"es": 1},
            done=lambda r: any(isinstance(c, Connected) for c in r.seen),
        )
    )
    if first_dial is not None:
        assert next(c for c in rig.agi() if c.startswith("EXEC Dial")) == first_dial
    assert [c.agent for c in rig.seen if isinstance(c, Connected)] == ["bob"], "only bob's phone answers"


def test_agent_phone_lost_mid_call_ends_the_call_and_frees_the_agent(tmp_path):
    rig = asyncio.run(
        scenario(
            tmp_path,
            "patient",
            [("cid", "Local/2003@phones/n")],
            120,
            done=lambda r: any(isinstance(c, Connected) for c in r.seen) and not r.acd.callers and not r.server.sim.channels,
        )
    )
    assert [c.agent for c in rig.seen if isinstance(c, Connected)] == ["cid"]
    assert rig.acd.agents["cid"].state.value == "available" and not rig.acd.callers and not rig.server.sim.channels


def test_only_the_save_of_the_call_just_ended_frees_a_native_agent_from_after_call_work(tmp_path):
    async def run():
        rig = Rig(tmp_path, QueueSettings("support", ring_timeout_s=4, wrapup_until_saved=True))
        await rig.start()
        rig.native.login("bob", "Local/2002@phones/n", ["support"], wraps_up=True)
        bob = rig.acd.agents["bob"]
        rig.call("patient")
        await rig.until(60, lambda r: bob.state is AgentState.WRAP_UP)
        first = rig.native.last_call["bob"][0]
        rig.native.wrapup_saved("bob", first)
        assert bob.state is AgentState.AVAILABLE, "the first call's save frees him"
        rig.call("patient", "5511955554444")
        await rig.until(60, lambda r: bob.state is AgentState.ON_CALL)
        second = rig.native.last_call["bob"][0]
        rig.native.wrapup_saved("bob", first)
        await rig.until(60, lambda r: bob.state is not AgentState.ON_CALL)
        states = (bob.state, rig.native.must_save("bob"))
        rig.native.wrapup_saved("bob", "some-other-call")
        rig.native.wrapup_saved("bob", second)
        await rig.stop()
        return states, second != first, bob.state

    (state, owes), distinct, after = asyncio.run(run())
    assert distinct and (state, owes) == (AgentState.WRAP_UP, True), "a late save of the first call does not stand for the second"
    assert after is AgentState.AVAILABLE, "the second call's own save ends its after-call work"


def test_a_caller_who_hangs_up_while_the_engine_is_disconnected_leaves_the_acd(tmp_path):
    async def run():
        rig = Rig(tmp_path, QueueSettings("support"))
        await rig.start()
        rig.call("impatient")
        await rig.until(30, lambda r: len(r.native.held) == 1)
        held_before = list(rig.native.held)
        rig.server.drop()
        await rig.until(60, lambda r: not r.server.sim.channels)
        await eventually(lambda: rig.client.sessions >= 2, what="the second session")
        await eventually(lambda: not rig.native.held and not rig.acd.callers, what="the caller gone after the resync")
        await rig.stop()
        return rig, held_before

    rig, held_before = asyncio.run(run())
    assert len(held_before) == 1
    assert not rig.native.held and not rig.acd.callers
    assert [type(c).__name__ for c in rig.seen if isinstance(c, Abandoned)] == ["Abandoned"]


def test_supervisor_moves_a_waiting_caller_to_a_queue_with_an_agent(tmp_path):
    async def run():
        rig = Rig(tmp_path, QueueSettings("support"), more=(QueueSettings("vip"),))
        await rig.start()
        rig.native.login("bob", "Local/2002@phones/n", ["vip"])
        rig.call("patient")
        await rig.until(30, lambda r: len(r.native.held) == 1)
        [channel] = list(rig.native.held)
        rig.native.set_priority(channel, 3)
        rig.native.move_caller(channel, "vip")
        await rig.until(60, lambda r: any(isinstance(c, Connected) for c in r.seen))
        await rig.stop()
        return rig

    rig = asyncio.run(run())
    [connected] = [c for c in rig.seen if isinstance(c, Connected)]
    assert (connected.agent, connected.queue) == ("bob", "vip")


class _AnswerWinsClient:
    """An AMI client that answers every AGI command even when the caller was cancelled meanwhile, as Python 3.11's
    wait_for did when the answer landed in the same step as the cancel (the root of the callback race once seen in CI:
    an announcement went on after the call back's HANGUP)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_action(self, action, timeout=None, check=True, **_):
        self.sent.append(action["Command"])
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass  # the cancel is lost: the answer comes back as if nothing happened
        return []


def test_a_cut_batch_of_agi_commands_sends_nothing_more_even_if_its_cancel_is_lost():
    async def run() -> list[str]:
        client = _AnswerWinsClient()
        native = NativeACD(client, ACD({"support": QueueSettings("support")}))  # type: ignore[arg-type]
        held = Held("Local/s@x-1;2", "1.1", "support", "default")
        native._lane(held, native._agi(held.channel, "GET DATA cc/your-position 1 1", 'SAY DIGITS 2 ""', "SET MUSIC on default"))
        await eventually(lambda: client.sent, what="the announcement begins")
        announcement = held.lane
        native._lane(held, native._agi(held.channel, "SET MUSIC off", "GET DATA cc/callback-ok 1 1", "HANGUP"))
        await eventually(lambda: held.lane.done() and announcement.done(), what="both batches over")
        return client.sent

    assert asyncio.run(run()) == ["GET DATA cc/your-position 1 1", "SET MUSIC off", "GET DATA cc/callback-ok 1 1", "HANGUP"]
