// Reads an inventory root from disk into the loader's input: the site file, classes/*.yaml and
// hosts/**/*.yaml, plus a probe that tells whether a referenced file exists inside the root.
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { UserError } from "../errors.ts";
import { SITE_FILE, type InventoryFile, type InventorySource } from "../core/inventory.ts";

const YAML = /\.ya?ml$/;

// Synchronous on purpose: the inventory is read whole before anything else happens, and for
// 10,000 host files the promise-per-file version spent most of its time in the thread pool.
function listYaml(root: string, dir: string, recursive: boolean): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(root, dir), { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory() && recursive && !e.name.startsWith(".")) out.push(...listYaml(root, rel, true));
    else if ((e.isFile() || e.isSymbolicLink()) && YAML.test(e.name) && !e.name.startsWith(".")) out.push(rel);
  }
  return out.sort();
}

function read(root: string, rel: string): InventoryFile {
  return { path: rel, text: readFileSync(path.join(root, rel), "utf8") };
}

export async function readInventorySource(root: string): Promise<InventorySource> {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UserError("USAGE", `the inventory root ${root} is not a folder`, { hint: "pass --root with the folder that holds classes/ and hosts/" });
  }
  const realRoot = realpathSync(root);
  if (!existsSync(path.join(root, "classes")) && !existsSync(path.join(root, "hosts"))) {
    throw new UserError("USAGE", `${root} has neither classes/ nor hosts/`, { hint: "run netbuild in your inventory repository, or pass --root" });
  }
  const sitePath = path.join(root, SITE_FILE);
  return {
    site: existsSync(sitePath) ? read(root, SITE_FILE) : undefined,
    classes: listYaml(root, "classes", false).map((f) => read(root, f)),
    hosts: listYaml(root, "hosts", true).map((f) => read(root, f)),
    probe(rel) {
      const abs = path.join(root, rel);
      try {
        lstatSync(abs);
      } catch {
        return "missing";
      }
      let real: string;
      try {
        real = realpathSync(abs);
      } catch {
        return "missing";
      }
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return "outside";
      return statSync(real).isDirectory() ? "dir" : "file";
    },
  };
}

/** Whether the root pins nixpkgs with npins (the generated code then imports it by default). */
export function hasNpinsNixpkgs(root: string): boolean {
  try {
    const data = JSON.parse(readFileSync(path.join(root, "npins", "sources.json"), "utf8")) as { pins?: Record<string, unknown> };
    return existsSync(path.join(root, "npins", "default.nix")) && data.pins?.["nixpkgs"] !== undefined;
  } catch {
    return false;
  }
}
