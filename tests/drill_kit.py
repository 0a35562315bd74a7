"""A drill of a runbook without `on_failure` (`drill`): the service's `default_on_failure` (`PAGE`) is what pages,
in drills, `runbooks validate` and replays as in `responder run`."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
PAGE = [{"id": "page", "actuator": "notify.kafka.publish_message",
         "with": {"topic": "responder.notifications", "title": "${failure.step} failed",
                  "fields": {"target": "${failure.target}"}}}]
RUNBOOK = """\
id: silent-deactivation
trigger:
  source: guardduty
  type: "UnauthorizedAccess:IAMUser/*"
group_by: "${event.resource.access_key.id}"
steps:
  - id: deactivate-key
    actuator: aws.iam.deactivate_access_key
    with:
      user_name: ${event.resource.access_key.attributes.user_name}
      access_key_id: ${event.resource.access_key.id}
"""
PLAYBOOK = """\
id: silent-runbook
title: A containment of a runbook without on_failure fails
objectives: [on-call hears of the failed containment]
world:
  users:
    - {{name: ml-training, keys: [real]}}
injects:
  - id: finding
    at: 5s
    event: {event}
    overrides:
      resource.accessKeyDetails.accessKeyId: AKIAFAKEFAKEFAKEFAKE
      createdAt: ${{now}}
      updatedAt: ${{now}}
expectations:
  - id: paged
    kind: step_done
    actuator: notify.kafka.publish_message
    must_pass: true
{extra}"""
NAMING_THE_DEFAULT = """\
  - id: paged-by-default
    kind: step_done
    step: page.deactivate-key
"""
EVENT = ROOT / "playbooks" / "events" / "guardduty-leaked-access-key.json"
UNRESOLVED = RUNBOOK.replace("attributes.user_name", "attributes.no_such_attribute")


def drill(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    """A runbook directory whose one runbook has no on_failure, and a playbook whose key does not exist."""
    runbooks, playbooks = tmp_path / "runbooks", tmp_path / "playbooks"
    runbooks.mkdir()
    playbooks.mkdir()
    (runbooks / "silent-deactivation.yaml").write_text(RUNBOOK)
    (playbooks / EVENT.name).write_bytes(EVENT.read_bytes())  # an inject's event file lies beside its playbook
    (playbooks / "silent-runbook.yaml").write_text(PLAYBOOK.format(event=EVENT.name, extra=extra))
    return runbooks, playbooks / "silent-runbook.yaml"
