"""The sandbox's threaded servers (the fault proxy, the moto server) stop for good: socket closed, thread joined."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from responder.errors import SandboxError
from responder.sandbox.aws import SANDBOX_CREDENTIALS, AwsSandbox
from responder.sandbox.faults import FaultProxy
from responder.sandbox.threaded import Threaded


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _listening(port: int) -> bool:
    """Whether something accepts on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _rebindable(port: int) -> bool:
    """Whether a new listener can take the port (SO_REUSEADDR: a closed listener's connections may linger)."""
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            again.bind(("127.0.0.1", port))
            again.listen()
        except OSError:
            return False
        return True


def _threads(name: str, before: set[threading.Thread]) -> list[threading.Thread]:
    """The threads called `name` started since `before` (another test's session server may run beside them)."""
    return [t for t in threading.enumerate() if t.name == name and t not in before]


class _SlowToEnd(ThreadingHTTPServer):
    """A server whose thread winds down a moment after `shutdown` (as moto's does): only a join waits for it."""

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        super().serve_forever(poll_interval)
        time.sleep(0.3)


class _Teapot(Threaded[ThreadingHTTPServer]):
    """The smallest Threaded server: answers 418 to every GET."""

    def start(self) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_error(418)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        server = _SlowToEnd(("127.0.0.1", 0), Handler)
        self._serve(server, "teapot")
        return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_threaded_server_serves_until_stopped_then_frees_its_port_and_thread():
    """Leaving the with-block shuts the server down, closes its socket and joins its thread; stop() again is a no-op."""
    before = set(threading.enumerate())
    with _Teapot() as teapot:
        server = teapot._server  # held here, so only server_close() can close its socket (not the collector)
        assert server is not None
        port = server.server_address[1]
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert answered.value.code == 418
        [thread] = _threads("teapot", before)
    assert not thread.is_alive()
    assert server.socket.fileno() == -1
    assert not _listening(port)
    assert _rebindable(port)
    teapot.stop()  # twice: nothing left to stop


def test_the_fault_proxy_stops_listening_and_joins_its_thread():
    """After stop() the proxy's port is free, its thread ended, and it has no endpoint any more."""
    before = set(threading.enumerate())
    proxy = FaultProxy("http://127.0.0.1:9")
    try:
        port = _port_of(proxy.start())
        [thread] = _threads("fault-proxy", before)
        server = proxy._server  # held here, so only server_close() can close its socket (not the collector)
        assert server is not None
        assert _listening(port)
    finally:
        proxy.stop()
    assert not thread.is_alive()
    assert server.socket.fileno() == -1
    assert not _listening(port)
    assert _rebindable(port)
    with pytest.raises(SandboxError, match="not started"):
        _ = proxy.endpoint_url
    proxy.stop()


def test_the_moto_server_stops_listening_and_joins_its_thread(monkeypatch):
    """The moto server's with-block serves on its free 127.0.0.1 port, then frees the port and joins its thread."""
    for key, value in SANDBOX_CREDENTIALS.items():  # what start() sets for moto, undone after this test
        monkeypatch.setenv(key.upper(), value)
    before = set(threading.enumerate())
    with AwsSandbox() as aws:
        [thread] = _threads("moto-server", before)
        server = aws._server  # held here, so only server_close() can close its socket (not the collector)
        assert _listening(aws.port)
        aws.reset()
    assert not thread.is_alive()
    assert server.socket.fileno() == -1
    assert not _listening(aws.port)
    assert _rebindable(aws.port)
