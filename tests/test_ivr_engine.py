"""The IVR engine over real sockets against the simulator: whole calls through the documented flow."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ivr.engine import IVREngine
from ivr.flow import load_flow
from pbx.agi import GUARD_OFF
from pbx.client import AMIClient, ClientOptions
from pbx.codec import Message
from pbx.simulator.apps import Apps
from pbx.simulator.dialplan import MemberConf, QueueConf
from pbx.simulator.server import SimulatorServer
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parent.parent
FLOW = load_flow(ROOT / "contrib" / "ivr" / "main.yaml")
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp()
CLOSED = datetime(2026, 11, 23, 22, 0, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp()

DIALPLAN = (
    (ROOT / "contrib" / "asterisk" / "extensions.conf").read_text()
    + """
[agents]
exten => _30XX,1,Answer()
 same => n,Wait(20)
 same => n,Hangup()

[callers]
exten => sales,1,Wait(1)
 same => n,SendDTMF(1)
 same => n,Wait(3)
 same => n,SendDTMF(2)
 same => n,Wait(30)
 same => n,Hangup()
exten => gone,1,Wait(4)
 same => n,Hangup()
exten => cpf,1,Wait(1)
 same => n,SendDTMF(1)
 same => n,Wait(3)
 same => n,SendDTMF(3)
 same => n,Wait(2.5)
 same => n,SendDTMF(12345678900#)
 same => n,Wait(8)
 same => n,SendDTMF(52998224725#)
 same => n,Wait(40)
 same => n,Hangup()
exten => listen,1,Wait(60)
 same => n,Hangup()
"""
)


async def run_call(tmp_path, caller_script: str, clock: float, seconds: float = 15.0, heartbeat: bool = True, flow=FLOW):
    conf = tmp_path / "extensions.conf"
    conf.write_text(DIALPLAN)
    server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path / "rec")
    members = [MemberConf("Local/3001@agents/n", 0, "Alice", "Local/3001@agents")]
    server.configure(
        {name: QueueConf(name, strategy="linear", timeout=10, members=list(members)) for name in ("support", "sales", "billing")}, None
    )
    port = await server.start()
    kept: dict[str, list] = {}
    client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), lambda m, t: engine.on_event(m, t))
    engine = IVREngine(client, [flow], on_records=lambda linkedid, records: kept.setdefault(linkedid, records), clock=lambda: clock)
    task = asyncio.create_task(client.run())
    await client.connected.wait()
    if heartbeat:
        await engine.beat()
        assert abs(int(server.sim.dialplan.globals["CALLCENTER_IVR_HEARTBEAT"]) - server.sim.now) < 5, (
            "the heartbeat is the PBX clock (from Ping), not ours"
        )
    server.handle(
        Message(
            [
                ("Action", "Originate"),
                ("Channel", "Local/s@callcenter-ivr"),
                ("Context", "callers"),
                ("Exten", caller_script),
                ("CallerID", '"Ana" <5511912345678>'),
            ]
        )
    )
    while (
        server.sim.now < server.start_at + seconds * 20
        and (not engine.finished or engine.sessions)
        and not (not heartbeat and server.queue_log_lines)
    ):
        await asyncio.sleep(0.02)
    await eventually(lambda: settled(server), what="the caller out of the IVR: in a queue, or gone")
    await engine.drain()
    await client.close()
    await task
    await server.stop()
    return server, engine, kept


def settled(server) -> bool:
    """No caller left in AsyncAGI: each has hung up or reached its queue."""
    calls = server.sim.channels.values()
    return not calls or (all(ch.agi is None for ch in calls) and bool(events(server, "ENTERQUEUE")))


def agi_commands(server) -> list[str]:
    return [a["Command"] for a in server.actions if a.get("Action") == "AGI"]


def events(server, name):
    return [line for line in server.queue_log_lines if f"|{name}|" in line]


def test_a_caller_chooses_portuguese_then_sales_and_reaches_the_queue(tmp_path):
    server, engine, kept = asyncio.run(run_call(tmp_path, "sales", OPEN))
    assert agi_commands(server) == [
        "GET DATA cc/choose-language-pt 5000 1",
        "GET DATA cc/main-menu-pt 5000 1",
        GUARD_OFF,
        "SET CONTEXT callcenter-queues",
        "SET EXTENSION sales",
        "SET PRIORITY 1",
        "ASYNCAGI BREAK",
    ]
    assert [s.outcome for s in engine.finished] == ["queue"]
    assert events(server, "ENTERQUEUE")[0].split("|")[2] == "sales"
    [records] = kept.values()
    done = next(r.data for r in records if r.kind == "done")
    assert [p["node"] for p in done["path"]] == ["hours", "language", "main", "sales"] and done["language"] == "pt-BR"
    assert max(engine.turnaround) < 0.05


def test_after_hours_the_caller_hears_closed_and_is_hung_up(tmp_path):
    server, engine, kept = asyncio.run(run_call(tmp_path, "listen", CLOSED))
    assert agi_commands(server) == ["GET DATA cc/closed-pt 1 1", "HANGUP"]
    assert [s.outcome for s in engine.finished] == ["hangup"] and not server.sim.channels


def pbx_without(monkeypatch, *prompts: str, hang_up: bool = False) -> None:
    """The simulator lacks these prompts: it answers their GET DATA at once as Asterisk does, `200 result=-1`, AsyncAGI going on
    (with hang_up, the same answer is a caller hanging up during the prompt: then the channel goes)."""
    real = Apps._agi_command

    def answer(self, ch, command, command_id):
        words = command.split()
        if command.startswith("GET DATA ") and len(words) > 2 and words[2] in prompts:
            self.sim.chan_event(
                "AsyncAGIExec", ch, ("Result", quote("200 result=-1\n", safe="")), ("CommandId", command_id), privilege="agi"
            )
            if hang_up:
                self.sim.request_hangup(ch)
            return False
        return (yield from real(self, ch, command, command_id))

    monkeypatch.setattr(Apps, "_agi_command", answer)


def test_a_missing_menu_prompt_is_logged_once_and_the_menu_still_routes(tmp_path, monkeypatch, caplog):
    pbx_without(monkeypatch, "cc/main-menu-pt")
    caplog.set_level(logging.WARNING, logger="ivr.engine")
    server, engine, kept = asyncio.run(run_call(tmp_path, "sales", OPEN))
    assert agi_commands(server) == [
        "GET DATA cc/choose-language-pt 5000 1",
        "GET DATA cc/main-menu-pt 5000 1",
        "WAIT FOR DIGIT 5000",
        GUARD_OFF,
        "SET CONTEXT callcenter-queues",
        "SET EXTENSION sales",
        "SET PRIORITY 1",
        "ASYNCAGI BREAK",
    ], "no menu to hear, the key is still waited for, and 2 still goes to sales"
    assert [s.outcome for s in engine.finished] == ["queue"] and events(server, "ENTERQUEUE")[0].split("|")[2] == "sales"
    [records] = kept.values()
    assert [(r.data["node"], r.data["prompt"]) for r in records if r.kind == "missing_prompt"] == [("main", "cc/main-menu-pt")]
    warned = [r.getMessage() for r in caplog.records if "missing on the PBX" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("prompt cc/main-menu-pt missing on the PBX")
    assert engine.missing_prompts == {"cc/main-menu-pt"}


def test_a_hang_up_during_a_prompt_still_ends_the_session(tmp_path, monkeypatch, caplog):
    pbx_without(monkeypatch, "cc/main-menu-pt", hang_up=True)
    caplog.set_level(logging.WARNING, logger="ivr.engine")
    server, engine, kept = asyncio.run(run_call(tmp_path, "sales", OPEN))
    assert [s.outcome for s in engine.finished] == ["caller_hung_up"] and not engine.sessions
    assert agi_commands(server)[-1] in ("GET DATA cc/main-menu-pt 5000 1", "WAIT FOR DIGIT 5000"), "nothing more once the channel went"
    [records] = kept.values()
    assert not [r for r in records if r.kind == "missing_prompt"] and not engine.missing_prompts
    assert not [r for r in caplog.records if "missing on the PBX" in r.getMessage()]
    assert not events(server, "ENTERQUEUE")


def test_a_set_node_of_several_values_goes_on(tmp_path):
    flow_path = tmp_path / "set.yaml"
    flow_path.write_text(
        "flow: set\nentry: {context: callcenter-ivr}\nstart: tag\nnodes:\n"
        "  tag: {kind: set, values: {a: '1', b: '2'}, next: q}\n"
        "  q: {kind: queue, queue: support, context: callcenter-queues}\n"
    )

    server, engine, _ = asyncio.run(run_call(tmp_path, "listen", OPEN, flow=load_flow(flow_path)))
    assert agi_commands(server)[:2] == ['SET VARIABLE a "1"', 'SET VARIABLE b "2"']
    assert [s.outcome for s in engine.finished] == ["queue"], "each answer of a batch reaches the machine, not only the last"


def test_a_caller_who_hangs_up_mid_menu_ends_the_session(tmp_path):
    server, engine, kept = asyncio.run(run_call(tmp_path, "gone", OPEN))
    assert [s.outcome for s in engine.finished] == ["caller_hung_up"]
    assert not engine.sessions and not events(server, "ENTERQUEUE")


def test_cpf_is_retried_masked_and_the_recording_muted(tmp_path):
    server, engine, kept = asyncio.run(run_call(tmp_path, "cpf", OPEN, seconds=40))
    commands = agi_commands(server)
    assert commands.count("GET DATA cc/enter-cpf-pt 10000 11") == 2
    mutes = [a["State"] for a in server.actions if a.get("Action") == "MixMonitorMute"]
    assert mutes == ["1", "0", "1", "0"]
    [records] = kept.values()
    inputs = [r.data for r in records if r.kind == "input"]
    assert [(i["valid"], i["value"]) for i in inputs] == [(False, "*********00"), (True, "*********25")]
    assert "52998224725" not in repr(inputs)
    assert events(server, "ENTERQUEUE")[0].split("|")[2] == "billing"


def test_without_the_engine_callers_go_straight_to_the_default_queue(tmp_path):
    server, engine, kept = asyncio.run(run_call(tmp_path, "listen", OPEN, seconds=3, heartbeat=False))
    assert agi_commands(server) == [] and not engine.finished
    assert events(server, "ENTERQUEUE")[0].split("|")[2] == "support"


def test_calls_left_in_the_ivr_by_a_lost_engine_are_sent_to_the_fallback(tmp_path):
    async def scenario():
        conf = tmp_path / "extensions.conf"
        conf.write_text(DIALPLAN)
        server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path / "rec")
        server.configure({"support": QueueConf("support", strategy="linear", timeout=10, members=[])}, None)
        port = await server.start()
        server.sim.dialplan.globals["CALLCENTER_IVR_HEARTBEAT"] = str(int(server.sim.now))
        server.handle(
            Message([("Action", "Originate"), ("Channel", "Local/s@callcenter-ivr"), ("Context", "callers"), ("Exten", "listen")])
        )
        while not any(ch.agi is not None for ch in server.sim.channels.values()):
            await asyncio.sleep(0.01)
        engine_box = []

        async def on_resync(snapshot):
            await engine_box[0].on_resync(snapshot.channels)

        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), lambda m, t: engine_box[0].on_event(m, t), on_resync)
        engine_box.append(IVREngine(client, [FLOW]))
        task = asyncio.create_task(client.run())
        while not server.queue_log_lines:
            await asyncio.sleep(0.02)
        await client.close()
        await task
        await server.stop()
        return server

    server = asyncio.run(scenario())
    assert agi_commands(server) == ["SET EXTENSION fallback", "SET PRIORITY 1", "ASYNCAGI BREAK"]
    assert events(server, "ENTERQUEUE")[0].split("|")[2] == "support"


def test_play_voicemail_and_callback_nodes_on_the_simulator(tmp_path):
    flow_path = tmp_path / "kinds.yaml"
    flow_path.write_text(
        "flow: kinds\nentry: {context: callcenter-ivr}\nlanguages: [en]\nstart: hello\nnodes:\n"
        "  hello: {kind: play, prompt: hello, next: menu}\n"
        "  menu: {kind: menu, prompt: menu, options: {'1': vm, '2': cb}, on_fail: vm}\n"
        "  vm: {kind: voicemail, mailbox: '100@default'}\n"
        "  cb: {kind: callback, queue: support, prompt: callback-ok}\n"
    )
    flow = load_flow(flow_path)

    async def scenario(script: str):
        conf = tmp_path / "extensions.conf"
        conf.write_text(
            DIALPLAN + "\n[kinds-callers]\nexten => one,1,Wait(3)\n same => n,SendDTMF(1)\n same => n,Wait(8)\n same => n,Hangup()\n"
            "exten => two,1,Wait(3)\n same => n,SendDTMF(2)\n same => n,Wait(20)\n same => n,Hangup()\n"
        )
        # speed 5, not 20: the engine's answer time under load, counted at the PBX's pace, must not push the menu past the
        # caller's key (seen under load at 20x: the key fell in the greeting, and the menu timed out)
        server = SimulatorServer("cti", "pw", speed=5, dialplan=conf, recordings=tmp_path / "rec")
        server.configure({"support": QueueConf("support", members=[])}, None)
        port = await server.start()
        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), lambda m, t: engine.on_event(m, t))
        engine = IVREngine(client, [flow])
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        await engine.beat()
        server.handle(
            Message([("Action", "Originate"), ("Channel", "Local/s@callcenter-ivr"), ("Context", "kinds-callers"), ("Exten", script)])
        )
        while not engine.finished or server.sim.channels:
            await asyncio.sleep(0.02)
        await client.close()
        await task
        await server.stop()
        return server, engine

    server, engine = asyncio.run(scenario("one"))
    assert agi_commands(server) == ["GET DATA hello 1 1", "GET DATA menu 5000 1", "EXEC VoiceMail 100@default,u"], (
        "the caller hangs up after the message: nothing more to send"
    )
    assert [s.outcome for s in engine.finished] == ["voicemail"]
    server, engine = asyncio.run(scenario("two"))
    assert agi_commands(server)[-3:] == ["GET DATA callback-ok 1 1", "SET VARIABLE CALLCENTER_CALLBACK_REQUEST support", "HANGUP"]
    assert [s.outcome for s in engine.finished] == ["callback"]
