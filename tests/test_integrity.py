"""A damaged store: found at start (PRAGMA quick_check) and by ``homegrid check``, with the recovery steps,
exit code 1 and no traceback; a file that is not a database at all is handled the same way."""

from __future__ import annotations

import random

import pytest

from homegrid.cli import main
from tests.procs import Proc, free_port, serve_config

PAGE = 4096


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory):
    """Five days of the virtual home, checkpointed into the main file."""
    data = tmp_path_factory.mktemp("sound") / "data"
    assert main(["simulate", "--start", "2025-06-01", "--days", "5", "--create", "--data-dir", str(data)]) == 0
    return (data / "homegrid.db").read_bytes()


def _damaged(tmp_path, sound: bytes) -> tuple:
    """A copy of a real store with pages in its middle overwritten by garbage."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    pages = len(sound) // PAGE
    garbage = random.Random(7).randbytes(PAGE * (pages // 10))
    start = PAGE * (pages // 2)
    (data / "homegrid.db").write_bytes(sound[:start] + garbage + sound[start + len(garbage):])
    return data


def _garbage(tmp_path) -> tuple:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "homegrid.db").write_bytes(random.Random(8).randbytes(64 * 1024))
    return data


def test_check_says_ok_for_a_sound_store(tmp_path, sound_store, capsys):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "homegrid.db").write_bytes(sound_store)
    assert main(["check", "--data-dir", str(data)]) == 0
    assert "homegrid.db: ok (quick_check" in capsys.readouterr().out
    assert main(["check", "--full", "--data-dir", str(data)]) == 0
    assert "homegrid.db: ok (integrity_check" in capsys.readouterr().out


@pytest.mark.parametrize("make", [_damaged, _garbage], ids=["pages-overwritten", "not-a-database"])
def test_check_names_the_damage_and_the_recovery_steps(tmp_path, sound_store, capsys, make):
    data = make(tmp_path, sound_store) if make is _damaged else make(tmp_path)
    for full in ([], ["--full"]):
        assert main(["check", *full, "--data-dir", str(data)]) == 1
        out = capsys.readouterr().out
        assert f"{data / 'homegrid.db'}: damaged" in out
        assert "malformed" in out or "not a database" in out or "btree" in out.lower() or "page" in out.lower()
        assert '.recover" | sqlite3' in out and "restore the data dir from a backup" in out


@pytest.mark.parametrize("make", [_damaged, _garbage], ids=["pages-overwritten", "not-a-database"])
def test_serve_refuses_a_damaged_store_with_the_steps_and_no_traceback(tmp_path, sound_store, make):
    data = make(tmp_path, sound_store) if make is _damaged else make(tmp_path)
    before = (data / "homegrid.db").read_bytes()
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--create", "--data-dir", str(data),
                "--port", str(free_port())])
    try:
        assert hub.wait(60) == 1
    finally:
        hub.stop()
    assert hub.lines[0].startswith(f"homegrid: error: the store {data / 'homegrid.db'} is damaged: ")
    assert "To recover:" in hub.stderr and '.recover" | sqlite3' in hub.stderr
    assert "Traceback" not in hub.stderr
    assert (data / "homegrid.db").read_bytes() == before  # the check changes nothing


@pytest.mark.parametrize("make", [_damaged, _garbage], ids=["pages-overwritten", "not-a-database"])
def test_writing_commands_refuse_a_damaged_store(tmp_path, sound_store, capsys, make):
    data = make(tmp_path, sound_store) if make is _damaged else make(tmp_path)
    csv = tmp_path / "one.csv"
    csv.write_text("time,home_power\n2025-07-01T00:00:00+00:00,1000\n")
    for args in (["simulate", "--start", "2025-07-01", "--days", "1"], ["import", str(csv)],
                 ["quarantine-future"]):
        assert main([*args, "--data-dir", str(data)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"homegrid: error: the store {data / 'homegrid.db'} is damaged: "), args
        assert "To recover:" in err


def test_reading_commands_on_a_file_that_is_not_a_database_say_so_in_one_line(tmp_path, capsys):
    data = _garbage(tmp_path)
    for args in (["report", "--from", "2025-06-01", "--to", "2025-06-02"], ["outages"],
                 ["export", "--from", "2025-06-01", "--to", "2025-06-02"]):
        assert main([*args, "--data-dir", str(data)]) == 1
        err = capsys.readouterr().err
        assert err == (f"homegrid: error: the store in {data} is damaged (file is not a database): "
                       "run 'homegrid check' for the recovery steps\n"), args
