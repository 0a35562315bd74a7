"""`--via kafka` trusts only the reply a replica signed for its request: forged, unsigned and replayed replies written
to the replies topic (embedded broker) are refused, with a clear message and a non-zero exit when no other comes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from responder.ingest.admin import ensure_topics
from responder.ingest.kafka import publish
from responder.models import operator as wire
from responder.models.operator import OperatorReply, OperatorRequest
from responder.sandbox import lifeline
from responder.timeline.checkpoint import Signer, generate_keypair

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _signed(signer: Signer | None, reply: OperatorReply, request: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    value = reply.model_dump_json().encode()
    if signer is None:
        return value, []
    signature = signer.sign(wire.reply_signed(wire.request_digest(request), value))
    return value, [(wire.REPLY_KEY_HEADER, signer.key_id.encode()), (wire.REPLY_SIGNATURE_HEADER, signature.encode())]


async def _answer(bootstrap: str, requests: str, replies: str, signers: list[tuple[Signer | None, bool]]) -> None:
    """Play whoever writes the replies topic: read the request, then publish an "ok" reply per (signer, replay)."""
    consumer = AIOKafkaConsumer(requests, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while not (batch := await consumer.getmany(timeout_ms=300)):
                pass
    finally:
        await consumer.stop()
    [sent] = [m.value for msgs in batch.values() for m in msgs]
    request = OperatorRequest.model_validate_json(sent)
    for signer, replay in signers:  # a replay: a reply the replica signed for another request
        reply = OperatorReply(id="f" * 32 if replay else request.id, action=request.action, ok=True,
                              outcomes=[{"step": "deactivate-key", "status": "ok"}])
        value, headers = _signed(signer, reply, sent)
        await publish(bootstrap, replies, [value], key=request.id.encode(), headers=headers)


async def _undo(bootstrap: str, ops: dict[str, str], public: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPONDER_", "AWS_"))}
    env |= {"RESPONDER_KAFKA_BOOTSTRAP": bootstrap, "RESPONDER_APPROVAL_KEYS": '{"ops": "operator-secret"}',
            "RESPONDER_APPROVAL_KEY_ID": "ops", "RESPONDER_TIMELINE_VERIFY_KEY": public,
            "RESPONDER_OPERATOR_REPLY_TIMEOUT": "10", **ops}
    proc = await lifeline.exec_async(
        sys.executable, "-m", "responder", "undo", "inc-1", "--via", "kafka", "--by", "alice", "--json",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("genuine", [False, True])
async def test_forged_and_replayed_replies_are_refused_and_the_signed_one_is_the_answer(kafka_bootstrap, unique,
                                                                                        genuine):
    """Forged and replayed operator replies are refused (exit 1 if none is signed); the signed reply is the answer."""
    private, public = generate_keypair()
    replica, attacker = Signer.from_text(private), Signer.from_text(generate_keypair()[0])
    ops = {"RESPONDER_OPERATOR_REQUESTS_TOPIC": f"opreq-{unique}",
           "RESPONDER_OPERATOR_REPLIES_TOPIC": f"oprep-{unique}"}
    await ensure_topics(kafka_bootstrap, [f"opreq-{unique}", f"oprep-{unique}"])
    forged: list[tuple[Signer | None, bool]] = [(None, False), (attacker, False), (replica, True)]
    answering = asyncio.create_task(_answer(kafka_bootstrap, f"opreq-{unique}", f"oprep-{unique}",
                                            forged + ([(replica, False)] if genuine else [])))
    code, out, err = await _undo(kafka_bootstrap, ops, public)
    await answering
    if genuine:
        assert code == 0, err
        assert orjson.loads(out.splitlines()[-1])["steps"] == [{"step": "deactivate-key", "status": "ok"}]
        assert "UNVERIFIED" not in err
    else:
        assert code == 1, err
        assert "no verified answer" in err
        assert "refused 3 forged or mismatched replies" in err
        assert "unsigned" in err
        assert "does not verify" in err
        assert "names request" in err
