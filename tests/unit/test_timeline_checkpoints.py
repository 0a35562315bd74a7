"""Signed checkpoints, anchors and the archive detect every kind of tampering, naming the first bad entry."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from responder.errors import ChainBroken, TimelineError
from responder.timeline.archive import MemoryArchive, read_archive, segment_name
from responder.timeline.chain import canonical_json, entry_hash
from responder.timeline.checkpoint import Checker, Signer, generate_keypair
from responder.timeline.verify import compare_with_copy, verify_anchor_entry, verify_lines
from tests.timeline_builders import PUBLIC, archived, signed_recorder, write_signed

CHECKER = Checker.from_text(PUBLIC)


def _rechain(lines: list[bytes]) -> list[bytes]:
    """What an attacker without the key can do: renumber and rehash every entry after a change."""
    out, prev = [], "0" * 64
    for seq, line in enumerate(lines):
        d = orjson.loads(line)
        d["seq"], d["prev"] = seq, prev
        d["hash"] = entry_hash(prev, seq, d["writer"], d["at"], d["kind"], d["incident"], canonical_json(d["body"]))
        prev = d["hash"]
        out.append(canonical_json(d))
    return out


def _edit(lines: list[bytes], seq: int) -> list[bytes]:
    d = orjson.loads(lines[seq])
    d["body"]["i"] = 999
    return [*lines[:seq], canonical_json(d), *lines[seq + 1:]]


def _first_bad(lines: list[bytes], **kw: object) -> int:
    with pytest.raises(ChainBroken) as info:
        verify_lines(lines, CHECKER, **kw)  # type: ignore[arg-type]
    return info.value.seq


def test_checkpoints_are_written_every_n_entries_and_on_close(tmp_path):
    """With every=5, 12 entries give checkpoints at seq 5 and 11 and a final one on close; all verify."""
    lines = write_signed(tmp_path / "t.jsonl", n=12, every=5)
    kinds = [orjson.loads(ln)["kind"] for ln in lines]
    assert [i for i, k in enumerate(kinds) if k == "checkpoint"] == [5, 11, 14]
    result = verify_lines(lines, CHECKER)
    assert (result.entries, result.checkpoints, result.unsigned_tail, result.signatures_checked) == (15, 3, 0, True)


def test_elapsed_interval_triggers_a_checkpoint(tmp_path):
    """A zero interval checkpoints after every entry; a long one only on close."""
    rec = signed_recorder(tmp_path / "a.jsonl", every=1000, interval=0.0)
    rec.append("x", {})
    rec.append("x", {})
    rec.close()
    assert [e.kind for e in rec.entries()] == ["x", "checkpoint", "x", "checkpoint"]
    slow = signed_recorder(tmp_path / "b.jsonl", every=1000)
    slow.append("x", {})
    slow.append("x", {})
    assert slow.next_seq == 2
    slow.close()
    assert [e.kind for e in slow.entries()][-1] == "checkpoint"


async def test_idle_flush_seals_a_due_tail(tmp_path):
    """A flush with nothing pending still writes the checkpoint once the interval has passed."""
    rec = signed_recorder(tmp_path / "t.jsonl", every=1000)
    rec.append("x", {})
    await rec.flush()
    assert [e.kind for e in rec.entries()] == ["x"]
    rec.checkpoint_interval = 0.0
    await rec.flush()
    assert [e.kind for e in rec.entries()] == ["x", "checkpoint"]
    await rec.flush()
    assert rec.next_seq == 2


def test_checkpoint_count_survives_reopen(tmp_path):
    """A reopened recorder signs the unsigned tail it found before its first entry, then keeps its cadence."""
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path, every=5)
    for i in range(3):
        rec.append("x", {"i": i})
    rec.flush_sync()
    rec.store.close()
    again = signed_recorder(path, every=5)
    again.append("x", {})
    again.append("x", {})
    assert [e.kind for e in again.entries()] == ["x"] * 3
    again.close()
    assert [e.kind for e in again.entries()] == ["x"] * 3 + ["checkpoint"] + ["x"] * 2 + ["checkpoint"]


MUTATIONS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], int]] = {
    "edit": (lambda ls: _edit(ls, 7), 7),
    "delete": (lambda ls: ls[:7] + ls[8:], 8),
    "insert": (lambda ls: [*ls[:7], ls[3], *ls[7:]], 7),
    "reorder": (lambda ls: [*ls[:7], ls[8], ls[7], *ls[9:]], 8),
    "delete-checkpoint": (lambda ls: ls[:5] + ls[6:], 6),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_naive_tampering_names_the_first_bad_entry(tmp_path, name):
    """Edit, delete, insert, reorder and removing a checkpoint each fail at the first entry they touched."""
    mutate, first_bad = MUTATIONS[name]
    assert _first_bad(mutate(write_signed(tmp_path / "t.jsonl"))) == first_bad


# an insert fails at 11, one entry too many after the checkpoint at seq 5, which signs a cadence of 5 (since
# 2026-12-07; at 12, the next checkpoint's signature, before)
@pytest.mark.parametrize(("name", "checkpoint"), [("edit", 11), ("delete", 10), ("insert", 11), ("reorder", 11)])
def test_rechained_tampering_fails_at_the_next_checkpoint(tmp_path, name, checkpoint):
    """An attacker who rehashes the chain after tampering cannot re-sign: the next checkpoint fails."""
    lines = write_signed(tmp_path / "t.jsonl")
    forged = _rechain(MUTATIONS[name][0](lines))
    verify_lines(forged)  # the links alone look fine
    assert _first_bad(forged) == checkpoint


@pytest.mark.parametrize("name", ["edit", "delete", "insert", "reorder"])
async def test_archive_names_the_exact_rechained_entry(tmp_path, name):
    """Against the archived segments, even a rehashed forgery is named at the entry it changed."""
    lines = write_signed(tmp_path / "t.jsonl")
    archive = await archived(lines)
    with pytest.raises(ChainBroken) as info:
        compare_with_copy(_rechain(MUTATIONS[name][0](lines)), read_archive(archive))
    assert info.value.seq == 7


async def test_truncation_after_a_checkpoint_is_caught_by_the_archive(tmp_path):
    """Cutting the file back to an earlier checkpoint verifies alone, but not against the archive."""
    lines = write_signed(tmp_path / "t.jsonl", n=20)
    archive = await archived(lines)
    cut = lines[:12]  # ends with the checkpoint at seq 11
    assert verify_lines(cut, CHECKER).entries == 12
    with pytest.raises(ChainBroken) as info:
        compare_with_copy(cut, read_archive(archive))
    assert info.value.seq == 12
    assert "truncated" in info.value.reason


def test_truncation_after_a_checkpoint_is_caught_by_an_anchor(tmp_path):
    """The latest checkpoint held elsewhere (mirror, auditor) proves the cut tail existed."""
    lines = write_signed(tmp_path / "t.jsonl", n=20)
    seq, digest = verify_anchor_entry(lines[-1], CHECKER)
    assert _first_bad(lines[:12], anchors={seq: digest}) == 12
    assert verify_lines(lines, CHECKER, {seq: digest}).anchors_checked == [seq]


def test_a_forged_anchor_is_refused(tmp_path):
    """An anchor signed by another key, or edited, is rejected before it is trusted."""
    lines = write_signed(tmp_path / "t.jsonl")
    d = orjson.loads(lines[11])
    d["body"]["head"] = "f" * 64
    with pytest.raises(ChainBroken):
        verify_anchor_entry(canonical_json(d), CHECKER)
    other = Checker.from_text(generate_keypair()[1])
    with pytest.raises(ChainBroken, match="untrusted key"):
        verify_anchor_entry(lines[11], other)


def test_checkpoint_signed_by_an_unknown_key_fails(tmp_path):
    """A chain signed with a key the verifier does not trust fails at its first checkpoint."""
    rec = signed_recorder(tmp_path / "t.jsonl")
    rec.signer = Signer.from_text(generate_keypair()[0])
    for i in range(6):
        rec.append("x", {"i": i})
    rec.close()
    assert _first_bad(rec.store.read().splitlines()) == 5


def test_archive_gap_and_overwrite_are_refused():
    """A missing segment names the first missing seq; a segment cannot be written twice."""
    archive = MemoryArchive()
    archive.put(segment_name(0, 1), b"a\nb\n")
    archive.put(segment_name(5, 5), b"c\n")
    with pytest.raises(ChainBroken) as info:
        read_archive(archive)
    assert info.value.seq == 2
    with pytest.raises(TimelineError):
        archive.put(segment_name(0, 1), b"x\n")
