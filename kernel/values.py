"""The words every package uses about a call and an agent, one enum each so a typo is a type error and not a lost call.

They are `StrEnum`s: stored, printed and compared as the plain strings the records, the database and the README use.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How a call ended (a finished call's `outcome`), or why a caller left a queue (a `queue_left` event's `reason`)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    EXIT_KEY = "exit_key"
    EXIT_EMPTY = "exit_empty"
    FULL = "full"
    MOVED = "moved"
    LEFT_QUEUE = "left_queue"
    IVR_ONLY = "ivr_only"
    OUTBOUND = "outbound"
    SUPERVISION = "supervision"
    CALLBACK = "callback"
    ANSWERED_DIRECT = "answered_direct"  # a CDR-only call (no queue) that was answered
    UNANSWERED_DIRECT = "unanswered_direct"


class LegEnd(StrEnum):
    """How one leg of a call ended (a queue visit, or the time with one agent): answered legs end completed, transferred
    (blind, attended, or as app_queue says it without the kind) or moved; unanswered ones as the caller left the queue."""

    COMPLETED = "completed"
    TRANSFERRED = "transferred"
    TRANSFERRED_BLIND = "transferred_blind"
    TRANSFERRED_ATTENDED = "transferred_attended"
    MOVED = "moved"
    ABANDONED = "abandoned"
    TIMEOUT = "timeout"
    EXIT_KEY = "exit_key"
    EXIT_EMPTY = "exit_empty"
    FULL = "full"


HANDED_ON = frozenset({LegEnd.TRANSFERRED, LegEnd.TRANSFERRED_BLIND, LegEnd.TRANSFERRED_ATTENDED, LegEnd.MOVED})


class HangupBy(StrEnum):
    """Who ended a call; `unknown` when the hang-up fell in a gap of the AMI connection."""

    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class AgentState(StrEnum):
    """What an agent is doing; every change is stored with its time (occupancy and pause reports)."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


# The pause reason the engine puts an agent in after-call work with in app_queue mode (Asterisk writes it in queue_log's
# PAUSE lines); the engine's own records store the state `wrap_up` instead.
ACW_REASON = "after_call_work"
