"""Real model directories, real ECDSA keys and real model-signing bundles for the model-rollback tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from responder.actuators.base import ActuationContext, AwsCaller
from responder.actuators.model import ModelConfig, ModelStore
from responder.actuators.model.signing import generate_key, sign


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
