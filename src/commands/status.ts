// `netbuild status [--target NAME]`: what each target serves — classes with their kept generations
// (the current one marked), hosts, whether a deploy holds the lock or did not finish.
import { LOCK_PATH, type LastChange, type Origin } from "../core/deploy.ts";
import { readDeployed } from "../adapters/target-tree.ts";
import { scriptWipe, scriptWipeForced } from "../core/tree.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";
import { withEachTarget, selectTargets, type TargetOptions } from "./targets.ts";

export type StatusOptions = RootOptions & TargetOptions;

export interface TargetStatus {
  name: string;
  target: string;
  deployed: boolean;
  classes: {
    name: string;
    current: string;
    generations: { id: string; kernel: string; initrd: string; current: boolean; deployed: Origin | undefined }[];
    served: boolean;
    /** A rollback pins the class: deploys of the builds it left do not switch it forward (`rollback --generation` does). */
    pinned: { from: string[] } | undefined;
  }[];
  /** The last deploy or rollback that changed what the target serves (absent when no netbuild ≥ 0.2 changed it). */
  last: LastChange | undefined;
  hosts: number;
  macs: number;
  locked: string | undefined;
  /** A deploy did not finish: the next one completes it. */
  unfinished: boolean;
  /**
   * Hosts the inventory arms a wipe for, with their provisioning id, and what this target serves
   * them: the same id (armed there), another id, no wipe, or no script at all. (A wipe the target
   * serves to a host the inventory does not arm is `netbuild verify`'s to find: it reads every script.)
   */
  armed: { host: string; id: string; force: boolean; served: { wipe: boolean; id: string | undefined; force: boolean } | undefined }[];
}

function describeHolder(text: string): string {
  try {
    const l = JSON.parse(text) as { command: string; owner: string; host: string; pid: number; started: string };
    return `\`netbuild ${l.command}\` by ${l.owner} on ${l.host} (pid ${l.pid}) since ${l.started}`;
  } catch {
    return "a lock file netbuild cannot read";
  }
}

export async function status(options: StatusOptions, ctx: Context): Promise<{ targets: TargetStatus[] }> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const targets = await withEachTarget(
    selectTargets(inv, options),
    root,
    options,
    ctx,
    async (t, fs): Promise<TargetStatus> => {
      const deployed = await readDeployed(fs);
      const lock = await fs.readFile(LOCK_PATH);
      const armed = await Promise.all(
        inv.hosts
          .filter((h) => h.provisionDisks)
          .map(async (h) => {
            const rel = `by-host/${h.name}/ipxe`;
            const text = deployed?.entries[rel] ? (await fs.readFile(rel))?.toString("utf8") : undefined;
            const id = text === undefined ? undefined : scriptWipe(text, inv.site.flagPrefix);
            return { host: h.name as string, id: h.provisionId ?? "", force: h.provisionForce, served: text === undefined ? undefined : { wipe: id !== undefined, id, force: scriptWipeForced(text, inv.site.flagPrefix) } };
          }),
      );
      const paths = Object.keys(deployed?.entries ?? {});
      return {
        name: t.name,
        target: fs.description,
        deployed: deployed !== undefined,
        classes: Object.entries(deployed?.classes ?? {}).map(([name, c]) => ({
          name,
          current: c.current,
          served: `by-class/${name}/ipxe` in (deployed?.entries ?? {}),
          generations: c.generations.map((g) => ({ id: g.id, kernel: g.kernel, initrd: g.initrd, current: g.id === c.current, deployed: g.deployed })),
          pinned: c.rolledBackFrom && c.rolledBackFrom.length > 0 ? { from: c.rolledBackFrom } : undefined,
        })),
        last: deployed?.last,
        hosts: paths.filter((p) => /^by-host\/[^/]+\/ipxe$/.test(p)).length,
        macs: paths.filter((p) => /^by-mac\/[^/]+(\/ipxe)?$/.test(p)).length,
        locked: lock === undefined ? undefined : describeHolder(lock.toString("utf8")),
        unfinished: (deployed?.pending.length ?? 0) > 0,
        armed,
      };
    },
  );
  return { targets };
}
