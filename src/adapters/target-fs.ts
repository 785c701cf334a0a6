// What deploy needs from a target's file system, and the local-folder implementation (the SFTP one
// is adapters/sftp.ts). Paths are relative to the target folder, `/`-separated, and every one goes
// through the confinement rule (adapters/confine.ts): nothing that leaves the target, and nothing
// written, renamed, linked or removed through a link or a file where a folder should be.
import { createHash } from "node:crypto";
import { constants as fsConstants, createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UserError, type ErrorCode } from "../errors.ts";
import { tempName } from "../core/paths.ts";
import { checkRel, ConfinedRoot, conflictError, localKind, type Blocked } from "./confine.ts";
import { lstatOrUndefined } from "./files.ts";

export { tempName } from "../core/paths.ts";
export { checkRel, localKind } from "./confine.ts";

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
  /** The first thing on the way to `rel` that is not a real folder (a link, a file…), if any: writing there is a conflict. */
  blockedAt(rel: string): Promise<Blocked | undefined>;
  /**
   * Forgets what it found of the target's folders (each folder is looked at once per connection,
   * and trusted after): for a run that waited, while someone could change them.
   */
  lookAgain(): void;
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
  writeFile(rel: string, content: string | Uint8Array, options?: { direct?: boolean }): Promise<void>;
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
  /**
   * A file of the target's machine outside the target (a web server's access log), by its absolute
   * path, as a stream: read only, never written. Undefined when it does not exist.
   */
  readOutside(absolute: string): Promise<Readable | undefined>;
  close(): Promise<void>;
}

/** The confinement rule (adapters/confine.ts) for a local folder: lstat and mkdir below `root`. */
export function localConfinedRoot(root: string, code: ErrorCode): ConfinedRoot {
  const abs = (rel: string) => path.join(root, checkRel(rel));
  return new ConfinedRoot(root, { lstat: async (rel) => localKind(await lstatOrUndefined(abs(rel))), mkdir: (rel) => fs.mkdir(abs(rel)) }, code);
}

export function localTargetFs(root: string, code: ErrorCode = "TARGET_CONFLICT"): TargetFs {
  const abs = (rel: string) => path.join(root, checkRel(rel));
  const confined = localConfinedRoot(root, code);
  /** The target folder itself is made when missing (with its parents: it is a local folder the user named). */
  const prepare = async (rel: string) => {
    await fs.mkdir(root, { recursive: true });
    await confined.prepare(rel);
  };
  const viaTemp = async (rel: string, make: (tmp: string) => Promise<void>) => {
    const tmp = abs(tempName(rel));
    await prepare(rel);
    // The fixed temporary name is cleared first (a link there is removed, never followed) and
    // created exclusively by `make`; a folder there is a conflict.
    if (localKind(await lstatOrUndefined(tmp)) === "dir") throw conflictError(code, root, [{ path: tempName(rel), what: "a folder, where netbuild writes its temporary file" }]);
    await fs.rm(tmp, { force: true });
    try {
      await make(tmp);
      await fs.rename(tmp, abs(rel));
      confined.forget(rel);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
  };
  return {
    description: root,
    blockedAt: (rel) => confined.blockedAt(rel),
    lookAgain: () => confined.forgetAll(),
    async stat(rel) {
      const st = await lstatOrUndefined(abs(rel));
      return st && { kind: localKind(st)!, size: st.size, mtimeMs: st.mtimeMs };
    },
    async readFile(rel) {
      await confined.check(rel);
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
      await prepare(rel);
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
        // In place, only where nothing is: never through a link that appeared there.
        await prepare(rel);
        await fs.writeFile(abs(rel), content, { flag: "wx" });
      } else await viaTemp(rel, (tmp) => fs.writeFile(tmp, content, { flag: "wx" }));
    },
    async upload(localFile, rel, size, progress) {
      await viaTemp(rel, async (tmp) => {
        await pipeline(createReadStream(localFile), createWriteStream(tmp, { flags: "wx" }));
        const st = await fs.stat(tmp);
        if (st.size !== size) throw new Error(`${rel}: ${st.size} bytes arrived, ${size} expected`);
      });
      // Only the end is reported: a local copy writes into the page cache, so a rate measured
      // during it would say nothing about the disk (and the reporter shows no bar for it).
      progress?.(size, size);
    },
    async symlink(target, rel, options) {
      if (options?.direct) {
        await prepare(rel);
        await fs.symlink(target, abs(rel));
        confined.forget(rel);
      } else await viaTemp(rel, (tmp) => fs.symlink(target, tmp));
    },
    async rename(from, to) {
      await confined.check(from);
      await prepare(to);
      await fs.rename(abs(from), abs(to));
      confined.forget(from);
      confined.forget(to);
    },
    async remove(rel) {
      await confined.check(rel);
      // A file or a link, never a folder (rm without `recursive` refuses one).
      await fs.rm(abs(rel), { force: true });
      confined.forget(rel);
    },
    async removeDir(rel) {
      await confined.check(rel);
      try {
        await fs.rmdir(abs(rel));
        confined.forget(rel);
        return true;
      } catch {
        return false;
      }
    },
    async list(rel) {
      if (rel !== ".") await confined.check(`${rel}/x`);
      try {
        const dirents = await fs.readdir(rel === "." ? root : abs(rel), { withFileTypes: true });
        return dirents.map((d) => ({ name: d.name, kind: localKind(d)! }));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
        throw e;
      }
    },
    async touch(rel) {
      await confined.check(rel);
      const now = new Date();
      await fs.utimes(abs(rel), now, now);
    },
    sha256: async (rel) => {
      await confined.check(rel);
      return new Promise((resolve, reject) => {
        const h = createHash("sha256");
        createReadStream(abs(rel))
          .on("data", (d) => h.update(d))
          .on("end", () => resolve(h.digest("hex")))
          .on("error", reject);
      });
    },
    async freeBytes() {
      try {
        await fs.mkdir(root, { recursive: true });
        const st = await fs.statfs(root);
        return st.bavail * st.bsize;
      } catch {
        return undefined;
      }
    },
    async readOutside(absolute) {
      let handle: fs.FileHandle;
      try {
        // O_NONBLOCK: a FIFO there is refused below, never waited on.
        handle = await fs.open(absolute, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") return undefined;
        throw new UserError("USAGE", `cannot read ${absolute}: ${code === "EACCES" ? "permission denied" : (e as Error).message}`, { hint: "check the path, and that the user running netbuild may read it" });
      }
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        throw new UserError("USAGE", `${absolute} is not a regular file`, { hint: "name the web server's access log" });
      }
      return handle.createReadStream();
    },
    async close() {},
  };
}
