// Wall time and peak memory of `netbuild generate` for a generated inventory of 10,000 hosts,
// run as users run it (a child process: `node bin/netbuild.js generate`). Two layouts: one file
// with all hosts, and one file per host. Usage: npx tsx bench/generate-10k.ts [hosts]
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..");
const N = Number(process.argv[2] ?? 10_000);
const CLASSES = ["demo", "ganeti-node", "navidrome", "talos-worker"];

function mac(i: number): string {
  return `52:54:01:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

function hostYaml(i: number, indent: string): string {
  return [`class: ${CLASSES[i % CLASSES.length]}`, `mac: "${mac(i)}"`, `ip: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "ram: 16GiB", ...(i % 50 === 0 ? ["provision: { disks: true, id: r1 }"] : []), "kernelParams: [console=ttyS0]"]
    .map((l) => `${indent}${l}\n`)
    .join("");
}

function makeRoot(layout: "one-file" | "file-per-host"): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "netbuild-bench-"));
  for (const e of ["netbuild.yaml", "classes", "npins", "nixos"]) cpSync(path.join(REPO, e), path.join(root, e), { recursive: true });
  mkdirSync(path.join(root, "hosts"));
  if (layout === "one-file") {
    let text = "hosts:\n";
    for (let i = 0; i < N; i++) text += `  h${i}:\n${hostYaml(i, "    ")}`;
    writeFileSync(path.join(root, "hosts/all.yaml"), text);
  } else {
    for (let i = 0; i < N; i++) writeFileSync(path.join(root, `hosts/h${i}.yaml`), hostYaml(i, ""));
  }
  return root;
}

function run(root: string): { seconds: number; peakMiB: number } {
  // GNU time's %e/%M: wall seconds and maximum resident set size (KiB) of the whole process.
  const r = spawnSync("/usr/bin/time", ["-f", "%e %M", process.execPath, path.join(REPO, "bin/netbuild.js"), "generate", "--root", root], { encoding: "utf8" });
  const last = r.stderr.trim().split("\n").at(-1) ?? "";
  const m = /^(\d+(?:\.\d+)?) (\d+)$/.exec(last);
  if (r.status !== 0 || !m) throw new Error(`generate failed (${r.status}):\n${r.stderr}`);
  return { seconds: Number(m[1]), peakMiB: Number(m[2]) / 1024 };
}

for (const layout of ["one-file", "file-per-host"] as const) {
  const root = makeRoot(layout);
  const results = [0, 1, 2].map(() => run(root));
  const best = results.reduce((a, b) => (a.seconds <= b.seconds ? a : b));
  const peak = Math.max(...results.map((r) => r.peakMiB));
  // The first run parses every file (no cache yet); the next ones find .netbuild/cache/yaml.json.
  console.log(`${N} hosts, ${layout}: wall ${results.map((r) => r.seconds.toFixed(2)).join(" / ")} s (first, without the parse cache: ${results[0]!.seconds.toFixed(2)} s; best with it: ${best.seconds.toFixed(2)} s), peak RSS ${peak.toFixed(0)} MiB`);
  if (process.env["KEEP"]) console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}
