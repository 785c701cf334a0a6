// After `stryker run` (npm run test:mutation): the mutation score per module and per group from
// Stryker's JSON report (reports/mutation/mutation.json), with the survivors accepted in
// test/mutation-accepted.yaml left out, checked against each group's floor. Exit 1 when a group is
// under its floor or a survivor is neither killed nor accepted; 0 otherwise.
//
// A survivor is accepted by file, the source line it is on (its text, trimmed: never its number,
// which every edit above it would shift), mutator, the code it replaces and its replacement, with a
// one-line reason why the mutant cannot change what netbuild does (an equivalent mutant).
//
//   npx tsx scripts/mutation-score.ts [report.json ...]
// Several reports (runs of different modules) are read as one; a file in a later one wins.
import { readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

import { pathToFileURL } from "node:url";

// Read through a computed URL: the config is plain JavaScript, with no types to check it against.
const CONFIG = pathToFileURL(path.resolve(import.meta.dirname, "../stryker.config.mjs")).href;
const FLOOR = ((await import(CONFIG)) as { FLOORS: { core: number; adapters: number } }).FLOORS;

/** Each group's floor (percent, from stryker.config.mjs): core/ whole, and the adapters that enforce its guarantees. */
export const FLOORS: { group: string; test: (file: string) => boolean; floor: number }[] = [
  { group: "core", test: (f) => f.startsWith("src/core/"), floor: FLOOR.core },
  { group: "adapters", test: (f) => !f.startsWith("src/core/"), floor: FLOOR.adapters },
];

interface Location {
  line: number;
  column: number;
}

interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  location: { start: Location; end: Location };
  status: string;
}

interface Report {
  files: Record<string, { source: string; mutants: Mutant[] }>;
}

export interface Accepted {
  file: string;
  /** The source line the mutant starts on, trimmed. */
  line: string;
  /** Where on that (trimmed) line the mutant starts, from 1: needed when the line holds the same code twice. */
  column?: number;
  mutator: string;
  /** The code the mutant replaces, exactly as in the source (whitespace included). */
  original: string;
  replacement: string;
  reason: string;
}

/** The source text a mutant replaces (lines and columns are 1-based, end exclusive). */
export function originalOf(source: string, m: Mutant): string {
  const lines = source.split("\n");
  const { start, end } = m.location;
  if (start.line === end.line) return lines[start.line - 1]!.slice(start.column - 1, end.column - 1);
  return [lines[start.line - 1]!.slice(start.column - 1), ...lines.slice(start.line, end.line - 1), lines[end.line - 1]!.slice(0, end.column - 1)].join("\n");
}

const KILLED = new Set(["Killed", "Timeout"]);
const MISSED = new Set(["Survived", "NoCoverage"]);

export interface Score {
  file: string;
  killed: number;
  missed: number;
  accepted: number;
  /** Not counted: Ignored (static mutants, with ignoreStatic) and those that did not compile or run. */
  ignored: number;
  errors: number;
  /** Killed as a share of what counts (killed + missed, the accepted left out), in percent. */
  score: number;
}

export interface Unaccepted {
  file: string;
  line: number;
  /** The source line, trimmed (what an accepted entry names as its `line`), and the mutant's column on it. */
  text: string;
  column: number;
  mutator: string;
  original: string;
  replacement: string;
  status: string;
}

export function scoreReport(report: Report, accepted: Accepted[]): { files: Score[]; unaccepted: Unaccepted[]; stale: Accepted[]; ambiguous: Accepted[] } {
  const files: Score[] = [];
  const missed: { score: Score; u: Unaccepted }[] = [];
  for (const [file, { source, mutants }] of Object.entries(report.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const s: Score = { file, killed: 0, missed: 0, accepted: 0, ignored: 0, errors: 0, score: 100 };
    const lines = source.split("\n");
    for (const m of mutants) {
      if (KILLED.has(m.status)) s.killed++;
      else if (m.status === "Ignored") s.ignored++;
      else if (m.status === "CompileError" || m.status === "RuntimeError") s.errors++;
      if (!MISSED.has(m.status)) continue;
      const raw = lines[m.location.start.line - 1]!;
      const text = raw.trim();
      const column = m.location.start.column - (raw.length - raw.trimStart().length);
      missed.push({ score: s, u: { file, line: m.location.start.line, text, column, mutator: m.mutatorName, original: originalOf(source, m), replacement: m.replacement ?? "", status: m.status } });
    }
    files.push(s);
  }
  const matches = (a: Accepted, u: Unaccepted) => a.file === u.file && a.line === u.text && a.mutator === u.mutator && a.original === u.original && a.replacement === u.replacement && (a.column === undefined || a.column === u.column);
  // An entry that matches survivors at two places on its line cannot say which one it accepts: it
  // accepts none, and says so (give it a column).
  const ambiguous = accepted.filter((a) => new Set(missed.filter(({ u }) => matches(a, u)).map(({ u }) => u.column)).size > 1);
  const used = new Set<Accepted>();
  const unaccepted: Unaccepted[] = [];
  for (const { score, u } of missed) {
    const entry = accepted.find((a) => matches(a, u) && !ambiguous.includes(a));
    if (entry) {
      used.add(entry);
      score.accepted++;
    } else {
      score.missed++;
      unaccepted.push(u);
    }
  }
  for (const s of files) s.score = s.killed + s.missed === 0 ? 100 : (100 * s.killed) / (s.killed + s.missed);
  const covered = new Set(Object.keys(report.files));
  // An entry for a file this run mutated that no longer matches a survivor is stale (killed since, or the code changed).
  const stale = accepted.filter((a) => covered.has(a.file) && !used.has(a) && !ambiguous.includes(a));
  return { files, unaccepted, stale, ambiguous };
}

export function readAccepted(file: string): Accepted[] {
  const data: unknown = parse(readFileSync(file, "utf8")) ?? [];
  if (!Array.isArray(data)) throw new Error(`${file}: expected a list of accepted survivors`);
  return data.map((e: unknown, i) => {
    const a = e as Partial<Accepted>;
    for (const k of ["file", "line", "mutator", "original", "replacement", "reason"] as const) {
      if (typeof a[k] !== "string") throw new Error(`${file}: entry ${i + 1}: \`${k}\` must be a string`);
    }
    if (a.reason!.trim() === "") throw new Error(`${file}: entry ${i + 1}: an accepted survivor needs its reason`);
    if (a.column !== undefined && !(Number.isInteger(a.column) && a.column >= 1)) throw new Error(`${file}: entry ${i + 1}: \`column\` must be a whole number from 1`);
    return a as Accepted;
  });
}

function pct(n: number): string {
  return `${n.toFixed(1)}%`;
}

function main(): number {
  const root = path.resolve(import.meta.dirname, "..");
  const reportFiles = process.argv.length > 2 ? process.argv.slice(2) : [path.join(root, "reports/mutation/mutation.json")];
  const report: Report = { files: {} };
  for (const f of reportFiles) Object.assign(report.files, (JSON.parse(readFileSync(f, "utf8")) as Report).files);
  const accepted = readAccepted(path.join(root, "test/mutation-accepted.yaml"));
  const { files, unaccepted, stale, ambiguous } = scoreReport(report, accepted);
  let failed = false;
  console.log("mutation score per module (killed / (killed + survived + not covered), accepted survivors left out):");
  for (const s of files) {
    const notCounted = [s.accepted > 0 ? `${s.accepted} accepted` : "", s.ignored > 0 ? `${s.ignored} ignored (static)` : "", s.errors > 0 ? `${s.errors} did not compile or run` : ""].filter(Boolean);
    console.log(`  ${pct(s.score).padStart(6)}  ${s.file}  (${s.killed} killed, ${s.missed} survived or not covered${notCounted.map((n) => `; ${n}`).join("")})`);
  }
  for (const { group, test, floor } of FLOORS) {
    const in_ = files.filter((s) => test(s.file));
    if (in_.length === 0) continue;
    const killed = in_.reduce((n, s) => n + s.killed, 0);
    const missed = in_.reduce((n, s) => n + s.missed, 0);
    // A group where no mutant counted (all ignored, or none compiled) has no score, not 100%.
    if (killed + missed === 0) {
      failed = true;
      console.log(`${group}: no mutant counted (all ignored or errors), so no score`);
      continue;
    }
    const score = (100 * killed) / (killed + missed);
    const ok = score >= floor;
    failed ||= !ok;
    console.log(`${group}: ${pct(score)} (floor ${floor}%)${ok ? "" : " — UNDER THE FLOOR"}`);
  }
  if (unaccepted.length > 0) {
    failed = true;
    console.log(`\n${unaccepted.length} survivor(s) neither killed nor accepted (kill each with a test, or add it to test/mutation-accepted.yaml with the reason it is equivalent):`);
    for (const u of unaccepted.slice(0, 200)) console.log(`  ${u.file}:${u.line} ${u.mutator} ${u.status}: ${JSON.stringify(u.original)} → ${JSON.stringify(u.replacement)}\n      in (column ${u.column}): ${u.text}`);
    if (unaccepted.length > 200) console.log(`  … and ${unaccepted.length - 200} more (reports/mutation/mutation.html shows each in its source)`);
  }
  if (ambiguous.length > 0) {
    failed = true;
    console.log(`\n${ambiguous.length} accepted survivor(s) match the same code at several places on their line, so they accept none: give each a \`column\`:`);
    for (const a of ambiguous) console.log(`  ${a.file} ${a.mutator}: ${JSON.stringify(a.original)} → ${JSON.stringify(a.replacement)}\n      in: ${a.line}`);
  }
  if (stale.length > 0) {
    // Left in, an entry could later accept a new survivor that happens to look the same.
    failed = true;
    console.log(`\n${stale.length} accepted survivor(s) no longer survive (killed, or their code changed): remove them from test/mutation-accepted.yaml:`);
    for (const a of stale) console.log(`  ${a.file} ${a.mutator}: ${JSON.stringify(a.original)} → ${JSON.stringify(a.replacement)}\n      in: ${a.line}`);
  }
  return failed ? 1 : 0;
}

// Run as a script (not imported by its test). Compared as URLs of the real path: a checkout path with
// a space or a symlink must not make the check silently not run.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) process.exitCode = main();
