"""Splitting an Alertmanager group copies the group into every record: the records' total is bounded before any is
built, so many alerts with large common annotations cannot make the intake build records many times the body's size."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from responder.intake import Intake, create_app
from responder.intake.records import SPLIT_FACTOR
from tests.intake_kit import BEARER, FakeSender, intake_settings, webhook_headers

BODY_LIMIT = 64 * 1024
ANNOTATION = 20_000  # bytes of commonAnnotations copied into every record


def _group(alerts: int) -> dict[str, Any]:
    """A firing group of `alerts` alerts, each on its own host (its own incident key)."""
    return {"receiver": "r", "status": "firing", "groupKey": "g", "version": "4",
            "commonAnnotations": {"big": "x" * ANNOTATION},
            "alerts": [{"status": "firing", "labels": {"alertname": "A", "instance": f"h{i}"}, "annotations": {},
                        "startsAt": "2026-12-01T00:00:00Z", "fingerprint": f"f{i}"} for i in range(alerts)]}


def _post(shape: str, alerts: int) -> tuple[Any, FakeSender]:
    """The answer and what was produced for one POST of the group as `shape`."""
    doc: Any = [_group(alerts)] if shape == "array" else _group(alerts)
    body = orjson.dumps(doc)
    assert len(body) < BODY_LIMIT
    if shape == "standard-webhooks":
        url, headers = "/v1/events/hooks", webhook_headers(body)
    else:
        url, headers = "/v1/events/dd", {"content-type": "application/json", "authorization": f"Bearer {BEARER}"}
    sender = FakeSender()
    with TestClient(create_app(Intake(intake_settings(intake_max_body_bytes=BODY_LIMIT), sender))) as client:
        return client.post(url, content=body, headers=headers), sender


SHAPES = ["group", "array", "standard-webhooks"]


@pytest.mark.parametrize("shape", SHAPES)
def test_a_split_over_the_bound_is_413_and_nothing_is_produced(shape: str) -> None:
    """40 alerts × 20 KB of common annotations would total over 8 × the body limit: 413 too-large, nothing produced."""
    answer, sender = _post(shape, 40)
    assert answer.status_code == 413, answer.text
    assert answer.json()["reason"] == "too-large"
    assert f"over {SPLIT_FACTOR} × intake_max_body_bytes ({SPLIT_FACTOR * BODY_LIMIT})" in answer.json()["detail"]
    assert sender.sent == []


@pytest.mark.parametrize("shape", SHAPES)
def test_a_split_within_the_bound_is_produced(shape: str) -> None:
    """10 such alerts stay within the bound: one record per alert, all produced, totalling at most the bound."""
    answer, sender = _post(shape, 10)
    assert answer.status_code == 202, answer.text
    assert answer.json()["produced"] == 10
    assert 10 * ANNOTATION < sum(len(value) for _, value, _, _ in sender.sent) <= SPLIT_FACTOR * BODY_LIMIT
