// Inventory loading as a staged pipeline: parse YAML (with positions) → zod → normalise → small
// named rules that add errors and warnings → a typed model. Everything after this trusts the model.
// This is the entry point: each part lives in its own module (inventory-source: what is read;
// inventory-rules: what the parts share; site, classes, hosts; talos-inventory: Talos classes and
// hosts), and what the rest of netbuild uses is exported from here.
import type { Issue } from "../errors.ts";
import { quoted } from "./excerpt.ts";
import { fileIssue, type InventoryFile, type InventorySource } from "./inventory-source.ts";
import { baseName, Collector, docOf } from "./inventory-rules.ts";
import { parseSite, type Site } from "./site.ts";
import { classOf, readClasses, type ClassDef } from "./classes.ts";
import { hostDependencies, hostOf, macsOf, readHosts, uniqueIps, uniqueMacs, uniqueNames, type Host, type SharedValues } from "./hosts.ts";
import { Unplaced } from "./yaml-doc.ts";
import { emptyMemo, Recall, type Memo, type ProbeResult } from "./inventory-memo.ts";

export { fileProblemMessage, MAX_FILE_BYTES, type FileProblem, type InventoryFile, type InventorySource, type OnParsed, type Probe } from "./inventory-source.ts";
export { SITE_FILE, type Site } from "./site.ts";
export type { TalosRole } from "./schema.ts";
export type { Artifact, ClassDef, NixosClass, PrebuiltClass } from "./classes.ts";
export type { Host } from "./hosts.ts";
export { talosArtifactUrl, TALOS_ARTIFACTS, unpinnedArtifacts, type TalosArtifact, type TalosClass, type TalosHost, type TalosMachine } from "./talos-inventory.ts";

export interface Inventory {
  site: Site;
  /** Sorted by name. */
  classes: ClassDef[];
  /** Sorted by name. */
  hosts: Host[];
  warnings: Issue[];
}

/** `memo`: what to remember for the next run (inventory-memo.ts), kept by the adapter only when the inventory is valid. */
export type LoadResult = { ok: true; inventory: Inventory; memo: Memo } | { ok: false; issues: Issue[] };

/** The site file alone (for starting connections to targets early); undefined when it has errors. */
export function loadSite(file: InventoryFile | undefined): Site | undefined {
  const c = new Collector();
  const site = parseSite(file, c);
  return c.errors.length === 0 ? site : undefined;
}

/**
 * With `source.earlier` (what earlier runs read and checked), hosts whose text and dependencies are
 * unchanged are taken as they were checked, and a file of many hosts is read one host at a time,
 * without positions. A message about such a host needs its position, and any error at all may
 * need one: either way the load starts again from the text of every file, as a first run reads
 * it, so that every message and its line and column are exactly a first run's.
 */
export function loadInventory(source: InventorySource): LoadResult {
  if (source.earlier) {
    try {
      const quick = load(source, source.earlier);
      if (quick.ok) return quick;
    } catch (e) {
      if (!(e instanceof Unplaced)) throw e;
    }
  }
  // Read as a first run reads: nothing is learnt (the next run learns).
  return load(source, undefined);
}

function load(source: InventorySource, earlier: Memo | undefined): LoadResult {
  const c = new Collector(source.onParsed);
  const site = parseSite(source.site, c);
  for (const folder of source.folders ?? []) c.issues.push(fileIssue(folder.path, folder.path.split("/")[0]!, folder.problem));

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
    c.error(doc, ["unknownMachines", "class"], "site.unknownMachines.class", `unknown class ${quoted(site.unknownClass)}`, "name a class from classes/, or write `unknownMachines: strict`");
  }

  const classByName = new Map<string, ClassDef>(classes.map((d) => [d.name, d]));
  const dependencies = new Map<string, string>();
  const dependsOn = (className: string) => {
    let d = dependencies.get(className);
    if (d === undefined) dependencies.set(className, (d = hostDependencies(className, site, classNames, classByName)));
    return d;
  };
  const recall = earlier ? new Recall(earlier, dependsOn, source.probe) : undefined;

  // Every host read is checked by every rule, whatever else is wrong with it or elsewhere: the
  // rules across hosts use what each host has that is valid (its valid MACs, its address).
  const rawHosts = readHosts(source.hosts, c, recall);
  uniqueNames(rawHosts, c);
  const hosts: Host[] = [];
  const shared: SharedValues[] = [];
  for (const raw of rawHosts) {
    if ("host" in raw) {
      hosts.push(raw.host);
      // Where each MAC is written is asked only for a message, which a recalled host cannot give (it throws Unplaced).
      shared.push({ raw, macs: raw.host.macs.map((mac) => ({ mac, at: raw.at, field: raw.label })), ip: raw.host.ip });
      continue;
    }
    const before = c.issues.length;
    const probes: [string, ProbeResult][] = [];
    const probe = (rel: string) => {
      const kind = source.probe(rel);
      probes.push([rel, kind]);
      return kind;
    };
    const placed = macsOf(raw, c);
    shared.push({ raw, macs: placed, ip: raw.input.ip });
    const host = hostOf(raw, placed, site, classNames, classByName, probe, c);
    if (!host) continue;
    hosts.push(host);
    // Remembered only when checked without a word: a remembered host cannot say where anything is.
    if (recall && raw.unit && c.issues.length === before) {
      const { key, ...text } = raw.unit;
      recall.learn(key, { ...text, class: raw.input.class, ...(probes.length > 0 ? { probes } : {}), host });
    }
  }
  uniqueMacs(shared, c);
  uniqueIps(shared, c);

  const errors = c.errors;
  if (errors.length > 0) return { ok: false, issues: sortIssues(c.issues) };
  hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  classes.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { ok: true, inventory: { site, classes, hosts, warnings: sortIssues(c.issues) }, memo: recall?.learnt ?? emptyMemo() };
}

function sortIssues(issues: Issue[]): Issue[] {
  return [...issues].sort((a, b) => a.where.file.localeCompare(b.where.file) || (a.where.line ?? 0) - (b.where.line ?? 0) || (a.where.col ?? 0) - (b.where.col ?? 0));
}
