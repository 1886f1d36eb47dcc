"""A TCP relay between the engine and a PBX's AMI port, which a test cuts, silences and keeps down on purpose."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import threading
from typing import Any

from pbx.client import ClientOptions


class Link:
    """A TCP relay from a local port to Asterisk's AMI port, on its own loop thread, that the test breaks on purpose."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.silent = False
        self.accepted = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._run(self._listen())

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, engine_r: asyncio.StreamReader, engine_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            pbx_r, pbx_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            engine_w.transport.abort()
            return
        pair = (engine_w, pbx_w)
        self.pairs.append(pair)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    if not self.silent:
                        writer.write(data)
            except OSError:
                pass
            finally:
                writer.transport.abort()

        await asyncio.gather(pump(engine_r, pbx_w), pump(pbx_r, engine_w))
        if pair in self.pairs:
            self.pairs.remove(pair)

    def options(self, pbx: Any) -> ClientOptions:
        """`pbx`'s client options (a PBXSide's), with this relay's port."""
        return dataclasses.replace(pbx.options(), port=self.port)

    def cut(self, refuse: bool = False) -> None:
        """Reset every relayed connection, both ways (SO_LINGER 0: an RST, not a goodbye); with `refuse`, new ones are refused."""

        async def cut() -> None:
            if refuse:
                await self._close_server()
            for pair in list(self.pairs):
                for writer in pair:
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()

        self._run(cut())

    def silence(self) -> None:
        """Nothing more gets through either way, nothing is closed, and new connections are refused: a dead path."""

        async def silence() -> None:
            self.silent = True
            await self._close_server()

        self._run(silence())

    def restore(self) -> None:
        """Accept and relay again, on the same port."""

        async def restore() -> None:
            self.silent = False
            if self.server is None:
                await self._listen()

        self._run(restore())

    async def _close_server(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def close(self) -> None:
        self.cut(refuse=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
