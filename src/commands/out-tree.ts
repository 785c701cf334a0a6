// What build, deploy and plan share about out/'s tree, kept apart from build.ts so that deploy and
// plan do not load what only a build needs (Nix, the Talos tooling, the inventory schemas: a deploy
// whose inventory is unchanged since the build never loads zod or yaml for it).
import type { Inventory } from "../core/inventory.ts";
import { parseKernelParam, type ClassName, type KernelParam } from "../core/names.ts";
import { planTree, type ClassBuild, type PlanTreeInput, type Tree } from "../core/tree.ts";
import type { TreeManifest } from "../adapters/local-tree.ts";
import { ipxeTemplates } from "../templates.ts";
import type { Reporter } from "../ui/reporter.ts";

/** Builds recorded in the tree for classes not selected now: the tree keeps serving them. */
export function keptBuilds(inv: Inventory, manifest: TreeManifest | undefined, selected: ReadonlySet<string>): Map<ClassName, ClassBuild> {
  const kept = new Map<ClassName, ClassBuild>();
  for (const def of inv.classes) {
    const rec = manifest?.classes[def.name];
    if (!rec || selected.has(def.name) || rec.kind !== def.kind) continue;
    const params = rec.kernelParams.map((p) => parseKernelParam(p));
    if (!params.every((p) => p.ok)) continue;
    kept.set(def.name, {
      kernel: { storeFile: rec.kernel.storeFile, size: rec.kernel.size },
      initrd: { storeFile: rec.initrd.storeFile, size: rec.initrd.size },
      kernelParams: params.map((p) => (p as { value: KernelParam }).value),
    });
  }
  return kept;
}

/** The tree for these builds, continuing the generations the out/ manifest records. */
export function treeOf(inv: Inventory, builds: ReadonlyMap<ClassName, ClassBuild>, manifest: TreeManifest | undefined, machineConfigs?: ReadonlyMap<string, string>): Tree {
  const before: PlanTreeInput["before"] = new Map(
    Object.entries(manifest?.classes ?? {}).map(([name, rec]) => [name as ClassName, { kernel: rec.kernel.path, initrd: rec.initrd.path, previous: rec.previous }]),
  );
  return planTree({ inventory: inv, builds, before, templates: ipxeTemplates(), ...(machineConfigs ? { machineConfigs } : {}) });
}

export function announceWipes(reporter: Reporter, wipes: { name: string; file: string }[]): void {
  if (wipes.length === 0) return;
  reporter.danger(`!!! ${wipes.length} host${wipes.length === 1 ? "" : "s"} will FORMAT (WIPE) ${wipes.length === 1 ? "ITS" : "THEIR"} DISKS on the next boot:`);
  for (const w of wipes) reporter.danger(`!!!   ${w.name}  (provision.disks: true in ${w.file})`);
}
