// /api/v1/energy answers a span's bins in columns: the time axis once (`start`, and `end` for days and months),
// `partial_from` (the first bin still going), and one array per field asked for (`values`). A chart asks only
// for the fields it draws.

const STEP_MS = { minute: 60e3, hour: 3600e3 };

/** The URL of a span's bins with only these fields. */
export const energyUrl = (from, to, step, fields) =>
  `/api/v1/energy?from=${from}&to=${to}&step=${step}&fields=${fields.join(",")}`;

/** A reply as one object per bin, { i, start, end, partial, ...its fields }, for charts of a few hundred bins; a
 * minute's or an hour's end is its start plus the step (an instant in UTC). */
export function pointsOf(energy) {
  return energy.start.map((start, i) => {
    const end = energy.end ? energy.end[i] : new Date(Date.parse(start) + STEP_MS[energy.step]).toISOString().replace(".000Z", "Z");
    const p = { i, start, end, partial: i >= energy.partial_from };
    for (const f of energy.fields) p[f] = energy.values[f][i];
    return p;
  });
}
