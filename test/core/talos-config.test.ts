// Rendered Talos machine configs: one golden file per feature (test/golden/talos/), from base
// configs shaped like `talosctl gen config` output (test/fixtures/talos/, fake secrets), through
// the real inventory loader. Goldens are reviewed by eye when they change:
// NETBUILD_UPDATE_GOLDEN=1 rewrites them.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadInventory, type Host, type TalosClass, type TalosHost } from "../../src/core/inventory.ts";
import { renderMachineConfig, type ConfigFile } from "../../src/core/talos-config.ts";
import { readInventorySource } from "../../src/adapters/inventory-files.ts";
import { cleanupTempDirs, inventory, REPO } from "../support/inventory.ts";
import { expectGolden } from "../support/golden.ts";

const FIXTURES = path.join(REPO, "test/fixtures/talos");

// Reading a million values takes the parser seconds: a text starting with this line is read with
// the real limits scaled down (10 values), so "too many values" is reached in a few characters.
const SMALL_LIMITS = "# test: small limits\n";
vi.mock("../../src/core/yaml-doc.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/core/yaml-doc.ts")>();
  const parseYaml = ((text: string, options: never, all: never, limits?: never) =>
    text.startsWith(SMALL_LIMITS) ? real.parseYaml(text, options, all, { values: 10, nesting: real.MAX_NESTING } as never) : real.parseYaml(text, options, all, limits)) as typeof real.parseYaml;
  return { ...real, parseYaml };
});

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

// --- direct calls: small base configs written inline -----------------------------------------

const MIN = "version: v1alpha1\nmachine:\n  type: worker\ncluster: {}\n";
const WITH_INSTALL = (install: string) => `version: v1alpha1\nmachine:\n  type: worker\n  install:\n${install}cluster: {}\n`;
const BASE_FILE = "secrets/worker.yaml";

function talosHost(t: Partial<TalosHost> = {}): Host & { talos: TalosHost } {
  return { name: "node1", talos: { role: "worker", installDisk: undefined, volumes: {}, patches: [], configUrl: "", network: undefined, ...t } } as unknown as Host & { talos: TalosHost };
}

function direct(base: string, patches: string[] = [], t: Partial<TalosHost> = {}, version = "v1.12.2") {
  return renderMachineConfig(talosHost(t), { name: "talos", version } as unknown as TalosClass, { file: BASE_FILE, text: base }, patches.map((text, i) => ({ file: `patches/p${i + 1}.yaml`, text })));
}

/** The rendered documents, without the three header lines. */
function body(base: string, patches: string[] = [], t: Partial<TalosHost> = {}, version?: string): string {
  const r = direct(base, patches, t, version);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value.text.split("\n").slice(3).join("\n");
}

function value(base: string, patches: string[] = [], t: Partial<TalosHost> = {}, version?: string) {
  const r = direct(base, patches, t, version);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value;
}

function issue(base: string, patches: string[] = [], t: Partial<TalosHost> = {}, version?: string) {
  const r = direct(base, patches, t, version);
  if (r.ok) throw new Error("rendered, expected a refusal");
  expect(r.issues).toHaveLength(1);
  return r.issues[0]!;
}

const HOSTNAME_DOC = 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node1\nauto: "off"\n';
const NET = { address: "10.10.1.31/24", gateway: "10.10.1.1", nameservers: ["10.10.1.1"], mac: "52:54:00:a1:00:02" } as unknown as NonNullable<TalosHost["network"]>;

describe("refusals, exactly as reported (severity, file, line, field, message, hint)", () => {
  it("a base config without a v1alpha1 document", () => {
    expect(issue("apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n")).toStrictEqual({
      severity: "error",
      where: { file: BASE_FILE, field: undefined },
      message: "the base config has no v1alpha1 document (`version: v1alpha1` with `machine:` and `cluster:`)",
      hint: "use the controlplane.yaml or worker.yaml that `talosctl gen config` writes",
    });
  });

  it("a base config with two v1alpha1 documents", () => {
    expect(issue(`${MIN}---\n${MIN}`)).toStrictEqual({
      severity: "error",
      where: { file: BASE_FILE, field: undefined },
      message: "the base config has more than one v1alpha1 document",
      hint: "use the controlplane.yaml or worker.yaml that `talosctl gen config` writes",
    });
  });

  it("a main document without `version` (no line to point at, the field named)", () => {
    expect(issue("machine:\n  type: worker\ncluster: {}\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, field: "version" }, message: "the base config's main document is not `version: v1alpha1`" });
  });

  it("a main document of another version, at its line", () => {
    expect(issue("version: v1alpha2\nmachine:\n  type: worker\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, line: 1, field: "version" }, message: "the base config's main document is not `version: v1alpha1`" });
  });

  const roleHint = "point talos.baseConfigs.worker in netbuild.yaml at the worker.yaml from `talosctl gen config`";
  it("a base config without machine.type", () => {
    expect(issue("version: v1alpha1\nmachine: {}\ncluster: {}\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, field: "machine.type" }, message: "this base config is for no role (machine.type is missing), and host node1 is a worker", hint: roleHint });
  });

  it("a base config whose machine.type is not a string reads as no role", () => {
    expect(issue("version: v1alpha1\nmachine:\n  type: 5\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, line: 3, field: "machine.type" }, message: "this base config is for no role (machine.type is missing), and host node1 is a worker", hint: roleHint });
  });

  it("a base config of an unknown role names it quoted, a known one plainly", () => {
    expect(issue("version: v1alpha1\nmachine:\n  type: foo\n").message).toBe('this base config is for role "foo", and host node1 is a worker');
    expect(issue("version: v1alpha1\nmachine:\n  type: controlplane\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, line: 3, field: "machine.type" }, message: "this base config is for role controlplane, and host node1 is a worker", hint: roleHint });
    expect(issue(MIN, [], { role: "controlplane" }).message).toBe("this base config is for role worker, and host node1 is a controlplane");
  });

  it("a base config or patch that is not valid YAML names which", () => {
    expect(issue("version: [\n")).toStrictEqual({ severity: "error", where: { file: BASE_FILE, line: 2 }, message: expect.stringMatching(/^this base config is not valid YAML \([A-Z_]+\)$/) as unknown as string });
    expect(issue(MIN, ["machine: [\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 2 }, message: expect.stringMatching(/^this patch is not valid YAML \([A-Z_]+\)$/) as unknown as string });
  });

  it("a patch nested too deep, or holding too many values", () => {
    expect(issue(MIN, [`a:\n  ${"[".repeat(120)}${"]".repeat(120)}\n`])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 2 }, message: "this patch nests mappings and lists more than 100 levels deep" });
    expect(issue(MIN, [`${SMALL_LIMITS}a: [${"1,".repeat(11)}]\n`])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml" }, message: "this patch holds more than 1,000,000 values" });
  });

  it("a patch document that is a single value", () => {
    expect(issue(MIN, ["# a comment\nhello\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 2, field: undefined }, message: "a patch document must be a mapping" });
  });

  it("a JSON patch, with the way out", () => {
    expect(issue(MIN, ["- op: add\n  path: /machine/x\n"])).toStrictEqual({
      severity: "error",
      where: { file: "patches/p1.yaml", line: 1, field: undefined },
      message: "a patch that is a list: JSON patches (lists of operations) are not supported",
      hint: "write a strategic merge patch instead: the part of the config to change, as YAML (see README, Talos)",
    });
  });

  it("a document whose kind is not a string", () => {
    expect(issue(MIN, ["apiVersion: v1alpha1\nkind: 5\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 1, field: undefined }, message: "a document with `kind` needs `apiVersion` as well (both strings)" });
  });

  it("anchors, at the list item that has one", () => {
    expect(issue(MIN, ["machine:\n  certSANs:\n    - a\n    - &x b\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 4, field: "machine.certSANs.1" }, message: "anchors and aliases are not supported in a patch", hint: "write the value out in full" });
  });

  it("`$patch` directives", () => {
    expect(issue(MIN, ["machine:\n  network:\n    $patch: delete\n"])).toStrictEqual({
      severity: "error",
      where: { file: "patches/p1.yaml", line: 3, field: 'machine.network["$patch"]' },
      message: "`$patch` directives are not supported in a patch",
      hint: "netbuild renders configs with plain strategic merges only; remove the setting from the base config instead of deleting it with a patch",
    });
  });

  it("explicit tags on a single value (a tagged mapping or list is fine)", () => {
    expect(issue(MIN, ["machine:\n  nodeLabels:\n    a: !!str 01\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 3, field: "machine.nodeLabels.a" }, message: 'explicit tags ("tag:yaml.org,2002:str") are not supported in a patch', hint: "remove the tag" });
    expect(body(MIN, ["machine:\n  nodeLabels: !!map { a: b }\n  certSANs: !!seq [c]\n"])).toContain("  nodeLabels:\n    a: b\n  certSANs:\n    - c\n");
  });

  it("keys that are not plain: a list, or null", () => {
    const plainKeys = { severity: "error", where: { file: "patches/p1.yaml", line: 3, field: "machine.nodeLabels" }, message: "a patch may only have plain keys" };
    expect(issue(MIN, ["machine:\n  nodeLabels:\n    [a]: b\n"])).toStrictEqual(plainKeys);
    expect(issue(MIN, ["machine:\n  nodeLabels:\n    ~: b\n"])).toStrictEqual(plainKeys);
  });

  it("a patch that gives a list where the base has a mapping", () => {
    expect(issue(WITH_INSTALL("    disk: /dev/sda\n"), ["machine:\n  install: [a]\n"])).toStrictEqual({
      severity: "error",
      where: { file: "patches/p1.yaml", line: 2, field: "machine.install" },
      message: "the patch gives a list at machine.install, where the base config has a mapping",
      hint: "a strategic merge patch must keep the base config's shape",
    });
  });

  it("a base config of another shape than netbuild's own settings", () => {
    expect(issue("version: v1alpha1\nmachine:\n  type: worker\n  install: /dev/sda\n", [], { installDisk: "/dev/sdb" })).toStrictEqual({
      severity: "error",
      where: { file: BASE_FILE, line: 4, field: "machine.install" },
      message: "the base config has a single value at machine.install, where netbuild sets a mapping from the host's talos settings",
      hint: "fix the base config (it should be as `talosctl gen config` writes it)",
    });
  });

  it("machine.network.hostname in a Talos 1.12 base config (an empty one is fine; Talos 1.11 takes the host's)", () => {
    const base = (h: string) => `version: v1alpha1\nmachine:\n  type: worker\n  network:\n    hostname: ${h}\n`;
    expect(issue(base("fixed"))).toStrictEqual({
      severity: "error",
      where: { file: BASE_FILE, line: 5, field: "machine.network.hostname" },
      message: "Talos v1.12.2 refuses machine.network.hostname next to the HostnameConfig document netbuild writes for each host",
      hint: "remove machine.network.hostname from the base config",
    });
    expect(body(base('""'))).toContain('  network:\n    hostname: ""\n');
    expect(body(base("fixed"), [], {}, "v1.11.5")).toContain("  network:\n    hostname: node1\n");
  });

  it("a patch that changes machine.type (setting the same role, or another document's, is fine)", () => {
    expect(issue(MIN, ["machine:\n  type: controlplane\n"])).toStrictEqual({ severity: "error", where: { file: "patches/p1.yaml", line: 2, field: "machine.type" }, message: "a patch cannot change machine.type (host node1 is a worker)", hint: "set the host's talos.role instead" });
    expect(body(MIN, ["machine:\n  type: worker\n  nodeLabels: { a: b }\n"])).toContain("  type: worker\n  nodeLabels:\n    a: b\n");
    expect(body(MIN.replace("worker", "init"), ["machine:\n  type: init\n"], { role: "controlplane" })).toContain("  type: init\n");
    expect(body(MIN, ["apiVersion: v1alpha1\nkind: OtherConfig\nmachine:\n  type: controlplane\n"])).toContain("kind: OtherConfig\nmachine:\n  type: controlplane\n");
  });

  it("lets a programming error through instead of reporting it as an issue", () => {
    expect(() => direct(MIN, [], {}, "bogus")).toThrow(TypeError);
  });
});

describe("merging, case by case", () => {
  it("a patch file of comments only changes nothing", () => {
    expect(body(MIN, ["# nothing yet\n", "machine: { nodeLabels: { a: b } }\n"])).toBe(`${MIN.replace("cluster: {}", "  nodeLabels:\n    a: b\ncluster: {}")}---\n${HOSTNAME_DOC}`);
  });

  it("zero values in a patch (null, empty string, 0) keep the base's value; false replaces", () => {
    const base = WITH_INSTALL("    disk: /dev/sda\n    image: img\n    wipe: true\n    extra: x\n");
    expect(body(base, ["machine:\n  install:\n    disk: ''\n    image:\n    wipe: 0\n    extra: false\n"])).toContain("  install:\n    disk: /dev/sda\n    image: img\n    wipe: true\n    extra: false\n");
  });

  it("a key without a value is written as null", () => {
    expect(body(MIN, ["machine:\n  nodeLabels:\n    ? a\n"])).toContain("  nodeLabels:\n    a: null\n");
  });

  it("a plain value over several lines is written as the one-line string it reads as", () => {
    expect(body(MIN, ["machine:\n  nodeLabels:\n    a: foo\n      bar\n"])).toContain('  nodeLabels:\n    a: "foo bar"\n');
  });

  it("quotes keys that would not read back as the same plain string", () => {
    expect(body(MIN, ['machine:\n  nodeLabels:\n    "#a": x\n    "a #b": y\n    "yes": z\n    "1a": w\n    a.b/c-d_e: v\n'])).toContain('  nodeLabels:\n    "#a": x\n    "a #b": y\n    "yes": z\n    "1a": w\n    a.b/c-d_e: v\n');
  });

  it("writes empty and nested collections inside lists", () => {
    expect(body(MIN, ["machine:\n  custom:\n    - {}\n    - []\n    - [a, [b]]\n    - { k: [c] }\n"])).toContain("  custom:\n    - {}\n    - []\n    - - a\n      - - b\n    - k:\n        - c\n");
  });

  it("replaces cluster.apiServer.auditPolicy whole, in the v1alpha1 document only", () => {
    const base = "version: v1alpha1\nmachine:\n  type: worker\ncluster:\n  apiServer:\n    auditPolicy:\n      apiVersion: audit.k8s.io/v1\n      rules: [{ level: Metadata }]\n";
    expect(body(base, ["cluster:\n  apiServer:\n    auditPolicy:\n      rules: [{ level: None }]\n"])).toContain("  apiServer:\n    auditPolicy:\n      rules:\n        - level: None\n---\n");
  });

  it("merges by key, replaces and keys lists only in the v1alpha1 document (and configFiles in an ExtensionServiceConfig)", () => {
    const doc = (n: number) => `apiVersion: v1alpha1\nkind: OtherConfig\nname: x\nconfigFiles: [{ mountPath: /a, content: c${n} }]\ncluster:\n  network:\n    podSubnets: [p${n}]\n  apiServer:\n    auditPolicy: { r${n}: ${n} }\n`;
    expect(body(MIN, [doc(1), doc(2)])).toContain(
      "kind: OtherConfig\nname: x\nconfigFiles:\n  - mountPath: /a\n    content: c1\n  - mountPath: /a\n    content: c2\ncluster:\n  network:\n    podSubnets:\n      - p1\n      - p2\n  apiServer:\n    auditPolicy:\n      r1: 1\n      r2: 2\n",
    );
    const esc = (n: number) => `apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nconfigFiles: [{ mountPath: /a, content: c${n} }]\ncluster:\n  apiServer:\n    admissionControl: [{ name: A, m: ${n} }]\n`;
    expect(body(MIN, [esc(1), esc(2)])).toContain("kind: ExtensionServiceConfig\nconfigFiles:\n  - mountPath: /a\n    content: c2\ncluster:\n  apiServer:\n    admissionControl:\n      - name: A\n        m: 1\n      - name: A\n        m: 2\n");
  });

  it("matches an unnamed document with one whose name is empty", () => {
    expect(body(MIN, ["apiVersion: v1alpha1\nkind: HostnameConfig\nname:\nhostname: other\n"])).toBe(`${MIN}---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: other\nauto: \"off\"\nname: \n`);
  });

  it("replaces or keys only the exact list paths, not lists under keys with digits", () => {
    const p = (n: number) => `cluster:\n  network:\n    x1:\n      podSubnets: [a${n}]\n    1x:\n      podSubnets: [b${n}]\n`;
    expect(body(MIN, [p(1), p(2)])).toContain("    x1:\n      podSubnets:\n        - a1\n        - a2\n    \"1x\":\n      podSubnets:\n        - b1\n        - b2\n");
  });

  it("merges vlans by vlanId, also in an interface past the tenth; a vlan without vlanId is added", () => {
    const ifaces = Array.from({ length: 11 }, (_, i) => `      - interface: eth${i}\n        vlans: [{ vlanId: 5, mtu: 1500 }]\n`).join("");
    const base = `version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces:\n${ifaces}`;
    const out = body(base, ["machine:\n  network:\n    interfaces:\n      - interface: eth10\n        vlans: [{ vlanId: 5, mtu: 9000 }, { mtu: 1 }]\n      - interface: eth0\n        vlans: [{ vlanId: 6 }]\n"]);
    expect(out).toContain("      - interface: eth10\n        vlans:\n          - vlanId: 5\n            mtu: 9000\n          - mtu: 1\n");
    expect(out).toContain("      - interface: eth0\n        vlans:\n          - vlanId: 5\n            mtu: 1500\n          - vlanId: 6\n      - interface: eth1\n");
    const noId = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces: [{ interface: eth0, vlans: [{ mtu: 1 }] }]\n";
    expect(body(noId, ["machine:\n  network:\n    interfaces: [{ interface: eth0, vlans: [{ vlanId: 7 }] }]\n"])).toContain("        vlans:\n          - mtu: 1\n          - vlanId: 7\n");
  });

  it("matches interfaces by deviceSelector whatever its key order, and never a different one", () => {
    const base = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces:\n      - deviceSelector: { busPath: '0*', driver: virtio }\n        mtu: 1500\n      - interface: eth9\n";
    const out = body(base, ["machine:\n  network:\n    interfaces:\n      - deviceSelector: { driver: virtio, busPath: '0*' }\n        mtu: 9000\n      - deviceSelector: { driver: e1000 }\n        mtu: 1\n      - interface: eth9\n        mtu: 2\n"]);
    expect(out).toContain('    interfaces:\n      - deviceSelector:\n          busPath: "0*"\n          driver: virtio\n        mtu: 9000\n      - interface: eth9\n        mtu: 2\n      - deviceSelector:\n          driver: e1000\n        mtu: 1\n');
  });

  it("does not take an interface named by a list for one named by a mapping", () => {
    const base = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces: [{ interface: { '0': eth0 } }]\n";
    expect(body(base, ["machine:\n  network:\n    interfaces: [{ interface: [eth0] }]\n"])).toContain('    interfaces:\n      - interface:\n          "0": eth0\n      - interface:\n          - eth0\n');
  });

  it("appends a single value in a keyed list, and a mapping where the base has no list", () => {
    const base = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces: [{ interface: a }, { interface: b }]\n";
    expect(body(base, ["machine:\n  network:\n    interfaces: [x]\n"])).toContain("    interfaces:\n      - interface: a\n      - interface: b\n      - x\n");
    expect(body("version: v1alpha1\nmachine:\n  type: worker\n  network: {}\n", ["machine:\n  network:\n    interfaces: { a: b }\n"])).toContain("  network:\n    interfaces:\n      a: b\n");
  });

  it("appends lists of mappings that have no key, even with equal entries", () => {
    const p = "machine:\n  files: [{ path: /x, op: create }]\n";
    expect(body(MIN, [p, p])).toContain("  files:\n    - path: /x\n      op: create\n    - path: /x\n      op: create\n");
  });
});

describe("install disk and wipe, as the boot menu reports them", () => {
  it("the disk, and wipe, after all patches", () => {
    expect(value(WITH_INSTALL("    disk: /dev/sda\n    wipe: false\n"))).toMatchObject({ installDisk: "/dev/sda", wipe: false });
    expect(value(WITH_INSTALL("    disk: /dev/sda\n    wipe: false\n"), ["machine:\n  install: { disk: /dev/sdc, wipe: true }\n"])).toMatchObject({ installDisk: "/dev/sdc", wipe: true });
    expect(value(WITH_INSTALL("    wipe: 'true'\n"), [], { installDisk: "/dev/sdb" })).toMatchObject({ installDisk: "/dev/sdb", wipe: false });
  });

  it("a disk selector, when no disk is named", () => {
    expect(value(WITH_INSTALL("    diskSelector: { size: '>= 100GB' }\n")).installDisk).toBe("the disk chosen by machine.install.diskSelector");
    expect(value(WITH_INSTALL("    disk: ''\n    diskSelector: { size: '>= 100GB' }\n")).installDisk).toBe("the disk chosen by machine.install.diskSelector");
    expect(value(WITH_INSTALL("    disk: ''\n")).installDisk).toBeUndefined();
    expect(value(WITH_INSTALL("    disk: 5\n")).installDisk).toBeUndefined();
  });

  it("none without machine.install, or with it empty", () => {
    expect(value(MIN)).toMatchObject({ installDisk: undefined, wipe: false });
    expect(value(WITH_INSTALL(""))).toMatchObject({ installDisk: undefined, wipe: false });
  });

  it("from the v1alpha1 document wherever it is in the base config", () => {
    expect(value(`apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n---\n${WITH_INSTALL("    disk: /dev/sda\n    wipe: true\n")}`)).toMatchObject({ installDisk: "/dev/sda", wipe: true });
  });
});

describe("netbuild's own documents from a host's settings", () => {
  it("Talos 1.12: no routes without a gateway, no ResolverConfig without nameservers", () => {
    const out = body(MIN, [], { network: { ...NET, gateway: undefined, nameservers: [] } });
    expect(out).toBe(`${MIN}---\n${HOSTNAME_DOC}---\napiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n  match: "mac(link.permanent_addr) == \\"52:54:00:a1:00:02\\""\n---\napiVersion: v1alpha1\nkind: LinkConfig\nname: net0\nup: true\naddresses:\n  - address: "10.10.1.31/24"\n`);
  });

  it("Talos 1.11: no routes without a gateway, no nameservers without any; an IPv6 default route", () => {
    expect(body(MIN, [], { network: { ...NET, gateway: undefined, nameservers: [] } }, "v1.11.5")).toBe(
      'version: v1alpha1\nmachine:\n  type: worker\n  network:\n    hostname: node1\n    interfaces:\n      - deviceSelector:\n          hardwareAddr: "52:54:00:a1:00:02"\n        dhcp: false\n        addresses:\n          - "10.10.1.31/24"\ncluster: {}\n',
    );
    expect(body(MIN, [], { network: { ...NET, address: "2001:db8::2/64", gateway: "2001:db8::1", nameservers: [] } }, "v1.11.5")).toContain('        routes:\n          - network: "::/0"\n            gateway: "2001:db8::1"\ncluster: {}\n');
  });

  it("VolumeConfig documents sorted by volume name, with only the sizes given", () => {
    const volumes = { ZVOL: { minSize: "1GB" }, MVOL: { grow: false }, AVOL: { maxSize: "2GB" } } as unknown as TalosHost["volumes"];
    expect(body(MIN, [], { volumes })).toBe(
      `${MIN}---\n${HOSTNAME_DOC}---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: AVOL\nprovisioning:\n  maxSize: "2GB"\n---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: MVOL\nprovisioning:\n  grow: false\n---\napiVersion: v1alpha1\nkind: VolumeConfig\nname: ZVOL\nprovisioning:\n  minSize: "1GB"\n`,
    );
  });

  it("uses the multi-document network settings from Talos 1.12 on", async () => {
    const { usesMultidocNetwork } = await import("../../src/core/talos-config.ts");
    expect(["v1.11.5", "v1.12.0", "v1.13.1", "v2.0.0", "v10.0.0", "v0.13.0"].map(usesMultidocNetwork)).toEqual([false, true, true, true, true, false]);
  });
});

describe("empty documents", () => {
  it("a trailing --- or two in a row merge nothing, in a patch or in the base config", () => {
    const patch = "machine:\n  install: { wipe: true }\n";
    const plain = body(MIN, [patch]);
    expect(body(MIN, [`${patch}---\n`])).toBe(plain);
    expect(body(MIN, [`---\n---\n${patch}`])).toBe(plain);
    expect(body(`${MIN}---\n`, [patch])).toBe(plain);
  });
  it("a document that says null is not empty: refused", () => {
    expect(issue(MIN, ["--- null\n"]).message).toBe("a patch document must be a mapping");
  });
});
