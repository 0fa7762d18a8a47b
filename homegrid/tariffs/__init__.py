"""Tariffs: what energy costs, as pure functions over arrays (no store, no I/O).

- :mod:`homegrid.tariffs.schedule`: which time-of-use period of a rate's month-by-hour schedule each instant
  falls in, in the site's local time;
- :mod:`homegrid.tariffs.model`: a tariff as data (energy periods and tiers, fixed, minimum and demand
  charges, export terms, dynamic prices, taxes);
- :mod:`homegrid.tariffs.urdb` and :mod:`homegrid.tariffs.toml_rate`: the two file formats, an OpenEI URDB
  record and homegrid's TOML (read from text; :func:`load_tariff` tells them apart by content);
- :mod:`homegrid.tariffs.country_holidays`: a country's public holidays as a schedule's holiday rule.
"""

from homegrid.tariffs.model import (
    DemandCharges,
    DemandTier,
    DynamicPrices,
    EnergyRates,
    ExportRule,
    ExportTerms,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.readers import load_tariff
from homegrid.tariffs.schedule import HolidayRule, MonthHourSchedule, tou_periods
from homegrid.tariffs.toml_rate import read_toml_tariff, write_toml_tariff
from homegrid.tariffs.urdb import read_urdb

__all__ = [
    "DemandCharges",
    "DemandTier",
    "DynamicPrices",
    "EnergyRates",
    "ExportRule",
    "ExportTerms",
    "HolidayRule",
    "MonthHourSchedule",
    "Tariff",
    "TariffError",
    "Tier",
    "TierScope",
    "TierUnit",
    "load_tariff",
    "read_toml_tariff",
    "read_urdb",
    "tou_periods",
    "write_toml_tariff",
]
