"""Real data for the forecast tests, read once per session: the emhass household (load and PV, 30 min,
Europe/Paris) and PVDAQ system 50 (measured AC power, 15 min, with NSRDB irradiance), both in ../shared/data
(its README, sections 1.1 and 2.1, gives their provenance)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tests.conftest import SHARED_DATA

EMHASS = SHARED_DATA / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
PVDAQ_AC = SHARED_DATA / "pv" / "pvdaq_system50_golden_co_ac_power_15min_2011-04_2013-12.csv"
PVDAQ_NSRDB = SHARED_DATA / "pv" / "pvdaq_system50_golden_co_nsrdb_psm3_30min_2011-2013.csv"
#: the emhass home (ha_config of emhass's long_train_data.pkl)
EMHASS_LAT, EMHASS_LON, EMHASS_TZ = 48.83, 6.86, "Europe/Paris"
#: PVDAQ system 50, NREL, Golden CO (pvanalytics' example); its height from NREL's campus, about 1,800 m
GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT = 39.7406, -105.1775, 1800.0


def _ms(text: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(text, utc=True)
    out: np.ndarray = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class Series:
    t_ms: np.ndarray
    values: dict[str, np.ndarray]


@functools.cache
def emhass() -> Series:
    """``load`` [W] (the household without its deferrable loads) and ``pv`` [W] every 30 min."""
    df = pd.read_csv(EMHASS)
    return Series(_ms(df["timestamp_utc"]), {"load": df["load_w_excl_deferrable"].to_numpy(float),
                                             "pv": df["pv_w"].to_numpy(float)})


@functools.cache
def pvdaq() -> Series:
    """``ac`` [W] every 15 min."""
    df = pd.read_csv(PVDAQ_AC)
    return Series(_ms(df["timestamp_local_mountain"]), {"ac": df["ac_power_2"].to_numpy(float)})


@functools.cache
def nsrdb() -> Series:
    """``ghi`` and ``ghi_clear`` [W/m²] every 30 min (satellite-modelled, NSRDB PSM3)."""
    df = pd.read_csv(PVDAQ_NSRDB)
    return Series(_ms(df["timestamp_local_mst"]), {"ghi": df["ghi"].to_numpy(float),
                                                   "ghi_clear": df["ghi_clear"].to_numpy(float)})
