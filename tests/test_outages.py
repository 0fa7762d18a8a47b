"""Outage detection (issue 4): the rules, the hub-down cases, intentional tests, figures, the monthly
summary, invariants, and accuracy against the virtual home's ground truth."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.scoring import match_events
from homegrid.config import Config
from homegrid.devices.powerwall.replies import GridFault, parse_grid_faults
from homegrid.devices.virtual import VirtualHome
from homegrid.devices.virtual.faults import ALERTS, grid_faults, toggles_seen
from homegrid.devices.virtual.outages import outage_schedule
from homegrid.energy.outages import (
    DEFAULT_MERGE_GAP_MS,
    Outage,
    detect_grid_events,
    detect_outages,
    grid_fault_evidence,
    merge_intervals,
    merge_outages,
    monthly_summary,
    outage_figures,
    saved_sentence,
)
from homegrid.glossary import GridStatus
from homegrid.readings import GridEvidence, ReadingFrame, to_ms

from .conftest import SHARED_DATA

NY = ZoneInfo("America/New_York")
T0 = to_ms(datetime(2025, 6, 1, tzinfo=UTC))
STEP = 5_000
GAP = 12_500  # 2.5 polls
CODES = {"C": float(GridStatus.CONNECTED), "I": float(GridStatus.ISLANDED), "T": float(GridStatus.TRANSITION),
         "U": float(GridStatus.UNKNOWN), "?": math.nan}


def series(pattern: str, step_ms: int = STEP, t0: int = T0) -> tuple[np.ndarray, np.ndarray]:
    """Readings every step: C connected, I islanded, T transition, U unknown, ? no status, . no reading."""
    keep = [i for i, c in enumerate(pattern) if c != "."]
    t = t0 + np.array(keep, dtype=np.int64) * step_ms
    return t, np.array([CODES[pattern[i]] for i in keep])


def at(i: int, step_ms: int = STEP) -> int:
    return T0 + i * step_ms


def fault(t_ms: int, name: str = "PINV_a006_vfCheckUnderFrequency") -> GridEvidence:
    return GridEvidence(t_ms, "grid_fault", name)


def detect(pattern: str, evidence=(), **kw) -> list[Outage]:
    t, s = series(pattern)
    kw.setdefault("max_gap_ms", GAP)
    return detect_outages(t, s, None, evidence, **kw)


# ----------------------------------------------------------------------------- samples and poll windows


def test_a_run_of_islanded_samples_is_one_outage_held_until_the_next_sample():
    (o,) = detect("CCIIIICC")
    assert (o.start_ms, o.end_ms) == (at(2), at(6))
    assert not o.start_exact and not o.end_exact
    assert (o.start_earliest_ms, o.end_latest_ms) == (at(1), at(6))
    assert o.evidence == ("grid_status",) and o.parts == 1 and not o.intentional
    assert o.duration_ms == 20_000


def test_transition_is_still_off_the_grid_and_unknown_says_nothing():
    (o,) = detect("CCIITCC")
    assert o.end_ms == at(5)
    assert detect("CCUU??CC") == []
    (o,) = detect("CCI??ICC")  # unknown samples are not looked at: the run goes on through them
    assert (o.start_ms, o.end_ms) == (at(2), at(6))


def test_a_fault_entry_in_the_start_window_pins_the_start():
    (o,) = detect("CCIIICC", [fault(at(1) + 3_100)])
    assert o.start_ms == at(1) + 3_100 and o.start_exact and o.start_earliest_ms == o.start_ms
    assert o.evidence == ("grid_status", "grid_fault:PINV_a006_vfCheckUnderFrequency")
    # a pinned start does not lag by half a poll: the end is put in the middle of its window, not at its end
    assert o.end_ms == (at(4) + at(5)) // 2 and not o.end_exact and o.end_latest_ms == at(5)


def test_a_fault_entry_late_in_the_end_window_holds_the_end_there():
    late = at(4) + 4_000
    (o,) = detect("CCIIICC", [fault(at(1) + 3_100), fault(late, "PINV_a004_vfCheckUnderVoltage")])
    assert o.end_ms == late and o.parts == 1
    (o,) = detect("CCIIICC")  # from polls alone both edges lag by half a poll on average: both stay put
    assert (o.start_ms, o.end_ms) == (at(2), at(5))


def test_the_earliest_of_several_entries_in_one_poll_window_pins_it():
    (o,) = detect("CCIIICC", [fault(at(1) + 4_000, "PINV_a008_vfCheckRocof"), fault(at(1) + 900)])
    assert o.start_ms == at(1) + 900 and o.parts == 1
    assert "grid_fault:PINV_a008_vfCheckRocof" in o.evidence


def test_a_fault_entry_inside_an_outage_is_evidence_not_an_event():
    (o,) = detect("CCIIIIIICC", [fault(at(5) + 10)])
    assert o.start_ms == at(2) and not o.start_exact
    assert "grid_fault:PINV_a006_vfCheckUnderFrequency" in o.evidence


def test_a_lone_fault_entry_is_a_disturbance_not_an_interruption():
    f = at(3) + 1_500
    t, s = series("CCCCCCCC")
    found = detect_grid_events(t, s, None, [fault(f)], max_gap_ms=GAP)
    assert found.outages == []
    (d,) = found.disturbances
    assert d.time_ms == f and d.name == "PINV_a006_vfCheckUnderFrequency"


def test_a_fault_entry_next_to_a_toggle_change_the_polls_missed_is_a_blip():
    f, toggled = at(3) + 1_500, at(3) + 3_200
    t, s = series("CCCCCCCC")
    found = detect_grid_events(t, s, None, [fault(f), GridEvidence(toggled, "island_toggle", "")], max_gap_ms=GAP)
    (o,) = found.outages
    assert found.disturbances == []
    assert (o.start_ms, o.end_ms) == (f, toggled) and o.start_exact and o.end_exact
    assert set(o.evidence) == {"grid_fault:PINV_a006_vfCheckUnderFrequency", "island_toggle"}


def test_the_recorded_gateway_log_is_three_disturbances_while_connected():
    """A real gateway logged three warnings within 200 ms while its grid status said connected."""
    reply = json.loads((SHARED_DATA / "powerwall" / "tesla_powerwall" / "fixtures" / "system_status.json")
                       .read_text())["grid_faults"]
    ev = grid_fault_evidence(parse_grid_faults(reply))
    assert len(ev) == 3
    t0 = min(e.time_ms for e in ev)
    t, s = series("C" * 20, t0=t0 - 30_000)
    found = detect_grid_events(t, s, None, ev, max_gap_ms=GAP)
    assert found.outages == []
    assert [d.name for d in found.disturbances] == ["PINV_a004_vfCheckUnderVoltage", "PINV_a007_vfCheckOverFrequency",
                                                    "PINV_a008_vfCheckRocof"]


# ----------------------------------------------------------------------------- the merge rule


def test_flickers_closer_than_the_merge_gap_are_one_event():
    close = "CCII" + "C" * 10 + "IICC"  # 50 s from the first's end to the second's start
    (o,) = detect(close)
    assert o.parts == 2 and (o.start_ms, o.end_ms) == (at(2), at(16))
    far = "CCII" + "C" * 13 + "IICC"  # 65 s apart
    assert len(detect(far)) == 2
    assert len(detect("CCII" + "C" * 12 + "IICC")) == 2  # exactly 60 s apart: two events
    assert len(detect(close, merge_gap_ms=0)) == 2  # only overlapping events merge
    assert len(detect(far, merge_gap_ms=120_000)) == 1


def test_merging_is_idempotent_and_keeps_events_apart():
    events = detect("CII" + "C" * 20 + "II" + "C" * 30 + "ICC", [GridEvidence(at(40) + 50, "island_toggle", "")])
    assert len(events) == 4
    again = merge_outages(events, DEFAULT_MERGE_GAP_MS)
    assert again == events
    wider = merge_outages(events, 200_000)
    assert len(wider) == 1 and wider[0].parts == sum(e.parts for e in events)
    assert merge_outages(wider, 200_000) == wider


def test_merge_intervals_is_the_same_rule():
    s = np.array([0, 10_000, 100_000, 159_999, 300_000], dtype=np.int64)
    e = np.array([5_000, 40_000, 100_000, 170_000, 301_000], dtype=np.int64)
    ms, me = merge_intervals(s, e, 60_000)
    assert ms.tolist() == [0, 100_000, 300_000] and me.tolist() == [40_000, 170_000, 301_000]
    ms2, me2 = merge_intervals(ms, me, 60_000)
    assert ms2.tolist() == ms.tolist() and me2.tolist() == me.tolist()


# ----------------------------------------------------------------------------- the hub was down


def test_islanded_on_both_sides_of_a_gap_is_one_outage_through_it():
    (o,) = detect("CCIII" + "." * 20 + "IIICC")
    assert (o.start_ms, o.end_ms) == (at(2), at(28))
    assert "hub_down_during" in o.evidence
    assert "hub_down_at_start" not in o.evidence and "hub_down_at_end" not in o.evidence


def test_islanded_only_before_a_gap_ends_somewhere_in_it():
    (o,) = detect("CCIII" + "." * 20 + "CCC")
    assert o.start_ms == at(2)
    assert o.end_ms == at(4) + GAP and not o.end_exact and o.end_latest_ms == at(25)
    assert "hub_down_at_end" in o.evidence


def test_islanded_only_after_a_gap_started_somewhere_in_it():
    (o,) = detect("CCC" + "." * 20 + "IIICC")
    assert o.start_ms == at(23) and not o.start_exact and o.start_earliest_ms == at(2)
    assert "hub_down_at_start" in o.evidence and o.end_ms == at(26)


def test_the_latest_fault_in_the_gap_pins_the_start_and_earlier_ones_stand_alone():
    early, late = at(5), at(18) + 400
    t, s = series("CCC" + "." * 20 + "IIICC")
    found = detect_grid_events(t, s, None, [fault(early, "PINV_a004_vfCheckUnderVoltage"), fault(late)],
                               max_gap_ms=GAP)
    (o,) = found.outages
    assert o.start_ms == late and o.start_exact and "hub_down_at_start" in o.evidence
    (d,) = found.disturbances  # the earlier entry has no islanding evidence of its own
    assert d.time_ms == early


def test_connected_on_both_sides_only_evidence_in_the_gap_makes_events():
    assert detect("CCC" + "." * 20 + "CCC") == []
    assert detect("CCC" + "." * 20 + "CCC", [fault(at(10))]) == []  # a fault entry alone: a disturbance
    toggled = GridEvidence(at(12), "island_toggle", "")
    (o,) = detect("CCC" + "." * 20 + "CCC", [fault(at(10)), toggled])
    assert (o.start_ms, o.end_ms) == (at(10), at(12)) and "hub_down_during" in o.evidence
    backup = GridEvidence(at(8), "backup_event", "", duration_ms=95_000)
    (o,) = detect("CCC" + "." * 40 + "CCC", [backup])
    assert (o.start_ms, o.end_ms) == (at(8), at(8) + 95_000) and o.start_exact and o.end_exact


def test_an_outage_at_the_last_reading_is_ongoing_while_the_hub_is_looking():
    t, s = series("CCIII")
    last = int(t[-1])
    (o,) = detect_outages(t, s, max_gap_ms=GAP)
    assert o.end_ms is None and o.end_latest_ms is None
    (o,) = detect_outages(t, s, max_gap_ms=GAP, now_ms=last + 8_000)
    assert o.end_ms is None
    (o,) = detect_outages(t, s, max_gap_ms=GAP, now_ms=last + 3_600_000)
    assert o.end_ms == last + GAP and o.end_latest_ms == last + 3_600_000 and "hub_down_at_end" in o.evidence


def test_the_first_reading_islanded_started_before_the_hub_looked():
    (o,) = detect("IIICC")
    assert o.start_ms == T0 and o.start_earliest_ms is None and "hub_down_at_start" in o.evidence


# ----------------------------------------------------------------------------- other evidence


def test_voltage_marks_outages_where_there_is_no_grid_status():
    t, s = series("????????")
    v = np.array([240.0, 239.0, 0.0, 0.0, 3.0, 241.0, np.nan, 240.0])
    (o,) = detect_outages(t, s, v, max_gap_ms=GAP)
    assert (o.start_ms, o.end_ms) == (at(2), at(5)) and o.evidence == ("grid_voltage",)
    status = np.full(8, CODES["C"])
    assert detect_outages(t, status, v, max_gap_ms=GAP) == []  # a status, where there is one, wins
    assert detect_outages(t, s, np.full(8, 120.0), max_gap_ms=GAP) == []


def test_backup_history_pins_both_edges():
    start, end = at(1) + 2_000, at(5) + 1_000
    (o,) = detect("CCIIIICC", [GridEvidence(start, "backup_event", "", duration_ms=end - start)])
    assert (o.start_ms, o.end_ms) == (start, end) and o.start_exact and o.end_exact
    assert o.end_latest_ms == end and "backup_event" in o.evidence


def test_an_owner_test_is_intentional_and_not_an_interruption():
    test = [GridEvidence(at(2) - 1_000, "island_status", "off_grid_intentional", intentional=True),
            GridEvidence(at(40) + 500, "island_status", "on_grid")]
    (o,) = detect("CC" + "I" * 38 + "CCC", test)
    assert o.intentional and "island_status:off_grid_intentional" in o.evidence
    real = [GridEvidence(at(2) - 1_000, "island_status", "off_grid_unintentional", intentional=False)]
    (r,) = detect("CC" + "I" * 38 + "CCC", real)
    assert not r.intentional
    (mixed,) = detect("CC" + "I" * 38 + "CCC", [*test, GridEvidence(at(20), "island_status", "off_grid_unintentional",
                                                                     intentional=False)])
    assert not mixed.intentional  # the grid failed during the test: a real outage
    months = monthly_summary([dataclasses.asdict(o) | {"duration_s": 190.0, "saved": True},
                              dataclasses.asdict(r) | {"duration_s": 190.0, "saved": True}], NY)
    assert months[0]["count"] == 1 and months[0]["intentional"] == 1 and months[0]["saved"] == 1


def test_the_cloud_alone_shows_an_outage_the_hub_did_not_see():
    changes = [GridEvidence(at(10), "island_status", "off_grid_unintentional", intentional=False),
               GridEvidence(at(70), "island_status", "on_grid")]
    (o,) = detect("CCC" + "." * 80 + "CC", changes)
    assert (o.start_ms, o.end_ms) == (at(10), at(70)) and not o.start_exact and not o.intentional
    assert o.start_earliest_ms == at(2)


def test_evidence_kinds_are_checked():
    with pytest.raises(ValueError, match="evidence kind"):
        GridEvidence(0, "rumour", "x")
    with pytest.raises(ValueError, match="max_gap_ms"):
        detect_outages(np.array([0]), np.array([1.0]), max_gap_ms=0)


# ----------------------------------------------------------------------------- invariants


@st.composite
def histories(draw):
    n = draw(st.integers(0, 80))
    steps = draw(st.lists(st.sampled_from([1_000, 5_000, 5_000, 5_000, 30_000, 200_000]), min_size=n, max_size=n))
    t = T0 + np.cumsum(np.array(steps, dtype=np.int64)) if n else np.zeros(0, dtype=np.int64)
    codes = draw(st.lists(st.sampled_from(["C", "C", "I", "I", "T", "U", "?"]), min_size=n, max_size=n))
    span = int(t[-1] - T0) + 60_000 if n else 60_000
    faults = draw(st.lists(st.integers(-30_000, span), max_size=6))
    backups = draw(st.lists(st.tuples(st.integers(-30_000, span), st.integers(0, 120_000)), max_size=2))
    ev = [fault(T0 + x) for x in faults] + [GridEvidence(T0 + a, "backup_event", "", duration_ms=d) for a, d in backups]
    island = draw(st.lists(st.tuples(st.integers(-30_000, span), st.sampled_from(
        [("off_grid_intentional", True), ("off_grid_unintentional", False), ("on_grid", None)])), max_size=4))
    ev += [GridEvidence(T0 + x, "island_status", name, intentional=flag) for x, (name, flag) in island]
    toggles = draw(st.lists(st.integers(-30_000, span), max_size=4))
    ev += [GridEvidence(T0 + x, "island_toggle", "last_toggle_timestamp") for x in toggles]
    merge = draw(st.sampled_from([0, 10_000, 60_000, 300_000]))
    now = draw(st.one_of(st.none(), st.integers(0, 3_600_000)))
    return t, np.array([CODES[c] for c in codes]), ev, merge, None if now is None else int(t[-1] if n else T0) + now


@settings(max_examples=300, deadline=None)
@given(histories())
def test_events_are_sorted_disjoint_cover_every_outage_sample_and_lose_no_evidence(h):
    t, status, ev, merge, now = h
    found = detect_grid_events(t, status, None, ev, max_gap_ms=GAP, merge_gap_ms=merge, now_ms=now)
    events = found.outages
    lone = {(d.time_ms, d.name) for d in found.disturbances}
    assert len(lone) == len(found.disturbances)
    for a, b in itertools.pairwise(events):
        assert a.end_ms is not None and b.start_ms - a.end_ms >= merge
    for o in events:
        end = math.inf if o.end_ms is None else o.end_ms
        assert end >= o.start_ms
        assert o.start_earliest_ms is None or o.start_earliest_ms <= o.start_ms
        assert o.end_latest_ms is None or o.end_latest_ms >= end
        assert not o.start_exact or o.start_earliest_ms == o.start_ms
        assert any(not x.startswith("hub_down") for x in o.evidence)
    down = t[np.isin(status, [CODES["I"], CODES["T"]])]
    for x in down.tolist():
        assert any(o.start_ms <= x <= (math.inf if o.end_ms is None else o.end_ms) for o in events), x
    for e in ev:  # every backup start (and fault entry not a disturbance) lies inside an event, named there
        if e.kind == "grid_fault" and (e.time_ms, e.name) in lone:
            continue
        known = t[~np.isin(status, [CODES["U"]]) & ~np.isnan(status)]
        if e.kind == "island_toggle" and not np.any(known < e.time_ms):
            continue  # no reading before it: nobody knows what it ended
        if e.kind == "island_status":  # an off-grid change is named in some event (the cloud's clock is loose)
            assert not e.off_grid or any(e.label in o.evidence for o in events), e
            continue
        hit = [o for o in events if o.start_ms <= e.time_ms <= (math.inf if o.end_ms is None else o.end_ms)]
        assert any(e.label in o.evidence for o in hit), e
    for o in events:  # intentional only when an owner's test is named and no real outage is
        assert not o.intentional or "island_status:off_grid_intentional" in o.evidence
    assert merge_outages(events, merge) == events


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**6)), max_size=30), st.integers(0, 10**6))
def test_merge_intervals_is_idempotent_and_leaves_gaps_of_at_least_the_rule(pairs, gap):
    s = np.array([a for a, _ in pairs], dtype=np.int64)
    e = s + np.array([d for _, d in pairs], dtype=np.int64)
    ms, me = merge_intervals(s, e, gap)
    assert np.all(me >= ms) and np.all(ms[1:] - me[:-1] >= gap)
    assert all(any(a >= x and b <= y for x, y in zip(ms, me, strict=True)) for a, b in zip(s, e, strict=True))
    ms2, me2 = merge_intervals(ms, me, gap)
    assert np.array_equal(ms, ms2) and np.array_equal(me, me2)


# ----------------------------------------------------------------------------- figures


def frame_of(pattern: str, **cols) -> ReadingFrame:
    t, s = series(pattern)
    values = {"grid_status": s}
    for name, col in cols.items():
        values[name] = np.asarray(col, dtype=float) if np.ndim(col) else np.full(len(t), float(col))
    return ReadingFrame(t, values)


def test_figures_of_an_outage_the_battery_carried():
    p = "CC" + "I" * 120 + "CC"  # 10 min islanded
    n = len(p)
    battery = np.where(np.array(list(p)) == "I", 1_000.0, 0.0)
    soc = np.linspace(80.0, 70.0, n)
    f = frame_of(p, home_power=1_200.0, solar_power=200.0, battery_power=battery, battery_soc=soc)
    (o,) = detect_outages(f.time_ms, f.column("grid_status"), max_gap_ms=GAP)
    fig = outage_figures(o, f)
    assert fig["duration_s"] == 600.0 and fig["saved"] is True and fig["samples"] == 120
    # 1 kW for 595 s, then a ramp down to 0 over the last 5 s (trapezoid)
    assert fig["battery_wh"] == pytest.approx(1_000 * 597.5 / 3600, abs=1e-3)
    assert fig["solar_wh"] == pytest.approx(200 * 600 / 3600, abs=1e-3)
    assert fig["min_soc"] == pytest.approx(soc[121], abs=1e-3) and fig["peak_load_w"] == 1_200.0


def test_a_home_that_went_dark_was_not_saved():
    p = "CC" + "I" * 20 + "CC"
    home = np.full(len(p), 900.0)
    home[15:22] = 0.0
    f = frame_of(p, home_power=home, battery_soc=np.where(home > 0, 10.0, 0.0))
    (o,) = detect_outages(f.time_ms, f.column("grid_status"), max_gap_ms=GAP)
    fig = outage_figures(o, f)
    assert fig["saved"] is False and fig["min_soc"] == 0.0


def test_readings_that_stop_after_the_battery_hit_its_floor_mean_the_home_went_dark():
    p = "CCIIII" + "." * 100 + "CCC"
    soc = np.array([30.0, 30.0, 5.0, 3.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    f = frame_of(p, home_power=800.0, battery_soc=soc)
    (o,) = detect_outages(f.time_ms, f.column("grid_status"), max_gap_ms=GAP)
    assert outage_figures(o, f)["saved"] is False
    f2 = frame_of(p, home_power=800.0, battery_soc=50.0)  # a hub restart with a full battery: still saved
    assert outage_figures(o, f2)["saved"] is True


def test_a_blip_between_polls_has_no_energy_and_is_judged_from_the_reading_before():
    f = frame_of("C" * 10, home_power=700.0, battery_power=300.0, battery_soc=55.0)
    toggled = GridEvidence(at(4) + 1_000, "island_toggle", "")
    (o,) = detect_outages(f.time_ms, f.column("grid_status"), None, [toggled], max_gap_ms=GAP)
    fig = outage_figures(o, f)
    assert fig == {"duration_s": 0.0, "saved": True, "battery_wh": 0.0, "solar_wh": 0.0,
                   "min_soc": 55.0, "peak_load_w": None, "samples": 0}
    empty = frame_of("C" * 10, home_power=700.0, battery_soc=0.5)
    assert outage_figures(o, empty)["saved"] is False
    assert outage_figures(o, ReadingFrame(f.time_ms, {}))["saved"] is None


def test_an_ongoing_outage_counts_up_to_the_last_reading():
    f = frame_of("CC" + "I" * 13, home_power=500.0)
    (o,) = detect_outages(f.time_ms, f.column("grid_status"), max_gap_ms=GAP)
    assert o.end_ms is None
    fig = outage_figures(o, f)
    assert fig["duration_s"] == 60.0 and fig["samples"] == 13


# ----------------------------------------------------------------------------- the monthly summary


def event(local: str, seconds: float, saved: bool | None = True, intentional: bool = False) -> dict:
    start = to_ms(datetime.fromisoformat(local).replace(tzinfo=NY))
    return {"start_ms": start, "end_ms": start + int(seconds * 1000), "duration_s": seconds, "saved": saved,
            "intentional": intentional}


def test_monthly_summary_counts_in_local_months_across_dst_and_month_ends():
    events = [
        event("2025-03-09T01:59:00", 120.0),  # across the spring-forward jump: 2 real minutes, not 62
        event("2025-03-20T12:00:00", 20.0),
        event("2025-03-31T23:50:00", 1_800.0),  # runs into April; counts, whole, in March
        event("2025-04-02T08:00:00", 3.0, saved=False),
        event("2025-04-05T08:00:00", 600.0, intentional=True),
        event("2025-10-31T23:30:00", 45.0),  # 03:30 UTC on 1 November: still October here
    ]
    months = {m["month"]: m for m in monthly_summary(events, NY)}
    assert list(months) == ["2025-03", "2025-04", "2025-10"]
    mar = months["2025-03"]
    assert (mar["count"], mar["under_1_min"], mar["saved"]) == (3, 1, 3)
    assert mar["minutes"] == pytest.approx(2 + 20 / 60 + 30, abs=0.01)
    assert mar["sentence"] == "Your battery saved you from 3 interruptions (32 minutes) this month."
    apr = months["2025-04"]
    assert (apr["count"], apr["saved"], apr["not_saved"], apr["intentional"]) == (1, 0, 1, 1)
    assert apr["sentence"] == ("Your battery saved you from no interruptions this month. "
                               "1 interruption left the home without power.")
    assert months["2025-10"]["sentence"] == "Your battery saved you from 1 interruption (under a minute) this month."


def test_saved_sentence_singular_and_plural():
    assert saved_sentence(1, 1.2) == "Your battery saved you from 1 interruption (1 minute) this month."
    assert saved_sentence(2, 0.0) == "Your battery saved you from 2 interruptions (under a minute) this month."
    assert saved_sentence(0, 0.0) == "No interruptions this month."
    assert saved_sentence(3, 10.0, 2).endswith("2 interruptions left the home without power.")


def test_monthly_summary_takes_bare_outages():
    o = Outage(to_ms(datetime(2025, 7, 1, 4, tzinfo=UTC)), to_ms(datetime(2025, 7, 1, 4, 2, tzinfo=UTC)))
    (m,) = monthly_summary([o, Outage(o.start_ms + 3_600_000, None)], NY)
    assert m["month"] == "2025-07" and m["count"] == 2 and m["minutes"] == 2.0 and m["saved"] == 0


# ----------------------------------------------------------------------------- the virtual fault log


def test_the_virtual_fault_log_marks_most_outage_starts_and_holds_disturbances_that_did_not_island():
    a, b = to_ms(datetime(2025, 1, 1, tzinfo=UTC)), to_ms(datetime(2025, 7, 1, tzinfo=UTC))
    log = grid_faults(2017, 400, a, b)
    starts, ends = outage_schedule(2017, 400, a, b)
    starts, ends = starts[starts >= a], ends[starts >= a]
    at_start = [f for f in log if f.time_ms in set(starts.tolist())]
    lone = [f for f in log if f.time_ms not in set(starts.tolist())]
    assert 0.75 <= len(at_start) / len(starts) < 1.0 and len(at_start) > 150  # some outages leave no entry
    assert len(lone) >= len(log) / 3  # at least a third of the log did not island the home
    k = np.searchsorted(starts, [f.time_ms for f in lone], side="right") - 1
    assert all(f.time_ms >= ends[i] + 600_000 or i < 0 for f, i in zip(lone, k.tolist(), strict=True))
    assert all(isinstance(f, GridFault) and not f.is_fault and f.detail["PINV_alertID"] == f.name for f in log)
    assert {f.name for f in at_start} == {a[0] for a in ALERTS}
    assert {f.kind for f in lone} == {"over_voltage", "under_voltage", "under_frequency", "over_frequency"}
    assert all(f.unit == ("V" if "Voltage" in f.name else "Hz") and f.value is not None for f in lone)
    assert log == grid_faults(2017, 400, a, b)
    mid = to_ms(datetime(2025, 3, 15, tzinfo=UTC))
    assert grid_faults(2017, 400, a, mid) + grid_faults(2017, 400, mid, b) == log  # windows do not matter
    assert grid_faults(2018, 400, a, b) != log and grid_faults(2017, 400, b, a) == []
    under = [f.detail["PINV_a006_frequency"] for f in at_start if f.name == "PINV_a006_vfCheckUnderFrequency"]
    assert under and all(55.0 <= x <= 59.3 for x in under)
    assert grid_faults(2017, 0, a, b) == []


# ----------------------------------------------------------------------------- ground truth


YEAR = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def _config(**virtual) -> Config:
    base = Config()
    return base.replace(virtual=base.virtual.replace(**virtual))


@pytest.fixture(scope="module")
def simulated_year():
    """A year of the virtual home at 5 s with 400 outages a year: readings kept where outages are."""
    config = _config(outages_per_year=400)
    v = config.virtual
    a, b = (to_ms(x) for x in YEAR)
    truth = outage_schedule(v.seed, v.outages_per_year, a, b)
    near_s, near_e = merge_intervals(truth[0] - 600_000, truth[1] + 600_000, 0)
    home = VirtualHome(config, start=YEAR[0])
    times, status, kept = [], [], []
    month = YEAR[0]
    while month < YEAR[1]:
        nxt = (month + timedelta(days=32)).replace(day=1)
        f = home.simulate(nxt, step_s=5.0)
        times.append(f.time_ms)
        status.append(f.column("grid_status").astype(np.float32))
        k = np.searchsorted(near_s, f.time_ms, side="right") - 1
        near = (k >= 0) & (f.time_ms < near_e[np.maximum(k, 0)])
        kept.append(ReadingFrame(f.time_ms[near], {n: f.column(n)[near] for n in (
            "grid_status", "home_power", "battery_power", "solar_power", "battery_soc")}))
        month = nxt
    faults = grid_fault_evidence(grid_faults(v.seed, v.outages_per_year, a, b))
    return (np.concatenate(times), np.concatenate(status).astype(np.float64), ReadingFrame.concat(kept),
            truth, faults, b)


@pytest.mark.slow
def test_a_simulated_year_at_5_s_is_detected_with_precision_and_recall_of_099(simulated_year):
    t, status, _, truth, faults, end = simulated_year
    events = detect_outages(t, status, None, faults, max_gap_ms=GAP, now_ms=end)
    assert match_events(events, truth)["truth"] >= 200  # several hundred interruptions, after merging
    for lo, hi in ((10, None), (0, None), (0, 5)):
        m = match_events(events, truth, min_duration_s=lo, max_duration_s=hi)
        assert m["precision"] >= 0.99 and m["recall"] >= 0.99, (lo, hi, m)
    assert match_events(events, truth)["split"] == 0
    # a step that touches an outage reads islanded: edges are off by less than one step, never more
    ms, me = merge_intervals(*truth)
    starts = np.array([o.start_ms for o in events])
    ends = np.array([o.end_ms for o in events])
    k = np.searchsorted(starts, me, side="left") - 1
    assert np.all(starts[k] <= ms) and np.all(ms - starts[k] < STEP)
    assert np.all(ends[k] >= me) and np.all(ends[k] - me <= STEP)


def test_the_years_monthly_figures_agree_with_ground_truth(simulated_year):
    t, status, frame, truth, faults, end = simulated_year
    events = detect_outages(t, status, None, faults, max_gap_ms=GAP, now_ms=end)
    rows = [dataclasses.asdict(o) | outage_figures(o, frame) for o in events]
    ms, me = merge_intervals(*truth)
    true_rows = [{"start_ms": int(s), "end_ms": int(e), "duration_s": (int(e) - int(s)) / 1000, "saved": True}
                 for s, e in zip(ms, me, strict=True)]
    got = {m["month"]: m for m in monthly_summary(rows, NY)}
    want = {m["month"]: m for m in monthly_summary(true_rows, NY)}
    assert got.keys() == want.keys() and len(got) == 12
    for key, w in want.items():
        g = got[key]
        assert g["count"] == w["count"]
        # a step that touches an outage reads islanded: each event is up to one step longer at each end
        assert 0 <= g["minutes"] - w["minutes"] <= g["count"] * 2 * STEP / 60_000 + 0.01
        assert abs(g["under_1_min"] - w["under_1_min"]) <= 2
    # saved: the home went dark exactly in the events where a reading inside shows it dark
    for o, r in zip(events, rows, strict=True):
        inside = frame.between(o.start_ms, o.end_ms)
        dark = bool(np.any(inside.column("home_power") <= 10.0))
        assert r["saved"] is (not dark)
        assert r["battery_wh"] >= 0 and r["solar_wh"] >= 0 and r["samples"] == len(inside)
    dark_events = [r for r in rows if r["saved"] is False]
    assert dark_events and all(r["min_soc"] < 1.0 for r in dark_events)
    assert sum(m["saved"] for m in got.values()) == len(rows) - len(dark_events)


def _instant_status(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A gateway polled at instants: islanded exactly when the instant lies in an outage."""
    k = np.searchsorted(starts, t, side="right") - 1
    down = (k >= 0) & (t < ends[np.maximum(k, 0)])
    return np.where(down, CODES["I"], CODES["C"])


def test_instant_polls_match_what_the_virtual_home_reports_when_polled():
    config = _config(outages_per_year=400)
    a, b = (to_ms(x) for x in YEAR)
    s, e = outage_schedule(config.virtual.seed, 400, a, b)
    i = int(np.argmax((e - s > 20_000) & (e - s < 120_000)))
    clock = [datetime.fromtimestamp((int(s[i]) - 30_000) / 1000, UTC)]
    home = VirtualHome(config, clock=lambda: clock[0], start=clock[0])
    seen = []
    for _ in range(int((e[i] - s[i]) / 1000 + 60)):
        reading = asyncio.run(home.poll())
        seen.append((to_ms(reading.time), reading.values["grid_status"]))
        clock[0] += timedelta(seconds=1)
    tt = np.array([x for x, _ in seen], dtype=np.int64)
    assert np.array_equal(np.array([x for _, x in seen]), _instant_status(tt, s, e))
    assert {x for _, x in seen} == {CODES["C"], CODES["I"]}


@pytest.mark.parametrize(("step_s", "days"), [(1, 31), (5, 365), (30, 365)])
def test_polls_at_instants_catch_blips_through_the_toggle_time_not_the_fault_log(step_s, days):
    """A poll sees the grid at its instant only: blips between polls are caught by the island toggle time; the
    fault log alone (half of it disturbances) makes no interruption."""
    config = _config(outages_per_year=400)
    a = to_ms(YEAR[0])
    b = a + days * 86_400_000
    s, e = outage_schedule(config.virtual.seed, 400, a, b)
    t = np.arange(a, b, step_s * 1000, dtype=np.int64)
    status = _instant_status(t, s, e)
    faults = grid_fault_evidence(grid_faults(config.virtual.seed, 400, a, b))
    gap = int(2.5 * step_s * 1000)
    with_log = detect_outages(t, status, None, faults + toggles_seen(t, s, e), max_gap_ms=gap, now_ms=b)
    without = detect_outages(t, status, None, (), max_gap_ms=gap, now_ms=b)
    log_only = detect_outages(t, status, None, faults, max_gap_ms=gap, now_ms=b)
    blips = match_events(with_log, (s, e), max_duration_s=step_s)
    assert blips["truth"] > 0 and blips["recall"] == 1.0 and blips["precision"] == 1.0
    assert match_events(log_only, (s, e), max_duration_s=step_s)["recall"] == \
        match_events(without, (s, e), max_duration_s=step_s)["recall"]
    if step_s >= 5:  # enough of them to see what the polls alone miss
        assert match_events(without, (s, e), max_duration_s=step_s)["recall"] < 0.5
    for m in (match_events(with_log, (s, e), min_duration_s=10), match_events(with_log, (s, e))):
        assert m["precision"] >= 0.99 and m["recall"] >= 0.99, m
    if step_s <= 5:  # polls alone see every outage of 10 s and more
        assert match_events(without, (s, e), min_duration_s=10)["recall"] >= 0.99
    # starts the log or a toggle time read while islanded saw are exact (a blip's start seen by neither is not)
    ms, me = merge_intervals(s, e)
    pinned = {o.start_ms for o in with_log if o.start_exact}
    logged = {f.time_ms for f in faults}
    seen = [x for x, y in zip(ms.tolist(), me.tolist(), strict=True)
            if x in logged or np.searchsorted(t, x) < np.searchsorted(t, y)]
    assert len(seen) >= 0.8 * len(ms) and np.mean([x in pinned for x in seen]) >= 0.99


def test_a_hub_killed_and_restarted_in_the_middle_of_outages_loses_no_event():
    config = _config(outages_per_year=400)
    a = to_ms(YEAR[0])
    b = a + 120 * 86_400_000
    s, e = outage_schedule(config.virtual.seed, 400, a, b)
    t = np.arange(a, b, STEP, dtype=np.int64)
    status = _instant_status(t, s, e)
    faults = grid_fault_evidence(grid_faults(config.virtual.seed, 400, a, b))
    ms, me = merge_intervals(s, e)
    length = me - ms
    room = np.concatenate((ms[1:] - me[:-1], [b - me[-1]]))  # to the next event
    rng = np.random.default_rng(4)
    candidates = np.flatnonzero((length > 600_000) & (room > 2 * length))
    up = np.ones(len(t), dtype=bool)
    killed = []
    for i in rng.choice(candidates, size=min(25, len(candidates)), replace=False).tolist():
        # killed partway into the outage; back up inside it, or after it ended
        off = int(ms[i] + rng.uniform(0.2, 0.5) * length[i])
        on = int(ms[i] + rng.uniform(0.6, 1.8) * length[i])
        up[(t >= off) & (t < on)] = False
        killed.append((i, on > me[i]))
    assert len(killed) >= 10 and {x for _, x in killed} == {False, True}
    events = detect_outages(t[up], status[up], None, faults + toggles_seen(t[up], s, e), max_gap_ms=GAP, now_ms=b)
    m = match_events(events, (s, e), min_duration_s=10)
    assert m["precision"] >= 0.99 and m["recall"] == 1.0, m
    starts = np.array([o.start_ms for o in events])
    for i, ended_in_gap in killed:
        o = events[int(np.searchsorted(starts, ms[i], side="right")) - 1]
        assert o.start_ms == ms[i] and o.start_exact
        if ended_in_gap:  # the toggle time read after the restart says when the grid came back
            assert "hub_down_at_end" in o.evidence and o.end_exact and o.end_ms == me[i]
        else:
            assert "hub_down_during" in o.evidence and o.end_ms >= me[i] - STEP // 2  # mid-window
            assert o.end_latest_ms is not None and o.end_latest_ms >= me[i]
