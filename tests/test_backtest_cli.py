"""``homegrid backtest`` end to end on emhass's real French household (../shared/data README section 1.1), two
weeks of it turned into the canonical CSV, with emhass's default peak/off-peak prices as a TOML tariff."""

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from homegrid.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = SHARED / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
PARIS = ZoneInfo("Europe/Paris")
HP, HC = 0.1907, 0.1419  # emhass's defaults: peak 06-22 h, off-peak otherwise, export at the off-peak price
EMHASS_TOML = f"""
name = "emhass default HP/HC"
currency = "EUR"
[periods.hp]
price = {HP}
[periods.hc]
price = {HC}
[seasons.all-year]
months = "Jan-Dec"
every_day = {{ hp = "6-22", hc = ["0-6", "22-24"] }}
[export]
rule = "net-billing"
sell_price = {HC}
"""

pytestmark = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")


def canonical(path, first_day, end_day):
    """emhass's rows of the local days ``first_day`` to ``end_day`` (excluded) as the canonical CSV at ``path``; the
    raw rows (UTC time, load or NaN, PV).

    emhass's rows are 30-minute means stamped at their start (pandas' resample), and the canonical CSV's rows are
    instants: each mean is written at its interval's start and one second before its end, so the power holds
    through the interval as the mean says. PV is NaN at night (0 here); a NaN load is left empty (not measured)."""
    start = datetime.combine(first_day, datetime.min.time(), PARIS).astimezone(UTC)
    end = datetime.combine(end_day, datetime.min.time(), PARIS).astimezone(UTC)
    raw = []
    with DATA.open() as f, path.open("w") as out:
        out.write("time,home_power,solar_power\n")
        for row in csv.DictReader(f):
            t = datetime.fromisoformat(row["timestamp_utc"].replace("Z", "+00:00"))
            if not start <= t < end:
                continue
            load = float(row["load_w_excl_deferrable"]) if row["load_w_excl_deferrable"] else float("nan")
            pv = float(row["pv_w"]) if row["pv_w"] not in ("", "nan") else 0.0
            pv = 0.0 if pv != pv else max(pv, 0.0)
            raw.append((t, load, pv))
            for at in (t, t + timedelta(minutes=30) - timedelta(seconds=1)):
                out.write(f"{at.isoformat().replace('+00:00', 'Z')},{'' if load != load else load},{pv}\n")
    return raw


@pytest.fixture(scope="module")
def emhass(tmp_path_factory):
    """Two weeks of April 2024 (local days 2024-04-08 to 2024-04-21) as the canonical CSV, the raw rows, and
    emhass's tariff as TOML."""
    folder = tmp_path_factory.mktemp("backtest")
    raw = canonical(folder / "home.csv", date(2024, 4, 8), date(2024, 4, 22))
    (folder / "emhass.toml").write_text(EMHASS_TOML)
    return folder, raw


def backtest(capsys, folder, *args):
    capsys.readouterr()
    code = main(["backtest", "--data", str(folder / "home.csv"), "--tariff", str(folder / "emhass.toml"),
                 "--timezone", "Europe/Paris", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_the_home_without_battery_is_billed_as_its_readings_say(capsys, emhass):
    """A battery of 0 kWh: the bill equals the one worked out from emhass's raw 30-minute rows, each priced by its
    local hour (within 1 %: the replay's 15-minute steps interpolate between the rows)."""
    folder, raw = emhass
    out = backtest(capsys, folder, "--policy", "self-consumption", "--battery-kwh", "0", "--battery-kw", "0")
    load = np.array([r[1] for r in raw])
    ok = ~np.isnan(load)
    pv = np.array([r[2] for r in raw])
    hours = np.array([r[0].astimezone(PARIS).hour for r in raw])
    price = np.where((hours >= 6) & (hours < 22), HP, HC)
    net = np.where(ok, load, np.nanmean(load)) - pv
    expect = float((np.clip(net, 0, None) * price - np.clip(-net, 0, None) * HC).sum() * 0.5 / 1000)
    assert out["bill"] == pytest.approx(expect, rel=0.01)
    assert out["grid_import_wh"] == pytest.approx(np.clip(net, 0, None).sum() * 0.5, rel=0.01)
    assert out["grid_export_wh"] == pytest.approx(np.clip(-net, 0, None).sum() * 0.5, rel=0.02)
    assert out["battery_cycles"] == 0 and out["currency"] == "EUR"
    assert out["steps"] == 14 * 96 and out["from"] == "2024-04-08T00:00:00+02:00"


def test_self_consumption_and_time_based_on_the_real_home(capsys, emhass):
    """The default battery (13.5 kWh, 5 kW, 20 %, 90 %): self-consumption cuts the import and the bill; both rule
    policies' figures are there, with the JSON keys the issue names."""
    folder, _ = emhass
    none = backtest(capsys, folder, "--policy", "self-consumption", "--battery-kwh", "0", "--battery-kw", "0")
    sc = backtest(capsys, folder, "--policy", "self-consumption")
    tb = backtest(capsys, folder, "--policy", "time-based")
    for out in (sc, tb):
        for key in ("bill", "grid_import_wh", "grid_export_wh", "battery_cycles"):
            assert isinstance(out[key], int | float)
        assert set(out["solve_ms"]) >= {"p50", "p99"}
        assert out["battery"] == {"kwh": 13.5, "kw": 5.0, "reserve_percent": 20.0, "round_trip_percent": 90.0}
    assert sc["grid_import_wh"] < none["grid_import_wh"] - 50_000  # April sun: the battery moves tens of kWh
    assert sc["bill"] < none["bill"] and sc["battery_cycles"] > 3
    # what the battery took in came from exports, through its losses (plus what it holds at the end)
    taken = none["grid_export_wh"] - sc["grid_export_wh"]
    given = none["grid_import_wh"] - sc["grid_import_wh"]
    held = (sc["battery_end_percent"] - 20) / 100 * 13_500
    assert given + held / 0.9 ** 0.5 == pytest.approx(taken * 0.9, rel=0.01)
    # time-based discharges only in HP: it keeps the battery through the HC night (which self-consumption spends
    # at 0.1419) for the HP morning (0.1907)
    assert tb["bill"] < sc["bill"]
    assert tb["car"] == {"windows": 0, "met": 0, "target_met": True, "short_wh": 0, "energy_wh": 0}


def test_text_output_and_errors(capsys, emhass, tmp_path):
    folder, _ = emhass
    capsys.readouterr()
    assert main(["backtest", "--data", str(folder / "home.csv"), "--tariff", str(folder / "emhass.toml"),
                 "--timezone", "Europe/Paris", "--policy", "time-based-grid", "--step-min", "30"]) == 0
    text = capsys.readouterr().out
    assert "time-based+grid" in text and "bill EUR" in text and "672 steps of 30 min" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("time,home_power\n2024-04-08T00:00:00Z,100\n2024-04-08T01:00:00Z,100\n")
    assert main(["backtest", "--data", str(bad), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "self-consumption"]) == 2
    assert "solar_power" in capsys.readouterr().err
    assert main(["backtest", "--data", str(folder / "home.csv"), "--tariff", str(folder / "emhass.toml"),
                 "--timezone", "Europe/Paris", "--policy", "self-consumption", "--step-min", "7"]) == 2
    assert "divide an hour" in capsys.readouterr().err


def test_a_price_file_with_no_export_price_earns_nothing_for_export(capsys, emhass, tmp_path):
    """--prices: the CSV's import price per hour, export earning 0 (no export_price column)."""
    folder, raw = emhass
    prices = tmp_path / "prices.csv"
    t0 = raw[0][0].replace(minute=0)
    with prices.open("w") as f:
        f.write("time,import_price\n")
        for k in range(15 * 24):
            t = t0 + timedelta(hours=k)
            local = t.astimezone(PARIS).hour
            f.write(f"{t.isoformat()},{HP if 6 <= local < 22 else HC}\n")
    capsys.readouterr()
    assert main(["backtest", "--data", str(folder / "home.csv"), "--prices", str(prices), "--timezone",
                 "Europe/Paris", "--policy", "self-consumption", "--json"]) == 0
    by_prices = json.loads(capsys.readouterr().out)
    by_tariff = backtest(capsys, folder, "--policy", "self-consumption")
    assert by_prices["grid_import_wh"] == by_tariff["grid_import_wh"]
    export_credit = by_tariff["grid_export_wh"] / 1000 * HC
    assert by_prices["bill"] == pytest.approx(by_tariff["bill"] + export_credit, abs=0.01)
    lines = prices.read_text().splitlines()
    prices.write_text("\n".join(lines[:48]) + "\n")  # two days of prices for two weeks of data
    assert main(["backtest", "--data", str(folder / "home.csv"), "--prices", str(prices), "--timezone",
                 "Europe/Paris", "--policy", "self-consumption"]) == 2
    assert "no import price for" in capsys.readouterr().err


@pytest.fixture
def peer_optimiser(monkeypatch):
    """The independent LP (tests/backtest_peer.py) in the optimiser's place."""
    import homegrid.planner.optimise
    from tests import backtest_peer

    monkeypatch.setattr(homegrid.planner.optimise, "plan", backtest_peer.solve)


def test_compare_gives_the_share_of_the_perfect_saving(capsys, emhass, peer_optimiser):
    """--compare replays the home without battery and with perfect foresight in the same run: perfect's net bill
    is the lowest, self-consumption's share lies between 0 and 1, and perfect's own share is 1."""
    folder, _ = emhass
    sc = backtest(capsys, folder, "--policy", "self-consumption", "--compare", "--step-min", "30")
    none, best = sc["compare"]["no-battery"], sc["compare"]["perfect"]
    assert best["net"] < sc["net"] < none["net"]
    share = (none["net"] - sc["net"]) / (none["net"] - best["net"])
    assert sc["share_of_perfect_saving"] == pytest.approx(share, abs=1e-3) and 0 < share < 1
    assert best["plans"] == 1 and best["battery_cycles"] > 0
    alone = backtest(capsys, folder, "--policy", "perfect", "--compare", "--step-min", "30")
    assert alone["net"] == pytest.approx(best["net"], abs=1e-3) and alone["share_of_perfect_saving"] == 1.0
    assert set(alone["compare"]) == {"no-battery"}


def test_mpc_through_the_cli(capsys, emhass, peer_optimiser, tmp_path):
    """mpc re-plans every step (three days at 30 minutes: 144 plans) and lands between no battery and perfect."""
    folder, _ = emhass
    lines = (folder / "home.csv").read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[: 1 + 2 * 48 * 3]) + "\n")
    capsys.readouterr()
    assert main(["backtest", "--data", str(short), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "mpc", "--step-min", "30", "--horizon-h", "24", "--compare",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plans"] == out["steps"] == 144
    assert out["compare"]["perfect"]["net"] <= out["net"] + 1e-6
    assert out["solve_ms"]["p99"] >= out["solve_ms"]["p50"] > 0
    assert main(["backtest", "--data", str(short), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "mpc", "--step-min", "30", "--replan-min", "120", "--forecast",
                 "persistence", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plans"] == 144 // 4
    # the diagnostic: mpc knowing the real load and solar ahead, still through the modes
    assert main(["backtest", "--data", str(short), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "mpc", "--step-min", "30", "--horizon-h", "24", "--forecast", "perfect",
                 "--compare", "--json"]) == 0
    known = json.loads(capsys.readouterr().out)
    assert known["plans"] == 144 and known["compare"]["perfect"]["net"] <= known["net"] + 1e-6
    assert known["net"] < known["compare"]["no-battery"]["net"]
    assert main(["backtest", "--data", str(short), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "mpc", "--latitude", "95", "--longitude", "6.86"]) == 2
    assert "not a place on Earth" in capsys.readouterr().err


def test_the_car_is_moved_within_its_windows(capsys, emhass, peer_optimiser, tmp_path):
    """A car charged at 7 kW from 18:00 to 20:00 local each evening (added to home_power, which includes the car):
    self-consumption charges it as it happened; perfect may move it within its window (the charging extended by
    4 h, into the HC hours) and delivers every window's energy (tests/test_backtest.py checks the moves)."""
    folder, _ = emhass
    lines = (folder / "home.csv").read_text().splitlines()
    rows = ["time,home_power,solar_power,ev_power"]
    for line in lines[1: 1 + 2 * 48 * 4]:
        t, home, pv = line.split(",")
        local = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(PARIS)
        ev = 7000.0 if 18 <= local.hour < 20 else 0.0
        rows.append(f"{t},{'' if home == '' else float(home) + ev},{pv},{ev}")
    car = tmp_path / "car.csv"
    car.write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    args = ["backtest", "--data", str(car), "--tariff", str(folder / "emhass.toml"), "--timezone", "Europe/Paris",
            "--step-min", "30", "--json"]
    assert main([*args, "--policy", "self-consumption"]) == 0
    sc = json.loads(capsys.readouterr().out)
    assert main([*args, "--policy", "perfect", "--compare"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert sc["car_windows"] == best["car_windows"] == 4  # the first local evening to the fourth
    for out in (sc, best):
        assert out["car"]["energy_wh"] == pytest.approx(4 * 14_000, rel=1e-3)
        assert out["car"]["target_met"] and out["car"]["met"] == 4
    assert best["net"] < sc["net"] and best["compare"]["no-battery"]["net"] > sc["net"]
    assert any("rolling" in note for note in best["notes"])  # four windows: rolling problems


def test_a_day_of_23_hours(capsys, emhass, tmp_path):
    """Across the spring change in Paris (2024-03-31 has 23 hours): 71 hours of steps, and HC/HP by the local
    clock - the bill without a battery equals the raw rows priced by their local hour."""
    folder, _ = emhass
    raw = canonical(tmp_path / "dst.csv", date(2024, 3, 30), date(2024, 4, 2))
    capsys.readouterr()
    assert main(["backtest", "--data", str(tmp_path / "dst.csv"), "--tariff", str(folder / "emhass.toml"),
                 "--timezone", "Europe/Paris", "--policy", "self-consumption", "--battery-kwh", "0",
                 "--battery-kw", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == (24 + 23 + 24) * 4
    assert out["from"] == "2024-03-30T00:00:00+01:00" and out["to"] == "2024-04-02T00:00:00+02:00"
    load = np.array([r[1] for r in raw])
    pv = np.array([r[2] for r in raw])
    hours = np.array([r[0].astimezone(PARIS).hour for r in raw])
    price = np.where((hours >= 6) & (hours < 22), HP, HC)
    net = np.where(np.isnan(load), np.nanmean(load), load) - pv
    expect = float((np.clip(net, 0, None) * price - np.clip(-net, 0, None) * HC).sum() * 0.5 / 1000)
    assert out["bill"] == pytest.approx(expect, rel=0.01)


def test_perfect_with_the_optimiser_is_the_independent_lp(capsys, emhass, tmp_path):
    """The issue's budget: ``perfect`` (homegrid's optimiser over the two weeks at 15 minutes, once) within 1 % of
    the independent LP's net bill on the same battery model (tests/backtest_peer.py), and mpc through the CLI with
    the real optimiser lands between no battery and perfect."""
    from homegrid.planner import simulate as sim
    from homegrid.planner.backtest import battery_spec, period_from_readings, summary
    from homegrid.planner.optimise import plan
    from homegrid.readings.csvfile import read_csv
    from homegrid.tariffs.readers import load_tariff
    from tests import backtest_peer

    folder, _ = emhass
    tariff, _ = load_tariff(EMHASS_TOML)
    p = period_from_readings(read_csv(folder / "home.csv"), tariff, "Europe/Paris").period
    spec = battery_spec()
    ours = summary(sim.simulate(p, spec, sim.perfect(p, spec, plan)), p, spec, tariff)
    peer = summary(sim.simulate(p, spec, sim.perfect(p, spec, backtest_peer.solve)), p, spec, tariff)
    none = battery_spec(0, 0, 1)
    baseline = summary(sim.simulate(p, none, sim.no_battery()), p, none, tariff)
    assert abs(ours["net"] - peer["net"]) <= 0.01 * (baseline["net"] - peer["net"])
    lines = (folder / "home.csv").read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[: 1 + 2 * 48 * 3]) + "\n")
    capsys.readouterr()
    assert main(["backtest", "--data", str(short), "--tariff", str(folder / "emhass.toml"), "--timezone",
                 "Europe/Paris", "--policy", "mpc", "--step-min", "30", "--compare", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plans"] == 144 and out["relaxed"] == []
    assert out["compare"]["perfect"]["net"] - 1e-6 <= out["net"] < out["compare"]["no-battery"]["net"]
