// Mutation testing (StrykerJS): `npm run test:mutation`. Not part of `npm test`: it runs the tests
// once per mutant, which takes far longer than the suite. One module: `npm run test:mutation --
// --mutate src/core/names.ts`. Reports: reports/mutation/mutation.json and mutation.html.
// @ts-check

/** Each group's floor (percent), checked by scripts/mutation-score.ts after the run. */
export const FLOORS = { core: 90, adapters: 80 };

const CORE_TESTS = ["test/core/**/*.test.ts"];

/**
 * `npm run test:mutation` with no options runs these shards in turn: each a Stryker run of a few
 * modules against the test files that exercise them in this process (`--testFiles`). Scored
 * against those files alone, a module's score is a lower bound of what the whole configured test
 * set gives it (a mutant another file kills counts as a survivor here), so a shard that meets the
 * floor would meet it in the whole run. The whole run in one (every mutant against every test file
 * that ran its code) was estimated by Stryker at 6.6 to 20.5 hours on the 2-core development
 * machine: a test file's own set-up runs again for every mutant it covers. Together the shards
 * mutate exactly `mutate` below (scripts/mutation-shards.ts checks that before it starts).
 * `concurrency`, `timeoutMS`: where a shard needs other than the defaults below.
 * @type {{ name: string; mutate: string[]; testFiles: string[]; concurrency?: number; timeoutMS?: number; why: string }[]}
 */
export const SHARDS = [
  {
    name: "core-tree",
    why: "the tree, its paths and boot chain, deploy planning, machines, DHCP and discovery",
    mutate: ["tree", "paths", "target", "checks", "boot-chain", "deploy", "machines", "discovery", "dhcp", "excerpt"].map((m) => `src/core/${m}.ts`),
    testFiles: CORE_TESTS,
  },
  { name: "core-names", why: "names, MACs and kernel parameters: everything imports it", mutate: ["src/core/names.ts"], testFiles: CORE_TESTS },
  {
    name: "core-inventory",
    why: "the inventory: site, classes, hosts, their schema and rules, the Nix it renders",
    mutate: ["inventory", "inventory-rules", "inventory-memo", "inventory-source", "host-chunks", "hosts", "site", "classes", "schema", "nix-render", "talos-inventory"].map((m) => `src/core/${m}.ts`),
    testFiles: CORE_TESTS,
  },
  {
    name: "core-records",
    why: "the records (out/'s manifest, a target's record, the journal), Talos configs and schematics",
    mutate: ["records", "record-schemas", "talos-config", "talos-schematic"].map((m) => `src/core/${m}.ts`),
    testFiles: CORE_TESTS,
  },
  // go-yaml against the Go oracle (yaml.v3) in talos-schematic.test.ts, which is in test/core/.
  { name: "core-yaml", why: "the YAML reader with positions, and the schematic encoder's YAML", mutate: ["src/core/yaml-doc.ts", "src/core/go-yaml.ts"], testFiles: CORE_TESTS },
  { name: "local-tree", why: "the writer of out/", mutate: ["src/adapters/local-tree.ts"], testFiles: ["test/adapters/local-tree.test.ts"] },
  { name: "target-tree", why: "deploys, rollbacks and gc on a target", mutate: ["src/adapters/target-tree.ts"], testFiles: ["test/target-tree.test.ts"] },
  {
    name: "target-fs",
    why: "confinement, and the local target",
    mutate: ["src/adapters/target-fs.ts", "src/adapters/confine.ts"],
    testFiles: ["test/adapters/confine.test.ts", "test/adapters/target-fs.test.ts"],
  },
  { name: "known-hosts", why: "host key checks", mutate: ["src/adapters/known-hosts.ts"], testFiles: ["test/adapters/known-hosts.test.ts"] },
  { name: "verify", why: "verify and verify --http", mutate: ["src/commands/verify.ts"], testFiles: ["test/verify.test.ts", "test/history.test.ts", "test/tree.test.ts"] },
  // Against a real sshd: a mutant that breaks the connection waits for its timeout, one at a time
  // (two workers would share one loopback sshd's start-up limits).
  { name: "sftp", why: "the SFTP target", mutate: ["src/adapters/sftp.ts"], testFiles: ["test/adapters/sftp.test.ts"], concurrency: 1, timeoutMS: 15_000 },
];

/**
 * Where a run writes its reports and keeps its results for `--incremental`: reports/mutation/, or,
 * for a shard, the folder scripts/mutation-shards.ts names (reports/mutation/shards/<name>/).
 */
const REPORTS = process.env["NETBUILD_MUTATION_REPORTS"] || "reports/mutation";

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
  jsonReporter: { fileName: `${REPORTS}/mutation.json` },
  htmlReporter: { fileName: `${REPORTS}/mutation.html` },
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
  incrementalFile: process.env["NETBUILD_MUTATION_REPORTS"] ? `${REPORTS}/incremental.json` : "reports/stryker-incremental.json",
  // Stryker makes the sandbox 0700; a bad-input test runs the CLI from it as `nobody`.
  buildCommand: "chmod 755 .",
};
