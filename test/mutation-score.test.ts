// scripts/mutation-score.ts: the per-module score `npm run test:mutation` checks against the floors.
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
    expect(none.files).toEqual([{ file: "src/core/a.ts", killed: 2, missed: 2, accepted: 0, score: 50 }]);
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
    expect(some.files[0]).toEqual({ file: "src/core/a.ts", killed: 2, missed: 1, accepted: 1, score: (100 * 2) / 3 });
    expect(some.unaccepted.map((u) => u.status)).toEqual(["NoCoverage"]);
    expect(some.stale).toEqual([accepted[1], accepted[2]]);
  });
});
