"""`callcenter demo`: a whole call center on one machine.

The PBX simulator runs a sample day (from 08:00 in São Paulo, or from where
the last run stopped, so a second start continues the same day in the same
database) through the real dialplan of contrib/asterisk/, the IVR flows of
contrib/ivr/ (pt-BR and en), app_queue queues with simulated agents, and two
agents whose phones answer by themselves for people to log in as in the
browser. The engine (IVR, ACD, tracker), the CTI panel and the report jobs run
against it exactly as they would against Asterisk.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from callcenter.engine import Engine
from callcenter.wsgi import serve_panel
from cti_panel.notifier import Notifier
from cti_panel.server import PanelServer
from cti_panel.users import Users
from ivr.flow import Flow
from kernel import config
from kernel.db import CallStore
from kernel.models import Call, Customer, User
from pbx.client import ClientOptions
from pbx.simulator.dialplan import QueueConf
from pbx.simulator.server import ETC, SimulatorServer
from pbx.simulator.traffic import FIRST, LAST, TrafficModel, simulated_queues
from reports import jobs as report_jobs
from reports.metrics import Options

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Sao_Paulo")
QUEUES = ("support", "sales", "billing")
BROWSER_AGENTS = (("agente1", "Agente Um", "pt-BR", "2001"), ("agent2", "Agent Two", "en", "2002"))
DEMO_DIALPLAN = """
; The demo's additions: callers who pick a language, then a menu option, and
; the phones of the agents who log in from the browser (they answer by themselves).
[demo-callers]
exten => caller,1,Wait(${CALLER_THINK})
 same => n,SendDTMF(${CALLER_LANG})
 same => n,Wait(3)
 same => n,SendDTMF(${CALLER_DIGITS})
 same => n,PatientWait(${CALLER_PATIENCE})
 same => n,Hangup()

[demo-phones]
exten => _20XX,1,Wait(3)
 same => n,Answer()
 same => n,Wait(${SIM_DRAW(handle_time)})
 same => n,Hangup()

; The world outside, where contrib's dialplan sends the numbers agents dial (click-to-dial,
; transfers to a number, call backs): each answers after a few seconds and talks a while.
[globals]
CALLCENTER_TRUNK=Local
CALLCENTER_TRUNK_SUFFIX=@demo-world

[demo-world]
exten => _X.,1,Wait(${SIM_DRAW(answer_delay)})
 same => n,Answer()
 same => n,Wait(${SIM_DRAW(handle_time)})
 same => n,Hangup()
"""


@dataclass(frozen=True)
class Login:
    """A demo login to print."""

    login: str
    password: str
    role: str


def customers(count: int = 300, seed: int = 7) -> tuple[tuple[str, str], ...]:
    """Sample customers (number, name) the demo's callers are mostly drawn from, so pops show names."""
    import random

    rng = random.Random(seed)
    return tuple((f"55119{rng.randrange(10**8):08d}", f"{rng.choice(FIRST)} {rng.choice(LAST)}") for _ in range(count))


def prepare(store: CallStore, data_dir: Path) -> list[Login]:
    """Users and customers, created on the first run and kept; the logins' passwords live in data_dir/demo-logins.txt."""
    users = Users(store.sessions)
    saved = data_dir / "demo-logins.txt"
    with store.sessions() as s:
        known = set(s.scalars(select(User.login)))
    logins: list[Login] = []
    if saved.exists():
        for line in saved.read_text().splitlines():
            login, password, role = line.split("\t")
            logins.append(Login(login, password, role))
    wanted = [(name, label, lang, "agent", f"Local/{ext}@demo-phones/n", ext) for name, label, lang, ext in BROWSER_AGENTS]
    wanted += [
        ("supervisor", "Supervisora", "pt-BR", "supervisor", "Local/2090@demo-phones/n", "2090"),
        ("admin", "Admin", "en", "admin", None, None),
    ]
    for login, label, lang, role, interface, extension in wanted:
        if login in known:
            continue
        password = secrets.token_urlsafe(9)
        users.add(
            login,
            password,
            role,
            lang=lang,
            display_name=label,
            agent=login if role == "agent" else None,
            interface=interface,
            extension=extension,
        )
        logins = [entry for entry in logins if entry.login != login] + [Login(login, password, role)]
    data_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text("".join(f"{entry.login}\t{entry.password}\t{entry.role}\n" for entry in logins))
    saved.chmod(0o600)
    with store.sessions.begin() as s:
        if not s.scalar(select(func.count(Customer.id))):
            s.add_all(Customer(number=number, name=name, company=f"{name.split()[1]} Ltda") for number, name in customers())
    return logins


def day_start(store: CallStore, now: float, holidays: Iterable[date] = ()) -> float:
    """Where the simulated day starts: 08:00 in São Paulo of today, or of the last working day when today is a weekend or
    one of the IVR's holidays (its menu is closed then: the demo would have no calls in queues); or a minute after the
    last stored call of an earlier run."""
    closed = set(holidays)
    day = datetime.fromtimestamp(now, TZ).date()
    while day.weekday() >= 5 or day in closed:
        day -= timedelta(days=1)
    start = datetime.combine(day, dt_time(8, 0), TZ).timestamp()
    with store.sessions() as s:
        last = s.scalar(select(func.max(Call.ended_at)))
    return max(start, last.timestamp() + 60) if last is not None else start


def demo_queues(agents: int) -> dict[str, QueueConf]:
    """Support and sales as the simulator sets them up, and billing with a third of the agents."""
    queues = simulated_queues(agents)
    members = queues["support"].members
    queues["billing"] = QueueConf(
        "billing", strategy="leastrecent", timeout=15, retry=2, wrapuptime=5, servicelevel=30, members=members[1::3] or members[:1]
    )
    return queues


def settings_for_demo(settings: config.Settings) -> config.Settings:
    """The demo's queues on the wallboard (after-call work until the agent on the panel saves the disposition), its timezone,
    and a quarter of calls recorded, unless the config says otherwise."""
    queues = {q: settings.acd.queues.get(q, config.ACDQueue(wrapup_until_saved=True)) for q in QUEUES}
    acd = settings.acd.model_copy(update={"queues": queues})
    panel = settings.panel.model_copy(update={"timezone": "America/Sao_Paulo"})
    recordings = settings.recordings
    if not recordings.queues and recordings.default == config.RecordingPolicy():
        recordings = recordings.model_copy(update={"default": config.RecordingPolicy(mode="sample", sample_pct=25, agents_hear_own=True)})
    return settings.model_copy(update={"acd": acd, "panel": panel, "recordings": recordings})


class Demo:
    """The simulator, the engine, the panel and the report jobs, on one asyncio loop and the panel's threads."""

    def __init__(
        self,
        settings: config.Settings,
        store: CallStore,
        flows: list[Flow],
        *,
        agents: int,
        calls_per_minute: float,
        seed: int,
        speed: float,
        panel_port: int | None = None,
        out=None,
    ) -> None:
        self.settings = settings_for_demo(settings)
        self.store = store
        data_dir = Path(settings.paths.data_dir)
        self.logins = prepare(store, data_dir)
        dialplan = data_dir / "demo-extensions.conf"
        dialplan.write_text(
            (ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + "\n" + (ETC / "extensions.conf").read_text() + DEMO_DIALPLAN
        )
        secret = secrets.token_urlsafe(16)
        model = TrafficModel(
            calls_per_minute=calls_per_minute,
            entry="Local/08007770000@callcenter-inbound",
            caller_context="demo-callers",
            languages=(("1", 0.8), ("2", 0.2)),
            menu=(("1", 0.6), ("2", 0.3), ("", 0.1)),
            known_callers=customers(),
            known_share=0.7,
        )
        self.server = SimulatorServer(
            "demo",
            secret,
            speed=speed,
            dialplan=dialplan,
            recordings=Path(settings.paths.recordings),
            start_at=day_start(store, time.time(), {day for flow in flows for day in flow.holidays}),
        )
        self.server.configure(demo_queues(agents), model, seed)
        self.secret, self.flows, self.out, self.panel_port = secret, flows, out, panel_port
        self.notifier = Notifier()
        self.engine: Engine | None = None
        self.panel: PanelServer | None = None
        self.speed = speed

    async def run(self, minutes: float | None) -> None:
        """Run the day (for `minutes` of simulated time, or until cancelled); every call in progress is finished and stored."""
        port = await self.server.start(traffic=False)
        self.engine = Engine(
            self.settings,
            self.store,
            self.flows,
            self.notifier,
            options=ClientOptions("127.0.0.1", port, "demo", self.secret),
            out=self.out,
            clock=lambda: self.server.sim.now,
            pace=self.speed,
        )
        self.panel = serve_panel(self.engine, self.panel_port)
        print(self.banner(), flush=True)
        engine = asyncio.create_task(self.engine.run(heartbeat_every=max(0.2, 10.0 / self.speed)))
        stop_reports = asyncio.Event()
        reports = asyncio.create_task(
            report_jobs.schedule(
                self.store,
                Path(self.settings.paths.reports),
                Options(),
                TZ,
                stop_reports,
                clock=lambda: self.server.sim.now,
                poll=max(0.5, 60.0 / self.speed),
            )
        )
        try:
            await self.engine.client.connected.wait()
            await asyncio.sleep(0.2)
            self.server.traffic.start()
            if minutes is None:
                await asyncio.Event().wait()
            while self.server.sim.now < self.server.start_at + minutes * 60:
                await asyncio.sleep(0.05)
        finally:
            await self.finish(engine, reports, stop_reports)

    async def finish(self, engine: asyncio.Task, reports: asyncio.Task, stop_reports: asyncio.Event) -> None:
        """Stop new calls, let the ones in progress end (hurried along after a while), then stop everything in order."""
        self.server.traffic.stop()
        deadline = time.monotonic() + 30
        while self.server.sim.channels and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for channel in list(self.server.sim.channels.values()):
            self.server.sim.request_hangup(channel, soft=True, cause=16)
        assert self.engine is not None and self.panel is not None
        while self.engine.monitor.tracker.open_calls() and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.05)
        stop_reports.set()
        await asyncio.gather(reports, return_exceptions=True)
        engine.cancel()
        await asyncio.gather(engine, return_exceptions=True)
        await self.server.stop()
        self.panel.stop()

    def banner(self) -> str:
        """What to open and how to log in."""
        day = datetime.fromtimestamp(self.server.start_at, TZ).strftime("%Y-%m-%d %H:%M")
        lines = [
            f"Demo: a call center day from {day} (São Paulo) at {self.speed:g}x; calls go to {self.settings.database.url}",
            f"Panel: {self.panel.url if self.panel else '(not started)'}",
        ]
        lines += [f"  {entry.role:<10} {entry.login:<11} password {entry.password}" for entry in self.logins]
        lines.append("Agents: press Available to take calls. Ctrl-C stops (calls in progress are finished and stored).")
        return "\n".join(lines)
