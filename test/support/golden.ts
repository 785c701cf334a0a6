// Golden files: an output compared byte for byte with a file reviewed and committed under test/golden/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { REPO } from "./inventory.ts";
import { inCI } from "./tools.ts";

/**
 * `text` compared with test/golden/`rel`. A missing golden is never a pass: in CI it fails (a golden
 * is only ever written on a developer's machine, and reviewed); elsewhere it is written from this
 * output and the test fails, saying so, until it has been reviewed and the test run again.
 * NETBUILD_UPDATE_GOLDEN=1 rewrites goldens on purpose (never in CI, where it would compare the
 * output with itself).
 */
export function expectGolden(rel: string, text: string): void {
  const file = path.join(REPO, "test/golden", rel);
  const shown = path.relative(REPO, file);
  if (process.env["NETBUILD_UPDATE_GOLDEN"]) {
    if (inCI) expect.fail(`NETBUILD_UPDATE_GOLDEN is set with CI=true: CI compares with the goldens, it never rewrites them (${shown})`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  } else if (!existsSync(file)) {
    if (inCI) expect.fail(`golden file ${shown} is missing (CI never writes one: run this test on a developer's machine, review the file it writes, and commit it)`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    expect.fail(`golden file ${shown} was missing: written from this output. Review it, then run the test again`);
  }
  expect(text).toBe(readFileSync(file, "utf8"));
}
