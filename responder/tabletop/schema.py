"""The tabletop playbook JSON Schema from the pydantic models (committed as playbooks/playbook.schema.json)."""

from __future__ import annotations

import json

from responder.tabletop.models import Playbook

PLAYBOOK_SCHEMA_ID = "https://github.com/responder/responder/playbooks/playbook.schema.json"


def playbook_schema_text() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    schema = Playbook.model_json_schema(by_alias=True, mode="validation")
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": PLAYBOOK_SCHEMA_ID,
           "title": "responder tabletop playbook", **schema}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
