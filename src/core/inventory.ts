// Inventory loading as a staged pipeline: parse YAML (with positions) → zod → normalise → small
// named rules that add errors and warnings → a typed model. Everything after this trusts the model.
// This is the entry point: each part lives in its own module (inventory-source: what is read;
// inventory-rules: what the parts share; site, classes, hosts; talos-inventory: Talos classes and
// hosts), and what the rest of netbuild uses is exported from here.
import type { Issue } from "../errors.ts";
import { quoted } from "./excerpt.ts";
import { fileIssue, type InventoryFile, type InventorySource } from "./inventory-source.ts";
import { baseName, Collector, docOf, type RawHost } from "./inventory-rules.ts";
import { parseSite, type Site } from "./site.ts";
import { classOf, readClasses, type ClassDef } from "./classes.ts";
import { hostOf, macsOf, readHosts, uniqueIps, uniqueMacs, uniqueNames, type Host, type PlacedMac } from "./hosts.ts";

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

export type LoadResult = { ok: true; inventory: Inventory } | { ok: false; issues: Issue[] };

/** The site file alone (for starting connections to targets early); undefined when it has errors. */
export function loadSite(file: InventoryFile | undefined): Site | undefined {
  const c = new Collector();
  const site = parseSite(file, c);
  return c.errors.length === 0 ? site : undefined;
}

export function loadInventory(source: InventorySource): LoadResult {
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

  // Every host read is checked by every rule, whatever else is wrong with it or elsewhere: the
  // rules across hosts use what each host has that is valid (its valid MACs, its address).
  const rawHosts = readHosts(source.hosts, c);
  uniqueNames(rawHosts, c);
  const hosts: Host[] = [];
  const macs: { raw: RawHost; macs: PlacedMac[] }[] = [];
  const classByName = new Map<string, ClassDef>(classes.map((d) => [d.name, d]));
  for (const raw of rawHosts) {
    const placed = macsOf(raw, c);
    macs.push({ raw, macs: placed });
    const host = hostOf(raw, placed, site, classNames, classByName, source.probe, c);
    if (host) hosts.push(host);
  }
  uniqueMacs(macs, c);
  uniqueIps(rawHosts, c);

  const errors = c.errors;
  if (errors.length > 0) return { ok: false, issues: sortIssues(c.issues) };
  hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  classes.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { ok: true, inventory: { site, classes, hosts, warnings: sortIssues(c.issues) } };
}

function sortIssues(issues: Issue[]): Issue[] {
  return [...issues].sort((a, b) => a.where.file.localeCompare(b.where.file) || (a.where.line ?? 0) - (b.where.line ?? 0) || (a.where.col ?? 0) - (b.where.col ?? 0));
}
