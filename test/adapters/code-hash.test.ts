// The code hash that keys the inventory cache and the tree's recorded inputs (adapters/code-hash.ts):
// it must change whenever the code that decides them changes, from src/ (through tsx) and from the
// bundle (dist/, `npm run compile`) alike, or a cache made by other code would be taken as valid.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { codeHash, runningModules } from "../../src/adapters/code-hash.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";

describe("the code hash", () => {
  afterAll(cleanupTempDirs);

  it("from src/: follows the imports of the module and of the ones named with it, type-only imports too", () => {
    const base: Record<string, string> = {
      "self.ts": 'import type { T } from "./types.ts";\nexport const x: T = 1;\n',
      "types.ts": "export type T = number;\n",
      "parser.ts": 'import { rule } from "./rule.ts";\nexport const parse = rule;\n',
      "rule.ts": "export const rule = 1;\n",
      "unrelated.ts": "export const y = 2;\n",
    };
    // A fresh folder per variant: a process reads each file once.
    const hashOf = (edits: Record<string, string> = {}) => {
      const dir = tempDir();
      for (const [name, text] of Object.entries({ ...base, ...edits })) writeFileSync(path.join(dir, name), text);
      const modules = runningModules(path.join(dir, "self.ts"), ["./parser.ts"]);
      expect(modules).toEqual([path.join(dir, "self.ts"), path.join(dir, "parser.ts")]);
      return codeHash(modules, [], []);
    };
    const same = hashOf();
    expect(hashOf(), "the same code in another folder").toBe(same);
    expect(hashOf({ "unrelated.ts": "export const y = 3;\n" }), "a module nothing imports").toBe(same);
    expect(hashOf({ "rule.ts": "export const rule = 2;\n" }), "a module the named one imports").not.toBe(same);
    expect(hashOf({ "types.ts": "export type T = string;\n" }), "a module imported only as a type").not.toBe(same);
  });

  it("from the bundle: every .js file beside the running one counts, whatever it imports", () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, "cli.js"), "export {};\n");
    writeFileSync(path.join(dir, "chunk-AAAA.js"), "export const a = 1;\n");
    writeFileSync(path.join(dir, "chunk-AAAA.js.map"), "{}\n");
    expect(runningModules(path.join(dir, "cli.js"), ["../core/inventory.ts"])).toEqual([path.join(dir, "chunk-AAAA.js"), path.join(dir, "cli.js")]);
  });
});
