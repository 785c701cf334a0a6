// Deploy, rollback and gc as plans: what the built tree (out/) holds + what the target's manifest
// says is deployed → the uploads, switches and deletions that make the target serve the new tree.
// Pure: the applier (adapters/target-tree.ts) does exactly what a plan says, in this order:
//   1. record every path it is about to create as pending (in `.netbuild/pending.json`, small)
//   2. upload artifacts to temporary names, check their size, rename them into place
//   3. switch class scripts, host scripts, by-mac entries, boot.ipxe (each an atomic rename)
//   4. write the manifest, then delete switch points no longer used (removed hosts and classes)
// so an HTTP client following boot.ipxe → by-mac → by-host → by-class finds, at every instant,
// either the old chain or the new one, each complete.
import { foldersOf } from "./paths.ts";
import { IPXE_BIOS, IPXE_DIR, IPXE_NAMES, isBinaryPath, LAYERS, layerOf, type Layer, type ManifestEntry, type TreeManifest } from "./tree.ts";

export const DEPLOYED_MANIFEST = ".netbuild/deployed.json";
/**
 * The paths a deploy is creating or removing, listed before it touches them: a short file beside
 * the record, so that owning them costs one small write instead of rewriting a 10,000-host record.
 * A target's pending paths are those of the record (netbuild 0.2 before this file) and this file's.
 */
export const PENDING_JOURNAL = ".netbuild/pending.json";
/**
 * What changed since the record was last written whole, beside it: a deploy that changes a few
 * hosts of 10,000 writes this (a few entries) instead of the 2 MB record. It names the record it
 * applies to by the record's sha256; one that names another (a deploy that rewrote the record
 * whole was stopped before removing it) is left aside. See adapters/target-tree.ts.
 */
export const DEPLOYED_DELTA = ".netbuild/deployed.delta.json";
export const LOCK_PATH = ".netbuild/lock";

/** One build of a class as deployed: its artifacts and its class script. */
export interface Generation {
  /** The first 12 hex digits of the class script's sha256: names the generation in messages and `rollback --to`. */
  id: string;
  kernel: string;
  initrd: string;
  /** The class script that boots this generation (rollback writes it back). */
  script: string;
  sha256: string;
  /** When, by whom and from which commit this generation was first deployed to the target (absent in records older than netbuild 0.2). */
  deployed?: Origin;
}

/** Who changed a target, and from what: recorded in its manifest, shown by `netbuild status`. */
export interface Origin {
  /** ISO 8601, UTC, whole seconds. */
  at: string;
  /** user@machine that ran netbuild. */
  by: string;
  /** The inventory's git commit (12 hex digits, `-dirty` with uncommitted changes); absent outside git. */
  commit?: string;
}

export interface LastChange extends Origin {
  command: "deploy" | "rollback";
}

export interface DeployedClass {
  /** The id of the generation the class script boots now. */
  current: string;
  /** Newest first; at most `keep` of them. */
  generations: Generation[];
  /** Generations this class was rolled back from: a deploy of the same build does not switch forward to them again. */
  rolledBackFrom?: string[];
}

/** `.netbuild/deployed.json` on the target: what netbuild put there and still owns. */
export interface DeployedManifest {
  /** 2 since who deployed is recorded (netbuild 0.2); a format 1 record is read and rewritten as 2. */
  format: 2;
  classes: Record<string, DeployedClass>;
  /** Every path netbuild created on the target and has not removed. */
  entries: Record<string, ManifestEntry>;
  /** Paths a deploy was creating when it last wrote the manifest (a deploy that did not finish leaves them). */
  pending: string[];
  /** The last deploy or rollback that changed what the target serves. */
  last?: LastChange;
}

export interface Upload {
  path: string;
  size: number;
  sha256: string;
}

export type Switch =
  | { kind: "file"; layer: Layer; path: string; sha256: string; /** The text (or an iPXE binary's bytes), when known (the tree just planned, a kept generation, read from out/ and checked); otherwise read from out/. */ content?: string | Uint8Array }
  | { kind: "symlink"; layer: Layer; path: string; target: string };

export interface ClassChange {
  name: string;
  from: string | undefined;
  to: string;
  /** The generation was already on the target (after a rollback, or a rebuild of the same thing): nothing to upload. */
  alreadyThere: boolean;
}

export interface DeployPlan {
  uploads: Upload[];
  /** In write order (class, host, mac, entry layers). */
  switches: Switch[];
  /** In delete order (the reverse). */
  deletions: string[];
  classes: ClassChange[];
  /** Bytes that uploads send. */
  bytes: number;
  /** Paths that need no change. */
  unchanged: number;
  /** The manifest the target holds once the plan is applied. */
  manifest: DeployedManifest;
}

export function emptyManifest(): DeployedManifest {
  return { format: 2, classes: {}, entries: {}, pending: [] };
}

export function isNoop(plan: DeployPlan): boolean {
  return plan.uploads.length === 0 && plan.switches.length === 0 && plan.deletions.length === 0;
}

/** Whether two entries stand for the same thing on the target (a file's or artifact's hash, a link's target). */
export function sameEntry(a: ManifestEntry | undefined, b: ManifestEntry): boolean {
  if (!a || a.kind !== b.kind) return false;
  if (a.kind === "symlink") return a.target === (b as { target: string }).target;
  return a.sha256 === (b as { sha256: string }).sha256;
}

const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Paths (sorted by path) in write order: by layer (LAYERS), then by path; each path's layer found once, not in every comparison. */
function inLayerOrder(sortedPaths: readonly string[]): { path: string; layer: Layer }[] {
  const buckets = LAYERS.map(() => [] as { path: string; layer: Layer }[]);
  for (const p of sortedPaths) {
    const layer = layerOf(p);
    buckets[LAYERS.indexOf(layer)]!.push({ path: p, layer });
  }
  return buckets.flat();
}

/** Paths in delete order: the reverse of the write order. */
function inDeleteOrder(paths: readonly string[]): string[] {
  return inLayerOrder([...paths].sort(byPath))
    .map((d) => d.path)
    .reverse();
}

function sorted<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => byPath(a, b)));
}

export function generationId(sha256: string): string {
  return sha256.slice(0, 12);
}

export interface SourceTree {
  classes: Record<string, { kernel: { path: string }; initrd: { path: string } }>;
  entries: TreeManifest["entries"];
}

export interface PlanDeployInput {
  /** The built tree (out/): its manifest's entries and each class's current artifacts. */
  source: SourceTree;
  /** Class scripts of the built tree, by path (kept in the target manifest for rollback). */
  classScripts: ReadonlyMap<string, string>;
  deployed: DeployedManifest;
  /** Generations kept per class (at least 2: the previous one stays for machines that were mid-boot when it was switched). */
  keep: number;
  /** Paths whose content on the target no longer matches the manifest (from verify): rewritten even if recorded. */
  drifted?: ReadonlySet<string>;
  /**
   * Paths on the target that belong to classes this machine has not built (their class script, their
   * hosts' scripts and by-mac entries): left exactly as deployed, neither rewritten nor removed.
   */
  keepAsDeployed?: ReadonlySet<string>;
  /** Who deploys, recorded with new generations and as the manifest's last change (when the plan changes anything). */
  origin?: Origin | undefined;
}

/** A class the target keeps on a rolled-back generation although out/ holds a build it was rolled back from. */
export interface HeldRollback {
  name: string;
  current: string;
  built: string;
}

export function planDeploy({ source, classScripts, deployed, keep, drifted, keepAsDeployed, origin }: PlanDeployInput): DeployPlan & { held: HeldRollback[] } {
  // What the target must serve: the built tree's switch points and its classes' current artifacts
  // (out/ also keeps its own previous generation; the target keeps generations of its own).
  const wanted = new Map<string, ManifestEntry>();
  const current = new Set(Object.values(source.classes).flatMap((c) => [c.kernel.path, c.initrd.path]));
  // for…in: a 10,000-host tree's entries are a dictionary, which Object.entries copies out pair by pair.
  for (const p in source.entries) {
    const e = source.entries[p]!;
    if (e.kind === "artifact" && !current.has(p)) continue;
    wanted.set(p, e);
  }
  for (const p of keepAsDeployed ?? []) {
    const e = deployed.entries[p];
    if (e && !wanted.has(p)) wanted.set(p, e);
  }
  // A tree without iPXE binaries (built where there were none to copy) leaves the target's as they
  // are: another checkout's deploy must not take away what every PXE boot fetches first.
  const noBinaries = !(`${IPXE_DIR}/${IPXE_BIOS}` in source.entries);
  if (noBinaries) {
    for (const name of IPXE_NAMES) {
      const p = `${IPXE_DIR}/${name}`;
      const e = deployed.entries[p];
      if (e && !wanted.has(p)) wanted.set(p, e);
    }
  }

  // Generations: a class whose script changed gets a new generation in front (or an existing one
  // moves to the front). The generation served until now always stays, then the others up to
  // `keep`; what drops off goes with its artifacts. A class rolled back from the very build out/
  // holds stays rolled back: deploying something else must not undo it.
  const classes: Record<string, DeployedClass> = {};
  const changes: ClassChange[] = [];
  const held: HeldRollback[] = [];
  const pending = new Set(deployed.pending);
  for (const [name, built] of Object.entries(source.classes).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const scriptPath = `by-class/${name}/ipxe`;
    const scriptEntry = source.entries[scriptPath];
    const script = classScripts.get(scriptPath);
    if (scriptEntry?.kind !== "file" || script === undefined) throw new Error(`the built tree has no class script for ${name}`);
    const id = generationId(scriptEntry.sha256);
    const was = deployed.classes[name];
    if (was && was.current !== id && was.rolledBackFrom?.includes(id) && deployed.entries[scriptPath]) {
      held.push({ name, current: was.current, built: id });
      classes[name] = was;
      wanted.set(scriptPath, deployed.entries[scriptPath]!);
      wanted.delete(built.kernel.path);
      wanted.delete(built.initrd.path);
      continue;
    }
    // A generation already on the target keeps the record of when it first came.
    const existing = was?.generations.find((g) => g.id === id);
    const stamp = existing ? existing.deployed : origin;
    const gen: Generation = { id, kernel: built.kernel.path, initrd: built.initrd.path, script, sha256: scriptEntry.sha256, ...(stamp ? { deployed: stamp } : {}) };
    const served = was?.generations.find((g) => g.id === was.current && g.id !== id);
    const others = (was?.generations ?? []).filter((g) => g.id !== id && g !== served);
    // None drops off while the class may serve any of them (switching); the next deploy keeps `keep` again.
    classes[name] = { current: id, generations: [gen, ...(served ? [served] : []), ...others].slice(0, switching(pending, name) ? undefined : Math.max(keep, 2)) };
    if (was?.current !== id) {
      changes.push({ name, from: was?.current, to: id, alreadyThere: Boolean(was?.generations.some((g) => g.id === id)) });
    }
  }
  // Classes no longer in the built tree keep their generations (gc removes them) but lose their script below.
  for (const [name, was] of Object.entries(deployed.classes)) if (!(name in classes)) classes[name] = was;

  // A path a deploy that did not finish was creating is rewritten whatever the manifest says: it
  // may hold the new content, the old, or half of either.
  // So is a path whose folder or whose content was being switched (a by-mac/<mac> link made in
  // place of a copy-mode folder, or the reverse): what stands there may be either form.
  const unsureSet = new Set([...deployed.pending, ...(drifted ?? [])]);
  const unsureFolders = new Set([...unsureSet].flatMap(foldersOf));
  const unsure = { has: (p: string) => unsureSet.size > 0 && (unsureSet.has(p) || unsureFolders.has(p) || foldersOf(p).some((f) => unsureSet.has(f))) };
  const order = [...wanted.keys()].sort(byPath);
  const uploads: Upload[] = [];
  const switches: Switch[] = [];
  let unchanged = 0;
  let generations: Generation[] | undefined;
  for (const { path: p, layer } of inLayerOrder(order)) {
    const e = wanted.get(p)!;
    if (sameEntry(deployed.entries[p], e) && !unsure.has(p)) {
      unchanged++;
      continue;
    }
    if (e.kind === "artifact") uploads.push({ path: p, size: e.size, sha256: e.sha256 });
    else if (e.kind === "symlink") switches.push({ kind: "symlink", layer, path: p, target: e.target });
    else {
      // A kept class script that must be rewritten (drift) comes from the generation it boots.
      const gen = layer === "class" && p.endsWith("/ipxe") && !source.entries[p] ? (generations ??= Object.values(classes).flatMap((c) => c.generations)).find((g) => g.sha256 === e.sha256) : undefined;
      switches.push({ kind: "file", layer, path: p, sha256: e.sha256, ...(gen ? { content: gen.script } : {}) });
    }
  }

  // Smallest first: an interrupted deploy has then delivered the most files complete. Among equal
  // sizes, in path order: they were found in it, and the sort is stable.
  uploads.sort((a, b) => a.size - b.size);

  // Artifacts of kept generations stay; so do those of classes that left the tree (until gc).
  // Everything else recorded, or left half-made by a deploy that did not finish, goes.
  const referenced = new Set(Object.values(classes).flatMap((c) => c.generations.flatMap((g) => [g.kernel, g.initrd])));
  const keptArtifacts: string[] = [];
  const going: string[] = [];
  // One a deploy that did not finish was creating, with no record of it yet: not this tree's to
  // remove, nor to write; it stays pending (the next deploy with binaries finishes it).
  const stillPending: string[] = [];
  const recorded = (p: string) => {
    if (wanted.has(p)) return;
    if (noBinaries && isBinaryPath(p) && !(p in deployed.entries)) return void stillPending.push(p);
    if (deployed.entries[p]?.kind === "artifact" && referenced.has(p)) keptArtifacts.push(p);
    else going.push(p);
  };
  for (const p in deployed.entries) recorded(p);
  for (const p of new Set(deployed.pending)) if (!(p in deployed.entries)) recorded(p);
  const deletions = inDeleteOrder(going);
  // The manifest's entries in path order, built in that order (a 10,000-host record is not sorted twice).
  const entries: Record<string, ManifestEntry> = {};
  for (const p of keptArtifacts.length === 0 ? order : [...order, ...keptArtifacts].sort(byPath)) entries[p] = wanted.get(p) ?? deployed.entries[p]!;

  const changed = uploads.length + switches.length + deletions.length > 0;
  const last = changed && origin ? { command: "deploy" as const, ...origin } : deployed.last;
  return {
    uploads,
    switches,
    deletions,
    classes: changes,
    held,
    bytes: uploads.reduce((n, u) => n + u.size, 0),
    unchanged,
    manifest: { format: 2, classes: sorted(classes), entries, pending: stillPending.sort(), ...(last ? { last } : {}) },
  };
}

export interface RollbackChange {
  name: string;
  from: string;
  to: string;
  /** Back to an older kept generation, or forward again to a newer one (`--generation`). */
  direction: "back" | "forward";
}

/**
 * Points each class script at the generation before its current one (or at `to`): no upload, one
 * rename per class. The artifacts are on the target already: a kept generation keeps them.
 */
export function planRollback(deployed: DeployedManifest, classNames: readonly string[], to: string | undefined, origin?: Origin): { plan: DeployPlan; changes: RollbackChange[]; problems: string[] } {
  const classes: Record<string, DeployedClass> = { ...deployed.classes };
  const entries: Record<string, ManifestEntry> = { ...deployed.entries };
  const switches: Switch[] = [];
  const changes: RollbackChange[] = [];
  const problems: string[] = [];
  const names = classNames.length > 0 ? classNames : Object.keys(deployed.classes).filter((n) => `by-class/${n}/ipxe` in deployed.entries);
  for (const name of [...names].sort()) {
    const cls = deployed.classes[name];
    if (!cls) {
      problems.push(`class ${name} has never been deployed to this target`);
      continue;
    }
    const at = cls.generations.findIndex((g) => g.id === cls.current);
    const target = to !== undefined ? cls.generations.find((g) => g.id.startsWith(to)) : cls.generations[at + 1];
    if (!target) {
      problems.push(to !== undefined ? `class ${name} has no kept generation ${to} (kept: ${cls.generations.map((g) => g.id).join(", ")})` : `class ${name} has no generation older than ${cls.current} on this target`);
      continue;
    }
    if (target.id === cls.current) continue;
    const path = `by-class/${name}/ipxe`;
    switches.push({ kind: "file", layer: "class", path, sha256: target.sha256, content: target.script });
    entries[path] = { kind: "file", sha256: target.sha256 };
    // Going back remembers what it left; switching to a generation explicitly (forward again) forgets it.
    const from = to === undefined ? [...new Set([...(cls.rolledBackFrom ?? []), cls.current])] : (cls.rolledBackFrom ?? []).filter((id) => id !== target.id);
    classes[name] = { ...cls, current: target.id, ...(from.length > 0 ? { rolledBackFrom: from } : { rolledBackFrom: undefined }) };
    // Back or forward: by when each was first deployed, where both say and differ; else by the list, which holds
    // the current generation and the one served before it first.
    const when = (g: Generation | undefined) => g?.deployed?.at;
    const servedNow = cls.generations[at];
    const older = when(target) !== undefined && when(servedNow) !== undefined && when(target) !== when(servedNow) ? when(target)! < when(servedNow)! : cls.generations.indexOf(target) > at;
    changes.push({ name, from: cls.current, to: target.id, direction: older ? "back" : "forward" });
  }
  const last = switches.length > 0 && origin ? { command: "rollback" as const, ...origin } : deployed.last;
  const plan: DeployPlan = { uploads: [], switches, deletions: [], classes: [], bytes: 0, unchanged: 0, manifest: { format: 2, classes: sorted(classes), entries: sorted(entries), pending: deployed.pending, ...(last ? { last } : {}) } };
  return { plan, changes, problems };
}

/**
 * Whether a deploy or rollback stopped while switching class `name`'s script (it is pending): the
 * target may then serve any generation recorded for it, or one it was uploading, while the record
 * still names the one before. Deploy and gc drop none of its generations until a deploy finishes it.
 */
function switching(pending: ReadonlySet<string>, name: string): boolean {
  return pending.has(`by-class/${name}/ipxe`);
}

/**
 * What gc removes: artifacts no kept generation of a class still in the tree references (classes
 * whose script deploy removed lose all of theirs), what a gc that did not finish was removing
 * (`leftovers`: pending, no longer recorded), and the temporary files of deploys that did not
 * finish. Never anything the manifest did not record or list as pending.
 */
export function planGc(deployed: DeployedManifest, keep: number): { plan: DeployPlan; temps: string[]; leftovers: string[] } {
  const classes: Record<string, DeployedClass> = {};
  const pending = new Set(deployed.pending);
  for (const [name, cls] of Object.entries(deployed.classes)) {
    // Every generation stays while the class may serve any of them, or its script is being removed.
    if (switching(pending, name)) {
      classes[name] = cls;
      continue;
    }
    if (!(`by-class/${name}/ipxe` in deployed.entries)) continue;
    const currentGen = cls.generations.find((g) => g.id === cls.current);
    const kept = cls.generations.slice(0, Math.max(keep, 2));
    if (currentGen && !kept.includes(currentGen)) kept[kept.length - 1] = currentGen;
    classes[name] = { ...cls, generations: kept };
  }
  const referenced = new Set(Object.values(classes).flatMap((c) => c.generations.flatMap((g) => [g.kernel, g.initrd])));
  const entries: Record<string, ManifestEntry> = {};
  const going: string[] = [];
  for (const [p, e] of Object.entries(deployed.entries)) {
    if (e.kind === "artifact" && !referenced.has(p)) going.push(p);
    else entries[p] = e;
  }
  // What a gc that did not finish was removing: artifacts still pending, no longer recorded, that no
  // kept generation references, of a class whose script no stopped deploy was switching (a deploy
  // pends its class script with its uploads, and may have switched the script to them before it
  // stopped: those are the next deploy's to finish, as is everything else pending). Gone again here.
  const leftovers = deployed.pending.filter((p) => {
    const m = /^by-class\/([^/]+)\/[^/]+\/[^/]+$/.exec(p);
    return m !== null && !(p in deployed.entries) && !referenced.has(p) && !switching(pending, m[1]!);
  });
  const deletions = inDeleteOrder([...going, ...leftovers]);
  // gc removes the temporary files such a deploy left.
  const temps = deployed.pending;
  const stillPending = deployed.pending.filter((p) => !leftovers.includes(p));
  const plan: DeployPlan = { uploads: [], switches: [], deletions, classes: [], bytes: 0, unchanged: Object.keys(entries).length, manifest: { format: 2, classes: sorted(classes), entries: sorted(entries), pending: stillPending, ...(deployed.last ? { last: deployed.last } : {}) } };
  return { plan, temps, leftovers };
}
