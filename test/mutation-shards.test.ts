// scripts/mutation-shards.ts: the whole mutation run as shards (npm run test:mutation). The shards
// of stryker.config.mjs must mutate exactly what it names, so that a new module is never left out
// of the run unseen.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { mergeReports, mutatedFiles, shardProblems, type Shard } from "../scripts/mutation-shards.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const config = (await import(pathToFileURL(path.join(REPO, "stryker.config.mjs")).href)) as { SHARDS: Shard[]; default: { mutate: string[] } };
const shard = (name: string, mutate: string[]): Shard => ({ name, why: "", mutate, testFiles: ["test/x.test.ts"] });

describe("mutation shards", () => {
  it("stryker.config.mjs's shards mutate every file its mutate names, each in one shard, and nothing else", () => {
    const files = mutatedFiles(REPO, config.default.mutate);
    expect(files).toContain("src/core/tree.ts");
    expect(files).toContain("src/adapters/sftp.ts");
    expect(files.length).toBeGreaterThan(30);
    expect(shardProblems(files, config.SHARDS, () => true)).toEqual([]);
  });

  it("finds a file in no shard, in two, or a shard's file that is not mutated (or does not exist)", () => {
    const files = ["src/core/a.ts", "src/core/b.ts", "src/core/c.ts"];
    const problems = shardProblems(files, [shard("one", ["src/core/a.ts", "src/core/b.ts"]), shard("two", ["src/core/b.ts", "src/core/d.ts"])], (f) => f !== "src/core/d.ts");
    expect(problems).toEqual([
      "src/core/b.ts is in 2 shards (one, two): one only",
      "src/core/c.ts is mutated (stryker.config.mjs mutate) but in no shard: add it to one",
      "shard two mutates src/core/d.ts, which stryker.config.mjs's mutate does not name (and which does not exist)",
    ]);
    expect(shardProblems(["a"], [shard("Bad name", ["a"]), shard("x", []), { ...shard("x", ["b"]), testFiles: [] }], () => true)).toEqual([
      'shard "Bad name": a name is lower-case letters, digits and dashes',
      "shard x mutates nothing",
      "shard x is named twice",
      "shard x names no test files",
      "shard x mutates b, which stryker.config.mjs's mutate does not name",
    ]);
  });

  it("expands folder/**/*.ts to every .ts below the folder, and refuses other globs", () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "netbuild-shards-"));
    mkdirSync(path.join(root, "src/core/deep"), { recursive: true });
    for (const f of ["src/core/a.ts", "src/core/deep/b.ts", "src/core/c.js", "src/other.ts"]) writeFileSync(path.join(root, f), "");
    expect(mutatedFiles(root, ["src/core/**/*.ts", "src/other.ts"])).toEqual(["src/core/a.ts", "src/core/deep/b.ts", "src/other.ts"]);
    expect(() => mutatedFiles(root, ["src/*.ts"])).toThrow(/only `folder\/\*\*\/\*\.ts` and plain paths/);
  });

  it("merges the shards' reports: each file once, ids made unique per shard, a test file run by two shards listed once with both's tests", () => {
    const report = (file: string, test: string) => ({
      schemaVersion: "2",
      files: { [file]: { source: "x", mutants: [{ id: "0", status: "Killed", coveredBy: ["0"], killedBy: ["0"] }] } },
      testFiles: { "test/core/a.test.ts": { tests: [{ id: "0", name: test }] } },
    });
    const merged = mergeReports([
      { shard: "one", report: report("src/core/a.ts", "first") },
      { shard: "two", report: report("src/core/b.ts", "second") },
    ]);
    expect(merged.schemaVersion).toBe("2");
    expect(merged.files["src/core/a.ts"]!.mutants).toEqual([{ id: "one:0", status: "Killed", coveredBy: ["one:0"], killedBy: ["one:0"] }]);
    expect(merged.files["src/core/b.ts"]!.mutants[0]!.id).toBe("two:0");
    expect(merged.testFiles).toEqual({ "test/core/a.test.ts": { tests: [{ id: "one:0", name: "first" }, { id: "two:0", name: "second" }] } });
    expect(() => mergeReports([{ shard: "one", report: report("src/core/a.ts", "x") }, { shard: "two", report: report("src/core/a.ts", "y") }])).toThrow("src/core/a.ts is in the reports of two shards");
  });
});
