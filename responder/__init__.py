"""responder: event-driven incident response for AI workloads in the cloud."""

from responder.errors import ResponderError

__version__ = "0.1.0"
__all__ = ["ResponderError", "__version__"]
