"""The shipped example runbooks (runbooks/examples/): their folder, the ids their test events name, a publisher that
records their notifications (and an engine that sends them to it), and the IAM users and keys their findings name, in
moto."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from responder.actuators import registry
from responder.actuators.base import ActuationContext
from responder.engine import Engine
from responder.timeline import MemoryStore, Recorder, TimelineStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "runbooks" / "examples"
EXAMPLE_INSTANCE = "i-0d2c3a1b5e6f7a8b9"  # the instance the examples' findings name
EXAMPLE_KEY = "AKIAEXAMPLEKEYID0001"  # the access key iam-credential-compromise's finding names
LEAKED_KEY = "AKIAEXAMPLELEAKED001"  # the leaked key access-key-compromise's (and other examples') findings name


class RecordingPublisher:
    """Collects notify.kafka records instead of sending them (the real broker path is tested in test_notify)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Record the topic and the decoded body."""
        self.sent.append((topic, orjson.loads(value)))


def example_engine(aws: Any, store: TimelineStore | None = None, **engine_kw: Any) -> tuple[Engine, RecordingPublisher]:
    """An engine over the actuator registry and a timeline in `store` (a new memory one by default), acting through
    `aws`, whose notify.kafka records go to the RecordingPublisher returned with it; `engine_kw` go to Engine."""
    publisher = RecordingPublisher()
    engine = Engine(Recorder(MemoryStore() if store is None else store), registry, aws,
                    context=ActuationContext(aws=aws, publisher=publisher), **engine_kw)
    return engine, publisher


async def example_user_key(aws: Any) -> dict[str, str]:
    """`ml-training` and an access key of it, standing for EXAMPLE_KEY."""
    return await user_with_key(aws, "ml-training", EXAMPLE_KEY)


async def user_with_key(aws: Any, user: str, example_key: str) -> dict[str, str]:
    """`user` and an access key of it, standing for the example's `example_key`."""
    await aws.call("iam", "create_user", UserName=user)
    key = (await aws.call("iam", "create_access_key", UserName=user))["AccessKey"]["AccessKeyId"]
    return {example_key: key}


async def key_inactive(aws: Any, user: str, key: str) -> bool:
    """Whether moto says `user`'s access key `key` is Inactive."""
    keys = (await aws.call("iam", "list_access_keys", UserName=user))["AccessKeyMetadata"]
    return [k["Status"] for k in keys if k["AccessKeyId"] == key] == ["Inactive"]


async def inline_policy_names(aws: Any, user: str) -> list[str]:
    """The names of `user`'s inline policies."""
    return list((await aws.call("iam", "list_user_policies", UserName=user))["PolicyNames"])


async def leaked_example_key(aws: Any) -> dict[str, str]:
    """`ml-training` and an access key of it, standing for the leaked key the examples' findings name."""
    return await user_with_key(aws, "ml-training", LEAKED_KEY)
