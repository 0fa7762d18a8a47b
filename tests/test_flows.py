"""Flows conserve energy: each source's flows sum to it, each sink's to it."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from homegrid.energy.flows import ev_sources, split_flows
from homegrid.glossary import FLOWS

energy = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
SOURCE_FLOWS = {
    "solar": ("solar_to_home", "solar_to_battery", "solar_to_grid"),
    "battery_discharge": ("battery_to_home", "battery_to_grid"),
    "grid_import": ("grid_to_home", "grid_to_battery"),
}
SINK_FLOWS = {
    "home": ("solar_to_home", "battery_to_home", "grid_to_home"),
    "battery_charge": ("solar_to_battery", "grid_to_battery"),
    "grid_export": ("solar_to_grid", "battery_to_grid"),
}


@st.composite
def balanced(draw):
    """Intervals made of moments that each balance, as a consistent meter sees them.

    At one moment the battery either charges or discharges and the grid either imports or
    exports; an interval (a minute) sums several such moments.
    """
    n = draw(st.integers(1, 20))
    moments = draw(st.integers(1, 6))
    flows = {name: np.zeros(n) for name in FLOWS}
    for _ in range(moments):
        f = {name: draw(arrays(np.float64, n, elements=energy)) for name in FLOWS}
        charging = draw(arrays(np.bool_, n))
        importing = draw(arrays(np.bool_, n))
        for name in ("battery_to_home", "battery_to_grid"):
            f[name] = np.where(charging, 0.0, f[name])
        for name in ("solar_to_battery", "grid_to_battery"):
            f[name] = np.where(charging, f[name], 0.0)
        for name in ("grid_to_home", "grid_to_battery"):
            f[name] = np.where(importing, f[name], 0.0)
        for name in ("solar_to_grid", "battery_to_grid"):
            f[name] = np.where(importing, 0.0, f[name])
        for name in FLOWS:
            flows[name] += f[name]
    e = {k: _sum(flows, names) for k, names in {**SOURCE_FLOWS, **SINK_FLOWS}.items()}
    return e


def _sum(flows, names):
    return sum(flows[n] for n in names)


@given(balanced())
def test_balanced_intervals_conserve_each_source_and_sink(e):
    flows = split_flows(**e)
    for src, names in SOURCE_FLOWS.items():
        np.testing.assert_allclose(_sum(flows, names), e[src], rtol=1e-9, atol=1e-6)
    for sink, names in SINK_FLOWS.items():
        np.testing.assert_allclose(_sum(flows, names), e[sink], rtol=1e-9, atol=1e-6)
    for name in FLOWS:
        assert (flows[name] >= 0).all()


@given(st.integers(1, 20).flatmap(lambda n: st.tuples(*(arrays(np.float64, n, elements=energy) for _ in range(6)))))
def test_unbalanced_intervals_report_residuals_never_drop_energy(arrs):
    keys = ("solar", "battery_discharge", "grid_import", "home", "battery_charge", "grid_export")
    e = dict(zip(keys, arrs, strict=True))
    flows = split_flows(**e)
    for src, names in SOURCE_FLOWS.items():
        np.testing.assert_allclose(_sum(flows, names) + flows[f"unplaced_{src}"], e[src], rtol=1e-9, atol=1e-6)
    for sink, names in SINK_FLOWS.items():
        np.testing.assert_allclose(_sum(flows, names) + flows[f"unserved_{sink}"], e[sink], rtol=1e-9, atol=1e-6)
    imbalance = sum(e[s] for s in SOURCE_FLOWS) - sum(e[s] for s in SINK_FLOWS)
    placed_gap = sum(flows[f"unplaced_{s}"] for s in SOURCE_FLOWS) - sum(flows[f"unserved_{s}"] for s in SINK_FLOWS)
    np.testing.assert_allclose(placed_gap, imbalance, rtol=1e-9, atol=1e-5)


def test_rule_order_solar_first_then_battery_then_grid():
    f = split_flows(
        solar=np.array([3.0]), battery_discharge=np.array([2.0]), grid_import=np.array([4.0]),
        home=np.array([6.0]), battery_charge=np.array([1.0]), grid_export=np.array([2.0]),
    )
    got = {k: float(f[k][0]) for k in FLOWS}
    # solar serves the home; the interval also held an export, which only the battery can have made
    assert got == {
        "solar_to_home": 3.0, "solar_to_battery": 0.0, "solar_to_grid": 0.0,
        "battery_to_home": 0.0, "battery_to_grid": 2.0,
        "grid_to_home": 3.0, "grid_to_battery": 1.0,
    }
    assert f["unplaced_grid_import"][0] == 0.0


def test_plain_day_and_night_follow_the_rule_directly():
    f = split_flows(
        solar=np.array([5.0, 0.0]), battery_discharge=np.array([0.0, 2.0]), grid_import=np.array([0.0, 1.0]),
        home=np.array([2.0, 3.0]), battery_charge=np.array([2.0, 0.0]), grid_export=np.array([1.0, 0.0]),
    )
    assert f["solar_to_home"].tolist() == [2.0, 0.0]
    assert f["solar_to_battery"].tolist() == [2.0, 0.0]
    assert f["solar_to_grid"].tolist() == [1.0, 0.0]
    assert f["battery_to_home"].tolist() == [0.0, 2.0]
    assert f["grid_to_home"].tolist() == [0.0, 1.0]


def test_pure_passthrough_cannot_be_placed_and_is_reported():
    f = split_flows(
        solar=np.zeros(1), battery_discharge=np.zeros(1), grid_import=np.ones(1),
        home=np.zeros(1), battery_charge=np.zeros(1), grid_export=np.ones(1),
    )
    assert f["unplaced_grid_import"][0] == 1.0
    assert f["unserved_grid_export"][0] == 1.0


@given(balanced(), st.floats(0, 1))
def test_ev_sources_sum_to_ev_share(e, share):
    flows = split_flows(**e)
    ev = e["home"] * share
    src = ev_sources(ev, e["home"], flows)
    np.testing.assert_allclose(src["solar"] + src["battery"] + src["grid"], ev, rtol=1e-9, atol=1e-6)
