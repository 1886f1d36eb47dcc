"""Queue-log visits and agent changes into the database, and back out for reports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import and_, exists, func, select, tuple_

from kernel.db import CallStore
from kernel.models import Agent, AgentStateChange, Call, CallLeg
from kernel.records import CallRecord, Leg
from kernel.values import HANDED_ON, HangupBy, LegEnd, Outcome
from reports.metrics import ACW_STATE, is_acw
from reports.queue_log import AgentChange, Visit

BATCH = 2000


def _leg(v: Visit) -> Leg:
    answered_at = v.entered + (v.wait_s or 0.0) if v.outcome is Outcome.ANSWERED else None
    return Leg(
        queue=v.queue,
        agent=v.agent,
        enqueued_at=float(v.entered),
        answered_at=answered_at,
        ended_at=float(v.ended if v.ended is not None else v.entered),
        wait_s=v.wait_s,
        talk_s=v.talk_s,
        hold_s=v.hold_s,
        ended_by=(LegEnd.TRANSFERRED if v.transferred else LegEnd.COMPLETED) if v.outcome is Outcome.ANSWERED else LegEnd(v.outcome),
        callid=v.callid,
    )


def visit_record(v: Visit) -> CallRecord:
    """A finished queue visit as a call record (source queue_log)."""
    return visits_record([v])


def visits_record(visits: list[Visit], recovered: bool = False) -> CallRecord:
    """One call from its finished queue_log visits, oldest first (a call transferred from queue to queue has several): a
    leg each, the call's own fields its last visit's. `recovered`: a call of an AMI gap, known only from queue_log."""
    assert visits and all(v.outcome is not None for v in visits), "finished visits only"
    legs = [_leg(v) for v in visits]
    last, leg = visits[-1], legs[-1]
    if last.completed_by in (HangupBy.CALLER, HangupBy.AGENT):
        hangup_by = HangupBy(last.completed_by)
    elif last.outcome is Outcome.ABANDONED:
        hangup_by = HangupBy.CALLER
    else:
        hangup_by = HangupBy.UNKNOWN if recovered and last.outcome is Outcome.ANSWERED else HangupBy.SYSTEM
    assert last.outcome is not None
    return CallRecord(
        linkedid=visits[0].key,
        caller_number=next((v.caller for v in visits if v.caller), None),
        caller_name=None,
        dnid=None,
        started_at=float(visits[0].entered),
        ivr_digits="",
        queue=last.queue,
        enqueued_at=leg.enqueued_at,
        answered_at=leg.answered_at,
        agent=last.agent,
        ended_at=leg.ended_at,
        outcome=last.outcome,
        wait_s=last.wait_s,
        talk_s=last.talk_s,
        hold_s=last.hold_s,
        hangup_by=hangup_by,
        hangup_cause=None,
        transfers=sum(v.transferred for v in visits),
        resynced=recovered,
        legs=legs,
    )


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def save_stream(store: CallStore, items: Iterable[Visit | AgentChange]) -> tuple[int, int]:
    """Store visits and agent changes in batches; what is already stored is skipped (a visit imported before, or one the
    engine followed live as a leg of its own call). Returns (new calls, new changes)."""
    calls = changes = 0
    visits: list[Visit] = []
    agent_changes: list[AgentChange] = []
    for item in items:
        if isinstance(item, Visit):
            visits.append(item)
        else:
            agent_changes.append(item)
        if len(visits) >= BATCH:
            calls += _save_visits(store, visits)
            visits.clear()
        if len(agent_changes) >= BATCH:
            changes += save_agent_changes(store, agent_changes)
            agent_changes.clear()
    calls += _save_visits(store, visits)
    changes += save_agent_changes(store, agent_changes)
    return calls, changes


def _save_visits(store: CallStore, visits: list[Visit]) -> int:
    followed: dict[tuple[str, str | None], list[float]] = {}
    for callid, queue, enqueued, source in store.legs_holding(v.callid for v in visits):
        if enqueued is not None and source != "queue_log":
            followed.setdefault((callid, queue), []).append(enqueued.timestamp())
    fresh: dict[str, Visit] = {}
    for v in visits:
        if not any(abs(t - v.entered) < 2 for t in followed.get((v.callid, v.queue), ())):
            fresh.setdefault(v.key, v)  # a visit logged twice is one call (its first), as in a report of the file
    return store.save([visit_record(v) for v in fresh.values()], source="queue_log")


def _kind(state: str, reason: str | None) -> tuple[str, str | None]:
    """What tells two changes of an agent in one second apart: the state and its reason; the engine's `wrap_up` and
    queue_log's after_call_work pause are one (the same after-call work, seen from AMI and from queue_log)."""
    return (ACW_STATE, None) if is_acw(state, reason) else (state, reason)


def save_agent_changes(store: CallStore, changes: list[AgentChange]) -> int:
    """Store agent state changes (agents created by name as needed), skipping ones already stored: the same agent, second,
    state and reason (a pause in every queue is stored once; an import of a queue_log over the engine's own records
    adds nothing the engine stored)."""
    if not changes:
        return 0
    with store.sessions.begin() as session:
        names = {c.agent for c in changes}
        agents = {a.name: a for a in session.scalars(select(Agent).where(Agent.name.in_(names)))}
        for name in names - set(agents):
            agents[name] = Agent(name=name)
            session.add(agents[name])
        session.flush()
        keys = [(agents[c.agent].id, _dt(c.epoch), *_kind(c.state, c.reason)) for c in changes]
        stored = session.execute(
            select(AgentStateChange.agent_id, AgentStateChange.at, AgentStateChange.state, AgentStateChange.reason).where(
                tuple_(AgentStateChange.agent_id, AgentStateChange.at).in_(list({key[:2] for key in keys}))
            )
        )
        existing = {(agent_id, at, *_kind(state, reason)) for agent_id, at, state, reason in stored}
        fresh = 0
        for change, key in zip(changes, keys):
            if key in existing:
                continue
            existing.add(key)
            session.add(AgentStateChange(agent_id=key[0], queue=change.queue, state=change.state, reason=change.reason, at=key[1]))
            fresh += 1
        return fresh


def _callid(linkedid: str, source: str) -> str:
    """The call a stored row belongs to: its linkedid, or for a queue_log visit (key ql:<callid>:<queue>:<entered>) the
    queue_log call id, so the visits of one transferred call are one call again."""
    return linkedid.split(":")[1] if source == "queue_log" else linkedid


def queue_callids(store: CallStore) -> set[str]:
    """Call ids of the queue_log visits stored."""
    with store.sessions() as session:
        return {_callid(key, "queue_log") for key in session.scalars(select(Call.linkedid).where(Call.source == "queue_log"))}


def _leg_outcome(leg: CallLeg) -> Outcome:
    """A leg as a visit's outcome: answered, else why the caller left that queue (moved on by a supervisor's move)."""
    if leg.answered_at is not None:
        return Outcome.ANSWERED
    return Outcome(leg.ended_by) if leg.ended_by in Outcome.__members__.values() else Outcome.MOVED


def _leg_visit(leg: CallLeg, linkedid: str, source: str, caller: str | None) -> Visit:
    """A stored leg as the report reads a visit."""
    answered = leg.answered_at is not None
    return Visit(
        callid=_callid(linkedid, source),
        queue=leg.queue,
        entered=int((leg.enqueued_at or leg.answered_at or leg.ended_at).timestamp()),
        caller=caller,
        position=None,
        outcome=_leg_outcome(leg),
        agent=leg.agent if answered else None,
        wait_s=leg.wait_s,
        talk_s=leg.talk_s,
        hold_s=leg.hold_s or 0.0,
        ended=int(leg.ended_at.timestamp()),
        transferred=answered and leg.ended_by in HANDED_ON,
        visit=leg.n + 1,
    )


def stored_stream(store: CallStore, start: float | None, end: float | None) -> Iterator[Visit | AgentChange]:
    """Stored calls as the report reads them: one visit per leg (a queue visit, or an agent reached without a queue,
    whose queue is None), so each queue and agent is credited with its own part of a transferred call; calls stored
    before legs were kept count as one visit. With an `end`, also each agent's first leg after it (outside the window,
    so counted nowhere): the after-call work that follows it is not taken for that of their last call in the window.
    Then the agents' state changes, oldest first (all of them: after-call work may run past the window's end)."""
    with store.sessions() as session:
        began = func.coalesce(CallLeg.enqueued_at, CallLeg.answered_at)
        legs = select(CallLeg, Call.linkedid, Call.source, Call.caller_number).join(Call).where(began.is_not(None)).order_by(began)
        if start is not None:
            legs = legs.where(began >= _dt(start))
        if end is not None:
            legs = legs.where(began < _dt(end))
        for leg, linkedid, source, caller in session.execute(legs).yield_per(BATCH):
            yield _leg_visit(leg, linkedid, source, caller)
        if end is not None:
            after = began >= _dt(end)
            first = (
                select(CallLeg.agent, func.min(CallLeg.answered_at).label("at"))
                .where(after, CallLeg.agent.is_not(None), CallLeg.answered_at.is_not(None))
                .group_by(CallLeg.agent)
                .subquery()
            )
            nexts = (
                select(CallLeg, Call.linkedid, Call.source, Call.caller_number)
                .join(Call)
                .join(first, and_(CallLeg.agent == first.c.agent, CallLeg.answered_at == first.c.at))
                .where(after)
            )
            for leg, linkedid, source, caller in session.execute(nexts):
                yield _leg_visit(leg, linkedid, source, caller)
        legless = select(Call).where(Call.queue.is_not(None), Call.enqueued_at.is_not(None), ~exists().where(CallLeg.call_id == Call.id))
        if start is not None:
            legless = legless.where(Call.enqueued_at >= _dt(start))
        if end is not None:
            legless = legless.where(Call.enqueued_at < _dt(end))
        for row in session.scalars(legless).yield_per(BATCH):
            yield Visit(
                callid=_callid(row.linkedid, row.source),
                queue=row.queue,
                entered=int(row.enqueued_at.timestamp()),
                caller=row.caller_number,
                position=None,
                outcome=Outcome(row.outcome),
                agent=row.agent,
                wait_s=row.wait_s,
                talk_s=row.talk_s,
                hold_s=row.hold_s or 0.0,
                ended=int(row.ended_at.timestamp()),
                completed_by=row.hangup_by,
                transferred=row.transfers > 0,
            )
        changes = select(AgentStateChange, Agent.name).join(Agent).order_by(AgentStateChange.at, AgentStateChange.id)
        for change, name in session.execute(changes).yield_per(BATCH):
            yield AgentChange(int(change.at.timestamp()), name, change.queue, change.state, change.reason)
