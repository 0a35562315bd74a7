"""The timeline's WORM archive: sealed segments in S3 under Object Lock COMPLIANCE retention.

It lives here because only `responder.actuators.aws` may import boto3; the timeline sees it through
`responder.timeline.archive.SegmentArchive` and the service injects it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from responder.errors import ConfigError, TimelineError
from responder.settings import Settings


class S3Archive:
    """Segments as `<prefix><name>` objects, each written once with a COMPLIANCE retain-until date."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "timeline/",
        retention_days: int = 365,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        credentials: dict[str, str] | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.retention = timedelta(days=retention_days)
        creds = credentials or {}
        session = boto3.session.Session(
            region_name=region,
            aws_access_key_id=creds.get("aws_access_key_id"),
            aws_secret_access_key=creds.get("aws_secret_access_key"),
        )
        config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5,
                                        read_timeout=30)
        self.client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Archive | None:
        """The archive named by `timeline_archive` (s3://bucket/prefix/), if any."""
        if not settings.timeline_archive:
            return None
        bucket, prefix = cls.parse_url(settings.timeline_archive)
        return cls(bucket, prefix=prefix, retention_days=settings.timeline_archive_retention_days,
                   region=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
                   credentials=settings.aws_credentials())

    @classmethod
    def parse_url(cls, url: str) -> tuple[str, str]:
        """`s3://bucket/prefix/` → (bucket, prefix)."""
        if not url.startswith("s3://"):
            raise ConfigError(f"archive must be an s3:// URL, got {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        return bucket, prefix

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock enabled when it does not exist (sandbox and tests)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)

    def put(self, name: str, data: bytes) -> None:
        """Write a segment once, locked in COMPLIANCE mode until now + retention."""
        until = datetime.now(UTC) + self.retention
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + name, Body=data, IfNoneMatch="*",
                ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until, ContentType="application/x-ndjson",
            )
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "PreconditionFailed" and self.get(name) == data:
                return  # already archived by an earlier run: the same bytes, nothing to do
            raise TimelineError(f"cannot archive {name}: {code or exc}") from exc

    def names(self) -> list[str]:
        """Every segment name under the prefix; TimelineError when the archive cannot be listed."""
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                out.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", []))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise TimelineError(f"cannot list the archive s3://{self.bucket}/{self.prefix}: {exc}") from exc
        return sorted(out)

    def get(self, name: str) -> bytes:
        """A segment's bytes (the current version); TimelineError when it cannot be read."""
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise TimelineError(f"cannot read {name} from the archive s3://{self.bucket}/{self.prefix}: {exc}") \
                from exc
        return body

    def retention_of(self, name: str) -> tuple[str | None, datetime | None]:
        """(lock mode, retain-until) of a segment, read with HEAD (moto's GetObjectRetention is broken)."""
        head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
        return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
