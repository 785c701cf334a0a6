// Reads an inventory root from disk into the loader's input: the site file, classes/*.yaml and
// hosts/**/*.yaml, plus a probe that tells whether a referenced file exists inside the root.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { SITE_FILE, type InventoryFile, type InventorySource } from "../core/inventory.ts";

const YAML = /\.ya?ml$/;

// Synchronous on purpose: the inventory is read whole before anything else happens, and for
// 10,000 host files the promise-per-file version spent most of its time in the thread pool.
function listYaml(root: string, dir: string, recursive: boolean): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(root, dir), { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory() && recursive && !e.name.startsWith(".")) out.push(...listYaml(root, rel, true));
    else if ((e.isFile() || e.isSymbolicLink()) && YAML.test(e.name) && !e.name.startsWith(".")) out.push(rel);
  }
  return out.sort();
}

function read(root: string, rel: string): InventoryFile {
  return { path: rel, text: readFileSync(path.join(root, rel), "utf8") };
}

/**
 * `.netbuild/cache/yaml.json`: each inventory file's parsed data by the sha256 of its text. Parsing
 * YAML with source positions is most of the time a large inventory takes to load; with the cache a
 * file is parsed with positions only when it changed, or when a message must point into it.
 */
export const YAML_CACHE = ".netbuild/cache/yaml.json";

interface CacheFile {
  format: 1;
  files: Record<string, { sha256: string; data: unknown }>;
}

function readCache(root: string): CacheFile["files"] {
  try {
    const data = JSON.parse(readFileSync(path.join(root, YAML_CACHE), "utf8")) as CacheFile;
    return data.format === 1 && data.files && typeof data.files === "object" ? data.files : {};
  } catch {
    return {};
  }
}

/** Reads the inventory; `saveCache()` afterwards records what was parsed (a read-only root is fine: the cache is then not kept). */
export async function readInventory(root: string): Promise<{ source: InventorySource; saveCache(): void }> {
  const source = await readInventorySource(root);
  const cached = readCache(root);
  const hashes = new Map<string, string>();
  const next: CacheFile["files"] = {};
  let changed = false;
  for (const file of [...(source.site ? [source.site] : []), ...source.classes, ...source.hosts]) {
    const sha256 = createHash("sha256").update(file.text).digest("hex");
    hashes.set(file.path, sha256);
    const hit = cached[file.path];
    if (hit?.sha256 === sha256) {
      file.known = { data: hit.data };
      next[file.path] = hit;
    }
  }
  if (Object.keys(cached).some((p) => !(p in next))) changed = true;
  source.onParsed = (file, data) => {
    // Only what survives JSON unchanged is cached (YAML can hold values JSON cannot).
    const json = JSON.stringify(data);
    if (json === undefined || JSON.stringify(JSON.parse(json)) !== json) return;
    next[file.path] = { sha256: hashes.get(file.path)!, data: JSON.parse(json) as unknown };
    changed = true;
  };
  return {
    source,
    saveCache() {
      if (!changed) return;
      const file = path.join(root, YAML_CACHE);
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.tmp-${process.pid}`;
        writeFileSync(tmp, JSON.stringify({ format: 1, files: next }));
        renameSync(tmp, file);
      } catch {
        // A read-only checkout: no cache, just slower loads.
      }
    },
  };
}

export async function readInventorySource(root: string): Promise<InventorySource> {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UserError("USAGE", `the inventory root ${root} is not a folder`, { hint: "pass --root with the folder that holds classes/ and hosts/" });
  }
  const realRoot = realpathSync(root);
  if (!existsSync(path.join(root, "classes")) && !existsSync(path.join(root, "hosts"))) {
    throw new UserError("USAGE", `${root} has neither classes/ nor hosts/`, { hint: "run netbuild in your inventory repository, or pass --root" });
  }
  const sitePath = path.join(root, SITE_FILE);
  return {
    site: existsSync(sitePath) ? read(root, SITE_FILE) : undefined,
    classes: listYaml(root, "classes", false).map((f) => read(root, f)),
    hosts: listYaml(root, "hosts", true).map((f) => read(root, f)),
    probe(rel) {
      const abs = path.join(root, rel);
      try {
        lstatSync(abs);
      } catch {
        return "missing";
      }
      let real: string;
      try {
        real = realpathSync(abs);
      } catch {
        return "missing";
      }
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return "outside";
      return statSync(real).isDirectory() ? "dir" : "file";
    },
  };
}

/** Whether the root pins nixpkgs with npins (the generated code then imports it by default). */
export function hasNpinsNixpkgs(root: string): boolean {
  try {
    const data = JSON.parse(readFileSync(path.join(root, "npins", "sources.json"), "utf8")) as { pins?: Record<string, unknown> };
    return existsSync(path.join(root, "npins", "default.nix")) && data.pins?.["nixpkgs"] !== undefined;
  } catch {
    return false;
  }
}
