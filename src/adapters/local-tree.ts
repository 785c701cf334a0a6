// Applies a planned Tree to a local folder (the output tree, which a boot server may be serving
// while we write). Order makes every intermediate state bootable: immutable artifacts first, then
// class scripts, host scripts, by-mac entries and boot.ipxe, each replaced by rename(2); only then
// is anything no longer referenced removed. Only what the tree's manifest says netbuild created is
// ever deleted.
import fs from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.ts";
import { LAYERS, layerOf, type ManifestEntry, type Tree, type TreeEntry, type TreeManifest } from "../core/tree.ts";
import { copyFileAtomic, lstatOrUndefined, readIfExists, removeEmptyDirs, sha256, symlinkAtomic, writeFileAtomic } from "./files.ts";

export const MANIFEST_PATH = ".netbuild/manifest.json";

export type { ManifestEntry, TreeManifest } from "../core/tree.ts";

export async function readManifest(out: string): Promise<TreeManifest | undefined> {
  const text = await readIfExists(path.join(out, MANIFEST_PATH));
  if (text === undefined) return undefined;
  const data = JSON.parse(text) as TreeManifest;
  if (data.format !== 1) throw new UserError("OUT_NOT_A_TREE", `${path.join(out, MANIFEST_PATH)} has format ${String(data.format)}, which this netbuild does not know`, { hint: "use the netbuild version that wrote it, or build into a new folder" });
  return data;
}

/**
 * Refuses to write into a folder netbuild did not make: `--out ~` must not scatter files through a
 * home folder, and a tree from elsewhere must not be partly overwritten.
 */
export async function checkOutFolder(out: string): Promise<TreeManifest | undefined> {
  const manifest = await readManifest(out);
  if (manifest) return manifest;
  let names: string[] = [];
  try {
    names = await fs.readdir(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    if ((e as NodeJS.ErrnoException).code === "ENOTDIR") throw new UserError("OUT_NOT_A_TREE", `${out} is a file, not a folder`, { hint: "pass --out with a folder" });
    throw e;
  }
  if (names.length > 0) {
    throw new UserError("OUT_NOT_A_TREE", `${out} is not empty and is not a netbuild tree (it has no ${MANIFEST_PATH})`, { hint: "give --out an empty or new folder; netbuild only writes into folders it made" });
  }
  return undefined;
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

async function writeEntry(out: string, entry: TreeEntry, old: TreeManifest | undefined, progress: ApplyProgress | undefined): Promise<{ changed: boolean; manifest: ManifestEntry | undefined }> {
  const abs = path.join(out, entry.path);
  if (entry.kind === "artifact") {
    const recorded = old?.entries[entry.path];
    const st = await lstatOrUndefined(abs);
    if (entry.source === undefined) {
      if (!st || recorded?.kind !== "artifact") return { changed: false, manifest: undefined };
      return { changed: false, manifest: recorded };
    }
    // Hash-named and immutable: present with the recorded size means present.
    if (st?.isFile() && recorded?.kind === "artifact" && recorded.size === st.size && st.size === entry.size) {
      return { changed: false, manifest: recorded };
    }
    progress?.({ path: entry.path, action: "copy", bytes: entry.size });
    const copied = await copyFileAtomic(entry.source, abs);
    return { changed: true, manifest: { kind: "artifact", size: copied.size, sha256: copied.sha256 } };
  }
  if (entry.kind === "symlink") {
    const st = await lstatOrUndefined(abs);
    if (st?.isSymbolicLink() && (await fs.readlink(abs)) === entry.target) return { changed: false, manifest: entryManifest(entry, "") };
    // A real folder here (the site switched from copy mode) cannot be renamed over; it goes first.
    if (st?.isDirectory()) await fs.rm(abs, { recursive: true });
    progress?.({ path: entry.path, action: "write" });
    await symlinkAtomic(entry.target, abs);
    return { changed: true, manifest: entryManifest(entry, "") };
  }
  const sha = sha256(entry.content);
  // A by-mac link where copy mode now wants a folder (the switch from symlink mode).
  const parent = path.dirname(abs);
  const parentStat = await lstatOrUndefined(parent);
  if (parentStat?.isSymbolicLink()) await fs.unlink(parent);
  if ((await readIfExists(abs)) === entry.content) return { changed: false, manifest: entryManifest(entry, sha) };
  progress?.({ path: entry.path, action: "write" });
  await writeFileAtomic(abs, entry.content);
  return { changed: true, manifest: entryManifest(entry, sha) };
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

async function writeManifest(out: string, manifest: TreeManifest): Promise<void> {
  await writeFileAtomic(path.join(out, MANIFEST_PATH), `${JSON.stringify({ ...manifest, entries: sortedRecord(manifest.entries) }, null, 2)}\n`);
}

export async function applyTree(out: string, tree: Tree, old: TreeManifest | undefined, progress?: ApplyProgress): Promise<ApplyResult> {
  const result: ApplyResult = { written: [], unchanged: 0, removed: [], missingKept: [] };
  await fs.mkdir(out, { recursive: true });
  const entries: Record<string, ManifestEntry> = {};
  const shas = new Map<string, string>();

  for (const entry of tree.entries) {
    const { changed, manifest } = await writeEntry(out, entry, old, progress);
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
  await writeManifest(out, { format: 1, classes: sortedRecord(classes), entries: { ...pick(old?.entries ?? {}, stale), ...entries } });

  stale.sort((a, b) => LAYERS.indexOf(layerOf(b)) - LAYERS.indexOf(layerOf(a)) || (a < b ? -1 : 1));
  for (const p of stale) {
    const abs = path.join(out, p);
    progress?.({ path: p, action: "remove" });
    if (await removableFile(out, p)) await fs.rm(abs, { force: true });
    await removeEmptyDirs(path.dirname(abs), out);
    result.removed.push(p);
  }
  if (stale.length > 0) await writeManifest(out, { format: 1, classes: sortedRecord(classes), entries });
  return result;
}

/**
 * A stale path is removed only while it is still a file or a link reached through real folders:
 * after a copy-mode → symlink-mode switch, `by-mac/<mac>/ipxe` would resolve through the new link
 * into by-host/ and delete the host's live script.
 */
async function removableFile(out: string, rel: string): Promise<boolean> {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) {
    const st = await lstatOrUndefined(path.join(out, ...parts.slice(0, i)));
    if (!st?.isDirectory()) return false;
  }
  const st = await lstatOrUndefined(path.join(out, rel));
  return st !== undefined && !st.isDirectory();
}

function pick<T>(record: Record<string, T>, keys: string[]): Record<string, T> {
  return Object.fromEntries(keys.map((k) => [k, record[k]!]));
}
