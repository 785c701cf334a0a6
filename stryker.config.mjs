// Mutation testing (StrykerJS): `npm run test:mutation`. Not part of `npm test`: it runs the tests
// once per mutant, which takes far longer than the suite. One module: `npm run test:mutation --
// --mutate src/core/names.ts`. Reports: reports/mutation/mutation.json and mutation.html.
// @ts-check

/** Each group's floor (percent), checked by scripts/mutation-score.ts after the run. */
export const FLOORS = { core: 90, adapters: 80 };

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  // vitest.mutation.config.ts: the tests that run netbuild in-process and start nothing slow per
  // file (it says which are left out, and why).
  vitest: { configFile: "vitest.mutation.config.ts" },
  // The safety-critical code: core/ whole, and the adapters that enforce its guarantees (the tree
  // writer and the target backends, known-hosts, verify).
  mutate: [
    "src/core/**/*.ts",
    "src/adapters/local-tree.ts",
    "src/adapters/target-tree.ts",
    "src/adapters/target-fs.ts",
    "src/adapters/sftp.ts",
    "src/adapters/confine.ts",
    "src/adapters/known-hosts.ts",
    "src/commands/verify.ts",
  ],
  // Each mutant runs only the tests that executed its code in the first (dry) run, in this process.
  // Tests that run the CLI as a child process (`node bin/netbuild.js`) count for no mutant: the
  // child runs the code unmutated.
  coverageAnalysis: "perTest",
  // Static mutants (module-level constants: the regexes and tables at the top of a file) could be
  // told apart only by reloading every test file and running every related test, i.e. about the
  // whole suite once per mutant. They are reported as Ignored. `--ignoreStatic false` tests them.
  ignoreStatic: true,
  // Two workers (two vitest processes, one mutant each), one per core of the development machine:
  // the default test set starts no QEMU and no nix-build (vitest.mutation.config.ts). With
  // MUTATION_TESTS=all it does (a PXE boot in wipe-confirmation, nix-build in nix.test.ts), and two
  // workers could slow a boot past vitest's own test timeout, which would count as killing the
  // mutant: one worker then.
  concurrency: process.env.MUTATION_TESTS === "all" ? 1 : 2,
  // Tests that start sshd, QEMU or nix-build take seconds to minutes, and a busy machine slows them:
  // a mutant times out after 2x its tests' dry-run time plus a minute.
  timeoutFactor: 2,
  timeoutMS: 60_000,
  // The dry run is about the whole suite for a module everything imports (names.ts): minutes.
  dryRunTimeoutMinutes: 60,
  reporters: ["clear-text", "progress", "html", "json"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  // The whole run fails under 80% (Stryker's own score, which counts accepted survivors as
  // survivors). scripts/mutation-score.ts then holds each group to its floor (FLOORS below), with
  // the accepted survivors of test/mutation-accepted.yaml left out.
  thresholds: { high: 90, low: 80, break: 80 },
  // The checkout is copied into each sandbox (.stryker-tmp/sandbox-*) except these: the demo's
  // state and output trees at the root (ignored by git; the tests make their own roots), and the
  // compiled bundle (a CLI a test starts in a sandbox runs that sandbox's src/ through tsx; and a
  // `npm run compile` meanwhile would change dist/ under the copy).
  ignorePatterns: ["/.netbuild", "/out", "/served", "/reports", "/.stryker-tmp*", "/dist"],
  tempDirName: ".stryker-tmp",
  // `--incremental` keeps each mutant's result here and tests again only the mutants whose code or
  // covering tests changed since: the way to work through one module's survivors.
  incrementalFile: "reports/stryker-incremental.json",
  // Stryker makes the sandbox 0700; a bad-input test runs the CLI from it as `nobody`.
  buildCommand: "chmod 755 .",
};
