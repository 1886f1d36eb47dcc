"""The ACD's routing: each policy, overflow, max length, ring-no-answer and auto-pause, and invariants over random event sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.machine import (
    ACD,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentUnpause,
    Announce,
    Answered,
    BusyElsewhere,
    CallbackRequested,
    CallEnded,
    CallerArrived,
    CallerLeft,
    Connected,
    MoveCaller,
    Overflow,
    Ring,
    RingNoAnswer,
    SetPriority,
    StateChange,
    Tick,
    WrapupSaved,
)
from acd.model import QueueSettings
from acd.wrapup import AfterCallWork, ArmWrapup, DirectCall, EndWrapup, HoldOff, PartEnded, QueueCallAnswered, StartWrapup
from kernel.values import AgentState


def acd(**settings) -> ACD:
    return ACD({"q": QueueSettings("q", **settings), "vip": QueueSettings("vip")})


def login(a: ACD, *names: str, at: float = 0.0, queues=("q",), **skills) -> None:
    for offset, name in enumerate(names):
        a.step(AgentLogin(name, f"PJSIP/{name}", frozenset(queues), at + offset / 100, tuple(skills.get(name, {}).items())))


def rings(out) -> list[str]:
    return [c.agent for c in out if isinstance(c, Ring)]


@pytest.mark.parametrize("strategy, expected", [("longest_idle", ["ann"]), ("fewest_calls", ["bob"]), ("ring_all", ["ann", "bob", "cid"])])
def test_policies_pick_the_agent_a_supervisor_expects(strategy, expected):
    a = acd(strategy=strategy)
    login(a, "ann", "bob", "cid")
    a.agents["ann"].calls_taken, a.agents["cid"].calls_taken = 3, 1
    assert rings(a.step(CallerArrived("c1", "q", 10))) == expected


def test_round_robin_goes_round():
    a = acd(strategy="round_robin")
    login(a, "ann", "bob", "cid")
    picked = []
    for i in range(4):
        out = a.step(CallerArrived(f"c{i}", "q", 10 + i))
        agent = rings(out)[0]
        picked.append(agent)
        a.step(Answered(agent, f"c{i}", 11 + i))
        a.step(CallEnded(agent, 12 + i))
    assert picked == ["ann", "bob", "cid", "ann"]


def test_random_is_seeded():
    def run(seed):
        a = ACD({"q": QueueSettings("q", strategy="random")}, seed=seed)
        login(a, "ann", "bob", "cid", "dan")
        return rings(a.step(CallerArrived("c", "q", 10)))

    assert run(1) == run(1) and {tuple(run(s)) for s in range(10)} != {tuple(run(1))}


def test_skills_best_level_then_widening():
    a = acd(strategy="skills", widen_after_s=30)
    login(a, "ann", "bob", "cid", ann={"es": 3}, bob={"es": 9}, cid={})
    assert rings(a.step(CallerArrived("c1", "q", 10, skills=(("es", 5),)))) == ["bob"]
    a.step(AgentPause("bob", "lunch", 11))
    assert not rings(a.step(Tick(20))), "nobody left with Spanish 5+"
    assert rings(a.step(Tick(41))) == ["ann"], "after 30 s the requirement widens"


def test_priority_callers_first_and_supervisor_moves():
    a = acd()
    a.step(CallerArrived("old", "q", 0))
    a.step(CallerArrived("vip", "q", 50, priority=5))
    a.step(CallerArrived("mid", "q", 20))
    login(a, "ann", at=60)
    assert [c.caller for c in a.step(Tick(61)) if isinstance(c, Ring)] == [] and a.agents["ann"].caller == "vip"
    a.step(SetPriority("mid", 9, 62))
    a.step(MoveCaller("old", "vip", 63))
    login(a, "vic", at=64, queues=("vip",))
    assert a.agents["vic"].caller == "old"


def test_ring_no_answer_retries_another_agent_and_auto_pauses():
    a = acd(autopause_after=2, retry_s=2)
    login(a, "ann", "bob")
    out = a.step(CallerArrived("c", "q", 10))
    assert rings(out) == ["ann"]
    out = a.step(Tick(10 + 15))
    assert any(isinstance(c, StateChange) and c.agent == "ann" and c.state is AgentState.AVAILABLE for c in out)
    out = a.step(Tick(10 + 15 + 2))
    assert rings(out) == ["bob"], "the next try goes to someone who has not been rung"
    a.step(RingNoAnswer("bob", "c", 30))
    a.step(Tick(32))
    a.step(RingNoAnswer("ann", "c", 33))
    assert a.agents["ann"].state is AgentState.PAUSED and a.agents["ann"].reason == "missed_calls"


def test_overflow_max_wait_max_length_and_announcements():
    a = ACD({"q": QueueSettings("q", max_wait_s=60, overflow="queue", overflow_target="backup", max_length=2, announce_every_s=30)})
    a.step(CallerArrived("c1", "q", 0, 2, (("es", 5),), (("cpf", "52998224725"),)))
    a.step(CallerArrived("c2", "q", 1))
    [full] = a.step(CallerArrived("c3", "q", 2))
    assert isinstance(full, Overflow) and full.caller == "c3"
    said = [c for c in a.step(Tick(31)) if isinstance(c, Announce)]
    assert [(c.caller, c.position) for c in said] == [("c1", 1), ("c2", 2)]
    gone = [c for c in a.step(Tick(61)) if isinstance(c, Overflow)]
    assert [(c.caller, c.kind, c.target) for c in gone] == [("c1", "queue", "backup"), ("c2", "queue", "backup")]
    assert (gone[0].priority, gone[0].skills, gone[0].data) == (2, (("es", 5),), (("cpf", "52998224725"),)), (
        "the caller's priority, needs and IVR data go along to the next queue"
    )


def test_a_caller_waiting_for_a_call_back_keeps_the_place_and_is_no_more_announced_or_overflowed():
    a = acd(max_wait_s=60, overflow="hangup", announce_every_s=30)
    a.step(CallerArrived("c1", "q", 0))
    a.step(CallerArrived("c2", "q", 1))
    a.step(CallbackRequested("c1", 10))
    said = [c.caller for c in a.step(Tick(31)) if isinstance(c, Announce)]
    assert said == ["c2"]
    gone = [c.caller for c in a.step(Tick(70)) if isinstance(c, Overflow)]
    assert gone == ["c2"] and list(a.callers) == ["c1"]
    login(a, "ann", at=80)
    assert a.agents["ann"].caller == "c1", "the call back comes first: it kept the place"


@pytest.mark.parametrize("settings, arrive_at, tick_at", [(dict(max_length=1), 1, 2), (dict(max_wait_s=20), 5, 21)])
def test_overflow_to_a_call_back_keeps_the_caller(settings, arrive_at, tick_at):
    a = acd(overflow="callback", **settings)
    a.step(CallerArrived("c1", "q", 0))
    out = a.step(CallerArrived("c2", "q", arrive_at)) + a.step(Tick(tick_at))
    [overflow] = [c for c in out if isinstance(c, Overflow)]
    assert overflow.kind == "callback" and overflow.why == ("full" if "max_length" in settings else "timeout")
    assert set(a.callers) == {"c1", "c2"} and a.callers[overflow.caller].callback
    assert a.callbacks_waiting() == {"q": 1, "vip": 0}
    assert not rings(out), "nobody to ring yet"
    login(a, "ann", "bob", at=tick_at + 1)
    assert [a.agents[n].caller for n in ("ann", "bob")] == ["c1", "c2"]


def test_pause_reasons_come_from_the_configured_list_and_ivr_data_rides_with_the_ring():
    from acd.machine import RequestRefused

    a = acd()
    login(a, "ann")
    [refused] = a.step(AgentPause("ann", "nap", 1))
    assert isinstance(refused, RequestRefused) and "'nap' is not one of" in refused.why
    assert a.agents["ann"].state is AgentState.AVAILABLE
    [ring, *_] = [c for c in a.step(CallerArrived("c", "q", 2, data=(("cpf", "52998224725"),))) if isinstance(c, Ring)]
    assert dict(ring.data) == {"cpf": "52998224725"}


def test_abandon_wrapup_pause_after_call_and_phone_lost():
    a = acd(wrapup_s=10)
    login(a, "ann")
    a.step(CallerArrived("c1", "q", 0))
    a.step(Answered("ann", "c1", 2))
    a.step(AgentPause("ann", "training", 30))
    assert a.agents["ann"].state is AgentState.ON_CALL
    a.step(CallEnded("ann", 40))
    assert (a.agents["ann"].state, a.agents["ann"].reason) == (AgentState.PAUSED, "training")
    a.step(AgentUnpause("ann", 50))
    a.step(CallerArrived("c2", "q", 51))
    a.step(Answered("ann", "c2", 52))
    a.step(CallEnded("ann", 60))
    assert a.agents["ann"].state is AgentState.WRAP_UP
    a.step(CallerArrived("c3", "q", 61))
    assert a.agents["ann"].state is AgentState.WRAP_UP and "c3" in a.callers
    assert a.agents["ann"].caller is None
    out = a.step(Tick(71))
    assert a.agents["ann"].caller == "c3" and rings(out) == ["ann"]
    abandoned = a.step(CallerLeft("c3", 75))
    assert [type(c).__name__ for c in abandoned] == ["CancelRing", "StateChange", "Abandoned"]
    a.step(CallerArrived("c4", "q", 80))
    a.step(Answered("ann", "c4", 81))
    a.step(AgentLogout("ann", 90))
    assert "c4" not in a.callers and not a.connected


@pytest.mark.parametrize("limit_s, free_at", [(0.0, 45), (30.0, 45), (3.0, 43)])
def test_after_call_work_until_saved_holds_the_next_caller_until_the_save_or_the_limit(limit_s, free_at):
    a = acd(wrapup_s=limit_s, wrapup_until_saved=True)
    a.step(AgentLogin("ann", "PJSIP/ann", frozenset({"q"}), 0, (), wraps_up=True))
    login(a, "bob")
    a.step(AgentPause("bob", "lunch", 0))
    a.step(CallerArrived("c1", "q", 0))
    a.step(Answered("ann", "c1", 2))
    a.step(CallEnded("ann", 40))
    a.step(CallerArrived("c2", "q", 41))
    a.step(WrapupSaved("bob", "c1", 42))
    out = a.step(Tick(43))
    if free_at == 43:
        assert rings(out) == ["ann"], "the limit ends it before the save"
        return
    assert a.agents["ann"].state is AgentState.WRAP_UP and not rings(out), "no call is offered while she writes"
    a.step(WrapupSaved("ann", "c0", 44))
    assert a.agents["ann"].state is AgentState.WRAP_UP, "the save of some older call does not end this one's after-call work"
    out = a.step(WrapupSaved("ann", "c1", 45))
    assert rings(out) == ["ann"] and a.agents["ann"].caller == "c2", "the save frees her, and the waiting caller rings her at once"
    a.step(Answered("ann", "c2", 46))
    a.step(WrapupSaved("ann", "c1", 48))
    assert not a.agents["ann"].wrap_saved, "a late save of the last call is not the save of this one"
    a.step(WrapupSaved("ann", "c2", 50))
    a.step(CallEnded("ann", 60))
    assert a.agents["ann"].state is (AgentState.AVAILABLE if limit_s == 0 else AgentState.WRAP_UP), (
        "saved during the call: no wait for a save"
    )


def test_an_agent_on_a_call_the_acd_did_not_give_them_is_offered_none_until_it_ends():
    a = acd(wrapup_s=5)
    login(a, "ann")
    assert [c.state for c in a.step(BusyElsewhere("ann", True, 1)) if isinstance(c, StateChange)] == [AgentState.ON_CALL]
    assert not rings(a.step(CallerArrived("c1", "q", 2))), "her click-to-dial call: the caller waits"
    out = a.step(BusyElsewhere("ann", False, 10))
    assert rings(out) == ["ann"], "the call over, the waiting caller rings her at once"
    a.step(Answered("ann", "c1", 11))
    a.step(BusyElsewhere("ann", True, 12))
    a.step(CallEnded("ann", 20))
    assert a.agents["ann"].state is AgentState.WRAP_UP, "the queue's call ends: its after-call work"
    a.step(CallerArrived("c2", "q", 21))
    assert not rings(a.step(Tick(26))) and a.agents["ann"].state is AgentState.ON_CALL, "still on the transfer she took"
    assert a.step(AgentPause("ann", "lunch", 27)) == [StateChange("ann", AgentState.ON_CALL, "lunch", 27)], "the pause to come"
    assert not rings(a.step(BusyElsewhere("ann", False, 30))) and a.agents["ann"].state is AgentState.PAUSED, (
        "a pause asked for meanwhile starts when it ends"
    )


def test_a_pause_during_after_call_work_that_waits_for_the_save_does_not_get_round_it():
    native = acd(wrapup_until_saved=True)
    native.step(AgentLogin("ann", "PJSIP/ann", frozenset({"q"}), 0, (), wraps_up=True))
    native.step(CallerArrived("c1", "q", 0))
    native.step(Answered("ann", "c1", 1))
    native.step(CallEnded("ann", 10))
    native.step(AgentPause("ann", "break", 11))
    assert native.agents["ann"].state is AgentState.PAUSED and native.agents["ann"].wrap_needs_save, "still owes the disposition"
    native.step(WrapupSaved("ann", "c1", 12))
    assert native.agents["ann"].state is AgentState.PAUSED and not native.agents["ann"].wrap_needs_save, "saved: her break goes on"

    work = AfterCallWork({"q": (30.0, True)})
    assert work.step(PartEnded("ann", "L1", "q", 10)) == [StartWrapup("ann")]
    work.step(StateChange("ann", AgentState.PAUSED, "break", 11))
    assert work.step(Tick(100)) == [] and work.must_save("ann") == "L1", "no end of a pause she chose; the save still owed"
    assert work.step(WrapupSaved("ann", "L1", 101)) == [] and work.must_save("ann") is None
    assert work.step(DirectCall("cid", "L3", paused=False)) == [HoldOff("cid")], "a transfer to cid's phone: off the queues"
    assert work.step(PartEnded("cid", "L3", None, 20)) == [EndWrapup("cid")], "and back once it ends"
    assert work.step(DirectCall("cid", "L4", paused=True)) == [] and work.step(PartEnded("cid", "L4", None, 30)) == [], (
        "a click-to-dial while paused leaves the pause as it is"
    )
    assert work.step(QueueCallAnswered("ann", "L5", "q", paused=False)) == [ArmWrapup("ann")], "paused at the answer already"
    assert work.step(PartEnded("ann", "L5", "q", 40, paused=True)) == [], "her own pause, asked for during the call, wins"
    assert work.step(QueueCallAnswered("ann", "L6", "q", paused=False)) == [ArmWrapup("ann")]
    work.step(WrapupSaved("ann", "L6", 45))
    assert work.step(PartEnded("ann", "L6", "q", 50)) == [StartWrapup("ann")], "q's time limit still runs after a save"
    assert work.step(QueueCallAnswered("ann", "L7", "other", paused=False)) == [], "a queue with no after-call work"
    assert work.step(PartEnded("bob", "L2", "q", 10, wraps_up=False)) == [StartWrapup("bob")]
    assert work.must_save("bob") is None and work.step(Tick(40)) == [EndWrapup("bob")], "off the panel: the time limit alone"


def test_an_agent_finishing_a_call_never_takes_a_new_caller_with_the_old_ones_id_along():
    a = acd(wrapup_s=10)
    login(a, "ann")
    a.step(CallerArrived("PJSIP/trunk-1", "q", 0))
    a.step(Answered("ann", "PJSIP/trunk-1", 1))
    a.step(CallerLeft("PJSIP/trunk-1", 30))
    a.step(CallerArrived("PJSIP/trunk-1", "q", 31))
    a.step(CallEnded("ann", 32))
    assert "PJSIP/trunk-1" in a.callers, "the new caller still waits"
    assert a.agents["ann"].state is AgentState.WRAP_UP, "the wrap-up of the queue of the call that ended"


# invariants over random event sequences -------------------------------------------------------------
AGENTS = ["a1", "a2", "a3", "a4"]
CALLERS = [f"c{i}" for i in range(8)]
SKILLS = st.sampled_from([(), (("es", 5),), (("es", 2),)])
EVENT = st.one_of(
    st.tuples(st.just("login"), st.sampled_from(AGENTS), st.sampled_from([("q",), ("q", "vip")]), SKILLS),
    st.tuples(st.just("logout"), st.sampled_from(AGENTS)),
    st.tuples(st.just("pause"), st.sampled_from(AGENTS)),
    st.tuples(st.just("unpause"), st.sampled_from(AGENTS)),
    st.tuples(st.just("arrive"), st.sampled_from(CALLERS), st.sampled_from(["q", "vip"]), st.integers(0, 3), SKILLS),
    st.tuples(st.just("leave"), st.sampled_from(CALLERS)),
    st.tuples(st.just("callback"), st.sampled_from(CALLERS)),
    st.tuples(st.just("answer"), st.sampled_from(AGENTS)),
    st.tuples(st.just("noanswer"), st.sampled_from(AGENTS)),
    st.tuples(st.just("end"), st.sampled_from(AGENTS)),
    st.tuples(st.just("tick"), st.integers(1, 40)),
)


def apply(a: ACD, op: tuple, now: float) -> list:
    kind = op[0]
    if kind == "login":
        return a.step(AgentLogin(op[1], "PJSIP/" + op[1], frozenset(op[2]), now, op[3]))
    if kind == "logout":
        return a.step(AgentLogout(op[1], now))
    if kind == "pause":
        return a.step(AgentPause(op[1], "break", now))
    if kind == "unpause":
        return a.step(AgentUnpause(op[1], now))
    if kind == "arrive":
        return a.step(CallerArrived(op[1], op[2], now, op[3], op[4]))
    if kind == "leave":
        return a.step(CallerLeft(op[1], now))
    if kind == "callback":
        return a.step(CallbackRequested(op[1], now))
    agent = a.agents.get(op[1]) if len(op) > 1 and isinstance(op[1], str) else None
    if kind == "answer" and agent is not None and agent.state is AgentState.RINGING:
        return a.step(Answered(agent.id, agent.caller, now))
    if kind == "noanswer" and agent is not None and agent.state is AgentState.RINGING:
        return a.step(RingNoAnswer(agent.id, agent.caller, now))
    if kind == "end":
        return a.step(CallEnded(op[1], now))
    if kind == "tick":
        return a.step(Tick(now))
    return []


def check_links(a: ACD) -> None:
    for agent in a.agents.values():
        if agent.state is AgentState.RINGING:
            assert agent.caller in a.callers and agent.id in a.callers[agent.caller].ringing
        if agent.state is AgentState.ON_CALL and agent.caller in a.callers:
            assert a.connected.get(agent.caller) == agent.id
    for caller in a.callers.values():
        for agent_id in caller.ringing:
            assert a.agents[agent_id].state is AgentState.RINGING and a.agents[agent_id].caller == caller.id
    assert len(set(a.connected.values())) == len(a.connected), "no agent with two calls"


def check_nobody_idle(a: ACD, now: float) -> None:
    from acd.policies import qualified

    for caller in a.callers.values():
        if caller.ringing or caller.id in a.connected or caller.next_try > now:
            continue
        idle = [x for x in a.available.get(caller.queue, ()) if qualified(a.agents[x], caller, a._widened(caller, now))]
        assert not idle, f"{caller.id} waits while {idle} are free"


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENT, max_size=80))
def test_invariants_hold_for_any_event_sequence(ops):
    a = ACD(
        {
            "q": QueueSettings("q", strategy="skills", autopause_after=3, widen_after_s=60, wrapup_s=5, max_length=3, overflow="callback"),
            "vip": QueueSettings("vip", strategy="ring_all", max_wait_s=120),
        }
    )
    now = 0.0
    connects: list[str] = []
    for op in ops:
        now += op[1] if op[0] == "tick" else 0.5
        before = set(a.callers)
        agents_calls = {ag.id: ag.caller for ag in a.agents.values() if ag.state is AgentState.ON_CALL}
        out = apply(a, op, now)
        connects += [c.caller for c in out if isinstance(c, Connected)]
        overflowed = {c.caller for c in out if isinstance(c, Overflow)}
        for gone in before - set(a.callers):
            justified = (
                (op[0] == "leave" and op[1] == gone)
                or gone in overflowed
                or (op[0] in ("end", "logout") and agents_calls.get(op[1]) == gone)
            )
            assert justified, f"caller {gone} lost on {op}"
        check_links(a)
        assert len(connects) == len(set(connects)), "no caller connected twice"
        if op[0] == "tick":
            check_nobody_idle(a, now)
    for step in (1000, 10):
        now += step
        a.step(Tick(now))
        check_links(a)
        check_nobody_idle(a, now)


def test_every_kind_of_acd_event_has_its_handler():
    import typing

    from acd import machine

    assert set(typing.get_args(machine.Event)) == set(ACD({})._handlers)
