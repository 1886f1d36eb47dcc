"""Panel requests carried out on the simulator through the engine, the CRM lookup over real HTTP, and the users command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from cti_panel.customers import HttpLookup, TableLookup
from cti_panel.users import Users
from kernel import config
from kernel.db import make_engine, migrate
from kernel.models import Agent, AgentStateChange, Wrapup
from pbx.simulator.core import STATE_DESC
from tests.realpbx import submit_request
from tests.test_panel_browser import CallCenter
from tests.waiting import until


class Replies:
    """A fake socket: what the engine answered to it."""

    def __init__(self, center: CallCenter) -> None:
        self.got: list[tuple[str, dict]] = []
        center.notifier.to_socket = lambda sid, event, payload: self.got.append((event, payload))  # type: ignore[method-assign]


def ask(center: CallCenter, login: str, name: str, values: dict) -> None:
    submit_request(center.users, center.engine, login, name, values)


@pytest.fixture
def rig(tmp_path):
    """The call center with the simulator's queue_log kept and the engine's replies to sockets collected."""
    center = CallCenter(tmp_path)
    queue_log: list[str] = []
    center.server.sim.queue_log_sink = queue_log.append
    try:
        yield center, Replies(center), queue_log
    finally:
        center.stop()


def go_available(center: CallCenter) -> None:
    ask(center, "ana", "state", {"state": "available"})
    until(lambda: center.engine.board.agents.get("ana") and center.engine.board.agents["ana"].state == "available")


def until_answered(center: CallCenter) -> None:
    until(lambda: center.engine.board.call_of("ana") is not None and center.engine.board.call_of("ana").answered_at is not None, 15)


def stored_call(center: CallCenter, number: str):
    until(lambda: any(c.caller_number == number for c in center.engine.store.calls()), 15)
    return next(c for c in center.engine.store.calls() if c.caller_number == number)


def test_agent_and_supervisor_requests_act_on_the_simulated_pbx(rig):
    center, replies, queue_log = rig
    sim = center.server.sim
    seen: list = []
    engine_on_event = center.engine.client.on_event
    center.engine.client.on_event = lambda message, arrival: (seen.append(message), engine_on_event(message, arrival))
    go_available(center)
    ask(center, "sue", "force", {"agent": "ana", "interface": "Local/2002@e2e-phones/n", "action": "pause", "reason": "coaching"})
    until(lambda: center.engine.board.agents["ana"].state == "paused")
    assert center.engine.board.agents["ana"].reason == "coaching"
    go_available(center)

    center.call("5511977776666")
    until_answered(center)
    for mode in ("listen", "whisper", "barge"):
        ask(center, "sue", "spy", {"agent": "ana", "interface": "Local/2002@e2e-phones/n", "mode": mode})
        until(lambda: any(c.vars.get("SPY_MODE") == mode for c in sim.channels.values()))
        spy = next(c for c in sim.channels.values() if c.vars.get("SPY_MODE") == mode)
        assert spy.name.startswith("Local/1900@e2e-phones"), f"the supervisor's phone does the {mode}"

    caller = center.engine.board.call_of("ana").channel
    ask(center, "ana", "hold", {})
    until(lambda: center.engine.board.call_of("ana").held)
    assert next(c for c in sim.channels.values() if c.name == caller).vars["MUTEAUDIO(all)"] == "on", "the caller is muted both ways"
    center.talk(1.0)
    ask(center, "ana", "unhold", {})
    until(lambda: not center.engine.board.call_of("ana").held)
    assert next(c for c in sim.channels.values() if c.name == caller).vars["MUTEAUDIO(all)"] == "off"

    first_leg = center.engine.board.call_of("ana").agent_channel
    ask(center, "ana", "transfer", {"how": "blind", "kind": "queue", "queue": "support"})
    until(lambda: any("|BLINDTRANSFER|8001|callcenter-transfer|" in line for line in queue_log))

    until(
        lambda: (
            (call := center.engine.board.call_of("ana")) is not None
            and call.answered_at is not None
            and call.agent_channel not in (None, first_leg)
        ),
        15,
    )
    ask(center, "ana", "hangup", {})
    call = stored_call(center, "5511977776666")
    assert call.transfers == 1 and call.hold_s >= 0.9, "the panel's hold and transfer are on the call's record"
    until(lambda: sum(c.outcome == "supervision" for c in center.engine.store.calls()) == 3)
    assert not [c for c in center.engine.store.calls() if c.outcome == "ivr_only"], "listening in is not counted as a caller"

    ask(center, "ana", "dial", {"number": "5511955554444"})
    until(
        lambda: any(
            m.get("Event") == "Newexten" and m.get("Context") == "callcenter-outbound" and m.get("Extension") == "5511955554444"
            for m in seen
        ),
        15,
    )
    assert all(payload["ok"] for event, payload in replies.got if event == "reply")
    ask(center, "sue", "force", {"agent": "ana", "interface": "Local/2002@e2e-phones/n", "action": "logout"})
    until(lambda: center.engine.board.agents["ana"].state == "logged_out")


def test_an_attended_transfer_consults_then_hands_the_caller_over_when_the_agent_completes(rig):
    center, replies, queue_log = rig
    sim = center.server.sim
    center.users.add("bob", "a long password", "agent", agent="bob", interface="Local/2003@e2e-phones/n", extension="2003")
    go_available(center)
    center.call("5511977776666")
    until_answered(center)
    caller = center.engine.board.call_of("ana").channel
    ask(center, "ana", "transfer", {"how": "attended", "kind": "agent", "agent": "bob"})
    until(lambda: any(c.name.startswith("Local/2003@e2e-phones") and STATE_DESC[c.state] == "Up" for c in sim.channels.values()))
    until(
        lambda: any(
            c.name.startswith("Local/8002@callcenter-transfer") and c.name.endswith(";1") and STATE_DESC[c.state] == "Up"
            for c in sim.channels.values()
        )
    )
    assert caller in {c.name for c in sim.channels.values()}, "the caller waits while the agent consults"
    assert not any("TRANSFER" in line for line in queue_log)
    linkedid = center.engine.board.call_of("ana").linkedid
    until(lambda: center.engine.board.call_of("ana").consulting, 10, "ana consulting")
    for name, values in (("state", {"state": "available"}), ("unhold", {"linkedid": linkedid})):
        ask(center, "ana", name, values)
    refusals = until(lambda: (r := [p["error"] for e, p in replies.got if e == "reply" and not p["ok"]])[1:] and r, 10, "two refusals")
    assert refusals == [
        "You are on a call: you will be available when it ends.",
        "The caller is already on hold while you consult: complete or cancel the transfer.",
    ], "neither unpauses her on top of the call nor says 'resumed' when the PBX holds the caller"
    ask(center, "ana", "complete", {})
    until(lambda: any("|ATTENDEDTRANSFER|" in line for line in queue_log))
    call = stored_call(center, "5511977776666")
    assert (call.outcome, call.agent, call.transfers) == ("answered", "ana", 1)
    assert sum(not payload["ok"] for event, payload in replies.got if event == "reply") == 2


def watch(center: CallCenter) -> list:
    """Every note the engine pushes to the panel's rooms, as it pushes them."""
    pushed: list = []
    send = center.notifier.send
    center.notifier.send = lambda notes: (pushed.extend(notes := list(notes)), send(notes))  # type: ignore[method-assign]
    return pushed


def ana_talks_and_bob_is_a_user(center: CallCenter) -> str:
    """Bob can be transferred to; ana answers a caller: the call's linkedid."""
    center.users.add("bob", "a long password", "agent", agent="bob", interface="Local/2003@e2e-phones/n", extension="2003")
    go_available(center)
    center.call("5511977776666")
    until_answered(center)
    return center.engine.board.call_of("ana").linkedid


def test_a_wrap_up_lands_on_its_own_call_and_an_action_for_an_ended_call_never_reaches_the_next(rig):
    center, replies, _ = rig
    pushed = watch(center)
    first = ana_talks_and_bob_is_a_user(center)
    ask(center, "ana", "transfer", {"how": "blind", "kind": "agent", "agent": "bob"})
    ended = until(lambda: next((n for n in pushed if n.event == "ended" and n.room == "agent:ana"), None), 15, "ana's part ended")
    assert (ended.payload["linkedid"], ended.payload["outcome"], ended.payload["number"]) == (first, "transferred", "5511977776666")

    center.call("5511955554444")
    until(lambda: (c := center.engine.board.call_of("ana")) is not None and c.linkedid != first and c.answered_at is not None, 15)
    second = center.engine.board.call_of("ana").linkedid
    ask(center, "ana", "hold", {"linkedid": first})
    refused = until(lambda: next((p for e, p in replies.got if e == "reply" and not p["ok"]), None), 10, "the refusal")
    assert "no longer yours" in refused["error"] and not center.engine.board.call_of("ana").held, "the next caller is not put on hold"
    ask(center, "ana", "wrapup", {"linkedid": first, "disposition": "sale", "notes": "vendeu antes de transferir"})
    ask(center, "ana", "hangup", {})
    stored_call(center, "5511955554444")
    ask(center, "ana", "wrapup", {"linkedid": second, "disposition": "resolved", "notes": ""})
    until(lambda: len(wrapups(center)) == 2, 10, "both wrap-ups stored")
    assert wrapups(center) == {(first, "ana"): ("sale", "vendeu antes de transferir"), (second, "ana"): ("resolved", "")}
    ask(center, "bob", "wrapup", {"linkedid": second, "disposition": "complaint", "notes": ""})
    until(lambda: any(e == "reply" and not p["ok"] and "not one of your calls" in p["error"] for e, p in replies.got), 10)


def test_the_agent_a_transfer_reaches_gets_the_pop_the_call_and_the_wrap_up(rig):
    center, replies, _ = rig
    pushed = watch(center)
    linkedid = ana_talks_and_bob_is_a_user(center)
    ask(center, "bob", "state", {"state": "pause", "reason": "break"})
    until(lambda: center.engine.board.agents.get("bob") and center.engine.board.agents["bob"].state == "paused")
    ask(center, "ana", "transfer", {"how": "blind", "kind": "agent", "agent": "bob"})
    refused = until(lambda: next((p for e, p in replies.got if e == "reply" and not p["ok"]), None), 10, "the refusal")
    assert refused["error"] == "Agent bob cannot take it now (paused)." and center.engine.board.call_of("ana").linkedid == linkedid
    ask(center, "bob", "state", {"state": "available"})
    until(lambda: center.engine.board.agents["bob"].state == "available")
    ask(center, "ana", "transfer", {"how": "blind", "kind": "agent", "agent": "bob"})
    pop = until(lambda: next((n for n in pushed if n.event == "pop" and n.room == "agent:bob"), None), 15, "bob's pop")
    assert (pop.payload["linkedid"], pop.payload["number"]) == (linkedid, "5511977776666")
    until(lambda: (c := center.engine.board.call_of("bob")) is not None and c.linkedid == linkedid, 10, "bob's call card")
    until(lambda: center.engine.board.agents["bob"].state == "on_call", 10, "bob on a call app_queue did not give him")
    ask(center, "ana", "state", {"state": "pause", "reason": "break"})
    until(lambda: center.engine.board.agents["ana"].state == "paused", 10, "ana on a break")
    center.call("5511955554444")
    until(lambda: any(n.event == "ended" and n.room == "agent:bob" for n in pushed), 15, "bob's part ended: his wrap-up form")
    rung = [n.event for n in pushed if n.room == "agent:bob" and n.event in ("pop", "ended")]
    next_pop = until(
        lambda: next((n for n in pushed if n.event == "pop" and n.room == "agent:bob" and n.payload["linkedid"] != linkedid), None), 15
    )
    assert next_pop.payload["number"] == "5511955554444" and rung[:2] == ["pop", "ended"], "the queue rang bob only once he was free"
    ask(center, "ana", "wrapup", {"linkedid": linkedid, "disposition": "follow_up", "notes": ""})
    ask(center, "bob", "wrapup", {"linkedid": linkedid, "disposition": "resolved", "notes": "resolvido"})
    until(lambda: len(wrapups(center)) == 2, 10, "both agents' wrap-ups")
    assert wrapups(center) == {(linkedid, "ana"): ("follow_up", ""), (linkedid, "bob"): ("resolved", "resolvido")}
    call = stored_call(center, "5511977776666")
    assert [(leg.agent, leg.ended_by) for leg in call.legs] == [("ana", "transferred_blind"), ("bob", "completed")]
    assert (call.queue, call.agent, call.wait_s) == ("support", "bob", call.legs[0].wait_s), "bob took it over; it came in through support"


def test_after_call_work_until_the_wrap_up_is_saved_keeps_the_next_caller_off_the_agent_in_app_queue_mode(tmp_path):
    center = CallCenter(tmp_path, support=config.ACDQueue(wrapup_until_saved=True))
    replies = Replies(center)
    board = center.engine.board
    try:
        go_available(center)
        center.call("5511977776666")
        until_answered(center)
        first = board.call_of("ana").linkedid
        ask(center, "ana", "hangup", {})
        until(lambda: board.agents["ana"].state == "wrap_up", 10, "ana in after-call work")
        center.call("5511955554444")
        until(lambda: board.queues["support"].waiting, 10, "the next caller waits")
        ask(center, "ana", "state", {"state": "available"})
        refused = until(lambda: next((p for e, p in replies.got if e == "reply" and not p["ok"]), None), 10, "the refusal")
        assert refused["error"].startswith("Save the wrap-up of your last call first")
        center.talk(3.0)
        assert board.agents["ana"].state == "wrap_up" and board.call_of("ana") is None, "no call is offered while she writes"
        ask(center, "ana", "wrapup", {"linkedid": first, "disposition": "resolved", "notes": ""})
        until(lambda: (c := board.call_of("ana")) is not None and c.number == "5511955554444", 15, "the next caller rings her")
        with center.store.sessions() as s:
            stored = list(s.scalars(select(AgentStateChange.state).join(Agent).where(Agent.name == "ana").order_by(AgentStateChange.at)))
        assert stored[-5:] == ["on_call", "wrap_up", "available", "ringing", "on_call"], (
            "the after-call work is in the stored states from the call's end (no moment available between) until the save"
        )
    finally:
        center.stop()


def test_click_to_dial_is_done_only_when_the_agents_phone_answered_and_says_why_it_failed(tmp_path):
    center = CallCenter(tmp_path, dial_ring_s=4.0)
    replies = Replies(center)
    center.users.add("noah", "a long password", "agent", agent="noah", interface="Local/2009@e2e-phones/n", extension="2009", lang="pt-BR")
    center.users.add("zoe", "a long password", "agent", agent="zoe", interface="Local/2099@e2e-phones/n", extension="2099")
    try:
        for login, ident in (("ana", 1), ("noah", 2), ("zoe", 3)):
            submit_request(center.users, center.engine, login, "dial", {"number": "5511955554444"}, ident)

        def three() -> dict | None:
            got = {p["id"]: p for e, p in replies.got if e == "reply"}
            return got if len(got) == 3 else None

        answers = until(three, 20, "the three replies")
        assert (answers[1]["ok"], answers[1]["message"]) == (True, "Your phone answered: calling 5511955554444.")
        assert (answers[2]["ok"], answers[2]["error"]) == (False, "Seu telefone (Local/2009@e2e-phones/n) não atendeu."), "in his language"
        assert not answers[3]["ok"] and "Local/2099@e2e-phones/n" in answers[3]["error"], "a phone that is not there is named"
    finally:
        center.stop()


def wrapups(center: CallCenter) -> dict:
    with center.store.sessions() as s:
        return {(w.linkedid, w.agent): (w.disposition, w.notes) for w in s.scalars(select(Wrapup))}


class CRM(BaseHTTPRequestHandler):
    """A CRM that knows one number, and is slow for another."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if "5511900000000" in self.path:
            time.sleep(1.0)
        body = json.dumps({"name": "Joana Prado", "company": "Prado & Filhos"} if "5511988887777" in self.path else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_crm_lookup_over_http_with_timeout_and_fallback(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/c.db")
    migrate(engine)
    sessions = sessionmaker(engine)
    csv = tmp_path / "customers.csv"
    csv.write_text("number,name,company\n+55 (11) 90000-0000,Carlos Lima,Lima ME\n")
    from cti_panel.customers import import_csv

    assert import_csv(sessions, csv) == (1, 0)
    server = HTTPServer(("127.0.0.1", 0), CRM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        crm = HttpLookup(f"http://127.0.0.1:{server.server_port}/customers?phone={{number}}", 0.3, TableLookup(sessions))
        assert crm.find("+55 11 98888-7777") == {"name": "Joana Prado", "company": "Prado & Filhos", "source": "crm"}
        began = time.monotonic()
        assert crm.find("5511900000000")["name"] == "Carlos Lima", "a slow CRM falls back to the table"
        assert time.monotonic() - began < 0.9
        down = HttpLookup("http://127.0.0.1:9/{number}", 0.3, TableLookup(sessions))
        assert down.find("5511900000000")["source"] == "table"
    finally:
        server.shutdown()


def test_a_bad_customer_row_stops_the_import_with_its_line(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/c.db")
    migrate(engine)
    csv = tmp_path / "customers.csv"
    csv.write_text("number,name\n5511911112222,Ana\nabc,Bruno\n")
    from cti_panel.customers import import_csv
    from kernel.exceptions import InputError

    with pytest.raises(InputError, match=r"customers.csv:3: needs a phone number"):
        import_csv(sessionmaker(engine), csv)
    assert TableLookup(sessionmaker(engine)).find("5511911112222") is None, "nothing stored"
    csv.write_text("number,name\n5511911112222,Ana\n5511933334444,Bru\x00no\n")
    with pytest.raises(InputError, match=r"customers.csv:3: a NUL byte in the row"):  # PostgreSQL refused it with a traceback
        import_csv(sessionmaker(engine), csv)
    csv.write_bytes(b"number,name\n5511911112222,Ana\n5511933334444,Jo\xe3o\n")
    with pytest.raises(InputError, match=r"customers.csv:\d+: not UTF-8"):
        import_csv(sessionmaker(engine), csv)
    csv.write_text("number,name\n5511911112222," + "x" * 140_000 + "\n")
    with pytest.raises(InputError, match=r"customers.csv:\d+: not a CSV row: field larger than field limit"):
        import_csv(sessionmaker(engine), csv)


def test_users_command_adds_lists_and_disables(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/u.db")
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "users", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        input="a long password\n",
    )
    assert run("add", "ana", "--role", "agent", "--agent", "ana", "--interface", "PJSIP/1001", "--password-stdin").returncode == 0
    refused = run("add", "bob", "--role", "agent", "--password-stdin")
    assert refused.returncode == 1 and "needs --agent and --interface" in refused.stderr
    assert run("disable", "ana").returncode == 0
    listed = run("list").stdout
    assert "ana" in listed and "disabled" in listed and "bob" not in listed
    assert "a long password" not in listed
    users = Users(sessionmaker(make_engine(env["CALLCENTER_DATABASE_URL"])))
    assert users.check("ana", "a long password") is None, "disabled"


def test_a_socket_from_a_hostile_origin_is_refused_even_with_a_session(tmp_path):
    center = CallCenter(tmp_path)
    try:
        http = requests.Session()
        token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(f"{center.panel.url}/login").text).group(1)
        http.post(f"{center.panel.url}/login", data={"csrf_token": token, "login": "ana", "password": "correct horse battery"})
        host = center.panel.url.removeprefix("http://")

        def handshake(origin: str) -> int:
            connection = HTTPConnection(host, timeout=5)
            connection.request(
                "GET",
                "/socket.io/?EIO=4&transport=websocket",
                headers={
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version": "13",
                    "Origin": origin,
                    "Cookie": f"cc_session={http.cookies['cc_session']}",
                },
            )
            status = connection.getresponse().status
            connection.close()
            return status

        assert handshake(center.panel.url) == 101, "the panel's own pages may open a socket"
        assert handshake("https://evil.example") == 400, "a page elsewhere may not, even with the user's cookie"
    finally:
        center.stop()


def test_every_request_the_panel_checks_is_one_it_carries_out():
    from cti_panel.controls import RULES, Controls

    controls = Controls(lambda action: None, None, None, None, lambda *a: True, lambda *a: None)
    assert set(RULES) == set(controls._run)
