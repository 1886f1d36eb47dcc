"""Native mode on the simulator: the IVR hands callers to our ACD, which dials agents with EXEC Dial."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from acd.machine import ACD, Abandoned, Connected, Ring
from acd.model import QueueSettings
from acd.native import NativeACD
from ivr.engine import IVREngine
from ivr.flow import load_flow
from pbx.client import AMIClient, ClientOptions
from pbx.codec import Message
from pbx.simulator.server import SimulatorServer

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


async def scenario(tmp_path, caller: str, agents: list[tuple[str, str]], run_for: float, strategy: str = "longest_idle",
                   skills: dict[str, dict[str, int]] | None = None, needs: dict[str, int] | None = None):
    (tmp_path / "flow.yaml").write_text(FLOW)
    conf = tmp_path / "extensions.conf"
    conf.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + EXTRA)
    server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path)
    server.configure({}, None)
    port = await server.start()
    seen: list = []
    native: list[NativeACD] = []
    ivr: list[IVREngine] = []

    def on_event(message, arrival):
        ivr[0].on_event(message, arrival)
        native[0].on_event(message, arrival)

    client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), on_event)
    acd = ACD({"support": QueueSettings("support", strategy=strategy, ring_timeout_s=2, retry_s=1)})
    native.append(NativeACD(client, acd, on_commands=seen.extend, clock=lambda: server.sim.now))
    ivr.append(IVREngine(client, [load_flow(tmp_path / "flow.yaml")], clock=lambda: NOON,
                         on_handoff=lambda ch, linkedid, done: native[0].handoff(ch, linkedid, done["queue"], done["priority"], needs)))
    task = asyncio.create_task(client.run())
    await client.connected.wait()
    await ivr[0].beat()
    for name, interface in agents:
        native[0].login(name, interface, ["support"], (skills or {}).get(name))
    server.handle(Message([("Action", "Originate"), ("Channel", "Local/s@callcenter-ivr"), ("Context", "callers"), ("Exten", caller),
                           ("CallerID", "<5511977776666>")]))
    began = server.sim.now
    while server.sim.now < began + run_for:
        native[0].tick()
        await asyncio.sleep(0.02)
    await native[0].stop()
    await ivr[0].stop()
    await client.close()
    await task
    await server.stop()
    return server, seen


def test_the_caller_rings_an_agent_who_does_not_answer_then_one_who_does(tmp_path):
    server, seen = asyncio.run(scenario(tmp_path, "patient", [("ann", "Local/2001@phones/n"), ("bob", "Local/2002@phones/n")], 30))
    assert [c.agent for c in seen if isinstance(c, Ring)][:2] == ["ann", "bob"]
    [connected] = [c for c in seen if isinstance(c, Connected)]
    assert connected.agent == "bob"
    commands = [a["Command"] for a in server.actions if a.get("Action") == "AGI"]
    assert commands[:3] == ["WAIT FOR DIGIT 2000", "SET MUSIC on default", "EXEC Dial Local/2001@phones/n,2"]
    assert "EXEC Dial Local/2002@phones/n,2" in commands and commands[-1] == "HANGUP"
    assert not server.sim.channels


def test_a_caller_who_hangs_up_while_waiting_is_an_abandon(tmp_path):
    server, seen = asyncio.run(scenario(tmp_path, "impatient", [], 10))
    [gone] = [c for c in seen if isinstance(c, Abandoned)]
    assert gone.queue == "support" and 2 < gone.wait_s < 5


def test_announcements_then_overflow_to_voicemail(tmp_path):
    async def run():
        (tmp_path / "flow.yaml").write_text(FLOW)
        conf = tmp_path / "extensions.conf"
        conf.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + EXTRA)
        server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path)
        server.configure({}, None)
        port = await server.start()
        seen: list = []
        boxes: dict = {}

        def on_event(message, arrival):
            boxes["ivr"].on_event(message, arrival)
            boxes["acd"].on_event(message, arrival)

        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), on_event)
        acd = ACD({"support": QueueSettings("support", announce_every_s=5, max_wait_s=12, overflow="voicemail", overflow_target="200@default")})
        boxes["acd"] = NativeACD(client, acd, on_commands=seen.extend, clock=lambda: server.sim.now)
        boxes["ivr"] = IVREngine(client, [load_flow(tmp_path / "flow.yaml")], clock=lambda: NOON,
                                 on_handoff=lambda ch, linkedid, done: boxes["acd"].handoff(ch, linkedid, done["queue"]))
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        await boxes["ivr"].beat()
        server.handle(Message([("Action", "Originate"), ("Channel", "Local/s@callcenter-ivr"), ("Context", "callers"), ("Exten", "patient")]))
        began = server.sim.now
        while server.sim.now < began + 25:
            boxes["acd"].tick()
            await asyncio.sleep(0.02)
        await boxes["acd"].stop()
        await client.close()
        await task
        await server.stop()
        return server

    server = asyncio.run(run())
    commands = [a["Command"] for a in server.actions if a.get("Action") == "AGI"]
    assert commands.count('STREAM FILE cc/your-position ""') >= 1 and 'SAY DIGITS 1 ""' in commands
    assert commands[-2:] == ["SET MUSIC off", "EXEC VoiceMail 200@default,u"], "the rest of an announcement is dropped for the overflow"


def test_callback_keeps_the_place_and_calls_the_caller_back(tmp_path):
    events: list = []

    async def run():
        (tmp_path / "flow.yaml").write_text(FLOW)
        conf = tmp_path / "extensions.conf"
        conf.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + EXTRA +
                        "\n[customers]\nexten => _X.,1,Answer()\n same => n,Wait(4)\n same => n,Hangup()\n"
                        "\n[callers]\nexten => callme,1,Wait(1)\n same => n,SendDTMF(1)\n same => n,Wait(2)\n same => n,SendDTMF(9)\n"
                        " same => n,Wait(30)\n same => n,Hangup()\n")
        server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path)
        server.configure({}, None)
        from pbx.simulator.dialplan import Step
        server.sim.dialplan.contexts["callcenter-callback"]["_X."][1] = Step(2, "Dial", "Local/${EXTEN}@customers/n,45")
        port = await server.start()
        seen: list = []
        boxes: dict = {}

        def on_event(message, arrival):
            events.append(message)
            boxes["ivr"].on_event(message, arrival)
            boxes["acd"].on_event(message, arrival)

        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), on_event)
        acd = ACD({"support": QueueSettings("support", callback_key="9", ring_timeout_s=10)})
        boxes["acd"] = NativeACD(client, acd, on_commands=seen.extend, clock=lambda: server.sim.now)
        boxes["ivr"] = IVREngine(client, [load_flow(tmp_path / "flow.yaml")], clock=lambda: NOON,
                                 on_handoff=lambda ch, linkedid, done: boxes["acd"].handoff(ch, linkedid, done["queue"]))
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        await boxes["ivr"].beat()
        server.handle(Message([("Action", "Originate"), ("Channel", "Local/s@callcenter-ivr"), ("Context", "callers"), ("Exten", "callme"),
                               ("CallerID", "<5511955554444>")]))
        began = server.sim.now
        while server.sim.now < began + 8:
            boxes["acd"].tick()
            await asyncio.sleep(0.02)
        waiting_after_hangup = list(acd.callers)
        boxes["acd"].login("bob", "Local/2002@phones/n", ["support"])
        while server.sim.now < began + 30:
            boxes["acd"].tick()
            await asyncio.sleep(0.02)
        await boxes["acd"].stop()
        await client.close()
        await task
        await server.stop()
        return server, seen, waiting_after_hangup, acd

    server, seen, waiting, acd = asyncio.run(run())
    assert len(waiting) == 1, "the caller hung up but kept the place"
    assert not [c for c in seen if isinstance(c, Abandoned)]
    [connected] = [c for c in seen if isinstance(c, Connected)]
    assert connected.agent == "bob"
    originate = [a for a in server.actions if a.get("Action") == "Originate" and a.get("Context") == "callcenter-callback"]
    assert [(a["Channel"], a["Exten"]) for a in originate] == [("Local/2002@phones/n", "5511955554444")]
    assert not acd.callers, "the call back ended and the caller is done"
    dialled = [e["DestChannel"] for e in events if e.get("Event") == "DialBegin" and "customers" in e.get("DestChannel", "")]
    assert [d.split("-")[0] for d in dialled] == ["Local/5511955554444@customers"], "after the agent answered, the caller was dialled"


@pytest.mark.parametrize("strategy, first_dial", [
    ("longest_idle", "EXEC Dial Local/2001@phones/n,2"),
    ("ring_all", "EXEC Dial Local/2001@phones/n&Local/2002@phones/n,2"),
    ("round_robin", "EXEC Dial Local/2001@phones/n,2"),
    ("skills", "EXEC Dial Local/2002@phones/n,2"),
])
def test_each_policy_on_the_simulator_ends_with_bob(tmp_path, strategy, first_dial):
    server, seen = asyncio.run(scenario(tmp_path, "patient", [("ann", "Local/2001@phones/n"), ("bob", "Local/2002@phones/n")], 30,
                                        strategy=strategy, skills={"ann": {"es": 2}, "bob": {"es": 9}}, needs={"es": 1}))
    commands = [a["Command"] for a in server.actions if a.get("Action") == "AGI"]
    assert next(c for c in commands if c.startswith("EXEC Dial")) == first_dial
    assert [c.agent for c in seen if isinstance(c, Connected)] == ["bob"]
