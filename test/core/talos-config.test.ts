// Rendered Talos machine configs: one golden file per feature (test/golden/talos/), from base
// configs shaped like `talosctl gen config` output (test/fixtures/talos/, fake secrets), through
// the real inventory loader. Goldens are reviewed by eye when they change:
// NETBUILD_UPDATE_GOLDEN=1 rewrites them.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadInventory, type Host, type TalosClass, type TalosHost } from "../../src/core/inventory.ts";
import { renderMachineConfig, type ConfigFile } from "../../src/core/talos-config.ts";
import { readInventorySource } from "../../src/adapters/inventory-files.ts";
import { cleanupTempDirs, inventory, REPO } from "../support/inventory.ts";
import { expectGolden } from "../support/golden.ts";

const FIXTURES = path.join(REPO, "test/fixtures/talos");

const SITE = "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs:\n    worker: secrets/worker.yaml\n    controlplane: secrets/controlplane.yaml\n";

interface Setup {
  cls?: string;
  host: string;
  version?: string;
  files?: Record<string, string>;
  worker?: string;
}

async function render(s: Setup) {
  const version = s.version ?? "v1.12.2";
  const root = inventory({
    "netbuild.yaml": SITE,
    "classes/talos.yaml": `kind: talos\ntalos:\n  version: ${version}\n${s.cls ?? ""}`,
    "hosts/node1.yaml": `class: talos\nmac: "52:54:00:a1:00:02"\n${s.host}`,
    "secrets/worker.yaml": readFileSync(path.join(FIXTURES, s.worker ?? "worker.yaml"), "utf8"),
    "secrets/controlplane.yaml": readFileSync(path.join(FIXTURES, "controlplane.yaml"), "utf8"),
    ...s.files,
  });
  const loaded = loadInventory(await readInventorySource(root));
  if (!loaded.ok) return { loadIssues: loaded.issues.filter((i) => i.severity === "error") };
  const host = loaded.inventory.hosts[0] as Host & { talos: TalosHost };
  const cls = loaded.inventory.classes[0] as TalosClass;
  const read = (rel: string): ConfigFile => ({ file: rel, text: readFileSync(path.join(root, rel), "utf8") });
  return { result: renderMachineConfig(host, cls, read(loaded.inventory.site.talosBaseConfigs[host.talos.role]!), host.talos.patches.map(read)) };
}

/** The output compared with its golden file (test/support/golden.ts), once it reads as valid multi-document YAML. */
function golden(name: string, text: string): void {
  // Whatever the output says, it must be valid multi-document YAML (checked before any golden is written from it).
  for (const d of parseAllDocuments(text) as unknown as { errors: unknown[] }[]) expect(d.errors).toEqual([]);
  expectGolden(`talos/${name}.yaml`, text);
}

async function rendered(s: Setup): Promise<string> {
  const r = await render(s);
  if (!r.result) throw new Error(JSON.stringify(r.loadIssues));
  if (!r.result.ok) throw new Error(JSON.stringify(r.result.issues));
  return r.result.value.text;
}

afterAll(() => cleanupTempDirs());

describe("rendered machine configs (golden files)", () => {
  it("hostname: Talos 1.12 gets its HostnameConfig document set to the host's name, auto off", async () => {
    golden("hostname-v1.12", await rendered({ host: "talos: { role: worker }\n" }));
  });

  it("hostname: Talos 1.11 gets machine.network.hostname", async () => {
    golden("hostname-v1.11", await rendered({ host: "talos: { role: worker }\n", version: "v1.11.5", worker: "worker-v1.11.yaml" }));
  });

  it("install disk from the host, over the class's and the base config's", async () => {
    golden("install-disk", await rendered({ cls: "  machine: { role: worker, installDisk: /dev/sdb }\n", host: "talos: { installDisk: /dev/disk/by-id/nvme-Samsung_SSD_990_PRO_2TB_S7KHNJ0X }\n" }));
  });

  it("VolumeConfig: EPHEMERAL capped at 100GB so the rest of the disk stays free for Ceph", async () => {
    golden("volume-config", await rendered({ host: "talos:\n  role: worker\n  volumes:\n    EPHEMERAL: { minSize: 2GB, maxSize: 100GB, grow: true }\n    IMAGE-CACHE: { diskSelector: \"disk.transport == 'nvme'\", maxSize: 20GiB }\n" }));
  });

  it("static address: LinkAliasConfig by MAC, LinkConfig, ResolverConfig on Talos 1.12", async () => {
    golden("static-address-v1.12", await rendered({ host: "ip: 10.10.1.31\ntalos:\n  role: worker\n  network: { address: 10.10.1.31/24, gateway: 10.10.1.1, nameservers: [10.10.1.1, 1.1.1.1] }\n" }));
  });

  it("static address: machine.network.interfaces by deviceSelector on Talos 1.11", async () => {
    golden("static-address-v1.11", await rendered({ version: "v1.11.5", worker: "worker-v1.11.yaml", host: "talos:\n  role: worker\n  network: { address: 10.10.1.31/24, gateway: 10.10.1.1, nameservers: [10.10.1.1] }\n" }));
  });

  it("extra patches, class then host: maps merge, lists append, subnets replace, interfaces merge by name, new documents append", async () => {
    const text = await rendered({
      cls: "  machine:\n    role: controlplane\n    patches: [./talos/cilium.yaml]\n",
      host: "talos:\n  patches: [../patches/node1.yaml]\n",
      files: {
        "classes/talos/cilium.yaml": "# Cilium instead of Flannel and kube-proxy\ncluster:\n  network:\n    cni: { name: none }\n    podSubnets: [10.42.0.0/16]\n  proxy: { disabled: true }\n  apiServer:\n    certSANs: [api.homelab.tel]\n",
        "patches/node1.yaml":
          "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        mtu: 9000\n      - interface: eth0\n        vlans: [{ vlanId: 10, addresses: [10.0.10.2/24] }]\n  nodeLabels: { rack: r1 }\n  install: { wipe: false }\ncluster:\n  apiServer:\n    admissionControl:\n      - name: PodSecurity\n        configuration: { defaults: { enforce: privileged } }\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node1-override\n---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: nut-client\nconfigFiles:\n  - content: MONITOR upsmonHost 1 remote pass foo\n    mountPath: /usr/local/etc/nut/upsmon.conf\n",
      },
    });
    golden("patches", text);
  });

  it("is the same bytes for the same input", async () => {
    const s = { host: "talos:\n  role: worker\n  volumes: { EPHEMERAL: { maxSize: 100GB } }\n" };
    expect(await rendered(s)).toBe(await rendered(s));
  });
});

describe("merging as Talos does, with every value kept as written", () => {
  it("writes scalars exactly as the files spell them (yaml.v3 reads 0644 as octal, and `01` into a string field as \"01\")", async () => {
    const text = await rendered({
      host: "talos: { role: worker, patches: [../patches/p.yaml] }\n",
      files: { "patches/p.yaml": "machine:\n  files:\n    - path: /var/etc/x\n      permissions: 0644\n      op: create\n      content: 'a: b'\n  nodeLabels: { rack: 01, release: 1.10, big: 12345678901234567890, 'quoted': \"007\" }\n  sysctls:\n    vm.swappiness: 010\n" },
    });
    expect(text).toContain("      permissions: 0644\n");
    expect(text).toContain('      content: "a: b"\n');
    expect(text).toContain("    rack: 01\n    release: 1.10\n    big: 12345678901234567890\n    quoted: \"007\"\n");
    expect(text).toContain("    vm.swappiness: 010\n");
  });

  it("treats a null in the base config as absent (an `install:` with everything commented out)", async () => {
    const base = readFileSync(path.join(FIXTURES, "worker.yaml"), "utf8").replace(/    install:\n(        .*\n)+/, "    install:\n        # disk: /dev/sda\n");
    const text = await rendered({ host: "talos: { role: worker, installDisk: /dev/nvme0n1 }\n", files: { "secrets/worker.yaml": base } });
    expect(text).toContain("  install:\n    disk: /dev/nvme0n1\n");
  });

  it("merges a host's volume settings over its class's field by field", async () => {
    const text = await rendered({ cls: "  machine: { role: worker, volumes: { EPHEMERAL: { minSize: 2GB, maxSize: 100GB, grow: true } } }\n", host: "talos: { volumes: { EPHEMERAL: { maxSize: 200GB } } }\n" });
    expect(text).toContain('name: EPHEMERAL\nprovisioning:\n  minSize: "2GB"\n  maxSize: "200GB"\n  grow: true\n');
  });

  it("replaces podSubnets even with an empty list, as Talos does", async () => {
    const text = await rendered({ host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "cluster:\n  network:\n    podSubnets: []\n" } });
    expect(text).toContain("    podSubnets: []\n");
  });

  it("points at the patch's own line inside a keyed list, not at the merged position", async () => {
    const base = readFileSync(path.join(FIXTURES, "worker.yaml"), "utf8").replace("    network: {}\n", "    network:\n        interfaces:\n            - interface: eth0\n            - interface: eth1\n              mtu: 1500\n");
    const r = await render({
      host: "talos: { role: worker, patches: [../patches/p.yaml] }\n",
      files: { "secrets/worker.yaml": base, "patches/p.yaml": "machine:\n  network:\n    interfaces:\n      - interface: eth1\n        mtu: [1]\n      - interface: eth2\n        mtu: 9000\n" },
    });
    const issue = (r.result as { ok: false; issues: { where: { file: string; line?: number; field?: string } }[] }).issues[0]!;
    expect(issue.where).toMatchObject({ file: "patches/p.yaml", line: 5, field: "machine.network.interfaces.0.mtu" });
  });

  it("names the base config when one of netbuild's own settings meets a value of another shape there", async () => {
    const base = readFileSync(path.join(FIXTURES, "worker.yaml"), "utf8").replace(/    install:\n(        .*\n)+/, "    install: /dev/sda\n");
    const r = await render({ host: "talos: { role: worker, installDisk: /dev/sdb }\n", files: { "secrets/worker.yaml": base } });
    const issue = (r.result as { ok: false; issues: { where: { file: string; line?: number }; message: string }[] }).issues[0]!;
    expect(issue.where).toMatchObject({ file: "secrets/worker.yaml", line: 20 });
    expect(issue.message).toContain("the base config has a single value at machine.install, where netbuild sets a mapping");
  });
});

describe("what is refused, with file, line and field (never a value: these files hold secrets)", () => {
  const cases: [string, Setup, string, RegExp][] = [
    ["a `$patch: delete` directive", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "machine:\n  network:\n    $patch: delete\n" } }, "patches/p.yaml:3", /\$patch` directives are not supported/],
    ["a JSON patch (a list of operations)", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "- op: add\n  path: /machine/network/hostname\n  value: x\n" } }, "patches/p.yaml:1", /JSON patches .* are not supported/],
    ["a patch that changes the shape of a value", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "# comment\nmachine:\n  install: /dev/sda\n" } }, "patches/p.yaml:3", /gives a single value at machine.install, where the base config has a mapping/],
    ["a patch that changes machine.type", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "machine:\n  type: controlplane\n" } }, "patches/p.yaml:2", /cannot change machine.type/],
    ["a patch document with kind but no apiVersion", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "kind: VolumeConfig\nname: EPHEMERAL\n" } }, "patches/p.yaml:1", /needs `apiVersion`/],
    ["a patch that is not YAML", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "machine:\n  install: { disk: [\n" } }, "patches/p.yaml:", /not valid YAML/],
    ["a base config for the other role", { host: "talos: { role: worker }\n", files: { "secrets/worker.yaml": readFileSync(path.join(FIXTURES, "controlplane.yaml"), "utf8") } }, "secrets/worker.yaml:", /this base config is for role controlplane, and host node1 is a worker/],
    ["a Talos 1.12 base config that sets machine.network.hostname", { host: "talos: { role: worker }\n", files: { "secrets/worker.yaml": "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    hostname: fixed\ncluster: {}\n" } }, "secrets/worker.yaml:5", /refuses machine.network.hostname/],
    ["anchors and aliases", { host: "talos: { role: worker, patches: [../patches/p.yaml] }\n", files: { "patches/p.yaml": "machine:\n  nodeLabels: &l { a: b }\n  nodeAnnotations: *l\n" } }, "patches/p.yaml:2", /anchors and aliases are not supported/],
  ];
  it.each(cases)("%s", async (_name, setup, where, message) => {
    const r = await render(setup);
    expect(r.result?.ok).toBe(false);
    const issue = (r.result as { issues: { where: { file: string; line?: number }; message: string }[] }).issues[0]!;
    expect(`${issue.where.file}:${issue.where.line ?? ""}`).toContain(where);
    expect(issue.message).toMatch(message);
    // Secrets never appear in a message.
    expect(JSON.stringify(issue)).not.toMatch(/fake0|ZmFrZ|RkFLR/);
  });
});
