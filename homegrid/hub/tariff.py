"""The site's tariff, as the config's ``[tariff]`` table sets it: the file read, the export terms overridden.

``file`` empty: the virtual home prices with the tariff shipped in ``homegrid/tariffs/data/`` (a real US
time-of-use rate, Public Service Co of Colorado's RE-TOU, with its attribution); a home with real devices has no
tariff until the owner names one (a shipped rate from another utility would show wrong money). ``"none"``: no
tariff. A relative path is taken from the config file's folder. The reader's warnings (fields of a URDB record
it does not price) are logged, once per read.

``prices`` attaches dynamic prices (:class:`~homegrid.tariffs.DynamicPrices`: ``spot * (1 + price_percent / 100)
+ price_adder`` per kWh) to that tariff: from a price CSV (relative like ``file``; its bad rows are logged with
their count), or for a live source (``"awattar-de"``, ``"awattar-at"``) from its cache in the data dir
(:mod:`homegrid.hub.price_cache`), which the running hub keeps fresh and ``homegrid prices fetch`` backfills.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import os
from pathlib import Path

from homegrid.config import Config
from homegrid.hub.price_cache import LIVE_SOURCES, cache_path
from homegrid.hub.prices import PriceTerms, load_dynamic_prices
from homegrid.readings.problems import BadRow
from homegrid.tariffs import DynamicPrices, ExportRule, ExportTerms, Tariff, TariffError
from homegrid.tariffs.readers import load_tariff

__all__ = [
    "VIRTUAL_HOME_TARIFF",
    "SitePrices",
    "price_terms",
    "prices_file",
    "read_prices",
    "refuse_net_metering",
    "site_prices",
    "site_tariff",
    "tariff_file",
    "with_dynamic_prices",
    "with_export_overrides",
]

log = logging.getLogger(__name__)

#: The virtual home's tariff, in ``homegrid/tariffs/data/`` (its README gives the provenance).
VIRTUAL_HOME_TARIFF = "urdb_618940545457a35a1c4097ec_psco_residential_re_tou.json"


def tariff_file(config: Config) -> Path | None:
    """The tariff file the config names (see the module's docstring), or None for no tariff."""
    name = config.tariff.file.strip()
    if name.lower() == "none":
        return None
    if not name:
        if config.has_devices:
            return None
        return Path(str(importlib.resources.files("homegrid.tariffs").joinpath("data", VIRTUAL_HOME_TARIFF)))
    path = Path(name).expanduser()
    if not path.is_absolute() and config.source is not None:
        path = config.source.parent / path
    return path


def with_export_overrides(tariff: Tariff, config: Config) -> Tariff:
    """``tariff`` with the config's export rule, sell price, true-up month and rate where they are set."""
    table = config.tariff
    own = tariff.export
    if not table.export and table.sell_price is None and table.true_up_month is None and table.true_up_rate is None:
        return tariff
    return tariff.with_export(ExportTerms(
        ExportRule(table.export) if table.export else own.rule,
        table.sell_price if table.sell_price is not None else own.sell_price,
        table.true_up_month if table.true_up_month is not None else own.true_up_month,
        table.true_up_rate if table.true_up_rate is not None else own.true_up_rate,
    ))


def price_terms(config: Config) -> PriceTerms:
    """The config's adders and percentages of the dynamic prices."""
    t = config.tariff
    return PriceTerms(t.price_adder, t.price_percent, t.export_price_adder, t.export_price_percent)


def prices_file(config: Config, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The price CSV the config's ``prices`` names: the file (relative to the config's folder), a live source's
    cache in ``data_dir``, or None for no dynamic prices.

    Raises
    ------
    TariffError
        A live source without a data dir.
    """
    name = config.tariff.prices.strip()
    if not name:
        return None
    if name.lower() in LIVE_SOURCES:
        if data_dir is None:
            raise TariffError(f"[tariff] prices = {name!r}: its prices are cached in the data dir, and none is given")
        return cache_path(data_dir, name.lower())
    path = Path(name).expanduser()
    if not path.is_absolute() and config.source is not None:
        path = config.source.parent / path
    return path


def read_prices(path: Path, terms: PriceTerms | None = None, *, what: str = "[tariff] prices",
                live: str | None = None) -> DynamicPrices:
    """A price CSV's dynamic prices with ``terms``; its bad rows and gaps are logged with their count.

    Parameters
    ----------
    path : Path
    terms : PriceTerms
    what : str
        Names the setting in messages (``[tariff] prices``, ``--prices``).
    live : str or None
        The live source whose cache the file is (its absence then says how to fill it).

    Raises
    ------
    TariffError
        The file is absent or unreadable, not a price CSV, or has no good row; the message names the file.
    """
    if live is not None and not path.exists():
        raise TariffError(f"{what} = {live!r}: no prices cached yet ({path} does not exist); run "
                          "`homegrid prices fetch --from DATE --to DATE` (the running hub also fetches today and "
                          "tomorrow every hour)")
    try:
        prices, found = load_dynamic_prices(path, terms or PriceTerms())
    except OSError as exc:
        raise TariffError(f"{what}: {path}: cannot read the price file ({exc.strerror or exc})") from None
    except BadRow as exc:
        raise TariffError(f"{what}: {exc}") from None
    if found.problems.total:
        log.warning("prices %s: %d rows not used (the first: %s)", path, found.problems.total,
                    found.problems[0] if found.problems else "?")
    if found.gaps:
        log.info("prices %s: %d spans without prices (the first: %s)", path, len(found.gaps), found.gaps[0])
    if prices is None:
        raise TariffError(f"{what}: {path}: no row of the price file is good ({found.problems.total} rows not "
                          "used)")
    return prices


def site_prices(config: Config, data_dir: str | os.PathLike[str] | None = None) -> DynamicPrices | None:
    """The config's dynamic prices (see the module's docstring), or None when ``[tariff] prices`` is empty.

    Raises
    ------
    TariffError
        The price file cannot be read or has no good row, or a live source has no cache yet.
    """
    path = prices_file(config, data_dir)
    if path is None:
        return None
    name = config.tariff.prices.strip().lower()
    return read_prices(path, price_terms(config), live=name if name in LIVE_SOURCES else None)


def _setting(key: str, value: str) -> str:
    """How the owner sets ``key`` to ``value``: a command's option or a config key."""
    return f"give {key} {value}" if key.startswith("--") else f'set {key} = "{value}"'


def with_dynamic_prices(tariff: Tariff, prices: DynamicPrices | None, *, export_key: str = "[tariff] export",
                        prices_key: str = "[tariff] prices") -> Tariff:
    """``tariff`` with ``prices`` replacing its energy prices (None: as it is).

    Raises
    ------
    TariffError
        The tariff's export rule is net metering, which dynamic prices cannot have; the message names the
        settings that change it (``export_key``, ``prices_key``).
    """
    if prices is None:
        return tariff
    refuse_net_metering(tariff, export_key=export_key, prices_key=prices_key)
    return dataclasses.replace(tariff, dynamic=prices)


def refuse_net_metering(tariff: Tariff, *, export_key: str = "[tariff] export",
                        prices_key: str = "[tariff] prices") -> None:
    """Raise the :class:`TariffError` of :func:`with_dynamic_prices` when ``tariff`` is net-metered."""
    if tariff.export.rule is ExportRule.NET_METERING:
        raise TariffError(f"{prices_key} is set, and the export rule is net-metering (the tariff's own or "
                          f"{export_key}): net metering nets kWh by time-of-use period, which dynamic prices do not "
                          f"have; {_setting(export_key, 'net-billing')} (or buy-all-sell-all, none), or "
                          + ("leave it out" if prices_key.startswith("--") else f"leave {prices_key} empty"))


def site_tariff(config: Config, data_dir: str | os.PathLike[str] | None = None) -> Tariff | None:
    """The site's tariff: the config's file read (URDB JSON or homegrid TOML) with its export overrides and its
    dynamic prices.

    Parameters
    ----------
    config : Config
        The hub's config (its ``[tariff]`` table, whether it has devices, and where it was read from).
    data_dir : path-like or None
        The data dir, where a live source's prices are cached (needed only then).

    Returns
    -------
    Tariff or None
        None when the config names no tariff.

    Raises
    ------
    TariffError
        The file cannot be read, or is not a tariff (the message starts with the file's path); the prices cannot
        be read, are not cached yet, or go with net metering (the message names the ``[tariff]`` keys).
    """
    path = tariff_file(config)
    if path is None:
        if config.tariff.prices.strip():
            raise TariffError("[tariff] prices is set but there is no tariff to go with it: name the tariff (its "
                              "currency, fixed charges and export terms) in [tariff] file")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TariffError(f"{path}: cannot read the tariff file ({reason}); see [tariff] file") from None
    try:
        tariff, warnings = load_tariff(text)
        tariff = with_export_overrides(tariff, config)
    except TariffError as exc:
        raise TariffError(f"{path}: {exc}") from None
    for warning in warnings:
        log.warning("tariff %s: %s", path.name, warning)
    return with_dynamic_prices(tariff, site_prices(config, data_dir))


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What tells a file's versions apart: a cache renamed into place is a new inode."""
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)


class SitePrices:
    """The config's dynamic prices put on the running hub's tariff (the config's or the owner's upload), read again
    whenever the price file changes (the hub's price task rewrites a live source's cache every hour).

    ``site_prices(tariff)`` answers ``tariff`` with the prices, the same object while neither changes (answers
    computed from it may be cached by its identity), or None when the prices cannot be read or do not go with the
    tariff (net metering): :attr:`error` says why, logged once per change.

    Parameters
    ----------
    config : Config
        Its ``[tariff] prices`` and terms.
    data_dir : path-like or None
        Where a live source's prices are cached.
    """

    def __init__(self, config: Config, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.error: str | None = None
        self._key: object = object()  # never equal to a stamp: the first call reads
        self._prices: DynamicPrices | None = None
        self._prices_error: str | None = None
        self._made: dict[int, tuple[Tariff, Tariff | None, str | None]] = {}

    def prices(self) -> DynamicPrices | None:
        """The dynamic prices as the file is now (None: none set, or they do not read: :attr:`error`)."""
        try:
            key = _stamp(prices_file(self.config, self.data_dir))
        except TariffError:
            key = None
        if key != self._key:
            self._key, self._made = key, {}
            try:
                self._prices, self._prices_error = site_prices(self.config, self.data_dir), None
            except TariffError as exc:
                self._prices, self._prices_error = None, str(exc)
                log.error("tariff: %s; nothing is priced until it is fixed", exc)
        self.error = self._prices_error
        return self._prices

    def check(self, tariff: Tariff) -> None:
        """Raise :class:`TariffError` when ``tariff`` cannot take dynamic prices (net metering), cached or not."""
        if self.config.tariff.prices.strip():
            refuse_net_metering(tariff)

    def __call__(self, tariff: Tariff) -> Tariff | None:
        """``tariff`` with the dynamic prices (itself when none are set), or None (see :attr:`error`)."""
        prices = self.prices()
        if self._prices_error is not None:
            return None
        made = self._made.get(id(tariff))
        if made is None or made[0] is not tariff:
            try:
                made = (tariff, with_dynamic_prices(tariff, prices), None)
            except TariffError as exc:
                made = (tariff, None, str(exc))
                log.error("tariff: %s; nothing is priced until it is fixed", exc)
            self._made[id(tariff)] = made
        self.error = made[2]
        return made[1]
