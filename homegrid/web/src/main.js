// The homegrid app: one page, hash routes (#/now, #/history/day/2025-06-01, #/car, #/money, #/plan, #/outages, #/system).
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, prefetch, src, useFetch, useLive } from "./api.js";
import { CarView } from "./car.js";
import { duration, setUnits, setZone } from "./format.js";
import { HistoryView, prefetchHistory } from "./history.js";
import { MoneyView } from "./money.js";
import { NowView } from "./now.js";
import { OutagesView } from "./outages.js";
import { PlanView } from "./plan.js";
import { SignIn } from "./signin.js";
import { SystemView } from "./system.js";
import "./style.css";

const VIEWS = [
  ["now", "Now", "◉"], ["history", "History", "▥"], ["car", "Car", "◈"], ["money", "Money", "◆"], ["plan", "Plan", "◷"], ["outages", "Outages", "⚡"], ["system", "System", "⚙"],
];

const partsOf = (hash) => hash.replace(/^#\/?/, "").split("/").filter(Boolean);

/** [view, params] of the location's hash; ``onChange(view, params)`` is told of a new one before it is drawn. */
function useHash(onChange) {
  const [hash, setHash] = useState(location.hash);
  const told = useRef(onChange);
  told.current = onChange;
  useEffect(() => {
    const f = () => {
      const parts = partsOf(location.hash);
      told.current(parts[0] || "now", parts.slice(1));
      setHash(location.hash);
    };
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  const parts = partsOf(hash);
  return [parts[0] || "now", parts.slice(1)];
}

function useTheme() {
  const [theme, setTheme] = useState(() => localStorage.getItem("homegrid-theme") || "auto");
  const [dark, setDark] = useState(() => matchMedia("(prefers-color-scheme: dark)").matches);
  useEffect(() => {
    const m = matchMedia("(prefers-color-scheme: dark)");
    const f = () => setDark(m.matches);
    m.addEventListener("change", f);
    return () => m.removeEventListener("change", f);
  }, []);
  const effective = theme === "auto" ? (dark ? "dark" : "light") : theme;
  useEffect(() => {
    document.documentElement.dataset.theme = effective;
    localStorage.setItem("homegrid-theme", theme);
  }, [theme, effective]);
  return [theme, effective, setTheme];
}

/** The grid-down banner, on every view: the battery is carrying the home, and for how long. */
function GridBanner() {
  const { live } = useLive();
  const status = live?.values?.grid_status;
  const down = status && status !== "connected" && status !== "unknown";
  const backup = useFetch(down ? "/api/v1/backup" : null, 30000);
  if (!down) return null;
  const est = backup.data;
  return html`<div class="grid-banner" role="alert" id="grid-banner" ...${src("/api/v1/live", "values.grid_status", status)}>
    <b>Grid down.</b> Your battery is powering the home${est?.display ? html`: ${BackupLeft(est)}` : "."}
  </div>`;
}

/** "about 12 h 18 min left (10 h 05 min to 14 h 30 min)"; at the estimate's horizon the hub's words. */
function BackupLeft(est) {
  const e = est.estimate || {};
  const horizon = !/^\d/.test(est.display.central);
  const central = horizon ? est.display.central : duration(e.central_s);
  const [low, high] = [duration(e.low_s), horizon ? est.display.range : duration(e.high_s)];
  return html`${horizon ? "" : "about "}<b ...${src("/api/v1/backup", "estimate.central_s", e.central_s)}>${central}</b> left${
    horizon ? "" : low === high ? "" : html`${" "}<span class="small" ...${src("/api/v1/backup", "estimate.low_s", e.low_s)}>(${low} to ${high})</span>`}`;
}

/** The site's local date, as the hub says it; asked again every minute so "today" rolls over at midnight
 * (a tab left open for days) without trusting the browser's clock or zone. */
function useToday(site) {
  const [today, setToday] = useState(site.today);
  useEffect(() => {
    const timer = setInterval(() => get("/api/v1/site").then((s) => setToday(s.today), () => {}), 60000);
    return () => clearInterval(timer);
  }, []);
  return today;
}

function App({ site }) {
  const today = useToday(site);
  const [view, params] = useHash((v, p) => v === "history" && prefetchHistory(p, today));
  const [theme, effective, setTheme] = useTheme();
  const next = { auto: "light", light: "dark", dark: "auto" }[theme];
  useEffect(() => {
    document.title = `${VIEWS.find((v) => v[0] === view)?.[1] ?? "homegrid"} · homegrid`;
  }, [view]);
  let body;
  if (view === "history") body = html`<${HistoryView} params=${params} today=${today} theme=${effective} />`;
  else if (view === "car") body = html`<${CarView} today=${today} />`;
  else if (view === "money") body = html`<${MoneyView} today=${today} />`;
  else if (view === "plan") body = html`<${PlanView} />`;
  else if (view === "outages") body = html`<${OutagesView} today=${today} />`;
  else if (view === "system") body = html`<${SystemView} today=${today} />`;
  else body = html`<${NowView} />`;
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="#/now" aria-label="homegrid, now">home<b>grid</b></a>
      <nav aria-label="Views">
        ${VIEWS.map(([id, label, icon]) => html`<a href=${`#/${id}`} aria-current=${view === id ? "page" : undefined} data-view=${id}>
          <span aria-hidden="true" class="icon">${icon}</span><span>${label}</span></a>`)}
      </nav>
      <button type="button" class="theme" onClick=${() => setTheme(next)} aria-label=${`Theme: ${theme}. Switch to ${next}.`}
        title=${`Theme: ${theme}`}>${effective === "dark" ? "☾" : "☀"}</button>
    </header>
    <${GridBanner} />
    <main id="main" tabindex="-1" data-view=${view} data-timezone=${site.timezone} data-today=${today}>${body}</main>`;
}

/** A hub listening beyond loopback shows nothing until the owner signs in. */
function SignInPage() {
  return html`<header class="top"><span class="brand">home<b>grid</b></span></header>
    <main id="main" tabindex="-1" data-view="signin"><${SignIn} id="signin"
      why="This hub is reachable from the network, so reading it needs the owner's key too."
      onDone=${() => location.reload()} /></main>`;
}

async function start() {
  const session = await get("/api/v1/session").catch(() => null);
  if (session?.reads_need_sign_in && !session.signed_in) {
    const root = document.getElementById("app");
    root.textContent = "";
    render(html`<${SignInPage} />`, root);
    return;
  }
  // what the first view will ask, asked beside the site rather than after it: the Money view's figures, or the
  // tariff that the views pricing energy ask first
  if (/^#\/?money/.test(location.hash)) prefetch("/api/v1/money");
  else if (/^#\/?(outages|system|history(\/day|\/?$))/.test(location.hash)) prefetch("/api/v1/tariff");
  let site;
  try {
    site = await get("/api/v1/site");
  } catch (_) {
    site = { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, today: new Date().toISOString().slice(0, 10) };
  }
  setZone(site.timezone);
  setUnits(site.units);
  const root = document.getElementById("app");
  root.textContent = "";
  render(html`<${App} site=${site} />`, root);
}
start();
