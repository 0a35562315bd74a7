"""Where settings are read from (`sources`): the environment source that accepts `a,b` where a list is expected
(`RESPONDER_TOPICS=security.alerts`), then the YAML file named by RESPONDER_CONFIG, which must exist.

Before any value is validated, a RESPONDER_* variable close to a setting's name (`misspelt`) and a RESPONDER_CONFIG
file that cannot be read as settings are a SettingsInvalid, one line each (`responder.settings_errors`).
"""

from __future__ import annotations

import os
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, YamlConfigSettingsSource

from responder.settings_errors import PREFIX, SettingsInvalid, container_type, problem


class EnvSource(EnvSettingsSource):
    """RESPONDER_* variables; a list may be `a,b` as well as JSON; a bad JSON object is one clear line."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """JSON first; for list settings, comma-separated values; otherwise a SettingsInvalid naming the variable."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            if container_type(field.annotation) is list and isinstance(value, str):
                return [part.strip() for part in value.split(",") if part.strip()]
            kind = "a JSON object" if container_type(field.annotation) is dict else "valid JSON"
            raise SettingsInvalid([problem(field_name, field, value, f"not {kind}")]) from None


NOT_SETTINGS = frozenset({"CONFIG", "TEST_KAFKA", "KAFKA_CACHE", "KAFKA_VERSION", "KAFKA_KEEP", "KAFKA_JAVA_OPTS",
                          "SOAK_KILLS", "FAULT_REPORT", "TABLETOP_CHILD_LOG"})
"""RESPONDER_* variables read by other parts (RESPONDER_CONFIG, the test and bench harnesses), not settings."""
_SERVICE_LINK = re.compile(r"^(.+_)?(SERVICE_HOST|SERVICE_PORT(_.+)?|PORT_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$")
"""What Kubernetes injects for every Service of the namespace whose name starts with `responder`: `responder` itself
(RESPONDER_SERVICE_HOST, RESPONDER_PORT_9102_TCP_ADDR), but also `responder-kafka-bootstrap` (a Strimzi cluster named
responder: RESPONDER_KAFKA_BOOTSTRAP_SERVICE_HOST, …)."""
_LINK_VALUE = re.compile(r"^(tcp|udp|sctp)://[^/\s]+:\d+$")
"""The value of a Service's bare `<NAME>_PORT` link (tcp://10.0.0.1:9092): a typo of a port setting holds a number."""


def service_link(rest: str, value: str) -> bool:
    """Whether RESPONDER_`rest`=`value` is a Kubernetes service link (or a Docker link), not a misspelt setting."""
    return _SERVICE_LINK.match(rest) is not None or (
        (rest == "PORT" or rest.endswith("_PORT")) and _LINK_VALUE.match(value.strip()) is not None)


def misspelt(fields: dict[str, FieldInfo]) -> list[str]:
    """One line per RESPONDER_* variable that is no setting but close to one (RESPONDER_KILL_SWICH): ignoring it
    would leave the setting it meant at its default. Names close to none are left alone (other tools' variables)."""
    names = [name.upper() for name in fields]
    lines = []
    for var in sorted(os.environ):
        rest = var[len(PREFIX):].upper() if var.upper().startswith(PREFIX) else None
        if rest is None or rest in NOT_SETTINGS or service_link(rest, os.environ[var]) \
                or rest.split("__")[0] in names:
            continue
        close = get_close_matches(rest, names, n=1, cutoff=0.8)
        if close:
            lines.append(f"{var}: not a setting; did you mean {PREFIX}{close[0]}? (see docs/configuration.md)")
    return lines


def _config_problem(config: str) -> str | None:
    """Why the RESPONDER_CONFIG file cannot be read as settings (YAML syntax, not a mapping, a repeated key), by
    line; never quoting its text, which may hold secrets."""
    try:
        text = Path(config).read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)  # what composes may still not construct (a key that is a list: found unhashable key)
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read: {exc}"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return f"invalid YAML{f' at line {mark.line + 1}' if mark else ''}: {getattr(exc, 'problem', None) or 'syntax'}"
    if root is not None and not isinstance(root, yaml.MappingNode):
        return f"not a mapping of setting: value (line {root.start_mark.line + 1})"
    return _repeated_key(root) if root is not None else None


def _repeated_key(root: yaml.Node) -> str | None:
    """The first key repeated in a mapping of the file, at any depth (`protected_tags`, `guard_quotas` too)."""
    todo, seen = [root], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue  # an alias: checked where it was anchored
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in keys:
                        return (f"duplicate key {key.value!r} at line {key.start_mark.line + 1} "
                                "(YAML would keep only the last)")
                    keys.add(key.value)
                todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return None


def sources(settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
    """Init kwargs win, then env (lists may be comma-separated), then the YAML file named by RESPONDER_CONFIG."""
    typos = misspelt(settings_cls.model_fields)
    if typos:
        raise SettingsInvalid(typos)
    found: list[PydanticBaseSettingsSource] = [init_settings, EnvSource(settings_cls)]
    config = os.environ.get("RESPONDER_CONFIG")
    if config:
        if not Path(config).is_file():
            raise SettingsInvalid([f"RESPONDER_CONFIG={config!r}: no such file "
                                   "(example: RESPONDER_CONFIG=/etc/responder/responder.yaml)"])
        bad = _config_problem(config)
        if bad:
            raise SettingsInvalid([f"RESPONDER_CONFIG={config!r}: {bad}"])
        found.append(YamlConfigSettingsSource(settings_cls, yaml_file=config))
    return tuple(found)


class SourcedSettings(BaseSettings):
    """Settings read from `sources`. It holds no field, so the fields of `responder.settings.Settings`, which builds
    on it, keep their order."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init kwargs win, then env (lists may be comma-separated), then the YAML file named by RESPONDER_CONFIG."""
        return sources(settings_cls, init_settings)
