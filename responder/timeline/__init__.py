"""The timeline: append-only, hash-chained, signed at checkpoints, durable before any offset is committed."""

from responder.timeline.archive import Archiver, MemoryArchive, SegmentArchive, read_archive
from responder.timeline.chain import canonical_json, entry_hash, verify_entries
from responder.timeline.checkpoint import Checker, Signer, generate_keypair
from responder.timeline.recorder import DurableSink, Recorder
from responder.timeline.store import FileStore, MemoryStore, TimelineStore
from responder.timeline.verification import Verification
from responder.timeline.verify import compare_with_copy, verify_lines

__all__ = [
    "Archiver",
    "Checker",
    "DurableSink",
    "FileStore",
    "MemoryArchive",
    "MemoryStore",
    "Recorder",
    "SegmentArchive",
    "Signer",
    "TimelineStore",
    "Verification",
    "canonical_json",
    "compare_with_copy",
    "entry_hash",
    "generate_keypair",
    "read_archive",
    "verify_entries",
    "verify_lines",
]
