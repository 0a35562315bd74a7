"""The S3 Object Lock archive on the moto server and the Kafka mirror, through the real service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import botocore.exceptions
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from typer.testing import CliRunner

from responder.actuators.aws.archive import S3Archive
from responder.cli import app
from responder.errors import TimelineError
from responder.ingest.kafka import ensure_topics, publish
from responder.sandbox import SANDBOX_CREDENTIALS
from responder.service import Service
from responder.timeline.archive import Archiver, read_archive
from responder.timeline.checkpoint import Checker
from responder.timeline.verify import verify_lines
from tests.findings import envelope_bytes, guardduty_finding
from tests.integration.harness import make_settings, running, wait_for
from tests.timeline_builders import PRIVATE, PUBLIC, signed_recorder

pytestmark = pytest.mark.integration


def _archive(aws, bucket: str = "timeline-worm") -> S3Archive:
    archive = S3Archive(bucket, prefix="t/", endpoint_url=aws.endpoint_url, credentials=SANDBOX_CREDENTIALS)
    archive.ensure_bucket()
    return archive


async def test_segments_are_compliance_locked_and_verify(aws, tmp_path, monkeypatch):
    """Sealed segments are COMPLIANCE-locked in S3, cannot be deleted or replaced; verify catches a cut."""
    archive = _archive(aws)
    path = tmp_path / "t.jsonl"
    rec = signed_recorder(path, every=5)
    archiver = Archiver(archive)
    rec.sinks.append(archiver)
    for i in range(12):
        rec.append("x", {"i": i})
        await rec.flush()
    rec.close()
    archiver.close()
    await archiver.run()
    names = archive.names()
    assert names == ["000000000000-000000000005.jsonl", "000000000006-000000000011.jsonl",
                     "000000000012-000000000014.jsonl"]
    assert b"".join(archive.get(n) for n in names) == path.read_bytes()
    mode, until = archive.retention_of(names[0])
    assert mode == "COMPLIANCE"
    assert until is not None
    assert until > datetime.now(UTC)
    version = archive.client.head_object(Bucket=archive.bucket, Key="t/" + names[0])["VersionId"]
    with pytest.raises(botocore.exceptions.ClientError):
        archive.client.delete_object(Bucket=archive.bucket, Key="t/" + names[0], VersionId=version)
    with pytest.raises(TimelineError):
        archive.put(names[0], b"forged\n")
    archive.put(names[0], archive.get(names[0]))  # a re-upload of the same bytes after a crash is fine

    monkeypatch.setenv("RESPONDER_AWS_ENDPOINT_URL", aws.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    args = ["timeline", "verify", str(path), "--public-key", PUBLIC, "--archive", "s3://timeline-worm/t/", "--json"]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["archived_entries"] == 15
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:6]))
    cut = CliRunner().invoke(app, args)
    assert cut.exit_code == 1
    assert orjson.loads(cut.stdout)["first_bad_seq"] == 6


async def test_service_signs_archives_and_mirrors(kafka_bootstrap, aws, topics, unique, tmp_path, runbooks_dir):
    """The running service checkpoints, ships sealed segments to S3 and mirrors every line to Kafka."""
    archive = _archive(aws, bucket=f"svc-{unique}")
    mirror_topic = f"mirror-{unique}"
    await ensure_topics(kafka_bootstrap, [mirror_topic], partitions=1)
    await aws.call("iam", "create_user", UserName="ml-training")
    key = (await aws.call("iam", "create_access_key", UserName="ml-training"))["AccessKey"]["AccessKeyId"]
    path = tmp_path / "t.jsonl"
    settings = make_settings(kafka_bootstrap, aws, topics, unique, path, runbooks_dir,
                             timeline_signing_key=PRIVATE, timeline_checkpoint_every=3,
                             timeline_archive=f"s3://svc-{unique}/t/", timeline_mirror_topic=mirror_topic)
    service = Service(settings)
    async with running(service):
        await publish(kafka_bootstrap, topics["alerts"], [envelope_bytes(guardduty_finding(key))], key=key.encode())
        await wait_for(lambda: bool(service.engine.state.results()))
    lines = path.read_bytes().splitlines()
    result = verify_lines(lines, Checker.from_text(PUBLIC))
    assert result.checkpoints >= 2
    assert result.unsigned_tail == 0
    assert read_archive(archive) == lines
    consumer = AIOKafkaConsumer(mirror_topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                group_id=f"m-{unique}")
    await consumer.start()
    try:
        mirrored: list[bytes] = []
        async with asyncio.timeout(30):
            while len(mirrored) < len(lines):
                batch = await consumer.getmany(timeout_ms=500)
                mirrored += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert mirrored == lines
