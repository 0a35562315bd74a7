"""Tags in shapes a caller did not expect: an alert's tag without a value has the empty value (as AWS's own tag
reads give it), never the text "None", and every value an alert gives a key counts; a Lambda `ListTags` answer with
no `Tags` is unreadable and refuses the step (fail closed), not "no tags"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from responder.engine.guards import protected_hit
from responder.engine.tagreads import SEP, ResourceTags
from responder.models.event import Resource, ResourceKind
from responder.models.runbook import Protected
from tests.guard_kit import SettableClock, event_naming

ROLE = {"principal_type": "role", "principal_name": "app-worker"}


def _alert_hit(tags: Any, protected: dict[str, str]) -> str | None:
    """Why a quarantine of the role is refused by the tags an alert gives it (`tags`, as the alert shapes them)."""
    role = Resource(kind=ResourceKind.IAM_ROLE, id="app-worker", name="app-worker", attributes={"tags": tags})
    return protected_hit([Protected(tags=protected)], "role/app-worker", ROLE, event_naming(role),
                         "aws.iam.quarantine_principal")


@pytest.mark.parametrize("tags", [[{"Key": "owner"}], [{"key": "owner", "value": None}], {"owner": None}])
def test_an_alert_tag_without_a_value_has_the_empty_value(tags: Any) -> None:
    """A tag given with no value, or None, matches a protected empty value (before: read as "None", it did not), and
    not a protected value "None" (before: it did)."""
    assert _alert_hit(tags, {"owner": ""}) == "resource 'app-worker' carries protected tag owner="
    assert _alert_hit(tags, {"owner": "None"}) is None
    assert _alert_hit(tags, {"owner": "*"}) == "resource 'app-worker' carries protected tag owner="


def test_an_alert_tag_without_a_key_is_no_tag() -> None:
    """A tag with no key is not read as the key "None"."""
    assert _alert_hit([{"Value": "x"}], {"None": "*"}) is None


def test_every_value_an_alert_gives_a_key_counts() -> None:
    """A key given twice protects by either value (before: the last one only)."""
    tags = [{"Key": "env", "Value": "prod"}, {"Key": "env", "Value": "dev"}]
    assert _alert_hit(tags, {"env": "prod"}) == "resource 'app-worker' carries protected tag env=prod"


class Lambda:
    """GetFunction, and ListTags answering `listed`."""

    def __init__(self, listed: dict[str, Any]) -> None:
        self.listed = listed

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """The function's ARN, or the ListTags answer."""
        if operation == "get_function":
            return {"Configuration": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}
        return self.listed


def test_a_lambda_list_tags_answer_without_tags_refuses() -> None:
    """ListTags with no `Tags` is an answer of no known shape: refused, naming the permissions (before: no tags)."""
    found = asyncio.run(ResourceTags(Lambda({}), clock=SettableClock()).forms({"function f"}))
    assert isinstance(found, str)
    assert "could not be read" in found
    assert "lambda:ListTags" in found


@pytest.mark.parametrize(("listed", "forms"), [({"Tags": {}}, set()), ({"Tags": {"team": "ml"}}, {f"team{SEP}ml"}),
                                               ({"Tags": {"owner": None}}, {f"owner{SEP}"})])
def test_a_lambda_list_tags_answer_with_tags_is_read(listed: dict[str, Any], forms: set[str]) -> None:
    """ListTags with `Tags`, empty or not, is read as given (a value None as the empty value)."""
    assert asyncio.run(ResourceTags(Lambda(listed), clock=SettableClock()).forms({"function f"})) == forms
