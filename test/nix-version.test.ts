// Before NixOS classes are evaluated, `build` checks the nixpkgs path it was given (resolved against
// the current folder, and a nixpkgs tree) and the Nix on PATH against that nixpkgs' lib/minver.nix.
// Through the real CLI with this machine's real Nix (Debian 12's nix-bin is 2.8) and fake nixpkgs
// trees: a tree that asks for more than this Nix is refused with exit 2 and the way out; one that
// asks for less gets past the check and fails in Nix's evaluation (it is no real nixpkgs), whose
// error is then shown once, with netbuild's hint.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addDemoFiles, cleanupTempDirs, cli, cliProcess, inventory, tempDir } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";
import { checkNixpkgsTree, checkNixVersion, compareNixVersions, nixpkgsFromOptions } from "../src/adapters/nix-version.ts";

const notHere = missing({ commands: ["nix-build", "nix-instantiate"] });

/** The Nix on this machine (2.8.0 with Debian 12's nix-bin). */
const nixVersion = notHere ? "" : (JSON.parse(execFileSync("nix-instantiate", ["--eval", "--json", "-E", "builtins.nixVersion"], { encoding: "utf8" })) as string);
/** What current nixpkgs asks for; a Nix that new already (nix-shell's) is asked for more, so that the refusal is still tested. */
const TOO_NEW = notHere || compareNixVersions("2.18", nixVersion) > 0 ? "2.18" : "999.0";

/** A folder that passes for nixpkgs (default.nix, lib/minver.nix, nixos/) but holds no NixOS. */
function fakeNixpkgs(dir: string, minver: string | undefined): string {
  mkdirSync(path.join(dir, "lib"), { recursive: true });
  mkdirSync(path.join(dir, "nixos"), { recursive: true });
  writeFileSync(path.join(dir, "default.nix"), "{ ... }: { }\n");
  if (minver !== undefined) writeFileSync(path.join(dir, "lib/minver.nix"), `# Expose the minimum required version for evaluating Nixpkgs\n"${minver}"\n`);
  return dir;
}

/** An inventory with a NixOS class `node` (and a prebuilt `demo`, buildable without nixpkgs). */
function nixosRoot(): string {
  const root = inventory({
    "classes/node.yaml": "kind: nixos\nmodules: [./node/configuration.nix]\n",
    "classes/node/configuration.nix": "{ ... }: { }\n",
    "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/bzImage }\ninitrd: { path: ./demo/initrd }\n",
    "hosts/a.yaml": 'class: node\nmac: "52:54:00:00:00:01"\n',
    "hosts/b.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n',
  });
  addDemoFiles(root);
  return root;
}

/** A folder to run netbuild in (not the inventory root), holding `np/`: a fake nixpkgs asking for `minver`. */
function workDir(minver: string | undefined): { cwd: string; np: string } {
  const cwd = tempDir();
  return { cwd, np: fakeNixpkgs(path.join(cwd, "np"), minver) };
}

describe("compareNixVersions: Nix's own order (builtins.compareVersions, as nixpkgs checks lib/minver.nix)", () => {
  const pairs: [string, string][] = [
    ["2.8.0", "2.18"],
    ["2.18", "2.18.0"],
    ["2.18.0", "2.18"],
    ["2.18.0pre20230101_abcdef", "2.18"],
    ["2.18pre", "2.18"],
    ["2.17.9", "2.18"],
    ["2.91.1", "2.18"],
    ["2.18.3-lix", "2.18"],
    ["2.3a", "2.3.1"],
    ["2.3", "2.3"],
    ["3.0", "2.99"],
  ];

  it("orders versions numerically and pre-releases before releases", () => {
    expect(compareNixVersions("2.8.0", "2.18")).toBeLessThan(0);
    expect(compareNixVersions("2.18.0", "2.18")).toBeGreaterThan(0);
    expect(compareNixVersions("2.18pre", "2.18")).toBeLessThan(0);
    expect(compareNixVersions("2.91.1", "2.18")).toBeGreaterThan(0);
    expect(compareNixVersions("2.18.3-lix", "2.18")).toBeGreaterThan(0);
    expect(compareNixVersions("2.18", "2.18")).toBe(0);
  });

  it.skipIf(notHere)("agrees with the real builtins.compareVersions on every pair", () => {
    const expr = `map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1)) (builtins.fromJSON ${JSON.stringify(JSON.stringify(pairs))})`;
    const nix = JSON.parse(execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { encoding: "utf8" })) as number[];
    expect(pairs.map(([a, b]) => Math.sign(compareNixVersions(a, b)))).toEqual(nix);
  });
});

describe.skipIf(notHere)("build checks nixpkgs and the Nix version before evaluating NixOS classes (real Nix)", () => {
  afterAll(cleanupTempDirs);

  const hint = (min: string) => [
    `hint: install Nix ≥ ${min} and put it first on PATH: the official installer (https://nixos.org/download), Lix (https://lix.systems), or a distribution whose Nix is ${min} or newer`,
    "`nix-shell` does not get around it: netbuild's shell.nix imports its pinned nixpkgs",
    "Prebuilt and Talos classes build with the Nix you have: `netbuild build --class demo`",
  ];

  it(`refuses a relative --nixpkgs whose lib/minver.nix asks for Nix ≥ ${TOO_NEW} with exit 2, saying which Nix runs and how to get a newer one, before anything is generated or written`, async () => {
    const root = nixosRoot();
    const { cwd, np } = workDir(TOO_NEW);
    // Run as users run it (a child process), from a folder that is neither the root nor this process's.
    const r = await cliProcess(["build", "--root", root, "--class", "node", "--nixpkgs", "./np"], cwd);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`netbuild: nixpkgs at ${np} (--nixpkgs ./np) needs Nix ≥ ${TOO_NEW} (its lib/minver.nix); the nix-instantiate on PATH is ${nixVersion} (/`);
    expect(r.stderr).toMatch(/\(\/\S*\/nix-instantiate\), so it cannot evaluate class node; nothing was written\n/);
    for (const h of hint(TOO_NEW)) expect(r.stderr).toContain(h);
    expect(r.stderr).not.toContain("nix │");
    expect(r.stderr).not.toContain("internal error");
    expect(existsSync(path.join(root, "out"))).toBe(false);
    expect(existsSync(path.join(root, ".netbuild/nix"))).toBe(false);
  });

  it("does the same for a relative NETBUILD_NIXPKGS, and with --json prints exactly one JSON document", async () => {
    const root = nixosRoot();
    const { cwd, np } = workDir(TOO_NEW);
    const r = await cli(["build", "--root", root, "--class", "node", "--json"], cwd, { NETBUILD_NIXPKGS: "np" });
    expect(r.code, r.stderr).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; code: string; message: string; hint: string };
    expect(doc).toMatchObject({ ok: false, code: "NIX_TOO_OLD" });
    expect(doc.message).toContain(`nixpkgs at ${np} (NETBUILD_NIXPKGS=np) needs Nix ≥ ${TOO_NEW} (its lib/minver.nix); the nix-instantiate on PATH is ${nixVersion}`);
    expect(doc.hint).toContain("https://nixos.org/download");
    expect(doc.hint).toContain("https://lix.systems");
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  it("gets past the check when lib/minver.nix asks for less (or says nothing), and shows Nix's evaluation error once, with netbuild's hint (exit 2)", async () => {
    const root = nixosRoot();
    for (const minver of ["2.0", undefined]) {
      const { cwd, np } = workDir(minver);
      const missingFile = `${np}/nixos/lib/eval-config.nix`;
      const r = await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "np"], cwd);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).not.toContain("internal error");
      expect(r.stderr).toContain("netbuild: Nix could not evaluate class node (nix-build, exit code 1); nothing was written\n");
      // Nix received the resolved path; its error is printed once (under the message, not also as it streamed).
      expect(r.stderr).toContain(`$ nix-build ${root}/.netbuild/nix -A node.netbuild --no-out-link --argstr nixpkgs ${np}\n`);
      expect(r.stderr.split(missingFile).length - 1, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/nix │ .*error/);
      expect(r.stderr).toContain(`hint: the error is in the classes' files (their NixOS modules) or in the nixpkgs they use: nixpkgs at ${np} (--nixpkgs np). To see where in the Nix code, run \`nix-build ${root}/.netbuild/nix -A node.netbuild --no-out-link --argstr nixpkgs ${np} --show-trace\``);
      expect(existsSync(path.join(root, "out"))).toBe(false);

      const json = await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "np", "--json"], cwd);
      expect(json.code).toBe(2);
      const doc = JSON.parse(json.stdout) as { code: string; detail: string; hint: string };
      expect(doc.code).toBe("NIX_EVAL_FAILED");
      expect(doc.detail.split(missingFile).length - 1).toBe(1);
      expect(doc.hint).toContain("--show-trace");
    }
  });

  it("refuses a --nixpkgs or NETBUILD_NIXPKGS that is missing or no nixpkgs (exit 2, NIXPKGS_NOT_FOUND), naming it as given and as resolved, before Nix runs", async () => {
    const root = nixosRoot();
    const cwd = tempDir();
    // Missing.
    const r = await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "./nope"], cwd);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`netbuild: --nixpkgs "./nope" (resolved against the current folder: ${cwd}/nope) does not exist; NixOS classes need a nixpkgs tree\n`);
    expect(r.stderr).toContain("hint: pass the top folder of a nixpkgs checkout or unpacked tarball (it holds default.nix, lib/ and nixos/)");
    // A folder, but not nixpkgs (the inventory root itself), with --json: one document.
    const j = await cli(["build", "--root", root, "--class", "node", "--json"], cwd, { NETBUILD_NIXPKGS: path.relative(cwd, root) });
    expect(j.code).toBe(2);
    const doc = JSON.parse(j.stdout) as { code: string; message: string };
    expect(doc.code).toBe("NIXPKGS_NOT_FOUND");
    expect(doc.message).toBe(`NETBUILD_NIXPKGS=${JSON.stringify(path.relative(cwd, root))} (resolved against the current folder: ${root}) does not look like nixpkgs: it has no default.nix, lib/, nixos/`);
    // A file.
    writeFileSync(path.join(cwd, "file"), "");
    expect((await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "file"], cwd)).stderr).toContain(`(resolved against the current folder: ${cwd}/file) is not a folder`);
    // Relative to the current folder, not to the inventory root: a tree that is only in the root is not found.
    fakeNixpkgs(path.join(root, "np"), "2.0");
    const notRoot = await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "np"], cwd);
    expect(notRoot.code).toBe(2);
    expect(notRoot.stderr).toContain(`(resolved against the current folder: ${cwd}/np) does not exist`);
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  it("reads an npins pin's minimum through Nix (which fetches the pin), naming the pin and where it is", async () => {
    const root = nixosRoot();
    const { cwd, np } = workDir(TOO_NEW);
    // A pin as the generated code imports it (root/npins), here leading to the fake tree.
    mkdirSync(path.join(root, "npins"));
    writeFileSync(path.join(root, "npins/sources.json"), '{ "pins": { "nixpkgs": {} }, "version": 7 }\n');
    writeFileSync(path.join(root, "npins/default.nix"), `{ nixpkgs = ${np}; }\n`);
    // (An empty NETBUILD_NIXPKGS is unset: nix-shell sets it, and it would win over the pin.)
    const unset = { NETBUILD_NIXPKGS: "" };
    const r = await cli(["build", "--root", root, "--class", "node", "--json"], cwd, unset);
    expect(r.code, r.stderr).toBe(2);
    const doc = JSON.parse(r.stdout) as { code: string; message: string };
    expect(doc.code).toBe("NIX_TOO_OLD");
    expect(doc.message).toContain(`the nixpkgs pinned in npins/sources.json (${np}) needs Nix ≥ ${TOO_NEW} (its lib/minver.nix); the nix-instantiate on PATH is ${nixVersion}`);

    // A pin that cannot be fetched: Nix's error once, under what netbuild was doing (exit 1: the work failed, not the input).
    const url = `file://${cwd}/gone.tar.gz`;
    writeFileSync(path.join(root, "npins/default.nix"), `{ nixpkgs = builtins.fetchTarball { url = "${url}"; sha256 = "${"0".repeat(52)}"; }; }\n`);
    const f = await cli(["build", "--root", root, "--class", "node"], cwd, unset);
    expect(f.code, f.stderr).toBe(1);
    expect(f.stderr).toContain("netbuild: reading the Nix version the nixpkgs pinned in npins/sources.json needs (lib/minver.nix) failed (exit code 1)\n");
    expect(f.stderr.split(`unable to download '${url}'`).length - 1, f.stderr).toBe(1);
    expect(f.stderr).toContain("hint: Nix could not fetch or read the pinned nixpkgs: check the network and npins/sources.json");
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  // With a real nixpkgs (nix-shell sets NETBUILD_NIXPKGS): it passes for one, and its minimum is read.
  const nixpkgs = process.env["NETBUILD_NIXPKGS"];
  it.skipIf(!nixpkgs)("takes a real nixpkgs for nixpkgs and compares its lib/minver.nix with this Nix", async () => {
    const source = nixpkgsFromOptions(nixpkgs, undefined, process.cwd())!;
    expect(() => checkNixpkgsTree(source)).not.toThrow();
    const check = checkNixVersion({ source, nixosClasses: ["node"], otherClasses: [], env: process.env });
    const minver = JSON.parse(execFileSync("nix-instantiate", ["--eval", "--json", path.join(nixpkgs!, "lib/minver.nix")], { encoding: "utf8" })) as string;
    if (compareNixVersions(minver, nixVersion) > 0) await expect(check).rejects.toMatchObject({ code: "NIX_TOO_OLD" });
    else await expect(check).resolves.toBeUndefined();
  });
  if (!nixpkgs) console.warn("NOT RUN — the version check against a real nixpkgs: NETBUILD_NIXPKGS is not set (no nixpkgs on this machine; see README, Tests)");

  it("runs no extra Nix for prebuilt classes, and still says so plainly when there is no Nix at all", async () => {
    const root = nixosRoot();
    const { cwd } = workDir(TOO_NEW);
    // A PATH with nix-build alone: a version check (nix-instantiate) would fail; a prebuilt build needs none.
    const bin = tempDir();
    symlinkSync(execFileSync("sh", ["-c", "command -v nix-build"], { encoding: "utf8" }).trim(), path.join(bin, "nix-build"));
    const prebuilt = await cli(["build", "--root", root, "--class", "demo"], cwd, { PATH: bin, NETBUILD_NIXPKGS: "np" });
    expect(prebuilt.code, prebuilt.stderr).toBe(0);
    // No Nix on PATH: the NixOS class's check says which program is missing (exit 1, as before).
    const none = await cli(["build", "--root", root, "--class", "node", "--nixpkgs", "np"], cwd, { PATH: tempDir() });
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toContain("netbuild: nix-instantiate is not installed or not on PATH\n  hint: run inside `nix-shell`, or install Nix\n");
  });
});
