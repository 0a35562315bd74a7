"""Approvals read from Kafka, for an operator who has no replica's timeline: `responder approvals pending` lists
what waits (forged decisions do not hide it), and `approve` by incident prefix finds the plan digest on the
requests topic and releases the step (through the real broker and moto)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from responder.ingest.approvals import send_decision
from responder.ingest.kafka import publish
from responder.sandbox import lifeline
from responder.service import Service
from responder.timeline.chain import parse_lines
from responder.timeline.checkpoint import generate_keypair
from tests.integration.approval_kit import SECRET, approval_of, approval_setup, park
from tests.integration.harness import key_status, running, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await lifeline.exec_async(sys.executable, "-m", "responder", *args, cwd=ROOT, env=env,
                                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_pending_lists_the_parked_step_and_approve_finds_its_digest_on_kafka(
    kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir
):
    """`pending` shows a parked step from its signed request, refusing forgeries; `approve` by id prefix runs it."""
    names, key, settings = await approval_setup(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir)
    private, public = generate_keypair()  # the replicas' timeline key signs their requests
    settings = settings.model_copy(update={
        "timeline_signing_key": SecretStr(private),
        "approval_keys": {"k1": SecretStr(SECRET), "k2": SecretStr("bob-secret")},
        "approver_identities": {"k1": "alice", "k2": "bob"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "RESPONDER_APPROVAL_KEYS": orjson.dumps({"k1": SECRET, "k2": "bob-secret"}).decode(),
        "RESPONDER_APPROVAL_KEY_ID": "k1", "RESPONDER_APPROVER_IDENTITIES": '{"k1": "alice", "k2": "bob"}',
        "RESPONDER_APPROVALS_TOPIC": names["decisions"], "RESPONDER_APPROVAL_REQUESTS_TOPIC": names["requests"],
        "RESPONDER_TIMELINE_VERIFY_KEY": public,
        "RESPONDER_TIMELINE_PATH": str(tmp_path / "operator-has-no-timeline.jsonl")}
    service = Service(settings)
    async with running(service):
        parked = await park(service, kafka_bootstrap, topics, key)

        async def listed(decoys: int = 1) -> list[dict[str, object]]:
            code, out, err = await _cli(env, "approvals", "pending", "--json")
            assert code == 0, err[-2000:]
            assert orjson.loads(out)["requests_refused"] == decoys
            return list(orjson.loads(out)["pending"])

        for _ in range(50):  # the request is published right after the step parks; a decision stamped before it
            if await listed(decoys=0):  # would be ignored as answering an earlier parking, so it is waited for
                break
            await asyncio.sleep(0.2)
        forged = approval_of(parked)
        await send_decision(kafka_bootstrap, names["decisions"], forged, "k1", b"not-the-secret")
        by_bob = forged.model_copy(update={"by": "bob"})  # a valid key, but bob is not a listed approver
        await send_decision(kafka_bootstrap, names["decisions"], by_bob, "k2", b"bob-secret")
        decoy = parked.request().model_copy(update={"target": "AKIA-LOOKS-HARMLESS"})  # unsigned, published later
        await publish(kafka_bootstrap, names["requests"], [orjson.dumps(decoy.model_dump(mode="json"))],
                      key=parked.incident.encode())
        waiting = await listed()
        [item] = waiting
        assert (item["request"]["incident"], item["request"]["step"], item["request"]["target"]) == (
            parked.incident, parked.step, key)
        assert (item["request"]["digest"], item["request"]["request_id"]) == (parked.digest, parked.request_id)
        assert item["answer"] is None
        assert item["request_verified"] is True
        assert len(item["refused"]) == 2  # the forged one and bob's: seen, neither taken as the answer
        assert any("not an approver" in why for why in item["refused"])
        assert await key_status(aws, key) == "Active"

        code, _, err = await _cli(env, "approve", parked.incident[:10], parked.step, "--by", "alice",
                                  "--reason", "confirmed on the bridge")
        assert code == 0, err[-2000:]
        await wait_for(lambda: bool(service.engine.state.results()), timeout=60)
        assert await listed() == []
        code, out, _ = await _cli(env, "approvals", "pending", "--all", "--json")
        [answered] = orjson.loads(out)["pending"]
        assert answered["answer"] == {"decision": "approve", "by": "alice", "verified": True, "lapsed": False}
        [decided] = [e.body for e in parse_lines(settings.timeline_path.read_bytes().splitlines())
                     if e.kind == "approval.decided"]
        assert decided["request_id"] == parked.request_id  # `approve` named the request it found on Kafka
    assert await key_status(aws, key) == "Inactive"


async def test_no_request_for_the_incident_is_one_line_and_exit_3(kafka_bootstrap, unique, tmp_path):
    """`approve` for an incident with no published request exits 3 naming the topic; `pending` says nothing waits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONDER_")} | {
        "RESPONDER_KAFKA_BOOTSTRAP": kafka_bootstrap, "RESPONDER_APPROVAL_KEYS": '{"k1": "s"}',
        "RESPONDER_APPROVAL_KEY_ID": "k1", "RESPONDER_APPROVALS_TOPIC": f"dec-{unique}",
        "RESPONDER_APPROVAL_REQUESTS_TOPIC": f"req-{unique}", "RESPONDER_TIMELINE_PATH": str(tmp_path / "none.jsonl")}
    code, out, _ = await _cli(env, "approvals", "pending")
    assert code == 0
    assert "no approval is waiting" in out
    code, _, err = await _cli(env, "approve", "inc-nope", "revoke", "--by", "alice")
    assert code == 3
    assert f"req-{unique}" in err
    assert "Traceback" not in err
