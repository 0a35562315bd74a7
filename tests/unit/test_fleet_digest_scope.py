"""Every setting is either in the fleet digest or named with the reason it is not; the ones that decide what a
replica does to the world (model registry, approval and signing keys, the decision topics) are in it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import responder.cli.service
from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.fleet_digest import DIGESTED, DIGESTED_IF_SET, IN_THE_RUNBOOKS, NOT_DIGESTED, fleet_digest
from responder.sandbox import lifeline
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
    {"operator_replies_topic": "other.replies"},  # where the service answers them (the CLI waits on its own)
    {"approval_decision_max_lifetime": 60.0},  # which decisions are too long-lived to accept
    {"max_record_bytes": 4096},  # which records are dead-lettered rather than acted on
    {"evict_every": 600.0},  # how long a closed incident still takes in an event (joins it, rather than a new one)
])
def test_a_setting_that_changes_what_a_replica_does_changes_the_digest(runbooks_dir, change):
    """Two replicas rolling back from different registries, or accepting different keys, had the same digest."""
    books = load_runbooks(runbooks_dir, registry)
    assert fleet_digest(books, Settings()) != fleet_digest(books, Settings(**change))


def test_the_new_settings_at_their_defaults_keep_the_digest(runbooks_dir):
    """A fleet that leaves the newly digested settings at their defaults keeps its digest through the upgrade."""
    books = load_runbooks(runbooks_dir, registry)
    defaults = Settings(model_registry=".responder/models", model_ssm_prefix="/responder/models", approval_keys={},
                        approvals_topic="responder.approvals", max_record_bytes=1024 * 1024,
                        evict_every=60.0)
    assert fleet_digest(books, defaults) == fleet_digest(books, Settings())


@pytest.mark.parametrize("name", sorted(DIGESTED_IF_SET))
def test_a_setting_digested_when_set_written_out_at_its_default_keeps_the_digest(name):
    """`X=<its default>` written in the environment or the file is no change: the digest is the unset one's."""
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    assert fleet_digest([], Settings(**{name: default})) == fleet_digest([], Settings())


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


def test_a_setting_said_to_be_read_elsewhere_is_read_by_no_module_responder_run_loads():
    """`read by … only` reasons hold: operator_replies_topic was listed so, yet the service answers on it."""
    loaded = lifeline.run(  # a fresh interpreter: what the service imports, not what other tests did
        [sys.executable, "-c", "import sys, responder.service\n"
         "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('responder') and m.__file__))"],
        capture_output=True, text=True, check=True).stdout.split()
    loaded.append(str(Path(responder.cli.service.__file__)))  # `responder run` itself (the other commands are not)
    texts = {path: Path(path).read_text() for path in loaded}
    elsewhere = {f for why, fields in NOT_DIGESTED.items() if why.startswith("read by") for f in fields}
    assert len(elsewhere) > 10
    read = {f: sorted(Path(p).name for p, text in texts.items() if re.search(rf"\.{f}\b", text))
            for f in elsewhere}
    # the one exception: settings.py's validator compares intake_sources' keys with the other key rings, so a source
    # sharing a secret stops `responder run` from starting (exit 3), though no replica otherwise reads the field
    allowed = {"intake_sources": ["settings.py"]}
    assert {f: where for f, where in read.items() if where} == allowed
