// `npm run test:mutation` with no Stryker options: the whole mutation run, as the shards of
// stryker.config.mjs (SHARDS) one after another, each a `stryker run` of its modules against its
// test files, its reports in reports/mutation/shards/<name>/. Then the shards' reports are merged
// into reports/mutation/mutation.json and mutation.html (the standard report, as one run writes
// it), each shard's time is printed, and scripts/mutation-score.ts checks the floors and the
// accepted survivors over all of them.
//
//   npm run test:mutation [-- --shard NAME[,NAME…]] [-- --resume]
//   --shard   only these shards (the score then covers them alone)
//   --resume  skip a shard whose report is newer than every file it could depend on (src/, test/,
//             the configs, the lock file): for a whole run that was stopped part way
// Exit 0 when every shard ran and the floors hold; 1 otherwise; 2 for a usage error.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

export interface Shard {
  name: string;
  why: string;
  mutate: string[];
  testFiles: string[];
  concurrency?: number;
  timeoutMS?: number;
}

const ROOT = path.resolve(import.meta.dirname, "..");
export const SHARD_REPORTS = "reports/mutation/shards";

/** Every file a list of Stryker `mutate` patterns names: `dir/**\/*.ts` (every .ts below dir) or a path. */
export function mutatedFiles(root: string, patterns: readonly string[]): string[] {
  const found = new Set<string>();
  for (const p of patterns) {
    const glob = /^(.+)\/\*\*\/\*\.ts$/.exec(p);
    if (!glob) {
      if (/[*?[{!]/.test(p)) throw new Error(`mutate pattern ${p}: only \`folder/**/*.ts\` and plain paths are understood here`);
      found.add(p);
      continue;
    }
    const walk = (dir: string): void => {
      for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
        const rel = `${dir}/${e.name}`;
        if (e.isDirectory()) walk(rel);
        else if (e.isFile() && e.name.endsWith(".ts")) found.add(rel);
      }
    };
    walk(glob[1]!);
  }
  return [...found].sort();
}

/** What is wrong with the shards against the files `mutate` names: each must be in one shard exactly, and a shard must name nothing else. */
export function shardProblems(files: readonly string[], shards: readonly Shard[], exists: (rel: string) => boolean): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  const where = new Map<string, string[]>();
  for (const s of shards) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(s.name)) problems.push(`shard ${JSON.stringify(s.name)}: a name is lower-case letters, digits and dashes`);
    if (names.has(s.name)) problems.push(`shard ${s.name} is named twice`);
    names.add(s.name);
    if (s.mutate.length === 0) problems.push(`shard ${s.name} mutates nothing`);
    if (s.testFiles.length === 0) problems.push(`shard ${s.name} names no test files`);
    for (const f of s.mutate) where.set(f, [...(where.get(f) ?? []), s.name]);
  }
  const wanted = new Set(files);
  for (const f of files) {
    const in_ = where.get(f) ?? [];
    if (in_.length === 0) problems.push(`${f} is mutated (stryker.config.mjs mutate) but in no shard: add it to one`);
    if (in_.length > 1) problems.push(`${f} is in ${in_.length} shards (${in_.join(", ")}): one only`);
  }
  for (const [f, in_] of where) {
    if (!wanted.has(f)) problems.push(`shard ${in_.join(", ")} mutates ${f}, which stryker.config.mjs's mutate does not name${exists(f) ? "" : " (and which does not exist)"}`);
  }
  return problems;
}

/** The newest modification time (ms) of any file a shard's result could depend on. */
function newestInput(root: string): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else newest = Math.max(newest, statSync(path.join(root, rel)).mtimeMs);
    }
  };
  for (const dir of ["src", "test", "nixos"]) if (existsSync(path.join(root, dir))) walk(dir);
  for (const f of ["stryker.config.mjs", "vitest.config.ts", "vitest.mutation.config.ts", "package-lock.json", "tsconfig.json"]) {
    if (existsSync(path.join(root, f))) newest = Math.max(newest, statSync(path.join(root, f)).mtimeMs);
  }
  return newest;
}

interface Report {
  schemaVersion?: string;
  thresholds?: unknown;
  projectRoot?: string;
  files: Record<string, { language?: string; source: string; mutants: { id: string; coveredBy?: string[]; killedBy?: string[]; status: string }[] }>;
  testFiles?: Record<string, { source?: string; tests: { id: string; name: string }[] }>;
  [k: string]: unknown;
}

/**
 * The shards' reports as one report of the standard schema: every mutated file once (a file is in
 * one shard), each shard's mutant and test ids prefixed with its name (ids restart in each run),
 * and a test file that several shards ran listed once with every shard's tests.
 */
export function mergeReports(reports: readonly { shard: string; report: Report }[]): Report {
  const merged: Report = { files: {}, testFiles: {} };
  for (const { shard, report } of reports) {
    const id = (x: string) => `${shard}:${x}`;
    for (const k of ["schemaVersion", "thresholds", "projectRoot", "framework", "system", "config"]) if (merged[k] === undefined && report[k] !== undefined) merged[k] = report[k];
    for (const [file, f] of Object.entries(report.files)) {
      if (merged.files[file]) throw new Error(`${file} is in the reports of two shards`);
      merged.files[file] = {
        ...f,
        mutants: f.mutants.map((m) => ({ ...m, id: id(m.id), ...(m.coveredBy ? { coveredBy: m.coveredBy.map(id) } : {}), ...(m.killedBy ? { killedBy: m.killedBy.map(id) } : {}) })),
      };
    }
    for (const [file, t] of Object.entries(report.testFiles ?? {})) {
      const into = (merged.testFiles![file] ??= { ...(t.source !== undefined ? { source: t.source } : {}), tests: [] });
      into.tests.push(...t.tests.map((x) => ({ ...x, id: id(x.id) })));
    }
  }
  return merged;
}

/** The report as HTML, as Stryker's html reporter writes it (mutation-testing-elements, found where Stryker finds it). */
function reportHtml(report: Report): string {
  const fromStryker = createRequire(createRequire(import.meta.url).resolve("@stryker-mutator/core/package.json"));
  const script = readFileSync(fromStryker.resolve("mutation-testing-elements/dist/mutation-test-elements.js"), "utf8");
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>netbuild: mutation testing, all shards</title>
<script>
${script}
</script>
</head>
<body>
<mutation-test-report-app titlePostfix="netbuild">Your browser does not support custom elements.</mutation-test-report-app>
<script>
const app = document.querySelector("mutation-test-report-app");
app.report = ${JSON.stringify(report).replace(/</g, "\\u003c")};
</script>
</body>
</html>
`;
}

function usage(message: string): number {
  process.stderr.write(`test:mutation: ${message}\nusage: npm run test:mutation [-- --shard NAME[,NAME…]] [-- --resume]   (or Stryker's own options, e.g. -- --mutate src/core/tree.ts)\n`);
  return 2;
}

const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;

async function main(argv: string[]): Promise<number> {
  const config = (await import(pathToFileURL(path.join(ROOT, "stryker.config.mjs")).href)) as { SHARDS: Shard[]; default: { mutate: string[] } };
  let only: string[] | undefined;
  let resume = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--resume") resume = true;
    else if (a === "--shard" || a.startsWith("--shard=")) {
      const v = a === "--shard" ? argv[++i] : a.slice("--shard=".length);
      if (!v) return usage("--shard needs a shard's name");
      only = [...(only ?? []), ...v.split(",").filter(Boolean)];
    } else return usage(`unknown option ${a}`);
  }
  const problems = shardProblems(mutatedFiles(ROOT, config.default.mutate), config.SHARDS, (f) => existsSync(path.join(ROOT, f)));
  if (problems.length > 0) {
    process.stderr.write(`test:mutation: stryker.config.mjs's SHARDS do not cover what it mutates, so nothing was run:\n${problems.map((p) => `  ${p}\n`).join("")}`);
    return 1;
  }
  const unknown = (only ?? []).filter((n) => !config.SHARDS.some((s) => s.name === n));
  if (unknown.length > 0) return usage(`no shard named ${unknown.join(", ")} (there are: ${config.SHARDS.map((s) => s.name).join(", ")})`);
  const shards = config.SHARDS.filter((s) => !only || only.includes(s.name));

  const runs: { shard: string; seconds: number | null; exit: number | null; mutants: number; skipped: boolean }[] = [];
  const started = Date.now();
  for (const [i, s] of shards.entries()) {
    const dir = path.join(SHARD_REPORTS, s.name);
    const json = path.join(ROOT, dir, "mutation.json");
    if (resume && existsSync(json) && statSync(json).mtimeMs > newestInput(ROOT)) {
      process.stderr.write(`\ntest:mutation: shard ${i + 1}/${shards.length} ${s.name}: its report is newer than src/, test/ and the configs: kept (--resume)\n`);
      runs.push({ shard: s.name, seconds: null, exit: null, mutants: mutantCount(json), skipped: true });
      continue;
    }
    rmSync(path.join(ROOT, dir), { recursive: true, force: true });
    mkdirSync(path.join(ROOT, dir), { recursive: true });
    process.stderr.write(`\ntest:mutation: shard ${i + 1}/${shards.length} ${s.name} (${s.why}): ${s.mutate.join(", ")} against ${s.testFiles.join(", ")}\n`);
    const args = ["stryker", "run", "--mutate", s.mutate.join(","), "--testFiles", s.testFiles.join(","), ...(s.concurrency ? ["--concurrency", String(s.concurrency)] : []), ...(s.timeoutMS ? ["--timeoutMS", String(s.timeoutMS)] : [])];
    const t0 = Date.now();
    const r = spawnSync("npx", args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, NETBUILD_MUTATION_REPORTS: dir } });
    const seconds = (Date.now() - t0) / 1000;
    if (r.signal) {
      process.stderr.write(`test:mutation: shard ${s.name} was stopped (${r.signal}); the shards done so far keep their reports (--resume goes on from them)\n`);
      return 1;
    }
    runs.push({ shard: s.name, seconds, exit: r.status, mutants: existsSync(json) ? mutantCount(json) : 0, skipped: false });
    process.stderr.write(`test:mutation: shard ${s.name}: ${minutes(seconds * 1000)}${existsSync(json) ? "" : ", and it wrote no report"}\n`);
  }

  const missing = runs.filter((r) => !existsSync(path.join(ROOT, SHARD_REPORTS, r.shard, "mutation.json")));
  const reports = runs.filter((r) => !missing.includes(r)).map((r) => ({ shard: r.shard, report: JSON.parse(readFileSync(path.join(ROOT, SHARD_REPORTS, r.shard, "mutation.json"), "utf8")) as Report }));
  const merged = mergeReports(reports);
  mkdirSync(path.join(ROOT, "reports/mutation"), { recursive: true });
  writeFileSync(path.join(ROOT, "reports/mutation/mutation.json"), JSON.stringify(merged));
  writeFileSync(path.join(ROOT, "reports/mutation/mutation.html"), reportHtml(merged));
  const timed = runs.filter((r) => r.seconds !== null);
  const total = timed.reduce((n, r) => n + r.seconds!, 0);
  writeFileSync(path.join(ROOT, SHARD_REPORTS, "runs.json"), `${JSON.stringify({ started: new Date(started).toISOString(), runs }, null, 2)}\n`);

  console.log("\nshards (each a Stryker run of its modules against its test files):");
  for (const r of runs) console.log(`  ${r.shard.padEnd(16)} ${String(r.mutants).padStart(6)} mutants  ${r.skipped ? "kept from an earlier run (--resume)" : `${minutes(r.seconds! * 1000)}${r.exit === 0 ? "" : `, Stryker exited ${r.exit}`}`}`);
  console.log(`  ${"all".padEnd(16)} ${String(runs.reduce((n, r) => n + r.mutants, 0)).padStart(6)} mutants  ${minutes(total * 1000)} of runs${timed.length < runs.length ? ` (${runs.length - timed.length} shard(s) kept, not timed)` : ""}`);
  console.log("reports: reports/mutation/mutation.json and mutation.html (all shards), reports/mutation/shards/<name>/ (each)\n");

  const score = spawnSync("npx", ["tsx", "scripts/mutation-score.ts", "reports/mutation/mutation.json"], { cwd: ROOT, stdio: "inherit" });
  if (missing.length > 0) process.stderr.write(`test:mutation: shard(s) ${missing.map((r) => r.shard).join(", ")} wrote no report (Stryker's own error above says why): their modules are not scored\n`);
  // Stryker's own exit (its thresholds.break, per shard) counts as well as the floors.
  return score.status === 0 && missing.length === 0 && runs.every((r) => r.skipped || r.exit === 0) ? 0 : 1;
}

function mutantCount(json: string): number {
  const r = JSON.parse(readFileSync(json, "utf8")) as Report;
  return Object.values(r.files).reduce((n, f) => n + f.mutants.length, 0);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) process.exitCode = await main(process.argv.slice(2));
