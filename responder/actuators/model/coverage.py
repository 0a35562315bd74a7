"""What a bundle covers: how model-signing must hash the directory to check it, and the files it lists.

model-signing's defaults leave `.git/`, `.github/`, `.gitattributes` and `.gitignore` out when it
signs and when it verifies, and it honours any `ignore_paths` the signer recorded: such files can
be added to a signed directory and it still verifies. responder signs with nothing ignored, hashes
with nothing ignored when it verifies (`hashing_config`), and once model-signing has accepted a
bundle refuses every file in the directory that the bundle does not list (`uncovered`), which also
catches the files a bundle signed with model-signing's defaults (or with ignored paths) left out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from responder.actuators.model.release import bundle_statement


class Serialization(BaseModel):
    """How the signer hashed the directory (the bundle's `predicate.serialization`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    method: Literal["files", "shards"]
    hash_type: Literal["sha256", "blake2", "blake3"]
    shard_size: int = 1_000_000_000


def signed_serialization(bundle: bytes) -> Serialization | None:
    """The hashing method the bundle's statement names, unverified; None when it names none model-signing knows."""
    statement = bundle_statement(bundle)
    predicate = statement.get("predicate") if statement else None
    try:
        return Serialization.model_validate(predicate.get("serialization") if isinstance(predicate, dict) else None)
    except ValidationError:
        return None


def hashing_config(hashing: Any, serialization: Serialization) -> Any:
    """A model-signing `hashing.Config` hashing as `serialization` says, ignoring no path (git paths included)."""
    config = hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
    if serialization.method == "shards":
        return config.use_shard_serialization(hashing_algorithm=serialization.hash_type,
                                              shard_size=serialization.shard_size)
    return config.use_file_serialization(hashing_algorithm=serialization.hash_type)


def listed_files(bundle: bytes) -> frozenset[str]:
    """The relative paths of the files a bundle lists (a sharded bundle lists `path:start:end`)."""
    statement = bundle_statement(bundle)
    try:
        predicate = statement["predicate"] if statement else {}
        shards = predicate["serialization"]["method"] == "shards"
        return frozenset(str(r["name"]).split(":")[0] if shards else str(r["name"]) for r in predicate["resources"])
    except (KeyError, TypeError):
        return frozenset()


def _raise(error: OSError) -> None:
    raise error


def uncovered(model_dir: Path, bundle: bytes) -> list[str]:
    """Every file under `model_dir` that `bundle` does not list, sorted, as relative paths (symbolic links count as
    files; model-signing has refused any by then). A directory that cannot be listed raises its OSError: it may hold
    files nobody signed (model-signing's own listing skips it silently)."""
    listed = listed_files(bundle)
    found: list[str] = []
    for folder, dirs, files in os.walk(model_dir, onerror=_raise, followlinks=False):
        here = Path(folder)
        names = [*files, *(d for d in dirs if (here / d).is_symlink())]
        found.extend(rel for rel in ((here / n).relative_to(model_dir).as_posix() for n in names) if rel not in listed)
    return sorted(found)
