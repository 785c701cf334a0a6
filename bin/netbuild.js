#!/usr/bin/env node
// Starts the CLI. When dist/ (src/ compiled by `npm run compile`, which `npm install` runs) is
// newer than every file in src/, it runs that JavaScript: no transpiling, a faster start and less
// memory. Otherwise it runs the TypeScript sources through tsx, so an edited checkout is never
// served stale code.
import { readdirSync, statSync } from "node:fs";

const src = new URL("../src/", import.meta.url);
const stamp = new URL("../dist/.compiled", import.meta.url);

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = new URL(e.name + (e.isDirectory() ? "/" : ""), dir);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function compiledIsCurrent() {
  try {
    return statSync(stamp).mtimeMs >= newest(src);
  } catch {
    return false;
  }
}

let main;
if (compiledIsCurrent()) {
  ({ main } = await import("../dist/cli.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli.ts"));
}
process.exitCode = await main(process.argv);
