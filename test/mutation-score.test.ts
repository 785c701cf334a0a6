// scripts/mutation-score.ts: the per-module score `npm run test:mutation` checks against the floors.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { originalOf, scoreReport, type Accepted } from "../scripts/mutation-score.ts";

const source = "const a = 1;\nif (a < 2) {\n  x();\n}\n";
const at = (line: number, column: number, endLine: number, endColumn: number) => ({ start: { line, column }, end: { line: endLine, column: endColumn } });

describe("mutation score", () => {
  it("reads the code a mutant replaces, on one line or several", () => {
    expect(originalOf(source, { id: "1", mutatorName: "x", location: at(2, 5, 2, 10), status: "Killed" })).toBe("a < 2");
    expect(originalOf(source, { id: "1", mutatorName: "x", location: at(2, 12, 4, 2), status: "Killed" })).toBe("{\n  x();\n}");
  });

  it("counts killed and timed-out mutants as killed, survivors and uncovered as missed, and leaves accepted ones out", () => {
    const report = {
      files: {
        "src/core/a.ts": {
          source,
          mutants: [
            { id: "1", mutatorName: "EqualityOperator", replacement: "a <= 2", location: at(2, 5, 2, 10), status: "Killed" },
            { id: "2", mutatorName: "EqualityOperator", replacement: "a >= 2", location: at(2, 5, 2, 10), status: "Timeout" },
            { id: "3", mutatorName: "ConditionalExpression", replacement: "true", location: at(2, 5, 2, 10), status: "Survived" },
            { id: "4", mutatorName: "BlockStatement", replacement: "{}", location: at(2, 12, 4, 2), status: "NoCoverage" },
            { id: "5", mutatorName: "NumericLiteral", replacement: "0", location: at(1, 11, 1, 12), status: "Ignored" },
          ],
        },
      },
    };
    const none = scoreReport(report, []);
    expect(none.files).toEqual([{ file: "src/core/a.ts", killed: 2, missed: 2, accepted: 0, ignored: 1, errors: 0, score: 50 }]);
    expect(none.unaccepted.map((u) => [u.line, u.text, u.original, u.replacement, u.status])).toEqual([
      [2, "if (a < 2) {", "a < 2", "true", "Survived"],
      [2, "if (a < 2) {", "{\n  x();\n}", "{}", "NoCoverage"],
    ]);
    const accepted: Accepted[] = [
      { file: "src/core/a.ts", line: "if (a < 2) {", mutator: "ConditionalExpression", original: "a < 2", replacement: "true", reason: "r" },
      // Same mutator and code, another replacement: does not accept mutant 3.
      { file: "src/core/a.ts", line: "if (a < 2) {", mutator: "ConditionalExpression", original: "a < 2", replacement: "false", reason: "r" },
      // Same mutant on another line: does not accept mutant 4.
      { file: "src/core/a.ts", line: "const a = 1;", mutator: "BlockStatement", original: "{\n  x();\n}", replacement: "{}", reason: "r" },
      // Another file: not this run's, so not stale.
      { file: "src/core/b.ts", line: "{}", mutator: "BlockStatement", original: "{}", replacement: "{}", reason: "r" },
    ];
    const some = scoreReport(report, accepted);
    expect(some.files[0]).toEqual({ file: "src/core/a.ts", killed: 2, missed: 1, accepted: 1, ignored: 1, errors: 0, score: (100 * 2) / 3 });
    expect(some.unaccepted.map((u) => u.status)).toEqual(["NoCoverage"]);
    expect(some.stale).toEqual([accepted[1], accepted[2]]);
  });

  it("accepts nothing with an entry that matches the same code at two places on its line, until it names a column", () => {
    const src = "f(x ? a : b, y ? a : b);\n";
    const mutant = (id: string, column: number) => ({ id, mutatorName: "StringLiteral", replacement: "z", location: at(1, column, 1, column + 1), status: "Survived" });
    const report = { files: { "src/core/c.ts": { source: src, mutants: [mutant("1", 7), mutant("2", 18)] } } };
    const loose: Accepted = { file: "src/core/c.ts", line: "f(x ? a : b, y ? a : b);", mutator: "StringLiteral", original: "a", replacement: "z", reason: "r" };
    const r = scoreReport(report, [loose]);
    expect(r.ambiguous).toEqual([loose]);
    expect(r.unaccepted.map((u) => u.column)).toEqual([7, 18]);
    expect(r.stale).toEqual([]);
    const pinned = scoreReport(report, [{ ...loose, column: 18 }]);
    expect(pinned.ambiguous).toEqual([]);
    expect(pinned.unaccepted.map((u) => u.column)).toEqual([7]);
    expect(pinned.files[0]).toMatchObject({ killed: 0, missed: 1, accepted: 1 });
  });

  it("runs as a command from a checkout whose path has a space, and fails on a group where no mutant counted", () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), "netbuild mutation ")), "reports");
    mkdirSync(dir);
    const file = path.join(dir, "m.json");
    writeFileSync(file, JSON.stringify({ files: { "src/core/x.ts": { source: "const a = 1;\n", mutants: [{ id: "1", mutatorName: "NumericLiteral", replacement: "0", location: at(1, 11, 1, 12), status: "Ignored" }] } } }));
    const script = path.resolve(import.meta.dirname, "../scripts/mutation-score.ts");
    let out = "";
    let code = 0;
    try {
      out = execFileSync(process.execPath, ["--import", "tsx", script, file], { encoding: "utf8" });
    } catch (e) {
      const err = e as { status: number; stdout: string };
      code = err.status;
      out = err.stdout;
    }
    expect(code).toBe(1);
    expect(out).toContain("src/core/x.ts  (0 killed, 0 survived or not covered; 1 ignored (static))");
    expect(out).toContain("core: no mutant counted (all ignored or errors), so no score");
  });
});
