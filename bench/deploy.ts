// `netbuild deploy` over SFTP against a real OpenSSH sshd on loopback (test/support/sshd.ts), next to
// OpenSSH's own tools, all in one run on this machine:
//   1. large files: a 300 MiB initrd + 10 MiB kernel, first deploy into a fresh folder, vs
//      `sftp -b` put and `rsync` of the same two files (MB/s, ratios netbuild÷sftp, netbuild÷rsync)
//   2. 1,000 hosts of a tiny class: first deploy and no-op deploy vs `rsync -a --delete` of out/
//      (seconds, ratios netbuild÷rsync), and the content bytes the server received in the no-op
//   3. peak RSS (VmHWM, sampled every 50 ms) and throughput of deploying a 1 GiB initrd
// Every figure is a whole process's wall time as users see it (Node and tsx starting included for
// netbuild, the ssh handshake for every tool); median of 3, alternating order. Figures are noisy
// (page cache, a 2-core VM): compare them as ratios within one run, not across machines or runs.
// Builds are not timed. Run: npx tsx bench/deploy.ts   (QUICK=1: sizes ÷100, 100 hosts, a smoke test)
// Prints a Markdown table on stdout and a JSON line last; progress goes to stderr.
import { spawn, spawnSync } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cleanupTempDirs, inventory } from "../test/support/inventory.ts";
import { startSshd, type Sshd } from "../test/support/sshd.ts";
import { timed } from "./timed.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const BIN = path.join(REPO, "bin/netbuild.js");
const MiB = 2 ** 20;
const QUICK = Boolean(process.env["QUICK"]);
const INITRD = (QUICK ? 3 : 300) * MiB;
const KERNEL = (QUICK ? 0.1 : 10) * MiB;
const HUGE = (QUICK ? 10 : 1024) * MiB;
const HOSTS = QUICK ? 100 : 1000;
const REPEATS = 3;

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/**
 * Where the "boot server" keeps what it receives: tmpfs when there is one, so that this VM's disk
 * (whose write-back stalls come and go) does not set the pace for every tool alike and drown the
 * differences between them. BENCH_DISK=1 puts it on disk instead, next to sshd's files.
 */
const ON_TMPFS = !process.env["BENCH_DISK"] && existsSync("/dev/shm");
const remoteBase = ON_TMPFS ? mkdtempSync("/dev/shm/netbuild-bench-") : undefined;
const fresh = (sshd: Sshd, what: string) => path.join(remoteBase ?? sshd.dir, `${what}-${Math.random().toString(36).slice(2, 8)}`);

/** Deterministic incompressible bytes (AES-CTR of zeros), streamed 1 MiB at a time: a rerun reuses its Nix store paths. */
function writeRandom(file: string, bytes: number, seed: string): void {
  const cipher = createCipheriv("aes-128-ctr", createHash("sha256").update(seed).digest().subarray(0, 16), Buffer.alloc(16));
  const zeros = Buffer.alloc(MiB);
  const fd = openSync(file, "w");
  try {
    for (let left = bytes; left > 0; left -= MiB) writeSync(fd, cipher.update(zeros.subarray(0, Math.min(MiB, left))));
  } finally {
    closeSync(fd);
  }
}

const netbuild = (root: string, ...args: string[]) => [BIN, ...args, "--root", root];

/** Bytes of regular files under a folder (what arrived). */
function treeBytes(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const st = lstatSync(path.join(dir, name));
    n += st.isDirectory() ? treeBytes(path.join(dir, name)) : st.isFile() ? st.size : 0;
  }
  return n;
}

/** Points the site's one target at a folder on the sshd (`boot` is its ssh_config alias). */
const setTarget = (root: string, folder: string) => writeFileSync(path.join(root, "netbuild.yaml"), `targets:\n  boot: sftp://boot${folder}\n`);

/** An inventory root whose class `big` is a prebuilt kernel + initrd of these sizes, built (not timed). */
function bigInventory(sshd: Sshd, kernel: number, initrd: number): { root: string; files: string[] } {
  const root = inventory({ "netbuild.yaml": "", "classes/big.yaml": "kind: prebuilt\nkernel: { path: ./big/kernel }\ninitrd: { path: ./big/initrd }\n", "classes/big/kernel": "", "hosts/h.yaml": 'class: big\nmac: "02:00:00:00:00:01"\n' });
  setTarget(root, fresh(sshd, "unused"));
  log(`writing ${(initrd / MiB).toFixed(0)} MiB initrd and ${(kernel / MiB).toFixed(0)} MiB kernel in ${root}`);
  writeRandom(path.join(root, "classes/big/kernel"), kernel, `kernel-${kernel}`);
  writeRandom(path.join(root, "classes/big/initrd"), initrd, `initrd-${initrd}`);
  log("netbuild build (nix-build copies them into the store; not timed)");
  timed(process.execPath, netbuild(root, "build"), { cwd: root });
  const manifest = JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")) as { classes: Record<string, { kernel: { path: string }; initrd: { path: string } }> };
  const c = manifest.classes["big"]!;
  return { root, files: [c.kernel.path, c.initrd.path].map((p) => path.join(root, "out", p)) };
}

/** Part 1: first deploy of two large files vs sftp put and rsync; each into a fresh folder, removed after. */
function largeFiles(sshd: Sshd) {
  const { root, files } = bigInventory(sshd, KERNEL, INITRD);
  const bytes = files.reduce((n, f) => n + lstatSync(f).size, 0);
  const runs: Record<"netbuild" | "sftp" | "rsync", number[]> = { netbuild: [], sftp: [], rsync: [] };
  const tools = {
    netbuild(dir: string) {
      setTarget(root, dir);
      return timed(process.execPath, netbuild(root, "deploy", "-F", sshd.sshConfig), { cwd: root });
    },
    sftp(dir: string) {
      const batch = [`mkdir ${dir}`, ...files.map((f) => `put ${f} ${dir}/${path.basename(f)}`), ""].join("\n");
      return timed("sftp", ["-F", sshd.sshConfig, "-b", "-", "boot"], { input: batch });
    },
    rsync: (dir: string) => timed("rsync", ["-e", `ssh -F ${sshd.sshConfig}`, ...files, `boot:${dir}/`]),
  };
  for (let i = 0; i < REPEATS; i++) {
    const order = (["netbuild", "sftp", "rsync"] as const).slice();
    if (i % 2 === 1) order.reverse();
    for (const tool of order) {
      const dir = fresh(sshd, `large-${tool}`);
      const s = tools[tool](dir);
      const arrived = treeBytes(dir);
      if (arrived < bytes) throw new Error(`${tool}: ${arrived} of ${bytes} bytes arrived in ${dir}`);
      runs[tool].push(s);
      log(`large files, ${tool} #${i + 1}: ${s.toFixed(2)} s, ${(bytes / 1e6 / s).toFixed(0)} MB/s`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const mbps = (tool: keyof typeof runs) => bytes / 1e6 / median(runs[tool]);
  return { bytes, seconds: runs, mbps: { netbuild: mbps("netbuild"), sftp: mbps("sftp"), rsync: mbps("rsync") } };
}

/** Part 2: 1,000 hosts of a tiny class, first and no-op deploy vs rsync -a --delete of out/. */
function manyHosts(sshd: Sshd) {
  let rack = "hosts:\n";
  for (let i = 1; i <= HOSTS; i++) {
    const mac = [(i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":");
    rack += `  h${String(i).padStart(4, "0")}:\n    class: small\n    mac: "02:00:00:00:${mac}"\n`;
  }
  const root = inventory({ "netbuild.yaml": "", "classes/small.yaml": "kind: prebuilt\nkernel: { path: ./small/kernel }\ninitrd: { path: ./small/initrd }\n", "classes/small/kernel": "tiny kernel\n", "classes/small/initrd": "tiny initrd\n", "hosts/rack.yaml": rack });
  setTarget(root, fresh(sshd, "unused"));
  log(`${HOSTS} hosts: netbuild build (not timed)`);
  timed(process.execPath, netbuild(root, "build"), { cwd: root });
  const runs = { netbuildFull: [] as number[], netbuildNoop: [] as number[], rsyncFull: [] as number[], rsyncNoop: [] as number[], noopBytes: [] as number[] };
  const deploy = () => timed(process.execPath, netbuild(root, "deploy", "-F", sshd.sshConfig), { cwd: root });
  const rsync = (dir: string) => timed("rsync", ["-a", "--delete", "--exclude=/.netbuild", "-e", `ssh -F ${sshd.sshConfig}`, `${path.join(root, "out")}/`, `boot:${dir}/`]);
  for (let i = 0; i < REPEATS; i++) {
    const steps = [
      () => {
        const dir = fresh(sshd, "hosts-netbuild");
        setTarget(root, dir);
        runs.netbuildFull.push(deploy());
        const mark = sshd.mark();
        runs.netbuildNoop.push(deploy());
        runs.noopBytes.push(sshd.written(mark).filter((w) => !w.path.includes("/.netbuild/lock")).reduce((n, w) => n + w.bytes, 0));
        log(`${HOSTS} hosts, netbuild #${i + 1}: full ${runs.netbuildFull.at(-1)!.toFixed(2)} s, no-op ${runs.netbuildNoop.at(-1)!.toFixed(2)} s (${runs.noopBytes.at(-1)} content bytes written)`);
        rmSync(dir, { recursive: true, force: true });
      },
      () => {
        const dir = fresh(sshd, "hosts-rsync");
        runs.rsyncFull.push(rsync(dir));
        runs.rsyncNoop.push(rsync(dir));
        log(`${HOSTS} hosts, rsync #${i + 1}: full ${runs.rsyncFull.at(-1)!.toFixed(2)} s, no-op ${runs.rsyncNoop.at(-1)!.toFixed(2)} s`);
        rmSync(dir, { recursive: true, force: true });
      },
    ];
    if (i % 2 === 1) steps.reverse();
    for (const step of steps) step();
  }
  return { hosts: HOSTS, seconds: runs, noopBytes: Math.max(...runs.noopBytes) };
}

/** Part 3: one first deploy of a 1 GiB initrd as a child process, its VmHWM sampled every 50 ms. */
async function peakMemory(sshd: Sshd) {
  const { root, files } = bigInventory(sshd, MiB, HUGE);
  const bytes = files.reduce((n, f) => n + lstatSync(f).size, 0);
  const dir = fresh(sshd, "huge");
  setTarget(root, dir);
  log(`deploying ${(bytes / MiB).toFixed(0)} MiB, sampling VmHWM every 50 ms`);
  const started = performance.now();
  const child = spawn(process.execPath, netbuild(root, "deploy", "-F", sshd.sshConfig), { cwd: root, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let peakKiB = 0;
  const sample = () => {
    try {
      peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0));
    } catch {
      // exited between samples
    }
  };
  const timer = setInterval(sample, 50);
  sample();
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  clearInterval(timer);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`deploy of the 1 GiB class failed (${code}):\n${stderr}`);
  if (treeBytes(dir) < bytes) throw new Error(`only ${treeBytes(dir)} of ${bytes} bytes arrived`);
  rmSync(dir, { recursive: true, force: true });
  return { bytes, seconds, mbps: bytes / 1e6 / seconds, peakMiB: peakKiB / 1024 };
}

function freeGiB(dir: string): number {
  const out = spawnSync("df", ["-Pk", dir], { encoding: "utf8" }).stdout.trim().split("\n").at(-1)!.split(/\s+/);
  return Number(out[3]) / MiB;
}

let sshd: Sshd | undefined;
try {
  // Source + Nix store + out/ + one remote copy of each large file, with room to spare.
  const need = (4 * (INITRD + HUGE)) / 2 ** 30 + 2;
  for (const dir of [os.tmpdir(), "/nix/store"]) {
    const free = freeGiB(dir);
    log(`${dir}: ${free.toFixed(1)} GiB free`);
    if (free < need) throw new Error(`${dir} has ${free.toFixed(1)} GiB free; this bench needs about ${need.toFixed(0)} GiB`);
  }
  sshd = await startSshd();
  log(`sshd on 127.0.0.1:${sshd.port}`);
  const large = largeFiles(sshd);
  const many = manyHosts(sshd);
  const memory = await peakMemory(sshd);

  const s = many.seconds;
  const r2 = (x: number) => x.toFixed(2);
  const rows = [
    ["Measurement", "netbuild", "baseline", "ratio", "target"],
    ["---", "---:", "---:", "---:", "---"],
    [`first deploy, ${(large.bytes / MiB).toFixed(0)} MiB (2 files) vs sftp put`, `${large.mbps.netbuild.toFixed(0)} MB/s`, `${large.mbps.sftp.toFixed(0)} MB/s`, r2(large.mbps.netbuild / large.mbps.sftp), "≥ 1.0"],
    [`first deploy, ${(large.bytes / MiB).toFixed(0)} MiB (2 files) vs rsync`, `${large.mbps.netbuild.toFixed(0)} MB/s`, `${large.mbps.rsync.toFixed(0)} MB/s`, r2(large.mbps.netbuild / large.mbps.rsync), "≥ 1.0"],
    [`${many.hosts} hosts, first deploy vs rsync -a --delete`, `${r2(median(s.netbuildFull))} s`, `${r2(median(s.rsyncFull))} s`, r2(median(s.netbuildFull) / median(s.rsyncFull)), "≤ 1.0"],
    [`${many.hosts} hosts, no-op deploy vs rsync -a --delete`, `${r2(median(s.netbuildNoop))} s`, `${r2(median(s.rsyncNoop))} s`, r2(median(s.netbuildNoop) / median(s.rsyncNoop)), "≤ 1.0"],
    [`${many.hosts} hosts, content bytes received in the no-op`, `${many.noopBytes} B`, "", "", "0"],
    [`first deploy, ${(memory.bytes / MiB).toFixed(0)} MiB: peak RSS (VmHWM)`, `${memory.peakMiB.toFixed(0)} MiB`, "", "", "< 150 MiB"],
    [`first deploy, ${(memory.bytes / MiB).toFixed(0)} MiB: throughput`, `${memory.mbps.toFixed(0)} MB/s`, "", "", ""],
  ];
  console.log(rows.map((r) => `| ${r.join(" | ")} |`).join("\n"));
  console.log(`\nMedians of ${REPEATS} (1 GiB: one run); MB = 10^6 bytes; whole-process wall time; ${os.cpus().length} CPUs; received into ${ON_TMPFS ? "tmpfs" : "a folder on disk"}; ${new Date().toISOString()}.\n`);
  console.log(JSON.stringify({ quick: QUICK, onTmpfs: ON_TMPFS, large, many, memory }));
} finally {
  await sshd?.stop();
  cleanupTempDirs();
  if (remoteBase) rmSync(remoteBase, { recursive: true, force: true });
}
