"""The archiver resumes only an archive that holds this timeline's own segments."""

from __future__ import annotations

import pytest

from responder.errors import TimelineError
from responder.timeline.archive import Archiver, read_archive
from tests.timeline_builders import archived, write_signed


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
