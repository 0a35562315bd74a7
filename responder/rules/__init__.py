"""Rules: pure, synchronous matching of events to runbooks."""

from responder.rules.conditions import compile_node, first_failure, holds, lookup
from responder.rules.explain import Verdict, explain
from responder.rules.index import TriggerIndex
from responder.rules.matcher import Match, Matcher
from responder.rules.operators import OPERATORS

__all__ = ["OPERATORS", "Match", "Matcher", "TriggerIndex", "Verdict", "compile_node", "explain", "first_failure",
           "holds", "lookup"]
