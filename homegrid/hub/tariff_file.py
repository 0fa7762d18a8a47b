"""The site's tariff as the running hub holds it: the one the owner uploaded (kept in the data dir), else the
config's (``GET``/``PUT /api/v1/tariff`` and the bill's routes read it).

The uploaded text is kept as it came (homegrid's TOML or a URDB JSON record), with who uploaded it, when and why,
in ``tariff.json`` in the data dir (written whole to a new file and renamed over the old one). It is read again
with the tariff reader when the hub starts, so a reader that learns more prices it better. :attr:`SiteTariff.version`
changes whenever the tariff does, so answers computed from it can be cached.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homegrid.config import Config
from homegrid.hub.tariff import SitePrices, tariff_file, with_export_overrides
from homegrid.tariffs.model import Tariff, TariffError
from homegrid.tariffs.readers import load_tariff

__all__ = ["HISTORY_KEPT", "TARIFF_FILE", "Loader", "SiteTariff", "describe_tariff"]

log = logging.getLogger(__name__)

#: the owner's tariff in the data dir
TARIFF_FILE = "tariff.json"
#: uploads remembered (who, when, why), newest last
HISTORY_KEPT = 20
#: reads a tariff's text (homegrid's TOML or URDB JSON) into a tariff and the warnings on what it left out
Loader = Callable[[str], tuple[Tariff, list[str]]]


def describe_tariff(tariff: Tariff) -> dict[str, Any]:
    """A tariff in brief, for the owner: its name, source, currency, export rule and each period's blocks."""
    periods = [
        {"period": p, "name": tariff.energy.name(p),
         "tiers": [{"buy": t.buy, "sell": t.sell, "max_kwh": None if math.isinf(t.max_kwh) else t.max_kwh}
                   for t in tiers]}
        for p, tiers in sorted(tariff.energy.periods.items())
    ]
    demand = tariff.demand is not None and tariff.demand.any
    return {
        "name": tariff.name,
        "source": tariff.source,
        "currency": tariff.currency,
        "export_rule": str(tariff.export.rule),
        "sell_price": tariff.export.sell_price,
        "fixed_monthly": tariff.fixed_monthly,
        "fixed_daily": tariff.fixed_daily,
        "minimum_monthly": tariff.minimum_monthly,
        "tax_percent": tariff.tax_percent,
        "billing_day": tariff.billing_day,
        "dynamic": tariff.dynamic is not None,
        "demand": demand,
        "demand_window_min": tariff.demand.window_min if demand and tariff.demand is not None else None,
        "tier_unit": str(tariff.energy.tier_unit),
        "periods": periods,
    }


class SiteTariff:
    """The owner's uploaded tariff (``data_dir/tariff.json``), else the configured one, else none.

    Parameters
    ----------
    data_dir : Path or None
        Where uploads are kept; None: uploads are refused (no data dir).
    load : Loader or None
        The tariff reader (``homegrid.tariffs.load_tariff``); None: uploads are refused (no reader).
    configured : callable, optional
        ``configured()``: the config's tariff, or None.
    prices : SitePrices or None
        The config's dynamic prices, put on the tariff (the upload's or the config's) when it is asked for.
    """

    def __init__(self, data_dir: Path | None = None, load: Loader | None = None,
                 configured: Callable[[], Tariff | None] = lambda: None, *,
                 configured_warnings: tuple[str, ...] = (), configured_error: str | None = None,
                 prices: SitePrices | None = None) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.load = load
        self.configured = configured
        self.configured_warnings = list(configured_warnings)
        self.configured_error = configured_error
        self.prices = prices
        self.version = 0
        self._lock = threading.Lock()
        self._uploaded: Tariff | None = None
        self._record: dict[str, Any] | None = None
        self._warnings: list[str] = []
        self._error: str | None = None
        self._read()

    @classmethod
    def from_config(cls, config: Config, data_dir: Path) -> SiteTariff:
        """The running hub's: uploads read by :func:`homegrid.tariffs.load_tariff` with the config's export
        overrides (``[tariff] export``, ``sell_price``, ...: the site's metering, whatever rate is uploaded), else
        the config's ``[tariff]`` (:func:`homegrid.hub.tariff.site_tariff`; a file that does not read is an
        error shown to the owner, not a hub that will not start); either with the config's dynamic prices
        (``[tariff] prices``, read again whenever their file changes: :class:`homegrid.hub.tariff.SitePrices`)."""

        def load(text: str) -> tuple[Tariff, list[str]]:
            tariff, warnings = load_tariff(text)
            return with_export_overrides(tariff, config), warnings

        configured: Tariff | None = None
        warnings: list[str] = []
        error = None
        path = tariff_file(config)
        if path is not None:
            try:
                configured, warnings = load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, TariffError) as exc:
                error = f"{path}: {exc}"
                log.error("tariff: %s; nothing is priced until it is fixed or a tariff is uploaded", error)
            for warning in warnings:
                log.warning("tariff %s: %s", path.name, warning)
        return cls(data_dir, load, lambda: configured, configured_warnings=tuple(warnings),
                   configured_error=error,
                   prices=SitePrices(config, data_dir) if config.tariff.prices.strip() else None)

    @classmethod
    def fixed(cls, tariff: Tariff | None) -> SiteTariff:
        """A site whose tariff is given (tests, one-shot commands): no uploads."""
        return cls(configured=lambda: tariff)

    @property
    def path(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir / TARIFF_FILE

    def _read(self) -> None:
        path = self.path
        if path is None or not path.exists():
            return
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            text = record["text"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._error = f"{path} could not be read ({exc}); the config's tariff is used"
            log.warning("tariff: %s", self._error)
            return
        self._record = record
        if self.load is None:
            self._error = "the uploaded tariff cannot be read: this hub has no tariff reader"
            return
        try:
            self._uploaded, self._warnings = self.load(text)
        except (TariffError, ValueError) as exc:
            self._error = f"the uploaded tariff no longer reads ({exc}); the config's tariff is used"
            log.warning("tariff: %s", self._error)

    def current(self) -> Tariff | None:
        """The tariff bills are priced with now."""
        tariff = self._uploaded if self._uploaded is not None else self.configured()
        return tariff if tariff is None or self.prices is None else self.prices(tariff)

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/v1/tariff`` answers: the tariff in brief, where it came from, and what was wrong."""
        tariff = self.current()
        record = self._record or {}
        out: dict[str, Any] = {
            "configured": tariff is not None,
            "origin": "upload" if self._uploaded is not None else "config" if tariff is not None else None,
            "can_upload": self.data_dir is not None and self.load is not None,
            "version": self.version,
            "warnings": list(self._warnings if self._uploaded is not None else self.configured_warnings),
            "error": self._error or (self.configured_error if self._uploaded is None else None)
            or (self.prices.error if self.prices is not None else None),
            "uploaded": {k: record.get(k) for k in ("at", "by", "reason", "format")} if self._uploaded else None,
            "history": [{k: h.get(k) for k in ("at", "by", "reason", "name")} for h in record.get("history", [])],
            "tariff": None if tariff is None else describe_tariff(tariff),
        }
        return out

    def upload(self, text: str, *, by: str, reason: str) -> tuple[Tariff, list[str]]:
        """Read a tariff's text and make it the site's, kept in the data dir.

        Raises
        ------
        TariffError, ValueError
            The text is not a tariff the reader takes (the field at fault named); nothing is changed.
        RuntimeError
            This hub takes no uploads (no data dir or no reader).
        """
        if self.path is None or self.load is None:
            raise RuntimeError("this hub takes no tariff uploads: "
                               + ("it has no data dir" if self.path is None else "it has no tariff reader"))
        tariff, warnings = self.load(text)  # raises before anything is changed
        if self.prices is not None:
            self.prices.check(tariff)  # net metering cannot take the config's dynamic prices
        at = datetime.now(UTC).isoformat(timespec="seconds")
        fmt = "urdb-json" if text.lstrip().startswith(("{", "[")) else "toml"
        with self._lock:
            history = [*((self._record or {}).get("history", [])),
                       {"at": at, "by": by, "reason": reason, "name": tariff.name}][-HISTORY_KEPT:]
            record = {"text": text, "at": at, "by": by, "reason": reason, "format": fmt, "name": tariff.name,
                      "warnings": warnings, "history": history}
            path = self.path
            tmp = path.with_name(path.name + ".tmp")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
            os.replace(tmp, path)
            self._record, self._uploaded, self._warnings, self._error = record, tariff, list(warnings), None
            self.version += 1
        log.info("tariff: %r (%s, %s) set by %s: %s; %d warnings", tariff.name, fmt, tariff.currency, by,
                 reason or "no reason given", len(warnings))
        return tariff, warnings
