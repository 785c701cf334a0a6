// Where `netbuild dhcp` and `serve` read the iPXE binaries from, and each way they can be missing.
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ipxeFolder, readIpxeBinaries } from "../../src/adapters/ipxe-binaries.ts";
import { UserError } from "../../src/errors.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";

const HINT = "install Debian's `ipxe` package (apt install ipxe: /usr/lib/ipxe), or set `ipxe: { binaries: DIR }` in netbuild.yaml to a folder holding undionly.kpxe, snponly.efi and ipxe.efi (nixpkgs: the `ipxe` package's output)";

async function refusal(folder: string | undefined, names: string[]): Promise<{ code: string; message: string; hint: string | undefined }> {
  try {
    await readIpxeBinaries(folder, names);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return { code: e.code, message: e.message, hint: e.hint };
  }
  throw new Error("read without a refusal");
}

describe("the iPXE binaries", () => {
  afterAll(cleanupTempDirs);

  it("the site's folder (relative to the root) or none given", () => {
    expect(ipxeFolder("/r", "ipxe")).toBe("/r/ipxe");
    expect(ipxeFolder("/r", "/opt/ipxe")).toBe("/opt/ipxe");
  });

  it("read with their sha256 and size", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "a.efi"), "abc");
    expect(await readIpxeBinaries(dir, ["a.efi"])).toEqual([{ name: "a.efi", sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", size: 3 }]);
  });

  it("each way of not being there: no folder at all, a folder that is not there (or is a file), missing files (all named), a folder in a file's place", async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "a.efi"), "abc");
    mkdirSync(path.join(dir, "d.efi"));
    expect(await refusal(undefined, ["a.efi"])).toEqual({ code: "IPXE_NOT_FOUND", message: "there are no iPXE binaries: /usr/lib/ipxe does not exist and netbuild.yaml names no folder", hint: HINT });
    expect(await refusal(path.join(dir, "none"), ["a.efi"])).toEqual({ code: "IPXE_NOT_FOUND", message: `the iPXE binaries' folder ${path.join(dir, "none")} does not exist`, hint: HINT });
    expect(await refusal(path.join(dir, "a.efi"), ["x"])).toEqual({ code: "IPXE_NOT_FOUND", message: `the iPXE binaries' folder ${path.join(dir, "a.efi")} does not exist`, hint: HINT });
    expect(await refusal(dir, ["b.efi", "a.efi", "c.efi"])).toEqual({ code: "IPXE_NOT_FOUND", message: `${dir} has no b.efi and no c.efi`, hint: HINT });
    expect(await refusal(dir, ["d.efi"])).toEqual({ code: "IPXE_NOT_FOUND", message: `${path.join(dir, "d.efi")} is a folder, not an iPXE binary`, hint: HINT });
  });

  it("a FIFO, a device or a huge file in a binary's place: refused at once, never waited on or read whole", async () => {
    const dir = tempDir();
    execFileSync("mkfifo", [path.join(dir, "fifo.efi")]);
    symlinkSync("/dev/zero", path.join(dir, "zero.efi"));
    writeFileSync(path.join(dir, "big.efi"), "");
    truncateSync(path.join(dir, "big.efi"), 17 * 2 ** 20);
    // Opened without O_NONBLOCK, the FIFO would block this test until vitest's timeout.
    expect(await refusal(dir, ["fifo.efi"])).toEqual({ code: "IPXE_NOT_FOUND", message: `${path.join(dir, "fifo.efi")} is not a regular file (a FIFO, a socket or a device), not an iPXE binary`, hint: HINT });
    expect((await refusal(dir, ["zero.efi"])).message).toBe(`${path.join(dir, "zero.efi")} is not a regular file (a FIFO, a socket or a device), not an iPXE binary`);
    expect((await refusal(dir, ["big.efi"])).message).toBe(`${path.join(dir, "big.efi")} is 17.0 MiB, more than any iPXE binary (at most 16 MiB)`);
  });
});
