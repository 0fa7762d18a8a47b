"""Solar generation of the virtual home: PVWatts on a real typical-year weather file.

The weather is a TMY3 file (by default ``723170TYA.CSV``, Greensboro NC, shipped in
``pvlib/data``). Its hours come from different real years, so they are keyed by
month, day and hour only and laid onto whatever year is simulated; 29 February
repeats 28 February.

The chain is PVWatts as NREL runs it, built from pvlib parts: solar position at
the middle of each hour-ending TMY record, Perez transposition onto the array,
the physical incidence-angle modifier on the beam, SAPM cell temperature (close
mount, glass/glass: a roof),
PVWatts DC with -0.37 %/K, PVWatts' default 14.08 % system losses and the PVWatts
inverter (DC/AC ratio 1.2, 96 % nominal efficiency).

The hourly AC energies are then spread over each hour's minutes, following the
trend between neighbouring hours and zero while the sun is down, each hour keeping
its energy. That year-long 1-minute profile is cached per configuration, and
:func:`solar_power` reads it by linear interpolation at any instant.

The profile is keyed by the weather station's mean solar time. A site far from
the station therefore still sees its own sun rise at the right clock time (its
weather is the station's, shifted by the longitude difference).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from homegrid.devices.virtual.timebase import periodic_interp, seconds_of_year_365

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MINUTES_PER_YEAR",
    "SolarProfile",
    "compute_solar_profile",
    "pvwatts_ac",
    "read_weather",
    "solar_power",
    "solar_profile",
    "spread_hourly",
]

MINUTES_PER_YEAR = 365 * 24 * 60
_HOURS = 8760
_DC_AC_RATIO = 1.2
_ETA_INV_NOM = 0.96
_GAMMA_PDC = -0.0037  # [1/K]
_ALBEDO = 0.2
_REFERENCE_YEAR = 2025  # any non-leap year: sun positions differ by < 0.1 degree between years
# The sun's centre is 0.83 degree below the horizon at apparent sunrise.
_COS_ZENITH_SUNRISE = float(np.cos(np.radians(90.833)))


@dataclass(frozen=True)
class SolarProfile:
    """A year of AC output at 1-minute resolution.

    Attributes
    ----------
    ac_w : numpy.ndarray
        Mean AC power of each minute of a 365-day year [W], minute 0 starting
        1 January 00:00 in the weather file's standard time.
    offset_s : float
        Seconds to add to UTC to get the weather file's clock at the site:
        its time zone plus the longitude difference to the site. [s]
    ac_limit_w : float
        The inverter's AC rating. [W]
    """

    ac_w: np.ndarray
    offset_s: float
    ac_limit_w: float

    @property
    def annual_kwh(self) -> float:
        """Energy of one 365-day year. [kWh]"""
        return float(self.ac_w.sum()) / 60.0 / 1000.0


def _weather_path(name: str) -> Path:
    p = Path(name).expanduser()
    if p.is_file():
        return p
    spec = importlib.util.find_spec("pvlib")  # finds the package without importing it
    shipped = Path(spec.origin if spec and spec.origin else ".").parent / "data" / name
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"weather file {name!r} is neither a path nor a file in {shipped.parent}")


def read_weather(name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a TMY3 file into 8760 hourly records in calendar order.

    Parameters
    ----------
    name : str
        A path, or the name of a file in ``pvlib/data``.

    Returns
    -------
    weather : pandas.DataFrame
        Columns ``ghi``, ``dni``, ``dhi`` [W/m^2], ``temp_air`` [degC],
        ``wind_speed`` [m/s], ``pressure`` [Pa], ``albedo`` [-]; row ``r`` is the
        hour from ``r`` to ``r + 1`` hours after 1 January 00:00 standard time.
    metadata : dict
        The file's metadata (``TZ`` [h], ``latitude``, ``longitude`` [degrees], ...).
    """
    import pandas as pd
    import pvlib

    data, meta = pvlib.iotools.read_tmy3(str(_weather_path(name)), map_variables=True)
    date = pd.to_datetime(data["Date (MM/DD/YYYY)"], format="%m/%d/%Y")
    hour_ending = data["Time (HH:MM)"].str.slice(0, 2).astype(int).to_numpy()
    month = date.dt.month.to_numpy()
    day = date.dt.day.to_numpy()
    keep = ~((month == 2) & (day == 29))
    # Day of a non-leap year, whatever year the record came from.
    doy = pd.to_datetime({"year": _REFERENCE_YEAR, "month": month[keep], "day": day[keep]}).dt.day_of_year.to_numpy()
    hour = (doy - 1) * 24 + hour_ending[keep] - 1
    out = pd.DataFrame(
        {
            "ghi": data["ghi"].to_numpy(float)[keep],
            "dni": data["dni"].to_numpy(float)[keep],
            "dhi": data["dhi"].to_numpy(float)[keep],
            "temp_air": data["temp_air"].to_numpy(float)[keep],
            "wind_speed": data["wind_speed"].to_numpy(float)[keep],
            "pressure": data["pressure"].to_numpy(float)[keep] * 100.0,  # mbar -> Pa
            "albedo": data["albedo"].to_numpy(float)[keep],
        },
        index=hour,
    ).sort_index()
    if len(out) != _HOURS or not np.array_equal(out.index.to_numpy(), np.arange(_HOURS)):
        raise ValueError(f"weather file {name!r} does not hold the 8760 hours of a typical year")
    bad_albedo = ~(out["albedo"] > 0) | ~(out["albedo"] < 1)
    out.loc[bad_albedo, "albedo"] = _ALBEDO
    return out.reset_index(drop=True), dict(meta)


def pvwatts_ac(
    weather: pd.DataFrame,
    times_utc: pd.DatetimeIndex,
    latitude: float,
    longitude: float,
    dc_kw: float,
    tilt: float,
    azimuth: float,
    altitude: float = 0.0,
) -> np.ndarray:
    """AC power of a PVWatts system for each weather record.

    Parameters
    ----------
    weather : pandas.DataFrame
        As from :func:`read_weather`.
    times_utc : pandas.DatetimeIndex
        The instant each record stands for (the middle of its hour), at the site.
    latitude, longitude : float
        The site. [degrees]
    dc_kw : float
        DC nameplate. [kW]
    tilt, azimuth : float
        Array orientation, azimuth from north. [degrees]
    altitude : float
        Site altitude. [m]

    Returns
    -------
    numpy.ndarray
        AC power, >= 0. [W]
    """
    import pvlib

    pdc0 = dc_kw * 1000.0
    pac0 = pdc0 / _DC_AC_RATIO
    sp = pvlib.solarposition.get_solarposition(
        times_utc,
        latitude,
        longitude,
        altitude=altitude,
        pressure=weather["pressure"].to_numpy(),
        temperature=weather["temp_air"].to_numpy(),
        method="nrel_numpy",
    )
    zen = sp["apparent_zenith"].to_numpy()
    azi = sp["azimuth"].to_numpy()
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times_utc.day_of_year.to_numpy()), dtype=float)
    airmass = pvlib.atmosphere.get_relative_airmass(zen)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        zen,
        azi,
        weather["dni"].to_numpy(),
        weather["ghi"].to_numpy(),
        weather["dhi"].to_numpy(),
        dni_extra=dni_extra,
        airmass=airmass,
        albedo=weather["albedo"].to_numpy(),
        model="perez",
    )
    aoi = pvlib.irradiance.aoi(tilt, azimuth, zen, azi)
    iam = pvlib.iam.physical(aoi)
    direct = np.nan_to_num(np.asarray(poa["poa_direct"], dtype=float))
    diffuse = np.nan_to_num(np.asarray(poa["poa_diffuse"], dtype=float))
    effective = np.clip(direct * np.nan_to_num(np.asarray(iam, dtype=float)) + diffuse, 0.0, None)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"]
    t_cell = pvlib.temperature.sapm_cell(
        direct + diffuse, weather["temp_air"].to_numpy(), weather["wind_speed"].to_numpy(), **params
    )
    dc = pvlib.pvsystem.pvwatts_dc(effective, t_cell, pdc0, _GAMMA_PDC)
    dc = np.asarray(dc, dtype=float) * (1.0 - pvlib.pvsystem.pvwatts_losses() / 100.0)
    ac = pvlib.inverter.pvwatts(dc, pac0 / _ETA_INV_NOM, eta_inv_nom=_ETA_INV_NOM)
    ac_w: np.ndarray = np.clip(np.nan_to_num(np.asarray(ac, dtype=float)), 0.0, pac0)
    return ac_w


def spread_hourly(hourly_w: np.ndarray, cos_zenith: np.ndarray, limit_w: float) -> np.ndarray:
    """Spread hourly mean powers over minutes, keeping each hour's energy.

    Within an hour the power follows the straight line between the means of the
    neighbouring hours (placed at their middles), is zero while the sun is down,
    and is scaled so the hour's mean is kept.

    Parameters
    ----------
    hourly_w : numpy.ndarray
        Mean power of each hour of the year, shape (8760,). [W]
    cos_zenith : numpy.ndarray
        Cosine of the solar zenith at the middle of each minute, shape (525600,). [-]
    limit_w : float
        Cap on any minute (the inverter rating). [W]

    Returns
    -------
    numpy.ndarray
        Mean power of each minute, shape (525600,). [W]
    """
    n_h = len(hourly_w)
    a = np.asarray(hourly_w, dtype=float)
    # Minute j of hour r sits (j + 0.5 - 30) / 60 hours after the hour's middle.
    x = ((np.arange(60) + 0.5 - 30.0) / 60.0)[None, :]
    before = x < 0
    w = np.where(before, np.roll(a, 1)[:, None], np.roll(a, -1)[:, None])
    w -= a[:, None]
    w *= np.abs(x)
    w += a[:, None]
    w *= cos_zenith.reshape(n_h, 60) > _COS_ZENITH_SUNRISE
    sums = w.sum(axis=1)
    # Hours the file gives energy but the trend misses: follow the sun, else spread evenly.
    for r in np.flatnonzero((sums <= 0) & (a > 0)).tolist():
        cz = np.clip(cos_zenith[r * 60 : (r + 1) * 60], 0.0, None)
        w[r] = cz if cz.sum() > 0 else 1.0
    sums = w.sum(axis=1)
    w *= np.divide(a * 60.0, sums, out=np.zeros(n_h), where=sums > 0)[:, None]
    np.minimum(w, limit_w, out=w)
    return w.ravel()


def _cos_zenith_minutes(latitude: float, solar_time_offset_h: float) -> np.ndarray:
    """Cosine of the solar zenith at each minute's middle of a 365-day year.

    ``solar_time_offset_h`` turns the clock (hours since midnight) into mean solar
    time; Spencer's (1971) declination and equation of time, one value a day.
    """
    import pvlib

    doy = np.arange(1, 366, dtype=float)
    dec = pvlib.solarposition.declination_spencer71(doy)[:, None]
    eot_h = pvlib.solarposition.equation_of_time_spencer71(doy)[:, None] / 60.0
    clock_h = ((np.arange(1440, dtype=float) + 0.5) / 60.0)[None, :]
    hour_angle = np.radians(15.0 * (np.mod(clock_h + solar_time_offset_h + eot_h, 24.0) - 12.0))
    lat = np.radians(latitude)
    cz = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    cos_zenith: np.ndarray = cz.ravel()
    return cos_zenith


@functools.lru_cache(maxsize=8)
def solar_profile(
    weather: str, latitude: float, longitude: float, dc_kw: float, tilt: float, azimuth: float
) -> SolarProfile:
    """The 1-minute AC profile of one system on one weather file, cached on disk.

    The profile is computed once per configuration and pvlib version, and kept in
    the user's cache folder (``$XDG_CACHE_HOME/homegrid``). A process that has not
    imported pvlib computes it in a child process, so the long-running hub never
    holds pvlib, pandas and scipy in memory (about 100 MB).
    """
    args = (weather, float(latitude), float(longitude), float(dc_kw), float(tilt), float(azimuth))
    path = _cache_path(args)
    if path is not None and not path.exists():
        if "pvlib" in sys.modules:
            _save(compute_solar_profile(*args), path)
        else:
            code = "import sys; from homegrid.devices.virtual import solar; solar.compute_to_file(*sys.argv[1:])"
            subprocess.run([sys.executable, "-c", code, str(path), json.dumps(args)], check=True)
    if path is None:
        return compute_solar_profile(*args)
    with np.load(path) as z:
        ac = z["ac_w"]
        ac.setflags(write=False)
        return SolarProfile(ac, float(z["offset_s"]), float(z["ac_limit_w"]))


_MODEL_VERSION = "1"  # change when the chain below changes, to leave old caches behind


def _cache_path(args: tuple[str, float, float, float, float, float]) -> Path | None:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "homegrid"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(base, os.W_OK):
        return None
    try:
        pvlib_version = importlib.metadata.version("pvlib")
    except importlib.metadata.PackageNotFoundError:
        pvlib_version = "?"
    key = json.dumps([_MODEL_VERSION, pvlib_version, str(_weather_path(args[0])), *args[1:]])
    return base / f"solar-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _save(profile: SolarProfile, path: Path) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, ac_w=profile.ac_w, offset_s=profile.offset_s, ac_limit_w=profile.ac_limit_w)
    os.replace(tmp, path)


def compute_solar_profile(
    weather: str, latitude: float, longitude: float, dc_kw: float, tilt: float, azimuth: float
) -> SolarProfile:
    """Compute the 1-minute AC profile of one system on one weather file (imports pvlib).

    Parameters
    ----------
    weather : str
        Weather file name or path (see :func:`read_weather`).
    latitude, longitude : float
        The site. [degrees]
    dc_kw : float
        DC nameplate. [kW]
    tilt, azimuth : float
        Array orientation. [degrees]

    Returns
    -------
    SolarProfile
    """
    import pandas as pd

    wx, meta = read_weather(weather)
    tz_h = float(meta["TZ"])
    station_lon = float(meta.get("longitude", longitude))
    # Weather clock = UTC + tz + (site lon - station lon) / 15 h, so that the station's
    # solar noon lands on the site's.
    offset_s = tz_h * 3600.0 + (longitude - station_lon) * 240.0
    start = pd.Timestamp(f"{_REFERENCE_YEAR}-01-01", tz="UTC")
    mid = start + pd.to_timedelta((np.arange(_HOURS) + 0.5) * 3600.0 - offset_s, unit="s")
    hourly = pvwatts_ac(
        wx, pd.DatetimeIndex(mid), latitude, longitude, dc_kw, tilt, azimuth, float(meta.get("altitude", 0.0))
    )
    limit = dc_kw * 1000.0 / _DC_AC_RATIO
    # Mean solar time on the weather clock: clock - tz + station_lon / 15.
    cz = _cos_zenith_minutes(latitude, -tz_h + station_lon / 15.0)
    ac = spread_hourly(hourly, cz, limit)
    ac.setflags(write=False)
    return SolarProfile(ac, offset_s, limit)


def solar_power(t_ms: np.ndarray, profile: SolarProfile) -> np.ndarray:
    """AC solar power at the given instants.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, epoch milliseconds UTC. [ms]
    profile : SolarProfile
        From :func:`solar_profile`.

    Returns
    -------
    numpy.ndarray
        Instantaneous AC power, linear between minute means. [W]
    """
    pos = seconds_of_year_365(t_ms, profile.offset_s) / 60.0 - 0.5
    return periodic_interp(pos, profile.ac_w)


def compute_to_file(path: str, args_json: str) -> None:
    """Entry point of the child process that :func:`solar_profile` starts."""
    _save(compute_solar_profile(*json.loads(args_json)), Path(path))
