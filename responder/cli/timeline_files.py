"""The timeline files the `responder timeline` commands read: one file per writer (a directory standing for its
*.jsonl files), merged in time order, an incident looked up across them, and one file verified."""

from __future__ import annotations

from pathlib import Path

from responder.cli.options import incident_ids, resolve_incident
from responder.errors import ChainBroken, ConfigError
from responder.models.timeline import TimelineEntry
from responder.settings import Settings
from responder.timeline.chain import parse_lines
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import (
    Verification,
    compare_with_copy,
    split_lines,
    verify_anchor_entry,
    verify_lines,
)


def writers(paths: list[Path]) -> list[Path]:
    """The timeline files named, a directory standing for its *.jsonl files."""
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return out


def merged(paths: list[Path]) -> list[TimelineEntry]:
    """Every writer's entries, in time order (ties: writer, then seq); one file keeps its own order."""
    files = writers(paths)
    entries = [e for path in files for e in parse_lines(path.read_bytes().splitlines())]
    if len(files) > 1:
        entries.sort(key=lambda e: (e.at, e.writer, e.seq))
    return entries


def parsable(path: Path) -> list[TimelineEntry]:
    """The entries of the lines that parse, skipping those that do not (a broken file's readable part)."""
    good: list[TimelineEntry] = []
    for line in path.read_bytes().splitlines():
        try:
            good.extend(parse_lines([line]))
        except ChainBroken:
            continue
    return good


def resolve(files: list[Path], incident: str) -> str:
    """An incident id or unique prefix, looked up in one writer's file or across several."""
    if len(files) == 1:
        return resolve_incident(files[0], incident)
    ids = {i for path in files for i in incident_ids(path)}
    matches = sorted(i for i in ids if i.startswith(incident))
    return matches[0] if incident not in ids and len(matches) == 1 else incident


def verify_file(path: Path, public_key: str | None, archive: str | None, anchors: list[Path]) -> Verification:
    """Chain, signatures, anchors, then the archive; ChainBroken names the first bad entry."""
    from responder.actuators.aws.archive import S3Archive
    from responder.timeline.archive import read_archive

    checker = Checker.from_setting(public_key)
    cadence = Settings().timeline_checkpoint_every
    lines = split_lines(path.read_bytes())
    held = dict(verify_anchor_entry(a.read_bytes().strip(), checker) for a in anchors)
    archived: int | None = None
    if archive:
        store = S3Archive.from_settings(Settings().model_copy(update={"timeline_archive": archive}))
        if store is None:
            raise ConfigError(f"--archive {archive}: not an s3://bucket/prefix/ URL")
        copy = read_archive(store)
        verify_lines(copy, checker, cadence=cadence)  # the archive must itself be a valid, signed chain
        archived = compare_with_copy(lines, copy)
    result = verify_lines(lines, checker, held, cadence, strict=True)
    result.archived_entries = archived
    return result
