"""Settings problems as one line each: which variable, what is wrong with its value, and an example.

Also the environment source that accepts `a,b` where a list is expected (`RESPONDER_TOPICS=security.alerts`).
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource

from responder.errors import ConfigError

PREFIX = "RESPONDER_"


class SettingsInvalid(ConfigError):
    """One or more settings have values that cannot be used; `problems` holds one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _origin(annotation: Any) -> Any:
    """The container type of an annotation, looking through `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType) and len(args) == 1:
        return _origin(args[0])
    return typing.get_origin(annotation) or annotation


def _inner(annotation: Any) -> Any:
    """`X` of `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if _origin(annotation) is not typing.get_origin(annotation) and len(args) == 1 else annotation


def example(name: str, field: FieldInfo) -> str:
    """An example value for the setting, as one would write it in the environment."""
    if field.examples:
        return str(field.examples[0])
    annotation, default = _inner(field.annotation), field.get_default(call_default_factory=True)
    origin = _origin(annotation)
    if origin is Literal:
        return "|".join(map(str, typing.get_args(annotation)))
    if origin is list:
        item = (typing.get_args(annotation) or (str,))[0]
        if default and all(isinstance(d, str) for d in default):
            return ",".join(default)
        return {Path: "/etc/responder/a.pem,/etc/responder/b.pem"}.get(item, "'[{\"key\": \"value\"}]'"
                                                                        if _origin(item) is dict else "one,two")
    if origin is dict:
        return "'{\"key-1\": \"secret\"}'" if "key" in name or "secret" in name else "'{\"name\": \"value\"}'"
    if annotation is bool:
        return "true"
    if annotation in (int, float):
        return str(default) if isinstance(default, int | float) and not isinstance(default, bool) else "9102"
    if annotation is SecretStr:
        return "…secret…"
    if isinstance(default, str | Path) and str(default):
        return str(default)
    return "value"


def where(name: str) -> str:
    """How the user set `name`: the environment variable, or `FILE: key` in the RESPONDER_CONFIG file."""
    env = PREFIX + name.upper()
    if env in os.environ or env.lower() in os.environ:
        return env
    config = os.environ.get(PREFIX + "CONFIG")
    return f"{config}: {name}" if config else env


def _shown(field: FieldInfo | None, value: Any) -> str:
    if field is not None and "SecretStr" in str(field.annotation):
        return "<hidden>"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def problem(name: str, field: FieldInfo | None, value: Any, reason: str) -> str:
    """One line: `RESPONDER_X='value': reason (example: RESPONDER_X=…)`."""
    label = where(name)
    hint = f" (example: {PREFIX}{name.upper()}={example(name, field)})" if field is not None else ""
    return f"{label}={_shown(field, value)}: {reason}{hint}"


def describe(exc: ValidationError, fields: dict[str, FieldInfo]) -> list[str]:
    """One line per invalid setting in `exc`."""
    lines = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        field = fields.get(name)
        if err["type"] == "extra_forbidden":
            lines.append(f"{where(name)}: not a setting (see docs/configuration.md or `responder --help`)")
            continue
        detail = ".".join(map(str, err["loc"][1:]))
        reason = err["msg"][0].lower() + err["msg"][1:]
        lines.append(problem(name, field, err.get("input"), f"{detail}: {reason}" if detail else reason))
    return lines


class EnvSource(EnvSettingsSource):
    """RESPONDER_* variables; a list may be `a,b` as well as JSON; a bad JSON object is one clear line."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """JSON first; for list settings, comma-separated values; otherwise a SettingsInvalid naming the variable."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            if _origin(field.annotation) is list and isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            kind = "a JSON object" if _origin(field.annotation) is dict else "valid JSON"
            raise SettingsInvalid([problem(field_name, field, value, f"not {kind}")]) from None
