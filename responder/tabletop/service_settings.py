"""The settings a scenario's service runs with: the sandbox, the scenario's topics, its playbook's overrides, the
service-wide escalation; the defaults for the rest, never a RESPONDER_* variable or RESPONDER_CONFIG
(responder/tabletop/sandboxed.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from responder.sandbox import SANDBOX_CREDENTIALS, Sandbox
from responder.settings import Settings
from responder.tabletop.models import Playbook
from responder.tabletop.outcome import Run
from responder.tabletop.sandboxed import SandboxSettings
from responder.tabletop.webhook import SIGNING_KEY_ID, SIGNING_SECRET

TOPICS = ("alerts", "drift", "deadletter", "approvals", "requests")
"""The scenario's own topics, by role (`scenario_topics`)."""


def scenario_topics(pb: Playbook, nonce: str) -> dict[str, str]:
    """Each role's topic, named for the playbook and this run (`nonce`), so no two runs share a record."""
    return {name: f"tabletop.{pb.id}.{nonce}.{name}" for name in TOPICS}


def uses_webhooks(pb: Playbook) -> bool:
    """Whether an inject goes through the intake (then the service trusts the intake's signing key)."""
    return any(i.transport == "webhook" for i in pb.injects)


def service_settings(pb: Playbook, run: Run, sandbox: Sandbox, topics: Mapping[str, str], *, runbooks_dir: Path,
                     work: Path, signing_key: str, default_on_failure: list[dict[str, Any]]) -> Settings:
    """The service's settings for one run of `pb` against `sandbox` (its resources bound in `run.bindings`)."""
    s, t, b = pb.settings, topics, run.bindings
    protected = [b.id_of(n) for n in pb.world.protected]
    return SandboxSettings(
        kafka_bootstrap=sandbox.broker.bootstrap, topics=[t["alerts"], t["drift"]],
        group_id=f"tabletop-{t['alerts']}", deadletter_topic=t["deadletter"], kafka_manual_assignment=True,
        approvals_topic=t["approvals"], approval_requests_topic=t["requests"],
        runbooks_dir=runbooks_dir, timeline_path=run.timeline,
        timeline_signing_key=signing_key, aws_endpoint_url=sandbox.aws.endpoint_url,
        aws_access_key_id=SANDBOX_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=SANDBOX_CREDENTIALS["aws_secret_access_key"],
        approval_keys=s.approval_keys, approval_decision_ttl=s.approval_decision_ttl,
        guard_quotas=s.guard_quotas, guard_max_targets=s.guard_max_targets, protected_ids=protected,
        protected_tags=s.protected_tags, kill_switch=s.kill_switch, dry_run=s.dry_run,
        require_signature=[t["alerts"] if r == "alerts" else r for r in s.require_signature],
        event_signing_keys=s.event_signing_keys | ({SIGNING_KEY_ID: SIGNING_SECRET} if uses_webhooks(pb) else {}),
        model_registry=str(b.registry or work / "registry"),
        model_trusted_keys=[b.trusted_key] if b.trusted_key else [],
        default_on_failure=default_on_failure,
    )
