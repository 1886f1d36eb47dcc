"""The simulator against real Asterisk: every recorded scenario, same config, same actions, same times."""

from __future__ import annotations

import pytest

from tests.conftest import TRACES, trace_names
from tests.fidelity import cdr_shape, drive, per_channel, queue_log_shape, role, timed_values


@pytest.fixture(scope="module", params=trace_names())
def run(request):
    return drive(TRACES, request.param)


def test_every_channel_sees_the_same_events_with_the_same_key_fields(run):
    real, simulated = per_channel(run.real_events), per_channel(run.sim_events)
    assert sorted(simulated) == sorted(real)
    for who in real:
        assert simulated[who] == real[who], who


def test_hold_and_talk_times_agree_within_a_second(run):
    real, simulated = timed_values(run.real_events), timed_values(run.sim_events)
    assert [(e, f) for e, f, _ in simulated] == [(e, f) for e, f, _ in real]
    assert all(abs(a - b) <= 1 for (_, _, a), (_, _, b) in zip(simulated, real))


def test_queue_log_lines_agree(run):
    assert queue_log_shape(run.sim_queue_log) == queue_log_shape(run.real_queue_log)
    for sim_line, real_line in zip(run.sim_queue_log, run.real_queue_log):
        assert abs(int(sim_line.split("|")[0]) - int(real_line.split("|")[0])) <= 1


def test_cdr_rows_agree(run):
    assert cdr_shape(run.sim_cdr) == cdr_shape(run.real_cdr)
    real = {role(r["channel"]): r for r in run.real_cdr}
    for row in run.sim_cdr:
        theirs = real[role(row["channel"])]
        assert all(abs(int(row[f]) - int(theirs[f])) <= 1 for f in ("duration", "billsec")), (row, theirs)


def test_action_responses_use_asterisks_words(run):
    for action_id, answer in run.sim_responses.items():
        assert answer == run.real_responses[action_id], action_id
