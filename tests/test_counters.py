"""Counters: deltas with reset detection, spread over gaps, impossible jumps quarantined."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from homegrid.energy.counters import counter_delta_per_bucket, monotone_counter

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
