"""The S3 registry: versioned prefixes with the signature next to the artifact; serving pointer in SSM.

Layout::

    s3://BUCKET/PREFIX/<model>/versions/<version>/model/…        the artifact's files
    s3://BUCKET/PREFIX/<model>/versions/<version>/model.sig      its model-signing bundle
    s3://BUCKET/PREFIX/<model>/versions/<version>/model/responder-release.json   the signed release statement
    s3://BUCKET/PREFIX/<model>/versions/<version>/version.json   {"created": …}: the order of legacy-signed versions
    s3://BUCKET/PREFIX/<model>/quarantine/<version>.json         a version never to be served
    SSM parameter SSM_PREFIX/<model>/serving                     the served version (its history is SSM's)
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from responder.actuators.aws.session import classify
from responder.actuators.base import AwsCaller
from responder.actuators.model.local import created_at
from responder.actuators.model.release import MAX_RELEASE_BYTES, RELEASE_NAME, listed_release
from responder.actuators.model.signing import SIGNATURE_NAME, bundle_digest
from responder.actuators.model.versions import (
    ARTIFACT_DIR,
    MAX_META_BYTES,
    MODEL_NAME,
    VERSION_META,
    VERSION_NAME,
    ModelVersion,
    checked,
    safe_relative,
)
from responder.errors import PermanentActuationError
from responder.threadpools import aws_pool, run_in


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` → (bucket, prefix without slashes at the ends)."""
    rest = url.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise PermanentActuationError(f"no bucket in registry URL {url!r}", code="InvalidRegistry")
    return bucket, prefix.strip("/")


T = TypeVar("T")


async def streamed(read: Callable[[], T]) -> T:
    """Read a response body in a thread of S3's pool (responder/threadpools.py: a slow S3 stream holds none of the
    default executor's threads, which resolve Kafka's broker names); botocore streaming errors are classified like
    any call's."""
    try:
        return await run_in(aws_pool("s3"), read)
    except Exception as exc:  # classify maps botocore errors; anything it does not know is re-raised as is
        mapped = classify(exc)
        if mapped is exc:
            raise
        raise mapped from exc


class S3Store:
    """A registry in an S3 bucket, with the serving pointer in SSM Parameter Store."""

    kind = "s3"

    def __init__(self, aws: AwsCaller, url: str, ssm_prefix: str = "/responder/models") -> None:
        self.aws = aws
        self.bucket, self.prefix = split_url(url)
        self.ssm_prefix = "/" + ssm_prefix.strip("/")

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def url(self, key: str) -> str:
        """The s3:// URL of a key."""
        return f"s3://{self.bucket}/{key}"

    def parameter(self, model: str) -> str:
        """The SSM parameter holding the serving version."""
        return f"{self.ssm_prefix}/{checked(model, MODEL_NAME, 'model name')}/serving"

    async def _list(self, prefix: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            page = await self.aws.call("s3", "list_objects_v2", **kwargs)
            objects.extend(page.get("Contents", []))
            if not page.get("IsTruncated"):
                return objects
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    async def _get(self, key: str) -> bytes | None:
        try:
            obj = await self.aws.call("s3", "get_object", Bucket=self.bucket, Key=key)
        except PermanentActuationError as exc:
            if exc.code in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = await streamed(obj["Body"].read)
        return body

    async def _download(self, key: str, dest: Path) -> None:
        """Stream one object to a file in a thread (weights can be gigabytes)."""
        body = (await self.aws.call("s3", "get_object", Bucket=self.bucket, Key=key))["Body"]

        def copy() -> None:
            with dest.open("wb") as fh:
                for chunk in body.iter_chunks(chunk_size=1 << 20):
                    fh.write(chunk)

        await streamed(copy)

    async def versions(self, model: str) -> list[ModelVersion]:
        base = self._key(checked(model, MODEL_NAME, "model name"), "versions") + "/"
        grouped: dict[str, list[dict[str, Any]]] = {}
        for obj in await self._list(base):
            version = str(obj["Key"])[len(base):].split("/", 1)[0]
            grouped.setdefault(version, []).append(obj)
        found: list[ModelVersion] = []
        for version, objects in grouped.items():
            try:
                checked(version, VERSION_NAME, "model version")
            except PermanentActuationError:
                continue
            keys = {str(o["Key"]) for o in objects}
            vbase = base + version + "/"
            oldest = min(o["LastModified"] for o in objects)
            meta_key = vbase + VERSION_META
            small_meta = any(o["Key"] == meta_key and int(o.get("Size", 0)) <= MAX_META_BYTES for o in objects)
            meta = await self._get(meta_key) if small_meta else None
            statement_key = vbase + ARTIFACT_DIR + "/" + RELEASE_NAME
            small = any(o["Key"] == statement_key and int(o.get("Size", 0)) <= MAX_RELEASE_BYTES for o in objects)
            statement = await self._get(statement_key) if small else None
            sig_key = vbase + SIGNATURE_NAME
            bundle = (await self._get(sig_key) or b"") if sig_key in keys else None
            digest = bundle_digest(bundle) if bundle is not None else None
            found.append(ModelVersion(
                model=model,
                version=version,
                location=self.url(vbase + ARTIFACT_DIR + "/"),
                signature=self.url(sig_key) if sig_key in keys else None,
                digest=digest,
                created=created_at(meta, oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC),
                                   listed_release(statement, bundle)),
            ))
        return sorted(found, key=lambda v: (v.created, v.version))

    async def serving(self, model: str) -> str | None:
        try:
            got = await self.aws.call("ssm", "get_parameter", Name=self.parameter(model))
        except PermanentActuationError as exc:
            if exc.code == "ParameterNotFound":
                return None
            raise
        return str(got["Parameter"]["Value"]).strip() or None

    async def set_serving(self, model: str, version: ModelVersion) -> None:
        await self.aws.call(
            "ssm", "put_parameter", Name=self.parameter(model), Value=version.version, Type="String", Overwrite=True
        )

    async def quarantined(self, model: str) -> set[str]:
        base = self._key(checked(model, MODEL_NAME, "model name"), "quarantine") + "/"
        names = {str(o["Key"])[len(base):].removesuffix(".json") for o in await self._list(base)}
        return {n for n in names if "/" not in n}

    async def quarantine(self, model: str, version: str, reason: str) -> bool:
        if checked(version, VERSION_NAME, "model version") in await self.quarantined(model):
            return False
        body = {"version": version, "reason": reason, "at": datetime.now(UTC).isoformat()}
        key = self._key(model, "quarantine", f"{version}.json")
        await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=key, Body=json.dumps(body).encode())
        return True

    @asynccontextmanager
    async def local_copy(self, version: ModelVersion) -> AsyncIterator[tuple[Path, Path | None]]:
        base = self._key(version.model, "versions", version.version) + "/"
        artifact = base + ARTIFACT_DIR + "/"
        with tempfile.TemporaryDirectory(prefix="responder-model-") as tmp:
            root = Path(tmp) / ARTIFACT_DIR
            root.mkdir()
            for obj in await self._list(artifact):
                name = str(obj["Key"])[len(artifact):]
                if not safe_relative(name):
                    raise PermanentActuationError(f"unsafe file name {name!r} in {version.location}", code="BadKey")
                dest = root / name
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    await self._download(str(obj["Key"]), dest)
                except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                    raise PermanentActuationError(f"file name {name!r} in {version.location} is both a file and a "
                                                  f"directory ({exc.strerror})", code="BadKey") from exc
            sig: Path | None = None
            if version.signature is not None:
                sig = Path(tmp) / SIGNATURE_NAME
                sig.write_bytes(await self._get(base + SIGNATURE_NAME) or b"")
            yield root, sig

    async def deployable(self, version: ModelVersion) -> str | None:
        return None

    async def publish(self, model: str, version: str, source: Path, signature: Path | None) -> ModelVersion:
        base = self._key(checked(model, MODEL_NAME, "model name"), "versions", checked(version, VERSION_NAME,
                                                                                       "model version"))
        if await self._list(base + "/"):
            raise PermanentActuationError(f"{model} already has a version {version}", code="AlreadyExists")
        files = await asyncio.to_thread(lambda: sorted(p for p in source.rglob("*") if p.is_file()))
        for path in files:
            rel = path.relative_to(source).as_posix()
            await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=f"{base}/{ARTIFACT_DIR}/{rel}",
                                Body=await asyncio.to_thread(path.read_bytes))
        if signature is not None:
            await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=f"{base}/{SIGNATURE_NAME}",
                                Body=await asyncio.to_thread(signature.read_bytes))
        meta = json.dumps({"created": datetime.now(UTC).isoformat()}).encode()
        await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=f"{base}/{VERSION_META}", Body=meta)
        return next(v for v in await self.versions(model) if v.version == version)

    async def resigned(self, version: ModelVersion, statement: bytes, bundle: bytes) -> None:
        base = self._key(checked(version.model, MODEL_NAME, "model name"), "versions",
                         checked(version.version, VERSION_NAME, "model version"))
        await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=f"{base}/{ARTIFACT_DIR}/{RELEASE_NAME}",
                            Body=statement)
        await self.aws.call("s3", "put_object", Bucket=self.bucket, Key=f"{base}/{SIGNATURE_NAME}", Body=bundle)
