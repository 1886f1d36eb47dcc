"""Serving the panel: Werkzeug's threaded server in a background thread (embedded setup and tests).

Fine for a help desk's few dozen agents on one machine; several workers
behind a proxy (gunicorn with threads running `callcenter.wsgi`, Redis as the message queue) for more,
as the README describes.
"""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


class PanelServer:
    """The panel's HTTP and WebSocket server, started and stopped from code."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="panel-http", daemon=True)

    @property
    def url(self) -> str:
        """Where browsers go."""
        return f"http://{self.server.host}:{self.server.port}"

    def start(self) -> PanelServer:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
