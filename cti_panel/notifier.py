"""The only code that sends Socket.IO messages.

In the embedded setup the engine and the panel share one process and one
`SocketIO`; with several panel workers, the engine's notifier is a write-only
`SocketIO(message_queue=redis_url)` and Redis carries its messages to
whichever worker holds each socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_socketio import SocketIO

from cti_panel.live import Note


class Notifier:
    """Sends notes to rooms and answers to single sockets."""

    def __init__(self, socketio: SocketIO | None = None) -> None:
        self.socketio = socketio

    def init_app(self, socketio: SocketIO) -> None:
        """Bind to the panel's SocketIO (or a write-only one on the message queue)."""
        self.socketio = socketio

    def send(self, notes: Iterable[Note]) -> None:
        """Push each note to its room."""
        if self.socketio is None:
            return
        for note in notes:
            self.socketio.emit(note.event, note.payload, to=note.room)

    def to_socket(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """Answer one socket (a request's reply, a snapshot)."""
        if self.socketio is not None:
            self.socketio.emit(event, payload, to=sid)
