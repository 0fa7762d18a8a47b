"""Power to energy: trapezoidal, split exactly at bucket edges, gaps not bridged."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from homegrid.energy.integrate import coverage_per_bucket, energy_per_bucket, power_part, step_duration_per_bucket


def test_constant_power_one_hour_is_its_watt_hours():
    t = np.arange(0, 3_600_001, 5_000, dtype=np.int64)
    p = np.full(len(t), 1500.0)
    e = energy_per_bucket(t, p, np.array([0, 1_800_000, 3_600_000]), max_gap_s=300)
    np.testing.assert_allclose(e, [750.0, 750.0])


def test_ramp_split_mid_segment_is_exact():
    # 0 W at t=0 to 3600 W at t=3600 s: energy 1800 Wh, first half 450 Wh
    t = np.array([0, 3_600_000], dtype=np.int64)
    p = np.array([0.0, 3600.0])
    e = energy_per_bucket(t, p, np.array([0, 1_800_000, 3_600_000]), max_gap_s=4000)
    np.testing.assert_allclose(e, [450.0, 1350.0])


def test_gap_longer_than_bound_is_not_bridged_and_not_covered():
    t = np.array([0, 60_000, 1_000_000, 1_060_000], dtype=np.int64)
    p = np.full(4, 600.0)
    edges = np.array([0, 1_060_000])
    assert energy_per_bucket(t, p, edges, max_gap_s=300)[0] == 20.0  # two 60 s segments at 600 W
    assert coverage_per_bucket(t, p, edges, max_gap_s=300)[0] == 120.0


def test_nan_samples_are_skipped():
    t = np.array([0, 30_000, 60_000], dtype=np.int64)
    p = np.array([60.0, np.nan, 60.0])
    assert energy_per_bucket(t, p, np.array([0, 60_000]), max_gap_s=300)[0] == 1.0


def test_power_part_splits_signed_power():
    p = np.array([-5.0, 3.0, np.nan, 0.0])
    np.testing.assert_array_equal(power_part(p, +1)[[0, 1, 3]], [0, 3, 0])
    np.testing.assert_array_equal(power_part(p, -1)[[0, 1, 3]], [5, 0, 0])
    assert np.isnan(power_part(p, 1)[2])


@given(
    st.integers(2, 200).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(1, 120_000)),
            arrays(np.float64, n, elements=st.floats(-10_000, 10_000)),
        )
    ),
    st.integers(1, 50),
)
def test_buckets_add_up_to_the_whole(steps_and_power, nb):
    steps, p = steps_and_power
    t = np.cumsum(steps)
    whole = energy_per_bucket(t, p, np.array([t[0], t[-1]]), max_gap_s=100)[0]
    edges = np.linspace(t[0], t[-1], nb + 1).astype(np.int64)
    edges[-1] = t[-1]
    parts = energy_per_bucket(t, p, edges, max_gap_s=100)
    np.testing.assert_allclose(parts.sum(), whole, rtol=1e-9, atol=1e-6)


def test_held_state_duration():
    t = np.array([0, 60_000, 90_000, 200_000], dtype=np.int64)
    active = np.array([1.0, 0.0, 1.0, 0.0])
    d = step_duration_per_bucket(t, active, np.array([0, 60_000, 120_000, 240_000]), max_gap_s=300)
    np.testing.assert_allclose(d, [60.0, 30.0, 80.0])
