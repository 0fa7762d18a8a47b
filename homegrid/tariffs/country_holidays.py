"""A country's public holidays as a tariff's holidays, from the `holidays` library (python-holidays, MIT).

A tariff names its holidays once (``holidays_country = "US"``, a subdivision, optionally which of them the
utility keeps); :class:`CountryHolidays` is the rule that gives them for any year a bill covers, so a tariff
holds no list of years. The library computes the dates (no network); the rule remembers each year it gave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import holidays as python_holidays

from homegrid.tariffs.model import TariffError

__all__ = ["OBSERVED", "CountryHolidays"]

#: The library's mark of a holiday moved off a weekend ("Independence Day (observed)").
OBSERVED = " (observed)"


def _names(text: str) -> list[str]:
    """The holidays of one day, as the library joins them ("A; B"), without the observed mark."""
    return [n.removesuffix(OBSERVED).strip() for n in text.split(";")]


@dataclass(frozen=True)
class CountryHolidays:
    """The public holidays of a country (and subdivision) for a year: a ``MonthHourSchedule.holiday_rule``.

    Parameters
    ----------
    country : str
        ISO 3166-1 alpha-2 code, as the ``holidays`` library knows it (``"US"``).
    subdivision : str
        The library's subdivision code (``"CA"``); ``""``: the whole country's.
    names : tuple of str
        Keep only holidays of these names (and their observed days); empty: all of them.

    Raises
    ------
    TariffError
        An unknown country or subdivision, or a name the library never gives in the years 2000 to 2050.
    """

    country: str
    subdivision: str = ""
    names: tuple[str, ...] = ()
    _cache: dict[int, frozenset[date]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        supported = python_holidays.list_supported_countries()
        if self.country not in supported:
            raise TariffError(f"holidays_country = {self.country!r}: not a country the holidays library knows "
                              "(an ISO 3166-1 alpha-2 code such as \"US\")")
        if self.subdivision and self.subdivision not in supported[self.country]:
            raise TariffError(f"holidays_subdivision = {self.subdivision!r}: not a subdivision of {self.country}; "
                              f"known: {', '.join(supported[self.country])}")
        object.__setattr__(self, "names", tuple(self.names))
        if self.names:
            known = {n for text in self._library(range(2000, 2051)).values() for n in _names(text)}
            for i, name in enumerate(self.names):
                if name not in known:
                    raise TariffError(f"holidays_names[{i}] = {name!r}: not a holiday of {self._where()} between "
                                      f"2000 and 2050; known: {', '.join(sorted(known))}")

    def _where(self) -> str:
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country

    def _library(self, years: Iterable[int]) -> python_holidays.HolidayBase:
        return python_holidays.country_holidays(self.country, subdiv=self.subdivision or None, years=years)

    def __call__(self, year: int) -> frozenset[date]:
        """The holidays of ``year`` (local dates)."""
        if year not in self._cache:
            days = self._library([year]).items()
            keep = set(self.names)
            self._cache[year] = frozenset(
                d for d, text in days if d.year == year and (not keep or keep.intersection(_names(text))))
        return self._cache[year]

    @property
    def description(self) -> str:
        """What the rule gives, in words."""
        which = ", ".join(self.names) if self.names else "all public holidays"
        return f"{which} of {self._where()} (python-holidays)"
