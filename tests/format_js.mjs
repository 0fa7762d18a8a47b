// Runs homegrid/web/src/format.js, the page's own formatting, for the tests (tests/formatjs.py): reads a JSON
// list of calls [["kw", 1520], ["setUnits", "imperial"], ["distance", 312], ...] on stdin, makes them in order
// (so a setter applies to the calls after it) and prints the list of their results as JSON.
import * as format from "../homegrid/web/src/format.js";

let text = "";
for await (const chunk of process.stdin) text += chunk;
const results = JSON.parse(text).map(([name, ...args]) => {
  if (typeof format[name] !== "function") throw new Error(`format.js has no function ${name}`);
  return format[name](...args) ?? null;
});
process.stdout.write(JSON.stringify(results));
