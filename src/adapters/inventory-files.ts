// Reads an inventory root from disk into the loader's input: the site file, classes/*.yaml and
// hosts/**/*.yaml, plus a probe that tells whether a referenced file exists inside the root.
import { createHash } from "node:crypto";
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync, statSync, writeFileSync, type Stats } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
// From the light modules, not core/inventory.ts: deploy reads the site file through here before zod loads.
import { fileProblemMessage, MAX_FILE_BYTES, type FileProblem, type InventoryFile, type InventorySource } from "../core/inventory-source.ts";

const SITE_FILE = "netbuild.yaml";

const YAML = /\.ya?ml$/;

type Folders = NonNullable<InventorySource["folders"]>;

function problemOf(e: unknown): FileProblem {
  const code = (e as NodeJS.ErrnoException).code ?? "unknown error";
  if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
  if (code === "ELOOP") return { kind: "loop" };
  if (code === "EACCES" || code === "EPERM") return { kind: "denied" };
  if (code === "EISDIR") return { kind: "folder" };
  return { kind: "io", code };
}

/** What is not a regular file, as a problem; undefined for a regular file. */
function notRegular(st: Stats): FileProblem | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return { kind: "folder" };
  const what = st.isFIFO() ? "FIFO (named pipe)" : st.isSocket() ? "socket" : st.isCharacterDevice() ? "character device" : st.isBlockDevice() ? "block device" : "special file";
  return { kind: "special", what };
}

/** Real paths of folders already resolved (one per folder, not one per file: 10,000 host files share a few folders). */
export type RealFolders = Map<string, string>;

/**
 * Where `rel` leads, without opening it: its real path (symlinks resolved) inside the root and
 * what is there, or why it cannot be used. Opening is what must not happen to a FIFO (it blocks)
 * or a device (opening some has effects), so everything is decided from stat first.
 */
function locate(root: string, realRoot: string, rel: string, folders: RealFolders): { real: string; stat: Stats } | FileProblem {
  const abs = path.join(root, rel);
  let own: Stats;
  try {
    own = lstatSync(abs);
  } catch (e) {
    return problemOf(e);
  }
  if (!own.isSymbolicLink()) {
    // Not a link itself: where it is follows from its folder's real path.
    const dir = path.dirname(abs);
    let realDir = folders.get(dir);
    if (realDir === undefined) {
      try {
        realDir = realpathSync(dir);
      } catch (e) {
        return problemOf(e);
      }
      folders.set(dir, realDir);
    }
    const real = path.join(realDir, path.basename(abs));
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return { kind: "outside" };
    return { real, stat: own };
  }
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (e) {
    const problem = problemOf(e);
    return problem.kind === "missing" ? { kind: "dangling" } : problem;
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return { kind: "outside" };
  try {
    return { real, stat: statSync(real) };
  } catch (e) {
    return problemOf(e);
  }
}

/**
 * A regular file inside the root, as text, reading at most `max` + 1 bytes whatever its size says
 * (a file that grows while it is read is cut off, not read forever); anything else is a problem.
 */
export function readInsideRoot(root: string, realRoot: string, rel: string, max: number = MAX_FILE_BYTES, folders: RealFolders = new Map()): { text: string } | { problem: FileProblem } {
  const where = locate(root, realRoot, rel, folders);
  if ("kind" in where) return { problem: where };
  const odd = notRegular(where.stat);
  if (odd) return { problem: odd };
  if (where.stat.size > max) return { problem: { kind: "too-large", bytes: where.stat.size } };
  let fd: number;
  try {
    // The real path has no symlinks left (O_NOFOLLOW: one now means it changed since the stat);
    // O_NONBLOCK and O_NOCTTY: should a FIFO or a terminal be there now, opening neither waits nor takes it.
    fd = openSync(where.real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return { problem: problemOf(e) };
  }
  try {
    const st = fstatSync(fd);
    const swapped = notRegular(st);
    if (swapped) return { problem: swapped };
    let buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > max) break;
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, max + 1));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > max) return { problem: { kind: "too-large", bytes: undefined } };
    return { text: buf.toString("utf8", 0, n) };
  } catch (e) {
    return { problem: problemOf(e) };
  } finally {
    closeSync(fd);
  }
}

// Synchronous on purpose: the inventory is read whole before anything else happens, and for
// 10,000 host files the promise-per-file version spent most of its time in the thread pool.
function listYaml(root: string, dir: string, recursive: boolean, folders: Folders): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(root, dir), { withFileTypes: true });
  } catch (e) {
    let problem = problemOf(e);
    const abs = path.join(root, dir);
    // No classes/ or hosts/ at all is fine; one that is a file, a broken link or unreadable is not.
    if (problem.kind === "missing") {
      if (existsAsFile(abs)) problem = { kind: "not-a-folder" };
      else if (isLink(abs)) problem = { kind: "dangling" };
      else if (!dir.includes("/")) return [];
    }
    folders.push({ path: dir, problem });
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory() && recursive) out.push(...listYaml(root, rel, true, folders));
    // Whatever the entry is (a FIFO, a device, a broken link), readInsideRoot says what is wrong with it.
    else if (YAML.test(e.name)) out.push(rel);
  }
  return out.sort();
}

function isLink(abs: string): boolean {
  try {
    return lstatSync(abs).isSymbolicLink();
  } catch {
    return false;
  }
}

function existsAsFile(abs: string): boolean {
  try {
    return !statSync(abs).isDirectory();
  } catch {
    return false;
  }
}

function read(root: string, realRoot: string, rel: string, folders: RealFolders): InventoryFile {
  const r = readInsideRoot(root, realRoot, rel, MAX_FILE_BYTES, folders);
  return "text" in r ? { path: rel, text: r.text } : { path: rel, text: "", problem: r.problem };
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

/** netbuild's own file, but in the root: read like one (never a FIFO, never unbounded). */
const MAX_CACHE_BYTES = 256 * 2 ** 20;

function readCache(root: string): CacheFile["files"] {
  try {
    const r = readInsideRoot(root, realpathSync(root), YAML_CACHE, MAX_CACHE_BYTES);
    if (!("text" in r)) return {};
    const data = JSON.parse(r.text) as CacheFile;
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
    if (file.problem) continue;
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
  let isFolder = false;
  let problem: FileProblem = { kind: "missing" };
  try {
    isFolder = statSync(root).isDirectory();
  } catch (e) {
    problem = problemOf(e);
    if (problem.kind === "missing" && isLink(root)) problem = { kind: "dangling" };
  }
  if (!isFolder) {
    const what = problem.kind === "missing" && existsSync(root) ? "is not a folder" : fileProblemMessage(problem).message;
    throw new UserError("USAGE", `the inventory root ${root} ${what}`, { hint: "pass --root with the folder that holds classes/ and hosts/" });
  }
  const realRoot = realpathSync(root);
  if (!existsSync(path.join(root, "classes")) && !existsSync(path.join(root, "hosts"))) {
    throw new UserError("USAGE", `${root} has neither classes/ nor hosts/`, { hint: "run netbuild in your inventory repository, or pass --root" });
  }
  const folders: Folders = [];
  const realFolders: RealFolders = new Map();
  // lstat, not exists: a netbuild.yaml that is a broken link or a loop is reported, not skipped.
  let site: InventoryFile | undefined;
  try {
    lstatSync(path.join(root, SITE_FILE));
    site = read(root, realRoot, SITE_FILE, realFolders);
  } catch {
    site = undefined;
  }
  return {
    site,
    classes: listYaml(root, "classes", false, folders).map((f) => read(root, realRoot, f, realFolders)),
    hosts: listYaml(root, "hosts", true, folders).map((f) => read(root, realRoot, f, realFolders)),
    folders,
    probe(rel) {
      const where = locate(root, realRoot, rel, realFolders);
      if ("kind" in where) return where.kind === "outside" ? "outside" : "missing";
      return where.stat.isDirectory() ? "dir" : where.stat.isFile() ? "file" : "special";
    },
  };
}

/** Whether the root pins nixpkgs with npins (the generated code then imports it by default). */
export function hasNpinsNixpkgs(root: string): boolean {
  try {
    const r = readInsideRoot(root, realpathSync(root), "npins/sources.json");
    if (!("text" in r)) return false;
    const data = JSON.parse(r.text) as { pins?: Record<string, unknown> };
    return existsSync(path.join(root, "npins", "default.nix")) && data.pins?.["nixpkgs"] !== undefined;
  } catch {
    return false;
  }
}
