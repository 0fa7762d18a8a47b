// Local calendar dates as "YYYY-MM-DD" strings; arithmetic on UTC noon so no zone can shift them.

const parse = (s) => new Date(`${s}T12:00:00Z`);
const show = (d) => d.toISOString().slice(0, 10);

export const addDays = (s, n) => {
  const d = parse(s);
  d.setUTCDate(d.getUTCDate() + n);
  return show(d);
};

export const daysBetween = (a, b) => Math.round((parse(b) - parse(a)) / 86400000);

/** The [from, to] dates (inclusive) of a range kind around a date. */
export function span(kind, date, custom) {
  const d = parse(date);
  if (kind === "week") {
    const monday = addDays(date, -((d.getUTCDay() + 6) % 7));
    return [monday, addDays(monday, 6)];
  }
  if (kind === "month") {
    const first = show(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1, 12)));
    const last = show(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0, 12)));
    return [first, last];
  }
  if (kind === "year") return [`${d.getUTCFullYear()}-01-01`, `${d.getUTCFullYear()}-12-31`];
  if (kind === "custom" && custom) return custom;
  return [date, date];
}

/** Move a range by one of its own lengths. */
export function shift(kind, date, n) {
  const d = parse(date);
  if (kind === "week") return addDays(date, 7 * n);
  if (kind === "month") return show(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1, 12)));
  if (kind === "year") return `${d.getUTCFullYear() + n}-01-01`;
  return addDays(date, n);
}

/** The bins a span's energy bars are drawn in: local hours for a day (or two), local days up to two months,
 * else local months (a year). */
export function barStepFor(kind, from, to) {
  if (kind === "day") return "hour";
  if (kind === "week" || kind === "month") return "day";
  if (kind === "year") return "month";
  const n = daysBetween(from, to) + 1;
  return n <= 2 ? "hour" : n <= 62 ? "day" : "month";
}
