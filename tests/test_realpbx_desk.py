"""The real-PBX tier, the panel's desk: click-to-dial, hold/resume and listen/whisper/barge on the real Asterisk.

Each test asks the engine as the panel would (agent `ana`, supervisor `sue`) and checks what Asterisk itself did:
its Dial/ChanSpy events, the CDR and queue_log it wrote, and the audio it carried. The tier's phones play a 440 Hz
tone and its callers a 1 kHz tone, so a recording the test makes of a channel (MixMonitor as the tester user, its
own ears on the call) tells who heard whom. The module has an Asterisk of its own.
"""

from __future__ import annotations

import io
import math
import time
import wave
from array import array
from pathlib import Path

import pytest

from cti_panel.controls import SPY_OPTIONS, phone_side
from kernel import config
from kernel.exceptions import InputError
from kernel.who import Who
from pbx.tracker import local_partner
from recordings.wav import duration, loudness
from tests.realpbx import Asterisk, Center, run_script, side_by_side
from tests.test_realpbx import (  # center and sim: the tier's fixtures, found by pytest by name
    ANA,
    BEA,
    SUE,
    assert_alike,
    center,
    number,
    queue_log_of,
    settings,
    shipped_asterisk,
    sim,
)
from tests.waiting import until

pytestmark = pytest.mark.skipif(
    run_script() is None, reason="no Asterisk build: ../shared/asterisk/run not found and CALLCENTER_TEST_ASTERISK not set"
)


@pytest.fixture(scope="module")
def pbx(tmp_path_factory):
    """This module's own Asterisk (test_realpbx's `center` fixture runs its engines on it)."""
    with shipped_asterisk(tmp_path_factory, "asterisk-desk") as asterisk:
        yield asterisk


AGENT_TONE, CALLER_TONE = 440, 1000  # tests/data/realpbx/extensions.conf: [test-phones] 1xxx, [test-callers] keys
WINDOW_S = 0.1
HEARD, SILENT = 2000.0, 300.0  # a tone's amplitude in a window: the tier's tones are ~7000; silence is ~0


# What the test hears -------------------------------------------------------------------------------


def tone(data: bytes, hz: float, start_s: float, end_s: float) -> float:
    """The amplitude of one frequency (Goertzel) in 16-bit mono WAV audio between two times."""
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        w.setpos(min(w.getnframes(), max(0, int(start_s * rate))))
        samples = array("h", w.readframes(max(0, int((end_s - start_s) * rate))))
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return 2 * math.sqrt(max(0.0, s1 * s1 + s2 * s2 - k * s1 * s2)) / len(samples)


def windows(data: bytes, hz: float) -> list[float]:
    """The tone's amplitude in each 0.1 s of the file."""
    length = duration(data, "recording")
    return [tone(data, hz, i * WINDOW_S, (i + 1) * WINDOW_S) for i in range(int(length / WINDOW_S))]


def gap_s(levels: list[float]) -> float:
    """The longest silence of a tone between two stretches where it is heard (0 if it never stops in between)."""
    heard = [i for i, level in enumerate(levels) if level > HEARD]
    if not heard:
        return 0.0
    longest = run = 0
    for level in levels[heard[0] : heard[-1] + 1]:
        run = run + 1 if level < SILENT else 0
        longest = max(longest, run)
    return longest * WINDOW_S


def listen(asterisk: Asterisk, channel: str, name: str) -> Path:
    """The test's own ears on a channel: MixMonitor (both directions, bridged or not) by the tester user, into the PBX's rec folder."""
    path = asterisk.run / "rec" / f"{name}.wav"
    response = asterisk.action({"Action": "MixMonitor", "Channel": channel, "File": str(path)})
    assert response.get("Response") == "Success", response
    return path


def heard(cc: Center, path: Path, channel: str) -> bytes:
    """The finished recording of a channel, once the channel is gone and Asterisk closed the file."""

    def finished() -> bytes | None:
        if not any(e.get("Event") == "Hangup" and e.get("Channel") == channel for e in list(cc.events)) or not path.exists():
            return None
        data = path.read_bytes()
        try:
            return data if duration(data, str(path)) > 0 else None
        except InputError:
            return None

    return until(finished, 10, f"the recording of {channel} closed")


def events(cc: Center, name: str, since: int = 0, **fields: str) -> list:
    """The AMI events of one kind the engine received (from index `since`) whose fields are as given."""
    return [e for e in list(cc.events)[since:] if e.get("Event") == name and all(e.get(k) == v for k, v in fields.items())]


def talking(cc: Center, agent: str, caller: str):
    """The agent's live call, once answered, with this caller."""
    return until(
        lambda: (c := cc.call_of(agent)) and c.answered_at and c.number == caller and c.agent_channel and c,
        20,
        f"{agent} talks to {caller}",
    )


def holds_on(cc: Center, seconds: float) -> None:
    """Let the call run for `seconds` on the engine's (Asterisk-synced) clock."""
    since = cc.engine.clock()
    until(lambda: cc.engine.clock() - since >= seconds, seconds + 5, f"{seconds:g} s of the call")


# 1. Click-to-dial ---------------------------------------------------------------------------------------


def dial(cc: Center, dialled: str) -> dict:
    """Ana's click-to-dial, followed in Asterisk's events: her phone, then the number. The events, by name."""
    seen = len(cc.events)
    assert cc.ask("ana", "dial", {"number": "+" + dialled})["ok"]
    out = until(
        lambda: events(cc, "DialEnd", seen, DialStatus="ANSWER", Context="callcenter-outbound", Exten=dialled),
        15,
        f"Asterisk dials {dialled} and the far end answers",
    )[0]
    linkedid = out["Linkedid"]
    [phone_begin] = [e for e in events(cc, "DialBegin", seen, DestLinkedid=linkedid) if "Channel" not in e]
    [phone_end] = [e for e in events(cc, "DialEnd", seen, DestLinkedid=linkedid) if "Channel" not in e]
    [out_begin] = events(cc, "DialBegin", seen, Linkedid=linkedid, Context="callcenter-outbound")
    return {"phone_begin": phone_begin, "phone_end": phone_end, "out_begin": out_begin, "out_end": out, "linkedid": linkedid}


def stored_by_linkedid(cc: Center, linkedid: str):
    return until(lambda: next((c for c in cc.store.calls() if c.linkedid == linkedid), None), 20, f"call {linkedid} stored")


def test_click_to_dial_rings_the_agents_phone_first_then_dials_the_number_through_contrib_outbound(pbx, center):
    cc = center()
    dialled = number()
    seen = dial(cc, dialled)
    phone, out_begin, out_end = seen["phone_begin"], seen["out_begin"], seen["out_end"]

    assert "Local/" + phone["DialString"] == ANA["interface"], "the Originate rings ana's own phone interface"
    assert phone["DestChannel"].startswith("Local/1001@test-phones-") and seen["phone_end"]["DialStatus"] == "ANSWER"
    assert float(seen["phone_end"]["Timestamp"]) - float(phone["Timestamp"]) >= 0.9, "her phone rings (1 s) before it answers"
    assert float(out_begin["Timestamp"]) >= float(seen["phone_end"]["Timestamp"]), "the number is dialled only once she answered"
    assert out_begin["Channel"] == phone["DestChannel"], "from her phone's leg, in contrib's [callcenter-outbound]"
    assert (out_begin["Exten"], out_begin["DialString"]) == (dialled, f"{dialled}@test-world"), (
        "the '+' stripped; ${CALLCENTER_TRUNK}/<number>${CALLCENTER_TRUNK_SUFFIX}"
    )
    assert out_begin["DestChannel"].startswith(f"Local/{dialled}@test-world-") and out_end["DestChannel"] == out_begin["DestChannel"]

    holds_on(cc, 1.0)
    # She puts the phone down (the panel's own hang-up of a click-to-dial call: see the next test).
    assert pbx.action({"Action": "Hangup", "Channel": phone_side(out_begin["Channel"])}).get("Response") == "Success"
    call = stored_by_linkedid(cc, seen["linkedid"])
    assert (call.outcome, call.queue, call.caller_number, call.dnid, call.wait_s) == ("outbound", None, dialled, ANA["extension"], None), (
        "the call's number is the one dialled, from the agent's extension"
    )

    rows = until(lambda: [r for r in pbx.cdr() if r["uniqueid"] == seen["linkedid"]], 10, "Asterisk's CDR of the call")
    assert [
        (r["src"], r["dst"], r["dcontext"], r["channel"], r["dstchannel"], r["lastapp"], r["lastdata"], r["disposition"]) for r in rows
    ] == [
        (
            ANA["extension"],
            dialled,
            "callcenter-outbound",
            out_begin["Channel"],
            out_begin["DestChannel"],
            "Dial",
            f"Local/{dialled}@test-world,60,t",
            "ANSWERED",
        )
    ]
    assert rows[0]["answer"], "answered by the far end"


def click_to_dial_hung_up_from_the_panel(pbx, cc: Center, dialled: str):
    """Ana dials from the panel, talks a second and hangs up from the panel: (what was seen, the stored call)."""
    seen = dial(cc, dialled)
    live = until(lambda: cc.call_of("ana"), 3, "the panel shows ana her click-to-dial call")
    assert live.linkedid == seen["linkedid"] and live.answered_at
    holds_on(cc, 1.0)
    assert cc.ask("ana", "hangup", {})["ok"], "the panel's hang-up ends her own call"
    until(lambda: events(cc, "Hangup", 0, Channel=phone_side(seen["out_begin"]["Channel"])), 10, "her phone hung up")
    return seen, stored_by_linkedid(cc, seen["linkedid"])


def test_click_to_dial_is_the_agents_own_call_on_the_panel_on_both_pbxs(pbx, sim, center):
    runs = [center(on=on) for on in (pbx, sim)]
    dialled = number()
    (_, call), (_, sim_call) = side_by_side(click_to_dial_hung_up_from_the_panel, (pbx, runs[0], dialled), (sim, runs[1], dialled))
    assert (call.outcome, call.agent, call.hangup_by) == ("outbound", "ana", "agent")
    assert (sim_call.outcome, sim_call.agent, sim_call.hangup_by) == (call.outcome, call.agent, call.hangup_by)
    assert_alike(runs[0], runs[1], pbx, sim, [])


RAY = {**ANA, "login": "ray", "agent": "ray", "interface": "Local/2001@test-phones/n", "extension": "2001"}  # never answers
ROB = {**ANA, "login": "rob", "agent": "rob", "interface": "Local/4001@test-phones/n", "extension": "4001", "lang": "pt-BR"}  # rejects


def dial_answers(cc: Center, dialled: str) -> dict[str, dict]:
    """Each agent's click-to-dial reply: ana's phone answers, ray's rings out, rob's rejects the call."""
    return {login: cc.ask(login, "dial", {"number": dialled}) for login in ("rob", "ray", "ana")}


def test_click_to_dial_is_done_when_the_agents_phone_answered_and_says_why_not_on_both_pbxs(pbx, sim, center, tmp_path):
    quick = settings(tmp_path).model_copy(update={"panel": config.PanelSettings(dial_ring_s=3)})
    runs = [center(on=on, settings=quick, users=[ANA, RAY, ROB]) for on in (pbx, sim)]
    dialled = number()
    real, simulated = side_by_side(dial_answers, (runs[0], dialled), (runs[1], dialled))
    assert real["ana"] == {**real["ana"], "ok": True, "message": f"Your phone answered: calling {dialled}."}
    assert real["ray"]["error"] == "Your phone (Local/2001@test-phones/n) did not answer."
    assert real["rob"]["error"] == "Seu telefone (Local/4001@test-phones/n) não recebeu a chamada: recusou ou não pode ser alcançado."
    strip = lambda replies: {login: {k: v for k, v in r.items() if k != "id"} for login, r in replies.items()}  # noqa: E731
    assert strip(simulated) == strip(real), "the simulator answers as Asterisk does"


def consult_then_cancel(pbx, cc: Center, caller: str) -> dict[str, dict]:
    """Ana, talking to a caller, asks to complete a transfer she has not begun, consults ray (who never answers), cancels."""
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    pbx.call("support@callcenter-queues", "keys", caller, CALLER_WAIT="30")
    until(lambda: (c := cc.call_of("ana")) and c.answered_at and c.number == caller, 20, "ana talks to the caller")
    replies = {"early": cc.ask("ana", "complete", {})}
    replies["consult"] = cc.ask("ana", "transfer", {"how": "attended", "kind": "agent", "agent": "ray"})
    until(lambda: cc.call_of("ana").consulting, 10, "ana consulting ray, the caller held")
    replies["cancel"] = cc.ask("ana", "cancel", {})
    call = cc.call_of("ana")
    assert (call.number, call.consulting) == (caller, False), "back with the caller"
    assert cc.ask("ana", "hangup", {})["ok"]
    return {name: {k: v for k, v in r.items() if k != "id"} for name, r in replies.items()}


def test_an_attended_transfer_is_cancelled_and_completing_none_ends_no_call_on_both_pbxs(pbx, sim, center):
    runs = [center(on=on, users=[ANA, RAY]) for on in (pbx, sim)]
    caller = number()
    real, simulated = side_by_side(consult_then_cancel, (pbx, runs[0], caller), (sim, runs[1], caller))
    assert real == {
        "early": {"ok": False, "error": "No consultation in progress: start an attended transfer first."},
        "consult": {"ok": True, "message": "Calling ray: talk, then Complete transfer, or Cancel."},
        "cancel": {"ok": True, "message": "Transfer cancelled: you are back with the caller."},
    }
    assert simulated == real, "the simulator answers as Asterisk does"


def test_hold_mutes_the_caller_both_ways_in_the_bridge_and_the_record_counts_the_held_time(pbx, center, tmp_path):
    cc = center(settings=settings(tmp_path, record=True))
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, W1="0", CALLER_WAIT="20")  # the caller's tone from the answer on
    live = talking(cc, "ana", caller)
    until(lambda: cc.engine.recorder.active, 5, "the engine records the call")
    caller_leg = local_partner(live.channel)
    assert caller_leg, live.channel
    ears = {
        "agent": (live.agent_channel, listen(pbx, live.agent_channel, f"{caller}-agent")),
        "caller": (caller_leg, listen(pbx, caller_leg, f"{caller}-caller")),
    }

    holds_on(cc, 1.0)
    assert cc.ask("ana", "hold", {})["ok"]
    held_at = time.monotonic()
    until(lambda: cc.call_of("ana").held, 5, "the panel shows the call held")
    holds_on(cc, 1.5)
    assert cc.ask("ana", "unhold", {})["ok"]
    held_for = time.monotonic() - held_at
    until(lambda: not cc.call_of("ana").held, 5, "the panel shows the call resumed")
    holds_on(cc, 1.0)
    assert cc.ask("ana", "hangup", {})["ok"]
    call = cc.stored(caller)

    # What each side heard, by Asterisk's audio: the other party goes silent for the hold, then comes back.
    agent_ear, caller_ear = (heard(cc, path, channel) for channel, path in ears.values())
    assert min(windows(agent_ear, AGENT_TONE)[2:-2]) > HEARD, "ana's own phone is heard all along (her leg is not muted)"
    assert gap_s(windows(agent_ear, CALLER_TONE)) >= held_for - 0.5, "ana hears the caller, then not at all while held, then again"
    assert min(windows(caller_ear, CALLER_TONE)[2:-2]) > HEARD, "the caller's own tone is heard all along on their side"
    assert gap_s(windows(caller_ear, AGENT_TONE)) >= held_for - 0.5, "the caller hears ana, then not at all while held, then again"

    assert (call.outcome, call.queue, call.agent, call.hangup_by) == ("answered", "support", "ana", "agent")
    assert abs(call.hold_s - held_for) < 0.3, (call.hold_s, held_for)
    assert call.talk_s and call.talk_s >= 1.5, "talk time excludes the hold"
    lines = queue_log_of(pbx, caller)
    assert [line[4] for line in lines] == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"], "the call stayed in its bridge and its queue"
    assert int(lines[-1][6]) > call.talk_s, "app_queue's call time (whole seconds) includes the held time"

    # The engine's own recording of the caller's channel: one file, sound before and after the hold. MUTEAUDIO drops the
    # caller's frames both ways, so MixMonitor on that channel gets none while held: the held span is not in the file at all.
    boss = Who(9, "sue", "supervisor", "en", None, None, None, ())
    row = until(lambda: next((r for r in cc.engine.library.visible(boss, 10) if r.caller_number == caller), None), 15, "recording indexed")
    assert (row.status, row.agent) == ("stored", "ana")
    audio = cc.engine.library.fetch(row.id, boss, "127.0.0.1", "play")[1]
    for hz in (AGENT_TONE, CALLER_TONE):
        assert tone(audio, hz, 0.3, 0.8) > HEARD and tone(audio, hz, row.duration_s - 0.6, row.duration_s - 0.1) > HEARD, hz
    assert loudness(audio, 0.3, row.duration_s - 0.1) > 1000
    assert abs(row.duration_s - call.talk_s) < 0.5, ("as long as the talk alone", row.duration_s, call.talk_s, call.hold_s)


def test_a_recording_pause_after_a_hold_is_indexed_where_the_file_is_silent(pbx, center, tmp_path):
    cc = center(settings=settings(tmp_path, record=True))
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, W1="0", CALLER_WAIT="20")
    talking(cc, "ana", caller)
    until(lambda: cc.engine.recorder.active, 5, "the engine records the call")
    holds_on(cc, 1.0)
    for request, values, then in (
        ("hold", {}, 1.5),
        ("unhold", {}, 1.0),
        ("record", {"op": "pause"}, 1.5),
        ("record", {"op": "resume"}, 1.0),
    ):
        assert cc.ask("ana", request, values)["ok"], request
        holds_on(cc, then)
    assert cc.ask("ana", "hangup", {})["ok"]
    cc.stored(caller)
    boss = Who(9, "sue", "supervisor", "en", None, None, None, ())
    row = until(lambda: next((r for r in cc.engine.library.visible(boss, 10) if r.caller_number == caller), None), 15, "recording indexed")
    [(pause, resume)] = row.paused
    audio = cc.engine.library.fetch(row.id, boss, "127.0.0.1", "play")[1]
    assert resume < row.duration_s, ("the pause lies inside the file", row.paused, row.duration_s)
    assert loudness(audio, pause + 0.2, resume - 0.2) < 50, ("silence where the index says paused", row.paused)
    assert loudness(audio, pause - 0.6, pause - 0.2) > 1000 and loudness(audio, resume + 0.2, resume + 0.6) > 1000


# 3. Listen / whisper / barge ----------------------------------------------------------------------------


def test_supervisor_listens_whispers_and_barges_from_her_own_phone_and_the_customer_call_is_untouched(pbx, center):
    cc = center()
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, W1="0", CALLER_WAIT="30")
    live = talking(cc, "ana", caller)
    sessions = {}
    for mode in ("listen", "whisper", "barge"):
        seen = len(cc.events)
        assert cc.ask("sue", "spy", {"agent": "ana", "mode": mode})["ok"]
        [start] = until(lambda: events(cc, "ChanSpyStart", seen), 10, f"Asterisk's ChanSpyStart ({mode})")
        spyer = start["SpyerChannel"]
        assert spyer.startswith("Local/1900@test-phones-") and spyer.endswith(";1"), f"{mode} from sue's own phone"
        assert (start["SpyeeChannel"], start["SpyeeLinkedid"]) == (live.agent_channel, live.linkedid), "on ana's leg of the call"
        assert start["SpyerLinkedid"] != live.linkedid, "a session of its own, not part of the customer's call"
        ear = listen(pbx, spyer, f"{caller}-{mode}")
        holds_on(cc, 1.0)
        assert pbx.action({"Action": "Hangup", "Channel": phone_side(spyer)}).get("Response") == "Success"  # she hangs up
        until(lambda: events(cc, "ChanSpyStop", seen, SpyerChannel=spyer), 10, f"Asterisk's ChanSpyStop ({mode})")
        sessions[mode] = (start, heard(cc, ear, spyer))
        now = cc.call_of("ana")
        assert now is not None and (now.linkedid, now.answered_at) == (live.linkedid, live.answered_at), "the call goes on"
        assert live.channel in pbx.cli("core show channels concise"), "the caller is still on the line in Asterisk"

    assert cc.ask("ana", "hangup", {})["ok"]
    call = cc.stored(caller)
    assert (call.outcome, call.queue, call.agent, call.hangup_by, call.transfers) == ("answered", "support", "ana", "agent", 0)
    assert [line[4] for line in queue_log_of(pbx, caller)] == ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]

    spies = {start["SpyerLinkedid"]: mode for mode, (start, _) in sessions.items()}
    stored = until(
        lambda: len(found := [c for c in cc.store.calls() if c.linkedid in spies]) == 3 and found, 15, "the three sessions stored"
    )
    assert sorted((spies[c.linkedid], c.outcome, c.caller_number, c.queue) for c in stored) == [
        (mode, "supervision", SUE["extension"], None) for mode in ("barge", "listen", "whisper")
    ]
    assert len(cc.store.calls()) == 4, "the customer call and three sessions: nothing else counted"
    cdr = pbx.cdr()
    for mode, (start, audio) in sessions.items():
        [row] = [r for r in cdr if r["channel"] == start["SpyerChannel"]]
        assert (row["lastapp"], row["lastdata"]) == ("ChanSpy", f"{live.agent_channel},{SPY_OPTIONS[mode]}"), mode
        levels = windows(audio, CALLER_TONE)
        assert len(levels) >= 8 and sum(level > HEARD for level in levels) >= len(levels) - 2, f"sue hears the customer as she {mode}s"


def test_a_supervisor_listening_to_an_idle_agent_hears_her_next_call(pbx, center):
    cc = center()
    seen = len(cc.events)
    assert cc.ask("sue", "spy", {"agent": "ana", "mode": "listen"})["ok"], "ana is idle: ChanSpy waits for her phone"
    until(lambda: events(cc, "OriginateResponse", seen, Response="Success"), 10, "sue's phone answers and runs ChanSpy")
    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    caller = number()
    pbx.call("support@callcenter-queues", "keys", caller, W1="0", CALLER_WAIT="20")
    live = talking(cc, "ana", caller)
    [start] = until(lambda: events(cc, "ChanSpyStart", seen), 10, "Asterisk's ChanSpyStart on ana's next call")
    assert start["SpyeeChannel"].startswith("Local/1001@test-phones-") and start["SpyeeLinkedid"] == live.linkedid
    assert cc.ask("ana", "hangup", {})["ok"]


def rung_then_left(pbx, cc: Center, caller: str, answered: str) -> list[str]:
    """Ray (whose phone never answers) is rung: the caller hangs up during the ring; then, in the ringall queue sales,
    bea answers a caller who rang both of them. Ray's states meanwhile, as the panel shows them."""
    seen: list[str] = []
    watch = lambda: (seen.append(cc.agent_state("ray") or ""), seen[-1])[1]  # noqa: E731
    assert cc.ask("ray", "state", {"state": "available"})["ok"] and cc.ask("bea", "state", {"state": "available"})["ok"]
    until(lambda: watch() == "available" and cc.agent_state("bea") == "available", 10, "ray and bea available")
    pbx.call("support@callcenter-queues", "keys", caller)
    until(lambda: watch() == "ringing", 20, "ray's phone rings")
    channel = next(c.channel for c in list(cc.engine.board.calls.values()) if c.number == caller)
    assert pbx.action({"Action": "Hangup", "Channel": channel}).get("Response") == "Success"
    assert cc.stored(caller).outcome == "abandoned"
    until(lambda: watch() == "available", 10, "ray available again once the caller hung up")
    pbx.call("sales@callcenter-queues", "keys", answered, CALLER_WAIT="3")
    until(lambda: (watch(), cc.agent_state("bea") == "on_call")[1], 20, "bea answers")
    until(lambda: watch() == "available", 10, "ray available again once bea answered")
    assert cc.stored(answered).agent == "bea"
    return [state for i, state in enumerate(seen) if i == 0 or seen[i - 1] != state]


def test_an_agent_rung_for_a_caller_who_hangs_up_or_whom_another_answered_is_available_again_on_both_pbxs(pbx, sim, center):
    ray = {**RAY, "queues": ["support", "sales"]}
    runs = [center(on=on, users=[ray, BEA]) for on in (pbx, sim)]
    caller, answered = number(), number()
    real, simulated = side_by_side(rung_then_left, (pbx, runs[0], caller, answered), (sim, runs[1], caller, answered))
    assert real[:3] == ["available", "ringing", "available"] and real[-1] == "available", real
    assert simulated[:3] == real[:3] and simulated[-1] == real[-1], simulated


def blind_to_nobody(pbx, cc: Center, caller: str) -> dict:
    """Ana blind-transfers her caller to ray, whose phone never answers: the caller waits in support again and reaches
    ana once more (support may ring ray first: he never answers); what the stored call says of it."""
    assert cc.ask("ana", "state", {"state": "available"})["ok"] and cc.ask("ray", "state", {"state": "available"})["ok"]
    pbx.call("support@callcenter-queues", "keys", caller, CALLER_WAIT="60")
    until(lambda: (c := cc.call_of("ana")) and c.answered_at and c.number == caller, 20, "ana talks to the caller")
    reply = cc.ask("ana", "transfer", {"how": "blind", "kind": "agent", "agent": "ray"})
    until(lambda: cc.call_of("ana") is None or cc.call_of("ana").answered_at is None, 10, "ana's part over")
    until(lambda: (c := cc.call_of("ana")) and c.answered_at and c.number == caller, 40, "the caller back with ana, through support")
    assert cc.ask("ana", "hangup", {})["ok"]
    call = cc.stored(caller)
    return {"reply": reply["ok"], "outcome": call.outcome, "legs": [(leg.queue, leg.agent) for leg in call.legs]}


def test_a_blind_transfer_nobody_answers_puts_the_caller_back_in_the_queue_on_both_pbxs(pbx, sim, center, tmp_path):
    quick = settings(tmp_path).model_copy(update={"panel": config.PanelSettings(transfer_ring_s=3)})
    runs = [center(on=on, settings=quick, users=[ANA, {**RAY, "queues": ["support"]}]) for on in (pbx, sim)]
    caller = number()
    real, simulated = side_by_side(blind_to_nobody, (pbx, runs[0], caller), (sim, runs[1], caller))
    assert real["reply"] and real["outcome"] == "answered", real
    assert real["legs"] == [("support", "ana"), ("support", "ana")], "two legs of ana's, in support: the caller was never cut off"
    assert simulated == real, "the simulator does as Asterisk does"


def two_calls_with_after_call_work(pbx, cc: Center, first: str, second: str) -> list[tuple[str, str | None]]:
    """Ana takes two callers of support (2 s of after-call work): during the first she asks for lunch; after the second
    she wraps up. Her states as the engine stored them (every one, however short)."""
    from sqlalchemy import select

    from kernel.models import Agent, AgentStateChange

    assert cc.ask("ana", "state", {"state": "available"})["ok"]
    until(lambda: cc.agent_state("ana") == "available", 10, "ana available")
    for caller, pause in ((first, True), (second, False)):
        pbx.call("support@callcenter-queues", "keys", caller, CALLER_WAIT="30")
        until(lambda: (c := cc.call_of("ana")) and c.answered_at and c.number == caller, 20, "ana talks")
        if pause:
            assert cc.ask("ana", "state", {"state": "pause", "reason": "lunch"})["ok"]
        assert cc.ask("ana", "hangup", {})["ok"]
        cc.stored(caller)
        until(lambda: cc.agent_state("ana") == ("paused" if pause else "available"), 15, "ana after the call")
        if pause:
            assert cc.ask("ana", "state", {"state": "available"})["ok"]
            until(lambda: cc.agent_state("ana") == "available", 10, "ana back from lunch")
    with cc.store.sessions() as s:
        rows = s.execute(
            select(AgentStateChange.state, AgentStateChange.reason).join(Agent).where(Agent.name == "ana").order_by(AgentStateChange.id)
        )
        return [(state, reason) for state, reason in rows]


def test_app_queue_after_call_work_follows_the_call_at_once_and_a_pause_asked_for_during_it_wins_on_both_pbxs(pbx, sim, center, tmp_path):
    acw = settings(tmp_path, queues={"support": config.ACDQueue(wrapup_s=2), "sales": config.ACDQueue(), "billing": config.ACDQueue()})
    runs = [center(on=on, settings=acw, users=[ANA]) for on in (pbx, sim)]
    first, second = number(), number()
    real, simulated = side_by_side(two_calls_with_after_call_work, (pbx, runs[0], first, second), (sim, runs[1], first, second))
    states = [state for state, _ in real if state != "ringing"]
    assert states[-6:] == ["on_call", "paused", "available", "on_call", "wrap_up", "available"], real
    assert real[-7:-5] == [("on_call", "lunch"), ("paused", "lunch")], "the pause to come is said during the call, then taken"
    assert simulated[-7:] == real[-7:], "the simulator does as Asterisk does"


def dial_a_busy_number(pbx, cc: Center) -> list[dict]:
    """Ana dials a number that is busy: what her screen is told once her phone answered."""
    told: list = []
    send = cc.notifier.send
    cc.notifier.send = lambda notes: (told.extend(notes := list(notes)), send(notes))  # type: ignore[method-assign]
    assert cc.ask("ana", "dial", {"number": "551199900001"})["ok"], "her phone answered"
    failed = until(lambda: [n for n in told if n.event == "dial_failed" and n.room == "agent:ana"], 20, "the number's answer")
    assert cc.ask("ana", "hangup", {}) is not None
    return [{k: v for k, v in n.payload.items() if k != "now"} for n in failed]


def test_a_click_to_dial_that_meets_a_busy_number_says_so_on_both_pbxs(pbx, sim, center):
    runs = [center(on=on, users=[ANA]) for on in (pbx, sim)]
    real, simulated = side_by_side(dial_a_busy_number, (pbx, runs[0]), (sim, runs[1]))
    assert real == [{"number": "551199900001", "status": "BUSY"}], real
    assert simulated == real, "the simulator does as Asterisk does"
