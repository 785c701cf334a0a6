// The records netbuild reads back, checked before anything trusts them: out/'s manifest
// (`.netbuild/manifest.json`) and a target's `.netbuild/deployed.json` (its entries, pending paths
// and generations). Either may have been edited by hand, damaged, or planted; a path in one is
// something netbuild would overwrite or delete. So each is parsed against a schema and every path
// in it against the tree-path rule (core/paths.ts); the first problems are reported by entry.
import { z } from "zod";
import { fieldPath, quoted } from "./excerpt.ts";
import { treePathProblem } from "./paths.ts";
import type { DeployedManifest } from "./deploy.ts";
import type { TreeManifest } from "./tree.ts";

const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 in hex");
const TreePath = z.string().superRefine((p, ctx) => {
  const problem = treePathProblem(p);
  if (problem) ctx.addIssue({ code: "custom", message: `the path ${problem}` });
});
const StoreFile = z.string().regex(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/]+(\/[^/]+)*$/, "expected a file in the Nix store").refine((p) => !p.split("/").includes(".."), "the path has a `..` part");
const Size = z.number().int().nonnegative();

const ManifestEntrySchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("file"), sha256: SHA256 }),
  z.strictObject({ kind: z.literal("artifact"), size: Size, sha256: SHA256 }),
  // The only links netbuild makes: by-mac/<mac> → ../by-host/<host>.
  z.strictObject({ kind: z.literal("symlink"), target: z.string().regex(/^\.\.\/by-host\/[^/\\\x00-\x1f]+$/, "expected a link to ../by-host/<host>").refine((t) => t !== "../by-host/.." && t !== "../by-host/.", "expected a link to ../by-host/<host>") }),
]);

/** What kind of entry netbuild writes at a tree path: artifacts in a class's store-hash folder, links only at by-mac/<mac>. */
function kindsAt(p: string): readonly string[] {
  const parts = p.split("/");
  if (parts[0] === "by-class" && parts.length === 4) return ["artifact"];
  if (parts[0] === "by-mac" && parts.length === 2) return ["symlink"];
  return ["file"];
}

/** Entries keyed by tree path: the key is checked as strictly as any path value, and against the kind recorded there. */
const Entries = z.record(z.string(), ManifestEntrySchema).superRefine((entries, ctx) => {
  for (const [key, entry] of Object.entries(entries)) {
    const problem = treePathProblem(key);
    if (problem) ctx.addIssue({ code: "custom", path: [key], message: `the path ${problem}` });
    else if (!kindsAt(key).includes(entry.kind)) ctx.addIssue({ code: "custom", path: [key], message: `netbuild never writes ${entry.kind === "artifact" ? "an artifact" : entry.kind === "symlink" ? "a link" : "a file"} there` });
  }
});

const BuiltFileSchema = z.strictObject({ path: TreePath, storeFile: StoreFile, size: Size });

// out/'s manifest also records, for each file, where it stood when netbuild wrote it: its size, its
// mtime in nanoseconds and its inode (decimal strings: both can exceed what a JSON number holds
// exactly). A build trusts a file unchanged while lstat still says the same (adapters/local-tree.ts).
const STAMP_NUMBER = /^-?[0-9]{1,24}$/;
const StampNumber = z.string().regex(STAMP_NUMBER, "expected a whole number in decimal");
const TreeManifestEntrySchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("file"), sha256: SHA256, size: Size.optional(), mtimeNs: StampNumber.optional(), ino: StampNumber.optional() }),
  ManifestEntrySchema.options[1],
  ManifestEntrySchema.options[2],
]);

/** As Entries, for out/'s manifest (its files may carry where they stood). */
const TreeEntries = z.record(z.string(), TreeManifestEntrySchema).superRefine((entries, ctx) => {
  for (const [key, entry] of Object.entries(entries)) {
    const problem = treePathProblem(key);
    if (problem) ctx.addIssue({ code: "custom", path: [key], message: `the path ${problem}` });
    else if (!kindsAt(key).includes(entry.kind)) ctx.addIssue({ code: "custom", path: [key], message: `netbuild never writes ${entry.kind === "artifact" ? "an artifact" : entry.kind === "symlink" ? "a link" : "a file"} there` });
  }
});

export const TreeManifestSchema = z.strictObject({
  format: z.literal(1),
  classes: z.record(
    z.string(),
    z.strictObject({
      kind: z.enum(["nixos", "prebuilt", "talos"]),
      kernel: BuiltFileSchema,
      initrd: BuiltFileSchema,
      kernelParams: z.array(z.string()),
      previous: z.strictObject({ kernel: TreePath, initrd: TreePath }).optional(),
      kernelSha256: SHA256,
      initrdSha256: SHA256,
    }),
  ),
  entries: TreeEntries,
  pending: z.array(TreePath).optional(),
});

// Who deployed: written by netbuild on some machine, read on another; printed by status, so held to
// a spelling that cannot carry control characters or pass for something else.
const OriginShape = {
  at: z
    .string()
    .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "expected a UTC time like 2026-11-29T22:41:18Z")
    .refine((t) => !Number.isNaN(Date.parse(t)) && new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z") === t, "expected a real UTC time like 2026-11-29T22:41:18Z"),
  by: z.string().regex(/^[A-Za-z0-9._@?-]{1,128}$/, "expected user@machine"),
  commit: z.string().regex(/^([0-9a-f]{7,40}(-dirty)?|unknown)$/, "expected a git commit").optional(),
};

const GenerationSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{12}$/, "expected a 12-hex-digit generation id"),
  kernel: TreePath,
  initrd: TreePath,
  script: z.string(),
  sha256: SHA256,
  deployed: z.strictObject(OriginShape).optional(),
});

// Format 2 (netbuild 0.2) adds who deployed (generations' `deployed`, `last`); format 1 is read as is.
// A netbuild that knows only format 1 then says the record is newer than it, not that it is damaged.
const DeployedManifestSchema = z.strictObject({
  format: z.union([z.literal(1), z.literal(2)]),
  classes: z.record(
    z.string(),
    z.strictObject({
      current: z.string(),
      generations: z.array(GenerationSchema),
      rolledBackFrom: z.array(z.string()).optional(),
    }),
  ),
  entries: Entries,
  pending: z.array(TreePath).optional(),
  last: z.strictObject({ command: z.enum(["deploy", "rollback"]), ...OriginShape }).optional(),
});

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

/** Where in the record, as `entries["../../x"]` or `classes.demo.generations[1].kernel`, through excerpt.ts (never a whole value, never a control character). */
function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const where = i.path.reduce<string>((at, k) => (typeof k === "number" ? `${at}[${k}]` : fieldPath(at, String(k))), "");
    return `${where || "(the whole file)"}: ${i.message}`;
  });
}

export type RecordResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

function parseJson(text: string, formats: readonly number[] = [1]): { ok: true; data: unknown } | { ok: false; problems: string[] } {
  let data: unknown;
  try {
    data = JSON.parse(text) as unknown;
  } catch {
    return { ok: false, problems: ["it is not valid JSON"] };
  }
  const format = (data as { format?: unknown } | null)?.format;
  if (typeof format === "number" && !formats.includes(format)) return { ok: false, problems: [`it has format ${format}, which this netbuild does not know (use the netbuild version that wrote it)`] };
  return { ok: true, data };
}

/**
 * out/'s manifest, checked as TreeManifestSchema says. A 10,000-host manifest holds 30,000 entries,
 * which zod checks in about 0.3 s; the hand-written isTreeManifest below accepts exactly what the
 * schema accepts (test/core/records.test.ts compares the two on thousands of damaged manifests) in
 * a fraction of that. Only a manifest it refuses goes through zod, which says what is wrong, so the
 * messages are the schema's. `schemaOnly`: zod alone (the tests' reference).
 */
export function parseTreeManifest(text: string, options: { schemaOnly?: boolean } = {}): RecordResult<TreeManifest> {
  const json = parseJson(text);
  if (!json.ok) return json;
  let value: TreeManifest;
  if (!options.schemaOnly && isTreeManifest(json.data)) value = json.data;
  else {
    const r = TreeManifestSchema.safeParse(json.data);
    if (!r.success) return { ok: false, problems: formatIssues(r.error.issues) };
    value = r.data as TreeManifest;
  }
  const problems = classPathsProblems(Object.fromEntries(Object.entries(value.classes).map(([n, c]) => [n, { paths: [c.kernel.path, c.initrd.path, ...(c.previous ? [c.previous.kernel, c.previous.initrd] : [])] }])));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value };
}

// TreeManifestSchema's checks by hand, with the same patterns: yes or no, no messages.
const SHA256_HEX = /^[0-9a-f]{64}$/;
const STORE_FILE = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/]+(\/[^/]+)*$/;
const HOST_LINK = /^\.\.\/by-host\/[^/\\\x00-\x1f]+$/;
const TOP_KEYS = new Set(["format", "classes", "entries", "pending"]);
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

function isTreeEntry(key: string, e: unknown): boolean {
  if (!isObject(e)) return false;
  const kind = e["kind"];
  if (kind === "file") {
    if (!hasOnly(e, FILE_KEYS) || !isSha(e["sha256"]) || !optional(e, "size", isSize) || !optional(e, "mtimeNs", isStampNumber) || !optional(e, "ino", isStampNumber)) return false;
  } else if (kind === "artifact") {
    if (!hasOnly(e, ARTIFACT_KEYS) || !isSize(e["size"]) || !isSha(e["sha256"])) return false;
  } else if (kind === "symlink") {
    const t = e["target"];
    if (!hasOnly(e, LINK_KEYS) || typeof t !== "string" || !HOST_LINK.test(t) || t === "../by-host/.." || t === "../by-host/.") return false;
  } else return false;
  return isTreePath(key) && kindsAt(key).includes(kind);
}

/** Whether TreeManifestSchema accepts `data` (classPathsProblems aside). */
export function isTreeManifest(data: unknown): data is TreeManifest {
  if (!isObject(data) || !hasOnly(data, TOP_KEYS) || data["format"] !== 1) return false;
  const { classes, entries } = data;
  if (!isObject(classes) || !isObject(entries)) return false;
  if (!optional(data, "pending", (p) => Array.isArray(p) && p.every(isTreePath))) return false;
  // A class named __proto__ is left to the schema, whose records pass over that key (so do entries: not a tree path).
  for (const name of Object.keys(classes)) if (name === "__proto__" || !isTreeClass(classes[name])) return false;
  for (const key of Object.keys(entries)) if (!isTreeEntry(key, entries[key])) return false;
  return true;
}

export function parseDeployedManifest(text: string): RecordResult<DeployedManifest> {
  const json = parseJson(text, [1, 2]);
  if (!json.ok) return json;
  const r = DeployedManifestSchema.safeParse(json.data);
  if (!r.success) return { ok: false, problems: formatIssues(r.error.issues) };
  const problems = classPathsProblems(Object.fromEntries(Object.entries(r.data.classes).map(([n, c]) => [n, { paths: c.generations.flatMap((g) => [g.kernel, g.initrd]) }])));
  if (problems.length > 0) return { ok: false, problems };
  const classes = Object.fromEntries(Object.entries(r.data.classes).map(([n, c]) => [n, c.rolledBackFrom === undefined ? { current: c.current, generations: c.generations } : c]));
  return { ok: true, value: { format: 2, classes, entries: r.data.entries, pending: r.data.pending ?? [], ...(r.data.last ? { last: r.data.last } : {}) } as DeployedManifest };
}
