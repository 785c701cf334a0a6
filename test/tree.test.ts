// The served tree over successive builds, on a real folder with real Nix builds: the path
// contract, what changes when the inventory changes (and what does not), copy mode, kept
// generations, and refusal to write into a folder netbuild did not make.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, cpSync, existsSync, openSync, readSync, linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkOutFolder } from "../src/adapters/local-tree.ts";
import { cleanupTempDirs, cli, cliProcess, inventory, tempDir, treeChecksum } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

const FILES: Record<string, string> = {
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
  "classes/demo/kernel": "kernel v1\n",
  "classes/demo/initrd": "initrd v1\n",
  "hosts/aleph.yaml": 'class: demo\nmac: "AA:BB:CC:00:00:01"\n',
  "hosts/rack.yaml": 'hosts:\n  bet:\n    class: demo\n    macs: ["aabb.cc00.0002", "aa-bb-cc-00-00-03"]\n    provision: { disks: true, id: r1 }\n',
  // The iPXE binaries the tree copies (stand-ins: their bytes are all that counts here).
  "netbuild.yaml": "ipxe: { binaries: ./ipxe-bin }\n",
  "ipxe-bin/undionly.kpxe": "undionly v1\n",
  "ipxe-bin/snponly.efi": "snponly v1\n",
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
    expect(readFileSync(path.join(out, "by-host/bet/ipxe"), "utf8")).toContain("set cmdline hostname=bet homelab.provision_disks=true homelab.provision_id=r1\n");
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
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:01"\nprovision: { disks: true, id: r1 }\n');
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

// The iPXE binaries PXE firmware fetches over TFTP: copied from the site's folder into out/ipxe/,
// recorded, and deployed like everything else, as bytes (never as text).
describe.skipIf(notHere)("the iPXE binaries: copied into out/ipxe/ and deployed", () => {
  afterAll(cleanupTempDirs);
  /** Every byte value, invalid UTF-8 included. */
  const binary = (seed: number, length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) % 256));
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

  function site() {
    const root = inventory({ ...FILES, "netbuild.yaml": "ipxe: { binaries: ./ipxe-bin, efi: ipxe.efi }\ntargets:\n  here: served\n" });
    const bin = path.join(root, "ipxe-bin");
    rmSync(path.join(bin, "snponly.efi"));
    writeFileSync(path.join(bin, "undionly.kpxe"), binary(1, 70_001));
    writeFileSync(path.join(bin, "ipxe.efi"), binary(2, 200_003));
    return { root, bin, out: path.join(root, "out"), served: path.join(root, "served") };
  }

  it("copies the two the site's DHCP hands out, byte for byte, recorded with their sha256; a changed one is replaced by rename and deployed", async () => {
    const { root, bin, out, served } = site();
    const r = (await build(root)) as unknown as { ipxe: { folder: string; files: { path: string; sha256: string; size: number }[] } };
    expect(r.ipxe).toEqual({ folder: bin, files: [{ path: "ipxe/undionly.kpxe", sha256: sha(binary(1, 70_001)), size: 70_001 }, { path: "ipxe/ipxe.efi", sha256: sha(binary(2, 200_003)), size: 200_003 }] });
    expect(readdirSync(path.join(out, "ipxe")).sort()).toEqual(["ipxe.efi", "undionly.kpxe"]);
    for (const name of ["undionly.kpxe", "ipxe.efi"]) expect(readFileSync(path.join(out, "ipxe", name)).equals(readFileSync(path.join(bin, name))), name).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(out, ".netbuild/manifest.json"), "utf8")) as { format: number; entries: Record<string, { kind: string; sha256: string }> };
    expect(manifest.entries["ipxe/ipxe.efi"]).toMatchObject({ kind: "file", sha256: sha(binary(2, 200_003)) });
    const deployed = await cli(["deploy", "--yes"], root);
    expect(deployed.code, deployed.stderr).toBe(0);
    // Records naming ipxe/ are of the next format: a netbuild from before them says they are newer, not damaged.
    expect([manifest.format, (JSON.parse(readFileSync(path.join(served, ".netbuild/deployed.json"), "utf8")) as { format: number }).format]).toEqual([2, 3]);
    for (const name of ["undionly.kpxe", "ipxe.efi"]) expect(readFileSync(path.join(served, "ipxe", name)).equals(readFileSync(path.join(bin, name))), name).toBe(true);

    // A new undionly.kpxe (an upgraded package): rewritten by rename, so a TFTP transfer holding the old file reads it whole.
    const reader = openSync(path.join(out, "ipxe/undionly.kpxe"), "r");
    try {
      writeFileSync(path.join(bin, "undionly.kpxe"), binary(3, 70_002));
      expect((await build(root)).tree.written).toEqual(["ipxe/undionly.kpxe"]);
      const old = Buffer.alloc(70_001);
      expect(readSync(reader, old, 0, old.length, 0)).toBe(70_001);
      expect(old.equals(binary(1, 70_001))).toBe(true);
    } finally {
      closeSync(reader);
    }
    const again = await cli(["deploy", "--yes"], root);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("0 uploads (0 B), 1 switch, 0 removals");
    expect(readFileSync(path.join(served, "ipxe/undionly.kpxe")).equals(binary(3, 70_002))).toBe(true);
    const verified = await cli(["verify"], root);
    expect(verified.code, verified.stderr).toBe(0);
    // netbuild.yaml now names snponly.efi, but out/ was built before: the deploy says so.
    writeFileSync(path.join(root, "netbuild.yaml"), "ipxe: { binaries: ./ipxe-bin, efi: snponly.efi }\ntargets:\n  here: served\n");
    const stale = await cli(["deploy", "--yes"], root);
    expect(stale.stderr).toContain("out/ holds the iPXE binaries of a build made before ipxe.efi became snponly.efi: this deploy sends those; run `netbuild build` to copy ipxe/snponly.efi");
  });

  it("a checkout whose tree has none leaves the target's as they are, and one that drifted there is left with a warning, not refused", async () => {
    const { root, bin, served } = site();
    await build(root);
    expect((await cli(["deploy", "--yes"], root)).code).toBe(0);
    // A second checkout of the same inventory whose tree has no ipxe/ (built where there were no
    // binaries, or by a netbuild before them): out/ and its manifest as such a build leaves them.
    const other = path.join(tempDir(), "other");
    cpSync(root, other, { recursive: true });
    rmSync(path.join(other, "out"), { recursive: true });
    await build(other);
    const manifestFile = path.join(other, "out/.netbuild/manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as { entries: Record<string, unknown>; inputs?: string };
    for (const p of Object.keys(manifest.entries)) if (p.startsWith("ipxe/")) delete manifest.entries[p];
    delete manifest.inputs;
    writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
    rmSync(path.join(other, "out/ipxe"), { recursive: true });
    writeFileSync(path.join(other, "netbuild.yaml"), `targets:\n  here: ${served}\n`);
    const kept = await cli(["deploy", "--yes"], other);
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toContain("up to date, nothing sent");
    expect(readFileSync(path.join(served, "ipxe/ipxe.efi")).equals(readFileSync(path.join(bin, "ipxe.efi")))).toBe(true);
    // Changed on the server by hand: this checkout cannot write it again, says so, and deploys the rest.
    writeFileSync(path.join(served, "ipxe/ipxe.efi"), "tampered\n");
    writeFileSync(path.join(other, "hosts/gimel.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:09"\n');
    const drifted = await cli(["deploy", "--verify", "--yes"], other);
    expect(drifted.code, drifted.stderr).toBe(0);
    expect(drifted.stderr).toContain("ipxe/ipxe.efi differs from what was deployed, and this checkout cannot write it again (this checkout's tree has no iPXE binaries): left as it is");
    expect(readFileSync(path.join(served, "by-host/gimel/ipxe"), "utf8")).toContain("hostname=gimel");
    // Half-written by a deploy that did not finish (pending): left, still pending, and said so.
    writeFileSync(path.join(served, ".netbuild/pending.json"), JSON.stringify({ format: 2, pending: ["ipxe/undionly.kpxe"] }));
    writeFileSync(path.join(served, "ipxe/undionly.kpxe"), "half\n");
    const pending = await cli(["deploy", "--yes"], other);
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stderr).toContain("ipxe/undionly.kpxe may differ from what was deployed (a deploy that did not finish was writing it), and this checkout cannot write it again (this checkout's tree has no iPXE binaries): left as it is, still pending");
    expect(JSON.parse(readFileSync(path.join(served, ".netbuild/pending.json"), "utf8"))).toEqual({ format: 2, pending: ["ipxe/undionly.kpxe"] });
    // The checkout that has them puts both right.
    writeFileSync(path.join(root, "hosts/gimel.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:09"\n');
    await build(root);
    expect((await cli(["deploy", "--verify", "--yes"], root)).code).toBe(0);
    for (const name of ["ipxe.efi", "undionly.kpxe"]) expect(readFileSync(path.join(served, "ipxe", name)).equals(readFileSync(path.join(bin, name))), name).toBe(true);
    expect(existsSync(path.join(served, ".netbuild/pending.json"))).toBe(false);
  });

  it("refuses a build whose named folder lacks one, naming it, and writes nothing", async () => {
    const { root, bin, out } = site();
    await build(root);
    const before = treeChecksum(out);
    rmSync(path.join(bin, "ipxe.efi"));
    writeFileSync(path.join(root, "hosts/gimel.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:09"\n');
    const r = await cli(["build"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bin} has no ipxe.efi`);
    expect(treeChecksum(out)).toBe(before);
  });

  it("refuses to deploy an out/ipxe/ binary that is not the one the build wrote, as the tree stands or planned again, and leaves the target as it was", async () => {
    const { root, out, served } = site();
    await build(root);
    writeFileSync(path.join(out, "ipxe/ipxe.efi"), binary(9, 200_003));
    const refusal = `${path.join(out, "ipxe/ipxe.efi")} is not what netbuild wrote there (changed since), so nothing was deployed`;
    // out/ as it stands (the inventory is the one built): refused before anything is sent.
    const asBuilt = await cli(["deploy", "--yes"], root);
    expect(asBuilt.code, asBuilt.stderr).toBe(2);
    expect(asBuilt.stderr).toContain(refusal);
    expect(readdirSync(served).filter((n) => n !== ".netbuild"), "nothing of the tree reached the target").toEqual([]);
    // Planned again (a host changed since the build): the same.
    writeFileSync(path.join(root, "hosts/gimel.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:09"\n');
    const replanned = await cli(["deploy", "--yes"], root);
    expect(replanned.code, replanned.stderr).toBe(2);
    expect(replanned.stderr).toContain(refusal);
    expect(readdirSync(served).filter((n) => n !== ".netbuild"), "nothing of the tree reached the target").toEqual([]);
  });
});

// What a build trusts without reading: a file recorded in out/'s manifest with the size, mtime and
// inode lstat still finds, and a link recorded with the target it should have. Everything else is
// read back; `build --verify` reads back everything. A killed build's paths are never trusted.
describe.skipIf(notHere)("incremental builds: what a build trusts, and what it reads back", () => {
  afterAll(cleanupTempDirs);

  const MANIFEST = ".netbuild/manifest.json";
  type Recorded = { kind: string; sha256?: string; target?: string; size?: number; mtimeNs?: string; ino?: string };
  const manifestOf = (out: string) => JSON.parse(readFileSync(path.join(out, MANIFEST), "utf8")) as { entries: Record<string, Recorded>; pending?: string[] };
  const editJson = (file: string, edit: (data: Record<string, unknown>) => void) => {
    const data = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    edit(data);
    writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  };
  /** Overwrites a file in place (same inode) with text of the same length, then puts its mtime back to the nanosecond (`touch -r`). */
  const sameSizeEdit = (file: string, scratch: string) => {
    const ref = path.join(scratch, "mtime-ref");
    execFileSync("cp", ["-p", file, ref]);
    const text = readFileSync(file, "utf8");
    const edited = text.replace("hostname=aleph", "hostname=ALEPH");
    expect(edited).not.toBe(text);
    writeFileSync(file, edited);
    execFileSync("touch", ["-r", ref, file]);
    return { text, edited };
  };

  it("records each file's size, mtime and inode as lstat finds them, and leaves the manifest unwritten when nothing changed", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    const files = Object.entries(manifestOf(out).entries).filter(([, e]) => e.kind === "file");
    expect(files.map(([rel]) => rel).sort()).toEqual(["boot.ipxe", "by-class/demo/ipxe", "by-host/aleph/ipxe", "by-host/bet/ipxe", "ipxe/snponly.efi", "ipxe/undionly.kpxe"]);
    for (const [rel, e] of files) {
      const st = lstatSync(path.join(out, rel), { bigint: true });
      expect({ rel, size: e.size, mtimeNs: e.mtimeNs, ino: e.ino }).toEqual({ rel, size: Number(st.size), mtimeNs: String(st.mtimeNs), ino: String(st.ino) });
    }
    const manifestIno = lstatSync(path.join(out, MANIFEST)).ino;
    expect((await build(root)).tree.written).toEqual([]);
    expect(lstatSync(path.join(out, MANIFEST)).ino).toBe(manifestIno);
  });

  it("rewrites a script edited in out/ to another size, without --verify", async () => {
    const root = inventory(FILES);
    await build(root);
    const script = path.join(root, "out/by-host/aleph/ipxe");
    const text = readFileSync(script, "utf8");
    writeFileSync(script, `${text}echo edited by hand\n`);
    expect((await build(root)).tree.written).toEqual(["by-host/aleph/ipxe"]);
    expect(readFileSync(script, "utf8")).toBe(text);
  });

  it("finds a same-size edit whose mtime was put back (touch -r), and a link pointed elsewhere, with build --verify", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    const script = path.join(out, "by-host/aleph/ipxe");
    const link = path.join(out, "by-mac/aa-bb-cc-00-00-01");
    const { text, edited } = sameSizeEdit(script, root);
    rmSync(link);
    symlinkSync("../by-host/bet", link);
    // What lstat cannot tell: the same size, mtime and inode as recorded; a link still a link.
    const recorded = manifestOf(out).entries["by-host/aleph/ipxe"]!;
    const st = lstatSync(script, { bigint: true });
    expect({ size: recorded.size, mtimeNs: recorded.mtimeNs, ino: recorded.ino }).toEqual({ size: Number(st.size), mtimeNs: String(st.mtimeNs), ino: String(st.ino) });
    expect((await build(root)).tree.written).toEqual([]);
    expect(readFileSync(script, "utf8")).toBe(edited);
    const verified = await build(root, "--verify");
    expect(verified.tree.written).toEqual(["by-host/aleph/ipxe", "by-mac/aa-bb-cc-00-00-01"]);
    expect(readFileSync(script, "utf8")).toBe(text);
    expect(readlinkSync(link)).toBe("../by-host/aleph");
    expect((await build(root, "--verify")).tree.written).toEqual([]);
  });

  it("reads back what a killed build was writing (pending), whatever lstat says, and finishes it", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    const script = path.join(out, "by-host/aleph/ipxe");
    const link = path.join(out, "by-mac/aa-bb-cc-00-00-01");
    const { text } = sameSizeEdit(script, root);
    rmSync(link);
    symlinkSync("../by-host/bet", link);
    editJson(path.join(out, MANIFEST), (m) => void (m["pending"] = ["by-host/aleph/ipxe", "by-mac/aa-bb-cc-00-00-01"]));
    expect((await build(root)).tree.written).toEqual(["by-host/aleph/ipxe", "by-mac/aa-bb-cc-00-00-01"]);
    expect(readFileSync(script, "utf8")).toBe(text);
    expect(readlinkSync(link)).toBe("../by-host/aleph");
    expect(manifestOf(out).pending).toBeUndefined();
  });

  it("records where a file stands once it has read it back (a copied out/, a manifest from an older netbuild)", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    // A manifest without stamps: the first build reads every script back, then records them.
    editJson(path.join(out, MANIFEST), (m) => {
      for (const e of Object.values(m["entries"] as Record<string, Recorded>)) if (e.kind === "file") for (const k of ["size", "mtimeNs", "ino"] as const) delete e[k];
    });
    expect((await build(root)).tree.written).toEqual([]);
    expect(Object.values(manifestOf(out).entries).filter((e) => e.kind === "file" && e.ino === undefined)).toEqual([]);
    // A copy of out/ (new inodes): read back, unchanged, and recorded anew by --verify.
    const copy = path.join(root, "copy");
    execFileSync("cp", ["-a", out, copy]);
    expect((await build(root, "--out", "copy")).tree.written).toEqual([]);
    await build(root, "--out", "copy", "--verify");
    const st = lstatSync(path.join(copy, "by-host/aleph/ipxe"), { bigint: true });
    expect(manifestOf(copy).entries["by-host/aleph/ipxe"]!.ino).toBe(String(st.ino));
  });

  it("replaces an existing script by rename: a reader holding the old file still reads it whole", async () => {
    const root = inventory(FILES);
    await build(root);
    const script = path.join(root, "out/by-host/aleph/ipxe");
    const held = path.join(root, "held");
    linkSync(script, held);
    const before = readFileSync(held, "utf8");
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "AA:BB:CC:00:00:01"\nkernelParams: [quiet]\n');
    expect((await build(root)).tree.written).toEqual(["by-host/aleph/ipxe"]);
    expect(readFileSync(held, "utf8")).toBe(before);
    expect(readFileSync(script, "utf8")).toContain("quiet");
    expect(lstatSync(script).ino).not.toBe(lstatSync(held).ino);
  });

  it("creates new scripts and links where nothing was, leaving no temporary file, each script readable by the web server", async () => {
    const root = inventory(FILES);
    const r = await build(root);
    const out = path.join(root, "out");
    expect(r.tree.written).toEqual(expect.arrayContaining(["boot.ipxe", "by-class/demo/ipxe", "by-host/aleph/ipxe", "by-host/bet/ipxe", "by-mac/aa-bb-cc-00-00-01", "by-mac/aa-bb-cc-00-00-02", "by-mac/aa-bb-cc-00-00-03"]));
    const all = readdirSync(out, { recursive: true }) as string[];
    expect(all.filter((p) => p.includes("netbuild-tmp"))).toEqual([]);
    for (const rel of ["boot.ipxe", "by-class/demo/ipxe", "by-host/aleph/ipxe", "by-host/bet/ipxe"]) expect(lstatSync(path.join(out, rel)).mode & 0o555, rel).toBe(0o444);
  });

  it("reads out/'s manifest again only when it changed (build reads it before nix-build and under the lock)", async () => {
    const root = inventory(FILES);
    await build(root);
    const out = path.join(root, "out");
    const file = path.join(out, MANIFEST);
    const first = await checkOutFolder(out);
    expect(first).toBeDefined();
    expect(await checkOutFolder(out, first)).toBe(first);
    // Rewritten, as a build rewrites it (a new file renamed over): read again, even with the same text.
    writeFileSync(`${file}.new`, readFileSync(file));
    renameSync(`${file}.new`, file);
    const second = await checkOutFolder(out, first);
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    // Edited in place to the same size: read again (and a damaged one refused).
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replace(/"format": [12]/, '"format": 7'));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    await expect(checkOutFolder(out, second)).rejects.toThrow(/format 7/);
    // Not damage: a newer netbuild's format, and the hint says so.
    await expect(checkOutFolder(out, second)).rejects.toMatchObject({ hint: expect.stringContaining("a newer netbuild wrote it (nothing is wrong with it)") });
  });

  it("registers a build's GC roots once: a build of the same store paths starts no nix-store", async () => {
    const root = inventory(FILES);
    // nix-store on PATH, logging each call and running the real one.
    const bin = tempDir("netbuild-nix-store-");
    const log = path.join(bin, "calls");
    const real = execFileSync("sh", ["-c", "command -v nix-store"], { encoding: "utf8" }).trim();
    writeFileSync(path.join(bin, "nix-store"), `#!/bin/sh\necho "$*" >> '${log}'\nexec '${real}' "$@"\n`);
    chmodSync(path.join(bin, "nix-store"), 0o755);
    const env = { PATH: `${bin}:${process.env["PATH"]}` };
    const calls = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);
    expect((await cliProcess(["build"], root, env)).code).toBe(0);
    expect(calls().filter((c) => c.startsWith("--add-root")).length).toBe(3); // kernel, initrd, the build's result
    for (const what of ["kernel", "initrd", "result"]) expect(readlinkSync(path.join(root, ".netbuild/gcroots", `demo-${what}`))).toMatch(/^\/nix\/store\//);
    expect((await cliProcess(["build"], root, env)).code).toBe(0);
    expect(calls().filter((c) => c.startsWith("--add-root")).length).toBe(3);
    // A new initrd: its root (and the build's) move; the kernel's stays.
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd v2\n");
    expect((await cliProcess(["build"], root, env)).code).toBe(0);
    expect(calls().slice(3).map((c) => c.split(" ")[1]).sort()).toEqual([path.join(root, ".netbuild/gcroots/demo-initrd"), path.join(root, ".netbuild/gcroots/demo-result")]);
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
