// `netbuild rollback [--class NAME]... [--to GENERATION]`: point class scripts on the target back at
// a kept generation. Nothing is uploaded: the artifacts of kept generations are on the target, and
// each class switches with one atomic rename. It lasts until the next deploy of that class.
import { UserError } from "../errors.ts";
import { planRollback, type RollbackChange } from "../core/deploy.ts";
import { acquireLock, applyDeploy, readDeployed } from "../adapters/target-tree.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";
import { withEachTarget, selectTargets, targetLabel, type TargetOptions } from "./targets.ts";

export interface RollbackOptions extends RootOptions, TargetOptions {
  /** Classes to roll back; empty = every class on the target. */
  classes: string[];
  /** A generation id (or its prefix) to switch to, instead of the one before the current. */
  generation?: string | undefined;
  wait?: boolean | undefined;
  /** Say what would switch, change nothing (no lock taken). */
  dryRun?: boolean | undefined;
}

export interface RollbackResult {
  dryRun: boolean;
  targets: { name: string; target: string; changes: RollbackChange[] }[];
}

export async function rollback(options: RollbackOptions, ctx: Context): Promise<RollbackResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const targets = selectTargets(inv, { ...options, to: undefined });
  const origin = options.dryRun ? Promise.resolve(undefined) : (await import("../adapters/origin.ts")).deployOrigin(root, ctx.env);
  const results = await withEachTarget(
    targets,
    root,
    options,
    ctx,
    async (t, fs) => {
      const lock = options.dryRun ? undefined : await acquireLock(fs, "rollback", { wait: options.wait, onWait: (m) => ctx.reporter.info(`[${t.name}] ${m}`) });
      try {
        const deployed = await readDeployed(fs);
        if (!deployed) throw new UserError("NOTHING_TO_ROLL_BACK", `nothing has been deployed to ${targetLabel(t)}`);
        const { plan, changes, problems } = planRollback(deployed, options.classes, options.generation, await origin);
        if (problems.length > 0) throw new UserError("NOTHING_TO_ROLL_BACK", `${targetLabel(t)}: ${problems.join("; ")}`, { hint: "generations are kept by deploys (site setting keep); `netbuild status` lists them" });
        for (const g of plan.switches) {
          const cls = /^by-class\/([^/]+)\/ipxe$/.exec(g.path)![1]!;
          const gen = deployed.classes[cls]!.generations.find((x) => x.sha256 === (g as { sha256: string }).sha256)!;
          for (const p of [gen.kernel, gen.initrd]) {
            const st = await fs.stat(p);
            const rec = deployed.entries[p];
            if (st?.kind !== "file" || rec?.kind !== "artifact" || st.size !== rec.size) {
              throw new UserError("NOTHING_TO_ROLL_BACK", `${targetLabel(t)}: generation ${gen.id} of class ${cls} is incomplete (${p} is missing or the wrong size)`, { hint: "deploy that build again instead" });
            }
          }
        }
        if (options.dryRun) return { name: t.name, target: fs.description, changes };
        await applyDeploy(fs, root, plan, deployed);
        return { name: t.name, target: fs.description, changes };
      } finally {
        await lock?.release();
      }
    },
    (r) => (r.changes.length === 0 ? ["nothing to roll back"] : r.changes.map((c) => `class ${c.name} ${options.dryRun ? "would " : ""}${c.direction === "back" ? (options.dryRun ? "roll back" : "rolled back") : options.dryRun ? "switch forward" : "switched forward"}: ${c.from} → ${c.to}`)),
  );
  return { dryRun: Boolean(options.dryRun), targets: results };
}
