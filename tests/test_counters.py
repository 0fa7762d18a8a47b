"""Counters: deltas with reset detection, spread over gaps, impossible jumps quarantined."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from homegrid.energy.counters import counter_delta_per_bucket, counters_per_bucket, monotone_counter

H = 3_600_000


def test_reset_counts_new_value_from_zero():
    t = np.array([0, H, 2 * H, 3 * H], dtype=np.int64)
    c = np.array([10_000.0, 11_000.0, 200.0, 900.0])  # device reset between hour 1 and 2
    s = monotone_counter(t, c)
    assert s.resets == 1
    np.testing.assert_allclose(s.energy_wh, [0, 1000, 1200, 1900])


def test_small_drop_is_jitter_not_reset():
    t = np.arange(5, dtype=np.int64) * H
    c = np.array([1000.0, 1010.0, 1009.0, 1012.0, 1020.0])
    s = monotone_counter(t, c)
    assert s.resets == 0
    assert s.energy_wh[-1] == 20.0


def test_impossible_jump_is_quarantined():
    t = np.array([0, 5_000, 10_000], dtype=np.int64)
    c = np.array([1000.0, 1000.0 + 5e6, 1001.0])  # 5 MWh in 5 s
    s = monotone_counter(t, c)
    assert s.quarantined == 1
    assert s.energy_wh[-1] == 1.0


def test_gap_delta_is_spread_over_the_gap_buckets():
    # hub down for 3 hours: the counter moved 3 kWh meanwhile
    t = np.array([0, 3 * H], dtype=np.int64)
    s = monotone_counter(t, np.array([5000.0, 8000.0]))
    delta, covered = counter_delta_per_bucket(s, np.arange(0, 4 * H + 1, H, dtype=np.int64))
    np.testing.assert_allclose(delta, [1000, 1000, 1000, 0])
    assert covered.tolist() == [True, True, True, False]


@given(arrays(np.float64, st.integers(2, 100), elements=st.floats(0, 1e4)))
def test_monotone_increasing_counter_total_is_last_minus_first(incs):
    c = 1e6 + np.cumsum(incs)
    t = np.arange(len(c), dtype=np.int64) * 60_000
    s = monotone_counter(t, c, max_power_w=1e9)
    assert np.all(np.diff(s.energy_wh) >= 0)
    np.testing.assert_allclose(s.energy_wh[-1], c[-1] - c[0], rtol=1e-9)


@st.composite
def meter_samples(draw):
    """Times with gaps (some past the 31-day spread limit) and a few counters read at them: growing, reset,
    jumping, or with missing samples."""
    n = draw(st.integers(0, 40))
    steps = draw(st.lists(st.sampled_from([1, 5_000, 60_000, H, 40 * 24 * H]), min_size=n, max_size=n))
    t = np.cumsum(np.array([0, *steps], dtype=np.int64))[:n] + 1_700_000_000_000
    counters = {}
    for k in range(draw(st.integers(1, 4))):
        incs = draw(arrays(np.float64, n, elements=st.floats(0, 5e3)))
        c = 1e6 * k + np.cumsum(incs)
        kind = draw(st.sampled_from(["grows", "reset", "jump", "gaps"]))
        if n > 2 and kind == "reset":
            c[n // 2 :] -= c[n // 2] * 0.9
        elif n > 2 and kind == "jump":
            c[n // 2] += 1e9
        elif n > 2 and kind == "gaps":
            c[:: 3] = np.nan
        counters[f"c{k}"] = c
    return t, counters


@given(meter_samples(), st.integers(1, 50))
def test_counters_read_together_give_what_each_gives_alone(samples, buckets):
    t, counters = samples
    lo = int(t[0]) - H if len(t) else 0
    hi = int(t[-1]) + H if len(t) else H
    edges = np.linspace(lo, hi, buckets + 1).astype(np.int64)
    together, events = counters_per_bucket(t, counters, edges)
    assert list(together) == list(counters)
    alone_events = []
    for name, values in counters.items():
        series = monotone_counter(t, values)
        alone_events += [(name, e) for e in series.events]
        delta, covered = counter_delta_per_bucket(series, edges)
        np.testing.assert_array_equal(together[name][0], delta)  # value for value, not approximately
        np.testing.assert_array_equal(together[name][1], covered)
    assert events == alone_events
