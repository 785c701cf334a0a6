#!/usr/bin/env node
// Starts the CLI. While dist/ (src/ bundled by `npm run compile`, which `npm install` runs) is
// current (bin/compiled.js), it runs that JavaScript: no transpiling, a faster start and less
// memory. Otherwise it runs the TypeScript sources through tsx, so an edited checkout is never
// served stale code.
import { compiledIsCurrent } from "./compiled.js";

let main;
if (compiledIsCurrent()) {
  ({ main } = await import("../dist/cli.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli.ts"));
}
process.exitCode = await main(process.argv);
