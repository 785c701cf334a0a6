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

  it("refuses a kernel of 2 GiB or more by the same limit, and names both images of a class when both are too big", () => {
    const builds = new Map([
      ["ok" as ClassName, build(MAX_IMAGE_BYTES - 1, 10 * MiB)],
      ["fat" as ClassName, build(MAX_IMAGE_BYTES, 10 * MiB)],
      ["huge" as ClassName, build(MAX_IMAGE_BYTES + 1, MAX_IMAGE_BYTES + 2)],
    ]);
    expect(oversizedImages(builds)).toEqual([
      { className: "fat", what: "kernel", size: MAX_IMAGE_BYTES },
      { className: "huge", what: "kernel", size: MAX_IMAGE_BYTES + 1 },
      { className: "huge", what: "initrd", size: MAX_IMAGE_BYTES + 2 },
    ]);
  });
});

describe("RAM estimate", () => {
  const host = (name: string, ram: number | undefined): Host => ({ name: name as HostName, file: "hosts/x.yaml", className: "c" as ClassName, macs: [], ip: undefined, ramBytes: ram, provisionDisks: false, provisionId: undefined, provisionForce: false, sshAuthorizedKeys: [], kernelParams: [], description: undefined, talos: undefined });

  it("is kernel + twice the initrd + 512 MiB", () => {
    expect(ramNeeded(build(10 * MiB, 300 * MiB))).toBe(10 * MiB + 600 * MiB + 512 * MiB);
  });

  it("names only the hosts that declare less RAM than their class needs", () => {
    const inv = { hosts: [host("small", 1024 * MiB), host("enough", 2048 * MiB), host("unknown", undefined)] } as unknown as Inventory;
    const short = hostsShortOfRam(inv, new Map([["c" as ClassName, build(10 * MiB, 300 * MiB)]]));
    expect(short.map((s) => s.host.name)).toEqual(["small"]);
  });

  it("says how much a short host needs, and counts exactly that much as enough", () => {
    const needed = ramNeeded(build(10 * MiB, 300 * MiB));
    const inv = { hosts: [host("short", needed - 1), host("exact", needed)] } as unknown as Inventory;
    expect(hostsShortOfRam(inv, new Map([["c" as ClassName, build(10 * MiB, 300 * MiB)]])).map((s) => [s.host.name, s.needed])).toEqual([["short", needed]]);
  });

  it("skips a host whose class was not built in this run (nothing to measure it against)", () => {
    const inv = { hosts: [{ ...host("other", 1 * MiB), className: "other" as ClassName }, host("small", 1 * MiB)] } as unknown as Inventory;
    expect(hostsShortOfRam(inv, new Map([["c" as ClassName, build(10 * MiB, 300 * MiB)]])).map((s) => s.host.name)).toEqual(["small"]);
  });
});
