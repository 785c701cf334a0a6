// What deploy needs from a target's file system, and the local-folder implementation (the SFTP one
// is adapters/sftp.ts). Paths are relative to the target folder, `/`-separated, and checked here:
// no absolute paths, no `..`, nothing that leaves the target.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { copyFileAtomic, lstatOrUndefined, symlinkAtomic, writeFileAtomic } from "./files.ts";

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
  /** Writes under a temporary name next to `rel`, then renames over it (atomic replace). */
  writeFile(rel: string, content: string): Promise<void>;
  /** Copies a local file to a temporary name, checks the size that arrived, renames it into place. */
  upload(localFile: string, rel: string, size: number, progress?: TransferProgress): Promise<void>;
  /** Creates a symlink under a temporary name and renames it over `rel`. */
  symlink(target: string, rel: string): Promise<void>;
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
      try {
        await fs.writeFile(abs(rel), content, { flag: "wx" });
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw e;
      }
    },
    writeFile: (rel, content) => writeFileAtomic(abs(rel), content),
    async upload(localFile, rel, size, progress) {
      const copied = await copyFileAtomic(localFile, abs(rel));
      if (copied.size !== size) throw new Error(`${rel}: ${copied.size} bytes arrived, ${size} expected`);
      progress?.(size, size);
    },
    symlink: (target, rel) => symlinkAtomic(target, abs(rel)),
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
