// The day view's money: the import (and export) price over the local day, and what each hour cost (bars: a cost
// above the line, a credit below), from /api/v1/prices. Every bar carries its hour and value (data-hour, data-value).
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { src } from "./api.js";
import { kwh, money, unitPrice } from "./format.js";
import { memo } from "./memo.js";
import { useWidth } from "./width.js";

export const PRICES = "/api/v1/prices";
const API = PRICES;
const hourOf = (iso) => iso.slice(11, 13);

/** A day's prices, from the replies of the history view (useFetch's, of /api/v1/tariff and of this endpoint). */
export const DayPrices = memo(function DayPrices({ tariff, prices }) {
  const { data, error } = prices;
  if (tariff.data && !tariff.data.configured) {
    return html`<div class="card" id="day-prices"><h2>Prices</h2>
      <p class="muted small">No tariff is set, so the hours are not priced. <a href="#/system">Set one in the System view</a>.</p></div>`;
  }
  if (error) return html`<div class="card" id="day-prices"><h2>Prices</h2><p class="error" role="alert">${error.message}</p></div>`;
  if (!data) return html`<div class="card" id="day-prices"><h2>Prices</h2><div class="prices-chart placeholder muted">Loading…</div></div>`;
  return html`<${PriceChart} data=${data} key=${data.day} />`;
});

function PriceChart({ data }) {
  const [box, width] = useWidth("prices");
  const [idx, setIdx] = useState(null);
  const [open, setOpen] = useState(false);
  const c = data.currency;
  const hours = data.hours;
  const W = Math.max(240, width || 600), H = 200, left = 52, right = 52, top = 24, bottom = 22;
  const costs = hours.map((h) => h.cost ?? 0);
  const hi = Math.max(0.01, ...costs), lo = Math.min(0, ...costs);
  const y = (v) => top + ((hi - v) / (hi - lo || 1)) * (H - top - bottom);
  const prices = hours.flatMap((h) => [h.import_price, h.export_price]).filter((v) => v != null);
  const pMax = Math.max(0.001, ...prices), pMin = Math.min(0, ...prices);
  const py = (v) => top + ((pMax - v) / (pMax - pMin || 1)) * (H - top - bottom);
  const slot = (W - left - right) / hours.length;
  const barW = Math.max(2, slot * 0.7);
  const step = (key) => hours.map((h, i) => (h[key] == null ? "" : `${i && hours[i - 1][key] != null ? "L" : "M"}${left + i * slot},${py(h[key])} L${left + (i + 1) * slot},${py(h[key])}`)).join(" ");
  const every = Math.max(1, Math.ceil(28 / slot));
  const shown = idx != null ? hours[idx] : null;
  const pick = (ev) => {
    const r = box.current?.getBoundingClientRect();
    if (!r) return;
    const i = Math.floor((ev.clientX - r.left - left) / slot);
    setIdx(i >= 0 && i < hours.length ? i : null);
  };
  return html`<div class="card" id="day-prices" data-day=${data.day} data-currency=${c}>
    <h2>Price and cost by the hour <span class="muted small">${data.tariff}</span></h2>
    <div ref=${box} class="prices-chart" onPointerMove=${pick} onPointerLeave=${() => setIdx(null)}>
      ${width > 0 && html`<svg width=${W} height=${H} viewBox=${`0 0 ${W} ${H}`} role="img"
          aria-label=${`What each hour cost (bars) and the import price (line) on ${data.day}`}>
        <line class="zero" x1=${left} x2=${W - right} y1=${y(0)} y2=${y(0)} />
        <text class="unit" x="4" y="11">${c}</text><text class="unit" x=${W - right + 4} y="11">/kWh</text>
        <text x=${left - 6} y=${y(hi)} dy="0.32em" text-anchor="end">${money(hi, c)}</text>
        ${lo < 0 && html`<text x=${left - 6} y=${y(lo)} dy="0.32em" text-anchor="end">${money(lo, c)}</text>`}
        <text x=${W - right + 4} y=${py(pMax)} dy="0.32em">${unitPrice(pMax, c).replace("/kWh", "")}</text>
        ${hours.map((h, i) => html`<g class=${`price-bar${idx === i ? " on" : ""}`} data-hour=${h.start} data-value=${h.cost ?? ""} data-api=${API}>
          ${h.cost != null && html`<rect x=${left + i * slot + (slot - barW) / 2} y=${Math.min(y(0), y(h.cost))} width=${barW}
            height=${Math.max(0.5, Math.abs(y(h.cost) - y(0)))} class=${h.cost < 0 ? "credit" : "cost"} />`}
          ${i % every === 0 && html`<text class="xtick" x=${left + i * slot + slot / 2} y=${H - 6} text-anchor="middle">${hourOf(h.start)}</text>`}
        </g>`)}
        <path class="price-line import" d=${step("import_price")} />
        ${data.export_rule !== "none" && html`<path class="price-line export" d=${step("export_price")} />`}
      </svg>`}
    </div>
    <div class="readout" aria-live="polite">${shown
      ? html`<b>${hourOf(shown.start)}:00–${hourOf(shown.end)}:00</b>
        <span>import <b ...${src(API, "hours[].import_price", shown.import_price)}>${unitPrice(shown.import_price, c)}</b></span>
        <span>export <b>${unitPrice(shown.export_price, c)}</b></span>
        <span>${kwh(shown.import_wh)} in, ${kwh(shown.export_wh)} out</span>
        <span>cost <b ...${src(API, "hours[].cost", shown.cost)}>${money(shown.cost, c)}</b></span>`
      : html`<span class="key"><i class="price-key cost"></i>cost</span><span class="key"><i class="price-key credit"></i>credit</span>
        <span class="key"><i class="price-key import"></i>import price</span>${data.export_rule !== "none" && html`<span class="key"><i class="price-key export"></i>export price</span>`}`}
    </div>
    <p class="small">The day's energy cost <b id="day-cost" ...${src(API, "cost", data.cost)}>${money(data.cost, c)}</b>${" "}<span class="muted">at each hour's price${data.hours_with_data < hours.length ? `, ${data.hours_with_data} of ${hours.length} hours with data` : ""};
      fixed, demand and minimum charges and taxes are in the <a href="#/money">month's bill</a>.</span></p>
    <details onToggle=${(ev) => setOpen(ev.currentTarget.open)}><summary class="small">Hour by hour</summary>
      ${open && html`<${PriceTable} hours=${hours} currency=${c} />`}</details>
  </div>`;
}

/** The hours as a table, made when its <details> is opened (closed, nobody can see or read it). */
function PriceTable({ hours, currency: c }) {
  return html`<div class="table-wrap"><table class="energy-table" id="price-table">
    <thead><tr><th scope="col">Hour</th><th scope="col" class="num">Import price</th><th scope="col" class="num">Export price</th>
      <th scope="col" class="num">In</th><th scope="col" class="num">Out</th><th scope="col" class="num">Cost</th></tr></thead>
    <tbody>${hours.map((h, i) => html`<tr data-hour=${h.start}><th scope="row">${hourOf(h.start)}:00</th>
      <td class="num" ...${src(API, `hours[${i}].import_price`, h.import_price)}>${unitPrice(h.import_price, c)}</td>
      <td class="num">${unitPrice(h.export_price, c)}</td><td class="num">${kwh(h.import_wh)}</td><td class="num">${kwh(h.export_wh)}</td>
      <td class="num" ...${src(API, `hours[${i}].cost`, h.cost)}>${money(h.cost, c)}</td></tr>`)}</tbody>
  </table></div>`;
}
