"""The Apache Kafka broker's jars, fetched with Maven once per machine and cached.

`ensure_jars()` resolves `org.apache.kafka:kafka_2.13` and its runtime dependencies with
`mvn dependency:copy-dependencies` into `~/.cache/responder/kafka-<version>/lib` (or `$RESPONDER_KAFKA_CACHE`).
`python -m responder.sandbox.kafka_jars` (`make kafka-jars`) does it ahead of the tests.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess  # nosec B404 # its errors; lifeline starts mvn
import time
from pathlib import Path

import structlog

from responder.errors import SandboxError
from responder.sandbox import lifeline

log = structlog.get_logger(__name__)

KAFKA_VERSION = os.environ.get("RESPONDER_KAFKA_VERSION", "3.9.2")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>responder.sandbox</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
<packaging>pom</packaging><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version>
</dependency>
<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
</dependencies></project>
"""


def java_binary() -> str | None:
    """`java` from $JAVA_HOME or PATH, or None."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the jars of one Kafka version live, reused across runs and clones."""
    root = os.environ.get("RESPONDER_KAFKA_CACHE") or Path.home() / ".cache" / "responder"
    return Path(root) / f"kafka-{version}"


def jars_cached(version: str = KAFKA_VERSION) -> bool:
    """Whether a complete jar set for `version` is already in the cache."""
    return (cache_dir(version) / "lib" / ".complete").is_file()


def ensure_jars(version: str = KAFKA_VERSION, *, timeout: float = 900.0) -> Path:
    """The cached lib directory for `version`, fetched with Maven first when missing (one process at a time)."""
    root = cache_dir(version)
    lib = root / "lib"
    if (lib / ".complete").is_file():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SandboxError("Apache Kafka jars are not cached and `mvn` is not on PATH (apt-get install maven)")
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent fetch finishes first; then the jars are there
        if (lib / ".complete").is_file():
            return lib
        staging = root / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (root / "pom.xml").write_text(POM.format(version=version))
        started = time.monotonic()
        proc = lifeline.run(
            [mvn, "-B", "-q", "-f", str(root / "pom.xml"), f"-Dmaven.repo.local={root.parent / 'm2'}",
             f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            capture_output=True, timeout=timeout, check=False,
        )
        if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            out = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-800:]
            raise SandboxError(f"Maven could not fetch org.apache.kafka:kafka_2.13:{version}: {out}")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        (lib / ".complete").write_text(version)
        log.info("kafka_jars_fetched", version=version, seconds=round(time.monotonic() - started, 1), path=str(lib))
    return lib


def fetch_main() -> int:
    """`python -m responder.sandbox.kafka_jars`: cache the jars for the tests (`make kafka-jars`); never fails the
    build: without Java or Maven it says the tests will use the embedded Tansu broker."""
    if java_binary() is None:
        print("no Java: the tests use the embedded Tansu broker (install Java 17+ for real Apache Kafka)")  # noqa: T201
        return 0
    cached = jars_cached()
    if not cached and shutil.which("mvn") is None:
        print("no Maven and no cached Kafka jars: the tests use the embedded Tansu broker")  # noqa: T201
        return 0
    started = time.monotonic()
    try:
        lib = ensure_jars()
    except (SandboxError, subprocess.TimeoutExpired) as exc:
        print(f"could not fetch the Apache Kafka jars ({exc}): the tests use the embedded Tansu broker")  # noqa: T201
        return 0
    size = sum(p.stat().st_size for p in lib.iterdir()) / 1e6
    how = "cached" if cached else f"fetched in {time.monotonic() - started:.1f}s"
    print(f"Apache Kafka {KAFKA_VERSION} jars {how}: {lib} ({size:.0f} MB)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(fetch_main())
