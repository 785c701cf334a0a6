// `netbuild plan`: what the inventory says each machine will boot, with no build and no writes.
// The hosts that will wipe their disks are listed first and loudly.
import { macColons } from "../core/names.ts";
import { hostParams } from "../core/tree.ts";
import { announceInstalls, renderTalosConfigs, secretsNotice, type TalosInstall } from "./talos.ts";
import { checkOutFolder } from "../adapters/local-tree.ts";
import { announceWipes, placeholderKeyWarning, wipesOf, type Wipe } from "./out-tree.ts";
import { loadRoot, outOf, rootOf, type Context, type OutOptions } from "./context.ts";
import type { DeployTargetResult } from "./deploy.ts";
import type { TargetOptions } from "./targets.ts";

export interface PlanOptions extends OutOptions, Partial<TargetOptions> {}

export interface PlanResult {
  out: string;
  classes: { name: string; kind: string; file: string; kernelParams: string[]; built: boolean }[];
  hosts: { name: string; file: string; className: string; macs: string[]; cmdline: string[]; wipe: boolean; provisionId?: string }[];
  wipes: Wipe[];
  unknownMachines: string;
  /** Talos hosts and the machine configs (cluster secrets) the tree will serve for them. */
  talos: { hosts: { name: string; role: string; configUrl: string; installDisk: string | undefined }[]; secrets: string | undefined };
  /**
   * With --target: per target, what a deploy of out/ and the inventory would change there, against
   * what the target records and serves (machines, classes, files, wipes), as `deploy --dry-run`.
   */
  targets?: DeployTargetResult[];
  /** With --target and nothing built here: `deploy` refuses (OUT_NOT_BUILT) until a class is built; the plan is what it would do then. */
  deployRefuses?: string;
}

export async function plan(options: PlanOptions, ctx: Context): Promise<PlanResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const out = outOf(options, ctx, root, inv);
  const manifest = await checkOutFolder(out);
  const wipes = wipesOf(inv, inv.hosts.filter((h) => h.provisionDisks).map((h) => h.name));
  announceWipes(ctx.reporter, wipes);
  const secrets = secretsNotice(inv);
  if (secrets) ctx.reporter.warn(secrets);
  const placeholder = placeholderKeyWarning(inv);
  if (placeholder) ctx.reporter.warn(placeholder);
  // Machine configs are rendered (in memory) where their base configs are here, so the install
  // disk shown is the one the config will hold, from the base config, a setting or a patch.
  let installs = new Map<string, TalosInstall>();
  let unrendered = new Set<string>();
  if (inv.hosts.some((h) => h.talos)) {
    const r = await renderTalosConfigs(root, inv, "all", ctx, { missingBaseIsError: false });
    installs = new Map(r.installs.map((i) => [i.name, i]));
    unrendered = new Set(r.unrendered);
    announceInstalls(ctx.reporter, r.installs);
  }
  // Against targets: a deploy's dry run, read from each target (nothing is written or locked).
  const targets = options.targets && options.targets.length > 0 ? (await (await import("./deploy.ts")).deploy({ ...options, targets: options.targets, planOnly: true }, ctx)).targets : undefined;
  const nothingBuilt = !manifest || Object.keys(manifest.classes).length === 0;
  return {
    ...(targets ? { targets } : {}),
    ...(targets && nothingBuilt ? { deployRefuses: "nothing is built here: `netbuild deploy` refuses until `netbuild build` has built a class; with one built, a deploy would change what follows (hosts of the classes each target serves follow the inventory)" } : {}),
    out,
    classes: inv.classes.map((c) => ({ name: c.name, kind: c.kind, file: c.file, kernelParams: c.kernelParams, built: manifest?.classes[c.name] !== undefined })),
    hosts: inv.hosts.map((h) => ({
      name: h.name,
      file: h.file,
      className: h.className,
      macs: h.macs.map(macColons),
      cmdline: hostParams(h, inv.site.flagPrefix),
      wipe: h.provisionDisks,
      ...(h.provisionId !== undefined ? { provisionId: h.provisionId } : {}),
    })),
    wipes,
    unknownMachines: inv.site.unknownClass === null ? "strict: boot nothing" : `boot class ${inv.site.unknownClass}`,
    talos: {
      hosts: inv.hosts.flatMap((h) =>
        h.talos
          ? [{ name: h.name as string, role: h.talos.role, configUrl: h.talos.configUrl.slice("talos.config=".length), installDisk: unrendered.has(h.name) ? (h.talos.installDisk ?? "unknown: its base config is missing") : installs.get(h.name)?.disk }]
          : [],
      ),
      secrets,
    },
  };
}
