// Reads an inventory root from disk into the loader's input: the site file, classes/*.yaml and
// hosts/**/*.yaml, plus a probe that tells whether a referenced file exists inside the root.
import { createHash } from "node:crypto";
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { UserError } from "../errors.ts";
import { codeHash, runningModules } from "./code-hash.ts";
import { packagePath } from "../package-files.ts";
import { localKind, prepareSync } from "./confine.ts";
// From the light modules, not core/inventory.ts: deploy reads the site file through here before zod
// loads, and a run whose inventory is unchanged never loads zod or yaml for it.
import { fileProblemMessage, MAX_FILE_BYTES, type FileProblem, type InventoryFile, type InventorySource } from "../core/inventory-source.ts";
import { emptyMemo, type HostMemo, type Memo, type ProbeResult } from "../core/inventory-memo.ts";
import type { Host, Inventory } from "../core/inventory.ts";

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
  const r = readBytesInsideRoot(root, realRoot, rel, max, folders);
  return "bytes" in r ? { text: r.bytes.toString("utf8") } : r;
}

/** readInsideRoot(), as bytes. */
function readBytesInsideRoot(root: string, realRoot: string, rel: string, max: number, folders: RealFolders = new Map()): { bytes: Buffer } | { problem: FileProblem } {
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
    return { bytes: buf.subarray(0, n) };
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

// ---------------------------------------------------------------------------------------------
// The caches under .netbuild/cache/. Parsing YAML with source positions and checking every host
// is most of the time a large inventory takes to load. Both caches are written only after a load
// without errors (bad input is never remembered as good), and both name netbuild's own code (see
// code()): another netbuild, or an edited one, starts afresh.

/**
 * `.netbuild/cache/yaml.json`: each file read whole (the site, classes, a file of one host), its
 * parsed data by the sha256 of its text. Such a file is parsed with positions only when it
 * changed, or when a message must point into it.
 */
export const YAML_CACHE = ".netbuild/cache/yaml.json";

/**
 * `.netbuild/cache/inventory.v8`: the model of the last valid load, under a key made of the text of
 * every inventory file and netbuild's code, with the files it looked for (a class's kernel, a Talos
 * patch) and what was there; and each host as read and checked, by its text (core/inventory-memo.ts).
 * A run whose files are all unchanged takes the model as it is; a run after an edit reads and checks
 * only the hosts whose text changed. A line of JSON (the key, and the length and sha256 of each
 * part), then the model and the memo as Node serialises values (v8.serialize: exact, undefined
 * values and all, and quick to read back).
 */
export const INVENTORY_CACHE = ".netbuild/cache/inventory.v8";

const FORMAT = 2;

interface YamlCacheFile {
  format: typeof FORMAT;
  code: string;
  files: Record<string, { sha256: string; data: unknown }>;
}

interface CacheHeader {
  format: typeof FORMAT;
  code: string;
  /** Of the inventory files' paths and texts (or why one could not be read), the folders that could not be listed, and code(). */
  key: string;
  /** The files the load looked for besides the inventory files, and what was there. */
  probes: [string, ProbeResult][];
  model: { bytes: number; sha256: string; hosts: number };
  memo: { bytes: number; sha256: string };
}

/**
 * The memo as stored: one entry per host, column by column (10,000 small objects take 50 times as
 * long to read back), its value as JSON (parsed only for a host checked again), its host as an
 * index into the stored model's hosts (one copy of each host).
 */
interface StoredMemo {
  keys: string[];
  classes: string[];
  values: (number | null)[];
  json: (string | null)[];
  hosts: number[];
  probes: ([string, ProbeResult][] | null)[];
  whole: string[];
  dependencies: [string, string][];
}

/** netbuild's own file, but in the root: read like one (never a FIFO, never unbounded). */
const MAX_CACHE_BYTES = 256 * 2 ** 20;

let codeVersion: string | undefined;

/**
 * The code that decides what an inventory means, as a hash: core/inventory.ts, this file and every
 * module they import (found by following the imports), or the whole bundle when it runs from one
 * (code-hash.ts runningModules), package.json, the YAML and schema libraries' versions and Node's
 * (which writes inventory.v8).
 */
function code(): string {
  if (codeVersion !== undefined) return codeVersion;
  return (codeVersion = codeHash(runningModules(fileURLToPath(import.meta.url), ["../core/inventory.ts"]), [packagePath("package.json")], ["yaml", "zod"]));
}

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("base64url");
}

/** The confinement rule (adapters/confine.ts) on the way to a cache file: a link or a file where a folder should be is a conflict (exit 2), never followed. */
function cacheFolders(root: string, rel: string, make: boolean): void {
  const kind = (r: string) => localKind(lstatSync(path.join(root, r), { throwIfNoEntry: false }));
  prepareSync(root, make ? { lstat: kind, mkdir: (r) => mkdirSync(path.join(root, r)) } : { lstat: kind }, "ROOT_CONFLICT", rel);
}

function readCacheFile(root: string, rel: string): Buffer | undefined {
  try {
    cacheFolders(root, rel, false);
  } catch (e) {
    // A link where a folder should be is refused; a folder that cannot be read is no cache.
    if (e instanceof UserError) throw e;
    return undefined;
  }
  try {
    const r = readBytesInsideRoot(root, realpathSync(root), rel, MAX_CACHE_BYTES);
    return "bytes" in r ? r.bytes : undefined;
  } catch {
    return undefined;
  }
}

/** Writes a cache file through a temporary name; a read-only checkout keeps no cache, and loads are just slower. */
function writeCacheFile(root: string, rel: string, parts: (string | Buffer)[]): void {
  const file = path.join(root, rel);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    cacheFolders(root, rel, true);
  } catch (e) {
    if (e instanceof UserError) throw e;
    return;
  }
  try {
    const fd = openSync(tmp, "w");
    try {
      // writeFileSync on a descriptor writes all of each part, one after the other.
      for (const p of parts) writeFileSync(fd, p);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Nothing was written, or it cannot be removed either.
    }
  }
}

function readYamlCache(root: string): YamlCacheFile["files"] {
  const bytes = readCacheFile(root, YAML_CACHE);
  if (bytes === undefined) return {};
  try {
    const data = JSON.parse(bytes.toString("utf8")) as YamlCacheFile;
    return data.format === FORMAT && data.code === code() && data.files !== null && typeof data.files === "object" ? data.files : {};
  } catch {
    return {};
  }
}

/** inventory.v8's header, and its parts read back (each checked against its sha256 first; a damaged one throws). */
function readInventoryCache(root: string): { header: CacheHeader; model(): Inventory; memo(): Memo } | undefined {
  const bytes = readCacheFile(root, INVENTORY_CACHE);
  const nl = bytes?.indexOf(10) ?? -1;
  if (bytes === undefined || nl === -1) return undefined;
  let header: CacheHeader;
  try {
    header = JSON.parse(bytes.subarray(0, nl).toString("utf8")) as CacheHeader;
    if (header.format !== FORMAT || header.code !== code() || header.model.bytes + header.memo.bytes !== bytes.length - nl - 1) return undefined;
  } catch {
    return undefined;
  }
  const checked = (which: "model" | "memo"): Buffer => {
    const start = nl + 1 + (which === "model" ? 0 : header.model.bytes);
    const data = bytes.subarray(start, start + header[which].bytes);
    if (sha256(data) !== header[which].sha256) throw new Error(`${INVENTORY_CACHE}: the ${which} is damaged`);
    return data;
  };
  let model: Inventory | undefined;
  const modelOnce = () => (model ??= v8.deserialize(checked("model")) as Inventory);
  return {
    header,
    model: modelOnce,
    memo() {
      // The model is read back when a remembered host is first used: a run that checks every host again (the site changed) never reads it.
      checked("model");
      const s = v8.deserialize(checked("memo")) as StoredMemo;
      const memo: Memo = { hosts: new Map(), whole: new Set(s.whole), classes: new Map(s.dependencies) };
      s.keys.forEach((key, i) => {
        const index = s.hosts[i]!;
        if (index < header.model.hosts) memo.hosts.set(key, new StoredHostMemo(s.classes[i]!, s.values[i] ?? undefined, s.json[i] ?? undefined, s.probes[i] ?? undefined, index, modelOnce));
      });
      return memo;
    },
  };
}

/** A remembered host as inventory.v8 holds it: the host itself is in the stored model, read back on first use. */
class StoredHostMemo implements HostMemo {
  readonly class: string;

  constructor(
    className: string,
    readonly values: number | undefined,
    readonly json: string | undefined,
    readonly probes: [string, ProbeResult][] | undefined,
    private readonly index: number,
    private readonly model: () => Inventory,
  ) {
    this.class = className;
  }

  get host(): Host {
    return this.model().hosts[this.index]!;
  }
}

/** The memo as stored (see StoredMemo); undefined when v8 cannot serialise the model. */
function storedMemo(memo: Memo, inventory: Inventory): StoredMemo {
  const index = new Map(inventory.hosts.map((h, i) => [h, i]));
  const s: StoredMemo = { keys: [], classes: [], values: [], json: [], hosts: [], probes: [], whole: [...memo.whole], dependencies: [...memo.classes] };
  for (const [key, m] of memo.hosts) {
    const i = index.get(m.host);
    if (i === undefined) continue;
    s.keys.push(key);
    s.classes.push(m.class);
    s.values.push(m.values ?? null);
    s.json.push(m.json ?? ("data" in m ? exactJson(m.data) : undefined) ?? null);
    s.hosts.push(i);
    s.probes.push(m.probes ?? null);
  }
  return s;
}

/** `data` as JSON, when JSON holds it exactly (YAML can hold values JSON cannot: .nan, .inf, -0). */
function exactJson(data: unknown): string | undefined {
  const exact = (v: unknown): boolean =>
    v === null ||
    typeof v === "string" ||
    typeof v === "boolean" ||
    (typeof v === "number" && Number.isFinite(v) && !Object.is(v, -0)) ||
    (Array.isArray(v) && v.every(exact)) ||
    (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype && Object.keys(v).every((k) => k !== "__proto__" && exact((v as Record<string, unknown>)[k])));
  return exact(data) ? JSON.stringify(data) : undefined;
}

export interface InventoryRead {
  source: InventorySource;
  /** The model of the last valid load, when no inventory file (and no file it looked for) changed since: nothing is left to load. */
  known: Inventory | undefined;
  /** After a load without errors: records what was read and checked, for the next run. */
  save(result: { inventory: Inventory; memo: Memo }): void;
}

/** Reads the inventory, and what earlier runs left of it in .netbuild/cache/. */
export async function readInventory(root: string): Promise<InventoryRead> {
  const source = await readInventorySource(root);
  const files = [...(source.site ? [source.site] : []), ...source.classes, ...source.hosts];
  const hashes = new Map<string, string>();
  const key = createHash("sha256").update(`${FORMAT} ${code()}\n`);
  for (const file of files) {
    if (file.problem) {
      key.update(`${file.path}\0${JSON.stringify(file.problem)}\n`);
      continue;
    }
    const hash = sha256(file.text);
    hashes.set(file.path, hash);
    key.update(`${file.path}\0${hash}\n`);
  }
  key.update(JSON.stringify(source.folders ?? []));
  const modelKey = key.digest("base64url");

  const cache = readInventoryCache(root);
  try {
    if (cache && cache.header.key === modelKey && cache.header.probes.every(([rel, was]) => source.probe(rel) === was)) {
      return { source, known: cache.model(), save() {} };
    }
    source.earlier = cache?.memo();
  } catch {
    // Damaged, or not what this netbuild writes: started afresh.
  }
  source.earlier ??= emptyMemo();

  const cached = readYamlCache(root);
  const next: YamlCacheFile["files"] = {};
  let changed = false;
  for (const file of files) {
    const hit = cached[file.path];
    if (hit && hit.sha256 === hashes.get(file.path)) {
      file.known = { data: hit.data };
      next[file.path] = hit;
    }
  }
  if (Object.keys(cached).some((p) => !(p in next))) changed = true;
  source.onParsed = (file, data) => {
    const json = exactJson(data);
    if (json === undefined) return;
    next[file.path] = { sha256: hashes.get(file.path)!, data: JSON.parse(json) as unknown };
    changed = true;
  };
  // What the load looks for besides the inventory files (a class's kernel, a Talos patch): the model holds while each is as it was.
  const probes = new Map<string, ProbeResult>();
  const probe = source.probe;
  source.probe = (rel) => {
    const kind = probe(rel);
    probes.set(rel, kind);
    return kind;
  };
  return {
    source,
    known: undefined,
    save({ inventory, memo }) {
      if (changed) writeCacheFile(root, YAML_CACHE, [JSON.stringify({ format: FORMAT, code: code(), files: next } satisfies YamlCacheFile)]);
      let model: Buffer;
      let stored: Buffer;
      try {
        model = v8.serialize(inventory);
        stored = v8.serialize(storedMemo(memo, inventory));
      } catch {
        return;
      }
      const header: CacheHeader = { format: FORMAT, code: code(), key: modelKey, probes: [...probes], model: { bytes: model.length, sha256: sha256(model), hosts: inventory.hosts.length }, memo: { bytes: stored.length, sha256: sha256(stored) } };
      writeCacheFile(root, INVENTORY_CACHE, [`${JSON.stringify(header)}\n`, model, stored]);
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

/**
 * The inventory folder (`hosts` or `classes`) that `dir` is, or lies in, however it is reached (a
 * symlink on the way, another spelling of the name on a case-insensitive disk): the folders are
 * compared by device and inode with `dir`'s nearest existing ancestor and those above it. A tree
 * written there would be read back as inventory (a Talos host's by-host/<host>/talos.yaml under
 * hosts/). Undefined when it is in neither.
 */
export function inventoryFolderHolding(root: string, dir: string): "hosts" | "classes" | undefined {
  const ids = new Map<string, "hosts" | "classes">();
  for (const name of ["hosts", "classes"] as const) {
    try {
      const s = statSync(path.join(root, name));
      if (s.isDirectory()) ids.set(`${s.dev}:${s.ino}`, name);
    } catch {
      // No such folder: nothing can be written into it.
    }
  }
  if (ids.size === 0) return undefined;
  // The nearest ancestor that exists, by its real path: the folders above it are then the real ones.
  let at = path.resolve(dir);
  for (;;) {
    try {
      at = realpathSync(at);
      break;
    } catch {
      const up = path.dirname(at);
      if (up === at) return undefined;
      at = up;
    }
  }
  for (;;) {
    try {
      const s = statSync(at);
      const hit = ids.get(`${s.dev}:${s.ino}`);
      if (hit) return hit;
    } catch {
      // Unreadable on the way up: the folders above still decide.
    }
    const up = path.dirname(at);
    if (up === at) return undefined;
    at = up;
  }
}
