// The whole flow a user relies on, with real components only: build the example inventory's demo
// class with Nix, serve the tree over HTTP, PXE-boot QEMU through the real iPXE ROM under legacy
// BIOS and UEFI, and read the kernel command line each machine actually received.
import { lstatSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveFolder, type StaticServer } from "./support/http.ts";
import { addDemoFiles, cleanupTempDirs, cli, DEMO_INITRD, DEMO_KERNEL, exampleInventory, tempDir, treeChecksum } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { OVMF_CODE, OVMF_VARS, pxeBoot } from "./support/qemu.ts";
import { missing } from "./support/tools.ts";

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
      expect(words).toEqual(expect.arrayContaining(["initrd=initrd", "console=ttyS0", "panic=-1", "hostname=demo-fresh", "homelab.provision_disks=true", "demo.role=fresh"]));
      // The host's part comes after the class's, so a host parameter wins over a class default.
      expect(words.indexOf("hostname=demo-fresh")).toBeGreaterThan(words.indexOf("panic=-1"));
      expect(boot.console).toContain("demo-fresh: DISKS WILL BE FORMATTED (WIPED) ON THIS BOOT");
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
    expect(fetched).toEqual(["200 /boot.ipxe", "404 /by-mac/52-54-00-99-99-99/ipxe"]);
  });
});

describe.skipIf(notHere)("PXE boot in copy mode, with a class named for unknown machines (BIOS)", () => {
  let server: StaticServer;
  let bootFile: string;

  beforeAll(async () => {
    let out: string;
    ({ server, bootFile, out } = await buildAndServe("links: copy\nunknownMachines: { class: demo }\n"));
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
    writeFileSync(path.join(root, "netbuild.yaml"), `targets:\n  boot: sftp://boot${remote}\n  local: ${local}\n`);
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
    const deployed = await cli(["deploy", "-F", sshd.sshConfig, "--json"], root);
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
      expect(boot.cmdline!.split(/\s+/)).toEqual(expect.arrayContaining(["hostname=demo-fresh", "homelab.provision_disks=true", "console=ttyS0"]));
      expect(boot.stoppedBy).toBe("poweroff");
    });
  }

  it("verify --http proves every machine's chain over the deployed tree", async () => {
    const r = await cli(["verify", "--http", server.url], root);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain("3 of 3 machines verified");
  });
});
