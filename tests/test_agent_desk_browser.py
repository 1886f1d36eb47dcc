"""The agent's desk in headless Chromium, at 1366x768 and on a phone, in English and Portuguese: a call through hold, a lost
connection, after-call work and the wrap-up; screenshots for review go to var/screenshots/agent-desk/."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from kernel import config
from kernel.models import Wrapup
from tests.test_panel_browser import CallCenter, log_in
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
