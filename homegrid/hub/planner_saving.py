"""What the planner saved against the battery's own self-powered mode, per billing month (``GET /api/v1/money``'s
``against_self_powered``, the Money view's sentence).

For a billing month of the site's tariff, two bills of the same measured household load and solar, both priced
by :func:`homegrid.tariffs.bill.price_bill` with the same tariff (and metered by the tariff's export rule,
:func:`homegrid.tariffs.meters.counterfactual_meters`):

- ``actual``: the home's grid meter as measured (what the home really paid, the planner driving the battery);
- ``self_powered``: the same battery left in self-powered mode over the same intervals
  (:func:`homegrid.planner.baseline.replay_self_powered`), from the level it really had at the month's start.

``saving = self_powered - actual`` [currency]: negative when the planner cost money. Each month is billed on its
own (net metering's surplus carried in from the month before is in neither bill, so ``actual`` can differ from
that month's line of the twelve months' bill). How the replay is set up:

- **intervals**: the minute rollups, else the hour rollups where the month has no minutes stored. Within an
  interval the replay nets the home's surplus against its deficit, which the measured meter does not: on the
  virtual home (a self-powered battery, so a true saving of 0) two years of months replayed at 1 minute came
  within 0.03 USD of the measured bill each, at 15 minutes up to 0.6 USD (4 %) above it, at an hour 2 USD;
- **the battery**: the planner's (:func:`homegrid.hub.planning.battery_spec`: ``[planner] battery_kwh`` and
  ``battery_kw``, else the device's figures, else 13.5 kWh and 5 kW); its level at the month's start is the first
  stored minute's mean ``battery_soc`` (else the first interval's; the reserve when none is stored);
- **the reserve**: the ``battery_reserve`` reading at the month's start (the raw readings), else the newest, else
  20 %; one value for the month (a day of storm mode's raised reserve is not replayed);
- **the planner's part**: whether the planner drives the battery is known only for now (``[planner] enabled``
  and not ``dry_run``); homegrid keeps no record of it. With the planner off (or dry) the battery ran its own
  mode, the difference would be that mode's (and the replay's error), not the planner's: nothing is computed and
  ``note`` says why.

Nothing is replayed on the request's path: the first ask for a month starts its replay in a thread of its own
(about 150 ms for a month of minutes) and answers ``pending`` (the Money view asks again shortly); a whole month is
then kept for its tariff (its data no longer changes), the month so far replayed again once it is
:data:`MAX_AGE_S` old (the ask that finds it so gets the older figures meanwhile). The hub asks once as it starts
(:meth:`PlannerSaving.warm`), so the view seldom sees ``pending``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.config import PlannerConfig
from homegrid.hub.planning import DEFAULT_RESERVE_PERCENT, battery_spec
from homegrid.planner.baseline import replay_self_powered
from homegrid.planner.problem import BatterySpec
from homegrid.store import Store
from homegrid.tariffs.bill import billing_months, price_bill
from homegrid.tariffs.meters import HomeIntervals, counterfactual_meters
from homegrid.tariffs.model import Tariff, TariffError
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_isoformat

__all__ = ["MAX_AGE_S", "REPLAY_STEP_MS", "PlannerSaving", "month_against_self_powered"]

#: the replay's interval: the minute rollups as stored [ms]
REPLAY_STEP_MS = MINUTE_MS
#: the month so far is replayed again after this long [s]
MAX_AGE_S = 300.0
#: whole months kept (each tariff change prices them afresh)
MONTHS_KEPT = 8

log = logging.getLogger(__name__)

_COLUMNS = ("home", "solar", "grid_import", "grid_export", "battery_charge", "battery_discharge", "soc_sum", "soc_s")


def _intervals(store: Store, tariff: Tariff, start_ms: int, end_ms: int,
               step_ms: int = REPLAY_STEP_MS) -> tuple[HomeIntervals, np.ndarray]:
    """The month's measured intervals of ``step_ms`` (see the module's notes) and each one's mean state of charge
    [%] (NaN where none was stored)."""
    if tariff.demand is not None and tariff.demand.any and tariff.demand.window_min * MINUTE_MS < step_ms:
        step_ms = MINUTE_MS
    if step_ms == MINUTE_MS or step_ms == HOUR_MS:
        table = store.read_rollup("minute" if step_ms == MINUTE_MS else "hour", start_ms, end_ms, _COLUMNS)
    else:
        table = store.aggregate_minutes(start_ms, end_ms, step_ms)
    step = step_ms
    if len(table) == 0 and step_ms != HOUR_MS:
        table, step = store.read_rollup("hour", start_ms, end_ms, _COLUMNS), HOUR_MS
    c = table.columns
    home = HomeIntervals(np.asarray(table.start_ms, dtype=np.int64), step, c["home"], c["solar"], c["grid_import"],
                         c["grid_export"], c["battery_charge"], c["battery_discharge"])
    with np.errstate(invalid="ignore", divide="ignore"):
        soc = np.where(np.nan_to_num(c["soc_s"]) > 0, c["soc_sum"] / c["soc_s"], np.nan)
    return home, soc


def _soc_at(store: Store, start_ms: int, soc: np.ndarray, fallback: float) -> float:
    """The battery's level at ``start_ms``: the first stored minute's mean from there, else the first interval's
    with one, else ``fallback``. [%]"""
    minutes = store.read_rollup("minute", start_ms, start_ms + REPLAY_STEP_MS, ("soc_sum", "soc_s"))
    for total, seconds in zip(minutes.columns["soc_sum"], minutes.columns["soc_s"], strict=True):
        if np.isfinite(seconds) and seconds > 0 and np.isfinite(total):
            return float(total / seconds)
    known = soc[np.isfinite(soc)]
    return float(known[0]) if len(known) else fallback


def month_against_self_powered(store: Store, tariff: Tariff, tz: ZoneInfo, label: str, start_ms: int, end_ms: int,
                               spec: BatterySpec, reserve_percent: float, *, whole: bool,
                               step_ms: int = REPLAY_STEP_MS) -> dict[str, Any] | None:
    """One billing month's bills, as measured and replayed self-powered (the module's notes).

    Parameters
    ----------
    store : Store
    tariff : Tariff
    tz : ZoneInfo
        The site's zone.
    label : str
        The billing month (``YYYY-MM``).
    start_ms, end_ms : int
        The span billed: the month, or its start to now. [ms]
    spec : BatterySpec
        The battery replayed.
    reserve_percent : float
        Its reserve. [%]
    whole : bool
        The month is over.
    step_ms : int
        The replay's interval: a minute, a divisor of an hour (summed from the minutes) or an hour. [ms]

    Returns
    -------
    dict or None
        ``month``, ``from``, ``to`` (local ISO 8601), ``whole``; ``actual``, ``self_powered`` and ``saving``
        (``self_powered - actual``) [currency]; ``grid_import_wh`` and ``grid_export_wh`` of both homes [Wh];
        ``soc_start_percent``, ``soc_end_percent`` of both [%], ``reserve_percent`` [%]; ``step_min`` [min];
        ``missing_hours`` (hours with no data, priced in neither bill); ``battery``: ``capacity_wh`` [Wh],
        ``max_w`` [W], ``round_trip`` [-]. None when the store has nothing in the span.
    """
    measured, soc = _intervals(store, tariff, start_ms, end_ms, step_ms)
    if len(measured.t_ms) == 0:
        return None
    soc_start = _soc_at(store, int(measured.t_ms[0]), soc, reserve_percent)
    replayed, soc_end = replay_self_powered(measured, spec, soc_start, reserve_percent)
    rule = tariff.export.rule
    meters = {"actual": counterfactual_meters(measured, rule)["actual"],
              "self_powered": counterfactual_meters(replayed, rule)["actual"]}
    bills = {name: price_bill(tariff, m, tz.key, start_ms, end_ms) for name, m in meters.items()}
    known = soc[np.isfinite(soc)]
    return {
        "month": label,
        "from": local_isoformat(np.array([start_ms]), tz.key)[0],
        "to": local_isoformat(np.array([end_ms]), tz.key)[0],
        "whole": whole,
        "actual": round(bills["actual"].total, 4),
        "self_powered": round(bills["self_powered"].total, 4),
        "saving": round(bills["self_powered"].total - bills["actual"].total, 4),
        "grid_import_wh": {k: round(float(m.import_wh.sum())) for k, m in meters.items()},
        "grid_export_wh": {k: round(float(m.export_wh.sum())) for k, m in meters.items()},
        "soc_start_percent": round(soc_start, 2),
        "soc_end_percent": {"actual": round(float(known[-1]), 2) if len(known) else None,
                            "self_powered": round(soc_end, 2)},
        "reserve_percent": round(reserve_percent, 2),
        "step_min": measured.step_ms // MINUTE_MS,
        "missing_hours": len(bills["actual"].missing_hours),
        "battery": {"capacity_wh": round(spec.capacity_wh, 1), "max_w": round(spec.max_discharge_w, 1),
                    "round_trip": round(spec.charge_efficiency * spec.discharge_efficiency, 4)},
    }


class PlannerSaving:
    """The last whole billing month and the month so far against self-powered mode, kept (the module's notes).

    Parameters
    ----------
    store : Store
    tz : ZoneInfo
        The site's zone.
    planner : PlannerConfig
        ``enabled`` (as the hub decided it: unset counts as off), ``dry_run`` and the battery's figures.
    figures : callable, optional
        The battery device's :class:`~homegrid.devices.base.BatteryFigures`, or None.
    live : callable, optional
        The hub's ``live()`` (its second item: the newest readings), for the battery's capacity and reserve.
    """

    def __init__(self, store: Store, tz: ZoneInfo, planner: PlannerConfig, *,
                 figures: Callable[[], Any] | None = None, live: Callable[[], tuple[Any, ...]] | None = None) -> None:
        self.store = store
        self.tz = tz
        self.planner = planner
        self.figures = figures
        self.live = live
        self._kept: dict[tuple[Any, ...], tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """The planner drives the battery now."""
        return bool(self.planner.enabled) and not self.planner.dry_run

    def _why_not(self) -> str | None:
        if not self.planner.enabled:
            return ("the planner is off ([planner] enabled = false): the battery ran its own mode, so there is no "
                    "planner saving to show")
        if self.planner.dry_run:
            return ("the planner runs dry ([planner] dry_run = true): it sends no commands, the battery ran its own "
                    "mode, so there is no planner saving to show")
        return None

    def _values(self) -> dict[str, float]:
        return {} if self.live is None else dict(self.live()[1])

    def _reserve(self, start_ms: int, values: dict[str, float]) -> float:
        got = self.store.read_readings(start_ms, start_ms + REPLAY_STEP_MS, ("battery_reserve",))
        column = got.columns.get("battery_reserve")
        known = column[np.isfinite(column)] if column is not None else np.empty(0)
        if len(known):
            return float(known[0])
        newest = values.get("battery_reserve")
        return float(newest) if newest is not None and np.isfinite(newest) else DEFAULT_RESERVE_PERCENT

    def months(self, tariff: Tariff, tariff_version: int, now_ms: int) -> dict[str, Any]:
        """``planner_enabled``, ``currency``, ``note`` (why there are no figures, or None), and ``last_month`` (the
        last whole billing month) and ``this_month`` (its start to now), each :func:`month_against_self_powered`'s
        or None (the planner off, no data, or ``pending``: being replayed in the background, ask again shortly),
        or ``{month, error}`` when it could not be replayed (dynamic prices that miss the month; tried again after
        :data:`MAX_AGE_S`). Never waits for a replay (the module's notes)."""
        out: dict[str, Any] = {"planner_enabled": self.enabled, "currency": tariff.currency, "note": self._why_not(),
                               "last_month": None, "this_month": None}
        if out["note"] is not None:
            return out
        months = billing_months(now_ms - 40 * 24 * HOUR_MS, now_ms + 1, self.tz.key, tariff.billing_day)[-2:]
        jobs = []
        for key, (label, a, b) in zip(("last_month", "this_month"), months, strict=True):
            with self._lock:
                kept = self._kept.get((label, a, b, id(tariff), tariff_version))
            if kept is not None:
                out[key] = kept[1]
            failed = kept is not None and kept[1] is not None and "error" in kept[1]
            if kept is None or ((b > now_ms or failed) and time.monotonic() - kept[0] > MAX_AGE_S):
                jobs.append((label, a, b, min(b, now_ms), tariff, tariff_version))
                out["pending"] = out.get("pending", False) or kept is None
        if jobs:
            self._refresh(jobs)
        if not out.get("pending") and out["last_month"] is None and out["this_month"] is None:
            out["note"] = "no data stored for the last two billing months"
        return out

    def _replay(self, job: tuple[Any, ...]) -> dict[str, Any] | None:
        """One month replayed now and kept."""
        label, a, b, end, tariff, version = job
        values = self._values()
        spec = battery_spec(self.planner, self.figures() if self.figures is not None else None, values)
        result = month_against_self_powered(self.store, tariff, self.tz, label, a, end, spec,
                                            self._reserve(a, values), whole=end >= b)
        with self._lock:
            self._kept[(label, a, b, id(tariff), version)] = (time.monotonic(), result)
            while len(self._kept) > MONTHS_KEPT:
                self._kept.pop(next(iter(self._kept)))
        return result

    def _refresh(self, jobs: list[tuple[Any, ...]]) -> None:
        """Replay months in a thread of its own (one at a time; an ask meanwhile gets the older figures, or none
        and ``pending``)."""
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            self._worker = threading.Thread(target=self._replay_all, args=(jobs,), name="planner-saving",
                                            daemon=True)
            self._worker.start()

    def _replay_all(self, jobs: list[tuple[Any, ...]]) -> None:
        for job in jobs:
            label, a, b, *_ = job
            try:
                self._replay(job)
            except Exception as exc:  # said in the month's place, and tried again after MAX_AGE_S
                if not isinstance(exc, (TariffError, ValueError)):  # not a price series that misses the month
                    log.exception("planner saving: %s could not be replayed", label)
                with self._lock:
                    self._kept[(label, a, b, id(job[4]), job[5])] = (time.monotonic(), {"month": label,
                                                                                       "error": str(exc)})

    def warm(self, tariff: Tariff | None, tariff_version: int, now_ms: int) -> None:
        """Start replaying the last and this month, when the planner drives the battery and a tariff is set."""
        if tariff is not None and self.enabled:
            self.months(tariff, tariff_version, now_ms)

    def settle(self, timeout_s: float = 30.0) -> None:
        """Wait for a replay under way in the background (tests, the bench)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)
