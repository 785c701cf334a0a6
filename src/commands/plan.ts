// `netbuild plan`: what the inventory says each machine will boot, with no build and no writes.
// The hosts that will wipe their disks are listed first and loudly.
import { macColons } from "../core/names.ts";
import { hostParams } from "../core/tree.ts";
import { checkOutFolder } from "../adapters/local-tree.ts";
import { announceWipes } from "./build.ts";
import { loadRoot, outOf, rootOf, type Context, type OutOptions } from "./context.ts";

export type PlanOptions = OutOptions;

export interface PlanResult {
  out: string;
  classes: { name: string; kind: string; file: string; kernelParams: string[]; built: boolean }[];
  hosts: { name: string; file: string; className: string; macs: string[]; cmdline: string[]; wipe: boolean }[];
  wipes: { name: string; file: string }[];
  unknownMachines: string;
}

export async function plan(options: PlanOptions, ctx: Context): Promise<PlanResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const out = outOf(options, ctx, root, inv);
  const manifest = await checkOutFolder(out);
  const wipes = inv.hosts.filter((h) => h.provisionDisks).map((h) => ({ name: h.name as string, file: h.file }));
  announceWipes(ctx.reporter, wipes);
  return {
    out,
    classes: inv.classes.map((c) => ({ name: c.name, kind: c.kind, file: c.file, kernelParams: c.kernelParams, built: manifest?.classes[c.name] !== undefined })),
    hosts: inv.hosts.map((h) => ({
      name: h.name,
      file: h.file,
      className: h.className,
      macs: h.macs.map(macColons),
      cmdline: hostParams(h, inv.site.flagPrefix),
      wipe: h.provisionDisks,
    })),
    wipes,
    unknownMachines: inv.site.unknownClass === null ? "strict: boot nothing" : `boot class ${inv.site.unknownClass}`,
  };
}
