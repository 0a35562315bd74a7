"""A sandbox server run on a daemon thread of this process (the moto server, responder/sandbox/aws.py, and the fault
proxy, responder/sandbox/faults.py): stopped by `stop()` or by leaving its `with`."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar


class Server(Protocol):
    """What a socketserver-style server offers the thread that runs it."""

    def serve_forever(self) -> None:
        """Serve until `shutdown`."""

    def shutdown(self) -> None:
        """Make `serve_forever` return."""

    def server_close(self) -> None:
        """Close the listening socket."""


S = TypeVar("S", bound=Server)


class Threaded(Generic[S]):
    """Serves one server on a daemon thread; `stop()` shuts it down, closes its socket and joins the thread."""

    join_timeout: float | None = None
    """How long `stop()` waits for the thread (None: until it ends)."""

    def __init__(self) -> None:
        self._server: S | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start serving; returns the endpoint URL."""
        raise NotImplementedError

    def _serve(self, server: S, name: str) -> None:
        """Run `server` on a daemon thread called `name`."""
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.join_timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
