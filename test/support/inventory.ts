// Builds inventories in temp folders for tests, and runs the CLI in-process or as a user would.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, lstatSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { main } from "../../src/cli.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const DEMO_KERNEL = path.join(REPO, "classes/demo/bzImage");
export const DEMO_INITRD = path.join(REPO, "classes/demo/initrd");

const made: string[] = [];

export function tempDir(prefix = "netbuild-test-"): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** An inventory root with the given files (path → text). */
export function inventory(files: Record<string, string>): string {
  const root = tempDir();
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

/** The repository's example inventory (site, classes, hosts, demo files), copied to a temp root. */
export function exampleInventory(): string {
  const root = tempDir();
  for (const entry of ["netbuild.yaml", "classes", "hosts", "npins", "nixos"]) {
    cpSync(path.join(REPO, entry), path.join(root, entry), { recursive: true });
  }
  return root;
}

/** The demo class's files, hard-linked (they are read-only inputs) into `root/classes/demo/`. */
export function addDemoFiles(root: string): void {
  mkdirSync(path.join(root, "classes/demo"), { recursive: true });
  for (const f of [DEMO_KERNEL, DEMO_INITRD]) {
    const dest = path.join(root, "classes/demo", path.basename(f));
    if (!existsSync(dest)) linkSync(f, dest);
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): NodeJS.WriteStream & { text: string } {
  const s = { text: "", isTTY: false, write(chunk: string) { s.text += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

/** The CLI in-process (same code path as bin/netbuild.js, without the process start). */
export async function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(["node", "netbuild", ...args], { stdout, stderr, cwd, env: { ...process.env, NO_COLOR: "1", ...env } });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The CLI as a user runs it: `node bin/netbuild.js ...` in a child process. */
export function cliProcess(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, "bin/netbuild.js"), ...args], { cwd, env: { ...process.env, NO_COLOR: "1", ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A checksum of every path under `dir` (type, content, link target), top-level names in `skip` left out: "untouched" means equal. */
export function treeChecksum(dir: string, skip: string[] = []): string {
  const h = createHash("sha256");
  const walk = (d: string, rel: string) => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d).sort()) {
      if (rel === "" && skip.includes(name)) continue;
      const abs = path.join(d, name);
      const r = `${rel}/${name}`;
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) h.update(`L ${r} ${readlinkSync(abs)}\n`);
      else if (st.isDirectory()) {
        h.update(`D ${r}\n`);
        walk(abs, r);
      } else h.update(`F ${r} ${st.mode} `).update(readFileSync(abs)).update("\n");
    }
  };
  walk(dir, "");
  return h.digest("hex");
}
