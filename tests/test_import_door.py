"""Import and device input checked at the door (issue 10, findings 4 and 5).

Bad timestamps (2099, 0001/9999), absurd values (1e308), repeated timestamps, huge
fields and lines, strict JSON, and sparse rollups.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import main
from homegrid.config import Config, ConfigError, SiteConfig, load_config
from homegrid.devices import Device
from homegrid.energy.accounting import account
from homegrid.glossary import MAX_POWER_W
from homegrid.hub.poller import DevicePoller
from homegrid.hub.queries import Queries
from homegrid.hub.recorder import Recorder
from homegrid.hub.service import Hub, open_store
from homegrid.readings import Limits, Reading, ReadingFrame, to_ms
from homegrid.readings.csvfile import BadRow, ImportCounts, iter_csv, validate_csv
from homegrid.timezones import DAY_MS, MINUTE_MS

UTC_TZ = ZoneInfo("UTC")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)
    (tmp_path / "data").mkdir()  # a --data-dir must exist (or be asked for with --create)
    return tmp_path / "data"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def strict(text: str) -> object:
    """Parse JSON refusing NaN and Infinity, as every JSON parser but Python's does."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def rollup_rows(data_dir: Path, step: str = "minute") -> int:
    store = open_store(data_dir)
    try:
        return len(store.read_rollup(step, -(2**62), 2**62))
    finally:
        store.close()


# ----------------------------------------------------------------------------- times


def test_rows_in_2099_are_refused_fast_and_the_hub_still_takes_live_readings(data_dir: Path, tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    live = "".join(f"{iso(now - timedelta(minutes=30) + timedelta(seconds=5 * i))},1000,500\n" for i in range(60))
    future = "".join(f"2099-01-01T00:00:{5 * i:02d}Z,1000,500\n" for i in range(5))
    path = write(tmp_path, "future.csv", "time,home_power,grid_power\n" + live + future)

    assert main(["import", str(path), "--data-dir", str(data_dir)]) == 2  # abort: nothing imported
    err = capsys.readouterr().err
    assert f"{path}:62: field 'time': '2099-01-01T00:00:00Z' is more than a day ahead of the clock" in err
    assert "nothing was imported" in err
    assert open_store(data_dir).time_range() is None

    assert main(["import", str(path), "--data-dir", str(data_dir), "--on-error", "skip"]) == 0
    out = capsys.readouterr()
    assert "imported 60 readings" in out.out and "5 rows skipped" in out.out
    store = open_store(data_dir)
    assert store.time_range()[1] <= to_ms(now)
    count, items = store.quarantined()
    assert count == 5 and all("ahead of the clock" in q.reason for q in items)
    store.close()
    assert (data_dir / "homegrid.db").stat().st_size < 2_000_000
    assert rollup_rows(data_dir) < 60  # half an hour of minutes and their margin, not 73 years

    class Now:
        def __call__(self) -> datetime:
            return datetime.now(UTC)

    class Meter(Device):
        name = "meter"

        async def poll(self) -> Reading:
            return Reading(datetime.now(UTC), {"home_power": 1200.0, "grid_power": 1200.0})

    hub = Hub(load_config(None), data_dir, device=Meter(), clock=Now())
    assert asyncio.run(hub.poll_once())
    assert hub.flush() == 1
    assert hub.health.refused == 0
    hub.store.close()


def test_a_file_dated_0001_and_9999_is_refused_clearly_in_bounded_memory(tmp_path: Path) -> None:
    path = write(tmp_path, "ancient.csv", "time,home_power\n0001-01-01T00:00:00Z,1\n9999-12-31T23:59:59Z,2\n")
    with pytest.raises(BadRow, match=r"ancient.csv:2: field 'time': '0001-01-01T00:00:00Z' is before 1990-01-01"):
        list(iter_csv(path))
    tracemalloc.start()
    try:
        out = list(iter_csv(path, on_error="skip"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert sum(len(f) for f, _ in out) == 0
    problems = [p for _, ps in out for p in ps]
    assert [(p.line, p.field) for p in problems] == [(2, "time"), (3, "time")]
    assert "ahead of the clock" in problems[1].reason


def test_the_clock_and_the_first_plausible_date_bound_the_times(tmp_path: Path) -> None:
    now = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
    path = write(tmp_path, "edges.csv", "time,home_power\n"
                 "1989-12-31T23:59:59Z,1\n1990-01-01T00:00:00Z,2\n2025-06-02T00:00:00Z,3\n2025-06-02T00:00:00.001Z,4\n")
    problems = validate_csv(path, limits=Limits.now(now_ms=now))
    assert [p.line for p in problems] == [2, 5]
    assert problems.rows_ok == 2


# ----------------------------------------------------------------------------- values


def test_absurd_powers_and_counters_are_refused_at_the_door(data_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "huge.csv", "time,home_power,grid_power,grid_energy_imported\n"
                 "2025-06-01T00:00:00Z,1.7e308,5,\n"
                 "2025-06-01T00:00:05Z,5,-1000001,\n"
                 "2025-06-01T00:00:10Z,5,5,1e308\n"
                 "2025-06-01T00:00:15Z,5,-999999,876000000000\n")
    assert main(["import", str(path), "--data-dir", str(data_dir)]) == 2
    assert "huge.csv:2: field 'home_power': '1.7e308' is beyond the bound of a home" in capsys.readouterr().err
    assert main(["import", str(path), "--data-dir", str(data_dir), "--on-error", "skip"]) == 0
    capsys.readouterr()
    store = open_store(data_dir)
    raw = store.read_readings(0, 2**62)
    count, items = store.quarantined()
    store.close()
    assert raw.time_ms.tolist() == [to_ms(datetime(2025, 6, 1, 0, 0, 15, tzinfo=UTC))]
    assert count == 3 and {q.field for q in items} == {"home_power", "grid_power", "grid_energy_imported"}
    assert main(["report", "--from", "2025-06-01", "--to", "2025-06-01", "--json", "--data-dir", str(data_dir)]) == 0
    strict(capsys.readouterr().out)


def test_the_power_bound_is_a_setting(tmp_path: Path) -> None:
    config = tmp_path / "homegrid.toml"
    config.write_text("[site]\nmax_power_w = 20000\n")
    assert load_config(config).site.max_power_w == 20_000
    config.write_text("[site]\nmax_power_w = 1e300\n")
    with pytest.raises(ConfigError, match=r"site\.max_power_w"):
        load_config(config)
    path = write(tmp_path, "big.csv", "time,home_power\n2025-06-01T00:00:00Z,25000\n")
    assert next(iter(iter_csv(path)))[0].column("home_power").tolist() == [25000.0]
    with pytest.raises(BadRow, match="beyond the bound of a home, 20000 W"):
        list(iter_csv(path, limits=Limits(max_power_w=20_000)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the store holds absurd values: numpy overflows
def test_report_json_and_the_api_stay_strict_json_whatever_is_stored(data_dir: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    # values that got in before the door existed (or past it): the output must still be JSON
    store = open_store(data_dir)
    t0 = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
    t = np.arange(t0, t0 + 600_000, 5000)
    Recorder(store, ZoneInfo("America/New_York")).ingest(
        ReadingFrame(t, {"home_power": np.full(len(t), 1.7e308), "grid_power": np.full(len(t), 1.7e308)}))
    queries = Queries(store, ZoneInfo("America/New_York"))
    with TestClient(create_app(queries)) as client:
        reply = client.get("/api/v1/report", params={"from": "2025-05-31", "to": "2025-06-01"})
        assert reply.status_code == 200
        body = strict(reply.text)
        assert body["energy_wh"]["home"] is None  # an infinite sum is no value
        reply = client.get("/api/v1/energy", params={"from": "2025-05-31", "to": "2025-06-01", "step": "hour"})
        assert reply.status_code == 200
        home = strict(reply.text)["values"]["home"]
        assert home and all(v is None for v in home)  # an infinite sum is no value here either
    store.close()
    assert main(["report", "--from", "2025-05-31", "--to", "2025-06-01", "--json", "--data-dir", str(data_dir)]) == 0
    rep = strict(capsys.readouterr().out)
    assert rep["energy_wh"]["home"] is None
    assert main(["outages", "--from", "2025-05-31", "--to", "2025-06-01", "--json", "--data-dir", str(data_dir)]) == 0
    strict(capsys.readouterr().out)


# ----------------------------------------------------------------------------- devices


class Scripted(Device):
    name = "scripted"

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    async def poll(self) -> Reading:
        return Reading(datetime(2025, 6, 1, 12, tzinfo=UTC), dict(self.values))


def _poll(device: Device, max_power_w: float | None = None) -> tuple[list[Reading], list[dict]]:
    got: list[Reading] = []
    refused: list[dict] = []
    poller = DevicePoller(device, 5.0, lambda r, _s: got.append(r), lambda _t, _src, p: refused.append(p),
                          lambda: datetime(2025, 6, 1, 12, tzinfo=UTC))
    if max_power_w is not None:
        poller.max_power_w = max_power_w
    assert asyncio.run(poller.poll_once())
    return got, refused


def test_a_device_reading_of_1e308_w_is_quarantined_by_the_poller() -> None:
    got, refused = _poll(Scripted({"home_power": 1e308, "grid_power": 800.0, "grid_energy_imported": 1e300}))
    assert got[0].values == {"grid_power": 800.0}
    assert set(refused[0]) == {"home_power", "grid_energy_imported"}
    assert "beyond the bound of a home" in refused[0]["home_power"][1]


def test_the_hub_gives_its_pollers_the_configured_bound(tmp_path: Path) -> None:
    config = Config(site=SiteConfig(max_power_w=5000.0))
    hub = Hub(config, tmp_path, device=Scripted({"home_power": 6000.0, "grid_power": 800.0}),
              clock=lambda: datetime(2025, 6, 1, 12, tzinfo=UTC))
    assert [p.max_power_w for p in hub.pollers] == [5000.0]
    assert asyncio.run(hub.poll_once())
    hub.flush()
    assert list(hub.store.read_readings(0, 2**62).columns) == ["grid_power"]
    assert hub.store.quarantined()[1][0].field == "home_power"
    hub.store.close()
    assert DevicePoller.max_power_w == MAX_POWER_W


# ----------------------------------------------------------------------------- duplicates


def test_rows_of_one_time_that_disagree_are_refused_both(data_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "twice.csv", "time,home_power,grid_power\n"
                 "2025-06-01T00:00:00Z,100,50\n"
                 "2025-06-01T00:00:05Z,100,50\n"
                 "2025-06-01T02:00:05+02:00,999,50\n"  # the same instant as line 3, another value
                 "2025-06-01T00:00:10Z,100,50\n")
    assert main(["import", str(path), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert ("twice.csv:3: field 'time': '2025-06-01T00:00:05.000+00:00' has the same time (to the millisecond) as "
            "line 4, and the rows of this time disagree: home_power is 100.0 on line 3 and 999.0 on line 4") in err
    assert main(["import", str(path), "--data-dir", str(data_dir), "--on-error", "skip"]) == 0
    assert "imported 2 readings" in capsys.readouterr().out
    store = open_store(data_dir)
    assert store.read_readings(0, 2**62).column("home_power").tolist() == [100.0, 100.0]
    assert store.quarantined()[0] == 2
    store.close()


def test_rows_under_a_millisecond_apart_are_one_time(tmp_path: Path) -> None:
    path = write(tmp_path, "sub.csv", "time,home_power\n"
                 "2025-06-01T00:00:00.0001Z,100\n2025-06-01T00:00:00.0004Z,200\n"
                 "2025-06-01T00:00:01.0001Z,300\n2025-06-01T00:00:01.0003Z,300\n")
    counts = ImportCounts()
    out = list(iter_csv(path, on_error="skip", counts=counts))
    frame = ReadingFrame.concat(f for f, _ in out)
    assert frame.time_ms.tolist() == [to_ms(datetime(2025, 6, 1, 0, 0, 1, tzinfo=UTC))]
    assert counts.duplicates == 1
    assert [p.line for _, ps in out for p in ps] == [2, 3]


def test_a_row_stored_with_other_values_is_refused_and_an_identical_reimport_changes_nothing(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = "".join(f"2025-06-01T00:{m:02d}:00Z,{100 + m},{m}\n" for m in range(10))
    first = write(tmp_path, "first.csv", "time,home_power,grid_power\n" + rows)
    assert main(["import", str(first), "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    before = (data_dir / "homegrid.db").read_bytes()
    store = open_store(data_dir)
    raw0, minutes0 = store.read_readings(0, 2**62), store.read_rollup("minute", 0, 2**62)
    store.close()

    assert main(["import", str(first), "--data-dir", str(data_dir)]) == 0  # the same file again: a no-op
    assert "no new readings (0 rows skipped, 10 duplicate rows dropped)" in capsys.readouterr().out
    store = open_store(data_dir)
    raw1, minutes1 = store.read_readings(0, 2**62), store.read_rollup("minute", 0, 2**62)
    assert store.quarantined()[0] == 0
    store.close()
    assert np.array_equal(raw0.time_ms, raw1.time_ms) and np.array_equal(minutes0.start_ms, minutes1.start_ms)
    assert len(before) > 0

    other = write(tmp_path, "other.csv", "time,home_power,grid_power\n"
                  "2025-06-01T00:03:00Z,103,3\n"  # identical: dropped
                  "2025-06-01T00:04:00Z,555,4\n"  # disagrees with the store
                  "2025-06-01T00:10:00Z,110,10\n")  # new
    assert main(["import", str(other), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert ("other.csv:3: field 'time': '2025-06-01T00:04:00.000+00:00' is stored already (from before this import, "
            "or an earlier line of this file) with different values: home_power is 104.0 in the store and 555.0 here"
            ) in err
    assert main(["import", str(other), "--data-dir", str(data_dir), "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "imported 1 readings" in out and "1 rows skipped, 1 duplicate rows dropped" in out
    store = open_store(data_dir)
    raw = store.read_readings(0, 2**62)
    assert raw.column("home_power")[4] == 104.0 and len(raw) == 11
    store.close()


def test_duplicates_in_different_blocks_meet_through_the_store(data_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    rows = [f"2025-06-01T00:{m // 60:02d}:{m % 60:02d}Z,{m}" for m in range(3000)]
    rows.append("2025-06-01T00:00:07Z,7")  # agrees with line 9, far away
    rows.append("2025-06-01T00:00:08Z,9")  # disagrees with line 10
    path = write(tmp_path, "far.csv", "time,home_power\n" + "\n".join(rows) + "\n")
    store = open_store(data_dir)
    recorder = Recorder(store, UTC_TZ)
    counts = ImportCounts()
    problems: list = []

    def frames():
        for frame, bad in iter_csv(path, chunk_rows=500, on_error="skip", stored=store.readings_at,
                                   counts=counts):
            problems.extend(bad)
            yield frame

    recorder.ingest_bulk(frames())
    assert counts.duplicates == 1
    assert [p.line for p in problems] == [3003]
    assert store.read_readings(0, 2**62).column("home_power")[8] == 8.0
    store.close()


# ----------------------------------------------------------------------------- long fields and lines


def test_a_field_over_1_kb_is_an_error_quoting_80_characters(data_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    field = "7" * 5000
    path = write(tmp_path, "field.csv", "time,home_power\n2025-06-01T00:00:00Z,1\n"
                 f"2025-06-01T00:00:05Z,{field}\n2025-06-01T00:00:10Z,3\n")
    assert main(["import", str(path), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert f"field.csv:3: field 'home_power': '{'7' * 80}' is a field of 5,000 characters" in err
    assert "7" * 81 not in err
    assert main(["import", str(path), "--data-dir", str(data_dir), "--on-error", "skip"]) == 0
    out = capsys.readouterr()
    assert "imported 2 readings" in out.out and "7" * 81 not in out.err
    store = open_store(data_dir)
    assert all(len(q.value) <= 80 for q in store.quarantined()[1])
    store.close()


def test_a_long_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "line.csv"
    with open(path, "wb") as f:
        f.write(b"time,home_power,grid_power\n2025-06-01T00:00:00Z,1,1\n2025-06-01T00:00:05Z,")
        f.write(b"8," * 10_000_000)  # 20 MB, one line
        f.write(b"\n2025-06-01T00:00:10Z,3,3\n2025-06-01T00:00:15Z,4,")
        f.write(b"9" * 30_000_000)  # 30 MB, the last line, no line ending
    with pytest.raises(BadRow, match=r"line.csv:3: line is 20,000,021 bytes long; lines are at most 65,536"):
        list(iter_csv(path, chunk_rows=1000))
    tracemalloc.start()
    try:
        out = list(iter_csv(path, chunk_rows=1000, on_error="skip"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # neither line was held whole
    assert ReadingFrame.concat(f for f, _ in out).column("home_power").tolist() == [1.0, 3.0]
    problems = [p for _, ps in out for p in ps]
    assert [p.line for p in problems] == [3, 5]
    assert all(len(str(p)) < 300 for p in problems)


def test_a_huge_header_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"time," + b"x" * 5_000_000 + b"\n")
    with pytest.raises(BadRow, match="header line is longer than 65,536 bytes"):
        list(iter_csv(path))


# ----------------------------------------------------------------------------- rollups


def test_rollups_are_written_only_where_readings_are(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    recorder = Recorder(store, ZoneInfo("Europe/Berlin"))
    times = [datetime(1995, 3, 1, 12, tzinfo=UTC), datetime(2025, 3, 1, 12, tzinfo=UTC)]
    t = np.array([to_ms(x) + k * 5000 for x in times for k in range(3)], dtype=np.int64)
    frame = ReadingFrame(t, {"home_power": np.full(6, 1000.0), "home_energy_imported": np.arange(6.0) * 1.4})
    tracemalloc.start()
    try:
        recorder.ingest_bulk([frame])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # thirty years apart, yet only the minutes that hold readings are built
    minutes = store.read_rollup("minute", -(2**62), 2**62)
    assert 0 < len(minutes) < 40
    assert len(store.read_rollup("hour", -(2**62), 2**62)) <= 4
    _days, dates = store.read_days(-(2**62), 2**62)
    assert dates == ["1995-03-01", "2025-03-01"]
    # the counter's 30-year gap is not spread over the years: only the energy near the readings counts
    assert store.sum_rollup("day", -(2**62), 2**62)["home"] < 10
    store.close()


def test_a_live_store_then_a_far_reading_costs_minutes_not_years(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    recorder = Recorder(store, UTC_TZ)
    t0 = to_ms(datetime(2024, 1, 1, tzinfo=UTC))
    t = t0 + np.arange(0, 3_600_000, 5000)
    recorder.ingest(ReadingFrame(t, {"home_power": np.full(len(t), 500.0)}))
    n = len(store.read_rollup("minute", -(2**62), 2**62))
    later = t0 + 2 * 365 * DAY_MS
    recorder.ingest_bulk([ReadingFrame(np.array([later, later + 5000]), {"home_power": np.array([500.0, 500.0])})])
    assert len(store.read_rollup("minute", -(2**62), 2**62)) - n < 20
    store.close()


def test_sparse_rollups_account_exactly_as_every_minute_would(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    recorder = Recorder(store, UTC_TZ, max_gap_s=300)
    t0 = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
    rng = np.random.default_rng(7)
    # bursts of 5-s samples with gaps of 1 to 30 minutes, and a counter throughout
    t = np.sort(np.unique(np.concatenate([
        t0 + k * 3_600_000 + np.arange(0, int(rng.integers(60, 3_000)) * 1000, 5000) for k in range(8)])))
    power = rng.uniform(0, 5000, len(t))
    counter = 1e6 + np.cumsum(rng.uniform(0, 5, len(t)))
    frame = ReadingFrame(t, {"home_power": power, "grid_power": power - 500, "grid_energy_imported": counter})
    recorder.ingest_bulk([frame])
    stored = store.read_rollup("minute", -(2**62), 2**62)
    edges = np.arange(t0 - DAY_MS, t0 + 2 * DAY_MS + 1, MINUTE_MS)
    full = account(frame, edges, 300)
    busy = np.zeros(len(edges) - 1, dtype=bool)
    for name in ("home", "grid_import", "covered_s"):
        busy |= full.columns[name] != 0
    assert set(full.start_ms[busy].tolist()) <= set(stored.start_ms.tolist())
    at = np.searchsorted(full.start_ms, stored.start_ms)
    for name in ("home", "grid_import", "grid_export", "covered_s"):
        np.testing.assert_allclose(stored.columns[name], full.columns[name][at], rtol=1e-9, atol=1e-9)
    assert store.sum_rollup("day", -(2**62), 2**62)["home"] == pytest.approx(full.columns["home"].sum(), rel=1e-9)
    store.close()
    # without the counter, whose delta is spread between the bursts, the empty minutes between them are not
    # written: each stored minute is within reach of a sample
    power_only = open_store(tmp_path / "power")
    Recorder(power_only, UTC_TZ, max_gap_s=300).ingest_bulk([ReadingFrame(t, {"home_power": power})])
    starts = power_only.read_rollup("minute", -(2**62), 2**62).start_ms
    power_only.close()
    after = np.clip(np.searchsorted(t, starts), 0, len(t) - 1)
    nearest = np.minimum(np.abs(t[after] - starts), np.abs(t[np.maximum(after - 1, 0)] - starts))
    assert np.all(nearest <= recorder.margin_ms + MINUTE_MS)
    assert len(starts) < (t[-1] - t[0]) // MINUTE_MS


def test_a_counter_still_spreads_over_a_gap_the_hub_was_down_for(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    recorder = Recorder(store, UTC_TZ)
    t0 = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
    recorder.ingest(ReadingFrame(np.array([t0, t0 + 5000]), {"grid_energy_imported": np.array([1000.0, 1000.0])}))
    back = t0 + 3 * 3_600_000  # three hours down: 3 kWh counted meanwhile
    recorder.ingest(ReadingFrame(np.array([back, back + 5000]), {"grid_energy_imported": np.array([4000.0, 4000.0])}))
    minutes = store.read_rollup("minute", -(2**62), 2**62)
    assert len(minutes) >= 180
    assert minutes.columns["grid_import"].sum() == pytest.approx(3000.0)
    far = back + 40 * DAY_MS  # beyond the spread limit: a gap, not counted
    recorder.ingest(ReadingFrame(np.array([far]), {"grid_energy_imported": np.array([9000.0])}))
    assert store.sum_rollup("minute", -(2**62), 2**62)["grid_import"] == pytest.approx(3000.0)
    assert len(store.read_rollup("minute", -(2**62), 2**62)) < len(minutes) + 20
    store.close()


def test_a_tesla_history_dated_2099_is_refused(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = {"response": {"time_series": [
        {"timestamp": "2025-06-01T12:00:00-04:00", "solar_power": 100, "battery_power": 0, "grid_power": 50},
        {"timestamp": "2099-06-01T12:05:00-04:00", "solar_power": 100, "battery_power": 0, "grid_power": 50}]}}
    path = tmp_path / "history.json"
    path.write_text(json.dumps(doc))
    assert main(["import", str(path), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "response.time_series[1].timestamp: 2099-06-01T16:05:00+00:00 is more than a day ahead of the clock" in err
    assert open_store(data_dir).time_range() is None


def test_readings_at_finds_exactly_the_stored_times(tmp_path: Path) -> None:
    from homegrid.store.base import Store

    store = open_store(tmp_path)
    t0 = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
    t = t0 + np.arange(0, 2_000_000, 5000)
    store.write_readings(ReadingFrame(t, {"home_power": np.arange(len(t), dtype=float)}))
    ask = np.unique(np.concatenate([t[::7], t[::13] + 1, [t0 - DAY_MS, t0 + 30 * DAY_MS]]))
    got = store.readings_at(ask)
    assert got.time_ms.tolist() == t[::7].tolist()
    assert got.column("home_power").tolist() == list(range(0, len(t), 7))
    generic = Store.readings_at(store, ask)  # the default of other databases agrees
    assert generic.time_ms.tolist() == got.time_ms.tolist()
    assert len(store.readings_at(np.array([t0 - DAY_MS]))) == 0
    store.close()


def test_tesla_history_reimport_is_a_no_op_and_a_changed_value_is_refused_not_written_over(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    power = Path(__file__).parent / "fixtures" / "import" / "tesla_power_day_handwritten.json"
    args = ["--format", "tesla-history", "--data-dir", str(data_dir)]
    assert main(["import", str(power), *args]) == 0
    store = open_store(data_dir)
    before = store.read_readings(0, 2**62)
    store.close()
    capsys.readouterr()
    assert main(["import", str(power), *args]) == 0
    assert "no new readings" in capsys.readouterr().out
    doc = json.loads(power.read_text())
    doc["response"]["time_series"][1]["battery_power"] = 999.0  # the same time, another value
    changed = write(tmp_path, "changed.json", json.dumps(doc))
    assert main(["import", str(changed), *args]) == 2  # abort: nothing imported
    assert "stored already with different values" in capsys.readouterr().err
    assert main(["import", str(changed), *args, "--on-error", "skip"]) == 0
    store = open_store(data_dir)
    after = store.read_readings(0, 2**62)
    count, items = store.quarantined(10)
    store.close()
    assert np.array_equal(after.time_ms, before.time_ms)
    assert np.array_equal(after.column("battery_power"), before.column("battery_power"), equal_nan=True)
    assert count == 1 and items[0].field == "battery_power" and items[0].value == "999"
    assert items[0].time_ms == int(before.time_ms[1])
