"""The site's tariff, as the config's ``[tariff]`` table sets it: the file read, the export terms overridden.

``file`` empty: the virtual home prices with the tariff shipped in ``homegrid/tariffs/data/`` (a real US
time-of-use rate, Public Service Co of Colorado's RE-TOU, with its attribution); a home with real devices has no
tariff until the owner names one (a shipped rate from another utility would show wrong money). ``"none"``: no
tariff. A relative path is taken from the config file's folder. The reader's warnings (fields of a URDB record
it does not price) are logged, once per read.
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from homegrid.config import Config
from homegrid.tariffs import ExportRule, ExportTerms, Tariff, TariffError
from homegrid.tariffs.readers import load_tariff

__all__ = ["VIRTUAL_HOME_TARIFF", "site_tariff", "tariff_file", "with_export_overrides"]

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


def site_tariff(config: Config) -> Tariff | None:
    """The site's tariff: the config's file read (URDB JSON or homegrid TOML) with its export overrides.

    Parameters
    ----------
    config : Config
        The hub's config (its ``[tariff]`` table, whether it has devices, and where it was read from).

    Returns
    -------
    Tariff or None
        None when the config names no tariff.

    Raises
    ------
    TariffError
        The file cannot be read, or is not a tariff; the message starts with the file's path.
    """
    path = tariff_file(config)
    if path is None:
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
    return tariff
