// What every part of the inventory loader shares: the collector of issues, a class and a host as
// read (before the rules that check them), and the small rules that classes and hosts both apply.
import path from "node:path";
import type { Issue } from "../errors.ts";
import { paramKey, parseKernelParam, parsePublicKey, reservedParam, type ClassName, type HostName, type KernelParam, type PublicKey } from "./names.ts";
import type { z } from "zod";
import type { ClassInput, HostInput } from "./schema.ts";
import { YamlDoc, zodIssues, type Path } from "./yaml-doc.ts";
import { quoted } from "./excerpt.ts";
import type { InventoryFile, OnParsed, Probe } from "./inventory-source.ts";
import type { Host } from "./hosts.ts";

/** Where a host is: what the rules across hosts name. */
export interface HostPlace {
  doc: YamlDoc;
  /** Data path of the host's mapping inside its file. */
  at: Path;
  label: string;
  /** Undefined when the key or file name is not a valid hostname (reported): the host is still checked, but left out of the rules across hosts. */
  name: HostName | undefined;
}

/** A host as read, before its rules and the rules across hosts. */
export interface RawHost extends HostPlace {
  input: HostInput;
  /** Its text's key and value (inventory-memo.ts), when it is remembered once checked without an issue. */
  unit?: { key: string; data?: unknown; json?: string | undefined; values?: number } | undefined;
}

/** A host an earlier run read from this very text and checked, with nothing it depended on changed since (inventory-memo.ts). */
export interface RecalledHost extends HostPlace {
  name: HostName;
  host: Host;
}

/** A class as read, before its rules. */
export interface RawClass {
  doc: YamlDoc;
  name: ClassName;
  input: ClassInput;
}

/** What every kind of class has. */
export interface ClassBase {
  name: ClassName;
  file: string;
  description: string | undefined;
  kernelParams: KernelParam[];
}

export class Collector {
  /** Every issue, in the order found. Only ever added to (see `errors`). */
  readonly issues: Issue[] = [];
  /** The errors among the first `scanned` issues. */
  private readonly errorList: Issue[] = [];
  private scanned = 0;
  /** Values whose error is reported and which the rules must not read (see refuse()), by file and data path. */
  private readonly refused = new Set<string>();
  constructor(readonly onParsed?: OnParsed) {}
  /**
   * Marks the value at `at` in `file` as reported and left out (a default or a stand-in took its
   * place), so that rules which would read it stay silent instead of reporting what follows from
   * it: a host whose `mac` has the wrong type is not also "without a MAC".
   */
  refuse(file: string, at: Path): void {
    this.refused.add(refusedKey(file, at));
  }
  /** Whether the value at `at`, or one it lies in, was refused. */
  isRefused(file: string, at: Path): boolean {
    if (this.refused.size === 0) return false;
    for (let n = 0; n <= at.length; n++) if (this.refused.has(refusedKey(file, at.slice(0, n)))) return true;
    return false;
  }
  error(doc: YamlDoc, at: Path, field: string, message: string, hint?: string): void {
    this.issues.push({ severity: "error", where: doc.where(at, field), message, ...(hint ? { hint } : {}) });
  }
  warn(doc: YamlDoc, at: Path, field: string, message: string, hint?: string): void {
    this.issues.push({ severity: "warning", where: doc.where(at, field), message, ...(hint ? { hint } : {}) });
  }
  /** The errors among `issues`, kept up to date as issues are added (never removed), so reading it costs only what was added since the last read: hostOf and classOf read it for every host and class. */
  get errors(): readonly Issue[] {
    for (; this.scanned < this.issues.length; this.scanned++) {
      const issue = this.issues[this.scanned]!;
      if (issue.severity === "error") this.errorList.push(issue);
    }
    return this.errorList;
  }
}

export function docOf(file: InventoryFile, c: Collector): YamlDoc {
  const doc = new YamlDoc(file.path, file.text, file.known);
  if (!file.known && doc.clean) c.onParsed?.(file, doc.data);
  return doc;
}

function refusedKey(file: string, at: Path): string {
  return [file, ...at.map(String)].join("\u0000");
}

/**
 * `data` (the value at `at` in `doc`) checked against `schema`, every issue reported. What zod
 * refuses does not stop the rules that come after it: unknown keys are left out, each top-level
 * field with an error is dropped (and refused, see Collector.refuse) or replaced by its stand-in,
 * and the rest is checked again. So one misspelt key does not hide a bad MAC next to it, like a
 * compiler that reports every error of a run. Undefined when even the rest does not validate
 * (the value is not a mapping at all, or a required field without a stand-in is wrong).
 */
export function validated<T>(schema: z.ZodType<T>, doc: YamlDoc, data: unknown, at: Path, label: string, c: Collector, standIns: Record<string, unknown> = {}): T | undefined {
  const first = schema.safeParse(data);
  if (first.success) return first.data;
  c.issues.push(...zodIssues(doc, first.error, at, label));
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  let rest = data as Record<string, unknown>;
  const dropped = new Set<string>();
  for (const issue of first.error.issues) {
    const p = issue.path as (string | number)[];
    if (issue.code === "unrecognized_keys") for (const key of issue.keys) rest = without(rest, [...p, key]) as Record<string, unknown>;
    // A record's key its own check refuses (a Talos volume's name): that entry goes, the rest stays.
    else if (issue.code === "invalid_key") rest = without(rest, p) as Record<string, unknown>;
    else if (p.length === 0) return undefined;
    else dropped.add(String(p[0]));
  }
  for (const key of dropped) {
    rest = without(rest, [key]) as Record<string, unknown>;
    if (key in standIns) rest = { ...rest, [key]: standIns[key] };
    c.refuse(doc.file, [...at, key]);
  }
  const second = schema.safeParse(rest);
  return second.success ? second.data : undefined;
}

/** `value` without the entry at `path`, copied along the path only (the parsed data is shared with the cache, so it is never changed). */
function without(value: unknown, path: readonly (string | number)[]): unknown {
  if (path.length === 0 || value === null || typeof value !== "object") return value;
  const [key, ...more] = path as [string | number, ...(string | number)[]];
  if (!Object.hasOwn(value, key)) return value;
  if (Array.isArray(value)) return value.map((v, i) => (i === Number(key) ? without(v, more) : v));
  const copy = { ...(value as Record<string, unknown>) };
  if (more.length === 0) delete copy[key];
  else copy[key] = without(copy[key], more);
  return copy;
}

export function baseName(file: string): string {
  return path.posix.basename(file).replace(/\.ya?ml$/, "");
}

// ---------------------------------------------------------------------------------------------
// Rules. Each is small, named, and only adds issues.

/** Each entry of a `kernelParams` list, at its own index: undefined where the entry is invalid (reported). */
export function kernelParamsOf(doc: YamlDoc, at: Path, label: string, params: string[], c: Collector): (KernelParam | undefined)[] {
  return params.map((raw, i) => {
    const p = parseKernelParam(raw);
    if (!p.ok) c.error(doc, [...at, "kernelParams", i], `${label}.kernelParams[${i}]`, p.message, p.hint);
    return p.ok ? p.value : undefined;
  });
}

/** `ssh.authorizedKeys` at `at`, each key checked where it is written (never repeated in a message). */
export function authorizedKeysOf(doc: YamlDoc, at: Path, label: string, keys: readonly string[] | undefined, c: Collector): PublicKey[] {
  const out: PublicKey[] = [];
  (keys ?? []).forEach((raw, i) => {
    const k = parsePublicKey(raw);
    if (!k.ok) c.error(doc, [...at, "ssh", "authorizedKeys", i], `${label}.ssh.authorizedKeys[${i}]`, k.message, k.hint);
    else if (!out.includes(k.value)) out.push(k.value);
  });
  return out;
}

export function validParams(params: readonly (KernelParam | undefined)[]): KernelParam[] {
  return params.filter((p) => p !== undefined);
}

/**
 * The wipe flag, the hostname and talos.config= are netbuild's to set: from `provision:`, the
 * host's name and the site. `params` holds the list's entries at their own indexes (undefined
 * for one already reported), so that each error points at its entry.
 */
export function reservedParams(doc: YamlDoc, at: Path, label: string, params: readonly (KernelParam | undefined)[], site: { flagPrefix: string }, c: Collector, isClass: boolean, list = "kernelParams"): void {
  params.forEach((p, i) => {
    if (p === undefined) return;
    const reserved = reservedParam(paramKey(p), site.flagPrefix);
    const field = `${label}.${list}[${i}]`;
    if (reserved === "provision") {
      c.error(
        doc,
        [...at, list, i],
        field,
        `${quoted(p)} sets a provisioning flag by hand`,
        isClass ? "a class cannot wipe disks: set `provision: { disks: true }` on each host that must be wiped" : "use `provision: { disks: true }` on this host instead",
      );
    } else if (reserved === "talos.config") {
      c.error(doc, [...at, list, i], field, `${quoted(p)}: netbuild sets talos.config= for each Talos host`, "remove it; set `talos.configBaseUrl` in netbuild.yaml instead");
    } else if (reserved === "hostname") {
      c.error(doc, [...at, list, i], field, `${quoted(p)}: netbuild sets hostname= from the host's name`, "remove it; rename the host instead");
    }
  });
}

export function resolveRef(classFile: string, ref: string): string | null {
  if (ref.startsWith("/")) return null;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(classFile), ref));
  return joined.startsWith("../") || joined === ".." ? null : joined;
}

/** A file a class names: inside the root, and there. */
export function referencedFile(doc: YamlDoc, at: Path, field: string, classFile: string, ref: string, want: "file" | "file-or-dir", probe: Probe, c: Collector): string | null {
  const rel = resolveRef(classFile, ref);
  if (rel === null) {
    c.error(doc, at, field, `${quoted(ref)} points outside the inventory root`, "keep referenced files inside the repository, relative to the class file");
    return null;
  }
  const kind = probe(rel);
  if (kind === "outside") {
    c.error(doc, at, field, `${quoted(ref)} resolves (through a symlink) outside the inventory root`, "copy the file into the repository");
    return null;
  }
  if (kind === "missing") {
    c.error(doc, at, field, `${quoted(ref)} does not exist (looked for ${quoted(rel)})`, "paths are relative to the class file");
    return null;
  }
  if (kind === "dir" && want === "file") {
    c.error(doc, at, field, `${quoted(ref)} is a folder, not a file`);
    return null;
  }
  if (kind === "special") {
    c.error(doc, at, field, `${quoted(ref)} is not a regular file (a FIFO, socket or device)`, "name a regular file (or a symlink to one inside the root)");
    return null;
  }
  return rel;
}
