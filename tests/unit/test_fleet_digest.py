"""The fleet digest covers every setting that changes what a replica does to an alert."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.fleet_digest import fleet_digest
from responder.settings import Settings


@pytest.mark.parametrize("change", [
    {"aws_account_id": "111122223333"},  # protected ids pinned to an account match in it
    {"aws_region": "eu-west-1"},  # and in this region
    {"approver_identities": {"k1": "alice"}},  # who may satisfy a step's approvers
    {"event_signing_key_sources": {"k1": ["falco"]}},  # which records are authentic, so may act
    {"operator_permissions": {"k1": ["undo"]}},  # which key may undo a containment through any replica
    {"model_accept_legacy_signatures": True},  # whether a legacy-signed version may be rolled back to
    {"model_refuse_legacy_signatures": True},  # whether a legacy signature corroborates an integrity alert
])
def test_a_setting_that_changes_protection_or_approval_changes_the_digest(runbooks_dir, change):
    """Two replicas differing in protection home, approver bindings or key scopes had the same digest."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings()) != fleet_digest(books, Settings(**change))


def test_a_fleet_that_sets_none_of_the_newly_digested_settings_keeps_its_digest_through_the_upgrade(runbooks_dir):
    """32446ba changed every fleet's digest: the first upgraded replica was refused unless it adopted the digest."""
    books = load_runbooks(runbooks_dir, registry)
    settings = Settings(topics=["a"], protected_ids=["i-1"])
    # `require_signature` (a runbook field since 2026-12-07) is digested only when set
    before = {"runbooks": sorted(rb.model_dump_json(exclude={"require_signature"}) for rb in books),
              "settings": settings.model_dump_json(include={
        "topics", "topic_formats", "changelog_topic", "guard_quotas", "guard_max_targets", "protected_ids",
        "protected_tags", "dry_run", "require_signature"})}  # the digest as computed before 2026-12-04
    assert fleet_digest(books, settings) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()


def test_the_order_identities_and_key_sources_are_written_in_does_not_change_the_digest(runbooks_dir):
    """Two replicas given the same maps in another order are one fleet."""
    books = load_runbooks(runbooks_dir, registry)
    one = Settings(approver_identities={"k1": "alice", "k2": "bob"}, event_signing_key_sources={"a": ["x"], "b": ["y"]})
    two = Settings(approver_identities={"k2": "bob", "k1": "alice"}, event_signing_key_sources={"b": ["y"], "a": ["x"]})
    assert fleet_digest(books, one) == fleet_digest(books, two)


def test_the_order_or_repeats_of_a_keys_operator_permissions_do_not_change_the_digest(runbooks_dir):
    """Order, repeats or empty grants in a key's operator permissions leave the fleet digest unchanged."""
    books = load_runbooks(runbooks_dir, registry)
    one = Settings(operator_permissions={"k1": ["undo", "models.rollback"]})
    two = Settings(operator_permissions={"k1": ["models.rollback", "undo", "undo"], "k2": []})
    assert fleet_digest(books, one) == fleet_digest(books, two)
    assert fleet_digest(books, Settings(operator_permissions={"k2": []})) == fleet_digest(books, Settings())
    assert fleet_digest(books, one) != fleet_digest(books, Settings(operator_permissions={"k1": ["undo"]}))


def _key(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def test_the_trusted_model_keys_are_digested_by_content_not_path(runbooks_dir, tmp_path):
    """Replicas trusting other model-signing keys were one fleet; the same key at another path or order still is."""
    books = load_runbooks(runbooks_dir, registry)
    (tmp_path / "a").mkdir()
    one, two = _key(tmp_path / "k1.pem", b"public key one"), _key(tmp_path / "k2.pem", b"public key two")
    moved = _key(tmp_path / "a" / "k1.pem", b"public key one")
    both = fleet_digest(books, Settings(model_trusted_keys=[one, two]))
    assert both == fleet_digest(books, Settings(model_trusted_keys=[two, moved]))
    assert both != fleet_digest(books, Settings(model_trusted_keys=[one]))
    assert fleet_digest(books, Settings(model_trusted_keys=[one])) != fleet_digest(books, Settings())
    assert fleet_digest(books, Settings(model_trusted_keys=[one])) != fleet_digest(
        books, Settings(model_trusted_keys=[_key(tmp_path / "k3.pem", b"another key")]))


def test_the_model_signature_settings_at_their_defaults_keep_the_digest(runbooks_dir):
    """A fleet that sets none of the model-signature settings keeps its digest through the upgrade."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings(model_accept_legacy_signatures=False, model_refuse_legacy_signatures=False,
                                        model_trusted_keys=[])) == fleet_digest(books, Settings())
