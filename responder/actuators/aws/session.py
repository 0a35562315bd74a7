"""boto3 clients for actuators: endpoint_url, botocore retries off, calls off the event loop, errors classified.

Each call runs in its AWS service's own thread pool (`responder.threadpools.aws_pool`): a service that hangs holds
only its own threads, never another service's, the timeline's writes or the pages to on-call.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import structlog
from opentelemetry.trace import SpanKind

from responder import threadpools
from responder.errors import ConfigError, PermanentActuationError, TransientActuationError
from responder.settings import Settings
from responder.tracing import span

log = structlog.get_logger(__name__)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "EntityTemporarilyUnmodifiable",
        "TooManyUpdates",
        "ResourceConflictException",
        # the rest of botocore's standard-mode throttling codes (botocore's own retries are off: total_max_attempts=1)
        "RequestThrottledException",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "TransactionInProgressException",  # DynamoDB: the same ClientRequestToken still running; idempotent
        # not LimitExceededException: Secrets Manager and KMS send it (400) for a quota a retry cannot lift, which
        # would only delay the failure reaching a human; API Gateway's rate limit sends it as 429, retried below
    }
)


NO_CREDENTIALS = (
    "no AWS credentials: set RESPONDER_AWS_ACCESS_KEY_ID and RESPONDER_AWS_SECRET_ACCESS_KEY, or provide them "
    "through the standard AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role)"
)


def classify(exc: Exception) -> Exception:
    """Map a botocore error to a Transient or Permanent actuation error."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{code}: {err.get('Message', '')}"
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientActuationError(message, code=code)
        return PermanentActuationError(message, code=code)
    if isinstance(
        exc,
        botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError  # ConnectionClosedError: reset before a reply (tests/faults)
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ResponseStreamingError
        | botocore.exceptions.IncompleteReadError,
    ):
        return TransientActuationError(f"{exc.__class__.__name__}: {exc}", code=exc.__class__.__name__)
    if isinstance(exc, TimeoutError):
        return TransientActuationError("call timed out", code="Timeout")
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return PermanentActuationError(str(exc), code="ParamValidation")
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return PermanentActuationError(f"no AWS credentials: {exc}", code="NoCredentials")
    return exc


class AwsSession:
    """Creates one client per service (thread-safe), runs calls in the service's threads with a deadline."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        call_timeout: float = 20.0,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.call_timeout = call_timeout
        creds = credentials or {}
        self._session = boto3.session.Session(
            region_name=region,
            aws_access_key_id=creds.get("aws_access_key_id"),
            aws_secret_access_key=creds.get("aws_secret_access_key"),
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._io_timeout = 5 + max(5, int(call_timeout))  # connect + read: how long one attempt can last
        self._config = botocore.config.Config(
            # total_max_attempts, not max_attempts: botocore reads max_attempts=1 as "one retry", and a hidden
            # retry of a call whose reply was lost applies it twice (found by tests/faults: drop a reply)
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=max(5, int(call_timeout)),
            # one connection per thread of the service's pool: a call never waits for a connection, and botocore
            # never discards one (its default is the same 10; set here so the two cannot drift apart)
            max_pool_connections=threadpools.AWS_THREADS_PER_SERVICE,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsSession:
        """The session the actuators use, from settings (region, endpoint, call timeout, credentials)."""
        return cls(region=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
                   call_timeout=settings.aws_call_timeout, credentials=settings.aws_credentials())

    def require_credentials(self) -> None:
        """ConfigError (one line, naming the settings) when neither settings nor the boto3 chain give credentials."""
        if self._session.get_credentials() is None:
            raise ConfigError(NO_CREDENTIALS)

    def client(self, service: str) -> Any:
        """The cached boto3 client for `service`."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # type: ignore[call-overload]  # service names come from actuators, not literals
                    endpoint_url=self.endpoint_url,
                    config=self._config,
                )
            return self._clients[service]

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Run one API call in the service's thread pool; raise Transient/PermanentActuationError on failure.

        `call_timeout` counts the time queued behind the service's other calls too. A call still queued when it
        fires, or when the caller is cancelled, is cancelled and never runs; one that started is waited for until
        it lands (`_landed`) on a timeout, and left to land on a cancellation.
        """
        fn = getattr(self.client(service), operation)
        with span(f"aws.{service}.{operation}", None, SpanKind.CLIENT,
                  {"rpc.system": "aws-api", "rpc.service": service, "rpc.method": operation}):
            job = threadpools.submit(threadpools.aws_pool(service), fn, **kwargs)
            attempt = asyncio.wrap_future(job)
            try:
                async with asyncio.timeout(self.call_timeout):
                    result: dict[str, Any] = await asyncio.shield(attempt)
            except TimeoutError:
                if job.cancel():  # still queued: it will never run, so there is nothing to wait for
                    log.warning("aws_call_timed_out_queued", service=service, operation=operation,
                                timeout=self.call_timeout)
                    raise TransientActuationError("call timed out before it started (queued behind other calls to "
                                                  f"{service}); it will not run", code="Timeout") from None
                await self._landed(attempt)
                raise TransientActuationError("call timed out", code="Timeout") from None
            except asyncio.CancelledError:  # the caller gave up (a step's timeout): a queued call must not run later
                if not job.cancel():
                    attempt.add_done_callback(_consume)
                raise
            except Exception as exc:  # classify maps botocore errors; anything it does not know is re-raised as is
                mapped = classify(exc)
                if mapped is exc:
                    raise
                raise mapped from exc
        return result

    async def _landed(self, attempt: asyncio.Future[Any]) -> None:
        """Wait (bounded by botocore's own timeouts) for a timed-out call's thread to finish.

        The API may still apply a call we stopped waiting for. Letting the attempt end first means a retry never
        overlaps it, and the `verify()` that runs before a retry sees its effect (tests/faults: latency).
        """
        try:
            await asyncio.wait_for(asyncio.shield(attempt), self._io_timeout + 1.0)
        except Exception:  # noqa: BLE001 - whatever it ended with, the caller reports the timeout
            attempt.add_done_callback(_consume)


def _consume(attempt: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned attempt's outcome so asyncio does not log it as never retrieved."""
    if not attempt.cancelled():
        attempt.exception()
