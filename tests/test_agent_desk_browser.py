"""The agent's desk in headless Chromium, at 1366x768 and on a phone, in English and Portuguese: a call through hold, a lost
connection, after-call work and the wrap-up; the ringing call, Available only off a call, a pause asked for during a call,
the record buttons, the transfer picker's live colleagues, and the timers' pace after a reload; screenshots for review go
to var/screenshots/agent-desk/."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

import tests.test_panel_browser as harness
from callcenter.engine import Engine
from cti_panel.i18n import catalog, message
from kernel import config
from kernel.models import Wrapup
from pbx.simulator.core import STATE_DESC
from pbx.simulator.server import SimulatorServer
from tests.realpbx import submit_request
from tests.test_panel_browser import PASSWORD, CallCenter, log_in
from tests.waiting import until

SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots" / "agent-desk"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits(page) -> bool:
    """Nothing wider than the screen (no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_an_agent_works_a_call_through_hold_a_lost_connection_and_after_call_work(tmp_path, browser):
    center = CallCenter(tmp_path, support=config.ACDQueue(wrapup_until_saved=True))
    try:
        agent = log_in(browser, center.panel.url, "ana")
        agent.set_viewport_size({"width": 1366, "height": 768})
        agent.wait_for_selector("#state:text-is('Logged out')")
        agent.wait_for_selector("#dial:enabled", timeout=10_000)  # connected: until then every button waits
        assert agent.is_disabled("#hangup") and agent.is_disabled("#hold"), "no call: no call controls"
        assert agent.is_enabled("#dial")
        shot(agent, "01-logged-out-en")

        agent.click("#go-available")
        agent.wait_for_selector("#state:text-is('Available')", timeout=10_000)
        center.call("5511977776666")
        agent.wait_for_selector("#pop-name:text-is('Maria Silva')", timeout=15_000)
        agent.wait_for_selector("#call-state:text-is('5511977776666')", timeout=10_000)
        agent.wait_for_function("document.getElementById('call-timer').textContent.length > 0", timeout=10_000)
        assert agent.is_enabled("#hangup") and agent.is_disabled("#dial"), "on a call: call controls, no dialling"
        assert agent.text_content("#state") == "On call" and fits(agent)
        shot(agent, "02-on-call-en")

        agent.keyboard.press("Alt+o")
        agent.wait_for_selector("#hold-timer:not([hidden])", timeout=10_000)
        assert agent.is_visible("#unhold") and not agent.is_visible("#hold")
        shot(agent, "03-on-hold-en")
        agent.click("#unhold")
        agent.wait_for_selector("#hold-timer", state="hidden", timeout=10_000)

        sockets = center.panel.server.app.extensions["cc_panel"].sockets
        [sid] = sockets.of_user(next(u.id for u in center.users.list() if u.login == "ana"))
        center.panel.server.app.extensions["socketio"].server.disconnect(sid, namespace="/")
        agent.wait_for_selector("#offline:not([hidden])", timeout=5_000)
        assert agent.is_disabled("#hangup"), "offline: actions blocked"
        shot(agent, "04-offline-en")
        agent.wait_for_selector("#offline", state="hidden", timeout=10_000)
        agent.wait_for_selector("#hangup:enabled", timeout=5_000)
        assert agent.text_content("#call-state") == "5511977776666", "back online, the screen resynced with the call"

        agent.keyboard.press("Alt+h")
        form = "#wrapups .wrapup"
        agent.wait_for_selector(f"{form} .what:text-is('5511977776666 · support')", timeout=15_000)
        agent.wait_for_selector("#state:text-is('Wrap-up')", timeout=10_000)
        agent.click("#go-available")
        agent.wait_for_selector("#message:has-text('Save the wrap-up of your last call first')", timeout=10_000)
        agent.fill(f"{form} .notes", "Segunda via enviada")
        shot(agent, "05-wrap-up-en")
        agent.keyboard.press("Alt+s")
        agent.wait_for_selector(form, state="detached", timeout=10_000)
        agent.wait_for_selector("#state:text-is('Available')", timeout=10_000)
        with center.store.sessions() as s:
            [saved] = s.scalars(select(Wrapup))
        assert (saved.agent, saved.disposition, saved.notes) == ("ana", "resolved", "Segunda via enviada")

        agent.set_viewport_size({"width": 390, "height": 844})
        assert fits(agent), "usable on a phone"
        shot(agent, "06-phone-en")

        center.users.set_lang("ana", "pt-BR")
        agent.set_viewport_size({"width": 1366, "height": 768})
        agent.reload()
        agent.wait_for_selector("#state:text-is('Disponível')", timeout=10_000)
        assert agent.text_content("#go-logout") == "Sair das filas", "leaving the queues is not logging out of the panel"
        assert agent.text_content(".who") == "ana (agente)"
        agent.fill("#dial-number", "5511955554444")
        agent.click("#dial")
        agent.wait_for_selector("#message:text-is('Seu telefone atendeu: ligando para 5511955554444.')", timeout=15_000)
        shot(agent, "07-dialled-pt-BR")
        until(lambda: center.engine.board.call_of("ana") is None, 15, "the dialled call over")
    finally:
        center.stop()


# More of the PBX for the desk's own tests: the world outside (click-to-dial and transfers to a number reach it, as in the
# demo), and phones that ring a while before answering.
DESK_DIALPLAN = """
[globals]
CALLCENTER_TRUNK=Local
CALLCENTER_TRUNK_SUFFIX=@e2e-world

[e2e-world]
exten => _55119990XXXX,1,Busy(5)
exten => _X.,1,Wait(2)
 same => n,Answer()
 same => n,Wait(40)
 same => n,Hangup()

[e2e-desk]
exten => 2101,1,Wait(5)
 same => n,Answer()
 same => n,Wait(60)
 same => n,Hangup()
exten => 2102,1,Wait(1)
 same => n,Answer()
 same => n,Wait(60)
 same => n,Hangup()
"""


@pytest.fixture
def desk_pbx(monkeypatch):
    monkeypatch.setattr(harness, "PHONES", harness.PHONES + DESK_DIALPLAN)


def on_a_call(browser, center: CallCenter, login: str, number: str, t: dict[str, str]):
    """The agent's screen at 1366x768, available, then on a call from `number`."""
    page = log_in(browser, center.panel.url, login)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_selector("#go-available:enabled", timeout=10_000)
    page.click("#go-available")
    page.wait_for_selector(f"#state:text-is('{t['available']}')", timeout=10_000)
    center.call(number)
    page.wait_for_selector(f"#call-state:text-is('{number}')", timeout=15_000)
    return page


def state_of(center: CallCenter, agent: str) -> str | None:
    row = center.engine.board.agents.get(agent)
    return row.state if row else None


@pytest.mark.parametrize("lang", ["en", "pt-BR"])
def test_the_card_shows_the_ringing_call_and_available_waits_for_the_call_to_end(tmp_path, browser, desk_pbx, lang):
    t = catalog(lang)
    center = CallCenter(tmp_path)
    center.users.add(
        "bia", PASSWORD, "agent", lang=lang, agent="bia", interface="Local/2101@e2e-desk/n", extension="2101", queues=["support"]
    )
    try:
        agent = log_in(browser, center.panel.url, "bia")
        agent.set_viewport_size({"width": 1366, "height": 768})
        agent.wait_for_selector("#go-available:enabled", timeout=10_000)  # logged out: Available applies (once the view came)
        agent.click("#go-available")
        agent.wait_for_selector(f"#state:text-is('{t['available']}')", timeout=10_000)
        assert agent.is_disabled("#go-available"), "already available"

        center.call("5511977776666")
        agent.wait_for_selector(f"#call-label:text-is('{t['ringing']}')", timeout=15_000)
        agent.wait_for_selector("#call-state:text-is('5511977776666 · support')", timeout=10_000)
        agent.wait_for_selector("#pop-name:text-is('Maria Silva')", timeout=10_000)
        assert agent.is_disabled("#go-available") and agent.is_disabled("#dial"), "ringing: no Available, no dialling"
        assert agent.is_disabled("#hangup"), "ringing: not answered yet"
        shot(agent, f"10-ringing-{lang}")

        agent.wait_for_selector("#call-state:text-is('5511977776666')", timeout=15_000)
        assert agent.is_hidden("#call-label") and agent.is_disabled("#go-available")
        agent.keyboard.press("Alt+a")  # a disabled button's shortcut does nothing
        agent.select_option("#pause-reason", "lunch")
        agent.keyboard.press("Alt+p")
        agent.wait_for_selector(f"#pause-after:text-is('{t['pause_after']}: {t['code.lunch']}')", timeout=10_000)
        assert agent.text_content("#state") == t["on_call"] and state_of(center, "bia") == "on_call", "still on the call"
        shot(agent, f"11-pause-after-this-call-{lang}")
        agent.reload()  # the pause to come is the server's word: a reloaded screen still says it
        agent.wait_for_selector(f"#pause-after:text-is('{t['pause_after']}: {t['code.lunch']}')", timeout=10_000)
        agent.wait_for_selector("#call-state:text-is('5511977776666')", timeout=10_000)

        # The call is being recorded (this center records every call): only the record button that applies, and the PBX's
        # pause and resume of the recording followed.
        agent.wait_for_selector(f"#rec-state:text-is('{t['recording_on']}')", timeout=10_000)
        assert agent.is_disabled("#rec-start") and agent.is_enabled("#rec-pause") and agent.is_disabled("#rec-resume")
        shot(agent, f"12-recording-{lang}")
        agent.click("#rec-pause")
        agent.wait_for_selector(f"#rec-state:text-is('{t['recording_paused']}')", timeout=10_000)
        assert agent.is_disabled("#rec-start") and agent.is_disabled("#rec-pause") and agent.is_enabled("#rec-resume")
        agent.click("#rec-resume")
        agent.wait_for_selector(f"#rec-state:text-is('{t['recording_on']}')", timeout=10_000)

        # On a phone: the same buttons and shortcuts.
        agent.set_viewport_size({"width": 390, "height": 844})
        assert fits(agent), "usable on a phone"
        assert agent.is_disabled("#go-available") and agent.is_enabled("#hangup") and agent.is_disabled("#dial")
        agent.keyboard.press("Alt+o")
        agent.wait_for_selector("#hold-timer:not([hidden])", timeout=10_000)
        shot(agent, f"13-phone-on-hold-{lang}")
        agent.keyboard.press("Alt+o")
        agent.wait_for_selector("#hold-timer", state="hidden", timeout=10_000)
        agent.set_viewport_size({"width": 1366, "height": 768})

        # The call ends: the pause asked for begins (no after-call work in this queue), and Available applies again.
        agent.keyboard.press("Alt+h")
        agent.wait_for_selector("#wrapups .wrapup", timeout=15_000)
        agent.wait_for_selector(f"#state:text-is('{t['paused']}')", timeout=10_000)
        assert agent.text_content("#reason") == t["code.lunch"] and agent.is_hidden("#pause-after")
        agent.wait_for_selector("#go-available:enabled", timeout=5_000)

        # Click-to-dial while paused: Available is off from the click to the call's end (it would unpause the agent).
        agent.fill("#dial-number", "5511955554444")
        agent.click("#dial")
        agent.wait_for_selector(f"#call-label:text-is('{t['dialling']}')", timeout=5_000)
        assert agent.text_content("#call-state") == "5511955554444" and agent.is_disabled("#go-available")
        shot(agent, f"14-dialling-{lang}")
        agent.wait_for_selector("#call-state:text-is('5511955554444')", timeout=20_000)
        agent.wait_for_selector("#hangup:enabled", timeout=10_000)
        assert agent.is_hidden("#call-label") and agent.is_disabled("#go-available")
        agent.keyboard.press("Alt+a")
        agent.keyboard.press("Alt+o")  # a later request: once it is answered, an Available before it would have been too
        agent.wait_for_selector("#hold-timer:not([hidden])", timeout=10_000)
        assert state_of(center, "bia") == "paused" and agent.text_content("#state") == t["paused"], "still paused on the dialled call"
        agent.set_viewport_size({"width": 390, "height": 844})
        assert fits(agent)
        shot(agent, f"15-phone-dialled-call-{lang}")
        agent.set_viewport_size({"width": 1366, "height": 768})
        agent.click("#unhold")
        agent.wait_for_selector("#hold-timer", state="hidden", timeout=10_000)
        agent.click("#hangup")
        agent.wait_for_selector(f"#call-state:text-is('{t['no_call']}')", timeout=15_000)
        agent.wait_for_selector("#go-available:enabled", timeout=5_000)
        until(lambda: center.engine.board.call_of("bia") is None, 15, "the dialled call over")

        # A number that is busy: said, in her language, and the card is free again at once.
        agent.fill("#dial-number", "551199900001")
        agent.click("#dial")
        busy = t["far_busy"].replace("{number}", "551199900001")
        agent.wait_for_selector(f"#message:text-is('{busy}')", timeout=20_000)
        agent.wait_for_selector(f"#call-state:text-is('{t['no_call']}')", timeout=5_000)
        assert agent.is_enabled("#dial")
    finally:
        center.stop()


def test_the_transfer_picker_follows_colleagues_and_offers_only_those_free(tmp_path, browser, desk_pbx, lang="en"):
    """In English (the transfer from the screen is also run in Portuguese, below)."""
    t = catalog(lang)
    center = CallCenter(tmp_path)
    center.users.set_lang("ana", lang)
    center.users.add(
        "bob", PASSWORD, "agent", lang=lang, agent="bob", interface="Local/2102@e2e-desk/n", extension="2102", queues=["support"]
    )
    bob_option = "#xfer-target option[data-agent=bob]"
    try:
        bob = log_in(browser, center.panel.url, "bob")
        bob.wait_for_selector("#go-available:enabled", timeout=10_000)
        bob.click("#go-available")
        bob.wait_for_selector(f"#state:text-is('{t['available']}')", timeout=10_000)
        center.call("5511911112222")
        bob.wait_for_selector("#call-state:text-is('5511911112222')", timeout=15_000)

        agent = on_a_call(browser, center, "ana", "5511977776666", t)
        agent.wait_for_selector(f"{bob_option}:disabled", state="attached", timeout=10_000)
        assert agent.text_content(bob_option) == f"bob ({t['on_call']})", "a busy colleague, shown as such"
        assert agent.input_value("#xfer-target") == "agent:bob" and agent.is_disabled("#xfer-blind"), "and not a target"
        assert agent.is_enabled("#xfer-target") and agent.is_enabled("#hangup")
        shot(agent, f"20-transfer-picker-busy-{lang}")

        bob.click("#hangup")  # bob is free again: ana's picker says so when she opens it
        until(lambda: state_of(center, "bob") == "available", 10, "bob free")
        agent.focus("#dial-number")
        agent.focus("#xfer-target")
        agent.wait_for_selector(f"{bob_option}:not(:disabled)", state="attached", timeout=10_000)
        assert agent.text_content(bob_option) == f"bob ({t['available']})"
        agent.wait_for_selector("#xfer-blind:enabled", timeout=5_000)
        shot(agent, f"21-transfer-picker-free-{lang}")

        bob.select_option("#pause-reason", "break")
        bob.click("#go-pause")
        until(lambda: state_of(center, "bob") == "paused", 10, "bob on a break")
        agent.focus("#dial-number")
        agent.focus("#xfer-target")
        agent.wait_for_selector(f"{bob_option}:disabled", state="attached", timeout=10_000)
        assert agent.text_content(bob_option) == f"bob ({t['paused']})" and agent.is_disabled("#xfer-blind")
        bob.click("#go-available")
        until(lambda: state_of(center, "bob") == "available", 10, "bob back")
        agent.focus("#dial-number")
        agent.focus("#xfer-target")
        agent.wait_for_selector("#xfer-blind:enabled", timeout=10_000)

        agent.click("#xfer-blind")
        bob.wait_for_selector("#call-state:text-is('5511977776666')", timeout=15_000)
        agent.wait_for_selector("#wrapups .wrapup", timeout=10_000)
        assert state_of(center, "bob") == "on_call"
        shot(bob, f"22-transferred-to-a-colleague-{lang}")
    finally:
        center.stop()


def test_timers_keep_the_pbx_pace_after_a_reload(tmp_path, browser, monkeypatch):
    """The demo's PBX runs its day 10x faster: a reloaded screen's timers go on at that pace at once (the pace measured
    before the reload, or the server's, when a payload carries `pace`), not at 1x for the first seconds."""
    made: dict[str, SimulatorServer] = {}

    def fast_pbx(*args, **kwargs):
        made["pbx"] = SimulatorServer(*args, **{**kwargs, "speed": 10})
        return made["pbx"]

    monkeypatch.setattr(harness, "SimulatorServer", fast_pbx)
    monkeypatch.setattr(harness, "Engine", lambda *args, **kwargs: Engine(*args, clock=lambda: made["pbx"].sim.now, pace=10.0, **kwargs))
    center = CallCenter(tmp_path)

    def seconds_in_state(page) -> int:
        parts = [int(p) for p in page.text_content("#state-time").split(":")]
        return sum(p * 60**i for i, p in enumerate(reversed(parts)))

    def pbx_pace(page) -> float:
        """The PBX seconds the state's timer counts in 2 s here."""
        page.wait_for_function("document.getElementById('state-time').textContent.length > 0", timeout=10_000)
        began, counted = time.monotonic(), seconds_in_state(page)
        page.wait_for_timeout(2000)
        return (seconds_in_state(page) - counted) / (time.monotonic() - began)

    try:
        agent = log_in(browser, center.panel.url, "ana")
        agent.wait_for_selector("#go-available:enabled", timeout=10_000)
        agent.click("#go-available")
        agent.wait_for_selector("#state:text-is('Available')", timeout=10_000)
        agent.click("#go-pause")
        agent.wait_for_selector("#state:text-is('Paused')", timeout=10_000)
        agent.reload()
        agent.wait_for_selector("#state:text-is('Paused')", timeout=10_000)
        assert 6 < pbx_pace(agent) < 16, "at the PBX's pace from the start (the server's view says it)"
        shot(agent, "30-pace-after-reload-en")
    finally:
        center.stop()


def test_attended_transfer_to_a_colleague_and_blind_to_a_number_from_the_screen(tmp_path, browser, desk_pbx):
    """Ana (in Portuguese) consults bob, then completes: bob has the caller, she the wrap-up form; her next caller she
    sends to an outside number. Every step said as the PBX confirmed it."""
    t = catalog("pt-BR")
    center = CallCenter(tmp_path)
    center.users.set_lang("ana", "pt-BR")
    center.users.add("bob", PASSWORD, "agent", agent="bob", interface="Local/2102@e2e-desk/n", extension="2102", queues=["support"])
    try:
        submit_request(center.users, center.engine, "bob", "state", {"state": "pause", "reason": "break"})
        until(lambda: state_of(center, "bob") == "paused", 10, "bob at work, on a break")
        agent = on_a_call(browser, center, "ana", "5511977776666", t)
        agent.wait_for_selector("#hangup:enabled", timeout=10_000)
        submit_request(center.users, center.engine, "bob", "state", {"state": "available"})
        agent.focus("#xfer-target")  # the picker, fresh: bob is free
        agent.wait_for_selector("#xfer-target option[data-agent=bob]:not(:disabled)", state="attached", timeout=10_000)

        agent.select_option("#xfer-target", "agent:bob")
        agent.click("#xfer-attended")
        agent.wait_for_selector(f"#message:text-is('{message('pt-BR', 'consulting', {'target': 'bob'}, '')}')", timeout=15_000)
        agent.wait_for_selector("#xfer-complete:enabled", timeout=10_000)
        assert agent.is_enabled("#xfer-cancel") and agent.is_disabled("#xfer-attended"), "consulting: complete or cancel"
        shot(agent, "40-consulting-pt-BR")
        sim = center.server.sim
        until(
            lambda: any(c.name.startswith("Local/2102@e2e-desk") and STATE_DESC[c.state] == "Up" for c in list(sim.channels.values())),
            10,
            "bob answered the consultation",
        )
        agent.click("#xfer-complete")
        agent.wait_for_selector(f"#message:text-is('{message('pt-BR', 'transferred', {}, '')}')", timeout=15_000)
        agent.wait_for_selector("#wrapups .wrapup", timeout=10_000)
        until(lambda: (c := center.engine.board.call_of("bob")) is not None and c.number == "5511977776666", 15, "bob has the caller")
        shot(agent, "41-attended-done-pt-BR")

        center.call("5511955554444")
        agent.wait_for_selector("#call-state:text-is('5511955554444')", timeout=20_000)
        agent.wait_for_selector("#hangup:enabled", timeout=10_000)
        agent.select_option("#xfer-target", "number:")
        agent.fill("#xfer-number", "5511933332222")
        agent.click("#xfer-blind")
        agent.wait_for_selector(f"#message:text-is('{message('pt-BR', 'transferred', {}, '')}')", timeout=15_000)
        agent.wait_for_selector("#wrapups .wrapup >> nth=1", timeout=10_000)
        until(
            lambda: any(c.name.startswith("Local/5511933332222@e2e-world") for c in list(center.server.sim.channels.values())),
            15,
            "the caller goes on to the number",
        )
        shot(agent, "42-blind-to-a-number-pt-BR")
    finally:
        center.stop()


def test_a_supervisor_forces_a_pause_with_the_reason_she_chose(tmp_path, browser):
    """The wallboard's forced pause takes one of the configured reasons, chosen above the table (not always 'coaching')."""
    t = catalog("pt-BR")
    center = CallCenter(tmp_path)
    try:
        submit_request(center.users, center.engine, "ana", "state", {"state": "available"})
        until(lambda: state_of(center, "ana") == "available", 10, "ana available")
        boss = log_in(browser, center.panel.url, "sue")
        boss.wait_for_selector("#agents tbody tr[data-agent=ana]", timeout=10_000)
        boss.select_option("#force-reason", "lunch")
        boss.click(f"#agents tbody tr[data-agent=ana] button:text-is('{t['force_pause']}')")
        until(lambda: state_of(center, "ana") == "paused", 10, "ana paused by her supervisor")
        assert center.engine.board.agents["ana"].reason == "lunch"
        boss.wait_for_selector("#agents tbody tr[data-agent=ana] td.state-paused", timeout=10_000)
        boss.click(f"#agents tbody tr[data-agent=ana] button:text-is('{t['force_pause']}')")
        boss.wait_for_selector("#message:not(:empty)", timeout=10_000)
        assert boss.locator("#message").bounding_box()["y"] < boss.locator("#agents").bounding_box()["y"], (
            "the answer is said above the agents, where she is looking, not below the chart"
        )
        shot(boss, "50-forced-pause-pt-BR")

        # Nobody free: a caller waits, and the longest wait ticks on the wallboard with no news from the server.
        center.call("5511977776666")
        longest = "#queues [data-queue=support] dd[data-key=longest]"
        shown = lambda: int(boss.text_content(longest).split()[0])  # noqa: E731
        first = until(lambda: shown() >= 1 and shown(), 10, "the caller's wait on the wallboard")
        until(lambda: shown() >= first + 2, 10, "the longest wait ticking")
        assert center.engine.board.queues["support"].waiting, "still waiting: the figure moved on by itself"
    finally:
        center.stop()
