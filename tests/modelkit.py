"""Real model directories, real ECDSA keys and real model-signing bundles for the model-rollback tests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from model_signing import signing as ms_signing

from responder.actuators.aws.session import AwsSession
from responder.actuators.base import ActuationContext, AwsCaller
from responder.actuators.model import ModelConfig, ModelStore
from responder.actuators.model.local import LocalStore
from responder.actuators.model.signing import generate_key, sign

BUCKET = "models"  # the model registry's bucket in moto
URL = f"s3://{BUCKET}/registry"
LATER = json.dumps({"created": datetime(2100, 1, 1, tzinfo=UTC).isoformat()}).encode()  # a version.json created later


@dataclass(frozen=True)
class Keys:
    """A trusted key pair and an untrusted one."""

    private: Path
    public: Path
    wrong_private: Path
    wrong_public: Path


def make_keys(root: Path) -> Keys:
    """Generate the two key pairs under `root`."""
    generate_key(root / "trusted.pem", root / "trusted.pub.pem")
    generate_key(root / "wrong.pem", root / "wrong.pub.pem")
    return Keys(root / "trusted.pem", root / "trusted.pub.pem", root / "wrong.pem", root / "wrong.pub.pem")


def settings_registry(tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch, *,
                      timeline: bool = False) -> LocalStore:
    """The local registry `tmp_path/registry`, named by the settings and trusting `keys.public`; `timeline`: the
    settings' timeline is `tmp_path/timeline.jsonl` too (what `responder models …` writes)."""
    monkeypatch.setenv("RESPONDER_MODEL_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("RESPONDER_MODEL_TRUSTED_KEYS", json.dumps([str(keys.public)]))
    if timeline:
        monkeypatch.setenv("RESPONDER_TIMELINE_PATH", str(tmp_path / "timeline.jsonl"))
    return LocalStore(tmp_path / "registry")


def make_model(root: Path, name: str, size: int = 4096) -> Path:
    """A small model directory: random weights and a config file."""
    model = root / name / "model"
    (model / "tokenizer").mkdir(parents=True)
    (model / "weights.bin").write_bytes(os.urandom(size))
    (model / "config.json").write_text('{"layers": 2}')
    (model / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return model


async def publish(store: ModelStore, work: Path, model: str, version: str, key: Path | None) -> None:
    """Build a model directory, sign it with `key` (None = unsigned) and publish it as `version`."""
    src = make_model(work, f"{model}-{version}")
    sig: Path | None = None
    if key is not None:
        sig = src.with_name("model.sig")
        sign(src, key, sig, model=model, version=version)
    await store.publish(model, version, src, sig)


def context(aws: AwsCaller, registry: str, keys: Keys) -> ActuationContext:
    """An actuation context whose model config trusts only `keys.public`."""
    config = ModelConfig(registry=registry, trusted_keys=(keys.public,), poll_interval=0.0)
    return ActuationContext(aws=aws, models=config)


class NoAws:
    """An AwsCaller for the local registry: any AWS call is a test failure."""

    async def call(self, service: str, operation: str, **kwargs: object) -> dict[str, object]:
        """Fail loudly."""
        raise AssertionError(f"unexpected AWS call {service}.{operation}")


async def copy_version(aws: AwsSession, source: str, target: str) -> None:
    """What a registry writer without the signing key can do: copy every object of one version under another name."""
    listed = await aws.call("s3", "list_objects_v2", Bucket=BUCKET, Prefix=f"registry/{source}/")
    for obj in listed.get("Contents", []):
        key = str(obj["Key"])
        body = (await aws.call("s3", "get_object", Bucket=BUCKET, Key=key))["Body"].read()
        await aws.call("s3", "put_object", Bucket=BUCKET, Key=f"registry/{target}/" + key[len(f"registry/{source}/"):],
                       Body=body)
    await aws.call("s3", "put_object", Bucket=BUCKET, Key=f"registry/{target}/version.json", Body=LATER)


def legacy_sign(model_dir: Path, key: Path, signature: Path) -> None:
    """Sign the way responder did before release statements: the files only."""
    ms_signing.Config().use_elliptic_key_signer(private_key=key).sign(model_dir, signature)


def forged_bundle(bundle: bytes, name: str, data: bytes) -> bytes:
    """The obvious forgery by a registry writer who cannot sign: the DSSE payload rewritten so that file `name`
    has the digest of `data` (and the subject the matching root digest), the old signature kept."""
    envelope = json.loads(bundle)
    statement = json.loads(base64.b64decode(envelope["dsseEnvelope"]["payload"]))
    resources = statement["predicate"]["resources"]
    for resource in resources:
        if resource["name"] == name:
            resource["digest"] = hashlib.sha256(data).hexdigest()
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    statement["subject"][0]["digest"]["sha256"] = root.hexdigest()
    envelope["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(envelope).encode()


def forge_version(root: Path, model: str, version: str) -> None:
    """In the local registry `root`: replace `version`'s weights and forge its bundle to list them (`forged_bundle`)."""
    place = root / model / "versions" / version
    weights = b"attacker weights"
    (place / "model" / "weights.bin").write_bytes(weights)
    signature = place / "model.sig"
    signature.write_bytes(forged_bundle(signature.read_bytes(), "weights.bin", weights))


class _Body:
    """A get_object Body: read() and iter_chunks()."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        """The whole object."""
        return self.data

    def iter_chunks(self, chunk_size: int) -> list[bytes]:
        """The object in chunks."""
        return [self.data[i:i + chunk_size] for i in range(0, len(self.data), chunk_size)] or [b""]


class MemoryS3:
    """An AwsCaller holding one bucket in memory: the S3 calls the model registry makes (no SSM)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def call(self, service: str, operation: str, **kwargs: object) -> dict[str, object]:
        """put_object, get_object and list_objects_v2 (one page), on any bucket name."""
        key = str(kwargs.get("Key", ""))
        if (service, operation) == ("s3", "put_object"):
            body = kwargs["Body"]
            self.objects[key] = body if isinstance(body, bytes) else bytes(str(body), "utf-8")
            return {}
        if (service, operation) == ("s3", "get_object"):
            return {"Body": _Body(self.objects[key])}
        if (service, operation) == ("s3", "list_objects_v2"):
            when = datetime(2026, 1, 1, tzinfo=UTC)
            return {"Contents": [{"Key": k, "Size": len(v), "LastModified": when}
                                 for k, v in sorted(self.objects.items()) if k.startswith(str(kwargs["Prefix"]))]}
        raise AssertionError(f"unexpected AWS call {service}.{operation}")
