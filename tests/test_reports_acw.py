"""After-call work measured from the agents' changes and counted in AHT: the same known answers from hand-built queue_log
lines, from the engine's own records in the database, and from a queue_log imported there."""

from __future__ import annotations

import json

import pytest

from kernel.db import CallStore
from kernel.records import CallRecord, Leg
from kernel.values import HangupBy, LegEnd, Outcome
from reports.engine import ReportEngine
from reports.metrics import Options
from reports.queue_log import AgentChange, VisitBuilder, read_lines, read_visits
from reports.render import as_csv, as_table
from reports.store import save_agent_changes, save_stream, stored_stream
from tests.test_reports import DAY, LOG, callcenter, on_day, report_of

# Times in seconds from DAY's midnight (see on_day). Ann takes three calls: c1's after-call work ends with her unpause 30 s
# after its end; c2's pause (a second after the end, as the engine's QueuePause may land) ends 20 s later when she pauses
# for lunch; c3's ends 30 s after it with her logout. Ben's c4 is followed by no after-call work; Cid's c5 by a pause and
# unpause in the same second (0 s). A QueuePause with no queue writes PAUSEALL and then PAUSE in each queue: one pause.
ACW_LOG = """\
0|MANAGER|q|Ann|ADDMEMBER|
0|MANAGER|q|Ben|ADDMEMBER|
0|MANAGER|q|Cid|ADDMEMBER|
100|c1|q|NONE|ENTERQUEUE||5511|1
105|c1|q|Ann|CONNECT|5|a1|1
165|c1|q|Ann|COMPLETECALLER|5|60|1
165|NONE|NONE|Ann|PAUSEALL|after_call_work
165|NONE|q|Ann|PAUSE|after_call_work
195|NONE|NONE|Ann|UNPAUSEALL|
195|NONE|q|Ann|UNPAUSE|
200|c4|q|NONE|ENTERQUEUE||5514|1
210|c4|q|Ben|CONNECT|10|b1|1
300|c4|q|Ben|COMPLETECALLER|10|90|1
300|c2|q|NONE|ENTERQUEUE||5512|1
302|c2|q|Ann|CONNECT|2|a2|1
342|c2|q|Ann|COMPLETEAGENT|2|40|1
343|NONE|NONE|Ann|PAUSEALL|after_call_work
343|NONE|q|Ann|PAUSE|after_call_work
363|NONE|NONE|Ann|PAUSEALL|lunch
363|NONE|q|Ann|PAUSE|lunch
400|c5|q|NONE|ENTERQUEUE||5515|1
401|c5|q|Cid|CONNECT|1|c1|1
451|c5|q|Cid|COMPLETEAGENT|1|50|1
451|NONE|NONE|Cid|PAUSEALL|after_call_work
451|NONE|q|Cid|PAUSE|after_call_work
451|NONE|NONE|Cid|UNPAUSEALL|
451|NONE|q|Cid|UNPAUSE|
663|NONE|NONE|Ann|UNPAUSEALL|
663|NONE|q|Ann|UNPAUSE|
700|c3|q|NONE|ENTERQUEUE||5513|1
700|c3|q|Ann|CONNECT|0|a3|1
760|c3|q|Ann|COMPLETECALLER|0|60|1
760|NONE|NONE|Ann|PAUSEALL|after_call_work
760|NONE|q|Ann|PAUSE|after_call_work
790|MANAGER|q|Ann|REMOVEMEMBER|
"""
# The same calls as the engine stores them: a call per visit with its leg, and the agents' states as the agent registry
# (app_queue mode: the after_call_work pause is `wrap_up`) or the native ACD report them.
CALLS = [  # callid, agent, entered, wait, talk
    ("c1", "Ann", 100, 5, 60),
    ("c4", "Ben", 200, 10, 90),
    ("c2", "Ann", 300, 2, 40),
    ("c5", "Cid", 400, 1, 50),
    ("c3", "Ann", 700, 0, 60),
]
STATES = {
    "Ann": [(0, "available"), (102, "ringing"), (105, "on_call"), (165, "wrap_up"), (195, "available"), (301, "ringing"),
            (302, "on_call"), (343, "wrap_up"), (363, "paused", "lunch"), (663, "available"), (700, "on_call"),
            (760, "wrap_up"), (790, "logged_out")],
    "Ben": [(0, "available"), (205, "ringing"), (210, "on_call"), (300, "available")],
    "Cid": [(0, "available"), (401, "on_call"), (451, "wrap_up"), (451, "available")],
}  # fmt: skip
# Known answers: Ann 30 + 20 + 30 s of after-call work over 160 s of talk, Ben and Cid none.
ANN = {"answered": 3, "talk_s": 160.0, "acw_s": round(80 / 3, 2), "aht_s": 80.0, "pause_s_by_reason": {"lunch": 300.0}}
BEN = {"answered": 1, "talk_s": 90.0, "acw_s": 0.0, "aht_s": 90.0, "pause_s_by_reason": {}}
CID = {"answered": 1, "talk_s": 50.0, "acw_s": 0.0, "aht_s": 50.0, "pause_s_by_reason": {}}
QUEUE = {"answered": 5, "avg_talk_s": 60.0, "acw_s": 16.0, "aht_s": 76.0}


def figures(report: dict) -> tuple[dict, dict]:
    """The queue's and agents' figures these tests know the answers of."""
    agents = {name: {k: row[k] for k in ANN} for name, row in report["agents"].items()}
    return {k: report["queues"]["q"][k] for k in QUEUE}, agents


def engine_records(store: CallStore) -> None:
    """CALLS and STATES stored as the engine stores them."""
    records = []
    for callid, agent, entered, wait, talk in CALLS:
        t, answered, ended = DAY + entered, DAY + entered + wait, DAY + entered + wait + talk
        leg = Leg("q", agent, t, answered, ended, wait, talk, 0.0, LegEnd.COMPLETED, callid=callid)
        records.append(
            CallRecord(
                f"L-{callid}",
                f"55{callid}",
                None,
                None,
                t,
                "",
                "q",
                t,
                answered,
                agent,
                ended,
                Outcome.ANSWERED,
                wait,
                talk,
                0.0,
                HangupBy.CALLER,
                16,
                legs=[leg],
            )  # fmt: skip
        )
    store.save(records)
    changes = [
        AgentChange(DAY + t, agent, None, state, rest[0] if rest else None) for agent, rows in STATES.items() for t, state, *rest in rows
    ]
    save_agent_changes(store, changes)


def from_store(store: CallStore, start: float | None = None, end: float | None = None) -> dict:
    engine = ReportEngine()
    engine.load_stream(stored_stream(store, start, end))
    return engine.report(Options(start=start, end=end))


def test_after_call_work_measured_in_a_queue_log_with_known_answers(tmp_path):
    report = report_of(ACW_LOG, tmp_path)
    queue, agents = figures(report)
    assert queue == QUEUE
    assert agents == {"Ann": ANN, "Ben": BEN, "Cid": CID}
    ann = report["agents"]["Ann"]
    assert ann["logged_in_s"] == 790 and ann["occupancy_pct"] == pytest.approx(100 * (160 + 80) / (790 - 300), abs=0.01), (
        "after-call work is handle time, not paused time"
    )
    assert [(i["start"], i["acw_s"], i["aht_s"]) for i in report["intervals"]] == [("2026-11-22T00:00:00Z", 16.0, 76.0)]
    assert report_of(ACW_LOG, tmp_path, wrapup_seconds=10) == report, "measured after-call work: W is not added"


def test_without_any_measurement_w_is_each_answered_calls_after_call_work(tmp_path):
    q = report_of(LOG, tmp_path, wrapup_seconds=10)["queues"]["q"]
    assert (q["acw_s"], q["aht_s"], q["avg_talk_s"]) == (10.0, pytest.approx(250 / 3, abs=0.01), pytest.approx(220 / 3, abs=0.01))
    assert report_of(LOG, tmp_path)["queues"]["q"]["acw_s"] == 0.0


def test_the_engines_records_and_an_imported_queue_log_give_the_same_answers(store, tmp_path):
    engine_records(store)
    assert figures(from_store(store)) == (QUEUE, {"Ann": ANN, "Ben": BEN, "Cid": CID})
    path = tmp_path / "queue_log"
    path.write_text(on_day(ACW_LOG))
    assert save_stream(store, read_visits(read_lines(path)))[0] == 0, "the engine's calls are not imported twice"
    both = from_store(store)
    assert figures(both) == (QUEUE, {"Ann": ANN, "Ben": BEN, "Cid": CID}), "wrap_up and the after_call_work pause are one span"
    assert both["agents"]["Ann"]["logged_in_s"] == 790, "queue_log's ADDMEMBER and REMOVEMEMBER"


def test_an_imported_queue_log_reports_as_the_file(store, tmp_path):
    path = tmp_path / "queue_log"
    path.write_text(on_day(ACW_LOG))
    save_stream(store, read_visits(read_lines(path)))
    from_file = ReportEngine()
    from_file.load_queue_log(path)
    report = from_file.report(Options())
    assert from_store(store) == report and figures(report) == (QUEUE, {"Ann": ANN, "Ben": BEN, "Cid": CID})


def test_a_window_counts_the_after_call_work_of_its_own_calls_only(store, tmp_path):
    """The window 00:00-00:10 holds c1, c4, c2 and c5; c3 is after it. Ann's pause after c3 is not c2's after-call work,
    though the database's window loads no c3 (its first call after the window is read for that)."""
    start, end = float(DAY), float(DAY + 600)
    engine_records(store)
    path = tmp_path / "queue_log"
    path.write_text(on_day(ACW_LOG))
    engine = ReportEngine()
    engine.load_queue_log(path)
    reports = [engine.report(Options(start=start, end=end)), from_store(store, start, end)]
    for report in reports:
        assert report["agents"]["Ann"]["answered"] == 2 and report["agents"]["Ann"]["acw_s"] == 25.0
        assert report["queues"]["q"]["acw_s"] == 12.5 and report["queues"]["q"]["offered"] == 4
    late = from_store(store, float(DAY + 600), float(DAY + 900))
    assert late["agents"]["Ann"]["acw_s"] == 30.0 and late["queues"]["q"]["offered"] == 1, "c3's own window"


def test_bad_lines_among_after_call_work_are_named_and_the_rest_counted(tmp_path):
    """A file with bad lines is read by the import's reader, not the SQL: the after-call work comes out the same."""
    bad = ACW_LOG.replace("195|NONE|q|Ann|UNPAUSE|\n", "195|NONE|q|Ann|UNPAUSE|\n196|NONE|q||PAUSE|after_call_work\nnot a line\n")
    path = tmp_path / "queue_log"
    path.write_text(on_day(bad))
    engine = ReportEngine()
    engine.load_queue_log(path)
    assert [(e.number, e.reason) for e in engine.errors] == [
        (11, "PAUSE with no agent (Asterisk writes NONE for none)"),
        (12, "expected at least 5 '|'-separated fields, found 1"),
    ]
    builder = VisitBuilder()
    list(read_visits(read_lines(path), builder))
    assert [e.number for e in builder.errors] == [11, 12], "the import names the same lines"
    assert figures(engine.report(Options())) == (QUEUE, {"Ann": ANN, "Ben": BEN, "Cid": CID})
    run = callcenter("report", "--queue-log", str(path), "--format", "json")
    assert run.returncode == 1 and "line 11: PAUSE with no agent" in run.stderr and "Traceback" not in run.stderr
    assert json.loads(run.stdout)["queues"]["q"]["acw_s"] == 16.0


def test_after_call_work_in_every_format_and_w_said_unused(tmp_path):
    report = report_of(ACW_LOG, tmp_path)
    assert "acw_s" in as_table(report).splitlines()[0]
    header, queue = as_csv(report).splitlines()[:2]
    assert dict(zip(header.split(","), queue.split(",")))["acw_s"] == "16.0"
    path = tmp_path / "queue_log"
    path.write_text(on_day(ACW_LOG))
    run = callcenter("report", "--queue-log", str(path), "--wrapup-seconds", "10", "--format", "json")
    assert run.returncode == 0 and "--wrapup-seconds not used: these calls' after-call work is measured" in run.stderr
    assert json.loads(run.stdout)["agents"]["Ann"]["aht_s"] == 80.0
    assert "only when the data measures none" in " ".join(callcenter("report", "--help").stdout.split())


def test_a_pause_for_another_reason_ends_the_one_before_and_each_is_stored(store, tmp_path):
    """Asterisk writes a pause of a paused member again with its new reason: the time after it is the new reason's. Two
    changes of one second that differ in reason are both stored (only a repeat, or wrap_up and its after_call_work pause,
    is one)."""
    log = (
        "0|MANAGER|q|Ana|ADDMEMBER|\n100|NONE|NONE|Ana|PAUSEALL|lunch\n100|NONE|q|Ana|PAUSE|lunch\n200|NONE|NONE|Ana|PAUSEALL|coffee\n"
        "200|NONE|q|Ana|PAUSE|coffee\n250|NONE|NONE|Ana|PAUSEALL|training\n250|NONE|NONE|Ana|PAUSEALL|meeting\n"
        "400|NONE|NONE|Ana|UNPAUSEALL|\n400|NONE|q|Ana|UNPAUSE|\n1000|MANAGER|q|Ana|REMOVEMEMBER|\n"
    )
    expected = {"coffee": 50.0, "lunch": 100.0, "meeting": 150.0, "training": 0.0}
    assert report_of(log, tmp_path)["agents"]["Ana"]["pause_s_by_reason"] == expected
    path = tmp_path / "queue_log"
    path.write_text(on_day(log))
    assert save_stream(store, read_visits(read_lines(path))) == (0, 7)
    assert save_stream(store, read_visits(read_lines(path))) == (0, 0), "importing twice adds nothing"
    assert from_store(store)["agents"]["Ana"]["pause_s_by_reason"] == expected


def test_a_pause_taken_at_the_answer_counts_from_the_calls_end(store, tmp_path):
    """app_queue mode pauses the agent for after-call work already when they answer (ArmWrapup): Dan's d1 has 20 s of it,
    from its end to his unpause; on d2 he asks for lunch during the call, which ends the after-call work before it began."""
    log = (
        "0|MANAGER|q|Dan|ADDMEMBER|\n"
        "100|d1|q|NONE|ENTERQUEUE||5521|1\n104|d1|q|Dan|CONNECT|4|x1|1\n104|NONE|NONE|Dan|PAUSEALL|after_call_work\n"
        "104|NONE|q|Dan|PAUSE|after_call_work\n164|d1|q|Dan|COMPLETECALLER|4|60|1\n184|NONE|NONE|Dan|UNPAUSEALL|\n184|NONE|q|Dan|UNPAUSE|\n"
        "200|d2|q|NONE|ENTERQUEUE||5522|1\n201|d2|q|Dan|CONNECT|1|x2|1\n201|NONE|NONE|Dan|PAUSEALL|after_call_work\n"
        "201|NONE|q|Dan|PAUSE|after_call_work\n230|NONE|NONE|Dan|PAUSEALL|lunch\n230|NONE|q|Dan|PAUSE|lunch\n"
        "261|d2|q|Dan|COMPLETEAGENT|1|60|1\n500|NONE|NONE|Dan|UNPAUSEALL|\n500|NONE|q|Dan|UNPAUSE|\n"
    )
    dan = report_of(log, tmp_path)["agents"]["Dan"]
    assert (dan["answered"], dan["talk_s"], dan["acw_s"], dan["aht_s"]) == (2, 120.0, 10.0, 70.0)
    assert dan["pause_s_by_reason"] == {"lunch": 270.0}, "the talk under the armed pause is no pause"
    # The engine's states for the same (its times are not whole seconds), then queue_log imported over them.
    for callid, entered, wait, talk in (("d1", 100.3, 4.4, 59.5), ("d2", 200.2, 1.3, 59.8)):
        t, answered, ended = DAY + entered, DAY + entered + wait, DAY + entered + wait + talk
        leg = Leg("q", "Dan", t, answered, ended, wait, talk, 0.0, LegEnd.COMPLETED, callid=callid)
        store.save([CallRecord(f"L-{callid}", "5521", None, None, t, "", "q", t, answered, "Dan", ended, Outcome.ANSWERED, wait,
                               talk, 0.0, HangupBy.CALLER, 16, legs=[leg])])  # fmt: skip
    states = [(0, "available", None), (104, "on_call", None), (164, "wrap_up", None), (184, "available", None),
              (201, "on_call", None), (230, "on_call", "lunch"), (261, "paused", "lunch"), (500, "available", None)]  # fmt: skip
    save_agent_changes(store, [AgentChange(DAY + t, "Dan", None, state, reason) for t, state, reason in states])
    dan = from_store(store)["agents"]["Dan"]
    assert (dan["answered"], dan["acw_s"], dan["pause_s_by_reason"]) == (2, 10.0, {"lunch": 239.0})
    path = tmp_path / "queue_log"
    path.write_text(on_day(log))
    save_stream(store, read_visits(read_lines(path)))
    dan = from_store(store)["agents"]["Dan"]
    assert (dan["answered"], dan["acw_s"]) == (2, 10.0), "queue_log's pause at the answer is the answer's, not the call's before"
