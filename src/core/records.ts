// The records netbuild reads back, checked before anything trusts them: out/'s manifest
// (`.netbuild/manifest.json`) and a target's `.netbuild/deployed.json` (its entries, pending paths
// and generations). Either may have been edited by hand, damaged, or planted; a path in one is
// something netbuild would overwrite or delete. So each is checked against its schema
// (record-schemas.ts) and every path in it against the tree-path rule (core/paths.ts); the first
// problems are reported by entry. A 10,000-host record holds 20,000 to 30,000 entries, which zod
// checks in 0.2 to 0.3 s: the hand-written checks below accept exactly what the schemas accept
// (test/core/records.test.ts compares them on thousands of damaged records) in a fraction of that,
// and zod is loaded only for a record they refuse, to say what is wrong in the schema's words.
import { fieldPath, quoted } from "./excerpt.ts";
import { isBinaryPath, treePathProblem } from "./paths.ts";
import type { DeployedManifest } from "./deploy.ts";
import type { TreeManifest } from "./tree.ts";
import type { StoredDeployed } from "./record-schemas.ts";

/** What kind of entry netbuild writes at a tree path: artifacts in a class's store-hash folder, links only at by-mac/<mac>. */
export function kindsAt(p: string): readonly string[] {
  // Counted, not split: this runs for each of a record's 30,000 entries.
  if (p.startsWith("by-class/") && slashes(p) === 3) return ARTIFACT;
  if (p.startsWith("by-mac/") && slashes(p) === 1) return LINK;
  return FILE;
}
const ARTIFACT: readonly string[] = Object.freeze(["artifact"]);
const LINK: readonly string[] = Object.freeze(["symlink"]);
const FILE: readonly string[] = Object.freeze(["file"]);
function slashes(p: string): number {
  let n = 0;
  for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) n++;
  return n;
}

// The patterns both the schemas and the hand-written checks use.
export const SHA256_HEX = /^[0-9a-f]{64}$/;
export const STORE_FILE = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/]+(\/[^/]+)*$/;
/** The only links netbuild makes: by-mac/<mac> → ../by-host/<host>. */
export const HOST_LINK = /^\.\.\/by-host\/[^/\\\x00-\x1f]+$/;
// out/'s manifest also records, for each file, where it stood when netbuild wrote it: its size, its
// mtime in nanoseconds and its inode (decimal strings: both can exceed what a JSON number holds
// exactly). A build trusts a file unchanged while lstat still says the same (adapters/local-tree.ts).
export const STAMP_NUMBER = /^-?[0-9]{1,24}$/;
// Who deployed: written by netbuild on some machine, read on another; printed by status, so held to
// a spelling that cannot carry control characters or pass for something else.
export const UTC_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
export const DEPLOYER = /^[A-Za-z0-9._@?-]{1,128}$/;
export const COMMIT = /^([0-9a-f]{7,40}(-dirty)?|unknown)$/;
export const GENERATION_ID = /^[0-9a-f]{12}$/;
export const isRealUtcTime = (t: string) => !Number.isNaN(Date.parse(t)) && new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z") === t;

/** A class's artifact paths must lie in its own folder: a record cannot make one class's gc delete another's files. */
function classPathsProblems(classes: Record<string, { paths: string[] }>): string[] {
  const problems: string[] = [];
  for (const [name, { paths }] of Object.entries(classes)) {
    if (name.includes("/") || treePathProblem(`by-class/${name}`)) {
      problems.push(`${fieldPath("classes", name)}: not a class name netbuild could have written`);
      continue;
    }
    for (const p of paths) if (!p.startsWith(`by-class/${name}/`) || p.split("/").length !== 4) problems.push(`${fieldPath("classes", name)}: ${quoted(p)} is not an artifact path of that class`);
  }
  return problems;
}

export type RecordResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** Whether a record was refused only for its format, one a newer netbuild writes (not damage). */
export function newerFormat(problems: readonly string[]): boolean {
  return problems.length === 1 && / which this netbuild does not know /.test(problems[0]!);
}

/** The hint for a record a newer netbuild wrote. */
export const NEWER_FORMAT_HINT = "a newer netbuild wrote it (nothing is wrong with it): update netbuild in this checkout to that version or later";

function parseJson(text: string, formats: readonly number[] = [1]): { ok: true; data: unknown } | { ok: false; problems: string[] } {
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch {
    return { ok: false, problems: ["it is not valid JSON"] };
  }
  const format = (data as { format?: unknown } | null)?.format;
  if (typeof format === "number" && !formats.includes(format)) {
    // Only a whole number past the ones known can be a newer netbuild's (newerFormat).
    const newer = Number.isInteger(format) && format > Math.max(...formats);
    return { ok: false, problems: [newer ? `it has format ${format}, which this netbuild does not know (use the netbuild version that wrote it)` : `it has format ${format}, which no netbuild writes`] };
  }
  return { ok: true, data };
}

/**
 * The format a record is written in. A record that names an iPXE binary (ipxe/…, which came after
 * these formats) is written in the next one: a netbuild from before then says the record is newer
 * than it, not that it is damaged. out/'s manifest: 1, or 2; a target's record: 2, or 3; the pending
 * journal: 1, or 2.
 */
export function recordFormat(kind: "tree" | "deployed" | "journal", entries: Readonly<Record<string, unknown>> | undefined, pending: readonly string[] = []): number {
  let ipxe = pending.some(isBinaryPath);
  // for…in: a 10,000-host record's entries, looked at without copying them out.
  if (!ipxe && entries) for (const p in entries) if (isBinaryPath(p)) { ipxe = true; break; }
  const base = kind === "deployed" ? 2 : 1;
  return ipxe ? base + 1 : base;
}

/** out/'s manifest, checked (see above). `schemaOnly`: by the schema alone (the tests' reference). */
export async function parseTreeManifest(text: string, options: { schemaOnly?: boolean } = {}): Promise<RecordResult<TreeManifest>> {
  const json = parseJson(text, [1, 2]);
  if (!json.ok) return json;
  let value: TreeManifest;
  if (!options.schemaOnly && isTreeManifest(json.data)) value = json.data;
  else {
    const r = (await import("./record-schemas.ts")).schemaTreeManifest(json.data);
    if (!r.ok) return r;
    value = r.value as TreeManifest;
  }
  const problems = classPathsProblems(Object.fromEntries(Object.entries(value.classes).map(([n, c]) => [n, { paths: [c.kernel.path, c.initrd.path, ...(c.previous ? [c.previous.kernel, c.previous.initrd] : [])] }])));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value };
}

// TreeManifestSchema's checks by hand, with the same patterns: yes or no, no messages.
const TOP_KEYS = new Set(["format", "classes", "entries", "pending", "inputs"]);
const CLASS_KEYS = new Set(["kind", "kernel", "initrd", "kernelParams", "previous", "kernelSha256", "initrdSha256"]);
const BUILT_KEYS = new Set(["path", "storeFile", "size"]);
const PREVIOUS_KEYS = new Set(["kernel", "initrd"]);
const FILE_KEYS = new Set(["kind", "sha256", "size", "mtimeNs", "ino"]);
const ARTIFACT_KEYS = new Set(["kind", "size", "sha256"]);
const LINK_KEYS = new Set(["kind", "target"]);
const CLASS_KINDS = new Set(["nixos", "prebuilt", "talos"]);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Every key of `o` is one of `keys` (a loop: this runs for each of 30,000 entries). */
function hasOnly(o: Json, keys: ReadonlySet<string>): boolean {
  for (const k in o) if (!keys.has(k)) return false;
  return true;
}
const isSha = (v: unknown) => typeof v === "string" && SHA256_HEX.test(v);
const isSize = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
// A tree path of the usual shape (a top folder, then parts that each start with a lower-case letter
// or digit) has no empty, `.` or `..` part and no character treePathProblem refuses: it needs no
// further look. Anything else is asked of treePathProblem itself.
const PLAIN_TREE_PATH = /^by-(?:host|mac|class)(?:\/[0-9a-z][0-9a-z._-]*)+$/;
const isTreePath = (v: unknown) => typeof v === "string" && (PLAIN_TREE_PATH.test(v) || treePathProblem(v) === undefined);
const isStoreFile = (v: unknown) => typeof v === "string" && STORE_FILE.test(v) && !v.split("/").includes("..");
const isStampNumber = (v: unknown) => typeof v === "string" && STAMP_NUMBER.test(v);
const optional = (o: Json, key: string, check: (v: unknown) => boolean) => !Object.hasOwn(o, key) || check(o[key]);
const isBuilt = (v: unknown) => isObject(v) && hasOnly(v, BUILT_KEYS) && isTreePath(v["path"]) && isStoreFile(v["storeFile"]) && isSize(v["size"]);

function isTreeClass(c: unknown): boolean {
  if (!isObject(c) || !hasOnly(c, CLASS_KEYS)) return false;
  if (typeof c["kind"] !== "string" || !CLASS_KINDS.has(c["kind"])) return false;
  if (!isBuilt(c["kernel"]) || !isBuilt(c["initrd"]) || !isSha(c["kernelSha256"]) || !isSha(c["initrdSha256"])) return false;
  const params = c["kernelParams"];
  if (!Array.isArray(params) || !params.every((p) => typeof p === "string")) return false;
  return optional(c, "previous", (p) => isObject(p) && hasOnly(p, PREVIOUS_KEYS) && isTreePath(p["kernel"]) && isTreePath(p["initrd"]));
}

/** An entry of out/'s manifest (`isFile`: its file entries, which may carry stamps) or of a target's record (`isFile`: isRecordFile). */
function isEntry(key: string, e: unknown, isFile: (e: Json) => boolean): boolean {
  if (!isObject(e)) return false;
  const kind = e["kind"];
  if (kind === "file") {
    if (!isFile(e)) return false;
  } else if (kind === "artifact") {
    if (!hasOnly(e, ARTIFACT_KEYS) || !isSize(e["size"]) || !isSha(e["sha256"])) return false;
  } else if (kind === "symlink") {
    const t = e["target"];
    if (!hasOnly(e, LINK_KEYS) || typeof t !== "string" || !HOST_LINK.test(t) || t === "../by-host/.." || t === "../by-host/.") return false;
  } else return false;
  return isTreePath(key) && kindsAt(key).includes(kind);
}

const isTreeFile = (e: Json) => hasOnly(e, FILE_KEYS) && isSha(e["sha256"]) && optional(e, "size", isSize) && optional(e, "mtimeNs", isStampNumber) && optional(e, "ino", isStampNumber);

/** Whether TreeManifestSchema accepts `data` (classPathsProblems aside). */
export function isTreeManifest(data: unknown): data is TreeManifest {
  if (!isObject(data) || !hasOnly(data, TOP_KEYS) || (data["format"] !== 1 && data["format"] !== 2) || !optional(data, "inputs", isSha)) return false;
  const { classes, entries } = data;
  if (!isObject(classes) || !isObject(entries)) return false;
  if (!optional(data, "pending", (p) => Array.isArray(p) && p.every(isTreePath))) return false;
  // A class named __proto__ is left to the schema, whose records pass over that key (so do entries: not a tree path).
  for (const name of Object.keys(classes)) if (name === "__proto__" || !isTreeClass(classes[name])) return false;
  for (const key of Object.keys(entries)) if (!isEntry(key, entries[key], isTreeFile)) return false;
  return true;
}

/** A target's record, checked (see above); format 1 is read as format 2 without who deployed. `schemaOnly`: by the schema alone. */
export async function parseDeployedManifest(text: string, options: { schemaOnly?: boolean } = {}): Promise<RecordResult<DeployedManifest>> {
  const json = parseJson(text, [1, 2, 3]);
  if (!json.ok) return json;
  return checkDeployed(json.data, options);
}

/** The record as JSON says it (`data`: parsed, not yet trusted), checked. */
async function checkDeployed(raw: unknown, options: { schemaOnly?: boolean } = {}): Promise<RecordResult<DeployedManifest>> {
  let data: StoredDeployed;
  if (!options.schemaOnly && isDeployedManifest(raw)) data = raw;
  else {
    const r = (await import("./record-schemas.ts")).schemaDeployedManifest(raw);
    if (!r.ok) return r;
    data = r.value;
  }
  const problems = classPathsProblems(Object.fromEntries(Object.entries(data.classes).map(([n, c]) => [n, { paths: c.generations.flatMap((g) => [g.kernel, g.initrd]) }])));
  if (problems.length > 0) return { ok: false, problems };
  const classes = Object.fromEntries(Object.entries(data.classes).map(([n, c]) => [n, c.rolledBackFrom === undefined ? { current: c.current, generations: c.generations } : c]));
  return { ok: true, value: { format: 2, classes, entries: data.entries, pending: data.pending ?? [], ...(data.last ? { last: data.last } : {}) } as DeployedManifest };
}

// DeployedManifestSchema's checks by hand, with the same patterns (as isTreeManifest for out/'s).
const DEPLOYED_KEYS = new Set(["format", "classes", "entries", "pending", "last"]);
const DEPLOYED_CLASS_KEYS = new Set(["current", "generations", "rolledBackFrom"]);
const GENERATION_KEYS = new Set(["id", "kernel", "initrd", "script", "sha256", "deployed"]);
const ORIGIN_KEYS = new Set(["at", "by", "commit"]);
const LAST_KEYS = new Set(["command", "at", "by", "commit"]);
const RECORD_FILE_KEYS = new Set(["kind", "sha256"]);

const isUtcTime = (v: unknown) => typeof v === "string" && UTC_TIME.test(v) && isRealUtcTime(v);
const isOriginOf = (o: Json) => isUtcTime(o["at"]) && typeof o["by"] === "string" && DEPLOYER.test(o["by"]) && optional(o, "commit", (c) => typeof c === "string" && COMMIT.test(c));
const isOrigin = (v: unknown) => isObject(v) && hasOnly(v, ORIGIN_KEYS) && isOriginOf(v);
const isLast = (v: unknown) => isObject(v) && hasOnly(v, LAST_KEYS) && (v["command"] === "deploy" || v["command"] === "rollback") && isOriginOf(v);
const isGeneration = (g: unknown) =>
  isObject(g) && hasOnly(g, GENERATION_KEYS) && typeof g["id"] === "string" && GENERATION_ID.test(g["id"]) && isTreePath(g["kernel"]) && isTreePath(g["initrd"]) && typeof g["script"] === "string" && isSha(g["sha256"]) && optional(g, "deployed", isOrigin);
const isDeployedClass = (c: unknown) =>
  isObject(c) && hasOnly(c, DEPLOYED_CLASS_KEYS) && typeof c["current"] === "string" && Array.isArray(c["generations"]) && c["generations"].every(isGeneration) && optional(c, "rolledBackFrom", (r) => Array.isArray(r) && r.every((id) => typeof id === "string"));

const isRecordFile = (e: Json) => hasOnly(e, RECORD_FILE_KEYS) && isSha(e["sha256"]);

/** Whether DeployedManifestSchema accepts `data` (classPathsProblems aside). */
export function isDeployedManifest(data: unknown): data is StoredDeployed {
  if (!isObject(data) || !hasOnly(data, DEPLOYED_KEYS) || (data["format"] !== 1 && data["format"] !== 2 && data["format"] !== 3)) return false;
  const { classes, entries } = data;
  if (!isObject(classes) || !isObject(entries)) return false;
  if (!optional(data, "pending", (p) => Array.isArray(p) && p.every(isTreePath)) || !optional(data, "last", isLast)) return false;
  // A class named __proto__ is left to the schema, whose records pass over that key (so do entries: not a tree path).
  for (const name of Object.keys(classes)) if (name === "__proto__" || !isDeployedClass(classes[name])) return false;
  for (const key of Object.keys(entries)) if (!isEntry(key, entries[key], isRecordFile)) return false;
  return true;
}

/** `.netbuild/pending.json` (core/deploy.ts PENDING_JOURNAL): `{ "format": 1, "pending": [tree paths] }` (format 2 with an iPXE binary pending). */
export function parsePendingJournal(text: string): RecordResult<string[]> {
  const json = parseJson(text, [1, 2]);
  if (!json.ok) return json;
  const data = json.data;
  if (!isObject(data) || !hasOnly(data, PENDING_KEYS) || (data["format"] !== 1 && data["format"] !== 2)) return { ok: false, problems: ["expected { \"format\": 1, \"pending\": [paths] }"] };
  const pending = data["pending"];
  if (!Array.isArray(pending)) return { ok: false, problems: ["pending: expected a list of paths"] };
  const problems = pending.flatMap((p, i) => (isTreePath(p) ? [] : [`pending[${i}]: ${typeof p === "string" ? `the path ${treePathProblem(p) ?? "is not a tree path"}` : "expected a path"}`]));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: pending as string[] };
}
const PENDING_KEYS = new Set(["format", "pending"]);

/**
 * A target's record with its delta (core/deploy.ts DEPLOYED_DELTA), checked as one record: the
 * delta's classes and last change, its entries set and removed, applied to the record's; the result
 * is held to every rule a whole record is. `delta` undefined, or naming another record than
 * `recordSha256` (left by a deploy stopped while it rewrote the record whole): the record alone.
 * `base`: the record's own entries, as read (for the next delta).
 */
export async function parseDeployedWithDelta(
  record: string,
  recordSha256: string,
  delta: string | undefined,
): Promise<RecordResult<{ manifest: DeployedManifest; format: number; entries: Record<string, unknown>; pending: number; deltaApplied: boolean }> | { ok: false; problems: string[]; inDelta: true }> {
  const json = parseJson(record, [1, 2, 3]);
  if (!json.ok) return json;
  const base = json.data as Json;
  let data: unknown = base;
  let applied = false;
  if (delta !== undefined) {
    const d = parseJson(delta);
    if (!d.ok) return { ...d, inDelta: true };
    const shape = deltaProblem(d.data);
    if (shape) return { ok: false, problems: [shape], inDelta: true };
    const dd = d.data as { base: string; classes: Json; last?: Json; set: Record<string, unknown>; removed: string[] };
    if (dd.base === recordSha256 && isObject(base) && isObject(base["entries"])) {
      const entries: Record<string, unknown> = { ...(base["entries"] as Json) };
      for (const p of dd.removed) delete entries[p];
      let added = false;
      for (const p of Object.keys(dd.set)) {
        if (!Object.hasOwn(entries, p)) added = true;
        entries[p] = dd.set[p];
      }
      const sorted = added ? Object.fromEntries(Object.keys(entries).sort().map((p) => [p, entries[p]])) : entries;
      const { last: _last, ...rest } = base;
      data = { ...rest, classes: dd.classes, entries: sorted, ...(dd.last !== undefined ? { last: dd.last } : {}) };
      applied = true;
    }
  }
  const r = await checkDeployed(data);
  if (!r.ok) {
    // The record as it would be with the delta is wrong: the delta is to blame only if the record alone is right.
    if (!applied) return r;
    const alone = await checkDeployed(base);
    return alone.ok ? { ...r, inDelta: true } : alone;
  }
  const pending = Array.isArray(base["pending"]) ? base["pending"].length : 0;
  return { ok: true, value: { manifest: r.value, format: base["format"] as number, entries: isObject(base["entries"]) ? (base["entries"] as Json) : {}, pending, deltaApplied: applied } };
}

const DELTA_KEYS = new Set(["format", "base", "classes", "last", "set", "removed"]);

/** What is wrong with a delta's shape (its contents are checked in the record it makes), if anything. */
function deltaProblem(d: unknown): string | undefined {
  if (!isObject(d) || !hasOnly(d, DELTA_KEYS) || d["format"] !== 1) return 'expected { "format": 1, "base", "classes", "set", "removed" }';
  if (!isSha(d["base"])) return "base: expected the sha256 of the record it applies to";
  if (!isObject(d["classes"])) return "classes: expected the classes as the record holds them";
  if (!isObject(d["set"])) return "set: expected entries by path";
  const removed = d["removed"];
  if (!Array.isArray(removed) || !removed.every(isTreePath)) return "removed: expected a list of tree paths";
  return undefined;
}
