"""The local AWS API: a moto server on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import urllib.request
from types import TracebackType

import structlog

from responder.errors import SandboxError
from responder.sandbox.broker import free_port

log = structlog.get_logger(__name__)

SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # nosec B105 # moto's dummy keys


class AwsSandbox:
    """A ThreadedMotoServer; `reset()` wipes its state."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: object | None = None

    @property
    def endpoint_url(self) -> str:
        """What boto3 takes as endpoint_url."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server in this process; returns the endpoint URL."""
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise SandboxError("moto[server] is not installed: pip install 'incident-responder[sandbox]'") from exc
        for key, value in SANDBOX_CREDENTIALS.items():
            os.environ.setdefault(key.upper(), value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        log.info("aws_sandbox_started", endpoint=self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        """Wipe every resource in the sandbox."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310 - loopback
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310  # nosec B310 # http to our own loopback server
            pass

    def stop(self) -> None:
        """Stop the server."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()  # type: ignore[attr-defined]

    def __enter__(self) -> AwsSandbox:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
