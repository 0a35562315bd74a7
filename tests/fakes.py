"""In-memory fakes for unit tests (integration tests use the moto server)."""

from __future__ import annotations

from typing import Any

from responder.errors import PermanentActuationError, TransientActuationError


class FakeIam:
    """Just enough IAM for access-key actuators; counts calls and can fail the next N with throttling."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.throttle_next = 0

    def add_key(self, user: str, key_id: str, status: str = "Active") -> None:
        """Seed a key."""
        self.keys[key_id] = {"UserName": user, "AccessKeyId": key_id, "Status": status}

    def count(self, operation: str) -> int:
        """How many times `operation` was called."""
        return sum(1 for _, op, _ in self.calls if op == operation)

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Dispatch one fake API call."""
        self.calls.append((service, operation, kwargs))
        if self.throttle_next > 0:
            self.throttle_next -= 1
            raise TransientActuationError("Throttling: Rate exceeded", code="Throttling")
        if operation == "list_access_keys":
            return {"AccessKeyMetadata": [k for k in self.keys.values() if k["UserName"] == kwargs["UserName"]]}
        if operation == "update_access_key":
            key = self.keys.get(kwargs["AccessKeyId"])
            if key is None:
                raise PermanentActuationError("NoSuchEntity", code="NoSuchEntity")
            key["Status"] = kwargs["Status"]
            return {}
        raise PermanentActuationError(f"fake IAM has no {operation}", code="NotImplemented")
