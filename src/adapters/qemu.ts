// QEMU as `netbuild try` runs it: one machine with the host's MAC, PXE-booting through QEMU's iPXE
// ROM with QEMU's user network, whose DHCP gives iPXE the URL of boot.ipxe (served on the
// machine's loopback, 10.0.2.2 inside the guest). SeaBIOS for BIOS, OVMF for UEFI. Software
// emulation (TCG): with KVM on a nested host, iPXE was seen to stall before DHCP.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { UserError } from "../errors.ts";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export interface VmOptions {
  mac: string;
  firmware: "bios" | "uefi";
  bootUrl: string;
  memoryMiB: number;
  timeoutMs: number;
  /** The console, as it comes (control sequences removed). */
  onConsole: (text: string) => void;
  /** Resolves when the run should stop (Ctrl-C). */
  stop: Promise<void>;
}

export interface VmResult {
  /** The kernel command line the machine booted with (the kernel prints it: "Command line: …"). */
  cmdline: string | undefined;
  kernelStarted: boolean;
  /** poweroff: the machine powered off (or rebooted) by itself; timeout; interrupted. */
  stoppedBy: "poweroff" | "timeout" | "interrupted";
  console: string;
}

/** Terminal control sequences and other control characters from the guest's console: dropped. */
export function consoleText(s: string): string {
  // eslint-disable-next-line no-control-regex
  // The console is read as latin1: bytes 0x80-0x9f (C1 controls, 0x9b an 8-bit CSI) are U+0080-U+009F.
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "").replace(/\x1b[^[]/g, "").replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, "");
}

export async function runVm(o: VmOptions): Promise<VmResult> {
  if (o.firmware === "uefi" && (!existsSync(OVMF_CODE) || !existsSync(OVMF_VARS))) throw new UserError("COMMAND_NOT_FOUND", `UEFI needs OVMF: ${OVMF_CODE} is not there`, { hint: "install it (Debian: apt install ovmf), or try --firmware bios" });
  const tmp = mkdtempSync(path.join(os.tmpdir(), "netbuild-try-"));
  const args = ["-machine", "accel=tcg", "-m", String(o.memoryMiB), "-nographic", "-no-reboot", "-net", "none"];
  if (o.firmware === "uefi") {
    const vars = path.join(tmp, "vars.fd");
    copyFileSync(OVMF_VARS, vars);
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${vars}`);
  }
  args.push("-netdev", `user,id=n0,bootfile=${o.bootUrl}`, "-device", `virtio-net-pci,netdev=n0,mac=${o.mac}`, "-boot", "n");
  const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  let pending = "";
  let stoppedBy: VmResult["stoppedBy"] = "poweroff";
  const onData = (chunk: Buffer) => {
    // A sequence cut between chunks is cleaned with the next one.
    pending += chunk.toString("latin1");
    const cut = pending.lastIndexOf("\x1b");
    const ready = cut >= 0 && pending.length - cut < 16 ? pending.slice(0, cut) : pending;
    pending = pending.slice(ready.length);
    const clean = consoleText(ready).replace(/\r/g, "");
    text += clean;
    if (clean) o.onConsole(clean);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const timer = setTimeout(() => {
    stoppedBy = "timeout";
    child.kill("SIGKILL");
  }, o.timeoutMs);
  void o.stop.then(() => {
    stoppedBy = "interrupted";
    child.kill("SIGKILL");
  });
  const exit = await new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
    child.once("error", (error: NodeJS.ErrnoException) => resolve({ code: null, error }));
    child.once("close", (code) => resolve({ code }));
  });
  clearTimeout(timer);
  rmSync(tmp, { recursive: true, force: true });
  if (exit.error?.code === "ENOENT") throw new UserError("COMMAND_NOT_FOUND", "qemu-system-x86_64 is not installed", { hint: "install QEMU (Debian: apt install qemu-system-x86 ipxe-qemu ovmf)" });
  if (exit.error) throw exit.error;
  const cmdline = /(?:^|\n)\[\s*[\d.]+\] Command line: (.*)/.exec(text)?.[1]?.trim();
  const kernelStarted = cmdline !== undefined || /(?:^|\n)\[\s*[\d.]+\] Linux version /.test(text) || /(?:^|\n)Linux version /.test(text);
  return { cmdline, kernelStarted, stoppedBy, console: text };
}
