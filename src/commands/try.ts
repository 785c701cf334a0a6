// netbuild try HOST: boot one host of the inventory in a local VM, like `nixos-rebuild build-vm`
// for netboot. QEMU gets the host's first MAC and boots through the real iPXE against the built
// tree, served on loopback for the run (no access log: a try is not a discovery). The console goes
// to stderr; the kernel command line the host received, and how the run ended, are the result.
import path from "node:path";
import { UserError } from "../errors.ts";
import { ramNeeded } from "../core/checks.ts";
import { macColons } from "../core/names.ts";
import { readManifest } from "../adapters/local-tree.ts";
import { serveTree } from "../adapters/http-serve.ts";
import { onInterrupt } from "../adapters/interrupt.ts";
import { runVm } from "../adapters/qemu.ts";
import { loadRoot, outOf, rootOf, type Context, type OutOptions } from "./context.ts";
import { unknownHost } from "./provision.ts";

export interface TryOptions extends OutOptions {
  host: string;
  firmware: "bios" | "uefi";
  /** Seconds: the longest the VM runs. */
  timeout: number;
  memoryMiB?: number | undefined;
  /** Where the console goes (stderr). */
  console: (text: string) => void;
}

export interface TryResult {
  host: string;
  mac: string;
  className: string;
  firmware: "bios" | "uefi";
  memoryMiB: number;
  cmdline: string | undefined;
  /** poweroff: the machine stopped by itself; timeout: still running at --timeout; interrupted: Ctrl-C. */
  stoppedBy: "poweroff" | "timeout" | "interrupted";
  seconds: number;
}

const MIB = 1024 * 1024;

export async function tryHost(options: TryOptions, ctx: Context): Promise<TryResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const host = inv.hosts.find((h) => h.name === options.host);
  if (!host) throw unknownHost(options.host, inv.hosts);
  if (host.macs.length === 0) throw new UserError("USAGE", `host ${host.name} has no MAC: a VM cannot boot as it`, { hint: "give it `mac:` in its file under hosts/" });
  const out = outOf(options, ctx, root, inv);
  const manifest = await readManifest(out);
  const built = manifest?.classes[host.className];
  if (!built || !manifest?.entries[`by-host/${host.name}/ipxe`]) throw new UserError("OUT_NOT_BUILT", `host ${host.name}'s class ${host.className} is not built in ${path.relative(ctx.cwd, out) || "."}`, { hint: `run \`netbuild build --class ${host.className}\`` });
  const memoryMiB = options.memoryMiB ?? Math.max(512, Math.ceil(ramNeeded(built) / MIB / 64) * 64);
  const mac = macColons(host.macs[0]!);
  const server = await serveTree(out, "127.0.0.1", 0, () => undefined);
  let interrupted: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => (interrupted = resolve));
  const stopHandling = onInterrupt(() => interrupted());
  const started = Date.now();
  try {
    if (host.provisionDisks) ctx.reporter.info(`${host.name}'s wipe flag is armed: it boots with it, in a VM with no disks (nothing to format)`);
    ctx.reporter.info(`booting ${host.name} (${mac}, class ${host.className}) under ${options.firmware.toUpperCase()} with ${memoryMiB} MiB, from ${out} served at http://127.0.0.1:${server.port}/ (at most ${options.timeout} s; Ctrl-C stops it)`);
    const vm = await runVm({ mac, firmware: options.firmware, bootUrl: `http://10.0.2.2:${server.port}/boot.ipxe`, memoryMiB, timeoutMs: options.timeout * 1000, onConsole: options.console, stop });
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    if (!vm.kernelStarted && vm.stoppedBy !== "interrupted") {
      throw new UserError("TRY_FAILED", `${host.name} did not start a kernel within ${options.timeout} s${vm.stoppedBy === "poweroff" ? " (the VM stopped first)" : ""}`, { detail: vm.console.trim().split("\n").slice(-8).join("\n"), hint: "read its console above; a slow image may need a longer --timeout" });
    }
    return { host: host.name, mac, className: host.className, firmware: options.firmware, memoryMiB, cmdline: vm.cmdline, stoppedBy: vm.stoppedBy, seconds };
  } finally {
    stopHandling();
    await server.close();
  }
}
