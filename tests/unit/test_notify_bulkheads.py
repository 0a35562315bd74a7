"""Webhook pages run in their receiver's thread pool: a receiver that hangs holds up no page to another one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from responder import threadpools
from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.threadpools import NOTIFY, NOTIFY_THREADS_PER_HOST, notify_pool, pool

DETECT = 15.0  # failure detector only: a page queued behind the hung ones never finishes while they hang
HUNG = NOTIFY_THREADS_PER_HOST + 4  # more than the one shared pool of 8 had, and more than a receiver's own


class Receiver:
    """A 127.0.0.1 webhook receiver; with `hang`, each POST waits until `release()` (or the receiver stops)."""

    def __init__(self, *, hang: bool) -> None:
        self.gate = threading.Event()
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                if hang:
                    receiver.gate.wait(60)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/security"

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(name="receivers")
def _receivers() -> Iterator[tuple[Receiver, Receiver]]:
    """A receiver that hangs (a chat webhook down) and one that answers (the paging service); both stopped after."""
    hung, answering = Receiver(hang=True), Receiver(hang=False)
    hung.thread.start()
    answering.thread.start()
    try:
        yield hung, answering
    finally:
        hung.stop()
        answering.stop()


def _page(url: str, key: str) -> tuple[object, object, ActuationContext]:
    actuator = registry.get("notify.webhook.post_message")
    params = actuator.params.model_validate({"url": url, "key_id": "oncall", "title": "key contained",
                                             "timeout": 30})
    ctx = ActuationContext(aws=None, incident="inc-1", key=key, webhook_keys={"oncall": b"s" * 32})  # type: ignore[arg-type]
    return actuator, params, ctx


async def test_a_page_reaches_its_receiver_while_another_receiver_hangs(receivers, unique, monkeypatch):
    """A page to the paging service is delivered while more pages than a pool holds hang on a chat webhook."""
    monkeypatch.setattr(threadpools, "_pools", {})  # receivers of earlier tests hold no slot of NOTIFY_HOSTS
    hung, answering = receivers
    stuck = []
    for n in range(HUNG):
        actuator, params, ctx = _page(hung.url, f"hung-{unique}-{n}")
        stuck.append(asyncio.create_task(actuator.apply(params, ctx)))  # type: ignore[attr-defined]
    try:
        async with asyncio.timeout(DETECT):
            while hung.posts < NOTIFY_THREADS_PER_HOST:  # the hung receiver's threads are all taken
                await asyncio.sleep(0.01)
        actuator, params, ctx = _page(answering.url, f"page-{unique}")
        try:
            result = await asyncio.wait_for(actuator.apply(params, ctx), DETECT)  # type: ignore[attr-defined]
        except TimeoutError:
            pytest.fail("the page to the answering receiver waited behind the hung receiver's pages")
        assert result.outputs == {"status": 200}
        assert answering.posts == 1
        assert not any(task.done() for task in stuck)  # the others still hang
    finally:
        hung.gate.set()
        await asyncio.gather(*stuck, return_exceptions=True)
        for executor in threadpools._pools.values():
            executor.shutdown(wait=False)


def test_receivers_past_the_bound_share_the_notify_pool(monkeypatch):
    """The first NOTIFY_HOSTS receivers get a pool each (by host:port, case-folded); further ones share `notify`."""
    monkeypatch.setattr(threadpools, "_pools", {})
    monkeypatch.setattr(threadpools, "NOTIFY_HOSTS", 2)
    first = notify_pool("https://Hooks.Example.com/security")
    second = notify_pool("https://pager.example.com:8443/v2")
    third = notify_pool("https://chat.example.com/x")
    assert len({id(first), id(second), id(pool(NOTIFY))}) == 3
    assert third is pool(NOTIFY)
    assert notify_pool("https://hooks.example.com/other") is first  # a known receiver keeps its own
    assert first._max_workers == NOTIFY_THREADS_PER_HOST
    for executor in threadpools._pools.values():
        executor.shutdown(wait=False)
