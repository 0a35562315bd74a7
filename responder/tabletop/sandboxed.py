"""The settings of a drill's service and intake: what the runner sets, the defaults for the rest, nothing else.

`Settings()` reads every `RESPONDER_*` variable and the file named by `RESPONDER_CONFIG`; a drill started from a
production shell would take the production values of whatever the runner does not set: `notify_keys` (a
`notify.webhook` step would POST, signed, to the real on-call hook), `metrics_port` (production's scrape target),
`kafka_security`, `fleet_guard_table`, `changelog_topic`, `kill_switch_file`, `operator_permissions`… A drill runs
only against its sandbox, so its settings read neither: the service-wide `default_on_failure` is the one setting
taken from there, read by the command (as `responder run` reads it) and handed over explicitly.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from responder.settings import Settings


class SandboxSettings(Settings):
    """Settings from the keyword arguments only: no environment variable, no RESPONDER_CONFIG file; `drill`: a model
    step's literal local `registry:` is the sandbox's `model_registry` (responder/actuators/model/backends.py)."""

    drill: ClassVar[bool] = True

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   *_: Any, **__: Any) -> tuple[PydanticBaseSettingsSource, ...]:
        """The keyword arguments, and nothing from the environment (`env_settings`, dotenv) or a file."""
        return (init_settings,)
