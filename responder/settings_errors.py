"""Settings problems as one line each: which variable, what is wrong with its value, and an example.

Where settings are read from, and what is refused there before any value is validated (a misspelt variable, a
RESPONDER_CONFIG file that cannot be read as settings), is `responder.settings_sources`.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from responder.errors import ConfigError

PREFIX = "RESPONDER_"


class SettingsInvalid(ConfigError):
    """One or more settings have values that cannot be used; `problems` holds one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def container_type(annotation: Any) -> Any:
    """The container type of an annotation, looking through `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType) and len(args) == 1:
        return container_type(args[0])
    return typing.get_origin(annotation) or annotation


def _inner(annotation: Any) -> Any:
    """`X` of `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if container_type(annotation) is not typing.get_origin(annotation) and len(args) == 1 else annotation


def example(name: str, field: FieldInfo) -> str:
    """An example value for the setting, as one would write it in the environment."""
    if field.examples:
        return str(field.examples[0])
    annotation, default = _inner(field.annotation), field.get_default(call_default_factory=True)
    origin = container_type(annotation)
    if origin is Literal:
        return "|".join(map(str, typing.get_args(annotation)))
    if origin is list:
        item = (typing.get_args(annotation) or (str,))[0]
        if default and all(isinstance(d, str) for d in default):
            return ",".join(default)
        return {Path: "/etc/responder/a.pem,/etc/responder/b.pem"}.get(item, "'[{\"key\": \"value\"}]'"
                                                                        if container_type(item) is dict else "one,two")
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
    """How the user set `name` (`a__b` for a nested field): the environment variable (the nested one, or the
    whole model's as JSON), `RESPONDER_A__X, RESPONDER_A__Y: a` for a model set one variable per field, or
    `FILE: key` in the RESPONDER_CONFIG file; `RESPONDER_A__X; FILE: a` for a model merged from both."""
    env = PREFIX + name.upper()
    for var in (env, PREFIX + name.split("__")[0].upper()):
        if var in os.environ or var.lower() in os.environ:
            return var
    config = os.environ.get(PREFIX + "CONFIG")
    fields = sorted({var.upper() for var in os.environ if var.upper().startswith(f"{env}__")})
    if fields:  # a cross-field error of a nested model set one variable per field: `VARS: key`, as for the file
        also = f"; {config}" if config and _in_file(Path(config), name) else ""  # pydantic-settings merged both
        return f"{', '.join(fields)}{also}: {name}"
    return f"{config}: {name.replace('__', '.')}" if config else env


def _in_file(config: Path, name: str) -> bool:
    """Whether the RESPONDER_CONFIG file sets the top-level key of `name` (`a` of `a__b`)."""
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError):
        return False
    return isinstance(loaded, dict) and name.split("__")[0] in loaded


def _setting(loc: tuple[int | str, ...], fields: dict[str, FieldInfo]) -> tuple[str, FieldInfo | None, list[str]]:
    """The setting an error location names, nested models' fields as `a__b` (RESPONDER_A__B), its field, and
    the rest of the location (inside a list or dict)."""
    name = str(loc[0]) if loc else "?"
    field, rest = fields.get(name), [str(part) for part in loc[1:]]
    while field is not None and rest:
        model = _model(field.annotation)
        if model is None:
            break
        name, field, rest = f"{name}__{rest[0]}", model.model_fields.get(rest[0]), rest[1:]
    return name, field, rest


def _model(annotation: Any) -> type[BaseModel] | None:
    inner = _inner(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _has_secret(annotation: Any) -> bool:
    """Whether a value of this type may hold a secret: a SecretStr anywhere in it, nested models included."""
    if "SecretStr" in str(annotation):
        return True
    model = _model(annotation)
    if model is not None:
        return any(_has_secret(f.annotation) for f in model.model_fields.values())
    return any(_has_secret(arg) for arg in typing.get_args(annotation))


def _shown(field: FieldInfo | None, value: Any) -> str:
    if field is not None and _has_secret(field.annotation):
        return "<hidden>"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def problem(name: str, field: FieldInfo | None, value: Any, reason: str, below: float | None = None) -> str:
    """One line: `RESPONDER_X='value': reason (example: RESPONDER_X=…)`; with `below` (the value must be under it), the
    example is the field's own if that is under it, else half of `below` (`_under`)."""
    label = where(name)
    hint = f" (example: {PREFIX}{name.upper()}={_under(example(name, field), below)})" if field is not None else ""
    if field is not None and _model(field.annotation) is not None:  # a nested model: one variable per field
        hint = f" (one variable per field: {PREFIX}{name.upper()}__<FIELD>)"
    return f"{label}={_shown(field, value)}: {reason}{hint}"


def _under(shown: str, below: float | None) -> str:
    """`shown`, unless it is a number not under `below`: then half of `below` (a deadline refused by a group timeout
    suggests one that timeout accepts, not the field's usual example, which it may refuse too)."""
    if below is None:
        return shown
    try:
        fits = float(shown) < below
    except ValueError:
        fits = False
    return shown if fits else f"{below / 2:g}"


def describe(exc: ValidationError, fields: dict[str, FieldInfo]) -> list[str]:
    """One line per invalid setting in `exc`."""
    lines = []
    for err in exc.errors():
        name, field, rest = _setting(err["loc"], fields)
        if err["type"] == "extra_forbidden":
            lines.append(f"{where(name)}: not a setting (see docs/configuration.md or `responder --help`)")
            continue
        detail = ".".join(rest)
        reason = err["msg"][0].lower() + err["msg"][1:]
        below = getattr(err.get("ctx", {}).get("error"), "below", None)  # settings_kafka.NotBelow: the example obeys
        lines.append(problem(name, field, err.get("input"), f"{detail}: {reason}" if detail else reason, below))
    return lines
