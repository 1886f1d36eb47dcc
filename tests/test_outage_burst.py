"""Calls the engine could not see: a 300-call burst on the simulator with the AMI link cut 10 times (every call stored
once, as queue_log and the CDR say it went), and an engine that starts after calls it missed.

The engine's monitor (tracker, store, queue_log and CDR tails) logs in through a TCP relay (`tests.link.Link`) that
the test cuts and keeps down for a few simulated seconds at a time, while the simulator carries on: calls start, are
answered and end inside the gaps (each cut once the session before it has resynced). Afterwards each queue_log visit
(the simulator's own file, as Asterisk's) must be the leg of exactly one stored call, with the same queue, outcome and
agent; each call of the simulator's Master.csv that never reached a queue (one caller in five stays in the IVR) must
be stored once under its linkedid, in no queue; no time of any call may be negative.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

from callcenter.monitor import Monitor
from kernel.db import open_store
from kernel.records import CallRecord, Visit
from pbx.client import AMIClient, ClientOptions, Snapshot
from pbx.simulator.server import build
from pbx.simulator.traffic import TrafficModel
from pbx.trace import replay
from pbx.tracker import CallTracker
from reports.cdr import cdr_calls, read_cdr
from reports.queue_log import QueueLogTail, read_lines, read_visits
from tests.conftest import TRACES
from tests.link import Link
from tests.waiting import eventually

CALLS, CUTS, SPEED = 300, 10, 4.0
MODEL = TrafficModel(
    calls_per_minute=480,
    menu=(("1", 0.5), ("2", 0.3), ("9", 0.1), ("", 0.1)),  # one caller in five stays in the IVR: in no queue_log line
    think_s=(0.5, 1.0),
    patience_mean_s=12.0,
    answer_delay_s=(0.5, 1.5),
    handle_mean_s=6.0,
    min_handle_s=2.0,
    hold_share=0.1,
    hold_mean_s=2.0,
    queue_timeout_s=40,
)


def run_burst(tmp_path) -> tuple[list, list[Visit], list[CallRecord], dict]:
    queue_log, cdr = tmp_path / "queue_log", tmp_path / "Master.csv"
    store = open_store(f"sqlite:///{tmp_path / 'calls.db'}")

    async def scenario() -> dict:
        server = build("cti", "pw", agents=40, model=MODEL, seed=11, speed=SPEED, queue_log=queue_log, cdr=cdr)
        port = await server.start(traffic=False)
        link = await asyncio.to_thread(Link, port)
        monitor = Monitor(CallTracker(), store, None, queue_log=queue_log, cdr=cdr)
        options = ClientOptions(
            "127.0.0.1", link.port, "cti", "pw", ping_interval=1.0, ping_timeout=1.0, reconnect_min=0.1, reconnect_max=0.2
        )
        resyncs: list[float] = []

        async def on_resync(snapshot) -> None:
            await monitor.on_resync(snapshot)
            resyncs.append(snapshot.at)

        client = AMIClient(options, monitor.on_event, on_resync, on_session=monitor.on_session)
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        assert server.traffic is not None
        server.traffic.start()
        gaps = []
        for n in range(1, CUTS + 1):
            await eventually(lambda: server.traffic.generated["calls"] >= n * CALLS // (CUTS + 1), 60, f"call {n * CALLS // (CUTS + 1)}")
            sessions, down_at = client.sessions, server.sim.now
            await asyncio.to_thread(link.cut, True)
            await eventually(lambda: server.sim.now >= down_at + 3.0, 10, "three simulated seconds of gap")
            await asyncio.to_thread(link.restore)
            await eventually(lambda: len(resyncs) > sessions, 20, f"session {sessions + 1} resynced after cut {n}")
            gaps.append(server.sim.now - down_at)
        await eventually(lambda: server.traffic.generated["calls"] >= CALLS, 60, f"{CALLS} calls")
        server.traffic.stop()
        await eventually(lambda: not server.sim.channels, 120, "every simulated call over")
        await eventually(lambda: not monitor.tracker.open_calls(), 20, "every call's end read")
        await client.close()
        await task
        await asyncio.to_thread(link.close)
        await server.stop()
        return {"generated": server.traffic.generated["calls"], "sessions": client.sessions, "gaps_sim_s": gaps}

    facts = asyncio.run(scenario())
    visits = [v for v in read_visits(read_lines(queue_log)) if isinstance(v, Visit)]
    outside = list(cdr_calls(read_cdr(cdr, []), {v.callid for v in visits}))
    return store.calls(), visits, outside, facts


def test_300_calls_through_10_ami_cuts_are_each_stored_once_as_queue_log_says(tmp_path):
    calls, visits, outside, facts = run_burst(tmp_path)
    legs = {}
    for call in calls:
        for leg in call.legs:
            legs.setdefault((leg.callid, leg.queue), []).append((call, leg))
    wrong, missing, twice = [], [], []
    for v in visits:
        found = [(c, leg) for c, leg in legs.get((v.callid, v.queue), []) if abs(leg.enqueued_at.timestamp() - v.entered) < 2]
        if not found:
            missing.append(v)
            continue
        if len({c.linkedid for c, _ in found}) > 1:
            twice.append(v)
        call, leg = found[0]
        ours = ("answered" if leg.answered_at is not None else leg.ended_by, leg.agent if leg.answered_at is not None else None)
        theirs = (v.outcome, v.agent if v.outcome == "answered" else None)
        if ours != theirs:
            wrong.append((v.callid, v.queue, theirs, ours, call.resynced))
    by_linkedid = {c.linkedid: c for c in calls}
    for r in outside:  # the CDR's calls that never reached a queue, stored under the linkedid the engine uses
        call = by_linkedid.get(r.linkedid)
        if call is None:
            missing.append(r)
        elif (call.outcome, call.queue, call.legs) != (r.outcome, None, []):
            wrong.append((r.linkedid, None, r.outcome, (call.outcome, call.queue, len(call.legs)), call.resynced))
    negative = [
        c.linkedid
        for c in calls
        for value in (c.wait_s, c.talk_s, c.hold_s, *(x for leg in c.legs for x in (leg.wait_s, leg.talk_s, leg.hold_s)))
        if value is not None and value < 0
    ]
    figures = {
        **facts,
        "stored": len(calls),
        "queue_log_visits": len(visits),
        "outside_queues_in_cdr": len(outside),
        "resynced": sum(c.resynced for c in calls),
        "recovered_from_queue_log": sum(c.linkedid.startswith("ql:") for c in calls),
        "ivr_only_resynced": sum(c.resynced for c in calls if c.outcome == "ivr_only"),
        "missing": len(missing),
        "stored_twice": len(twice),
        "wrong": len(wrong),
        "negative": len(negative),
    }
    if os.environ.get("CALLCENTER_TEST_FIGURES"):
        with open(os.environ["CALLCENTER_TEST_FIGURES"], "a") as out:
            out.write(json.dumps(figures) + "\n")
    assert facts["sessions"] == CUTS + 1, figures
    assert len(calls) == facts["generated"] >= CALLS, figures
    assert not missing and not twice, (figures, missing[:3], twice[:3])
    assert not wrong, (figures, wrong[:5])
    assert not negative, (figures, negative[:5])
    assert figures["resynced"] > 0, "the cuts fell on calls in progress"
    assert len(outside) >= CALLS // 10 and figures["ivr_only_resynced"] > 0, "callers who stayed in the IVR, some in the gaps"


def test_an_engine_started_after_calls_it_missed_stores_them_from_queue_log_once(tmp_path):
    """Two real recordings' queue_log lines, written while the engine was down: the start recovers both calls, no more."""
    queue_log = tmp_path / "queue_log"
    queue_log.write_text("".join((TRACES / f"{name}.queue_log").read_text() for name in ("answered_caller_hangs_up", "abandon_in_queue")))
    store = open_store(f"sqlite:///{tmp_path / 'calls.db'}")
    [before] = replay(TRACES / "answered_agent_hangs_up.jsonl")  # the last call the engine stored before it went down
    store.save([dataclasses.replace(before, ended_at=1795380000.0)])

    async def start() -> None:
        for _ in range(2):  # two starts in a row: the second finds nothing new
            monitor = Monitor(CallTracker(), store, None, queue_log=queue_log)
            await monitor.on_resync(Snapshot([], [], [], [], at=1795380200.0))

    asyncio.run(start())
    recovered = [c for c in store.calls() if c.resynced]
    assert [(c.caller_number, c.outcome, c.queue, c.agent, c.hangup_by) for c in recovered] == [
        ("5511999990001", "answered", "support", "Bob", "caller"),
        ("5511999990001", "abandoned", "support", None, "caller"),
    ]
    answered = recovered[0]
    assert (answered.wait_s, answered.talk_s, [leg.callid for leg in answered.legs]) == (0.0, 6.0, ["1795380098.1"])
    assert store.count() == 3


def test_a_queue_log_path_that_cannot_be_read_is_a_warning_not_a_crash(tmp_path, caplog):
    tail = QueueLogTail(tmp_path)  # a folder
    tail.read()
    assert tail.visits(0) == [] and f"cannot read Asterisk's queue_log {tmp_path}" in caplog.text
