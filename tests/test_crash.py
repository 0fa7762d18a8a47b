"""kill -9 mid-ingest: the store stays intact and every acknowledged reading is there; a kill between the
readings' commit and outage detection leaves no reading without its events after the next start."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import zoneinfo
from datetime import UTC, datetime, timedelta

import numpy as np

from homegrid.readings import to_ms
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


def _kill_after(proc: subprocess.Popen[str], acknowledgements: int) -> list[int]:
    """The times a writer printed as committed, read until it has printed this many; then kill -9 it."""
    acknowledged: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) >= acknowledgements:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return acknowledged


def test_sigkill_mid_ingest_keeps_store_intact_and_acknowledged_data(tmp_path):
    db = tmp_path / "homegrid.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acknowledged = _kill_after(proc, 40)
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


# ---------------------------------------------------------------- a kill between commit and outage detection

HUB = textwrap.dedent(
    """
    import asyncio, os, sys
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta
    from homegrid.config import Config
    from homegrid.devices import Device
    from homegrid.hub.outages import OutageTracker
    from homegrid.hub.service import Hub
    from homegrid.readings import Reading

    T0 = datetime(2025, 6, 1, 16, tzinfo=UTC)
    now = [T0]
    clock = lambda: now[0]


    class Gateway(Device):
        name = "gateway"
        status = 1.0

        async def poll(self):
            down = self.status != 1.0
            return Reading(clock(), {"grid_status": self.status, "home_power": 1500.0, "solar_power": 0.0,
                                     "battery_power": 1500.0 if down else 0.0,
                                     "grid_power": 0.0 if down else 1500.0, "battery_soc": 80.0})


    def die(*args, **kwargs):
        os._exit(137)  # as kill -9: no finally, no atexit, nothing flushed


    data_dir, case = sys.argv[1], sys.argv[2]
    if case == "backfill":  # the first start's history is committed, then the process dies
        config = Config()
        config = config.replace(server=config.server.replace(backfill_days=2.0),
                                virtual=config.virtual.replace(outages_per_year=2000.0))
        hub = Hub(config, data_dir, clock=clock)
        if sys.argv[3] == "kill":
            OutageTracker.rebuild = die
        hub.prepare()
    else:  # live: the batch that holds an outage is committed, then the process dies
        gateway = Gateway()
        hub = Hub(Config(), data_dir, devices=[(gateway, 5.0)], clock=clock)
        hub.prepare()
        for i in range(40):
            now[0] += timedelta(seconds=5)
            gateway.status = 2.0 if 12 <= i < (30 if case == "live" else 40) else 1.0  # 90 s islanded, or on
            asyncio.run(hub.poll_once())
            if i == 11:
                hub._check_outages = die
            if i < 11 or i == 39:
                hub.flush()  # i == 39: readings 11..39 in one batch, then detection would run
    hub.store.close()
    print("not killed", flush=True)
    """
)


def _events(data_dir, clock_ms: int) -> list[tuple[int, int | None]]:
    from homegrid.hub.outages import OutageTracker

    store = SQLiteStore(data_dir / "homegrid.db")
    try:
        events = OutageTracker(store, zoneinfo.ZoneInfo("UTC"), 30_000, 0).report(0, clock_ms)["events"]
    finally:
        store.close()
    return [(e["start_ms"], e["end_ms"]) for e in events]


def _run_hub(data_dir, *case: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HUB, str(data_dir), *case], capture_output=True, text=True,
                          timeout=120)


def test_kill_between_commit_and_detection_live_then_restart_detects_the_outage(tmp_path):
    from homegrid.config import Config
    from homegrid.hub.service import Hub

    killed = _run_hub(tmp_path, "live")
    assert killed.returncode == 137, killed.stderr
    t0 = 1_748_793_600_000  # 2025-06-01 16:00 UTC
    assert _events(tmp_path, 2**62) == [], "the kill came before detection"

    hub = Hub(Config(), tmp_path, clock=lambda: datetime(2025, 6, 1, 16, 4, tzinfo=UTC),
              devices=[(_Idle(), 5.0)])
    hub.prepare()
    hub.store.close()
    [(start, end)] = _events(tmp_path, 2**62)
    assert t0 + 60_000 < start <= t0 + 65_000  # the first islanded reading (poll 12)
    assert t0 + 150_000 <= end <= t0 + 155_000  # back at poll 30


def test_kill_during_an_undetected_outage_then_restart_with_the_grid_back_ends_it(tmp_path):
    from tests.test_outage_tracking import Clock, Gateway, Heard, _hub

    assert _run_hub(tmp_path, "live-open").returncode == 137
    clock, heard = Clock(), Heard()
    clock.now += timedelta(minutes=4)
    hub = _hub(tmp_path, clock, Gateway(clock), heard)  # the grid is back
    hub.prepare()
    [(start, end)] = _events(tmp_path, 2**62)
    assert end is None  # still going at the newest reading: only new readings can say it is over
    for _ in range(2):
        clock.now += timedelta(seconds=5)
        asyncio.run(hub.poll_once())
        hub._outages_checked = 0.0
        hub.flush()
    hub.store.close()
    [(start_again, end)] = _events(tmp_path, 2**62)
    assert start_again == start and end is not None and end <= to_ms(clock.now)
    assert [k for k, _ in heard.events] == ["outage_ended"]


def test_kill_after_the_first_starts_history_then_restart_has_every_outage(tmp_path):
    reference = _run_hub(tmp_path / "whole", "backfill", "whole")
    assert reference.returncode == 0, reference.stderr
    expected = _events(tmp_path / "whole", 2**62)
    assert len(expected) >= 3  # 2000 a year: a handful in two days

    killed = _run_hub(tmp_path / "killed", "backfill", "kill")
    assert killed.returncode == 137, killed.stderr
    assert _events(tmp_path / "killed", 2**62) == []
    restarted = _run_hub(tmp_path / "killed", "backfill", "whole")  # the second start: no backfill to do
    assert restarted.returncode == 0, restarted.stderr
    assert _events(tmp_path / "killed", 2**62) == expected


class _Idle:
    """A device the restarted hub is built with but never polls."""

    name = "idle"

    async def poll(self):  # pragma: no cover - never polled
        raise AssertionError

    async def close(self) -> None:  # pragma: no cover
        pass


# ---------------------------------------------------------------- sealing (issue 15)

SEALING_WRITER = textwrap.dedent(
    """
    import sys, zoneinfo
    import numpy as np
    from homegrid.energy.minutes import MinuteAccounting
    from homegrid.hub.recorder import Recorder
    from homegrid.readings import ReadingFrame
    from homegrid.store import SQLiteStore

    store = SQLiteStore(sys.argv[1], synchronous="FULL", minutes=MinuteAccounting(300.0))
    rec = Recorder(store, zoneinfo.ZoneInfo("Europe/Berlin"))
    t = 1_750_000_000_000
    while True:
        times = t + np.arange(7200, dtype=np.int64) * 5000  # ten hours at 5 s a batch
        p = 1000.0 + (times % 600_000) / 1000.0
        rec.ingest(ReadingFrame(times, {"home_power": p, "grid_power": p,
                                        "home_energy_imported": (times - 1_750_000_000_000) / 3600.0}))
        rec.seal(int(times[-1]))  # the data's clock: a day is sealed two hours after it ends
        print(int(times[-1]), flush=True)  # acknowledged: committed
        t = int(times[-1]) + 5000
    """
)


def test_sigkill_while_writing_and_sealing_keeps_every_acknowledged_reading(tmp_path):
    db = tmp_path / "homegrid.db"
    proc = subprocess.Popen([sys.executable, "-c", SEALING_WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acknowledged = _kill_after(proc, 12)  # five days: several sealed, the kill lands in a write or a seal
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM raw_block").fetchone()[0] >= 3
    con.close()

    store = SQLiteStore(db)
    raw = store.read_readings(0, 2**62)
    upto = raw.time_ms[raw.time_ms <= acknowledged[-1]]
    assert upto[0] == 1_750_000_000_000
    assert np.all(np.diff(upto) == 5000)  # gap-free across sealed days and the write-ahead table
    assert np.array_equal(raw.columns["home_power"], 1000.0 + (raw.time_ms % 600_000) / 1000.0)
    sealed = store.sealed_before()
    assert sealed is not None and not store._db.execute("SELECT 1 FROM readings WHERE ts < ?", (sealed,)).fetchone()
    minutes = store.read_rollup("minute", 0, 2**62)  # kept as blocks: 5-second readings are not repeated by them
    assert minutes.start_ms[-1] >= (acknowledged[-1] // 60_000) * 60_000 - 60_000
    assert np.all(np.diff(minutes.start_ms) == 60_000)
    store.close()


SEALER = textwrap.dedent(
    """
    import sys
    from homegrid.energy.minutes import MinuteAccounting
    from homegrid.store import SQLiteStore

    store = SQLiteStore(sys.argv[1], synchronous="FULL", minutes=MinuteAccounting(300.0))
    print("sealing", flush=True)
    day = 86_400_000
    for cut in range(1_750_032_000_000 // day * day + day, 1_750_032_000_000 + 14 * day, day):
        store.seal(cut)
        print(cut, flush=True)
    """
)


def test_sigkill_mid_seal_leaves_every_day_sealed_or_not_and_the_same_answers(tmp_path):
    import shutil
    import time

    from homegrid.energy.minutes import MinuteAccounting
    from homegrid.hub.recorder import Recorder
    from homegrid.readings import ReadingFrame

    source = tmp_path / "source.db"
    store = SQLiteStore(source, synchronous="OFF")
    t = 1_750_032_000_000 + np.arange(12 * 1440, dtype=np.int64) * 60_000
    p = 500.0 + (t % 3_600_000) / 7200.0
    Recorder(store, zoneinfo.ZoneInfo("Europe/Berlin")).ingest_bulk(
        [ReadingFrame(t, {"home_power": p, "grid_power": p - 100.0})])
    raw, minutes = store.read_readings(0, 2**62), store.read_rollup("minute", 0, 2**62)
    store.close()
    partial = []
    for days in (0, 3, 7):
        db = tmp_path / f"kill{days}.db"
        shutil.copy(source, db)
        proc = subprocess.Popen([sys.executable, "-c", SEALER, str(db)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "sealing"
        for _ in range(days):
            proc.stdout.readline()
        time.sleep(0.004)  # into the next day's transaction, or between two
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        partial.append(con.execute("SELECT COUNT(*) FROM raw_block").fetchone()[0])
        con.close()
        after = SQLiteStore(db, minutes=MinuteAccounting(300.0))
        got = after.read_readings(0, 2**62)
        assert np.array_equal(got.time_ms, raw.time_ms)
        for name in raw.columns:
            assert np.array_equal(got.columns[name], raw.columns[name])
        again = after.read_rollup("minute", 0, 2**62)
        assert np.array_equal(again.start_ms, minutes.start_ms)
        np.testing.assert_allclose(again.columns["home"], minutes.columns["home"], rtol=1e-12)
        after.seal(2**62)  # a later seal finishes the job
        assert after._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 0
        assert np.array_equal(after.read_readings(0, 2**62).time_ms, raw.time_ms)
        after.close()
    print("days sealed when killed:", partial)
    assert any(0 < n < 12 for n in partial)  # at least one kill landed between two days' transactions
