// The tests Stryker runs against each mutant (`npm run test:mutation`, stryker.config.mjs): the tests
// that run netbuild's code in the test process and start nothing slow per file. Each mutant runs
// only the tests that ran its code (perTest coverage), but a test file's own set-up (an sshd, a
// built and deployed tree) runs again for every mutant it covers: with the whole suite, a mutant in
// a module every command uses costs minutes, and 10,000 mutants cost days.
//
// Left out, and why:
//  - QEMU boots (e2e-boot): every behaviour they prove is also checked by a fast test
//    (test/core/tree.test.ts walks each MAC's chain through the planned tree).
//  - The NixOS module's bash scripts (nixos-scripts): no TypeScript runs there.
//  - Tests that run the CLI as a child process (deploy-interrupt, most of ssh-hints): the child
//    runs the code unmutated, so they cannot kill a mutant.
//  - Files that start an sshd or deploy a built tree before their tests (deploy, confinement,
//    json-output, wipe-confirmation, ssh-hints, nix, nix-version, cli): seconds per mutant.
//    `MUTATION_TESTS=all` runs with them too (hours).
import path from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { defineConfig } from "vitest/config";
import base from "./vitest.config.ts";

// Left out of the mutation run (see above); every other test file is in, so a new fast test needs no
// word here. NEVER: what cannot kill a mutant, left out even with MUTATION_TESTS=all.
const NEVER = [
  "test/e2e-boot.test.ts",
  "test/nixos-scripts.test.ts",
  "test/deploy-interrupt.test.ts",
  // Test the scoring and shard scripts; they run no code Stryker mutates.
  "test/mutation-score.test.ts",
  "test/mutation-shards.test.ts",
];
const SLOW = [
  ...NEVER,
  "test/deploy.test.ts",
  "test/confinement.test.ts",
  "test/json-output.test.ts",
  "test/wipe-confirmation.test.ts",
  "test/ssh-hints.test.ts",
  "test/nix.test.ts",
  "test/nix-version.test.ts",
  "test/cli.test.ts",
];

// The order they run in: a mutant's run stops at its first failing test, so the files that check
// the most in the least time come first (vitest's own order runs the slowest first). A file under a
// folder's pattern runs with that folder; a file not named here runs last.
const FAST = [
  "test/core/**/*.test.ts",
  "test/ui/**/*.test.ts",
  "test/target-tree.test.ts",
  "test/inventory-errors.test.ts",
  "test/provision-command.test.ts",
  "test/pin.test.ts",
  "test/adapters/**/*.test.ts",
  "test/bad-input.test.ts",
  "test/inventory-cache.test.ts",
  "test/build-size.test.ts",
  "test/history.test.ts",
  "test/deploy-trusted-out.test.ts",
  "test/tree.test.ts",
];

/** Runs the files in FAST's order (by path within a folder's pattern). */
class FastFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const rel = path.relative(import.meta.dirname, f.moduleId);
      const i = FAST.findIndex((p) => (p.endsWith("/**/*.test.ts") ? rel.startsWith(p.slice(0, -"**/*.test.ts".length)) : rel === p));
      return i < 0 ? FAST.length : i;
    };
    return [...files].sort((a, b) => rank(a) - rank(b) || (a.moduleId < b.moduleId ? -1 : 1));
  }
}

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    ...(process.env.MUTATION_TESTS === "all"
      ? { exclude: [...NEVER, "**/node_modules/**"] }
      : { exclude: [...SLOW, "**/node_modules/**"] }),
    sequence: { sequencer: FastFirst },
  },
});
