"""The command line: simulate, report, export and import, end to end on a temporary data dir."""

import json

import numpy as np
import pytest

from homegrid.cli import main
from homegrid.hub.service import open_store


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)
    (tmp_path / "data").mkdir()  # a --data-dir must exist (or be asked for with --create)
    return tmp_path / "data"


def test_simulate_then_report_json(data_dir, capsys):
    assert main(["simulate", "--start", "2025-06-01", "--days", "3", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert main(["report", "--from", "2025-06-01", "--to", "2025-06-03", "--json", "--data-dir", str(data_dir)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["days_with_data"] == 3
    e = rep["energy_wh"]
    assert e["solar"] > 0 and e["home"] > 0
    assert abs(e["unaccounted"]) < 0.001 * e["home"]
    flows = rep["flows_wh"]
    assert sum(flows[k] for k in ("solar_to_home", "battery_to_home", "grid_to_home")) == pytest.approx(
        e["home"], rel=1e-3
    )
    assert 0 <= rep["self_powered_percent"] <= 100


def test_export_then_import_round_trips(data_dir, tmp_path, capsys):
    main(["simulate", "--start", "2025-06-01", "--days", "1", "--data-dir", str(data_dir)])
    out = tmp_path / "export.csv"
    assert main(["export", "--from", "2025-06-01", "--to", "2025-06-01", "--output", str(out),
                 "--data-dir", str(data_dir)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[0] == "time" and "grid_status" in header
    other = tmp_path / "other"
    assert main(["import", str(out), "--create", "--data-dir", str(other)]) == 0
    capsys.readouterr()
    a = open_store(data_dir).read_readings(0, 2**62)
    b = open_store(other).read_readings(0, 2**62)
    a_day = a.time_ms[(a.time_ms >= b.time_ms[0]) & (a.time_ms <= b.time_ms[-1])]
    assert np.array_equal(a_day, b.time_ms)
    np.testing.assert_allclose(b.columns["home_power"], a.columns["home_power"][np.isin(a.time_ms, b.time_ms)],
                               rtol=1e-6)


def test_half_bad_file_imports_nothing_by_default_or_the_good_rows_on_request(data_dir, tmp_path, capsys):
    f = tmp_path / "half.csv"
    f.write_text(
        "time,home_power,grid_power\n"
        "2025-06-01T00:00:00+00:00,1000,1000\n"
        "2025-06-01T00:01:00+00:00,abc,1000\n"
        "2025-06-01T00:02:00+00:00,1000,1000\n"
    )
    assert main(["import", str(f), "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "half.csv" in err and ":3" in err and "home_power" in err
    assert len(open_store(data_dir).read_readings(0, 2**62)) == 0
    assert main(["import", str(f), "--on-error", "skip", "--data-dir", str(data_dir)]) == 0
    store = open_store(data_dir)
    assert len(store.read_readings(0, 2**62)) == 2
    assert store.quarantined()[0] == 1


def test_bad_config_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text("[virtual]\nbattery_kwh = -3\n")
    assert main(["report", "--from", "2025-01-01", "--to", "2025-01-02", "--config", str(cfg),
                 "--data-dir", str(tmp_path)]) == 2
    assert "virtual.battery_kwh" in capsys.readouterr().err
    cfg.write_text("[site]\ntimezone = 'Mars/Olympus'\n")
    assert main(["report", "--from", "2025-01-01", "--to", "2025-01-02", "--config", str(cfg)]) == 2
    assert "site.timezone" in capsys.readouterr().err
    cfg.write_text("[site]\nlatitud = 3\n")
    assert main(["report", "--from", "2025-01-01", "--to", "2025-01-02", "--config", str(cfg)]) == 2
    assert "site.latitud" in capsys.readouterr().err


def test_data_dir_from_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOMEGRID_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["report", "--from", "2025-01-01", "--to", "2025-01-01"]) == 0
    assert (tmp_path / "envdata" / "homegrid.db").exists()


def test_import_tesla_history_energy_counters_and_power(data_dir, tmp_path, capsys):
    from pathlib import Path

    from .conftest import SHARED_DATA

    energy = SHARED_DATA / "tesla" / "home-assistant" / "tesla_fleet" / "energy_history_overnight.json"
    power = Path(__file__).parent / "fixtures" / "import" / "tesla_power_day_handwritten.json"
    cfg = tmp_path / "homegrid.toml"
    cfg.write_text('[site]\ntimezone = "Europe/London"\n')
    assert main(["import", str(energy), "--config", str(cfg), "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    assert main(["report", "--from", "2026-09-12", "--to", "2026-09-12", "--json", "--config", str(cfg),
                 "--data-dir", str(data_dir)]) == 0
    rep = json.loads(capsys.readouterr().out)
    doc = json.loads(energy.read_text())["response"]["time_series"]
    assert rep["energy_wh"]["grid_import"] == pytest.approx(sum(e["grid_energy_imported"] for e in doc))
    assert main(["import", str(power), "--format", "tesla-history", "--create", "--data-dir", str(tmp_path / "p")]) == 0
    assert len(open_store(tmp_path / "p").read_readings(0, 2**62)) > 0


def test_simulate_stops_at_now_and_refuses_a_future_start(data_dir, capsys):
    from datetime import UTC, datetime, timedelta

    from homegrid.readings import to_ms

    today = datetime.now(UTC).date()
    assert main(["simulate", "--start", (today - timedelta(days=1)).isoformat(), "--days", "5",
                 "--data-dir", str(data_dir)]) == 0
    assert "no readings from the future" in capsys.readouterr().err
    newest = open_store(data_dir).time_range()[1]
    assert newest <= to_ms(datetime.now(UTC))
    assert main(["simulate", "--start", (today + timedelta(days=2)).isoformat(), "--days", "1",
                 "--data-dir", str(data_dir)]) == 2
    assert "in the future" in capsys.readouterr().err


def test_simulate_detects_outages_from_memory_as_from_the_store(data_dir, tmp_path, monkeypatch, capsys):
    """A simulation into an empty span gives detection its grid columns in memory (``HeldReadings``); past
    ``_HELD_MAX_ROWS`` rows it reads them back from the store. Both store the same events."""
    import homegrid.cli as cli
    from homegrid.hub.outages import OutageTracker

    held_seen: list[object] = []
    real = OutageTracker.rebuild

    def spy(self, start_ms, end_ms, held=None):
        held_seen.append(held)
        return real(self, start_ms, end_ms, held)

    monkeypatch.setattr(OutageTracker, "rebuild", spy)
    stored = []
    for cap, where in ((cli._HELD_MAX_ROWS, data_dir), (1_000, tmp_path / "read-back")):
        monkeypatch.setattr(cli, "_HELD_MAX_ROWS", cap)
        assert main(["simulate", "--start", "2025-06-01", "--days", "21", "--create", "--data-dir", str(where)]) == 0
        store = open_store(where)
        stored.append((store.read_outages(0, 2**62), store.read_disturbances(0, 2**62)))
        store.close()
    capsys.readouterr()
    assert held_seen[0] is not None and held_seen[1] is None
    assert stored[0][0], "three weeks of the virtual home have interruptions"
    assert stored[0] == stored[1]
