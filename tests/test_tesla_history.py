"""Tests of the Tesla calendar_history importer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from homegrid.readings.tesla_history import (
    ENERGY_SOURCES,
    TeslaHistoryError,
    energy_counters,
    parse_tesla_history,
    read_tesla_history,
)

from .conftest import SHARED_DATA

HA = SHARED_DATA / "tesla" / "home-assistant"  # ../shared beside the repository, in CI too
FIXTURES = Path(__file__).parent / "fixtures" / "import"
REAL_ENERGY = [
    HA / "tesla_fleet" / "energy_history.json",
    HA / "tesla_fleet" / "history_status.json",
    HA / "tesla_fleet" / "energy_history_overnight.json",
    HA / "teslemetry" / "energy_history.json",
]

# Tesla's own per-interval totals in some replies, and the counter they must match.
TESLA_TOTALS = {
    "total_home_usage": "home_energy_imported",
    "total_grid_energy_exported": "grid_energy_exported",
    "total_battery_charge": "battery_energy_imported",
    "total_battery_discharge": "battery_energy_exported",
    "total_solar_generation": "solar_energy_exported",
}


def series(path: Path) -> list[dict]:
    return json.loads(path.read_text())["response"]["time_series"]


# ----------------------------------------------------------------------------- power


def test_power_fixture_maps_signs_and_balances() -> None:
    path = FIXTURES / "tesla_power_day_handwritten.json"
    frame = read_tesla_history(path)
    raw = series(path)
    assert len(frame) == len(raw) == 6
    assert frame.time_ms[0] == 1650204000000  # 2022-04-18T00:00:00+10:00
    assert np.all(np.diff(frame.time_ms) > 0)
    assert set(frame.columns) == {"solar_power", "battery_power", "grid_power", "home_power"}
    # Tesla's signs are ours: battery + discharge, grid + import
    np.testing.assert_array_equal(frame.column("battery_power"), [e["battery_power"] for e in raw])
    np.testing.assert_array_equal(frame.column("grid_power"), [e["grid_power"] for e in raw])
    # night-time solar jitter (-12 W) is clamped to 0 by the glossary rules
    assert frame.column("solar_power")[0] == 0.0
    generator = np.array([e.get("generator_power", 0) for e in raw])
    balance = frame.column("solar_power") + frame.column("battery_power") + frame.column("grid_power")
    np.testing.assert_allclose(frame.column("home_power"), balance + generator)
    assert frame.column("home_power")[4] == 150 + 2100 + 0 + 800  # generator counted in home
    assert frame.column("home_power")[2] == pytest.approx(7522 - 4750 - 1675.8333333333333)


def test_power_missing_value_is_not_measured_and_impossible_value_fails() -> None:
    reply = {
        "response": {
            "time_series": [
                {"timestamp": "2024-01-01T00:00:00Z", "solar_power": None, "battery_power": 10, "grid_power": 5},
            ]
        }
    }
    frame = parse_tesla_history(reply)
    assert np.isnan(frame.column("solar_power")[0]) and np.isnan(frame.column("home_power")[0])
    reply["response"]["time_series"][0]["solar_power"] = -500
    with pytest.raises(TeslaHistoryError, match=r"x\.json: response\.time_series\[0\]\.solar_power: .*minimum"):
        parse_tesla_history(reply, file="x.json")
    reply["response"]["time_series"][0].update(solar_power=0, battery_power=-400, grid_power=0)
    with pytest.raises(TeslaHistoryError, match=r"time_series\[0\] \(home_power = .*-400 W\)"):
        parse_tesla_history(reply, file="x.json")


def test_soe_entries_become_battery_soc() -> None:
    frame = parse_tesla_history(
        {
            "time_series": [
                {"timestamp": "2022-04-18T12:15:00+10:00", "soe": 67},
                {"timestamp": "2022-04-18T12:00:00+10:00", "soe": 66.5},
            ]
        }
    )
    assert frame.column("battery_soc").tolist() == [66.5, 67.0]


# ----------------------------------------------------------------------------- energy


@pytest.mark.parametrize("path", REAL_ENERGY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_energy_replies_become_monotone_counters(path: Path) -> None:
    frame = read_tesla_history(path)
    raw = series(path)
    assert set(frame.columns) == set(ENERGY_SOURCES)
    assert len(frame) == len(raw) + 1  # first start, then each end (these files have no gap)
    for name, fields in ENERGY_SOURCES.items():
        counter = frame.column(name)
        assert counter[0] == 0.0
        assert np.all(np.diff(counter) >= 0), name
        assert counter[-1] == pytest.approx(sum(e.get(f, 0) for e in raw for f in fields)), name
    for total, name in TESLA_TOTALS.items():
        if all(total in e for e in raw):  # Tesla's own totals agree with our mapping
            assert frame.column(name)[-1] == pytest.approx(sum(e[total] for e in raw)), total


def test_overnight_values_and_times() -> None:
    frame = read_tesla_history(HA / "tesla_fleet" / "energy_history_overnight.json")
    start = int(datetime.fromisoformat("2026-09-12T00:00:00+01:00").timestamp() * 1000)
    assert frame.time_ms.tolist() == [start + k * 300_000 for k in range(5)]
    assert frame.column("grid_energy_imported").tolist() == [0, 1250, 2590, 3900, 5100]
    assert frame.column("battery_energy_imported").tolist() == [0, 1000, 2100, 3150, 4100]
    assert frame.column("home_energy_imported").tolist() == [0, 250, 490, 750, 1000]


def test_teslemetry_gap_with_explicit_interval() -> None:
    path = HA / "teslemetry" / "energy_history.json"
    inferred = read_tesla_history(path)  # entries 8 h 45 min apart: taken as the interval length
    assert np.diff(inferred.time_ms).tolist() == [31_500_000, 31_500_000]
    frame = read_tesla_history(path, interval_s=300)
    t0 = 1726581600000  # 2024-09-18T00:00:00+10:00
    assert frame.time_ms.tolist() == [t0, t0 + 300_000, t0 + 31_500_000, t0 + 31_800_000]
    assert frame.column("battery_energy_exported").tolist() == [0, 36, 36, 36]  # flat across the gap
    assert frame.column("solar_energy_exported").tolist() == [0, 0, 0, 724]


def test_time_series_null_is_an_empty_frame() -> None:
    frame = read_tesla_history(HA / "teslemetry" / "energy_history_empty.json")
    assert len(frame) == 0


def test_energy_counters_gaps_and_defaults() -> None:
    t, c = energy_counters(np.array([0, 300_000, 1_200_000]), {"x": np.array([1.0, 2.0, 4.0])})
    assert t.tolist() == [0, 300_000, 600_000, 1_200_000, 1_500_000]
    assert c["x"].tolist() == [0, 1, 3, 3, 7]
    t, c = energy_counters(np.array([60_000]), {"x": np.array([5.0])})
    assert t.tolist() == [60_000, 360_000] and c["x"].tolist() == [0, 5]  # default 300 s
    with pytest.raises(ValueError, match="overlaps"):
        energy_counters(np.array([0, 300_000]), {"x": np.ones(2)}, interval_s=600)


def test_list_of_replies_continues_counters_and_bare_response() -> None:
    def reply(stamp: str, wh: float) -> dict:
        return {
            "response": {
                "period": "day",
                "time_series": [
                    {"timestamp": stamp, "grid_energy_imported": wh, "consumer_energy_imported_from_grid": wh}
                ],
            }
        }

    doc = [reply("2024-01-02T00:00:00Z", 7), reply("2024-01-01T23:55:00Z", 5)]
    frame = parse_tesla_history(doc)
    assert frame.column("grid_energy_imported").tolist() == [0, 5, 12]
    assert set(frame.columns) == {"grid_energy_imported", "home_energy_imported"}
    bare = parse_tesla_history(doc[0]["response"])
    assert bare.column("home_energy_imported").tolist() == [0, 7]


def test_power_and_energy_replies_merge_on_shared_times() -> None:
    doc = [
        {"time_series": [{"timestamp": "2024-01-01T00:05:00Z", "solar_power": 1, "battery_power": 2, "grid_power": 3}]},
        {"time_series": [{"timestamp": "2024-01-01T00:00:00Z", "solar_energy_exported": 4}]},
    ]
    frame = parse_tesla_history(doc)
    assert len(frame) == 2
    assert frame.column("home_power")[1] == 6 and frame.column("solar_energy_exported")[1] == 4


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00Z", "soe": 1}, {"soe": 2}]}},
            "h.json: response.time_series[1].timestamp: missing",
        ),
        (
            {"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00", "soe": 1}]}},
            "h.json: response.time_series[0].timestamp: '2024-01-01T00:00:00' has no UTC offset",
        ),
        (
            {"response": {"time_series": [{"timestamp": 17, "soe": 1}]}},
            "h.json: response.time_series[0].timestamp: expected an ISO 8601 text, got int",
        ),
        (
            [{"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00Z", "grid_energy_imported": "5"}]}}],
            "h.json: [0].response.time_series[0].grid_energy_imported: expected a finite number, got '5'",
        ),
        (
            {"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00Z", "grid_energy_imported": -3}]}},
            "h.json: response.time_series[0].grid_energy_imported: -3.0 Wh: energy per interval is negative",
        ),
        (
            {"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00Z", "soe": 1, "grid_power": 1}]}},
            "h.json: response.time_series[0]: cannot tell the history kind: power and soe fields",
        ),
        (
            {"response": {"time_series": [{"timestamp": "2024-01-01T00:00:00Z"}]}},
            "h.json: response.time_series[0]: cannot tell the history kind: no power, energy or soe fields",
        ),
        ({"response": {"period": "day"}}, "h.json: response.time_series: missing"),
        ({"response": {"time_series": {}}}, "h.json: response.time_series: expected a list, got dict"),
        ({"response": None, "error": "timeout"}, "h.json: response: expected an object, got null (error: timeout)"),
        ({"hello": 1}, "h.json: expected a calendar_history reply with 'response' or 'time_series'"),
        ("text", "h.json: expected a calendar_history reply (an object), got str"),
    ],
)
def test_errors_name_file_and_json_path(doc: object, message: str) -> None:
    with pytest.raises(TeslaHistoryError) as info:
        parse_tesla_history(doc, file="h.json")
    assert str(info.value).startswith(message)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text('{"response": ')
    with pytest.raises(TeslaHistoryError, match=r"history\.json: not valid JSON"):
        read_tesla_history(path)


def test_tiny_negative_energy_is_rounding_noise() -> None:
    frame = parse_tesla_history(
        {
            "time_series": [
                {"timestamp": "2024-01-01T00:00:00Z", "grid_energy_imported": -0.5, "battery_energy_exported": 3}
            ]
        }
    )
    assert frame.column("grid_energy_imported").tolist() == [0, 0]


def test_energy_field_mapping_is_explicit() -> None:
    """Each Tesla field gets a distinct power of two, so every counter's sum shows which fields it took."""
    fields = [
        "solar_energy_exported",  # 1
        "grid_energy_imported",  # 2
        "grid_energy_exported_from_solar",  # 4
        "grid_energy_exported_from_battery",  # 8
        "grid_energy_exported_from_generator",  # 16
        "battery_energy_exported",  # 32
        "battery_energy_imported_from_grid",  # 64
        "battery_energy_imported_from_solar",  # 128
        "battery_energy_imported_from_generator",  # 256
        "consumer_energy_imported_from_grid",  # 512
        "consumer_energy_imported_from_solar",  # 1024
        "consumer_energy_imported_from_battery",  # 2048
        "consumer_energy_imported_from_generator",  # 4096
        "generator_energy_exported",  # 8192: not a glossary counter
        "grid_services_energy_imported",  # 16384: not a glossary counter
        "total_home_usage",  # 32768: Tesla's own total, not summed again
    ]
    entry = {"timestamp": "2024-01-01T00:00:00Z"} | {f: 2**i for i, f in enumerate(fields)}
    frame = parse_tesla_history({"time_series": [entry]})
    last = {name: frame.column(name)[-1] for name in frame.columns}
    assert last == {
        "solar_energy_exported": 1,
        "grid_energy_imported": 2,
        "grid_energy_exported": 4 + 8 + 16,
        "battery_energy_exported": 32,
        "battery_energy_imported": 64 + 128 + 256,
        "home_energy_imported": 512 + 1024 + 2048 + 4096,
    }
