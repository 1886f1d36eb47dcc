"""End to end in headless Chromium: the simulator, the engine and the panel on 127.0.0.1, an agent and a supervisor in a browser."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from flask_socketio import SocketIO
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from callcenter.engine import Engine
from cti_panel.app import create_app
from cti_panel.notifier import Notifier
from cti_panel.server import PanelServer
from cti_panel.users import Users
from kernel import config
from kernel.db import CallStore, make_engine, migrate
from kernel.models import Customer, Wrapup
from pbx.client import ClientOptions
from pbx.codec import Message
from pbx.simulator.app_queue import QueueConf
from pbx.simulator.server import SimulatorServer
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
PHONES = """
[e2e-phones]
exten => 2002,1,Wait(2)
 same => n,Answer()
 same => n,Wait(30)
 same => n,Hangup()

exten => 2003,1,Wait(1)
 same => n,Answer()
 same => n,Wait(4)
 same => n,Hangup()

exten => 2009,1,Wait(60)
 same => n,Hangup()

exten => 1900,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()

[callers]
exten => optout,1,Wait(1)
 same => n,SendDTMF(8)
 same => n,Wait(120)
 same => n,Hangup()
exten => patient,1,Wait(1)
 same => n,Wait(120)
 same => n,Hangup()
"""
REDIS_DB = 7


class GunicornWorker:
    """A production panel worker: gunicorn running `callcenter.wsgi:create()` in its own process, reaching the engine through Redis."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        conf = tmp_path / "worker.toml"
        conf.write_text(f"""
[database]
url = "sqlite:///{tmp_path}/e2e.db"
[panel]
secret_key = "e2e-worker"
message_queue = "{redis_url}"
[paths]
data_dir = "{tmp_path}/var"
[acd.queues.support]
""")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp_path / "gunicorn.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "-w",
                    "1",
                    "--threads",
                    "20",
                    "--graceful-timeout",
                    "2",
                    "-b",
                    f"127.0.0.1:{port}",
                    "callcenter.wsgi:create()",
                ],
                cwd=ROOT,
                env={**os.environ, "CALLCENTER_CONFIG": str(conf)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.url}/login", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not serve the panel: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


class CallCenter:
    """Simulator + engine on an asyncio loop in a thread, the panel on another, all on loopback."""

    def __init__(
        self,
        tmp_path: Path,
        redis_url: str | None = None,
        recordings: config.RecordingSettings | None = None,
        flows: list | None = None,
        support: config.ACDQueue | None = None,
        dial_ring_s: float = 30.0,
    ) -> None:
        dialplan = tmp_path / "extensions.conf"
        dialplan.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + PHONES)
        self.server = SimulatorServer("cti", "pw", speed=1, dialplan=dialplan, recordings=tmp_path)
        self.server.configure({"support": QueueConf("support", members=[])}, None)
        engine = make_engine(f"sqlite:///{tmp_path}/e2e.db")
        migrate(engine)
        self.store = CallStore(engine)
        users = Users(sessionmaker(engine, expire_on_commit=False))
        users.add("ana", PASSWORD, "agent", agent="ana", interface="Local/2002@e2e-phones/n", extension="2002", queues=["support"])
        users.add("sue", PASSWORD, "supervisor", lang="pt-BR", interface="Local/1900@e2e-phones/n")
        self.users = users
        with self.store.sessions.begin() as s:
            s.add(Customer(number="5511977776666", name="Maria Silva", company="Padaria Aurora"))
        self.settings = config.Settings(
            acd=config.ACDSettings(queues={"support": support or config.ACDQueue()}),
            panel=config.PanelSettings(message_queue=redis_url, dial_ring_s=dial_ring_s),
            recordings=recordings or config.RecordingSettings(),
            paths=config.PathSettings(data_dir=str(tmp_path / "var"), recordings=str(tmp_path / "spool")),
        )
        self.notifier = Notifier(SocketIO(message_queue=redis_url)) if redis_url else Notifier()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.engine = Engine(
            self.settings, self.store, flows or [], self.notifier, options=ClientOptions("127.0.0.1", port, "cti", "pw"), out=None
        )
        resynced = threading.Event()
        on_resync = self.engine.client.on_resync
        assert on_resync is not None

        async def resync_then_signal(snapshot) -> None:
            await on_resync(snapshot)
            resynced.set()

        self.engine.client.on_resync = resync_then_signal
        self.running = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        assert resynced.wait(10), "the engine logged in to the simulator and resynced"
        if redis_url:
            self.panel: PanelServer | GunicornWorker = GunicornWorker(tmp_path, redis_url)
        else:
            app = create_app(users, self.engine, self.engine.directory, secret_key="e2e", library=self.engine.library)
            self.notifier.init_app(app.extensions["socketio"])
            self.panel = PanelServer(app).start()

    def call(self, number: str, script: str = "patient", entry: str = "Local/support@callcenter-queues") -> None:
        """A caller dials in (straight into the support queue unless told)."""
        self.loop.call_soon_threadsafe(
            self.server.handle,
            Message([("Action", "Originate"), ("Channel", entry), ("Context", "callers"), ("Exten", script), ("CallerID", f"<{number}>")]),
        )

    async def _start(self) -> asyncio.Task:
        return asyncio.create_task(self.engine.run())

    async def _halt(self) -> None:
        self.running.cancel()
        await asyncio.gather(self.running, return_exceptions=True)
        await self.server.stop()

    def talk(self, seconds: float) -> None:
        """Let the call in progress go on for `seconds` of the PBX's clock (what its records and recordings measure)."""
        began = self.server.sim_now()
        until(lambda: self.server.sim_now() - began >= seconds, seconds + 10, f"{seconds:g} s of talk")

    def stop(self) -> None:
        self.panel.stop()
        asyncio.run_coroutine_threadsafe(self._halt(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(params=["embedded", "redis"])
def setup(request):
    """Embedded: one process, the engine calls the panel directly. Redis: the panel is a gunicorn worker process, Redis carries both ways."""
    if request.param == "embedded":
        return None
    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379: the multi-worker path needs it")
    return url


def log_in(browser, url: str, login: str):
    page = browser.new_context().new_page()
    page.goto(f"{url}/login")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    return page


def test_agent_gets_the_pop_and_the_wallboard_follows_the_call(tmp_path, browser, setup):
    center = CallCenter(tmp_path, setup)
    try:
        agent = log_in(browser, center.panel.url, "ana")
        agent.wait_for_selector("text=Logged out")
        boss = log_in(browser, center.panel.url, "sue")
        boss.wait_for_selector("#agents")
        assert "Painel" in boss.content() or "Agentes" in boss.content(), "the supervisor reads Portuguese"

        center.call("5511977776666")
        boss.wait_for_selector("article[data-queue=support] dd[data-key=waiting]:text-is('1')", timeout=15_000)

        agent.click("#go-available")
        agent.wait_for_selector("#state:text-is('Available')", timeout=10_000)
        agent.wait_for_selector("#pop-name:text-is('Maria Silva')", timeout=15_000)
        assert agent.text_content("#pop-company") == "· Padaria Aurora"
        assert agent.text_content("#pop-number") == "5511977776666"

        boss.wait_for_selector("article[data-queue=support] dd[data-key=answered]:text-is('1')", timeout=15_000)
        assert boss.text_content("article[data-queue=support] dd[data-key=waiting]") == "0"
        boss.wait_for_selector("tr[data-agent=ana] td.state-on_call", timeout=10_000)
        assert boss.locator("#chart svg rect").count() >= 1, "today's chart has this quarter-hour's bar"
        agent.wait_for_selector("#call-state:text-is('5511977776666')", timeout=10_000)

        agent.click("#hangup")
        form = "#wrapups .wrapup"
        agent.wait_for_selector(f"{form} .what:text-is('5511977776666 · support')", timeout=15_000)
        agent.select_option(f"{form} .disposition", "resolved")
        agent.fill(f"{form} .notes", "Pediu segunda via")
        agent.click(f"{form} .save")
        agent.wait_for_selector("#message:text-is('Saved')", timeout=10_000)
        assert agent.locator(form).count() == 0, "the saved form goes away"
        [call] = center.store.calls()
        with center.store.sessions() as s:
            [wrapup] = s.scalars(select(Wrapup))
        assert (call.agent, call.outcome) == ("ana", "answered")
        assert (wrapup.linkedid, wrapup.agent, wrapup.disposition, wrapup.notes) == (call.linkedid, "ana", "resolved", "Pediu segunda via")
    finally:
        center.stop()
