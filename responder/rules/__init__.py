"""Rules: pure, synchronous matching of events to runbooks."""

from responder.rules.conditions import holds, lookup
from responder.rules.matcher import Match, Matcher
from responder.rules.operators import OPERATORS

__all__ = ["OPERATORS", "Match", "Matcher", "holds", "lookup"]
