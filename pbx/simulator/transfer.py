"""Attended transfer (the Atxfer action) in the simulator.

The transferer's peer waits on hold in the original bridge while the
transferer calls the target; when the transferer hangs up after the target
answered, AttendedTransfer is raised and the target joins the peer. If the
transferer hangs up before that, the consultation call is dropped and the
original bridge ends as if the transferer had simply hung up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbx.simulator.core import Bridge, Channel

if TYPE_CHECKING:
    from pbx.simulator.core import Sim


class AttendedTransfer:
    """One transfer in progress, kept on the transferer's channel."""

    def __init__(self, sim: Sim, transferer: Channel, peer: Channel, original: Bridge, target: Channel) -> None:
        self.sim = sim
        self.transferer = transferer
        self.peer = peer
        self.original = original
        self.target = target

    @classmethod
    def start(cls, sim: Sim, transferer: Channel, context: str, exten: str) -> AttendedTransfer:
        """Put the peer on hold, take the transferer out, and call the target."""
        original = transferer.bridge
        assert original is not None
        peer = next(c for c in original.channels if c is not transferer)
        original.holding = True
        sim.chan_event("Hold", transferer)
        sim.chan_event("MusicOnHoldStart", peer, ("Class", "default"))
        sim.leave_bridge(transferer)
        one, two, target = sim.call_local(transferer, f"Local/{exten}@{context}", "AppDial")
        sim.event("DialBegin", "call", sim.fields(transferer), sim.fields(one, "Dest"), ("DialString", target))
        transfer = cls(sim, transferer, peer, original, one)
        transferer.atxfer = transfer
        one.on_answer = transfer._target_answered
        sim.start_pbx(two, two.context, two.exten, 1)
        return transfer

    def _target_answered(self, leg: Channel) -> None:
        self.sim.event("DialEnd", "call", self.sim.fields(self.transferer), self.sim.fields(leg, "Dest"), ("DialStatus", "ANSWER"))
        if not self.transferer.hungup:
            self.sim.bridge(leg, self.transferer)

    def cancel(self) -> None:
        """CancelAtxfer: the consultation ends and the transferer is back with the peer (Asterisk does it a moment later, by
        playing the atxferabort code's DTMF on the transferer's channel)."""
        sim, target = self.sim, self.target
        if self.transferer.atxfer is not self or self.transferer.hungup:
            return
        self.transferer.atxfer = None
        self.original.holding = False
        if self.transferer.bridge is not None:
            sim.leave_bridge(self.transferer)
        sim.join_bridge(self.original, self.transferer)
        sim.chan_event("MusicOnHoldStop", self.peer)
        sim.chan_event("Unhold", self.transferer)
        if target.on_answer is not None:
            target.on_answer = None
            sim.event("DialEnd", "call", sim.fields(self.transferer), sim.fields(target, "Dest"), ("DialStatus", "CANCEL"))
        if not target.hungup:
            sim.hangup(target)

    def transferer_gone(self) -> None:
        """The transferer hung up: complete the transfer if the target is talking to them, else abandon it."""
        sim, original, peer, target = self.sim, self.original, self.peer, self.target
        original.holding = False
        consult = self.transferer.bridge
        if consult is not None and target in consult.channels and not peer.hungup and peer in original.channels:
            sim.event(
                "AttendedTransfer",
                "call",
                ("Result", "Success"),
                sim.fields(self.transferer, "OrigTransferer"),
                ("OrigBridgeUniqueid", original.uniqueid),
                sim.fields(self.transferer, "SecondTransferer"),
                ("SecondBridgeUniqueid", consult.uniqueid),
                sim.fields(peer, "Transferee"),
                sim.fields(target, "TransferTarget"),
                ("IsExternal", "No"),
                ("DestType", "Bridge"),
                ("DestBridgeUniqueid", original.uniqueid),
            )
            if peer.waiting == "block":
                sim.wake(peer, ("attended", target.name, original.uniqueid))
            consult.holding = True
            sim.leave_bridge(target)
            sim.leave_bridge(self.transferer)
            sim.join_bridge(original, target)
            sim.chan_event("MusicOnHoldStop", peer)
            return
        target.on_answer = None
        if not target.hungup:
            sim.event("DialEnd", "call", sim.fields(self.transferer), sim.fields(target, "Dest"), ("DialStatus", "CANCEL"))
            sim.hangup(target)
        sim.chan_event("MusicOnHoldStop", peer)
        if len(original.channels) == 1 and peer.waiting == "block":
            sim.wake(peer, "bridge_ended")
