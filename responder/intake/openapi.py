"""The intake's OpenAPI 3.1 document (served at /openapi.json; committed as docs/openapi/intake.json)."""

from __future__ import annotations

from typing import Any

from responder.intake.headcap import MAX_HEAD_BYTES, MAX_HEADERS
from responder.intake.problems import TITLES

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
    return answer


INTERNAL_ERROR = {"500": _problem("an unexpected error (a bug), logged as intake_internal_error")}


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": {"type": "string"}}


def _text(description: str, *statuses: int) -> dict[str, Any]:
    ok = {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {**{str(s): ok if s == 200 else {**ok, "description": "not ready"} for s in statuses}, **INTERNAL_ERROR}


PAYLOAD = {"description": "a SIEM's native payload (Splunk, Sentinel, Datadog, Alertmanager, Google SecOps, ...)",
           "type": ["object", "array"]}
CONNECTION_LEVEL = (f"Answers sent before a request is read have no body and belong to no operation: 408 (request "
                    f"head too slow), 414 and 431 (request head over {MAX_HEAD_BYTES // 1024} KiB or {MAX_HEADERS} "
                    "fields), 400 (not HTTP), 503 (over intake_max_connections). "
                    "Routing answers before any operation: 404 not-found for a path not listed here, 405 "
                    "method-not-allowed (with Allow) for a method a path does not take; both problem documents. "
                    "Every operation may answer 500 internal-error (a problem document) on an unexpected error.")

POST_EVENT: dict[str, Any] = {
    "operationId": "postEvent",
    "summary": "Accept one SIEM webhook; 202 only after Kafka acknowledged it",
    "security": [{"bearer": []}, {"urlToken": []}, {"standardWebhooks": []}, {}],
    "parameters": [
        {"name": "source", "in": "path", "required": True, "description": "a configured intake source",
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}},
        {"name": "token", "in": "query", "required": False, "description": "url-token sources (Splunk)",
         "schema": {"type": "string"}},
        _header("webhook-id", "Standard Webhooks delivery id"),
        _header("webhook-timestamp", "Standard Webhooks unix seconds"),
        _header("webhook-signature", "Standard Webhooks `v1,<base64>` signatures"),
        _header("traceparent", "W3C trace context, carried to Kafka"),
    ],
    "requestBody": {"required": True, "description": "any media type ending in `+json` is taken too; others are 415",
                    "content": {media: {"schema": PAYLOAD} for media in ("application/json", "text/json")}},
    "responses": {
        "202": {"description": "acknowledged by Kafka (or a redelivery of an acknowledged alert)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
        "400": _problem("JSON nested too deeply"),
        "401": _problem("missing or bad credentials, stale timestamp"),
        "403": _problem("an event source of require_signature (any, with `*` or the target topic there) from an "
                         "authenticated intake source without `format`"),
        "404": _problem("unknown source"),
        "408": _problem("body not received in time (a request head not received in time is answered 408 with no "
                        "body, before any operation is known)"),
        "409": _problem("replayed delivery"),
        "413": _problem("body too large"),
        "415": _problem("not JSON content"),
        "422": _problem("not JSON, or no decoder accepts it"),
        "429": _problem("rate limited", retry_after=True),
        "431": {"description": f"a chunked body's trailers over {MAX_HEAD_BYTES // 1024} KiB or {MAX_HEADERS} fields "
                               "(no body; the connection is closed)"},
        "503": _problem("Kafka did not acknowledge, or the replay memory is full of live signed deliveries",
                        retry_after=True),
        **INTERNAL_ERROR,
    },
}


def openapi_document() -> dict[str, Any]:
    """The document: one POST route plus health, readiness, metrics and this document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "responder intake", "version": "1",
                 "description": f"SIEM webhooks in, Kafka records out (docs/intake.md). {CONNECTION_LEVEL}"},
        "paths": {
            "/v1/events/{source}": {"post": POST_EVENT},
            "/healthz": {"get": {"operationId": "healthz", "summary": "the process answers",
                                 "responses": _text("ok", 200)}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Kafka is reachable",
                                "responses": _text("ready", 200, 503)}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text format",
                                 "responses": _text("metrics", 200)}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "this document",
                                      "responses": {"200": {"description": "the OpenAPI 3.1 document", "content": {
                                          "application/json": {"schema": {"type": "object"}}}}, **INTERNAL_ERROR}}},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "urlToken": {"type": "apiKey", "in": "query", "name": "token"},
                "standardWebhooks": {"type": "apiKey", "in": "header", "name": "webhook-signature"},
            },
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail", "reason"],
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"}, "detail": {"type": "string"},
                                           "instance": {"type": "string"},
                                           "reason": {"type": "string", "enum": sorted(TITLES)}}},
                "Accepted": {"type": "object", "required": ["status", "events", "produced", "duplicates"],
                             "properties": {"status": {"const": "accepted"},
                                            "events": {"type": "array", "items": {"type": "string"}},
                                            "produced": {"type": "integer", "minimum": 0},
                                            "duplicates": {"type": "integer", "minimum": 0},
                                            "incident_keys": {"type": "array", "items": {"type": "string"}},
                                            "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}},
            },
        },
    }
