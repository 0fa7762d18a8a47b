"""Issue 11's paper cuts: pruned exports, a missing --data-dir, a busy port, exit codes in the README, progress
bars, /docs offline, the CSV's charging-state words."""

from __future__ import annotations

import csv
import io
import re
import socket
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import EXIT_CODES, EXIT_LISTEN, EXIT_PRUNED, main
from homegrid.glossary import EvChargingState
from homegrid.hub.queries import Queries
from homegrid.hub.service import open_store
from homegrid.progress import progress
from homegrid.readings import ReadingFrame
from homegrid.readings.csvfile import read_csv, write_csv
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK
from .procs import Proc, free_port, serve_config
from .waiting import wait_for

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)
    return tmp_path


# -- the data dir ---------------------------------------------------------------------------------------------


def test_a_missing_data_dir_is_refused_unless_asked_to_create_it(env, capsys):
    typo = env / "homegird"
    assert main(["report", "--from", "2025-06-01", "--to", "2025-06-01", "--data-dir", str(typo)]) == 2
    assert f"--data-dir {typo} does not exist (mistyped?)" in capsys.readouterr().err
    assert main(["simulate", "--start", "2025-06-01", "--days", "0.1", "--data-dir", str(typo)]) == 2
    assert "give --create to make a new, empty one there" in capsys.readouterr().err
    assert not typo.exists()  # nothing was made
    assert main(["simulate", "--start", "2025-06-01", "--days", "0.1", "--create", "--data-dir", str(typo)]) == 0
    assert (typo / "homegrid.db").exists()
    assert main(["report", "--from", "2025-06-01", "--to", "2025-06-01", "--data-dir", str(typo)]) == 0


def test_the_default_data_dir_is_made_as_before(env, capsys):
    """The README's first run gives no --data-dir: the default one is made without asking."""
    assert main(["simulate", "--start", "2025-06-01", "--days", "0.1"]) == 0
    assert (env / "xdg-data" / "homegrid" / "homegrid.db").exists()


def test_serve_makes_the_default_data_dir_on_the_first_run(tmp_path, monkeypatch):
    """The README's first-run command: no --data-dir, nothing made yet."""
    import stat

    env = {"XDG_DATA_HOME": str(tmp_path / "xdg-data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--port", str(free_port())], env=env)
    try:
        hub.wait_for("dashboard on http://")
    finally:
        hub.stop()
    data = tmp_path / "xdg-data" / "homegrid"
    assert (data / "homegrid.db").exists() and stat.S_IMODE(data.stat().st_mode) == 0o700


# -- export of pruned days ------------------------------------------------------------------------------------


@pytest.fixture
def pruned(env, capsys):
    """Three days of the virtual home whose first day and a bit lost their raw readings to retention."""
    data = env / "data"
    assert main(["simulate", "--start", "2025-06-01", "--days", "3", "--create", "--data-dir", str(data)]) == 0
    store = open_store(data)
    cut, _ = local_day_bounds(date(2025, 6, 3), NEW_YORK)
    assert store.prune_raw(cut) > 0
    store.close()
    capsys.readouterr()
    return data


def test_export_of_pruned_days_says_so_and_offers_the_rollups(pruned, capsys):
    code = main(["export", "--from", "2025-06-01", "--to", "2025-06-01", "--data-dir", str(pruned)])
    out, err = capsys.readouterr()
    assert code == EXIT_PRUNED == 4
    assert out == ""
    assert "nothing exported: the raw readings of these days were pruned (now kept forever" in err
    assert "rollups hold them from 2025-06-01T00:00-04:00: give --resolution minute or --resolution hour" in err
    # a span that reaches the raw readings: they are written, with a warning about the rest
    assert main(["export", "--from", "2025-06-01", "--to", "2025-06-03", "--data-dir", str(pruned)]) == 0
    out, err = capsys.readouterr()
    assert "warning: exporting the raw readings from 2025-06-02T23:59" in err
    assert out.startswith("time,") and out.count("\n") > 1440


@pytest.mark.parametrize(("resolution", "rows"), [("hour", 24), ("minute", 1440)])
def test_export_rollups_match_the_report(pruned, capsys, resolution, rows):
    assert main(["export", "--from", "2025-06-01", "--to", "2025-06-01", "--resolution", resolution,
                 "--data-dir", str(pruned)]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == rows
    assert table[0]["time"] == "2025-06-01T00:00:00-04:00"
    assert main(["report", "--from", "2025-06-01", "--to", "2025-06-01", "--json", "--data-dir", str(pruned)]) == 0
    import json

    rep = json.loads(capsys.readouterr().out)
    for key in ("home", "solar", "grid_import", "ev"):
        assert sum(float(r[f"{key}_wh"]) for r in table) == pytest.approx(rep["energy_wh"][key], abs=0.01)
    car = sum(float(r[f"ev_from_{s}_wh"]) for r in table for s in ("solar", "battery", "grid", "unknown"))
    assert car == pytest.approx(rep["energy_wh"]["ev"], abs=0.01)


@pytest.mark.parametrize(("resolution", "rows"), [("hour", 24), ("minute", 1440)])
def test_export_rollups_write_each_bin_once_across_chunks(pruned, capsys, monkeypatch, resolution, rows):
    """Chunks that end inside a bin (series gives a span's first bin whole) do not write that bin twice."""
    import homegrid.hub.export as export

    monkeypatch.setattr(export, "CHUNK_MS", {"hour": 90 * 60_000, "minute": 90_000})
    assert main(["export", "--from", "2025-06-01", "--to", "2025-06-01", "--resolution", resolution,
                 "--data-dir", str(pruned)]) == 0
    times = [r["time"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert len(times) == len(set(times)) == rows


def test_export_api_takes_a_resolution(pruned):
    store = open_store(pruned)
    try:
        client = TestClient(create_app(Queries(store, NEW_YORK)))
        raw = client.get("/api/v1/export.csv?from=2025-06-01&to=2025-06-01")
        assert raw.status_code == 404 and "resolution=hour" in raw.json()["detail"]
        hours = client.get("/api/v1/export.csv?from=2025-06-01&to=2025-06-01&resolution=hour")
        assert hours.status_code == 200 and hours.text.count("\n") == 25
        assert hours.text.startswith("time,solar_wh,")
    finally:
        store.close()


# -- serve: the port first ------------------------------------------------------------------------------------


def test_a_busy_port_is_said_before_the_backfill(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        t0 = time.monotonic()
        hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--create", "--data-dir", str(data),
                    "--port", str(port)])
        assert hub.wait(60) == EXIT_LISTEN == 3, hub.stderr
    assert time.monotonic() - t0 < 30
    assert f"homegrid: error: port {port} on 127.0.0.1 is in use" in hub.stderr
    assert not (data / "homegrid.db").exists()  # refused before the store and its backfill


def test_serve_listens_on_the_port_it_bound(tmp_path):
    port = free_port()
    hub = Proc(["serve", "--config", str(serve_config(tmp_path)), "--create", "--data-dir", str(tmp_path / "d"),
                "--port", str(port)])
    try:
        hub.wait_for("dashboard on http://")
        import urllib.request

        def answers() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/site", timeout=5) as reply:
                assert reply.status == 200
            return True

        wait_for(answers, timeout=30, interval=0.2, retry_on=(OSError,), what=lambda: hub.stderr)
    finally:
        hub.stop()


# -- exit codes in the README ---------------------------------------------------------------------------------


def test_the_readme_lists_every_exit_code_the_cli_uses():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Commands"):]
    section = section[:section.index("\n## ", 5)]
    listed = {int(m) for m in re.findall(r"^\| `(\d+)` \|", section, flags=re.M)}
    assert listed == set(EXIT_CODES)
    source = (Path(__file__).resolve().parents[1] / "homegrid" / "cli.py").read_text(encoding="utf-8")
    returned = {int(m) for m in re.findall(r"return (\d+)\b", source)}
    named = {EXIT_LISTEN, EXIT_PRUNED}
    assert returned | named <= set(EXIT_CODES)


# -- progress bars --------------------------------------------------------------------------------------------


def test_progress_is_off_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress(total=10, desc="x") as bar:
        bar.update(10)
    assert bar.disable and sys.stderr.getvalue() == ""


def test_progress_shows_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    with progress(total=10, desc="simulate", unit="day") as bar:
        bar.update(4)
        bar.refresh()
        assert not bar.disable
        assert "simulate" in sys.stderr.getvalue() and "4/10" in sys.stderr.getvalue()


# -- /docs ----------------------------------------------------------------------------------------------------


def test_docs_are_served_from_the_package(store):
    client = TestClient(create_app(Queries(store, NEW_YORK)))
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script>" not in page.text  # no inline script (the hub's CSP runs none)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources)
    for s in sources:
        reply = client.get(s)
        assert reply.status_code == 200 and len(reply.content) > 100, s
    assert "SwaggerUIBundle" in client.get("/docs/swagger-ui-bundle.js").text
    assert client.get("/docs/..%2Fopenapi.json").status_code == 404
    assert client.get("/redoc").status_code == 404


# -- the CSV's words ------------------------------------------------------------------------------------------


def test_the_csv_writes_charging_states_as_words_and_reads_old_codes(tmp_path):
    t = np.array([1_748_750_400_000 + i * 60_000 for i in range(3)], dtype=np.int64)
    states = np.array([EvChargingState.CHARGING, EvChargingState.COMPLETE, np.nan], dtype=np.float64)
    out = io.StringIO()
    write_csv([ReadingFrame(t, {"ev_charging_state": states, "ev_soc": np.array([50.0, 80.0, 80.0])})], out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "time,ev_soc,ev_charging_state"
    assert lines[1].endswith(",charging") and lines[2].endswith(",complete") and lines[3].endswith(",")
    path = tmp_path / "new.csv"
    path.write_text(out.getvalue())
    back = read_csv(path)
    np.testing.assert_array_equal(back.columns["ev_charging_state"], states)
    old = tmp_path / "old.csv"  # written by homegrid before the words: codes
    old.write_text(out.getvalue().replace(",charging", ",4").replace(",complete", ",5"))
    np.testing.assert_array_equal(read_csv(old).columns["ev_charging_state"], states)
    bad = tmp_path / "bad.csv"
    bad.write_text(out.getvalue().replace(",charging", ",parked"))
    with pytest.raises(ValueError, match=r"'parked' is not a ev_charging_state; expected one of unknown, "
                                         r"disconnected, .* or the code 0-6"):
        read_csv(bad)


# -- units by the site's country, or a setting ----------------------------------------------------------------


@pytest.mark.parametrize(("zone", "units"), [("America/New_York", "imperial"), ("America/Los_Angeles", "imperial"),
                                             ("US/Eastern", "imperial"), ("Europe/London", "imperial"),
                                             ("Europe/Berlin", "metric"), ("America/Toronto", "metric"),
                                             ("Australia/Sydney", "metric"), ("Etc/GMT+5", "metric")])
def test_units_follow_the_zone_country(zone, units):
    from homegrid.units import units_for_zone

    assert units_for_zone(zone) == units


def test_units_setting_overrides_the_zone_and_is_checked(tmp_path):
    from homegrid.config import ConfigError, load_config

    cfg = tmp_path / "homegrid.toml"
    cfg.write_text('[site]\ntimezone = "America/New_York"\n')
    assert load_config(cfg).site.unit_system == "imperial"
    cfg.write_text('[site]\ntimezone = "America/New_York"\nunits = "metric"\n')
    assert load_config(cfg).site.unit_system == "metric"
    cfg.write_text('[site]\nunits = "furlongs"\n')
    with pytest.raises(ConfigError, match=r"site\.units = 'furlongs'"):
        load_config(cfg)


def test_site_api_gives_the_units(store):
    client = TestClient(create_app(Queries(store, NEW_YORK)))
    assert client.get("/api/v1/site").json()["units"] == "imperial"
