"""A full or read-only disk: every command says so in one line naming the data dir, exit 1, no traceback.

Tests run as root here, where file permissions are not enforced, so a read-only disk is made by opening the
store with SQLite's ``mode=ro`` (what SQLite says on a read-only mount), and a full one with
``PRAGMA max_page_count`` (SQLite's own "database or disk is full"); ``/dev/full`` is a full disk for
plain files. The ``chmod 0500`` test runs when the tests do not run as root.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest

from homegrid.cli import main
from homegrid.store import SQLiteStore

WRITERS = {
    "simulate": ["simulate", "--start", "2025-06-03", "--days", "20"],
    "import": ["import", "{csv}"],
    "quarantine-future": ["quarantine-future", "--after", "2025-06-01T12:00:00+00:00"],
}
READERS = {
    "export": ["export", "--from", "2025-06-01", "--to", "2025-06-01"],
    "report": ["report", "--from", "2025-06-01", "--to", "2025-06-01"],
    "outages": ["outages", "--from", "2025-06-01", "--to", "2025-06-01"],
}


@pytest.fixture
def data_dir(tmp_path, monkeypatch, capsys):
    """Two days of the virtual home, and a file of readings to import."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    data = tmp_path / "data"
    assert main(["simulate", "--start", "2025-06-01", "--days", "2", "--create", "--data-dir", str(data)]) == 0
    lines = [f"2025-07-{d:02d}T{h:02d}:{m:02d}:00+00:00,{1000 + m},{500 + h}"
             for d in range(1, 8) for h in range(24) for m in range(60)]
    (tmp_path / "more.csv").write_text("time,home_power,grid_power\n" + "\n".join(lines) + "\n")
    capsys.readouterr()
    return data


def _argv(args: list[str], data, tmp_path) -> list[str]:
    return [a.format(csv=tmp_path / "more.csv") for a in args] + ["--data-dir", str(data)]


def _read_only(monkeypatch) -> None:
    def connect(self):
        return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)

    monkeypatch.setattr(SQLiteStore, "_connect", connect)


def _full(monkeypatch) -> None:
    plain = SQLiteStore._connect

    def connect(self):
        db = plain(self)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")  # room for a few pages, then the disk is full
        return db

    monkeypatch.setattr(SQLiteStore, "_connect", connect)


@pytest.mark.parametrize("command", list(READERS))
def test_readers_work_on_a_read_only_store(data_dir, tmp_path, monkeypatch, capsys, command):
    _read_only(monkeypatch)
    assert main(_argv(READERS[command], data_dir, tmp_path)) == 0
    assert capsys.readouterr().out


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_read_only_store_in_one_line(data_dir, tmp_path, monkeypatch, capsys, command):
    _read_only(monkeypatch)
    assert main(_argv(WRITERS[command], data_dir, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"homegrid: error: cannot use {data_dir} (attempt to write a readonly database): "
                          "the disk is read-only"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", list(WRITERS))
def test_a_full_disk_in_one_line_and_nothing_half_written(data_dir, tmp_path, monkeypatch, capsys, command):
    before = SQLiteStore(data_dir / "homegrid.db").read_readings(0, 2**62)
    _full(monkeypatch)
    assert main(_argv(WRITERS[command], data_dir, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"homegrid: error: the disk holding {data_dir} is full (database or disk is full): "
                          f"free some space (df -h {data_dir})"), err
    assert err.count("\n") == 1
    monkeypatch.undo()
    after = SQLiteStore(data_dir / "homegrid.db").read_readings(0, 2**62)
    assert len(after) == len(before)  # the failed transaction left the store as it was


def test_an_export_onto_a_full_disk_in_one_line(data_dir, tmp_path, capsys):
    args = [*READERS["export"], "--output", "/dev/full"]
    assert main(_argv(args, data_dir, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("homegrid: error: the disk holding /dev/full is full ("), err
    assert err.count("\n") == 1


def test_check_works_on_a_read_only_store(data_dir, monkeypatch, capsys):
    _read_only(monkeypatch)
    assert main(["check", "--data-dir", str(data_dir)]) == 0
    assert ": ok (quick_check" in capsys.readouterr().out


def test_serve_on_a_read_only_store_in_one_line(data_dir, tmp_path):
    from tests.procs import Proc, free_port, serve_config

    hooked = (
        "import sqlite3, sys\n"
        "from homegrid.store import SQLiteStore\n"
        "SQLiteStore._connect = lambda self: sqlite3.connect(f'{self.path.resolve().as_uri()}?mode=ro', uri=True, "
        "isolation_level=None, check_same_thread=False)\n"
        "from homegrid.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--data-dir", str(data_dir),
                "--port", str(free_port())], code=hooked)
    try:
        assert hub.wait(60) == 1
    finally:
        hub.stop()
    assert hub.lines == [f"homegrid: error: cannot use {data_dir} (attempt to write a readonly database): the "
                         f"disk is read-only or the folder is not this user's; check 'ls -ld {data_dir}' and the "
                         "mount, or give another --data-dir"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_data_dir_without_write_permission_in_one_line(data_dir, tmp_path, capsys):
    os.chmod(data_dir, 0o500)
    try:
        assert main(_argv(WRITERS["simulate"], data_dir, tmp_path)) == 1
    finally:
        os.chmod(data_dir, 0o700)
    err = capsys.readouterr().err
    assert err.startswith(f"homegrid: error: cannot use {data_dir}"), err


def test_serve_starts_on_a_full_disk_with_a_warning_and_the_other_writers_do_not(data_dir, monkeypatch, caplog):
    from homegrid import cli

    def full(self, key, value):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(SQLiteStore, "set_meta", full)
    try:
        with caplog.at_level("WARNING"):
            cli._writer(data_dir, "serve")  # it keeps readings in memory until space comes back
        assert any("is full" in r.getMessage() and "keeps its readings in memory" in r.getMessage()
                   for r in caplog.records)
        cli._HELD.pop().release()
        with pytest.raises(sqlite3.OperationalError, match="full"):
            cli._writer(data_dir, "import")
    finally:
        while cli._HELD:
            cli._HELD.pop().release()
