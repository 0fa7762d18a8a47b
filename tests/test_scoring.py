"""The benchmark's scoring (bench/scoring.py): precision and recall of detected outages against ground truth."""

import pytest

from bench.scoring import match_events
from homegrid.energy.outages import Outage


def test_match_events_counts_found_missed_false_and_split():
    truth = [(0, 20_000), (40_000, 50_000), (500_000, 500_300), (900_000, 990_000)]  # the first two merge
    detected = [Outage(5_000, 45_000), Outage(500_301, 500_301), Outage(700_000, 710_000),
                Outage(900_000, 920_000), Outage(985_000, 995_000)]
    m = match_events(detected, truth)
    assert (m["truth"], m["found"], m["missed"]) == (3, 3, 0)
    assert (m["detected"], m["correct"], m["false_positive"], m["split"]) == (5, 4, 1, 1)
    assert m["precision"] == pytest.approx(0.8) and m["recall"] == 1.0
    strict = match_events(detected, truth, tolerance_ms=0)
    assert strict["found"] == 2 and strict["recall"] == pytest.approx(2 / 3)
    long = match_events(detected, truth, min_duration_s=10)
    assert (long["truth"], long["found"], long["false_positive"]) == (2, 2, 1)
    blips = match_events(detected, truth, max_duration_s=1)
    assert (blips["truth"], blips["found"], blips["detected"]) == (1, 1, 1)
    assert match_events([], truth)["recall"] == 0.0 and match_events([], [])["precision"] == 1.0
