// Talos in the inventory as the loader reads it (core/talos-inventory.ts), as the README's Talos
// section describes it: a `kind: talos` class (its version, schematic and ID, pinned hashes and
// machine-config defaults) and the Talos settings of its hosts (role, base config, config URL,
// install disk, volumes merged field by field, static network, patches), with every error at its
// file:line:col, with its hint. Every error is listed: a mistake reported twice fails.
import { describe, expect, it } from "vitest";
import { loadInventory, talosArtifactUrl, unpinnedArtifacts, type InventoryFile, type Probe, type TalosClass } from "../../src/core/inventory.ts";
import type { Issue } from "../../src/errors.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });
const SRI = (c: string) => `sha256-${c.repeat(42)}+=`;
const SITE = "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: secrets/w.yaml, controlplane: secrets/cp.yaml }\n";
/** The ID of the empty schematic, as the Image Factory publishes it. */
const EMPTY_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
const talos = (more = "") => `kind: talos\ntalos:\n  version: v1.12.2\n${more}`;
const WORKER = talos("  machine: { role: worker }\n");
const PREBUILT = "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n";

/** Every file exists, except those named `nope…`; classes/talos and patches/dir are folders. */
const probe: Probe = (rel) => (/(^|\/)nope/.test(rel) ? "missing" : rel === "classes/talos" || rel === "patches/dir" ? "dir" : "file");

/** An issue as `file:line:col field: message (hint: …)`. */
const show = (i: Issue) => `${i.where.file}:${i.where.line ?? "-"}:${i.where.col ?? "-"} ${i.where.field}: ${i.message} (hint: ${i.hint ?? "none"})`;

/** `site: null`: no netbuild.yaml at all. Hosts are written in hosts/all.yaml. */
function load(inv: { site?: string | null; classes: Record<string, string>; hosts?: string }) {
  const r = loadInventory({
    site: inv.site === null ? undefined : f("netbuild.yaml", inv.site ?? SITE),
    classes: Object.entries(inv.classes).map(([name, text]) => f(`classes/${name}.yaml`, text)),
    hosts: inv.hosts === undefined ? [] : [f("hosts/all.yaml", inv.hosts)],
    probe,
  });
  return r.ok ? { inventory: r.inventory, errors: [] as string[] } : { inventory: undefined, errors: r.issues.filter((i) => i.severity === "error").map(show) };
}

function classesOf(classes: Record<string, string>) {
  const { inventory, errors } = load({ classes });
  expect(errors).toEqual([]);
  return { classes: inventory!.classes as TalosClass[], warnings: inventory!.warnings.map(show) };
}

function talosOf(hosts: string, classes: Record<string, string> = { tal: WORKER }) {
  const { inventory, errors } = load({ classes, hosts });
  expect(errors).toEqual([]);
  return Object.fromEntries(inventory!.hosts.map((h) => [h.name, h.talos]));
}

const errorsOf = (inv: Parameters<typeof load>[0]) => load(inv).errors;

describe("the factory's URLs of a class's artifacts", () => {
  it("kernel-<arch>, initramfs-<arch>.xz and cmdline-<platform>-<arch>, under <factory>/image/<id>/<version>/", () => {
    const def = { schematicId: "abc123", version: "v1.11.0", arch: "arm64", platform: "nocloud" } as const;
    expect((["kernel", "initramfs", "cmdline"] as const).map((what) => talosArtifactUrl("https://mirror.example/f", def, what))).toEqual([
      "https://mirror.example/f/image/abc123/v1.11.0/kernel-arm64",
      "https://mirror.example/f/image/abc123/v1.11.0/initramfs-arm64.xz",
      "https://mirror.example/f/image/abc123/v1.11.0/cmdline-nocloud-arm64",
    ]);
  });
});

describe("a Talos class", () => {
  it("as the README writes it: its schematic and ID, its pinned hashes, its machine defaults", () => {
    const text = [
      "kind: talos",
      "talos:",
      "  version: v1.12.2",
      "  arch: arm64",
      "  platform: nocloud",
      "  schematic:",
      "    customization:",
      "      systemExtensions:",
      "        officialExtensions: [siderolabs/qemu-guest-agent, siderolabs/iscsi-tools]",
      `  hashes: { kernel: "${SRI("K")}", initramfs: "${SRI("I")}", cmdline: "${SRI("C")}" }`,
      "  machine:",
      "    role: worker",
      "    installDisk: /dev/sda",
      "    volumes: { IMAGE-CACHE: { minSize: 10GB, maxSize: 50% }, EPHEMERAL: { minSize: 2GB, maxSize: 100GB, grow: true } }",
      "    patches: [./talos/cni-none.yaml, ../patches/all.yaml]",
      "kernelParams: [console=ttyS0]",
      "",
    ].join("\n");
    const { classes, warnings } = classesOf({ "talos-worker": text });
    expect(classes).toEqual([
      {
        name: "talos-worker",
        file: "classes/talos-worker.yaml",
        description: undefined,
        kernelParams: ["console=ttyS0"],
        kind: "talos",
        version: "v1.12.2",
        arch: "arm64",
        platform: "nocloud",
        schematic: { customization: { systemExtensions: { officialExtensions: ["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"] } } },
        schematicId: expect.stringMatching(/^[0-9a-f]{64}$/),
        schematicYaml: "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n",
        hashes: { kernel: SRI("K"), initramfs: SRI("I"), cmdline: SRI("C") },
        machine: {
          role: "worker",
          installDisk: "/dev/sda",
          volumes: { "IMAGE-CACHE": { minSize: "10GB", maxSize: "50%" }, EPHEMERAL: { minSize: "2GB", maxSize: "100GB", grow: true } },
          patches: ["classes/talos/cni-none.yaml", "patches/all.yaml"],
        },
      },
    ]);
    // All three pinned: it builds, without a warning.
    expect(warnings).toEqual([]);
    expect(unpinnedArtifacts(classes[0]!)).toEqual([]);
  });

  it("the defaults: amd64, metal, the empty schematic (the factory's well-known ID), no hashes, no machine defaults", () => {
    const { classes } = classesOf({ t: talos() });
    expect(classes).toEqual([
      {
        name: "t",
        file: "classes/t.yaml",
        description: undefined,
        kernelParams: [],
        kind: "talos",
        version: "v1.12.2",
        arch: "amd64",
        platform: "metal",
        schematic: {},
        schematicId: EMPTY_ID,
        schematicYaml: "customization: {}\n",
        hashes: {},
        machine: { role: undefined, installDisk: undefined, volumes: {}, patches: [] },
      },
    ]);
  });

  describe("pinned hashes", () => {
    const hint = (name: string) => `run \`netbuild pin --class ${name}\` (it downloads them from https://mirror.example/f and writes their hashes into classes/${name}.yaml; \`netbuild talos schematic ${name}\` shows the URLs)`;
    const site = "talos: { factory: https://mirror.example/f }\n";

    it("a class with some missing loads, with a warning naming them and how to pin them", () => {
      const { inventory, errors } = load({
        site,
        classes: {
          one: talos(`  hashes: { kernel: "${SRI("K")}", initramfs: "${SRI("I")}" }\n`),
          two: talos(`  hashes: { initramfs: "${SRI("I")}" }\n`),
          none: talos(),
        },
      });
      expect(errors).toEqual([]);
      expect(inventory!.warnings.map(show)).toEqual([
        `classes/none.yaml:3:3 classes.none.talos.hashes: not pinned (kernel, initramfs, cmdline): this class cannot be built until these hashes are set (hint: ${hint("none")})`,
        `classes/one.yaml:3:3 classes.one.talos.hashes: not pinned (cmdline): this class cannot be built until its hash is set (hint: ${hint("one")})`,
        `classes/two.yaml:3:3 classes.two.talos.hashes: not pinned (kernel, cmdline): this class cannot be built until these hashes are set (hint: ${hint("two")})`,
      ]);
      const [none, one, two] = inventory!.classes as TalosClass[];
      expect([none!.hashes, one!.hashes, two!.hashes]).toEqual([{}, { kernel: SRI("K"), initramfs: SRI("I") }, { initramfs: SRI("I") }]);
      expect([none, one, two].map((c) => unpinnedArtifacts(c!))).toEqual([["kernel", "initramfs", "cmdline"], ["cmdline"], ["kernel", "cmdline"]]);
    });
  });

  describe("the schematic", () => {
    it("`schematicId`, when given, must be the ID netbuild computes", () => {
      expect(classesOf({ t: talos(`  schematicId: ${EMPTY_ID}\n`) }).classes[0]!.schematicId).toBe(EMPTY_ID);
      expect(errorsOf({ classes: { t: talos(`  schematicId: "${"0".repeat(64)}"\n`) } })).toEqual([
        `classes/t.yaml:4:16 classes.t.talos.schematicId: the schematic's ID is ${EMPTY_ID}, not ${"0".repeat(64)} (hint: netbuild computes the ID from \`schematic\` as the Image Factory does: remove schematicId, or set it to the computed ID if the schematic is what you meant (run \`netbuild talos schematic\` to see it))`,
      ]);
    });

    it("a value netbuild cannot encode exactly is refused, not guessed; the rest of the class is still checked", () => {
      const text = talos("  schematic: { overlay: { image: siderolabs/sbc-raspberrypi, name: rpi_generic, options: { a: 1.5 } } }\n  machine:\n    volumes: { EPHEMERAL: { minSize: 2GB, maxSize: 1GB } }\n    patches: [./nope.yaml]\n");
      expect(errorsOf({ classes: { t: text } })).toEqual([
        "classes/t.yaml:4:14 classes.t.talos.schematic: netbuild cannot compute this schematic's ID exactly: overlay.options.a: 1.5 is not a whole number; netbuild cannot be sure how the factory spells it (quote it to make it a string) (hint: change the value, or use the factory's web page for this schematic)",
        "classes/t.yaml:6:38 classes.t.talos.machine.volumes.EPHEMERAL.minSize: minSize 2GB is larger than maxSize 1GB (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
        'classes/t.yaml:7:15 classes.t.talos.machine.patches[0]: "./nope.yaml" does not exist (looked for "classes/nope.yaml") (hint: paths are relative to the class file)',
      ]);
    });

    it("extraKernelArgs: removals (`-arg`) kept as written, each checked as the parameter it removes", () => {
      const { classes } = classesOf({ t: talos('  schematic: { customization: { extraKernelArgs: [console=ttyS0, -quiet, "-"] } }\n') });
      expect(classes[0]!.schematic).toEqual({ customization: { extraKernelArgs: ["console=ttyS0", "-quiet", "-"] } });
    });

    it("extraKernelArgs: a parameter that cannot be, or that netbuild sets per host (removals too), is refused at its entry", () => {
      const args = ['"-#x"', '"#y"', "-quiet", "talos.config=http://x/y", "-hostname", "homelab.provision_disks=1", '"a b"'];
      expect(errorsOf({ classes: { t: talos(`  schematic:\n    customization:\n      extraKernelArgs: [${args.join(", ")}]\n`) } })).toEqual([
        'classes/t.yaml:6:25 classes.t.talos.schematic.customization.extraKernelArgs[0]: "#x" contains a character iPXE treats as script syntax (; & | or a leading # or :) (hint: remove it)',
        'classes/t.yaml:6:32 classes.t.talos.schematic.customization.extraKernelArgs[1]: "#y" contains a character iPXE treats as script syntax (; & | or a leading # or :) (hint: remove it)',
        'classes/t.yaml:6:46 classes.t.talos.schematic.customization.extraKernelArgs[3]: "talos.config=http://x/y": netbuild sets talos.config= for each Talos host (hint: remove it; set `talos.configBaseUrl` in netbuild.yaml instead)',
        "classes/t.yaml:6:71 classes.t.talos.schematic.customization.extraKernelArgs[4]: \"-hostname\": netbuild sets hostname= from the host's name (hint: remove it; rename the host instead)",
        'classes/t.yaml:6:82 classes.t.talos.schematic.customization.extraKernelArgs[5]: "homelab.provision_disks=1" sets a provisioning flag by hand (hint: a class cannot wipe disks: set `provision: { disks: true }` on each host that must be wiped)',
        'classes/t.yaml:6:109 classes.t.talos.schematic.customization.extraKernelArgs[6]: "a b" contains a space (hint: each list entry is one parameter: write `a=1 b=2` as two entries; a value cannot contain spaces)',
      ]);
    });
  });

  describe("machine defaults", () => {
    it("volume sizes compare as Talos reads them (units, decimals, a space); a percentage of the disk is not compared", () => {
      const volumes = '{ EPHEMERAL: { minSize: 1GB, maxSize: 1000MB }, IMAGE-CACHE: { minSize: "1.5 GiB", maxSize: 2GB } }';
      expect(classesOf({ a: talos(`  machine: { volumes: ${volumes} }\n`), b: talos("  machine: { volumes: { EPHEMERAL: { minSize: 900GB, maxSize: 10% }, IMAGE-CACHE: { minSize: 1GB } } }\n") }).classes.map((c) => c.machine.volumes)).toEqual([
        { EPHEMERAL: { minSize: "1GB", maxSize: "1000MB" }, "IMAGE-CACHE": { minSize: "1.5 GiB", maxSize: "2GB" } },
        { EPHEMERAL: { minSize: "900GB", maxSize: "10%" }, "IMAGE-CACHE": { minSize: "1GB" } },
      ]);
    });

    it("a volume whose minSize is larger than its maxSize is refused at its minSize", () => {
      const text = talos("  machine:\n    volumes:\n      EPHEMERAL: { minSize: 2GB, maxSize: 1000MB }\n      IMAGE-CACHE: { minSize: 1.25GB, maxSize: 1.2GB }\n");
      expect(errorsOf({ classes: { t: text } })).toEqual([
        "classes/t.yaml:6:29 classes.t.talos.machine.volumes.EPHEMERAL.minSize: minSize 2GB is larger than maxSize 1000MB (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
        "classes/t.yaml:7:31 classes.t.talos.machine.volumes.IMAGE-CACHE.minSize: minSize 1.25GB is larger than maxSize 1.2GB (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
      ]);
    });

    it("patches: files (not folders) inside the root, each refused at its entry", () => {
      const text = talos("  machine:\n    patches:\n      - ./talos/a.yaml\n      - ./nope.yaml\n      - ./talos\n      - ../../x.yaml\n");
      expect(errorsOf({ classes: { t: text } })).toEqual([
        'classes/t.yaml:7:9 classes.t.talos.machine.patches[1]: "./nope.yaml" does not exist (looked for "classes/nope.yaml") (hint: paths are relative to the class file)',
        'classes/t.yaml:8:9 classes.t.talos.machine.patches[2]: "./talos" is a folder, not a file (hint: none)',
        'classes/t.yaml:9:9 classes.t.talos.machine.patches[3]: "../../x.yaml" points outside the inventory root (hint: keep referenced files inside the repository, relative to the class file)',
      ]);
    });
  });
});

describe("a host of a Talos class", () => {
  const CLASS = talos(
    "  machine:\n    role: worker\n    installDisk: /dev/sda\n    volumes: { IMAGE-CACHE: { maxSize: 10GB }, EPHEMERAL: { minSize: 2GB, maxSize: 100GB, grow: true } }\n    patches: [./talos/cni.yaml]\n",
  );

  it("takes the class's defaults; its own settings win, volumes merging field by field, patches after the class's", () => {
    const hosts = [
      "hosts:",
      "  t1: { class: tal, mac: 52:54:00:00:00:01 }",
      "  t2:",
      "    class: tal",
      "    mac: 52:54:00:00:00:02",
      "    talos:",
      "      role: controlplane",
      "      installDisk: /dev/nvme0n1",
      "      volumes: { EPHEMERAL: { maxSize: 500GB }, IMAGE-CACHE: { minSize: 1GB } }",
      "      patches: [../patches/t2.yaml]",
      "  t3: { class: tal, mac: 52:54:00:00:00:03, talos: { patches: [../patches/t3.yaml] } }",
      "",
    ].join("\n");
    const talosHosts = talosOf(hosts, { tal: CLASS });
    expect(talosHosts).toEqual({
      t1: {
        role: "worker",
        installDisk: "/dev/sda",
        volumes: { EPHEMERAL: { minSize: "2GB", maxSize: "100GB", grow: true }, "IMAGE-CACHE": { maxSize: "10GB" } },
        patches: ["classes/talos/cni.yaml"],
        configUrl: "talos.config=https://boot.example/tree/by-host/t1/talos.yaml",
        network: undefined,
      },
      t2: {
        role: "controlplane",
        installDisk: "/dev/nvme0n1",
        volumes: { EPHEMERAL: { minSize: "2GB", maxSize: "500GB", grow: true }, "IMAGE-CACHE": { minSize: "1GB", maxSize: "10GB" } },
        patches: ["classes/talos/cni.yaml", "patches/t2.yaml"],
        configUrl: "talos.config=https://boot.example/tree/by-host/t2/talos.yaml",
        network: undefined,
      },
      t3: {
        role: "worker",
        installDisk: "/dev/sda",
        volumes: { EPHEMERAL: { minSize: "2GB", maxSize: "100GB", grow: true }, "IMAGE-CACHE": { maxSize: "10GB" } },
        patches: ["classes/talos/cni.yaml", "patches/t3.yaml"],
        configUrl: "talos.config=https://boot.example/tree/by-host/t3/talos.yaml",
        network: undefined,
      },
    });
    // Volumes in name order (the order of their VolumeConfig documents), whatever order the files list them in.
    expect(Object.keys(talosHosts.t1!.volumes)).toEqual(["EPHEMERAL", "IMAGE-CACHE"]);
    expect(Object.keys(talosHosts.t2!.volumes)).toEqual(["EPHEMERAL", "IMAGE-CACHE"]);
  });

  it("a volume of the host's own whose minSize is larger than its maxSize is refused at its minSize", () => {
    const hosts = "hosts:\n  t1:\n    class: tal\n    mac: 52:54:00:00:00:01\n    talos: { volumes: { EPHEMERAL: { minSize: 3TB, maxSize: 2TiB } } }\n";
    expect(errorsOf({ classes: { tal: WORKER }, hosts })).toEqual([
      "hosts/all.yaml:5:47 hosts.t1.talos.volumes.EPHEMERAL.minSize: minSize 3TB is larger than maxSize 2TiB (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
    ]);
  });

  it("a host's size under its class's (the two merge field by field) is refused at the host's field, naming the class's", () => {
    // The class: EPHEMERAL minSize 2GB, maxSize 100GB; IMAGE-CACHE maxSize 10GB.
    const hosts = [
      "hosts:",
      "  t1: { class: tal, mac: 52:54:00:00:00:01, talos: { volumes: { EPHEMERAL: { maxSize: 1GB } } } }",
      "  t2: { class: tal, mac: 52:54:00:00:00:02, talos: { volumes: { IMAGE-CACHE: { minSize: 11GB } } } }",
      // Within the class's bounds, a percentage, or neither size of its own: nothing to say.
      "  t3: { class: tal, mac: 52:54:00:00:00:03, talos: { volumes: { EPHEMERAL: { maxSize: 2GB }, IMAGE-CACHE: { minSize: 10GB } } } }",
      "  t4: { class: tal, mac: 52:54:00:00:00:04, talos: { volumes: { EPHEMERAL: { maxSize: 1% }, IMAGE-CACHE: { grow: true } } } }",
      "",
    ].join("\n");
    expect(errorsOf({ classes: { tal: CLASS }, hosts })).toEqual([
      "hosts/all.yaml:2:87 hosts.t1.talos.volumes.EPHEMERAL.maxSize: maxSize 1GB is smaller than minSize 2GB (class tal's) (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
      "hosts/all.yaml:3:89 hosts.t2.talos.volumes.IMAGE-CACHE.minSize: minSize 11GB is larger than maxSize 10GB (class tal's) (hint: Talos could not provision the volume; lower minSize or raise maxSize)",
    ]);
  });

  it("a class whose own sizes cross is refused once, at the class: its hosts that set no size of their own add nothing", () => {
    const crossed = talos("  machine:\n    role: worker\n    volumes: { EPHEMERAL: { minSize: 3GB, maxSize: 1GB } }\n");
    const hosts = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01, talos: { volumes: { EPHEMERAL: { grow: true } } } }\n";
    expect(errorsOf({ classes: { tal: crossed }, hosts }).map((e) => e.split(" ")[0])).toEqual(["classes/tal.yaml:6:38"]);
  });

  it("its patches: files inside the root, relative to the host file, each refused at its entry", () => {
    const hosts = "hosts:\n  t1:\n    class: tal\n    mac: 52:54:00:00:00:01\n    talos:\n      patches: [../patches/ok.yaml, ../patches/nope.yaml, ../patches/dir]\n";
    expect(errorsOf({ classes: { tal: WORKER }, hosts })).toEqual([
      'hosts/all.yaml:6:37 hosts.t1.talos.patches[1]: "../patches/nope.yaml" does not exist (looked for "patches/nope.yaml") (hint: paths are relative to the class file)',
      'hosts/all.yaml:6:59 hosts.t1.talos.patches[2]: "../patches/dir" is a folder, not a file (hint: none)',
    ]);
  });

  describe("a static address", () => {
    it("goes on the host's first MAC, or on the one `mac` names; no nameservers unless listed", () => {
      const hosts = [
        "hosts:",
        "  t1: { class: tal, macs: [52:54:00:00:00:01, 52:54:00:00:00:02], ip: 10.0.0.5, talos: { network: { address: 10.0.0.5/24 } } }",
        "  t2:",
        "    class: tal",
        "    macs: [52:54:00:00:00:03, 52:54:00:00:00:04]",
        "    talos: { network: { address: 10.0.0.6/24, gateway: 10.0.0.1, nameservers: [1.1.1.1, 9.9.9.9], mac: 52-54-00-00-00-04 } }",
        "",
      ].join("\n");
      const talosHosts = talosOf(hosts);
      expect([talosHosts.t1!.network, talosHosts.t2!.network]).toEqual([
        { address: "10.0.0.5/24", gateway: undefined, nameservers: [], mac: "52-54-00-00-00-01" },
        { address: "10.0.0.6/24", gateway: "10.0.0.1", nameservers: ["1.1.1.1", "9.9.9.9"], mac: "52-54-00-00-00-04" },
      ]);
    });

    it("a `mac` that is not one of the host's, or no MAC, and an address that is not the host's ip: each refused", () => {
      const hosts = [
        "hosts:",
        "  t1: { class: tal, mac: 52:54:00:00:00:01, talos: { network: { address: 10.0.0.5/24, mac: 52:54:00:00:00:09 } } }",
        "  t2: { class: tal, mac: 52:54:00:00:00:02, talos: { network: { address: 10.0.0.6/24, mac: nope } } }",
        "  t3: { class: tal, mac: 52:54:00:00:00:03, ip: 10.0.0.7, talos: { network: { address: 10.0.0.8/24 } } }",
        "",
      ].join("\n");
      expect(errorsOf({ classes: { tal: WORKER }, hosts })).toEqual([
        "hosts/all.yaml:2:92 hosts.t1.talos.network.mac: 52:54:00:00:00:09 is not one of this host's MACs (hint: give one of the MACs listed in `mac`/`macs`)",
        'hosts/all.yaml:3:92 hosts.t2.talos.network.mac: "nope" is not a MAC address (hint: six hex pairs, e.g. 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456))',
        "hosts/all.yaml:4:88 hosts.t3.talos.network.address: the address 10.0.0.8/24 is not the host's ip 10.0.0.7 (hint: make them the same address (ip without the prefix length))",
      ]);
    });

    it("a host whose own MACs have an error: its `mac` is not also compared with them", () => {
      const hosts = [
        "hosts:",
        "  t1: { class: tal, mac: 5, talos: { network: { address: 10.0.0.5/24, mac: 52:54:00:00:00:09 } } }",
        "  t2: { class: tal, macs: 5, talos: { network: { address: 10.0.0.6/24, mac: 52:54:00:00:00:08 } } }",
        "",
      ].join("\n");
      expect(errorsOf({ classes: { tal: WORKER }, hosts })).toEqual([
        "hosts/all.yaml:2:26 hosts.t1.mac: expected string, got number 5 (hint: YAML read this as a number/boolean: put it in quotes)",
        "hosts/all.yaml:3:27 hosts.t2.macs: expected array, got number 5 (hint: none)",
      ]);
    });
  });

  describe("what its machine config needs", () => {
    const roleHint = "set `talos: { role: worker }` (or controlplane) on the host, or `talos.machine.role` on the class";

    it("a role, from the host or its class: without one, refused at the host's `talos`, or at the host", () => {
      const hosts = "hosts:\n  t1: { class: bare, mac: 52:54:00:00:00:01, talos: { installDisk: /dev/sda } }\n  t2: { class: bare, mac: 52:54:00:00:00:02 }\n";
      expect(errorsOf({ site: "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: w.yaml }\n", classes: { bare: talos() }, hosts })).toEqual([
        `hosts/all.yaml:2:53 hosts.t1.talos.role: host t1 of Talos class bare has no role, so netbuild cannot tell which base config to render its machine config from (hint: ${roleHint})`,
        `hosts/all.yaml:3:7 hosts.t2.talos.role: host t2 of Talos class bare has no role, so netbuild cannot tell which base config to render its machine config from (hint: ${roleHint})`,
      ]);
    });

    it("the site's base config for its role: refused at the host's role, or at its class when the class gives the role", () => {
      const hosts = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01, talos: { role: controlplane } }\n  t2: { class: cp, mac: 52:54:00:00:00:02 }\n  t3: { class: tal, mac: 52:54:00:00:00:03 }\n";
      const hint = "set `talos: { baseConfigs: { controlplane: secrets/controlplane.yaml } }` in netbuild.yaml (the file `talosctl gen config` writes; keep it out of git or encrypted)";
      expect(errorsOf({ site: "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: w.yaml }\n", classes: { tal: WORKER, cp: talos("  machine: { role: controlplane }\n") }, hosts })).toEqual([
        `hosts/all.yaml:2:60 hosts.t1.talos.role: role controlplane has no base config (hint: ${hint})`,
        `hosts/all.yaml:3:16 hosts.t2.talos.role: role controlplane has no base config (hint: ${hint})`,
      ]);
    });

    it("the URL the tree is served at: without netbuild.yaml's `talos.configBaseUrl` (or without netbuild.yaml), refused at each host", () => {
      const hosts = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01 }\n";
      const error =
        "hosts/all.yaml:2:7 hosts.t1.talos: host t1 boots Talos, which fetches its machine config from a URL, and netbuild.yaml does not say where the tree is served (hint: set `url: https://boot.example/path` in netbuild.yaml (the URL the boot server serves this tree at; `talos.configBaseUrl` overrides it for Talos))";
      expect(errorsOf({ site: "talos: { baseConfigs: { worker: w.yaml } }\n", classes: { tal: WORKER }, hosts })).toEqual([error]);
      expect(errorsOf({ site: null, classes: { tal: WORKER }, hosts })).toEqual([error]);
    });

    it("the site's `url` is where Talos hosts fetch their configs too, unless `talos.configBaseUrl` says otherwise; a refused `url` is not reported again at each host", () => {
      const hosts = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01 }\n";
      const served = load({ site: "url: http://10.0.0.1:8080/nb/\ntalos: { baseConfigs: { worker: w.yaml } }\n", classes: { tal: WORKER }, hosts });
      expect(served.errors).toEqual([]);
      expect(served.inventory!.hosts[0]!.talos?.configUrl).toBe("talos.config=http://10.0.0.1:8080/nb/by-host/t1/talos.yaml");
      const own = load({ site: "url: http://10.0.0.1:8080/nb\ntalos: { configBaseUrl: https://cfg.example/x, baseConfigs: { worker: w.yaml } }\n", classes: { tal: WORKER }, hosts });
      expect(own.inventory!.hosts[0]!.talos?.configUrl).toBe("talos.config=https://cfg.example/x/by-host/t1/talos.yaml");
      expect(errorsOf({ site: "url: http://10.0.0.1:8080/a,b\ntalos: { baseConfigs: { worker: w.yaml } }\n", classes: { tal: WORKER }, hosts })).toEqual([
        "netbuild.yaml:1:6 site.url: the URL cannot go into a DHCP configuration or an iPXE script as it is (hint: give a plain URL of letters, digits and . _ ~ % + - / after the host, with no user info, query or fragment, like http://192.168.1.10:8080/netboot)",
      ]);
    });

    it("a site setting with an error of its own is reported there only, not again at each host", () => {
      const hosts = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01 }\n";
      expect(errorsOf({ site: "talos: { configBaseUrl: 5, baseConfigs: { worker: w.yaml } }\n", classes: { tal: WORKER }, hosts })).toEqual(["netbuild.yaml:1:25 site.talos.configBaseUrl: expected string, got number 5 (hint: YAML read this as a number/boolean: put it in quotes)"]);
      expect(errorsOf({ site: "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: ../w.yaml }\n", classes: { tal: WORKER }, hosts })).toEqual([
        expect.stringMatching(/^netbuild\.yaml:3:\d+ site\.talos\.baseConfigs\.worker: "\.\.\/w\.yaml" points outside the inventory root/),
      ]);
    });
  });

  describe("talos settings on a host of another class", () => {
    const hosts = (cls: string) => `hosts:\n  h1: { class: ${cls}, mac: 52:54:00:00:00:01, talos: { role: worker, volumes: { EPHEMERAL: { maxSize: 1GB } } } }\n`;

    it("a NixOS or prebuilt class: refused", () => {
      expect(errorsOf({ classes: { small: PREBUILT }, hosts: hosts("small") })).toEqual(["hosts/all.yaml:2:54 hosts.h1.talos: talos settings on a host of class small, which is not a Talos class (hint: remove them, or move the host to a Talos class)"]);
    });

    it("an unknown class, or one with an error: only that is said", () => {
      expect(errorsOf({ classes: { small: PREBUILT }, hosts: hosts("tall") })).toEqual(['hosts/all.yaml:2:16 hosts.h1.class: unknown class "tall" (hint: did you mean "small"? (classes are the files in classes/))']);
      expect(errorsOf({ classes: { tal: talos("  platform: Metal\n") }, hosts: hosts("tal") })).toEqual([expect.stringMatching(/^classes\/tal\.yaml:4:13 classes\.tal\.talos\.platform: expected a platform name like metal/)]);
    });
  });
});
