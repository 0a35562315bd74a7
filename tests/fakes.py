"""In-memory fakes for unit tests (integration tests use the moto server)."""

from __future__ import annotations

import asyncio
import copy
import struct
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from aiokafka import codec
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.util import calc_crc32c, encode_varint
from pydantic import Field, JsonValue

from responder.actuators import registry as default_registry
from responder.actuators.base import ActuationContext, ActuationResult, Actuator, Params, PlanPreview
from responder.actuators.registry import Registry
from responder.errors import PermanentActuationError, TransientActuationError

Rec = tuple[bytes | None, bytes | None, list[tuple[bytes, bytes]]]  # key, value, raw header keys and values
_CODECS = {"gzip": (1, codec.gzip_encode), "snappy": (2, codec.snappy_encode), "lz4": (3, codec.lz4_encode),
           "zstd": (4, codec.zstd_encode)}
GOOD: list[Rec] = [(b"k0", b"v0", []), (b"k1", None, [(b"h", b"x")]), (None, b"v2", [(b"a", b"1"), (b"b", b"")])]


class FakeIam:
    """Just enough IAM for access-key actuators; counts calls and can fail the next N with throttling."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.throttle_next = 0
        self.user_policies: dict[tuple[str, str], str] = {}

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
        return self._policy_call(operation, kwargs)

    def _policy_call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Inline user policies (revoke_sessions, quarantine_principal)."""
        ref = (kwargs.get("UserName", ""), kwargs.get("PolicyName", ""))
        if operation == "put_user_policy":
            self.user_policies[ref] = kwargs["PolicyDocument"]
            return {}
        if operation in ("get_user_policy", "delete_user_policy"):
            if ref not in self.user_policies:
                raise PermanentActuationError("NoSuchEntity", code="NoSuchEntity")
            if operation == "delete_user_policy":
                del self.user_policies[ref]
                return {}
            return {"PolicyDocument": self.user_policies[ref]}
        raise PermanentActuationError(f"fake IAM has no {operation}", code="NotImplemented")


class FakePublisher:
    """Collects what notify.kafka publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes,
                      headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Record one message."""
        self.sent.append((topic, key, value))


class EchoParams(Params):
    """Free text plus a target: shows exactly what reached an actuator."""

    target: str = Field(pattern=r"^[a-z0-9-]{1,32}$")
    message: str = Field(default="", max_length=4096)


class Echo(Actuator[EchoParams]):
    """Records every apply; changes nothing anywhere.

    Example::

        - id: note
          actuator: test.echo
          with: {target: t1, message: "${event.actor}"}
    """

    name = "test.echo"
    params = EchoParams
    example_outputs: ClassVar[Mapping[str, JsonValue]] = {"message": "hello", "n": 1}
    permissions = ("none:None",)

    def __init__(self) -> None:
        self.applied: list[EchoParams] = []

    def target(self, p: EchoParams) -> str:
        return p.target

    async def plan(self, p: EchoParams, ctx: ActuationContext) -> PlanPreview:
        return PlanPreview(target=p.target, summary=f"echo to {p.target}")

    async def apply(self, p: EchoParams, ctx: ActuationContext) -> ActuationResult:
        self.applied.append(p)
        return ActuationResult(changed=True, target=p.target, outputs={"message": p.message, "n": len(self.applied)})

    async def verify(self, p: EchoParams, ctx: ActuationContext) -> bool:
        return p in self.applied


class Wipe(Echo):
    """A destructive echo: approval is required by default.

    Example::

        - id: wipe
          actuator: test.wipe
          with: {target: t1}
    """

    name = "test.wipe"
    destructive = True


def test_registry() -> tuple[Registry, Echo, Wipe]:
    """The built-in actuators plus a fresh Echo and Wipe."""
    reg = Registry()
    for actuator in default_registry:
        reg.add(actuator)
    echo, wipe = Echo(), Wipe()
    reg.add(echo)
    reg.add(wipe)
    return reg, echo, wipe


test_registry.__test__ = False  # type: ignore[attr-defined]


class Killed(BaseException):
    """The process died here (not an error the engine may catch)."""


@contextmanager
def dying(echo: Echo, *, applied: bool) -> Iterator[None]:
    """Within the block, the echo actuator's next apply kills the process once its intent is durable (after the call
    took effect, if `applied`); the block must die of it. The actuator is whole again after."""
    real = echo.apply

    async def die(p: EchoParams, ctx: ActuationContext) -> ActuationResult:
        if applied:
            await real(p, ctx)
        raise Killed

    echo.apply = die  # type: ignore[method-assign]
    try:
        with pytest.raises(Killed):
            yield
    finally:
        echo.apply = real  # type: ignore[method-assign]


class Lagging:
    """An AwsCaller whose reads lag its writes, as an eventually consistent control plane's do: after a call of
    `write`, the next `stale` calls of `read` answer what that read last answered before it (`stale_answers`)."""

    def __init__(self, call: Callable[..., Awaitable[dict[str, Any]]], *, write: str = "update_access_key",
                 read: str = "list_access_keys", stale: int = 1) -> None:
        self._call, self.write, self.read, self.stale = call, write, read, stale
        self._last: dict[str, dict[str, Any]] = {}
        self.lagging = self.stale_answers = 0

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        """The real answer, except a read within `stale` reads after a write: the one from before it."""
        if operation == self.read:
            asked = repr(sorted(kwargs.items()))
            if self.lagging > 0 and asked in self._last:
                self.lagging -= 1
                self.stale_answers += 1
                return copy.deepcopy(self._last[asked])
            answer = await self._call(service, operation, **kwargs)
            self._last[asked] = copy.deepcopy(answer)  # as it was: a fake may change the objects it answered later
            return answer
        answer = await self._call(service, operation, **kwargs)
        if operation == self.write:
            self.lagging = self.stale
        return answer


class Waits:
    """A `VerifySettle`'s sleep and clock: records each wait and advances the clock by it, sleeping for nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waited: list[float] = []

    async def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on."""
        self.waited.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        """The time the waits add up to."""
        return self.now


class MetadataClient:
    """An aiokafka producer's `client`: counts the metadata refreshes asked for (`force_metadata_update`)."""

    def __init__(self) -> None:
        self.refreshed = 0

    def force_metadata_update(self) -> None:
        """Counted; nothing is fetched."""
        self.refreshed += 1


class MirrorProducer:
    """Acks fail with `failures` (one send each, `None` = acknowledged); a value in `too_large` is refused by send."""

    def __init__(self, failures: list[Exception | None], too_large: frozenset[bytes] = frozenset()) -> None:
        self.failures, self.too_large, self.client = failures, too_large, MetadataClient()
        self.log: list[bytes] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, *, key: bytes) -> asyncio.Future[Any]:
        if value in self.too_large:
            raise MessageSizeTooLargeError("bigger than max_request_size")
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            ack.set_exception(failure)
        else:
            self.log.append(value)
            ack.set_result(None)
        return ack


async def until_done(done: Any) -> None:
    """Wait until `done()` (5 s at most)."""
    async with asyncio.timeout(5):
        while not done():
            await asyncio.sleep(0.005)


def _varint(n: int) -> bytes:
    out = bytearray()
    encode_varint(n, out.append)
    return bytes(out)


def _field(b: bytes | None) -> bytes:
    return _varint(-1) if b is None else _varint(len(b)) + b


def batch(base: int, records: list[Rec], *, compression: str | None = None, attributes: int = 0,
          ts: int = 1_000) -> bytes:
    """A v2 record batch as any producer may write it (header keys are raw bytes: any bytes at all)."""
    body = b""
    for i, (key, value, headers) in enumerate(records):
        rec = b"\x00" + _varint(i) + _varint(i) + _field(key) + _field(value) + _varint(len(headers))
        rec += b"".join(_field(k) + _field(v) for k, v in headers)
        body += _varint(len(rec)) + rec
    if compression is not None:
        kind, encode = _CODECS[compression]
        attributes |= kind
        body = encode(body)
    tail = struct.pack(">hiqqqhii", attributes, len(records) - 1, ts, ts + len(records) - 1, -1, -1, -1,
                       len(records)) + body
    crc = calc_crc32c(tail)
    return struct.pack(">qiib", base, 4 + 1 + 4 + len(tail), -1, 2) + struct.pack(">I", crc) + tail
