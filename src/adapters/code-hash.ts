// The code that decides what netbuild makes of its input, as a hash, for records and caches that
// stay valid only while that code is the same (an upgrade, another checkout, a local edit): the
// modules reached by following the imports of the given ones (as they are on disk, compiled or
// not), other files they read, the versions of the packages they use, and Node's.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** `modules` and `files`: absolute paths; `packages`: names, resolved from the first module. */
export function codeHash(modules: readonly string[], files: readonly string[], packages: readonly string[]): string {
  const h = createHash("sha256").update(`node ${process.version}\n`);
  const req = createRequire(modules[0] ?? import.meta.url);
  for (const pkg of packages) {
    try {
      h.update(`${pkg} ${(req(`${pkg}/package.json`) as { version: string }).version}\n`);
    } catch {
      h.update(`${pkg} ?\n`);
    }
  }
  const todo = [...files, ...modules];
  const seen = new Set<string>();
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      h.update(`${f} ?\n`);
      continue;
    }
    h.update(`${path.basename(f)} ${sha256(text)}\n`);
    if (/\.[cm]?[jt]s$/.test(f)) for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gm)) todo.push(path.resolve(path.dirname(f), m[1]!));
  }
  return h.digest("hex");
}
