"""Plausible synthetic readings, fast: a year of 1-second rows in about a minute.

Six channels (glossary names): ``solar_power``, ``home_power``, ``grid_power``,
``battery_power``, ``battery_soc``, ``ev_power``. The balance
``home = solar + battery + grid`` holds for every row (to the 0.1 W rounding).

How the values are made
-----------------------
A minute-resolution *plan* covers the whole span: solar from a seasonal clear-sky
bell times a daily cloudiness and a smooth within-day cloud wave; household load
from a base plus morning and evening peaks and a few appliance runs a day; the
car charging on some evenings at 7.2 kW; a 13.5 kWh / 5 kW battery that stores
surplus solar and covers the load after dark (simulated minute by minute, so its
state of charge stays within 5..100 %). Rows at any step (1 s, 60 s) interpolate
the plan and add per-row noise (flicker on solar, appliance noise on the load), and
the grid closes the balance. Everything is seeded, so two runs write the same rows.

Writers
-------
:func:`write_csv` writes the canonical CSV (``time`` with ``+00:00`` offset) and
:func:`write_line_protocol` the same rows as InfluxDB line protocol
(Powerwall-Dashboard style: one measurement ``http`` with one field per quantity),
both with pyarrow's vectorised string kernels, one day at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

__all__ = ["CHANNELS", "INFLUX_FIELDS", "Plan", "chunks", "write_csv", "write_line_protocol"]

CHANNELS = ("solar_power", "home_power", "grid_power", "battery_power", "battery_soc", "ev_power")
#: Field names in InfluxDB (Powerwall-Dashboard's raw ``http`` measurement keeps one field per quantity).
INFLUX_FIELDS = {
    "solar_power": "solar",
    "home_power": "home",
    "grid_power": "grid",
    "battery_power": "battery",
    "battery_soc": "soc",
    "ev_power": "ev",
}

DAY_S = 86_400
_UTC_OFFSET_H = -5.0  # the profile's local clock (America/New_York standard time)


@dataclass
class Plan:
    """Minute-resolution plan of the site: one value per minute from ``start_s``."""

    start_s: int
    solar: np.ndarray
    load: np.ndarray  # household load without the car [W]
    ev: np.ndarray
    battery: np.ndarray  # + discharge, - charge [W]
    soc: np.ndarray  # [%] at the start of each minute
    seed: int

    @classmethod
    def make(cls, start: datetime, seconds: int, seed: int = 2025) -> Plan:
        start_s = int(start.timestamp())
        minutes = seconds // 60 + 2
        rng = np.random.default_rng(seed)
        t = start_s + 60 * np.arange(minutes, dtype=np.int64)
        local_h = ((t / 3600.0 + _UTC_OFFSET_H) % 24.0)
        day = ((t + _UTC_OFFSET_H * 3600) // DAY_S).astype(np.int64)
        day -= day[0]
        ndays = int(day[-1]) + 1
        doy = np.array([datetime.fromtimestamp(start_s + d * DAY_S, tz=UTC).timetuple().tm_yday
                        for d in range(ndays)])
        season_d = np.cos(2 * np.pi * (doy - 172) / 365.25)  # +1 at midsummer
        season = season_d[day]

        # solar: 7.6 kW DC, bell between sunrise and sunset, seasonal peak, clouds
        daylen = 12.0 + 2.4 * season
        rise = 12.5 - daylen / 2
        x = (local_h - rise) / daylen
        bell = np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 1.3, 0.0)
        clear = 0.55 + 0.25 * season_d + rng.normal(0, 0.03, ndays)
        cloudiness = rng.beta(2.0, 3.0, ndays)  # 0 clear .. 1 overcast
        phase = rng.uniform(0, 2 * np.pi, (ndays, 3))
        wave = np.zeros(minutes)
        for k, period_h in enumerate((0.7, 1.9, 4.3)):
            wave += np.sin(2 * np.pi * local_h / period_h + phase[day, k])
        cloud = np.clip(1.0 - cloudiness[day] * (0.55 + 0.25 * wave / 3.0), 0.05, 1.0)
        solar = 7600.0 * clear[day] * bell * cloud

        # household load: base, morning and evening peaks, appliance runs (oven, washer, dryer)
        winter = 0.5 * (1 - season)
        load = 380.0 + 250.0 * winter
        load = load + 900.0 * np.exp(-(((local_h - 7.5) / 1.0) ** 2))
        load = load + (1300.0 + 700.0 * winter) * np.exp(-(((local_h - 19.0) / 2.0) ** 2))
        for _ in range(4):
            begin = rng.uniform(6 * 60, 22 * 60, ndays)
            length = rng.uniform(20, 90, ndays)
            power = rng.uniform(600, 2400, ndays)
            m = local_h * 60
            on = (m >= begin[day]) & (m < begin[day] + length[day])
            load = load + np.where(on, power[day], 0.0)
        load = load * (1 + 0.1 * rng.standard_normal(ndays))[day].clip(0.7, 1.3)

        # car: on ~60 % of evenings, from about 18:30, 1..4 h at 7.2 kW
        ev_day = rng.random(ndays) < 0.6
        ev_begin = rng.normal(18.5, 0.7, ndays)
        ev_len = rng.uniform(1.0, 4.0, ndays)
        ev_on = ev_day[day] & (local_h >= ev_begin[day]) & (local_h < ev_begin[day] + ev_len[day])
        ev = np.where(ev_on, 7200.0, 0.0)

        battery, soc = _battery(solar, load, ev)
        return cls(start_s, solar, load, ev, battery, soc, seed)

    def rows(self, t_s: np.ndarray, chunk_seed: int) -> dict[str, np.ndarray]:
        """The six channels at epoch seconds ``t_s`` (within the plan), with per-row noise."""
        rng = np.random.default_rng([self.seed, chunk_seed])
        pos = (t_s - self.start_s) / 60.0
        i = np.clip(pos.astype(np.int64), 0, len(self.solar) - 2)
        f = pos - i

        def lerp(a: np.ndarray) -> np.ndarray:
            return a[i] * (1 - f) + a[i + 1] * f

        n = len(t_s)
        solar = lerp(self.solar)
        solar = np.maximum(0.0, solar * (1 + 0.03 * rng.standard_normal(n)))
        ev = self.ev[i]  # the charger steps, it does not ramp
        load = np.maximum(50.0, lerp(self.load) + 25.0 * rng.standard_normal(n))
        home = load + ev
        battery = self.battery[i] + np.where(self.battery[i] != 0, 8.0 * rng.standard_normal(n), 0.0)
        soc = lerp(self.soc)
        solar = np.round(solar, 1)
        home = np.round(home, 1)
        battery = np.round(battery, 1)
        grid = np.round(home - solar - battery, 1)
        return {
            "solar_power": solar,
            "home_power": home,
            "grid_power": grid,
            "battery_power": battery,
            "battery_soc": np.round(soc, 2),
            "ev_power": ev,
        }


def _battery(solar: np.ndarray, load: np.ndarray, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Self-consumption battery, minute by minute: store surplus, cover the house (not the car)."""
    cap_wh, pmax, eff = 13_500.0, 5_000.0, 0.95
    net = (load - solar).tolist()  # + deficit, - surplus
    out = [0.0] * len(net)
    socs = [0.0] * len(net)
    e = 0.5 * cap_wh
    lo = 0.05 * cap_wh
    for k, d in enumerate(net):
        socs[k] = e
        if d > 0:  # discharge to cover the house
            p = min(d, pmax, (e - lo) * 60.0)
            e -= p / 60.0
        else:  # charge from surplus
            p = -min(-d, pmax, (cap_wh - e) * 60.0 / eff)
            e -= p * eff / 60.0
        out[k] = p
    return np.array(out), 100.0 * np.array(socs) / cap_wh


def chunks(start: datetime, rows: int, step_s: int = 1, seed: int = 2025) -> Iterator[tuple[np.ndarray, dict]]:
    """(epoch seconds, channels) for ``rows`` rows from ``start``, at most one UTC day per chunk."""
    plan = Plan.make(start, rows * step_s, seed)
    t0 = int(start.timestamp())
    per_day = max(1, DAY_S // step_s)
    for k, a in enumerate(range(0, rows, per_day)):
        b = min(rows, a + per_day)
        t = t0 + step_s * np.arange(a, b, dtype=np.int64)
        yield t, plan.rows(t, k)


def _iso_times(t_s: np.ndarray, tod_cache: dict) -> pa.Array:
    """ISO 8601 UTC strings with a ``+00:00`` offset, built from a day prefix and a time-of-day table."""
    day = t_s // DAY_S
    if "tod" not in tod_cache:
        s = np.arange(DAY_S)
        tod_cache["tod"] = pa.array(
            [f"T{h:02d}:{m:02d}:{x:02d}+00:00" for h, m, x in zip(s // 3600, s // 60 % 60, s % 60, strict=True)]
        )
    tod = pc.take(tod_cache["tod"], pa.array(t_s % DAY_S))
    days = np.unique(day)
    if len(days) == 1:
        prefix = pa.scalar(datetime.fromtimestamp(int(days[0]) * DAY_S, tz=UTC).strftime("%Y-%m-%d"))
        return pc.binary_join_element_wise(prefix, tod, "")
    dates = pa.array([datetime.fromtimestamp(int(d) * DAY_S, tz=UTC).strftime("%Y-%m-%d") for d in days])
    return pc.binary_join_element_wise(pc.take(dates, pa.array(np.searchsorted(days, day))), tod, "")


def write_csv(path: str | os.PathLike, start: datetime, rows: int, step_s: int = 1, seed: int = 2025) -> int:
    """Write the canonical CSV; returns its size in bytes."""
    cache: dict = {}
    tmp = Path(f"{path}.part")
    opts = pcsv.WriteOptions(include_header=False, quoting_style="none")
    with pa.OSFile(str(tmp), "wb") as sink:
        sink.write(",".join(("time", *CHANNELS)).encode() + b"\n")  # pyarrow would quote the names
        for t, cols in chunks(start, rows, step_s, seed):
            table = pa.table({"time": _iso_times(t, cache), **{c: pa.array(cols[c]) for c in CHANNELS}})
            pcsv.write_csv(table, sink, opts)
    tmp.rename(path)
    return Path(path).stat().st_size


def line_protocol(t: np.ndarray, cols: dict, measurement: str = "http") -> pa.Array:
    """One line-protocol string per row (precision=s)."""
    parts: list = []
    for k, (name, field) in enumerate(INFLUX_FIELDS.items()):
        parts.append(f"{measurement} {field}=" if k == 0 else f",{field}=")
        parts.append(pc.cast(pa.array(cols[name]), pa.string()))
    parts += [" ", pc.cast(pa.array(t), pa.string())]
    return pc.binary_join_element_wise(*parts, "")


def write_line_protocol(
    path: str | os.PathLike, start: datetime, rows: int, step_s: int = 1, seed: int = 2025
) -> int:
    """Write the same rows as line protocol, one line each; returns the size in bytes."""
    tmp = Path(f"{path}.part")
    with open(tmp, "wb") as out:
        for t, cols in chunks(start, rows, step_s, seed):
            out.write(_lines_bytes(line_protocol(t, cols)))
    tmp.rename(path)
    return Path(path).stat().st_size


def _lines_bytes(arr: pa.Array) -> bytes:
    """The strings of an array, each followed by a newline, as one bytes object."""
    if len(arr) == 0:
        return b""
    joined = pc.binary_join_element_wise(arr, "\n", "")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1, offset=4 * joined.offset)
    return joined.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]


def cached(folder: Path, kind: str, start: datetime, rows: int, step_s: int, seed: int) -> Path:
    """A generated file in ``folder``, made once and reused by later runs with the same parameters."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = "csv" if kind == "csv" else "lp"
    path = folder / f"readings-{start:%Y%m%d}-{rows}x{step_s}s-seed{seed}.{ext}"
    if not path.exists():
        (write_csv if kind == "csv" else write_line_protocol)(path, start, rows, step_s, seed)
    return path
