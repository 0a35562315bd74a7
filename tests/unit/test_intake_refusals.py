"""Intake refusals the audit of 2026-12-07 found wrong: oversized numbers, unexpected errors, replays and the rate,
a misspelled `format`, uncounted route refusals, the OpenAPI document against the code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send
from structlog.testing import capture_logs

from responder.errors import ConfigError
from responder.intake import Intake, create_app
from responder.intake.limits import read_body
from responder.intake.problems import InternalErrors, Problem
from responder.normalise import registry
from responder.normalise.registry import Format, detect
from tests.intake_kit import HMAC_NEW, FakeSender, corpus, intake_settings, webhook_headers

JSON = {"content-type": "application/json"}
REJECTED = "responder_intake_rejected_total"


@pytest.fixture(name="intake")
def _intake() -> Intake:
    return Intake(intake_settings(), FakeSender())


@pytest.fixture(name="client")
def _client(intake: Intake) -> Iterator[TestClient]:
    with TestClient(create_app(intake), raise_server_exceptions=False) as client:
        yield client


def test_a_webhook_timestamp_of_400_digits_is_a_401_problem(client: TestClient, intake: Intake) -> None:
    """A webhook-timestamp too long to be unix seconds is 401 stale-timestamp, not a 500 from a float overflow."""
    headers = {**webhook_headers(b"{}"), "webhook-timestamp": "9" * 400}
    answer = client.post("/v1/events/hooks", content=b"{}", headers=headers)
    assert (answer.status_code, answer.headers["content-type"]) == (401, "application/problem+json")
    assert answer.json()["reason"] == "stale-timestamp"
    assert intake.metrics.value(REJECTED, source="hooks", reason="stale-timestamp") == 1


async def _body() -> AsyncIterator[bytes]:
    yield b"{}"


async def test_a_content_length_of_5000_digits_is_compared_without_int() -> None:
    """A Content-Length past Python's 4,300-digit int() limit is read as its value: 0…02 passes, 9…9 is 413."""
    assert await read_body(_body(), "0" * 5000 + "2", 1024, 5.0) == b"{}"
    with pytest.raises(Problem) as refused:
        await read_body(_body(), "9" * 5000, 1024, 5.0)
    assert refused.value.status == 413
    assert len(refused.value.detail) < 100


@pytest.mark.parametrize(("path", "source"), [("/v1/events/open", "open"), ("/metrics", "unknown")])
def test_an_unexpected_exception_is_a_counted_problem_500_and_one_log_line(
        path: str, source: str, client: TestClient, intake: Intake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exception escaping a request is a problem+json 500, counted, logged once without its text."""

    def broken(*_args: object) -> None:
        raise RuntimeError("secret-looking detail")

    monkeypatch.setattr(intake.limits["open"], "take", broken)
    monkeypatch.setattr(intake.metrics, "exposition", broken)
    with capture_logs() as logs:
        answer = client.request("POST" if source == "open" else "GET", path, content=corpus("splunk"), headers=JSON)
    assert (answer.status_code, answer.headers["content-type"]) == (500, "application/problem+json")
    assert answer.json()["reason"] == "internal-error"
    assert intake.metrics.value(REJECTED, source=source, reason="internal-error") == 1
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [(e["event"], e["error"]) for e in errors] == [("intake_internal_error", "RuntimeError")]
    assert "secret-looking" not in repr(errors)
    assert "exc_info" not in errors[0]


def test_an_unexpected_exception_is_logged_with_its_frames_but_not_its_message(
        client: TestClient, intake: Intake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intake_internal_error line lists the traceback's frames, from the handler to the raise, not the message."""
    detail = "secret-looking detail"

    def broken(*_args: object) -> None:
        raise RuntimeError(detail)

    monkeypatch.setattr(intake.limits["open"], "take", broken)
    with capture_logs() as logs:
        client.post("/v1/events/open", content=corpus("splunk"), headers=JSON)
    [error] = [e for e in logs if e["event"] == "intake_internal_error"]
    names = [frame.rsplit(" ", 1)[1] for frame in error["frames"]]
    assert names[-3:] == ["post_event", "accept", "broken"]
    assert error["where"] == error["frames"][-1]
    assert "secret-looking" not in repr(error)


async def test_an_error_after_the_client_left_is_logged_as_not_answered() -> None:
    """A bug raised after the app received http.disconnect is logged answered=False, counted, and nothing is sent."""
    sent: list[Message] = []
    counted: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("after the client left")

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with capture_logs() as logs:
        await InternalErrors(app, counted.append)({"type": "http", "path": "/v1/events/open"}, receive, send)
    assert [(e["event"], e["answered"]) for e in logs] == [("intake_internal_error", False)]
    assert (len(counted), sent) == (1, [])


def test_a_source_format_may_name_an_event_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A source `format` naming the event source of a decoder starts the intake, as detection pinned to it works."""
    fake = Format("acme.alerts", lambda doc: "acme" in doc, lambda doc: [], "acme-siem", frozenset())
    monkeypatch.setitem(registry._FORMATS, fake.name, fake)
    sources = {"acme": {"auth": "open", "format": "acme-siem"}}
    Intake(intake_settings(intake_sources=sources, intake_signing_key_id=None), FakeSender())
    assert detect({"acme": 1}, only="acme-siem") is fake


def test_a_replayed_delivery_does_not_spend_the_source_rate(intake: Intake) -> None:
    """Replays of a captured signed request are 409 without taking tokens: the sender's next delivery is not 429."""
    sources = {"hooks": {"auth": "standard-webhooks", "keys": {"new": HMAC_NEW}, "rate_per_s": 0.01, "burst": 2}}
    with TestClient(create_app(Intake(intake_settings(intake_sources=sources), FakeSender()))) as client:
        body, fresh = corpus("datadog"), corpus("splunk")
        captured = webhook_headers(body, wid="m1")
        answers = [client.post("/v1/events/hooks", content=body, headers=captured).status_code for _ in range(3)]
        after = client.post("/v1/events/hooks", content=fresh, headers=webhook_headers(fresh, wid="m2"))
    assert answers == [202, 409, 409]
    assert after.status_code == 202


def test_a_misspelled_source_format_is_refused_at_start() -> None:
    """A source `format` no decoder knows is a one-line ConfigError naming the setting, the value and valid ones."""
    sources = {"splunk": {"auth": "open", "format": "splnk"}}
    with pytest.raises(ConfigError, match=r"^intake_sources\.splunk\.format: 'splnk' .*valid: .*\bsplunk\b") as bad:
        Intake(intake_settings(intake_sources=sources, intake_signing_key_id=None), FakeSender())
    assert "\n" not in str(bad.value)


@pytest.mark.parametrize(("method", "path", "reason"), [("GET", "/nope", "not-found"),
                                                         ("GET", "/v1/events/hooks", "method-not-allowed")])
def test_routing_refusals_are_counted_as_unknown(method: str, path: str, reason: str, client: TestClient,
                                                 intake: Intake) -> None:
    """404 for no route and 405 for a wrong method are counted in rejected_total, labelled source `unknown`."""
    assert client.request(method, path).json()["reason"] == reason
    assert intake.metrics.value(REJECTED, source="unknown", reason=reason) == 1


def test_the_openapi_document_describes_every_route_and_body_type_the_app_takes(client: TestClient) -> None:
    """Every route is in /openapi.json, and each request body media type it declares is accepted, as is +json."""
    document = client.get("/openapi.json").json()
    routes = {route.path for route in client.app.routes}  # type: ignore[attr-defined]
    assert routes == set(document["paths"])
    declared = document["paths"]["/v1/events/{source}"]["post"]["requestBody"]["content"]
    for media in [*declared, "application/cloudevents+json"]:
        answer = client.post("/v1/events/open", content=corpus("splunk"), headers={"content-type": media})
        assert answer.status_code == 202, (media, answer.text)
    assert client.post("/v1/events/open", content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert "text/json" in declared
