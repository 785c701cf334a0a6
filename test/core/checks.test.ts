import { describe, expect, it } from "vitest";
import { hostsShortOfRam, MAX_IMAGE_BYTES, oversizedImages, ramNeeded } from "../../src/core/checks.ts";
import type { Host, Inventory } from "../../src/core/inventory.ts";
import type { ClassName, HostName } from "../../src/core/names.ts";
import type { ClassBuild } from "../../src/core/tree.ts";

const MiB = 2 ** 20;
const build = (kernel: number, initrd: number): ClassBuild => ({
  kernel: { storeFile: "/nix/store/00000000000000000000000000000000-k", size: kernel },
  initrd: { storeFile: "/nix/store/11111111111111111111111111111111-i", size: initrd },
  kernelParams: [],
});

describe("image size limits", () => {
  it("refuses an initrd of 2 GiB or more, which firmware and iPXE do not load reliably", () => {
    const builds = new Map([
      ["ok" as ClassName, build(10 * MiB, MAX_IMAGE_BYTES - 1)],
      ["big" as ClassName, build(10 * MiB, MAX_IMAGE_BYTES)],
    ]);
    expect(oversizedImages(builds)).toEqual([{ className: "big", what: "initrd", size: MAX_IMAGE_BYTES }]);
  });
});

describe("RAM estimate", () => {
  it("is kernel + twice the initrd + 512 MiB", () => {
    expect(ramNeeded(build(10 * MiB, 300 * MiB))).toBe(10 * MiB + 600 * MiB + 512 * MiB);
  });

  it("names only the hosts that declare less RAM than their class needs", () => {
    const host = (name: string, ram: number | undefined): Host => ({ name: name as HostName, file: "hosts/x.yaml", className: "c" as ClassName, macs: [], ip: undefined, ramBytes: ram, provisionDisks: false, provisionId: undefined, provisionForce: false, sshAuthorizedKeys: [], kernelParams: [], description: undefined, talos: undefined });
    const inv = { hosts: [host("small", 1024 * MiB), host("enough", 2048 * MiB), host("unknown", undefined)] } as unknown as Inventory;
    const short = hostsShortOfRam(inv, new Map([["c" as ClassName, build(10 * MiB, 300 * MiB)]]));
    expect(short.map((s) => s.host.name)).toEqual(["small"]);
  });
});
