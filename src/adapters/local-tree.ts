// Applies a planned Tree to a local folder (the output tree, which a boot server may be serving
// while we write). Order makes every intermediate state bootable: immutable artifacts first, then
// class scripts, host scripts, by-mac entries and boot.ipxe, each replaced by rename(2); only then
// is anything no longer referenced removed. Only what the tree's manifest says netbuild created is
// ever deleted.
import fs from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.ts";
import { quoted } from "../core/excerpt.ts";
import { isLeftoverName, tempName } from "../core/paths.ts";
import { parseTreeManifest } from "../core/records.ts";
import { LAYERS, layerOf, type ManifestEntry, type Tree, type TreeEntry, type TreeManifest } from "../core/tree.ts";
import { conflictError, ConfinedRoot, describeKind, type PathKind } from "./confine.ts";
import { copyFileAtomic, lstatOrUndefined, readIfExists, sha256, symlinkAtomic, writeFileAtomic } from "./files.ts";
import { localKind, localTargetFs } from "./target-fs.ts";
import { acquireLock } from "./target-tree.ts";

export const MANIFEST_PATH = ".netbuild/manifest.json";

export type { ManifestEntry, TreeManifest } from "../core/tree.ts";

const RESTORE_HINT = "it was edited or damaged: restore it (from a backup or git), or remove out/ and build again (netbuild then starts a new tree; nothing outside out/ is touched)";

export async function readManifest(out: string): Promise<TreeManifest | undefined> {
  const file = path.join(out, MANIFEST_PATH);
  for (const rel of [".netbuild", MANIFEST_PATH]) {
    const kind = localKind(await lstatOrUndefined(path.join(out, rel)));
    if (kind === undefined) return undefined;
    if (kind !== (rel === ".netbuild" ? "dir" : "file")) throw conflictError("OUT_CONFLICT", out, [{ path: rel, what: `${describeKind(kind)}, where netbuild keeps its ${rel === ".netbuild" ? "records (a real folder)" : "manifest (a regular file)"}` }]);
  }
  const parsed = parseTreeManifest((await readIfExists(file)) ?? "");
  if (!parsed.ok) {
    throw new UserError("OUT_NOT_A_TREE", `${file} is not a manifest netbuild can trust, so nothing was changed: ${parsed.problems.slice(0, 5).join("; ")}${parsed.problems.length > 5 ? `; and ${parsed.problems.length - 5} more` : ""}`, { hint: RESTORE_HINT });
  }
  return parsed.value;
}

/**
 * Refuses to write into a folder netbuild did not make: `--out ~` must not scatter files through a
 * home folder, and a tree from elsewhere must not be partly overwritten.
 */
export async function checkOutFolder(out: string): Promise<TreeManifest | undefined> {
  const own = await lstatOrUndefined(out);
  if (own === undefined) return undefined;
  // The output folder itself may be a link the user made; then it must lead to a folder.
  const st = own.isSymbolicLink() ? await fs.stat(out).catch(() => undefined) : own;
  if (!st) throw new UserError("OUT_NOT_A_TREE", `${out} is a symlink to ${quoted(await fs.readlink(out))}, which does not exist (or cannot be reached)`, { hint: "create the folder it points to, or pass --out with a folder" });
  if (!st.isDirectory()) throw new UserError("OUT_NOT_A_TREE", `${out} is ${describeKind(localKind(st)!)}, not a folder`, { hint: "pass --out with a folder" });
  const manifest = await readManifest(out);
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

function entryManifest(entry: TreeEntry, sha: string): ManifestEntry {
  if (entry.kind === "symlink") return { kind: "symlink", target: entry.target };
  if (entry.kind === "artifact") return { kind: "artifact", size: entry.size, sha256: sha };
  return { kind: "file", sha256: sha };
}

/** out/ under the confinement rule: its folders found by lstat, made real. */
function outRoot(out: string): ConfinedRoot {
  return new ConfinedRoot(out, { lstat: async (rel) => localKind(await lstatOrUndefined(path.join(out, rel))), mkdir: (rel) => fs.mkdir(path.join(out, rel)) }, "OUT_CONFLICT");
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

/**
 * Everything in the way of this tree, found before anything is written: a link, file or special
 * file where a folder must be, and a leaf of a kind netbuild would not replace (a folder, a device,
 * a link where a file goes). Returns what each leaf is now, so writing need not look again.
 */
async function findConflicts(out: string, root: ConfinedRoot, tree: Tree, old: TreeManifest | undefined): Promise<Map<string, PathKind | undefined>> {
  const problems: { path: string; what: string }[] = [];
  const leaves = new Map<string, PathKind | undefined>();
  for (const entry of tree.entries) {
    const blocked = await root.blockedAt(entry.path);
    if (blocked) {
      // Links → copy mode: by-mac/<mac>/ipxe lies behind our own link, which is replaced first.
      if (entry.kind === "file" && isOurMacLink(old, blocked.path) && blocked.kind === "symlink" && entry.path === `${blocked.path}/ipxe`) {
        leaves.set(entry.path, undefined);
        continue;
      }
      if (!problems.some((p) => p.path === blocked.path)) problems.push({ path: blocked.path, what: `${describeKind(blocked.kind)}, where netbuild needs a real folder` });
      continue;
    }
    const kind = localKind(await lstatOrUndefined(path.join(out, entry.path)));
    leaves.set(entry.path, kind);
    if (kind === undefined || (kind === "file" && entry.kind !== "symlink") || (kind === "symlink" && entry.kind === "symlink")) continue;
    // Copy mode → links: a by-mac/<mac> folder that holds only what netbuild recorded there.
    if (kind === "dir" && entry.kind === "symlink") {
      const names = await fs.readdir(path.join(out, entry.path));
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

async function writeEntry(out: string, root: ConfinedRoot, entry: TreeEntry, leaf: PathKind | undefined, old: TreeManifest | undefined, progress: ApplyProgress | undefined): Promise<{ changed: boolean; manifest: ManifestEntry | undefined }> {
  const abs = path.join(out, entry.path);
  const tmp = path.join(out, tempName(entry.path));
  if (entry.kind === "artifact") {
    const recorded = old?.entries[entry.path];
    const st = leaf === undefined ? undefined : await lstatOrUndefined(abs);
    if (entry.source === undefined) {
      if (!st || recorded?.kind !== "artifact") return { changed: false, manifest: undefined };
      return { changed: false, manifest: recorded };
    }
    // Hash-named and immutable: present with the recorded size means present.
    if (st?.isFile() && recorded?.kind === "artifact" && recorded.size === st.size && st.size === entry.size) {
      return { changed: false, manifest: recorded };
    }
    progress?.({ path: entry.path, action: "copy", bytes: entry.size });
    await checkStoreFile(out, entry.source);
    await root.prepare(entry.path);
    const copied = await copyFileAtomic(entry.source, abs, tmp);
    return { changed: true, manifest: { kind: "artifact", size: copied.size, sha256: copied.sha256 } };
  }
  if (entry.kind === "symlink") {
    if (leaf === "symlink" && (await fs.readlink(abs)) === entry.target) return { changed: false, manifest: entryManifest(entry, "") };
    if (leaf === "dir") {
      // A copy-mode folder (findConflicts saw it holds only what netbuild recorded): emptied, then removed.
      for (const name of await fs.readdir(abs)) await fs.rm(path.join(abs, name), { force: true });
      await fs.rmdir(abs);
      root.forget(entry.path);
    }
    progress?.({ path: entry.path, action: "write" });
    await root.prepare(entry.path);
    await symlinkAtomic(entry.target, abs, tmp);
    return { changed: true, manifest: entryManifest(entry, "") };
  }
  const sha = sha256(entry.content);
  // A by-mac link of ours where copy mode now wants a folder (the switch from links mode).
  const parent = path.posix.dirname(entry.path);
  if (isOurMacLink(old, parent) && localKind(await lstatOrUndefined(path.join(out, parent))) === "symlink") {
    await fs.unlink(path.join(out, parent));
    root.forget(parent);
  }
  if (leaf === "file" && (await readIfExists(abs)) === entry.content) return { changed: false, manifest: entryManifest(entry, sha) };
  progress?.({ path: entry.path, action: "write" });
  await root.prepare(entry.path);
  await writeFileAtomic(abs, entry.content, 0o644, tmp);
  return { changed: true, manifest: entryManifest(entry, sha) };
}

/** The entry is in out/ exactly as the manifest records it (so writing it changes nothing). */
function sameAsRecorded(e: TreeEntry, old: TreeManifest | undefined): boolean {
  const r = old?.entries[e.path];
  if (!r || isPending(old, e.path)) return false;
  if (e.kind === "symlink") return r.kind === "symlink" && r.target === e.target;
  if (e.kind === "artifact") return r.kind === "artifact";
  return r.kind === "file" && r.sha256 === sha256(e.content);
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
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function writeManifest(out: string, root: ConfinedRoot, manifest: TreeManifest): Promise<void> {
  await root.prepare(MANIFEST_PATH);
  await writeFileAtomic(path.join(out, MANIFEST_PATH), `${JSON.stringify({ ...manifest, entries: sortedRecord(manifest.entries) }, null, 2)}\n`, 0o644, path.join(out, tempName(MANIFEST_PATH)));
}

/**
 * Writes `tree` into out/ (under its lock: see withOutLock). Nothing is written while anything is in
 * the way (findConflicts); every write goes through real folders only; only paths the manifest
 * recorded are ever removed, and only through real folders.
 */
export async function applyTree(out: string, tree: Tree, old: TreeManifest | undefined, progress?: ApplyProgress): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], unchanged: 0, removed: [], missingKept: [] };
  await fs.mkdir(out, { recursive: true });
  const root = outRoot(out);
  await root.check(MANIFEST_PATH);
  const leaves = await findConflicts(out, root, tree, old);
  await removeLeftovers(out, root, [...tree.entries.map((e) => e.path), ...Object.keys(old?.entries ?? {})]);
  const entries: Record<string, ManifestEntry> = {};
  const shas = new Map<string, string>();

  // Own every path before writing it (as a deploy does on a target): a build stopped half-way,
  // say in a switch between links and copy mode, leaves paths the next build knows are its own.
  const pending = [...new Set([...(old?.pending ?? []), ...tree.entries.filter((e) => !sameAsRecorded(e, old)).map((e) => e.path)])].sort();
  if (pending.length > 0 && JSON.stringify(pending) !== JSON.stringify(old?.pending ?? [])) {
    await writeManifest(out, root, { format: 1, classes: old?.classes ?? {}, entries: old?.entries ?? {}, pending });
  }

  for (const entry of tree.entries) {
    const { changed, manifest } = await writeEntry(out, root, entry, leaves.get(entry.path), old, progress);
    if (!manifest) {
      result.missingKept.push(entry.path);
      continue;
    }
    entries[entry.path] = manifest;
    if (manifest.kind === "artifact") shas.set(entry.path, manifest.sha256);
    if (changed) result.written.push(entry.path);
    else result.unchanged++;
  }

  const classes: TreeManifest["classes"] = {};
  for (const c of tree.classes) {
    const { name, ...rest } = c;
    const previous = rest.previous && entries[rest.previous.kernel] && entries[rest.previous.initrd] ? rest.previous : undefined;
    classes[name] = { ...rest, previous, kernelSha256: shas.get(c.kernel.path)!, initrdSha256: shas.get(c.initrd.path)! };
  }

  // Record everything (old and new) before deleting, so an interrupted run still knows what it owns.
  const stale = Object.keys(old?.entries ?? {}).filter((p) => !(p in entries));
  // Paths a stopped build was writing that this tree no longer has (a links ↔ copy switch undone) go too.
  const strays = (old?.pending ?? []).filter((p) => !(p in entries) && !stale.includes(p));
  await writeManifest(out, root, { format: 1, classes: sortedRecord(classes), entries: { ...pick(old?.entries ?? {}, stale), ...entries }, ...(strays.length > 0 ? { pending: strays } : {}) });
  stale.push(...strays);

  stale.sort((a, b) => LAYERS.indexOf(layerOf(b)) - LAYERS.indexOf(layerOf(a)) || (a < b ? -1 : 1));
  for (const p of stale) {
    progress?.({ path: p, action: "remove" });
    // Behind a link (after a copy-mode → links switch, by-mac/<mac>/ipxe would resolve through the
    // new link into by-host/ and delete the host's live script) it is not ours to follow.
    root.forget(path.posix.dirname(p));
    if ((await root.blockedAt(p)) === undefined) {
      const kind = localKind(await lstatOrUndefined(path.join(out, p)));
      if (kind !== undefined && kind !== "dir") await fs.rm(path.join(out, p), { force: true });
      await removeEmptyFolders(out, p);
    }
    result.removed.push(p);
  }
  if (stale.length > 0 || (old?.pending?.length ?? 0) > 0) await writeManifest(out, root, { format: 1, classes: sortedRecord(classes), entries });
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

function pick<T>(record: Record<string, T>, keys: string[]): Record<string, T> {
  return Object.fromEntries(keys.map((k) => [k, record[k]!]));
}
