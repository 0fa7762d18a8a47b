// Plan: what the planner will do over the next hours and why, from /api/v1/plan. The battery's planned charge
// (and the self-powered battery's, dashed) above a strip of each step's mode, the import price and the load and
// solar forecasts below; what it does now and why; what the plan costs against the battery left self-powered;
// how far the forecasts are to be trusted; where the solar forecast came from (the weather forecast, or the clear
// sky scaled by the recent days); what was carried out today (the commands sent and why, the battery's measured
// level beside the level planned for each step). Every figure names its source (data-api, data-field, data-value).
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { src, useFetch } from "./api.js";
import { clock, kw, money, pct, unitPrice } from "./format.js";
import { useWidth } from "./width.js";

export const PLAN = "/api/v1/plan";

/** Each mode's name for the owner and its colour. */
export const MODES = {
  "self-powered": ["Self-powered", "--battery"],
  charge: ["Charge from the grid", "--grid"],
  hold: ["Hold", "--grid-out"],
  export: ["Export", "--solar"],
};

export function PlanView() {
  const { data, error } = useFetch(PLAN, 60000, { keep: true });
  if (error) {
    const off = error.status === 409;
    return html`<section class="view plan"><h1>Plan</h1><div class="card" id="plan-off">
      <h2>${off ? "The planner is off" : "The plan could not be read"}</h2>
      <p class=${off ? "" : "error"} role=${off ? undefined : "alert"}>${error.message.replace(/^\/api\/v1\/plan: \d+ /, "")}</p></div></section>`;
  }
  if (!data) return html`<section class="view plan"><h1>Plan</h1><p class="muted">Loading…</p></section>`;
  const plan = data.plan;
  return html`<section class="view plan" id="plan-view">
    <h1>Plan</h1>
    ${plan
      ? html`<${Next} plan=${plan} solar=${data.solar_forecast} /><${Cost} plan=${plan} />
        <${PlanChart} plan=${plan} solar=${data.solar_forecast} key=${plan.made_at} />`
      : html`<div class="card" id="plan-none"><h2>No plan yet</h2><p>${data.status.last_error
          ? html`The last try failed: <span class="error" ...${src(PLAN, "status.last_error", data.status.last_error)}>${data.status.last_error}</span>`
          : "The first plan is being made."}</p></div>`}
    ${data.done && html`<${Done} done=${data.done} />`}
    <${Errors} data=${data} />
    <p class="small muted" id="plan-status">${data.status.plans} plans made, ${data.status.errors} failed; a new one every${" "}${data.status.step_min} min for the next ${data.status.horizon_h} h.</p>
  </section>`;
}

function Next({ plan, solar }) {
  const n = plan.next;
  const notes = plan.notes.filter((t) => t !== solar?.note); // the solar forecast's source is said under the chart
  const [name] = MODES[n.mode] ?? [n.mode];
  return html`<div class="card" id="plan-next" data-mode=${n.mode}>
    <h2>Now: <span ...${src(PLAN, "plan.next.mode", n.mode)}>${name}</span></h2>
    <p>${n.battery}. <span class="muted small" id="plan-why" ...${src(PLAN, "plan.next.battery_reason", n.battery_reason)}>${n.battery_reason}</span></p>
    ${n.car && html`<p id="plan-car">Car: ${n.car}. <span class="muted small">${n.car_reason}</span></p>`}
    ${plan.relaxed.length > 0 && html`<p class="error" id="plan-relaxed">Could not be met: ${plan.relaxed.join("; ")}</p>`}
    ${notes.length > 0 && html`<ul class="small muted" id="plan-notes">${notes.map((t) => html`<li>${t}</li>`)}</ul>`}
  </div>`;
}

function Cost({ plan }) {
  const c = plan.cost, cur = c.currency;
  return html`<div class="card" id="plan-cost">
    <h2>Cost over the next ${plan.horizon_h} h</h2>
    <p>The plan's energy costs <b id="plan-cost-plan" ...${src(PLAN, "plan.cost.plan", c.plan)}>${money(c.plan, cur)}</b>;
      left self-powered, the battery would cost <b id="plan-cost-self" ...${src(PLAN, "plan.cost.self_powered", c.self_powered)}>${money(c.self_powered, cur)}</b>.
      Counting what each leaves in the battery at the end, the plan saves${" "}<b id="plan-saving" ...${src(PLAN, "plan.cost.saving", c.saving)}>${money(c.saving, cur)}</b>.</p>
    <p class="small muted">Over the forecasts below, at the tariff's prices; solved in${" "}<span ...${src(PLAN, "plan.solve_ms", plan.solve_ms)}>${plan.solve_ms} ms</span> at ${clock(new Date(plan.made_at))}.</p>
  </div>`;
}

/** Where the solar forecast came from, in one line. */
function SolarSource({ solar }) {
  if (!solar) return null;
  const text = `Solar forecast: ${solar.note.replace(/^solar: /, "")}${solar.bias_corrected ? ", corrected by this home's own history" : ""}.`;
  return html`<p class="small muted" id="plan-solar" data-source=${solar.source} ...${src(PLAN, "solar_forecast.source", solar.source)}>${text}</p>`;
}

function PlanChart({ plan, solar }) {
  const [box, width] = useWidth("plan");
  const [idx, setIdx] = useState(null);
  const steps = plan.steps, n = steps.length, cur = plan.cost.currency;
  const W = Math.max(260, width || 640), left = 44, right = 56, top = 10;
  const socH = 130, stripH = 12, gap = 18, lowH = 120, bottom = 22;
  const H = top + socH + stripH + gap + lowH + bottom;
  const slot = (W - left - right) / n;
  const x = (i) => left + i * slot;
  const sy = (p) => top + ((100 - p) / 100) * socH;
  const lowTop = top + socH + stripH + gap;
  const kwMax = Math.max(1000, ...steps.flatMap((s) => [s.load_w ?? 0, s.solar_w ?? 0]));
  const ky = (w) => lowTop + ((kwMax - w) / kwMax) * lowH;
  const prices = steps.flatMap((s) => [s.import_price, s.export_price]).filter((v) => v != null);
  const pMax = Math.max(0.001, ...prices), pMin = Math.min(0, ...prices);
  const py = (v) => lowTop + ((pMax - v) / (pMax - pMin || 1)) * lowH;
  // a line through each step's end (SoC), or a step line (prices, forecasts as step means)
  const ends = (key) => `M${x(0)},${sy(plan.soc_now_percent)} ` + steps.map((s, i) => `L${x(i + 1)},${sy(s[key])}`).join(" ");
  const stairs = (key, f) => steps.map((s, i) => (s[key] == null ? "" : `${i && steps[i - 1][key] != null ? "L" : "M"}${x(i)},${f(s[key])} L${x(i + 1)},${f(s[key])}`)).join(" ");
  const every = Math.max(1, Math.ceil(44 / slot));
  const pick = (ev) => {
    const r = box.current?.getBoundingClientRect();
    if (!r) return;
    const i = Math.floor((ev.clientX - r.left - left) / slot);
    setIdx(i >= 0 && i < n ? i : null);
  };
  const s = idx != null ? steps[idx] : null;
  return html`<div class="card" id="plan-chart" data-steps=${n}>
    <h2>The next ${plan.horizon_h} hours</h2>
    <div ref=${box} class="plan-chart" onPointerMove=${pick} onPointerLeave=${() => setIdx(null)}>
      ${width > 0 && html`<svg width=${W} height=${H} viewBox=${`0 0 ${W} ${H}`} role="img"
          aria-label="The battery's planned charge and each step's mode, above the import price and the load and solar forecasts">
        <text class="unit" x="4" y=${top + 8}>%</text>
        ${[0, 50, 100].map((p) => html`<text x=${left - 6} y=${sy(p)} dy="0.32em" text-anchor="end">${p}</text>
          <line class="grid" x1=${left} x2=${W - right} y1=${sy(p)} y2=${sy(p)} />`)}
        ${steps.map((st, i) => html`<rect class="mode" data-mode=${st.mode} x=${x(i)} y=${top + socH} width=${slot + 0.3} height=${stripH}
          style=${`fill:var(${(MODES[st.mode] ?? [0, "--muted"])[1]})`} />`)}
        <path class="plan-line reserve" d=${stairs("reserve_percent", sy)} />
        <path class="plan-line self" d=${ends("self_powered_soc_percent")} />
        <path class="plan-line soc" d=${ends("soc_percent")} />
        <text class="unit" x="4" y=${lowTop + 8}>kW</text>
        <text x=${left - 6} y=${ky(kwMax)} dy="0.32em" text-anchor="end">${(kwMax / 1000).toFixed(1)}</text>
        <text x=${left - 6} y=${ky(0)} dy="0.32em" text-anchor="end">0</text>
        <text class="unit" x=${W - right + 4} y=${lowTop + 8}>/kWh</text>
        <text x=${W - right + 4} y=${py(pMax)} dy="1.6em">${unitPrice(pMax, cur).replace("/kWh", "")}</text>
        <line class="grid" x1=${left} x2=${W - right} y1=${ky(0)} y2=${ky(0)} />
        <path class="plan-line load" d=${stairs("load_w", ky)} />
        <path class="plan-line solar" d=${stairs("solar_w", ky)} />
        <path class="price-line import" d=${stairs("import_price", py)} />
        ${steps.map((st, i) => i % every === 0 && html`<text class="xtick" x=${x(i)} y=${H - 6} text-anchor="middle">${st.time.slice(11, 16)}</text>`)}
        ${idx != null && html`<line class="cursor" x1=${x(idx) + slot / 2} x2=${x(idx) + slot / 2} y1=${top} y2=${H - bottom} />`}
      </svg>`}
    </div>
    <div class="readout" aria-live="polite">${s
      ? html`<b>${s.time.slice(11, 16)}</b>
        <span>${(MODES[s.mode] ?? [s.mode])[0]}</span>
        <span>battery <b ...${src(PLAN, "plan.steps[].soc_percent", s.soc_percent)}>${pct(s.soc_percent)}</b> (${s.battery_w < 0 ? "in" : "out"} ${kw(s.battery_w)})</span>
        <span>grid ${s.grid_w < 0 ? "out" : "in"} ${kw(s.grid_w)}</span>
        ${s.car_w > 0 && html`<span>car ${kw(s.car_w)}</span>`}
        <span>load ${kw(s.load_w)}, solar ${kw(s.solar_w)}</span>
        <span>import <b ...${src(PLAN, "plan.steps[].import_price", s.import_price)}>${unitPrice(s.import_price, cur)}</b></span>`
      : html`<span class="key"><i class="line" style="background:var(--soc)"></i>Battery, planned</span>
        <span class="key"><i class="line dashed" style="background:var(--muted)"></i>Self-powered</span>
        ${Object.entries(MODES).map(([k, [label, color]]) => html`<span class="key" data-mode-key=${k}><i style=${`background:var(${color})`}></i>${label}</span>`)}
        <span class="key"><i class="line" style="background:var(--home)"></i>Load</span>
        <span class="key"><i class="line" style="background:var(--solar)"></i>Solar</span>
        <span class="key"><i class="price-key import"></i>Import price</span>`}
    </div>
    <${SolarSource} solar=${solar} />
  </div>`;
}

function Errors({ data }) {
  const e = data.forecast_errors;
  if (!e) {
    return html`<div class="card" id="plan-errors"><h2>How good are the forecasts?</h2>
      <p class="muted small">${data.forecast_errors_missing ?? "Not worked out yet."}</p></div>`;
  }
  const row = (label, key) => html`<tr data-series=${key}><th scope="row">${label}</th>${e[key].map((h, i) => html`
    <td class="num" ...${src(PLAN, `forecast_errors.${key}[${i}].mae_w`, h.mae_w)}>${kw(h.mae_w)}</td>
    <td class="num" ...${src(PLAN, `forecast_errors.${key}[${i}].rmse_w`, h.rmse_w)}>${kw(h.rmse_w)}</td>`)}</tr>`;
  return html`<div class="card" id="plan-errors"><h2>How good are the forecasts?</h2>
    <p class="small muted">Replayed over the last weeks of this home's readings: the average miss (MAE) and the typical
      large miss (RMSE), 1, 6 and 24 hours ahead.</p>
    <div class="table-wrap"><table class="energy-table" id="plan-errors-table">
      <thead><tr><th scope="col"></th>${e.load.map((h) => html`<th scope="col" class="num">${h.horizon_h} h MAE</th><th scope="col" class="num">${h.horizon_h} h RMSE</th>`)}</tr></thead>
      <tbody>${row("Load", "load")}${row("Solar", "solar")}</tbody>
    </table></div></div>`;
}

/** What was carried out today: the level each step's plan said against the battery's measured level (a line
 * through each step's end, the day's hours across), the mode carried out in each step beneath (the plan's where no
 * command was in force), and the commands with their reasons. */
function Done({ done }) {
  const [box, width] = useWidth("plan-done");
  const [idx, setIdx] = useState(null);
  const steps = done.steps, stepMs = done.step_min * 60000;
  const W = Math.max(260, width || 640), left = 44, right = 16, top = 10, socH = 110, stripH = 10, bottom = 22;
  const H = top + socH + stripH + bottom;
  const span = done.day_end_ms - done.day_start_ms;
  const x = (t) => left + ((t - done.day_start_ms) / span) * (W - left - right);
  const sy = (p) => top + ((100 - p) / 100) * socH;
  const line = (key, first) => steps.map((s, i) => (s[key] == null ? ""
    : `${i && steps[i - 1][key] != null ? "L" : `M${x(s.time_ms)},${sy(first(s))} L`}${x(s.time_ms + stepMs)},${sy(s[key])}`)).join(" ");
  const pick = (ev) => {
    const r = box.current?.getBoundingClientRect();
    if (!r) return;
    const t = done.day_start_ms + ((ev.clientX - r.left - left) / (W - left - right)) * span;
    const i = steps.findIndex((s) => t >= s.time_ms && t < s.time_ms + stepMs);
    setIdx(i >= 0 ? i : null);
  };
  const s = idx != null ? steps[idx] : null;
  const state = done.dry_run ? "Dry run: the commands are worked out and none is sent."
    : done.standby ? `Standing aside: ${done.standby}.`
    : Object.values(done.owner_override ?? {}).some((w) => w) ? "Standing aside: the battery or the car was changed by hand (hand control back in the System view)."
    : "The planner is carrying its plan out.";
  const commands = done.commands.map((c, i) => [c, i]).slice(-10).reverse();
  return html`<div class="card" id="plan-done" data-steps=${steps.length}>
    <h2>Carried out today</h2>
    <p class="small" id="plan-done-state" data-acting=${String(done.acting)}>${state}</p>
    ${steps.length > 0 && html`<div ref=${box} class="plan-chart done-chart" onPointerMove=${pick} onPointerLeave=${() => setIdx(null)}>
      ${width > 0 && html`<svg width=${W} height=${H} viewBox=${`0 0 ${W} ${H}`} role="img"
          aria-label="Today: the battery's level as planned for each step and as measured">
        <text class="unit" x="4" y=${top + 8}>%</text>
        ${[0, 50, 100].map((p) => html`<text x=${left - 6} y=${sy(p)} dy="0.32em" text-anchor="end">${p}</text>
          <line class="grid" x1=${left} x2=${W - right} y1=${sy(p)} y2=${sy(p)} />`)}
        ${steps.map((st) => html`<rect class="mode" data-mode=${st.done_mode ?? st.mode} data-planned=${st.mode} x=${x(st.time_ms)} y=${top + socH} width=${Math.max(1, x(st.time_ms + stepMs) - x(st.time_ms))} height=${stripH}
          style=${`fill:var(${(MODES[st.done_mode ?? st.mode] ?? [0, "--muted"])[1]})`} />`)}
        <path class="plan-line soc" d=${line("planned_soc_percent", (st) => st.planned_soc_percent)} />
        <path class="plan-line measured" d=${line("measured_soc_percent", (st) => st.measured_soc_percent)} />
        ${[0, 6, 12, 18].map((h) => html`<text class="xtick" x=${x(done.day_start_ms + h * 3600000)} y=${H - 6} text-anchor="middle">${String(h).padStart(2, "0")}:00</text>`)}
        ${s && html`<line class="cursor" x1=${x(s.time_ms + stepMs / 2)} x2=${x(s.time_ms + stepMs / 2)} y1=${top} y2=${H - bottom} />`}
      </svg>`}
    </div>
    <div class="readout" aria-live="polite">${s
      ? html`<b>${s.time.slice(11, 16)}</b>
        <span>${(MODES[s.done_mode ?? s.mode] ?? [s.mode])[0]}${s.done_mode && s.done_mode !== s.mode ? ` (the plan: ${(MODES[s.mode] ?? [s.mode])[0]})` : ""}</span>
        <span>planned <b ...${src(PLAN, `done.steps[${idx}].planned_soc_percent`, s.planned_soc_percent)}>${pct(s.planned_soc_percent)}</b></span>
        <span>measured <b ...${src(PLAN, `done.steps[${idx}].measured_soc_percent`, s.measured_soc_percent)}>${pct(s.measured_soc_percent)}</b>${s.under_way ? " so far" : ""}</span>
        <span>battery ${kw(s.planned_battery_w)} planned, ${kw(s.measured_battery_w)} measured (${s.measured_battery_w < 0 ? "in" : "out"})</span>`
      : html`<span class="key"><i class="line" style="background:var(--soc)"></i>Battery, planned</span>
        <span class="key"><i class="line" style="background:var(--text)"></i>Battery, measured</span>`}
    </div>`}
    ${commands.length ? html`<ul class="commands" id="plan-commands">${commands.map(([c, i]) => html`<li data-device=${c.device}>
      <span class="muted small">${clock(c.time, true)}</span> ${c.device}:${" "}
      <b ...${src(PLAN, `done.commands[${i}].command`, c.command)}>${c.command}</b>${" "}
      <span class="muted small" ...${src(PLAN, `done.commands[${i}].outcome`, c.outcome)}>(${c.outcome})</span>
      <div class="muted small" ...${src(PLAN, `done.commands[${i}].reason`, c.reason)}>${c.reason}</div></li>`)}</ul>`
      : html`<p class="muted small">No command yet.</p>`}
  </div>`;
}
