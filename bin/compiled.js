// Whether dist/ (src/ bundled by `npm run compile`, which `npm install` runs) is current: its stamp
// is no older than any file in src/, nor than the installed packages (node_modules/.package-lock.json,
// which npm rewrites on every install): the bundle holds yaml, zod and the others, and installing
// one package (`npm install yaml@…`) does not compile again. bin/netbuild.js runs dist/ only then,
// and bench/scale.ts reports which it ran.
import { readdirSync, statSync } from "node:fs";

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = new URL(e.name + (e.isDirectory() ? "/" : ""), dir);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export function compiledIsCurrent(root = new URL("../", import.meta.url)) {
  try {
    const installed = statSync(new URL("node_modules/.package-lock.json", root), { throwIfNoEntry: false })?.mtimeMs ?? 0;
    return statSync(new URL("dist/.compiled", root)).mtimeMs >= Math.max(newest(new URL("src/", root)), installed);
  } catch {
    return false;
  }
}
