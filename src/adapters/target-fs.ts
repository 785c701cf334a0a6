// What deploy needs from a target's file system, and the local-folder implementation (the SFTP one
// is adapters/sftp.ts). Paths are relative to the target folder, `/`-separated, and checked here:
// no absolute paths, no `..`, nothing that leaves the target.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { lstatOrUndefined } from "./files.ts";

export interface TargetStat {
  kind: "file" | "dir" | "symlink" | "other";
  size: number;
  mtimeMs: number;
}

export interface TransferProgress {
  (sent: number, total: number): void;
}

export interface TargetFs {
  /** For messages: `sftp://admin@boot:22/srv/http` or a folder. */
  readonly description: string;
  /** lstat: a symlink is reported as one, never followed. */
  stat(rel: string): Promise<TargetStat | undefined>;
  readFile(rel: string): Promise<Buffer | undefined>;
  readlink(rel: string): Promise<string | undefined>;
  /** Creates the file only if nothing is there (O_EXCL); false when something was. */
  createExclusive(rel: string, content: string): Promise<boolean>;
  /**
   * Writes under a temporary name next to `rel`, then renames over it (atomic replace). `direct`:
   * write `rel` itself, for a new path nothing reaches yet (saves a round trip per file).
   */
  writeFile(rel: string, content: string, options?: { direct?: boolean }): Promise<void>;
  /** Copies a local file to a temporary name, checks the size that arrived, renames it into place. */
  upload(localFile: string, rel: string, size: number, progress?: TransferProgress): Promise<void>;
  /** Creates a symlink under a temporary name and renames it over `rel`; `direct`: creates `rel` itself (which must not exist). */
  symlink(target: string, rel: string, options?: { direct?: boolean }): Promise<void>;
  /** Renames within the target (replacing a file or link at `to`). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or symlink; absent is fine. */
  remove(rel: string): Promise<void>;
  /** Removes an empty folder; absent or not empty is fine (returns whether it went). */
  removeDir(rel: string): Promise<boolean>;
  list(rel: string): Promise<{ name: string; kind: TargetStat["kind"] }[]>;
  /** Sets the modification time to now (the deploy lock's heartbeat). */
  touch(rel: string): Promise<void>;
  /** Bytes free for this user on the target's file system, when the server says (statvfs). */
  freeBytes(): Promise<number | undefined>;
  /** sha256 of a file as the target holds it. */
  sha256(rel: string): Promise<string>;
  close(): Promise<void>;
}

/** The temporary name an upload or write of `rel` goes to before its rename: fixed, so a deploy that was interrupted overwrites its own leftovers. */
export function tempName(rel: string): string {
  const i = rel.lastIndexOf("/");
  return `${rel.slice(0, i + 1)}.${rel.slice(i + 1)}.netbuild-tmp`;
}

/** Throws on a relative path that could leave the target (an internal bug, not a user error: every path comes from the planner). */
export function checkRel(rel: string): string {
  const parts = rel.split("/");
  // eslint-disable-next-line no-control-regex
  if (rel === "" || rel.startsWith("/") || parts.some((p) => p === "" || p === "." || p === ".." || /[\x00-\x1f\x7f\\]/.test(p))) {
    throw new Error(`refusing a target path that could leave the target: ${JSON.stringify(rel)}`);
  }
  return rel;
}

export function localTargetFs(root: string): TargetFs {
  const abs = (rel: string) => path.join(root, checkRel(rel));
  const kindOf = (st: import("node:fs").Stats): TargetStat["kind"] => (st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other");
  const viaTemp = async (rel: string, make: (tmp: string) => Promise<void>) => {
    const tmp = abs(tempName(rel));
    await fs.mkdir(path.dirname(tmp), { recursive: true });
    await fs.rm(tmp, { force: true });
    try {
      await make(tmp);
      await fs.rename(tmp, abs(rel));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  };
  return {
    description: root,
    async stat(rel) {
      const st = await lstatOrUndefined(abs(rel));
      return st && { kind: kindOf(st), size: st.size, mtimeMs: st.mtimeMs };
    },
    async readFile(rel) {
      try {
        return await fs.readFile(abs(rel));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
      }
    },
    async readlink(rel) {
      try {
        return await fs.readlink(abs(rel));
      } catch {
        return undefined;
      }
    },
    async createExclusive(rel, content) {
      await fs.mkdir(path.dirname(abs(rel)), { recursive: true });
      let handle: fs.FileHandle;
      try {
        handle = await fs.open(abs(rel), "wx");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw e;
      }
      try {
        await handle.writeFile(content);
      } catch (e) {
        await fs.rm(abs(rel), { force: true });
        throw e;
      } finally {
        await handle.close();
      }
      return true;
    },
    async writeFile(rel, content, options) {
      if (options?.direct) {
        await fs.mkdir(path.dirname(abs(rel)), { recursive: true });
        await fs.writeFile(abs(rel), content);
      } else await viaTemp(rel, (tmp) => fs.writeFile(tmp, content));
    },
    async upload(localFile, rel, size, progress) {
      await viaTemp(rel, async (tmp) => {
        await pipeline(createReadStream(localFile), createWriteStream(tmp));
        const st = await fs.stat(tmp);
        if (st.size !== size) throw new Error(`${rel}: ${st.size} bytes arrived, ${size} expected`);
      });
      progress?.(size, size);
    },
    async symlink(target, rel, options) {
      if (options?.direct) {
        await fs.mkdir(path.dirname(abs(rel)), { recursive: true });
        await fs.symlink(target, abs(rel));
      } else await viaTemp(rel, (tmp) => fs.symlink(target, tmp));
    },
    rename: (from, to) => fs.rename(abs(from), abs(to)),
    remove: (rel) => fs.rm(abs(rel), { force: true }),
    async removeDir(rel) {
      try {
        await fs.rmdir(abs(rel));
        return true;
      } catch {
        return false;
      }
    },
    async list(rel) {
      try {
        const dirents = await fs.readdir(rel === "." ? root : abs(rel), { withFileTypes: true });
        return dirents.map((d) => ({ name: d.name, kind: d.isSymbolicLink() ? "symlink" : d.isDirectory() ? "dir" : d.isFile() ? "file" : "other" }));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw e;
      }
    },
    async touch(rel) {
      const now = new Date();
      await fs.utimes(abs(rel), now, now);
    },
    sha256: (rel) =>
      new Promise((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(abs(rel))
          .on("data", (d) => h.update(d))
          .on("end", () => resolve(h.digest("hex")))
          .on("error", reject);
      }),
    async freeBytes() {
      try {
        await fs.mkdir(root, { recursive: true });
        const st = await fs.statfs(root);
        return st.bavail * st.bsize;
      } catch {
        return undefined;
      }
    },
    async close() {},
  };
}
