// netbuild serve: the built tree over HTTP, with an access log (which `discovered` reads), and with
// `--dhcp proxy --interface IF` a real dnsmasq as a child process: proxy DHCP next to the LAN's own
// DHCP server, and TFTP of the iPXE binaries. Runs until Ctrl-C (or SIGTERM), then stops both.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, openSync, writeSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { UserError } from "../errors.ts";
import { renderDhcp, SAFE_FOLDER, type IpxeBinary } from "../core/dhcp.ts";
import { IPXE_BIOS } from "../core/tree.ts";
import { escaped } from "../core/excerpt.ts";
import { ipv4Number, ipv4String } from "../core/site.ts";
import { writeFileAtomic } from "../adapters/files.ts";
import { combinedLogLine, logEscaped, serveTree } from "../adapters/http-serve.ts";
import { onInterrupt } from "../adapters/interrupt.ts";
import { ipxeFolder, readIpxeBinaries } from "../adapters/ipxe-binaries.ts";
import { localConfinedRoot } from "../adapters/target-fs.ts";
import { ACCESS_LOG, loadRoot, outOf, rootOf, SERVE_DIR, type Context, type OutOptions } from "./context.ts";

export interface ServeOptions extends OutOptions {
  /** ADDR:PORT, :PORT or PORT (default 0.0.0.0:8080). */
  listen?: string | undefined;
  dhcp?: "proxy" | undefined;
  interface?: string | undefined;
}

export interface ServeResult {
  url: string;
  out: string;
  accessLog: string;
  requests: number;
  dhcp: { interface: string; subnet: string; tftpRoot: string } | undefined;
}


export function parseListen(spec: string | undefined): { host: string; port: number } {
  const text = spec ?? "0.0.0.0:8080";
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UserError("USAGE", `--listen ${escaped(text)}: expected ADDR:PORT, :PORT or PORT`, { hint: "e.g. --listen 0.0.0.0:8080 (all addresses), --listen 192.168.1.10:8080 or --listen [::]:8080" });
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/** The interface's IPv4 address and network, from the kernel. */
function interfaceAddress(name: string): { address: string; subnet: { address: string; prefix: number } } {
  const entry = os.networkInterfaces()[name]?.find((a) => a.family === "IPv4" && !a.internal);
  if (!entry?.cidr) throw new UserError("USAGE", `--interface ${escaped(name)}: this machine has no such interface with an IPv4 address`, { hint: `interfaces with one: ${Object.entries(os.networkInterfaces()).filter(([, as]) => as?.some((a) => a.family === "IPv4" && !a.internal)).map(([n]) => n).join(", ") || "none"}` });
  const prefix = Number(entry.cidr.split("/")[1]);
  const size = 2 ** (32 - prefix);
  return { address: entry.address, subnet: { address: ipv4String(Math.floor(ipv4Number(entry.address) / size) * size), prefix } };
}

/** `.netbuild/serve/` under the root: real folders only (the confinement rule), made when missing. */
async function serveFolder(root: string): Promise<void> {
  await localConfinedRoot(root, "ROOT_CONFLICT").prepare(`${SERVE_DIR}/x`);
}

/** Appends to the access log; a link where the log should be is refused (O_NOFOLLOW), never written through. */
function openAccessLog(file: string): number {
  try {
    return openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o640);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw new UserError("ROOT_CONFLICT", `${file} is a symlink, where netbuild keeps its access log (a regular file); nothing was changed`, { hint: "move the link away, then run again" });
    throw e;
  }
}

/**
 * A dnsmasq an earlier `netbuild serve` of this root left running (it was killed with SIGKILL):
 * found by its pid file and its command line naming this root's configuration, and stopped.
 */
async function stopLeftover(pidFile: string, confFile: string, ctx: Context): Promise<void> {
  const pid = Number((await fs.readFile(pidFile, "utf8").catch(() => "")).trim());
  // The pid file is dnsmasq's to write: whatever is there (a link planted meanwhile) goes first.
  await fs.rm(pidFile, { force: true });
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.startsWith("dnsmasq\0") || !cmdline.split("\0").includes(`--conf-file=${confFile}`)) return;
  ctx.reporter.warn(`a dnsmasq an earlier netbuild serve left running (pid ${pid}) is stopped first`);
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 50 && (await fs.stat(`/proc/${pid}`).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
}

/** Starts dnsmasq: the child at once (to stop it whatever happens next), and `ready` once it says it started (or its own words, if it exits first). */
function startDnsmasq(conf: string, pidFile: string, onLine: (line: string) => void): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn("dnsmasq", ["--keep-in-foreground", `--conf-file=${conf}`, `--pid-file=${pidFile}`, "--log-facility=-"], { stdio: ["ignore", "ignore", "pipe"] });
  const lines: string[] = [];
  let buffered = "";
  let started: () => void = () => undefined;
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      onLine(l);
      // Its last line at start in proxy mode; the DHCP and TFTP sockets are bound by then.
      if (/^dnsmasq-tftp(\[\d+\])?: TFTP root is /.test(l)) started();
    }
  });
  const ready = new Promise<void>((resolve, reject) => {
    started = resolve;
    child.once("error", (e: NodeJS.ErrnoException) => {
      reject(e.code === "ENOENT" ? new UserError("COMMAND_NOT_FOUND", "dnsmasq is not installed: --dhcp runs it for proxy DHCP and TFTP", { hint: "install it (Debian: apt install dnsmasq-base), or serve without --dhcp and point your DHCP server at the tree (netbuild dhcp)" }) : e);
    });
    child.once("exit", (code, signal) => {
      const tftp = lines.some((l) => /TFTP directory .* inaccessible/.test(l));
      const hint = tftp
        ? "dnsmasq serves TFTP as the user nobody: the iPXE binaries' folder (ipxe.binaries) and every folder above it must be readable and searchable by all users"
        : "another DHCP server on this machine (port 67), or not root: proxy DHCP needs root (or CAP_NET_BIND_SERVICE and CAP_NET_RAW)";
      reject(new UserError("SERVE_FAILED", `dnsmasq stopped at start (${signal ?? `exit ${code}`})`, { detail: lines.slice(-5).map(escaped).join("\n"), hint }));
    });
  });
  return { child, ready };
}

export async function serve(options: ServeOptions, ctx: Context): Promise<ServeResult> {
  if (options.dhcp !== undefined && options.interface === undefined) throw new UserError("USAGE", "--dhcp proxy needs --interface: the LAN interface to answer DHCP on", { hint: "e.g. --dhcp proxy --interface eth0" });
  if (options.interface !== undefined && options.dhcp === undefined) throw new UserError("USAGE", "--interface is for --dhcp proxy", { hint: "add --dhcp proxy, or leave --interface out" });
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const out = outOf(options, ctx, root, inv);
  const boot = await fs.lstat(path.join(out, "boot.ipxe")).catch(() => undefined);
  if (!boot?.isFile()) throw new UserError("OUT_NOT_BUILT", `${path.relative(ctx.cwd, out) || "."} has no boot.ipxe: there is no built tree to serve`, { hint: "run `netbuild build` first" });
  const { host, port } = parseListen(options.listen);

  // Checked before anything listens; the configuration is written once the port is known (--listen :0).
  let lan: { iface: string; address: string; subnet: { address: string; prefix: number }; folder: string; binaries: IpxeBinary[] } | undefined;
  if (options.dhcp !== undefined) {
    const found = interfaceAddress(options.interface!);
    if (host !== "0.0.0.0" && host !== "::" && host !== found.address) throw new UserError("USAGE", `--listen ${host}: machines on ${options.interface} are sent to ${found.address}, where this server would not answer`, { hint: `listen on ${found.address} or on 0.0.0.0` });
    // dnsmasq runs here: it serves the binaries from the folder they are read (and their hashes
    // shown) from, never dhcp.tftpRoot (a folder of the DHCP server's machine). Not the tree's own
    // copy: dnsmasq serves TFTP as the user `nobody`, who cannot enter a checkout in a private
    // home folder, while /usr/lib/ipxe (or the Nix store) is readable by all.
    const folder = ipxeFolder(root, inv.site.ipxe.binaries);
    const binaries = await readIpxeBinaries(folder, [IPXE_BIOS, inv.site.ipxe.efi]);
    if (!SAFE_FOLDER.test(folder!)) throw new UserError("USAGE", `the iPXE binaries' folder ${escaped(folder!)} has characters dnsmasq's configuration cannot hold as they are (a space, a comma, a quote…)`, { hint: "set `ipxe: { binaries: DIR }` in netbuild.yaml to a folder with a plain path, holding undionly.kpxe, snponly.efi and ipxe.efi" });
    lan = { iface: options.interface!, address: found.address, subnet: inv.site.dhcp.subnet ?? found.subnet, folder: folder!, binaries };
  }

  await serveFolder(root);
  const logFile = path.join(root, ACCESS_LOG);
  const logFd = openAccessLog(logFile);
  // Requests still answered while the server stops are logged too; the log is closed after them. A
  // log that cannot be written (a full disk) is said once, and serving goes on.
  let logOpen = true;
  let logFailed = false;
  let requests = 0;
  let server: Awaited<ReturnType<typeof serveTree>> | undefined;
  let dnsmasq: ChildProcess | undefined;
  // Ctrl-C, SIGTERM or SIGHUP (the terminal closed) from here on stops the servers (and dnsmasq, whatever state it is in) and returns.
  let interrupted: () => void = () => undefined;
  const interruption = new Promise<void>((resolve) => (interrupted = resolve));
  const stopHandling = onInterrupt(() => interrupted());
  const onHangup = () => interrupted();
  process.on("SIGHUP", onHangup);
  // A crash or process.exit() on the way out: dnsmasq stops with it (only SIGKILL of netbuild leaves it; the next serve stops it).
  const onExit = () => void dnsmasq?.kill("SIGTERM");
  process.on("exit", onExit);
  let url = "";
  let dhcp: ServeResult["dhcp"];
  try {
    server = await serveTree(out, host, port, (e) => {
      requests++;
      if (logOpen) {
        try {
          writeSync(logFd, combinedLogLine(e));
        } catch (err) {
          if (!logFailed) ctx.reporter.warn(`the access log ${logFile} cannot be written (${(err as Error).message}): requests are not recorded until it can`);
          logFailed = true;
        }
      }
      ctx.reporter.info(`${logEscaped(e.remote)} ${logEscaped(e.method)} ${logEscaped(e.target)} ${e.status}`);
    });
    const shownHost = server.host.includes(":") ? `[${server.host}]` : server.host;
    url = `http://${shownHost}:${server.port}`;
    const every = server.host === "0.0.0.0" || server.host === "::" ? " on every address of this machine" : "";
    const shownLog = path.relative(ctx.cwd, logFile).startsWith("..") ? logFile : path.relative(ctx.cwd, logFile);
    ctx.reporter.info(`serving ${out} at ${url}/${every} (boot.ipxe: ${url}/boot.ipxe); access log ${shownLog}. Ctrl-C stops it.`);
    let failure: Promise<UserError> = new Promise(() => undefined);
    if (lan) {
      const bootUrl = `http://${lan.address}:${server.port}`;
      if (inv.site.url !== undefined && inv.site.url !== bootUrl) ctx.reporter.warn(`machines on ${lan.iface} are sent to this server's ${bootUrl}/boot.ipxe, not to the site's url (${inv.site.url})`);
      const site = { ...inv.site, url: bootUrl, dhcp: { ...inv.site.dhcp, interface: lan.iface, subnet: lan.subnet, tftpRoot: lan.folder } };
      const r = renderDhcp({ format: "dnsmasq", mode: "proxy", site, hosts: inv.hosts, binaries: { bios: lan.binaries[0]!, efi: lan.binaries[1]! }, defaultTftpRoot: lan.folder });
      if (!r.ok) throw new UserError("SITE_INCOMPLETE", `cannot configure dnsmasq: ${r.missing.map((m) => m.field).join(", ")}`);
      dhcp = { interface: lan.iface, subnet: `${lan.subnet.address}/${lan.subnet.prefix}`, tftpRoot: lan.folder };
      const confFile = path.join(root, SERVE_DIR, "dnsmasq.conf");
      const pidFile = path.join(root, SERVE_DIR, "dnsmasq.pid");
      await stopLeftover(pidFile, confFile, ctx);
      await writeFileAtomic(confFile, r.text);
      const started = startDnsmasq(confFile, pidFile, (l) => ctx.reporter.info(`dnsmasq: ${escaped(l)}`));
      dnsmasq = started.child;
      const first = await Promise.race([started.ready.then(() => "ready" as const), interruption.then(() => "interrupted" as const)]);
      if (first === "ready") ctx.reporter.info(`proxy DHCP on ${dhcp.interface} (${dhcp.subnet}), next to the LAN's DHCP server; TFTP of the iPXE binaries from ${dhcp.tftpRoot}`);
      const child = started.child;
      failure = new Promise((resolve) => child.once("exit", (code, signal) => resolve(new UserError("SERVE_FAILED", `dnsmasq stopped (${signal ?? `exit ${code}`}): no more proxy DHCP or TFTP`, { hint: "see its last lines above; the HTTP server was stopped too" }))));
    }
    const stop = await Promise.race([interruption.then(() => undefined), failure]);
    if (stop) throw stop;
  } finally {
    stopHandling();
    process.off("SIGHUP", onHangup);
    const child = dnsmasq;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    process.off("exit", onExit);
    // Resolves once every response has closed, and so been logged.
    await server?.close();
    logOpen = false;
    closeSync(logFd);
  }
  // Counted once the server has stopped: requests it was still answering are in.
  return { url, out, accessLog: logFile, requests, dhcp };
}
