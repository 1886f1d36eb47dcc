"""The simulator on a socket: an AMI server whose clock runs `speed` times faster than real time."""

from __future__ import annotations

import asyncio
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

from pbx.amiserver import AMIServer, Frames
from pbx.codec import Message
from pbx.simulator import actions
from pbx.simulator.app_queue import QueueEngine
from pbx.simulator.core import Sim
from pbx.simulator.dialplan import QueueConf, load_dialplan
from pbx.simulator.traffic import Traffic, TrafficModel, simulated_queues

ETC = Path(__file__).with_name("etc")


@dataclass
class SimulatorServer(AMIServer):
    """Asterisk's AMI, played by the simulator; with `timestamps` every event carries its sim time."""

    speed: float = 1.0
    timestamps: bool = True
    start_at: float = field(default_factory=time.time)
    queue_log_path: Path | None = None
    cdr_path: Path | None = None
    recordings: Path = Path("var/recordings")
    dialplan: Path = ETC / "extensions.conf"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.queue_log_lines: list[str] = []
        self.cdr_rows: list[list[str | int]] = []
        self.sim = Sim(load_dialplan(self.dialplan), start=self.start_at, emit=self._broadcast, queue_log=self._log, cdr=self._cdr)
        self.sim.recordings.folder = self.recordings
        self.traffic: Traffic | None = None
        self._began = time.monotonic()
        self._clock: asyncio.Task | None = None
        self.late_s = 0.0

    def configure(self, queues: dict[str, QueueConf], model: TrafficModel | None, seed: int = 1) -> None:
        """Set up queues and, if a model is given, the traffic that will call them."""
        QueueEngine(self.sim, queues)
        if model is not None:
            self.traffic = Traffic(self.sim, model, seed)

    def sim_now(self) -> float:
        """Where the sim clock should be now."""
        return self.start_at + (time.monotonic() - self._began) * self.speed

    async def start(self, host: str = "127.0.0.1", port: int = 0, traffic: bool = True) -> int:
        """Listen and start the clock, and the traffic unless told to wait (`traffic.start()` later)."""
        port = await super().start(host, port)
        self._began = time.monotonic()
        if self.traffic is not None and traffic:
            self.traffic.start()
        self._clock = asyncio.create_task(self._run_clock())
        return port

    async def stop(self) -> None:
        """Stop the clock and close every session."""
        if self._clock is not None:
            self._clock.cancel()
        await super().stop()

    async def _run_clock(self) -> None:
        while True:
            target = self.sim_now()
            due = self.sim.next_due()
            if due is not None and due <= target:
                self.late_s = max(self.late_s, target - due)
            self.sim.advance(target)
            await self.drain()
            due = self.sim.next_due()
            wait = 0.05 if due is None else min(0.05, max(0.0, (due - self.sim_now()) / self.speed))
            await asyncio.sleep(wait)

    def _broadcast(self, event: dict[str, str]) -> None:
        if self.timestamps:
            event = {
                "Event": event["Event"],
                "Privilege": event.get("Privilege", "call,all"),
                "Timestamp": f"{self.sim.now:.6f}",
                **{k: v for k, v in event.items() if k not in ("Event", "Privilege")},
            }
        self.send_event(event)

    def _log(self, line: str) -> None:
        self.queue_log_lines.append(line)
        if self.queue_log_path is not None:
            with open(self.queue_log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def _cdr(self, row: list[str | int]) -> None:
        self.cdr_rows.append(row)
        if self.cdr_path is not None:
            with open(self.cdr_path, "a", encoding="utf-8", newline="") as handle:
                csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerow(row)

    def now(self) -> float:
        """Sim time: what Asterisk's clock reads in the simulation."""
        return self.sim.now

    def handle(self, action: Message) -> Frames:
        """Bring the sim clock to now, then answer as Asterisk would."""
        self.sim.advance(self.sim_now())
        return actions.handle(self.sim, action)


def build(
    username: str,
    secret: str,
    *,
    agents: int = 10,
    model: TrafficModel | None = None,
    seed: int = 1,
    speed: float = 1.0,
    queue_log: Path | None = None,
    cdr: Path | None = None,
    recordings: Path = Path("var/recordings"),
    dialplan: Path | None = None,
) -> SimulatorServer:
    """A simulator with `agents` simulated phones in queues support and sales and, with a model, traffic; it writes its
    queue_log and CDR (Master.csv) where asked, as Asterisk does."""
    server = SimulatorServer(
        username,
        secret,
        speed=speed,
        queue_log_path=queue_log,
        cdr_path=cdr,
        recordings=recordings,
        dialplan=dialplan or ETC / "extensions.conf",
    )
    server.configure(simulated_queues(agents), model, seed)
    return server


def truth(server: SimulatorServer) -> str:
    """The simulator's own count of what happened (calls generated, answered and abandoned per queue), to check reports against."""
    generated = server.traffic.generated["calls"] if server.traffic else 0
    per_queue = "; ".join(f"{q.conf.name}: {q.completed} answered, {q.abandoned} abandoned" for q in server.sim.queues.queues.values())
    return f"Simulator: {generated} calls generated; {per_queue}"
