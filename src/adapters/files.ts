// Local file writes: a temporary name in the same folder, then rename(2), so a reader (an HTTP
// server, nix-build) sees the old file or the new one, never a partial one.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";

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

/** Replaces whatever is at `link` with a symlink to `target`, atomically when it was a file or link. */
export async function symlinkAtomic(target: string, link: string, tmpName?: string): Promise<void> {
  await fs.mkdir(path.dirname(link), { recursive: true });
  const tmp = tempNameFor(link, tmpName);
  await fs.rm(tmp, { force: true });
  await fs.symlink(target, tmp);
  try {
    await fs.rename(tmp, link);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

export function sha256(content: string | Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}
