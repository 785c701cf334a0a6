// Wall time of `netbuild generate` on an inventory where every host has an error, run as users run
// it (a child process: `node bin/netbuild.js generate --root DIR`), at several sizes so that
// quadratic work shows as a time that quadruples when the hosts double. Cases:
//   shared-mac   all hosts list one MAC (one error per host, at its `mac:` line)
//   unknown-key  each host has a misspelt key (one error per host)
// Each in two layouts: one file of all hosts (`hosts:`), and one file per host.
// Usage: npx tsx bench/inventory-errors.ts [sizes, comma-separated]   (default 5000,10000,20000)
// BIN=path/to/netbuild.js runs another checkout's CLI (for a before/after comparison).
// Prints one line per run: case, layout, hosts, seconds, errors reported, exit code.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..");
const SIZES = (process.argv[2] ?? "5000,10000,20000").split(",").map(Number);
const CASES = ["shared-mac", "unknown-key"] as const;
const LAYOUTS = ["one-file", "file-per-host"] as const;
const BIN = process.env["BIN"] ?? path.join(REPO, "bin/netbuild.js");

function mac(i: number): string {
  return `52:54:01:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

function hostLines(kase: (typeof CASES)[number], i: number): string[] {
  return kase === "shared-mac" ? ["class: demo", 'mac: "52:54:00:00:00:01"'] : ["class: demo", `mac: "${mac(i)}"`, "provison: { disks: true }"];
}

function makeRoot(kase: (typeof CASES)[number], layout: (typeof LAYOUTS)[number], n: number): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "netbuild-bench-errors-"));
  mkdirSync(path.join(root, "classes/demo"), { recursive: true });
  writeFileSync(path.join(root, "classes/demo.yaml"), "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n");
  writeFileSync(path.join(root, "classes/demo/kernel"), "not really a kernel\n");
  writeFileSync(path.join(root, "classes/demo/initrd"), "not really an initrd\n");
  mkdirSync(path.join(root, "hosts"));
  if (layout === "one-file") {
    const parts = ["hosts:\n"];
    for (let i = 0; i < n; i++) parts.push(`  h${i}:\n`, ...hostLines(kase, i).map((l) => `    ${l}\n`));
    writeFileSync(path.join(root, "hosts/all.yaml"), parts.join(""));
  } else {
    for (let i = 0; i < n; i++) writeFileSync(path.join(root, `hosts/h${i}.yaml`), hostLines(kase, i).join("\n") + "\n");
  }
  return root;
}

for (const kase of CASES) {
  for (const layout of LAYOUTS) {
    for (const n of SIZES) {
      const root = makeRoot(kase, layout, n);
      const start = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [BIN, "generate", "--root", root], { encoding: "utf8", maxBuffer: 2 ** 30 });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const summary = /the inventory has (\d+) errors?/.exec(r.stderr)?.[1] ?? "?";
      const longest = Math.max(0, ...r.stderr.split("\n").map((l) => l.length));
      console.log(`${kase.padEnd(11)} ${layout.padEnd(13)} ${String(n).padStart(6)} hosts  ${seconds.toFixed(2).padStart(7)} s  ${summary} errors  longest line ${longest}  exit ${r.status}`);
      rmSync(root, { recursive: true, force: true });
    }
  }
}
