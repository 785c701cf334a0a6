// The iPXE binaries PXE firmware is given over TFTP: read from the folder the site names
// (`ipxe.binaries`), or Debian's /usr/lib/ipxe. Never downloaded.
import { createHash } from "node:crypto";
import { constants, existsSync } from "node:fs";
import { lstat, open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.ts";
import type { IpxeBinary } from "../core/dhcp.ts";
import type { IpxeFile } from "../core/tree.ts";

/** Where Debian's `ipxe` package installs undionly.kpxe, ipxe.efi and snponly.efi. */
export const DEBIAN_IPXE = "/usr/lib/ipxe";

/** The folder the binaries are read from: the site's (relative to the root), or /usr/lib/ipxe where it exists. */
export function ipxeFolder(root: string, binaries: string | undefined): string | undefined {
  if (binaries !== undefined) return path.resolve(root, binaries);
  return existsSync(DEBIAN_IPXE) ? DEBIAN_IPXE : undefined;
}

/** iPXE binaries are well under 2 MiB (Debian's ipxe.efi: about 1 MiB); TFTP's classic limit is 32 MiB. */
const MAX_BINARY_BYTES = 16 * 2 ** 20;

const HINT = "install Debian's `ipxe` package (apt install ipxe: /usr/lib/ipxe), or set `ipxe: { binaries: DIR }` in netbuild.yaml to a folder holding undionly.kpxe, snponly.efi and ipxe.efi (nixpkgs: the `ipxe` package's output)";

/** Reads `names` from the folder: each a regular file (a symlink to one is followed: /usr/lib/ipxe and the Nix store use them). */
export async function readIpxeBinaries(folder: string | undefined, names: readonly string[]): Promise<IpxeBinary[]> {
  return (await readIpxeFiles(folder, names)).map(({ name, sha256, size }) => ({ name, sha256, size }));
}

/** As readIpxeBinaries, with each file's bytes. */
export async function readIpxeFiles(folder: string | undefined, names: readonly string[]): Promise<(IpxeBinary & IpxeFile)[]> {
  if (folder === undefined) throw new UserError("IPXE_NOT_FOUND", `there are no iPXE binaries: ${DEBIAN_IPXE} does not exist and netbuild.yaml names no folder`, { hint: HINT });
  const found: (IpxeBinary & IpxeFile)[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const file = path.join(folder, name);
    let handle: FileHandle;
    try {
      // O_NONBLOCK: a FIFO put there is not waited on (it is refused below, as not a regular file).
      handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        missing.push(name);
        continue;
      }
      throw new UserError("IPXE_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { hint: HINT });
    }
    try {
      const st = await handle.stat();
      if (st.isDirectory()) throw new UserError("IPXE_NOT_FOUND", `${file} is a folder, not an iPXE binary`, { hint: HINT });
      if (!st.isFile()) throw new UserError("IPXE_NOT_FOUND", `${file} is not a regular file (a FIFO, a socket or a device), not an iPXE binary`, { hint: HINT });
      if (st.size > MAX_BINARY_BYTES) throw new UserError("IPXE_NOT_FOUND", `${file} is ${(st.size / 2 ** 20).toFixed(1)} MiB, more than any iPXE binary (at most ${MAX_BINARY_BYTES / 2 ** 20} MiB)`, { hint: HINT });
      const content = await handle.readFile();
      found.push({ name, sha256: createHash("sha256").update(content).digest("hex"), size: content.length, content });
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError("IPXE_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { hint: HINT });
    } finally {
      await handle.close();
    }
  }
  if (missing.length > 0) {
    const there = await lstat(folder).then((s) => s.isDirectory(), () => false);
    throw new UserError("IPXE_NOT_FOUND", there ? `${folder} has no ${missing.join(" and no ")}` : `the iPXE binaries' folder ${folder} does not exist`, { hint: HINT });
  }
  return found;
}
