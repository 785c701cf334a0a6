// `netbuild generate`: inventory → Nix expressions in <root>/.netbuild/nix (and a default.nix in
// the root if it has none), written only where they changed.
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { GENERATED_DIR, ROOT_DEFAULT_NIX, renderNix, type NixLibrary } from "../core/nix-render.ts";
import type { Inventory } from "../core/inventory.ts";
import { hasNpinsNixpkgs } from "../adapters/inventory-files.ts";
import { writeFileAtomic, writeIfChanged } from "../adapters/files.ts";
import { localConfinedRoot } from "../adapters/target-fs.ts";
import { packageFile } from "../package-files.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";

export type GenerateOptions = RootOptions;

export interface GenerateResult {
  /** The generated folder. */
  dir: string;
  written: string[];
  unchanged: string[];
  removed: string[];
  /** Whether this run wrote <root>/default.nix (only ever when there was none). */
  wroteRootDefault: boolean;
}

let library: NixLibrary | undefined;

/** The scripts netbuild.nix installs (by these names, next to it: `./provision-disks.sh`). */
const MODULE_SCRIPTS = ["netbuild-cmdline.sh", "netbuild-hostname.sh", "provision-disks.sh"];

async function nixLibrary(): Promise<NixLibrary> {
  library ??= {
    lib: await fs.readFile(packageFile("nix/lib.nix"), "utf8"),
    module: await fs.readFile(packageFile("nixos/modules/netbuild.nix"), "utf8"),
    scripts: Object.fromEntries(await Promise.all(MODULE_SCRIPTS.map(async (name) => [name, await fs.readFile(packageFile(`nixos/modules/${name}`), "utf8")] as const))),
  };
  return library;
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(path.join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

/** Writes the generated files for an already-loaded inventory (build uses this too). */
export async function writeGenerated(root: string, inv: Inventory): Promise<GenerateResult> {
  const dir = path.join(root, GENERATED_DIR);
  const files = renderNix(inv, await nixLibrary(), hasNpinsNixpkgs(root));
  const result: GenerateResult = { dir, written: [], unchanged: [], removed: [], wroteRootDefault: false };
  // The confinement rule (adapters/confine.ts): every folder on the way is made here, real, or the
  // run is refused before anything is written; never written (or cleared) through a link.
  const confined = localConfinedRoot(root, "ROOT_CONFLICT");
  for (const f of files) await confined.prepare(`${GENERATED_DIR}/${f.path}`);
  for (const f of files) {
    if (await writeIfChanged(path.join(dir, f.path), f.content)) result.written.push(f.path);
    else result.unchanged.push(f.path);
  }
  // The folder is netbuild's own: a class that was removed loses its expression.
  const wanted = new Set(files.map((f) => f.path));
  for (const f of await listFiles(dir)) {
    if (!wanted.has(f)) {
      await fs.rm(path.join(dir, f), { force: true });
      result.removed.push(f);
    }
  }
  const rootDefault = path.join(root, "default.nix");
  if (!existsSync(rootDefault)) {
    await writeFileAtomic(rootDefault, ROOT_DEFAULT_NIX);
    result.wroteRootDefault = true;
  }
  return result;
}

export async function generate(options: GenerateOptions, ctx: Context): Promise<GenerateResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  return writeGenerated(root, inv);
}
