// Units as people read them. The tests run this file through Node (tests/test_format_js.py, tests/formatjs.py).
// One date style everywhere, as the CLI and the API write them: ISO 8601 dates (2026-11-28) and 24-hour times
// (14:05), in the site's zone; distances in the site's units (the hub's /api/v1/site "units").

const fixed = (v, d) => {
  const s = v.toFixed(d);
  return /^-0(\.0+)?$/.test(s) ? s.slice(1) : s;
};

/** Power [W] as kW: two decimals under 1 kW, one above (sign left to the words around it). */
export function kw(w) {
  if (w == null || Number.isNaN(w)) return "–";
  const v = Math.abs(w) / 1000;
  return `${fixed(v, v < 1 ? 2 : 1)} kW`;
}

/** Energy [Wh] as kWh: two decimals under 1 kWh, one under 100, none above. */
export function kwh(wh) {
  if (wh == null || Number.isNaN(wh)) return "–";
  const v = Math.abs(wh) / 1000;
  return `${fixed(v, v < 1 ? 2 : v < 100 ? 1 : 0)} kWh`;
}

export function pct(p) {
  if (p == null || Number.isNaN(p)) return "–";
  return `${Math.round(p)} %`;
}

/** A duration [s] as "2 h 05 min", "12 min", "40 s". */
export function duration(s) {
  if (s == null || Number.isNaN(s)) return "–";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${String(m % 60).padStart(2, "0")} min`;
}

const KM_PER_MILE = 1.609344;
let units = "metric";
/** "metric" (km) or "imperial" (miles), as /api/v1/site gives it. */
export function setUnits(system) {
  units = system === "imperial" ? "imperial" : "metric";
}

/** A distance [km] in the site's units: "312 km", or "194 mi". */
export function distance(v) {
  if (v == null || Number.isNaN(v)) return "–";
  return units === "imperial" ? `${Math.round(v / KM_PER_MILE)} mi` : `${Math.round(v)} km`;
}

let tz = undefined;
export function setZone(zone) {
  tz = zone;
}
export const zone = () => tz;

const formats = new Map();
/** An "en-GB" Intl.DateTimeFormat for a zone and options, made once: making one costs a millisecond or more, and a
 * view drawn again on each reply would make dozens. */
export function dateFormat(timeZone, opts) {
  const key = `${timeZone} ${JSON.stringify(opts)}`;
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone, ...opts }));
  return formats.get(key);
}
const fmt = (opts) => dateFormat(tz, { hourCycle: "h23", ...opts });

/** The parts of a date-time in the site's zone, by name (year, month, day, hour, minute, second, weekday). */
function parts(d, opts) {
  return Object.fromEntries(fmt(opts).formatToParts(d).map((p) => [p.type, p.value]));
}

/** An instant's ISO 8601 local date in the site's zone: "2026-11-28". */
export function isoDate(t) {
  if (!t) return "–";
  const p = parts(t instanceof Date ? t : new Date(t), { year: "numeric", month: "2-digit", day: "2-digit" });
  return `${p.year}-${p.month}-${p.day}`;
}

/** A time in the site's zone: "14:05:07", or with the day "Sat 2026-11-28 14:05". */
export function clock(t, withDay = false) {
  if (!t) return "–";
  const d = t instanceof Date ? t : new Date(t);
  if (!withDay) return fmt({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d);
  const p = parts(d, { weekday: "short", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

/** A time-axis label in the site's zone for ticks ``incr`` seconds apart, in the ISO style: "14:00" (a midnight
 * says its day, "Fri 27"), "11-28" (month-day) or "2026-11". */
export function tick(t, incr) {
  if (incr < 86400) {
    const hm = fmt({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(t);
    return hm === "00:00" ? fmt({ weekday: "short", day: "numeric" }).format(t) : hm;
  }
  const p = parts(t, { year: "numeric", month: "2-digit", day: "2-digit" });
  return incr < 28 * 86400 ? `${p.month}-${p.day}` : `${p.year}-${p.month}`;
}

/** Time-axis ticks [s] between ``min`` and ``max`` [s] every ``incr`` seconds of the site's wall clock (a day
 * or more: its midnights): "00:00, 03:00, 06:00 ..." on both sides of a clock change, where a 23-hour day
 * skips 02:00 and still reads 03:00 and a 25-hour day reads 01:00 twice. For spans of a few days. */
export function wallTicks(min, max, incr) {
  const every = Math.min(1440, Math.max(1, Math.round(incr / 60))); // [min]
  const hm = fmt({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const step = Math.min(incr, 900); // zones sit whole quarter hours off UTC
  const out = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) {
    const [h, m] = hm.format(new Date(t * 1000)).split(":").map(Number);
    if ((h * 60 + m) % every === 0) out.push(t);
  }
  return out;
}

/** A local date "YYYY-MM-DD" with its weekday: "Saturday 2026-11-28". */
export function longDate(iso) {
  return `${dateFormat("UTC", { weekday: "long" }).format(new Date(`${iso}T12:00:00Z`))} ${iso}`;
}

/** How long ago, roughly: "12 s ago", "3 min ago". */
export function ago(t, now = Date.now()) {
  if (!t) return "never";
  const s = Math.max(0, (now - new Date(t).getTime()) / 1000);
  return `${duration(s)} ago`;
}

const moneyCache = new Map();
function moneyFmt(currency, digits) {
  const key = `${currency}/${digits ?? ""}`;
  if (!moneyCache.has(key)) {
    const opts = { style: "currency", currency: currency || "USD", currencyDisplay: "narrowSymbol" };
    if (digits) Object.assign(opts, { minimumFractionDigits: digits[0], maximumFractionDigits: digits[1] });
    moneyCache.set(key, new Intl.NumberFormat("en-US", opts));
  }
  return moneyCache.get(key);
}

/** Money in the tariff's currency (ISO 4217), to its usual minor unit: "$12.34", "-€3.50", "¥1,235"; no "-$0.00". */
export function money(v, currency) {
  if (v == null || Number.isNaN(v)) return "–";
  const f = moneyFmt(currency);
  const digits = f.resolvedOptions().maximumFractionDigits;
  return f.format(Math.abs(v) < 0.5 * 10 ** -digits ? 0 : v);
}

/** A price per kWh [currency/kWh], to a tenth of a cent at least: "$0.123/kWh", "€0.2875/kWh". */
export function unitPrice(v, currency) {
  if (v == null || Number.isNaN(v)) return "–";
  return `${moneyFmt(currency, [3, 4]).format(Math.abs(v) < 5e-5 ? 0 : v)}/kWh`;
}
