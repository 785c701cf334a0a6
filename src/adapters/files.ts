// Local file writes: a temporary name in the same folder, then rename(2), so a reader (an HTTP
// server, nix-build) sees the old file or the new one, never a partial one.
import crypto, { createHash, randomBytes } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, fstatSync, lstatSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, type BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { FileStamp } from "../core/tree.ts";

/** A random temporary name next to `file`, unless the caller names one (the tree writer's fixed names, under its lock). */
function tempNameFor(file: string, tmp: string | undefined): string {
  return tmp ?? path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(4).toString("hex")}`);
}

export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

export async function writeFileAtomic(file: string, content: string | Uint8Array, mode = 0o644, tmpName?: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempNameFor(file, tmpName);
  try {
    if (tmpName) await fs.rm(tmp, { force: true });
    await fs.writeFile(tmp, content, { mode, flag: "wx" });
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Writes `content` unless the file already holds exactly it; true when written. */
export async function writeIfChanged(file: string, content: string): Promise<boolean> {
  if ((await readIfExists(file)) === content) return false;
  await writeFileAtomic(file, content);
  return true;
}

/** Streams `source` to `dest` (never whole in memory), returning its sha256; atomic like the rest. */
export async function copyFileAtomic(source: string, dest: string, tmpName?: string): Promise<{ sha256: string; size: number }> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempNameFor(dest, tmpName);
  // A build's own file in the Nix store, never a device or a FIFO (it would never end).
  if (!(await fs.stat(source)).isFile()) throw new Error(`${source} is not a regular file`);
  const hash = createHash("sha256");
  let size = 0;
  try {
    // Before the source is opened: a `data` listener starts it flowing, and nothing may await in between.
    if (tmpName) await fs.rm(tmp, { force: true });
    const input = createReadStream(source);
    input.on("data", (chunk) => {
      hash.update(chunk);
      size += chunk.length;
    });
    await pipeline(input, createWriteStream(tmp, { mode: 0o644, flags: "wx" }));
    const handle = await fs.open(tmp, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, dest);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return { sha256: hash.digest("hex"), size };
}

// Synchronous writes, for the tree writer: 10,000 small scripts cost a few syscalls each, and one
// awaited call at a time left the main thread idle most of the time waiting on the thread pool.

/** Where a file stands: what out/'s manifest records of it. */
export function stampOf(st: BigIntStats): FileStamp {
  return { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString() };
}

/**
 * Creates `file` holding `content` (O_EXCL: never over or through anything already there, a link
 * included) and returns where it stands, from the open file itself. A reader may see it half
 * written: only for a path nothing reaches yet, or a temporary name.
 */
export function createFileSync(file: string, content: string | Uint8Array, mode = 0o644): FileStamp {
  const fd = openSync(file, "wx", mode);
  let stamp: FileStamp | undefined;
  try {
    writeFileSync(fd, content);
    stamp = stampOf(fstatSync(fd, { bigint: true }));
  } finally {
    closeSync(fd);
    // Created by this call (O_EXCL), so ours to remove when it could not be written whole.
    if (stamp === undefined) rmSync(file, { force: true });
  }
  return stamp;
}

/** Writes `file` under the temporary name `tmp`, renamed over whatever is at `file`: a reader sees the old file or the new one. */
export function replaceFileSync(file: string, content: string | Uint8Array, tmp: string, mode = 0o644): FileStamp {
  rmSync(tmp, { force: true });
  try {
    const stamp = createFileSync(tmp, content, mode);
    renameSync(tmp, file);
    return stamp;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Replaces whatever is at `link` (a file or a link) with a symlink to `target`, made under the temporary name `tmp` and renamed over it. */
export function replaceLinkSync(target: string, link: string, tmp: string): void {
  rmSync(tmp, { force: true });
  symlinkSync(target, tmp);
  try {
    renameSync(tmp, link);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function lstatSyncOrUndefined(p: string): BigIntStats | undefined {
  return lstatSync(p, { bigint: true, throwIfNoEntry: false });
}

/** Whether `file` holds exactly `content` (false when it is missing). */
export function holdsSync(file: string, content: string | Uint8Array): boolean {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  return bytes.equals(typeof content === "string" ? Buffer.from(content) : content);
}

export async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

// crypto.hash (Node 20.12 and later) hashes a small string about three times faster than a Hash
// object does: a build hashes every script of the tree, 10,000 at 10,000 hosts.
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: "hex") => string }).hash;

export function sha256(content: string | Uint8Array): string {
  return oneShot ? oneShot("sha256", content, "hex") : createHash("sha256").update(content).digest("hex");
}
