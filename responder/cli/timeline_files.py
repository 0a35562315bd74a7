"""The timeline files the `responder timeline` commands read: one file per writer (a directory standing for its
*.jsonl files), merged in time order, an incident looked up across them, and one file verified."""

from __future__ import annotations

import heapq
from pathlib import Path

import orjson

from responder.cli.options import fail, incident_ids, openable, resolve_incident, unreadable
from responder.cli.output import EXIT_CONFIG
from responder.errors import ChainBroken, ConfigError, TimelineError
from responder.models.timeline import TimelineEntry
from responder.settings import Settings
from responder.timeline.chain import parse_lines
from responder.timeline.checkpoint import Checker
from responder.timeline.verification import Verification
from responder.timeline.verify import compare_with_copy, split_lines, verify_anchor_entry, verify_lines


def writers(paths: list[Path]) -> list[Path]:
    """The timeline files named, a directory standing for its *.jsonl files; a path that does not exist is a
    ConfigError naming it (exit 3, as `read_timeline`'s)."""
    out: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ConfigError(f"cannot read timeline {path}: no such file or directory")
        out.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return out


def timeline_file(path: Path) -> Path:
    """`path` when it is a file this process can open, else a ConfigError naming it and why (exit 3, as
    `read_timeline`'s): for the commands that read a file's lines themselves (`anchor`, `export`) or write to it
    (`sign`, which must not create one)."""
    return openable(path, "timeline")


def read_timeline(path: Path) -> list[TimelineEntry]:
    """Every entry of one writer's file; one that cannot be read (missing, a directory, no permission) or holds a line
    that is no timeline entry is a ConfigError naming the file and why: one line, exit 3 (docs/commands.md)."""
    try:
        return list(parse_lines(path.read_bytes().splitlines()))
    except (OSError, TimelineError) as exc:
        raise unreadable(path, exc, "timeline") from exc


def merged(paths: list[Path]) -> list[TimelineEntry]:
    """Every writer's entries interleaved in time order (ties: writer, then seq); each file keeps its own (chain)
    order even where its clock stepped back, so no result shows before its intent."""
    return interleave([read_timeline(path) for path in writers(paths)])


def interleave(chains: list[list[TimelineEntry]]) -> list[TimelineEntry]:
    """Files' entries merged by (at, writer, seq), each file's taken in its own order (heapq.merge only ever
    compares the files' next entries, so an `at` that steps back within a file never reorders it). An entry two files
    hold (the same hash and the same content: one chain's, its file given twice or a copy beside it) is shown once,
    not as done twice; copies that differ under one stated hash (one edited without rehashing) are both shown."""
    seen: dict[str, list[TimelineEntry]] = {}
    out: list[TimelineEntry] = []
    for entry in heapq.merge(*chains, key=lambda e: (e.at, e.writer, e.seq)):
        same = seen.setdefault(entry.hash, [])
        if entry not in same:
            same.append(entry)
            out.append(entry)
    return out


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
    if incident in ids:
        return incident
    matches = sorted(i for i in ids if i.startswith(incident))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise fail(f"incident {incident!r} is ambiguous across {len(files)} timeline files; candidates: "
                   f"{', '.join(matches)}", EXIT_CONFIG)
    raise fail(f"no incident {incident!r} in {len(files)} timeline files", EXIT_CONFIG)


def anchors_by_file(files: list[Path], anchors: list[Path], *, several: bool = False,
                    ) -> tuple[dict[Path, list[Path]], dict[Path, str]]:
    """Which anchors each file is checked against, and the anchors no file holds a writer of (why, by anchor).

    One file takes every anchor. Across several writers' files (`several`: more were named, some missing) an anchor
    belongs to the files holding entries of the writer that signed it (`host:pid`: a replica's restarts add writers
    to its own file only); an anchor none holds is a writer's file deleted, replaced or cut before that writer's
    first entry.
    """
    if len(files) <= 1 and not several:
        return {f: list(anchors) for f in files}, {}
    held: dict[Path, list[Path]] = {f: [] for f in files}
    orphans: dict[Path, str] = {}
    needles = {a: _writer_needle(a) for a in anchors}
    for path in files:
        raw = path.read_bytes()
        for a, needle in needles.items():
            if needle is None or needle[1] + b"\n" in raw or raw.endswith(needle[1]):  # a line's end, not a body's
                held[path].append(a)  # an unreadable anchor is refused by the check of every file
    for a, needle in needles.items():
        if needle is not None and not any(a in mine for mine in held.values()):
            orphans[a] = (f"anchor {a}: no timeline file holds entries of writer {needle[0]!r}, which signed it "
                          "(its file deleted, replaced, or cut before that writer's first entry)")
    return held, orphans


def _writer_needle(anchor: Path) -> tuple[str, bytes] | None:
    """The anchor's writer and how each of its canonical lines ends (`writer` is the last key; a body ending in a
    `writer` key is followed by `,"hash"`); None when the anchor does not parse."""
    try:
        writer = orjson.loads(anchor.read_bytes()).get("writer")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return (writer, b',"writer":' + orjson.dumps(writer) + b"}") if isinstance(writer, str) else None


def verify_file(path: Path, public_key: str | None, archive: str | None, anchors: list[Path], *,
                require_cadence: bool = False) -> Verification:
    """Chain, signatures, anchors, then the archive; ChainBroken names the first bad entry. `require_cadence`: the
    file is known to hold version-2 checkpoints, so a last checkpoint of version 1 is a cut-back file (exit 1); only
    the last: a start's checkpoint after the cut hides it (the run it signs is judged by `verify_lines`)."""
    result = verify_checked(path, Checker.from_setting(public_key), archive, anchors)
    if require_cadence and result.signatures_checked and result.last_checkpoint is not None \
            and result.interval_ms is None:
        raise ChainBroken(result.last_checkpoint, "the last checkpoint is version 1 (it signs no cadence), but "
                                                  "--require-cadence says this file holds version-2 ones: the file "
                                                  "was cut back to an older checkpoint, the later ones deleted")
    return result


def verify_checked(path: Path, checker: Checker | None, archive: str | None, anchors: list[Path]) -> Verification:
    """`verify_file` with the trusted keys given as a Checker (None: signatures not checked)."""
    from responder.actuators.aws.archive import S3Archive
    from responder.timeline.archive import read_archive

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
