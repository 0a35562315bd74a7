"""The intake's OpenAPI document: committed copy is current, and schemathesis finds no violation."""

from __future__ import annotations

from pathlib import Path

import orjson
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from responder.intake import Intake, create_app
from responder.intake.openapi import openapi_document
from tests.intake_kit import FakeSender, intake_settings

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "intake.json"
APP = create_app(Intake(intake_settings(intake_sources={"open": {"auth": "open", "rate_per_s": 1e6, "burst": 10**6}},
                                        intake_signing_key_id=None), FakeSender()))
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)


def test_committed_openapi_document_is_current() -> None:
    """docs/openapi/intake.json equals what the intake serves (regenerate: `responder intake --openapi`)."""
    assert orjson.loads(COMMITTED.read_bytes()) == openapi_document()


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_intake_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    """The intake conforms to its OpenAPI document: generated requests get documented responses and no 5xx."""
    if case.operation.path == "/v1/events/{source}" and case.path_parameters:
        case.path_parameters["source"] = "open"
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
