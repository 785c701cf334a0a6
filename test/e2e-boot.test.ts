// The whole flow a user relies on, with real components only: build the example inventory's demo
// class with Nix, serve the tree over HTTP, PXE-boot QEMU through the real iPXE ROM under legacy
// BIOS and UEFI, and read the kernel command line each machine actually received.
import { cpSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveFactory, serveFolder, type StaticServer } from "./support/http.ts";
import { addDemoFiles, cleanupTempDirs, cli, DEMO_INITRD, DEMO_KERNEL, exampleInventory, inventory, REPO, tempDir, treeChecksum } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { OVMF_CODE, OVMF_VARS, pxeBoot } from "./support/qemu.ts";
import { missing } from "./support/tools.ts";

/** The example inventory's Talos settings, for tests that replace its site file. */
const EXAMPLE_TALOS = "talos: { configBaseUrl: https://boot.homelab.tel/nixos, baseConfigs: { worker: secrets/talos/worker.yaml } }\n";

/** Builds the example inventory's demo class (with an optional site file) and serves the tree. */
async function buildAndServe(site?: string): Promise<{ server: StaticServer; bootFile: string; out: string }> {
  const root = exampleInventory();
  addDemoFiles(root);
  if (site !== undefined) writeFileSync(path.join(root, "netbuild.yaml"), site);
  const out = path.join(tempDir(), "tree");
  const built = await cli(["build", "--class", "demo", "--out", out], root);
  expect(built.code, built.stderr).toBe(0);
  const server = await serveFolder(out);
  // DHCP points the machine straight at boot.ipxe, as the README tells users to configure.
  return { server, bootFile: `http://10.0.2.2:${server.port}/boot.ipxe`, out };
}

const notHere = missing({
  commands: ["qemu-system-x86_64", "nix-build"],
  files: [OVMF_CODE, OVMF_VARS, "/usr/lib/ipxe/qemu/efi-virtio.rom", DEMO_KERNEL, DEMO_INITRD],
});

describe.skipIf(notHere)("PXE boot of the built demo tree (iPXE in QEMU, tree over HTTP)", () => {
  let server: StaticServer;
  let bootFile: string;

  beforeAll(async () => {
    ({ server, bootFile } = await buildAndServe());
  });

  afterAll(async () => {
    await server?.close();
    cleanupTempDirs();
  });

  for (const firmware of ["bios", "uefi"] as const) {
    it(`boots demo-fresh under ${firmware} with its hostname, class parameters and the disk-provisioning flag`, async () => {
      const boot = await pxeBoot({ mac: "52:54:00:12:34:56", firmware, bootFile });
      expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
      const words = boot.cmdline!.split(/\s+/);
      expect(words).toEqual(expect.arrayContaining(["initrd=initrd", "console=ttyS0", "panic=-1", "hostname=demo-fresh", "homelab.provision_disks=true", "homelab.provision_id=2026-11-29", "demo.role=fresh"]));
      // The host's part comes after the class's, so a host parameter wins over a class default.
      expect(words.indexOf("hostname=demo-fresh")).toBeGreaterThan(words.indexOf("panic=-1"));
      expect(boot.console).toContain("demo-fresh: DISKS WILL BE FORMATTED (WIPED) ON THIS BOOT");
      expect(boot.console).toContain("netbuild: !!! provision id 2026-11-29 (it formats once per id)");
      expect(boot.console).toContain("NETBUILD-PROVISION: disks would be wiped now");
      expect(boot.stoppedBy).toBe("poweroff");
    });

    it(`boots demo-kept under ${firmware} without any provisioning flag`, async () => {
      const boot = await pxeBoot({ mac: "52:54:00:12:34:57", firmware, bootFile });
      expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
      const words = boot.cmdline!.split(/\s+/);
      expect(words).toEqual(expect.arrayContaining(["console=ttyS0", "panic=-1", "hostname=demo-kept", "demo.role=kept"]));
      expect(boot.cmdline).not.toContain("provision");
      expect(boot.console).toContain("NETBUILD-PROVISION: none");
      expect(boot.console).not.toContain("WIPE");
    });
  }

  it("boots nothing for a MAC that is in no host file, and falls through to the local disk (BIOS)", async () => {
    const before = server.requests.length;
    const boot = await pxeBoot({ mac: "52:54:00:99:99:99", firmware: "bios", bootFile, stopWhen: /Booting from Hard Disk|No bootable device/ });
    expect(boot.stoppedBy, boot.console.slice(-3000)).toBe("match");
    expect(boot.console).toContain("netbuild: unknown machine 52:54:00:99:99:99, booting nothing");
    expect(boot.cmdline).toBeUndefined();
    const fetched = server.requests.slice(before).map((r) => `${r.status} ${r.path}`);
    expect(fetched).toEqual(["200 /boot.ipxe", "404 /by-mac/52-54-00-99-99-99/ipxe", "404 /discover/52-54-00-99-99-99"]);
    // The discovery request, as real iPXE sends it: what it knows of the machine, URL-encoded.
    const discover = new URLSearchParams(server.requests.at(-1)!.target.split("?")[1]);
    expect(Object.fromEntries(discover)).toMatchObject({ uuid: expect.stringMatching(/^[0-9a-f-]{36}$/), platform: "pcbios", manufacturer: "QEMU", buildarch: expect.stringMatching(/^(i386|x86_64)$/), chip: "virtio-net" });
    expect([...discover.keys()]).toEqual(["uuid", "serial", "manufacturer", "product", "asset", "platform", "buildarch", "chip"]);
  });
});

describe.skipIf(notHere)("PXE boot in copy mode, with a class named for unknown machines (BIOS)", () => {
  let server: StaticServer;
  let bootFile: string;

  beforeAll(async () => {
    let out: string;
    ({ server, bootFile, out } = await buildAndServe(`links: copy\nunknownMachines: { class: demo }\n${EXAMPLE_TALOS}`));
    expect(lstatSync(path.join(out, "by-mac/52-54-00-12-34-57")).isDirectory()).toBe(true);
  });

  afterAll(async () => {
    await server?.close();
    cleanupTempDirs();
  });

  it("boots a known host through a real by-mac folder (no symlinks on the server)", async () => {
    const boot = await pxeBoot({ mac: "52:54:00:12:34:57", firmware: "bios", bootFile });
    expect(boot.cmdline, boot.console.slice(-3000)).toContain("hostname=demo-kept demo.role=kept");
  });

  it("boots the named class for an unknown machine, with no hostname and no provisioning flag", async () => {
    const boot = await pxeBoot({ mac: "52:54:00:99:99:98", firmware: "bios", bootFile });
    expect(boot.console).toContain("netbuild: unknown machine 52:54:00:99:99:98, booting class demo");
    expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
    expect(boot.cmdline).toContain("console=ttyS0 panic=-1");
    expect(boot.cmdline).not.toContain("hostname=");
    expect(boot.cmdline).not.toContain("provision");
  });
});

describe.skipIf(notHere || missing({ commands: ["ssh"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] }))("PXE boot of the DEPLOYED tree: SFTP to a real sshd and a local folder at once", () => {
  let sshd: Sshd;
  let server: StaticServer;
  let root: string;
  let remote: string;
  let local: string;

  beforeAll(async () => {
    sshd = await startSshd();
    root = exampleInventory();
    addDemoFiles(root);
    remote = path.join(sshd.dir, "http", "netboot");
    mkdirSync(path.dirname(remote));
    local = path.join(tempDir(), "served");
    writeFileSync(path.join(root, "netbuild.yaml"), `targets:\n  boot: sftp://boot${remote}\n  local: ${local}\n${EXAMPLE_TALOS}`);
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
    // The example inventory has a host that wipes (demo-fresh): deployed as a user who has seen the list would.
    const deployed = await cli(["deploy", "-F", sshd.sshConfig, "--json", "--yes"], root);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect((JSON.parse(deployed.stdout) as { targets: { name: string }[] }).targets.map((t) => t.name)).toEqual(["boot", "local"]);
    server = await serveFolder(remote);
  });

  afterAll(async () => {
    await server?.close();
    await sshd?.stop();
    cleanupTempDirs();
  });

  it("deployed the same tree to both targets", () => {
    expect(treeChecksum(remote)).toBe(treeChecksum(local));
  });

  for (const firmware of ["bios", "uefi"] as const) {
    it(`boots demo-fresh under ${firmware} from the tree deployed over SFTP`, async () => {
      const boot = await pxeBoot({ mac: "52:54:00:12:34:56", firmware, bootFile: `http://10.0.2.2:${server.port}/boot.ipxe` });
      expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
      expect(boot.cmdline!.split(/\s+/)).toEqual(expect.arrayContaining(["hostname=demo-fresh", "homelab.provision_disks=true", "homelab.provision_id=2026-11-29", "console=ttyS0"]));
      expect(boot.stoppedBy).toBe("poweroff");
    });
  }

  it("verify --http proves every machine's chain over the deployed tree, and names every host it does not serve", async () => {
    const r = await cli(["verify", "--http", server.url], root);
    // Only demo is built and deployed here: the example's other hosts (ganeti-node, navidrome, talos-worker) are not served, and verify says so.
    expect(r.code, r.stderr + r.stdout).toBe(1);
    expect(r.stdout).toMatch(/ok   52-54-00-12-34-56  demo-fresh/);
    expect(r.stdout).toContain("not served: the boot server does not know this MAC");
  });
});

describe.skipIf(notHere)("PXE boot of a deployed Talos host (fixture factory: the demo kernel and initrd), BIOS and UEFI", () => {
  let factory: StaticServer;
  let server: StaticServer;
  let out: string;
  let served: string;
  let root: string;
  const schematic = "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c";
  // The factory's command line for this schematic (its extraKernelArgs at the end), as the factory serves it.
  const factoryCmdline = `talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 noapic nolapic netbuild.run=${process.pid}`;

  beforeAll(async () => {
    factory = await serveFactory(tempDir(), [{ schematic, version: "v1.12.2", kernel: readFileSync(DEMO_KERNEL), initramfs: readFileSync(DEMO_INITRD), cmdline: factoryCmdline }]);
    // The boot server first: its URL goes into each Talos host's talos.config=. It serves the
    // folder netbuild deploys to.
    served = path.join(tempDir(), "served");
    mkdirSync(served);
    server = await serveFolder(served);
    root = inventory({
      "netbuild.yaml": `talos:\n  factory: ${factory.url}\n  configBaseUrl: http://10.0.2.2:${server.port}\n  baseConfigs: { worker: secrets/worker.yaml }\ntargets:\n  boot: ${served}\n`,
      "classes/talos-worker.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  schematic:\n    customization:\n      extraKernelArgs: [noapic, nolapic]\n  machine:\n    role: worker\n    volumes: { EPHEMERAL: { maxSize: 100GB } }\nkernelParams: [console=ttyS0, panic=-1]\n",
      "hosts/tav.yaml": 'class: talos-worker\nmac: "52:54:00:a1:00:09"\nkernelParams: [talos.dashboard.disabled=1]\ntalos: { installDisk: /dev/vda }\n',
      "secrets/worker.yaml": readFileSync(path.join(REPO, "test/fixtures/talos/worker.yaml"), "utf8"),
    });
    const pinned = await cli(["pin"], root);
    expect(pinned.code, pinned.stderr).toBe(0);
    const built = await cli(["build"], root);
    expect(built.code, built.stderr).toBe(0);
    out = path.join(root, "out");
    const deployed = await cli(["deploy"], root);
    expect(deployed.code, deployed.stderr).toBe(0);
  });

  afterAll(async () => {
    await factory?.close();
    await server?.close();
    cleanupTempDirs();
  });

  for (const firmware of ["bios", "uefi"] as const) {
    it(`boots under ${firmware} with the factory's arguments, the class's and the host's, and talos.config= naming a config the server serves`, async () => {
      const boot = await pxeBoot({ mac: "52:54:00:a1:00:09", firmware, bootFile: `http://10.0.2.2:${server.port}/boot.ipxe` });
      expect(boot.cmdline, boot.console.slice(-3000)).toBeDefined();
      const words = boot.cmdline!.split(/\s+/);
      const configUrl = `http://10.0.2.2:${server.port}/by-host/tav/talos.yaml`;
      // In order: the factory's command line, the class's parameters, then the host's.
      const expected = [...factoryCmdline.split(" "), "console=ttyS0", "panic=-1", "hostname=tav", `talos.config=${configUrl}`, "talos.dashboard.disabled=1"];
      expect(words.filter((w) => expected.includes(w))).toEqual(expected);
      expect(boot.console).toContain("netbuild: tav boots class talos-worker");
      // The machine fetches its config from that URL (10.0.2.2 is this host, seen from the VM).
      const before = server.requests.length;
      const res = await fetch(configUrl.replace("10.0.2.2", "127.0.0.1"));
      expect(res.status).toBe(200);
      const config = await res.text();
      expect(config).toBe(readFileSync(path.join(out, "by-host/tav/talos.yaml"), "utf8"));
      expect(config).toBe(readFileSync(path.join(served, "by-host/tav/talos.yaml"), "utf8"));
      expect(config).toContain('kind: HostnameConfig\nauto: "off"\nhostname: tav');
      expect(config).toContain('kind: VolumeConfig\nname: EPHEMERAL\nprovisioning:\n  maxSize: "100GB"');
      expect(config).toContain("disk: /dev/vda");
      expect(server.requests.slice(before).map((r) => `${r.status} ${r.path}`)).toEqual(["200 /by-host/tav/talos.yaml"]);
    });
  }

  it("verify --http fetches each Talos host's machine config where talos.config= says, and checks it is served as built", async () => {
    // As the boot server is seen from here, not from the VM (10.0.2.2): the URL a machine would use.
    writeFileSync(path.join(root, "netbuild.yaml"), readFileSync(path.join(root, "netbuild.yaml"), "utf8").replace(`http://10.0.2.2:${server.port}`, server.url));
    expect((await cli(["deploy"], root)).code).toBe(0);
    const ok = await cli(["verify", "--http", server.url], root);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    const file = path.join(served, "by-host/tav/talos.yaml");
    const config = readFileSync(file, "utf8");
    writeFileSync(file, config.replace("hostname: tav", "hostname: intruder"));
    const bad = await cli(["verify", "--http", server.url], root);
    writeFileSync(file, config);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${server.url}/by-host/tav/talos.yaml (its machine config) is not the one in the built tree`);
    // A configBaseUrl that does not lead to the tree is caught too.
    writeFileSync(path.join(root, "netbuild.yaml"), readFileSync(path.join(root, "netbuild.yaml"), "utf8").replace(server.url, `${server.url}/wrong`));
    expect((await cli(["deploy"], root)).code).toBe(0);
    const wrong = await cli(["verify", "--http", server.url], root);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(`${server.url}/wrong/by-host/tav/talos.yaml (its machine config): HTTP 404`);
  });

  it("lets a second checkout without the base configs (kept out of git) change a Talos host's script; its machine config stays as served", async () => {
    // Checkout B: the same inventory without secrets/, building only a small prebuilt class of its own.
    const b = tempDir();
    for (const e of ["netbuild.yaml", "classes", "hosts"]) cpSync(path.join(root, e), path.join(b, e), { recursive: true });
    addDemoFiles(b);
    writeFileSync(path.join(b, "classes/demo.yaml"), "kind: prebuilt\nkernel: { path: ./demo/bzImage }\ninitrd: { path: ./demo/initrd }\n");
    writeFileSync(path.join(b, "hosts/d1.yaml"), 'class: demo\nmac: "52:54:00:a1:00:0a"\n');
    const built = await cli(["build", "--class", "demo"], b);
    expect(built.code, built.stderr).toBe(0);
    const config = readFileSync(path.join(served, "by-host/tav/talos.yaml"), "utf8");
    writeFileSync(path.join(b, "hosts/tav.yaml"), readFileSync(path.join(b, "hosts/tav.yaml"), "utf8").replace("[talos.dashboard.disabled=1]", "[talos.dashboard.disabled=1, quiet]"));
    const r = await cli(["deploy"], b);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("cannot be rendered in this checkout");
    expect(readFileSync(path.join(served, "by-host/tav/ipxe"), "utf8")).toMatch(/^set cmdline hostname=tav talos\.config=\S+ talos\.dashboard\.disabled=1 quiet$/m);
    expect(readFileSync(path.join(served, "by-host/tav/talos.yaml"), "utf8")).toBe(config);
  });
});
