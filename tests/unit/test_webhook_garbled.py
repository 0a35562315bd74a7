"""notify.webhook against a receiver (or proxy) that answers with bytes that are not HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.errors import TransientActuationError


@pytest.fixture(name="garbled_url")
def _garbled_url() -> Iterator[str]:
    """A 127.0.0.1 server that reads a request and answers a line that is no HTTP status line."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # so the loop sees `stop`: closing a socket does not wake a blocked accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"garbage from a broken proxy\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()
    thread.join(timeout=5)


async def test_a_garbled_answer_is_transient_not_a_crash(garbled_url):
    """A reply that is not HTTP (BadStatusLine) is a transient failure that is retried, not an unexpected exception."""
    actuator = registry.get("notify.webhook.post_message")
    p = actuator.params.model_validate({"url": garbled_url, "key_id": "oncall", "title": "t", "timeout": 5})
    ctx = ActuationContext(aws=None, incident="inc", key="k" * 32, webhook_keys={"oncall": b"s" * 32})  # type: ignore[arg-type]
    with pytest.raises(TransientActuationError):
        await actuator.apply(p, ctx)
