// `netbuild gc [--keep N] [--dry-run]`: remove from the target what no kept generation references:
// artifacts of generations beyond `keep`, everything of classes deploy has removed, and the
// temporary files of deploys that did not finish. Only paths the target's manifest records.
import { formatBytes } from "../ui/reporter.ts";
import { planGc } from "../core/deploy.ts";
import { acquireLock, applyDeploy, notRemoved, readDeployed, removeTemps } from "../adapters/target-tree.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";
import { withEachTarget, selectTargets, type TargetOptions } from "./targets.ts";

export interface GcOptions extends RootOptions, TargetOptions {
  /** Generations to keep per class (default: the target's keep). */
  keep?: number | undefined;
  dryRun?: boolean | undefined;
  wait?: boolean | undefined;
}

export interface GcResult {
  targets: { name: string; target: string; removed: string[]; temps: number; freed: number }[];
}

export async function gc(options: GcOptions, ctx: Context): Promise<GcResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const targets = selectTargets(inv, options);
  const results = await withEachTarget(
    targets,
    root,
    options,
    ctx,
    async (t, fs) => {
      const lock = options.dryRun ? undefined : await acquireLock(fs, "gc", { wait: options.wait, onWait: (m) => ctx.reporter.info(`[${t.name}] ${m}`) });
      try {
        const deployed = await readDeployed(fs);
        if (!deployed) return { name: t.name, target: fs.description, removed: [], temps: 0, freed: 0 };
        const { plan, temps, leftovers } = planGc(deployed, options.keep ?? t.keep);
        // Each file's size as recorded; what a stopped gc left is no longer recorded: as the target holds it.
        const sizes = new Map<string, number>();
        for (const p of plan.deletions) {
          const e = deployed.entries[p];
          if (e?.kind === "artifact") sizes.set(p, e.size);
          else if (leftovers.includes(p) && (await fs.blockedAt(p)) === undefined) {
            const st = await fs.stat(p);
            if (st?.kind === "file") sizes.set(p, st.size);
          }
        }
        for (const p of plan.deletions) ctx.reporter.info(`[${t.name}] ${options.dryRun ? "would remove" : "remove"} ${p}`);
        let removedTemps = 0;
        let removed = plan.deletions;
        if (!options.dryRun) {
          const applied = await applyDeploy(fs, root, plan, deployed);
          removedTemps = await removeTemps(fs, temps);
          for (const p of applied.kept) ctx.reporter.warn(`[${t.name}] ${notRemoved(p, deployed)}`);
          removed = plan.deletions.filter((p) => !applied.kept.includes(p));
        }
        return { name: t.name, target: fs.description, removed, temps: removedTemps, freed: removed.reduce((n, p) => n + (sizes.get(p) ?? 0), 0) };
      } finally {
        await lock?.release();
      }
    },
    (r) => [`${options.dryRun ? "would remove" : "removed"} ${r.removed.length} file${r.removed.length === 1 ? "" : "s"} (${formatBytes(r.freed)})${r.temps > 0 ? ` and ${r.temps} temporary files` : ""}`],
  );
  return { targets: results };
}
