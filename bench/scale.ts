// Performance at scale: a 10,000-host site (one hosts file, one prebuilt class of a tiny kernel and
// initrd) deployed over SFTP to a real OpenSSH sshd on loopback (test/support/sshd.ts), against
// what people use instead, all in one run on this machine:
//   1. cold `netbuild build` (no out/; the parse cache and the Nix build are warm) vs `cp -a` of the
//      tree it writes, into a new folder on the same file system (seconds, ratio netbuild÷cp)
//   2. no-op `netbuild build` and no-op `netbuild deploy` (nothing changed since the last run)
//   3. one host's `kernelParams` changed in the hosts file: `netbuild build` + `netbuild deploy`,
//      timed together, vs `rsync -a --delete` of out/ finding nothing to do (over ssh to the same
//      sshd) — the floor for "find out what changed and send it"; build and deploy also apart
// Every figure is a whole process's wall time as users see it (Node starting, nix-build checking
// its build, the SSH handshake for every tool); median of REPEATS (3), alternating order. Figures
// are noisy (page cache, a 2-core VM): compare them as ratios within one run, not across runs.
// Run: npx tsx bench/scale.ts [hosts]   (HOSTS=N works too; default 10000; QUICK=1: 500 hosts)
// Prints a Markdown table on stdout and a JSON line last; progress goes to stderr.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cleanupTempDirs, inventory } from "../test/support/inventory.ts";
import { startSshd, type Sshd } from "../test/support/sshd.ts";
import { timed } from "./timed.ts";
import { compiledIsCurrent } from "../bin/compiled.js";

const REPO = path.resolve(import.meta.dirname, "..");
const BIN = path.join(REPO, "bin/netbuild.js");
const MiB = 2 ** 20;
const QUICK = Boolean(process.env["QUICK"]);
const HOSTS = Number(process.argv[2] ?? process.env["HOSTS"] ?? (QUICK ? 500 : 10_000));
const REPEATS = Number(process.env["REPEATS"] ?? 3);
/** The host whose kernelParams the one-host change edits (it does not wipe: no --yes question is involved). */
const CHANGED = "h00001";

if (!Number.isInteger(HOSTS) || HOSTS < 2 || HOSTS > 2 ** 24) throw new Error(`hosts: ${process.argv[2] ?? process.env["HOSTS"]} is not a count from 2 to 2^24`);

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** As in bench/deploy.ts: what the "boot server" receives goes to tmpfs (BENCH_DISK=1: on disk, next to sshd's files). */
const ON_TMPFS = !process.env["BENCH_DISK"] && existsSync("/dev/shm");
const remoteBase = ON_TMPFS ? mkdtempSync("/dev/shm/netbuild-bench-") : undefined;
const remote = (sshd: Sshd, what: string) => path.join(remoteBase ?? sshd.dir, what);

/** Which code bin/netbuild.js runs (as it decides: bin/compiled.js). */
function runsFrom(): "dist" | "tsx" {
  return compiledIsCurrent() ? "dist" : "tsx";
}

/** A MAC for host i (three bytes of it: up to 2^24 hosts). */
function mac(i: number): string {
  return `02:00:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

/**
 * All hosts in one file, shaped like bench/generate-10k.ts's (class, MAC, IP, RAM, one kernel
 * parameter, every 50th wiping its disks). `rev` is the changed host's extra parameter.
 */
function hostsFile(rev: number): string {
  const lines = ["hosts:"];
  for (let i = 1; i <= HOSTS; i++) {
    const name = `h${String(i).padStart(5, "0")}`;
    lines.push(`  ${name}:`, "    class: small", `    mac: "${mac(i)}"`, `    ip: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "    ram: 16GiB");
    if (i % 50 === 0) lines.push("    provision: { disks: true, id: r1 }");
    lines.push(name === CHANGED ? `    kernelParams: [console=ttyS0, bench.rev=${rev}]` : "    kernelParams: [console=ttyS0]");
  }
  return `${lines.join("\n")}\n`;
}

let sshd: Sshd | undefined;
try {
  const from = runsFrom();
  // Other work on the machine skews every figure here (a 2-core VM): its load average is reported with them.
  const loadBefore = os.loadavg()[0]!;
  log(`netbuild runs from ${from === "dist" ? "dist/cli.js (compiled)" : "src/ through tsx (dist/ is older than src/: `npm run compile` for figures users get)"}`);
  sshd = await startSshd();
  log(`sshd on 127.0.0.1:${sshd.port}`);
  const target = remote(sshd, "target");
  const mirror = remote(sshd, "rsync");
  let rev = 0;
  const root = inventory({
    "netbuild.yaml": `targets:\n  boot: sftp://boot${target}\n`,
    "classes/small.yaml": "kind: prebuilt\nkernel: { path: ./small/kernel }\ninitrd: { path: ./small/initrd }\nkernelParams: [console=ttyS0]\n",
    "classes/small/kernel": "tiny kernel\n",
    "classes/small/initrd": "tiny initrd\n",
    "hosts/all.yaml": hostsFile(rev),
  });
  const out = path.join(root, "out");
  const copy = path.join(root, "copy");
  const env = { ...process.env, NO_COLOR: "1" };
  const build = () => timed(process.execPath, [BIN, "build", "--root", root], { cwd: root, env });
  // --yes: every 50th host wipes its disks, which a first deploy asks about (no terminal here).
  const deploy = () => timed(process.execPath, [BIN, "deploy", "--yes", "-F", sshd!.sshConfig, "--root", root], { cwd: root, env });
  const rsync = () => timed("rsync", ["-a", "--delete", "--exclude=/.netbuild", "-e", `ssh -F ${sshd!.sshConfig}`, `${out}/`, `boot:${mirror}/`]);
  /** File content bytes the server received since `mark`, its lock file left out. */
  const received = (mark: number) => sshd!.written(mark).filter((w) => !w.path.includes("/.netbuild/")).reduce((n, w) => n + w.bytes, 0);

  log(`${HOSTS} hosts in one file (${(hostsFile(rev).length / MiB).toFixed(1)} MiB): first build (nix-build puts the class in the store; not timed)`);
  const first = build();
  log(`first build ${first.toFixed(2)} s`);

  // 1. Cold build (out/ removed; the parse cache and nix-build's result stay) vs cp -a of the tree.
  const runs = { sshTrue: [] as number[], coldBuild: [] as number[], cp: [] as number[], noopBuild: [] as number[], noopDeploy: [] as number[], changeBuild: [] as number[], changeDeploy: [] as number[], change: [] as number[], rsyncNoop: [] as number[], noopBytes: [] as number[], changeBytes: [] as number[] };
  for (let i = 0; i < REPEATS; i++) {
    const steps = [
      () => {
        rmSync(out, { recursive: true, force: true });
        runs.coldBuild.push(build());
        log(`cold build #${i + 1}: ${runs.coldBuild.at(-1)!.toFixed(2)} s`);
      },
      () => {
        rmSync(copy, { recursive: true, force: true });
        runs.cp.push(timed("cp", ["-a", out, copy]));
        log(`cp -a #${i + 1}: ${runs.cp.at(-1)!.toFixed(2)} s`);
      },
    ];
    // cp -a needs a tree to copy: the first round builds first.
    if (i % 2 === 1) steps.reverse();
    for (const step of steps) step();
  }
  rmSync(copy, { recursive: true, force: true });
  const files = Number(spawnSync("sh", ["-c", 'find "$1" | wc -l', "sh", out], { encoding: "utf8" }).stdout.trim());

  // 2. No-op build; then a first deploy and a first rsync (not timed), and no-op deploys.
  for (let i = 0; i < REPEATS; i++) {
    runs.noopBuild.push(build());
    log(`no-op build #${i + 1}: ${runs.noopBuild.at(-1)!.toFixed(2)} s`);
  }
  log(`first deploy to ${target} and first rsync to ${mirror} (not timed)`);
  log(`first deploy ${deploy().toFixed(2)} s, first rsync ${rsync().toFixed(2)} s`);
  for (let i = 0; i < REPEATS; i++) {
    const mark = sshd.mark();
    runs.noopDeploy.push(deploy());
    runs.noopBytes.push(received(mark));
    log(`no-op deploy #${i + 1}: ${runs.noopDeploy.at(-1)!.toFixed(2)} s (${runs.noopBytes.at(-1)} content bytes received)`);
  }

  // 3. One host changed: build + deploy vs a no-op rsync (the mirror brought up to date first, not timed).
  for (let i = 0; i < REPEATS; i++) {
    const steps = [
      () => {
        rev++;
        writeFileSync(path.join(root, "hosts/all.yaml"), hostsFile(rev));
        const b = build();
        const mark = sshd!.mark();
        const d = deploy();
        runs.changeBuild.push(b);
        runs.changeDeploy.push(d);
        runs.change.push(b + d);
        runs.changeBytes.push(received(mark));
        const served = readFileSync(path.join(target, `by-host/${CHANGED}/ipxe`), "utf8");
        if (!served.includes(`bench.rev=${rev}`)) throw new Error(`the target does not serve ${CHANGED}'s new parameter bench.rev=${rev}:\n${served}`);
        log(`one host changed #${i + 1}: build ${b.toFixed(2)} s + deploy ${d.toFixed(2)} s = ${(b + d).toFixed(2)} s (${runs.changeBytes.at(-1)} content bytes received)`);
      },
      () => {
        rsync();
        runs.rsyncNoop.push(rsync());
        // The floor of every tool here that talks SSH: one session that runs nothing.
        runs.sshTrue.push(timed("ssh", ["-F", sshd!.sshConfig, "boot", "true"]));
        log(`rsync -a --delete, nothing to do #${i + 1}: ${runs.rsyncNoop.at(-1)!.toFixed(2)} s`);
      },
    ];
    if (i % 2 === 1) steps.reverse();
    for (const step of steps) step();
  }
  if (runsFrom() !== from) log(`WARNING: src/ changed during the run; netbuild now runs from ${runsFrom()}: figures mix both`);

  const loadAfter = os.loadavg()[0]!;
  const m = (k: keyof typeof runs) => median(runs[k]);
  const s = (x: number) => `${x.toFixed(2)} s`;
  const n = HOSTS.toLocaleString("en-US");
  const ratios = { coldBuild: m("coldBuild") / m("cp"), noopDeploy: m("noopDeploy") / m("rsyncNoop"), change: m("change") / m("rsyncNoop") };
  const met = (r: number, target: number) => `≤ ${target.toFixed(1)}${r <= target ? "" : " (missed)"}`;
  const rows = [
    ["Measurement", "netbuild", "baseline", "ratio", "target"],
    ["---", "---:", "---:", "---:", "---"],
    [`${n} hosts, cold build (writes ${files.toLocaleString("en-US")} paths) vs cp -a of the tree`, s(m("coldBuild")), `cp -a: ${s(m("cp"))}`, ratios.coldBuild.toFixed(2), met(ratios.coldBuild, 2)],
    [`${n} hosts, no-op build`, s(m("noopBuild")), "", "", ""],
    [`${n} hosts, no-op deploy vs rsync -a --delete, nothing to do`, s(m("noopDeploy")), `rsync: ${s(m("rsyncNoop"))}`, ratios.noopDeploy.toFixed(2), ""],
    [`${n} hosts, no-op deploy: content bytes received`, `${Math.max(...runs.noopBytes)} B`, "", "", "0"],
    [`${n} hosts, one host's kernelParams changed: build + deploy vs rsync -a --delete, nothing to do`, s(m("change")), `rsync: ${s(m("rsyncNoop"))}`, ratios.change.toFixed(2), met(ratios.change, 1.5)],
    [`… of which build`, s(m("changeBuild")), "", "", ""],
    [`… of which deploy`, s(m("changeDeploy")), "", "", ""],
    [`… content bytes received`, `${Math.max(...runs.changeBytes)} B`, "", "", "one script"],
    [`one SSH session that runs nothing (\`ssh boot true\`): the floor under every tool above that uses SSH`, "", s(m("sshTrue")), "", ""],
  ];
  console.log(rows.map((r) => `| ${r.join(" | ")} |`).join("\n"));
  console.log(`\nMedians of ${REPEATS} (build + deploy: the median of the sums); whole-process wall time; netbuild from ${from === "dist" ? "dist/" : "src/ through tsx"}; ${os.cpus().length} CPUs; the target and the rsync copy on ${ON_TMPFS ? "tmpfs" : "disk"}, out/ and the cp -a copy in ${os.tmpdir()}; load average ${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} at the end; ${new Date().toISOString()}.\n`);
  console.log(JSON.stringify({ quick: QUICK, hosts: HOSTS, repeats: REPEATS, runsFrom: from, onTmpfs: ON_TMPFS, loadAverage: [loadBefore, loadAfter], paths: files, firstBuild: first, seconds: runs, ratios }));
} finally {
  await sshd?.stop();
  cleanupTempDirs();
  if (remoteBase) rmSync(remoteBase, { recursive: true, force: true });
}
