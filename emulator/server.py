"""Run a WSGI app (the emulator, the Switchboard app, a test webhook receiver) on loopback in a
background thread. Used by end-to-end tests and the demo launcher."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


@dataclass
class ServerHandle:
    """A running server: its base URL (no trailing slash) and how to stop it."""

    url: str
    host: str
    port: int
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Handler(WSGIRequestHandler):
    # Werkzeug writes a response's headers and body separately; with Nagle's algorithm the body
    # then waits for the peer's delayed ACK (tens of milliseconds on loopback).
    disable_nagle_algorithm = True


class _QuietHandler(_Handler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> ServerHandle:
    """Serve `app` with Werkzeug's threaded server; `port=0` picks a free port.

    Returns once the socket is listening, so the URL can be used at once. `quiet` drops the
    per-request access log lines.
    """
    handler = _QuietHandler if quiet else _Handler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    real_port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"wsgi-{real_port}")
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    return ServerHandle(url=f"http://{shown}:{real_port}", host=host, port=real_port, _server=server, _thread=thread)
