"""An AMI server on 127.0.0.1 that plays recorded Asterisk traffic to real clients.

It answers the session's own actions the way Asterisk does (banner, Login,
Ping, CoreShowChannels, QueueStatus, Logoff, ``Response: Error`` for anything
else) and sends the events of recorded traces (../shared/ami-traces) with their
original spacing in time, scaled by `speed`. The recording client's responses
and list items are left out: they answered someone else's ActionIDs.

Uses: `callcenter playback` to run a customer's capture against `monitor`;
the tests' peer for the client (login, EventLists, reconnect, resync, bad
frames); the demo until the PBX simulator replaces it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pbx.amiserver import AMIServer, Frames, event_list, reply, unknown
from pbx.codec import AMICodec, Message
from pbx.trace import read_trace

_LIST_EVENTS_KEEP = {"OriginateResponse"}


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded event and when, in seconds after the trace began, Asterisk sent it."""

    t: float
    message: Message


def recorded_events(path: str | Path) -> list[Frame]:
    """The events of a trace that any client would have received."""
    codec = AMICodec()
    frames: list[Frame] = []
    for read in read_trace(path):
        if read.dir != "in":
            continue
        for item in codec.feed(read.data.encode("utf-8")):
            if not isinstance(item, Message) or "Event" not in item:
                continue
            if "ActionID" in item and item["Event"] not in _LIST_EVENTS_KEEP:
                continue
            frames.append(Frame(read.t, item))
    return frames


@dataclass
class PlaybackServer(AMIServer):
    """A scripted Asterisk manager: real sockets, recorded events, every action kept."""

    speed: float = 1.0
    channels: list[dict[str, str]] = field(default_factory=list)
    queue_status: list[dict[str, str]] = field(default_factory=list)
    after_channels: list[dict[str, str]] = field(default_factory=list)
    # The channels the events sent so far have made and not hung up, listed by CoreShowChannels as Asterisk would.
    live: dict[str, dict[str, str]] = field(default_factory=dict)

    async def play(self, paths: Iterable[str | Path]) -> int:
        """Send the events of each trace in turn, spaced as recorded; return how many were sent."""
        sent = 0
        for path in paths:
            sent += await self.play_frames(recorded_events(path))
        return sent

    async def play_frames(self, frames: list[Frame]) -> int:
        """Send recorded events with their original spacing (scaled by `speed`)."""
        if not frames:
            return 0
        began = time.monotonic()
        first = frames[0].t
        for frame in frames:
            delay = (frame.t - first) / self.speed - (time.monotonic() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_event(frame.message)
            self._follow(frame.message)
        await self.drain()
        return len(frames)

    def _follow(self, event: Message) -> None:
        uniqueid = event.get("Uniqueid", "")
        if event.get("Event") == "Newchannel" and uniqueid:
            self.live[uniqueid] = {
                key: event.get(key, "") for key in ("Channel", "Uniqueid", "Linkedid", "CallerIDNum", "CallerIDName", "Context", "Exten")
            } | {"Duration": "00:00:00"}
        elif event.get("Event") == "Hangup":
            self.live.pop(uniqueid, None)

    def handle(self, action: Message) -> Frames:
        """CoreShowChannels and QueueStatus from the configured lists (then `after_channels`, events that race the snapshot); AGI completes at once."""
        name = action["Action"].lower()
        if name == "coreshowchannels":
            listed = {c.get("Uniqueid"): c for c in [*self.live.values(), *self.channels]}
            channels = [{"Event": "CoreShowChannel", **c} for c in listed.values()]
            return event_list(action, "Channels will follow", channels, "CoreShowChannelsComplete") + self.after_channels
        if name == "queuestatus":
            return event_list(action, "Queue status will follow", self.queue_status, "QueueStatusComplete")
        if name == "agi":
            return [
                reply(action, Message="Added AGI command to queue"),
                {
                    "Event": "AsyncAGIExec",
                    "Privilege": "agi,all",
                    "Channel": action.get("Channel", ""),
                    "CommandId": action.get("CommandID", ""),
                    "Result": "200%20result%3D0%0A",
                },
            ]
        return [unknown(action)]
