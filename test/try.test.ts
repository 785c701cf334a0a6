// `netbuild try HOST` as users run it: the example's demo hosts booted in QEMU through the real
// iPXE under BIOS and UEFI, against the built tree served on loopback; its console on stderr, the
// command line the host received as the result; and its errors.
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDemoFiles, cleanupTempDirs, cli, cliProcess, DEMO_INITRD, DEMO_KERNEL, exampleInventory } from "./support/inventory.ts";
import { OVMF_CODE, OVMF_VARS } from "./support/qemu.ts";
import { missing } from "./support/tools.ts";

const notHere = missing({ commands: ["qemu-system-x86_64", "nix-build"], files: [OVMF_CODE, OVMF_VARS, "/usr/lib/ipxe/qemu/efi-virtio.rom", DEMO_KERNEL, DEMO_INITRD] });

describe.skipIf(notHere)("netbuild try", () => {
  let root: string;

  beforeAll(async () => {
    root = exampleInventory();
    addDemoFiles(root);
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
  }, 120_000);

  afterAll(cleanupTempDirs);

  it("boots demo-fresh under BIOS: its console on stderr, the command line it received on stdout, exit 0 when it powers off", async () => {
    const started = performance.now();
    const r = await cliProcess(["try", "demo-fresh", "--timeout", "240"], root);
    console.log(`netbuild try (BIOS): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toMatch(/^demo-fresh booted a kernel with the command line:\n {2}initrd=initrd console=ttyS0 panic=-1 hostname=demo-fresh homelab\.provision_disks=true homelab\.provision_id=2026-11-29 demo\.role=fresh\nit powered off by itself after [\d.]+ s\n$/);
    expect(r.stderr).toContain("demo-fresh's wipe flag is armed: it boots with it, in a VM with no disks (nothing to format)");
    expect(r.stderr).toContain("NETBUILD-CMDLINE: initrd=initrd");
    expect(r.stderr).toMatch(/booting demo-fresh \(52:54:00:12:34:56, class demo\) under BIOS with \d+ MiB/);
    // eslint-disable-next-line no-control-regex
    expect(r.stderr).not.toMatch(/\x1b/);
  }, 300_000);

  it("boots demo-kept under UEFI; --json gives the result as one document", async () => {
    const started = performance.now();
    const r = await cliProcess(["try", "demo-kept", "--firmware", "uefi", "--memory", "640", "--timeout", "240", "--json"], root);
    console.log(`netbuild try (UEFI): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: true, host: "demo-kept", mac: "52:54:00:12:34:57", className: "demo", firmware: "uefi", memoryMiB: 640, stoppedBy: "poweroff" });
    expect(doc.cmdline.split(" ")).toEqual(expect.arrayContaining(["hostname=demo-kept", "demo.role=kept"]));
    expect(doc.cmdline).not.toContain("provision");
  }, 300_000);

  it("errors: an unknown host or a bad option (2), a host whose class is not built (1)", async () => {
    const unknown = await cli(["try", "nobody"], root);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('unknown host "nobody"')]);
    const notBuilt = await cli(["try", "gimel"], root);
    expect([notBuilt.code, notBuilt.stderr]).toEqual([1, expect.stringContaining("host gimel's class navidrome is not built in out")]);
    expect((await cli(["try", "demo-fresh", "--timeout", "0"], root)).code).toBe(2);
    expect((await cli(["try", "demo-fresh", "--firmware", "coreboot"], root)).code).toBe(2);
  });
});
