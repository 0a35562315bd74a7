"""A scripted AWS client for the partial-failure tests (tests/unit/test_partial_failures.py, test_partial_undo.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from responder.errors import PermanentActuationError

ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"
Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


class Scripted:
    """An AWS client answering each operation from `answers` (a reply, or a function of the call's arguments), raising
    the errors `fails` lists per (operation, argument, value) in turn, and holding the role policies it is given (put,
    read and deleted) and the groups of the network interfaces in `enis`."""

    def __init__(self, answers: dict[str, Answer], fails: dict[tuple[str, str, str], list[Exception]],
                 enis: dict[str, list[str]] | None = None) -> None:
        self.answers, self.fails = answers, fails
        self.policies: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.enis = enis

    async def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        self.calls.append((operation, kw))
        for (op, arg, value), errors in self.fails.items():
            if op == operation and kw.get(arg) == value and errors:
                raise errors.pop(0)
        if operation == "put_role_policy":
            self.policies[(kw["RoleName"], kw["PolicyName"])] = kw["PolicyDocument"]
            return {}
        if operation == "delete_role_policy":
            self.policies.pop((kw["RoleName"], kw["PolicyName"]), None)
            return {}
        if operation == "get_role_policy":
            if (kw["RoleName"], kw["PolicyName"]) not in self.policies:
                raise PermanentActuationError("no such policy", code="NoSuchEntity")
            return {"PolicyDocument": self.policies[(kw["RoleName"], kw["PolicyName"])]}
        if self.enis is not None and operation == "modify_network_interface_attribute":
            self.enis[kw["NetworkInterfaceId"]] = list(kw["Groups"])
        if self.enis is not None and operation == "describe_network_interfaces":
            return {"NetworkInterfaces": [{"NetworkInterfaceId": eni, "Groups": [{"GroupId": g} for g in groups]}
                                          for eni, groups in self.enis.items()]}
        answer = self.answers.get(operation, {})
        return answer(kw) if callable(answer) else answer
