// Inventory + built classes → the served tree, as data. This is the path contract other tools and
// later netbuild commands rely on:
//   boot.ipxe                              chains by-mac/${mac:hexhyp}/ipxe
//   by-mac/<aa-bb-cc-dd-ee-ff>             → ../by-host/<host> (or a real folder in copy mode)
//   by-host/<host>/ipxe                    sets the host's ${cmdline}, chains its class
//   by-host/<host>/talos.yaml              a Talos host's machine config (its talos.config= URL)
//   by-class/<class>/ipxe                  kernel + initrd of the class's current build
//   by-class/<class>/<store-hash>/{kernel,initrd}   immutable once written
//   ipxe/{undionly.kpxe,snponly.efi|ipxe.efi}       the iPXE binaries PXE firmware gets over TFTP
// A class rebuild writes new hash-named artifacts and then swaps only the class script, so host
// scripts never change because their class was rebuilt, and nothing a script names is ever
// rewritten in place.
import { createHash } from "node:crypto";
import type { ClassDef, Host, Inventory } from "./inventory.ts";
import type { ClassName, KernelParam } from "./names.ts";
import { IPXE_DIR, isBinaryPath } from "./paths.ts";

export { IPXE_BIOS, IPXE_DIR, IPXE_NAMES, isBinaryPath } from "./paths.ts";

export interface IpxeTemplates {
  boot(data: { unknownClass: string | null }): string;
  /** `heldFrom`: the host's own class when it is held on another one (see hostEntries), else "". */
  host(data: { name: string; className: string; file: string; wipe: boolean; wipeId: string; wipeForce: boolean; params: string[]; heldFrom: string }): string;
  class(data: { name: string; kind: string; file: string; kernel: string; initrd: string; params: string[] }): string;
}

/** One file of a class build, as it sits in the Nix store. */
export interface BuiltFile {
  /** The file in the Nix store (a store path or a file inside one). */
  storeFile: string;
  size: number;
}

/** What the build of a class produced (from Nix, or recorded in the tree's manifest). */
export interface ClassBuild {
  kernel: BuiltFile;
  initrd: BuiltFile;
  /** The class's own parameters, from Nix (NixOS adds init= and boot.kernelParams). */
  kernelParams: KernelParam[];
}

/** Order in which entries are written; deletion runs in reverse. Nothing is ever switched to point at something not yet written. */
export const LAYERS = ["artifact", "class", "config", "host", "mac", "entry"] as const;
export type Layer = (typeof LAYERS)[number];

/** The layer a tree path belongs to (its place in the write order). */
export function layerOf(p: string): Layer {
  // The iPXE binaries lead (through DHCP) to boot.ipxe: they are the first thing a machine fetches.
  if (p === "boot.ipxe" || isBinaryPath(p)) return "entry";
  if (p.startsWith("by-mac/")) return "mac";
  // A Talos host's machine config is in place before the script that names its URL.
  if (p.startsWith("by-host/") && p.endsWith("/talos.yaml")) return "config";
  if (p.startsWith("by-host/")) return "host";
  return p.split("/").length === 3 ? "class" : "artifact";
}

/** A script or a machine config. */
export type TextEntry = { kind: "file"; layer: Layer; path: string; content: string };
/** An iPXE binary (ipxe/<name>), as read from the site's folder when the tree was built: replaced whole, by a rename, when it changes. */
export type BinaryEntry = { kind: "file"; layer: "entry"; path: string; content: Uint8Array };
export type LinkEntry = { kind: "symlink"; layer: Layer; path: string; target: string };
export type TreeEntry =
  | TextEntry
  | BinaryEntry
  /** An immutable artifact copied from the Nix store; `source` is undefined for one kept from an earlier build. */
  | { kind: "artifact"; layer: "artifact"; path: string; source: string | undefined; size: number }
  | LinkEntry;

export interface TreeClass {
  name: ClassName;
  kind: ClassDef["kind"];
  kernel: { path: string; storeFile: string; size: number };
  initrd: { path: string; storeFile: string; size: number };
  kernelParams: KernelParam[];
  /** Artifacts of the previous build, kept so machines booting mid-switch still find them. */
  previous: { kernel: string; initrd: string } | undefined;
}

/**
 * Where a file stood in out/ when netbuild wrote it (or last read it back): its size, its mtime in
 * nanoseconds and its inode, as lstat gives them (decimal strings: exact beyond 2^53). A build
 * trusts a recorded file unchanged while lstat still says all three; `build --verify` reads it back.
 */
export interface FileStamp {
  size: number;
  mtimeNs: string;
  ino: string;
}

/** What the tree's manifest (`.netbuild/manifest.json`) records of each path netbuild wrote (a file's stamp: out/'s manifest only). */
export type ManifestEntry = ({ kind: "file"; sha256: string } & Partial<FileStamp>) | { kind: "artifact"; size: number; sha256: string } | { kind: "symlink"; target: string };

export interface TreeManifest {
  /** 2 when it names an iPXE binary (records.ts recordFormat). */
  format: 1 | 2;
  classes: Record<string, Omit<TreeClass, "name"> & { kernelSha256: string; initrdSha256: string }>;
  /** Every path netbuild created in the tree (relative, sorted). */
  entries: Record<string, ManifestEntry>;
  /** Paths a build was writing when it last wrote the manifest (a build that was stopped leaves them). */
  pending?: string[];
  /**
   * What the tree was planned from (out-tree.ts treeInputs: the inventory, these classes, the code
   * that plans it), when a deploy may trust the tree as it stands for that inventory (no Talos host).
   */
  inputs?: string;
}

export interface Tree {
  entries: TreeEntry[];
  classes: TreeClass[];
  /** Hosts whose class has no build yet: they are left out (their machines boot as unknown). */
  skippedHosts: { name: string; className: string }[];
  /** As TreeManifest's (set by the caller that knows what the tree was planned from). */
  inputs?: string | undefined;
  /** Hosts that will format their disks on their next boot. */
  wipes: string[];
}

const STORE_HASH = /^\/nix\/store\/([0-9a-df-np-sv-z]{32})-/;

/** The Nix store hash of the store path that holds `file`: content-addressed, so the tree's name for it never changes meaning. */
export function storeHashOf(file: string): string {
  const m = STORE_HASH.exec(file);
  if (!m) throw new Error(`not a Nix store path: ${file}`);
  return m[1]!;
}

export function artifactPaths(className: string, build: ClassBuild): { kernel: string; initrd: string } {
  return {
    kernel: `by-class/${className}/${storeHashOf(build.kernel.storeFile)}/kernel`,
    initrd: `by-class/${className}/${storeHashOf(build.initrd.storeFile)}/initrd`,
  };
}

/** The host's part of the kernel command line: hostname, provisioning flags, its own parameters. */
export function hostParams(host: Host, flagPrefix: string): string[] {
  const params: string[] = [`hostname=${host.name}`];
  if (host.provisionDisks) {
    params.push(`${flagPrefix}.provision_disks=true`, `${flagPrefix}.provision_id=${host.provisionId ?? ""}`);
    if (host.provisionForce) params.push(`${flagPrefix}.provision_force=true`);
  }
  if (host.talos) params.push(host.talos.configUrl);
  return [...params, ...host.kernelParams];
}

/**
 * One host's part of the tree: its script, its machine config (Talos), its by-mac entries. It needs
 * the host's settings and its class's name, never the class's build: a host can follow the
 * inventory wherever its class script is served. `as`: another class to chain (and no wipe flag),
 * for a host whose own class cannot be served.
 */
export function hostEntries(host: Host, site: Inventory["site"], templates: IpxeTemplates, config: string | "kept" | undefined, as?: { className: string; wipe: false }): (TextEntry | LinkEntry)[] {
  const entries: (TextEntry | LinkEntry)[] = [];
  const className = as?.className ?? host.className;
  const wipe = as ? false : host.provisionDisks;
  const params = hostParams(as ? { ...host, provisionDisks: false, provisionForce: false } : host, site.flagPrefix);
  const script = templates.host({ name: host.name, className, file: host.file, wipe, wipeId: wipe ? (host.provisionId ?? "") : "", wipeForce: wipe && host.provisionForce, params, heldFrom: as ? host.className : "" });
  entries.push({ kind: "file", layer: "host", path: `by-host/${host.name}/ipxe`, content: script });
  // "kept": the machine config stays as the target serves it (this checkout cannot render it).
  if (host.talos && config === undefined && !as) throw new Error(`internal: no machine config rendered for Talos host ${host.name}`);
  if (config !== undefined && config !== "kept") entries.push({ kind: "file", layer: "config", path: `by-host/${host.name}/talos.yaml`, content: config });
  for (const mac of host.macs) {
    if (site.links === "symlink") entries.push({ kind: "symlink", layer: "mac", path: `by-mac/${mac}`, target: `../by-host/${host.name}` });
    else entries.push({ kind: "file", layer: "mac", path: `by-mac/${mac}/ipxe`, content: script });
  }
  return entries;
}

/** The parameters a host script as served sets (its `set cmdline` line, as the host template writes it). */
export function scriptParams(script: string): string[] {
  return (script.split("\n").find((l) => l.startsWith("set cmdline")) ?? "").split(" ").slice(2);
}

/** Whether a host script as served sets the wipe flag. */
export function scriptWipes(script: string, flagPrefix: string): boolean {
  return scriptWipe(script, flagPrefix) !== undefined;
}

/**
 * The wipe a host script as served arms: its provisioning id ("" when it sets the flag with no id,
 * as scripts of netbuild before ids did), or undefined when it sets no wipe flag. The last
 * occurrence of a key counts, as on the machine.
 */
export function scriptWipe(script: string, flagPrefix: string): string | undefined {
  const params = scriptParams(script);
  if (!params.includes(`${flagPrefix}.provision_disks=true`)) return undefined;
  const key = `${flagPrefix}.provision_id=`;
  let id = "";
  for (const p of params) if (p.startsWith(key)) id = p.slice(key.length);
  return id;
}

/** Whether a wiping host script as served forces its wipe (formats disks whose last provision cannot be read). */
export function scriptWipeForced(script: string, flagPrefix: string): boolean {
  return scriptWipe(script, flagPrefix) !== undefined && scriptParams(script).includes(`${flagPrefix}.provision_force=true`);
}

/** Whether a kernel parameter is one of the wipe's own (the flag, the id, force): plans show them as the wipe, not as parameters. */
export function isWipeParam(param: string, flagPrefix: string): boolean {
  return param === `${flagPrefix}.provision_disks=true` || param.startsWith(`${flagPrefix}.provision_id=`) || param.startsWith(`${flagPrefix}.provision_force=`);
}

/** The host whose script `rel` is (`by-host/<host>/ipxe`), if it is one. */
export function hostOfScript(rel: string): string | undefined {
  return /^by-host\/([^/]+)\/ipxe$/.exec(rel)?.[1];
}

/** Whether a host script as served is one netbuild held on another class when it dropped its wipe (see hostEntries' `as`). */
export function scriptHeld(script: string): boolean {
  return /^# netbuild: held on class /m.test(script);
}

/** The class a host script as served chains (`chain ../../by-class/<class>/ipxe`), if it is one of netbuild's. */
export function scriptClass(script: string): string | undefined {
  return /^chain \.\.\/\.\.\/by-class\/([^/\s]+)\/ipxe$/m.exec(script)?.[1];
}

/** An iPXE binary the tree serves: its file name (undionly.kpxe, snponly.efi, ipxe.efi) and bytes. */
export interface IpxeFile {
  name: string;
  content: Uint8Array;
}

export interface PlanTreeInput {
  inventory: Inventory;
  /** Every class that has a build: built now, or kept from the tree's manifest. */
  builds: ReadonlyMap<ClassName, ClassBuild>;
  /** What the class scripts pointed at before, and the generation kept before that (from the manifest). */
  before: ReadonlyMap<ClassName, { kernel: string; initrd: string; previous: { kernel: string; initrd: string } | undefined }>;
  templates: IpxeTemplates;
  /** Rendered Talos machine configs by host (by-host/<host>/talos.yaml, the file its talos.config= names). */
  machineConfigs?: ReadonlyMap<string, string>;
  /** The iPXE binaries, when the tree serves them (none: the tree has no ipxe/, and a target keeps what it serves there). */
  ipxe?: readonly IpxeFile[];
}

export function planTree({ inventory, builds, before, templates, machineConfigs, ipxe }: PlanTreeInput): Tree {
  const { site } = inventory;
  const entries: TreeEntry[] = [];
  const classes: TreeClass[] = [];

  for (const def of inventory.classes) {
    const build = builds.get(def.name);
    if (!build) continue;
    const paths = artifactPaths(def.name, build);
    const rel = (p: string) => p.slice(`by-class/${def.name}/`.length);
    entries.push({ kind: "artifact", layer: "artifact", path: paths.kernel, source: build.kernel.storeFile, size: build.kernel.size });
    entries.push({ kind: "artifact", layer: "artifact", path: paths.initrd, source: build.initrd.storeFile, size: build.initrd.size });
    // The generation the class script pointed at until now is kept; when nothing changed, the one
    // kept before it stays kept (a no-op build must not delete what a booting machine may fetch).
    const was = before.get(def.name);
    const unchanged = was !== undefined && was.kernel === paths.kernel && was.initrd === paths.initrd;
    const previous = unchanged ? was.previous : was && { kernel: was.kernel, initrd: was.initrd };
    if (previous) {
      for (const p of [previous.kernel, previous.initrd]) {
        if (p !== paths.kernel && p !== paths.initrd) entries.push({ kind: "artifact", layer: "artifact", path: p, source: undefined, size: -1 });
      }
    }
    entries.push({
      kind: "file",
      layer: "class",
      path: `by-class/${def.name}/ipxe`,
      content: templates.class({ name: def.name, kind: def.kind, file: def.file, kernel: rel(paths.kernel), initrd: rel(paths.initrd), params: build.kernelParams }),
    });
    classes.push({
      name: def.name,
      kind: def.kind,
      kernel: { path: paths.kernel, storeFile: build.kernel.storeFile, size: build.kernel.size },
      initrd: { path: paths.initrd, storeFile: build.initrd.storeFile, size: build.initrd.size },
      kernelParams: build.kernelParams,
      previous,
    });
  }

  const skippedHosts: Tree["skippedHosts"] = [];
  const wipes = treeWipes(inventory.hosts, builds);
  for (const host of inventory.hosts) {
    if (!builds.has(host.className)) {
      skippedHosts.push({ name: host.name, className: host.className });
      continue;
    }
    for (const e of hostEntries(host, site, templates, machineConfigs?.get(host.name))) entries.push(e);
  }

  const unknownClass = site.unknownClass !== null && builds.has(site.unknownClass) ? site.unknownClass : null;
  entries.push({ kind: "file", layer: "entry", path: "boot.ipxe", content: templates.boot({ unknownClass }) });
  for (const b of ipxe ?? []) entries.push({ kind: "file", layer: "entry", path: `${IPXE_DIR}/${b.name}`, content: b.content });

  return { entries: inWriteOrder(entries), classes, skippedHosts, wipes };
}

/**
 * The entries by layer, then by path (a stable sort by both, as before): bucketed by layer, and
 * each bucket sorted by path only when it is not in order already (hosts usually come in order:
 * 20,000 entries need no comparisons beyond one pass).
 */
export function inWriteOrder(entries: TreeEntry[]): TreeEntry[] {
  const byPath = (a: TreeEntry, b: TreeEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const buckets = new Map<Layer, TreeEntry[]>(LAYERS.map((l) => [l, []]));
  for (const e of entries) buckets.get(e.layer)!.push(e);
  const sorted: TreeEntry[] = [];
  for (const layer of LAYERS) {
    const bucket = buckets.get(layer)!;
    let inOrder = true;
    for (let i = 1; i < bucket.length && inOrder; i++) inOrder = bucket[i - 1]!.path <= bucket[i]!.path;
    if (!inOrder) bucket.sort(byPath);
    for (const e of bucket) sorted.push(e);
  }
  return sorted;
}

/** The hosts a tree of these builds makes format their disks: those whose class is built, with the flag. */
export function treeWipes(hosts: readonly Host[], builds: ReadonlyMap<ClassName, unknown>): string[] {
  return hosts.filter((h) => h.provisionDisks && builds.has(h.className)).map((h) => h.name);
}

/**
 * The `inputs` out/'s manifest records: what the tree was planned from (`planned`: the inventory,
 * the builds and the code, out-tree.ts treeInputs), sealed with what the manifest records of the
 * tree (every path with its kind and content hash or link target, and the classes). A deploy takes
 * out/ as it stands only when both are what it computes now: a manifest edited since, or written
 * while the tree was not whole, is planned again.
 */
export function sealInputs(planned: string, entries: Record<string, ManifestEntry>, classes: TreeManifest["classes"]): string {
  const h = createHash("sha256").update(`${planned}\n`);
  let paths = Object.keys(entries);
  if (!paths.every((p, i) => i === 0 || paths[i - 1]! < p)) paths = [...paths].sort();
  for (const p of paths) {
    const e = entries[p]!;
    h.update(`${p}\0${e.kind}\0${e.kind === "symlink" ? e.target : e.sha256}\n`);
  }
  return h.update(JSON.stringify(Object.keys(classes).sort().map((n) => [n, classes[n]]))).digest("hex");
}
