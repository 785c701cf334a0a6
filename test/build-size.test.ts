// `netbuild build` refuses a kernel or initrd of 2 GiB or more (firmware and iPXE load images into
// 32-bit space) before it writes anything into out/: not a copied artifact, not a switched class
// script, not a manifest. Nix builds the class for real; only the size it reports is raised to
// 2 GiB, because a real 2 GiB initrd would mean writing 2 GiB into the Nix store for every run.
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { cleanupTempDirs, cli, inventory, treeChecksum } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

const state = vi.hoisted(() => ({ initrdBytes: undefined as number | undefined }));

vi.mock("../src/adapters/nix.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../src/adapters/nix.ts")>();
  return {
    ...real,
    buildClasses: async (...args: Parameters<typeof real.buildClasses>) => {
      const builds = await real.buildClasses(...args);
      const size = state.initrdBytes;
      if (size !== undefined) for (const b of builds.values()) b.initrd = { ...b.initrd, size };
      return builds;
    },
  };
});

const GiB = 2 ** 30;

function site(): string {
  return inventory({
    "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n",
    "classes/demo/kernel": "kernel\n",
    "classes/demo/initrd": `initrd ${Math.random()}\n`,
    "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
  });
}

describe.skipIf(missing({ commands: ["nix-build"] }))("an image too large to netboot", () => {
  afterAll(() => {
    state.initrdBytes = undefined;
    cleanupTempDirs();
  });

  // Guards the order in build(): the size check comes before out/ is locked, planned or written.
  it("is refused before anything is written into out/, whether out/ holds a tree or does not exist yet", async () => {
    const root = site();
    const out = path.join(root, "out");
    state.initrdBytes = undefined;
    const first = await cli(["build"], root);
    expect(first.code, first.stderr).toBe(0);
    const before = treeChecksum(out);

    // A rebuilt initrd (a new store path: a new artifact and class script would be written) of 2 GiB.
    writeFileSync(path.join(root, "classes/demo/initrd"), `initrd ${Math.random()}\n`);
    state.initrdBytes = 2 * GiB;
    const big = await cli(["build"], root);
    expect(big.code, big.stderr).toBe(1);
    expect(big.stderr).toContain("class demo: the initrd is 2.0 GiB, over the 2.0 GiB that firmware and iPXE load reliably");
    expect(treeChecksum(out)).toBe(before);

    // Just under the limit is built (so the refusal above is the size's doing).
    state.initrdBytes = 2 * GiB - 1;
    const under = await cli(["build"], root);
    expect(under.code, under.stderr).toBe(0);
    expect(treeChecksum(out)).not.toBe(before);

    const fresh = site();
    state.initrdBytes = 2 * GiB;
    const none = await cli(["build"], fresh);
    expect(none.code, none.stderr).toBe(1);
    expect(existsSync(path.join(fresh, "out"))).toBe(false);
  });
});
