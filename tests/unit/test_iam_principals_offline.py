"""`responder replay` is offline: a step naming a role or user whose unique id or path a protected id needs is listed
refused (IAM cannot be read), a step protected ids need no read for is planned as before."""

from __future__ import annotations

import pytest

from responder.actuators import registry
from responder.catalog import load_runbooks
from responder.tabletop.replay import backtest
from tests.drill_kit import EVENT, RUNBOOK


@pytest.mark.parametrize(("protected", "refused"), [("user/admins/*", True), ("AIDAZZ*", True), ("prod-*", False)])
async def test_replay_lists_a_step_needing_an_iam_read_as_refused(tmp_path, protected, refused):
    """A protected path glob or unique id refuses the replayed access-key step, saying replay is offline."""
    (tmp_path / "silent-deactivation.yaml").write_text(RUNBOOK + f'guards: {{protected: {{ids: ["{protected}"]}}}}\n')
    result = await backtest([EVENT.read_bytes()], load_runbooks(tmp_path, registry), registry)
    failed = [(f.step, f.status) for f in result.failed]
    assert failed == ([("deactivate-key", "refused")] if refused else [])
    assert all("replay is offline" in f.error and "iam:GetUser" in f.error for f in result.failed)


@pytest.mark.parametrize(("guards", "refused"), [("{protected: {tags: {responder:protected: '*'}}}", True),
                                                 ("{protected: {ids: [prod-*]}}", False)])
async def test_replay_lists_every_step_acting_on_a_resource_as_refused_while_a_protected_tag_is_set(tmp_path, guards,
                                                                                                    refused):
    """A protected tag refuses the replayed access-key step (its user's tags cannot be read offline)."""
    (tmp_path / "silent-deactivation.yaml").write_text(RUNBOOK + f"guards: {guards}\n")
    result = await backtest([EVENT.read_bytes()], load_runbooks(tmp_path, registry), registry)
    assert [(f.step, f.status) for f in result.failed] == ([("deactivate-key", "refused")] if refused else [])
    assert all("replay is offline" in f.error and "iam:GetUser" in f.error for f in result.failed)
