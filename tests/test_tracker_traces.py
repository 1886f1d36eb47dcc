"""The call tracker on real Asterisk traffic, checked against app_queue's queue_log and the CDR."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.records import Visit
from pbx.codec import Message
from pbx.trace import replay, replay_messages
from pbx.tracker import CallTracker, event_time
from reports.queue_log import read_lines, read_visits
from tests.conftest import TRACES, cdr_rows, queue_log

# What happened in each recorded scenario (../shared/ami-traces/README.md).
SCENARIOS = {
    "answered_caller_hangs_up": dict(
        caller="5511999990001", digits="1", queue="support", agent="Bob", outcome="answered", hangup_by="caller"
    ),
    "answered_agent_hangs_up": dict(
        caller="5511988887777", digits="1", queue="support", agent="Alice", outcome="answered", hangup_by="agent"
    ),
    "abandon_in_queue": dict(caller="5511999990001", digits="1", queue="support", agent=None, outcome="abandoned", hangup_by="caller"),
    "ivr_invalid_then_timeout": dict(caller="5511999990001", digits="9", queue=None, agent=None, outcome="ivr_only", hangup_by="system"),
    "async_agi_ivr": dict(caller="5531966665555", digits="1", queue="support", agent="Bob", outcome="answered", hangup_by="caller"),
    "queue_timeout_exit": dict(caller="5511999990001", digits="1", queue="support", agent=None, outcome="timeout", hangup_by="system"),
    "member_management": None,
}


def _cdr_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replay_matches_the_scenario(name):
    records = replay(TRACES / f"{name}.jsonl")
    expected = SCENARIOS[name]
    if expected is None:
        assert records == []
        return
    [record] = records
    assert (record.caller_number, record.ivr_digits, record.queue, record.agent, record.outcome, record.hangup_by) == (
        expected["caller"],
        expected["digits"],
        expected["queue"],
        expected["agent"],
        expected["outcome"],
        expected["hangup_by"],
    )
    assert record.hangup_cause == 16


@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if s and s["queue"]])
def test_wait_and_talk_agree_with_queue_log(name):
    [record] = replay(TRACES / f"{name}.jsonl")
    log = {line.event: line for line in queue_log(name) if line.callid != "NONE"}
    enter = log["ENTERQUEUE"]
    assert enter.queue == record.queue and enter.data[1] == record.caller_number
    assert abs(record.enqueued_at - enter.epoch) < 1
    if "CONNECT" in log:
        connect = log["CONNECT"]
        complete = log.get("COMPLETECALLER") or log["COMPLETEAGENT"]
        assert connect.agent == record.agent
        assert abs(record.wait_s - int(connect.data[0])) <= 1
        assert abs(record.talk_s - int(complete.data[1])) <= 1
        assert record.hangup_by == ("caller" if complete.event == "COMPLETECALLER" else "agent")
    else:
        exit_line = log.get("ABANDON") or log["EXITWITHTIMEOUT"]
        assert record.outcome == {"ABANDON": "abandoned", "EXITWITHTIMEOUT": "timeout"}[exit_line.event]
        assert abs(record.wait_s - int(exit_line.data[2])) <= 1
        assert record.talk_s is None and record.answered_at is None


@pytest.mark.parametrize("name", [n for n, s in SCENARIOS.items() if s])
def test_start_end_and_caller_agree_with_cdr(name):
    [record] = replay(TRACES / f"{name}.jsonl")
    rows = cdr_rows(name)
    root = next(r for r in rows if r["uniqueid"] == record.linkedid)
    assert root["src"] == record.caller_number
    assert abs(_cdr_time(root["start"]) - record.started_at) < 1.5
    assert abs(max(_cdr_time(r["end"]) for r in rows) - record.ended_at) < 1.5


def test_replay_command_prints_one_json_line_per_call():
    names = sorted(n for n, s in SCENARIOS.items() if s)
    out = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "replay", *[str(TRACES / f"{n}.jsonl") for n in names]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["outcome"] for line in lines] == [SCENARIOS[n]["outcome"] for n in names]
    assert set(lines[0]) >= {
        "linkedid",
        "caller_number",
        "caller_name",
        "started_at",
        "ivr_digits",
        "queue",
        "enqueued_at",
        "answered_at",
        "agent",
        "ended_at",
        "outcome",
        "wait_s",
        "talk_s",
        "hangup_by",
    }
    assert lines[0]["started_at"].endswith("Z")


def test_replay_of_a_broken_trace_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0, "dir": "in", "data": "Asterisk Call Manager/1\\r\\n"}\n{not json\n')
    result = subprocess.run([sys.executable, "-m", "callcenter.cli", "replay", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{bad}:2" in result.stderr


# Our own recordings of the real Asterisk (tests/data/traces/README.md): per call its outcome, who hung up, transfers, and
# its legs as (queue, agent, how the leg ended).
OURS = Path(__file__).resolve().parent / "data" / "traces"
LEGS = {
    "blind_transfer_queue_to_queue": ("answered", "caller", 1, [("support", "ana", "transferred_blind"), ("sales", "bea", "completed")]),
    "attended_transfer_to_queue": ("answered", "agent", 1, [("support", "ana", "transferred_attended"), ("sales", "bea", "completed")]),
    "failed_attended_transfer": ("answered", "agent", 0, [("support", "ana", "completed")]),
    "redirect_waiting_caller": ("answered", "caller", 1, [("support", None, "moved"), ("sales", "bea", "completed")]),
    "redirect_answered_call": ("answered", "caller", 1, [("support", "ana", "moved"), ("sales", "bea", "completed")]),
    "hold": ("answered", "caller", 0, [("support", "ana", "completed")]),
    "agent_logged_off_while_ringing": ("answered", "caller", 0, [("support", "ana", "completed")]),
    "agent_hangs_up_first": ("answered", "agent", 0, [("support", "ana", "completed")]),
}
# Where queue_log tells the same call otherwise (docs/metrics.md): a caller moved out of a queue is an ABANDON there, and
# the first agent of a Redirect-moved call is credited until the caller hangs up.
QUEUE_LOG_OTHERWISE = {("redirect_waiting_caller", "support"), ("redirect_answered_call", "support")}


@pytest.mark.parametrize("late", [("BlindTransfer",), ("BlindTransfer", "AgentComplete")])
def test_a_blind_transfer_told_after_the_caller_joined_the_next_queue_is_still_one_transfer(late):
    """Asterisk tells BlindTransfer (and app_queue its AgentComplete) and the transferee's QueueCallerJoin from different
    threads: under load the join comes first (seen on the real-PBX tier). The recording with those events moved after
    the join gives the same legs."""
    events = [(t, m) for t, m in replay_messages(OURS / "blind_transfer_queue_to_queue.jsonl") if isinstance(m, Message) and m.event]
    join = next(i for i, (_, m) in enumerate(events) if m.event == "QueueCallerJoin" and m["Queue"] == "sales")
    moved = [i for i, (_, m) in enumerate(events[:join]) if m.event in late and m.get("Queue", "support") == "support"]
    assert [events[i][1].event for i in moved] == list(late)
    order = [i for i in range(join + 1) if i not in moved] + moved + list(range(join + 1, len(events)))
    tracker = CallTracker()
    [record] = [e.record for i in order for e in tracker.feed(events[i][1], event_time(*events[i][::-1])) if e.record is not None]
    assert record.transfers == 1
    assert [(leg.queue, leg.agent, leg.ended_by) for leg in record.legs] == LEGS["blind_transfer_queue_to_queue"][3]


@pytest.mark.parametrize("name", sorted(LEGS))
def test_each_leg_of_a_transferred_moved_or_held_call(name):
    [record] = replay(OURS / f"{name}.jsonl")
    outcome, hangup_by, transfers, legs = LEGS[name]
    assert (record.outcome, record.hangup_by, record.transfers) == (outcome, hangup_by, transfers)
    assert [(leg.queue, leg.agent, leg.ended_by) for leg in record.legs] == legs
    assert all(leg.talk_s is None or leg.talk_s >= 0 for leg in record.legs) and record.talk_s >= 0 and record.wait_s >= 0
    last = record.legs[-1]
    assert (record.queue, record.agent, record.talk_s) == (last.queue, last.agent, last.talk_s), "the call's own fields are its last leg's"
    visits = [v for v in read_visits(read_lines(OURS / f"{name}.queue_log")) if isinstance(v, Visit)]
    for v in visits:
        [leg] = [leg for leg in record.legs if leg.queue == v.queue]
        if (name, v.queue) in QUEUE_LOG_OTHERWISE:
            continue
        assert (leg.agent, "answered" if leg.answered_at else leg.ended_by) == (v.agent, v.outcome)
        assert abs(leg.wait_s - v.wait_s) < 1.5 and (v.talk_s is None or abs(leg.talk_s + leg.hold_s - v.talk_s) < 1.5), (
            leg,
            v,
        )  # queue_log talk holds the hold


def test_a_burst_of_20_callers_is_20_calls_as_queue_log_tells_them():
    records = replay(OURS / "burst.jsonl")
    visits = {v.callid: v for v in read_visits(read_lines(OURS / "burst.queue_log")) if isinstance(v, Visit)}
    assert len(records) == len(visits) == 20
    for record in records:
        [leg] = record.legs
        v = visits[leg.callid]
        assert (record.queue, record.outcome, record.agent) == (v.queue, v.outcome, v.agent)
        if v.completed_by in ("caller", "agent"):
            assert record.hangup_by == v.completed_by


@pytest.mark.parametrize("name", ["attended_transfer_to_queue", "failed_attended_transfer"])
def test_an_attended_transfers_consultation_is_the_agents_talk_not_the_callers_hold(name):
    [record] = replay(OURS / f"{name}.jsonl")
    [visit] = [v for v in read_visits(read_lines(OURS / f"{name}.queue_log")) if isinstance(v, Visit) and v.agent == "ana"]
    ana = record.legs[0]
    assert (ana.agent, ana.hold_s, record.hold_s) == ("ana", 0.0, 0.0)
    assert abs(ana.talk_s - visit.talk_s) < 1.0, "answer to transfer (or to the end), as app_queue counts her call time"
