"""An in-memory EC2, IAM and Secrets Manager for the undo tests (tests/unit/test_undo_observe.py): one instance with
network interfaces, one user's access keys and a secret, enough for stop/start, isolate/restore and key rotation."""

from __future__ import annotations

from collections import Counter
from typing import Any

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.engine.readback import StepCall
from responder.engine.runner import run_step
from responder.errors import PermanentActuationError
from responder.models.step import StepIntent, StepResult
from responder.timeline import Recorder

INSTANCE = "i-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
ENI = "eni-0000000000000000a"
SG_WEB, SG_OTHER, SG_QUARANTINE = "sg-0000000000000000a", "sg-0000000000000000b", "sg-00000000000000009"
USER, OLD_KEY = "ml-training", "AKIAOLDKEY0000000000"
SECRET = "responder/iam/ml-training"  # nosec B105 # a secret's name
SETTLES = {"stopping": "stopped", "pending": "running"}


class FakeCloud:
    """Answers the EC2, IAM and Secrets Manager calls the instance-state, isolation and rotation actuators make.

    `transient`: a stop or start leaves the instance in `stopping` / `pending` until `settle()`; `calls` counts each
    operation."""

    def __init__(self, state: str = "running", groups: list[str] | None = None) -> None:
        self.state = state
        self.enis = {ENI: groups or [SG_WEB]}
        self.tags: set[str] = set()
        self.keys = {OLD_KEY: "Active"}
        self.user_tags: dict[str, str] = {}
        self.secret: str | None = None
        self.calls: Counter[str] = Counter()
        self._issued = 0

    def settle(self) -> None:
        """A stopping instance stops, a pending one runs."""
        self.state = SETTLES.get(self.state, self.state)

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        """One AWS call, answered from the fake's state."""
        self.calls[operation] += 1
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            raise AssertionError(f"unexpected call {service}.{operation}")
        answer: dict[str, Any] = handler(kw)
        return answer

    def _describe_instances(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"Reservations": [{"Instances": [{"InstanceId": INSTANCE, "VpcId": VPC,
                                                 "State": {"Name": self.state}}]}]}

    def _stop_instances(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.state = "stopping"
        return {}

    def _start_instances(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.state = "pending"
        return {}

    def _describe_network_interfaces(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"NetworkInterfaces": [{"NetworkInterfaceId": eni, "Groups": [{"GroupId": g} for g in groups]}
                                      for eni, groups in self.enis.items()]}

    def _modify_network_interface_attribute(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.enis[kw["NetworkInterfaceId"]] = list(kw["Groups"])
        return {}

    def _modify_instance_attribute(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _describe_security_groups(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"SecurityGroups": [{"GroupId": SG_QUARANTINE, "IpPermissions": [], "IpPermissionsEgress": []}]}

    def _create_tags(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.tags.update(t["Key"] for t in kw["Tags"])
        return {}

    def _delete_tags(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.tags.difference_update(t["Key"] for t in kw["Tags"])
        return {}

    def _list_access_keys(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"AccessKeyMetadata": [{"AccessKeyId": k, "Status": s} for k, s in self.keys.items()]}

    def _update_access_key(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.keys[kw["AccessKeyId"]] = kw["Status"]
        return {}

    def _create_access_key(self, kw: dict[str, Any]) -> dict[str, Any]:
        self._issued += 1
        key = f"AKIANEWKEY{self._issued:010d}"
        self.keys[key] = "Active"
        return {"AccessKey": {"AccessKeyId": key, "SecretAccessKey": "not-a-secret"}}

    def _delete_access_key(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.keys.pop(kw["AccessKeyId"], None)
        return {}

    def _list_user_tags(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.user_tags.items()]}

    def _tag_user(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.user_tags.update({t["Key"]: t["Value"] for t in kw["Tags"]})
        return {}

    def _untag_user(self, kw: dict[str, Any]) -> dict[str, Any]:
        for key in kw["TagKeys"]:
            self.user_tags.pop(key, None)
        return {}

    def _get_secret_value(self, kw: dict[str, Any]) -> dict[str, Any]:
        if self.secret is None:
            raise PermanentActuationError("no such secret", code="ResourceNotFoundException")
        return {"SecretString": self.secret}

    def _create_secret(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.secret = kw["SecretString"]
        return {}

    def _put_secret_value(self, kw: dict[str, Any]) -> dict[str, Any]:
        self.secret = kw["SecretString"]
        return {}


INCIDENT = "inc0123456789abcdef0"
STEP_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


async def stepped(recorder: Recorder, aws: Any, actuator: str, params: dict[str, Any]) -> StepResult:
    """Run `actuator` on `params` as one step of INCIDENT through the step runner, recorded on `recorder`."""
    act = registry.get(actuator)
    p = act.params.model_validate(params)
    call = StepCall(act, p, ActuationContext(aws=aws, incident=INCIDENT, key=STEP_KEY), attempts=1, timeout=30)
    intent = StepIntent(step="contain", actuator=actuator, target=act.target(p), key=STEP_KEY,
                        params=p.model_dump(mode="json"))
    return await run_step(recorder, call, intent, incident=INCIDENT)
