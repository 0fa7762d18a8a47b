"""The data dir: owner-only files, and one writer at a time (a lock file naming the running hub)."""

from __future__ import annotations

import logging
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from homegrid.store import SQLiteStore
from homegrid.store.lock import DataDirBusy, DataDirLock
from tests.procs import Proc, free_port, serve_config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The usual umask (022), under which files are created readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_data_dir_and_its_store_files_are_owner_only(tmp_path, open_umask):
    data = tmp_path / "a" / "b" / "data"
    store = SQLiteStore(data / "homegrid.db")
    store.set_meta("x", "1")  # the WAL and shared-memory files exist while the store is open
    try:
        assert _mode(data) == 0o700
        assert _mode(tmp_path / "a") == 0o700  # parents homegrid creates, too
        for name in ("homegrid.db", "homegrid.db-wal", "homegrid.db-shm"):
            assert _mode(data / name) == 0o600, name
    finally:
        store.close()


def test_store_files_left_readable_by_an_older_homegrid_are_tightened(tmp_path, open_umask):
    data = tmp_path / "data"
    SQLiteStore(data / "homegrid.db").close()
    for name in ("homegrid.db", "homegrid.db-wal"):
        (data / name).touch()
        os.chmod(data / name, 0o644)
    store = SQLiteStore(data / "homegrid.db")
    try:
        assert _mode(data / "homegrid.db") == 0o600
        assert _mode(data / "homegrid.db-wal") == 0o600
    finally:
        store.close()


def test_an_existing_data_dir_open_to_others_is_left_alone_and_named_in_a_warning(tmp_path, open_umask, caplog):
    data = tmp_path / "shared"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    with caplog.at_level(logging.WARNING):
        SQLiteStore(data / "homegrid.db").close()
    assert _mode(data) == 0o755  # it may be a home folder: not ours to change
    assert _mode(data / "homegrid.db") == 0o600
    assert any("chmod 700" in r.getMessage() and str(data) in r.getMessage() for r in caplog.records)


def test_the_lock_is_exclusive_across_descriptors_and_released(tmp_path):
    first = DataDirLock(tmp_path, "homegrid serve").acquire()
    assert _mode(first.path) == 0o600
    assert first.path.read_text() == f"{os.getpid()} homegrid serve\n"
    with pytest.raises(DataDirBusy, match=rf"homegrid serve \(pid {os.getpid()}\) is using the data dir"):
        DataDirLock(tmp_path, "homegrid import").acquire()
    first.release()
    DataDirLock(tmp_path, "homegrid import").acquire().release()


def test_a_second_hub_on_the_same_data_dir_refuses_to_start_and_a_killed_ones_lock_does_not_block(tmp_path):
    data = tmp_path / "data"
    cfg = serve_config(tmp_path)
    first = Proc(["serve", "--config", str(cfg), "--create", "--data-dir", str(data), "--port", str(free_port())])
    try:
        first.wait_for("dashboard on http://")
        assert (data / "homegrid.lock").read_text() == f"{first.p.pid} homegrid serve\n"

        for args in (["serve", "--port", str(free_port())], ["simulate", "--start", "2025-06-01", "--days", "1"],
                     ["quarantine-future"]):
            second = Proc([*args, "--config", str(cfg), "--data-dir", str(data)])
            assert second.wait(60) == 1, second.stderr
            [line] = second.lines
            assert line == (f"homegrid: error: homegrid serve (pid {first.p.pid}) is using the data dir {data}: "
                            "stop it first, or give this command another --data-dir")

        # the running hub's files, as homegrid wrote them: owner-only
        assert _mode(data) == 0o700
        for f in data.iterdir():
            assert _mode(f) == 0o600, f.name
    finally:
        os.kill(first.p.pid, signal.SIGKILL)
        first.stop()
    assert (data / "homegrid.lock").exists()  # left behind by the killed hub, and no obstacle:
    again = Proc(["simulate", "--start", "2025-06-01", "--days", "1", "--config", str(cfg), "--create", "--data-dir",
                  str(data)])
    assert again.wait(120) == 0, again.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="flock semantics checked on Linux")
def test_readers_do_not_need_the_lock(tmp_path, capsys):
    from homegrid.cli import main

    data = tmp_path / "data"
    assert main(["simulate", "--start", "2025-06-01", "--days", "1", "--create", "--data-dir", str(data)]) == 0
    with DataDirLock(data, "homegrid serve"):
        assert main(["report", "--from", "2025-06-01", "--to", "2025-06-01", "--data-dir", str(data)]) == 0
        assert main(["check", "--data-dir", str(data)]) == 0
        assert main(["import", str(tmp_path / "none.csv"), "--data-dir", str(data)]) == 2  # no such file first
        (tmp_path / "one.csv").write_text("time,home_power\n2025-06-01T00:00:00+00:00,1000\n")
        assert main(["import", str(tmp_path / "one.csv"), "--data-dir", str(data)]) == 1
    assert "is using the data dir" in capsys.readouterr().err
