"""The runbook JSON Schema, generated from the pydantic models (editors validate YAML against it)."""

from __future__ import annotations

import json

from responder.models.runbook import Runbook

SCHEMA_ID = "https://github.com/responder/responder/runbooks/runbook.schema.json"


def runbook_schema() -> dict[str, object]:
    """The JSON Schema of a runbook file."""
    schema = Runbook.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "responder runbook", **schema}


def runbook_schema_text() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(runbook_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

