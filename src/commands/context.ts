// What every command gets: where it runs, where its messages go, its environment. Commands never
// print results or pick exit codes; cli.ts does.
import path from "node:path";
import { UserError } from "../errors.ts";
import type { Inventory } from "../core/inventory.ts";
import type { Reporter } from "../ui/reporter.ts";
import { inventoryFolderHolding } from "../adapters/inventory-files.ts";

/** Where build keeps its GC roots (a link per class and artifact), so `nix-collect-garbage` keeps the current builds. */
export const GC_ROOTS = ".netbuild/gcroots";
/** Where `netbuild serve` keeps its access log (which `discovered` reads) and dnsmasq's configuration, inside the root's .netbuild/. */
export const SERVE_DIR = ".netbuild/serve";
export const ACCESS_LOG = `${SERVE_DIR}/access.log`;

export interface Context {
  cwd: string;
  reporter: Reporter;
  env: NodeJS.ProcessEnv;
}

export interface RootOptions {
  /** The inventory root (default: the current folder). */
  root?: string | undefined;
}

export interface OutOptions extends RootOptions {
  /** The output tree (default: the site's `out`, relative to the root). */
  out?: string | undefined;
}

export function rootOf(options: RootOptions, ctx: Context): string {
  return path.resolve(ctx.cwd, options.root ?? ".");
}

export function outOf(options: OutOptions, ctx: Context, root: string, inv: Inventory): string {
  const out = options.out !== undefined ? path.resolve(ctx.cwd, options.out) : path.resolve(root, inv.site.out);
  refuseInventoryFolder(root, out, options.out !== undefined ? "--out" : "out (netbuild.yaml)");
  return out;
}

/** A tree (the output, a local target) inside hosts/ or classes/ would be read back as inventory: refused, exit 2. */
export function refuseInventoryFolder(root: string, dir: string, what: string): void {
  const folder = inventoryFolderHolding(root, dir);
  if (folder) throw new UserError("USAGE", `${what}: ${dir} is in the inventory's ${folder}/ folder (by its path, a symlink, or another spelling of its name), which netbuild reads as inventory`, { hint: "give a folder of its own, outside classes/ and hosts/" });
}

/** Inventories already loaded in a run (`plan --target` runs a deploy's dry run): read, and warned about, once. */
const loaded = new WeakMap<Context, Map<string, Inventory>>();

/** Inventory caches not written yet (see loadRoot's `deferCache`), by run. */
const unsaved = new WeakMap<Context, (() => void)[]>();

/**
 * Loads and validates the inventory; every problem of every file at once, or the model. Once per run
 * and root. `deferCache`: the caches of what was read (`.netbuild/cache`) are written when the caller
 * says (saveInventoryCaches), not now: a build writes them while nix-build runs, since serialising a
 * changed 10,000-host inventory takes a while.
 */
export async function loadRoot(root: string, ctx: Context, options: { deferCache?: boolean } = {}): Promise<Inventory> {
  const known = loaded.get(ctx)?.get(root);
  if (known) return known;
  const inv = await loadOnce(root, ctx, options.deferCache === true);
  if (!loaded.has(ctx)) loaded.set(ctx, new Map());
  loaded.get(ctx)!.set(root, inv);
  return inv;
}

/** Writes the caches loadRoot was asked to defer (each once; nothing when there are none). */
export function saveInventoryCaches(ctx: Context): void {
  const saves = unsaved.get(ctx) ?? [];
  unsaved.delete(ctx);
  for (const save of saves) save();
}

async function loadOnce(root: string, ctx: Context, deferCache: boolean): Promise<Inventory> {
  const { readInventory } = await import("../adapters/inventory-files.ts");
  const read = await readInventory(root);
  let inv = read.known;
  if (!inv) {
    // Loaded here, and only when something changed: zod and yaml take a while to load, and deploy starts connecting first.
    const { loadInventory } = await import("../core/inventory.ts");
    const result = loadInventory(read.source);
    if (!result.ok) {
      const errors = result.issues.filter((i) => i.severity === "error");
      throw new UserError("INVENTORY_INVALID", `the inventory has ${errors.length} error${errors.length === 1 ? "" : "s"}; nothing was written`, { issues: result.issues });
    }
    // Bad input writes nothing, not even the caches.
    if (deferCache) unsaved.set(ctx, [...(unsaved.get(ctx) ?? []), () => read.save(result)]);
    else read.save(result);
    inv = result.inventory;
  }
  for (const w of inv.warnings) ctx.reporter.warn(w);
  return inv;
}

/** `--class` names must exist: a typo would otherwise build nothing and look like success. */
export function selectClasses(inv: Inventory, names: readonly string[]): Inventory["classes"] {
  if (names.length === 0) return inv.classes;
  const known = new Map(inv.classes.map((c) => [c.name as string, c]));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UserError("USAGE", `unknown class${unknown.length > 1 ? "es" : ""} ${unknown.map((n) => JSON.stringify(n)).join(", ")}`, {
      hint: `classes are the files in classes/: ${[...known.keys()].join(", ")}`,
    });
  }
  return [...new Set(names)].sort().map((n) => known.get(n)!);
}
