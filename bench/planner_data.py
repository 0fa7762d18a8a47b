"""The planner bench's data sets and tariffs (issue 14): each data set as even steps of real load and solar, each
tariff as per-step import and export prices on the data set's clock.

Data sets (``DATASETS``): ``emhass_fr``, emhass's one-year household at 30 min (``../shared/data``, README 1.1);
``virtual_home``, a year of homegrid's virtual home (``homegrid simulate`` then ``homegrid export --resolution
minute``, averaged to ``VH_STEP_MIN``; its car's charging is part of the home's load, not moved). Tariffs
(``TARIFFS``): ``fr_hphc``, ``fr_wide``, ``wide_tou``, ``us_tou``, ``dynamic`` (RESULTS.md, issue 14, "The frame").
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from common import DATA_CACHE, REPO, child_env, homegrid_cmd, log

from homegrid.config import SiteConfig
from homegrid.tariffs.meters import export_price, import_price
from homegrid.tariffs.readers import load_tariff
from homegrid.timezones import DAY_MS, local_calendar, parse_iso_ms, utc_offset_ms

DATA = REPO.parent / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")


@dataclass
class Series:
    """A data set on an even step: real home load and solar [W] at step starts (UTC ms), and its zone."""

    name: str
    t_ms: np.ndarray
    home_w: np.ndarray
    solar_w: np.ndarray
    timezone: str
    source: str
    latitude: float = 0.0  # the site, for homegrid's solar forecast [degrees]
    longitude: float = 0.0
    tariffs: tuple[str, ...] = ()  # the tariffs the bench prices it with by default

    @property
    def step_s(self) -> int:
        return int((self.t_ms[1] - self.t_ms[0]) // 1000)

    @property
    def dt_h(self) -> float:
        return self.step_s / 3600.0

    def local_hours(self) -> np.ndarray:
        """Each step's local hour (0-23). [h]"""
        return local_calendar(self.t_ms, self.timezone)[2]


def emhass_household() -> Series:
    """emhass's one-year household (shared/data section 1.1), whole local days from 2024-02-29 00:00 Paris.

    Load NaNs (336) are filled linearly between their neighbours (as emhass's ``prepare_data`` does with
    ``sensor_linear_interp``); solar NaNs (the night) are 0, negatives 0.
    """
    path = DATA / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
    tab = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"timestamp_utc": pa.string()}))
    t = np.array([parse_iso_ms(x) for x in tab.column("timestamp_utc").to_pylist()], dtype=np.int64)
    load = np.array(tab.column("load_w_excl_deferrable").to_pylist(), dtype=float)
    pv = np.array(tab.column("pv_w").to_pylist(), dtype=float)
    ok = ~np.isnan(load)
    load = np.interp(np.arange(len(load)), np.flatnonzero(ok), load[ok])
    pv = np.clip(np.nan_to_num(pv, nan=0.0), 0.0, None)
    local = t + utc_offset_ms(t, "Europe/Paris")
    midnights = np.flatnonzero(local % DAY_MS == 0)
    s = slice(int(midnights[0]), int(midnights[-1]))
    # the site of emhass's ha_config (README 1.1)
    return Series("emhass_fr", t[s], load[s], pv[s], "Europe/Paris", f"{path.name} (whole local days)", 48.83, 6.86,
                  ("fr_hphc", "fr_wide", "wide_tou", "us_tou", "dynamic"))


VH_START, VH_DAYS = "2025-01-01", 365
VH_STEP_MIN = 15  # the backtest's default step (the issue's)


def virtual_home(days: int = VH_DAYS) -> Series:
    """A year of homegrid's virtual home with the default site (no config: ``common.child_env``), whole local days
    from ``VH_START``: ``homegrid simulate`` (1-min readings), ``homegrid export --resolution minute`` (the
    rollups' energy per minute), each step's mean power = its minutes' energy / its length.

    ``home_power`` includes the car (the glossary): its charging stays where it happened, as part of the load
    (the bench's battery model and LP have no car). The export is cached in ``DATA_CACHE``.
    """
    site = SiteConfig()
    folder = DATA_CACHE / f"planner_vh_{VH_START}_{days}d"
    csv = folder / "minutes.csv"
    if not csv.exists():
        folder.mkdir(parents=True, exist_ok=True)
        env, data = child_env(folder), folder / "data"
        log(f"virtual home: simulating {days} days from {VH_START} into {data}")
        subprocess.run(homegrid_cmd("simulate", "--data-dir", str(data), "--create", "--start", VH_START,
                                    "--days", str(days)), env=env, check=True, capture_output=True)
        last = (datetime.fromisoformat(VH_START) + timedelta(days=days - 1)).date().isoformat()
        part = csv.with_suffix(".part")
        subprocess.run(homegrid_cmd("export", "--data-dir", str(data), "--from", VH_START, "--to", last,
                                    "--resolution", "minute", "--output", str(part)), env=env, check=True,
                       capture_output=True)
        part.rename(csv)
    tab = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
        include_columns=["time", "home_wh", "solar_wh"], column_types={"time": pa.string()}))
    t = np.array([parse_iso_ms(x) for x in tab.column("time").to_pylist()], dtype=np.int64)
    home = np.nan_to_num(np.array(tab.column("home_wh").to_pylist(), dtype=float))
    solar = np.nan_to_num(np.array(tab.column("solar_wh").to_pylist(), dtype=float))
    step_ms = VH_STEP_MIN * 60_000
    t0 = parse_iso_ms(datetime.fromisoformat(VH_START).replace(tzinfo=ZoneInfo(site.timezone)).isoformat())
    t1 = t0 + sum(_local_day_ms(VH_START, d, site.timezone) for d in range(days))
    n = (t1 - t0) // step_ms
    idx = (t - t0) // step_ms
    ok = (idx >= 0) & (idx < n)
    to_w = 3_600_000 / step_ms  # Wh in a step -> mean W
    home_w = np.bincount(idx[ok], home[ok], minlength=n) * to_w
    solar_w = np.bincount(idx[ok], solar[ok], minlength=n) * to_w
    return Series("virtual_home", t0 + np.arange(n, dtype=np.int64) * step_ms, home_w, np.clip(solar_w, 0, None),
                  site.timezone, f"homegrid simulate --start {VH_START} --days {days}, minute rollups averaged to "
                  f"{VH_STEP_MIN} min (car charging in the load)", site.latitude, site.longitude,
                  ("us_tou", "wide_tou"))


def _local_day_ms(start: str, day: int, timezone: str) -> int:
    """The length of the ``day``-th local day from ``start`` (23, 24 or 25 h). [ms]"""
    zone = ZoneInfo(timezone)
    d = datetime.fromisoformat(start) + timedelta(days=day)
    a, b = d.replace(tzinfo=zone), (d + timedelta(days=1)).replace(tzinfo=zone)
    return int((b.timestamp() - a.timestamp()) * 1000)


def cut(s: Series, days: int | None) -> Series:
    """The first ``days`` days of a data set (None: all of it)."""
    if days is None:
        return s
    n = min(len(s.t_ms), round(days * DAY_MS / (s.step_s * 1000)))
    return replace(s, t_ms=s.t_ms[:n], home_w=s.home_w[:n], solar_w=s.solar_w[:n], source=f"{s.source}, first "
                   f"{days} days")


# --- tariffs: per-step import and export prices [currency/kWh] --------------------------------------------

def _peak(series: Series, start_h: int, end_h: int, peak: float, off: float) -> np.ndarray:
    h = series.local_hours()
    return np.where((h >= start_h) & (h < end_h), peak, off)


def fr_hphc(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """emhass's default: HP 0.1907 06-22 h, HC 0.1419, sell 0.1419 EUR/kWh."""
    return _peak(s, 6, 22, 0.1907, 0.1419), np.full(len(s.t_ms), 0.1419)


def fr_wide(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """A wide spread: HP 0.30 06-22 h, HC 0.1419, sell 0.1419 EUR/kWh."""
    return _peak(s, 6, 22, 0.30, 0.1419), np.full(len(s.t_ms), 0.1419)


def wide_tou(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """The issue's wide TOU: 0.45 17-21 h, 0.15 otherwise, export 0.05."""
    return _peak(s, 17, 21, 0.45, 0.15), np.full(len(s.t_ms), 0.05)


US_TOU_FILE = REPO / "homegrid" / "tariffs" / "data" / "urdb_618940545457a35a1c4097ec_psco_residential_re_tou.json"


def us_tou(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """Xcel Colorado RE-TOU (URDB 618940545457a35a1c4097ec) through homegrid's reader, on the site's clock.

    Energy prices only (its $5.71 a month is the same for every policy); net metering, so each step's
    export earns that step's import price (:func:`homegrid.tariffs.meters.export_price`).
    """
    tariff, _ = load_tariff(US_TOU_FILE.read_text())
    return import_price(tariff, s.t_ms, s.timezone), export_price(tariff, s.t_ms, s.timezone)


SMARD_FILE = DATA / "prices" / "smard_day_ahead_prices_2015_hourly.csv"
DYNAMIC_ADDER = 0.20  # grid fees, levies and tax on top of the spot price [EUR/kWh]


def smard_2015() -> dict[datetime, float]:
    """SMARD's 2015 DE-AT-LU day-ahead price by local (Berlin) wall-clock hour; of a repeated hour, the first.
    [EUR/kWh]"""
    lines = SMARD_FILE.read_text(encoding="utf-8-sig").splitlines()
    head = lines[0].split(";")
    col = head.index("Germany/Austria/Luxembourg[€/MWh]")
    out: dict[datetime, float] = {}
    for line in lines[1:]:
        f = line.split(";")
        if len(f) <= col or f[col] in ("-", ""):
            continue
        at = datetime.strptime(f"{f[0]} {f[1]}", "%b %d, %Y %I:%M %p")
        out.setdefault(at, float(f[col].replace(",", "")) / 1000.0)
    return out


def redate_2015(local: datetime) -> datetime:
    """The 2015 wall-clock hour standing for a local time: whole weeks back or forth (the weekday kept) to
    within 3 days of the same calendar date in 2015."""
    naive = local.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    same = naive.replace(year=2015, day=min(naive.day, 28) if naive.month == 2 else naive.day)
    weeks = round((naive - same).days / 7)
    out = naive - timedelta(weeks=weeks)
    while out.year < 2015:
        out += timedelta(weeks=52)
    while out.year > 2015:
        out -= timedelta(weeks=52)
    return out


def dynamic(s: Series) -> tuple[np.ndarray, np.ndarray]:
    """SMARD 2015 German day-ahead, re-dated onto the data's days (same weekday, within 3 days of the same date,
    same local hour). Import = spot + 0.20 EUR/kWh; export = spot, not below 0 (a feed-in is not billed)."""
    prices = smard_2015()
    zone = ZoneInfo(s.timezone)
    spot = np.empty(len(s.t_ms))
    for i, t in enumerate(s.t_ms.tolist()):
        at = redate_2015(datetime.fromtimestamp(t / 1000, zone))
        for back in range(4):  # a wall-clock hour 2015 skipped (its spring DST night), or a gap: the hour before
            p = prices.get(at - timedelta(hours=back))
            if p is not None:
                break
        spot[i] = p if p is not None else float("nan")
    spot = np.where(np.isnan(spot), np.nanmean(spot), spot)
    return spot + DYNAMIC_ADDER, np.maximum(spot, 0.0)


TARIFFS: dict[str, Callable[[Series], tuple[np.ndarray, np.ndarray]]] = {
    "fr_hphc": fr_hphc, "fr_wide": fr_wide, "wide_tou": wide_tou, "us_tou": us_tou, "dynamic": dynamic}
DATASETS: dict[str, Callable[[], Series]] = {"emhass_fr": emhass_household, "virtual_home": virtual_home}
BATTERIES = {"10": (10.0, 5.0), "13.5": (13.5, 5.0)}


