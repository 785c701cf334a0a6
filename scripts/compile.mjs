#!/usr/bin/env node
// `npm run compile`: src/ bundled into dist/cli.js, which bin/netbuild.js runs while it is newer than
// every file in src/ (else it runs src/ through tsx). A bundle, not a compiled copy of each module:
// Node's ES module loader costs a resolve, a read and a link per file, and a command loads some 300
// (netbuild's and its packages'). What a command imports only when it needs it (the SSH code, most
// commands) stays apart, in a few files beside cli.js (esbuild's splitting), so it is not loaded
// when it is not needed. The bundle is code only; the files netbuild reads (templates, the Nix
// library, the NixOS module, package.json) stay where they are (src/package-files.ts).
// Type checking is `npm run typecheck` (and `npm test`), not this.
import { rmSync, utimesSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const at = (rel) => fileURLToPath(new URL(`../${rel}`, import.meta.url));
// The stamp says when the sources were read: a file saved while esbuild runs is newer than it.
const started = new Date();
// The stamp goes first: a compile that fails from here on leaves none, and bin/netbuild.js runs src/.
rmSync(at("dist/.compiled"), { force: true });
rmSync(at("dist/"), { recursive: true, force: true });
await build({
  entryPoints: [at("src/cli.ts")],
  outdir: at("dist/"),
  // In dist/ itself, beside cli.js: package-files.ts finds the package from the file it is in.
  chunkNames: "[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // ssh2 loads its native crypto binding from its own folder (and so does ssh2-sftp-client's ssh2):
  // left as packages, loaded when a deploy first needs them.
  external: ["ssh2", "ssh2-sftp-client"],
  // The CommonJS packages bundled here (yaml, handlebars, commander, …) call require() for Node's own modules.
  banner: { js: 'import { createRequire as netbuildRequire } from "node:module";\nconst require = netbuildRequire(import.meta.url);' },
});
writeFileSync(at("dist/.compiled"), "");
utimesSync(at("dist/.compiled"), started, started);
