"""An untyped long-term key with its user's name is contained (IAM vouches for the pair); anything less pages."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.normalise import decode_doc
from responder.rules.matcher import Matcher
from tests.principal_kit import (
    NAMESAKE,
    ROOT,
    SOURCES,
    UNNAMED_PAGE,
    example_doc,
    guardduty_doc,
    matched_ids,
    source_event,
    splunk_doc,
)

CONTAIN = "access-key-compromise"
NOT_GUARDDUTY = sorted(s for s in SOURCES if s != "guardduty")


@pytest.fixture(scope="module", name="matcher")
def _matcher() -> Matcher:
    """The shipped runbooks' matcher."""
    return Matcher(load_runbooks(ROOT / "runbooks", registry))


@pytest.mark.parametrize("source", NOT_GUARDDUTY)
def test_an_untyped_akia_key_with_a_user_name_is_contained(source: str, matcher: Matcher) -> None:
    """An alert naming an AKIA key and user but no principal type matches access-key-compromise only, not the page."""
    event = source_event(source, None)
    key = event.first("access_key")
    assert key is not None
    assert (key.attributes.get("user_type"), key.attributes["user_name"]) == (None, NAMESAKE)
    assert event.first("iam_user") is None
    assert matched_ids(event, matcher) == [CONTAIN]


def test_an_untyped_guardduty_key_still_pages(matcher: Matcher) -> None:
    """GuardDuty always types its key's principal: a finding without userType is unknown and pages."""
    assert matched_ids(source_event("guardduty", None), matcher) == [UNNAMED_PAGE]


@pytest.mark.parametrize("user_type", ["Root", "FederatedUser", "AssumedRole", "AWSService", "iamuser", ""])
@pytest.mark.parametrize("source", NOT_GUARDDUTY)
def test_a_key_typed_as_another_principal_still_pages(source: str, user_type: str, matcher: Matcher) -> None:
    """A type that says the key is not an IAM user's (or a word that is not exactly IAMUser) pages, as before."""
    event = source_event(source, user_type or None)
    if user_type:
        key = event.first("access_key")
        assert key is not None
        assert key.attributes.get("user_type") == user_type
        assert matched_ids(event, matcher) == [UNNAMED_PAGE]
    else:  # an empty type is no type: contained
        assert matched_ids(event, matcher) == [CONTAIN]


def test_the_containing_runbook_acts_on_the_name_only_after_iam_vouched_for_it() -> None:
    """access-key-compromise deactivates the key read under the named user first and stops there when that fails."""
    [book] = [rb for rb in load_runbooks(ROOT / "runbooks", registry) if rb.id == CONTAIN]
    first, *rest = book.steps
    assert (first.id, first.actuator, first.on_failure) == ("deactivate-key", "aws.iam.deactivate_access_key", "stop")
    assert [s.id for s in rest] == ["revoke-sessions", "notify-oncall"]
    assert not first.when


@pytest.mark.parametrize("user_type", ["IAMUser", None])
@pytest.mark.parametrize("key", ["AKIAEXAMPLENONAME001", "ASIAEXAMPLENONAME001"])
def test_a_siem_key_alert_naming_no_user_pages(key: str, user_type: str | None, matcher: Matcher) -> None:
    """A Splunk alert naming a compromised key but no user pages on-call rather than matching nothing."""
    doc = example_doc("access-key-compromise.json")
    doc["result"].pop("user_name")
    doc["result"]["affectedEntities{}.entityValue"] = key
    doc["result"]["user_type"] = user_type
    [event] = decode_doc(doc)
    access_key = event.first("access_key")
    assert access_key is not None
    assert "user_name" not in access_key.attributes
    assert matched_ids(event, matcher) == [UNNAMED_PAGE]


@pytest.mark.parametrize("named", [True, False])
@pytest.mark.parametrize("user_type", ["IAMUser", "Root", "AssumedRole", None])
@pytest.mark.parametrize("key", ["AKIAEXAMPLEEXACTLY01", "ASIAEXAMPLEEXACTLY01"])
@pytest.mark.parametrize("source", ["guardduty", "splunk"])
def test_exactly_one_key_runbook_takes_each_compromised_key_alert(
        source: str, key: str, user_type: str | None, named: bool, matcher: Matcher) -> None:
    """Every compromised-key finding or SIEM alert matches exactly one runbook: a containing one or the page."""
    if source == "guardduty":
        doc = guardduty_doc(user_type)
        details = doc["resource"]["accessKeyDetails"]
        details["accessKeyId"] = key
        if not named:
            details.pop("userName")
    else:
        doc = splunk_doc(user_type)
        doc["result"]["affectedEntities{}.entityValue"] = key
        if not named:
            doc["result"].pop("user_name")
    [event] = decode_doc(doc)
    matched = matched_ids(event, matcher)
    assert len(matched) == 1, matched
    assert matched[0] in (UNNAMED_PAGE, CONTAIN, "iam-credential-compromise")
