"""One secret authenticates one role: the settings refuse a secret shared between key rings of different power, and a
key id shared by the two rings a record's `responder-key-id` names (events and approvals), one line each, exit 3."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid

SHARED = "one-secret-for-both"


def _refused(**values: object) -> list[str]:
    """The lines of the SettingsInvalid that `values` raise (none of them may show `SHARED`)."""
    with pytest.raises(SettingsInvalid) as caught:
        Settings(**values)  # type: ignore[arg-type]
    assert SHARED not in str(caught.value)
    return caught.value.problems


def test_one_key_in_the_event_and_the_approval_rings_is_refused_naming_both_and_the_id():
    """The same id and secret in event_signing_keys and approval_keys is one line naming both settings and the id."""
    [line] = _refused(event_signing_keys={"k1": SHARED}, approval_keys={"k1": SHARED})
    assert line.startswith("RESPONDER_APPROVAL_KEYS=<hidden>: ")
    assert "key 'k1'" in line
    assert "event_signing_keys key 'k1'" in line
    assert "same secret" in line


def test_one_secret_under_two_ids_in_the_event_and_the_approval_rings_is_refused():
    """A secret in both rings under different ids is refused: whoever signs events could sign approvals."""
    [line] = _refused(event_signing_keys={"detector": SHARED}, approval_keys={"secops": SHARED})
    assert "key 'secops'" in line
    assert "event_signing_keys key 'detector'" in line


def test_one_id_with_two_secrets_in_the_event_and_the_approval_rings_is_refused():
    """The same key id with different secrets in both rings is refused: ids must be distinct across the two."""
    [line] = _refused(event_signing_keys={"k1": "event-secret"}, approval_keys={"k1": "approval-secret"})
    assert "key id 'k1' is also a key of event_signing_keys" in line
    assert "distinct" in line
    assert "event-secret" not in line
    assert "approval-secret" not in line


@pytest.mark.parametrize(("values", "other"), [
    ({"notify_keys": {"pager": SHARED}}, "notify_keys key 'pager'"),
    ({"intake_sources": {"splunk": {"auth": "url-token", "keys": {"k1": SHARED}}}},
     "intake_sources.splunk.keys key 'k1'"),
])
def test_an_approval_secret_a_notification_receiver_or_a_siem_holds_is_refused(values, other):
    """An approval key's secret also in notify_keys or an intake source's keys is refused, naming where."""
    [line] = _refused(approval_keys={"secops": SHARED}, **values)
    assert line.startswith("RESPONDER_APPROVAL_KEYS=<hidden>: key 'secops'")
    assert other in line


def test_an_event_signing_secret_an_intake_source_holds_is_refused():
    """A SIEM's intake secret that is also an event signing key (it could sign records past the intake) is refused."""
    [line] = _refused(event_signing_keys={"intake": SHARED},
                      intake_sources={"datadog": {"auth": "bearer", "keys": {"k1": SHARED}}})
    assert line.startswith("RESPONDER_EVENT_SIGNING_KEYS=<hidden>: key 'intake'")
    assert "intake_sources.datadog.keys key 'k1'" in line


def test_distinct_rings_load_and_ids_may_repeat_where_no_header_names_them():
    """Distinct secrets load; an id repeated in notify_keys or intake sources (never read from a record) is fine."""
    settings = Settings(event_signing_keys={"intake": "e"}, approval_keys={"k1": "a"}, notify_keys={"k1": "n"},
                        intake_sources={"splunk": {"auth": "url-token", "keys": {"k1": "s"}},
                                        "datadog": {"auth": "bearer", "keys": {"k1": "d"}}})
    assert sorted(settings.approval_keys) == ["k1"]


def test_the_cli_refuses_a_shared_key_in_one_line_with_exit_3(monkeypatch):
    """A command reading the settings prints one stderr line naming both settings and the id, never the secret."""
    monkeypatch.setenv("RESPONDER_EVENT_SIGNING_KEYS", json.dumps({"k1": SHARED}))
    monkeypatch.setenv("RESPONDER_APPROVAL_KEYS", json.dumps({"k1": SHARED}))
    result = CliRunner().invoke(app, ["deadletter", "replay", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("✗ RESPONDER_APPROVAL_KEYS=")
    assert "event_signing_keys" in line
    assert "'k1'" in line
    assert SHARED not in result.output


def test_two_intake_sources_sharing_a_secret_load():
    """Two SIEM sources given one secret load: both are the intake's one role, each source trying its own keys."""
    settings = Settings(intake_sources={"splunk": {"auth": "url-token", "keys": {"k1": SHARED}},
                                        "datadog": {"auth": "bearer", "keys": {"k2": SHARED}}})
    assert sorted(settings.intake_sources) == ["datadog", "splunk"]


def test_a_notify_secret_that_signs_events_too_is_refused():
    """A notification receiver holding an event signing secret could sign records that act: refused, naming both."""
    [line] = _refused(event_signing_keys={"e1": SHARED}, notify_keys={"pager": SHARED})
    assert line.startswith("RESPONDER_EVENT_SIGNING_KEYS=<hidden>: key 'e1'")
    assert "notify_keys key 'pager'" in line


def test_a_whsec_intake_key_decoding_to_the_approval_secret_is_refused_naming_the_source():
    """`whsec_<base64 of the approval secret>` is the approval key's bytes once the intake decodes it: refused."""
    whsec = "whsec_" + base64.b64encode(SHARED.encode()).decode()
    [line] = _refused(approval_keys={"a1": SHARED},
                      intake_sources={"hooks": {"auth": "standard-webhooks", "keys": {"k1": whsec}}})
    assert line.startswith("RESPONDER_APPROVAL_KEYS=<hidden>: key 'a1'")
    assert "intake_sources.hooks.keys key 'k1'" in line
    assert whsec not in line


def test_a_secret_hmac_reads_as_another_is_refused():
    """A secret that differs from another only by trailing zero bytes is the same HMAC key: refused like it."""
    [line] = _refused(approval_keys={"a1": SHARED}, event_signing_keys={"e1": SHARED + "\x00"})
    assert "event_signing_keys key 'e1'" in line


def test_an_intake_secret_a_notification_receiver_holds_is_refused_naming_the_source():
    """When the stronger key is an intake source's, the line names the source, not only the key id (k1 in each)."""
    [line] = _refused(intake_sources={"splunk": {"auth": "url-token", "keys": {"k1": SHARED}}},
                      notify_keys={"pager": SHARED})
    assert line.startswith("RESPONDER_INTAKE_SOURCES=<hidden>: intake_sources.splunk.keys key 'k1'")


def test_one_approval_secret_under_two_bound_identities_is_refused():
    """alice's and bob's approval key ids sharing a secret: each could sign as the other, refused naming both ids."""
    [line] = _refused(approval_keys={"alice": SHARED, "bob": SHARED},
                      approver_identities={"alice": "alice@corp", "bob": "bob@corp"})
    assert line.startswith("RESPONDER_APPROVAL_KEYS=<hidden>: key 'alice' has the same secret as key 'bob'")
    assert "approver_identities" in line


def test_one_approval_secret_under_ids_with_other_operator_permissions_is_refused():
    """A viewer id sharing the ops id's secret would send undo as ops: refused, naming operator_permissions."""
    [line] = _refused(approval_keys={"ops": SHARED, "viewer": SHARED}, operator_permissions={"ops": ["undo"]})
    assert "key 'ops' has the same secret as key 'viewer'" in line
    assert "operator_permissions" in line


def test_a_bound_approval_secret_also_under_an_unbound_id_is_refused():
    """An unbound id claims any `by`: alice's secret under one lets alice's holder approve as anyone, refused."""
    [line] = _refused(approval_keys={"alice": SHARED, "spare": SHARED}, approver_identities={"alice": "alice@corp"})
    assert "key 'alice' has the same secret as key 'spare'" in line


def test_one_event_secret_under_ids_allowed_other_sources_is_refused():
    """An event key id pinned to GuardDuty sharing a secret with an unpinned id signs any source: refused."""
    [line] = _refused(event_signing_keys={"gd": SHARED, "any": SHARED},
                      event_signing_key_sources={"gd": ["aws.guardduty"]})
    assert line.startswith("RESPONDER_EVENT_SIGNING_KEYS=<hidden>: key 'any' has the same secret as key 'gd'")
    assert "event_signing_key_sources" in line


def test_one_secret_under_two_ids_with_the_same_grants_loads_as_a_rename():
    """Two ids of one ring with one secret and the same identity, permissions or sources load: an id being renamed."""
    settings = Settings(approval_keys={"alice-2025": SHARED, "alice": SHARED},
                        approver_identities={"alice-2025": "alice@corp", "alice": "alice@corp"},
                        operator_permissions={"alice-2025": ["undo"], "alice": ["undo"]},
                        event_signing_keys={"gd-old": "e", "gd": "e"},
                        event_signing_key_sources={"gd-old": ["aws.guardduty"], "gd": ["aws.guardduty"]},
                        notify_keys={"pager": "n", "pager-old": "n"})
    assert sorted(settings.approval_keys) == ["alice", "alice-2025"]


@pytest.mark.parametrize(("ring", "rights"), [
    ({"approval_keys": {"ops": SHARED, "ops-old": SHARED}}, {"operator_permissions": {"ops": []}}),
    ({"approval_keys": {"ops": SHARED, "ops-old": SHARED}},
     {"operator_permissions": {"ops": ["undo", "undo"], "ops-old": ["undo"]}}),
    ({"event_signing_keys": {"gd": SHARED, "gd-old": SHARED}}, {"event_signing_key_sources": {"gd": ["*"]}}),
    ({"event_signing_keys": {"gd": SHARED, "gd-old": SHARED}},
     {"event_signing_key_sources": {"gd": ["aws.*", "aws.*"], "gd-old": ["aws.*"]}}),
])
def test_rights_equal_in_effect_but_written_otherwise_load_as_a_rename(ring, rights):
    """No permission = not named, a repeat, and `*` = unpinned are the same rights as the engine applies them: loads."""
    assert Settings(**ring, **rights)  # type: ignore[arg-type]


def test_every_pair_of_three_ids_with_one_hmac_key_is_compared_whatever_the_order_of_a_grant():
    """Three ids of one HMAC key (`s`, `s\\0`): each pair with other rights is a line; a reordered grant is the same."""
    lines = _refused(approval_keys={"a": SHARED, "b": SHARED + "\x00", "c": SHARED},
                     operator_permissions={"a": ["undo", "models.rollback"], "b": ["models.rollback", "undo"]})
    assert ["key 'a' has the same secret as key 'c'" in line for line in lines] == [True, False]
    assert "key 'b' has the same secret as key 'c'" in lines[1]
