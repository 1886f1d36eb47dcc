"""The real-PBX tier: the engine against the real Asterisk of ../shared/asterisk, with contrib/asterisk as shipped.

Each test drives the engine as a panel user would and checks what Asterisk
itself did: its responses and events, the queue_log and CDR it wrote, the
recordings it made. Calls are short (1-3 s rings and talks).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from callcenter import config
from ivr.flow import load_flow
from tests.realpbx import CONTRIB, DATA, ROOT, Asterisk, Center, always_open_flow, run_script, until

pytestmark = pytest.mark.skipif(run_script() is None, reason="no Asterisk build: ../shared/asterisk/run not found and "
                                                             "CALLCENTER_TEST_ASTERISK not set")
PROMPTS = ROOT / "var" / "prompts"
ANA = {"login": "ana", "role": "agent", "agent": "ana", "interface": "Local/1001@test-phones/n", "extension": "1001",
       "queues": ["support"]}
BEA = {"login": "bea", "role": "agent", "agent": "bea", "interface": "Local/1002@test-phones/n", "extension": "1002",
       "queues": ["sales"]}
SUE = {"login": "sue", "role": "supervisor", "interface": "Local/1900@test-phones/n", "extension": "1900"}


def shipped_extras(folder: Path) -> list[str]:
    """contrib/asterisk as shipped, the tier's queues and test contexts, and the generated prompts."""
    extras = [str(DATA / "queues.conf"), f"extensions.conf+={CONTRIB / 'extensions.conf'}",
              f"extensions.conf+={DATA / 'extensions.conf'}", str(CONTRIB / "features.conf")]
    if (PROMPTS / "sounds").is_dir():
        holder = folder / "prompts"
        holder.mkdir(exist_ok=True)
        (holder / "sounds").symlink_to(PROMPTS / "sounds")
        extras.append(str(holder))
    return extras


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("asterisk")
    asterisk = Asterisk(folder, shipped_extras(folder)).start()
    yield asterisk
    asterisk.stop()


def settings(folder: Path, mode: str = "app_queue", **acd) -> config.Settings:
    return config.Settings(
        acd=config.ACDSettings(mode=mode, queues={q: config.ACDQueue() for q in ("support", "sales", "billing")}, **acd),
        paths=config.PathSettings(data_dir=str(folder / "var"), recordings=str(folder / "rec")),
        recordings=config.RecordingSettings(enabled=False))


@pytest.fixture
def center(tmp_path, pbx):
    made: list[Center] = []

    def make(**kwargs) -> Center:
        made.append(Center(tmp_path, pbx, kwargs.pop("settings", None) or settings(tmp_path),
                           kwargs.pop("flows", None) or [load_flow(always_open_flow(tmp_path))], kwargs.pop("users", [ANA, BEA, SUE]),
                           **kwargs))
        return made[-1]
    yield make
    for c in made:
        c.stop()


def number() -> str:
    """A caller number of its own for each call, so parallel and later calls never mix."""
    return "55119" + str(uuid.uuid4().int)[:8]


def queue_log_of(pbx: Asterisk, caller: str) -> list[list[str]]:
    """The queue_log lines of the caller's queue visits (app_queue's callid is the queued channel's uniqueid)."""
    lines = pbx.queue_log()
    callids = {line[1] for line in lines if line[4] == "ENTERQUEUE" and caller in line[5:]}
    return [line for line in lines if line[1] in callids]


def test_ivr_menu_to_app_queue_agent_answers_and_hangs_up(pbx, center):
    cc = center()
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    until(lambda: cc.agent_state("ana") == "available", 10, "ana available")
    caller = number()
    pbx.call("08007770000@callcenter-inbound", "keys", caller, W1="2", K1="1", W2="3", K2="1", CALLER_WAIT="40")
    until(lambda: cc.call_of("ana") and cc.call_of("ana").answered_at, 30, "ana answered the caller")
    assert cc.ask("ana", "hangup", {})["ok"]
    call = cc.stored(caller)
    assert (call.outcome, call.queue, call.agent, call.hangup_by) == ("answered", "support", "ana", "agent")
    assert [(q, a, e) for _, _, q, a, e, *_ in queue_log_of(pbx, caller)] == [
        ("support", "NONE", "ENTERQUEUE"), ("support", "ana", "CONNECT"), ("support", "ana", "COMPLETEAGENT")], \
        "Asterisk's own queue_log: into support, ana answers, ana hangs up"
    assert any(row["uniqueid"] == call.linkedid or caller in row["clid"] for row in pbx.cdr()), "Asterisk wrote a CDR for it"
