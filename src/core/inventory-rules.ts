// What every part of the inventory loader shares: the collector of issues, a class and a host as
// read (before the rules that check them), and the small rules that classes and hosts both apply.
import path from "node:path";
import type { Issue } from "../errors.ts";
import { paramKey, parseKernelParam, reservedParam, type ClassName, type HostName, type KernelParam } from "./names.ts";
import type { ClassInput, HostInput } from "./schema.ts";
import { YamlDoc, type Path } from "./yaml-doc.ts";
import { quoted } from "./excerpt.ts";
import type { InventoryFile, OnParsed, Probe } from "./inventory-source.ts";

/** A host as read, before cross-file rules. */
export interface RawHost {
  doc: YamlDoc;
  /** Data path of the host's mapping inside its file. */
  at: Path;
  label: string;
  name: HostName;
  input: HostInput;
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
  readonly issues: Issue[] = [];
  constructor(readonly onParsed?: OnParsed) {}
  error(doc: YamlDoc, at: Path, field: string, message: string, hint?: string): void {
    this.issues.push({ severity: "error", where: doc.where(at, field), message, ...(hint ? { hint } : {}) });
  }
  warn(doc: YamlDoc, at: Path, field: string, message: string, hint?: string): void {
    this.issues.push({ severity: "warning", where: doc.where(at, field), message, ...(hint ? { hint } : {}) });
  }
  get errors(): Issue[] {
    return this.issues.filter((i) => i.severity === "error");
  }
}

export function docOf(file: InventoryFile, c: Collector): YamlDoc {
  const doc = new YamlDoc(file.path, file.text, file.known);
  if (!file.known && doc.clean) c.onParsed?.(file, doc.data);
  return doc;
}

export function baseName(file: string): string {
  return path.posix.basename(file).replace(/\.ya?ml$/, "");
}

// ---------------------------------------------------------------------------------------------
// Rules. Each is small, named, and only adds issues.

export function kernelParamsOf(doc: YamlDoc, at: Path, label: string, params: string[], c: Collector): KernelParam[] {
  const out: KernelParam[] = [];
  params.forEach((raw, i) => {
    const p = parseKernelParam(raw);
    if (p.ok) out.push(p.value);
    else c.error(doc, [...at, "kernelParams", i], `${label}.kernelParams[${i}]`, p.message, p.hint);
  });
  return out;
}

/** The wipe flag, the hostname and talos.config= are netbuild's to set: from `provision:`, the host's name and the site. */
export function reservedParams(doc: YamlDoc, at: Path, label: string, params: KernelParam[], site: { flagPrefix: string }, c: Collector, isClass: boolean, list = "kernelParams"): void {
  params.forEach((p, i) => {
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
