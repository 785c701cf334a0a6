// From a bare LAN to a booted machine, all real: a network namespace with a bridge, a "router"
// namespace running its own plain DHCP server (addresses only), `netbuild serve --dhcp proxy` on
// the LAN (its own HTTP server, and dnsmasq as proxy DHCP and TFTP of Debian's iPXE binaries), and
// QEMU on a tap: a UEFI machine with no iPXE ROM (OVMF's own PXE, as on real hardware) and a BIOS
// machine (QEMU's iPXE ROM). Each must get its address from the router, iPXE from netbuild, then
// boot.ipxe over HTTP, and boot its host's kernel with its command line. An unknown machine boots
// nothing, is listed by `netbuild discovered`, enrolled, and boots as its host after a rebuild.
// Root only (namespaces).
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDemoFiles, cleanupTempDirs, cli, DEMO_INITRD, DEMO_KERNEL, exampleInventory, REPO, tempDir } from "./support/inventory.ts";
import { createLan, type Lan } from "./support/lan.ts";
import { OVMF_CODE, OVMF_VARS, pxeBoot } from "./support/qemu.ts";
import { cannotRun, missing } from "./support/tools.ts";

const notHere = missing({
  commands: ["qemu-system-x86_64", "nix-build", "dnsmasq", "ip"],
  files: [OVMF_CODE, OVMF_VARS, "/usr/lib/ipxe/qemu/efi-virtio.rom", "/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/snponly.efi", DEMO_KERNEL, DEMO_INITRD],
});

describe.skipIf(notHere)("a bare LAN: netbuild serve --dhcp proxy next to the router's DHCP server", () => {
  let lan: Lan | undefined;
  let serve: ChildProcess | undefined;
  let root: string;
  let serveLog = "";
  let why: string | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) {
      why = "root, for network namespaces";
      return;
    }
    root = exampleInventory();
    addDemoFiles(root);
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
    lan = createLan(tempDir());
    serve = lan.spawnIn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "serve", "--listen", "0.0.0.0:8099", "--dhcp", "proxy", "--interface", "br0", "--root", root], { NO_COLOR: "1" });
    serve.stderr!.setEncoding("utf8");
    serve.stdout!.setEncoding("utf8");
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start:\n${serveLog}`)), 60_000);
      serve!.stderr!.on("data", (chunk: string) => {
        serveLog += chunk;
        if (serveLog.includes("proxy DHCP on br0")) {
          clearTimeout(timer);
          resolve();
        }
      });
      serve!.once("exit", (code) => reject(new Error(`serve exited (${code}):\n${serveLog}`)));
    });
  }, 300_000);

  afterAll(async () => {
    await lan?.remove();
    cleanupTempDirs();
  });

  for (const firmware of ["uefi", "bios"] as const) {
    it(`a ${firmware === "uefi" ? "UEFI machine with no iPXE ROM (OVMF's PXE)" : "BIOS machine (QEMU's iPXE ROM)"}: address from the router, ${firmware === "uefi" ? "snponly.efi over TFTP from netbuild, then " : ""}boot.ipxe over HTTP, its host's kernel and command line`, async (t) => {
      if (why) return cannotRun(t, why);
      const before = serveLog.length;
      const boot = await pxeBoot({ mac: "52:54:00:12:34:56", firmware, bootFile: "", lan: { netns: lan!.netns, tap: lan!.tap, noRom: firmware === "uefi" }, timeoutMs: 240_000 });
      const seen = serveLog.slice(before);
      expect(boot.cmdline, `${boot.console.slice(-3000)}\n--- serve:\n${seen.slice(-3000)}`).toBeDefined();
      expect(boot.cmdline!.split(/\s+/)).toEqual(expect.arrayContaining(["hostname=demo-fresh", "homelab.provision_disks=true", "homelab.provision_id=2026-11-29"]));
      expect(boot.stoppedBy).toBe("poweroff");
      // The boot information came from netbuild's proxy, the address from the router (its range: the proxy hands out none).
      expect(seen).toMatch(/dnsmasq: dnsmasq-dhcp\[\d+\]: PXE\(br0\) 52:54:00:12:34:56 proxy/);
      if (firmware === "uefi") expect(seen).toMatch(/dnsmasq-tftp\[\d+\]: sent \/usr\/lib\/ipxe\/snponly\.efi to 192\.168\.77\.(1\d\d|200)/);
      else expect(seen).not.toContain("undionly.kpxe to");
      expect(seen).toMatch(/192\.168\.77\.(1\d\d|200) GET \/boot\.ipxe 200/);
      const log = readFileSync(path.join(root, ".netbuild/serve/access.log"), "utf8");
      expect(log).toMatch(/^192\.168\.77\.(1\d\d|200) - - \[[^\]]+\] "GET \/by-mac\/52-54-00-12-34-56\/ipxe HTTP\/1\.1" 200 \d+ "-" "iPXE\/[^"]+"$/m);
    }, 300_000);
  }

  it("an unknown machine boots nothing but is recorded; `netbuild discovered` lists it (UEFI), `netbuild enrol` adds it, and after a build it boots as that host — serve picks up the new tree live", async (t) => {
    if (why) return cannotRun(t, why);
    const mac = "52:54:00:77:00:01";
    const unknown = await pxeBoot({ mac, firmware: "uefi", bootFile: "", lan: { netns: lan!.netns, tap: lan!.tap, noRom: true }, stopWhen: /booting nothing/, timeoutMs: 240_000 });
    expect(unknown.console).toContain(`netbuild: unknown machine ${mac}, booting nothing`);
    const listed = await cli(["discovered", "--json"], root);
    expect(listed.code, listed.stderr).toBe(0);
    const doc = JSON.parse(listed.stdout);
    expect(doc.machines).toEqual([expect.objectContaining({ mac, firmware: "UEFI", arch: "x86_64", vendor: "QEMU", boots: 1, ip: expect.stringMatching(/^192\.168\.77\.(1\d\d|200)$/) })]);
    const enrolled = await cli(["enrol", mac, "--name", "newcomer", "--class", "demo"], root);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const rebuilt = await cli(["build", "--class", "demo"], root);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    const boot = await pxeBoot({ mac, firmware: "uefi", bootFile: "", lan: { netns: lan!.netns, tap: lan!.tap, noRom: true }, timeoutMs: 240_000 });
    expect(boot.cmdline, boot.console.slice(-2000)).toBeDefined();
    expect(boot.cmdline!.split(/\s+/)).toContain("hostname=newcomer");
    expect(boot.cmdline).not.toContain("provision");
    expect(JSON.parse((await cli(["discovered", "--json"], root)).stdout).machines).toEqual([]);
  }, 600_000);

  it("Ctrl-C stops serve and its dnsmasq: exit 0, the request count on stdout, no dnsmasq left", async (t) => {
    if (why) return cannotRun(t, why);
    const pid = Number(readFileSync(path.join(root, ".netbuild/serve/dnsmasq.pid"), "utf8"));
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    let stdout = "";
    serve!.stdout!.on("data", (c: string) => (stdout += c));
    const exited = new Promise<number | null>((resolve) => serve!.once("exit", (code) => resolve(code)));
    serve!.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/^stopped: \d+ requests served from http:\/\/0\.0\.0\.0:8099\/\n$/);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it("a serve killed with SIGKILL leaves its dnsmasq running; the next serve of the root stops it first, then runs its own", async (t) => {
    if (why) return cannotRun(t, why);
    const start = async () => {
      const child = lan!.spawnIn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "serve", "--listen", "0.0.0.0:8099", "--dhcp", "proxy", "--interface", "br0", "--root", root], { NO_COLOR: "1" });
      let log = "";
      child.stderr!.setEncoding("utf8");
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on("data", (c: string) => {
          log += c;
          if (log.includes("proxy DHCP on br0")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`serve exited (${code}):\n${log}`)));
      });
      return { child, log: () => log };
    };
    const first = await start();
    const pid = Number(readFileSync(path.join(root, ".netbuild/serve/dnsmasq.pid"), "utf8"));
    await new Promise((resolve) => {
      first.child.once("exit", resolve);
      first.child.kill("SIGKILL");
    });
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toMatch(/^dnsmasq\0/);
    const second = await start();
    expect(second.log()).toContain(`a dnsmasq an earlier netbuild serve left running (pid ${pid}) is stopped first`);
    // Gone, or a zombie waiting for its reaper (an empty command line).
    const after = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8");
      } catch {
        return "";
      }
    })();
    expect(after.startsWith("dnsmasq")).toBe(false);
    const exited = new Promise<number | null>((resolve) => second.child.once("exit", (code) => resolve(code)));
    second.child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 120_000);
});
