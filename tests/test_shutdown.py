"""``homegrid serve`` stopped by SIGTERM (systemd, docker stop): buffered readings are written, or, when the
store refuses them (a full disk), one ERROR line says how many were lost and why."""

from __future__ import annotations

import json
import signal
import textwrap
import urllib.request

from homegrid.store import SQLiteStore
from tests.procs import Proc, free_port, serve_config
from tests.waiting import wait_for


def _live(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/live", timeout=5) as r:
        return json.loads(r.read())


def test_sigterm_stops_the_hub_cleanly_after_writing_what_it_read(tmp_path):
    data, port = tmp_path / "data", free_port()
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--create", "--data-dir", str(data),
                "--port", str(port)])
    try:
        hub.wait_for("dashboard on http://")
        wait_for(lambda: _live(port)["health"]["device"]["polls"] >= 5, timeout=60, interval=0.2, retry_on=(OSError,),
                 what=lambda: f"five polls; the hub said:\n{hub.stderr}")
        hub.p.send_signal(signal.SIGTERM)
        assert hub.wait(30) == 0, hub.stderr  # not killed by the signal uvicorn re-raises
    finally:
        hub.stop()
    assert "Traceback" not in hub.stderr and " ERROR " not in hub.stderr, hub.stderr
    store = SQLiteStore(data / "homegrid.db")
    try:
        assert store.get_meta("outages_checked_ms") is not None
        assert store.time_range() is not None
    finally:
        store.close()


FULL_AFTER_START = textwrap.dedent(
    """
    import sys
    from homegrid.hub.service import Hub

    prepare = Hub.prepare

    def prepare_then_fill_the_disk(self):
        written = prepare(self)
        pages = self.store._db.execute("PRAGMA page_count").fetchone()[0]
        self.store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
        return written

    Hub.prepare = prepare_then_fill_the_disk
    from homegrid.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sigterm_while_the_disk_is_full_logs_the_readings_lost(tmp_path):
    data, port = tmp_path / "data", free_port()
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--create", "--data-dir", str(data),
                "--port", str(port)],
               code=FULL_AFTER_START)
    try:
        hub.wait_for("store write failed (database or disk is full)")
        kept = int(hub.wait_for("readings kept for the next try").split("; ")[-1].split()[0])
        assert kept >= 1
        hub.p.send_signal(signal.SIGTERM)
        assert hub.wait(30) == 0, hub.stderr
    finally:
        hub.stop()
    [lost] = [line for line in hub.lines if "now lost" in line]
    assert " ERROR homegrid.hub.service: stopping with " in lost
    assert lost.endswith("readings not written, now lost: " + lost.split("now lost: ")[1])
    assert "database or disk is full" in lost
    assert int(lost.split("stopping with ")[1].split()[0]) >= kept
    assert "Traceback" not in hub.stderr
