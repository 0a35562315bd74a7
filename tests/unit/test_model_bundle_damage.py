"""A forged or damaged signature bundle is a `bad_signature` rejection, never an exception out of the walk."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from responder.actuators import registry
from responder.actuators.model.local import LocalStore
from responder.actuators.model.params import RollbackParams, VersionParams
from responder.actuators.model.signing import Reason, sign, verify
from responder.cli.app import app
from responder.errors import PermanentActuationError
from tests.modelkit import Keys, NoAws, context, forge_version, forged_bundle, make_model, publish

ROLLBACK = registry.get("model.rollback_to_last_signed")
SWITCH = registry.get("model.switch_version")
Damage = Callable[[dict[str, Any], bytes], bytes | None]


def _payload(change: Callable[[dict[str, Any]], object]) -> Damage:
    def damage(bundle: dict[str, Any], raw: bytes) -> None:
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        replaced = change(statement)
        body = replaced if isinstance(replaced, bytes) else json.dumps(statement).encode()
        bundle["dsseEnvelope"]["payload"] = base64.b64encode(body).decode()

    return damage


def _set(path: tuple[str | int, ...], value: object) -> Damage:
    def damage(bundle: dict[str, Any], raw: bytes) -> None:
        node: Any = bundle
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return damage


def _drop(*path: str) -> Damage:
    def damage(bundle: dict[str, Any], raw: bytes) -> None:
        node: Any = bundle
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return damage


SIG = ("dsseEnvelope", "signatures", 0, "sig")
DAMAGE: dict[str, Damage] = {
    "payload rewritten, old signature kept": lambda b, raw: forged_bundle(raw, "weights.bin", b"other"),
    "no signatures": _set(("dsseEnvelope", "signatures"), []),
    "signature not a signature": _set(SIG, "!!"),
    "empty signature": _set(SIG, ""),
    "signature of the wrong type": _set(SIG, 1),
    "huge signature": _set(SIG, "A" * 4_000_000),
    "payload not base64": _set(("dsseEnvelope", "payload"), "!!!"),
    "payload of the wrong type": _set(("dsseEnvelope", "payload"), 1),
    "payload type changed": _set(("dsseEnvelope", "payloadType"), "text/plain"),
    "resources of the wrong type": _payload(lambda s: s["predicate"].__setitem__("resources", "x")),
    "unknown serialization method": _payload(lambda s: s["predicate"]["serialization"].__setitem__("method", "x")),
    "wrong media type": _set(("mediaType",), "application/x"),
    "older media type": _set(("mediaType",), "application/vnd.dev.sigstore.bundle+json;version=0.1"),
    "no verification material": _drop("verificationMaterial"),
    "null verification material": _set(("verificationMaterial",), None),
    "no public key": _drop("verificationMaterial", "publicKey"),
    "junk transparency log entry": _set(("verificationMaterial", "tlogEntries"), [{"x": 1}]),
    "no envelope": _drop("dsseEnvelope"),
    "truncated JSON": lambda b, raw: raw[: len(raw) // 2],
    "not JSON": lambda b, raw: b"\x00\xff" * 64,
    "a JSON list": lambda b, raw: b"[]",
    "deeply nested JSON": lambda b, raw: b"[" * 100_000,
}


@pytest.fixture(name="signed")
def _signed(tmp_path: Path, keys: Keys) -> tuple[Path, Path]:
    model = make_model(tmp_path, "m")
    sign(model, keys.private, tmp_path / "m.sig", model="m", version="v1")
    assert verify(model, tmp_path / "m.sig", [keys.public]).ok  # so each rejection below is the damage's doing
    return model, tmp_path / "m.sig"


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_damaged_bundle_is_a_bad_signature_naming_no_traceback(signed, keys, damage):
    """Every damaged bundle variant verifies to bad_signature with a short detail and no traceback, and never raises."""
    model, signature = signed
    raw = signature.read_bytes()
    bundle = json.loads(raw)
    out = DAMAGE[damage](bundle, raw)
    signature.write_bytes(out if out is not None else json.dumps(bundle).encode())
    verdict = verify(model, signature, [keys.public])
    assert not verdict.ok
    assert verdict.reason is Reason.BAD_SIGNATURE, verdict
    assert verdict.detail
    assert "Traceback" not in verdict.detail
    assert len(verdict.detail) <= 500


def test_a_forged_payload_names_the_exception_type_and_is_logged(signed, keys):
    """A payload rewritten under the old signature is bad_signature naming InvalidSignature, and is logged."""
    model, signature = signed
    signature.write_bytes(forged_bundle(signature.read_bytes(), "weights.bin", b"other"))
    with structlog.testing.capture_logs() as logs:
        verdict = verify(model, signature, [keys.public])
    assert (verdict.reason, verdict.detail.split(":")[0]) == (Reason.BAD_SIGNATURE, "InvalidSignature")
    assert [e["error"] for e in logs if e["event"] == "model_signature_unverifiable"] == ["InvalidSignature"]


async def _three(store: LocalStore, tmp_path: Path, keys: Keys) -> None:
    for version in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)
    await store.set_serving("fraud", (await store.versions("fraud"))[-1])


async def test_a_forged_middle_version_is_walked_past_to_the_older_signed_one(tmp_path, keys):
    """v3 served, v2's weights swapped and payload rewritten: the rollback serves v1, rejecting v2 as bad_signature."""
    store = LocalStore(tmp_path / "registry")
    await _three(store, tmp_path, keys)
    forge_version(store.root, "fraud", "v2")
    ctx = context(NoAws(), str(store.root), keys)
    p = RollbackParams(model="fraud", from_version="v3")
    assert "would serve v1" in (await ROLLBACK.plan(p, ctx)).summary
    result = await ROLLBACK.apply(p, ctx)
    assert (result.outputs["from"], result.outputs["to"]) == ("v3", "v1")
    assert [(r["version"], r["reason"]) for r in result.outputs["rejected"]] == [  # type: ignore[index, union-attr]
        ("v2", "bad_signature")]
    assert await ROLLBACK.verify(p, ctx)


async def test_a_forged_served_version_corroborates_the_alert_and_is_rolled_back(tmp_path, keys):
    """With only_if_unverified, a served version whose bundle is forged counts as unverified: v2 is served instead."""
    store = LocalStore(tmp_path / "registry")
    await _three(store, tmp_path, keys)
    forge_version(store.root, "fraud", "v3")
    result = await ROLLBACK.apply(RollbackParams(model="fraud", only_if_unverified=True),
                                  context(NoAws(), str(store.root), keys))
    assert (result.outputs["from"], result.outputs["to"], result.outputs["corroborated"]) == ("v3", "v2", True)


async def test_switching_to_a_forged_version_is_refused_as_bad_signature(tmp_path, keys):
    """model.switch_version to a version with a forged bundle fails permanently naming bad_signature."""
    store = LocalStore(tmp_path / "registry")
    await _three(store, tmp_path, keys)
    forge_version(store.root, "fraud", "v2")
    with pytest.raises(PermanentActuationError, match="bad_signature"):
        await SWITCH.apply(VersionParams(model="fraud", version="v2"), context(NoAws(), str(store.root), keys))
    assert await store.serving("fraud") == "v3"


def test_models_check_reports_a_forged_served_version_as_bad_signature(registry: LocalStore):
    """`models check` on a served version with a forged bundle exits 1 with reason bad_signature instead of crashing."""
    forge_version(registry.root, "fraud", "v2")
    out = CliRunner().invoke(app, ["models", "check", "fraud", "--json"])
    assert out.exit_code == 1, out.output
    report = json.loads(out.stdout)  # the log's warning goes to stderr
    assert (report["reason"], report["detail"][:16]) == ("bad_signature", "InvalidSignature")

