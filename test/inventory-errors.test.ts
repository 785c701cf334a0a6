// Inventory errors, all of them and each in its place: one run reports every mistake of every file
// (a misspelt key hides nothing next to it, nor the rules across hosts), a MAC two hosts share is
// reported at each host's entry naming the other, an error in a list points at its entry, and
// hosts written without `hosts:` get one error that says so. Each case runs the CLI as a user
// would, exits 2, names exactly these file:line:col positions, and writes nothing.
import { existsSync, readdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatIssue, type Issue } from "../src/errors.ts";
import { cleanupTempDirs, cli, inventory, treeChecksum } from "./support/inventory.ts";

const DEMO: Record<string, string> = {
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n",
  "classes/demo/kernel": "not really a kernel\n",
  "classes/demo/initrd": "not really an initrd\n",
};

/** The first line of each error (`file:line:col  field: message`), in the order printed. */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^\S+:\d+:\d+ {2}|^\S+ {2}/.test(l) && !l.includes("  warning: ") && !l.startsWith("netbuild: "));
}

/**
 * build, generate and plan in a root with `files`: each exits 2 with exactly `errors` (and the
 * count in the summary), --json carries the same issues, and the root is left as it was: no
 * out/, no .netbuild/.
 */
async function expectErrors(files: Record<string, string>, errors: string[]): Promise<string> {
  const root = inventory({ ...DEMO, ...files });
  const before = treeChecksum(root);
  let stderr = "";
  for (const args of [["build"], ["generate"], ["plan"]]) {
    const r = await cli(args, root);
    const what = `netbuild ${args.join(" ")}:\n${r.stderr}`;
    expect(r.code, what).toBe(2);
    expect(r.stderr, what).not.toMatch(/internal error|^\s+at /m);
    expect(errorLines(r.stderr), what).toEqual(errors);
    expect(r.stderr, what).toContain(`netbuild: the inventory has ${errors.length} error${errors.length === 1 ? "" : "s"}; nothing was written`);
    stderr = r.stderr;
  }
  const json = await cli(["plan", "--json"], root);
  expect(json.code).toBe(2);
  const out = JSON.parse(json.stdout) as { ok: boolean; code: string; issues: Issue[] };
  expect(out).toMatchObject({ ok: false, code: "INVENTORY_INVALID" });
  const shown = out.issues.filter((i) => i.severity === "error").map((i) => formatIssue(i).split("\n")[0]);
  expect(shown).toEqual(errors);
  expect(existsSync(path.join(root, "out")), "out/ was written").toBe(false);
  expect(existsSync(path.join(root, ".netbuild")), ".netbuild/ was written").toBe(false);
  expect(treeChecksum(root), "the inventory root changed").toBe(before);
  return stderr;
}

describe("inventory errors: all of them, in the right place", () => {
  afterAll(cleanupTempDirs);

  describe("every mistake of every file in one run", () => {
    it("reports an unknown key in one host, a bad MAC in another and a bad kernel parameter in a third, and a host's unknown key beside its bad MAC", async () => {
      await expectErrors(
        {
          "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disk: true }\n',
          "hosts/b.yaml": 'class: demo\nmac: "52:54:00:00:00:0g"\n',
          "hosts/c.yaml": 'class: demo\nmac: "52:54:00:00:00:03"\nkernelParams: [quiet, "a b"]\n',
          "hosts/d.yaml": 'class: demo\nmac: "52:54:00:00:00:0z"\nprovison: { disks: true }\n',
        },
        [
          'hosts/a.yaml:3:14  hosts.a.provision.disk: unknown key "disk"',
          'hosts/b.yaml:2:6  hosts.b.mac: "52:54:00:00:00:0g" is not a MAC address',
          'hosts/c.yaml:3:23  hosts.c.kernelParams[1]: "a b" contains a space',
          'hosts/d.yaml:2:6  hosts.d.mac: "52:54:00:00:00:0z" is not a MAC address',
          'hosts/d.yaml:3:1  hosts.d.provison: unknown key "provison"',
        ],
      );
    });

    it("still checks a host with an unknown key against the classes and the other hosts (unknown class, shared MAC), and each host of a file of many", async () => {
      await expectErrors(
        {
          "hosts/c.yaml": 'class: demo\nmac: "52:54:00:00:00:03"\nkernelParams: ["a b"]\n',
          "hosts/e.yaml": 'class: demoo\nmac: "52-54-00-00-00-03"\nprovison: { disks: true }\n',
          "hosts/many.yaml": 'hosts:\n  f:\n    class: demo\n    mac: "52:54:00:00:00:06"\n    ipp: 10.0.0.6\n  g:\n    class: demo\n    macs: ["52:54:00:00:00:07", "52:54:00:00:00:0x"]\n    color: red\n',
        },
        [
          'hosts/c.yaml:2:6  hosts.c.mac: MAC 52:54:00:00:00:03 is also used by host e (hosts/e.yaml:2)',
          'hosts/c.yaml:3:16  hosts.c.kernelParams[0]: "a b" contains a space',
          'hosts/e.yaml:1:8  hosts.e.class: unknown class "demoo"',
          'hosts/e.yaml:2:6  hosts.e.mac: MAC 52:54:00:00:00:03 is also used by host c (hosts/c.yaml:2)',
          'hosts/e.yaml:3:1  hosts.e.provison: unknown key "provison"',
          'hosts/many.yaml:5:5  hosts.f.ipp: unknown key "ipp"',
          'hosts/many.yaml:8:33  hosts.g.macs[1]: "52:54:00:00:00:0x" is not a MAC address',
          'hosts/many.yaml:9:5  hosts.g.color: unknown key "color"',
        ],
      );
    });

    it("reads on past a value of the wrong type, a misspelt hostname, an unknown key beside `hosts:` and a repeated key, without errors that only follow from them", async () => {
      await expectErrors(
        {
          // `mac` is a number (zod's error) and `class` a list: neither is also "no MAC" or "unknown class".
          "hosts/a.yaml": 'class: [demo]\nmac: 525400000001\nkernelParams: [hostname=a]\n',
          "hosts/many.yaml": 'defaults: { class: demo }\nhosts:\n  Bee:\n    class: demo\n    mac: "52:54:00:00:00:1g"\n  c:\n    class: demo\n    mac: "52:54:00:00:00:0c"\n    mac: "52:54:00:00:00:0q"\n',
        },
        [
          "hosts/a.yaml:1:8  hosts.a.class: expected string, got a list of 1 entry",
          "hosts/a.yaml:2:6  hosts.a.mac: expected string, got number 525400000001",
          "hosts/a.yaml:3:16  hosts.a.kernelParams[0]: \"hostname=a\": netbuild sets hostname= from the host's name",
          'hosts/many.yaml:1:1  defaults: unknown key "defaults"',
          'hosts/many.yaml:3:3  hosts.Bee: "Bee" has upper-case letters',
          'hosts/many.yaml:5:10  hosts.Bee.mac: "52:54:00:00:00:1g" is not a MAC address',
          'hosts/many.yaml:9:5  the key "mac" appears twice in the same mapping',
          'hosts/many.yaml:9:10  hosts.c.mac: "52:54:00:00:00:0q" is not a MAC address',
        ],
      );
    });

    it("reports a class's unknown key beside its bad kernel parameters and wipe flag, and the site's beside its bad target, without Talos hosts blamed for the site's mistakes", async () => {
      const stderr = await expectErrors(
        {
          "netbuild.yaml": "flagprefix: homelab\ntargets:\n  Boot: /srv/tftp\ntalos:\n  configBaseUrl: https://boot.example/tree?x=1\n  baseConfigs: { worker: ../../worker.yaml }\n",
          "classes/demo.yaml": `${DEMO["classes/demo.yaml"]!}kernelparams: [quiet]\nkernelParams: [quiet, "a b", hostname=x]\nprovision: { disks: true }\n`,
          "classes/t.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  machine: { role: worker }\n",
          "hosts/t1.yaml": 'class: t\nmac: "52:54:00:00:00:11"\n',
        },
        [
          'classes/demo.yaml:4:1  classes.demo.kernelparams: unknown key "kernelparams"',
          'classes/demo.yaml:5:23  classes.demo.kernelParams[1]: "a b" contains a space',
          "classes/demo.yaml:5:30  classes.demo.kernelParams[2]: \"hostname=x\": netbuild sets hostname= from the host's name",
          "classes/demo.yaml:6:12  classes.demo.provision: provisioning flags cannot be set on a class",
          'netbuild.yaml:1:1  site.flagprefix: unknown key "flagprefix"',
          'netbuild.yaml:3:3  site.targets.Boot: expected a short lower-case name like boot or local (got "Boot")',
          "netbuild.yaml:5:18  site.talos.configBaseUrl: the URL has a query or fragment",
          'netbuild.yaml:6:26  site.talos.baseConfigs.worker: "../../worker.yaml" points outside the inventory root',
        ],
      );
      expect(stderr).not.toContain("hosts/t1.yaml");
    });
  });

  describe("a MAC two hosts share: at each host's entry, naming the other", () => {
    it("reports it in both files, and in both hosts of one file, at the `mac:` line or the `macs:` entry", async () => {
      const stderr = await expectErrors(
        {
          "hosts/a.yaml": '# the first rack\nclass: demo\nmac: "52:54:00:00:00:01"\n',
          "hosts/b.yaml": "class: demo\nip: 10.0.0.2\nmac: 52-54-00-00-00-01\n",
          "hosts/many.yaml": 'hosts:\n  c:\n    class: demo\n    macs:\n      - "52:54:00:00:00:05"\n      - "52:54:00:00:00:07"\n  d:\n    class: demo\n    macs: ["52:54:00:00:00:06", "5254.0000.0007"]\n',
        },
        [
          "hosts/a.yaml:3:6  hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host b (hosts/b.yaml:3)",
          "hosts/b.yaml:3:6  hosts.b.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/a.yaml:3)",
          "hosts/many.yaml:6:9  hosts.c.macs[1]: MAC 52:54:00:00:00:07 is also used by host d (hosts/many.yaml:9)",
          "hosts/many.yaml:9:33  hosts.d.macs[1]: MAC 52:54:00:00:00:07 is also used by host c (hosts/many.yaml:6)",
        ],
      );
      expect(stderr).toContain("hint: each MAC belongs to one host; MACs are compared in any spelling");
    });

    it("names every other host when three share a MAC, and reports a shared IP at both hosts", async () => {
      await expectErrors(
        {
          "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nip: 10.0.0.1\n',
          "hosts/b.yaml": 'class: demo\nmacs: ["52:54:00:00:00:02", "52:54:00:00:00:01"]\n',
          "hosts/c.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nip: 10.0.0.1\n',
        },
        [
          "hosts/a.yaml:2:6  hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host b (hosts/b.yaml:2) and host c (hosts/c.yaml:2)",
          "hosts/a.yaml:3:5  hosts.a.ip: IP 10.0.0.1 is also used by host c (hosts/c.yaml:3)",
          "hosts/b.yaml:2:29  hosts.b.macs[1]: MAC 52:54:00:00:00:01 is also used by host a (hosts/a.yaml:2) and host c (hosts/c.yaml:2)",
          "hosts/c.yaml:2:6  hosts.c.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/a.yaml:2) and host b (hosts/b.yaml:2)",
          "hosts/c.yaml:3:5  hosts.c.ip: IP 10.0.0.1 is also used by host a (hosts/a.yaml:3)",
        ],
      );
    });

    it("names three of the others and counts the rest when many hosts share a MAC, at each host's `mac:` line", async () => {
      await expectErrors(
        {
          "hosts/many.yaml": `hosts:\n${["a", "b", "c", "d", "e", "f"].map((k) => `  ${k}:\n    class: demo\n    mac: "52:54:00:00:00:01"\n`).join("")}`,
        },
        [
          "hosts/many.yaml:4:10  hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host b (hosts/many.yaml:7), host c (hosts/many.yaml:10), host d (hosts/many.yaml:13) and 2 more",
          "hosts/many.yaml:7:10  hosts.b.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/many.yaml:4), host c (hosts/many.yaml:10), host d (hosts/many.yaml:13) and 2 more",
          "hosts/many.yaml:10:10  hosts.c.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/many.yaml:4), host b (hosts/many.yaml:7), host d (hosts/many.yaml:13) and 2 more",
          "hosts/many.yaml:13:10  hosts.d.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/many.yaml:4), host b (hosts/many.yaml:7), host c (hosts/many.yaml:10) and 2 more",
          "hosts/many.yaml:16:10  hosts.e.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/many.yaml:4), host b (hosts/many.yaml:7), host c (hosts/many.yaml:10) and 2 more",
          "hosts/many.yaml:19:10  hosts.f.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/many.yaml:4), host b (hosts/many.yaml:7), host c (hosts/many.yaml:10) and 2 more",
        ],
      );
    });

    it("reports a MAC or address a badly named host shares with another in the same run as the name's error, in a file of many and a file of one", async () => {
      await expectErrors(
        {
          "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nip: 10.0.0.1\n',
          "hosts/many.yaml": 'hosts:\n  Bee:\n    class: demo\n    mac: "52:54:00:00:00:01"\n    ip: 10.0.0.1\n  c:\n    class: demo\n    macs: ["52:54:00:00:00:03", "52:54:00:00:00:02"]\n',
          "hosts/Dee.yaml": "class: demo\nmac: 52-54-00-00-00-02\n",
        },
        [
          'hosts/a.yaml:2:6  hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host "Bee" (hosts/many.yaml:4)',
          'hosts/a.yaml:3:5  hosts.a.ip: IP 10.0.0.1 is also used by host "Bee" (hosts/many.yaml:5)',
          'hosts/Dee.yaml:1:1  hosts.Dee: the host file name: "Dee" has upper-case letters',
          "hosts/Dee.yaml:2:6  hosts.Dee.mac: MAC 52:54:00:00:00:02 is also used by host c (hosts/many.yaml:8)",
          'hosts/many.yaml:2:3  hosts.Bee: "Bee" has upper-case letters',
          "hosts/many.yaml:4:10  hosts.Bee.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/a.yaml:2)",
          "hosts/many.yaml:5:9  hosts.Bee.ip: IP 10.0.0.1 is also used by host a (hosts/a.yaml:3)",
          'hosts/many.yaml:8:33  hosts.c.macs[1]: MAC 52:54:00:00:00:02 is also used by host "Dee" (hosts/Dee.yaml:2)',
        ],
      );
    });

    it("names the other host's file escaped when its name has a line break (that file is checked too, not only refused)", async () => {
      const stderr = await expectErrors(
        {
          "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
          "hosts/rack\nx.yaml": 'hosts:\n  z:\n    class: demo\n    mac: "52:54:00:00:00:01"\n',
        },
        [
          'hosts/a.yaml:2:6  hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host z ("hosts/rack\\nx.yaml":4)',
          '"hosts/rack\\nx.yaml":1:1  hosts: the file name a string of 17 characters on 2 lines has characters netbuild will not write into boot scripts',
          '"hosts/rack\\nx.yaml":4:10  hosts.z.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/a.yaml:2)',
        ],
      );
      expect(stderr).not.toContain("rack\nx");
    });
  });

  describe("an error in a list points at its entry", () => {
    it("points at entry 1 of kernelParams and macs, block and flow lists alike, also after an invalid entry 0", async () => {
      await expectErrors(
        {
          "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams:\n  - quiet\n  - "a b"\n',
          "hosts/b.yaml": 'class: demo\nmacs: ["52:54:00:00:00:02", "52:54:00:00:00:0g"]\nkernelParams: [quiet, "x=$y"]\n',
          "hosts/c.yaml": "class: demo\nmacs:\n  - \"52:54:00:00:00:03\"\n  - 7\n",
          // Entry 0 is invalid: entry 1's error is still at entry 1, not at entry 0.
          "hosts/d.yaml": 'class: demo\nmac: "52:54:00:00:00:04"\nkernelParams:\n  - "a b"\n  - homelab.provision_disks=true\n',
        },
        [
          'hosts/a.yaml:5:5  hosts.a.kernelParams[1]: "a b" contains a space',
          'hosts/b.yaml:2:29  hosts.b.macs[1]: "52:54:00:00:00:0g" is not a MAC address',
          "hosts/b.yaml:3:23  hosts.b.kernelParams[1]: \"x=$y\" contains '$'",
          "hosts/c.yaml:4:5  hosts.c.macs[1]: expected string, got number 7",
          'hosts/d.yaml:4:5  hosts.d.kernelParams[0]: "a b" contains a space',
          'hosts/d.yaml:5:5  hosts.d.kernelParams[1]: "homelab.provision_disks=true" sets a provisioning flag by hand',
        ],
      );
    });

    it("points at the entry of a class's kernelParams and modules, and of a Talos schematic's extraKernelArgs", async () => {
      await expectErrors(
        {
          "classes/demo.yaml": `${DEMO["classes/demo.yaml"]!}kernelParams:\n  - "a b"\n  - hostname=x\n`,
          "classes/n.yaml": "kind: nixos\nmodules:\n  - ./n/configuration.nix\n  - ./n/missing.nix\n",
          "classes/n/configuration.nix": "{ }\n",
          "classes/t.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  schematic:\n    customization:\n      extraKernelArgs:\n        - \"a b\"\n        - -hostname\n",
        },
        [
          'classes/demo.yaml:5:5  classes.demo.kernelParams[0]: "a b" contains a space',
          "classes/demo.yaml:6:5  classes.demo.kernelParams[1]: \"hostname=x\": netbuild sets hostname= from the host's name",
          'classes/n.yaml:4:5  classes.n.modules[1]: "./n/missing.nix" does not exist (looked for "classes/n/missing.nix")',
          'classes/t.yaml:7:11  classes.t.talos.schematic.customization.extraKernelArgs[0]: "a b" contains a space',
          "classes/t.yaml:8:11  classes.t.talos.schematic.customization.extraKernelArgs[1]: \"-hostname\": netbuild sets hostname= from the host's name",
        ],
      );
    });
  });

  describe("hosts written without `hosts:`", () => {
    it("gives one error for several hosts at the top level of a file, with a hint to put them under `hosts:`", async () => {
      const stderr = await expectErrors({ "hosts/rack1.yaml": 'aleph:\n  class: demo\n  mac: "52:54:00:00:00:01"\nbet:\n  class: demo\n  mac: "52:54:00:00:00:02"\n' }, [
        'hosts/rack1.yaml:1:1  hosts: 2 hosts ("aleph", "bet") at the top level of the file, where a host\'s own settings (class, mac, ...) are expected',
      ]);
      expect(stderr).toContain("hint: a file of several hosts puts them under `hosts:`: write `hosts:` as the first line and indent every host below it");
      expect(stderr).not.toContain("unknown key");
    });

    it("gives the same one error for a single host written under its own name", async () => {
      await expectErrors({ "hosts/aleph.yaml": '# aleph\naleph: { class: demo, mac: "52:54:00:00:00:01" }\n' }, [
        'hosts/aleph.yaml:2:1  hosts: a host ("aleph") at the top level of the file, where a host\'s own settings (class, mac, ...) are expected',
      ]);
    });

    it("still reads a host with a misspelt key as one host (an unknown key, not hosts without `hosts:`)", async () => {
      await expectErrors({ "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nextra: { class: demo }\n' }, ['hosts/aleph.yaml:3:1  hosts.aleph.extra: unknown key "extra"']);
    });
  });
});

describe("a tree inside the inventory's own folders", () => {
  // A Talos host's by-host/<host>/talos.yaml written under hosts/ would be read back as a host.
  const HOST = { "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n' };
  const refused = (r: { code: number; stderr: string }, what: string, folder: string) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^netbuild: ${what}: \\S+ is in the inventory's ${folder}/ folder`, "m"));
  };

  it("--out under hosts/ or classes/: refused before anything is built or written", async () => {
    const root = inventory({ ...DEMO, ...HOST });
    refused(await cli(["build", "--out", "hosts/tree"], root), "--out", "hosts");
    refused(await cli(["build", "--out", path.join(root, "classes/demo/tree")], root), "--out", "classes");
    expect(readdirSync(path.join(root, "hosts"))).toEqual(["aleph.yaml"]);
    expect(readdirSync(path.join(root, "classes/demo")).sort()).toEqual(["initrd", "kernel"]);
  });

  it("out: through a symlink into hosts/: refused, nothing written there", async () => {
    const root = inventory({ ...DEMO, ...HOST, "hosts/sub/.keep": "", "netbuild.yaml": "out: tree\n" });
    symlinkSync("hosts/sub", path.join(root, "tree"));
    refused(await cli(["build"], root), "out \\(netbuild.yaml\\)", "hosts");
    expect(readdirSync(path.join(root, "hosts/sub"))).toEqual([".keep"]);
  });

  it("a local deploy target under hosts/: refused", async () => {
    const root = inventory({ ...DEMO, ...HOST, "netbuild.yaml": "targets:\n  local: hosts/served\n" });
    refused(await cli(["deploy", "--target", "local", "--yes"], root), "target local", "hosts");
    expect(existsSync(path.join(root, "hosts/served"))).toBe(false);
  });
});
