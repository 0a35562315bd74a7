"""What a registry writer without the key puts in the registry is a rejection with a reason, never a stopped walk."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from responder.actuators.model.local import LocalStore
from responder.actuators.model.s3 import S3Store
from responder.actuators.model.selection import select
from responder.actuators.model.versions import ModelVersion
from responder.cli.app import app
from tests.modelkit import URL, Keys, MemoryS3, legacy_sign, publish, settings_registry

VERSIONS = "registry/fraud/versions"


async def _three(store: LocalStore | S3Store, tmp_path: Path, keys: Keys) -> None:
    for version in ("v1", "v2", "v3"):
        await publish(store, tmp_path / "w", "fraud", version, keys.private)


async def test_s3_keys_naming_a_file_and_a_directory_alike_are_an_unsafe_path(tmp_path, keys):
    """S3 keys `model/x` and `model/x/y` on v2 (no local copy can hold both): v2 is unsafe_path, v1 is chosen."""
    s3 = MemoryS3()
    store = S3Store(s3, URL)
    await _three(store, tmp_path, keys)
    s3.objects[f"{VERSIONS}/v2/model/x"] = b"1"
    s3.objects[f"{VERSIONS}/v2/model/x/y"] = b"2"
    picked = await select(store, "fraud", [keys.public], start="v3", serving="v3")
    assert (picked.chosen.version if picked.chosen else None) == "v1"
    assert [(r.version, r.reason) for r in picked.rejected] == [("v2", "unsafe_path")]
    assert "x" in picked.rejected[0].detail


class FailingCopy(LocalStore):
    """A local registry whose copy of v2 fails with `error` (a full disk, an unreadable file)."""

    def __init__(self, root: Path, error: OSError) -> None:
        super().__init__(root)
        self.error = error

    @asynccontextmanager
    async def local_copy(self, version: ModelVersion) -> AsyncIterator[tuple[Path, Path | None]]:
        """Raise `error` for v2, else the artifact in place."""
        if version.version == "v2":
            raise self.error
        async with super().local_copy(version) as found:
            yield found


async def test_any_os_error_staging_a_candidate_is_a_rejection(tmp_path, keys):
    """An OSError reading or staging v2's artifact makes v2 missing_artifact (named) and the walk reaches v1."""
    store = FailingCopy(tmp_path / "registry", OSError(errno.ENOSPC, "No space left on device"))
    await _three(store, tmp_path, keys)
    picked = await select(store, "fraud", [keys.public], start="v3", serving="v3")
    assert (picked.chosen.version if picked.chosen else None) == "v1"
    assert [(r.version, r.reason) for r in picked.rejected] == [("v2", "missing_artifact")]
    assert "No space left on device" in picked.rejected[0].detail


async def test_a_connection_error_staging_a_candidate_stays_an_error(tmp_path, keys):
    """A network error is not a verdict on the candidate: it leaves the walk, for the step's retry policy."""
    store = FailingCopy(tmp_path / "registry", ConnectionResetError(errno.ECONNRESET, "reset"))
    await _three(store, tmp_path, keys)
    with pytest.raises(ConnectionResetError):
        await select(store, "fraud", [keys.public], start="v3", serving="v3")


NESTED = {"local array": ("local", b"[" * 100_000), "local object": ("local", b'{"a":' * 50_000),
          "s3 array": ("s3", b"[" * 60_000)}  # deeper than Python's recursion limit, under 64 KiB for S3


@pytest.mark.parametrize("case", list(NESTED), ids=list(NESTED))
async def test_a_deeply_nested_version_json_does_not_stop_the_listing(tmp_path, keys, case):
    """A planted version.json nesting deeper than Python's recursion limit: versions() still lists, v2 is chosen."""
    kind, meta = NESTED[case]
    s3 = MemoryS3()
    store = S3Store(s3, URL) if kind == "s3" else LocalStore(tmp_path / "registry")
    await _three(store, tmp_path, keys)
    if isinstance(store, LocalStore):
        (store.root / "fraud" / "versions" / "junk").mkdir()
        (store.root / "fraud" / "versions" / "junk" / "version.json").write_bytes(meta)
    else:
        s3.objects[f"{VERSIONS}/junk/version.json"] = meta
    assert "junk" in [v.version for v in await store.versions("fraud")]
    picked = await select(store, "fraud", [keys.public], start="v3", serving="v3")
    assert (picked.chosen.version if picked.chosen else None) == "v2"


async def test_a_version_json_over_64_kib_is_not_read(tmp_path, keys):
    """An unsigned version's version.json over 64 KiB is not read: its order falls back (not the `created` it names)."""
    s3 = MemoryS3()
    store = S3Store(s3, URL)
    await _three(store, tmp_path, keys)
    big = {"created": "2100-01-01T00:00:00+00:00", "pad": "x" * (64 * 1024)}
    s3.objects[f"{VERSIONS}/big/version.json"] = json.dumps(big).encode()
    local = LocalStore(tmp_path / "registry")
    (local.root / "fraud" / "versions" / "big").mkdir(parents=True)
    (local.root / "fraud" / "versions" / "big" / "version.json").write_text(json.dumps(big))
    for found in (await store.versions("fraud"), await local.versions("fraud")):
        assert next(v for v in found if v.version == "big").created.year != 2100


@pytest.fixture(name="clean_logging")
def _clean_logging() -> Iterator[None]:
    """The CLI binds structlog to CliRunner's streams; restore the defaults for later tests."""
    yield
    structlog.reset_defaults()


def test_a_non_utf8_file_name_in_a_rejection_is_escaped_and_recorded(tmp_path, keys, monkeypatch, clean_logging):
    """v2 (signed with git paths ignored) gains `.git/<0xff>`: tampered, with `\\xff` in the detail, on the timeline."""
    store = settings_registry(tmp_path, keys, monkeypatch, timeline=True)
    asyncio.run(_three(store, tmp_path, keys))
    asyncio.run(store.set_serving("fraud", asyncio.run(store.versions("fraud"))[-1]))
    v2 = store.root / "fraud" / "versions" / "v2"
    legacy_sign(v2 / "model", keys.private, v2 / "model.sig")  # model-signing's defaults: .git/ left out
    (v2 / "model" / ".git").mkdir()
    with open(os.fsencode(v2 / "model" / ".git") + b"/\xff", "wb") as fh:
        fh.write(b"unsigned")
    out = CliRunner().invoke(app, ["models", "rollback", "fraud", "--from", "v3", "--json"])
    assert out.exit_code == 0, out.output
    lines = (tmp_path / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    rejected = [r for line in lines if '"rejected"' in line
                for r in json.loads(line)["body"]["outputs"]["rejected"]]
    assert rejected == [{"version": "v2", "reason": "tampered",
                         "detail": "files the signature does not list: .git/\\xff"}], lines
