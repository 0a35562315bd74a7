"""The engine: match → incident → plan → guards → execute, recording intent before and result after."""

from responder.engine.executor import Engine
from responder.engine.templating import TemplateError, render

__all__ = ["Engine", "TemplateError", "render"]
