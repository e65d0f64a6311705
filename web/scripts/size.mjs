// The size budget of the UI: the JavaScript that index.html loads before the
// app is interactive (its module script and modulepreload links) must stay
// under 300 KiB gzipped. Usage: node scripts/size.mjs [DIST] (default dist).
// Prints the figures; exits 1 over budget or when index.html loads no script.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const budget = 300 * 1024;
const dist = process.argv[2] ?? "dist";
const html = readFileSync(join(dist, "index.html"), "utf8");
const srcs = [
  ...html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g),
  ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g),
].map((m) => m[1]);
if (srcs.length === 0) {
  console.error(`size: ${dist}/index.html loads no module script`);
  process.exit(1);
}
let raw = 0;
let gz = 0;
for (const src of new Set(srcs)) {
  const body = readFileSync(join(dist, src.replace(/^\//, "")));
  const z = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gz += z;
  console.log(`size: ${src}: ${(body.length / 1024).toFixed(1)} KiB, ${(z / 1024).toFixed(1)} KiB gzipped`);
}
const line = `size: initial JavaScript ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped (budget ${budget / 1024} KiB gzipped)`;
if (gz > budget) {
  console.error(`${line}: over budget`);
  process.exit(1);
}
console.log(line);
