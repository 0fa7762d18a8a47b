"""Accounting only some rollup columns gives each of them as the whole table has it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.config import Config, VirtualHomeConfig
from homegrid.devices.virtual import VirtualHome
from homegrid.energy.accounting import account
from homegrid.readings import ReadingFrame, to_ms
from homegrid.readings.rollup import ROLLUP_COLUMNS
from homegrid.timezones import MINUTE_MS

START = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def day() -> tuple[ReadingFrame, np.ndarray]:
    """A summer day of the virtual home at 60 s, a counter reset and a gap of 20 minutes in it, and its minutes."""
    home = VirtualHome(Config(virtual=VirtualHomeConfig()), start=START)
    frame = home.simulate(datetime(2025, 6, 2, tzinfo=UTC), step_s=60)
    keep = (frame.time_ms < to_ms(START) + 600 * MINUTE_MS) | (frame.time_ms >= to_ms(START) + 620 * MINUTE_MS)
    cols = {n: c[keep].copy() for n, c in frame.columns.items()}
    cols["solar_energy_exported"][900:] -= cols["solar_energy_exported"][900] - 5.0  # the inverter reset
    return ReadingFrame(frame.time_ms[keep], cols), to_ms(START) + np.arange(1441, dtype=np.int64) * MINUTE_MS


@settings(max_examples=30, deadline=None)
@given(st.sets(st.sampled_from(ROLLUP_COLUMNS), min_size=1))
def test_each_column_asked_for_is_the_whole_tables(day, columns):
    frame, edges = day
    whole = account(frame, edges, 300.0)
    some = account(frame, edges, 300.0, columns)
    assert list(some.columns) == [c for c in ROLLUP_COLUMNS if c in columns]
    for name, values in some.columns.items():
        np.testing.assert_array_equal(values, whole.columns[name], err_msg=name)
    np.testing.assert_array_equal(some.start_ms, whole.start_ms)
    if "solar" in columns:
        assert [e.kind for _, e in some.counter_events] == ["reset"]


def test_the_whole_table_has_every_column_and_the_reset(day):
    frame, edges = day
    whole = account(frame, edges, 300.0)
    assert list(whole.columns) == list(ROLLUP_COLUMNS)
    assert [(n, e.kind) for n, e in whole.counter_events] == [("solar_energy_exported", "reset")]
    assert (whole.columns["covered_s"][600:620] == 0).all() and whole.columns["covered_s"][:590].min() == 60.0


def test_a_column_that_is_not_a_rollup_column_is_refused(day):
    frame, edges = day
    with pytest.raises(ValueError, match="not rollup columns: solar_w"):
        account(frame, edges, 300.0, ["solar", "solar_w"])
