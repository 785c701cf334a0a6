// `netbuild verify` accounts for every host of the inventory, whatever this checkout has built: each
// way what a target serves can differ from the inventory is said per host (and per machine with
// --http), and any of them is a failed verify. One site is built and deployed once to a local folder
// target; each case works on a copy of it whose inventory was edited afterwards (what a teammate's
// checkout, or an edit not yet deployed, looks like to verify). In this process (so the mutation run
// counts these tests), with real nix-build, a real folder target and a real HTTP server for --http.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, DEMO_INITRD, DEMO_KERNEL, inventory, REPO, tempDir, type CliRun } from "./support/inventory.ts";
import { serveFactory, serveFolder, type StaticServer } from "./support/http.ts";
import { missing } from "./support/tools.ts";

const notHere = missing({ commands: ["nix-build"], files: ["/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/snponly.efi"] });

const prebuilt = (name: string, params: string) => `kind: prebuilt\nkernel: { path: ./${name}/kernel }\ninitrd: { path: ./${name}/initrd }\nkernelParams: [${params}]\n`;

/** Three hosts of two classes; bet is wiped (round r1), gimel has a parameter of its own. */
const SITE = {
  "netbuild.yaml": "targets:\n  local: served\n",
  "classes/demo.yaml": prebuilt("demo", "console=ttyS0"),
  "classes/demo/kernel": "demo kernel\n",
  "classes/demo/initrd": "demo initrd\n",
  "classes/other.yaml": prebuilt("other", "console=tty1"),
  "classes/other/kernel": "other kernel\n",
  "classes/other/initrd": "other initrd\n",
  "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
  "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1 }\n',
  "hosts/gimel.yaml": 'class: other\nmac: "52:54:00:00:00:03"\nkernelParams: [bar=2]\n',
};
const FLAG = "homelab.provision_disks=true";

interface Verified {
  ok: boolean;
  targets: { name: string; hosts: { checked: number; problems: { host: string; problems: string[]; orphan?: boolean }[] } }[];
  http?: { machines: { mac: string; host?: string; ok: boolean; outcome: string; scripts: string[]; kernel?: string; initrd?: string; cmdline: string[]; problems: string[]; notes: string[] }[] };
}

let deployed: string;
beforeAll(async () => {
  if (notHere) return;
  deployed = inventory(SITE);
  for (const args of [["build"], ["deploy", "--yes"]]) {
    const r = await cli(args, deployed);
    expect(r.code, r.stderr).toBe(0);
  }
}, 120_000);
afterAll(() => cleanupTempDirs());

/** A copy of the deployed site (out/ and the target's folder with it), then `edits` to its files (null removes one). */
function copyWith(edits: Record<string, string | null> = {}): string {
  const root = tempDir();
  cpSync(deployed, root, { recursive: true, verbatimSymlinks: true });
  for (const [file, text] of Object.entries(edits)) {
    if (text === null) rmSync(path.join(root, file));
    else writeFileSync(path.join(root, file), text);
  }
  return root;
}

async function verify(root: string, ...args: string[]): Promise<{ run: CliRun; result: Verified }> {
  const run = await cli(["verify", "--json", ...args], root);
  return { run, result: JSON.parse(run.stdout) as Verified };
}

/** Each host's problems as the target verify reports them (orphans marked), in the order given. */
async function hostProblems(root: string): Promise<{ code: number; hosts: Record<string, string[]>; checked: number }> {
  const { run, result } = await verify(root);
  const t = result.targets[0]!;
  const hosts: Record<string, string[]> = {};
  for (const h of t.hosts.problems) (hosts[`${h.host}${h.orphan ? " (orphan)" : ""}`] ??= []).push(...h.problems);
  return { code: run.code, checked: t.hosts.checked, hosts };
}

describe.skipIf(notHere)("verify: every host of the inventory against what the target serves", () => {
  it("the inventory as deployed: every host checked, nothing to say, exit 0", async () => {
    const root = copyWith();
    expect(await hostProblems(root)).toEqual({ code: 0, checked: 3, hosts: {} });
    const human = await cli(["verify"], root);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).not.toMatch(/warning/);
    expect(human.stdout).toMatch(new RegExp(`^local \\(${root}/served\\): \\d+ files checked \\(\\d+ B hashed\\): 0 missing, 0 changed, 0 not netbuild's\nlocal: all 3 hosts of the inventory checked: 3 served as the inventory says, 0 not\n$`));
    // One host is counted as one.
    const one = copyWith({ "hosts/aleph.yaml": null, "hosts/bet.yaml": null });
    expect((await cli(["verify"], one)).stdout).toContain("local: the one host of the inventory checked: 1 served as the inventory says, 0 not; 2 host scripts and 2 MACs served that the inventory does not have\n");
  });

  it.each<[string, Record<string, string | null>, Record<string, string[]>]>([
    ["a wipe dropped from the inventory, still served", { "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n' }, { bet: [`served ${FLAG}, but the inventory does not set provision.disks: ITS DISKS WOULD BE WIPED`] }],
    ["a wipe set in the inventory, not served yet", { "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: n1 }\n' }, { aleph: [`not served its wipe flag (${FLAG}, id n1), which the inventory sets`] }],
    ["a new provisioning round", { "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r2 }\n' }, { bet: ["served its wipe with id r1, but the inventory says id r2"] }],
    ["a wipe forced in the inventory, served unforced", { "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1, force: true }\n' }, { bet: ["served its wipe without the force the inventory sets"] }],
    [
      "parameters added and removed",
      { "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [foo=1]\n', "hosts/gimel.yaml": 'class: other\nmac: "52:54:00:00:00:03"\n' },
      { aleph: ["stale parameters: lacks foo=1"], gimel: ["stale parameters: has bar=2, which the inventory does not"] },
    ],
    ["a host moved to another class", { "hosts/aleph.yaml": 'class: other\nmac: "52:54:00:00:00:01"\n' }, { aleph: ["served class demo, but the inventory says class other"] }],
    ["a MAC added", { "hosts/aleph.yaml": 'class: demo\nmacs: ["52:54:00:00:00:01", "52:54:00:00:00:0a"]\n' }, { aleph: ["MAC 52:54:00:00:00:0a does not lead to its script"] }],
    [
      "a MAC replaced: the new one leads nowhere, the old one still leads to the host",
      { "hosts/gimel.yaml": 'class: other\nmac: "52:54:00:00:00:0b"\nkernelParams: [bar=2]\n' },
      { gimel: ["MAC 52:54:00:00:00:0b does not lead to its script"], "gimel (orphan)": ["MAC 52:54:00:00:00:03 is served (it leads to gimel), but no host of the inventory has it (a deploy removes it)"] },
    ],
    [
      "new hosts, of a class the target serves and of one it does not",
      {
        "hosts/dalet.yaml": 'class: demo\nmac: "52:54:00:00:00:04"\n',
        "classes/third.yaml": prebuilt("demo", "console=ttyS0"),
        "hosts/he.yaml": 'class: third\nmac: "52:54:00:00:00:05"\n',
      },
      { dalet: ["not served (class demo)"], he: ["not served (class third, which this target does not serve either)"] },
    ],
    [
      "hosts removed from the inventory: what is still served for them, the wipe loudly",
      { "hosts/aleph.yaml": null, "hosts/bet.yaml": null },
      {
        "aleph (orphan)": ["served, but in no host file of the inventory (a deploy removes it)", "MAC 52:54:00:00:00:01 is served (it leads to aleph), but no host of the inventory has it (a deploy removes it)"],
        "bet (orphan)": [
          `served, but in no host file of the inventory, WITH ${FLAG}: a machine with its MACs WOULD BE WIPED (a deploy removes it)`,
          "MAC 52:54:00:00:00:02 is served (it leads to bet), but no host of the inventory has it (a deploy removes it)",
        ],
      },
    ],
  ])("%s", async (_name, edits, expected) => {
    const root = copyWith(edits);
    const { code, checked, hosts } = await hostProblems(root);
    expect(hosts).toEqual(expected);
    expect(code).toBe(1);
    // Every host of the inventory (one per file here), not only those with something to say.
    expect(checked).toBe(readdirSync(path.join(root, "hosts")).length);
  });
});

/** `verify --http` of a copy (edited, then `steps` taken in it) with its target's folder served over HTTP: each machine's problems and notes, by host ("unknown": the MAC of no host). */
type Machine = NonNullable<Verified["http"]>["machines"][number];

async function machines(edits: Record<string, string | null>, steps: ((root: string) => Promise<void>)[] = []): Promise<{ code: number; by: Record<string, Omit<Machine, "host" | "ok">> }> {
  const root = copyWith(edits);
  for (const step of steps) await step(root);
  const server = await serveFolder(path.join(root, "served"));
  try {
    const { run, result } = await verify(root, "--http", server.url);
    return { code: run.code, by: Object.fromEntries(result.http!.machines.map(({ host, ok: _, ...m }) => [host ?? "unknown", m])) };
  } finally {
    await server.close();
  }
}

/** Steps taken in a copy before `verify --http`: a command that must succeed, a file written. */
const run = (...args: string[]) => async (root: string) => {
  const r = await cli(args, root);
  expect(r.code, r.stderr).toBe(0);
};
const write = (file: string, text: string) => async (root: string) => writeFileSync(path.join(root, file), text);
const STRICT = "targets:\n  local: served\n";
const UNKNOWN_DEMO = "unknownMachines: { class: demo }\ntargets:\n  local: served\n";
const KERNEL_MOVED = expect.stringMatching(/^the class script names by-class\/demo\/(\w{32})\/kernel, but the built tree's kernel is by-class\/demo\/(?!\1)\w{32}\/kernel \(deployed before the last build, or rolled back\?\)$/);

describe.skipIf(notHere)("verify --http: every MAC of the inventory, and one of no host, as the machines boot", () => {
  it("the inventory as deployed: each host boots its class, the unknown machine nothing; exit 0", async () => {
    const { code, by } = await machines({});
    expect(by).toMatchObject({
      aleph: { outcome: "boot", problems: [], notes: [] },
      bet: { outcome: "boot", problems: [], notes: [] },
      gimel: { outcome: "boot", problems: [], notes: [] },
      unknown: { outcome: "exit", problems: [], notes: [] },
    });
    expect(Object.keys(by)).toHaveLength(4);
    const server = await serveFolder(path.join(deployed, "served"));
    try {
      const human = await cli(["verify", "--http", server.url], deployed);
      expect(human.stdout).toMatch(new RegExp(`^ok   52-54-00-00-00-01  aleph  boots by-class/demo/\\w{32}/kernel\n(.*\n){3}4 of 4 machines verified over ${server.url}/ \\(every MAC of all 3 hosts, 0 with a problem, and one unknown machine; \\d+ B of kernels and initrds hashed\\)\n$`));
      expect(human.stdout).toContain("ok   02-00-00-00-00-00  (unknown machine)  boots nothing\n");
    } finally {
      await server.close();
    }
    expect(code).toBe(0);
  });

  it.each<[string, Record<string, string | null>, ((root: string) => Promise<void>)[], Record<string, string[]>]>([
    ["a wipe dropped from the inventory, still served", { "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n' }, [], { bet: [`the kernel command line holds ${FLAG}, but bet does not set provision.disks: ITS DISKS WOULD BE WIPED`] }],
    ["a parameter added to a host, not deployed", { "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [foo=1]\n' }, [], { aleph: ["the kernel command line lacks foo=1"] }],
    ["a host added, not deployed", { "hosts/dalet.yaml": 'class: demo\nmac: "52:54:00:00:00:04"\n' }, [], { dalet: ["not served: the boot server does not know this MAC (boots nothing), but the inventory has it as dalet of class demo"] }],
    ["a class's parameter changed and built, not deployed", { "classes/demo.yaml": prebuilt("demo", "console=ttyS1") }, [run("build")], { aleph: ["the kernel command line lacks the class parameter console=ttyS1"], bet: ["the kernel command line lacks the class parameter console=ttyS1"] }],
    ["unknown machines given a class and built, not deployed", { "netbuild.yaml": UNKNOWN_DEMO }, [run("build")], { unknown: ["an unknown machine (02-00-00-00-00-00) boots nothing, but unknownMachines says class demo"] }],
    ["unknown machines given a class and deployed, then strict again and built", {}, [write("netbuild.yaml", UNKNOWN_DEMO), run("build"), run("deploy", "--yes"), write("netbuild.yaml", STRICT), run("build")], { unknown: ["an unknown machine (02-00-00-00-00-00) must boot nothing, but the chain ends in boot"] }],
    [
      "unknown machines given a class and deployed, then another class in the inventory and built",
      {},
      [write("netbuild.yaml", UNKNOWN_DEMO), run("build"), run("deploy", "--yes"), write("netbuild.yaml", "unknownMachines: { class: other }\ntargets:\n  local: served\n"), run("build")],
      {
        unknown: [
          "an unknown machine (02-00-00-00-00-00) boots class demo, but unknownMachines says class other",
          // And what it boots is compared with what class other would give it.
          "the kernel command line lacks the class parameter console=tty1",
          expect.stringMatching(/^the class script names by-class\/demo\/\w{32}\/kernel, but the built tree's kernel is by-class\/other\/\w{32}\/kernel \(deployed before the last build, or rolled back\?\)$/),
          expect.stringMatching(/^the class script names by-class\/demo\/\w{32}\/initrd, but the built tree's initrd is by-class\/other\/\w{32}\/initrd /),
        ],
      },
    ],
    [
      "a served initrd gone",
      {},
      [
        async (root) => {
          const dir = path.join(root, "served/by-class/other");
          rmSync(path.join(dir, readdirSync(dir).find((d) => existsSync(path.join(dir, d, "initrd")))!, "initrd"));
        },
      ],
      { gimel: [expect.stringMatching(/^by-class\/other\/\w{32}\/initrd: HTTP 404$/)] },
    ],
    ["a class rebuilt with a new kernel, not deployed", { "classes/demo/kernel": "demo kernel, rebuilt\n" }, [run("build")], { aleph: [KERNEL_MOVED], bet: [KERNEL_MOVED] }],
  ])("%s", async (_name, edits, steps, expected) => {
    const { code, by } = await machines(edits, steps);
    const problems = Object.fromEntries(Object.entries(by).flatMap(([host, m]) => (m.problems.length > 0 ? [[host, m.problems]] : [])));
    expect(problems).toEqual(expected);
    expect(code).toBe(Object.keys(expected).length > 0 ? 1 : 0);
  });
});

describe.skipIf(notHere)("verify --http: what could not be compared with a build is said, and is no failure", () => {
  it("a class not built here: its machines' files are checked for being served only; unknownMachines naming such a class", async () => {
    const third = { "classes/third.yaml": prebuilt("demo", "console=ttyS0"), "netbuild.yaml": "unknownMachines: { class: third }\ntargets:\n  local: served\n" };
    const { code, by } = await machines(third, [async (root) => rmSync(path.join(root, "out"), { recursive: true }), run("build", "--class", "demo")]);
    expect(by["gimel"]).toMatchObject({ outcome: "boot", problems: [], notes: ["class other is not built here: its kernel and initrd are checked for being served, not against a build"] });
    expect(by["aleph"]).toMatchObject({ outcome: "boot", problems: [], notes: [] });
    expect(by["unknown"]).toMatchObject({ outcome: "exit", problems: [], notes: ["unknown machines boot nothing: unknownMachines names class third, which is not built here and which the boot server does not serve to them"] });
    expect(code).toBe(0);
  });
});

describe.skipIf(notHere)("verify: what it says, and when it cannot", () => {
  it("a target's drift (a file missing, changed, added) fails it alone, each said on its own line; the summary counts hosts, and what is served for no host by kind", async () => {
    const root = copyWith({ "hosts/aleph.yaml": null });
    const served = path.join(root, "served");
    rmSync(path.join(served, "boot.ipxe"));
    writeFileSync(path.join(served, "by-host/gimel/ipxe"), "#!ipxe\nexit\n");
    writeFileSync(path.join(served, "by-host/gimel/notes.txt"), "mine\n");
    const human = await cli(["verify"], root);
    expect(human.code).toBe(1);
    expect(human.stderr.split("\n").filter((l) => l.includes("[local]"))).toEqual([
      "warning: [local] missing: boot.ipxe",
      "warning: [local] changed on the target: by-host/gimel/ipxe",
      "warning: [local] not written by netbuild: by-host/gimel/notes.txt",
      "warning: [local] host gimel: served class (none), but the inventory says class other",
      "warning: [local] host gimel: stale parameters: lacks hostname=gimel, lacks bar=2",
      "warning: [local] host aleph: served, but in no host file of the inventory (a deploy removes it)",
      "warning: [local] host aleph: MAC 52:54:00:00:00:01 is served (it leads to aleph), but no host of the inventory has it (a deploy removes it)",
    ]);
    expect(human.stdout).toContain("local: all 2 hosts of the inventory checked: 1 served as the inventory says, 1 not; 1 host script and 1 MAC served that the inventory does not have\n");
    // Drift alone (the inventory as deployed) fails too, whatever mix of it.
    const drift = copyWith();
    writeFileSync(path.join(drift, "served/by-class/demo/extra"), "x");
    const { run, result } = await verify(drift);
    expect([run.code, result.ok, result.targets[0]!.hosts.problems]).toEqual([1, false, []]);
    const mixed = copyWith({ "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [foo=1]\n' });
    writeFileSync(path.join(mixed, "served/by-class/demo/extra"), "x");
    expect((await verify(mixed)).result.ok).toBe(false);
    const both = copyWith();
    rmSync(path.join(both, "served/boot.ipxe"));
    writeFileSync(path.join(both, "served/by-class/demo/ipxe"), "#!ipxe\nexit\n");
    expect((await verify(both)).result.ok).toBe(false);
  });

  it("nothing deployed yet: says so (exit 1)", async () => {
    const root = copyWith();
    rmSync(path.join(root, "served"), { recursive: true });
    const r = await cli(["verify"], root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nothing has been deployed to ${path.join(root, "served")}`);
  });

  it("--http: each machine's chain, kernel, initrd and command line as it boots; the URL without its slash; the unknown MAC one no host has", async () => {
    // A host with the first MAC verify would take for an unknown machine: it takes the next one.
    const { by } = await machines({ "hosts/dalet.yaml": 'class: demo\nmac: "02:00:00:00:00:00"\n' }, [run("build"), run("deploy", "--yes")]);
    const kernel = by["bet"]!.kernel!;
    expect(kernel).toMatch(/^by-class\/demo\/[0-9a-z]{32}\/kernel$/);
    expect(by["bet"]).toEqual({
      outcome: "boot",
      problems: [],
      notes: [],
      mac: "52-54-00-00-00-02",
      scripts: ["boot.ipxe", "by-mac/52-54-00-00-00-02/ipxe", "by-class/demo/ipxe"],
      kernel,
      initrd: expect.stringMatching(/^by-class\/demo\/[0-9a-z]{32}\/initrd$/),
      cmdline: ["initrd=initrd", "console=ttyS0", "hostname=bet", FLAG, "homelab.provision_id=r1"],
    });
    expect(by["unknown"]).toEqual({ outcome: "exit", problems: [], notes: [], mac: "02-00-00-00-00-01", scripts: ["boot.ipxe", "by-mac/02-00-00-00-00-01/ipxe (404)"], cmdline: [] });
  });

  it("--http refuses what is not an http(s) URL (exit 2), and needs a built tree to compare with (exit 1)", async () => {
    const root = copyWith();
    for (const url of ["ftp://boot/x/", "xhttp://boot/x/", "not a url"]) {
      const r = await cli(["verify", "--http", url], root);
      expect([r.code, r.stderr], url).toEqual([2, `netbuild: --http ${url} is not an http(s) URL\n  hint: the URL of the served tree, e.g. http://boot.example.org/netboot/\n`]);
    }
    rmSync(path.join(root, "out"), { recursive: true });
    const r = await cli(["verify", "--http", "http://127.0.0.1:9/"], root);
    expect([r.code, r.stderr]).toEqual([1, "netbuild: out is not a built tree: there is nothing to compare the boot server with\n  hint: run `netbuild build`\n"]);
  });
});

// A Talos host: its command line must carry exactly its own talos.config=, and the config that URL
// serves must be the one built. A fixture Image Factory (a folder over HTTP, serving the demo kernel
// and initrd as the schematic's artifacts) stands in for factory.talos.dev, which cannot be reached here.
describe.skipIf(notHere)("verify --http: a Talos host's machine config, fetched where its command line says", () => {
  const schematic = "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c";
  let factory: StaticServer;
  let talosRoot: string;
  const site = (configBaseUrl: string) => `talos:\n  factory: ${factory.url}\n  configBaseUrl: ${configBaseUrl}\n  baseConfigs: { worker: secrets/worker.yaml }\ntargets:\n  local: served\n`;

  beforeAll(async () => {
    factory = await serveFactory(tempDir(), [{ schematic, version: "v1.12.2", kernel: readFileSync(DEMO_KERNEL), initramfs: readFileSync(DEMO_INITRD), cmdline: "talos.platform=metal console=tty0" }]);
    talosRoot = inventory({
      "netbuild.yaml": site("http://boot.invalid"),
      "classes/tw.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  schematic:\n    customization:\n      extraKernelArgs: [noapic, nolapic]\n  machine:\n    role: worker\n",
      "hosts/tav.yaml": 'class: tw\nmac: "52:54:00:a1:00:09"\n',
      "secrets/worker.yaml": readFileSync(path.join(REPO, "test/fixtures/talos/worker.yaml"), "utf8"),
    });
    await run("pin")(talosRoot);
  }, 120_000);
  afterAll(() => factory?.close());

  /** The Talos site built and deployed with talos.config= under `deployedAt` (a function of the served folder's URL), then `after` taken; verify --http's view of tav. */
  async function tav(deployedAt: (url: string) => string, after: ((root: string, url: string) => Promise<void>)[] = []): Promise<{ code: number; machine: Machine }> {
    const root = tempDir();
    cpSync(talosRoot, root, { recursive: true, verbatimSymlinks: true });
    mkdirSync(path.join(root, "served"));
    const server = await serveFolder(path.join(root, "served"));
    try {
      writeFileSync(path.join(root, "netbuild.yaml"), site(deployedAt(server.url)));
      for (const step of [run("build"), run("deploy", "--yes")]) await step(root);
      for (const step of after) await step(root, server.url);
      const { run: r, result } = await verify(root, "--http", server.url);
      return { code: r.code, machine: result.http!.machines.find((m) => m.host === "tav")! };
    } finally {
      await server.close();
    }
  }

  it("served as built: talos.config= names the served tree, and the config there is the built one", async () => {
    const { code, machine } = await tav((url) => url);
    expect(machine.problems).toEqual([]);
    expect(machine.cmdline.filter((a) => a.startsWith("talos.config="))).toHaveLength(1);
    expect(code).toBe(0);
  });

  it("a config changed on the server, one not served where the command line says, and a command line naming another URL than the inventory's", async () => {
    const changed = await tav((url) => url, [async (root) => writeFileSync(path.join(root, "served/by-host/tav/talos.yaml"), readFileSync(path.join(root, "served/by-host/tav/talos.yaml"), "utf8").replace("hostname: tav", "hostname: intruder"))]);
    expect(changed.machine.problems).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/by-host\/tav\/talos\.yaml \(its machine config\) is not the one in the built tree$/)]);
    expect(changed.code).toBe(1);
    const missing = await tav((url) => `${url}/wrong`);
    expect(missing.machine.problems).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/wrong\/by-host\/tav\/talos\.yaml \(its machine config\): HTTP 404$/)]);
    // Deployed with one URL, the inventory then says another (built, not deployed).
    const moved = await tav((url) => url, [async (root, url) => writeFileSync(path.join(root, "netbuild.yaml"), site(`${url}/new`)), async (root) => run("build")(root)]);
    expect(moved.machine.problems).toEqual([
      expect.stringMatching(/^the kernel command line has talos\.config=http:\/\/127\.0\.0\.1:(\d+)\/by-host\/tav\/talos\.yaml, and only talos\.config=http:\/\/127\.0\.0\.1:\1\/new\/by-host\/tav\/talos\.yaml was expected$/),
      expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/new\/by-host\/tav\/talos\.yaml \(its machine config\): HTTP 404$/),
    ]);
    // A config URL nothing answers at (another server than the tree's, down): said for the machine, and the rest still checked.
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const down = await tav(() => `http://127.0.0.1:${closed}`);
    expect(down.machine.problems).toEqual([`http://127.0.0.1:${closed}/by-host/tav/talos.yaml (its machine config): cannot fetch http://127.0.0.1:${closed}/by-host/tav/talos.yaml: connect ECONNREFUSED 127.0.0.1:${closed}`]);
    expect(down.code).toBe(1);
  });
});

describe.skipIf(notHere)("verify: several targets, and what --http hashes", () => {
  it("one target drifted of two fails the verify", async () => {
    const root = copyWith({ "netbuild.yaml": "targets:\n  local: served\n  second: served2\n" });
    await run("deploy", "--yes", "--target", "second")(root);
    expect((await verify(root)).result.ok).toBe(true);
    writeFileSync(path.join(root, "served2/by-host/extra"), "x");
    const { run: r, result } = await verify(root);
    expect([r.code, result.ok, result.targets.map((t) => t.name)]).toEqual([1, false, ["local", "second"]]);
  });

  it("--http: each problem also said on stderr by MAC and host; every kernel and initrd hashed once, their bytes counted", async () => {
    const root = copyWith({ "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n' });
    const server = await serveFolder(path.join(root, "served"));
    try {
      const r = await cli(["verify", "--http", server.url, "--json"], root);
      expect(r.stderr).toBe(`warning: 52-54-00-00-00-02 (bet): the kernel command line holds ${FLAG}, but bet does not set provision.disks: ITS DISKS WOULD BE WIPED\n`);
      // demo's kernel and initrd (12 bytes each), other's (13 each): each counted once, though two hosts boot demo.
      expect((JSON.parse(r.stdout) as { http: { bytesChecked: number } }).http.bytesChecked).toBe(50);
      const unknown = copyWith({ "netbuild.yaml": UNKNOWN_DEMO });
      await run("build")(unknown);
      const said = await cli(["verify", "--http", server.url], unknown);
      expect(said.stderr).toContain("warning: 02-00-00-00-00-00 (unknown machine): an unknown machine (02-00-00-00-00-00) boots nothing, but unknownMachines says class demo\n");
    } finally {
      await server.close();
    }
  });

  it("--http: a class rebuilt twice, not deployed: what is served is compared with the build (by size, and by hash at the same size) even once out/ no longer holds it", async () => {
    const root = copyWith({ "classes/demo/kernel": "demo KERNEL\n" });
    await run("build")(root);
    writeFileSync(path.join(root, "classes/demo/kernel"), "DEMO kernel\n");
    await run("build")(root);
    const server = await serveFolder(path.join(root, "served"));
    try {
      const { result } = await verify(root, "--http", server.url);
      const problems = result.http!.machines.find((m) => m.host === "aleph")!.problems;
      const sha = createHash("sha256").update("DEMO kernel\n").digest("hex");
      expect(problems).toEqual([KERNEL_MOVED, expect.stringMatching(new RegExp(`^by-class/demo/\\w{32}/kernel: sha256 [0-9a-f]{64} served, ${sha} expected$`))]);
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(notHere)("verify: a target in copy mode (by-mac/<mac>/ipxe a copy of the host's script)", () => {
  it("a MAC added leads nowhere; a removed host's copies are served for no host", async () => {
    const root = copyWith({ "netbuild.yaml": "links: copy\ntargets:\n  local: served\n" });
    for (const step of [run("build"), run("deploy", "--yes")]) await step(root);
    expect((await hostProblems(root)).hosts).toEqual({});
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmacs: ["52:54:00:00:00:01", "52:54:00:00:00:0a"]\n');
    rmSync(path.join(root, "hosts/gimel.yaml"));
    expect(await hostProblems(root)).toEqual({
      code: 1,
      checked: 2,
      hosts: {
        aleph: ["MAC 52:54:00:00:00:0a does not lead to its script"],
        "gimel (orphan)": ["served, but in no host file of the inventory (a deploy removes it)", "MAC 52:54:00:00:00:03 is served (it leads to gimel), but no host of the inventory has it (a deploy removes it)"],
      },
    });
  });
});
