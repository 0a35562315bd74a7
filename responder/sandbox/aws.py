"""The local AWS API: a moto server on a free 127.0.0.1 port, with DynamoDB requests served one at a time.

Why serialised: moto's conditional `PutItem`/`UpdateItem`/`DeleteItem` read the item, evaluate the condition
(about 300 us of expression parsing) and then write, with no lock, while the server runs one thread per
connection. Two replicas racing for one free fleet-wide quota slot could both see it free and both win:
under load, the fleet test's quota of 5 let 6 act (docs/fleet.md). Real DynamoDB is linearizable per item,
so the sandbox serialises every DynamoDB request (tests/integration/test_fleet_guard_race.py).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from responder.errors import SandboxError
from responder.sandbox.broker import free_port
from responder.sandbox.threaded import Threaded

log = structlog.get_logger(__name__)

RESET_S = 120.0
"""The bound on a reset of our own loopback moto server. moto's backends are global to the process, so a reset after
other sandboxes in the same process ran (a test worker, a tabletop run after another) resets their state too: 14.6 s
was seen after the shipped playbooks' run, where 10 s, the bound before 2026-12-07, failed a CI run."""

SANDBOX_ACCOUNT = "123456789012"
"""The account moto serves for the sandbox's credentials (moto's default, unless `MOTO_ACCOUNT_ID` names another)."""

SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # nosec B105 # moto's dummy keys


def sandbox_account(configured: str | None, sandbox: str) -> str:
    """The account responder acts in against a sandbox (`aws_account_id`): the sandbox's own, `sandbox`, never a
    configured production one (the account guard would refuse every sandbox finding); one line when it replaces one."""
    if configured is not None and configured != sandbox:
        log.warning("sandbox_account_replaced", configured=configured, sandbox=sandbox)
    return sandbox


_Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerialisedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time (its whole response built under the lock)."""

    def __init__(self, app: _Wsgi) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            response = self.app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


class AwsSandbox(Threaded[Any]):
    """A threaded moto server (as moto's ThreadedMotoServer, plus `SerialisedDynamoDB`); `reset()` wipes its state."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()

    @property
    def account(self) -> str:
        """The account moto serves the sandbox's credentials in (`MOTO_ACCOUNT_ID`, else moto's default); SandboxError
        when `MOTO_ACCOUNT_ID` is no 12 ASCII digits (moto answers every call with a 500 then)."""
        account = os.environ.get("MOTO_ACCOUNT_ID", SANDBOX_ACCOUNT)
        if len(account) != 12 or not (account.isascii() and account.isdigit()):
            raise SandboxError(f"MOTO_ACCOUNT_ID={account!r}: the sandbox's account must be 12 digits "
                               "(unset: moto's 123456789012)")
        return account

    @property
    def endpoint_url(self) -> str:
        """What boto3 takes as endpoint_url."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server in this process; returns the endpoint URL."""
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as exc:
            raise SandboxError("moto[server] is not installed: pip install 'incident-responder[sandbox]'") from exc
        for key, value in SANDBOX_CREDENTIALS.items():
            os.environ.setdefault(key.upper(), value)
        app = SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._serve(make_server("127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler),
                    "moto-server")
        log.info("aws_sandbox_started", endpoint=self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        """Wipe every resource in the sandbox."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        started = time.monotonic()
        with urllib.request.urlopen(req, timeout=RESET_S):  # noqa: S310  # nosec B310 # http to our own loopback server
            pass
        if (took := time.monotonic() - started) > 5.0:
            log.info("aws_sandbox_reset_slow", seconds=round(took, 1), detail="moto's state is the process's")
