// A build plans its tree while nix-build runs, for the builds out/'s manifest records, and uses
// that plan only when Nix gives exactly those builds (commands/build.ts sameBuilds). The CLI tests
// that rebuild a class (tree.test.ts, history.test.ts) show the tree is planned again then; these
// say which differences count.
import { describe, expect, it } from "vitest";
import { sameBuilds } from "../src/commands/build.ts";
import type { ClassName, KernelParam } from "../src/core/names.ts";
import type { ClassBuild } from "../src/core/tree.ts";

const build = (over: { kernel?: string; kernelSize?: number; initrd?: string; initrdSize?: number; params?: string[] } = {}): ClassBuild => ({
  kernel: { storeFile: over.kernel ?? "/nix/store/00000000000000000000000000000000-k/kernel", size: over.kernelSize ?? 10 },
  initrd: { storeFile: over.initrd ?? "/nix/store/11111111111111111111111111111111-i/initrd", size: over.initrdSize ?? 20 },
  kernelParams: (over.params ?? ["console=ttyS0"]) as KernelParam[],
});
const builds = (...entries: [string, ClassBuild][]) => new Map(entries.map(([n, b]) => [n as ClassName, b]));

describe("the tree planned while nix-build runs", () => {
  it("is used for the same builds, in any order", () => {
    expect(sameBuilds(builds(["a", build()], ["b", build({ kernel: "/nix/store/22222222222222222222222222222222-k/kernel" })]), builds(["b", build({ kernel: "/nix/store/22222222222222222222222222222222-k/kernel" })], ["a", build()]))).toBe(true);
  });

  it.each([
    ["another kernel", build({ kernel: "/nix/store/22222222222222222222222222222222-k/kernel" })],
    ["another kernel size", build({ kernelSize: 11 })],
    ["another initrd", build({ initrd: "/nix/store/33333333333333333333333333333333-i/initrd" })],
    ["another initrd size", build({ initrdSize: 21 })],
    ["another parameter", build({ params: ["console=ttyS1"] })],
    ["one parameter more", build({ params: ["console=ttyS0", "quiet"] })],
    ["one parameter less", build({ params: [] })],
  ])("is planned again when Nix gives %s", (_what, other) => {
    expect(sameBuilds(builds(["a", build()]), builds(["a", other]))).toBe(false);
    expect(sameBuilds(builds(["a", other]), builds(["a", build()]))).toBe(false);
  });

  it("is planned again when a class is built that the manifest did not record, or one is missing", () => {
    expect(sameBuilds(builds(["a", build()]), builds(["a", build()], ["b", build()]))).toBe(false);
    expect(sameBuilds(builds(["a", build()], ["b", build()]), builds(["a", build()], ["c", build()]))).toBe(false);
    expect(sameBuilds(builds(["a", build()], ["b", build()]), builds(["a", build()]))).toBe(false);
  });
});
