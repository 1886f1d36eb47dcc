"""The CTI panel: the live board on recorded Asterisk traffic, request checks, and the app's security through Flask and Socket.IO test clients."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm import sessionmaker

from acd.machine import StateChange
from cti_panel.app import create_app
from cti_panel.controls import Controls, Directory, check
from cti_panel.live import LiveBoard, Note, agent_room, queue_room
from cti_panel.notifier import Notifier
from cti_panel.users import Users
from kernel.db import CallStore, make_engine, migrate
from kernel.exceptions import Refused
from kernel.records import DomainEvent
from kernel.values import AgentState
from kernel.who import Who
from pbx.trace import replay_messages
from pbx.tracker import CallTracker, event_time
from tests.conftest import TRACES, trace_names

PASSWORD = "correct horse battery"
DIRECTORY = Directory(
    ("support", "sales"),
    ("lunch", "break"),
    ("resolved", "sale"),
    lambda: {"ana": ("PJSIP/1001", "1001", ("support",)), "bruno": ("PJSIP/1002", "1002", ("sales",))},
)


def board_from_trace(name: str) -> tuple[LiveBoard, list[Note], list]:
    tracker, board, notes, records = CallTracker(), LiveBoard(), [], []
    for arrival, message in replay_messages(TRACES / f"{name}.jsonl"):
        if isinstance(message, Exception):
            continue
        for event in tracker.feed(message, event_time(message, arrival)):
            notes += board.on_call(event)
            if event.record is not None:
                records.append(event.record)
    return board, notes, records


@pytest.mark.parametrize("name", trace_names())
def test_the_board_counts_what_real_asterisk_did(name):
    board, notes, records = board_from_trace(name)
    for queue in board.queues.values():
        mine = [r for r in records if r.queue == queue.name]
        _, answered, _, abandoned = queue.totals()
        assert answered == sum(r.outcome == "answered" for r in mine)
        assert abandoned == sum(r.outcome == "abandoned" for r in mine)
        assert not queue.waiting, "nobody is left waiting once every call ended"
    pops = [n for n in notes if n.event == "pop"]
    rung = {(r.agent, r.caller_number) for r in records if r.agent}
    assert {(n.payload["agent"], n.payload["number"]) for n in pops} >= rung, "every agent who answered got a pop first"
    assert all(n.room == agent_room(n.payload["agent"]) for n in pops), "a pop goes to its agent's room only"
    assert not board.calls


def test_every_configured_queue_is_on_the_wallboard_before_its_first_call():
    board = LiveBoard({"support": 20, "billing": 30})
    assert [(q["name"], q["offered"]) for q in board.snapshot()["queues"]] == [("support", 0), ("billing", 0)]


def test_service_level_and_day_rollover():
    board = LiveBoard({"support": 20}, "America/Sao_Paulo")
    t0 = 1_763_900_000.0  # 2025-11-23 09:13 in São Paulo
    board.on_call(DomainEvent("queue_joined", "a", t0, {"queue": "support"}))
    board.on_call(DomainEvent("answered", "a", t0 + 5, {"queue": "support", "agent": "ana", "wait_s": 5}))
    board.on_call(DomainEvent("queue_joined", "b", t0 + 10, {"queue": "support"}))
    board.on_call(DomainEvent("answered", "b", t0 + 50, {"queue": "support", "agent": "ana", "wait_s": 40}))
    board.on_call(DomainEvent("queue_joined", "c", t0 + 60, {"queue": "support"}))
    tile = board.snapshot()["queues"][0]
    assert (tile["answered"], tile["waiting"], tile["service_level"]) == (2, 1, 50.0)
    board.on_call(DomainEvent("queue_left", "c", t0 + 70, {"queue": "support", "reason": "abandoned"}))
    assert board.snapshot()["queues"][0]["service_level"] == pytest.approx(33.3)
    assert board.tick(t0 + 86_400) and board.snapshot()["queues"][0]["offered"] == 0, "a new day starts from zero"


def test_callers_waiting_for_a_call_back_show_on_their_queue():
    board = LiveBoard()
    notes = board.callbacks({"support": 0, "sales": 2})
    assert {n.payload["name"]: n.payload["callbacks"] for n in notes} == {"support": 0, "sales": 2}
    assert board.callbacks({"support": 0, "sales": 2}) == [], "no change, no message"
    [note] = board.callbacks({"support": 0, "sales": 1})
    assert (note.room, note.payload["callbacks"]) == (queue_room("sales"), 1)
    app_queue = LiveBoard()
    app_queue.on_call(DomainEvent("queue_joined", "a", 1.0, {"queue": "support"}))
    assert app_queue.snapshot()["queues"][0]["callbacks"] is None, "app_queue mode has no call-back line"


def test_agent_rows_follow_state_changes_and_calls():
    board = LiveBoard()
    notes = board.on_agent(StateChange("ana", AgentState.PAUSED, "lunch", 100.0))
    assert {n.room for n in notes} == {"supervisors", "agent:ana"}
    assert board.agent_view("ana")["me"]["reason"] == "lunch"


def test_an_agents_view_says_the_ringing_call_the_pause_to_come_the_recording_and_the_pbxs_pace():
    board = LiveBoard(pace=10.0)
    board.on_call(DomainEvent("call_started", "L1", 100.0, {"caller_number": "5511977776666"}))
    board.on_call(DomainEvent("queue_joined", "L1", 101.0, {"queue": "support", "channel": "Local/s-1;2"}))
    board.on_agent(StateChange("ana", AgentState.RINGING, None, 102.0))
    board.on_call(DomainEvent("agent_ringing", "L1", 102.0, {"agent": "ana", "queue": "support"}))
    view = board.agent_view("ana")
    assert (view["call"], view["ringing"]["number"], view["ringing"]["queue"], view["pace"]) == (None, "5511977776666", "support", 10.0)
    assert board.agent_view("bia")["ringing"] is None, "nobody else's"
    board.on_call(DomainEvent("answered", "L1", 105.0, {"agent": "ana", "queue": "support", "wait_s": 4.0}))
    board.on_agent(StateChange("ana", AgentState.ON_CALL, None, 105.0))
    assert board.recording("L1", "on") == [Note("agent:ana", "call", board.calls["L1"].card(board.now))]
    assert board.recording("L1", "on") == [], "nothing new to say"
    [_, mine] = board.on_agent(StateChange("ana", AgentState.ON_CALL, "lunch", 110.0))
    assert (mine.payload["pause_after"], mine.payload["reason"], mine.payload["since"]) == ("lunch", None, 105.0), (
        "a pause asked for during the call: to come, and still on the call since its answer"
    )
    view = board.agent_view("ana")
    assert (view["ringing"], view["call"]["recording"], view["me"]["pause_after"]) == (None, "on", "lunch")
    board.on_agent(StateChange("ana", AgentState.PAUSED, "lunch", 120.0))
    assert (board.agent_view("ana")["me"]["pause_after"], board.agent_view("ana")["me"]["reason"]) == (None, "lunch")


@pytest.mark.parametrize(
    "name, data, why",
    [
        ("dial", {"number": "5511\r\nAction: Originate"}, "digits only"),
        ("dial", {"number": "123,Application"}, "digits only"),
        ("dial", {"number": 5511999}, "digits only"),
        ("transfer", {"how": "blind", "linkedid": "L1", "kind": "number", "number": "1;Hangup"}, "digits only"),
        ("transfer", {"how": "blind", "linkedid": "L1", "kind": "queue", "queue": "vip"}, "one of support, sales"),
        ("transfer", {"how": "blind", "linkedid": "L1", "kind": "agent", "agent": "zed"}, "no such agent"),
        ("transfer", {"how": "blind", "kind": "queue", "queue": "sales"}, "linkedid: expected text"),
        ("hold", {}, "linkedid: expected text"),
        ("wrapup", {"disposition": "sale"}, "linkedid: expected text"),
        ("state", {"state": "pause", "reason": "nap"}, "one of lunch, break"),
        ("spy", {"agent": "bruno", "mode": "listen"}, "not allowed for the agent role"),
        ("hangup", ["not", "an", "object"], "expected an object"),
        ("Originate", {}, "unknown request"),
    ],
)
def test_malformed_or_forbidden_requests_are_refused(name, data, why):
    agent = Who(1, "ana", "agent", "en", "ana", "PJSIP/1001", "1001", ())
    with pytest.raises(Refused, match=why):
        check(agent, name, data, DIRECTORY)


def test_clean_requests_carry_only_server_chosen_contexts():
    agent = Who(1, "ana", "agent", "en", "ana", "PJSIP/1001", "1001", ())
    boss = Who(2, "sue", "supervisor", "en", None, "PJSIP/1900", "1900", ())
    assert check(agent, "dial", {"number": "+5511988887777"}, DIRECTORY).values == {"number": "5511988887777"}
    assert check(
        agent, "transfer", {"how": "blind", "linkedid": "L1", "kind": "agent", "agent": "bruno", "context": "evil"}, DIRECTORY
    ).values == {
        "how": "blind",
        "linkedid": "L1",
        "kind": "agent",
        "context": "callcenter-transfer",
        "exten": "8002",
        "target": "PJSIP/1002",
        "label": "bruno",
    }
    assert check(agent, "transfer", {"how": "attended", "linkedid": "L1", "kind": "queue", "queue": "sales"}, DIRECTORY).values == {
        "how": "attended",
        "linkedid": "L1",
        "kind": "queue",
        "context": "callcenter-transfer",
        "exten": "8001",
        "target": "sales",
        "label": "sales",
    }
    assert check(boss, "spy", {"agent": "ana", "mode": "whisper"}, DIRECTORY).values == {
        "agent": "ana",
        "interface": "PJSIP/1001",
        "mode": "whisper",
    }
    with pytest.raises(Refused, match="not allowed for the supervisor role"):
        check(boss, "dial", {"number": "5511"}, DIRECTORY)


# the app -----------------------------------------------------------------------------
class RecordingBus:
    """A fake engine bus: keeps what the panel submitted."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def submit(self, payload: dict) -> None:
        self.sent.append(payload)


@pytest.fixture
def panel(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    migrate(engine)
    store = CallStore(engine)
    users = Users(sessionmaker(engine, expire_on_commit=False))
    users.add("ana", PASSWORD, "agent", agent="ana", interface="PJSIP/1001", extension="1001")
    users.add("bruno", PASSWORD, "agent", agent="bruno", interface="PJSIP/1002", extension="1002", lang="pt-BR")
    users.add("sue", PASSWORD, "supervisor", interface="PJSIP/1900", queues=["support"])
    bus = RecordingBus()
    app = create_app(users, bus, DIRECTORY, secret_key="test-secret", login_rate=(0.01, 3), socket_rate=(0.01, 5))
    app.config["WTF_CSRF_ENABLED"] = False
    notifier = Notifier(app.extensions["socketio"])

    class Panel:
        pass

    p = Panel()
    p.app, p.users, p.bus, p.notifier, p.store, p.socketio = app, users, bus, notifier, store, app.extensions["socketio"]
    return p


def logged_in(panel, login: str):
    client = panel.app.test_client()
    response = client.post("/login", data={"login": login, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return client


def socket(panel, client):
    return panel.socketio.test_client(panel.app, flask_test_client=client)


def test_pages_need_a_login_and_the_right_role(panel):
    anonymous = panel.app.test_client()
    assert anonymous.get("/agent").status_code == 302
    ana = logged_in(panel, "ana")
    assert ana.get("/agent").status_code == 200
    assert ana.get("/wallboard").status_code == 403
    assert ana.get("/admin/users").status_code == 403
    sue = logged_in(panel, "sue")
    assert sue.get("/wallboard").status_code == 200
    cookie = ana.get_cookie("cc_session")
    assert cookie.http_only and cookie.same_site == "Strict"


def test_wrong_passwords_are_rate_limited(panel):
    client = panel.app.test_client()
    codes = [client.post("/login", data={"login": "ana", "password": "wrong-password"}).status_code for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
    assert client.post("/login", data={"login": "ana", "password": PASSWORD}).status_code == 429, "even the right password waits"


def test_a_shift_behind_one_proxy_logs_in_and_guessing_one_account_locks_out_no_other(panel):
    """Measured before: 20 correct logins by 4 users from one address gave 5 accepted and 15 refused, and an attack on
    one account locked the others out."""
    for login in ("dan", "eva"):
        panel.users.add(login, PASSWORD, "supervisor")
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    codes = [
        panel.app.test_client().post("/login", data={"login": login, "password": PASSWORD}, environ_base=proxy).status_code
        for _ in range(5)
        for login in ("ana", "bruno", "dan", "eva")
    ]
    assert codes == [302] * 20
    guesser = panel.app.test_client()
    guesses = [guesser.post("/login", data={"login": "ana", "password": "guess"}, environ_base=proxy).status_code for _ in range(5)]
    assert guesses == [401, 401, 401, 429, 429]
    assert panel.app.test_client().post("/login", data={"login": "bruno", "password": PASSWORD}, environ_base=proxy).status_code == 302


def test_forwarded_for_names_the_client_only_from_a_trusted_proxy(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    migrate(engine)
    users = Users(sessionmaker(engine, expire_on_commit=False))
    for n in range(12):
        users.add(f"user{n}", PASSWORD, "supervisor")
    app = create_app(users, RecordingBus(), DIRECTORY, secret_key="k", address_rate=(0.001, 4), trusted_proxies=["10.0.0.1"])
    app.config["WTF_CSRF_ENABLED"] = False

    def attempt(n: int, peer: str, forwarded: str) -> int:
        client = app.test_client()
        headers = {"X-Forwarded-For": forwarded}
        return client.post(
            "/login", data={"login": f"user{n}", "password": "guess"}, environ_base={"REMOTE_ADDR": peer}, headers=headers
        ).status_code

    through_proxy = [attempt(n, "10.0.0.1", "203.0.113.7") for n in range(6)]
    assert through_proxy == [401] * 4 + [429] * 2, "one client behind the proxy, many accounts: that client waits"
    assert attempt(7, "10.0.0.1", "198.51.100.9, 10.0.0.1") == 401, "another client behind the same proxy does not"
    spoofed = [attempt(8 + n % 4, "192.0.2.50", f"198.51.100.{n}") for n in range(6)]
    assert spoofed == [401] * 4 + [429] * 2, "a peer that is no proxy cannot pose as many clients"


def test_forms_without_a_csrf_token_are_refused(panel):
    panel.app.config["WTF_CSRF_ENABLED"] = True
    client = panel.app.test_client()
    assert client.post("/login", data={"login": "ana", "password": PASSWORD}).status_code == 400


def test_a_socket_without_a_session_is_refused(panel):
    assert not panel.socketio.test_client(panel.app).is_connected()


def test_an_agent_gets_only_their_own_pops(panel):
    ana, bruno = socket(panel, logged_in(panel, "ana")), socket(panel, logged_in(panel, "bruno"))
    sue = socket(panel, logged_in(panel, "sue"))
    for client in (ana, bruno, sue):
        client.get_received()
    panel.notifier.send(
        [
            Note(agent_room("ana"), "pop", {"number": "5511977776666", "agent": "ana"}),
            Note("queue:support", "queue", {"name": "support", "waiting": 1}),
            Note("queue:sales", "queue", {"name": "sales", "waiting": 3}),
        ]
    )
    assert [m["name"] for m in ana.get_received()] == ["pop"]
    assert bruno.get_received() == [], "agent B never receives agent A's pop"
    assert [m["args"][0]["name"] for m in sue.get_received()] == ["support"], "a supervisor sees only their queues"


def test_requests_are_checked_and_stamped_with_the_server_side_user(panel):
    ana = socket(panel, logged_in(panel, "ana"))
    ack = ana.emit("request", {"id": 7, "name": "dial", "data": {"number": "5511988887777"}, "who": {"role": "admin"}}, callback=True)
    assert ack == {"ok": True, "queued": True}
    sent = panel.bus.sent[-1]
    assert (sent["name"], sent["values"], sent["who"]["login"], sent["who"]["role"]) == (
        "dial",
        {"number": "5511988887777"},
        "ana",
        "agent",
    )
    before = len(panel.bus.sent)
    assert ana.emit("request", {"name": "force", "data": {"agent": "bruno", "action": "logout"}}, callback=True)["ok"] is False
    assert ana.emit("request", {"name": "dial", "data": {"number": "1\r\nAction: Command"}}, callback=True)["ok"] is False
    assert ana.emit("join", {"room": "agent:bruno"}, callback=True) is None, "no event lets a browser pick a room"
    assert len(panel.bus.sent) == before, "nothing refused reached the engine"


def test_a_flood_of_requests_is_cut_off(panel):
    ana = socket(panel, logged_in(panel, "ana"))
    answers = [ana.emit("request", {"name": "hangup", "data": {"linkedid": "L1"}}, callback=True) for _ in range(8)]
    assert [a["ok"] for a in answers[:5]] == [True] * 5
    assert all(a["error"] == "Too many requests: slow down." for a in answers[5:])


def test_a_disabled_user_is_disconnected_and_cannot_log_in(panel):
    client = logged_in(panel, "ana")
    ana = socket(panel, client)
    assert ana.is_connected()
    panel.users.set_disabled("ana", True)
    panel.app.extensions["cc_panel"].sockets.sweep()
    assert not ana.is_connected()
    assert client.get("/agent").status_code == 302
    assert panel.app.test_client().post("/login", data={"login": "ana", "password": PASSWORD}).status_code == 401


def with_cookie(panel, value: str):
    """A browser holding a copy of a session cookie (another tab, or a stolen one)."""
    client = panel.app.test_client()
    client.set_cookie("cc_session", value)
    return client


def test_logging_out_ends_every_session_of_the_user_even_a_copied_cookie(panel):
    client, other_tab = logged_in(panel, "ana"), logged_in(panel, "ana")
    saved = client.get_cookie("cc_session").value
    ana, elsewhere = socket(panel, client), socket(panel, other_tab)
    assert with_cookie(panel, saved).get("/agent").status_code == 200
    assert client.post("/logout").status_code == 302
    assert with_cookie(panel, saved).get("/agent").status_code == 302, "the cookie from before the logout opens nothing"
    assert other_tab.get("/agent").status_code == 302, "nor does another browser's session of the same user"
    assert not socket(panel, with_cookie(panel, saved)).is_connected()
    assert not ana.is_connected() and not elsewhere.is_connected()
    assert logged_in(panel, "ana").get("/agent").status_code == 200, "logging in again works"


@pytest.mark.parametrize(
    "change",
    [
        lambda users: users.passwd("ana", "a brand new password"),
        lambda users: users.set_role("ana", "supervisor"),
        lambda users: users.set_disabled("ana", True),
    ],
    ids=["new password", "new role", "disabled"],
)
def test_a_change_to_the_user_ends_their_sessions_and_sockets(panel, change):
    client = logged_in(panel, "ana")
    ana = socket(panel, client)
    change(panel.users)  # as `callcenter users ...` does from another process: only the database changes
    panel.app.extensions["cc_panel"].sockets.sweep()
    assert not ana.is_connected()
    assert client.get("/agent").status_code == 302 and client.get("/wallboard").status_code == 302


def test_pages_speak_the_users_language(panel):
    bruno = logged_in(panel, "bruno").get("/agent").get_data(as_text=True)
    ana = logged_in(panel, "ana").get("/agent").get_data(as_text=True)
    assert "Disponível" in bruno and "Available" in ana
    assert '<option value="lunch">Almoço</option>' in bruno and '<option value="lunch">Lunch</option>' in ana, "pause reasons too"
    assert '<option value="sale">Venda</option>' in bruno, "and dispositions"


def test_no_secret_reaches_the_browser(panel):
    page = logged_in(panel, "sue").get("/wallboard").get_data(as_text=True)
    assert "test-secret" not in page and "scrypt:" not in page, "neither the session key nor a password hash"


class Desk:
    """A fake ACD desk: keeps what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    async def move(self, call, queue):
        self.asked.append(("move", call.linkedid, queue))

    async def priority(self, call, priority):
        self.asked.append(("priority", call.linkedid, priority))


def test_a_supervisor_acts_only_on_the_queues_and_agents_they_supervise():
    board, desk = LiveBoard(), Desk()
    board.on_call(DomainEvent("queue_joined", "c1", 10.0, {"queue": "sales", "channel": "SIP/x-1"}))
    controls = Controls(lambda action: None, board, desk, DIRECTORY, lambda *a: True, lambda *a: None)
    sue = Who(2, "sue", "supervisor", "en", None, None, None, ("support",))
    boss = Who(3, "max", "supervisor", "en", None, None, None, ())
    with pytest.raises(Refused, match="agent 'bruno' works in none of the queues you supervise"):
        check(sue, "force", {"agent": "bruno", "action": "logout"}, DIRECTORY)
    assert check(sue, "force", {"agent": "ana", "action": "logout"}, DIRECTORY).values["agent"] == "ana"
    with pytest.raises(Refused, match="'sales' is not one you supervise"):
        asyncio.run(controls.run(check(sue, "priority", {"linkedid": "c1", "priority": 5}, DIRECTORY)))
    asyncio.run(controls.run(check(boss, "move", {"linkedid": "c1", "queue": "support"}, DIRECTORY)))
    assert desk.asked == [("move", "c1", "support")]
