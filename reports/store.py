"""Queue-log visits and agent changes into the database, and back out for reports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from sqlalchemy import select, tuple_

from kernel.db import CallStore
from kernel.models import Agent, AgentStateChange, Call
from kernel.records import CallRecord
from kernel.values import HangupBy, Outcome
from reports.queue_log import AgentChange, Visit

BATCH = 2000


def visit_record(v: Visit) -> CallRecord:
    """A finished queue visit as a call record (source queue_log)."""
    assert v.outcome is not None, "the builder yields finished visits only"
    answered_at = v.entered + (v.wait_s or 0.0) if v.outcome is Outcome.ANSWERED else None
    if v.completed_by in (HangupBy.CALLER, HangupBy.AGENT):
        hangup_by = HangupBy(v.completed_by)
    else:
        hangup_by = HangupBy.CALLER if v.outcome is Outcome.ABANDONED else HangupBy.SYSTEM
    return CallRecord(
        linkedid=v.key,
        caller_number=v.caller,
        caller_name=None,
        dnid=None,
        started_at=float(v.entered),
        ivr_digits="",
        queue=v.queue,
        enqueued_at=float(v.entered),
        answered_at=answered_at,
        agent=v.agent,
        ended_at=float(v.ended if v.ended is not None else v.entered),
        outcome=v.outcome,
        wait_s=v.wait_s,
        talk_s=v.talk_s,
        hold_s=v.hold_s,
        hangup_by=hangup_by,
        hangup_cause=None,
        transfers=int(v.transferred),
    )


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def save_stream(store: CallStore, items: Iterable[Visit | AgentChange]) -> tuple[int, int]:
    """Store visits and agent changes in batches; what is already stored is skipped. Returns (new calls, new changes)."""
    calls = changes = 0
    visits: list[CallRecord] = []
    agent_changes: list[AgentChange] = []
    for item in items:
        if isinstance(item, Visit):
            visits.append(visit_record(item))
        else:
            agent_changes.append(item)
        if len(visits) >= BATCH:
            calls += store.save(visits, source="queue_log")
            visits.clear()
        if len(agent_changes) >= BATCH:
            changes += save_agent_changes(store, agent_changes)
            agent_changes.clear()
    calls += store.save(visits, source="queue_log")
    changes += save_agent_changes(store, agent_changes)
    return calls, changes


def save_agent_changes(store: CallStore, changes: list[AgentChange]) -> int:
    """Store agent state changes (agents created by name as needed), skipping ones already stored."""
    if not changes:
        return 0
    with store.sessions.begin() as session:
        names = {c.agent for c in changes}
        agents = {a.name: a for a in session.scalars(select(Agent).where(Agent.name.in_(names)))}
        for name in names - set(agents):
            agents[name] = Agent(name=name)
            session.add(agents[name])
        session.flush()
        keys = [(agents[c.agent].id, _dt(c.epoch), c.state) for c in changes]
        existing = set(
            session.execute(
                select(AgentStateChange.agent_id, AgentStateChange.at, AgentStateChange.state).where(
                    tuple_(AgentStateChange.agent_id, AgentStateChange.at, AgentStateChange.state).in_(keys)
                )
            ).all()
        )
        fresh = 0
        for change, key in zip(changes, keys):
            if key in existing:
                continue
            existing.add(key)
            session.add(AgentStateChange(agent_id=key[0], queue=change.queue, state=change.state, reason=change.reason, at=key[1]))
            fresh += 1
        return fresh


def queue_callids(store: CallStore) -> set[str]:
    """Call ids of the queue_log visits stored (their keys are ql:<callid>:<queue>:<entered>)."""
    with store.sessions() as session:
        keys = session.scalars(select(Call.linkedid).where(Call.source == "queue_log"))
        return {key.split(":")[1] for key in keys}


def stored_stream(store: CallStore, start: float | None, end: float | None) -> Iterator[Visit | AgentChange]:
    """Stored queue calls and agent changes, oldest first, as the report reads them."""
    with store.sessions() as session:
        query = select(Call).where(Call.queue.is_not(None), Call.enqueued_at.is_not(None)).order_by(Call.enqueued_at)
        if start is not None:
            query = query.where(Call.enqueued_at >= _dt(start))
        if end is not None:
            query = query.where(Call.enqueued_at < _dt(end))
        for row in session.scalars(query).yield_per(BATCH):
            entered = row.enqueued_at.timestamp()
            yield Visit(
                callid=row.linkedid,
                queue=row.queue,
                entered=int(entered),
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
        changes = select(AgentStateChange, Agent.name).join(Agent).order_by(AgentStateChange.at)
        for change, name in session.execute(changes).yield_per(BATCH):
            yield AgentChange(int(change.at.timestamp()), name, change.queue, change.state, change.reason)
