"""What the energy cost (issue 13): ``GET /api/v1/bill?from=&to=`` (the bill of a span, as ``homegrid bill --json``:
:func:`homegrid.hub.bill.site_bill`), ``GET /api/v1/prices?day=`` (the price over a local day and what each hour
cost), the site's tariff: ``GET /api/v1/tariff`` and ``PUT /api/v1/tariff`` (the owner uploads homegrid's TOML or
a URDB JSON record; the door asks for the owner's credential, and the change is logged with who made it and why),
and ``GET /api/v1/money`` (the Money view's figures in one reply: the tariff and the last twelve months' bill, so
the app asks it at once beside the site and paints the view after one round trip; with the hub's
:class:`~homegrid.hub.planner_saving.PlannerSaving`, also ``against_self_powered``: what the planner saved against the
battery's own self-powered mode last billing month and this month so far).

Without a tariff the bill and the prices answer 409 with how to set one (``/api/v1/money``: 200, ``bill`` null).
Bills are cached per span, tariff and the store's newest minute (a new reading or a new tariff prices afresh);
``/api/v1/money`` takes its span's bill up to a minute old (:data:`MONEY_MAX_AGE_S`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import HTTPException, Query, Request
from pydantic import BaseModel, Field

from homegrid.api.context import ApiContext, Endpoint, span_or_422
from homegrid.api.security import actor_of
from homegrid.hub.bill import home_intervals, site_bill
from homegrid.hub.queries import FIRST_DAY, LAST_DAY, clamp_day
from homegrid.hub.tariff_file import SiteTariff
from homegrid.readings import to_ms
from homegrid.tariffs.meters import counterfactual_meters, export_price, import_price
from homegrid.tariffs.model import Tariff, TariffError
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_date, local_day_bounds, local_isoformat

__all__ = ["BILLS_CACHED", "HOW_TO_SET", "MoneyRoutes", "TariffUpload"]

log = logging.getLogger(__name__)

#: bills kept for repeated asks (the Money view and the day view ask the same spans again)
BILLS_CACHED = 16
#: said wherever a tariff is missing
HOW_TO_SET = ("no tariff is set: upload one (homegrid's TOML or a URDB JSON record) from the System view, "
              "PUT /api/v1/tariff with the owner's credential, or name one in the config's [tariff] table")
#: the Money view's bill may be this old (the view asks every five minutes; a hub stores a minute every minute, and
#: each would price the twelve months again) [s]
MONEY_MAX_AGE_S = 60.0
#: the most text an upload may hold (a URDB record with its schedules is about 20 kB)
MAX_TARIFF_CHARS = 1_000_000


class TariffUpload(BaseModel):
    """A tariff's text, and why it is changed (kept in the log and beside the tariff)."""

    text: str = Field(description="homegrid's TOML or a URDB JSON record (told apart by content)",
                      max_length=MAX_TARIFF_CHARS)
    reason: str = Field(default="", description="why the tariff is changed", max_length=500)


def _money(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


class MoneyRoutes:
    """The money routes over an app's :class:`ApiContext` (:attr:`routes`); the tariff from ``api.tariff``."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.site: SiteTariff = api.tariff if api.tariff is not None else SiteTariff()
        self._bills: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._recent: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}  # the newest of a span, and when
        self._lock = threading.Lock()
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/bill", self.bill,
                     summary="The bill of local dates (inclusive) or instants, per billing month, with what the sun, "
                             "the battery and the car's timing saved"),
            Endpoint("GET", "/api/v1/money", self.money,
                     summary="The Money view's figures at once: the tariff, and the bill of the last months to now"),
            Endpoint("GET", "/api/v1/prices", self.prices,
                     summary="The import and export price over a local day, and what each hour cost"),
            Endpoint("GET", "/api/v1/tariff", self.tariff_get, summary="The site's tariff in brief, and its warnings"),
            Endpoint("PUT", "/api/v1/tariff", self.tariff_put,
                     summary="Upload the site's tariff (homegrid's TOML or a URDB JSON record); owner only"),
        )

    def _tariff(self) -> Tariff:
        tariff = self.site.current()
        if tariff is None:
            raise HTTPException(status_code=409, detail=HOW_TO_SET)
        return tariff

    def bill(
        self,
        from_: Annotated[str, Query(alias="from", description="ISO 8601 instant or local date")],
        to: Annotated[str, Query(description="ISO 8601 instant or local date (inclusive)")],
        counterfactuals: Annotated[bool, Query(description="also bill the home without battery, without solar")]
        = True,
        stored_only: Annotated[bool, Query(description="start at the first stored local day when it is later "
                                                       "(a newer hub's months are not all missing hours)")] = False,
    ) -> dict[str, Any]:
        queries = self.api.queries
        start_ms, end_ms = span_or_422(queries, from_, to)
        if stored_only:
            start_ms = self._from_stored(start_ms, end_ms)
        if end_ms - start_ms > 3 * 366 * 24 * HOUR_MS:
            raise HTTPException(status_code=422, detail="a bill covers at most three years; ask for less")
        return self._bill_of(self._tariff(), start_ms, end_ms, counterfactuals)

    def _from_stored(self, start_ms: int, end_ms: int) -> int:
        """A span's start moved to the first stored local day when that is later (and inside the span)."""
        queries = self.api.queries
        stored = queries.store.data_range()
        if stored is not None:
            first_day = local_day_bounds(local_date(stored[0], queries.tz), queries.tz)[0]
            if start_ms < first_day < end_ms:
                return first_day
        return start_ms

    def _bill_of(self, tariff: Tariff, start_ms: int, end_ms: int, counterfactuals: bool,
                 max_age_s: float = 0.0) -> dict[str, Any]:
        """:func:`site_bill`, kept per span, tariff and newest stored minute (see the module's docstring);
        ``max_age_s``: a bill of the same span and tariff computed that recently will do, newer minutes or not."""
        queries = self.api.queries
        now_ms = to_ms(datetime.now(UTC))
        newest = queries.store.rollup_range("minute")
        # the bill of a span still going changes with the clock (its projection) and each new minute stored
        key = (start_ms, end_ms, id(tariff), self.site.version, newest, counterfactuals,
               min(end_ms, now_ms // MINUTE_MS * MINUTE_MS))
        recent_key = (*key[:4], counterfactuals)
        with self._lock:
            cached = self._bills.get(key)
            if cached is not None:
                self._bills.move_to_end(key)
                return cached
            if max_age_s > 0 and recent_key in self._recent:
                at, out = self._recent[recent_key]
                if time.monotonic() - at <= max_age_s:
                    return out
        try:
            out = site_bill(queries.store, tariff, queries.tz, start_ms, end_ms, now_ms=now_ms,
                            counterfactuals=counterfactuals)
        except TariffError as exc:  # a dynamic price series that does not cover the span
            raise HTTPException(status_code=422, detail=str(exc)) from None
        with self._lock:
            self._bills[key] = out
            while len(self._bills) > BILLS_CACHED:
                self._bills.popitem(last=False)
            self._recent[recent_key] = (time.monotonic(), out)
            while len(self._recent) > BILLS_CACHED:
                self._recent.pop(next(iter(self._recent)))
        return out

    def money(
        self,
        months: Annotated[int, Query(ge=1, le=36, description="months back, this one included")] = 12,
    ) -> dict[str, Any]:
        """What the Money view shows, in one reply: the tariff (``GET /api/v1/tariff``) and the bill of the last
        ``months`` local calendar months to now (``GET /api/v1/bill?...&stored_only=true``: from the first stored
        day when later), or ``bill`` null and ``how_to_set`` without a tariff (200: the view says so).

        ``against_self_powered`` (with a tariff and a hub): ``planner_enabled``, ``currency``, ``note`` (why there
        are no figures) and ``last_month`` / ``this_month``, each with ``actual`` (the bill as measured),
        ``self_powered`` (the same battery replayed in self-powered mode) and ``saving`` (``self_powered -
        actual``, negative when the planner cost money) [currency]
        (:func:`homegrid.hub.planner_saving.month_against_self_powered` lists the rest)."""
        out = self.tariff_get()
        tariff = self.site.current()
        out["bill"] = out["against_self_powered"] = None
        if tariff is not None:
            tz = self.api.queries.tz
            today = datetime.now(tz).date()
            year, month = divmod(today.year * 12 + today.month - 1 - (months - 1), 12)
            start_ms, _ = local_day_bounds(date(year, month + 1, 1), tz)
            _, end_ms = local_day_bounds(today, tz)
            start_ms = self._from_stored(start_ms, end_ms)
            try:
                out["bill"] = self._bill_of(tariff, start_ms, end_ms, True, max_age_s=MONEY_MAX_AGE_S)
            except HTTPException as exc:
                out["bill_error"] = exc.detail
            out["against_self_powered"] = self._against_self_powered(tariff)
        return out

    def _against_self_powered(self, tariff: Tariff) -> dict[str, Any] | None:
        """:meth:`PlannerSaving.months` (None without a hub's)."""
        saving = self.api.planner_saving
        return None if saving is None else saving.months(tariff, self.site.version, to_ms(datetime.now(UTC)))

    async def prices(self, day: Annotated[date, Query(description="local date")]) -> dict[str, Any]:
        """Each local hour of the day: the marginal import and export prices [currency/kWh], the metered energy
        [Wh] and its cost, import x import price - export x export price [currency]; hours without data have
        null energy and cost. One day: worked out on the event loop (``INLINE_DAYS``)."""
        if clamp_day(day) != day:
            raise HTTPException(status_code=422, detail=f"day: {day} is outside {FIRST_DAY} .. {LAST_DAY}")
        tariff = self._tariff()
        queries = self.api.queries
        tz = queries.tz
        start_ms, end_ms = local_day_bounds(day, tz)
        t = np.arange(start_ms, end_ms, HOUR_MS, dtype=np.int64)
        buy = import_price(tariff, t, tz.key)
        sell = export_price(tariff, t, tz.key)
        home, _ = home_intervals(queries.store, "hour", start_ms, end_ms)
        metered = counterfactual_meters(home, tariff.export.rule)["actual"]
        rows = {int(s): i for i, s in enumerate(metered.t_ms)}
        labels = local_isoformat(t, tz.key)
        ends = local_isoformat(t + HOUR_MS, tz.key)
        hours = []
        total = 0.0
        for k, s in enumerate(t):
            i = rows.get(int(s))
            imp = None if i is None else float(metered.import_wh[i])
            exp = None if i is None else float(metered.export_wh[i])
            cost = None
            if imp is not None and exp is not None:
                c = imp / 1000 * float(buy[k]) - exp / 1000 * (0.0 if exp == 0 else float(sell[k]))
                if np.isfinite(c):
                    cost = round(c, 6)
                    total += c
            hours.append({"start": labels[k], "end": ends[k], "import_price": _money(float(buy[k])),
                          "export_price": _money(float(sell[k])),
                          "import_wh": None if imp is None else round(imp, 1),
                          "export_wh": None if exp is None else round(exp, 1), "cost": cost})
        return {"day": day.isoformat(), "timezone": tz.key, "currency": tariff.currency, "tariff": tariff.name,
                "export_rule": str(tariff.export.rule), "hours": hours,
                "cost": round(total, 6), "hours_with_data": sum(h["cost"] is not None for h in hours),
                "note": "marginal prices before tiers, fixed, demand and minimum charges and taxes; "
                        "the bill (/api/v1/bill) has those"}

    def tariff_get(self) -> dict[str, Any]:
        out = self.site.describe()
        if not out["configured"]:
            out["how_to_set"] = HOW_TO_SET
        return out

    def tariff_put(self, upload: TariffUpload, request: Request) -> dict[str, Any]:
        actor = actor_of(request)
        try:
            _, warnings = self.site.upload(upload.text, by=actor, reason=upload.reason.strip())
        except RuntimeError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except (TariffError, ValueError) as exc:
            log.info("tariff: an upload by %s was refused: %s", actor, exc)
            raise HTTPException(status_code=422, detail=f"not a tariff homegrid can price: {exc}") from None
        with self._lock:
            self._bills.clear()
            self._recent.clear()
        return {**self.site.describe(), "accepted": True, "warnings": warnings}
