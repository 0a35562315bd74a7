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


PLAYBOOK_SCHEMA_ID = "https://github.com/responder/responder/playbooks/playbook.schema.json"


def playbook_schema_text() -> str:
    """The tabletop playbook schema as committed (playbooks/playbook.schema.json)."""
    from responder.tabletop.models import Playbook

    schema = Playbook.model_json_schema(by_alias=True, mode="validation")
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": PLAYBOOK_SCHEMA_ID,
           "title": "responder tabletop playbook", **schema}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
