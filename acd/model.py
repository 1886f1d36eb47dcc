"""The ACD's data: agents with states and skills, waiting callers, queue settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from kernel.values import AgentState


@dataclass
class Agent:
    """A person who answers calls, bound to a phone interface while logged in."""

    id: str
    interface: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    queues: set[str] = field(default_factory=set)
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    reason: str | None = None
    pause_after: str | None = None  # a pause asked for during a call: taken when the call ends
    calls_taken: int = 0
    idle_since: float = 0.0
    missed: int = 0
    caller: str | None = None
    call_queue: str = ""
    wrap_until: float = 0.0
    wrap_call: str | None = None  # the caller of the call whose after-call work this is
    wrap_needs_save: bool = False  # after-call work that ends when the disposition is saved
    wrap_saved: bool = False  # the disposition of the call in progress is already saved
    wraps_up: bool = False  # logged in from the panel: can save a disposition
    busy_elsewhere: bool = False  # on a call the ACD did not give them (a transfer to their phone, their click-to-dial)


@dataclass
class Caller:
    """A call waiting for an agent."""

    id: str
    queue: str
    enqueued_at: float
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    ringing: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)
    next_try: float = 0.0
    announced_at: float = 0.0
    seq: int = 0
    callback: bool = False


@dataclass(frozen=True)
class QueueSettings:
    """How one queue behaves."""

    name: str
    strategy: str = "longest_idle"
    max_length: int = 0
    max_wait_s: float = 0.0
    overflow: str = "hangup"
    overflow_target: str = ""
    announce_every_s: float = 0.0
    music_class: str = "default"
    service_level_s: float = 20.0
    wrapup_s: float = 0.0
    wrapup_until_saved: bool = False
    ring_timeout_s: float = 15.0
    retry_s: float = 2.0
    autopause_after: int = 0
    widen_after_s: float = 0.0
    callback_key: str = ""
    callback_context: str = "callcenter-callback"
