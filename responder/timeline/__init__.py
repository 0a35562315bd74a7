"""The timeline: append-only, hash-chained, durable before any offset is committed."""

from responder.timeline.chain import canonical_json, entry_hash, verify_entries
from responder.timeline.recorder import Recorder
from responder.timeline.store import FileStore, MemoryStore, TimelineStore

__all__ = ["FileStore", "MemoryStore", "Recorder", "TimelineStore", "canonical_json", "entry_hash", "verify_entries"]
