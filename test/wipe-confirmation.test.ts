// Disk wipes on deploy, and hosts of classes built in another checkout. Two checkouts of one
// inventory deploy to one target: checkout A builds `demo` (the repository's real demo kernel and
// initrd) and `other`; checkout B builds only `other`. `third` is in classes/ and built nowhere.
// What is pinned down here:
//   - a host of a class B has not built follows B's inventory wherever the target serves its class
//     (its flag dropped, its kernelParams changed), and the class itself stays exactly as A deployed it;
//   - dropping a wipe is always possible, even by moving the host to a class nobody serves;
//   - a host that cannot be served as the inventory says is refused, and nothing is changed;
//   - a deploy that makes a target serve a wipe it did not serve before needs --yes without a
//     terminal (local folder and SFTP), says so in --dry-run, and asks on a terminal (script(1));
//   - a real PXE boot (QEMU, iPXE) of the host whose flag B dropped gets no wipe flag.
// Every refusal: exit 2, a message naming what to fix, no stack trace, the target checksummed unchanged.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveFolder, type StaticServer } from "./support/http.ts";
import { addDemoFiles, cleanupTempDirs, cli, cliProcess, DEMO_INITRD, DEMO_KERNEL, REPO, tempDir, treeChecksum, type CliRun } from "./support/inventory.ts";
import { pxeBoot } from "./support/qemu.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const noNix = missing({ commands: ["nix-build"], files: [DEMO_KERNEL, DEMO_INITRD] });
const noQemu = noNix ?? missing({ commands: ["qemu-system-x86_64"], files: ["/usr/lib/ipxe/qemu/efi-virtio.rom"] });
const noSsh = noNix ?? missing({ commands: ["ssh", "ssh-keygen"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });
const noScript = noNix ?? missing({ commands: ["script"] });

const FLAG = "homelab.provision_disks=true";
const DEPLOYED = ".netbuild/deployed.json";
const FRESH_MAC = "52:54:00:12:34:56";

const prebuilt = (name: string, kernel: string, initrd: string, params: string) => `kind: prebuilt\nkernel: { path: ./${name}/${kernel} }\ninitrd: { path: ./${name}/${initrd} }\nkernelParams: [${params}]\n`;

interface HostSpec {
  class: string;
  mac: string;
  disks?: boolean;
  /** The provisioning id (default r1) and force, with `disks: true`. */
  id?: string;
  force?: boolean;
  params?: string[];
}

const HOSTS: Record<string, HostSpec> = {
  "demo-fresh": { class: "demo", mac: FRESH_MAC, disks: true, params: ["demo.role=fresh"] },
  "demo-kept": { class: "demo", mac: "52:54:00:12:34:57", params: ["demo.role=kept"] },
  o1: { class: "other", mac: "52:54:00:00:00:21" },
};

/** One host per file (`hosts/<name>.yaml`), so a message naming the file names the host's own. */
function setHost(root: string, name: string, spec: HostSpec): void {
  const lines = [`class: ${spec.class}`, `mac: "${spec.mac}"`];
  if (spec.disks !== undefined) lines.push(`provision: { disks: ${spec.disks}${spec.disks ? `, id: ${spec.id ?? "r1"}` : ""}${spec.force ? ", force: true" : ""} }`);
  if (spec.params) lines.push(`kernelParams: [${spec.params.join(", ")}]`);
  writeFileSync(path.join(root, "hosts", `${name}.yaml`), `${lines.join("\n")}\n`);
}

/** The inventory both checkouts start from (the site file is written per world). */
function writeInventory(root: string): void {
  mkdirSync(path.join(root, "hosts"), { recursive: true });
  for (const [name, text] of Object.entries({
    "classes/demo.yaml": prebuilt("demo", "bzImage", "initrd", "console=ttyS0, panic=-1"),
    "classes/other.yaml": prebuilt("other", "kernel", "initrd", "console=ttyS0"),
    "classes/other/kernel": "the other class's kernel (not bootable)\n",
    "classes/other/initrd": "the other class's initrd\n",
    "classes/third.yaml": prebuilt("third", "kernel", "initrd", "console=ttyS0"),
    "classes/third/kernel": "the third class's kernel: built nowhere\n",
    "classes/third/initrd": "the third class's initrd: built nowhere\n",
  })) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  addDemoFiles(root);
  for (const [name, spec] of Object.entries(HOSTS)) setHost(root, name, spec);
}

/** A copy of a checkout (out/ included); the demo files are hard-linked, not copied. */
function copyCheckout(from: string, to: string): void {
  const demo = path.join(from, "classes/demo");
  cpSync(from, to, { recursive: true, verbatimSymlinks: true, filter: (src) => path.dirname(src) !== demo });
  addDemoFiles(to);
}

function siteFile(root: string, target: string): void {
  writeFileSync(path.join(root, "netbuild.yaml"), `targets:\n  boot: ${target}\n`);
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** Everything a target serves plus its record (a lock netbuild creates and removes in .netbuild/ does not count). */
function stateOf(served: string): string {
  const rec = path.join(served, DEPLOYED);
  return `${treeChecksum(served, [".netbuild"])} ${existsSync(rec) ? sha256(readFileSync(rec)) : "no record"}`;
}

function deployedRecord(served: string) {
  return JSON.parse(readFileSync(path.join(served, DEPLOYED), "utf8")) as {
    classes: Record<string, { current: string; generations: { id: string; kernel: string; initrd: string }[] }>;
    entries: Record<string, { kind: string; sha256?: string; size?: number }>;
  };
}

const script = (served: string, host: string) => readFileSync(path.join(served, "by-host", host, "ipxe"), "utf8");
const cmdlineOf = (served: string, host: string) => script(served, host).split("\n").find((l) => l.startsWith("set cmdline"))!;

/** A refusal: exit 2, a message naming each of `names`, no internal error, no stack frame. */
function expectRefusal(r: CliRun, names: (string | RegExp)[], label = "") {
  const tag = label ? `${label}: ` : "";
  expect.soft(r.code, `${tag}exit code (stderr:\n${r.stderr})`).toBe(2);
  for (const n of names) {
    if (typeof n === "string") expect.soft(r.stderr, `${tag}stderr names ${n}`).toContain(n);
    else expect.soft(r.stderr, `${tag}stderr matches ${String(n)}`).toMatch(n);
  }
  expect.soft(r.stderr, `${tag}no internal error`).not.toContain("internal error");
  expect.soft(r.stderr, `${tag}no stack frame`).not.toContain("    at ");
}

async function ok(r: Promise<CliRun>): Promise<CliRun> {
  const done = await r;
  expect(done.code, done.stderr).toBe(0);
  return done;
}

interface Template {
  a: string;
  b: string;
  served: string;
}
let template: Template;

/**
 * One test's world: private copies of checkout A (built: demo, other), checkout B (built: other) and
 * the target A deployed to (demo-fresh wiping), each checkout's site file naming `target`.
 */
interface World {
  a: string;
  b: string;
  served: string;
}

function world(options: { deployed?: boolean; target?: (served: string) => string } = {}): World {
  const dir = tempDir("netbuild-wipe-");
  const w = { a: path.join(dir, "a"), b: path.join(dir, "b"), served: path.join(dir, "served") };
  copyCheckout(template.a, w.a);
  copyCheckout(template.b, w.b);
  if (options.deployed !== false) cpSync(template.served, w.served, { recursive: true, verbatimSymlinks: true });
  const target = options.target ? options.target(w.served) : w.served;
  siteFile(w.a, target);
  siteFile(w.b, target);
  return w;
}

describe.skipIf(noNix)("disk wipes on deploy, and hosts of classes built in another checkout", () => {
  beforeAll(async () => {
    const dir = tempDir("netbuild-wipe-template-");
    template = { a: path.join(dir, "a"), b: path.join(dir, "b"), served: path.join(dir, "served") };
    writeInventory(template.a);
    siteFile(template.a, template.served);
    copyCheckout(template.a, template.b);
    // A builds demo and other (third is built nowhere); B, a second checkout of the same inventory, builds only other.
    await ok(cli(["build", "--class", "demo", "--class", "other"], template.a));
    await ok(cli(["build", "--class", "other"], template.b));
    expect(Object.keys(JSON.parse(readFileSync(path.join(template.b, "out/.netbuild/manifest.json"), "utf8")).classes)).toEqual(["other"]);
    // The target as A deployed it: demo-fresh served its wipe (confirmed with --yes).
    const first = await ok(cli(["deploy", "--yes"], template.a));
    expect(first.stdout).toContain("WIPE on next boot: demo-fresh");
    expect(cmdlineOf(template.served, "demo-fresh")).toContain(FLAG);
  });
  afterAll(cleanupTempDirs);

  describe("a host follows the inventory wherever the target serves its class", () => {
    let w: World;
    let demoClass: string;
    let demoRecord: unknown;

    beforeAll(() => {
      w = world();
      demoClass = treeChecksum(path.join(w.served, "by-class/demo"));
      demoRecord = deployedRecord(w.served).classes["demo"];
    });

    const demoUnchanged = () => {
      expect(treeChecksum(path.join(w.served, "by-class/demo")), "by-class/demo/ (script and artifacts) as A deployed it").toBe(demoClass);
      expect(deployedRecord(w.served).classes["demo"], "class demo's generations as A deployed them").toEqual(demoRecord);
    };

    it("drops demo-fresh's wipe flag from B (which never built demo): served without the flag, still chaining class demo, class demo byte for byte as A deployed it", async () => {
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, disks: false });
      // Dropping a wipe needs no --yes.
      const r = await ok(cli(["deploy", "--json"], w.b));
      expect(r.stderr).toMatch(/\[boot\] not built here: demo \(boot keeps serving generation \w{12}; 2 hosts follow the inventory\), third \(not served by boot; no host uses it\)/);
      expect(JSON.parse(r.stdout).targets[0].switches).toEqual(["by-host/demo-fresh/ipxe"]);
      const text = script(w.served, "demo-fresh");
      expect(text).not.toContain(FLAG);
      expect(text).not.toContain("WIPED");
      expect(cmdlineOf(w.served, "demo-fresh")).toBe("set cmdline hostname=demo-fresh demo.role=fresh");
      expect(text).toMatch(/^chain \.\.\/\.\.\/by-class\/demo\/ipxe$/m);
      expect(readlinkSync(path.join(w.served, "by-mac/52-54-00-12-34-56"))).toBe("../by-host/demo-fresh");
      demoUnchanged();
    });

    it("serves a kernelParams change made in B to a host of class demo", async () => {
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, disks: false, params: ["demo.role=fresh", "demo.from=checkout-b"] });
      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "quiet"] });
      const r = await ok(cli(["deploy", "--json"], w.b));
      expect(JSON.parse(r.stdout).targets[0].switches.sort()).toEqual(["by-host/demo-fresh/ipxe", "by-host/demo-kept/ipxe"]);
      expect(cmdlineOf(w.served, "demo-fresh")).toBe("set cmdline hostname=demo-fresh demo.role=fresh demo.from=checkout-b");
      expect(cmdlineOf(w.served, "demo-kept")).toBe("set cmdline hostname=demo-kept demo.role=kept quiet");
      expect(script(w.served, "demo-kept")).toMatch(/^chain \.\.\/\.\.\/by-class\/demo\/ipxe$/m);
      demoUnchanged();
    });

    it.skipIf(noQemu)("PXE-boots demo-fresh from the target over HTTP (BIOS, QEMU): A's demo kernel, hostname=demo-fresh, B's parameter, and no wipe flag", async () => {
      const server: StaticServer = await serveFolder(w.served);
      try {
        const boot = await pxeBoot({ mac: FRESH_MAC, firmware: "bios", bootFile: `http://10.0.2.2:${server.port}/boot.ipxe` });
        expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
        const words = boot.cmdline!.split(/\s+/);
        expect(words).toEqual(expect.arrayContaining(["hostname=demo-fresh", "demo.role=fresh", "demo.from=checkout-b", "console=ttyS0", "panic=-1"]));
        expect(boot.cmdline).not.toContain(FLAG);
        expect(boot.cmdline).not.toContain("provision");
        expect(boot.console).toContain("netbuild: demo-fresh boots class demo");
        expect(boot.console).toContain("NETBUILD-PROVISION: none");
        expect(boot.console).not.toContain("WIPE");
        // The kernel and initrd the machine fetched are the generation A deployed.
        const demo = (demoRecord as { generations: { kernel: string; initrd: string }[] }).generations[0]!;
        const fetched = server.requests.filter((q) => q.status === 200).map((q) => q.path);
        expect(fetched).toEqual(expect.arrayContaining(["/boot.ipxe", "/by-mac/52-54-00-12-34-56/ipxe", "/by-class/demo/ipxe", `/${demo.kernel}`, `/${demo.initrd}`]));
        expect(boot.stoppedBy).toBe("poweroff");
      } finally {
        await server.close();
      }
    }, 240_000);
  });

  describe("the plan per machine, against what the target serves", () => {
    it("lists each kind of change per machine, machines before files, in the dry run, --json and the real deploy", async () => {
      const w = world();
      setHost(w.a, "demo-fresh", { ...HOSTS["demo-fresh"]!, disks: false });
      setHost(w.a, "demo-kept", { class: "other", mac: "52:54:00:12:34:5b", params: ["demo.role=kept", "quiet"] });
      rmSync(path.join(w.a, "hosts/o1.yaml"));
      setHost(w.a, "o3", { class: "other", mac: "52:54:00:00:00:23", disks: true });
      const dry = await ok(cli(["deploy", "--dry-run", "--json"], w.a));
      const machines = (JSON.parse(dry.stdout) as { targets: { machines: unknown[] }[] }).targets[0]!.machines;
      expect(machines).toEqual([
        { host: "demo-fresh", change: "changed", class: { from: "demo", to: "demo" }, params: { added: [], removed: [] }, macs: { added: [], removed: [] }, wipe: "disarmed", wipes: false, wipeId: { from: "r1", to: undefined } },
        { host: "demo-kept", change: "changed", class: { from: "demo", to: "other" }, params: { added: ["quiet"], removed: [] }, macs: { added: ["52:54:00:12:34:5b"], removed: ["52:54:00:12:34:57"] }, wipe: undefined, wipes: false },
        { host: "o1", change: "removed", class: { from: "other", to: undefined }, params: { added: [], removed: ["hostname=o1"] }, macs: { added: [], removed: ["52:54:00:00:00:21"] }, wipe: undefined, wipes: false },
        { host: "o3", change: "added", class: { from: undefined, to: "other" }, params: { added: ["hostname=o3"], removed: [] }, macs: { added: ["52:54:00:00:00:23"], removed: [] }, wipe: "armed", wipes: true, wipeId: { from: undefined, to: "r1" } },
      ].map((m) => ({ ...JSON.parse(JSON.stringify(m)), generation: expect.anything() })));
      // A class change names the generations, as the target serves them before and will after.
      const gens = (JSON.parse((await ok(cli(["status", "--json"], w.a))).stdout) as { targets: { classes: { name: string; current: string }[] }[] }).targets[0]!.classes;
      const current = (name: string) => gens.find((c) => c.name === name)!.current;
      expect((machines[1] as { generation: unknown }).generation).toEqual({ from: current("demo"), to: current("other") });
      expect((machines[2] as { generation: unknown }).generation).toEqual({ from: current("other") });
      const human = await ok(cli(["deploy", "--dry-run"], w.a));
      const lines = human.stderr.split("\n");
      const firstMachine = lines.findIndex((l) => l.startsWith("[boot] ~ demo-fresh  wipe disarmed"));
      expect(firstMachine, human.stderr).toBeGreaterThan(-1);
      expect(lines).toContain(`[boot] ~ demo-kept  class demo (${current("demo")}) → other (${current("other")}), +quiet, MAC +52:54:00:12:34:5b, MAC -52:54:00:12:34:57`);
      expect(lines).toContain("[boot] - o1  removed (was class other), MAC -52:54:00:00:00:21");
      expect(lines).toContain("[boot] + o3  new, class other, MAC +52:54:00:00:00:23, !!! WIPE ARMED, id r1 (formats its disks on the next boot)");
      expect(firstMachine).toBeLessThan(lines.findIndex((l) => l.startsWith("[boot] switch")));
      const real = await ok(cli(["deploy", "--yes"], w.a));
      // The real deploy lists its machines once, in its summary.
      expect(real.stdout).toContain("\n  - o1  removed (was class other), MAC -52:54:00:00:00:21\n");
      expect(real.stderr).not.toContain("o1  removed");
      // Deployed: nothing more to say per machine.
      expect((JSON.parse((await ok(cli(["deploy", "--dry-run", "--json"], w.a))).stdout) as { targets: { machines: unknown[] }[] }).targets[0]!.machines).toEqual([]);
    });
  });

  describe("verify accounts for every host of the inventory, whichever classes this checkout built", () => {
    it("passes from both checkouts on the target as A deployed it, over the target and over HTTP", async () => {
      const w = world();
      const server = await serveFolder(w.served);
      try {
        for (const root of [w.a, w.b]) {
          const r = await cli(["verify"], root);
          expect(r.code, r.stderr + r.stdout).toBe(0);
          expect(r.stdout).toContain("all 3 hosts of the inventory checked: 3 served as the inventory says, 0 not");
          const http = await cli(["verify", "--http", server.url], root);
          expect(http.code, http.stderr + http.stdout).toBe(0);
          expect(http.stdout).toContain("4 of 4 machines verified");
          expect(http.stdout).toContain("every MAC of all 3 hosts, 0 with a problem");
        }
        // B has not built demo: its hosts' files are checked for being served, and it says so.
        expect((await cli(["verify", "--http", server.url], w.b)).stdout).toContain("class demo is not built here");
      } finally {
        await server.close();
      }
    });

    it("keeps unknown machines booting the unknownMachines class A serves when B, which did not build it, deploys; verify --http agrees from both", async () => {
      const w = world();
      const unknown = (root: string) => writeFileSync(path.join(root, "netbuild.yaml"), `${readFileSync(path.join(root, "netbuild.yaml"), "utf8")}unknownMachines: { class: other }\n`);
      // A builds other and serves it to unknown machines; B has not built it (B builds demo only here).
      for (const root of [w.a, w.b]) unknown(root);
      // The plan says it, as a change for the machines no host has.
      expect((await ok(cli(["plan", "--target", "boot"], w.a))).stdout).toContain("\n  ~ unknown machines  boot nothing → boot class other\n");
      const armed = await ok(cli(["deploy", "--yes"], w.a));
      expect(armed.stdout).toContain("\n  ~ unknown machines  boot nothing → boot class other\n");
      const boot = readFileSync(path.join(w.served, "boot.ipxe"), "utf8");
      expect(boot).toContain("by-class/other/ipxe");
      rmSync(path.join(w.b, "out"), { recursive: true });
      await ok(cli(["build", "--class", "demo"], w.b));
      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "quiet"] });
      const r = await ok(cli(["deploy", "--json"], w.b));
      expect((JSON.parse(r.stdout) as { targets: { switches: string[] }[] }).targets[0]!.switches).toEqual(["by-host/demo-kept/ipxe"]);
      expect(readFileSync(path.join(w.served, "boot.ipxe"), "utf8")).toBe(boot);
      const server = await serveFolder(w.served);
      try {
        for (const root of [w.a, w.b]) {
          const http = await cli(["verify", "--http", server.url, "--json"], root);
          const unknownMachine = (JSON.parse(http.stdout) as { http: { machines: { host?: string; ok: boolean; problems: string[] }[] } }).http.machines.find((m) => m.host === undefined)!;
          expect(unknownMachine.problems, root).toEqual([]);
        }
      } finally {
        await server.close();
      }
    });

    it("reports what the target serves that no host of the inventory has: a removed wiping host and a removed MAC", async () => {
      const w = world();
      rmSync(path.join(w.b, "hosts/demo-fresh.yaml"));
      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, mac: "52:54:00:12:34:5c" });
      const r = await cli(["verify"], w.b);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`FAIL demo-fresh: served, but in no host file of the inventory, WITH ${FLAG}: a machine with its MACs WOULD BE WIPED`);
      expect(r.stdout).toContain("FAIL demo-kept: MAC 52:54:00:12:34:57 is served (it leads to demo-kept), but no host of the inventory has it");
    });

    it("fails, naming each, on a stale host, a host not served and a served wipe the inventory dropped (B's inventory, A's deploy)", async () => {
      const w = world();
      // B's inventory moves on without deploying: demo-fresh dropped its flag, demo-kept has a new parameter, o2 is new.
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, disks: false });
      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "quiet"] });
      setHost(w.b, "o2", { class: "other", mac: "52:54:00:00:00:22" });
      const r = await cli(["verify"], w.b);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("all 4 hosts of the inventory checked: 1 served as the inventory says, 3 not");
      expect(r.stdout).toContain(`FAIL demo-fresh: served ${FLAG}, but the inventory does not set provision.disks: ITS DISKS WOULD BE WIPED`);
      expect(r.stdout).toContain("FAIL demo-kept: stale parameters: lacks quiet");
      expect(r.stdout).toContain("FAIL o2: not served (class other)");
      const server = await serveFolder(w.served);
      try {
        const http = await cli(["verify", "--http", server.url, "--json"], w.b);
        expect(http.code).toBe(1);
        const machines = (JSON.parse(http.stdout) as { http: { machines: { host?: string; ok: boolean; problems: string[] }[] } }).http.machines;
        const of = (host: string) => machines.find((m) => m.host === host)!;
        expect(of("demo-fresh").problems.join("\n")).toContain("ITS DISKS WOULD BE WIPED");
        expect(of("demo-kept").problems).toContain("the kernel command line lacks quiet");
        expect(of("o2").problems.join("\n")).toContain("not served");
        expect(of("o1").ok).toBe(true);
      } finally {
        await server.close();
      }
      // B deploys; every host is then served as its inventory says.
      await ok(cli(["deploy"], w.b));
      const after = await cli(["verify"], w.b);
      expect(after.code, after.stdout).toBe(0);
    });
  });

  describe("removing a wipe is always possible", () => {
    it("moves a wiping host to a class built nowhere and drops its flag in one edit: exit 0, it keeps chaining class demo without the flag, and says so", async () => {
      const w = world();
      const demoClass = treeChecksum(path.join(w.served, "by-class/demo"));
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, class: "third", disks: false });
      const r = await cli(["deploy"], w.b);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain("[boot] host demo-fresh: its wipe flag is dropped, but class third is neither built here nor served by boot: it keeps booting class demo, now without the wipe. Build third to move it.");
      // The "not built here" note says the same of class third's host (held, not left out), on this deploy and the next.
      const note = /\[boot\] not built here: demo \(boot keeps serving generation \w{12}; 1 host follows the inventory\), third \(not served by boot: its host demo-fresh is held on class demo, which boot serves it, without a wipe\)\./;
      expect(r.stderr).toMatch(note);
      const again = await cli(["deploy"], w.b);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(note);
      // The flag is gone already: the next deploy does not announce it dropped again, and says the host stays held.
      expect(again.stderr).not.toContain("its wipe flag is dropped");
      expect(again.stderr).toContain("[boot] host demo-fresh stays held on class demo without a wipe: its class third is neither built here nor served by boot. Build third to move it.");
      const text = script(w.served, "demo-fresh");
      expect(text).not.toContain(FLAG);
      expect(text).not.toContain("WIPED");
      expect(text).toMatch(/^chain \.\.\/\.\.\/by-class\/demo\/ipxe$/m);
      expect(text).not.toContain("by-class/third");
      expect(cmdlineOf(w.served, "demo-fresh")).toBe("set cmdline hostname=demo-fresh demo.role=fresh");
      expect(existsSync(path.join(w.served, "by-class/third")), "class third is not deployed").toBe(false);
      expect(treeChecksum(path.join(w.served, "by-class/demo"))).toBe(demoClass);
    });
  });

  describe("a host that cannot be served as the inventory says is refused", () => {
    it("refuses a non-wiping demo host moved in B to a class built nowhere: exit 2 naming the host, class third and the fix; the target unchanged", async () => {
      const w = world();
      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, class: "third" });
      const before = stateOf(w.served);
      const r = await cli(["deploy"], w.b);
      expectRefusal(r, ["host demo-kept (hosts/demo-kept.yaml): class third is not built here and boot does not serve it", "nothing was changed", "netbuild build --class third"]);
      expect(stateOf(w.served)).toBe(before);
      expect(script(w.served, "demo-kept")).toMatch(/^chain \.\.\/\.\.\/by-class\/demo\/ipxe$/m);
    });

    it("refuses a wiping host moved in B to a class built nowhere while it keeps its flag: exit 2, the target unchanged", async () => {
      const w = world();
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, class: "third" });
      const before = stateOf(w.served);
      const r = await cli(["deploy", "--yes"], w.b);
      expectRefusal(r, ["host demo-fresh (hosts/demo-fresh.yaml): class third", "netbuild build --class third"]);
      expect(stateOf(w.served)).toBe(before);
    });
  });

  describe("a new wipe needs a yes", () => {
    const refusedWipe = (host: string) => [`serve a disk WIPE to 1 host it did not wipe before: ${host} (hosts/${host}.yaml); nothing was changed`, "--yes"];

    it("refuses a first deploy serving a wipe without a terminal and without --yes (in-process and as a process), says so with --dry-run, and serves it with --yes", async () => {
      const w = world({ deployed: false });
      expect(process.stdin.isTTY, "the in-process CLI runs without a terminal").toBeFalsy();
      const before = stateOf(w.served);
      expectRefusal(await cli(["deploy"], w.a), refusedWipe("demo-fresh"), "in-process");
      expect(stateOf(w.served)).toBe(before);
      expectRefusal(await cliProcess(["deploy"], w.a), refusedWipe("demo-fresh"), "child process");
      expect(stateOf(w.served)).toBe(before);

      const dry = await cli(["deploy", "--dry-run"], w.a);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr).toContain("[boot] a deploy would serve a disk WIPE to demo-fresh, which boot did not wipe before");
      expect(dry.stderr).toContain("[boot] switch  by-host/demo-fresh/ipxe   !!! WIPES ITS DISKS ON NEXT BOOT");
      expect(stateOf(w.served)).toBe(before);

      await ok(cli(["deploy", "--yes"], w.a));
      expect(cmdlineOf(w.served, "demo-fresh")).toContain(FLAG);
      expect(script(w.served, "demo-fresh")).toContain("DISKS WILL BE FORMATTED (WIPED) ON THIS BOOT");
    });

    it("needs no yes for a wipe the target already serves, when another host changes (from A, and from B where demo is not built)", async () => {
      const w = world();
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "quiet"] });
      const fromA = await ok(cli(["deploy", "--json"], w.a));
      expect(JSON.parse(fromA.stdout).targets[0].switches).toEqual(["by-host/demo-kept/ipxe"]);
      expect(cmdlineOf(w.served, "demo-kept")).toContain("quiet");

      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "loglevel=7"] });
      const fromB = await ok(cli(["deploy", "--json"], w.b));
      expect(JSON.parse(fromB.stdout).targets[0].switches).toEqual(["by-host/demo-kept/ipxe"]);
      expect(cmdlineOf(w.served, "demo-kept")).toContain("loglevel=7");
      expect(cmdlineOf(w.served, "demo-fresh")).toContain(FLAG);
    });

    it("counts a host that gains the flag as new: from A, and from B (demo not built there), with --dry-run saying so and --yes serving it", async () => {
      const w = world();
      const before = stateOf(w.served);
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      const fromA = await cli(["deploy"], w.a);
      expectRefusal(fromA, refusedWipe("demo-kept"), "from A");
      // Only the new one is listed: demo-fresh's wipe was served before.
      expect(fromA.stderr).not.toContain("demo-fresh (hosts/demo-fresh.yaml);");
      expect(stateOf(w.served)).toBe(before);

      setHost(w.b, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      expectRefusal(await cli(["deploy"], w.b), refusedWipe("demo-kept"), "from B");
      expect(stateOf(w.served)).toBe(before);
      const dry = await cli(["deploy", "--dry-run"], w.b);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr).toContain("[boot] a deploy would serve a disk WIPE to demo-kept, which boot did not wipe before");
      expect(stateOf(w.served)).toBe(before);

      await ok(cli(["deploy", "--yes"], w.b));
      expect(cmdlineOf(w.served, "demo-kept")).toBe(`set cmdline hostname=demo-kept ${FLAG} homelab.provision_id=r1 demo.role=kept`);
      expect(script(w.served, "demo-kept")).toMatch(/^chain \.\.\/\.\.\/by-class\/demo\/ipxe$/m);
    });

    it("counts a new provisioning id, and a wipe newly forced, as new wipes; status shows each armed host with its id; verify finds a served id the inventory does not have", async () => {
      const w = world();
      const before = stateOf(w.served);
      const status = async () => JSON.parse((await ok(cli(["status", "--json"], w.a))).stdout).targets[0].armed;
      expect(await status()).toEqual([{ host: "demo-fresh", id: "r1", force: false, served: { wipe: true, id: "r1", force: false } }]);
      // demo-fresh provisioned again: a new id is a new wipe (its machine formats again).
      setHost(w.a, "demo-fresh", { ...HOSTS["demo-fresh"]!, id: "r2" });
      expect(await status()).toEqual([{ host: "demo-fresh", id: "r2", force: false, served: { wipe: true, id: "r1", force: false } }]);
      const dry = await ok(cli(["plan", "--target", "boot"], w.a));
      expect(dry.stdout).toContain("~ demo-fresh  !!! WIPE RE-ARMED, id r1 → id r2 (formats its disks again on the next boot)");
      expect(dry.stdout).toContain("!!! a deploy would serve a disk WIPE to demo-fresh, which boot did not wipe before");
      const verify = await cli(["verify"], w.a);
      expect(verify.code).toBe(1);
      expect(verify.stdout + verify.stderr).toContain("served its wipe with id r1, but the inventory says id r2");
      expectRefusal(await cli(["deploy"], w.a), refusedWipe("demo-fresh"), "a new id");
      expect(stateOf(w.served)).toBe(before);
      await ok(cli(["deploy", "--yes"], w.a));
      expect(cmdlineOf(w.served, "demo-fresh")).toBe(`set cmdline hostname=demo-fresh ${FLAG} homelab.provision_id=r2 demo.role=fresh`);
      expect(await status()).toEqual([{ host: "demo-fresh", id: "r2", force: false, served: { wipe: true, id: "r2", force: false } }]);
      // The same id, now forced: new too (it formats disks it left alone before).
      setHost(w.a, "demo-fresh", { ...HOSTS["demo-fresh"]!, id: "r2", force: true });
      expectRefusal(await cli(["deploy"], w.a), refusedWipe("demo-fresh"), "forced");
      const forced = await ok(cli(["deploy", "--yes", "--json"], w.a));
      expect(JSON.parse(forced.stdout).targets[0].machines).toEqual([expect.objectContaining({ host: "demo-fresh", wipe: "re-armed", wipeId: { from: "r2", to: "r2" }, wipeForce: { from: false, to: true } })]);
      expect(cmdlineOf(w.served, "demo-fresh")).toBe(`set cmdline hostname=demo-fresh ${FLAG} homelab.provision_id=r2 homelab.provision_force=true demo.role=fresh`);
      expect(script(w.served, "demo-fresh")).toContain("echo netbuild: !!! provision id r2, FORCED (it formats once per id)\necho netbuild: !!! set in hosts/demo-fresh.yaml\n");
      expect(await status()).toEqual([{ host: "demo-fresh", id: "r2", force: true, served: { wipe: true, id: "r2", force: true } }]);
      // Back to the same id without force: no new wipe, no question.
      setHost(w.a, "demo-fresh", { ...HOSTS["demo-fresh"]!, id: "r2" });
      const unforced = await ok(cli(["deploy"], w.a));
      expect(unforced.stdout).toContain("~ demo-fresh  wipe no longer forced");
    });

    it("counts a new host added with the flag as new: refused without --yes (as a process), served with it", async () => {
      const w = world();
      const before = stateOf(w.served);
      setHost(w.a, "demo-new", { class: "demo", mac: "52:54:00:12:34:58", disks: true });
      expectRefusal(await cliProcess(["deploy"], w.a), refusedWipe("demo-new"));
      expect(stateOf(w.served)).toBe(before);
      expect(existsSync(path.join(w.served, "by-host/demo-new"))).toBe(false);
      await ok(cliProcess(["deploy", "--yes"], w.a));
      expect(cmdlineOf(w.served, "demo-new")).toContain(FLAG);
      expect(readlinkSync(path.join(w.served, "by-mac/52-54-00-12-34-58"))).toBe("../by-host/demo-new");
    });

    it("counts a MAC that now leads to a wiping host as new: one added to it, or moved to it from a host that did not wipe", async () => {
      for (const edit of ["add", "move"] as const) {
        const w = world();
        const before = stateOf(w.served);
        const kept = "52:54:00:12:34:57";
        // demo-fresh already wipes; a second NIC (a new MAC), or demo-kept's MAC handed over to it.
        if (edit === "move") setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, mac: "52:54:00:12:34:59" });
        writeFileSync(path.join(w.a, "hosts/demo-fresh.yaml"), `class: demo\nmacs: ["${FRESH_MAC}", "${edit === "add" ? "52:54:00:12:34:5a" : kept}"]\nprovision: { disks: true, id: r1 }\nkernelParams: [demo.role=fresh]\n`);
        const mac = edit === "add" ? "52:54:00:12:34:5a" : kept;
        expectRefusal(await cli(["deploy"], w.a), [`demo-fresh (MAC ${mac})`, "nothing was changed", "--yes"], edit);
        expect(stateOf(w.served), edit).toBe(before);
        await ok(cli(["deploy", "--yes"], w.a));
        expect(readlinkSync(path.join(w.served, "by-mac", mac.replace(/:/g, "-"))), edit).toBe("../by-host/demo-fresh");
      }
    });

    it("judges a MAC by what its link on the target leads to now, not by the record: a link repaired by --verify asks first", async () => {
      const w = world();
      const link = path.join(w.served, "by-mac/52-54-00-12-34-56");
      // Someone points demo-fresh's MAC at demo-kept on the server by hand; the record still says demo-fresh.
      rmSync(link);
      symlinkSync("../by-host/demo-kept", link);
      const before = stateOf(w.served);
      expectRefusal(await cli(["deploy", "--verify"], w.a), ["demo-fresh (MAC 52:54:00:12:34:56) (hosts/demo-fresh.yaml)", "--yes"]);
      expect(stateOf(w.served)).toBe(before);
      await ok(cli(["deploy", "--verify", "--yes"], w.a));
      expect(readlinkSync(link)).toBe("../by-host/demo-fresh");
    });

    it("asks again for a wipe that was dropped and is turned back on (a stale checkout A after B dropped it)", async () => {
      const w = world();
      setHost(w.b, "demo-fresh", { ...HOSTS["demo-fresh"]!, disks: false });
      await ok(cli(["deploy"], w.b));
      expect(cmdlineOf(w.served, "demo-fresh")).not.toContain(FLAG);
      // A still has provision.disks: true: for this target, that is a new wipe.
      const before = stateOf(w.served);
      expectRefusal(await cli(["deploy"], w.a), refusedWipe("demo-fresh"));
      expect(stateOf(w.served)).toBe(before);
      await ok(cli(["deploy", "--yes"], w.a));
      expect(cmdlineOf(w.served, "demo-fresh")).toContain(FLAG);
    });

    describe.skipIf(noSsh)("over SFTP (a real sshd on loopback)", () => {
      let sshd: Sshd;
      beforeAll(async () => {
        sshd = await startSshd();
      });
      afterAll(async () => {
        await sshd?.stop();
      });

      it("refuses a new wipe without --yes, serves it with --yes, needs no yes for it on the next deploy, and refuses the next new one", async () => {
        const w = world({ deployed: false, target: (served) => `sftp://boot${served}` });
        const deploy = (root: string, ...extra: string[]) => cli(["deploy", "-F", sshd.sshConfig, ...extra], root);
        const empty = stateOf(w.served);
        expectRefusal(await deploy(w.a), refusedWipe("demo-fresh"), "first deploy");
        expect(stateOf(w.served)).toBe(empty);

        await ok(deploy(w.a, "--yes"));
        expect(cmdlineOf(w.served, "demo-fresh")).toContain(FLAG);

        // The wipe served before is read back over SFTP: no yes needed for another host's change.
        setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, params: ["demo.role=kept", "quiet"] });
        await ok(deploy(w.a));
        expect(cmdlineOf(w.served, "demo-kept")).toContain("quiet");

        setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
        const before = stateOf(w.served);
        expectRefusal(await deploy(w.a), refusedWipe("demo-kept"), "demo-kept gains the flag");
        expect(stateOf(w.served)).toBe(before);
        await ok(deploy(w.a, "--yes"));
        expect(cmdlineOf(w.served, "demo-kept")).toContain(FLAG);
      });
    });
  });

  describe.skipIf(noScript)("on a terminal, it asks", () => {
    const QUESTION = 'Type "yes" to deploy:';
    const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

    /**
     * `node bin/netbuild.js deploy ARGS` under script(1): its stdin and stderr are a pseudo-terminal.
     * `react` sees the screen so far after each piece of output, and types with `type`. CI is removed
     * from the child's environment unless `ci` (the CLI never asks in CI).
     */
    function onTerminal(cwd: string, args: string[], react: (screen: string, type: (text: string) => void) => void, options: { ci?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; screen: string }> {
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", TERM: "dumb", ...options.env };
      delete env["CI"];
      if (options.ci) env["CI"] = "true";
      const command = [process.execPath, path.join(REPO, "bin/netbuild.js"), "deploy", ...args].map(shq).join(" ");
      const child = spawn("script", ["-qec", command, "/dev/null"], { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
      let screen = "";
      const type = (text: string) => child.stdin.write(text);
      const onData = (d: Buffer) => {
        screen += d.toString("utf8");
        react(screen.replace(/\r/g, ""), type);
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      return new Promise((resolve) => {
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, screen: screen.replace(/\r/g, "") });
        });
      });
    }

    /** A deploy on a terminal, `answer` typed once the question is on the screen (after `meanwhile`, which may change the target as someone could while the question waits). */
    function deployOnTerminal(cwd: string, answer: string, options: { ci?: boolean; meanwhile?: () => void } = {}): Promise<{ code: number | null; screen: string }> {
      let typed = false;
      return onTerminal(
        cwd,
        [],
        (screen, type) => {
          if (typed || !screen.includes(QUESTION)) return;
          typed = true;
          options.meanwhile?.();
          type(answer);
        },
        options,
      );
    }

    it("asks, listing the host and its file: no (or Ctrl-D) deploys nothing and exits 2, yes deploys; with CI=true it refuses without asking", async () => {
      const w = world();
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      const before = stateOf(w.served);
      const cases: { answer: string; label: string }[] = [
        { answer: "no\n", label: "no" },
        { answer: "y\n", label: "y (only yes is a yes)" },
        { answer: "\x04", label: "Ctrl-D" },
      ];
      for (const c of cases) {
        const r = await deployOnTerminal(w.a, c.answer);
        expect.soft(r.code, `${c.label}: exit code\n${r.screen}`).toBe(2);
        expect.soft(r.screen, `${c.label}: the question lists the host and its file`).toMatch(/serve a disk WIPE to 1 host it did not wipe before:\n!!! {3}demo-kept \(hosts\/demo-kept\.yaml\)\n/);
        const question = /this deploy makes boot[^\n]*\n([\s\S]*?)Type "yes"/.exec(r.screen)?.[1] ?? "";
        expect.soft(question, `${c.label}: demo-fresh (served a wipe before) is not asked about`).not.toContain("demo-fresh");
        expect.soft(r.screen, `${c.label}: the question`).toContain(QUESTION);
        expect.soft(r.screen, `${c.label}: refusal`).toContain("not confirmed: nothing was deployed to boot");
        expect.soft(r.screen, `${c.label}: no internal error`).not.toContain("internal error");
        expect.soft(r.screen, `${c.label}: no stack frame`).not.toContain("    at ");
        expect(stateOf(w.served), `${c.label}: the target is unchanged`).toBe(before);
      }

      const ci = await deployOnTerminal(w.a, "yes\n", { ci: true });
      expect.soft(ci.code, ci.screen).toBe(2);
      expect.soft(ci.screen).not.toContain(QUESTION);
      expect.soft(ci.screen).toContain("serve a disk WIPE to 1 host it did not wipe before: demo-kept (hosts/demo-kept.yaml); nothing was changed");
      expect(stateOf(w.served)).toBe(before);

      const yes = await deployOnTerminal(w.a, "yes\n");
      expect(yes.code, yes.screen).toBe(0);
      expect(yes.screen).toContain(QUESTION);
      expect(yes.screen).toContain("deployed to boot");
      expect(cmdlineOf(w.served, "demo-kept")).toBe(`set cmdline hostname=demo-kept ${FLAG} homelab.provision_id=r1 demo.role=kept`);
      expect(lstatSync(path.join(w.served, "by-mac/52-54-00-12-34-57")).isSymbolicLink()).toBe(true);
    });

    it("looks at the target again once answered: a by-host/ swapped for a link to another disk while the question waited is refused, and nothing is written through it", async () => {
      const w = world();
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      const elsewhere = path.join(tempDir("netbuild-elsewhere-"), "by-host");
      const r = await deployOnTerminal(w.a, "yes\n", {
        meanwhile: () => {
          renameSync(path.join(w.served, "by-host"), elsewhere);
          symlinkSync(elsewhere, path.join(w.served, "by-host"));
        },
      });
      expect(r.code, r.screen).toBe(2);
      expect(r.screen).toContain(QUESTION);
      expect(r.screen).toContain("by-host is a symlink, where netbuild needs a real folder");
      expect(readFileSync(path.join(elsewhere, "demo-kept/ipxe"), "utf8")).not.toContain(FLAG);
      expect(readdirSync(elsewhere).filter((n) => n.startsWith("."))).toEqual([]);
    });

    it("deploys nothing once answered when its lock was broken and taken while the question waited (another deploy may have changed the target)", async () => {
      const w = world();
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      const before = stateOf(w.served);
      const theirs = `${JSON.stringify({ owner: "ops", host: "elsewhere", pid: 4242, command: "deploy", started: new Date().toISOString(), token: "theirs" })}\n`;
      const r = await deployOnTerminal(w.a, "yes\n", { meanwhile: () => writeFileSync(path.join(w.served, ".netbuild/lock"), theirs) });
      expect(r.code, r.screen).toBe(1);
      expect(r.screen).toContain(`boot (${w.served}) changed while the question waited: its lock was broken (--break-lock) and may have been taken by another deploy; nothing was deployed`);
      expect(readFileSync(path.join(w.served, ".netbuild/lock"), "utf8"), "their lock stays").toBe(theirs);
      rmSync(path.join(w.served, ".netbuild/lock"));
      expect(stateOf(w.served)).toBe(before);
    });

    it("stops on Ctrl-C at the question (exit 130) with nothing deployed, its message on a line of its own", async () => {
      const w = world();
      setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
      const before = stateOf(w.served);
      const r = await deployOnTerminal(w.a, "\x03");
      expect(r.code, r.screen).toBe(130);
      expect(r.screen).toMatch(/Type "yes" to deploy: (\^C)?\n(.*\n)*netbuild deploy interrupted \(SIGINT\)/);
      expect(r.screen).not.toContain("not confirmed");
      expect(stateOf(w.served)).toBe(before);
    });

    describe.skipIf(noSsh)("and another target asks for a key's passphrase (a real sshd on loopback)", () => {
      let sshd: Sshd;
      beforeAll(async () => {
        sshd = await startSshd();
      });
      afterAll(async () => {
        await sshd?.stop();
      });

      /** A site whose target `far` is reached over SFTP with a new key that only `passphrase` opens (no ssh-agent), and that key's ssh_config. */
      function passphraseSite(root: string, passphrase: string, targets: string): string {
        writeFileSync(path.join(root, "netbuild.yaml"), `targets:\n${targets}`);
        const key = path.join(tempDir("netbuild-passkey-"), "key");
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", key]);
        writeFileSync(path.join(sshd.dir, "authorized_keys"), readFileSync(`${key}.pub`));
        const config = path.join(path.dirname(key), "ssh_config");
        writeFileSync(config, readFileSync(sshd.sshConfig, "utf8").replace(sshd.userKey, key));
        return config;
      }

      it("does not wait for a passphrase nobody needs: a deploy refused for its inventory ends while the prompt waits", async () => {
        const w = world();
        const config = passphraseSite(w.a, "never typed", `  far: sftp://boot${tempDir("netbuild-far-")}/one\n`);
        writeFileSync(path.join(w.a, "hosts/broken.yaml"), "class: demo\nmac: not-a-mac\n");
        try {
          const r = await onTerminal(w.a, ["-F", config], () => undefined, { env: { SSH_AUTH_SOCK: "" } });
          expect(r.code, r.screen).toBe(2);
          expect(r.screen).toContain("hosts/broken.yaml");
        } finally {
          writeFileSync(path.join(sshd.dir, "authorized_keys"), readFileSync(`${sshd.userKey}.pub`));
        }
      });

      it("asks one thing at a time: what is typed for a passphrase never answers a wipe question or shows on the screen; a wrong one is asked again, a right one once per key", async () => {
        // "Enter passphrase for key '…': ", or "Wrong passphrase; try again (2 of 3) for key '…': ".
        const PROMPT = "for key '";
        const PASSPHRASE = "correct horse battery";
        const WRONG = "wrong horse";
        const w = world();
        setHost(w.a, "demo-kept", { ...HOSTS["demo-kept"]!, disks: true });
        // Two more targets over SFTP, both reached with one key that only its passphrase opens (no ssh-agent).
        const far = tempDir("netbuild-far-");
        const config = passphraseSite(w.a, PASSPHRASE, `  boot: ${w.served}\n  far: sftp://boot${far}/one\n  farther: sftp://boot${far}/two\n`);
        try {
          // Like a person: each time something is asked, read it for a second, then answer it (the
          // first one asked, if two are on the screen: a passphrase typed while a question shows).
          let screen = "";
          let answeredUpTo = 0;
          let timer: NodeJS.Timeout | undefined;
          let twoAtOnce = false;
          const typed: string[] = [];
          const r = await onTerminal(
            w.a,
            ["-F", config],
            (now, type) => {
              screen = now;
              const open = screen.slice(answeredUpTo);
              if (open.includes(PROMPT) && open.includes(QUESTION)) twoAtOnce = true;
              if (timer || !(open.includes(PROMPT) || open.includes(QUESTION))) return;
              timer = setTimeout(() => {
                timer = undefined;
                const asked = screen.slice(answeredUpTo);
                const pass = asked.indexOf(PROMPT);
                const wipe = asked.indexOf(QUESTION);
                answeredUpTo = screen.length;
                const answer = pass >= 0 && (wipe < 0 || pass < wipe) ? (typed.includes(WRONG) ? PASSPHRASE : WRONG) : "yes";
                typed.push(answer);
                type(`${answer}\n`);
              }, 1000);
            },
            { env: { SSH_AUTH_SOCK: "" } },
          );
          clearTimeout(timer);
          expect(twoAtOnce, `two questions were open at once:\n${r.screen}`).toBe(false);
          expect(r.screen, "the passphrase is never on the screen").not.toContain(PASSPHRASE);
          expect(r.screen, "nor a wrong one").not.toContain(WRONG);
          expect(r.screen).toContain("Wrong passphrase; try again (2 of 3) for key");
          // Other targets' progress is held back while a question waits: each question is followed by its answer alone.
          expect(r.screen.split(QUESTION).slice(1).map((after) => after.split("\n")[0]), r.screen).toEqual([" yes", " yes", " yes"]);
          expect(r.screen, "the passphrase prompt ends its line").toMatch(/Enter passphrase for key '[^']+': \n/);
          expect(r.code, r.screen).toBe(0);
          expect(typed, "a wrong passphrase asked again, the right one once for the key of both SFTP targets, then a yes per target").toEqual([WRONG, PASSPHRASE, "yes", "yes", "yes"]);
          for (const served of [w.served, path.join(far, "one"), path.join(far, "two")]) expect(cmdlineOf(served, "demo-kept")).toContain(FLAG);
        } finally {
          writeFileSync(path.join(sshd.dir, "authorized_keys"), readFileSync(`${sshd.userKey}.pub`));
        }
      });
    });
  });
});
