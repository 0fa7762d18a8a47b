"""kill -9 mid-ingest: the store stays intact and every acknowledged reading is there."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np

from homegrid.store import SQLiteStore

WRITER = textwrap.dedent(
    """
    import sys, zoneinfo
    import numpy as np
    from homegrid.hub.recorder import Recorder
    from homegrid.readings import ReadingFrame
    from homegrid.store import SQLiteStore

    store = SQLiteStore(sys.argv[1], synchronous="FULL")
    rec = Recorder(store, zoneinfo.ZoneInfo("Europe/Berlin"))
    t = 1_750_000_000_000
    batch = 0
    while True:
        n = 50 if batch % 7 else 5000  # mostly live-sized flushes, now and then a big one
        times = t + np.arange(n, dtype=np.int64) * 1000
        p = 1000.0 + (times % 600_000) / 1000.0
        rec.ingest(ReadingFrame(times, {"home_power": p, "grid_power": p,
                                        "home_energy_imported": (times - 1_750_000_000_000) / 3600.0}))
        print(int(times[-1]), flush=True)  # acknowledged: committed
        t = int(times[-1]) + 1000
        batch += 1
    """
)


def test_sigkill_mid_ingest_keeps_store_intact_and_acknowledged_data(tmp_path):
    db = tmp_path / "homegrid.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acknowledged = []
    try:
        for line in proc.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) >= 40:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    store = SQLiteStore(db)
    raw = store.read_readings(0, 2**62)
    assert raw.time_ms[-1] >= acknowledged[-1]
    # no acknowledged reading is missing: the series is gap-free from the first to the last acknowledged one
    upto = raw.time_ms[raw.time_ms <= acknowledged[-1]]
    assert len(upto) == (acknowledged[-1] - upto[0]) // 1000 + 1
    assert np.all(np.diff(upto) == 1000)
    # rollups were committed with their readings
    minutes = store.read_rollup("minute", 0, 2**62)
    assert minutes.start_ms[-1] >= (acknowledged[-1] // 60_000) * 60_000
    store.close()
