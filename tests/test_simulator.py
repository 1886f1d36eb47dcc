"""The simulator as a peer: deterministic traffic, AMI over real sockets, and the tracker agreeing with its ground truth."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter

from pbx.client import AMIClient, ClientOptions
from pbx.codec import AMICodec, Message, encode
from pbx.simulator.app_queue import QueueEngine
from pbx.simulator.core import Sim
from pbx.simulator.dialplan import load_dialplan
from pbx.simulator.server import ETC, build
from pbx.simulator.traffic import Traffic, TrafficModel, simulated_queues
from pbx.tracker import CallTracker, event_time
from tests.waiting import eventually

START = 1_795_400_000.0


def simulate(seed: int, minutes: float, model: TrafficModel) -> tuple[list[dict[str, str]], Traffic, Sim]:
    events: list[dict[str, str]] = []

    def stamp(event: dict[str, str]) -> None:
        events.append({**event, "Timestamp": f"{sim.now:.6f}"})

    sim = Sim(load_dialplan(ETC / "extensions.conf"), start=START, emit=stamp, seed=seed)
    QueueEngine(sim, simulated_queues(4))
    traffic = Traffic(sim, model, seed)
    traffic.start()
    sim.advance(START + minutes * 60)
    traffic.stop()
    sim.advance(START + minutes * 60 + 3600)
    return events, traffic, sim


def test_same_seed_same_day_and_abandonment_emerges_from_patience():
    model = TrafficModel(calls_per_minute=6, patience_mean_s=60, handle_mean_s=120)
    first, traffic, sim = simulate(7, 30, model)
    second, _, _ = simulate(7, 30, model)
    other, _, _ = simulate(8, 30, model)
    assert first == second
    assert first != other
    assert traffic.generated["calls"] > 100
    queues = sim.queues.queues
    assert all(q.completed > 0 and q.abandoned > 0 for q in queues.values())
    assert not sim.channels, "every call ended once traffic stopped"


def test_tracker_on_simulated_traffic_matches_the_ground_truth():
    events, traffic, sim = simulate(3, 20, TrafficModel(calls_per_minute=8))
    tracker = CallTracker()
    records = [e.record for m in events for e in tracker.feed(Message(m.items()), event_time(m, 0)) if e.record]
    assert len(records) == traffic.generated["calls"]
    outcomes = Counter((r.queue, r.outcome) for r in records)
    for name, queue in sim.queues.queues.items():
        assert outcomes[(name, "answered")] == queue.completed
        assert outcomes[(name, "abandoned")] + outcomes[(name, "timeout")] == queue.abandoned
    assert outcomes[(None, "ivr_only")] == traffic.generated["menu:9"] + traffic.generated["menu:none"]
    repeat = Counter(number for number, _ in traffic.callers)
    assert any(count > 1 for count in repeat.values()), "repeat callers happen"


def test_md5_login_errors_and_a_session_that_stays_up():
    async def scenario():
        server = build("cti", "s3cret", agents=2)
        port = await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        codec = AMICodec()

        async def ask(frame):
            writer.write(encode(frame))
            await writer.drain()
            while True:
                for item in codec.feed(await asyncio.wait_for(reader.read(65536), 5)):
                    if isinstance(item, Message) and item.get("ActionID") == frame["ActionID"] and item.response:
                        return item

        challenge = await ask({"Action": "Challenge", "ActionID": "1", "AuthType": "MD5"})
        key = hashlib.md5((challenge["Challenge"] + "s3cret").encode()).hexdigest()
        login = await ask({"Action": "Login", "ActionID": "2", "AuthType": "MD5", "Username": "cti", "Key": key})
        unknown = await ask({"Action": "Frobnicate", "ActionID": "3"})
        no_channel = await ask({"Action": "AGI", "ActionID": "4", "Channel": "PJSIP/nope-1", "Command": "ANSWER"})
        bad_pause = await ask({"Action": "QueuePause", "ActionID": "5", "Interface": "Local/9999@sim-agents/n", "Paused": "true"})
        writer.write(b"this is not an action\r\n\r\n")
        malformed = None
        while malformed is None:
            for item in codec.feed(await asyncio.wait_for(reader.read(65536), 5)):
                if isinstance(item, Message) and item.response == "Error":
                    malformed = item
        pong = await ask({"Action": "Ping", "ActionID": "6"})
        writer.close()
        await server.stop()
        return login, unknown, no_channel, bad_pause, pong, malformed

    login, unknown, no_channel, bad_pause, pong, malformed = asyncio.run(scenario())
    assert malformed["Message"] == "Missing action in request"
    assert login["Message"] == "Authentication accepted"
    assert unknown["Message"].startswith("Invalid/unknown command: Frobnicate.")
    assert (no_channel["Response"], no_channel["Message"]) == ("Error", "Channel does not exist.")
    assert (bad_pause["Response"], bad_pause["Message"]) == ("Error", "Interface not found")
    assert pong["Ping"] == "Pong"


def test_monitoring_a_fast_simulated_day_over_the_socket():
    async def scenario():
        server = build("cti", "pw", agents=4, model=TrafficModel(calls_per_minute=12, handle_mean_s=45), seed=5, speed=120)
        port = await server.start()
        tracker = CallTracker()
        records = []

        def on_event(message, arrival):
            records.extend(e.record for e in tracker.feed(message, event_time(message, arrival)) if e.record)

        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw"), on_event)
        task = asyncio.create_task(client.run())
        while server.sim.now < server.start_at + 400:
            await asyncio.sleep(0.05)
        server.traffic.stop()
        while server.sim.channels:
            await asyncio.sleep(0.05)
        await eventually(lambda: not tracker.open_calls(), what="every hangup read")
        await client.close()
        await task
        await server.stop()
        return server, records

    server, records = asyncio.run(scenario())
    assert len(records) == server.traffic.generated["calls"] > 40
    answered = [r for r in records if r.outcome == "answered"]
    assert sum(q.completed for q in server.sim.queues.queues.values()) == len(answered)
    assert all(0 <= r.wait_s < 700 and r.talk_s >= 14 for r in answered), "times come from Asterisk's Timestamp, in sim seconds"


def test_agents_put_callers_on_hold_and_the_tracker_counts_it():
    events, traffic, sim = simulate(4, 20, TrafficModel(calls_per_minute=5, hold_share=1.0, hold_mean_s=20, patience_mean_s=900))
    tracker = CallTracker()
    records = [e.record for m in events for e in tracker.feed(Message(m.items()), event_time(m, 0)) if e.record]
    answered = [r for r in records if r.outcome == "answered"]
    holds = Counter(m["Event"] for m in events if m["Event"] in ("Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop"))
    assert holds["Hold"] > 5 and holds["Hold"] == holds["MusicOnHoldStart"]
    assert sum(r.hold_s > 0 for r in answered) == holds["Hold"]
    assert all(0 <= r.hold_s <= r.ended_at - r.answered_at and r.talk_s > 0 for r in answered)


def test_hourly_curve_shapes_arrivals():
    events: list[dict[str, str]] = []
    sim = Sim(load_dialplan(ETC / "extensions.conf"), start=0.0, emit=events.append)
    QueueEngine(sim, simulated_queues(2))
    traffic = Traffic(sim, TrafficModel(calls_per_minute=2, hourly_curve=(0.25, 2.0), menu=(("9", 1.0),)), seed=2)
    traffic.start()
    sim.advance(3600)
    quiet = traffic.generated["calls"]
    sim.advance(7200)
    busy = traffic.generated["calls"] - quiet
    assert 15 <= quiet <= 50 and 180 <= busy <= 300


def test_waiting_callers_survive_a_dropped_connection():
    async def scenario():
        server = build("cti", "pw", agents=2, model=TrafficModel(calls_per_minute=30, menu=(("1", 1.0),), patience_mean_s=10_000), speed=20)
        port = await server.start(traffic=False)
        for member in server.sim.queues.queues["support"].members:
            server.sim.queues.pause(member.interface, True, None, "meeting")
        tracker = CallTracker()
        waiting: dict[str, bool] = {}
        resyncs: list[float] = []

        def on_event(message, arrival):
            for e in tracker.feed(message, event_time(message, arrival)):
                if e.kind == "queue_joined":
                    waiting[e.linkedid] = bool(e.data.get("resynced"))

        def on_resync(snapshot):
            resyncs.append(snapshot.at)
            for e in tracker.resync(snapshot.channels, snapshot.queue_entries, snapshot.at):
                if e.kind == "queue_joined":
                    waiting[e.linkedid] = True

        client = AMIClient(ClientOptions("127.0.0.1", port, "cti", "pw", reconnect_min=1.0, reconnect_max=1.2), on_event, on_resync)
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        server.traffic.start()
        while len(server.sim.queues.queues["support"].callers) < 3:
            await asyncio.sleep(0.02)
        before = set(tracker.open_calls())
        server.drop()
        dropped_at = server.sim.now
        await eventually(lambda: client.sessions >= 2, what="the second session")
        back_at = server.sim.now
        server.traffic.stop()
        await eventually(lambda: len(resyncs) == 2, what="the second session's resync")
        callers = server.sim.queues.queues["support"].callers
        in_queue = {c.ch.linkedid for c in callers}
        gap = {c.ch.linkedid for c in callers if dropped_at < c.joined_at < back_at - 1.0}
        after = set(tracker.open_calls())
        await client.close()
        await task
        await server.stop()
        return before, after, in_queue, waiting, gap

    before, after, in_queue, waiting, gap = asyncio.run(scenario())
    assert gap, "callers joined the queue while the connection was down"
    assert in_queue <= after, "every caller still waiting is known after the reconnect"
    assert in_queue <= set(waiting), "and known to be waiting in the queue"
    assert all(waiting[linkedid] for linkedid in gap), "those that joined during the gap were found by the resync (QueueStatus)"
