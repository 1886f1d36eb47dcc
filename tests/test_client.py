"""The AMI client over real sockets on 127.0.0.1, against recorded Asterisk traffic."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kernel.exceptions import ActionError, AMIConnectionError, AuthenticationError
from pbx.client import AMIClient, ClientOptions
from pbx.codec import Message
from pbx.playback import PlaybackServer, recorded_events
from pbx.trace import replay
from pbx.tracker import CallTracker, event_time
from tests.conftest import TRACES
from tests.waiting import eventually

SECRET = "s3cret-for-tests"


class Recorder:
    """A fake consumer: the tracker plus everything the client handed over."""

    def __init__(self) -> None:
        self.tracker = CallTracker()
        self.events: list[Message] = []
        self.records = []
        self.snapshots = []

    def on_event(self, message: Message, arrival: float) -> None:
        self.events.append(message)
        self.records += [e.record for e in self.tracker.feed(message, event_time(message, arrival)) if e.record]

    def on_resync(self, snapshot) -> None:
        self.snapshots.append(snapshot)
        self.records += [e.record for e in self.tracker.resync(snapshot.channels, snapshot.queue_entries, snapshot.at) if e.record]


def options(port: int, secret: str = SECRET, **kw) -> ClientOptions:
    return ClientOptions("127.0.0.1", port, "cti", secret, reconnect_min=0.05, reconnect_max=0.2, connect_timeout=1.0, **kw)


async def session(server: PlaybackServer, recorder: Recorder, **kw):
    port = await server.start()
    client = AMIClient(options(port, **kw), recorder.on_event, recorder.on_resync)
    task = asyncio.create_task(client.run())
    await asyncio.wait_for(client.connected.wait(), 5)
    await eventually(lambda: recorder.snapshots)
    return client, task


async def finish(server, client, task):
    await client.close()
    await asyncio.wait_for(task, 5)
    await server.stop()


def test_live_session_tracks_a_real_call_and_sends_only_what_it_should():
    async def scenario():
        server = PlaybackServer("cti", SECRET, speed=50)
        recorder = Recorder()
        client, task = await session(server, recorder)
        await server.play([TRACES / "answered_agent_hangs_up.jsonl"])
        await eventually(lambda: recorder.records)
        await finish(server, client, task)
        return server, recorder

    server, recorder = asyncio.run(scenario())
    [record] = recorder.records
    [expected] = replay(TRACES / "answered_agent_hangs_up.jsonl")
    assert (record.linkedid, record.agent, record.outcome, record.hangup_by, record.ivr_digits) == (
        expected.linkedid,
        expected.agent,
        expected.outcome,
        expected.hangup_by,
        expected.ivr_digits,
    )
    assert [a.action for a in server.actions] == ["Login", "CoreShowChannels", "QueueStatus", "Logoff"]
    login = server.actions[0]
    assert login["Username"] == "cti" and login["Events"] == "on"
    assert len({a["ActionID"] for a in server.actions}) == 4


def test_wrong_secret_fails_once_with_a_clear_error():
    async def scenario():
        server = PlaybackServer("cti", SECRET)
        port = await server.start()
        client = AMIClient(options(port, secret="wrong"), lambda m, t: None)
        with pytest.raises(AuthenticationError, match="refused login for user 'cti': Authentication failed"):
            await asyncio.wait_for(client.run(), 5)
        await server.stop()
        return server

    server = asyncio.run(scenario())
    assert [a.action for a in server.actions] == ["Login"]


def test_dropped_connection_reconnects_resyncs_and_finishes_the_call():
    frames = recorded_events(TRACES / "answered_caller_hangs_up.jsonl")
    cut = next(i for i, f in enumerate(frames) if f.message["Event"] == "BridgeEnter") + 2
    alive = {}
    for f in frames[:cut]:
        m = f.message
        if m["Event"] == "Newchannel":
            alive[m["Uniqueid"]] = {
                "Channel": m["Channel"],
                "Uniqueid": m["Uniqueid"],
                "Linkedid": m["Linkedid"],
                "CallerIDNum": "5511999990001",
                "Duration": "00:00:01",
                "Application": "Queue",
            }

    async def scenario():
        server = PlaybackServer("cti", SECRET, speed=50)
        recorder = Recorder()
        client, task = await session(server, recorder)
        await server.play_frames(frames[:cut])
        await eventually(lambda: len(recorder.events) >= cut)
        server.channels = list(alive.values())
        server.drop()
        await eventually(lambda: client.sessions == 2 and len(recorder.snapshots) == 2)
        await server.play_frames(frames[cut:])
        await eventually(lambda: recorder.records)
        await finish(server, client, task)
        return server, recorder

    server, recorder = asyncio.run(scenario())
    assert len(recorder.snapshots[1].channels) == 4
    [record] = recorder.records
    assert record.outcome == "answered" and record.agent == "Bob" and record.hangup_by == "caller"
    assert record.resynced
    assert [a.action for a in server.actions].count("Login") == 2


def test_silent_peer_is_detected_by_ping_and_reconnected():
    async def scenario():
        server = PlaybackServer("cti", SECRET, answer_pings=False)
        recorder = Recorder()
        client, task = await session(server, recorder, ping_interval=0.1, ping_timeout=0.1)
        await eventually(lambda: client.sessions >= 2)
        await finish(server, client, task)
        return server

    server = asyncio.run(scenario())
    assert server.logins >= 2
    assert "Ping" in [a.action for a in server.actions]


def test_malformed_input_is_skipped_and_the_session_survives(caplog):
    async def scenario():
        server = PlaybackServer("cti", SECRET, speed=100)
        recorder = Recorder()
        client, task = await session(server, recorder, max_frame_bytes=4096)
        server.send_raw(b"this is not a frame\r\n\r\n")
        server.send_raw(b"Event: Newchannel\r\nCallerIDName: Jo\xe3o\r\n\r\n")
        server.send_raw(b"Event: Huge\r\nData: " + b"x" * 20000 + b"\r\n\r\n")
        server.send_raw(b"Event: SomethingNew\r\nFoo: bar\r\n\r\n")
        await server.play([TRACES / "abandon_in_queue.jsonl"])
        await eventually(lambda: recorder.records)
        await finish(server, client, task)
        return client, recorder

    with caplog.at_level(logging.WARNING):
        client, recorder = asyncio.run(scenario())
    assert client.frame_errors == 3
    assert [m["CallerIDName"] for m in recorder.events if m.get("Event") == "Newchannel"][0] == "Jo\ufffdo"
    assert "SomethingNew" in [m["Event"] for m in recorder.events]
    assert recorder.records[0].outcome == "abandoned"
    assert "AMI frame skipped" in caplog.text


def test_actions_errors_and_agi_completion():
    async def scenario():
        server = PlaybackServer("cti", SECRET)
        recorder = Recorder()
        client, task = await session(server, recorder)
        with pytest.raises(ActionError, match="Invalid/unknown command: NoSuchAction"):
            await client.send_action({"Action": "NoSuchAction"})
        reply = await client.send_action({"Action": "AGI", "Channel": "PJSIP/1-1", "Command": "ANSWER", "CommandID": "c-1"}, timeout=2)
        with pytest.raises(ValueError, match="line break"):
            await client.send_action({"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "1\r\nApplication: System"})
        await finish(server, client, task)
        return server, reply

    server, reply = asyncio.run(scenario())
    assert [m.get("Event") or m.get("Response") for m in reply] == ["Success", "AsyncAGIExec"]
    assert reply[-1]["CommandId"] == "c-1"
    assert "Originate" not in [a.action for a in server.actions]


def test_a_cancel_that_lands_with_a_lost_connection_still_cancels_the_sender():
    """The engine's stop cancels loops that may be waiting on an answer just as the connection drops: the cancel must win."""

    async def scenario():
        server = PlaybackServer("cti", SECRET)
        client, task = await session(server, Recorder())
        sender = asyncio.create_task(client.send_action({"Action": "Ping"}))
        await asyncio.sleep(0)
        client._protocol.connection_lost(None)
        sender.cancel()
        outcome = (await asyncio.gather(sender, return_exceptions=True))[0]
        await finish(server, client, task)
        return outcome

    assert isinstance(asyncio.run(scenario()), asyncio.CancelledError)


def test_unreachable_or_silent_port_is_a_clear_connection_error():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        silent_port = server.sockets[0].getsockname()[1]
        with pytest.raises(AMIConnectionError, match="sent no AMI banner"):
            await AMIClient(options(silent_port), lambda m, t: None).run(once=True)
        server.close()
        await server.wait_closed()
        with pytest.raises(AMIConnectionError, match="cannot connect to AMI at 127.0.0.1:"):
            await AMIClient(options(silent_port), lambda m, t: None).run(once=True)
        with pytest.raises(AMIConnectionError, match="not connected"):
            await AMIClient(options(silent_port), lambda m, t: None).send_action({"Action": "Ping"})

    asyncio.run(scenario())


def test_events_racing_the_resync_snapshot_are_applied_after_it():
    newer = {
        "Event": "Newchannel",
        "Channel": "PJSIP/trunk-0000009",
        "ChannelState": "4",
        "ChannelStateDesc": "Ring",
        "CallerIDNum": "5511955556666",
        "CallerIDName": "Late",
        "Uniqueid": "1795390000.9",
        "Linkedid": "1795390000.9",
        "Exten": "100",
    }

    async def scenario():
        server = PlaybackServer("cti", SECRET, after_channels=[newer])
        recorder = Recorder()
        client, task = await session(server, recorder)
        await eventually(lambda: any(m.get("Event") == "Newchannel" for m in recorder.events))
        open_calls = recorder.tracker.open_calls()
        await finish(server, client, task)
        return open_calls

    assert asyncio.run(scenario()) == ["1795390000.9"], "a call that started while the snapshot was taken is not undone by it"
