"""The fleet digest covers every setting that changes what a replica does to an alert."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.fleet import fleet_digest
from responder.settings import Settings


@pytest.mark.parametrize("change", [
    {"aws_account_id": "111122223333"},  # protected ids pinned to an account match in it
    {"aws_region": "eu-west-1"},  # and in this region
    {"approver_identities": {"k1": "alice"}},  # who may satisfy a step's approvers
    {"event_signing_key_sources": {"k1": ["falco"]}},  # which records are authentic, so may act
])
def test_a_setting_that_changes_protection_or_approval_changes_the_digest(runbooks_dir, change):
    """Two replicas differing in protection home, approver bindings or key scopes had the same digest."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings()) != fleet_digest(books, Settings(**change))
