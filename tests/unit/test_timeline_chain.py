"""The hash chain detects every kind of tampering."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from responder.cli import app
from responder.errors import ChainBroken
from responder.timeline import FileStore, MemoryStore, Recorder
from responder.timeline.chain import canonical_json, parse_lines, verify_entries


def _write(path: Path, n: int = 6) -> list[bytes]:
    rec = Recorder(FileStore(path), writer="test")
    for i in range(n):
        rec.append("step.intent", {"i": i, "text": "ü"}, incident="inc")
    rec.close()
    return path.read_bytes().splitlines(keepends=True)


def _verify(lines: list[bytes]) -> int:
    return verify_entries(parse_lines([ln.rstrip(b"\n") for ln in lines]))[0]


def test_intact_chain_verifies(tmp_path):
    """An untouched file verifies and reports every entry."""
    assert _verify(_write(tmp_path / "t.jsonl")) == 6


def test_edit_is_detected(tmp_path):
    """Changing a body value breaks the chain at that entry."""
    lines = _write(tmp_path / "t.jsonl")
    doc = orjson.loads(lines[3])
    doc["body"]["i"] = 99
    lines[3] = orjson.dumps(doc) + b"\n"
    with pytest.raises(ChainBroken) as info:
        _verify(lines)
    assert info.value.seq == 3


@pytest.mark.parametrize(
    ("mutate", "first_bad"),
    [
        (lambda ls: ls[:2] + ls[3:], 3),  # removed
        (lambda ls: [*ls[:2], ls[4], *ls[2:]], 4),  # inserted (a copy)
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2),  # reordered
    ],
    ids=["remove", "insert", "reorder"],
)
def test_structural_tampering_is_detected(tmp_path, mutate, first_bad):
    """Removing, inserting or reordering entries names the first bad one."""
    lines = _write(tmp_path / "t.jsonl")
    with pytest.raises(ChainBroken) as info:
        _verify(mutate(lines))
    assert info.value.seq == first_bad


def test_recorder_resumes_chain_after_reopen(tmp_path):
    """A recorder reopened on an existing file continues the same chain."""
    path = tmp_path / "t.jsonl"
    _write(path, 3)
    rec = Recorder(FileStore(path), writer="again")
    rec.append("step.result", {"ok": True})
    rec.close()
    assert _verify(path.read_bytes().splitlines(keepends=True)) == 4


def test_torn_final_line_is_dropped_on_open(tmp_path):
    """A crash mid-write leaves a partial last line; reopening drops it and the chain still verifies."""
    path = tmp_path / "t.jsonl"
    _write(path, 3)
    with path.open("ab") as fh:
        fh.write(b'{"seq":3,"wri')
    rec = Recorder(FileStore(path))
    assert rec.next_seq == 3
    rec.close()
    assert _verify(path.read_bytes().splitlines(keepends=True)) == 3


async def test_group_commit_shares_syncs():
    """Concurrent flushes of many appends need far fewer syncs than appends."""
    import asyncio

    store = MemoryStore()
    rec = Recorder(store, linger=0.001)

    async def one(i: int) -> None:
        rec.append("x", {"i": i})
        await rec.flush()

    await asyncio.gather(*(one(i) for i in range(200)))
    assert store.synced == len(store.read())
    assert store.syncs < 20


def test_cli_verify_exit_codes(tmp_path):
    """`timeline verify` without a key exits 4 (chain_only) on an intact file, 1 naming the entry on a tampered one."""
    path = tmp_path / "t.jsonl"
    lines = _write(path)
    runner = CliRunner()
    ok = runner.invoke(app, ["timeline", "verify", str(path)])
    assert ok.exit_code == 4  # links hold; nothing proves who wrote them (exit 0 before 2026-12-07)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    bad = runner.invoke(app, ["timeline", "verify", str(path), "--json"])
    assert bad.exit_code == 1
    assert orjson.loads(bad.stdout)["first_bad_seq"] == 2


async def test_a_failed_write_stalls_then_rewrites_the_same_entries_without_a_gap():
    """A failed write (ENOSPC, torn bytes left) keeps its entries; once the disk takes them the chain is whole."""

    class FullThenFree(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.fail = 2

        def write(self, data: bytes) -> None:
            if self.fail:
                self.fail -= 1
                super().write(data[: len(data) // 2])  # a torn tail, as a full disk leaves it
                raise OSError(28, "No space left on device")
            super().write(data)

    rec = Recorder(FullThenFree())
    rec.append("x", {"i": 1})
    await rec.flush()
    assert rec.stalls == 2
    assert rec.stalled is None
    rec.append("x", {"i": 2})
    await rec.flush()
    rec.close()
    count, _ = verify_entries(parse_lines(rec.store.read().splitlines()))
    assert count == 2
    assert [e.body["i"] for e in rec.entries()] == [1, 2]


@pytest.mark.parametrize(("incident", "body"), [(None, {"b": 1, "a": [1, {"z": None, "é": "ü\n\"x"}]}),
                                                 ("inc-1", {}), ("i\u2028", {"k": "\u0000"})])
def test_sealed_line_is_the_canonical_json_of_the_entry(tmp_path, incident, body):
    """The recorder's hand-assembled line is byte-for-byte `canonical_json(entry)` (what verifiers recompute)."""
    rec = Recorder(FileStore(tmp_path / "t.jsonl"), writer='w"1')
    entry = rec.append("event.received", body, incident)
    rec.flush_sync()
    assert (tmp_path / "t.jsonl").read_bytes() == canonical_json(entry.model_dump(mode="json")) + b"\n"
    assert rec.verify().entries == 1


def test_entry_hash_is_sha256_over_the_length_prefixed_fields():
    """The hash is SHA-256 of every field prefixed by its 4-byte length (seq as 8 bytes), as docs/timeline.md says."""
    import hashlib

    from responder.timeline.chain import entry_hash, entry_hasher

    def reference(prev, seq, writer, at, kind, incident, body):
        parts = (prev.encode(), seq.to_bytes(8, "big"), writer.encode(), at.encode(), kind.encode(),
                 (incident or "").encode(), body)
        return hashlib.sha256(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).hexdigest()

    for args in [("a" * 64, 7, "host:1", "2026-11-25T10:00:00.000000+00:00", "step.intent", None, b'{"a":1}'),
                 ("", 0, "", "", "", "", b""), ("é", 2**40, "wé", "x", "k", "inc", b"\x00")]:
        assert entry_hash(*args) == reference(*args)
        assert entry_hasher(args[2])(args[0], args[1], *args[3:]) == reference(*args)


@pytest.mark.parametrize("now", [0.0, 1.5e-6, 5.5e-7, 1764600000.123456, 1764600000.9999996, 1940807083.3747654])
def test_entry_time_is_the_isoformat_of_the_clock(now):
    """`at` is the clock's `datetime.isoformat` with microseconds, also across second boundaries and roundings."""
    from datetime import UTC, datetime

    clock = [now]
    rec = Recorder(MemoryStore(), writer="w", clock=lambda: clock[0])
    for t in (now, now + 0.4999996, now + 1.0000004, now):
        clock[0] = t
        assert rec.append("x", {}).at == datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
