// Day / week / month / year / custom: a day's power chart and its hourly kWh; kWh bars per local day (week, month)
// or local month (year); totals, self-powered share and the Sankey; a day's prices and what each hour cost.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { prefetch, useFetch } from "./api.js";
import { BAR_FIELDS, EnergyBars } from "./bars.js";
import { CHART_FIELDS, PowerChart } from "./chart.js";
import { barStepFor, daysBetween, shift, span } from "./dates.js";
import { dateFormat, kwh, longDate } from "./format.js";
import { memo } from "./memo.js";
import { TARIFF } from "./money.js";
import { Tile } from "./now.js";
import { DayPrices, PRICES } from "./prices.js";
import { Sankey } from "./sankey.js";
import { energyUrl } from "./series.js";

const KINDS = ["day", "week", "month", "year", "custom"];
const REPORT = "/api/v1/report";
// how long another period's replies may take before the view shows it as they come, with "Loading…" where they
// are not in yet; until then the last period stays whole, its title with it [ms]
const SWAP_AFTER_MS = 300;

export function route(kind, a, b) {
  return kind === "custom" ? `#/history/custom/${a}/${b}` : `#/history/${kind}/${a}`;
}

function title(kind, from, to) {
  if (kind === "day") return longDate(from);
  if (kind === "month") return dateFormat("UTC", { month: "long", year: "numeric" }).format(new Date(`${from}T12:00:00Z`));
  if (kind === "year") return from.slice(0, 4);
  return `${longDate(from)} – ${longDate(to)}`;
}

/** What a history route shows: its kind, dates, steps, and the URLs of its replies. */
function viewOf(params, today) {
  const kind = KINDS.includes(params[0]) ? params[0] : "day";
  const date = params[1] || today;
  const [from, to] = span(kind, date, kind === "custom" ? [params[1] || today, params[2] || params[1] || today] : null);
  // a day (or two): power by the minute and kWh by the hour; longer: kWh per local day, or per local month
  const barStep = barStepFor(kind, from, to);
  const powerStep = barStep === "hour" ? "minute" : null;
  const q = `from=${from}&to=${to}`;
  // in the order they are asked for on a route change: the chart's two first, then the totals, then the bars
  const urls = { energy: powerStep && energyUrl(from, to, powerStep, CHART_FIELDS), outages: `/api/v1/outages?${q}`,
    report: `${REPORT}?${q}`, bins: energyUrl(from, to, barStep, BAR_FIELDS) };
  return { kind, date, from, to, barStep, powerStep, urls };
}

/** Ask a history route's replies as soon as the route changes, before the view is drawn again (which first takes
 * the old period's drawings down). */
export function prefetchHistory(params, today) {
  for (const url of Object.values(viewOf(params, today).urls)) if (url) prefetch(url);
}

/** The replies of a period: each { data, error, loading } of useFetch. */
function useReplies(view) {
  const tariff = useFetch(view.kind === "day" ? TARIFF : null);
  return {
    energy: useFetch(view.urls.energy), outages: useFetch(view.urls.outages), report: useFetch(view.urls.report),
    bins: useFetch(view.urls.bins), tariff,
    prices: useFetch(tariff.data?.configured ? `${PRICES}?day=${view.from}` : null),
  };
}

/** The period asked for once its replies are all in (or after SWAP_AFTER_MS); until then the one shown before,
 * whole, so that a change of day is drawn once, not once per reply with the page emptied in between, and no
 * title ever stands over another period's figures. */
function useShown(view) {
  const replies = useReplies(view);
  const key = Object.values(view.urls).join(" ");
  const last = useRef(null);
  const [late, setLate] = useState(null);
  if (late === key || !last.current || Object.values(replies).every((r) => !r.loading)) {
    last.current = { key, view, replies };
  }
  const busy = last.current.key !== key;
  // a reply still on its way: the period asked for is shown as its replies come once SWAP_AFTER_MS has passed
  const waiting = useRef(false);
  waiting.current = last.current.replies !== replies;
  useEffect(() => {
    const timer = setTimeout(() => waiting.current && setLate(key), SWAP_AFTER_MS);
    return () => clearTimeout(timer);
  }, [key]);
  return { view: last.current.view, replies: last.current.replies, busy };
}

export function HistoryView({ params, today, theme }) {
  const asked = viewOf(params, today);
  const { view, replies, busy } = useShown(asked);
  const { kind, from, to, barStep, powerStep } = view;
  const { energy, outages, report, bins } = replies;
  const step = powerStep ?? barStep;
  const r = report.data;
  // the controls move on from the period asked for, even while the last one is still shown
  const go = (k, d) => (location.hash = route(k, ...(k === "custom" ? [d, d] : [d])));
  const days = daysBetween(from, to) + 1;

  return html`<section class="history" aria-labelledby="hist-h" aria-busy=${busy ? "true" : "false"} data-from=${from}
      data-to=${to} data-step=${step}>
    <div class="view-head">
      <h1 id="hist-h">${title(kind, from, to)}</h1>
      <div class="range-bar">
        <div class="seg" role="group" aria-label="Range">
          ${KINDS.map((k) => html`<button type="button" aria-pressed=${k === asked.kind} onClick=${() => go(k, asked.from)}>${k[0].toUpperCase() + k.slice(1)}</button>`)}
        </div>
        ${asked.kind !== "custom"
          ? html`<div class="seg" role="group" aria-label="Move">
              <button type="button" aria-label=${`Previous ${asked.kind}`} onClick=${() => go(asked.kind, shift(asked.kind, asked.from, -1))}>‹</button>
              <label class="date-pick"><span class="sr">Date</span>
                <input type="date" value=${asked.date} max=${today} onChange=${(ev) => ev.target.value && go(asked.kind, ev.target.value)} /></label>
              <button type="button" aria-label=${`Next ${asked.kind}`} onClick=${() => go(asked.kind, shift(asked.kind, asked.from, 1))}>›</button>
              <button type="button" onClick=${() => go(asked.kind, today)}>Today</button>
            </div>`
          : html`<div class="seg" role="group" aria-label="Custom range">
              <label>From <input type="date" value=${asked.from} onChange=${(ev) => ev.target.value && (location.hash = route("custom", ev.target.value, asked.to < ev.target.value ? ev.target.value : asked.to))} /></label>
              <label>To <input type="date" value=${asked.to} onChange=${(ev) => ev.target.value && (location.hash = route("custom", asked.from > ev.target.value ? ev.target.value : asked.from, ev.target.value))} /></label>
            </div>`}
      </div>
    </div>
    ${(energy.error || bins.error || report.error) && html`<p class="error" role="alert">${(energy.error || bins.error || report.error).message}</p>`}
    ${powerStep && html`<div class="card">
      ${energy.data && (outages.data || outages.error)
        ? html`<${PowerChart} energy=${energy.data} outages=${outages.data?.events} step=${powerStep} theme=${theme} />`
        : html`<div class="chart placeholder muted">Loading…</div>`}
      ${outages.data?.events?.length > 0 && html`<p class="muted small">${outages.data.events.length} outage${outages.data.events.length > 1 ? "s" : ""} in this period, shaded. <a href="#/outages">All outages</a></p>`}
    </div>`}
    <div class="card">
      <h2 id="bars-h">${barStep === "hour" ? "Energy by the hour" : barStep === "day" ? "Energy by the day" : "Energy by the month"}</h2>
      ${bins.data
        ? html`<${EnergyBars} energy=${bins.data} step=${barStep} from=${from} to=${to}
            label=${barStep === "hour" ? "Energy by the hour" : barStep === "day" ? "Energy by the day" : "Energy by the month"} />`
        : html`<div class="bars placeholder muted">Loading…</div>`}
      ${!powerStep && outages.data?.events?.length > 0 && html`<p class="muted small">${outages.data.events.length} outage${outages.data.events.length > 1 ? "s" : ""} in this period. <a href="#/outages">All outages</a></p>`}
    </div>
    ${kind === "day" && html`<${DayPrices} tariff=${replies.tariff} prices=${replies.prices} />`}
    ${r && html`<${Totals} r=${r} days=${days} />`}
  </section>`;
}

/** The period's totals, its self-powered share and the Sankey, from /api/v1/report. */
const Totals = memo(function Totals({ r, days }) {
  const e = r.energy_wh;
  return html`<div class="tiles totals" data-report-from=${r.from} data-report-to=${r.to}>
      <${Tile} id="total-solar" label="Solar" value=${kwh(e.solar)} api=${REPORT} field="energy_wh.solar" raw=${e.solar} />
      <${Tile} id="total-home" label="Home used" value=${kwh(e.home)} api=${REPORT} field="energy_wh.home" raw=${e.home} note="car included" />
      <${Tile} id="total-ev" label="Car" value=${kwh(e.ev)} api=${REPORT} field="energy_wh.ev" raw=${e.ev} />
      <${Tile} id="total-grid_import" label="From grid" value=${kwh(e.grid_import)} api=${REPORT} field="energy_wh.grid_import" raw=${e.grid_import} />
      <${Tile} id="total-grid_export" label="To grid" value=${kwh(e.grid_export)} api=${REPORT} field="energy_wh.grid_export" raw=${e.grid_export} />
      <${Tile} id="total-battery_discharge" label="From battery" value=${kwh(e.battery_discharge)} api=${REPORT} field="energy_wh.battery_discharge" raw=${e.battery_discharge} />
      <${Tile} id="total-battery_charge" label="Into battery" value=${kwh(e.battery_charge)} api=${REPORT} field="energy_wh.battery_charge" raw=${e.battery_charge} />
      <${Tile} id="total-self_powered" label="Self-powered" value=${r.self_powered_percent == null ? "–" : `${Math.round(r.self_powered_percent)} %`}
        api=${REPORT} field="self_powered_percent" raw=${r.self_powered_percent}
        note=${r.days_with_data < days ? `${r.days_with_data} of ${days} days have data` : "of home energy not from the grid"} />
    </div>
    <div class="card">
      <h2>Where the energy went</h2>
      <${Sankey} report=${r} />
    </div>`;
});
