// The one confinement rule, for every root netbuild writes into (out/ and each target, local or
// SFTP): a path is relative and stays inside (core/paths.ts), and every folder on its way below the
// root is a real folder, found by lstat and never by following a link. A link, a file or anything
// else where a folder should be is a conflict: the operation is refused with exit 2, naming the
// path and what is there. Only the root itself may be a link (the user chose it).
//
// Each backend gives its own lstat/mkdir; what was found is remembered for the rest of the run, so
// checking the folders of 10,000 scripts costs one lstat per folder, once. A folder netbuild then
// renames or removes itself is forgotten. Not a defence against someone swapping folders while a
// run is in progress (nothing short of openat(2) on every step is), but against every tree that a
// mistake, an edit or a hostile record leaves behind.
import type { Stats } from "node:fs";
import { UserError, type ErrorCode } from "../errors.ts";
import { escaped } from "../core/excerpt.ts";
import { foldersOf, relPathProblem } from "../core/paths.ts";

export type PathKind = "file" | "dir" | "symlink" | "other";

export interface FolderProbe {
  /** lstat: undefined when nothing is there. */
  lstat(rel: string): Promise<PathKind | undefined>;
  /** Makes one folder whose parent exists; may fail when something appeared there meanwhile. */
  mkdir(rel: string): Promise<void>;
}

/** What a local lstat found. */
export function localKind(st: Pick<Stats, "isSymbolicLink" | "isDirectory" | "isFile"> | undefined): PathKind | undefined {
  return st === undefined ? undefined : st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
}

/** What stands where a folder should be. */
export interface Blocked {
  path: string;
  kind: PathKind;
}

export function describeKind(kind: PathKind): string {
  return kind === "symlink" ? "a symlink" : kind === "file" ? "a file" : kind === "dir" ? "a folder" : "a special file (device, FIFO or socket)";
}

/** The conflict error: `<root>/<path> is a symlink where netbuild needs a real folder`. */
export function conflictError(code: ErrorCode, description: string, problems: readonly { path: string; what: string }[]): UserError {
  const shown = problems.slice(0, 8).map((p) => `${escaped(p.path)} is ${p.what}`);
  return new UserError(code, `${description}: ${shown.join("; ")}${problems.length > 8 ? `; and ${problems.length - 8} more` : ""}; nothing was changed`, {
    hint: "netbuild never writes through a link or over something it did not make: move it away (or replace the link with the real folder), then run again",
  });
}

/** Throws an internal error for a path that could leave the root: every path reaching here was checked when read. */
export function checkRel(rel: string): string {
  const problem = relPathProblem(rel);
  if (problem) throw new Error(`refusing a path that ${problem}: ${JSON.stringify(rel)}`);
  return rel;
}

/**
 * The same rule for a caller that must stay synchronous (the inventory cache, read and written
 * around a synchronous load), with `lstat` and `mkdir` of one folder at a time: with `mkdir`, makes
 * every missing folder on the way to `rel`, all real; without, a missing folder ends the check.
 * Throws the conflict error on anything else in the way.
 */
export function prepareSync(description: string, probe: { lstat(rel: string): PathKind | undefined; mkdir?(rel: string): void }, code: ErrorCode, rel: string): void {
  for (const dir of foldersOf(checkRel(rel))) {
    let kind = probe.lstat(dir);
    if (kind === undefined) {
      if (!probe.mkdir) return;
      try {
        probe.mkdir(dir);
      } catch (e) {
        // Nothing there and mkdir failed: the reason is mkdir's (permission, full disk), not a conflict.
        if (probe.lstat(dir) === undefined) throw e;
      }
      kind = probe.lstat(dir) ?? "other";
    }
    if (kind !== "dir") throw conflictError(code, description, [{ path: dir, what: `${describeKind(kind)}, where netbuild needs a real folder (to reach ${rel})` }]);
  }
}

export class ConfinedRoot {
  private readonly kinds = new Map<string, Promise<PathKind | undefined>>();
  private readonly made = new Map<string, Promise<unknown>>();

  constructor(
    /** The root, for messages (a folder, or `sftp://…`). */
    readonly description: string,
    private readonly probe: FolderProbe,
    private readonly code: ErrorCode,
  ) {}

  /** Known paths by their folder, so forgetting one folder costs what lies below it, not a pass over everything known. */
  private readonly below = new Map<string, Set<string>>();

  private kindOf(dir: string): Promise<PathKind | undefined> {
    let k = this.kinds.get(dir);
    if (!k) {
      k = this.probe.lstat(dir);
      this.kinds.set(dir, k);
      const parent = dir.includes("/") ? dir.slice(0, dir.lastIndexOf("/")) : "";
      let siblings = this.below.get(parent);
      if (!siblings) this.below.set(parent, (siblings = new Set()));
      siblings.add(dir);
      k.catch(() => this.kinds.delete(dir));
    }
    return k;
  }

  /** The first thing on the way to `rel` (below the root) that is not a real folder; a missing folder is no obstacle. */
  async blockedAt(rel: string): Promise<Blocked | undefined> {
    for (const dir of foldersOf(checkRel(rel))) {
      const kind = await this.kindOf(dir);
      if (kind === undefined) return undefined;
      if (kind !== "dir") return { path: dir, kind };
    }
    return undefined;
  }

  /** Throws the conflict error when a folder on the way to `rel` is not a real folder. */
  async check(rel: string): Promise<void> {
    const blocked = await this.blockedAt(rel);
    if (blocked) throw conflictError(this.code, this.description, [{ path: blocked.path, what: `${describeKind(blocked.kind)}, where netbuild needs a real folder (to reach ${rel})` }]);
  }

  /** Makes every missing folder on the way to `rel`, all real; throws the conflict error on anything else in the way. */
  async prepare(rel: string): Promise<void> {
    for (const dir of foldersOf(checkRel(rel))) {
      let kind = await this.kindOf(dir);
      if (kind === undefined) {
        let making = this.made.get(dir);
        if (!making) {
          // A folder mkdir made is a real one; only when it fails (something appeared) is it looked at again.
          making = this.probe.mkdir(dir).then(
            () => void this.kinds.set(dir, Promise.resolve("dir")),
            (e: unknown) => {
              this.kinds.delete(dir);
              return e;
            },
          );
          this.made.set(dir, making);
          void making.finally(() => this.made.delete(dir));
        }
        const failed = await making;
        // A folder mkdir made is known as one: nothing there now means mkdir failed, for its own
        // reason (permission, full disk), not a conflict.
        kind = await this.kindOf(dir);
        if (kind === undefined) throw failed;
      }
      if (kind !== "dir") {
        throw conflictError(this.code, this.description, [{ path: dir, what: `${describeKind(kind!)}, where netbuild needs a real folder (to reach ${rel})` }]);
      }
    }
  }

  /** After netbuild itself renamed, removed or replaced `rel`: what was known of it and below is forgotten. */
  forget(rel: string): void {
    this.kinds.delete(rel);
    const children = this.below.get(rel);
    if (!children) return;
    this.below.delete(rel);
    for (const c of children) this.forget(c);
  }

  /** Forgets every folder it has looked at or made: each is looked at again on the way to the next path. */
  forgetAll(): void {
    this.kinds.clear();
    this.made.clear();
    this.below.clear();
  }
}
