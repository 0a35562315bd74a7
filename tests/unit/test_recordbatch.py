"""The tolerant record-batch reader: what aiokafka reads it reads the same; what aiokafka cannot parse comes out as
`Unreadable` in its place, with its bytes, and the records around it are kept."""

from __future__ import annotations

import struct

import pytest
from aiokafka import codec
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

from responder.ingest import recordbatch
from responder.ingest.recordbatch import Read, Unreadable, read_fetched
from tests.fakes import GOOD, batch


def test_a_good_batch_reads_as_aiokafka_reads_it():
    """Offsets, timestamps, keys, values and headers of aiokafka's own batch come out as aiokafka parses them."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, (key, value, headers) in enumerate(GOOD):
        builder.append(i, timestamp=5_000 + i, key=key, value=value, headers=[(k.decode(), v) for k, v in headers])
    buf = bytes(builder.build())
    theirs = [(r.offset, r.timestamp, r.key, r.value, tuple(r.headers)) for r in MemoryRecords(buf).next_batch()]
    got, after = read_fetched("t", 3, buf, 0, 100)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in got] == theirs
    assert all(isinstance(r, Read) and (r.topic, r.partition) == ("t", 3) for r in got)
    assert after == 3


def test_the_test_encoder_writes_batches_aiokafka_reads():
    """The encoder the other tests use writes what aiokafka parses (so their batches are real ones)."""
    buf = batch(7, GOOD, compression="gzip")
    assert [(r.offset, r.key, r.value) for r in MemoryRecords(buf).next_batch()] == \
        [(7, b"k0", b"v0"), (8, b"k1", None), (9, None, b"v2")]


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
def test_a_header_key_that_is_not_utf8_is_unreadable_in_its_place(compression):
    """A record with a non-UTF-8 header key is given escaped at its offset, between the readable records."""
    records = [GOOD[0], (b"k1", b'{"x": 1}', [(b"\xff\xfe-key", b"v")]), GOOD[2]]
    buf = batch(10, records, compression=compression)
    with pytest.raises(UnicodeDecodeError):
        list(MemoryRecords(buf).next_batch())
    got, after = read_fetched("t", 0, buf, 10, 100)
    assert [type(r).__name__ for r in got] == ["Read", "Unreadable", "Read"]
    bad = got[1]
    assert isinstance(bad, Unreadable)
    assert (bad.offset, bad.first, bad.key, bad.value, bad.headers) == \
        (11, 11, b"k1", b'{"x": 1}', (("\\xff\\xfe-key", b"v"),))
    assert "header key is not UTF-8" in bad.error
    assert [r.value for r in got] == [b"v0", b'{"x": 1}', b"v2"]
    assert after == 13


def test_a_batch_whose_crc_fails_is_one_unreadable_covering_its_offsets():
    """A batch failing its CRC comes out once, its bytes as value at its last offset, and the next batch is read."""
    bad = bytearray(batch(0, GOOD))
    bad[-1] ^= 0x01
    buf = bytes(bad) + batch(3, [GOOD[0]])
    got, after = read_fetched("t", 0, buf, 0, 100)
    assert isinstance(got[0], Unreadable)
    assert (got[0].first, got[0].offset, got[0].value) == (0, 2, bytes(bad))
    assert "CRC" in got[0].error
    assert [(type(r).__name__, r.offset) for r in got[1:]] == [("Read", 3)]
    assert after == 4


def test_a_batch_with_a_codec_not_installed_is_unreadable(monkeypatch):
    """No decompressor for the batch's codec: the batch is one Unreadable that names the codec."""
    monkeypatch.setitem(recordbatch._DECODERS, 3, ("lz4", codec.lz4_decode, lambda: False))
    got, after = read_fetched("t", 0, batch(0, GOOD, compression="lz4"), 0, 100)
    assert len(got) == 1
    assert isinstance(got[0], Unreadable)
    assert "lz4" in got[0].error
    assert after == 3


def test_a_batch_with_a_codec_kafka_does_not_define_is_unreadable():
    """Codec bits 5-7 name no Kafka codec: the batch is one Unreadable saying so."""
    bad = bytearray(batch(0, GOOD))
    struct.pack_into(">h", bad, 21, 6)  # attributes: codec 6
    bad[17:21] = struct.pack(">I", calc_crc32c(bytes(bad[21:])))
    got, after = read_fetched("t", 0, bytes(bad), 0, 100)
    assert len(got) == 1
    assert isinstance(got[0], Unreadable)
    assert "codec 6" in got[0].error
    assert after == 3


def test_a_malformed_record_makes_the_rest_of_its_batch_unreadable():
    """After a record running past its batch, the rest of the batch is one Unreadable at the batch's last offset."""
    good = batch(0, GOOD)
    body = bytearray(good[61:])
    first_len = body[0] // 2  # the first record's zigzag length, one byte here
    body[1 + first_len] = 0x7E  # the second record's length: 63, more than is left
    tail = good[21:61] + bytes(body)
    buf = good[:17] + struct.pack(">I", calc_crc32c(tail)) + tail
    got, after = read_fetched("t", 0, buf, 0, 100)
    assert [(type(r).__name__, r.offset) for r in got] == [("Read", 0), ("Unreadable", 2)]
    assert isinstance(got[1], Unreadable)
    assert got[1].first == 1
    assert "malformed" in got[1].error
    assert after == 3


def test_it_starts_at_the_position_and_stops_at_whole_batches():
    """Reading skips records before the position, leaves a cut-short batch for the next fetch, and stops at `most`."""
    buf = batch(0, GOOD) + batch(3, GOOD) + batch(6, GOOD)
    got, after = read_fetched("t", 0, buf, 1, 100)
    assert [r.offset for r in got] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert after == 9
    got, after = read_fetched("t", 0, buf[:-5], 1, 100)
    assert [r.offset for r in got] == [1, 2, 3, 4, 5]
    assert after == 6
    got, after = read_fetched("t", 0, buf, 0, 4)
    assert [r.offset for r in got] == [0, 1, 2, 3, 4, 5]
    assert after == 6
    assert read_fetched("t", 0, b"", 5, 100) == ([], 5)


def test_control_batches_are_passed_over():
    """A transaction marker batch gives no record and moves the offset past it."""
    got, after = read_fetched("t", 0, batch(0, [(b"\x00\x00\x00\x00", b"", [])], attributes=0x20) + batch(1, GOOD),
                              0, 100)
    assert [r.offset for r in got] == [1, 2, 3]
    assert after == 4


@pytest.mark.parametrize("delta", [1_000_000, -5, 1])
def test_a_corrupted_batch_ends_where_the_next_sound_batch_begins(delta):
    """A batch failing its CRC covers offsets up to the next sound batch, whatever its header says."""
    bad = bytearray(batch(0, GOOD))
    struct.pack_into(">i", bad, 23, delta)  # lastOffsetDelta, under the CRC: the CRC now fails
    got, after = read_fetched("t", 0, bytes(bad) + batch(3, GOOD), 0, 100, high=6)
    assert isinstance(got[0], Unreadable)
    assert (got[0].first, got[0].offset) == (0, 2)
    assert [r.offset for r in got[1:]] == [3, 4, 5]
    assert after == 6


@pytest.mark.parametrize("tail", [b"", b"\x00" * 7])
def test_a_corrupted_batch_with_no_sound_batch_after_it_is_not_read(tail):
    """A corrupted batch with no sound batch after it in the fetch is not read: the read ends before it."""
    bad = bytearray(batch(10, GOOD))
    struct.pack_into(">i", bad, 23, 1)
    got, after = read_fetched("t", 0, batch(7, GOOD) + bytes(bad) + tail, 7, 100, high=1_000)
    assert [r.offset for r in got] == [7, 8, 9]
    assert after == 10


def test_a_batch_past_the_high_watermark_ends_the_read():
    """A base offset at or past the high watermark (a corrupted one: it is outside the CRC) is not read."""
    buf = batch(0, GOOD) + batch(1 << 40, GOOD)
    got, after = read_fetched("t", 0, buf, 0, 100, high=3)
    assert [r.offset for r in got] == [0, 1, 2]
    assert after == 3


def test_a_batch_out_of_offset_order_ends_the_read():
    """A batch whose base offset goes back ends the read before it: nothing is handed out of order."""
    got, after = read_fetched("t", 0, batch(0, GOOD) + batch(1, GOOD), 0, 100)
    assert [r.offset for r in got] == [0, 1, 2]
    assert after == 3


def test_a_legacy_message_is_read_as_aiokafka_reads_it():
    """A v0/v1 message set entry comes out as its record; one before the position is skipped."""
    from aiokafka.record.legacy_records import LegacyRecordBatchBuilder

    entries = b""
    for offset in (5, 6):
        builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 16)
        builder.append(offset, timestamp=1_000, key=b"k", value=b"v%d" % offset)
        entries += bytes(builder.build())
    got, after = read_fetched("t", 0, entries, 6, 100)
    assert [(type(r).__name__, r.offset, r.value) for r in got] == [("Read", 6, b"v6")]
    assert after == 7


def test_a_varint_running_past_its_record_is_malformed():
    """A record that ends inside a varint is malformed: the reader never reads past the payload."""
    good = batch(0, [GOOD[0]])
    body = good[61:] + b"\x80"  # a second record whose length varint never ends
    tail = good[21:57] + struct.pack(">i", 2) + body
    buf = struct.pack(">qiib", 0, 9 + len(tail), -1, 2) + struct.pack(">I", calc_crc32c(tail)) + tail
    got, _ = read_fetched("t", 0, buf, 0, 100)
    assert [(type(r).__name__, r.offset) for r in got] == [("Read", 0), ("Unreadable", 0)]
    assert "varint runs past" in got[1].error


def test_batches_before_the_position_are_skipped_in_order_after_a_corrupted_one():
    """A corrupted batch and sound ones ending before the position are skipped in order; the batch at it is read."""
    bad = bytearray(batch(100, GOOD))
    struct.pack_into(">i", bad, 23, 10)  # claims 100-110: the broker looks batches up by that, so it comes back
    got, after = read_fetched("t", 0, bytes(bad) + batch(103, GOOD) + batch(106, GOOD), 106, 100, high=109)
    assert [r.offset for r in got] == [106, 107, 108]
    assert after == 109


def test_a_sound_batch_with_a_base_past_the_high_watermark_bounds_nothing():
    """A corrupted batch followed by one based past the high watermark is not read: the read ends before it."""
    bad = bytearray(batch(0, GOOD))
    struct.pack_into(">i", bad, 23, 9)
    got, after = read_fetched("t", 0, bytes(bad) + batch(1 << 40, GOOD), 0, 100, high=6)
    assert got == []
    assert after == 0
