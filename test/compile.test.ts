// `npm run compile` (scripts/compile.mjs) and the rule bin/netbuild.js follows to run its bundle
// (bin/compiled.js): a checkout anywhere, a path with a space included, compiles and runs; and the
// bundle is run only while it is current, the sources and the installed packages it holds no newer.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compiledIsCurrent } from "../bin/compiled.js";
import { cleanupTempDirs, REPO, tempDir } from "./support/inventory.ts";

describe("the compiled bundle", () => {
  afterAll(cleanupTempDirs);

  it("compiles and runs in a checkout whose path has a space and a non-ASCII letter", () => {
    const root = path.join(tempDir(), "a checkout é");
    for (const part of ["bin", "scripts", "src", "nix", "nixos", "package.json"]) cpSync(path.join(REPO, part), path.join(root, part), { recursive: true });
    symlinkSync(path.join(REPO, "node_modules"), path.join(root, "node_modules"));
    execFileSync(process.execPath, [path.join(root, "scripts/compile.mjs")], { stdio: "pipe" });
    expect(compiledIsCurrent(pathToFileURL(`${root}/`))).toBe(true);
    const { version } = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };
    expect(execFileSync(process.execPath, [path.join(root, "bin/netbuild.js"), "--version"], { encoding: "utf8" }).trim()).toBe(version);
  });

  it("is current only while neither a source file nor the installed packages are newer than its stamp", () => {
    const root = tempDir();
    for (const dir of ["src/core", "dist", "node_modules"]) mkdirSync(path.join(root, dir), { recursive: true });
    const at = (rel: string, seconds: number) => {
      writeFileSync(path.join(root, rel), "");
      utimesSync(path.join(root, rel), seconds, seconds);
    };
    const current = () => compiledIsCurrent(pathToFileURL(`${root}/`));
    at("src/core/tree.ts", 1000);
    at("node_modules/.package-lock.json", 1000);
    expect(current(), "no stamp: never compiled").toBe(false);
    at("dist/.compiled", 2000);
    expect(current()).toBe(true);
    at("src/core/tree.ts", 3000);
    expect(current(), "a source file saved after the compile").toBe(false);
    at("src/core/tree.ts", 1000);
    at("node_modules/.package-lock.json", 3000);
    expect(current(), "a package installed after the compile").toBe(false);
    at("node_modules/.package-lock.json", 2000);
    expect(current(), "the same second").toBe(true);
  });
});
