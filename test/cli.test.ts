// The CLI as users run it: `node bin/netbuild.js` in a child process (what `npx netbuild` runs),
// exit codes 0/1/2, --json on stdout, and usage errors.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, cliProcess, exampleInventory, inventory, REPO } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

describe("netbuild CLI", () => {
  afterAll(cleanupTempDirs);

  it("runs from bin/ with --help and lists its commands", async () => {
    const r = await cliProcess(["--help"], exampleInventory());
    expect(r.code).toBe(0);
    for (const c of ["generate", "build", "plan", "schema"]) expect(r.stdout).toContain(c);
  });

  it("with --json, --help (of netbuild, of a command, `help CMD`) and --version print one JSON document holding what they print without it", async () => {
    const root = exampleInventory();
    for (const args of [["--help"], ["deploy", "--help"], ["help", "plan"], ["-h"]]) {
      const text = await cli(args, root);
      expect(text.code, args.join(" ")).toBe(0);
      expect(text.stdout, args.join(" ")).toMatch(/^Usage: netbuild /);
      const json = await cli([...args, "--json"], root);
      expect(json.code, args.join(" ")).toBe(0);
      expect(json.stdout, `${args.join(" ")} --json`).toBe(`${JSON.stringify({ ok: true, help: text.stdout }, null, 2)}\n`);
    }
    const version = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).version as string;
    expect((await cli(["--version"], root)).stdout).toBe(`${version}\n`);
    // As users run it (a child process), --json before or after.
    for (const args of [["--version", "--json"], ["--json", "-V"]]) {
      const r = await cliProcess(args, root);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${JSON.stringify({ ok: true, version }, null, 2)}\n`);
    }
    const help = await cliProcess(["deploy", "--json", "--help"], root);
    expect(help.code, help.stderr).toBe(0);
    expect(JSON.parse(help.stdout)).toEqual({ ok: true, help: expect.stringContaining("Usage: netbuild deploy [options]") });
  });

  it("plans the example inventory, announcing the host that will wipe its disks first and loudly", async () => {
    const r = await cliProcess(["plan"], exampleInventory());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("!!! 1 host will FORMAT (WIPE) ITS DISKS on the next boot (once per provisioning id):\n!!!   demo-fresh  id 2026-11-29  (provision.disks: true in hosts/demo.yaml)");
    expect(r.stdout).toMatch(/!!demo-fresh +demo +52:54:00:12:34:56 +hostname=demo-fresh homelab\.provision_disks=true homelab\.provision_id=2026-11-29 demo\.role=fresh/);
    expect(r.stdout).toContain("unknown machines: strict: boot nothing");
    // The example NixOS classes' placeholder key: nobody could log in with it.
    expect(r.stderr).toContain("ssh.authorizedKeys in classes/ganeti-node.yaml, classes/navidrome.yaml still holds the example's placeholder key (AAAAC3…AAAA REPLACE-ME): nobody can log in with it");
  });

  it("plans the example's Talos host: its machine config URL, its install disk, and that configs hold secrets", async () => {
    const r = await cli(["plan"], exampleInventory());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("dalet  talos-worker  52:54:00:a1:00:02  hostname=dalet talos.config=https://boot.homelab.tel/nixos/by-host/dalet/talos.yaml");
    expect(r.stdout).toContain("talos machine configs (cluster secrets):\n  dalet  worker  https://boot.homelab.tel/nixos/by-host/dalet/talos.yaml  installs onto /dev/sda");
    expect(r.stderr).toContain("the machine configs of 1 Talos host hold cluster secrets");
  });

  it("plans the install disk a Talos host's rendered config will hold, from its base config when nothing else sets it", async () => {
    const root = exampleInventory();
    const cls = path.join(root, "classes/talos-worker.yaml");
    writeFileSync(cls, readFileSync(cls, "utf8").replace("    installDisk: /dev/sda\n", ""));
    const missingBase = await cli(["plan"], root);
    expect(missingBase.code, missingBase.stderr).toBe(0);
    expect(missingBase.stdout).toContain("installs onto unknown: its base config is missing");
    expect(missingBase.stderr).toContain("the base config secrets/talos/worker.yaml does not exist");
    mkdirSync(path.join(root, "secrets/talos"), { recursive: true });
    writeFileSync(path.join(root, "secrets/talos/worker.yaml"), readFileSync(path.join(REPO, "test/fixtures/talos/worker.yaml"), "utf8").replace("disk: /dev/sda", "disk: /dev/vdb"));
    const r = await cli(["plan"], root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("https://boot.homelab.tel/nixos/by-host/dalet/talos.yaml  installs onto /dev/vdb");
    expect(r.stderr).toContain("!!!   dalet  onto /dev/vdb");
  });

  it("prints a Talos class's schematic ID and canonical YAML (talos schematic)", async () => {
    const r = await cli(["talos", "schematic", "talos-worker", "--json"], exampleInventory());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.yaml).toBe("customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n            - siderolabs/util-linux-tools\n");
    expect(out.id).toBe(createHash("sha256").update(out.yaml).digest("hex"));
    expect(out.urls.cmdline).toBe(`https://factory.talos.dev/image/${out.id}/v1.12.2/cmdline-metal-amd64`);
    const human = await cli(["talos", "schematic", "talos-worker"], exampleInventory());
    expect(human.stdout).toContain(`# class talos-worker: schematic ${out.id}\n`);
    const notTalos = await cli(["talos", "schematic", "demo"], exampleInventory());
    expect(notTalos.code).toBe(2);
    expect(notTalos.stderr).toContain("class demo is a prebuilt class, not a Talos class");
  });

  it("gives --json results on stdout, and errors as JSON too", async () => {
    const ok = await cli(["plan", "--json"], exampleInventory());
    const plan = JSON.parse(ok.stdout);
    expect(plan.wipes).toEqual([{ name: "demo-fresh", file: "hosts/demo.yaml", id: "2026-11-29", force: false }]);
    expect(plan.hosts.find((h: { name: string }) => h.name === "bet").macs).toEqual(["0c:c4:7a:1e:52:20", "0c:c4:7a:1e:52:21"]);
    const bad = await cli(["plan", "--json"], inventory({ "hosts/a.yaml": "class: x\n" }));
    expect(bad.code).toBe(2);
    const err = JSON.parse(bad.stdout);
    expect(err).toMatchObject({ ok: false, code: "INVENTORY_INVALID" });
    expect(err.issues[0].where).toMatchObject({ file: "hosts/a.yaml", line: 1, field: "hosts.a" });
  });

  it("points at the right line of a file it loaded from the parse cache", async () => {
    const root = inventory({
      "classes/c.yaml": "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n",
      "classes/k": "k\n",
      "classes/i": "i\n",
      "hosts/rack.yaml": '# rack 1\nhosts:\n  aleph:\n    class: c\n    mac: "52:54:00:00:00:01"\n',
    });
    expect((await cli(["plan"], root)).code).toBe(0);
    expect(existsSync(path.join(root, ".netbuild/cache/yaml.json"))).toBe(true);
    // rack.yaml is now read from the cache; the new file repeats its MAC.
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: c\nmac: "52-54-00-00-00-01"\n');
    const r = await cli(["plan"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("hosts/rack.yaml:5:10  hosts.aleph.mac: MAC 52:54:00:00:00:01 is also used by host bet (hosts/bet.yaml:2)");
    expect(r.stderr).toContain("hosts/bet.yaml:2:6  hosts.bet.mac: MAC 52:54:00:00:00:01 is also used by host aleph (hosts/rack.yaml:5)");
  });

  it("exits 2 on usage errors: an unknown option, an unknown --class, a root with no inventory", async () => {
    const root = exampleInventory();
    expect((await cli(["build", "--klass", "demo"], root)).code).toBe(2);
    const unknown = await cli(["build", "--class", "demoo"], root);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('netbuild: unknown class "demoo"');
    const empty = await cli(["plan", "--root", path.join(root, "hosts")], root);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("has neither classes/ nor hosts/");
  });

  it.skipIf(missing({ commands: ["nix-build"] }))("exits 1 with Nix's own error text when a build fails", async () => {
    const root = inventory({
      "classes/broken.yaml": "kind: prebuilt\nkernel: { url: 'http://127.0.0.1:9/nothing-listens-here', hash: sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU= }\ninitrd: { path: ./i }\n",
      "classes/i": "x",
      "hosts/a.yaml": 'class: broken\nmac: "52:54:00:00:00:01"\n',
    });
    const r = await cli(["build"], root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("netbuild: nix-build of broken failed");
    expect(r.stderr).toContain("$ nix-build");
    expect(r.stderr).toMatch(/error: .*(unable to download|Connection refused|Couldn't connect)/i);
  });

  it.skipIf(missing({ commands: ["nix-build"] }))("warns when a host declares less RAM than its class's image needs", async () => {
    const root = inventory({
      "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n",
      "classes/k": "k",
      "classes/i": "i",
      "hosts/tiny.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\nram: 256MiB\n',
    });
    const r = await cli(["build"], root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: host tiny \(hosts\/tiny\.yaml\) declares 256 MiB of RAM; class demo needs about 512 MiB/);
  });

  it("prints JSON Schemas of the inventory files for editors", async () => {
    const r = await cli(["schema"], exampleInventory());
    const schemas = JSON.parse(r.stdout);
    expect(Object.keys(schemas)).toEqual(["site", "class", "host", "hostsFile"]);
    expect(schemas.host.additionalProperties).toBe(false);
  });
});
