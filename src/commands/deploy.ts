// `netbuild deploy [--target NAME]... [--dry-run] [--verify]`: push the built tree (out/) to the
// boot servers. First out/'s scripts are brought up to date with the inventory (no nix-build:
// class builds are those the last `netbuild build` recorded), then, per target and all targets at
// once: lock → read what is deployed → plan → upload new artifacts → switch scripts and links →
// remove what is no longer served → unlock. A target whose manifest already matches gets nothing.
import { existsSync, realpathSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
// Statically: a dynamic import() of a CommonJS package gives only its default export in the bundle (npm run compile).
import { LineCounter } from "yaml";
import { UserError } from "../errors.ts";
import { emptyManifest, isNoop, planDeploy, type ClassChange, type DeployedManifest, type DeployPlan, type SourceTree } from "../core/deploy.ts";
import { parseTarget, type Target } from "../core/target.ts";
import type { Host, Inventory } from "../core/inventory.ts";
import { formatMachineChange, machineChanges, type MachineChange, type ServedHost } from "../core/machines.ts";
import { hostEntries, hostOfScript, IPXE_BIOS, IPXE_DIR, isBinaryPath, scriptClass, scriptHeld, scriptWipe, scriptWipeForced, scriptWipes, sealInputs, treeWipes, type ManifestEntry, type Tree, type TreeEntry, type TreeManifest } from "../core/tree.ts";
import { sha256 } from "../adapters/files.ts";
import { applyTree, checkOutFolder, outFileReader, withOutLock } from "../adapters/local-tree.ts";
import { acquireLock, applyDeploy, changedSince, conflicts, conflictsAgain, notRemoved, pool, readDeployed, verifyTarget, type Drift } from "../adapters/target-tree.ts";
import { formatBytes, formatDuration } from "../ui/reporter.ts";
import { loadRoot, outOf, refuseInventoryFolder, rootOf, type Context, type OutOptions } from "./context.ts";
import type { TargetFs } from "../adapters/target-fs.ts";
import { forEachTarget, openTarget, selectTargets, targetLabel, type TargetOptions } from "./targets.ts";
import type { Wipe } from "./out-tree.ts";

export interface DeployOptions extends OutOptions, TargetOptions {
  /** Print the plan (connecting to read what is deployed), change nothing. */
  dryRun?: boolean | undefined;
  /** Re-check every deployed file first (hashes included) and repair drift. */
  verify?: boolean | undefined;
  /** Wait for another deploy's lock instead of failing. */
  wait?: boolean | undefined;
  /** Remove another deploy's lock (after a crash). */
  breakLock?: boolean | undefined;
  /** Deploy even when a target would serve a disk wipe it did not serve before (else asked on a terminal, refused otherwise). */
  yes?: boolean | undefined;
  /** `plan --target`: a dry run the caller prints (none of its plan on stderr), possible before anything is built. */
  planOnly?: boolean | undefined;
  /** Told (synchronously) when a signal interrupts the deploy, just before the process exits with 130 (the CLI prints it with --json). */
  onInterrupted?: ((report: DeployInterrupted) => void) | undefined;
}

export interface DeployTargetResult {
  name: string;
  target: string;
  noop: boolean;
  uploads: { path: string; size: number }[];
  switches: string[];
  deletions: string[];
  classes: ClassChange[];
  /** Bytes of file content the plan sends. */
  bytes: number;
  /** Artifacts a previous, interrupted deploy had already delivered. */
  resumed: number;
  drift: Drift | undefined;
  seconds: number;
  /** Hosts this target serves the wipe flag to once the deploy is done (built here or not). */
  wipes: string[];
  /** Their provisioning ids (a host formats once per id). */
  wipeIds: Record<string, string>;
  /** Machines the deploy made it serve a wipe to that it did not serve one to before. */
  newWipes: string[];
  /** Per machine, what the deploy changes on this target (hosts it does not touch are not listed). */
  machines: MachineChange[];
  /** What machines no host has boot (a class, or null: nothing), before → after, when the deploy changes it. */
  unknownMachines?: { from: string | null; to: string | null };
}

export interface DeployResult {
  out: string;
  dryRun: boolean;
  /** Scripts in out/ rewritten from the inventory before deploying. */
  refreshed: string[];
  targets: DeployTargetResult[];
  wipes: Wipe[];
}

const plural = (n: number, w: string, ws = `${w}s`) => `${n} ${n === 1 ? w : ws}`;

/** The files a deploy sends (or would send) to one target, in one phrase: deploy's summary and plan's say it alike. */
export function filesSummary(t: Pick<DeployTargetResult, "uploads" | "bytes" | "switches" | "deletions">): string {
  return `${plural(t.uploads.length, "upload")} (${formatBytes(t.bytes)}), ${plural(t.switches.length, "switch", "switches")}, ${plural(t.deletions.length, "removal")}`;
}

/** What a deploy did (or would do) to one target, for people: a line, then its classes, machines and wipes. */
export function deploySummary(t: DeployTargetResult, dryRun: boolean): string[] {
  const what = t.noop ? "up to date, nothing sent" : filesSummary(t);
  const lines = [`${dryRun ? "would deploy" : "deployed"}: ${what}${dryRun ? "" : ` in ${formatDuration(t.seconds)}`}`];
  for (const c of t.classes) lines.push(`class ${c.name}: ${c.from ?? "(new)"} → ${c.to}`);
  // A dry run printed its machines first, above its files; a deploy lists them here.
  if (!dryRun) for (const m of t.machines) lines.push(formatMachineChange(m));
  if (!dryRun && t.unknownMachines) lines.push(formatUnknownMachines(t.unknownMachines));
  if (t.wipes.length > 0) lines.push(`WIPE on next boot: ${wipeList(t)}${t.newWipes.length > 0 ? ` (new: ${t.newWipes.join(", ")})` : ""}`);
  return lines;
}

/** The hosts a target serves a wipe to, with their ids: `alpha (id 2026-11-30), beta (id 3)`. */
function wipeList(t: DeployTargetResult): string {
  return t.wipes.map((h) => `${h} (id ${t.wipeIds[h] ?? "?"})`).join(", ");
}

/**
 * `plan --target`'s plan for one target, for people: a line, then (indented under it by the caller)
 * machines first (what people check), then the classes and files that make it so, and its wipes.
 * The same lines when another target failed (the error's per-target outcomes).
 */
export function planSummary(t: DeployTargetResult): string[] {
  const count = `${plural(t.machines.length, "machine")}${t.unknownMachines ? " and what unknown machines boot" : ""}`;
  const lines = [t.noop ? "up to date, a deploy would change nothing" : `a deploy would change ${count}`];
  for (const m of t.machines) lines.push(formatMachineChange(m));
  if (t.unknownMachines) lines.push(formatUnknownMachines(t.unknownMachines));
  for (const c of t.classes) lines.push(`class ${c.name}: ${c.from ?? "(new)"} → ${c.to}`);
  if (!t.noop) {
    lines.push(`files: ${filesSummary(t)}`);
    for (const u of t.uploads) lines.push(`  upload  ${u.path} (${formatBytes(u.size)})`);
    for (const p of t.switches) lines.push(`  switch  ${p}`);
    for (const p of t.deletions) lines.push(`  remove  ${p}`);
  }
  if (t.wipes.length > 0) lines.push(`WIPE on next boot after a deploy: ${wipeList(t)}`);
  if (t.newWipes.length > 0) lines.push(`!!! a deploy would serve a disk WIPE to ${t.newWipes.join(", ")}, which ${t.name} did not wipe before: it asks first (or needs --yes)`);
  return lines;
}

export function formatUnknownMachines(u: { from: string | null; to: string | null }): string {
  const what = (c: string | null) => (c === null ? "boot nothing" : `boot class ${c}`);
  return `~ unknown machines  ${what(u.from)} → ${what(u.to)}`;
}

/** How far a deploy got on a target, for the message of an interrupted deploy. */
type Phase = "before" | "uploading" | "switching" | "removing" | "done";

const PHASES: Record<Phase, string> = {
  before: "nothing was changed there: it serves what it served before",
  uploading: "it still serves the previous tree, unchanged (new files were being uploaded beside it)",
  switching: "it was switching scripts and links: each one is switched whole, so every machine finds a complete chain, old or new, but some already get the new one",
  removing: "it serves the new tree; removing what is no longer served was not finished",
  done: "deployed",
};

/**
 * This deploy's lock on a target, should the process end now: not taken, being taken (or waited
 * for), held (so left behind: the process exits without releasing it), or released.
 */
type InterruptLock = "none" | "taking" | "left" | "released";

/** A deploy interrupted by a signal (it exits 130): per target, how far it got, what it serves now, and its lock. */
export interface DeployInterrupted {
  signal: NodeJS.Signals;
  /** `deploy interrupted (SIGINT)`. */
  message: string;
  /** How to finish the job, when a target was left part-way. */
  hint: string | undefined;
  /** The per-target lines people read (what `targets` says). */
  detail: string;
  targets: { name: string; ok: boolean; phase: Phase; serves: string; lock: InterruptLock; error?: { code: "INTERRUPTED"; message: string; hint: string | undefined } }[];
}

/** What a stale lock of this process takes (target-tree.ts's acquireLock judges it so): breaking it from this machine, --break-lock from another. */
const CLEAR_LOCK = "the next `netbuild deploy` (or rollback, gc) from this machine removes it, as its process is gone; from another machine, run it with --break-lock";

function interruptReport(signal: NodeJS.Signals, targets: readonly { name: string; phase: Phase; lock: InterruptLock }[]): DeployInterrupted {
  const lockText: Record<InterruptLock, string> = {
    none: "this deploy had not taken its lock there",
    taking: `this deploy was taking its lock (or waiting for it): if .netbuild/lock there names pid ${process.pid}, it is left behind: ${CLEAR_LOCK}`,
    left: `this deploy's lock (.netbuild/lock) is left behind, not released: ${CLEAR_LOCK}`,
    released: "this deploy had released its lock there",
  };
  const partWay = targets.some((t) => t.phase !== "before" && t.phase !== "done");
  const hint = partWay ? "Run `netbuild deploy` again to finish the job: the paths that were in progress are recorded on the target." : undefined;
  const detail = targets.flatMap((t) => [`  ${t.name}: ${PHASES[t.phase]}`, `    ${lockText[t.lock]}`]).join("\n");
  return {
    signal,
    message: `deploy interrupted (${signal})`,
    hint,
    detail,
    targets: targets.map((t) => ({
      name: t.name,
      ok: t.phase === "done",
      phase: t.phase,
      serves: PHASES[t.phase],
      lock: t.lock,
      ...(t.phase === "done" ? {} : { error: { code: "INTERRUPTED" as const, message: `interrupted (${signal}): ${PHASES[t.phase]}; ${lockText[t.lock]}`, hint: t.phase === "before" ? undefined : hint } }),
    })),
  };
}

/** Room left over after an upload, for the manifest and the file system's own needs. */
const SPACE_MARGIN = 1024 * 1024;


/** Tree entries as the manifest records them (an artifact as out/'s manifest recorded it), and the class scripts' text. */
function entriesOf(treeEntries: readonly TreeEntry[], recorded: Record<string, ManifestEntry>): { entries: Record<string, ManifestEntry>; classScripts: Map<string, string> } {
  const entries: Record<string, ManifestEntry> = {};
  const classScripts = new Map<string, string>();
  for (const e of treeEntries) {
    if (e.kind === "file") {
      entries[e.path] = { kind: "file", sha256: sha256(e.content) };
      if (e.layer === "class") classScripts.set(e.path, e.content);
    } else if (e.kind === "symlink") entries[e.path] = { kind: "symlink", target: e.target };
    else if (recorded[e.path]) entries[e.path] = recorded[e.path]!;
  }
  return { entries, classScripts };
}

/** The tree as a deploy source: its entries with hashes, and the class scripts' text. */
function sourceOf(tree: Tree, recorded: Record<string, ManifestEntry>): { source: SourceTree; classScripts: Map<string, string> } {
  const { entries, classScripts } = entriesOf(tree.entries, recorded);
  const classes = Object.fromEntries(tree.classes.map((c) => [c.name, { kernel: { path: c.kernel.path }, initrd: { path: c.initrd.path } }]));
  for (const c of tree.classes) {
    for (const p of [c.kernel.path, c.initrd.path]) {
      if (!entries[p]) throw new UserError("OUT_NOT_BUILT", `the built tree has no ${p} for class ${c.name}`, { hint: `run \`netbuild build --class ${c.name}\`` });
    }
  }
  return { source: { classes, entries }, classScripts };
}

function planLines(t: Target, plan: DeployPlan, wipeHosts: ReadonlySet<string>): string[] {
  const lines: string[] = [];
  const p = `[${t.name}]`;
  for (const u of plan.uploads) lines.push(`${p} upload  ${u.path} (${formatBytes(u.size)})`);
  for (const c of plan.classes) lines.push(`${p} class   ${c.name}: ${c.from ?? "(new)"} → ${c.to}${c.alreadyThere ? " (already on the target)" : ""}`);
  for (const s of plan.switches) {
    const host = hostOfScript(s.path);
    lines.push(`${p} switch  ${s.path}${s.kind === "symlink" ? ` → ${s.target}` : ""}${host && wipeHosts.has(host) ? "   !!! WIPES ITS DISKS ON NEXT BOOT" : ""}`);
  }
  for (const d of plan.deletions) lines.push(`${p} remove  ${d}`);
  return lines;
}

/**
 * The targets the site file names, read before (and without) the rest of the inventory and its
 * validation, so that connecting starts at once. The full load validates them; a target that then
 * reads differently is connected to again.
 */
async function earlyTargets(root: string, options: DeployOptions): Promise<Target[]> {
  try {
    // Read as the inventory reader reads it (a regular file inside the root, at most 16 MiB) and
    // parsed within the same limits: a hostile site file fails the full load below, not this.
    const { readInsideRoot } = await import("../adapters/inventory-files.ts");
    const { parseYaml } = await import("../core/yaml-doc.ts");
    const read = readInsideRoot(root, realpathSync(root), "netbuild.yaml");
    if (!("text" in read)) return [];
    const parsed = parseYaml(read.text, { lineCounter: new LineCounter(), prettyErrors: false, logLevel: "error" }, false);
    if (!("docs" in parsed) || parsed.docs[0].errors.length > 0) return [];
    const site = parsed.docs[0].toJS({ maxAliasCount: 100 }) as { targets?: Record<string, unknown>; keep?: number };
    if (site === null || typeof site !== "object") return [];
    const keep = typeof site.keep === "number" ? site.keep : 3;
    const targets: Inventory["site"]["targets"] = [];
    for (const [name, value] of Object.entries(site.targets ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const spec = typeof value === "string" ? value : (value as { url?: unknown }).url;
      const parsed = typeof spec === "string" ? parseTarget(spec) : undefined;
      const own = typeof value === "object" && value !== null ? (value as { keep?: unknown }).keep : undefined;
      if (parsed?.ok) targets.push({ name, location: parsed.value, keep: typeof own === "number" ? own : keep, spec: spec as string });
    }
    return selectTargets({ site: { targets, keep } } as unknown as Inventory, options);
  } catch {
    return [];
  }
}

/** The text of out/'s files, by tree path (only .get: read as needed). */
interface Contents {
  get(rel: string): Promise<string | undefined>;
}

/** Contents held in memory (a tree just planned). */
function inMemory(files: ReadonlyMap<string, string>): Contents {
  return { get: async (rel) => files.get(rel) };
}

interface Prepared {
  /** What the tree holds, per file (scripts go to the targets from here). */
  contents: Contents;
  /** Hosts the tree makes format their disks. */
  wipes: string[];
  /** out/ was taken as it stands, not planned again (its manifest records this inventory). */
  trusted: boolean;
  source: SourceTree;
  classScripts: Map<string, string>;
  refreshed: string[];
  keepAsDeployed: Set<string>;
  /** Hosts whose class this machine has not built. */
  unbuiltHosts: Host[];
  /** Classes of the inventory this machine has not built (sorted). */
  unbuiltClasses: string[];
}

/** Does out/ already hold exactly this tree (by its manifest)? Then there is nothing to rewrite there. */
function outIsCurrent(source: SourceTree, recorded: Record<string, ManifestEntry>): boolean {
  // for…in, not Object.entries: 20,000 entries are a dictionary, which Object.entries copies out pair by pair.
  for (const p in source.entries) {
    const e = source.entries[p]!;
    const r = recorded[p];
    if (!r || r.kind !== e.kind) return false;
    if (e.kind === "symlink" ? e.target !== (r as { target: string }).target : e.sha256 !== (r as { sha256: string }).sha256) return false;
  }
  for (const p in recorded) if (recorded[p]!.kind !== "artifact" && !(p in source.entries)) return false;
  return true;
}

/**
 * out/ follows the inventory (host and MAC changes need no nix-build); the deploy source is read
 * from it. Under out/'s lock, from its manifest as read under that lock: a build that finished
 * meanwhile is deployed, never undone.
 */
async function prepare(root: string, inv: Inventory, out: string, manifest: TreeManifest, dryRun: boolean, ctx: Context): Promise<Prepared> {
  if (dryRun) return prepareFrom(root, inv, out, manifest, false, ctx);
  // Read again under the lock only if the file changed since `manifest` was read (a build finished meanwhile).
  return withOutLock(out, "deploy", (m) => ctx.reporter.info(m), async () => prepareFrom(root, inv, out, (await checkOutFolder(out, manifest)) ?? manifest, true, ctx));
}

async function prepareFrom(root: string, inv: Inventory, out: string, manifest: TreeManifest, write: boolean, ctx: Context): Promise<Prepared> {
  const { keptBuilds, treeOf, treeInputs, recordedClasses, recordedIpxe } = await import("./out-tree.ts");
  const builds = keptBuilds(inv, manifest, new Set());
  let contents: Contents;
  let wipes: string[];
  let source: SourceTree;
  let classScripts: Map<string, string>;
  let refreshed: string[] = [];
  let trusted = false;
  // The binaries come from the build: one made before netbuild.yaml changed ipxe.efi holds the other one.
  const efi = `${IPXE_DIR}/${inv.site.ipxe.efi}`;
  if (`${IPXE_DIR}/${IPXE_BIOS}` in manifest.entries && !(efi in manifest.entries)) {
    ctx.reporter.warn(`out/ holds the iPXE binaries of a build made before ipxe.efi became ${inv.site.ipxe.efi}: this deploy sends those; run \`netbuild build\` to copy ${efi}, which the DHCP configuration now names`);
  }
  const planned = manifest.pending?.length || manifest.inputs === undefined ? undefined : treeInputs(inv, recordedClasses(manifest));
  if (planned !== undefined && manifest.inputs === sealInputs(planned, manifest.entries, manifest.classes)) {
    // out/ holds the tree of this very inventory and these builds (the build that wrote it said so):
    // it is taken as it stands, its files read as needed and checked against the manifest.
    contents = outReader(out, manifest);
    wipes = treeWipes(inv.hosts, builds);
    const entries: SourceTree["entries"] = {};
    for (const p in manifest.entries) {
      const e = manifest.entries[p]!;
      entries[p] = e.kind === "file" ? { kind: "file", sha256: e.sha256 } : e;
    }
    source = { classes: Object.fromEntries(Object.entries(manifest.classes).map(([name, c]) => [name, { kernel: { path: c.kernel.path }, initrd: { path: c.initrd.path } }])), entries };
    classScripts = new Map();
    for (const name of Object.keys(manifest.classes)) classScripts.set(`by-class/${name}/ipxe`, (await contents.get(`by-class/${name}/ipxe`)) ?? "");
    trusted = true;
  } else {
    // Talos hosts' machine configs follow the inventory (and the base configs) like host scripts do.
    const configs = inv.hosts.some((h) => h.talos) ? (await (await import("./talos.ts")).renderTalosConfigs(root, inv, builds, ctx)).texts : undefined;
    const tree = treeOf(inv, builds, manifest, configs, await recordedIpxe(out, manifest));
    ({ source, classScripts } = sourceOf(tree, manifest.entries));
    if (write && !outIsCurrent(source, manifest.entries)) {
      refreshed = (await applyTree(out, tree, manifest)).written;
      if (refreshed.length > 0) ctx.reporter.info(`out: ${refreshed.length} script${refreshed.length === 1 ? "" : "s"} updated from the inventory`);
    }
    contents = inMemory(new Map(tree.entries.flatMap((e) => (e.kind === "file" && typeof e.content === "string" ? [[e.path, e.content] as const] : []))));
    wipes = tree.wipes;
  }
  for (const [name, c] of Object.entries(source.classes)) {
    for (const p of [c.kernel.path, c.initrd.path]) {
      const st = await stat(path.join(out, p)).catch(() => undefined);
      if (!st?.isFile()) throw new UserError("OUT_NOT_BUILT", `${path.join(out, p)} is missing from the built tree`, { hint: `run \`netbuild build --class ${name}\`` });
    }
  }
  // Classes this machine has not built: each target keeps serving its own class script and
  // generations for them, and their hosts follow the inventory wherever a target serves the class
  // (followUnbuilt, per target).
  const keepAsDeployed = new Set<string>();
  const unbuilt = new Set(inv.classes.filter((c) => !builds.has(c.name)).map((c) => c.name as string));
  for (const name of unbuilt) keepAsDeployed.add(`by-class/${name}/ipxe`);
  const unbuiltHosts = inv.hosts.filter((h) => unbuilt.has(h.className));
  return { contents, wipes, trusted, source, classScripts, refreshed, keepAsDeployed, unbuiltHosts, unbuiltClasses: [...unbuilt].sort() };
}

/**
 * out/'s files as its manifest records them, read when first asked for: each must be a regular
 * file reached through real folders, with the sha256 the manifest says (else the deploy stops:
 * out/ was changed by hand since netbuild wrote it, and `netbuild build` writes it again).
 */
function outReader(out: string, manifest: TreeManifest): Contents {
  const readFile = outFileReader(out);
  const read = new Map<string, string>();
  return {
    async get(rel) {
      const e = manifest.entries[rel];
      if (e?.kind !== "file") return undefined;
      let text = read.get(rel);
      if (text !== undefined) return text;
      text = await readFile(rel);
      if (text === undefined || sha256(text) !== e.sha256) {
        throw new UserError("OUT_NOT_A_TREE", `${path.join(out, rel)} is not what netbuild wrote there (${text === undefined ? "missing, or not a plain file in a real folder" : "changed since"}), so nothing was deployed`, {
          hint: "run `netbuild build`: it writes the tree again from the inventory",
        });
      }
      read.set(rel, text);
      return text;
    },
  };
}

/**
 * Classes not built here, as one target stands: what it keeps serving, and what it does not serve at
 * all. A host of a class it does not serve is left out (it boots as an unknown machine), unless the
 * target serves it on another class, held there without its wipe (`held`, from followUnbuilt).
 */
function unbuiltNote(target: string, classes: readonly string[], hosts: readonly Host[], deployed: DeployedManifest, held: Followed["disarmed"]): string {
  const count = (c: string) => hosts.filter((h) => h.className === c).length;
  const parts = classes.map((c) => {
    const n = count(c);
    if (deployed.entries[`by-class/${c}/ipxe`]?.kind === "file") {
      return `${c} (${target} keeps serving generation ${deployed.classes[c]?.current ?? "?"}${n === 0 ? "" : `; ${plural(n, "host")} ${n === 1 ? "follows" : "follow"} the inventory`})`;
    }
    if (n === 0) return `${c} (not served by ${target}; no host uses it)`;
    const kept = held.filter((h) => h.className === c);
    const left = n - kept.length;
    const said: string[] = [];
    if (kept.length > 0) {
      const on = [...new Set(kept.map((h) => h.servedClass))].sort();
      said.push(`${kept.length === 1 ? `its host ${kept[0]!.host} is` : `its hosts ${kept.map((h) => h.host).join(", ")} are`} held on class ${on.join(", ")}, which ${target} serves ${kept.length === 1 ? "it" : "them"}, without a wipe`);
    }
    if (left > 0) {
      const its = kept.length > 0 ? (left === 1 ? "its other host is" : `its other ${left} hosts are`) : left === 1 ? "its host is" : `its ${plural(left, "host")} are`;
      said.push(`${its} left out and boot${left === 1 ? "s" : ""} as ${left === 1 ? "an unknown machine" : "unknown machines"}`);
    }
    return `${c} (not served by ${target}: ${said.join("; ")})`;
  });
  return `not built here: ${parts.join(", ")}. Build ${classes.length === 1 ? "it" : "them"} (netbuild build ${classes.map((c) => `--class ${c}`).join(" ")}) to deploy a new generation.`;
}

/** What a target serves at a path netbuild recorded there (read from the target once per deploy), or undefined. */
type ServedText = (rel: string) => Promise<string | undefined>;

function servedReader(fs: TargetFs, deployed: DeployedManifest): ServedText {
  const pending = new Set(deployed.pending);
  const read = new Map<string, Promise<string | undefined>>();
  return (rel) => {
    if (!(rel in deployed.entries) && !pending.has(rel)) return Promise.resolve(undefined);
    if (!read.has(rel)) read.set(rel, fs.readFile(rel).then((b) => b?.toString("utf8"), () => undefined));
    return read.get(rel)!;
  };
}

interface Followed {
  /** Script, config and by-mac entries of hosts of classes not built here that this target serves. */
  entries: TreeEntry[];
  /** Paths kept exactly as deployed (a disarmed Talos host's machine config). */
  keep: string[];
  /** Hosts that keep chaining the class the target serves them, without the wipe flag they had. */
  /** `dropping`: the target serves the wipe now (this deploy drops it); else an earlier deploy held the host already. */
  disarmed: { host: string; file: string; className: string; servedClass: string; dropping: boolean }[];
  /** Hosts whose class is neither built here nor served by the target, and that the target serves otherwise. */
  stuck: { host: string; file: string; className: string }[];
}

/**
 * Hosts of classes this machine has not built, against what one target serves. A host script needs
 * the host's settings and its class's name, not the class's build: where the target serves the
 * class, the host follows the inventory. Where it does not, the host cannot be served as the
 * inventory says; it is not silently kept as it was (that is how a wipe the inventory dropped
 * stayed armed). The one thing always possible is dropping a wipe: such a host keeps chaining the
 * class the target serves it, without the flag.
 */
async function followUnbuilt(servedText: ServedText, deployed: DeployedManifest, hosts: readonly Host[], inv: Inventory, root: string, ctx: Context): Promise<Followed> {
  const out: Followed = { entries: [], keep: [], disarmed: [], stuck: [] };
  if (hosts.length === 0) return out;
  const templates = (await import("../templates.ts")).ipxeTemplates();
  const served = (className: string) => deployed.entries[`by-class/${className}/ipxe`]?.kind === "file";
  // A Talos host that follows the inventory gets its machine config rendered as a built one's is.
  const following = hosts.filter((h) => served(h.className));
  const talosClasses = new Map(following.filter((h) => h.talos).map((h) => [h.className, undefined as never]));
  let configs: ReadonlyMap<string, string> | undefined;
  try {
    configs = talosClasses.size > 0 ? (await (await import("./talos.ts")).renderTalosConfigs(root, inv, talosClasses, ctx)).texts : undefined;
  } catch (e) {
    // A checkout without the base configs (kept out of git) still brings scripts and flags in line;
    // the machine configs stay as the target serves them.
    if (!(e instanceof UserError)) throw e;
    ctx.reporter.warn(`machine configs of Talos classes not built here cannot be rendered in this checkout (${e.message}): the targets keep serving theirs as they are`);
  }
  for (const h of hosts) {
    if (served(h.className)) {
      const config = configs?.get(h.name);
      if (h.talos && config === undefined) out.keep.push(`by-host/${h.name}/talos.yaml`);
      out.entries.push(...hostEntries(h, inv.site, templates, h.talos && config === undefined ? "kept" : config));
      continue;
    }
    const scriptPath = `by-host/${h.name}/ipxe`;
    // Never served here: nothing is kept; the machine boots as unknown (build says so).
    if (!deployed.entries[scriptPath]) continue;
    const text = (await servedText(scriptPath)) ?? "";
    const servedClass = scriptClass(text);
    if (!h.provisionDisks && servedClass !== undefined && served(servedClass)) {
      // Dropping a served wipe, or a host an earlier deploy held that way (its script says so).
      if (scriptWipes(text, inv.site.flagPrefix) || scriptHeld(text)) {
        out.entries.push(...hostEntries(h, inv.site, templates, undefined, { className: servedClass, wipe: false }));
        if (h.talos) out.keep.push(`by-host/${h.name}/talos.yaml`);
        out.disarmed.push({ host: h.name, file: h.file, className: h.className, servedClass, dropping: scriptWipes(text, inv.site.flagPrefix) });
        continue;
      }
    }
    out.stuck.push({ host: h.name, file: h.file, className: h.className });
  }
  return out;
}

/** A switch's script text, when the plan holds it (an iPXE binary's bytes are no script). */
function scriptOf(s: DeployPlan["switches"][number]): string | undefined {
  return s.kind === "file" && typeof s.content === "string" ? s.content : undefined;
}

/**
 * Machines this plan makes the target serve a wipe to that it did not serve one to before: a host
 * whose script gains the flag (or a new host with it), and a MAC that now leads to a wiping script
 * (a MAC added to a wiping host, or moved to one). What the target served is read from the target.
 */
async function newWipes(servedText: ServedText, servedLink: ServedText, plan: DeployPlan, contents: Contents, flagPrefix: string): Promise<string[]> {
  const willServe = async (hostScript: string) => (await contents.get(hostScript)) ?? (await servedText(hostScript)) ?? "";
  // New: no wipe served before, or one of another round (another id: the machine formats again),
  // or now forced (it formats disks it would have left alone).
  const isNew = (before: string | undefined, id: string, forced: boolean) => before === undefined || scriptWipe(before, flagPrefix) !== id || (forced && !scriptWipeForced(before, flagPrefix));
  const found = new Set<string>();
  for (const s of plan.switches) {
    const host = hostOfScript(s.path);
    if (host && s.kind === "file") {
      const script = scriptOf(s) ?? (await contents.get(s.path)) ?? "";
      const id = scriptWipe(script, flagPrefix);
      if (id === undefined) continue;
      if (isNew(await servedText(s.path), id, scriptWipeForced(script, flagPrefix))) found.add(host);
      continue;
    }
    const mac = /^by-mac\/([^/]+)(\/ipxe)?$/.exec(s.path)?.[1];
    if (!mac) continue;
    // Where this MAC leads now (a link to a host, or a copy of a host script) and where it led before.
    const now = s.kind === "symlink" ? /^\.\.\/by-host\/([^/]+)$/.exec(s.target)?.[1] : undefined;
    const scriptNow = s.kind === "symlink" ? (now === undefined ? "" : await willServe(`by-host/${now}/ipxe`)) : (scriptOf(s) ?? (await contents.get(s.path)) ?? "");
    const idNow = scriptWipe(scriptNow, flagPrefix);
    if (idNow === undefined) continue;
    // What the MAC leads to on the target itself (a link repaired by --verify, or left half-switched by a killed deploy, may differ from the record).
    const target = await servedLink(`by-mac/${mac}`);
    const before = target !== undefined ? (/^\.\.\/by-host\/([^/]+)$/.test(target) ? await servedText(`by-host/${target.slice("../by-host/".length)}/ipxe`) : undefined) : await servedText(`by-mac/${mac}/ipxe`);
    if (isNew(before, idNow, scriptWipeForced(scriptNow, flagPrefix))) found.add(`${now ?? (/^# netbuild host (\S+)/m.exec(scriptOf(s) ?? "")?.[1] ?? "?")} (MAC ${mac.replace(/-/g, ":")})`);
  }
  // A host already listed needs no second line for each of its MACs.
  const hosts = new Set([...found].filter((f) => !f.includes(" ")));
  return [...found].filter((f) => !hosts.has(f.split(" ")[0]!)).concat([...hosts]).sort();
}

const MAC_PATH = /^by-mac\/([^/]+)(\/ipxe)?$/;
/** What every by-mac link's target starts with (records.ts holds them to it). */
const HOST_LINK = "../by-host/";

interface MacView {
  /** The host each by-mac entry asked about leads to (undefined: none, or no host script has its copy's hash). */
  hostAt: Map<string, string | undefined>;
  /** The MACs of each host asked about that has any. */
  macs: Map<string, string[]>;
}

/**
 * What a manifest's by-mac entries say, in one walk of it, for what a plan can have changed: the
 * host each of `paths` leads to (and each copy of a host script with one of `scriptShas`, whose host
 * may have changed with it), and the MACs of `hosts`. A by-mac entry is a link to its host's folder,
 * or (copy mode) a byte-for-byte copy of its host's script: the host whose script has its hash (the
 * last such script in the record, should two ever match).
 */
function macView(entries: Record<string, ManifestEntry>, hosts: ReadonlySet<string>, paths: ReadonlySet<string>, scriptShas: ReadonlySet<string>): MacView {
  const view: MacView = { hostAt: new Map(), macs: new Map() };
  if (hosts.size === 0 && paths.size === 0 && scriptShas.size === 0) return view;
  const fileSha = (e: ManifestEntry | undefined) => (e?.kind === "file" ? e.sha256 : undefined);
  const shas = new Set(scriptShas);
  for (const p of [...paths, ...[...hosts].map((h) => `by-host/${h}/ipxe`)]) {
    const sha = fileSha(entries[p]);
    if (sha) shas.add(sha);
  }
  const hostOfSha = new Map<string, string>();
  const found: string[] = [];
  // for…in, not Object.entries: a 20,000-entry record parsed from JSON is a dictionary, which
  // Object.entries copies out pair by pair (several times slower).
  for (const p in entries) {
    const e = entries[p]!;
    if (e.kind === "file" && p.startsWith("by-host/")) {
      const host = shas.has(e.sha256) ? hostOfScript(p) : undefined;
      if (host) hostOfSha.set(e.sha256, host);
    } else if (p.startsWith("by-mac/")) {
      if (paths.has(p) || (e.kind === "symlink" ? hosts.has(e.target.slice(HOST_LINK.length)) : shas.has(fileSha(e) ?? ""))) found.push(p);
    }
  }
  for (const p of found) {
    const mac = MAC_PATH.exec(p)?.[1];
    if (mac === undefined) continue;
    const e = entries[p]!;
    const host = e.kind === "symlink" ? e.target.slice(HOST_LINK.length) : hostOfSha.get(fileSha(e) ?? "");
    if (paths.has(p) || (e.kind === "file" && scriptShas.has(e.sha256))) view.hostAt.set(p, host);
    if (host !== undefined && hosts.has(host)) view.macs.set(host, [...(view.macs.get(host) ?? []), mac]);
  }
  return view;
}

/**
 * The plan per machine: what the target serves each host now (its script, read from the target,
 * and its MACs, from its record) against what it will serve. Only hosts the plan touches are read.
 */
async function machinePlan(servedText: ServedText, plan: DeployPlan, deployed: DeployedManifest, contents: Contents, flagPrefix: string): Promise<MachineChange[]> {
  // The plan's manifest differs from the record only at the paths the plan writes or removes: the
  // hosts it touches are found from those (not from walks of a 10,000-host record per host). A host
  // is touched when its script is written or removed, or when its MACs change: a by-mac entry
  // written or removed, or a copy-mode copy whose host script changed hash.
  const touched = new Set<string>();
  const scriptShas = new Set<string>();
  const macPaths = new Set<string>();
  for (const p of [...plan.switches.map((sw) => sw.path), ...plan.deletions]) {
    const host = hostOfScript(p);
    if (host) {
      touched.add(host);
      for (const e of [deployed.entries[p], plan.manifest.entries[p]]) if (e?.kind === "file") scriptShas.add(e.sha256);
    } else if (MAC_PATH.test(p)) macPaths.add(p);
  }
  // A Talos host whose machine config is rewritten boots differently even with the same script.
  const configs = new Set(plan.switches.flatMap((sw) => /^by-host\/([^/]+)\/talos\.yaml$/.exec(sw.path)?.slice(1, 2) ?? []));
  const hosts = new Set([...touched, ...configs]);
  let was = macView(deployed.entries, hosts, macPaths, scriptShas);
  let will = macView(plan.manifest.entries, hosts, macPaths, scriptShas);
  // Hosts a by-mac entry leads to before or after, where that changed: their MACs may have changed.
  const moved = new Set<string>();
  for (const p of new Set([...was.hostAt.keys(), ...will.hostAt.keys()])) {
    const [b, a] = [was.hostAt.get(p), will.hostAt.get(p)];
    if (b === a) continue;
    if (b !== undefined) moved.add(b);
    if (a !== undefined) moved.add(a);
  }
  if ([...moved].some((h) => !hosts.has(h))) {
    for (const h of moved) hosts.add(h);
    was = macView(deployed.entries, hosts, new Set(), new Set());
    will = macView(plan.manifest.entries, hosts, new Set(), new Set());
  }
  const [macsBefore, macsAfter] = [was.macs, will.macs];
  const sameMacs = (a: string[] | undefined, b: string[] | undefined) => (a ?? []).slice().sort().join() === (b ?? []).slice().sort().join();
  for (const h of moved) if (!sameMacs(macsBefore.get(h), macsAfter.get(h))) touched.add(h);
  const before = new Map<string, ServedHost>();
  const after = new Map<string, ServedHost>();
  await pool([...touched], 16, async (h) => {
    const rel = `by-host/${h}/ipxe`;
    const was = deployed.entries[rel] ? await servedText(rel) : undefined;
    if (was !== undefined) before.set(h, { script: was, macs: macsBefore.get(h) ?? [] });
    const will = plan.manifest.entries[rel] ? ((await contents.get(rel)) ?? was) : undefined;
    if (will !== undefined) after.set(h, { script: will, macs: macsAfter.get(h) ?? [] });
  });
  const current = (m: DeployedManifest) => Object.fromEntries(Object.entries(m.classes).map(([name, c]) => [name, c.current]));
  for (const h of configs) {
    if (touched.has(h)) continue;
    const rel = `by-host/${h}/ipxe`;
    const script = (await contents.get(rel)) ?? (await servedText(rel));
    if (script === undefined) continue;
    before.set(h, { script, macs: macsBefore.get(h) ?? [] });
    after.set(h, { script, macs: macsAfter.get(h) ?? [] });
  }
  return machineChanges(before, after, flagPrefix, { before: current(deployed), after: current(plan.manifest) }, configs);
}

/** What boot.ipxe gives machines no host has, before and after (a class name, or null: nothing), when the plan changes it. */
async function unknownMachinesPlan(servedText: ServedText, plan: DeployPlan, contents: Contents): Promise<{ from: string | null; to: string | null } | undefined> {
  if (!plan.switches.some((sw) => sw.path === "boot.ipxe")) return undefined;
  const classOf = (text: string | undefined) => (text === undefined ? null : (/^chain by-class\/([^/\s]+)\/ipxe /m.exec(text)?.[1] ?? null));
  const from = classOf(await servedText("boot.ipxe"));
  const to = classOf(await contents.get("boot.ipxe"));
  return from === to ? undefined : { from, to };
}

/** Asks on the terminal (or refuses without one); true when it asked and was answered yes, false with --yes. */
async function confirmWipes(t: Target, hosts: readonly string[], hostFile: ReadonlyMap<string, string>, options: DeployOptions, ctx: Context): Promise<boolean> {
  if (options.yes) return false;
  const list = hosts.map((h) => `${h} (${hostFile.get(h.split(" ")[0]!) ?? "?"})`).join(", ");
  const interactive = Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY) && ctx.env["CI"] !== "true";
  if (!interactive) {
    throw new UserError("WIPE_NOT_CONFIRMED", `this deploy would make ${targetLabel(t)} serve a disk WIPE to ${hosts.length} host${hosts.length === 1 ? "" : "s"} it did not wipe before: ${list}; nothing was changed`, {
      hint: "check that these machines may lose their disks on their next boot, then run again with --yes",
    });
  }
  // One question at a time on the terminal, however many targets ask (and whatever they ask: a passphrase too).
  const { askOnTerminal } = await import("../adapters/terminal.ts");
  const answer = await askOnTerminal(process.stdin, process.stderr, `!!! [${t.name}] this deploy makes ${targetLabel(t)} serve a disk WIPE to ${hosts.length} host${hosts.length === 1 ? "" : "s"} it did not wipe before:\n!!!   ${list}\n!!! Their disks are FORMATTED on their next boot. Type "yes" to deploy: `, () => ctx.reporter.hold());
  if (answer.trim() !== "yes") throw new UserError("WIPE_NOT_CONFIRMED", `not confirmed: nothing was deployed to ${targetLabel(t)}`, { hint: "run again and answer yes, or pass --yes" });
  return true;
}

/** Refuses a plan whose paths someone else's files stand at (netbuild never overwrites them). */
function refuseFound(t: Target, found: readonly string[]): void {
  if (found.length === 0) return;
  throw new UserError("TARGET_CONFLICT", `${targetLabel(t)} already has ${found.length} path${found.length === 1 ? "" : "s"} netbuild would write but did not create: ${found.slice(0, 5).join(", ")}${found.length > 5 ? ", …" : ""}`, {
    hint: "netbuild never overwrites files it did not write: move them away, or deploy into an empty folder",
  });
}

export async function deploy(options: DeployOptions, ctx: Context): Promise<DeployResult> {
  const root = rootOf(options, ctx);
  const dryRun = Boolean(options.dryRun || options.planOnly);
  // NETBUILD_TRACE=1: when each phase ended, in ms since the process started (where a slow deploy spends its time).
  const trace = ctx.env["NETBUILD_TRACE"] ? (m: string) => ctx.reporter.info(`trace ${performance.now().toFixed(0).padStart(6)} ms  ${m}`) : () => undefined;
  // Connecting takes a while: it starts from the site file alone, while the inventory loads and
  // out/ is brought up to date. Anything wrong in the site file is reported by the full load.
  const early = await earlyTargets(root, options);
  // Who deploys, from what: recorded only by a deploy that changes something (a dry run reads nothing of git).
  const origin = dryRun ? Promise.resolve(undefined) : (await import("../adapters/origin.ts")).deployOrigin(root, ctx.env);
  const requested: Promise<unknown>[] = [];
  // A deploy that refuses before it needs a target gives its connection up: a server stalled in the
  // handshake must not hold the refusal back until the connect timeout.
  const giveUp = new Map<string, AbortController>();
  /** Starts connecting to `t`, a connection `close` can give up. */
  const connect = (t: Target, onRequested?: () => void) => {
    const controller = new AbortController();
    giveUp.set(t.name, controller);
    const p = openTarget(t, root, options, ctx, onRequested, controller.signal);
    p.catch(() => undefined); // awaited (and reported) per target below
    return p;
  };
  const opening = new Map(
    early.map((t) => {
      let onRequested: () => void = () => undefined;
      const p = connect(t, () => onRequested());
      if (t.location.kind !== "local") requested.push(new Promise<void>((resolve) => ((onRequested = resolve), p.then(() => resolve(), () => resolve()))));
      return [t.name, p] as const;
    }),
  );
  trace("connecting (from the site file)");
  // The handshake takes a few round trips, each waiting for this thread, which the inventory and
  // out/ keep busy for a while: they start once each SSH session has been asked for (or after a
  // second at most), and run while the server starts its sftp-server.
  if (requested.length > 0) {
    let timer: NodeJS.Timeout | undefined;
    const asked = await Promise.race([Promise.all(requested).then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 1000)).unref())]);
    clearTimeout(timer);
    trace(asked ? "SSH sessions asked for" : "SSH sessions not asked for within 1 s: going on");
  }
  const close = (name: string) => {
    giveUp.get(name)?.abort();
    return opening.get(name)!.then((fs) => fs.close(), () => undefined);
  };
  const closeAll = () => Promise.all([...opening.keys()].map(close));
  let inv: Inventory;
  let targets: Target[];
  try {
    inv = await loadRoot(root, ctx);
    trace("inventory loaded");
    targets = selectTargets(inv, options);
  } catch (e) {
    await closeAll();
    throw e;
  }
  for (const e of early) {
    // The connection depends on where the target is, nothing else (its keep, its accessLog).
    const t = targets.find((x) => x.name === e.name);
    if (t && JSON.stringify(e.location) === JSON.stringify(t.location)) continue;
    void close(e.name);
    opening.delete(e.name);
  }
  for (const t of targets) if (!opening.has(t.name)) opening.set(t.name, connect(t));
  let out: string;
  try {
    out = outOf(options, ctx, root, inv);
    for (const t of targets) if (t.location.kind === "local") refuseInventoryFolder(root, path.resolve(root, t.location.path), `target ${t.name}`);
  } catch (e) {
    // The connections started above would keep the process alive.
    await closeAll();
    throw e;
  }
  // A local target must not be the build output (or inside it, or hold it): deploy would copy a tree onto itself.
  for (const t of targets) {
    if (t.location.kind !== "local") continue;
    const dir = path.resolve(root, t.location.path);
    const within = (a: string, b: string) => a === b || a.startsWith(b + path.sep);
    if (within(dir, out) || within(out, dir)) {
      await closeAll();
      throw new UserError("USAGE", `target ${t.name} (${dir}) overlaps the build output ${out}`, { hint: "deploy to another folder: out/ is what deploy copies from" });
    }
  }
  const manifest = await checkOutFolder(out).catch(async (e: unknown) => {
    await closeAll();
    throw e;
  });
  if ((!manifest || Object.keys(manifest.classes).length === 0) && !options.planOnly) {
    await closeAll();
    throw new UserError("OUT_NOT_BUILT", `${path.relative(ctx.cwd, out) || "."} holds no built classes, so there is nothing to deploy`, { hint: "run `netbuild build` first" });
  }


  let prepared: Prepared;
  try {
    prepared = await prepare(root, inv, out, manifest ?? { format: 1, classes: {}, entries: {} }, dryRun, ctx);
    trace(prepared.trusted ? "out/ checked: the tree of this inventory, as its manifest records (not planned again)" : "out/ checked, tree planned");
  } catch (e) {
    await closeAll();
    throw e;
  }
  const { contents, source, classScripts, refreshed, keepAsDeployed, unbuiltHosts, unbuiltClasses } = prepared;

  const hostFile = new Map(inv.hosts.map((h) => [h.name as string, h.file]));
  const { announceWipes, outBinary, wipesOf } = await import("./out-tree.ts");
  const wipes = wipesOf(inv, prepared.wipes);
  if (!options.planOnly) announceWipes(ctx.reporter, wipes);
  const wipeHosts = new Set(prepared.wipes);

  // Ctrl-C (or a TERM) during a deploy: say, per target, what it serves now, what becomes of its
  // lock, and how it gets finished. The process exits at once (no lock is released on the way).
  const phase = new Map<string, Phase>(targets.map((t) => [t.name, "before"]));
  const locks = new Map<string, InterruptLock>(targets.map((t) => [t.name, "none"]));
  const onInterrupt = (signal: NodeJS.Signals) => {
    const report = interruptReport(signal, targets.map((t) => ({ name: t.name, phase: phase.get(t.name)!, lock: locks.get(t.name)! })));
    ctx.reporter.danger(`netbuild ${report.message}:\n${report.detail}`);
    if (report.hint) ctx.reporter.info(report.hint);
    options.onInterrupted?.(report);
    process.exit(130);
  };
  const { onInterrupt: handleInterrupt } = await import("../adapters/interrupt.ts");
  const stopHandling = dryRun ? () => undefined : handleInterrupt(onInterrupt);
  const results = await forEachTarget(
    targets,
    async (t): Promise<DeployTargetResult> => {
      const started = Date.now();
      const say = (m: string) => ctx.reporter.info(`[${t.name}] ${m}`);
      const fs = await opening.get(t.name)!;
      trace(`[${t.name}] connected`);
      try {
        if (!dryRun) locks.set(t.name, "taking");
        const lock = dryRun ? undefined : await acquireLock(fs, "deploy", { wait: options.wait, breakLock: options.breakLock, onWait: say }).catch((e: unknown) => (locks.set(t.name, "none"), Promise.reject(e)));
        if (lock) locks.set(t.name, "left");
        try {
          const deployed = (await readDeployed(fs)) ?? emptyManifest();
          trace(`[${t.name}] locked, manifest read`);
          let drift: Drift | undefined;
          if (options.verify) {
            say("verifying every deployed file (hashes included)");
            drift = await verifyTarget(fs, deployed);
            for (const p of drift.missing) ctx.reporter.warn(`[${t.name}] ${p} is missing: it will be written again`);
            for (const p of drift.changed) ctx.reporter.warn(`[${t.name}] ${p} was changed on the target: it will be written again`);
            for (const p of drift.extra) ctx.reporter.warn(`[${t.name}] ${p} was not written by netbuild (left alone)`);
          }
          const drifted = new Set([...(drift?.missing ?? []), ...(drift?.changed ?? [])]);
          // Hosts of classes not built here follow the inventory where this target serves their class.
          const servedText = servedReader(fs, deployed);
          const followed = await followUnbuilt(servedText, deployed, unbuiltHosts, inv, root, ctx);
          if (followed.stuck.length > 0) {
            const lines = followed.stuck.map((h) => `host ${h.host} (${h.file}): class ${h.className} is not built here and ${t.name} does not serve it`);
            throw new UserError("CLASS_NOT_SERVED", `${lines.join("\n")}\nso ${t.name} cannot serve ${followed.stuck.length === 1 ? "this host" : "these hosts"} as the inventory says, and would go on serving ${followed.stuck.length === 1 ? "it" : "them"} as before; nothing was changed`, {
              hint: `build the class here (\`netbuild build --class ${followed.stuck[0]!.className}\`) and deploy again, or deploy from the checkout that builds it`,
            });
          }
          if (unbuiltClasses.length > 0) ctx.reporter.warn(`[${t.name}] ${unbuiltNote(t.name, unbuiltClasses, unbuiltHosts, deployed, followed.disarmed)}`);
          for (const d of followed.disarmed) {
            if (d.dropping) ctx.reporter.danger(`[${t.name}] host ${d.host}: its wipe flag is dropped, but class ${d.className} is neither built here nor served by ${t.name}: it keeps booting class ${d.servedClass}, now without the wipe. Build ${d.className} to move it.`);
            else ctx.reporter.warn(`[${t.name}] host ${d.host} stays held on class ${d.servedClass} without a wipe: its class ${d.className} is neither built here nor served by ${t.name}. Build ${d.className} to move it.`);
          }
          // boot.ipxe sends unknown machines to the class unknownMachines names: one not built here
          // but served by this target stays what they boot (a checkout that did not build it must not
          // make the target strict).
          const unknown = inv.site.unknownClass;
          if (unknown !== null && unbuiltClasses.includes(unknown) && deployed.entries[`by-class/${unknown}/ipxe`]?.kind === "file") {
            const { ipxeTemplates } = await import("../templates.ts");
            followed.entries.push({ kind: "file", layer: "entry", path: "boot.ipxe", content: ipxeTemplates().boot({ unknownClass: unknown }) });
          }
          const extra = entriesOf(followed.entries, {}).entries;
          // (Copied only when this target adds to them: a 10,000-host tree is 20,000 entries.)
          const followedContents = new Map(followed.entries.flatMap((e) => (e.kind === "file" && typeof e.content === "string" ? [[e.path, e.content] as const] : [])));
          const targetContents: Contents = followedContents.size === 0 ? contents : { get: async (rel) => followedContents.get(rel) ?? contents.get(rel) };
          const entries = followed.entries.length === 0 ? source.entries : { ...source.entries, ...extra };
          const plan = planDeploy({ source: { classes: source.classes, entries }, classScripts, deployed, keep: t.keep, drifted, keepAsDeployed: new Set([...keepAsDeployed, ...followed.keep]), origin: await origin });
          trace(`[${t.name}] planned`);
          // Scripts go from memory (the trees just planned hold them), not read back from out/.
          // (The iPXE binaries are bytes, not text: read from out/ and checked here, before anything is
          // sent. One out/ does not hold was kept as the target serves it: it cannot be written again.)
          for (const sw of plan.switches) {
            if (sw.kind !== "file" || sw.content !== undefined) continue;
            if (!isBinaryPath(sw.path)) sw.content = await targetContents.get(sw.path);
            else if (source.entries[sw.path]?.kind === "file") sw.content = await outBinary(out, sw.path, sw.sha256);
          }
          // A path kept as the target serves it (a class not built here, an iPXE binary this checkout has none of) that drifted: this checkout has nothing to rewrite it with.
          const unwritable = plan.switches.filter((sw) => sw.kind === "file" && sw.content === undefined && sw.layer !== "class" && (isBinaryPath(sw.path) || !existsSync(path.join(out, sw.path))));
          // One a deploy that did not finish was writing stays pending: what is there may be half of it.
          const wasPending = new Set(deployed.pending);
          for (const sw of unwritable) {
            const why = isBinaryPath(sw.path) ? "this checkout's tree has no iPXE binaries" : "its class is not built here";
            const fix = isBinaryPath(sw.path) ? "deploy from a checkout that has them (ipxe.binaries)" : "deploy from a checkout that builds it";
            const what = wasPending.has(sw.path) ? "may differ from what was deployed (a deploy that did not finish was writing it)" : "differs from what was deployed";
            ctx.reporter.warn(`[${t.name}] ${sw.path} ${what}, and this checkout cannot write it again (${why}): left as it is${wasPending.has(sw.path) ? ", still pending" : ""}; ${fix}`);
          }
          for (const p of plan.manifest.pending) if (isBinaryPath(p) && !(p in plan.manifest.entries)) ctx.reporter.warn(`[${t.name}] ${p} was being written by a deploy that did not finish, and this checkout cannot finish it (this checkout's tree has no iPXE binaries): left as it is, still pending; deploy from a checkout that has them (ipxe.binaries)`);
          const keptPending = unwritable.filter((sw) => wasPending.has(sw.path)).map((sw) => sw.path);
          if (keptPending.length > 0) plan.manifest.pending = [...new Set([...plan.manifest.pending, ...keptPending])].sort();
          if (unwritable.length > 0) plan.switches = plan.switches.filter((sw) => !unwritable.includes(sw));
          const arming = await newWipes(servedText, (rel) => fs.readlink(rel).catch(() => undefined), plan, targetContents, inv.site.flagPrefix);
          const machines = await machinePlan(servedText, plan, deployed, targetContents, inv.site.flagPrefix);
          const unknownMachines = await unknownMachinesPlan(servedText, plan, targetContents);
          const servedWipes = new Set([...wipeHosts, ...followed.entries.flatMap((e) => (e.kind === "file" && e.layer === "host" && scriptWipes(e.content, inv.site.flagPrefix) ? [e.path.split("/")[1]!] : []))]);
          const served = new Map(wipesOf(inv, [...servedWipes].sort()).map((w) => [w.name, w]));
          for (const h of followed.entries.flatMap((e) => (e.kind === "file" && e.layer === "host" ? [e.path.split("/")[1]!] : []))) {
            if (servedWipes.has(h) && !wipeHosts.has(h)) ctx.reporter.danger(`!!! [${t.name}] ${h} (class ${unbuiltHosts.find((x) => x.name === h)?.className}, not built here) will FORMAT (WIPE) ITS DISKS on the next boot (provision.disks: true, id ${served.get(h)!.id} in ${hostFile.get(h)})`);
          }
          for (const h of plan.held) {
            ctx.reporter.warn(`[${t.name}] class ${h.name} stays rolled back to ${h.current}: out/ holds ${h.built}, which was rolled back. To deploy it anyway: netbuild rollback --class ${h.name} --generation ${h.built}`);
          }
          let { found, absent } = await conflicts(fs, plan, deployed);
          refuseFound(t, found);
          const base = {
            name: t.name,
            target: fs.description,
            noop: isNoop(plan),
            uploads: plan.uploads.map((u) => ({ path: u.path, size: u.size })),
            switches: plan.switches.map((s) => s.path),
            deletions: plan.deletions,
            classes: plan.classes,
            bytes: plan.bytes,
            drift,
            wipes: [...served.keys()],
            wipeIds: Object.fromEntries([...served.values()].map((w) => [w.name, w.id])),
            newWipes: arming,
            machines,
            ...(unknownMachines ? { unknownMachines } : {}),
          };
          if (dryRun) {
            if (options.planOnly) return { ...base, resumed: 0, seconds: (Date.now() - started) / 1000 };
            // Machines first (what people check), then the files that make it so.
            for (const m of machines) ctx.reporter.info(`[${t.name}] ${formatMachineChange(m)}`);
            if (unknownMachines) ctx.reporter.info(`[${t.name}] ${formatUnknownMachines(unknownMachines)}`);
            for (const l of planLines(t, plan, servedWipes)) ctx.reporter.info(l);
            if (arming.length > 0) ctx.reporter.danger(`!!! [${t.name}] a deploy would serve a disk WIPE to ${arming.join(", ")}, which ${t.name} did not wipe before: it asks first (or needs --yes)`);
            return { ...base, resumed: 0, seconds: (Date.now() - started) / 1000 };
          }
          if (plan.bytes > 0) {
            // A full disk found before anything is sent, not half-way through a 300 MB initrd.
            const free = await fs.freeBytes();
            if (free !== undefined && free < plan.bytes + SPACE_MARGIN) {
              throw new UserError("DEPLOY_FAILED", `${targetLabel(t)} has ${formatBytes(free)} free, and this deploy uploads ${formatBytes(plan.bytes)}; nothing was changed`, {
                hint: `free space on the boot server: \`netbuild gc --target ${t.name}\` removes generations no longer kept (or lower keep in the site file)`,
              });
            }
          }
          // The question may wait a long while, and someone may change the target meanwhile: it is looked at again.
          if (arming.length > 0 && (await confirmWipes(t, arming, hostFile, options, ctx))) {
            const changed = lock && (await changedSince(fs, lock, deployed));
            if (changed) throw new UserError("DEPLOY_LOCKED", `${targetLabel(t)} changed while the question waited: ${changed}; nothing was deployed`, { hint: "deploy again: its plan, and the question, are then made from what the target holds" });
            ({ found, absent } = await conflictsAgain(fs, plan, deployed));
            refuseFound(t, found);
          }
          if (isNoop(plan)) say(`up to date: nothing to upload (${plan.unchanged} paths checked against ${fs.description}/.netbuild/deployed.json)`);
          phase.set(t.name, "uploading");
          const applied = await applyDeploy(fs, out, plan, deployed, {
            onEvent: (e) => {
              phase.set(t.name, e.action === "switch" ? "switching" : e.action === "remove" ? "removing" : "uploading");
              if (e.action === "upload") say(`upload ${e.path} (${formatBytes(e.bytes ?? 0)})`);
              else if (e.action === "resume") say(`${e.path} arrived complete in an earlier deploy: not sent again`);
            },
            onProgress: (p, sent, total) => ctx.reporter.transfer(`[${t.name}] ${p}`, sent, total),
          }, absent);
          phase.set(t.name, "done");
          for (const p of applied.kept) ctx.reporter.warn(`[${t.name}] ${notRemoved(p, deployed)}`);
          const secs = (Date.now() - started) / 1000;
          // The summary (machines included) is the command's result, printed once by the CLI.
          return { ...base, resumed: applied.resumed, seconds: secs };
        } finally {
          trace(`[${t.name}] applied`);
          await lock?.release();
          if (lock) locks.set(t.name, "released");
        }
      } finally {
        await fs.close();
        trace(`[${t.name}] closed`);
      }
    },
    ctx.reporter,
    // One target of several failed: the others' outcomes, a plan's in full (its machines included).
    (r) => (options.planOnly ? planSummary(r) : deploySummary(r, dryRun)),
    options.planOnly ? "TARGETS_FAILED" : "DEPLOY_FAILED",
  ).finally(() => {
    stopHandling();
  });
  return { out, dryRun, refreshed, targets: results, wipes };
}
