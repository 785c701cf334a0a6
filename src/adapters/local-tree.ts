// Applies a planned Tree to a local folder (the output tree, which a boot server may be serving
// while we write). Order makes every intermediate state bootable: immutable artifacts first, then
// class scripts, host scripts, by-mac entries and boot.ipxe, each replaced by rename(2); only then
// is anything no longer referenced removed. Only what the tree's manifest says netbuild created is
// ever deleted.
//
// At 10,000 hosts the tree is 30,000 paths, so what stands in out/ is read once up front (a listing
// per folder, an lstat per file: OutScan), a file recorded with the size, mtime and inode it still
// has is taken as written without reading it back, and scripts and links are written with
// synchronous calls (one awaited call per path at a time left the main thread waiting on the
// thread pool for most of a build). Paths nothing can reach yet are created in place; existing
// ones are replaced by rename(2).
import { constants as fsConstants, mkdirSync, readdirSync, readlinkSync, rmdirSync, rmSync, symlinkSync, unlinkSync, type BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.ts";
import { quoted } from "../core/excerpt.ts";
import { isLeftoverName, tempName } from "../core/paths.ts";
import { NEWER_FORMAT_HINT, newerFormat, parseTreeManifest, recordFormat } from "../core/records.ts";
import { LAYERS, layerOf, sealInputs, type FileStamp, type ManifestEntry, type Tree, type TreeEntry, type TreeManifest } from "../core/tree.ts";
import { checkRel, conflictError, ConfinedRoot, describeKind, type Blocked, type PathKind } from "./confine.ts";
import { copyFileAtomic, createFileSync, lstatOrUndefined, lstatSyncOrUndefined, holdsSync, readIfExists, replaceFileSync, replaceLinkSync, sha256, stampOf, writeFileAtomic } from "./files.ts";
import { localKind, localTargetFs } from "./target-fs.ts";
import { acquireLock } from "./target-tree.ts";

export const MANIFEST_PATH = ".netbuild/manifest.json";

export type { ManifestEntry, TreeManifest } from "../core/tree.ts";

const RESTORE_HINT = "it was edited or damaged: restore it (from a backup or git), or remove out/ and build again (netbuild then starts a new tree; nothing outside out/ is touched)";

/** How out/'s manifest stood when it was read (device, inode, size, mtime, ctime), and its text. */
interface ManifestRead {
  file: string;
  stat: string;
  text: string;
}
const manifestReads = new WeakMap<TreeManifest, ManifestRead>();

const statKey = (st: BigIntStats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * out/'s manifest, checked. `reuse`: a manifest read from this out/ before (build reads it before
 * nix-build and again under the lock); while the file still stands as it did then, it is not read
 * and checked again (a rewrite is a rename: another inode).
 */
export async function readManifest(out: string, reuse?: TreeManifest): Promise<TreeManifest | undefined> {
  const file = path.join(out, MANIFEST_PATH);
  for (const rel of [".netbuild", MANIFEST_PATH]) {
    const kind = localKind(await lstatOrUndefined(path.join(out, rel)));
    if (kind === undefined) return undefined;
    if (kind !== (rel === ".netbuild" ? "dir" : "file")) throw conflictError("OUT_CONFLICT", out, [{ path: rel, what: `${describeKind(kind)}, where netbuild keeps its ${rel === ".netbuild" ? "records (a real folder)" : "manifest (a regular file)"}` }]);
  }
  // Stat before reading: a change in between makes the next comparison fail, never pass.
  const st = lstatSyncOrUndefined(file);
  const before = reuse && manifestReads.get(reuse);
  if (st && before && before.file === file && before.stat === statKey(st)) return reuse;
  const text = (await readIfExists(file)) ?? "";
  const parsed = await parseTreeManifest(text);
  if (!parsed.ok) {
    throw new UserError("OUT_NOT_A_TREE", `${file} is not a manifest netbuild can trust, so nothing was changed: ${parsed.problems.slice(0, 5).join("; ")}${parsed.problems.length > 5 ? `; and ${parsed.problems.length - 5} more` : ""}`, { hint: newerFormat(parsed.problems) ? NEWER_FORMAT_HINT : RESTORE_HINT });
  }
  if (st) manifestReads.set(parsed.value, { file, stat: statKey(st), text });
  return parsed.value;
}

/**
 * Refuses to write into a folder netbuild did not make: `--out ~` must not scatter files through a
 * home folder, and a tree from elsewhere must not be partly overwritten. `reuse`: see readManifest.
 */
export async function checkOutFolder(out: string, reuse?: TreeManifest): Promise<TreeManifest | undefined> {
  const own = await lstatOrUndefined(out);
  if (own === undefined) return undefined;
  // The output folder itself may be a link the user made; then it must lead to a folder.
  const st = own.isSymbolicLink() ? await fs.stat(out).catch(() => undefined) : own;
  if (!st) throw new UserError("OUT_NOT_A_TREE", `${out} is a symlink to ${quoted(await fs.readlink(out))}, which does not exist (or cannot be reached)`, { hint: "create the folder it points to, or pass --out with a folder" });
  if (!st.isDirectory()) throw new UserError("OUT_NOT_A_TREE", `${out} is ${describeKind(localKind(st)!)}, not a folder`, { hint: "pass --out with a folder" });
  const manifest = await readManifest(out, reuse);
  if (manifest) return manifest;
  const names = await fs.readdir(out);
  // A build that was stopped before it first recorded anything leaves only its lock (or nothing).
  const onlyLock = names.length === 1 && names[0] === ".netbuild" && (await fs.readdir(path.join(out, ".netbuild")).catch(() => ["?"])).every((n) => n.startsWith("lock"));
  if (names.length > 0 && !onlyLock) {
    throw new UserError("OUT_NOT_A_TREE", `${out} is not empty and is not a netbuild tree (it has no ${MANIFEST_PATH})`, { hint: "give --out an empty or new folder; netbuild only writes into folders it made" });
  }
  return undefined;
}

/**
 * Runs `fn` holding out/'s lock (`.netbuild/lock`, as on a target): two builds (or a build and a
 * deploy's refresh) writing one out/ at once would leave a manifest that does not match its files.
 * A second run waits, and says for whom; a lock left by a process that is gone is broken.
 */
export async function withOutLock<T>(out: string, command: string, onWait: (message: string) => void, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(out, { recursive: true });
  const lock = await acquireLock(localTargetFs(out, "OUT_CONFLICT"), command, { wait: true, onWait: (m) => onWait(`${out}: ${m}`) });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export interface ApplyResult {
  written: string[];
  unchanged: number;
  removed: string[];
  /** Kept artifacts of a previous build that had vanished from the folder. */
  missingKept: string[];
}

export interface ApplyProgress {
  (event: { path: string; action: "write" | "copy" | "remove"; bytes?: number }): void;
}

export interface ApplyOptions {
  /** Read back every recorded script and link instead of trusting what lstat says (`build --verify`). */
  verify?: boolean;
}

/**
 * out/ under the confinement rule: its folders found by lstat, made real. Synchronous calls behind
 * the probe: a cold tree makes 10,000 host folders, one awaited thread-pool trip each otherwise.
 * A folder the scan found missing is taken as missing the first time it is asked about, without
 * another lstat: if something appeared there since, mkdir fails and the next answer is lstat's.
 */
function outRoot(out: string, scan?: OutScan): ConfinedRoot {
  const asked = new Set<string>();
  const lstat = async (rel: string): Promise<PathKind | undefined> => {
    if (scan?.wasAbsent(rel) && !asked.has(rel)) {
      asked.add(rel);
      return undefined;
    }
    return localKind(lstatSyncOrUndefined(path.join(out, rel)));
  };
  return new ConfinedRoot(out, { lstat, mkdir: async (rel) => void mkdirSync(path.join(out, rel)) }, "OUT_CONFLICT");
}

/** The paths a stopped build was writing (out/'s manifest's `pending`), as a set: looked up once per tree entry. */
const pendingSets = new WeakMap<TreeManifest, ReadonlySet<string>>();
function isPending(old: TreeManifest | undefined, rel: string): boolean {
  if (!old?.pending) return false;
  let set = pendingSets.get(old);
  if (!set) pendingSets.set(old, (set = new Set(old.pending)));
  return set.has(rel);
}

/** A path netbuild recorded in out/, or was writing when a build was stopped. */
function owned(old: TreeManifest | undefined, rel: string): boolean {
  return old?.entries[rel] !== undefined || isPending(old, rel);
}

/** by-mac/<mac> as a link of ours (recorded, or being written by a stopped build), which a copy-mode folder may replace. */
function isOurMacLink(old: TreeManifest | undefined, rel: string): boolean {
  return rel.startsWith("by-mac/") && rel.split("/").length === 2 && (old?.entries[rel]?.kind === "symlink" || isPending(old, rel));
}

const parentOf = (rel: string) => (rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : "");

function direntKind(d: { isSymbolicLink(): boolean; isDirectory(): boolean; isFile(): boolean }): PathKind {
  return d.isSymbolicLink() ? "symlink" : d.isDirectory() ? "dir" : d.isFile() ? "file" : "other";
}

/**
 * What stands in out/ where the tree goes, read once before anything is written: each folder on
 * the way listed once (readdir's file types are lstat's: a link is reported as a link, never
 * followed; Node lstats an entry whose type the file system does not give), and each file and
 * artifact lstat'ed once, for the size, mtime and inode that say whether it is still what netbuild
 * wrote. A folder is listed only once its own folder has been found to be a real one.
 */
class OutScan {
  private readonly listings = new Map<string, Map<string, PathKind>>();
  private readonly folders = new Map<string, Blocked | "dir" | "absent">();
  /** lstat of the files and artifacts of the tree that are there. */
  readonly stats = new Map<string, BigIntStats>();

  constructor(private readonly out: string) {}

  /** What `rel` is, from its folder's listing (its folder is a real one). */
  private listed(rel: string): PathKind | undefined {
    const dir = parentOf(rel);
    let listing = this.listings.get(dir);
    if (!listing) {
      listing = new Map(readdirSync(dir === "" ? this.out : path.join(this.out, dir), { withFileTypes: true }).map((d) => [d.name, direntKind(d)]));
      this.listings.set(dir, listing);
    }
    return listing.get(rel.slice(dir.length === 0 ? 0 : dir.length + 1));
  }

  /** A folder of the tree: a real folder, missing (with nothing in the way above it), or the first thing in the way. */
  folder(dir: string): Blocked | "dir" | "absent" {
    if (dir === "") return "dir";
    let state = this.folders.get(dir);
    if (state === undefined) {
      const above = this.folder(parentOf(dir));
      if (above !== "dir") state = above;
      else {
        const kind = this.listed(dir);
        state = kind === undefined ? "absent" : kind === "dir" ? "dir" : { path: dir, kind };
      }
      this.folders.set(dir, state);
    }
    return state;
  }

  /** Whether nothing was at `rel` when the scan looked (false when it did not look). */
  wasAbsent(rel: string): boolean {
    const dir = parentOf(rel);
    const state = dir === "" ? "dir" : this.folders.get(dir);
    if (state === "absent") return true;
    const listing = state === "dir" ? this.listings.get(dir) : undefined;
    return listing !== undefined && !listing.has(rel.slice(dir.length === 0 ? 0 : dir.length + 1));
  }

  /** The first thing on the way to `rel` that is not a real folder (as ConfinedRoot.blockedAt). */
  blockedAt(rel: string): Blocked | undefined {
    const state = this.folder(parentOf(rel));
    return typeof state === "object" ? state : undefined;
  }

  /** What stands at the entry's path (its folders are real ones, or missing). */
  leaf(entry: TreeEntry): PathKind | undefined {
    if (this.folder(parentOf(entry.path)) !== "dir") return undefined;
    if (entry.kind === "symlink") return this.listed(entry.path);
    // entry.path passed checkRel (relative, normalised): a join needs no normalising.
    const st = lstatSyncOrUndefined(`${this.out}/${entry.path}`);
    if (st) this.stats.set(entry.path, st);
    return localKind(st);
  }
}

/**
 * Everything in the way of this tree, found before anything is written: a link, file or special
 * file where a folder must be, and a leaf of a kind netbuild would not replace (a folder, a device,
 * a link where a file goes). Returns what each leaf is now, so writing need not look again.
 */
function findConflicts(out: string, scan: OutScan, tree: Tree, old: TreeManifest | undefined): Map<string, PathKind | undefined> {
  const problems: { path: string; what: string }[] = [];
  const leaves = new Map<string, PathKind | undefined>();
  for (const entry of tree.entries) {
    const blocked = scan.blockedAt(checkRel(entry.path));
    if (blocked) {
      // Links → copy mode: by-mac/<mac>/ipxe lies behind our own link, which is replaced first.
      if (entry.kind === "file" && isOurMacLink(old, blocked.path) && blocked.kind === "symlink" && entry.path === `${blocked.path}/ipxe`) {
        leaves.set(entry.path, undefined);
        continue;
      }
      if (!problems.some((p) => p.path === blocked.path)) problems.push({ path: blocked.path, what: `${describeKind(blocked.kind)}, where netbuild needs a real folder` });
      continue;
    }
    const kind = scan.leaf(entry);
    leaves.set(entry.path, kind);
    if (kind === undefined || (kind === "file" && entry.kind !== "symlink") || (kind === "symlink" && entry.kind === "symlink")) continue;
    // Copy mode → links: a by-mac/<mac> folder that holds only what netbuild recorded there.
    if (kind === "dir" && entry.kind === "symlink") {
      const names = readdirSync(path.join(out, entry.path));
      const foreign = names.filter((n) => !owned(old, `${entry.path}/${n}`) && !isLeftoverName(n));
      if (foreign.length === 0) continue;
      problems.push({ path: entry.path, what: `a folder holding ${foreign.length === 1 ? "a file" : "files"} netbuild did not write (${foreign.slice(0, 3).map((n) => quoted(n)).join(", ")}), where netbuild puts a link` });
      continue;
    }
    // A link netbuild recorded as its own file would be replaced, not followed; one it did not record is someone else's.
    if (kind === "symlink" && ((old?.entries[entry.path] && old.entries[entry.path]!.kind !== "symlink") || isPending(old, entry.path))) continue;
    problems.push({ path: entry.path, what: `${describeKind(kind)}, where netbuild writes ${entry.kind === "symlink" ? "a link" : "a file"}` });
  }
  if (problems.length > 0) throw conflictError("OUT_CONFLICT", out, problems);
  return leaves;
}

/**
 * Removes what interrupted builds left: netbuild's own temporary names (fixed now, random before)
 * in the folders of artifacts, where a killed copy of a 1 GB initrd leaves up to 1 GB. Only regular
 * files with those names, in real folders of the tree.
 */
async function removeLeftovers(out: string, root: ConfinedRoot, paths: Iterable<string>): Promise<string[]> {
  const folders = new Set<string>();
  for (const p of paths) if (layerOf(p) === "artifact") folders.add(path.posix.dirname(p)).add(path.posix.dirname(path.posix.dirname(p)));
  const removed: string[] = [];
  for (const dir of [...folders].sort()) {
    if ((await root.blockedAt(`${dir}/x`)) || localKind(await lstatOrUndefined(path.join(out, dir))) !== "dir") continue;
    for (const d of await fs.readdir(path.join(out, dir), { withFileTypes: true })) {
      if (!d.isFile() || !isLeftoverName(d.name)) continue;
      await fs.rm(path.join(out, dir, d.name), { force: true });
      removed.push(`${dir}/${d.name}`);
    }
  }
  return removed;
}

/** Whether lstat finds the file where netbuild recorded it: same size, mtime and inode. */
function sameStamp(recorded: Partial<FileStamp>, st: BigIntStats | undefined): boolean {
  return st !== undefined && st.isFile() && recorded.size !== undefined && BigInt(recorded.size) === st.size && recorded.mtimeNs === st.mtimeNs.toString() && recorded.ino === st.ino.toString();
}

/** What writing one entry did, and what the manifest records of it (`restamped`: read back unchanged, with where it stands now). */
interface Written {
  changed: boolean;
  manifest: ManifestEntry | undefined;
  restamped?: ManifestEntry;
}

/** One tree writer's run: out/, its confinement, what the scan found, the manifest before. */
interface Writer {
  out: string;
  root: ConfinedRoot;
  scan: OutScan;
  old: TreeManifest | undefined;
  verify: boolean;
  progress: ApplyProgress | undefined;
  sha: (entry: TreeEntry & { kind: "file" }) => string;
}

async function writeEntry(w: Writer, entry: TreeEntry, leaf: PathKind | undefined): Promise<Written> {
  const { out, root, old } = w;
  // entry.path passed checkRel (relative, normalised); the temporary name is made only when something is written.
  const abs = `${out}/${entry.path}`;
  const tmpOf = () => path.join(out, tempName(entry.path));
  const recorded = old?.entries[entry.path];
  if (entry.kind === "artifact") {
    const st = leaf === undefined ? undefined : w.scan.stats.get(entry.path);
    if (entry.source === undefined) {
      if (!st || recorded?.kind !== "artifact") return { changed: false, manifest: undefined };
      return { changed: false, manifest: recorded };
    }
    // Hash-named and immutable: present with the recorded size means present.
    if (st?.isFile() && recorded?.kind === "artifact" && BigInt(recorded.size) === st.size && st.size === BigInt(entry.size)) {
      return { changed: false, manifest: recorded };
    }
    w.progress?.({ path: entry.path, action: "copy", bytes: entry.size });
    await checkStoreFile(out, entry.source);
    await root.prepare(entry.path);
    const copied = await copyFileAtomic(entry.source, abs, tmpOf());
    return { changed: true, manifest: { kind: "artifact", size: copied.size, sha256: copied.sha256 } };
  }
  if (entry.kind === "symlink") {
    const manifest: ManifestEntry = recorded?.kind === "symlink" && recorded.target === entry.target ? recorded : { kind: "symlink", target: entry.target };
    if (leaf === "symlink") {
      // A link recorded with this target is taken as it stands (a listing said it is a link);
      // read when the record differs, when a stopped build was writing it, or with --verify.
      const trusted = !w.verify && recorded?.kind === "symlink" && recorded.target === entry.target && !isPending(old, entry.path);
      if (trusted || readlinkSync(abs) === entry.target) return { changed: false, manifest };
    }
    if (leaf === "dir") {
      // A copy-mode folder (findConflicts saw it holds only what netbuild recorded): emptied, then removed.
      for (const name of readdirSync(abs)) rmSync(path.join(abs, name), { force: true });
      rmdirSync(abs);
      root.forget(entry.path);
    }
    w.progress?.({ path: entry.path, action: "write" });
    await root.prepare(entry.path);
    // symlink(2) makes the link whole, and fails if anything appeared there meanwhile.
    if (leaf !== undefined || !createdLink(entry.target, abs)) replaceLinkSync(entry.target, abs, tmpOf());
    return { changed: true, manifest };
  }
  const sha = w.sha(entry);
  // A by-mac link of ours where copy mode now wants a folder (the switch from links mode).
  const parent = path.posix.dirname(entry.path);
  if (isOurMacLink(old, parent) && localKind(lstatSyncOrUndefined(path.join(out, parent))) === "symlink") {
    unlinkSync(path.join(out, parent));
    root.forget(parent);
  }
  if (leaf === "file") {
    const st = w.scan.stats.get(entry.path);
    const same = recorded?.kind === "file" && recorded.sha256 === sha;
    // Recorded with this content and still where netbuild left it: not read back (see --verify).
    if (same && !w.verify && !isPending(old, entry.path) && sameStamp(recorded, st)) return { changed: false, manifest: recorded };
    // Otherwise read back (unless its size already tells); the stamp is the one lstat gave before
    // the read, so an edit after it shows next time.
    if (st?.isFile() && st.size === BigInt(typeof entry.content === "string" ? Buffer.byteLength(entry.content) : entry.content.byteLength) && holdsSync(abs, entry.content)) {
      const fresh: ManifestEntry = { kind: "file", sha256: sha, ...stampOf(st) };
      return { changed: false, manifest: same ? recorded : fresh, restamped: fresh };
    }
  }
  w.progress?.({ path: entry.path, action: "write" });
  await root.prepare(entry.path);
  // A path nothing reaches yet is created in place: a host's script before any by-mac entry leads
  // to it, a class's before any host chains it. boot.ipxe and copy-mode by-mac/<mac>/ipxe are
  // fetched by name by every booting machine, so they always go through a rename.
  const direct = leaf === undefined && entry.layer !== "entry" && !entry.path.startsWith("by-mac/");
  const stamp = (direct && createdFile(abs, entry.content)) || replaceFileSync(abs, entry.content, tmpOf());
  return { changed: true, manifest: { kind: "file", sha256: sha, ...stamp } };
}

/** Creates a file where nothing was (O_EXCL); undefined when something appeared there since the scan. */
function createdFile(abs: string, content: string | Uint8Array): FileStamp | undefined {
  try {
    return createFileSync(abs, content);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw e;
  }
}

/** Makes a link where nothing was; false when something appeared there since the scan. */
function createdLink(target: string, abs: string): boolean {
  try {
    symlinkSync(target, abs);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/** The entry is in out/ exactly as the manifest records it (so writing it changes nothing). */
function sameAsRecorded(e: TreeEntry, old: TreeManifest | undefined, sha: Writer["sha"]): boolean {
  const r = old?.entries[e.path];
  if (!r || isPending(old, e.path)) return false;
  if (e.kind === "symlink") return r.kind === "symlink" && r.target === e.target;
  if (e.kind === "artifact") return r.kind === "artifact";
  return r.kind === "file" && r.sha256 === sha(e);
}

/**
 * An artifact is copied only from a regular file in the Nix store: a kept build's store file comes
 * from out/'s manifest, and a store path can itself be a link (to /etc/shadow, to /dev/zero).
 */
async function checkStoreFile(out: string, source: string): Promise<void> {
  const real = await fs.realpath(source).catch(() => undefined);
  const st = real === undefined ? undefined : await fs.stat(real).catch(() => undefined);
  if (real !== undefined && real.startsWith("/nix/store/") && st?.isFile()) return;
  throw new UserError("OUT_NOT_A_TREE", `${path.join(out, MANIFEST_PATH)} names ${quoted(source)} as a build's file, which ${real === undefined || st === undefined ? "does not exist (the Nix store was garbage-collected?)" : real.startsWith("/nix/store/") ? "is not a regular file" : `leads out of the Nix store (to ${quoted(real)})`}; nothing was copied`, {
    hint: "build that class again (`netbuild build --class NAME`), which records its files anew",
  });
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  // A manifest's entries as read are in order already (they were written so): 30,000 keys need no new object.
  const keys = Object.keys(record);
  if (keys.every((k, i) => i === 0 || keys[i - 1]! < k)) return record;
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `sorted`: the entries are in order already (mergedOrder), not to be checked again. */
function manifestText(manifest: TreeManifest, sorted = false): string {
  return `${JSON.stringify({ ...manifest, entries: sorted ? manifest.entries : sortedRecord(manifest.entries) }, null, 2)}\n`;
}

/**
 * The paths of the manifest to write, in sortedRecord's order: the old manifest's paths that `keep`
 * says stay (in the order read, which is sorted unless the file was edited by hand: then sorted
 * here), merged with the paths of `now` that the old manifest does not have, sorted.
 */
function mergedOrder(oldEntries: Record<string, ManifestEntry>, keep: (p: string) => boolean, now: string[]): string[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const kept = Object.keys(oldEntries).filter(keep);
  if (!kept.every((k, i) => i === 0 || kept[i - 1]! < k)) kept.sort(cmp);
  const added = now.filter((p) => !Object.hasOwn(oldEntries, p)).sort(cmp);
  if (added.length === 0) return kept;
  const merged: string[] = [];
  let i = 0;
  let j = 0;
  while (i < kept.length && j < added.length) merged.push(kept[i]! < added[j]! ? kept[i++]! : added[j++]!);
  while (i < kept.length) merged.push(kept[i++]!);
  while (j < added.length) merged.push(added[j++]!);
  return merged;
}

/** Whether each path of `a` holds the very object `b` holds there. */
function sameObjects<T>(a: Record<string, T>, b: Record<string, T>): boolean {
  for (const p in a) if (a[p] !== b[p]) return false;
  return true;
}

/**
 * A file the old manifest records with its stamp (and no stopped build was writing): writing it
 * needs no `pending` record first (see applyTree).
 */
function guardedByStamp(e: TreeEntry, old: TreeManifest | undefined): boolean {
  if (e.kind !== "file") return false;
  const r = old?.entries[e.path];
  return r?.kind === "file" && r.size !== undefined && r.mtimeNs !== undefined && r.ino !== undefined && !isPending(old, e.path);
}

async function writeManifest(out: string, root: ConfinedRoot, text: string): Promise<void> {
  await root.prepare(MANIFEST_PATH);
  await writeFileAtomic(path.join(out, MANIFEST_PATH), text, 0o644, path.join(out, tempName(MANIFEST_PATH)));
}

/**
 * Writes `tree` into out/ (under its lock: see withOutLock). Nothing is written while anything is in
 * the way (findConflicts); every write goes through real folders only; only paths the manifest
 * recorded are ever removed, and only through real folders.
 */
export async function applyTree(out: string, tree: Tree, old: TreeManifest | undefined, progress?: ApplyProgress, options: ApplyOptions = {}): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], unchanged: 0, removed: [], missingKept: [] };
  await fs.mkdir(out, { recursive: true });
  const scan = new OutScan(out);
  const root = outRoot(out, scan);
  await root.check(MANIFEST_PATH);
  const leaves = findConflicts(out, scan, tree, old);
  await removeLeftovers(out, root, [...tree.entries.map((e) => e.path), ...Object.keys(old?.entries ?? {})]);
  const shas = new Map<string, string>();
  const sha: Writer["sha"] = (e) => {
    let s = shas.get(e.path);
    if (s === undefined) shas.set(e.path, (s = sha256(e.content)));
    return s;
  };
  const writer: Writer = { out, root, scan, old, verify: options.verify === true, progress, sha };
  /** The text out/'s manifest holds now (as read, or as last written here). */
  let onDisk = old && manifestReads.get(old)?.text;
  let ownedFirst = false;

  // Own every path before writing it (as a deploy does on a target): a build stopped half-way,
  // say in a switch between links and copy mode, leaves paths the next build knows are its own.
  // A file recorded with a stamp need not be listed: it is already owned, and any write to it (a
  // rename, or O_EXCL where nothing was) gives it another inode and mtime, so a build stopped after
  // writing it finds the stamp changed and reads it back (a host-script change then writes the
  // 30,000-entry manifest once, not twice). Links (trusted by their recorded target), artifacts and
  // paths new to the manifest are listed as before.
  const pending = [...new Set([...(old?.pending ?? []), ...tree.entries.filter((e) => !sameAsRecorded(e, old, sha) && !guardedByStamp(e, old)).map((e) => e.path)])].sort();
  if (pending.length > 0 && JSON.stringify(pending) !== JSON.stringify(old?.pending ?? [])) {
    onDisk = manifestText({ format: recordFormat("tree", old?.entries, pending) as TreeManifest["format"], classes: old?.classes ?? {}, entries: old?.entries ?? {}, pending });
    await writeManifest(out, root, onDisk);
    ownedFirst = true;
  }

  const entries: Record<string, ManifestEntry> = {};
  const restamped = new Map<string, ManifestEntry>();
  const artifactShas = new Map<string, string>();
  for (const entry of tree.entries) {
    const written = await writeEntry(writer, entry, leaves.get(entry.path));
    if (!written.manifest) {
      result.missingKept.push(entry.path);
      continue;
    }
    entries[entry.path] = written.manifest;
    if (written.restamped) restamped.set(entry.path, written.restamped);
    if (written.manifest.kind === "artifact") artifactShas.set(entry.path, written.manifest.sha256);
    if (written.changed) result.written.push(entry.path);
    else result.unchanged++;
  }

  const classes: TreeManifest["classes"] = {};
  for (const c of tree.classes) {
    const { name, ...rest } = c;
    const previous = rest.previous && entries[rest.previous.kernel] && entries[rest.previous.initrd] ? rest.previous : undefined;
    classes[name] = { ...rest, previous, kernelSha256: artifactShas.get(c.kernel.path)!, initrdSha256: artifactShas.get(c.initrd.path)! };
  }

  // Record everything (old and new) before deleting, so an interrupted run still knows what it owns.
  const stale = Object.keys(old?.entries ?? {}).filter((p) => !(p in entries));
  // Paths a stopped build was writing that this tree no longer has (a links ↔ copy switch undone) go too.
  const strays = (old?.pending ?? []).filter((p) => !(p in entries) && !stale.includes(p));
  // The manifest's paths in order without sorting 30,000 of them: the old manifest's keys (in order
  // as read, since they were written so; sorted here if not) merged with the few new to it.
  const staleSet = new Set(stale);
  let ordered: string[] | undefined;
  const order = (): string[] => (ordered ??= mergedOrder(old?.entries ?? {}, (p) => p in entries || staleSet.has(p), Object.keys(entries)));
  const recordWith = (stamps: boolean, extra: Pick<TreeManifest, "pending"> & { stale?: string[] }): string => {
    const withStale = (extra.stale ?? []).length > 0;
    const all: Record<string, ManifestEntry> = {};
    for (const p of order()) {
      const e = entries[p];
      if (e !== undefined) all[p] = (stamps && restamped.get(p)) || e;
      else if (withStale && staleSet.has(p)) all[p] = old!.entries[p]!;
    }
    // What the tree was planned from, recorded only with the tree whole: not while a path is pending,
    // nor while what goes is still listed (a build stopped removing it leaves a tree that is not
    // this inventory's). Sealed with the entries and classes recorded (core/tree.ts sealInputs).
    const sorted = sortedRecord(classes);
    const inputs = tree.inputs !== undefined && !extra.pending && !withStale ? { inputs: sealInputs(tree.inputs, all, sorted) } : {};
    return manifestText({ format: recordFormat("tree", all, extra.pending) as TreeManifest["format"], classes: sorted, entries: all, ...(extra.pending ? { pending: extra.pending } : {}), ...inputs }, true);
  };
  // Files read back unchanged are recorded where they stand now when the manifest is written
  // anyway, when they had no stamp (a tree from an earlier netbuild), or with --verify; a build
  // that changes nothing else leaves the manifest as it was, unwritten (a no-op build of 10,000
  // hosts would otherwise serialise and compare 2.4 MB to find that out).
  const freshen = writer.verify || [...restamped.keys()].some((p) => old?.entries[p]?.kind === "file" && (old.entries[p] as Partial<FileStamp>).size === undefined);
  const asRecorded =
    old !== undefined &&
    !ownedFirst &&
    old.pending === undefined &&
    stale.length === 0 &&
    (!freshen || restamped.size === 0) &&
    Object.keys(entries).length === Object.keys(old.entries).length &&
    sameObjects(entries, old.entries) &&
    JSON.stringify(sortedRecord(classes)) === JSON.stringify(old.classes) &&
    old.inputs === (tree.inputs === undefined ? undefined : sealInputs(tree.inputs, old.entries, old.classes));
  if (!asRecorded) {
    const stillPending = strays.length > 0 ? { pending: strays } : {};
    let text = recordWith(freshen, { stale, ...stillPending });
    if (!freshen && restamped.size > 0 && text !== onDisk) text = recordWith(true, { stale, ...stillPending });
    if (text !== onDisk) await writeManifest(out, root, text);
  }
  stale.push(...strays);

  stale.sort((a, b) => LAYERS.indexOf(layerOf(b)) - LAYERS.indexOf(layerOf(a)) || (a < b ? -1 : 1));
  // What goes is looked at as out/ stands now, not as the scan found it before the writes: a path
  // the scan found missing may since hold a link this run made (by-mac/<mac>, after a stopped
  // links → copy switch is undone), which the scan's answer would let a removal follow.
  const remover = outRoot(out);
  for (const p of stale) {
    progress?.({ path: p, action: "remove" });
    // Behind a link (after a copy-mode → links switch, by-mac/<mac>/ipxe would resolve through the
    // new link into by-host/ and delete the host's live script) it is not ours to follow.
    remover.forget(path.posix.dirname(p));
    if ((await remover.blockedAt(p)) === undefined) {
      const kind = localKind(await lstatOrUndefined(path.join(out, p)));
      if (kind !== undefined && kind !== "dir") await fs.rm(path.join(out, p), { force: true });
      await removeEmptyFolders(out, p);
    }
    result.removed.push(p);
  }
  if (stale.length > 0 || (old?.pending?.length ?? 0) > 0) await writeManifest(out, root, recordWith(true, {}));
  return result;
}

/** Removes the now-empty folders that held `rel`, up to (not including) the top-level folders. */
async function removeEmptyFolders(out: string, rel: string): Promise<void> {
  for (let dir = path.posix.dirname(rel); dir.includes("/"); dir = path.posix.dirname(dir)) {
    if (localKind(await lstatOrUndefined(path.join(out, dir))) !== "dir") return;
    try {
      await fs.rmdir(path.join(out, dir));
    } catch {
      return;
    }
  }
}


/**
 * Reads files of out/'s tree as confine.ts allows: through real folders only (a link where a folder
 * of the tree should be is never followed), and only a regular file itself (O_NOFOLLOW: a link put
 * there is not read). Undefined for anything else, or nothing.
 */
export function outFileReader(out: string): (rel: string) => Promise<string | undefined> {
  const read = outBytesReader(out);
  return async (rel) => (await read(rel))?.toString("utf8");
}

/** As outFileReader, as bytes. */
export function outBytesReader(out: string): (rel: string) => Promise<Buffer | undefined> {
  const root = outRoot(out);
  return async (rel) => {
    if ((await root.blockedAt(rel)) !== undefined) return undefined;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(`${out}/${checkRel(rel)}`, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      return (await handle.stat()).isFile() ? await handle.readFile() : undefined;
    } finally {
      await handle.close();
    }
  };
}
