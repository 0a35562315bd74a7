"""The intake ASGI app: `POST /v1/events/{source}` → authenticate → limit → decode → produce (acks=all) → 202.

A request is answered 202 only after Kafka acknowledged every record it became; every refusal is an RFC 9457
problem document, counted in `responder_intake_rejected_total` by reason. Nothing refused reaches Kafka.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from responder.errors import BrokerUnavailable, ConfigError, EventRejected
from responder.intake.auth import TOLERANCE_S, Caller, SourceAuth
from responder.intake.deliveries import Deliveries, replay_bound, replay_key
from responder.intake.limits import RateLimiter, check_depth, read_body
from responder.intake.metrics import IntakeMetrics
from responder.intake.openapi import openapi_document
from responder.intake.problems import CLOSE, InternalErrors, Problem
from responder.intake.produce import RecordProducer, Sender, check_pinned
from responder.intake.records import records_for, webhook_delivery
from responder.normalise import decode_doc, formats, known
from responder.settings import Settings
from responder.tracing import extract, outgoing, span

log = structlog.get_logger(__name__)
JSON_TYPES = ("application/json", "text/json")


class Intake:
    """The intake's state: per-source auth and rate limits, delivery keys, the producer and metrics."""

    def __init__(self, settings: Settings, sender: Sender) -> None:
        if not settings.intake_sources:
            raise ConfigError("intake_sources: no source configured (RESPONDER_INTAKE_SOURCES)")
        for name, src in settings.intake_sources.items():  # else every delivery from it is 422, and SIEMs drop 4xx
            if src.format is not None and not known(src.format):
                valid = sorted({*formats(), *(n for f in formats().values() for n in (f.family, f.source))})
                raise ConfigError(f"intake_sources.{name}.format: {src.format!r} is not a known format, family or "
                                  f"event source; valid: {', '.join(valid)}")
        self.settings = settings
        self.sender = sender
        self.auth = {name: SourceAuth(name, src) for name, src in settings.intake_sources.items()}
        self.limits = {name: RateLimiter(src.rate_per_s, src.burst) for name, src in settings.intake_sources.items()}
        self.deliveries = Deliveries(settings.intake_dedupe_ttl_s, settings.intake_dedupe_max)
        self.replays = {name: Deliveries(2 * TOLERANCE_S, replay_bound(src.rate_per_s, src.burst, 2 * TOLERANCE_S),
                                           evict_live=False)
                        for name, src in settings.intake_sources.items()}
        self.metrics = IntakeMetrics()
        self.signing = self._signing_key(settings)
        self.producer = RecordProducer(settings, sender, self.deliveries, self.metrics, self.signing)

    @staticmethod
    def _signing_key(settings: Settings) -> tuple[str, bytes] | None:
        kid = settings.intake_signing_key_id
        if kid is None:
            if any(s.auth != "open" for s in settings.intake_sources.values()):
                raise ConfigError("intake_signing_key_id: required when a source authenticates (records are "
                                  "signed for require_signature); name a key of event_signing_keys")
            return None
        secret = settings.event_signing_keys.get(kid)
        if secret is None:
            raise ConfigError(f"intake_signing_key_id: {kid!r} is not a key of event_signing_keys")
        return kid, secret.get_secret_value().encode()

    async def accept(self, request: Request, source: str) -> dict[str, Any]:
        """Everything between the request and the 202 body; raises Problem for every refusal."""
        auth = self.auth.get(source)
        if auth is None:
            raise Problem(404, "unknown-source", f"no intake source {source!r} is configured", CLOSE)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_TYPES and not ctype.endswith("+json"):
            raise Problem(415, "unsupported-media-type", f"Content-Type {ctype or '(none)'} is not JSON", CLOSE)
        s = self.settings
        body = await read_body(request.stream(), request.headers.get("content-length"), s.intake_max_body_bytes,
                               s.intake_read_timeout_s)
        caller = auth.check(request.headers, request.query_params, body)
        if caller.webhook_id:
            self._admit_signed(source, caller)
        else:
            self.limits[source].take()  # after authentication: nobody else can spend a source's rate
        return await self._accepted(source, caller, body, request)

    def _admit_signed(self, source: str, caller: Caller) -> None:
        """A signed delivery's replay check, then its token, then its entry in the source's replay memory: remembered
        from its admission whatever its outcome (a sender's retry signs a new timestamp), so a copy, racing or
        later, is a 409 and at most `replay_bound` entries are live (each spent a token in the last 600 s)."""
        replays, key = self.replays[source], replay_key(str(caller.webhook_id), caller.webhook_timestamp)
        if replays.seen(key):  # before the rate: a replay spends none of it
            raise Problem(409, "replayed", "this webhook-id and webhook-timestamp were already delivered")
        if replays.full():  # not reached while the source keeps its rate (replay_bound); never evicts a live entry
            raise Problem(503, "replay-memory-full", f"{replays.max_entries} signed deliveries of the last "
                          f"{2 * TOLERANCE_S}s are remembered against replays; retry later",
                          {"Retry-After": str(replays.retry_after())})
        self.limits[source].take()
        replays.done(key, None, True)

    async def _accepted(self, source: str, caller: Caller, body: bytes, request: Request) -> dict[str, Any]:
        """From the decode to the 202 body, for an authenticated request admitted by its rate (and no replay)."""
        s = self.settings
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc) or "recursion" in str(exc).lower():
                raise Problem(400, "too-deep", f"JSON nesting exceeds {s.intake_max_depth} levels") from None
            raise Problem(422, "not-json", f"not JSON: {exc}") from None
        check_depth(doc, s.intake_max_depth, body)
        try:
            with span("intake.decode"):
                events = decode_doc(doc, s.intake_sources[source].format)
        except EventRejected as exc:
            raise Problem(422, "undecodable", f"{exc.reason_code}: {exc.detail}"[:500]) from None
        if not events:
            raise Problem(422, "undecodable", "the payload holds no event")
        check_pinned(s, caller, events)
        if caller.webhook_id is not None:  # before splitting: the same id with another body is a replay (409)
            self.deliveries.bind(*webhook_delivery(source, caller.webhook_id, body))
        trace = outgoing(request.headers)
        with span("intake.produce"):
            records = records_for(source, body, doc, events, caller.webhook_id, s.intake_sources[source].format,
                                  body_limit=s.intake_max_body_bytes)
            produced, duplicates = await self.producer.produce(caller, trace, records)
        return {"status": "accepted", "events": [e.id for e in events], "produced": produced,
                "duplicates": duplicates, "incident_keys": sorted({e.incident_key for e in events}),
                "trace_id": dict(trace)["traceparent"].decode().split("-")[1]}

    async def post_event(self, request: Request) -> Response:
        """`POST /v1/events/{source}`."""
        started = time.perf_counter()
        source = request.path_params["source"]
        label = source if source in self.auth else "unknown"
        try:
            with span("intake.request", extract(request.headers), SpanKind.SERVER, {"responder.source": label}):
                answer: Response = JSONResponse(await self.accept(request, source), status_code=202)
            reason = "accepted"
        except Problem as problem:
            answer, reason = problem.response(request.url.path), problem.slug
            self.metrics.rejected.labels(label, reason).inc()
            if problem.status == 401:
                self.metrics.auth_failures.labels(label, reason).inc()
        self.metrics.requests.labels(label, str(answer.status_code)).inc()
        self.metrics.latency.labels(label).observe(time.perf_counter() - started)
        log.info("intake_request", source=label, status=answer.status_code, reason=reason)
        return answer

    async def healthz(self, request: Request) -> Response:
        """The process answers."""
        return Response(b"ok\n", media_type="text/plain")

    async def readyz(self, request: Request) -> Response:
        """Ready when the producer is connected (tries to connect when it is not)."""
        if not self.sender.connected:
            try:
                await self.sender.start()
            except BrokerUnavailable:
                return Response(b"not ready: Kafka unreachable\n", status_code=503, media_type="text/plain")
        return Response(b"ready\n", media_type="text/plain")

    async def metrics_endpoint(self, request: Request) -> Response:
        """Prometheus text format."""
        return Response(self.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI document (the committed docs/openapi/intake.json)."""
        return JSONResponse(openapi_document())


async def _http_problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "not-found")
    request.app.state.metrics.refused(slug)  # no source's handler ran: labelled `unknown`
    return Problem(exc.status_code, slug, str(exc.detail), dict(exc.headers or {})).response(request.url.path)


def create_app(intake: Intake) -> Starlette:
    """The ASGI application (the producer is started lazily and stopped on shutdown)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await intake.sender.start()
        except BrokerUnavailable as exc:
            log.warning("intake_broker_unavailable", error=str(exc))  # /readyz says so; POSTs answer 503
        yield
        await intake.sender.stop()

    routes = [
        Route("/v1/events/{source}", intake.post_event, methods=["POST"]),
        Route("/healthz", intake.healthz, methods=["GET"]),
        Route("/readyz", intake.readyz, methods=["GET"]),
        Route("/metrics", intake.metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", intake.openapi, methods=["GET"]),
    ]

    def counted(scope: Scope) -> None:
        source = scope.get("path_params", {}).get("source")
        intake.metrics.refused("internal-error", source if source in intake.auth else "unknown")

    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_problem}, lifespan=lifespan,
                    middleware=[Middleware(InternalErrors, counted=counted)])
    app.state.metrics = intake.metrics
    return app
