// Bundle src/ into static/ (committed, so `pip install` needs no node). Run by scripts/build-web.
import { build } from "esbuild";
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

await build({
  entryPoints: { app: "src/main.js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outdir: "static",
  legalComments: "linked",
  logLevel: "warning",
});

let total = 0;
for (const name of readdirSync("static").sort()) {
  if (!/\.(js|css|html)$/.test(name)) continue;
  const raw = readFileSync(`static/${name}`);
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  console.log(`${name.padEnd(14)} ${String(raw.length).padStart(8)} B  ${String(gz).padStart(7)} B gzip`);
}
console.log(`page weight: ${total} B gzip`);
