"""The tracker under partial, reordered and resynced streams of real events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.codec import Message
from pbx.trace import replay, replay_messages
from pbx.tracker import CallTracker, event_time
from tests.conftest import TRACES, trace_names

CALL_TRACES = [n for n in trace_names() if n != "member_management"]


def events_of(name: str) -> list[tuple[float, Message]]:
    return [(event_time(m, t), m) for t, m in replay_messages(TRACES / f"{name}.jsonl") if isinstance(m, Message) and m.event]


def run(events):
    tracker = CallTracker()
    out = []
    for t, m in events:
        out += tracker.feed(m, t)
    return tracker, out


def test_domain_events_of_an_answered_call_in_order():
    _, out = run(events_of("answered_caller_hangs_up"))
    assert [e.kind for e in out] == ["call_started", "dtmf", "queue_joined", "agent_ringing", "answered", "call_ended"]
    started = out[0].data
    assert (started["caller_number"], started["caller_name"]) == ("5511999990001", "Maria Silva")
    assert out[-1].record is not None and out[-1].record.agent == "Bob"


def test_abandon_and_timeout_are_told_apart():
    _, abandon = run(events_of("abandon_in_queue"))
    _, timeout = run(events_of("queue_timeout_exit"))
    assert [e.data["reason"] for e in abandon if e.kind == "queue_left"] == ["abandoned"]
    assert [e.data["reason"] for e in timeout if e.kind == "queue_left"] == ["timeout"]


def test_timeout_is_recognised_without_varset_events():
    events = [(t, m) for t, m in events_of("queue_timeout_exit") if m.event != "VarSet"]
    _, out = run(events)
    assert out[-1].record.outcome == "timeout"


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(CALL_TRACES), data=st.data())
def test_a_stream_cut_at_either_end_never_gives_a_wrong_record(name, data):
    events = events_of(name)
    [full] = replay(TRACES / f"{name}.jsonl")
    start = data.draw(st.integers(0, len(events)))
    end = data.draw(st.integers(start, len(events)))
    tracker, out = run(events[start:end])
    records = [e.record for e in out if e.record is not None]
    assert records in ([], [full])


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(trace_names()), data=st.data())
def test_any_permutation_or_truncation_never_raises(name, data):
    events = events_of(name)
    chosen = data.draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    tracker, out = run(chosen)
    assert tracker.stats["events"] == len(chosen)


def test_a_waiting_caller_seen_only_after_reconnect_is_stored_marked_resynced():
    tracker = CallTracker()
    channel = {
        "Channel": "PJSIP/trunk-00000007",
        "Uniqueid": "1700000000.7",
        "Linkedid": "1700000000.7",
        "CallerIDNum": "5511912345678",
        "CallerIDName": "Ana",
        "Duration": "00:00:42",
        "Application": "Queue",
    }
    entry = {
        "Event": "QueueEntry",
        "Queue": "support",
        "Position": "1",
        "Channel": channel["Channel"],
        "Uniqueid": channel["Uniqueid"],
        "CallerIDNum": "5511912345678",
        "Wait": "30",
    }
    out = tracker.resync([channel], [entry], 1000.0)
    started, joined = out
    assert (started.kind, started.data["caller_number"], started.data["resynced"]) == ("call_started", "5511912345678", True)
    assert joined.kind == "queue_joined" and joined.data["queue"] == "support" and joined.data["resynced"]
    call = tracker.calls["1700000000.7"]
    assert call.visit.enqueued_at == 970.0 and call.started_at == 958.0
    hangup = Message(
        [
            ("Event", "Hangup"),
            ("Channel", channel["Channel"]),
            ("Uniqueid", channel["Uniqueid"]),
            ("Linkedid", channel["Linkedid"]),
            ("Cause", "16"),
        ]
    )
    record = tracker.feed(hangup, 1010.0)[-1].record
    assert (record.linkedid, record.caller_number, record.started_at, record.queue, record.wait_s) == (
        "1700000000.7",
        "5511912345678",
        958.0,
        "support",
        40.0,
    )
    assert record.resynced and record.outcome == "abandoned" and record.legs[0].callid == "1700000000.7"


def test_resync_ends_a_call_that_hung_up_during_the_gap():
    events = events_of("answered_caller_hangs_up")
    cut = next(i for i, (_, m) in enumerate(events) if m.event == "BridgeEnter")
    tracker, _ = run(events[:cut])
    assert tracker.open_calls() == ["1795380098.0"]
    out = tracker.resync([], [], events[-1][0])
    [ended] = [e for e in out if e.kind == "call_ended"]
    assert ended.record.outcome == "answered" and ended.record.agent == "Bob"
    assert ended.record.resynced and ended.record.hangup_by == "unknown"
    assert tracker.open_calls() == []


def _like(template: Message, **changes: str) -> Message:
    """A copy of a real event with some headers changed (Asterisk's field set kept)."""
    return Message([*({**template, **changes}).items()])


def test_hold_time_is_measured_and_kept_out_of_talk_time():
    events = events_of("answered_caller_hangs_up")
    bridge = next(i for i, (_, m) in enumerate(events) if m.event == "BridgeEnter")
    t0, enter = events[bridge]
    caller = next(m for _, m in events if m.event == "QueueCallerJoin")
    hold = _like(caller, Event="Hold", MusicClass="default")
    unhold = _like(caller, Event="Unhold")
    events = events[: bridge + 1] + [(t0 + 1.0, hold), (t0 + 3.5, unhold)] + events[bridge + 1 :]
    _, out = run(events)
    assert [e.kind for e in out if e.kind in ("hold", "unhold")] == ["hold", "unhold"]
    record = out[-1].record
    assert record.hold_s == pytest.approx(2.5)
    assert record.talk_s == pytest.approx(replay(TRACES / "answered_caller_hangs_up.jsonl")[0].talk_s - 2.5)


def test_a_call_that_dials_out_without_a_queue_is_outbound():
    events = [(t, m) for t, m in events_of("ivr_invalid_then_timeout") if m.event != "DTMFEnd"]
    root = next(m for _, m in events if m.event == "Newchannel" and m["Uniqueid"] == m["Linkedid"])
    inbound = next(m for _, m in events if m.event == "Newchannel" and m["Uniqueid"] != m["Linkedid"])
    t_dial = events[len(events) // 2][0]
    dial = _like(inbound, Event="DialBegin", DestChannel="PJSIP/trunk-0000001", DestUniqueid="x.1", DialString="trunk/551130000000")
    events.insert(len(events) // 2, (t_dial, dial))
    _, out = run(events)
    assert out[-1].record.outcome == "outbound" and out[-1].record.ivr_digits == ""
    assert root["Channel"].endswith(";1")


def test_event_time_prefers_asterisks_timestamp():
    assert event_time({"Event": "Hangup", "Timestamp": "1795380099.870000"}, 5.0) == pytest.approx(1795380099.87)
    assert event_time({"Event": "Hangup"}, 5.0) == 5.0
    assert event_time({"Event": "Hangup", "Timestamp": "garbage"}, 5.0) == 5.0


FIELDS = ("Channel", "Uniqueid", "Linkedid", "Queue", "MemberName", "DestChannel", "Timestamp", "Cause", "Value", "Variable")
JUNK = ("", "1e300", "-1e300", "nan", "inf", "-5", "1000000000.5", "99999999999999999999", "²³", "x" * 300, "Local/x;1", "0")
RENAMES = ("TransfereeChannel", "SpyerChannel", "OrigTransfererChannel", "TransfererChannel", "DestChannel", "TransfereeLinkedid")


def mutated(m: Message, how: str, key: str, value: str) -> Message:
    pairs = list(m.items())
    if how == "drop":
        pairs = [(k, v) for k, v in pairs if k != key]
    elif how == "rename":
        pairs = [(value if k == key else k, v) for k, v in pairs]
    else:
        pairs = [(k, value if k == key else v) for k, v in pairs] + ([] if key in m else [(key, value)])
    return Message(pairs)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(trace_names()), data=st.data())
def test_the_tracker_never_raises_on_renamed_dropped_or_absurd_fields(name, data):
    events = events_of(name)
    changes = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(events) - 1),
                st.sampled_from(("drop", "rename", "set")),
                st.sampled_from(FIELDS),
                st.sampled_from(JUNK + RENAMES),
            ),
            max_size=6,
        )
    )
    for index, how, key, value in changes:
        t, m = events[index]
        events[index] = (t, mutated(m, how, key, value))
    tracker = CallTracker()
    out = []
    for t, m in events:
        out += tracker.feed(m, event_time(m, t))
    for record in (e.record for e in out if e.record is not None):
        record.to_json()
        for value in (record.wait_s, record.talk_s, record.hold_s):
            assert value is None or value >= 0, record


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(CALL_TRACES), data=st.data())
def test_absurd_or_backward_timestamps_never_give_negative_or_unprintable_times(name, data):
    events = events_of(name)
    for index in data.draw(st.lists(st.integers(0, len(events) - 1), max_size=4)):
        stamp = data.draw(st.one_of(st.floats(), st.floats(1e9, 2e9), st.text(max_size=25)))
        t, m = events[index]
        events[index] = (t, mutated(m, "set", "Timestamp", str(stamp)))
    tracker = CallTracker()
    records = [e.record for t, m in events for e in tracker.feed(m, event_time(m, t)) if e.record is not None]
    assert len(records) <= 1
    for record in records:
        record.to_json()
        assert record.started_at <= record.ended_at
        for value in (record.wait_s, record.talk_s, record.hold_s):
            assert value is None or value >= 0, record


def test_an_event_with_its_channel_under_a_transfer_name_is_ignored_and_1e300_falls_back_to_arrival():
    events = events_of("answered_caller_hangs_up")
    hangups = [i for i, (_, m) in enumerate(events) if m.event == "Hangup"]
    t, m = events[hangups[0]]
    renamed = Message([("TransfereeChannel" if k == "Channel" else k, v) for k, v in m.items()])
    tracker = CallTracker()
    assert tracker.feed(renamed, t) == [], "a Hangup without Channel is not one Asterisk sends"
    connect = next(i for i, (_, m) in enumerate(events) if m.event == "AgentConnect")
    t, m = events[connect]
    events[connect] = (t, mutated(m, "set", "Timestamp", "1e300"))
    assert event_time(events[connect][1], t) == t
    _, out = run([(event_time(m, t), m) for t, m in events])
    [record] = [e.record for e in out if e.record is not None]
    assert record.answered_at == t and record.to_json()["answered_at"].startswith("20")
