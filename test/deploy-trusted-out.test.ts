// A deploy right after a build takes out/ as it stands: the build recorded in out/'s manifest what
// the tree was planned from (the inventory, the classes' builds, the code), and a deploy whose
// inventory gives the same takes the files from out/, each checked against the manifest's sha256
// as it is read, instead of planning 10,000 hosts again. Anything else plans again, as before:
// an inventory edited since the build, a tree a build left half-written. Real builds (nix-build of
// a prebuilt class), real files, a local target; the CLI in-process with NETBUILD_TRACE saying
// which way the deploy went.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, cliProcess, inventory, tempDir, treeChecksum } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

const noNix = missing({ commands: ["nix-build"] });
const TRUSTED = "out/ checked: the tree of this inventory, as its manifest records (not planned again)";
const PLANNED = "out/ checked, tree planned";

function site(): { root: string; served: string } {
  const served = path.join(tempDir(), "served");
  const root = inventory({
    "netbuild.yaml": `targets:\n  boot: ${served}\n`,
    "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
    "classes/demo/kernel": `kernel ${Math.random()}\n`,
    "classes/demo/initrd": `initrd ${Math.random()}\n`,
    "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
    "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nkernelParams: [quiet]\n',
  });
  return { root, served };
}

async function ok(root: string, ...args: string[]) {
  const r = await cli(args, root, { NETBUILD_TRACE: "1" });
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe.skipIf(noNix)("a deploy after a build takes out/ as its manifest records it", () => {
  afterAll(cleanupTempDirs);

  it("deploys the built tree without planning it again, and serves exactly what out/ holds", async () => {
    const { root, served } = site();
    await ok(root, "build");
    expect(JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")).inputs).toMatch(/^[0-9a-f]{64}$/);
    const first = await ok(root, "deploy", "--yes");
    expect(first.stderr).toContain(TRUSTED);
    expect(treeChecksum(served, [".netbuild"])).toBe(treeChecksum(path.join(root, "out"), [".netbuild"]));
    // One host changed and built: only its script goes, taken from out/.
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\nkernelParams: [quiet, bench.rev=2]\n');
    await ok(root, "build");
    const second = await ok(root, "deploy", "--yes");
    expect(second.stderr).toContain(TRUSTED);
    expect(second.stdout).toMatch(/0 uploads \(0 B\), 1 switch, 0 removals/);
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).toContain("bench.rev=2");
  });

  it("plans again when the inventory changed since the build, and serves the inventory", async () => {
    const { root, served } = site();
    await ok(root, "build");
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\nkernelParams: [quiet, edited=1]\n');
    const r = await ok(root, "deploy", "--yes");
    expect(r.stderr).toContain(PLANNED);
    expect(r.stderr).not.toContain(TRUSTED);
    expect(r.stderr).toContain("out: 1 script updated from the inventory");
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).toContain("edited=1");
    // out/ now records this inventory: the next deploy takes it as it stands.
    expect((await ok(root, "deploy", "--yes")).stderr).toContain(TRUSTED);
  });

  it("refuses a script of out/ changed by hand since the build (exit 2, naming it, nothing deployed); a build writes it again", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy", "--yes");
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\nkernelParams: [quiet, v=2]\n');
    await ok(root, "build");
    const script = path.join(root, "out/by-host/bet/ipxe");
    writeFileSync(script, readFileSync(script, "utf8").replace("v=2", "homelab.provision_disks=true"));
    const before = treeChecksum(served);
    const r = await cli(["deploy", "--yes"], root);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${script} is not what netbuild wrote there (changed since), so nothing was deployed`);
    expect(r.stderr).toContain("hint: run `netbuild build`");
    expect(treeChecksum(served)).toBe(before);
    await ok(root, "build");
    await ok(root, "deploy", "--yes");
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).toContain("v=2");
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).not.toContain("provision_disks");
  });

  it("never reads a script through a link where a folder of out/ should be", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy", "--yes");
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\nkernelParams: [quiet, v=3]\n');
    await ok(root, "build");
    // by-host/bet becomes a link to a folder elsewhere holding the very same script.
    const elsewhere = path.join(tempDir(), "elsewhere");
    mkdirSync(elsewhere);
    renameSync(path.join(root, "out/by-host/bet"), path.join(elsewhere, "bet"));
    symlinkSync(path.join(elsewhere, "bet"), path.join(root, "out/by-host/bet"));
    const before = treeChecksum(served);
    const r = await cli(["deploy", "--yes"], root);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("missing, or not a plain file in a real folder");
    expect(treeChecksum(served)).toBe(before);
  });

  it("plans again when a build was stopped half-way (its manifest lists pending paths)", async () => {
    const { root } = site();
    await ok(root, "build");
    const file = path.join(root, "out/.netbuild/manifest.json");
    const manifest = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    writeFileSync(file, `${JSON.stringify({ ...manifest, pending: ["by-host/bet/ipxe"] }, null, 2)}\n`);
    const r = await ok(root, "deploy", "--yes");
    expect(r.stderr).toContain(PLANNED);
  });

  it("plans again after a build killed while it removed a retired host: the target stops serving the host, and its wipe", async () => {
    const { root, served } = site();
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1 }\n');
    await ok(root, "build");
    await ok(root, "deploy", "--yes");
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).toContain("provision_disks=true");
    // bet is retired; the build is killed (SIGKILL, as by the OOM killer) at its first removal.
    rmSync(path.join(root, "hosts/bet.yaml"));
    const preload = path.join(tempDir(), "kill-on-rm.mjs");
    const marker = `${preload}.killed-at`;
    writeFileSync(preload, `import fsp from "node:fs/promises";\nimport { writeFileSync } from "node:fs";\nconst rm = fsp.rm;\nfsp.rm = async (p, o) => { if (String(p).includes("/by-")) { writeFileSync(${JSON.stringify(marker)}, String(p)); process.kill(process.pid, "SIGKILL"); } return rm(p, o); };\n`);
    const killed = await cliProcess(["build"], root, { NODE_OPTIONS: `--import ${preload}` });
    expect(killed.code, killed.stderr).not.toBe(0);
    // Killed removing one of bet's paths, after out/'s manifest was written without bet's script changed.
    expect(readFileSync(marker, "utf8")).toMatch(/\/out\/by-(mac|host)\/(52-54-00-00-00-02|bet)/);
    const manifest = JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")) as { entries: Record<string, unknown>; inputs?: string };
    expect(Object.keys(manifest.entries)).toContain("by-host/bet/ipxe");
    // Deployed by the same code as the build (a child process: the tree's code hash is that of the code that runs).
    const r = await cliProcess(["deploy", "--yes"], root, { NETBUILD_TRACE: "1" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(PLANNED);
    expect(existsSync(path.join(served, "by-host/bet"))).toBe(false);
    expect(existsSync(path.join(served, "by-mac/52-54-00-00-00-02"))).toBe(false);
  });

  it("plans again when out/'s manifest was edited with the script (its entries no longer what the build sealed)", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy", "--yes");
    const script = path.join(root, "out/by-host/bet/ipxe");
    const forged = readFileSync(script, "utf8").replace("quiet", "quiet homelab.provision_disks=true");
    writeFileSync(script, forged);
    const file = path.join(root, "out/.netbuild/manifest.json");
    const manifest = JSON.parse(readFileSync(file, "utf8")) as { entries: Record<string, { sha256: string }> };
    manifest.entries["by-host/bet/ipxe"]!.sha256 = (await import("node:crypto")).createHash("sha256").update(forged).digest("hex");
    writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
    const r = await ok(root, "deploy", "--yes");
    expect(r.stderr).toContain(PLANNED);
    expect(readFileSync(path.join(served, "by-host/bet/ipxe"), "utf8")).not.toContain("provision_disks");
  });
});
