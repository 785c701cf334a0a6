#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx netbuild` works in a checkout after `npm ci`.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli.ts");
process.exitCode = await main(process.argv);
