// Inventory loading as a staged pipeline: parse YAML (with positions) → zod → normalise → small
// named rules that add errors and warnings → a typed model. Everything after this trusts the model.
import path from "node:path";
import type { Issue } from "../errors.ts";
import {
  parseClassName,
  parseHostName,
  parseKernelParam,
  parseMac,
  macColons,
  paramKey,
  reservedParam,
  type ClassName,
  type HostName,
  type KernelParam,
  type Mac,
} from "./names.ts";
import { ClassSchema, HostSchema, HostsFileSchema, SiteSchema, type ArtifactInput, type ClassInput, type HostInput, type SchematicInput, type SiteInput, type TalosVolumeInput } from "./schema.ts";
import { canonicalSchematic } from "./talos-schematic.ts";
import { YamlDoc, zodIssues, type Path } from "./yaml-doc.ts";
import { parseTarget, type Target } from "./target.ts";

// ---------------------------------------------------------------------------------------------
// What the loader reads (given by an adapter, so this module does no I/O)

export interface InventoryFile {
  /** Relative to the inventory root, with `/` separators. */
  path: string;
  text: string;
  /** The data of this exact text, from an earlier clean parse (a cache): positions are then worked out only if a message needs them. */
  known?: { data: unknown } | undefined;
}

/** Told the data of each file parsed cleanly and not already known (to fill a cache). */
export type OnParsed = (file: InventoryFile, data: unknown) => void;

function docOf(file: InventoryFile, c: Collector): YamlDoc {
  const doc = new YamlDoc(file.path, file.text, file.known);
  if (!file.known && doc.clean) c.onParsed?.(file, doc.data);
  return doc;
}

/** What a referenced file is; `outside` when it (or a symlink on the way) leaves the root. */
export type Probe = (relPath: string) => "file" | "dir" | "missing" | "outside";

export interface InventorySource {
  site: InventoryFile | undefined;
  classes: InventoryFile[];
  hosts: InventoryFile[];
  probe: Probe;
  onParsed?: OnParsed | undefined;
}

// ---------------------------------------------------------------------------------------------
// The model

export const SITE_FILE = "netbuild.yaml";

export interface Site {
  file: string | undefined;
  flagPrefix: string;
  links: "symlink" | "copy";
  /** The class unknown machines boot; null = strict (they boot nothing). */
  unknownClass: ClassName | null;
  out: string;
  talosFactory: string;
  /** Where machines fetch the tree over HTTP(S), without a trailing slash (Talos hosts' talos.config= starts with it). */
  talosConfigBaseUrl: string | undefined;
  /** Base machine configs by role (paths relative to the root), from `talosctl gen config`. */
  talosBaseConfigs: Partial<Record<TalosRole, string>>;
  /** Deploy targets by name, sorted. */
  targets: Target[];
  /** Class generations a target keeps unless it says otherwise. */
  keep: number;
}

/** A kernel or initrd: a file in the inventory, or a URL pinned by hash. */
export type Artifact = { from: "path"; path: string } | { from: "url"; url: string; hash: string };

interface ClassBase {
  name: ClassName;
  file: string;
  description: string | undefined;
  kernelParams: KernelParam[];
}
export interface NixosClass extends ClassBase {
  kind: "nixos";
  /** Module files, relative to the inventory root. */
  modules: string[];
  system: "x86_64-linux" | "aarch64-linux";
}
export interface PrebuiltClass extends ClassBase {
  kind: "prebuilt";
  kernel: Artifact;
  initrd: Artifact;
}
export type TalosRole = "controlplane" | "worker";
export const TALOS_ARTIFACTS = ["kernel", "initramfs", "cmdline"] as const;
export type TalosArtifact = (typeof TALOS_ARTIFACTS)[number];

/** Machine-config settings (a class's defaults, or a host's own merged over them). */
export interface TalosMachine {
  role: TalosRole | undefined;
  installDisk: string | undefined;
  volumes: Record<string, TalosVolumeInput>;
  /** Patch files, relative to the root, in the order they apply. */
  patches: string[];
}

export interface TalosClass extends ClassBase {
  kind: "talos";
  version: string;
  arch: "amd64" | "arm64";
  platform: string;
  schematic: SchematicInput;
  /** Computed from the schematic, exactly as the Image Factory does. */
  schematicId: string;
  /** The canonical schematic (what the ID hashes; what `POST /schematics` takes). */
  schematicYaml: string;
  /** The pinned hashes; the class builds only when all three are set. */
  hashes: Partial<Record<TalosArtifact, string>>;
  machine: TalosMachine;
}

/** The factory URL of one of a Talos class's artifacts. */
export function talosArtifactUrl(factory: string, def: Pick<TalosClass, "schematicId" | "version" | "arch" | "platform">, what: TalosArtifact): string {
  const file = what === "kernel" ? `kernel-${def.arch}` : what === "initramfs" ? `initramfs-${def.arch}.xz` : `cmdline-${def.platform}-${def.arch}`;
  return `${factory}/image/${def.schematicId}/${def.version}/${file}`;
}

export function unpinnedArtifacts(def: TalosClass): TalosArtifact[] {
  return TALOS_ARTIFACTS.filter((a) => def.hashes[a] === undefined);
}
export type ClassDef = NixosClass | PrebuiltClass | TalosClass;

export interface Host {
  name: HostName;
  file: string;
  className: ClassName;
  macs: Mac[];
  ip: string | undefined;
  ramBytes: number | undefined;
  /** Set only on the host itself, never inherited: the next boot formats its disks. */
  provisionDisks: boolean;
  kernelParams: KernelParam[];
  description: string | undefined;
  /** For a host of a Talos class: its machine config settings, and where it fetches the config. */
  talos: TalosHost | undefined;
}

export interface TalosHost extends TalosMachine {
  role: TalosRole;
  /** talos.config= for this host: <configBaseUrl>/by-host/<host>/talos.yaml */
  configUrl: KernelParam;
  network: { address: string; gateway: string | undefined; nameservers: string[]; mac: Mac } | undefined;
}

export interface Inventory {
  site: Site;
  /** Sorted by name. */
  classes: ClassDef[];
  /** Sorted by name. */
  hosts: Host[];
  warnings: Issue[];
}

export type LoadResult = { ok: true; inventory: Inventory } | { ok: false; issues: Issue[] };

// ---------------------------------------------------------------------------------------------
// Stage 1–3: parse, validate shape, normalise

/** A host as read, before cross-file rules. */
interface RawHost {
  doc: YamlDoc;
  /** Data path of the host's mapping inside its file. */
  at: Path;
  label: string;
  name: HostName;
  input: HostInput;
}

interface RawClass {
  doc: YamlDoc;
  name: ClassName;
  input: ClassInput;
}

class Collector {
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

function baseName(file: string): string {
  return path.posix.basename(file).replace(/\.ya?ml$/, "");
}

function targetsOf(doc: YamlDoc, input: SiteInput, c: Collector): Target[] {
  const targets: Target[] = [];
  for (const [name, value] of Object.entries(input.targets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = typeof value === "string" ? value : value.url;
    const at = typeof value === "string" ? ["targets", name] : ["targets", name, "url"];
    const parsed = parseTarget(spec);
    if (!parsed.ok) {
      c.error(doc, at, `site.targets.${name}`, parsed.message, parsed.hint);
      continue;
    }
    targets.push({ name, location: parsed.value, keep: (typeof value === "string" ? undefined : value.keep) ?? input.keep, spec });
  }
  return targets;
}

function parseSite(file: InventoryFile | undefined, c: Collector): Site {
  const defaults = SiteSchema.parse({});
  let input = defaults;
  if (file) {
    const doc = docOf(file, c);
    c.issues.push(...doc.syntaxIssues);
    if (doc.syntaxIssues.length === 0) {
      const parsed = SiteSchema.safeParse(doc.data ?? {});
      if (parsed.success) input = parsed.data;
      else c.issues.push(...zodIssues(doc, parsed.error, [], "site"));
    }
    if (input.out.startsWith("/") || path.posix.normalize(input.out).startsWith("..")) {
      c.error(doc, ["out"], "site.out", `${JSON.stringify(input.out)} leaves the inventory root`, "give a folder inside the root, or pass --out");
    }
  }
  const unknown = input.unknownMachines;
  let unknownClass: ClassName | null = null;
  if (unknown !== "strict") {
    const parsed = parseClassName(unknown.class);
    if (parsed.ok) unknownClass = parsed.value;
  }
  const baseConfigs: Partial<Record<TalosRole, string>> = {};
  for (const role of ["controlplane", "worker"] as const) {
    const ref = input.talos.baseConfigs?.[role];
    if (ref === undefined || !file) continue;
    const rel = resolveRef(SITE_FILE, ref);
    if (rel === null) c.error(docOf(file, c), ["talos", "baseConfigs", role], `site.talos.baseConfigs.${role}`, `${JSON.stringify(ref)} points outside the inventory root`, "keep base configs inside the root (and out of git: add them to .gitignore, or encrypt them)");
    else baseConfigs[role] = rel;
  }
  let talosConfigBaseUrl: string | undefined;
  if (input.talos.configBaseUrl !== undefined && file) {
    const url = input.talos.configBaseUrl.replace(/\/+$/, "");
    const probe = parseKernelParam(`talos.config=${url}/by-host/x/talos.yaml`);
    if (!probe.ok || /[?#]/.test(url)) {
      c.error(docOf(file, c), ["talos", "configBaseUrl"], "site.talos.configBaseUrl", probe.ok ? "the URL has a query or fragment" : `the URL cannot go on a kernel command line: ${probe.message}`, "give the plain base URL the boot server serves this tree at, e.g. https://boot.example/nixos");
    } else talosConfigBaseUrl = url;
  }
  return {
    file: file?.path,
    flagPrefix: input.flagPrefix,
    links: input.links,
    unknownClass,
    out: input.out,
    talosFactory: input.talos.factory.replace(/\/+$/, ""),
    talosConfigBaseUrl,
    talosBaseConfigs: baseConfigs,
    targets: file ? targetsOf(docOf(file, c), input, c) : [],
    keep: input.keep,
  };
}

function readClasses(files: InventoryFile[], c: Collector): RawClass[] {
  const out: RawClass[] = [];
  for (const file of files) {
    const doc = docOf(file, c);
    c.issues.push(...doc.syntaxIssues);
    const rawName = baseName(file.path);
    const name = parseClassName(rawName);
    if (!name.ok) {
      c.error(doc, [], `classes.${rawName}`, `the class file name ${JSON.stringify(path.posix.basename(file.path))} does not give a valid class name`, name.hint);
      continue;
    }
    if (doc.syntaxIssues.length > 0) continue;
    if (doc.data && typeof doc.data === "object" && "provision" in doc.data) {
      // A class is shared by many machines: a wipe flag there would wipe all of them.
      c.error(doc, ["provision"], `classes.${rawName}.provision`, "provisioning flags cannot be set on a class", "set `provision: { disks: true }` on each host that must be wiped, in hosts/");
      continue;
    }
    const parsed = ClassSchema.safeParse(doc.data ?? {});
    if (!parsed.success) {
      c.issues.push(...zodIssues(doc, parsed.error, [], `classes.${name.value}`));
      continue;
    }
    out.push({ doc, name: name.value, input: parsed.data });
  }
  return out;
}

const SAFE_FILE = /^[A-Za-z0-9._\/-]+$/;

function readHosts(files: InventoryFile[], c: Collector): RawHost[] {
  const out: RawHost[] = [];
  for (const file of files) {
    const doc = docOf(file, c);
    // The file's path is written into the host's iPXE script (as a comment): nothing that could end it.
    if (!SAFE_FILE.test(file.path)) {
      c.error(doc, [], "hosts", `the file name ${JSON.stringify(file.path)} has characters netbuild will not write into boot scripts`, "use letters, digits, '.', '_', '-' and '/' in file names under hosts/");
      continue;
    }
    c.issues.push(...doc.syntaxIssues);
    if (doc.syntaxIssues.length > 0) continue;
    const data = doc.data;
    if (data && typeof data === "object" && !Array.isArray(data) && "hosts" in data) {
      // Many hosts, keyed by name. Each host is validated once, on its own.
      const top = HostsFileSchema.safeParse(data);
      if (!top.success) {
        c.issues.push(...zodIssues(doc, top.error, [], ""));
        continue;
      }
      for (const [key, value] of Object.entries(top.data.hosts)) {
        const label = `hosts.${key}`;
        const name = parseHostName(key);
        if (!name.ok) {
          c.issues.push({ severity: "error", where: doc.whereKey(["hosts"], key, label), message: name.message, ...(name.hint ? { hint: name.hint } : {}) });
          continue;
        }
        const host = HostSchema.safeParse(value);
        if (!host.success) {
          c.issues.push(...zodIssues(doc, host.error, ["hosts", key], label));
          continue;
        }
        out.push({ doc, at: ["hosts", key], label, name: name.value, input: host.data });
      }
    } else {
      // One host, named by the file.
      const key = baseName(file.path);
      const name = parseHostName(key);
      if (!name.ok) {
        c.error(doc, [], `hosts.${key}`, `the host file name: ${name.message}`, name.hint ? `${name.hint}; a file holding one host is named <hostname>.yaml` : undefined);
        continue;
      }
      const host = HostSchema.safeParse(data ?? {});
      if (!host.success) {
        c.issues.push(...zodIssues(doc, host.error, [], `hosts.${key}`));
        continue;
      }
      out.push({ doc, at: [], label: `hosts.${key}`, name: name.value, input: host.data });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Stage 4: rules. Each is small, named, and only adds issues.

function kernelParamsOf(doc: YamlDoc, at: Path, label: string, params: string[], c: Collector): KernelParam[] {
  const out: KernelParam[] = [];
  params.forEach((raw, i) => {
    const p = parseKernelParam(raw);
    if (p.ok) out.push(p.value);
    else c.error(doc, [...at, "kernelParams", i], `${label}.kernelParams[${i}]`, p.message, p.hint);
  });
  return out;
}

/** The wipe flag, the hostname and talos.config= are netbuild's to set: from `provision:`, the host's name and the site. */
function reservedParams(doc: YamlDoc, at: Path, label: string, params: KernelParam[], site: Site, c: Collector, isClass: boolean, list = "kernelParams"): void {
  params.forEach((p, i) => {
    const reserved = reservedParam(paramKey(p), site.flagPrefix);
    const field = `${label}.${list}[${i}]`;
    if (reserved === "provision") {
      c.error(
        doc,
        [...at, list, i],
        field,
        `${JSON.stringify(p)} sets a provisioning flag by hand`,
        isClass ? "a class cannot wipe disks: set `provision: { disks: true }` on each host that must be wiped" : "use `provision: { disks: true }` on this host instead",
      );
    } else if (reserved === "talos.config") {
      c.error(doc, [...at, list, i], field, `${JSON.stringify(p)}: netbuild sets talos.config= for each Talos host`, "remove it; set `talos.configBaseUrl` in netbuild.yaml instead");
    } else if (reserved === "hostname") {
      c.error(doc, [...at, list, i], field, `${JSON.stringify(p)}: netbuild sets hostname= from the host's name`, "remove it; rename the host instead");
    }
  });
}

function resolveRef(classFile: string, ref: string): string | null {
  if (ref.startsWith("/")) return null;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(classFile), ref));
  return joined.startsWith("../") || joined === ".." ? null : joined;
}

/** A file a class names: inside the root, and there. */
function referencedFile(doc: YamlDoc, at: Path, field: string, classFile: string, ref: string, want: "file" | "file-or-dir", probe: Probe, c: Collector): string | null {
  const rel = resolveRef(classFile, ref);
  if (rel === null) {
    c.error(doc, at, field, `${JSON.stringify(ref)} points outside the inventory root`, "keep referenced files inside the repository, relative to the class file");
    return null;
  }
  const kind = probe(rel);
  if (kind === "outside") {
    c.error(doc, at, field, `${JSON.stringify(ref)} resolves (through a symlink) outside the inventory root`, "copy the file into the repository");
    return null;
  }
  if (kind === "missing") {
    c.error(doc, at, field, `${JSON.stringify(ref)} does not exist (looked for ${rel})`, "paths are relative to the class file");
    return null;
  }
  if (kind === "dir" && want === "file") {
    c.error(doc, at, field, `${JSON.stringify(ref)} is a folder, not a file`);
    return null;
  }
  return rel;
}

function artifactOf(raw: RawClass, key: "kernel" | "initrd", a: ArtifactInput, probe: Probe, c: Collector): Artifact | null {
  const field = `classes.${raw.name}.${key}`;
  if ((a.path === undefined) === (a.url === undefined)) {
    c.error(raw.doc, [key], field, "give exactly one of `path` or `url`", "{ path: ./file } for a file next to the class, { url: ..., hash: sha256-... } for a download");
    return null;
  }
  if (a.path !== undefined) {
    if (a.hash !== undefined) {
      c.error(raw.doc, [key, "hash"], `${field}.hash`, "`hash` goes with `url`; a local file is hashed by Nix itself", "remove `hash`");
      return null;
    }
    const rel = referencedFile(raw.doc, [key, "path"], `${field}.path`, raw.doc.file, a.path, "file", probe, c);
    return rel === null ? null : { from: "path", path: rel };
  }
  if (a.hash === undefined) {
    c.error(raw.doc, [key, "url"], `${field}.url`, "a URL without a pinned hash", "add `hash: sha256-...` (the file's SRI sha256, e.g. from `nix-prefetch-url URL` then `nix hash to-sri`)");
    return null;
  }
  return { from: "url", url: a.url!, hash: a.hash };
}

function classOf(raw: RawClass, site: Site, probe: Probe, c: Collector): ClassDef | null {
  const label = `classes.${raw.name}`;
  const before = c.errors.length;
  const kernelParams = kernelParamsOf(raw.doc, [], label, raw.input.kernelParams, c);
  reservedParams(raw.doc, [], label, kernelParams, site, c, true);
  const base = { name: raw.name, file: raw.doc.file, description: raw.input.description, kernelParams };
  const input = raw.input;
  let def: ClassDef | null = null;
  if (input.kind === "nixos") {
    const modules: string[] = [];
    input.modules.forEach((m, i) => {
      const rel = referencedFile(raw.doc, ["modules", i], `${label}.modules[${i}]`, raw.doc.file, m, "file-or-dir", probe, c);
      if (rel !== null) modules.push(rel);
    });
    def = { ...base, kind: "nixos", modules, system: input.system };
  } else if (input.kind === "prebuilt") {
    const kernel = artifactOf(raw, "kernel", input.kernel, probe, c);
    const initrd = artifactOf(raw, "initrd", input.initrd, probe, c);
    if (kernel && initrd) def = { ...base, kind: "prebuilt", kernel, initrd };
  } else {
    def = talosClassOf(raw, base, site, probe, c);
  }
  return c.errors.length === before ? def : null;
}

/** Patch files a class or host names: inside the root, and there. */
function patchFiles(doc: YamlDoc, at: Path, label: string, refs: readonly string[] | undefined, probe: Probe, c: Collector): string[] {
  const out: string[] = [];
  (refs ?? []).forEach((ref, i) => {
    const rel = referencedFile(doc, [...at, "patches", i], `${label}.patches[${i}]`, doc.file, ref, "file", probe, c);
    if (rel !== null) out.push(rel);
  });
  return out;
}

function checkVolumes(doc: YamlDoc, at: Path, label: string, volumes: Record<string, TalosVolumeInput> | undefined, c: Collector): void {
  for (const [name, v] of Object.entries(volumes ?? {})) {
    if (v.minSize !== undefined && v.maxSize !== undefined && !v.maxSize.endsWith("%") && talosBytes(v.minSize) > talosBytes(v.maxSize)) {
      c.error(doc, [...at, "volumes", name, "minSize"], `${label}.volumes.${name}.minSize`, `minSize ${v.minSize} is larger than maxSize ${v.maxSize}`, "Talos could not provision the volume; lower minSize or raise maxSize");
    }
  }
}

function talosClassOf(raw: RawClass, base: ClassBase, site: Site, probe: Probe, c: Collector): TalosClass | null {
  if (raw.input.kind !== "talos") return null;
  const t = raw.input.talos;
  const label = `classes.${raw.name}.talos`;
  const canonical = canonicalSchematic(t.schematic);
  if (!canonical.ok) {
    c.error(raw.doc, ["talos", "schematic"], `${label}.schematic`, `netbuild cannot compute this schematic's ID exactly: ${canonical.message}`, "change the value, or use the factory's web page for this schematic");
    return null;
  }
  const { id, yaml } = canonical.value;
  // These reach every host's command line ahead of netbuild's own parameters (and Talos reads the
  // first talos.config=): the same reserved names as kernelParams, removals (`-arg`) included.
  const args: KernelParam[] = [];
  (t.schematic.customization?.extraKernelArgs ?? []).forEach((arg, i) => {
    const p = parseKernelParam(arg.startsWith("-") ? arg.slice(1) || "-" : arg);
    if (!p.ok) c.error(raw.doc, ["talos", "schematic", "customization", "extraKernelArgs", i], `${label}.schematic.customization.extraKernelArgs[${i}]`, p.message, p.hint);
    args.push((p.ok ? arg : "-") as KernelParam);
  });
  reservedParams(raw.doc, ["talos", "schematic", "customization"], `${label}.schematic.customization`, args, site, c, true, "extraKernelArgs");
  if (t.schematicId !== undefined && t.schematicId !== id) {
    c.error(raw.doc, ["talos", "schematicId"], `${label}.schematicId`, `the schematic's ID is ${id}, not ${t.schematicId}`, "netbuild computes the ID from `schematic` as the Image Factory does: remove schematicId, or set it to the computed ID if the schematic is what you meant (run `netbuild talos schematic` to see it)");
  }
  const m = t.machine;
  checkVolumes(raw.doc, ["talos", "machine"], `${label}.machine`, m?.volumes, c);
  const def: TalosClass = {
    ...base,
    kind: "talos",
    version: t.version,
    arch: t.arch,
    platform: t.platform,
    schematic: t.schematic,
    schematicId: id,
    schematicYaml: yaml,
    hashes: { ...t.hashes },
    machine: { role: m?.role, installDisk: m?.installDisk, volumes: { ...m?.volumes }, patches: patchFiles(raw.doc, ["talos", "machine"], `${label}.machine`, m?.patches, probe, c) },
  };
  const missing = unpinnedArtifacts(def);
  if (missing.length > 0) {
    c.warn(
      raw.doc,
      ["talos"],
      `${label}.hashes`,
      `not pinned (${missing.join(", ")}): this class cannot be built until ${missing.length === 1 ? "its hash is" : "these hashes are"} set`,
      `run \`netbuild pin --class ${raw.name}\` (it downloads ${missing.map((a) => talosArtifactUrl(site.talosFactory, def, a)).join(", ")} and writes the hashes into ${raw.doc.file})`,
    );
  }
  return def;
}

const TALOS_UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50 };

function talosBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(size)!;
  return Number(m[1]) * TALOS_UNITS[m[2]!]!;
}

const UNITS: Record<string, number> = { MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, MB: 1e6, GB: 1e9, TB: 1e12 };

function bytesOf(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(size)!;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const cand of candidates) {
    const d = editDistance(name, cand);
    if (d < bestScore) [best, bestScore] = [cand, d];
  }
  return bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function talosHostOf(raw: RawHost, cls: ClassDef | undefined, site: Site, macs: Mac[], probe: Probe, c: Collector): TalosHost | undefined {
  const { doc, at, label, input } = raw;
  const t = input.talos;
  if (cls?.kind !== "talos") {
    if (t !== undefined && cls !== undefined) c.error(doc, [...at, "talos"], `${label}.talos`, `talos settings on a host of class ${cls.name}, which is not a Talos class`, "remove them, or move the host to a Talos class");
    return undefined;
  }
  const role = t?.role ?? cls.machine.role;
  if (role === undefined) {
    c.error(doc, t ? [...at, "talos"] : at, `${label}.talos.role`, `host ${raw.name} of Talos class ${cls.name} has no role, so netbuild cannot tell which base config to render its machine config from`, "set `talos: { role: worker }` (or controlplane) on the host, or `talos.machine.role` on the class");
    return undefined;
  }
  if (site.talosConfigBaseUrl === undefined) {
    c.error(doc, at, `${label}.talos`, `host ${raw.name} boots Talos, which fetches its machine config from a URL, and netbuild.yaml does not say where the tree is served`, "set `talos: { configBaseUrl: https://boot.example/path }` in netbuild.yaml (the URL the boot server serves this tree at)");
    return undefined;
  }
  if (site.talosBaseConfigs[role] === undefined) {
    c.error(doc, t?.role !== undefined ? [...at, "talos", "role"] : [...at, "class"], `${label}.talos.role`, `role ${role} has no base config`, `set \`talos: { baseConfigs: { ${role}: secrets/${role}.yaml } }\` in netbuild.yaml (the file \`talosctl gen config\` writes; keep it out of git or encrypted)`);
    return undefined;
  }
  checkVolumes(doc, [...at, "talos"], `${label}.talos`, t?.volumes, c);
  let network: TalosHost["network"];
  if (t?.network) {
    const n = t.network;
    let mac = macs[0];
    if (n.mac !== undefined) {
      const parsed = parseMac(n.mac);
      if (!parsed.ok) c.error(doc, [...at, "talos", "network", "mac"], `${label}.talos.network.mac`, parsed.message, parsed.hint);
      else if (!macs.includes(parsed.value)) c.error(doc, [...at, "talos", "network", "mac"], `${label}.talos.network.mac`, `${macColons(parsed.value)} is not one of this host's MACs`, "give one of the MACs listed in `mac`/`macs`");
      else mac = parsed.value;
    }
    const ip = n.address.split("/")[0]!;
    if (input.ip !== undefined && input.ip !== ip) c.error(doc, [...at, "talos", "network", "address"], `${label}.talos.network.address`, `the address ${n.address} is not the host's ip ${input.ip}`, "make them the same address (ip without the prefix length)");
    if (mac !== undefined) network = { address: n.address, gateway: n.gateway, nameservers: n.nameservers ?? [], mac };
  }
  const configUrl = parseKernelParam(`talos.config=${site.talosConfigBaseUrl}/by-host/${raw.name}/talos.yaml`);
  if (!configUrl.ok) return undefined;
  return {
    role,
    installDisk: t?.installDisk ?? cls.machine.installDisk,
    // Each volume's settings merge field by field: a host's maxSize keeps the class's grow and minSize.
    volumes: Object.fromEntries([...new Set([...Object.keys(cls.machine.volumes), ...Object.keys(t?.volumes ?? {})])].sort().map((v) => [v, { ...cls.machine.volumes[v], ...(t?.volumes as Record<string, TalosVolumeInput> | undefined)?.[v] }])),
    patches: [...cls.machine.patches, ...patchFiles(doc, [...at, "talos"], `${label}.talos`, t?.patches, probe, c)],
    configUrl: configUrl.value,
    network,
  };
}

function hostOf(raw: RawHost, site: Site, classNames: ReadonlySet<string>, classes: ReadonlyMap<string, ClassDef>, probe: Probe, c: Collector): Host | null {
  const { doc, at, label, input } = raw;
  const before = c.errors.length;
  if ((input.mac === undefined) === (input.macs === undefined)) {
    c.error(doc, at, label, input.mac === undefined ? "no MAC address" : "both `mac` and `macs`", "give `mac: 52:54:00:12:34:56`, or `macs: [...]` for a machine that may boot from several NICs");
  }
  const macs: Mac[] = [];
  const rawMacs = input.mac !== undefined ? [{ value: input.mac, at: [...at, "mac"], field: `${label}.mac` }] : (input.macs ?? []).map((m, i) => ({ value: m, at: [...at, "macs", i], field: `${label}.macs[${i}]` }));
  for (const m of rawMacs) {
    const mac = parseMac(m.value);
    if (!mac.ok) c.error(doc, m.at, m.field, mac.message, mac.hint);
    else if (macs.includes(mac.value)) c.error(doc, m.at, m.field, `${macColons(mac.value)} is listed twice for this host`, "remove the repeated entry");
    else macs.push(mac.value);
  }
  const className = parseClassName(input.class);
  if (!className.ok) {
    c.error(doc, [...at, "class"], `${label}.class`, className.message, className.hint);
  } else if (!classNames.has(className.value)) {
    const guess = closest(className.value, [...classNames]);
    c.error(
      doc,
      [...at, "class"],
      `${label}.class`,
      `unknown class ${JSON.stringify(input.class)}`,
      guess ? `did you mean ${JSON.stringify(guess)}? (classes are the files in classes/)` : `classes are the files in classes/: ${[...classNames].sort().join(", ") || "there are none"}`,
    );
  }
  const kernelParams = kernelParamsOf(doc, at, label, input.kernelParams, c);
  reservedParams(doc, at, label, kernelParams, site, c, false);
  const talos = className.ok ? talosHostOf(raw, classes.get(className.value), site, macs, probe, c) : undefined;
  if (c.errors.length !== before || !className.ok) return null;
  return {
    name: raw.name,
    file: doc.file,
    className: className.value,
    macs,
    ip: input.ip,
    ramBytes: input.ram === undefined ? undefined : bytesOf(input.ram),
    provisionDisks: input.provision.disks,
    kernelParams,
    description: input.description,
    talos,
  };
}

/** The same MAC on two hosts would boot one machine as the other: always an error. */
function uniqueMacs(raws: RawHost[], hosts: Map<RawHost, Host>, c: Collector): void {
  const seen = new Map<Mac, RawHost>();
  for (const raw of raws) {
    const host = hosts.get(raw);
    if (!host) continue;
    host.macs.forEach((mac) => {
      const first = seen.get(mac);
      if (first && first.name !== raw.name) {
        const where = first.doc.where(first.at, first.label);
        const macField = raw.input.mac !== undefined ? "mac" : `macs`;
        c.error(raw.doc, [...raw.at, macField], `${raw.label}.${macField}`, `MAC ${macColons(mac)} is already used by host ${first.name} (${where.file}${where.line ? `:${where.line}` : ""})`, "each MAC belongs to one host; MACs are compared in any spelling (aa:bb:.., aa-bb-.., aabb.cc..)");
      } else if (!first) {
        seen.set(mac, raw);
      }
    });
  }
}

function uniqueNames(raws: RawHost[], c: Collector): void {
  const seen = new Map<string, RawHost>();
  for (const raw of raws) {
    const first = seen.get(raw.name);
    if (first) {
      const where = first.doc.where(first.at, first.label);
      c.error(raw.doc, raw.at, raw.label, `host ${raw.name} is already defined in ${where.file}${where.line ? `:${where.line}` : ""}`, "hostnames must be unique across all files in hosts/");
    } else seen.set(raw.name, raw);
  }
}

function uniqueIps(raws: RawHost[], c: Collector): void {
  const seen = new Map<string, RawHost>();
  for (const raw of raws) {
    const ip = raw.input.ip;
    if (ip === undefined) continue;
    const first = seen.get(ip);
    if (first && first.name !== raw.name) c.error(raw.doc, [...raw.at, "ip"], `${raw.label}.ip`, `IP ${ip} is already used by host ${first.name}`, "each host needs its own address");
    else seen.set(ip, raw);
  }
}

// ---------------------------------------------------------------------------------------------

/** The site file alone (for starting connections to targets early); undefined when it has errors. */
export function loadSite(file: InventoryFile | undefined): Site | undefined {
  const c = new Collector();
  const site = parseSite(file, c);
  return c.errors.length === 0 ? site : undefined;
}

export function loadInventory(source: InventorySource): LoadResult {
  const c = new Collector(source.onParsed);
  const site = parseSite(source.site, c);

  const rawClasses = readClasses(source.classes, c);
  const classes: ClassDef[] = [];
  for (const raw of rawClasses) {
    const def = classOf(raw, site, source.probe, c);
    if (def) classes.push(def);
  }
  // Hosts are checked against every class file that exists, even an invalid one, so that a typo
  // in a class does not also report all its hosts as "unknown class".
  const classNames = new Set<string>(source.classes.map((f) => baseName(f.path)));

  if (site.unknownClass !== null && !classNames.has(site.unknownClass) && source.site) {
    const doc = docOf(source.site, c);
    c.error(doc, ["unknownMachines", "class"], "site.unknownMachines.class", `unknown class ${JSON.stringify(site.unknownClass)}`, "name a class from classes/, or write `unknownMachines: strict`");
  }

  const rawHosts = readHosts(source.hosts, c);
  uniqueNames(rawHosts, c);
  const hostsByRaw = new Map<RawHost, Host>();
  const classByName = new Map<string, ClassDef>(classes.map((d) => [d.name, d]));
  for (const raw of rawHosts) {
    const host = hostOf(raw, site, classNames, classByName, source.probe, c);
    if (host) hostsByRaw.set(raw, host);
  }
  uniqueMacs(rawHosts, hostsByRaw, c);
  uniqueIps(rawHosts, c);

  const errors = c.errors;
  if (errors.length > 0) return { ok: false, issues: sortIssues(c.issues) };
  const hosts = [...hostsByRaw.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  classes.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { ok: true, inventory: { site, classes, hosts, warnings: sortIssues(c.issues) } };
}

function sortIssues(issues: Issue[]): Issue[] {
  return [...issues].sort((a, b) => a.where.file.localeCompare(b.where.file) || (a.where.line ?? 0) - (b.where.line ?? 0) || (a.where.col ?? 0) - (b.where.col ?? 0));
}
