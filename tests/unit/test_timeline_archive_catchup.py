"""The archiver resumes only an archive that holds this timeline's own segments."""

from __future__ import annotations

import pytest

from responder.errors import TimelineError
from responder.timeline.archive import Archiver, read_archive
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import compare_with_copy, verify_lines
from tests.timeline_builders import PUBLIC, archived, signed_recorder, write_signed


async def test_an_archive_of_another_timeline_is_refused_at_catch_up(tmp_path):
    """A second writer (or a fresh file) on a prefix holding another timeline's segments stops, not skips entries."""
    mine = write_signed(tmp_path / "a.jsonl", n=12, every=5)
    shared = await archived(mine)
    theirs = write_signed(tmp_path / "b.jsonl", n=30, every=5)  # another replica's file, same prefix
    with pytest.raises(TimelineError, match="another timeline"):
        Archiver(shared).catch_up(theirs)


async def test_catch_up_resumes_its_own_archive(tmp_path):
    """A restart on its own archive queues only the segments sealed since, and the archive stays whole."""
    path = tmp_path / "a.jsonl"
    first = write_signed(path, n=7, every=5)
    archive = await archived(first)
    later = write_signed(path, n=6, every=5)  # the same file, continued
    archiver = Archiver(archive)
    assert archiver.catch_up(later) == len(first)
    archiver.close()
    await archiver.run()
    assert read_archive(archive) == later


async def test_a_file_cut_back_behind_its_archive_is_refused_at_catch_up(tmp_path):
    """A file restored from an older copy (shorter than its archive) is refused, naming that cause too."""
    lines = write_signed(tmp_path / "a.jsonl", n=12, every=5)
    archive = await archived(lines)
    with pytest.raises(TimelineError, match="cut back"):
        Archiver(archive).catch_up(lines[:8])


async def test_a_restart_owing_a_checkpoint_archives_everything(tmp_path):
    """A restart owing a checkpoint after a torn one seals the next segment, so the archive equals the file."""
    path = tmp_path / "a.jsonl"
    rec = signed_recorder(path, every=5)
    for i in range(15):
        rec.append("x", {"i": i})
    rec.flush_sync()
    rec.store.close()
    raw = path.read_bytes()
    path.write_bytes(raw[:raw.rstrip(b"\n").rfind(b"\n") + 30])  # the third checkpoint torn by the crash
    archive = await archived(raw.splitlines()[:6])  # only the first segment was uploaded
    again = signed_recorder(path, every=5)
    archiver = Archiver(archive)
    again.sinks.append(archiver)
    assert archiver.catch_up(path.read_bytes().splitlines()) == 6
    again.append("x", {"i": 15})
    again.close()
    archiver.close()
    await archiver.run()
    lines = path.read_bytes().splitlines()
    copy = read_archive(archive)
    verify_lines(copy, Checker.from_text(PUBLIC), cadence=5)
    assert compare_with_copy(lines, copy) == len(lines)


async def test_segments_under_a_nested_prefix_are_not_this_archives(tmp_path):
    """A replica on `timeline/` does not take segments of one on `timeline/<host>/` (fleet.md's layout) as its own."""
    lines = write_signed(tmp_path / "a.jsonl", n=12, every=5)
    archive = await archived(lines)
    theirs = await archived(write_signed(tmp_path / "b.jsonl", n=30, every=5))
    archive.objects.update({f"host-b/{name}": data for name, data in theirs.objects.items()})
    assert read_archive(archive) == lines
    assert Archiver(archive).catch_up(lines) == len(lines)
