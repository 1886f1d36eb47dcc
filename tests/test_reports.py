"""Report figures on hand-built logs with known answers, on the recorded queue_logs, and through the database."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.db import CallStore, make_engine, migrate
from kernel.records import CallRecord, Leg
from kernel.values import HangupBy, LegEnd, Outcome
from pbx.trace import replay
from reports.cdr import CdrTail, cdr_calls, read_cdr
from reports.engine import ReportEngine
from reports.erlang import agents_needed, erlang_c, evaluate
from reports.metrics import Options
from reports.queue_log import UNUSED_EVENTS, VisitBuilder, read_lines, read_visits
from reports.store import save_stream, stored_stream
from tests.conftest import TRACES, trace_names

DAY = 1_795_305_600  # 2026-11-22 00:00 UTC
# Times in seconds from DAY's midnight; on_day makes them the Unix epochs Asterisk writes.
LOG = """\
1000|c1|q|NONE|ENTERQUEUE||111|1
1000|c2|q|NONE|ENTERQUEUE||222|2
1000|c3|q|NONE|ENTERQUEUE||333|3
1000|c4|q|NONE|ENTERQUEUE||444|4
1000|c5|q|NONE|ENTERQUEUE||555|5
1000|c6|q|NONE|ENTERQUEUE||666|6
1003|c2|q|NONE|ABANDON|2|2|3
1005|c6|q|NONE|EXITWITHKEY|0|1|6|5
1006|c4|q|B|RINGNOANSWER|15000
1010|c1|q|A|CONNECT|10|x|2
1025|c4|q|B|CONNECT|25|y|1
1030|c3|q|NONE|ABANDON|1|3|30
1060|c5|q|NONE|EXITWITHTIMEOUT|1|5|60
1070|c1|q|A|COMPLETECALLER|10|60|1
1125|c4|q|B|BLINDTRANSFER|200|ctx|25|100|4
2000|c7|q|NONE|ENTERQUEUE||111|1
2015|c7|q|A|CONNECT|15|z|0
2075|c7|q|A|COMPLETEAGENT|15|60|1
"""


def on_day(text: str) -> str:
    """A log of times in seconds from DAY's midnight, as Asterisk writes it (Unix epochs); a line not starting with one stays."""
    return "".join(
        f"{int(t) + DAY}|{rest}" if t.isdigit() else line for line in text.splitlines(True) for t, _, rest in [line.partition("|")]
    )


def report_of(text: str, tmp_path, **options) -> dict:
    path = tmp_path / "queue_log"
    path.write_text(on_day(text))
    engine = ReportEngine()
    engine.load_queue_log(path)
    return engine.report(Options(**options))


def test_each_figure_on_a_log_with_known_answers(tmp_path):
    q = report_of(LOG, tmp_path)["queues"]["q"]
    assert (q["offered"], q["answered"], q["abandoned"], q["short_abandoned"], q["timed_out"], q["exited_key"], q["transferred"]) == (
        7,
        3,
        1,
        1,
        1,
        1,
        1,
    )
    assert q["asa_s"] == pytest.approx(50 / 3, abs=0.01)
    assert q["avg_wait_s"] == pytest.approx(148 / 7, abs=0.01)
    assert q["max_wait_s"] == 60
    assert q["avg_talk_s"] == q["aht_s"] == pytest.approx(220 / 3, abs=0.01)
    assert q["abandon_rate_pct"] == pytest.approx(100 / 6, abs=0.01)
    assert q["service_level_pct"] == pytest.approx(200 / 6, abs=0.01)
    assert q["asterisk_sl_pct"] == pytest.approx(200 / 3, abs=0.01)
    assert q["asterisk_sl2_pct"] == 50.0
    assert (q["repeat_calls_24h"], q["fcr_24h_pct"]) == (1, pytest.approx(200 / 3, abs=0.01))


def test_thresholds_wrapup_agents_and_intervals(tmp_path):
    result = report_of(LOG, tmp_path, sl_seconds=25, short_abandon_seconds=2, wrapup_seconds=10)
    q = result["queues"]["q"]
    assert (q["abandoned"], q["short_abandoned"]) == (2, 0)
    assert q["service_level_pct"] == pytest.approx(300 / 7, abs=0.01)
    assert q["aht_s"] == pytest.approx(250 / 3, abs=0.01) and q["avg_talk_s"] == pytest.approx(220 / 3, abs=0.01)
    agents = result["agents"]
    assert (agents["A"]["answered"], agents["A"]["talk_s"], agents["B"]["transferred"], agents["B"]["ring_no_answer"]) == (2, 120, 1, 1)
    assert [(i["start"], i["offered"]) for i in result["intervals"]] == [("2026-11-22T00:15:00Z", 6), ("2026-11-22T00:30:00Z", 1)]


def test_transfers_do_not_inflate_talk_time(tmp_path):
    log = (
        "100|t1|sales|NONE|ENTERQUEUE||9|1\n105|t1|sales|Ann|CONNECT|5|a|1\n165|t1|sales|Ann|ATTENDEDTRANSFER|BRIDGE|b|5|60|1\n"
        "166|t1|billing|NONE|ENTERQUEUE||9|1\n170|t1|billing|Ben|CONNECT|4|c|1\n470|t1|billing|Ben|COMPLETECALLER|4|300|1\n"
    )
    result = report_of(log, tmp_path)
    assert result["queues"]["sales"]["avg_talk_s"] == 60 and result["queues"]["billing"]["avg_talk_s"] == 300
    assert result["agents"]["Ann"]["talk_s"] == 60 and result["queues"]["sales"]["transferred"] == 1
    assert result["queues"]["billing"]["repeat_calls_24h"] == 0, "a transfer is not a repeat call"
    assert result["queues"]["billing"]["transferred_in"] == 1 and result["queues"]["sales"]["transferred_in"] == 0


def test_each_leg_of_a_stored_call_is_credited_to_its_own_queue_and_agent(store):
    """support (Ann, blind transfer) -> sales (Ben, attended transfer) -> Cid's own phone, reached without a queue."""
    legs = [
        Leg("support", "Ann", 100.0, 110.0, 170.0, 10.0, 50.0, 10.0, LegEnd.TRANSFERRED_BLIND),
        Leg("sales", "Ben", 170.0, 200.0, 300.0, 30.0, 100.0, 0.0, LegEnd.TRANSFERRED_ATTENDED),
        Leg(None, "Cid", None, 290.0, 400.0, None, 110.0, 0.0, LegEnd.COMPLETED),
    ]
    call = CallRecord("L1", "5511", None, None, 90.0, "", "sales", 170.0, 200.0, "Cid", 400.0, Outcome.ANSWERED, 30.0, 110.0, 0.0,
                      HangupBy.CALLER, 16, transfers=2, legs=legs)  # fmt: skip
    waiting = Leg("support", None, 500.0, None, 530.0, 30.0, None, 0.0, LegEnd.MOVED)
    moved = CallRecord("L2", "5512", None, None, 500.0, "", "sales", 530.0, 535.0, "Ben", 600.0, Outcome.ANSWERED, 5.0, 65.0, 0.0,
                       HangupBy.AGENT, 16, transfers=1, legs=[waiting, Leg("sales", "Ben", 530.0, 535.0, 600.0, 5.0, 65.0, 0.0, LegEnd.COMPLETED)])  # fmt: skip
    store.save([call, moved])
    engine = ReportEngine()
    engine.load_stream(stored_stream(store, None, None))
    result = engine.report(Options())
    support, sales = result["queues"]["support"], result["queues"]["sales"]
    assert (support["offered"], support["answered"], support["transferred"], support["transferred_in"]) == (2, 1, 1, 0)
    assert (sales["offered"], sales["answered"], sales["transferred"], sales["transferred_in"]) == (2, 2, 1, 2)
    assert support["abandoned"] == 0 and support["asa_s"] == 10.0 and sales["asa_s"] == 17.5
    assert set(result["queues"]) == {"support", "sales"}, "a leg with no queue is no queue's"
    agents = result["agents"]
    assert (agents["Ann"]["talk_s"], agents["Ann"]["aht_s"], agents["Ann"]["transferred"]) == (50.0, 60.0, 1)
    assert (agents["Ben"]["answered"], agents["Ben"]["talk_s"]) == (2, 165.0)
    assert (agents["Cid"]["answered"], agents["Cid"]["talk_s"]) == (1, 110.0)


def test_pause_time_by_reason_and_occupancy(tmp_path):
    log = (
        "0|NONE|q|Ana|ADDMEMBER|\n100|NONE|NONE|Ana|PAUSEALL|lunch\n100|NONE|q|Ana|PAUSE|lunch\n400|NONE|NONE|Ana|UNPAUSEALL|\n"
        "400|NONE|q|Ana|UNPAUSE|\n500|c|q|NONE|ENTERQUEUE||1|1\n500|c|q|Ana|CONNECT|0|x|0\n800|c|q|Ana|COMPLETEAGENT|0|300|1\n"
        "1000|MANAGER|q|Ana|REMOVEMEMBER|\n"
    )
    ana = report_of(log, tmp_path)["agents"]["Ana"]
    assert ana["pause_s_by_reason"] == {"lunch": 300.0} and ana["logged_in_s"] == 1000
    assert ana["occupancy_pct"] == pytest.approx(300 / 700 * 100, abs=0.01)


@pytest.mark.parametrize("name", [n for n in trace_names() if (TRACES / f"{n}.queue_log").stat().st_size])
def test_recorded_queue_logs(name, tmp_path):
    engine = ReportEngine()
    engine.load_queue_log(TRACES / f"{name}.queue_log")
    result = engine.report(Options())
    assert engine.errors == []
    expected = {
        "answered_caller_hangs_up": (1, 1, 0, 0),
        "answered_agent_hangs_up": (1, 1, 0, 0),
        "async_agi_ivr": (1, 1, 0, 0),
        "abandon_in_queue": (1, 0, 1, 0),
        "queue_timeout_exit": (1, 0, 0, 1),
        "member_management": None,
    }[name]
    if expected is None:
        assert result["queues"] == {} and result["agents"]["Dave"]["pause_s_by_reason"] == {"coffee": 1.0}
        return
    q = result["queues"]["support"]
    assert (q["offered"], q["answered"], q["abandoned"], q["timed_out"]) == expected
    if name == "abandon_in_queue":
        assert result["agents"]["Alice"]["pause_s_by_reason"] == {"lunch": 9.0}
        assert result["agents"]["Bob"]["pause_s_by_reason"] == {"training": 9.0}


def test_a_malformed_log_is_read_around_its_bad_lines(tmp_path):
    bad = LOG.replace(
        "1010|c1|q|A|CONNECT|10|x|2\n",
        "1010|c1|q|A|CONNECT|10|x|2\nnot a line\n12x4|c9|q|NONE|ENTERQUEUE||1|1\n1000|c9|q|NONE|lowercase|\n",
    )
    bad += "2100|ghost|q|A|COMPLETECALLER|1|2|1\n"
    path = tmp_path / "queue_log"
    path.write_bytes(on_day(bad).encode() + f"{DAY + 2200}|c8|q|NONE|ENTERQUEUE||".encode() + b"\xff\xfe|1\n")
    engine = ReportEngine()
    engine.load_queue_log(path)
    assert engine.report(Options())["queues"]["q"]["answered"] == 3
    assert [e.number for e in engine.errors] == [11, 12, 13, 22]
    assert "COMPLETECALLER for a call that is not in queue 'q'" in str(engine.errors[-1])
    builder = VisitBuilder()
    list(read_visits(read_lines(path), builder))
    assert [e.number for e in builder.errors] == [11, 12, 13, 22], "the import names the same lines"
    run = callcenter("report", "--queue-log", str(path), "--format", "json")
    assert run.returncode == 1, "the report is out, and the exit code says lines were left out"
    assert json.loads(run.stdout)["queues"]["q"]["offered"] == 7
    assert "line 11: expected at least 5" in run.stderr and "line 12: time '12x4' is not a Unix epoch" in run.stderr


def callcenter(*args: str, **options) -> subprocess.CompletedProcess:
    """The command line, as a user runs it (text output captured)."""
    return subprocess.run([sys.executable, "-m", "callcenter.cli", *args], capture_output=True, text=True, **options)


GOOD_VISIT = "1700000000|c1|q|NONE|ENTERQUEUE||5511|1\n1700000004|c1|q|Ann|CONNECT|4|a1|1\n1700000060|c1|q|Ann|COMPLETECALLER|4|56|1\n"
CDR_ROW = (
    '"","5511","s","ivr","""A"" <5511>","Local/s@ivr-1;2","","Hangup","","2026-11-22 20:42:58","2026-11-22 20:42:58",'
    '"2026-11-22 20:43:05",7,7,"ANSWERED","DOCUMENTATION","1.2",""\n'
)


def _cdr_row(
    n: int,
    start: str = "2026-11-22 20:42:58",
    answer: str = "2026-11-22 20:42:58",
    clid: str = "x",
    end: str = "2026-11-22 20:43:05",
    seconds: tuple[str, str] = ("7", "7"),
    extra: str = "",
) -> str:
    return (
        f'"","55{n}","s","ivr","{clid}","Local/s@ivr-{n};2","","Hangup","","{start}","{answer}","{end}",{seconds[0]},{seconds[1]},'
        f'"ANSWERED","DOCUMENTATION","1.{n}",""{extra}\n'
    )


@pytest.mark.parametrize(
    "kind, bad, why",
    [
        ("queue_log", "²³|c2|q|NONE|ENTERQUEUE||5512|1\n", "line 4: time '²³' is not a Unix epoch"),
        ("queue_log", "99999999999999999999|c4|q|NONE|ENTERQUEUE||5514|1\n", "line 4: time '99999999999999999999' is not a Unix"),
        (
            "queue_log",
            "1700000100|c3|q|NONE|ENTERQUEUE||5513|1\n1700000104|c3|q|Bo|CONNECT|-5|a|1\n",
            "line 5: wait time '-5' is not whole",
        ),
        ("queue_log", "1700000100|c3|q|NONE|ENTERQUEUE||55\x0013|1\n", "line 4: NUL byte in the line"),
        ("cdr", _cdr_row(2, answer="soon"), "line 2: answer 'soon' is not 'YYYY-MM-DD HH:MM:SS'"),
        ("cdr", _cdr_row(3, start="2026-11-22 20:50:00", answer=""), "line 2: ends (2026-11-22 20:43:05) before it starts"),
        ("cdr", _cdr_row(4, clid="x" * 140_000), "line 2: not a CSV row: field larger than field limit"),
        ("cdr", _cdr_row(5, clid="a\x00b"), "line 2: NUL byte in the row"),
    ],
    ids=[
        "epoch-superscript",
        "epoch-huge",
        "negative-wait",
        "nul-queue_log",
        "answer-not-a-time",
        "cdr-backwards",
        "huge-field",
        "nul-cdr",
    ],
)
def test_a_bad_line_is_named_and_every_good_one_imported(tmp_path, kind, bad, why):
    """Measured before: each of these crashed the import with a traceback (0 good lines stored) or was taken silently."""
    path = tmp_path / ("queue_log" if kind == "queue_log" else "Master.csv")
    path.write_text((GOOD_VISIT if kind == "queue_log" else CDR_ROW) + bad, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    run = callcenter("import", f"--{kind.replace('_', '-')}", str(path), env=env, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert why in run.stderr
    assert ("1 new calls" if kind == "queue_log" else "1 new calls outside the queues") in run.stdout, "the good line is kept"
    if kind == "queue_log":
        report = callcenter("report", "--queue-log", str(path), "--format", "json")
        assert report.returncode == 1 and why in report.stderr and "Traceback" not in report.stderr
        assert json.loads(report.stdout)["queues"]["q"]["asa_s"] == 4.0, "a negative wait is no wait: ASA stays 4 s"


@pytest.mark.parametrize("command", [["import", "--queue-log"], ["import", "--cdr"], ["report", "--queue-log"], ["report", "--cdr"]])
def test_a_folder_given_as_a_file_is_named_not_a_traceback(tmp_path, command):
    run = callcenter(*command, str(tmp_path), env={"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert run.returncode == 1 and f"{tmp_path}: not a file (a folder?)" in run.stderr and "Traceback" not in run.stderr


def test_a_report_from_after_to_is_refused(tmp_path):
    path = tmp_path / "queue_log"
    path.write_text(GOOD_VISIT)
    run = callcenter("report", "--queue-log", str(path), "--from", "2026-11-23", "--to", "2026-11-22")
    assert run.returncode == 2 and "--from 2026-11-23 is not before --to 2026-11-22" in run.stderr


def sqlite_store(tmp_path) -> CallStore:
    """A fresh SQLite store for an import (the `store` fixture would run each case twice, on PostgreSQL too)."""
    engine = make_engine(f"sqlite:///{tmp_path}/c.db")
    migrate(engine)
    return CallStore(engine)


ENTER = "1700000100|c3|q|NONE|ENTERQUEUE||5513|1\n"


@pytest.mark.parametrize(
    "bad, named, why",
    [
        pytest.param(GOOD_VISIT, [4, 5, 6], "line 4: ENTERQUEUE of a visit already read", id="29-a-call-twice"),
        pytest.param(
            ENTER + "1700000104|c3|q|Bo|CONNECT|1e308|a|1\n1700000160|c3|q|Bo|COMPLETECALLER|1e308|1e308|1\n",
            [5, 6],
            "line 5: wait time '1e308' is not whole seconds from 0 to 604800",
            id="30-wait-1e308",
        ),
        pytest.param(
            ENTER + "1700000104|c3|q|Bo|CONNECT|4|a|1\n1700000160|c3|q|Bo|COMPLETECALLER|4|604801|1\n",
            [6],
            "line 6: talk time '604801' is not whole seconds",
            id="30-talk-over-a-week",
        ),
        *[
            pytest.param(
                f"{epoch}|c3|q|NONE|ENTERQUEUE||5513|1\n", [4], f"line 4: time '{epoch}' is not a Unix epoch from 2000 to 2099", id=name
            )
            for name, epoch in [("31-epoch-in-1999", 946684799), ("31-epoch-in-2100", 4102444800)]
        ],
        pytest.param(
            "1700000100|c3||NONE|ENTERQUEUE||5513|1\n1700000130|c3||NONE|ABANDON|1|1|30\n",
            [4, 5],
            "line 4: ENTERQUEUE with no queue (Asterisk writes NONE for none)",
            id="32-queue-empty",
        ),
        pytest.param(
            ENTER + "1700000104|c3|q||CONNECT|4|a|1\n1700000160|c3|q||COMPLETECALLER|4|56|1\n",
            [5, 6],
            "line 5: CONNECT with no agent",
            id="32-agent-empty",
        ),
        pytest.param(
            "1700000100|" + "x" * 2_000_000 + "|q|NONE|ENTERQUEUE||5513|1\n",
            [4],
            "line 4: 2000037 characters, more than Asterisk writes in a line (8192)",
            id="34-a-2-MB-field",
        ),
        pytest.param(ENTER.replace("\n", "\r\n") + "1700000130|c3|q|NONE|ABANDON|1|1|30\r\n", [], "", id="35-crlf-on-some-lines"),
        pytest.param(
            "1700000160|c3|q|Bo|COMPLETECALLER|4|56|1\n1700000104|c3|q|Bo|CONNECT|4|a|1\n" + ENTER,
            [4, 5],
            "line 4: COMPLETECALLER for a call that is not in queue 'q'",
            id="36-a-call-upside-down",
        ),
        *[
            pytest.param(
                f"{epoch}|c3|q|NONE|ENTERQUEUE||5513|1\n", [4], f"line 4: time '{epoch}' is not a Unix epoch", id=f"37-epoch-{name}"
            )
            for name, epoch in [
                ("fraction", "1700000100.4"),
                ("plus", "+1700000100"),
                ("space", " 1700000100"),
                ("underscores", "1_700_000_100"),
            ]
        ],
        *[
            pytest.param(
                ENTER + f"1700000130|c3|q|NONE|ABANDON|{fields}\n",
                [5],
                f"line 5: wait time '{wait}' is not whole seconds",
                id=f"38-wait-{wait}",
            )
            for fields, wait in [("1|1|nan", "nan"), ("1|1|inf", "inf"), ("1|1|1e400", "1e400"), ("x|y|z", "z"), ("1|1|-5", "-5")]
        ],
        pytest.param(
            ENTER + "1700000101|c3|q|NONE|ENTERQUEUE||5513|1\n1700000130|c3|q|NONE|ABANDON|1|1|30\n",
            [5],
            "line 5: ENTERQUEUE for a call already in queue 'q' (since 1700000100)",
            id="39-entered-twice",
        ),
        pytest.param(
            "1700000130|c3|q|NONE|ENTERQUEUE||5513|1\n1700000100|c3|q|NONE|ABANDON|1|1|30\n",
            [5],
            "line 5: ABANDON at 1700000100, before the call entered queue 'q' at 1700000130",
            id="39-ended-before-it-entered",
        ),
        pytest.param(
            "0|c3|q|NONE|ENTERQUEUE||5513|1\n0|c3|q|NONE|ABANDON|1|1|30\n", [4, 5], "line 4: time '0' is not a Unix epoch", id="39-epoch-0"
        ),
        *[
            pytest.param(
                f"1700000100|c3|q|NONE|{event}||5513|1\n",
                [4],
                f"line 4: event '{event}' is not an Asterisk queue_log event",
                id=f"37-40-{event}",
            )
            for event in ("FOO-BAR", "FOOBAR", "ÉNTERQUEUE")
        ],
        pytest.param(
            "".join(f"1700000100|NONE|q|Bo|{event}|\n" for event in UNUSED_EVENTS), [], "", id="40-asterisk-events-a-report-does-not-use"
        ),
    ],
)
def test_report_and_import_take_the_same_lines(tmp_path, bad, named, why):
    """The sweep's cases (numbered): each was stored by the import but not counted by the report or the other way round,
    taken silently by both, or crashed one of them. Now both name the same lines, and count what the other stores."""
    path = tmp_path / "queue_log"
    path.write_bytes((GOOD_VISIT + bad).encode())
    builder, store = VisitBuilder(), sqlite_store(tmp_path)
    save_stream(store, read_visits(read_lines(path), builder))
    from_file, from_db = ReportEngine(), ReportEngine()
    from_file.load_queue_log(path)
    from_db.load_stream(stored_stream(store, None, None))
    assert [e.number for e in from_file.errors] == [e.number for e in builder.errors] == named
    assert why in "\n".join(map(str, builder.errors))
    assert from_file.report(Options())["queues"] == from_db.report(Options())["queues"], "a report of the file counts what an import stores"


def test_a_visit_logged_twice_hours_apart_is_stored_and_counted_once(tmp_path):
    """29: two copies of a visit in one import batch stored nothing (UNIQUE constraint failed: calls.linkedid); farther
    apart than the reader remembers (an hour of log), the copy is not named, but it is one call in the import and the report."""
    path = tmp_path / "queue_log"
    path.write_text(GOOD_VISIT + "1700010000|c5|q|NONE|ENTERQUEUE||5515|1\n1700010030|c5|q|NONE|ABANDON|1|1|30\n" + GOOD_VISIT)
    store = sqlite_store(tmp_path)
    assert save_stream(store, read_visits(read_lines(path))) == (2, 0)
    engine = ReportEngine()
    engine.load_queue_log(path)
    assert engine.report(Options())["queues"]["q"]["offered"] == 2


@pytest.mark.parametrize(
    "row, why",
    [
        (_cdr_row(2, seconds=("7", "99999999999999999999")), "billsec '99999999999999999999' is not whole seconds from 0 to 604800"),
        (_cdr_row(2, seconds=("7", "lots")), "billsec 'lots' is not whole seconds"),
        (_cdr_row(2, seconds=("7", "-55")), "billsec '-55' is not whole seconds"),
        (_cdr_row(2, seconds=("-7", "-7")), "duration '-7' is not whole seconds"),
        (_cdr_row(2, answer="2020-01-01 00:00:00"), "answered (2020-01-01 00:00:00) outside the call"),
        (_cdr_row(2, answer="2030-01-01 00:00:00"), "answered (2030-01-01 00:00:00) outside the call"),
        (_cdr_row(2, start="0001-01-01 00:00:00", answer="", end="0001-01-01 00:00:05"), "start 0001-01-01 00:00:00 is not a time from 2000"),
        (_cdr_row(2, start="9999-12-31 23:59:59", answer="", end="9999-12-31 23:59:59"), "start 9999-12-31 23:59:59 is not a time from 2000"),
        (_cdr_row(2, extra=',"x"' * 50), "expected 18 to 41 CDR columns, found 68"),
        (_cdr_row(2, extra=",1" * 100_000), "expected 18 to 41 CDR columns, found 100018"),
        (_cdr_row(2, clid='clid"broken'), "not a CSV row: ',' expected after '\"'"),
    ],
    ids=["41-billsec-1e20", "41-billsec-a-word", "41-billsec-negative", "43-duration-negative", "42-answer-before-start",
         "42-answer-after-end", "42-year-1", "42-year-9999", "43-50-extra-columns", "43-100000-extra-fields", "43-stray-quote"],
)  # fmt: skip
def test_a_cdr_row_cdr_csv_could_not_write_is_named_and_the_rest_read(tmp_path, row, why):
    """41-43: each was stored (a 1e20 s call, a null talk time, a call answered before it began) or read silently."""
    path = tmp_path / "Master.csv"
    path.write_text(CDR_ROW + row + _cdr_row(3))
    errors: list = []
    rows = read_cdr(path, errors)
    assert [r["line"] for r in rows] == ["1", "3"] and [e.number for e in errors] == [2]
    assert why in str(errors[0])


def test_a_few_columns_past_newcdrcolumns_are_read(tmp_path):
    """A cdr_custom mapping may write a few columns of its own after Asterisk's: the row is read, the columns left aside."""
    path = tmp_path / "Master.csv"
    path.write_text(_cdr_row(2, extra=',"","1796350116.0","3","my-own","column"'))
    errors: list = []
    [row] = read_cdr(path, errors)
    assert errors == [] and (row["linkedid"], row["sequence"]) == ("1796350116.0", "3")


@pytest.mark.parametrize(
    "args, option",
    [
        (["report", "--sl-seconds", "nan"], "--sl-seconds"),
        (["report", "--sl-seconds", "inf"], "--sl-seconds"),
        (["report", "--sl-seconds", "-1"], "--sl-seconds"),
        (["report", "--wrapup-seconds", "-100"], "--wrapup-seconds"),
        (["report", "--wrapup-seconds", "nan"], "--wrapup-seconds"),
        (["report", "--short-abandon-seconds", "-5"], "--short-abandon-seconds"),
        (["report-jobs", "--sl-seconds", "nan"], "--sl-seconds"),
        (["report-jobs", "--day", "9999-12-31"], "--day"),
        (["staffing", "--calls-per-hour", "100", "--aht-seconds", "180", "--answer-within", "nan"], "--answer-within"),
        (["staffing", "--calls-per-hour", "100", "--aht-seconds", "180", "--answer-within", "inf"], "--answer-within"),
        (["staffing", "--calls-per-hour", "inf", "--aht-seconds", "180"], "--calls-per-hour"),
        (["staffing", "--calls-per-hour", "nan", "--aht-seconds", "180"], "--calls-per-hour"),
        (["staffing", "--calls-per-hour", "-10", "--aht-seconds", "180"], "--calls-per-hour"),
        (["staffing", "--calls-per-hour", "100", "--aht-seconds", "0"], "--aht-seconds"),
        (["staffing", "--calls-per-hour", "100", "--aht-seconds", "180", "--target-sl", "1"], "--target-sl"),
        (["staffing", "--forecast-day", "9999-12-31"], "--forecast-day"),
    ],
    ids=["57-sl-nan", "57-sl-inf", "65-sl-negative", "65-wrapup-negative", "57-wrapup-nan", "65-short-abandon-negative",
         "57-jobs-sl-nan", "60-jobs-day-9999", "61-answer-within-nan", "64-answer-within-inf", "62-calls-inf", "63-calls-nan",
         "64-calls-negative", "64-aht-0", "64-target-sl-1", "60-forecast-day-9999"],
)  # fmt: skip
def test_a_nonsense_option_is_refused_naming_it(args, option):
    """57-65: each was a DuckDB BinderException, an OverflowError, an endless Erlang loop, or figures like an AHT of -83.5 s."""
    run = callcenter(*args, timeout=60)
    assert run.returncode == 2 and f"argument {option}: " in run.stderr and "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize(
    "output, why",
    [("{tmp}", "Is a directory"), ("/dev/full", "No space left on device"), ("{tmp}/queue_log/out.txt", "a file is in the way")],
    ids=["a-folder", "a-full-disk", "under-a-file"],
)
def test_a_report_that_cannot_be_written_says_why(tmp_path, output, why):
    """58: each was a traceback (IsADirectoryError, OSError: No space left on device, FileExistsError)."""
    path = tmp_path / "queue_log"
    path.write_text(GOOD_VISIT)
    output = output.format(tmp=tmp_path)
    run = callcenter("report", "--queue-log", str(path), "--output", output)
    assert run.returncode == 1 and f"--output {output}: cannot write the report: {why}" in run.stderr and "Traceback" not in run.stderr


def test_report_jobs_into_a_file_says_why(tmp_path):
    """59: FileExistsError traceback."""
    (tmp_path / "a-file").write_text("")
    env = {"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    run = callcenter("report-jobs", "--day", "2026-11-22", "--folder", str(tmp_path / "a-file"), env=env)
    assert run.returncode == 1 and f"{tmp_path}/a-file: cannot write the reports there: a file is in the way" in run.stderr, run.stderr


def test_a_forecast_from_a_log_with_bad_lines_names_them_as_a_report_does(tmp_path):
    """66: the bad lines were ignored (exit 0); 32/33: a visit with no queue crashed it (TypeError in the report)."""
    path = tmp_path / "queue_log"
    path.write_text(on_day("36000|f1|q|NONE|ENTERQUEUE||5511|1\n36010|f1|q|A|CONNECT|10|x|1\n36190|f1|q|A|COMPLETEAGENT|10|180|1\n"
                           "36200|f2||NONE|ENTERQUEUE||5512|1\n36230|f2||NONE|ABANDON|1|1|30\n"))  # fmt: skip
    run = callcenter("staffing", "--forecast-day", "2026-11-22", "--queue-log", str(path), "--format", "json")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{path}: line 4: ENTERQUEUE with no queue" in run.stderr and f"{path}: line 5: ABANDON with no queue" in run.stderr
    assert [(r["queue"], r["offered"]) for r in json.loads(run.stdout)] == [("q", 1)]


def test_reading_stays_flat_in_memory(tmp_path):
    path = tmp_path / "big"
    with open(path, "w") as out:
        for i in range(20000):
            t = 1_700_000_000 + i * 10
            out.write(
                f"{t}|c{i}|q|NONE|ENTERQUEUE||55{i % 900}|1\n{t + 3}|c{i}|q|A|CONNECT|3|x|0\n{t + 60}|c{i}|q|A|COMPLETECALLER|3|57|1\n"
            )
    builder = VisitBuilder()
    peak = 0
    for _ in read_visits(read_lines(path), builder):
        peak = max(peak, len(builder.open))
    assert peak <= 7, "only calls still in progress are held"


def test_import_is_idempotent_and_reports_the_same_from_the_database(store, tmp_path):
    path = tmp_path / "queue_log"
    path.write_text(on_day(LOG + "0|NONE|q|A|ADDMEMBER|\n100|NONE|q|A|PAUSE|lunch\n200|NONE|q|A|UNPAUSE|\n"))
    first = save_stream(store, read_visits(read_lines(path)))
    again = save_stream(store, read_visits(read_lines(path)))
    assert first == (7, 3) and again == (0, 0)
    from_file = ReportEngine()
    from_file.load_queue_log(path)
    from_db = ReportEngine()
    from_db.load_stream(stored_stream(store, None, None))
    from_file, from_db = from_file.report(Options()), from_db.report(Options())
    assert from_db["queues"] == from_file["queues"]
    assert from_db["agents"]["A"]["pause_s_by_reason"] == {"lunch": 100.0}


def test_importing_asterisks_queue_log_skips_the_visits_the_engine_stored_itself(store, tmp_path):
    [live] = replay(TRACES / "answered_caller_hangs_up.jsonl")
    store.save([live])
    first, _ = save_stream(store, read_visits(read_lines(TRACES / "answered_caller_hangs_up.queue_log")))
    second, _ = save_stream(store, read_visits(read_lines(TRACES / "abandon_in_queue.queue_log")))
    assert (first, second, store.count()) == (0, 1, 2), "the engine's own call is not counted twice; another call is imported"


def test_erlang_c_matches_the_published_table_and_staffing_is_minimal():
    assert [round(erlang_c(n, 10.0), 4) for n in (11, 12, 13, 14, 15)] == [0.6821, 0.4494, 0.2853, 0.1741, 0.1020]
    direct = lambda n, a: (
        (a**n / math.factorial(n) * n / (n - a))
        / (sum(a**k / math.factorial(k) for k in range(n)) + a**n / math.factorial(n) * n / (n - a))
    )  # noqa: E731
    assert erlang_c(55, 48.0) == pytest.approx(direct(55, 48.0), rel=1e-12)
    result = agents_needed(720, 240, 0.8, 15)
    assert (result.agents, round(result.erlangs, 6), round(result.occupancy, 4)) == (55, 48.0, 0.8727)
    assert evaluate(54, 720, 240, 15).service_level < 0.8 <= result.service_level
    assert result.asa_s == pytest.approx(result.p_wait * 240 / 7)
    assert agents_needed(36000, 300, 0.8, 20).agents > 3000


def test_staffing_and_report_commands(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "callcenter.cli",
            "staffing",
            "--calls-per-hour",
            "200",
            "--aht-seconds",
            "180",
            "--target-sl",
            "0.8",
            "--answer-within",
            "20",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout) == {
        "agents": 14,
        "service_level": 0.8884,
        "asa_s": 7.84,
        "occupancy": 0.7143,
        "p_wait": 0.1741,
        "erlangs": 10.0,
    }
    path = tmp_path / "queue_log"
    path.write_text(on_day(LOG))
    html = callcenter("report", "--queue-log", str(path), "--format", "html", "--interval", "1h", check=True).stdout
    assert html.count("<svg") == 3 and "Service level per interval" in html
    csv_text = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "report", "--queue-log", str(path), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert csv_text.splitlines()[1].startswith("queue,q,")


def test_interval_and_daily_jobs_write_csv_and_html(tmp_path):
    from zoneinfo import ZoneInfo

    from reports.jobs import run_due

    engine = make_engine(f"sqlite:///{tmp_path}/j.db")
    migrate(engine)
    store = CallStore(engine)
    path = tmp_path / "queue_log"
    path.write_text(on_day(LOG))
    save_stream(store, read_visits(read_lines(path)))
    written = run_due(store, tmp_path / "out", Options(interval_seconds=3600), ZoneInfo("UTC"), since=DAY, now=DAY + 86400 + 10)
    names = sorted(p.name for p in written)
    assert len(names) == 2 * 24 + 2
    assert "daily-2026-11-22.csv" in names and "interval-2026-11-22T0000.html" in names
    rows = list(csv.DictReader((tmp_path / "out" / "daily-2026-11-22.csv").read_text().splitlines()))
    assert (rows[0]["section"], rows[0]["name"], rows[0]["offered"], rows[0]["answered"]) == ("queue", "q", "7", "3")
    assert (tmp_path / "out" / "interval-2026-11-22T0100.csv").read_text().count("\n") == 1, "an interval with no calls has only a header"
    assert "<svg" in (tmp_path / "out" / "daily-2026-11-22.html").read_text()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "callcenter.cli",
            "report-jobs",
            "--day",
            "2026-11-22",
            "--tz",
            "America/Sao_Paulo",
            "--folder",
            str(tmp_path / "sp"),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": f"sqlite:///{tmp_path}/j.db"},
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "sp" / "daily-2026-11-22.html").exists()


def test_a_caller_sent_back_to_the_same_queue_makes_two_visits(tmp_path):
    log = (
        "100|b1|q|NONE|ENTERQUEUE||77|1\n104|b1|q|Ann|CONNECT|4|a|1\n160|b1|q|Ann|BLINDTRANSFER|9|ctx|4|56|1\n"
        "161|b1|q|NONE|ENTERQUEUE||77|1\n190|b1|q|NONE|ABANDON|1|1|29\n"
    )
    q = report_of(log, tmp_path)["queues"]["q"]
    assert (q["offered"], q["answered"], q["abandoned"], q["transferred"]) == (2, 1, 1, 1)
    assert q["avg_wait_s"] == pytest.approx(16.5) and q["avg_talk_s"] == 56
    assert q["repeat_calls_24h"] == 0


def test_cdr_adds_the_calls_that_never_reached_a_queue(tmp_path):
    engine_url = f"sqlite:///{tmp_path}/c.db"
    env = {"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": engine_url}
    cli = [sys.executable, "-m", "callcenter.cli"]
    for name in ("queue_timeout_exit", "ivr_invalid_then_timeout", "answered_caller_hangs_up"):
        subprocess.run(
            cli + ["import", "--queue-log", str(TRACES / f"{name}.queue_log"), "--cdr", str(TRACES / f"{name}.Master.csv")],
            check=True,
            capture_output=True,
            env=env,
            cwd=tmp_path,
        )
    again = subprocess.run(
        cli + ["import", "--cdr", str(TRACES / "ivr_invalid_then_timeout.Master.csv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert "0 new calls outside the queues" in again.stdout
    report = json.loads(
        subprocess.run(cli + ["report", "--format", "json"], capture_output=True, text=True, check=True, env=env, cwd=tmp_path).stdout
    )
    assert report["ivr"]["by_outcome"] == {"ivr_only": 1}, "the timed-out queue call is not counted outside the queues"
    assert report["queues"]["support"]["offered"] == 2
    from_files = json.loads(
        subprocess.run(
            cli + ["report", "--format", "json", "--cdr", str(TRACES / "ivr_invalid_then_timeout.Master.csv")],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=tmp_path,
        ).stdout
    )
    assert from_files["ivr"]["menu"] == {"(none)": {"calls": 1, "reached_queue": 0, "ended_in_ivr": 1, "drop_off_pct": 100.0}}


# Written by the real-PBX tier's Asterisk with contrib/asterisk/cdr.conf (newcdrcolumns): a caller to test-world
# (Answer, Wait) who hangs up after 1 s (;2 the arriving leg, ;1 the caller), then a caller into support still waiting
# when Asterisk stopped (Queue); every row ends with the peer account, the linkedid and the sequence.
NEW_CDR = Path(__file__).parent / "data" / "newcdrcolumns.Master.csv"


def test_a_cdr_call_is_stored_under_its_linkedid_so_importing_it_over_the_engines_call_adds_nothing(tmp_path):
    rows = read_cdr(NEW_CDR, [])
    [call] = cdr_calls(rows)
    assert (call.linkedid, call.outcome, call.caller_number, call.queue) == ("1796350116.0", "ivr_only", "5511990001111", None)
    url = f"sqlite:///{tmp_path}/c.db"
    engine = make_engine(url)
    migrate(engine)
    assert CallStore(engine).save([call]) == 1  # the engine followed it live
    run = callcenter("import", "--cdr", str(NEW_CDR), env={"PATH": "/usr/bin:/bin", "CALLCENTER_DATABASE_URL": url}, cwd=tmp_path)
    assert "0 new calls outside the queues" in run.stdout, run.stdout + run.stderr


def test_the_cdr_tail_takes_whole_rows_as_asterisk_appends_them(tmp_path, caplog):
    first, second, *_ = NEW_CDR.read_text().splitlines(keepends=True)
    path = tmp_path / "Master.csv"
    path.write_text(first + second[:40])
    tail = CdrTail(path)
    tail.read()
    assert [r["channel"] for r in tail.rows(0)] == ["Local/5551234@test-world-00000000;2"], "the row being written waits"
    path.write_text(first + second)
    tail.read()
    assert [r["uniqueid"] for r in tail.rows(0)] == ["1796350116.1", "1796350116.0"]
    ended = datetime(2026, 12, 4, 2, 8, 39, tzinfo=UTC).timestamp()
    assert len(tail.rows(ended)) == 2 and tail.rows(ended + 1) == []
    old = CdrTail(TRACES / "ivr_invalid_then_timeout.Master.csv")
    old.read()
    assert old.rows(0) == [] and caplog.text.count("no linkedid column: set newcdrcolumns = yes") == 1


def test_ivr_drop_off_per_menu_path():
    from reports.ivr import ivr_section

    section = ivr_section(
        [("1", True, "answered", 8), ("1", False, "ivr_only", 2), ("2", True, "abandoned", 5), ("", False, "ivr_only", 5)]
    )
    assert section["menu"]["1"] == {"calls": 10, "reached_queue": 8, "ended_in_ivr": 2, "drop_off_pct": 20.0}
    assert section["menu"]["(none)"]["drop_off_pct"] == 100.0 and section["calls_outside_queues"] == 7


def test_forecast_staffs_each_interval_of_last_weeks_day(tmp_path):
    path = tmp_path / "queue_log"
    with open(path, "w") as out:
        for i in range(120):
            t = DAY + 9 * 3600 + i * 30
            out.write(
                f"{t}|f{i}|q|NONE|ENTERQUEUE||5511{i:07d}|1\n{t + 10}|f{i}|q|A|CONNECT|10|x|1\n{t + 190}|f{i}|q|A|COMPLETEAGENT|10|180|1\n"
            )
    rows = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "callcenter.cli",
                "staffing",
                "--forecast-day",
                "2026-11-22",
                "--queue-log",
                str(path),
                "--format",
                "json",
                "--target-sl",
                "0.8",
                "--answer-within",
                "20",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [(r["start"], r["offered"], r["calls_per_hour"], r["aht_s"]) for r in rows] == [("2026-11-29T09:00:00Z", 120, 120.0, 180.0)]
    assert rows[0]["agents"] == agents_needed(120, 180, 0.8, 20).agents == 9
