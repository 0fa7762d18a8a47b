// Money: this month so far and its projection to the month's end, each past month, a month's bill line by line,
// the homes without the battery and without the sun, and what the car's charge cost. Every figure names its source
// (data-api, data-field, data-value) in /api/v1/bill.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { src, useFetch } from "./api.js";
import { kw, kwh, money, pct, unitPrice } from "./format.js";
import { Tile } from "./now.js";

export const BILL = "/api/v1/bill";
export const TARIFF = "/api/v1/tariff";
/** The Money view's figures at once: the tariff, and the last twelve months' bill in ``bill``. */
export const MONEY = "/api/v1/money";
/** Where a bill's figures come from: the endpoint, and the path to the bill in its reply. */
const OWN = { api: MONEY, pre: "bill." };
export const BILL_ITSELF = { api: BILL, pre: "" };
const fig = (at, field, value) => src(at.api, at.pre + field, value);

/** The first day of the month ``n`` months before a date's: monthStart("2026-03-14", 11) == "2025-04-01". */
export function monthStart(day, n = 0) {
  let y = +day.slice(0, 4), m = +day.slice(5, 7) - n;
  while (m < 1) { m += 12; y -= 1; }
  return `${y}-${String(m).padStart(2, "0")}-01`;
}

/** This month's bill, with what the battery saved. */
export const monthUrl = (today) => `${BILL}?from=${monthStart(today)}&to=${today}`;

const monthName = (m) => new Date(`${m}-15T12:00:00Z`).toLocaleDateString("en-GB", { month: "long", year: "numeric", timeZone: "UTC" });

/** "No tariff": what it means and how to set one. */
export function NoTariff({ detail }) {
  return html`<div class="card" id="no-tariff"><h2>No tariff set</h2>
    <p>homegrid prices your energy with your utility's rate. ${detail}</p>
    <p><a href="#/system">Upload your tariff in the System view</a> (homegrid's TOML or a rate's JSON from the
      <a href="https://openei.org/wiki/Utility_Rate_Database" rel="noreferrer">Utility Rate Database</a>),
      or name one in the config's <code>[tariff]</code> table.</p></div>`;
}

/** "Your battery saved you $12.30 this month" (and the sun), from /api/v1/bill's savings of this month. */
export function BatterySaved({ bill, month, id = "battery-saved", at = BILL_ITSELF }) {
  const s = bill?.savings?.months?.find((x) => x.month === month);
  if (!s) return null;
  const i = bill.savings.months.indexOf(s);
  const c = bill.currency;
  return html`<p id=${id} class="saved-money">Your battery saved you <b ...${fig(at, `savings.months[${i}].battery`, s.battery)}>${money(s.battery, c)}</b>${" "}this month${s.solar ? html`, and the sun <b ...${fig(at, `savings.months[${i}].solar`, s.solar)}>${money(s.solar, c)}</b>` : ""}.</p>`;
}

/** What the planner saved against the battery's own self-powered mode, last month and this month so far (from
 * /api/v1/money's against_self_powered): a sentence each, negative savings said as a cost. */
export function AgainstSelfPowered({ a }) {
  if (!a) return null;
  const at = { api: MONEY, pre: "against_self_powered." };
  const c = a.currency;
  const head = html`<h2>The planner against self-powered mode</h2>`;
  if (!a.planner_enabled) {
    return html`<div class="card" id="against-self-powered" data-enabled="false">${head}<p class="muted">${a.note}</p></div>`;
  }
  const said = (key, when) => {
    const m = a[key];
    if (!m) return null;
    if (m.error) return html`<p class="error" id=${`against-${key.replace("_", "-")}`}>${when}: ${m.error}</p>`;
    const f = (k, v) => fig(at, `${key}.${k}`, v);
    const verb = m.saving >= 0 ? "saved you" : "cost you";
    return html`<p id=${`against-${key.replace("_", "-")}`} data-month=${m.month}>${when} the planner ${verb}${" "}<b ...${f("saving", m.saving)}>${money(Math.abs(m.saving), c)}</b>${" "}against self-powered mode: the bill was${" "}<span ...${f("actual", m.actual)}>${money(m.actual, c)}</span>, with the battery left to itself it would have been${" "}<span ...${f("self_powered", m.self_powered)}>${money(m.self_powered, c)}</span>.${" "}<span class="muted small">The battery ended at ${pct(m.soc_end_percent.actual)}, self-powered at ${pct(m.soc_end_percent.self_powered)}.</span></p>`;
  };
  const lastName = a.last_month ? `In ${monthName(a.last_month.month)}` : null;
  return html`<div class="card" id="against-self-powered" data-enabled="true">${head}
    ${a.pending && html`<p class="muted" id="against-pending">Replaying the month in self-powered mode…</p>`}
    ${a.note && html`<p class="muted">${a.note}</p>`}
    ${lastName && said("last_month", lastName)}
    ${a.this_month && said("this_month", "This month so far")}
    <p class="muted small">Both bills price the same measured home and sun with your tariff, minute by minute; the second
      replays the same battery in its own self-powered mode (the sun's surplus charges it, it covers the home down to the
      reserve) from the level it had as the month began. What each leaves in the battery at the end is not counted.</p></div>`;
}

function Breakdown({ m, i, c, names, at }) {
  const f = (k) => `months[${i}].${k}`;
  // a credit is shown as minus (data-sign -1), its data-value is the bill's own (positive) figure
  const row = (label, key, value, note, sign = 1) => html`<tr data-line=${key}><th scope="row">${label}${note ? html` <span class="muted small">${note}</span>` : ""}</th>
    <td class="num" data-sign=${sign} ...${fig(at, f(key), value)}>${money(sign * value, c)}</td></tr>`;
  const tiers = m.energy_lines.some((l) => l.tier > 1); // a one-block rate says no tier
  const periods = new Set(m.energy_lines.map((l) => l.period)).size > 1;
  return html`<table class="energy-table bill-lines" id="breakdown" data-month=${m.month}>
    <caption class="sr">The bill of ${m.month}, line by line</caption>
    <tbody>
      ${row("Fixed charges", "fixed", m.fixed, `${Math.round(m.days * 10) / 10} days`)}
      ${m.energy_lines.map((l, k) => html`<tr data-line="energy" data-period=${l.period ?? ""} data-tier=${l.tier ?? ""}>
        <th scope="row">Energy${periods && l.period != null ? ` · ${l.name ?? names[l.period] ?? `period ${l.period}`}` : ""}${tiers && l.tier != null ? ` · tier ${l.tier}` : ""}${" "}<span class="muted small">${kwh(l.kwh * 1000)}${l.price != null ? ` at ${unitPrice(l.price, c)}` : ""}</span></th>
        <td class="num" data-sign="1" ...${fig(at, `months[${i}].energy_lines[${k}].cost`, l.cost)}>${money(l.cost, c)}</td></tr>`)}
      ${m.energy_lines.length === 0 && row("Energy", "energy", m.energy)}
      ${(m.demand || m.demand_lines.length > 0) && row("Demand", "demand", m.demand, `peak ${kw(m.peak_demand_w)}`)}
      ${m.minimum ? row("Minimum bill top-up", "minimum", m.minimum) : null}
      ${row("Export credit", "export_credit", m.export_credit, kwh(m.export_wh), -1)}
      ${m.true_up_credit ? row("True-up credit", "true_up_credit", m.true_up_credit, null, -1) : null}
      ${m.taxes ? row("Taxes", "taxes", m.taxes) : null}
    </tbody>
    <tfoot>${row("Total", "total", m.total)}</tfoot>
  </table>`;
}

function MonthBars({ bill, pick, chosen, at }) {
  const c = bill.currency;
  const g = bill.counterfactuals?.grid_only?.months ?? [];
  const max = Math.max(0.01, ...bill.months.map((m, i) => Math.max(m.projected_total ?? m.total, g[i]?.total ?? 0)));
  const w = (v) => `${Math.max(0, (100 * v) / max)}%`;
  return html`<div class="card table-wrap"><table class="events month-table" id="month-list">
    <caption class="sr">Each month's bill, newest first</caption>
    <thead><tr><th scope="col">Month</th><th scope="col">Bill</th><th scope="col" class="num">Total</th>
      <th scope="col" class="num">Without battery</th><th scope="col" class="num">Grid only</th>
      <th scope="col" class="num">Battery saved</th><th scope="col" class="num">Sun saved</th><th scope="col" class="num">Imported</th></tr></thead>
    <tbody>${bill.months.map((m, i) => ({ m, i })).reverse().map(({ m, i }) => {
      const s = bill.savings?.months?.[i];
      const co = bill.counterfactuals;
      return html`<tr data-month=${m.month} aria-selected=${chosen === i ? "true" : "false"} class=${chosen === i ? "on" : ""}>
        <th scope="row"><button type="button" class="link" onClick=${() => pick(i)} aria-label=${`Show the bill of ${monthName(m.month)}`}>${m.month}</button>
          ${m.projected_total != null && html` <span class="pill">so far</span>`}${m.missing_hours?.length > 0 && html` <span class="pill" title="hours without data are not priced">${m.missing_hours.length} h missing</span>`}</th>
        <td class="barcell" aria-hidden="true"><span class="mbar grid" style=${{ width: w(g[i]?.total ?? 0) }}></span>
          <span class="mbar actual" style=${{ width: w(m.total) }}></span>
          ${m.projected_total != null && html`<span class="mbar projected" style=${{ width: w(m.projected_total) }}></span>`}</td>
        <td class="num" ...${fig(at, `months[${i}].total`, m.total)}>${money(m.total, c)}</td>
        <td class="num" ...${fig(at, `counterfactuals.solar_only.months[${i}].total`, co?.solar_only?.months?.[i]?.total)}>${money(co?.solar_only?.months?.[i]?.total, c)}</td>
        <td class="num" ...${fig(at, `counterfactuals.grid_only.months[${i}].total`, g[i]?.total)}>${money(g[i]?.total, c)}</td>
        <td class="num" ...${fig(at, `savings.months[${i}].battery`, s?.battery)}>${money(s?.battery, c)}</td>
        <td class="num" ...${fig(at, `savings.months[${i}].solar`, s?.solar)}>${money(s?.solar, c)}</td>
        <td class="num" ...${fig(at, `months[${i}].import_wh`, m.import_wh)}>${kwh(m.import_wh)}</td>
      </tr>`;
    })}</tbody></table>
    <p class="muted small legend-line"><span class="key"><i class="mbar-key grid"></i>grid only</span>
      <span class="key"><i class="mbar-key actual"></i>your bill</span><span class="key"><i class="mbar-key projected"></i>projected</span></p>
  </div>`;
}

function Car({ car, c, at }) {
  if (!car || !car.energy_wh) return null;
  const f = (k) => fig(at, `savings.car.${k}`, car[k]);
  const row = (label, k, value, extra) => html`<div class="money-row"><span class="muted">${label}</span>
    <span class="num"><span ...${f(k)}>${value}</span>${extra ? html` <span class="muted small">${extra}</span>` : ""}</span></div>`;
  return html`<div class="card" id="car-money"><h2>The car's charge</h2>
    ${row("Charged", "energy_wh", kwh(car.energy_wh))}
    <p class="muted small">from the sun ${kwh(car.from_solar_wh)}, the battery ${kwh(car.from_battery_wh)}, the grid ${kwh(car.from_grid_wh)}</p>
    ${row("What its grid energy cost", "cost", money(car.cost, c))}
    ${row("At the average import price", "cost_at_average_price", money(car.cost_at_average_price, c),
      car.average_import_price != null ? `(${unitPrice(car.average_import_price, c)})` : null)}
    ${row("Saved by charging from the sun, the battery and at cheaper hours", "saved", html`<b>${money(car.saved, c)}</b>`)}
  </div>`;
}

export function MoneyView({ today }) {
  // one reply: the tariff and the last twelve months' bill (asked at the app's start beside the site); asked again
  // soon while the hub is still replaying the planner's months against self-powered mode
  const [pending, setPending] = useState(false);
  const { data, error } = useFetch(MONEY, pending ? 3000 : 300000);
  useEffect(() => setPending(!!data?.against_self_powered?.pending), [data]);
  const at = OWN;
  const bill = data?.bill;
  const [chosen, setChosen] = useState(null);
  const month = today.slice(0, 7);
  if (data && !data.configured) {
    return html`<section class="money" aria-labelledby="money-h"><div class="view-head"><h1 id="money-h">Money</h1></div>
      <${NoTariff} detail=${data.error ?? ""} /></section>`;
  }
  const c = bill?.currency;
  const last = bill?.months?.length ? bill.months.length - 1 : null;
  const nowIdx = bill?.months?.findIndex((m) => m.month === month) ?? -1;
  const cur = nowIdx >= 0 ? bill.months[nowIdx] : null;
  const pick = chosen ?? (nowIdx >= 0 ? nowIdx : last);
  const shown = pick != null ? bill.months[pick] : null;
  const sav = bill?.savings;
  const co = bill?.counterfactuals;
  return html`<section class="money" aria-labelledby="money-h" data-from=${bill?.from} data-to=${bill?.to} data-currency=${c}>
    <div class="view-head"><h1 id="money-h">Money</h1>
      ${bill && html`<p class="muted">${bill.tariff} · ${c} · <a href="#/system">tariff</a></p>`}</div>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${data?.bill_error && html`<p class="error" role="alert">${data.bill_error}</p>`}
    ${!data && !error && html`<p class="muted">Pricing your energy…</p>`}
    ${bill && html`<div class="tiles" id="money-tiles">
      <${Tile} id="month-so-far" label=${`${cur ? monthName(cur.month) : "This month"} so far`} value=${money(cur?.total, c)}
        api=${at.api} field=${at.pre + `months[${nowIdx}].total`} raw=${cur?.total}
        note=${cur?.elapsed_fraction != null ? `${pct(cur.elapsed_fraction * 100)} of the month` : cur ? `${cur.days} days` : "no data this month"} />
      <${Tile} id="month-projected" label="Projected for the month" value=${money(cur?.projected_total ?? cur?.total, c)}
        api=${at.api} field=${at.pre + `months[${nowIdx}].projected_total`} raw=${cur?.projected_total ?? cur?.total}
        note="at this month's pace; fixed charges whole" />
      <${Tile} id="battery-month" label="Battery saved this month" value=${money(sav?.months?.[nowIdx]?.battery, c)}
        api=${at.api} field=${at.pre + `savings.months[${nowIdx}].battery`} raw=${sav?.months?.[nowIdx]?.battery} note="against solar without a battery" />
      <${Tile} id="solar-month" label="Sun saved this month" value=${money(sav?.months?.[nowIdx]?.solar, c)}
        api=${at.api} field=${at.pre + `savings.months[${nowIdx}].solar`} raw=${sav?.months?.[nowIdx]?.solar} note="against the grid alone" />
    </div>
    ${cur && html`<div class="card banner-saved"><span class="shield" aria-hidden="true">◆</span><${BatterySaved} bill=${bill} month=${month} at=${at} /></div>`}
    <${AgainstSelfPowered} a=${data.against_self_powered} />
    <div class="card" id="span-totals"><h2>Since ${bill.from.slice(0, 10)}</h2>
      <div class="tiles compact">
        <${Tile} id="total-actual" label="Your bills" value=${money(bill.total, c)} api=${at.api} field=${at.pre + "total"} raw=${bill.total} />
        <${Tile} id="total-solar-only" label="Without the battery" value=${money(co?.solar_only?.total, c)} api=${at.api} field=${at.pre + "counterfactuals.solar_only.total"} raw=${co?.solar_only?.total} note="the same sun and home" />
        <${Tile} id="total-grid-only" label="On the grid alone" value=${money(co?.grid_only?.total, c)} api=${at.api} field=${at.pre + "counterfactuals.grid_only.total"} raw=${co?.grid_only?.total} note="no sun, no battery" />
        <${Tile} id="saved-battery" label="Battery saved" value=${money(sav?.battery, c)} api=${at.api} field=${at.pre + "savings.battery"} raw=${sav?.battery} />
        <${Tile} id="saved-solar" label="Sun saved" value=${money(sav?.solar, c)} api=${at.api} field=${at.pre + "savings.solar"} raw=${sav?.solar} />
      </div>
      ${bill.missing_hours?.length > 0 && html`<p class="muted small" id="missing-hours">${bill.missing_hours.length} hours have no data and are not priced
        (the first ${bill.missing_hours[0].slice(0, 16).replace("T", " ")}).</p>`}
    </div>
    <h2 class="section">Month by month</h2>
    <${MonthBars} bill=${bill} pick=${setChosen} chosen=${pick} at=${at} />
    ${shown && html`<div class="card" id="month-bill"><h2>The bill of ${monthName(shown.month)}${shown.projected_total != null ? " so far" : ""}</h2>
      <${Breakdown} m=${shown} i=${pick} c=${c} names=${Object.fromEntries((data.tariff?.periods ?? []).map((p) => [p.period, p.name]))} at=${at} />
      ${shown.projected_total != null && html`<p class="small">Projected for the whole month: <b ...${fig(at, `months[${pick}].projected_total`, shown.projected_total)}>${money(shown.projected_total, c)}</b></p>`}
      <p class="muted small">Imported ${kwh(shown.import_wh)}, exported ${kwh(shown.export_wh)}${shown.peak_demand_w ? `, peak demand ${kw(shown.peak_demand_w)}` : ""}${shown.carried_in_kwh
          ? `; ${kwh(shown.carried_in_kwh * 1000)} of surplus carried in from the month before` : ""}${shown.carried_out_kwh
          ? `; ${kwh(shown.carried_out_kwh * 1000)} carried to the next month` : ""}.
        ${bill.export_rule ? ` Export rule: ${bill.export_rule}.` : ""}</p></div>`}
    <${Car} car=${sav?.car} c=${c} at=${at} />
    <p class="muted small">How it is computed: each month is priced from the hub's hourly energy as the utility would, then again
      for the same home with its solar but no battery and with neither; the battery's saving is the difference of the first two,
      the sun's of the last two.</p>`}
  </section>`;
}
