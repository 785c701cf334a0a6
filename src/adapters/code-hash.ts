// The code that decides what netbuild makes of its input, as a hash, for records and caches that
// stay valid only while that code is the same (an upgrade, another checkout, a local edit): the
// modules reached by following the imports of the given ones (as they are on disk, compiled or
// not), other files they read, the versions of the packages they use, and Node's.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * The modules that stand for the code running `self` (a module's own path): from src/ (through
 * tsx), `self` and `alsoFromSrc` (paths relative to it: modules whose code decides too, though
 * `self` may reach them only through a type), whose imports codeHash follows; from the bundle
 * `npm run compile` makes, every file of it (dist/*.js), since its chunks are named by their
 * content, not by the modules they hold.
 */
export function runningModules(self: string, alsoFromSrc: readonly string[] = []): string[] {
  if (self.endsWith(".ts")) return [self, ...alsoFromSrc.map((m) => path.resolve(path.dirname(self), m))];
  const dir = path.dirname(self);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".js"))
    .sort()
    .map((f) => path.join(dir, f));
}

const reads = new Map<string, { sha: string; imports: string[] } | undefined>();

/** A file's hash and (a module's) relative imports, read once per run: a build hashes the bundle twice over. */
function readOnce(f: string): { sha: string; imports: string[] } | undefined {
  if (reads.has(f)) return reads.get(f);
  let read: { sha: string; imports: string[] } | undefined;
  try {
    const text = readFileSync(f, "utf8");
    const imports = /\.[cm]?[jt]s$/.test(f) ? [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gm)].map((m) => path.resolve(path.dirname(f), m[1]!)) : [];
    read = { sha: sha256(text), imports };
  } catch {
    read = undefined;
  }
  reads.set(f, read);
  return read;
}

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
    const read = readOnce(f);
    if (read === undefined) {
      h.update(`${f} ?\n`);
      continue;
    }
    h.update(`${path.basename(f)} ${read.sha}\n`);
    todo.push(...read.imports);
  }
  return h.digest("hex");
}
