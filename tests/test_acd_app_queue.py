"""app_queue mode: agent state from recorded Asterisk traffic, and agent actions against the simulator."""

from __future__ import annotations

import asyncio

from acd.app_queue import AgentRegistry, AppQueueACD, penalty
from kernel.values import AgentState
from pbx.client import AMIClient, ClientOptions
from pbx.codec import Message
from pbx.simulator.dialplan import QueueConf
from pbx.simulator.server import SimulatorServer
from pbx.trace import replay_messages
from tests.conftest import TRACES
from tests.waiting import eventually


def states(name: str) -> tuple[AgentRegistry, list[tuple[str, str, str | None]]]:
    registry = AgentRegistry()
    changes = []
    for t, m in replay_messages(TRACES / f"{name}.jsonl"):
        if isinstance(m, Message) and m.event and "ActionID" not in m:
            changes += [(c.agent, c.state.value, c.reason) for c in registry.feed(m, t)]
    return registry, changes


def test_agent_states_from_a_real_answered_call():
    _, changes = states("answered_caller_hangs_up")
    assert [c for c in changes if c[0] == "Bob"] == [("Bob", "ringing", None), ("Bob", "on_call", None), ("Bob", "available", None)]


def test_pause_reasons_from_real_traffic():
    registry, changes = states("abandon_in_queue")
    assert ("Alice", "paused", "lunch") in changes and ("Bob", "paused", "training") in changes
    assert registry.members["Alice"].state is AgentState.AVAILABLE


def test_member_management_and_resync_from_queue_status():
    registry, changes = states("member_management")
    assert [c for c in changes if c[0] == "Dave"] == [
        ("Dave", "available", None),
        ("Dave", "paused", "coffee"),
        ("Dave", "available", None),
        ("Dave", "logged_out", None),
    ]
    listed = [
        m for _, m in replay_messages(TRACES / "member_management.jsonl") if isinstance(m, Message) and m.get("Event") == "QueueMember"
    ]
    fresh = AgentRegistry()
    fresh.resync(listed, 0.0)
    assert {n: (m.state.value, m.reason, sorted(m.queues)) for n, m in fresh.members.items()} == {
        "Alice": ("available", None, ["support"]),
        "Bob": ("available", None, ["support"]),
        "Dave": ("paused", "coffee", ["sales"]),
        "Carol": ("available", None, ["sales"]),
    }


def test_agent_actions_against_the_simulator_and_resync_after_a_gap(tmp_path):
    async def scenario():
        server = SimulatorServer("cti", "pw", speed=20, recordings=tmp_path)
        server.configure({"support": QueueConf("support", members=[]), "sales": QueueConf("sales", members=[])}, None)
        port = await server.start()
        registry = AgentRegistry()
        client = AMIClient(
            ClientOptions("127.0.0.1", port, "cti", "pw", reconnect_min=0.05, reconnect_max=0.1),
            lambda m, t: registry.feed(m, t),
            lambda snap: registry.resync(snap.queue_members, snap.at),
        )
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        acd = AppQueueACD(client, {"support": "es"})
        await acd.login("Zoe", "Local/1001@sim-agents/n", ["support", "sales"], {"es": 7})
        await acd.login("Zoe", "Local/1001@sim-agents/n", ["support"], {"es": 7})
        zoe = await eventually(lambda: registry.members.get("Zoe"), what="Zoe's QueueMemberAdded")
        added = zoe.state
        penalties = {m["Queue"]: m["Penalty"] for m in server.sim.queues.status_items() if m.get("Name") == "Zoe"}
        await acd.pause("Local/1001@sim-agents/n", "lunch")
        await eventually(lambda: zoe.state is not added, what="Zoe's QueueMemberPause")
        paused = (zoe.state, zoe.reason)
        server.drop()
        server.sim.queues.pause("Local/1001@sim-agents/n", False, None, "")
        await eventually(lambda: client.sessions >= 2, what="the second session")
        await eventually(lambda: registry.members["Zoe"].state is not AgentState.PAUSED, what="the resync's QueueStatus")
        after_gap = registry.members["Zoe"].state
        await acd.logout("Local/1001@sim-agents/n", ["support", "sales"])
        await eventually(lambda: registry.members["Zoe"].state is not after_gap, what="Zoe's QueueMemberRemoved")
        gone = registry.members["Zoe"].state
        await client.close()
        await task
        await server.stop()
        return added, penalties, paused, after_gap, gone

    added, penalties, paused, after_gap, gone = asyncio.run(scenario())
    assert added is AgentState.AVAILABLE and penalties == {"support": str(penalty(7)), "sales": "0"}
    assert paused == (AgentState.PAUSED, "lunch")
    assert after_gap is AgentState.AVAILABLE, "unpaused while disconnected: the resync shows it"
    assert gone is AgentState.LOGGED_OUT


def test_supervisor_moves_a_caller_and_changes_a_priority(tmp_path):
    from pathlib import Path

    dialplan = Path(__file__).resolve().parent.parent / "contrib" / "asterisk" / "extensions.conf"
    conf = tmp_path / "extensions.conf"
    conf.write_text(
        dialplan.read_text() + "\n[callers]\nexten => wait,1,Wait(120)\n same => n,Hangup()\n"
        "[our-own-queues]\nexten => _[a-z].,1,Set(MOVED=yes)\n same => n,Queue(${EXTEN},t,,,300)\n"  # [panel] queue_context
    )

    async def scenario():
        server = SimulatorServer("cti", "pw", speed=20, dialplan=conf, recordings=tmp_path)
        server.configure({"support": QueueConf("support", members=[]), "sales": QueueConf("sales", members=[])}, None)
        port = await server.start()
        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), lambda m, t: None)
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        for number in ("111", "222", "333"):
            server.handle(
                Message(
                    [
                        ("Action", "Originate"),
                        ("Channel", "Local/support@callcenter-queues"),
                        ("Context", "callers"),
                        ("Exten", "wait"),
                        ("CallerID", f"<{number}>"),
                    ]
                )
            )
        await eventually(lambda: len(server.sim.queues.queues["support"].callers) == 3, what="three callers in support")
        channels = [c.ch.name for c in server.sim.queues.queues["support"].callers]
        acd = AppQueueACD(client, queue_context="our-own-queues")
        await acd.set_priority("support", channels[2], 5)
        order = [c.ch.cid_num for c in server.sim.queues.queues["support"].callers]
        await acd.move_caller(channels[0], "sales")
        await eventually(lambda: server.sim.queues.queues["sales"].callers, what="the caller in sales")
        moved = [(c.ch.cid_num, c.ch.vars.get("MOVED")) for c in server.sim.queues.queues["sales"].callers]
        left = [
            line.split("|")[4]
            for line in server.queue_log_lines
            if line.split("|")[1] == server.sim.queues.queues["sales"].callers[0].ch.uniqueid
        ]
        await client.close()
        await task
        await server.stop()
        return order, moved, left

    order, moved, left = asyncio.run(scenario())
    assert order == ["333", "111", "222"]
    assert moved == [("111", "yes")], "through the configured queue context"
    assert left[:2] == ["ENTERQUEUE", "ABANDON"] and left[-1] == "ENTERQUEUE"
