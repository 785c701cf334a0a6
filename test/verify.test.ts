// `netbuild verify` accounts for every host of the inventory, whatever this checkout has built: each
// way what a target serves can differ from the inventory is said per host (and per machine with
// --http), and any of them is a failed verify. One site is built and deployed once to a local folder
// target; each case works on a copy of it whose inventory was edited afterwards (what a teammate's
// checkout, or an edit not yet deployed, looks like to verify). In this process (so the mutation run
// counts these tests), with real nix-build, a real folder target and a real HTTP server for --http.
import { cpSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, tempDir, type CliRun } from "./support/inventory.ts";
import { serveFolder } from "./support/http.ts";
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
  http?: { machines: { mac: string; host?: string; ok: boolean; outcome: string; problems: string[]; notes: string[] }[] };
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
async function machines(edits: Record<string, string | null>, steps: ((root: string) => Promise<void>)[] = []): Promise<{ code: number; by: Record<string, { outcome: string; problems: string[]; notes: string[] }> }> {
  const root = copyWith(edits);
  for (const step of steps) await step(root);
  const server = await serveFolder(path.join(root, "served"));
  try {
    const { run, result } = await verify(root, "--http", server.url);
    return { code: run.code, by: Object.fromEntries(result.http!.machines.map((m) => [m.host ?? "unknown", { outcome: m.outcome, problems: m.problems, notes: m.notes }])) };
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

describe.skipIf(notHere)("verify --http: every MAC of the inventory, and one of no host, as the machines boot", () => {
  it("the inventory as deployed: each host boots its class, the unknown machine nothing; exit 0", async () => {
    const { code, by } = await machines({});
    expect(by).toEqual({
      aleph: { outcome: "boot", problems: [], notes: [] },
      bet: { outcome: "boot", problems: [], notes: [] },
      gimel: { outcome: "boot", problems: [], notes: [] },
      unknown: { outcome: "exit", problems: [], notes: [] },
    });
    expect(code).toBe(0);
  });

  it.each<[string, Record<string, string | null>, ((root: string) => Promise<void>)[], Record<string, string[]>]>([
    ["a wipe dropped from the inventory, still served", { "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n' }, [], { bet: [`the kernel command line holds ${FLAG}, but bet does not set provision.disks: ITS DISKS WOULD BE WIPED`] }],
    ["a parameter added to a host, not deployed", { "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [foo=1]\n' }, [], { aleph: ["the kernel command line lacks foo=1"] }],
    ["a host added, not deployed", { "hosts/dalet.yaml": 'class: demo\nmac: "52:54:00:00:00:04"\n' }, [], { dalet: ["not served: the boot server does not know this MAC (boots nothing), but the inventory has it as dalet of class demo"] }],
    ["a class's parameter changed and built, not deployed", { "classes/demo.yaml": prebuilt("demo", "console=ttyS1") }, [run("build")], { aleph: ["the kernel command line lacks the class parameter console=ttyS1"], bet: ["the kernel command line lacks the class parameter console=ttyS1"] }],
    ["unknown machines given a class and built, not deployed", { "netbuild.yaml": UNKNOWN_DEMO }, [run("build")], { unknown: ["an unknown machine (02-00-00-00-00-00) boots nothing, but unknownMachines says class demo"] }],
    ["unknown machines given a class and deployed, then strict again and built", {}, [write("netbuild.yaml", UNKNOWN_DEMO), run("build"), run("deploy", "--yes"), write("netbuild.yaml", STRICT), run("build")], { unknown: ["an unknown machine (02-00-00-00-00-00) must boot nothing, but the chain ends in boot"] }],
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
    expect(by["gimel"]).toEqual({ outcome: "boot", problems: [], notes: ["class other is not built here: its kernel and initrd are checked for being served, not against a build"] });
    expect(by["aleph"]).toEqual({ outcome: "boot", problems: [], notes: [] });
    expect(by["unknown"]).toEqual({ outcome: "exit", problems: [], notes: ["unknown machines boot nothing: unknownMachines names class third, which is not built here and which the boot server does not serve to them"] });
    expect(code).toBe(0);
  });
});
