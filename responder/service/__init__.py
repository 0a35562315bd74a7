"""`responder run`: one consumer-group member, `Service` (core.py), and `serve`, which runs it until a signal.

The modules: core (construction from settings), wiring (the settings checked first: guards, record signatures,
archive), batches (a chunk of records through the pipeline), partitions (assignment, recovery, eviction),
running (start, the alert loop, drain, close), signed (the decision and operator loops), parts (what the mixins
share) and rejoin (a fenced replica, or one whose changelog transaction failed, rejoins its group in-process:
`serve_rejoining`, what `responder run` uses; rejoinreasons says why, and what it says when it ends).
"""

from responder.service.batches import by_key
from responder.service.consumers import rebuilds_exhausted
from responder.service.core import Service, serve
from responder.service.rejoin import health_server, rebuilds, serve_rejoining
from responder.service.rejoinreasons import rejoin_reason
from responder.service.signed import signature
from responder.service.wiring import NO_KAFKA, archiver_from, authenticator_from, guards_from

__all__ = ["NO_KAFKA", "Service", "archiver_from", "authenticator_from", "by_key", "guards_from",
           "health_server", "rebuilds", "rebuilds_exhausted", "rejoin_reason", "serve", "serve_rejoining", "signature"]
