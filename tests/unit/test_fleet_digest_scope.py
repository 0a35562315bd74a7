"""Every setting is either in the fleet digest or named with the reason it is not; the ones that decide what a
replica does to the world (model registry, approval and signing keys, the decision topics) are in it."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.fleet_digest import DIGESTED, DIGESTED_IF_SET, IN_THE_RUNBOOKS, NOT_DIGESTED, fleet_digest
from responder.settings import Settings


@pytest.mark.parametrize("change", [
    {"model_registry": "s3://models/prod"},  # where the last signed version is looked up
    {"model_ssm_prefix": "/other/models"},  # which serving pointer a rollback moves
    {"approval_keys": {"k1": "secret"}},  # which decisions may release a parked step
    {"event_signing_keys": {"k1": "secret"}},  # which signed records are authentic, so may act
    {"notify_keys": {"k1": "secret"}},  # whether a signed page can be sent at all
    {"approvals_topic": "other.approvals"},  # where the decisions that release steps arrive
    {"approval_requests_topic": "other.requests"},  # where parked steps ask (and `approve` finds the request)
    {"operator_requests_topic": "other.operator"},  # where undo and model switches arrive
    {"approval_decision_max_lifetime": 60.0},  # which decisions are too long-lived to accept
    {"max_record_bytes": 4096},  # which records are dead-lettered rather than acted on
])
def test_a_setting_that_changes_what_a_replica_does_changes_the_digest(runbooks_dir, change):
    """Two replicas rolling back from different registries, or accepting different keys, had the same digest."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings()) != fleet_digest(books, Settings(**change))


def test_the_new_settings_at_their_defaults_keep_the_digest(runbooks_dir):
    """A fleet that leaves the newly digested settings at their defaults keeps its digest through the upgrade."""
    books = load_runbooks(runbooks_dir, registry)
    defaults = Settings(model_registry=".responder/models", model_ssm_prefix="/responder/models", approval_keys={},
                        approvals_topic="responder.approvals", max_record_bytes=1024 * 1024)
    assert fleet_digest(books, defaults) == fleet_digest(books, Settings())


def test_keys_are_digested_by_id_never_by_secret(runbooks_dir):
    """The digest is stored and logged: a key's secret is not in it, its id is (another id is another fleet)."""
    books = load_runbooks(runbooks_dir, registry)
    one = fleet_digest(books, Settings(approval_keys={"k1": "one", "k2": "two"}))
    assert one == fleet_digest(books, Settings(approval_keys={"k2": "other", "k1": "secret"}))
    assert one != fleet_digest(books, Settings(approval_keys={"k1": "one"}))


def test_every_setting_is_digested_or_named_with_why_not():
    """A new setting cannot be added without deciding whether replicas must agree on it."""
    named = [*DIGESTED, *DIGESTED_IF_SET, *IN_THE_RUNBOOKS, *(f for fields in NOT_DIGESTED.values() for f in fields)]
    assert sorted(named) == sorted(Settings.model_fields)
    assert all(why for why in NOT_DIGESTED)
