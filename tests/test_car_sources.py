"""The car's energy adds up: by source (solar, battery, grid) plus what no source can be named for (unknown)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.energy.flows import ev_sources, ev_unknown, split_flows
from homegrid.energy.report import energy_report, ev_parts_wh
from homegrid.glossary import EV_SOURCES
from homegrid.hub.queries import Queries
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame
from .energy_reply import points as points_of

MWH = 0.001  # /api/v1/energy gives energies to the mWh [Wh]

energy = st.floats(0, 20_000, allow_nan=False)


@st.composite
def intervals(draw):
    """Energies of a few intervals [Wh], meters that may disagree, the car's part of the home's energy."""
    n = draw(st.integers(1, 12))
    arr = lambda: np.array(draw(st.lists(energy, min_size=n, max_size=n)))  # noqa: E731
    e = {k: arr() for k in ("solar", "battery_discharge", "grid_import", "home", "battery_charge", "grid_export")}
    share = np.array(draw(st.lists(st.floats(0, 1.2), min_size=n, max_size=n)))  # > 1: the car's meter reads more
    return e, e["home"] * share


@given(intervals())
@settings(max_examples=300)
def test_sources_and_unknown_add_up_to_the_car_for_any_frame(data):
    e, ev = data
    flows = split_flows(**e)
    src = ev_sources(ev, e["home"], flows)
    unknown = ev_unknown(ev, src)
    np.testing.assert_allclose(src["solar"] + src["battery"] + src["grid"] + unknown, ev, rtol=0, atol=1e-9)
    assert np.all(unknown >= -1e-9)  # a source never claims more than the car took
    # summed over the frame, as the rollups and the report sum them, and rounded as the report rounds
    totals = {"ev": float(ev.sum()), **{f"ev_from_{k}": float(v.sum()) for k, v in src.items()}}
    parts = energy_report(totals)["ev_sources_wh"]
    assert set(parts) == {*EV_SOURCES, "unknown"}
    assert sum(round(v * 1000) for v in parts.values()) == round(energy_report(totals)["energy_wh"]["ev"] * 1000)


@given(energy, st.dictionaries(st.sampled_from(EV_SOURCES), energy, min_size=3))
def test_parts_sum_exactly_to_the_mwh(ev, sources):
    parts = ev_parts_wh(ev, sources)
    assert sum(round(v * 1000) for v in parts.values()) == round(ev * 1000)
    assert {k: parts[k] for k in EV_SOURCES} == {k: round(v * 1000) / 1000 for k, v in sources.items()}


def test_a_gap_in_the_home_readings_is_the_unknown_part(recorder, store):
    """Two days of the car charging at 1 kW; for six hours of them the home's meters said nothing (a gateway
    that did not answer while the car's charger was read): that energy is the car's, from no known source."""
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    whole = steady_frame(a, 2 * 1440 + 1, solar_power=500, home_power=2000, grid_power=1500, ev_power=1000)
    gap = (whole.time_ms >= a + 10 * 3_600_000) & (whole.time_ms < a + 16 * 3_600_000)
    for name in ("solar_power", "home_power", "grid_power"):
        whole.columns[name][gap] = np.nan
    recorder.ingest_bulk([whole])
    rep = Queries(store, NEW_YORK).report(date(2025, 6, 1), date(2025, 6, 2))
    s, ev = rep["ev_sources_wh"], rep["energy_wh"]["ev"]
    assert ev == pytest.approx(1000 * 48, rel=1e-3)
    assert s["unknown"] == pytest.approx(1000 * 6, rel=0.02)  # the six hours
    assert s["solar"] == pytest.approx(250 * 42, rel=0.02) and s["grid"] == pytest.approx(750 * 42, rel=0.02)
    assert round(1000 * (s["solar"] + s["battery"] + s["grid"] + s["unknown"])) == round(1000 * ev)


def test_energy_api_gives_the_unknown_part_per_step(recorder, store):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    frame = steady_frame(a, 1440 + 1, solar_power=500, home_power=2000, grid_power=1500, ev_power=1000)
    frame.columns["home_power"][600:700] = np.nan
    recorder.ingest_bulk([frame])
    client = TestClient(create_app(Queries(store, NEW_YORK)))
    points = points_of(client.get("/api/v1/energy?from=2025-06-01&to=2025-06-01&step=hour").json())
    assert len(points) == 24
    assert sum(p["ev_from_unknown"] for p in points) > 1000  # the 100 minutes without the home's meter
    for p in points:
        parts = p["ev_from_solar"] + p["ev_from_battery"] + p["ev_from_grid"] + p["ev_from_unknown"]
        assert parts == pytest.approx(p["ev"], abs=5 * MWH / 2)  # each to the mWh
    report = client.get("/api/v1/report?from=2025-06-01&to=2025-06-01").json()
    assert report["ev_sources_wh"]["unknown"] == pytest.approx(sum(p["ev_from_unknown"] for p in points),
                                                               abs=MWH + 24 * MWH / 2)


@st.composite
def frames(draw):
    """Raw readings a minute or so apart with gaps and unmeasured stretches: home, grid, solar, battery, car."""
    from homegrid.readings import ReadingFrame

    n = draw(st.integers(2, 40))
    steps = draw(st.lists(st.integers(1_000, 400_000), min_size=n - 1, max_size=n - 1))
    t = 1_748_750_400_000 + np.concatenate(([0], np.cumsum(steps))).astype(np.int64)
    power = st.floats(0, 12_000) | st.just(float("nan"))
    col = lambda: np.array(draw(st.lists(power, min_size=n, max_size=n)))  # noqa: E731
    signed = st.floats(-8_000, 8_000) | st.just(float("nan"))
    scol = lambda: np.array(draw(st.lists(signed, min_size=n, max_size=n)))  # noqa: E731
    return ReadingFrame(t, {"home_power": col(), "solar_power": col(), "ev_power": col(), "grid_power": scol(),
                            "battery_power": scol()})


@given(frames())
@settings(max_examples=150, deadline=None)
def test_accounting_keeps_the_car_whole_for_any_frame(frame):
    from homegrid.energy.accounting import account

    edges = np.arange(frame.time_ms[0] // 60_000 * 60_000, frame.time_ms[-1] + 120_000, 60_000, dtype=np.int64)
    cols = account(frame, edges, max_gap_s=300).columns
    sources = {s: cols[f"ev_from_{s}"] for s in EV_SOURCES}
    unknown = ev_unknown(cols["ev"], sources)
    np.testing.assert_allclose(sum(sources.values()) + unknown, cols["ev"], rtol=0, atol=1e-9)
    assert np.all(unknown >= -1e-9)
    totals = {"ev": float(cols["ev"].sum()), **{f"ev_from_{s}": float(v.sum()) for s, v in sources.items()}}
    rep = energy_report(totals)
    assert sum(round(1000 * v) for v in rep["ev_sources_wh"].values()) == round(1000 * rep["energy_wh"]["ev"])
