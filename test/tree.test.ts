// The served tree over successive builds, on a real folder with real Nix builds: the path
// contract, what changes when the inventory changes (and what does not), copy mode, kept
// generations, and refusal to write into a folder netbuild did not make.
import { existsSync, lstatSync, readFileSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, treeChecksum } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

const FILES: Record<string, string> = {
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
  "classes/demo/kernel": "kernel v1\n",
  "classes/demo/initrd": "initrd v1\n",
  "hosts/aleph.yaml": 'class: demo\nmac: "AA:BB:CC:00:00:01"\n',
  "hosts/rack.yaml": 'hosts:\n  bet:\n    class: demo\n    macs: ["aabb.cc00.0002", "aa-bb-cc-00-00-03"]\n    provision: { disks: true }\n',
};

const notHere = missing({ commands: ["nix-build"] });

async function build(root: string, ...args: string[]) {
  const r = await cli(["build", "--json", ...args], root);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { tree: { written: string[]; unchanged: number; removed: string[] }; wipes: { name: string }[] };
}

describe.skipIf(notHere)("the served tree", () => {
  afterAll(cleanupTempDirs);

  it("follows the path contract: boot.ipxe, by-mac → by-host → by-class, hash-named artifacts", async () => {
    const root = inventory(FILES);
    const r = await build(root);
    const out = path.join(root, "out");
    expect(readFileSync(path.join(out, "boot.ipxe"), "utf8")).toContain("imgfetch --name netbuild-host by-mac/${mac:hexhyp}/ipxe || goto unknown");
    for (const [mac, host] of [["aa-bb-cc-00-00-01", "aleph"], ["aa-bb-cc-00-00-02", "bet"], ["aa-bb-cc-00-00-03", "bet"]]) {
      expect(readlinkSync(path.join(out, "by-mac", mac!))).toBe(`../by-host/${host}`);
      expect(readFileSync(path.join(out, "by-mac", mac!, "ipxe"), "utf8")).toContain(`chain ../../by-class/demo/ipxe`);
    }
    expect(readFileSync(path.join(out, "by-host/bet/ipxe"), "utf8")).toContain("set cmdline hostname=bet homelab.provision_disks=true\n");
    expect(readFileSync(path.join(out, "by-host/aleph/ipxe"), "utf8")).toContain("set cmdline hostname=aleph\n");
    const cls = readFileSync(path.join(out, "by-class/demo/ipxe"), "utf8");
    const [, k, i] = /kernel ([0-9a-z]{32})\/kernel .*\ninitrd --name initrd ([0-9a-z]{32})\/initrd/.exec(cls)!;
    expect(readFileSync(path.join(out, "by-class/demo", k!, "kernel"), "utf8")).toBe("kernel v1\n");
    expect(readFileSync(path.join(out, "by-class/demo", i!, "initrd"), "utf8")).toBe("initrd v1\n");
    expect(r.wipes.map((w) => w.name)).toEqual(["bet"]);
  });

  it("rewrites nothing when nothing changed, and only the host's script when one host's flag changes", async () => {
    const root = inventory(FILES);
    await build(root);
    const again = await build(root);
    expect(again.tree.written).toEqual([]);
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:01"\nprovision: { disks: true }\n');
    const flagged = await build(root);
    expect(flagged.tree.written).toEqual(["by-host/aleph/ipxe"]);
    expect(flagged.wipes.map((w) => w.name)).toEqual(["aleph", "bet"]);
  });

  it("switches a rebuilt class by its script only, keeping the previous artifacts for machines mid-boot", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    const before = readFileSync(path.join(out, "by-class/demo/ipxe"), "utf8");
    const hostBefore = readFileSync(path.join(out, "by-host/aleph/ipxe"), "utf8");
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd v2\n");
    const r = await build(root);
    const after = readFileSync(path.join(out, "by-class/demo/ipxe"), "utf8");
    expect(after).not.toBe(before);
    expect(r.tree.written.filter((p) => !p.endsWith("/initrd"))).toEqual(["by-class/demo/ipxe"]);
    expect(readFileSync(path.join(out, "by-host/aleph/ipxe"), "utf8")).toBe(hostBefore);
    const oldInitrd = /initrd --name initrd (\S+)/.exec(before)![1]!;
    expect(readFileSync(path.join(out, "by-class/demo", oldInitrd), "utf8")).toBe("initrd v1\n");
    // A build with nothing changed keeps the previous generation too.
    expect((await build(root)).tree.removed).toEqual([]);
    expect(readFileSync(path.join(out, "by-class/demo", oldInitrd), "utf8")).toBe("initrd v1\n");
    // A third build drops the generation before the previous one.
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd v3\n");
    const third = await build(root);
    expect(third.tree.removed).toEqual([`by-class/demo/${oldInitrd}`]);
    expect(existsSync(path.join(out, "by-class/demo", path.dirname(oldInitrd)))).toBe(false);
  });

  it("removes a deleted host's by-mac and by-host entries, and nothing it did not create", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    writeFileSync(path.join(out, "by-host/notes.txt"), "mine\n");
    rmSync(path.join(root, "hosts/rack.yaml"));
    const r = await build(root);
    expect(r.tree.removed.sort()).toEqual(["by-host/bet/ipxe", "by-mac/aa-bb-cc-00-00-02", "by-mac/aa-bb-cc-00-00-03"]);
    expect(existsSync(path.join(out, "by-host/bet"))).toBe(false);
    expect(readFileSync(path.join(out, "by-host/notes.txt"), "utf8")).toBe("mine\n");
  });

  it("writes real files instead of symlinks in copy mode, and switches modes both ways safely", async () => {
    const root = inventory({ ...FILES, "netbuild.yaml": "links: copy\n" });
    await build(root);
    const out = path.join(root, "out");
    const entry = path.join(out, "by-mac/aa-bb-cc-00-00-02");
    expect(lstatSync(entry).isDirectory()).toBe(true);
    expect(readFileSync(path.join(entry, "ipxe"), "utf8")).toBe(readFileSync(path.join(out, "by-host/bet/ipxe"), "utf8"));
    writeFileSync(path.join(root, "netbuild.yaml"), "links: symlink\n");
    await build(root);
    expect(lstatSync(entry).isSymbolicLink()).toBe(true);
    // The host script must survive the switch (the old by-mac/<mac>/ipxe now resolves into by-host/).
    expect(readFileSync(path.join(out, "by-host/bet/ipxe"), "utf8")).toContain("hostname=bet");
    writeFileSync(path.join(root, "netbuild.yaml"), "links: copy\n");
    await build(root);
    expect(lstatSync(entry).isDirectory()).toBe(true);
    expect(readFileSync(path.join(entry, "ipxe"), "utf8")).toContain("hostname=bet");
  });

  it("lets unknown machines boot a named class only when the site says so, with no host arguments", async () => {
    const root = inventory({ ...FILES, "netbuild.yaml": "unknownMachines: { class: demo }\n" });
    await build(root);
    const boot = readFileSync(path.join(root, "out/boot.ipxe"), "utf8");
    expect(boot).toContain("clear cmdline\nchain by-class/demo/ipxe || goto failed");
    expect(boot).not.toContain("booting nothing");
  });

  it("refuses to write into a non-empty folder that is not a netbuild tree (exit 2), leaving it as it was", async () => {
    const root = inventory(FILES);
    const home = path.join(root, "home");
    mkdirSync(home);
    writeFileSync(path.join(home, "thesis.tex"), "precious\n");
    const sum = treeChecksum(home);
    const r = await cli(["build", "--out", home], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is not empty and is not a netbuild tree");
    expect(treeChecksum(home)).toBe(sum);
  });
});

describe("generation", () => {
  afterAll(cleanupTempDirs);

  it("is deterministic: the same inventory in two places gives byte-identical Nix, rewritten only on change", async () => {
    const a = inventory(FILES);
    const b = inventory(FILES);
    expect((await cli(["generate"], a)).code).toBe(0);
    expect((await cli(["generate"], b)).code).toBe(0);
    expect(treeChecksum(path.join(a, ".netbuild/nix"))).toBe(treeChecksum(path.join(b, ".netbuild/nix")));
    const again = JSON.parse((await cli(["generate", "--json"], a)).stdout);
    expect(again.written).toEqual([]);
    rmSync(path.join(a, "hosts/rack.yaml"));
    writeFileSync(path.join(a, "classes/other.yaml"), FILES["classes/demo.yaml"]!);
    const changed = JSON.parse((await cli(["generate", "--json"], a)).stdout);
    expect(changed.written).toEqual(["classes/other.nix", "default.nix"]);
  });

  it("escapes every inventory value written into Nix", async () => {
    const { nixString } = await import("../src/core/nix-render.ts");
    expect(nixString('a"b\\c${d}\n')).toBe('"a\\"b\\\\c\\${d}\\n"');
  });
});
