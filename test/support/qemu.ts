// A real PXE boot: QEMU's virtio NIC runs the real iPXE option ROM (Debian's ipxe-qemu), gets
// its boot file from QEMU's DHCP server, and fetches it over HTTP from the host's loopback
// (10.0.2.2 inside the guest). SeaBIOS for legacy BIOS, OVMF for UEFI.
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { OVMF_CODE, OVMF_VARS } from "../../src/adapters/qemu.ts";

export { OVMF_CODE, OVMF_VARS };

export interface BootOptions {
  mac: string;
  firmware: "bios" | "uefi";
  /** The boot file QEMU's own DHCP server hands out, e.g. http://10.0.2.2:PORT/boot.ipxe; unused with `lan`. */
  bootFile: string;
  /**
   * On a virtual LAN instead of QEMU's user network: QEMU runs in network namespace `netns`, on its
   * tap device `tap`, and DHCP comes from the servers there. `noRom`: no iPXE option ROM on the NIC,
   * so the firmware's own PXE client boots (OVMF's, as on real UEFI hardware).
   */
  lan?: { netns: string; tap: string; noRom?: boolean };
  /** Stop as soon as the console shows this (QEMU is killed). */
  stopWhen?: RegExp;
  timeoutMs?: number;
}

export interface BootResult {
  /** The serial console, ANSI escapes removed. */
  console: string;
  /** What the demo initrd printed as /proc/cmdline, if it booted. */
  cmdline: string | undefined;
  stoppedBy: "poweroff" | "match" | "timeout";
}

export async function pxeBoot(opts: BootOptions): Promise<BootResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "netbuild-qemu-"));
  // Software emulation always: with KVM on a nested-virtualisation host, iPXE stalled before DHCP.
  const args = ["-machine", "accel=tcg", "-m", "768", "-nographic", "-no-reboot", "-net", "none"];
  if (opts.firmware === "uefi") {
    const vars = path.join(tmp, "vars.fd");
    copyFileSync(OVMF_VARS, vars);
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`);
  }
  if (opts.lan) args.push("-netdev", `tap,id=n0,ifname=${opts.lan.tap},script=no,downscript=no`, "-device", `virtio-net-pci,netdev=n0,mac=${opts.mac}${opts.lan.noRom ? ",romfile=" : ""}`, "-boot", "n");
  else args.push("-netdev", `user,id=n0,bootfile=${opts.bootFile}`, "-device", `virtio-net-pci,netdev=n0,mac=${opts.mac}`, "-boot", "n");
  const child = opts.lan ? spawn("ip", ["netns", "exec", opts.lan.netns, "qemu-system-x86_64", ...args], { stdio: ["ignore", "pipe", "pipe"] }) : spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let stoppedBy: BootResult["stoppedBy"] = "poweroff";
  const timeout = setTimeout(() => {
    stoppedBy = "timeout";
    child.kill("SIGKILL");
  }, opts.timeoutMs ?? 150_000);
  const onData = (chunk: Buffer) => {
    out += chunk.toString("latin1");
    if (opts.stopWhen && stoppedBy === "poweroff" && opts.stopWhen.test(clean(out))) {
      stoppedBy = "match";
      child.kill("SIGKILL");
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  await new Promise<void>((resolve) => child.on("close", () => resolve()));
  clearTimeout(timeout);
  rmSync(tmp, { recursive: true, force: true });
  const text = clean(out);
  const m = /NETBUILD-CMDLINE: (.*)/.exec(text);
  return { console: text, cmdline: m?.[1]?.trim(), stoppedBy };
}

function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
}
