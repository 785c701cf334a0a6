// Applies a deploy plan (core/deploy.ts) to a target through its TargetFs, in the plan's order, and
// holds the target's lock. Everything that touches the target for deploy, rollback, gc and verify
// goes through here.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { UserError } from "../errors.ts";
import { DEPLOYED_DELTA, DEPLOYED_MANIFEST, emptyManifest, LOCK_PATH, PENDING_JOURNAL, sameEntry, type DeployedManifest, type DeployPlan } from "../core/deploy.ts";
import type { ManifestEntry } from "../core/tree.ts";
import { quoted } from "../core/excerpt.ts";
import { foldersOf, IPXE_DIR } from "../core/paths.ts";
import { NEWER_FORMAT_HINT, newerFormat, parseDeployedWithDelta, parsePendingJournal, recordFormat } from "../core/records.ts";
import { conflictError, describeKind } from "./confine.ts";
import { sha256 } from "./files.ts";
import { tempName, type TargetFs } from "./target-fs.ts";

export interface ApplyEvent {
  action: "upload" | "resume" | "switch" | "remove";
  path: string;
  bytes?: number;
}

export interface ApplyHooks {
  onEvent?: (e: ApplyEvent) => void;
  onProgress?: (path: string, sent: number, total: number) => void;
}

/** Small writes in flight at once (a 1,000-host tree is thousands of scripts; each is a round trip). */
const PARALLEL = 64;

/** Runs `fn` on every item, `limit` at a time; the first failure is rethrown once all in flight have settled. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * The target's record, checked (core/records.ts) before anything trusts a path in it: every entry,
 * pending path and generation must be a path of the tree, each class's artifacts in its own folder.
 * Its pending paths include those of the pending journal (a deploy that did not finish); a target
 * with only a journal (its first deploy did not finish) has an empty record with them.
 */
export async function readDeployed(fs: TargetFs): Promise<DeployedManifest | undefined> {
  const [text, journal, delta] = await Promise.all([readOwnFile(fs, DEPLOYED_MANIFEST, "keeps its record"), readJournal(fs), readOwnFile(fs, DEPLOYED_DELTA, "keeps what changed since its record was written")]);
  if (text === undefined) {
    records.delete(fs);
    return journal.length > 0 ? { ...emptyManifest(), pending: journal } : undefined;
  }
  const hash = sha256(text);
  const parsed = await parseDeployedWithDelta(text, hash, delta);
  // A kept generation's script is what rollback writes back: it must be the script its hash and id name.
  if (parsed.ok) {
    const bad = Object.entries(parsed.value.manifest.classes).flatMap(([name, c]) => c.generations.filter((g) => sha256(g.script) !== g.sha256 || !g.sha256.startsWith(g.id)).map((g) => `classes.${name}.generations: the script of ${g.id} does not match its sha256`));
    if (bad.length > 0) throw untrusted(fs, parsed.value.deltaApplied ? DEPLOYED_DELTA : DEPLOYED_MANIFEST, bad);
  }
  if (!parsed.ok) throw untrusted(fs, "inDelta" in parsed ? DEPLOYED_DELTA : DEPLOYED_MANIFEST, parsed.problems);
  const { manifest: value, format, entries, pending } = parsed.value;
  records.set(fs, { sha256: hash, format, entries: entries as Record<string, ManifestEntry>, pending });
  if (journal.length > 0) value.pending = [...new Set([...value.pending, ...journal])].sort();
  return value;
}

/** The record as it stands on each target (as read or last written whole), for the next delta. */
const records = new WeakMap<TargetFs, { sha256: string; format: number; entries: Record<string, ManifestEntry>; pending: number }>();

/** The text of one of netbuild's own files in `.netbuild/` (undefined when there is none); anything but a regular file there is a conflict. */
async function readOwnFile(fs: TargetFs, rel: string, what: string): Promise<string | undefined> {
  const st = await fs.stat(rel);
  if (st === undefined) return undefined;
  if (st.kind !== "file") throw conflictError("TARGET_CONFLICT", fs.description, [{ path: rel, what: `${describeKind(st.kind)}, where netbuild ${what} (a regular file)` }]);
  return (await fs.readFile(rel))?.toString("utf8");
}

function untrusted(fs: TargetFs, file: string, problems: readonly string[]): UserError {
  return new UserError("TARGET_NOT_A_TREE", `${fs.description}/${file} is not a record netbuild can trust, so nothing was changed: ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? `; and ${problems.length - 5} more` : ""}`, {
    hint: newerFormat(problems) ? NEWER_FORMAT_HINT : "it was changed by hand or is damaged: restore it (a copy of it from a backup), or deploy to an empty folder",
  });
}

/** The pending journal's paths (none when there is no journal). */
async function readJournal(fs: TargetFs): Promise<string[]> {
  const text = await readOwnFile(fs, PENDING_JOURNAL, "lists what a deploy is changing");
  if (text === undefined) return [];
  const parsed = parsePendingJournal(text);
  if (!parsed.ok) throw untrusted(fs, PENDING_JOURNAL, parsed.problems);
  return parsed.value;
}

/** Lists the paths about to be created or removed (or, with none, removes the journal). */
async function writeJournal(fs: TargetFs, pending: readonly string[]): Promise<void> {
  if (pending.length === 0) await fs.remove(PENDING_JOURNAL);
  else await fs.writeFile(PENDING_JOURNAL, `${JSON.stringify({ format: recordFormat("journal", undefined, pending), pending }, null, 1)}\n`);
}

/** The record alone, its pending paths left to the journal. */
async function writeRecord(fs: TargetFs, manifest: DeployedManifest): Promise<void> {
  // A few entries changed since the record was written whole: the delta says which (with the
  // classes and the last change, which are small), and the record stays as it is.
  const record = records.get(fs);
  const format = recordFormat("deployed", manifest.entries);
  // (Only over a record of the format this one needs: an older netbuild reads the record first.)
  if (record && record.format === format && record.pending === 0) {
    const set: Record<string, ManifestEntry> = {};
    let changed = 0;
    for (const p in manifest.entries) {
      const e = manifest.entries[p]!;
      if (!sameEntry(record.entries[p], e)) {
        set[p] = e;
        changed++;
      }
    }
    const removed: string[] = [];
    let total = 0;
    for (const p in record.entries) {
      total++;
      if (!(p in manifest.entries)) removed.push(p);
    }
    if (changed + removed.length <= Math.max(DELTA_MIN, Math.floor(total / 8))) {
      const delta = { format: 1, base: record.sha256, classes: manifest.classes, ...(manifest.last ? { last: manifest.last } : {}), set, removed };
      await fs.writeFile(DEPLOYED_DELTA, `${JSON.stringify(delta, null, 1)}\n`);
      return;
    }
  }
  // Whole: the record, then the delta that named the old one removed (until then it names a record
  // that is no longer there, and is left aside).
  const text = `${JSON.stringify({ ...manifest, format, pending: [] }, null, 1)}\n`;
  await fs.writeFile(DEPLOYED_MANIFEST, text);
  records.set(fs, { sha256: sha256(text), format, entries: manifest.entries, pending: 0 });
  await fs.remove(DEPLOYED_DELTA);
}

/** Changes a delta holds at least before the record is written whole again (else an eighth of the record's entries). */
const DELTA_MIN = 64;

/** The record, then the journal brought to its pending paths: a crash between the two leaves more paths pending, never fewer. */
export async function writeDeployed(fs: TargetFs, manifest: DeployedManifest): Promise<void> {
  await writeRecord(fs, manifest);
  await writeJournal(fs, manifest.pending);
}

/**
 * Every path the plan writes is reached through real folders only, and what stands at a path
 * netbuild owns is something it would replace (a file or a link, never a folder or a device): a
 * by-host/ swapped for a link to another disk must not have scripts written into it. Checked before
 * the target is changed at all (deploy, rollback and gc alike); a conflict names every such path.
 */
export async function checkReachable(fs: TargetFs, plan: DeployPlan, deployed: DeployedManifest): Promise<void> {
  if (checkedPlans.has(plan)) return;
  const pending = new Set(deployed.pending);
  const ours = (p: string) => p in deployed.entries || pending.has(p);
  const problems = new Map<string, string>();
  const planned: { path: string; link: boolean }[] = [...plan.uploads.map((u) => ({ path: u.path, link: false })), ...plan.switches.map((s) => ({ path: s.path, link: s.kind === "symlink" }))];
  await pool(planned, PARALLEL, async ({ path: p, link }) => {
    const b = await fs.blockedAt(p);
    if (b) {
      // Links → copy mode: by-mac/<mac>/ipxe lies behind our own by-mac/<mac> link, which is replaced
      // first. Only there: netbuild makes no other folder a link (a record or journal that lists one is not its own).
      if (b.kind === "symlink" && p === `${b.path}/ipxe` && b.path.startsWith("by-mac/") && (deployed.entries[b.path]?.kind === "symlink" || pending.has(b.path))) return;
      if (!problems.has(b.path)) problems.set(b.path, `${describeKind(b.kind)}, where netbuild needs a real folder`);
      return;
    }
    // Copy mode → links: by-mac/<mac> is a folder of netbuild's (it recorded the ipxe in it), which
    // the link replaces only while it holds nothing of anyone else's (the folder is moved aside whole).
    const ownFolder = link && ours(`${p}/ipxe`);
    if (!ours(p) && !ownFolder) return; // conflicts() looks at what stands at paths netbuild does not own
    const st = await fs.stat(p);
    if (st === undefined) return;
    if (ours(p) && (st.kind === "file" || st.kind === "symlink")) return;
    if (st.kind === "dir" && ownFolder) {
      // Netbuild's own: its script and that script's temporary name, as regular files (a folder so named is someone's).
      const foreign = (await fs.list(p)).filter((i) => i.kind !== "file" || (i.name !== "ipxe" && i.name !== ".ipxe.netbuild-tmp")).map((i) => i.name).sort();
      if (foreign.length === 0) return;
      problems.set(p, `a folder holding ${foreign.length === 1 ? "a file" : "files"} netbuild did not write (${foreign.slice(0, 3).map(quoted).join(", ")}), where netbuild puts a link`);
      return;
    }
    problems.set(p, `${describeKind(st.kind)}, where netbuild writes ${link ? "a link" : "a file"}`);
  });
  if (problems.size > 0) throw conflictError("TARGET_CONFLICT", fs.description, [...problems].sort().map(([path, what]) => ({ path, what })));
  checkedPlans.add(plan);
}

/**
 * Plans checked in this run, and not changed on the target since as far as netbuild waited: the
 * applier need not look again right after deploy's check (conflictsAgain makes it look again).
 */
const checkedPlans = new WeakSet<DeployPlan>();

/**
 * Paths of the plan that exist on the target although netbuild does not own them (it would
 * overwrite someone's files), and the planned paths known to be absent. Folders are listed once
 * each instead of a stat per path: a first deploy of 1,000 hosts costs a few listings.
 */
export async function conflicts(fs: TargetFs, plan: DeployPlan, deployed: DeployedManifest): Promise<{ found: string[]; absent: Set<string> }> {
  // A path netbuild recorded, or a folder holding paths it recorded (a copy-mode by-mac/<mac>/ that
  // becomes a link). The folders are listed only when a planned path is not recorded itself.
  let folders: Set<string> | undefined;
  const isFolder = (p: string) => (folders ??= new Set(Object.keys(deployed.entries).flatMap(foldersOf))).has(p);
  const pending = new Set(deployed.pending);
  const owned = (p: string) => p in deployed.entries || pending.has(p) || isFolder(p);
  const listings = new Map<string, Promise<Map<string, string>>>();
  const list = (dir: string) => {
    if (!listings.has(dir)) listings.set(dir, fs.list(dir).then((items) => new Map(items.map((i) => [i.name, i.kind]))));
    return listings.get(dir)!;
  };
  const exists = async (p: string): Promise<boolean> => {
    const parts = p.split("/");
    for (let i = 0; ; i++) {
      const kind = (await list(parts.slice(0, i).join("/") || ".")).get(parts[i]!);
      if (kind === undefined) return false;
      // Something other than a folder on the way (checkReachable found real folders: it changed
      // since) stands where the path goes: taken, not free.
      if (i === parts.length - 1 || kind !== "dir") return true;
    }
  };
  await checkReachable(fs, plan, deployed);
  const found: string[] = [];
  const absent = new Set<string>();
  const fresh = [...plan.uploads.map((u) => u.path), ...plan.switches.map((s) => s.path)].filter((p) => !owned(p));
  await pool(fresh, PARALLEL, async (p) => {
    // A copy-mode by-mac/<mac>/ipxe seen through a by-mac/<mac> link of ours is not a conflict.
    if (p.startsWith("by-mac/") && p.endsWith("/ipxe") && owned(p.slice(0, -"/ipxe".length))) return;
    if (await exists(p)) found.push(p);
    else absent.add(p);
  });
  return { found: found.sort(), absent };
}

/**
 * What changed on the target while a deploy waited (its wipe question) after it took the lock and
 * read the record: its lock broken and taken by another deploy, or the record changed (undefined:
 * neither). Its plan is made from that record, and must not be applied over another deploy's.
 */
export async function changedSince(fs: TargetFs, lock: HeldLock, deployed: DeployedManifest): Promise<string | undefined> {
  if (!(await lock.stillHeld())) return "its lock was broken (--break-lock) and may have been taken by another deploy";
  const now = (await readDeployed(fs)) ?? emptyManifest();
  return JSON.stringify(now) === JSON.stringify(deployed) ? undefined : "another deploy changed its record";
}

/**
 * conflicts() again, with the target looked at afresh, its folders too: for a deploy that waited
 * between its check and applying the plan (its wipe question), while someone could change the
 * target. What changes while the plan is being applied is not caught this way: each folder is
 * looked at once per connection (confine.ts).
 */
export async function conflictsAgain(fs: TargetFs, plan: DeployPlan, deployed: DeployedManifest): Promise<{ found: string[]; absent: Set<string> }> {
  fs.lookAgain();
  checkedPlans.delete(plan);
  return conflicts(fs, plan, deployed);
}

async function removeEmptyParents(fs: TargetFs, rel: string): Promise<void> {
  let dir = path.posix.dirname(rel);
  while (dir !== "." && !["by-mac", "by-host", "by-class", ".netbuild"].includes(dir)) {
    if (!(await fs.removeDir(dir))) return;
    dir = path.posix.dirname(dir);
  }
}

export interface ApplyDeployResult {
  uploaded: number;
  resumed: number;
  switched: number;
  removed: number;
  bytes: number;
  /** Stale paths not removed because a folder on the way is a link made by hand (still recorded). */
  kept: string[];
}

/**
 * Applies `plan` whose files come from `sourceDir` (out/). `deployed` is what the target's manifest
 * said when the plan was made (under the lock). `absent` lists planned paths known not to exist on
 * the target (see conflicts()): nothing can reach them yet, so they are written in place.
 */
export async function applyDeploy(fs: TargetFs, sourceDir: string, plan: DeployPlan, deployed: DeployedManifest, hooks: ApplyHooks = {}, absent: ReadonlySet<string> = new Set()): Promise<ApplyDeployResult> {
  const result: ApplyDeployResult = { uploaded: 0, resumed: 0, switched: 0, removed: 0, bytes: 0, kept: [] };
  if (plan.uploads.length === 0 && plan.switches.length === 0 && plan.deletions.length === 0) {
    if (JSON.stringify(deployed.classes) !== JSON.stringify(plan.manifest.classes) || JSON.stringify(deployed.pending) !== JSON.stringify(plan.manifest.pending)) {
      // Paths no longer pending: what an interrupted deploy left beside them goes before they stop being owned.
      if (plan.manifest.pending.length < deployed.pending.length) await removeTemps(fs, deployed.pending.filter((p) => !plan.manifest.pending.includes(p)));
      await writeDeployed(fs, plan.manifest);
    }
    return result;
  }
  // 0. Nothing in the way (checked by deploy's conflicts() already; rollback and gc come straight here).
  await checkReachable(fs, plan, deployed);
  // 1. Own every path before creating it: a deploy that dies from here on leaves nothing unowned.
  // (Unless the record already says so: then the target holds this very record.)
  const pending = [...new Set([...deployed.pending, ...plan.uploads.map((u) => u.path), ...plan.switches.map((s) => s.path)])].sort();
  // (pending holds every path of deployed.pending: it differs from it where a path is new.)
  if (pending.some((p, i) => p !== deployed.pending[i])) await writeJournal(fs, pending);

  // 2. Artifacts: immutable and hash-named. One that a deploy that did not finish renamed into place
  // (after checking its size) is kept if its hash is right, and not sent again.
  const unsure = new Set(deployed.pending);
  for (const u of plan.uploads) {
    const st = unsure.has(u.path) ? await fs.stat(u.path) : undefined;
    if (st?.kind === "file" && st.size === u.size && (await fs.sha256(u.path)) === u.sha256) {
      hooks.onEvent?.({ action: "resume", path: u.path, bytes: u.size });
      result.resumed++;
      continue;
    }
    hooks.onEvent?.({ action: "upload", path: u.path, bytes: u.size });
    await fs.upload(path.join(sourceDir, u.path), u.path, u.size, (sent, total) => hooks.onProgress?.(u.path, sent, total));
    result.uploaded++;
    result.bytes += u.size;
  }

  // 3. Switch points, layer by layer (classes, machine configs, hosts, MACs, boot.ipxe). A path no
  // script or link reaches yet is written in place; anything else under a temporary name, renamed over.
  const recorded = (p: string) => deployed.entries[p];
  for (const layer of ["class", "config", "host", "mac", "entry"] as const) {
    await pool(
      plan.switches.filter((s) => s.layer === layer),
      PARALLEL,
      async (s) => {
        hooks.onEvent?.({ action: "switch", path: s.path });
        const direct = absent.has(s.path) && s.layer !== "entry";
        if (s.kind === "symlink") {
          // Copy mode → links: the link is made first, then swapped for the folder in two renames.
          const folder = recorded(`${s.path}/ipxe`) !== undefined || unsure.has(`${s.path}/ipxe`) ? await fs.stat(s.path) : undefined;
          if (folder?.kind === "dir") await replaceFolderWithLink(fs, s.path, s.target);
          else await fs.symlink(s.target, s.path, { direct });
        } else {
          const content = s.content ?? (await readSource(sourceDir, s.path, s.sha256));
          // Links → copy mode: by-mac/<mac>/ipxe must never be written through the old link into by-host/.
          const parent = path.posix.dirname(s.path);
          const link = parent.startsWith("by-mac/") && (recorded(parent)?.kind === "symlink" || unsure.has(parent)) ? await fs.stat(parent) : undefined;
          if (link?.kind === "symlink") await replaceLinkWithFolder(fs, parent, content);
          else await fs.writeFile(s.path, content, { direct: direct && !parent.startsWith("by-mac/") });
        }
        result.switched++;
      },
    );
  }

  // Leftovers of an interrupted deploy whose paths this one did not write again.
  await removeTemps(fs, deployed.pending);

  // 4. Own what is about to go (pending), record the new state, remove what goes, and only then
  // drop what is no longer pending: at every instant, every path there is recorded or pending.
  const going = Object.fromEntries(plan.deletions.filter((p) => deployed.entries[p]).map((p) => [p, deployed.entries[p]!]));
  if (plan.deletions.length > 0) await writeJournal(fs, [...new Set([...pending, ...plan.manifest.pending, ...plan.deletions])].sort());
  await writeRecord(fs, plan.manifest);
  const keptPending: string[] = [];
  for (const p of plan.deletions) {
    hooks.onEvent?.({ action: "remove", path: p });
    const blocked = (await fs.blockedAt(p))?.path;
    if (blocked !== undefined) {
      // Behind a link of ours (a copy-mode by-mac/<mac>/ipxe whose folder became a link) it went with
      // its folder. Behind a link made by hand (say by-class → another disk) it is not ours to follow:
      // kept, recorded, and said.
      if (going[p] && !(blocked in plan.manifest.entries)) result.kept.push(p);
      // One that was only pending (what a stopped gc was removing) stays pending: still owned, and said.
      else if (!going[p] && deployed.pending.includes(p) && !(blocked in plan.manifest.entries)) keptPending.push(p);
      continue;
    }
    const st = await fs.stat(p);
    if (st && st.kind !== "dir") await fs.remove(p);
    await removeEmptyParents(fs, p);
    result.removed++;
  }
  if (result.kept.length > 0) await writeRecord(fs, { ...plan.manifest, entries: { ...plan.manifest.entries, ...Object.fromEntries(result.kept.map((p) => [p, going[p]!])) } });
  await writeJournal(fs, keptPending.length > 0 ? [...new Set([...plan.manifest.pending, ...keptPending])].sort() : plan.manifest.pending);
  result.kept.push(...keptPending);
  return result;
}

/** Why a path applyDeploy was to remove is still there (ApplyDeployResult.kept), for deploy's and gc's warnings. */
export function notRemoved(p: string, deployed: DeployedManifest): string {
  return `${p} was not removed: a folder on its way is a link made by hand (it stays ${deployed.entries[p] ? "recorded" : "pending"})`;
}

/** by-mac/<mac>/ (copy mode) becomes a link: link made aside, folder renamed aside, link renamed in; the MAC is unreachable for one rename. */
async function replaceFolderWithLink(fs: TargetFs, rel: string, target: string): Promise<void> {
  const aside = asideOf(rel, "old");
  const link = tempName(rel);
  await fs.remove(`${aside}/ipxe`);
  await fs.removeDir(aside);
  await fs.remove(link);
  await fs.symlink(target, link, { direct: true });
  await fs.rename(rel, aside);
  await fs.rename(link, rel);
  // What it held (checkReachable saw to it): the script, and perhaps a stopped deploy's temporary copy of it.
  await fs.remove(`${aside}/ipxe`);
  await fs.remove(`${aside}/.ipxe.netbuild-tmp`);
  await fs.removeDir(aside);
}

/** by-mac/<mac> (a link) becomes a copy-mode folder: folder made complete aside, link removed, folder renamed in. */
async function replaceLinkWithFolder(fs: TargetFs, rel: string, content: string | Uint8Array): Promise<void> {
  const aside = asideOf(rel, "new");
  await fs.remove(`${aside}/ipxe`);
  await fs.removeDir(aside);
  await fs.writeFile(`${aside}/ipxe`, content, { direct: true });
  await fs.remove(rel);
  await fs.rename(aside, rel);
}

/** A file of out/ the plan did not hold in memory (an iPXE binary, a script of a tree deployed as it stands), checked against the sha256 it was planned with. */
async function readSource(sourceDir: string, rel: string, planned: string): Promise<Buffer> {
  const bytes = await readFile(path.join(sourceDir, rel));
  if (sha256(bytes) !== planned) {
    throw new UserError("OUT_CONFLICT", `${path.join(sourceDir, rel)} changed since the deploy was planned (its content is not the one the plan records): it was not sent`, {
      hint: "something wrote into out/ during the deploy; run `netbuild build` again, then deploy",
    });
  }
  return bytes;
}

/** Removes the temporary files of interrupted deploys (gc). */
export async function removeTemps(fs: TargetFs, paths: readonly string[]): Promise<number> {
  let n = 0;
  for (const p of paths) {
    if ((await fs.blockedAt(p)) === undefined) {
      const tmp = tempName(p);
      const st = await fs.stat(tmp);
      if (st && st.kind !== "dir") {
        await fs.remove(tmp);
        n++;
      }
    }
    // The folders a links ↔ copy switch of by-mac/<mac> makes beside it (asideOf), with netbuild's
    // ipxe in them: pending as by-mac/<mac> (copy → links) or as by-mac/<mac>/ipxe (links → copy,
    // whose by-mac/<mac> may be a link again by now: the folder aside is looked for all the same).
    const mac = /^by-mac\/[^/]+$/.test(p) ? p : /^by-mac\/[^/]+\/ipxe$/.test(p) ? path.posix.dirname(p) : undefined;
    if (mac === undefined || (await fs.blockedAt(asideOf(mac, "new"))) !== undefined) continue;
    for (const aside of [asideOf(mac, "old"), asideOf(mac, "new")]) {
      if ((await fs.stat(aside))?.kind !== "dir") continue;
      await fs.remove(`${aside}/ipxe`);
      await fs.remove(`${aside}/${tempName("ipxe")}`);
      if (await fs.removeDir(aside)) n++;
    }
  }
  return n;
}

/** Where replaceFolderWithLink (old) and replaceLinkWithFolder (new) put a by-mac/<mac> folder aside. */
function asideOf(rel: string, which: "old" | "new"): string {
  return `${path.posix.dirname(rel)}/.${path.posix.basename(rel)}.netbuild-${which}`;
}

// ---------------------------------------------------------------------------------------------
// The lock: `.netbuild/lock`, created exclusively, its mtime refreshed while the deploy runs.

export interface LockInfo {
  owner: string;
  host: string;
  /** The machine's id (/etc/machine-id), when it has one: host names repeat (NixOS's default is `nixos`). */
  machine?: string;
  pid: number;
  command: string;
  started: string;
  token: string;
}

const HEARTBEAT_MS = 10_000;
/** A lock whose heartbeat is older than this is reported as stale. */
const STALE_MS = 90_000;

export interface HeldLock {
  /** Whether the lock file is still this one (nobody broke it with --break-lock and took the target). */
  stillHeld(): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Locks this process holds or is taking now (by token): a lock of this pid that is not among them
 * was left by a deploy that failed. A token is added before its lock file is created, never after:
 * another caller in this process (two target names for one folder) could otherwise read the new
 * lock in between, judge it left behind, and break it.
 */
const heldHere = new Set<string>();

/** This machine's id (systemd's /etc/machine-id, or D-Bus's copy), or undefined when it has none. */
function machineId(): string | undefined {
  return machineIdFrom(["/etc/machine-id", "/var/lib/dbus/machine-id"]);
}

/** The first of these files that holds a machine id (32 hex digits, a newline after them or not). */
export function machineIdFrom(files: readonly string[]): string | undefined {
  for (const file of files) {
    try {
      const id = readFileSync(file, "utf8").trim();
      if (/^[0-9a-f]{32}$/.test(id)) return id;
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

function describeLock(info: LockInfo | undefined, ageMs: number): { text: string; dead: boolean; quiet: boolean; ours: boolean } {
  const quiet = ageMs > STALE_MS;
  const age = `, last heartbeat ${Math.round(ageMs / 1000)} s ago`;
  if (!info) return { text: `a lock file netbuild cannot read${age}`, dead: false, quiet, ours: false };
  // A lock this process holds or is taking (its token is random: no other process has it).
  const ours = heldHere.has(info.token);
  let dead = false;
  // Its pid means something here only when the lock is this very machine's: the same host name is
  // not enough (two laptops both called `nixos` would judge each other's live deploys gone).
  const here = machineId();
  if (info.host === os.hostname() && here !== undefined && info.machine === here) {
    if (info.pid === process.pid) dead = !ours;
    else {
      try {
        process.kill(info.pid, 0);
      } catch (e) {
        dead = (e as NodeJS.ErrnoException).code === "ESRCH";
      }
    }
  }
  return { text: `\`netbuild ${info.command}\` by ${info.owner} on ${info.host} (pid ${info.pid}), started ${info.started}${age}`, dead, quiet, ours };
}

export async function acquireLock(fs: TargetFs, command: string, options: { wait?: boolean; breakLock?: boolean; onWait?: (message: string) => void }): Promise<HeldLock> {
  const id = machineId();
  const info: LockInfo = { owner: os.userInfo().username, host: os.hostname(), ...(id ? { machine: id } : {}), pid: process.pid, command, started: new Date().toISOString(), token: randomBytes(8).toString("hex") };
  let announced = false;
  heldHere.add(info.token);
  try {
    for (;;) {
      if (await fs.createExclusive(LOCK_PATH, `${JSON.stringify(info)}\n`)) break;
      const st = await fs.stat(LOCK_PATH);
      if (st === undefined) continue; // released in between
      // Only a small regular file is a lock: a link, a FIFO or a device there is never read.
      if (st.kind !== "file") throw conflictError("TARGET_CONFLICT", fs.description, [{ path: LOCK_PATH, what: `${describeKind(st.kind)}, where netbuild keeps its lock (a regular file)` }]);
      // A lock over 4 KiB is not netbuild's writing: judged unreadable without reading it.
      const small = st.size <= 4096;
      const raw = small ? await fs.readFile(LOCK_PATH) : Buffer.from("");
      if (!raw) continue;
      let held: LockInfo | undefined;
      try {
        held = JSON.parse(raw.toString("utf8")) as LockInfo;
        if (typeof held?.token !== "string") held = undefined;
      } catch {
        held = undefined;
      }
      const described = describeLock(held, Date.now() - st.mtimeMs);
      const { text, quiet, ours } = described;
      // A lock nobody can read (empty after a crash between its creation and its first write) is never
      // judged stale by itself, however quiet: its heartbeat is the server's clock, and a deployer whose
      // clock runs ahead would break a lock being written. Its hint says --break-lock once it is quiet.
      const dead = described.dead;
      // --break-lock is for a deploy that is gone, never for one this process is running (two target
      // names for one folder): that lock is live, whatever the user asked.
      if (!ours && (dead || options.breakLock)) {
        // Provably stale (its process, on this machine, is gone), or the user said so. Break it by
        // moving it aside and checking it is the lock we judged: two deploys breaking the same stale
        // lock must not both go ahead.
        options.onWait?.(dead ? `breaking the stale lock of ${text}: that process is gone` : `breaking the lock of ${text}`);
        const aside = `${LOCK_PATH}.broken-${info.token}`;
        await fs.rename(LOCK_PATH, aside).catch(() => undefined);
        // (One not read is recognised by its size and mtime.)
        const moved = small ? await fs.readFile(aside) : await fs.stat(aside);
        const judged = moved === undefined || (Buffer.isBuffer(moved) ? moved.equals(raw) : moved.size === st.size && moved.mtimeMs === st.mtimeMs);
        if (!judged) await fs.rename(aside, LOCK_PATH).catch(() => undefined);
        else await fs.remove(aside);
        continue;
      }
      if (!options.wait) {
        throw new UserError("DEPLOY_LOCKED", `${fs.description} is locked by ${text}`, {
          hint: quiet ? "it has not shown a heartbeat for a while, so it is probably stale: if that deploy is really gone, run again with --break-lock (this deploy then finishes its work)" : "wait for it (--wait), or, if that deploy is gone, --break-lock",
        });
      }
      if (!announced) options.onWait?.(`waiting for the lock held by ${text}`);
      announced = true;
      await new Promise((r) => setTimeout(r, 1000));
    }
  } catch (e) {
    heldHere.delete(info.token);
    throw e;
  }
  const timer = setInterval(() => void fs.touch(LOCK_PATH).catch(() => undefined), HEARTBEAT_MS);
  timer.unref();
  const stillHeld = async () => {
    try {
      const now = await fs.readFile(LOCK_PATH);
      return now !== undefined && (JSON.parse(now.toString("utf8")) as LockInfo).token === info.token;
    } catch {
      return false;
    }
  };
  return {
    stillHeld,
    async release() {
      clearInterval(timer);
      // Only our own lock (someone may have broken it and taken the target meanwhile). After a lost
      // connection this cannot reach the target; the lock is then stale, and provably so. The token
      // stays counted as held until its file is gone: a taker in this process that reads the lock
      // meanwhile must find it live, not left behind.
      try {
        if (await stillHeld()) await fs.remove(LOCK_PATH);
      } catch {
        // unreadable or unreachable: left for the next deploy to judge
      } finally {
        heldHere.delete(info.token);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Verify: the target against its manifest.

export interface Drift {
  /** Recorded paths that are gone. */
  missing: string[];
  /** Recorded paths whose content (or link target, or kind) is not what netbuild wrote. */
  changed: string[];
  /** Paths in netbuild's folders that netbuild did not write (added by hand?). */
  extra: string[];
  /** Files checked, and artifact bytes hashed. */
  checked: number;
  hashedBytes: number;
}

const MANAGED_DIRS = ["by-mac", "by-host", "by-class"];

export async function verifyTarget(fs: TargetFs, deployed: DeployedManifest, onChecking?: (path: string, bytes: number) => void): Promise<Drift> {
  const drift: Drift = { missing: [], changed: [], extra: [], checked: 0, hashedBytes: 0 };
  const entries = Object.entries(deployed.entries);
  await pool(entries, 8, async ([p, e]) => {
    const st = await fs.stat(p);
    drift.checked++;
    if (!st) return void drift.missing.push(p);
    if (e.kind === "symlink") {
      if (st.kind !== "symlink" || (await fs.readlink(p)) !== e.target) drift.changed.push(p);
      return;
    }
    if (st.kind !== "file") return void drift.changed.push(p);
    if (e.kind === "artifact") {
      if (st.size !== e.size) return void drift.changed.push(p);
      onChecking?.(p, e.size);
      drift.hashedBytes += e.size;
      if ((await fs.sha256(p)) !== e.sha256) drift.changed.push(p);
      return;
    }
    const data = await fs.readFile(p);
    if (!data || sha256(data) !== e.sha256) drift.changed.push(p);
  });
  // Walk netbuild's folders for what it did not write (through real folders only, not by-mac links).
  const temps = new Set(deployed.pending.map(tempName));
  const walk = async (dir: string): Promise<void> => {
    for (const item of await fs.list(dir)) {
      const p = `${dir}/${item.name}`;
      if (item.kind === "dir" && !(p in deployed.entries)) await walk(p);
      else if (!(p in deployed.entries) && !temps.has(p)) drift.extra.push(p);
    }
  };
  // ipxe/ is netbuild's once it has written the iPXE binaries there (a tree built without them leaves a target's own folder alone).
  const managed = Object.keys(deployed.entries).some((p) => p.startsWith(`${IPXE_DIR}/`)) ? [...MANAGED_DIRS, IPXE_DIR] : MANAGED_DIRS;
  for (const d of managed) if ((await fs.stat(d))?.kind === "dir") await walk(d);
  const top = await fs.stat("boot.ipxe");
  if (top && !("boot.ipxe" in deployed.entries)) drift.extra.push("boot.ipxe");
  for (const list of [drift.missing, drift.changed, drift.extra]) list.sort();
  return drift;
}
