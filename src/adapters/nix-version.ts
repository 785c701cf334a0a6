// Which nixpkgs a build of NixOS classes uses, and whether the Nix on PATH can evaluate it: checked
// before nix-build runs, so that a wrong path or a Nix too old for the pin (Debian 12's nix-bin is
// 2.8; current nixpkgs needs 2.18) gets one clear message instead of Nix's raw error.
import { accessSync, constants, statSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { runNix } from "./nix.ts";

/** Where the nixpkgs of a build comes from, as the user named it. */
export type NixpkgsSource =
  | { kind: "path"; from: "--nixpkgs" | "NETBUILD_NIXPKGS"; given: string; path: string }
  | { kind: "npins"; root: string };

/**
 * `--nixpkgs`, else `$NETBUILD_NIXPKGS` (an empty one counts as unset), resolved against the
 * folder netbuild runs in: Nix takes only absolute paths (`./x` is "not an absolute path" to it), and
 * a path typed on the command line means the current folder, not the inventory root. Undefined: the
 * root's npins pin, if any (the generated code imports it).
 */
export function nixpkgsFromOptions(flag: string | undefined, env: string | undefined, cwd: string): (NixpkgsSource & { kind: "path" }) | undefined {
  if (flag !== undefined) return { kind: "path", from: "--nixpkgs", given: flag, path: path.resolve(cwd, flag) };
  if (env) return { kind: "path", from: "NETBUILD_NIXPKGS", given: env, path: path.resolve(cwd, env) };
  return undefined;
}

/** How a message names the nixpkgs: the path as given and as resolved, and where it was given. */
export function describeNixpkgs(source: NixpkgsSource, storePath?: string): string {
  if (source.kind === "npins") return `the nixpkgs pinned in npins/sources.json${storePath ? ` (${storePath})` : ""}`;
  const given = source.from === "--nixpkgs" ? `--nixpkgs ${source.given}` : `NETBUILD_NIXPKGS=${source.given}`;
  return `nixpkgs at ${source.path}${source.given === source.path ? ` (${source.from})` : ` (${given})`}`;
}

/**
 * What every nixpkgs tree has had for as long as NixOS has existed: its entry point, its library
 * and NixOS (whose eval-config.nix netbuild imports). A nixpkgs checkout's subfolder (`nixos/`,
 * `pkgs/`) or its parent has not all three.
 */
const NIXPKGS_ENTRIES: readonly { name: string; folder: boolean }[] = [
  { name: "default.nix", folder: false },
  { name: "lib", folder: true },
  { name: "nixos", folder: true },
];

/** Refuses (exit 2) a path that is not a nixpkgs tree, before Nix is asked to evaluate it. */
export function checkNixpkgsTree(source: NixpkgsSource & { kind: "path" }): void {
  const where = source.from === "--nixpkgs" ? `--nixpkgs ${JSON.stringify(source.given)}` : `NETBUILD_NIXPKGS=${JSON.stringify(source.given)}`;
  const resolved = source.given === source.path ? "" : ` (resolved against the current folder: ${source.path})`;
  const hint = `pass the top folder of a nixpkgs checkout or unpacked tarball (it holds default.nix, lib/ and nixos/), e.g. \`--nixpkgs "$(nix-instantiate --find-file nixpkgs)"\` for the channel; a relative path is relative to the current folder; or leave --nixpkgs and NETBUILD_NIXPKGS unset to use the inventory's npins pin`;
  let st;
  try {
    st = statSync(source.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" || code === "ENOTDIR" ? "does not exist" : `cannot be read (${code ?? String(e)})`;
    throw new UserError("NIXPKGS_NOT_FOUND", `${where}${resolved} ${why}; NixOS classes need a nixpkgs tree`, { hint });
  }
  if (!st.isDirectory()) throw new UserError("NIXPKGS_NOT_FOUND", `${where}${resolved} is not a folder; NixOS classes need a nixpkgs tree`, { hint });
  const absent = NIXPKGS_ENTRIES.filter((e) => {
    try {
      const s = statSync(path.join(source.path, e.name));
      return e.folder ? !s.isDirectory() : !s.isFile();
    } catch {
      return true;
    }
  });
  if (absent.length > 0) {
    throw new UserError("NIXPKGS_NOT_FOUND", `${where}${resolved} does not look like nixpkgs: it has no ${absent.map((e) => (e.folder ? `${e.name}/` : e.name)).join(", ")}`, { hint });
  }
}

/**
 * Nix's own version order (`builtins.compareVersions`, which nixpkgs' own check of lib/minver.nix
 * uses): components split at dots and dashes and between digits and letters, numbers compared as
 * numbers, a missing component before a number, `pre` before anything else. So 2.8.0 < 2.18,
 * 2.18.0pre20230101 > 2.18 (as Nix has it), and Lix's 2.91.1 or "2.18.3-lix" are ≥ 2.18.
 * Negative when a < b, 0 when equal, positive when a > b.
 */
export function compareNixVersions(a: string, b: string): number {
  const components = (v: string) => v.match(/\d+|[^\d.-]+/g) ?? [];
  const ca = components(a);
  const cb = components(b);
  for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
    const x = ca[i] ?? "";
    const y = cb[i] ?? "";
    if (componentLess(x, y)) return -1;
    if (componentLess(y, x)) return 1;
  }
  return 0;
}

function componentLess(c1: string, c2: string): boolean {
  const n1 = /^\d+$/.test(c1) ? Number(c1) : undefined;
  const n2 = /^\d+$/.test(c2) ? Number(c2) : undefined;
  if (n1 !== undefined && n2 !== undefined) return n1 < n2;
  if (c1 === "" && n2 !== undefined) return true;
  if (c1 === "pre" && c2 !== "pre") return true;
  if (c2 === "pre") return false;
  // As Nix has it: 2.3a < 2.3.1.
  if (n2 !== undefined) return true;
  if (n1 !== undefined) return false;
  return c1 < c2;
}

/** Where `name` is on PATH (the first executable one), for saying which Nix was run. */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * One `nix-instantiate --eval`: the Nix version and the nixpkgs' minimum (lib/minver.nix, null when
 * it has none). For an npins pin this is also what fetches it (the nix-build after it then finds it in
 * the store), and says where it is.
 */
const VERSION_EXPR = [
  "{ nixpkgs ? null, npins ? null }:",
  "let np = if nixpkgs != null then nixpkgs else toString (import npins).nixpkgs; minver = np + \"/lib/minver.nix\";",
  "in { nix = builtins.nixVersion; nixpkgs = np; minimum = if builtins.pathExists minver then import minver else null; }",
].join(" "); // one line: a failure shows the command

export interface NixVersionCheck {
  source: NixpkgsSource;
  /** The NixOS classes of this build (named in the message). */
  nixosClasses: readonly string[];
  /** The inventory's other classes, which build without nixpkgs (offered in the hint). */
  otherClasses: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Nix's progress (an npins pin is downloaded here the first time). */
  onLine?: (line: string) => void;
}

/**
 * Refuses (exit 2) a nixpkgs that needs a newer Nix than the one on PATH. A tree without
 * lib/minver.nix (an old or a trimmed one) states no minimum: then nothing is run, and Nix's
 * evaluation is the check.
 */
export async function checkNixVersion(check: NixVersionCheck): Promise<void> {
  const { source } = check;
  if (source.kind === "path") {
    try {
      statSync(path.join(source.path, "lib", "minver.nix"));
    } catch {
      return;
    }
  }
  const args = ["--eval", "--strict", "--json", "-E", VERSION_EXPR, ...(source.kind === "path" ? ["--argstr", "nixpkgs", source.path] : ["--argstr", "npins", path.join(source.root, "npins")])];
  const ran = await runNix(
    { file: "nix-instantiate", args },
    {
      env: check.env,
      ...(check.onLine ? { onLine: check.onLine } : {}),
      what: `reading the Nix version ${describeNixpkgs(source)} needs (lib/minver.nix) failed`,
      hint:
        source.kind === "npins"
          ? "Nix could not fetch or read the pinned nixpkgs: check the network and npins/sources.json (`npins update nixpkgs` re-pins it), or pass --nixpkgs PATH with a nixpkgs checkout"
          : "Nix could not read lib/minver.nix of that nixpkgs tree: check that it is a complete nixpkgs checkout",
    },
  );
  const data = JSON.parse(ran.stdout) as { nix: string; nixpkgs: string; minimum: unknown };
  if (typeof data.minimum !== "string" || compareNixVersions(data.minimum, data.nix) <= 0) return;
  const where = onPath("nix-instantiate", check.env) ?? "on PATH";
  const n = check.nixosClasses.length;
  const others = check.otherClasses.length > 0 ? ` Prebuilt and Talos classes build with the Nix you have: \`netbuild build ${check.otherClasses.map((c) => `--class ${c}`).join(" ")}\`.` : "";
  throw new UserError(
    "NIX_TOO_OLD",
    `${describeNixpkgs(source, source.kind === "npins" ? data.nixpkgs : undefined)} needs Nix ≥ ${data.minimum} (its lib/minver.nix); the nix-instantiate on PATH is ${data.nix} (${where}), so it cannot evaluate class${n === 1 ? "" : "es"} ${check.nixosClasses.join(", ")}; nothing was written`,
    {
      hint: `install Nix ≥ ${data.minimum} and put it first on PATH: the official installer (https://nixos.org/download), Lix (https://lix.systems), or a distribution whose Nix is ${data.minimum} or newer (Debian 12's nix-bin is 2.8). \`nix-shell\` does not get around it: netbuild's shell.nix imports its pinned nixpkgs, which this Nix cannot evaluate either.${others}`,
    },
  );
}
