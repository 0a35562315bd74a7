"""The broker's log and a Kafka cluster's work directory are named for their process, and making one removes those
that dead runs left in the same temp directory: never a live process's, an old name's, a symlink's or another user's."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from responder.errors import SandboxError
from responder.sandbox import Broker, leftovers, lifeline
from responder.sandbox.kafka_jvm import KafkaCluster
from responder.sandbox.leftovers import KAFKA_WORKDIR, TANSU_LOG


def dead_pid() -> int:
    """The pid of a child that has ended and been reaped (its reuse within a test is negligible)."""
    proc = lifeline.popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


@pytest.fixture
def live_child() -> Iterator[int]:
    """The pid of a child that runs until the test ends."""
    proc = lifeline.popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait(10)


@pytest.fixture
def temp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh directory that tempfile (and so the sweep) uses as the temp directory."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def leftover_log(folder: Path, pid: int) -> Path:
    path = folder / f"tansu-{pid}-x1y2z3_a.log"
    path.write_text("broker output")
    return path


def leftover_workdir(folder: Path, pid: int) -> Path:
    path = folder / f"kafka-{pid}-q9w8e7r6"
    (path / "node1" / "data").mkdir(parents=True)
    (path / "node1" / "server.properties").write_text("node.id=1")
    (path / "log4j.properties").write_text("")
    return path


def test_a_dead_runs_log_is_removed_and_the_new_one_is_named_for_this_process(temp):
    """make(TANSU_LOG) removes a dead pid's tansu-<pid>-*.log and makes a regular file tansu-<own pid>-*.log."""
    old = leftover_log(temp, dead_pid())
    made = leftovers.make(TANSU_LOG)
    assert not old.exists()
    assert made.parent == temp
    assert made.is_file()
    assert made.name.startswith(f"tansu-{os.getpid()}-")
    assert made.name.endswith(".log")
    assert TANSU_LOG.pattern().fullmatch(made.name)
    assert list(temp.iterdir()) == [made]


def test_a_dead_runs_kafka_workdir_is_removed_with_its_contents(temp):
    """make(KAFKA_WORKDIR) removes a dead pid's kafka-<pid>-* directory, nested files included, and makes its own."""
    old = leftover_workdir(temp, dead_pid())
    made = leftovers.make(KAFKA_WORKDIR)
    assert not old.exists()
    assert made.is_dir()
    assert made.name.startswith(f"kafka-{os.getpid()}-")
    assert list(temp.iterdir()) == [made]


def test_a_live_process_s_leftovers_are_kept(temp, live_child):
    """Logs and workdirs of this process and of a running child (another run's) are not removed."""
    kept = [maker(temp, pid) for pid in (os.getpid(), live_child) for maker in (leftover_log, leftover_workdir)]
    assert leftovers.sweep(TANSU_LOG, temp) == 0
    assert leftovers.sweep(KAFKA_WORKDIR, temp) == 0
    assert all(path.exists() for path in kept)
    assert (kept[1] / "node1" / "server.properties").read_text() == "node.id=1"


def test_old_names_without_a_pid_are_kept(temp):
    """tansu-XXXXXXXX.log and kafka-XXXXXXXX from before names carried a pid are left alone."""
    (temp / "tansu-04urr4an.log").write_text("old")
    (temp / "kafka-26pk52k6").mkdir()
    leftovers.make(TANSU_LOG)
    leftovers.make(KAFKA_WORKDIR)
    assert (temp / "tansu-04urr4an.log").is_file()
    assert (temp / "kafka-26pk52k6").is_dir()


@pytest.mark.parametrize(("name", "directory"), [
    ("tansu-{pid}-abcdefgh.log.bak", False), ("xtansu-{pid}-abcdefgh.log", False), ("tansu-{pid}-abcdefgh.txt", False),
    ("tansu-{pid}-abcdefgh.log", True), ("kafka-{pid}-abcdefgh", False), ("kafka-{pid}-ABCDEFGH", True),
    ("kafka-{pid}", True), ("kafka-{pid}-abc-def", True)])
def test_a_name_off_the_pattern_or_of_the_other_type_is_kept(temp, name, directory):
    """A dead pid's entry is kept unless its name is exactly the kind's and it is that kind's type (file or dir)."""
    path = temp / name.format(pid=dead_pid())
    if directory:
        path.mkdir()
    else:
        path.write_text("")
    assert leftovers.sweep(TANSU_LOG, temp) + leftovers.sweep(KAFKA_WORKDIR, temp) == 0
    assert path.exists()


def test_a_symlink_named_like_a_leftover_is_kept_and_its_target_untouched(temp, tmp_path):
    """A dead pid's tansu-/kafka- name that is a symlink (to a file or a directory) is not removed nor followed."""
    target_file, target_dir = tmp_path / "precious.log", tmp_path / "precious"
    target_file.write_text("keep me")
    (target_dir / "inside").mkdir(parents=True)
    pid = dead_pid()
    links = [temp / f"tansu-{pid}-abcdefgh.log", temp / f"kafka-{pid}-abcdefgh", temp / f"tansu-{pid}-ijklmnop.log"]
    for link, target in zip(links, (target_file, target_dir, target_dir), strict=True):
        link.symlink_to(target)
    leftovers.make(TANSU_LOG)
    leftovers.make(KAFKA_WORKDIR)
    assert all(link.is_symlink() for link in links)
    assert target_file.read_text() == "keep me"
    assert (target_dir / "inside").is_dir()


def test_a_symlink_inside_a_dead_workdir_is_removed_and_not_followed(temp, tmp_path):
    """A dead run's workdir holding a symlink to an outside directory goes; the outside directory's files stay."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    old = leftover_workdir(temp, dead_pid())
    (old / "node1" / "escape").symlink_to(outside)
    assert leftovers.sweep(KAFKA_WORKDIR, temp) == 1
    assert not old.exists()
    assert (outside / "data").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file of another uid")
def test_another_users_leftovers_are_kept(temp):
    """A dead pid's log and workdir owned by another uid are not removed."""
    pid = dead_pid()
    paths = [leftover_log(temp, pid), leftover_workdir(temp, pid)]
    for path in paths:
        os.chown(path, 65534, 65534)
    assert leftovers.sweep(TANSU_LOG, temp) + leftovers.sweep(KAFKA_WORKDIR, temp) == 0
    assert all(path.exists() for path in paths)


def test_removed_leftovers_are_logged_with_their_count(temp):
    """One sandbox_leftovers_removed event per sweep that removed any, with the count; none when nothing went."""
    for _ in range(2):
        leftover_log(temp, dead_pid())
    with capture_logs() as logs:
        leftovers.make(TANSU_LOG)
        leftovers.make(TANSU_LOG)
    assert [(e["event"], e["count"]) for e in logs] == [("sandbox_leftovers_removed", 2)]


def test_a_failed_removal_is_logged_and_the_start_goes_on(temp, monkeypatch):
    """A workdir that cannot be removed is logged (sandbox_leftover_not_removed) and left; make still makes one."""
    old = leftover_workdir(temp, dead_pid())

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(leftovers.shutil, "rmtree", refuse)
    with capture_logs() as logs:
        made = leftovers.make(KAFKA_WORKDIR)
    assert made.is_dir()
    assert old.exists()
    assert [e["event"] for e in logs] == ["sandbox_leftover_not_removed"]
    assert leftovers.sweep(TANSU_LOG, temp / "missing") == 0  # an unreadable temp directory: nothing, no error


def test_the_broker_removes_dead_runs_logs_when_it_makes_its_own(temp, monkeypatch, tmp_path):
    """Broker() without a log_path sweeps dead runs' tansu logs before making (and, here, removing) its own."""
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'Error: refused'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CALF_TANSU_BIN", str(fake))
    old = leftover_log(temp, dead_pid())
    with pytest.raises(SandboxError, match="refused"):
        Broker().start(timeout=5)
    assert not old.exists()
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("keep", ["", "1"], ids=["swept", "kept-with-RESPONDER_KAFKA_KEEP"])
def test_a_kafka_cluster_removes_dead_runs_workdirs_unless_they_are_kept(temp, monkeypatch, keep):
    """KafkaCluster() sweeps dead runs' kafka-<pid>-* workdirs, except while RESPONDER_KAFKA_KEEP is set."""
    monkeypatch.setenv("RESPONDER_KAFKA_KEEP", keep)
    old = leftover_workdir(temp, dead_pid())
    cluster = KafkaCluster(1)
    assert cluster.workdir.parent == temp
    assert cluster.workdir.name.startswith(f"kafka-{os.getpid()}-")
    assert old.exists() == bool(keep)
    monkeypatch.setenv("RESPONDER_KAFKA_KEEP", "")
    cluster.stop()
    assert not cluster.workdir.exists()
