// `netbuild talos schematic CLASS`, and what `build` needs for Talos hosts: their machine configs,
// rendered from the site's base configs (secrets) plus typed settings and patches.
import { UserError, type Issue } from "../errors.ts";
import { fileProblemMessage, talosArtifactUrl, type Host, type Inventory, type TalosClass, type TalosHost } from "../core/inventory.ts";
import type { ClassName } from "../core/names.ts";
import type { ClassBuild } from "../core/tree.ts";
import { renderMachineConfig, type ConfigFile } from "../core/talos-config.ts";
import { committedInClear, readConfigFile } from "../adapters/talos-files.ts";
import type { Reporter } from "../ui/reporter.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";

export interface TalosInstall {
  name: string;
  disk: string;
  wipe: boolean;
}

export interface SchematicResult {
  class: string;
  id: string;
  yaml: string;
  urls: { kernel: string; initramfs: string; cmdline: string };
}

export async function schematic(options: RootOptions & { className: string }, ctx: Context): Promise<SchematicResult> {
  const inv = await loadRoot(rootOf(options, ctx), ctx);
  const def = inv.classes.find((c) => c.name === options.className);
  if (!def || def.kind !== "talos") {
    const talos = inv.classes.filter((c) => c.kind === "talos").map((c) => c.name);
    throw new UserError("USAGE", def ? `class ${def.name} is a ${def.kind} class, not a Talos class` : `unknown class ${JSON.stringify(options.className)}`, {
      hint: talos.length > 0 ? `Talos classes: ${talos.join(", ")}` : "there are no Talos classes (kind: talos) in classes/",
    });
  }
  return {
    class: def.name,
    id: def.schematicId,
    yaml: def.schematicYaml,
    urls: {
      kernel: talosArtifactUrl(inv.site.talosFactory, def, "kernel"),
      initramfs: talosArtifactUrl(inv.site.talosFactory, def, "initramfs"),
      cmdline: talosArtifactUrl(inv.site.talosFactory, def, "cmdline"),
    },
  };
}

/** What to tell the user about the secrets in Talos machine configs, given where they are served. */
export function secretsNotice(inv: Inventory): string | undefined {
  const hosts = inv.hosts.filter((h) => h.talos);
  if (hosts.length === 0 || inv.site.talosConfigBaseUrl === undefined) return undefined;
  const plain = inv.site.talosConfigBaseUrl.startsWith("http://");
  return `the machine configs of ${hosts.length} Talos host${hosts.length === 1 ? "" : "s"} hold cluster secrets (tokens, CA keys); netbuild writes them only into the tree and to the deploy targets, and the boot server serves them to anyone who can reach ${inv.site.talosConfigBaseUrl}/by-host/${plain ? " over plain http: use an https configBaseUrl, and restrict who can reach it" : ": restrict who can reach it"}`;
}

export function announceInstalls(reporter: Reporter, installs: readonly TalosInstall[]): void {
  if (installs.length === 0) return;
  reporter.danger(`!!! ${installs.length} Talos host${installs.length === 1 ? "" : "s"} will INSTALL Talos onto a disk when booted without Talos installed there (the disk is repartitioned):`);
  for (const i of installs) reporter.danger(`!!!   ${i.name}  onto ${i.disk}${i.wipe ? " (machine.install.wipe: true: the whole disk is wiped first)" : ""}`);
}

/**
 * Renders the machine config of every Talos host whose class has a build. All problems of all
 * hosts are reported together (exit 2), before anything is written.
 */
export async function renderTalosConfigs(
  root: string,
  inv: Inventory,
  builds: ReadonlyMap<ClassName, ClassBuild> | "all",
  ctx: Context,
  /** `plan`: a missing base config is reported, not an error (the host is listed in `unrendered`). */
  opts: { missingBaseIsError: boolean } = { missingBaseIsError: true },
): Promise<{ texts: Map<string, string>; installs: TalosInstall[]; unrendered: string[] }> {
  const texts = new Map<string, string>();
  const installs: TalosInstall[] = [];
  const unrendered: string[] = [];
  const issues: Issue[] = [];
  const classes = new Map(inv.classes.map((c) => [c.name as string, c]));
  const cache = new Map<string, ConfigFile | Issue>();
  const read = (rel: string, what: string, field: string, hint: string): ConfigFile | Issue => {
    const key = `${rel}\0${what}`;
    let got = cache.get(key);
    if (!got) {
      const r = readConfigFile(root, rel);
      const problem = r.ok ? undefined : fileProblemMessage(r.problem);
      got = r.ok ? r.file : { severity: "error", where: { file: rel, field }, message: `the ${what} ${rel} ${problem!.message}`, hint: r.problem.kind === "missing" ? hint : problem!.hint };
      cache.set(key, got);
    }
    return got;
  };
  const hosts = inv.hosts.filter((h): h is Host & { talos: TalosHost } => h.talos !== undefined && (builds === "all" || builds.has(h.className)));
  // Each base config is looked at once: reported missing, or checked for being committed in clear.
  const seenBase = new Set<string>();
  for (const host of hosts) {
    const cls = classes.get(host.className) as TalosClass;
    const baseRel = inv.site.talosBaseConfigs[host.talos.role]!;
    const base = read(baseRel, "base config", `site.talos.baseConfigs.${host.talos.role}`, `create it with \`talosctl gen config <cluster> <endpoint> --output-types ${host.talos.role} -o ${baseRel}\` (keep it out of git, or encrypted)`);
    if ("severity" in base) {
      if (opts.missingBaseIsError) issues.push(base);
      else {
        if (!seenBase.has(baseRel)) ctx.reporter.warn(`${base.message}: the machine configs of its hosts cannot be rendered (build will refuse them)`);
        seenBase.add(baseRel);
        unrendered.push(host.name);
      }
      continue;
    }
    if (!seenBase.has(baseRel)) {
      seenBase.add(baseRel);
      if (await committedInClear(root, baseRel)) {
        ctx.reporter.warn(`${baseRel} holds cluster secrets and is committed to git in clear text: remove it from git (git rm --cached, then .gitignore it), or encrypt it (git-crypt, sops)`);
      }
    }
    const patches: ConfigFile[] = [];
    for (const rel of host.talos.patches) {
      const p = read(rel, "patch", `${host.file}: talos.patches`, "patch files are relative to the class or host file that names them");
      if ("severity" in p) issues.push(p);
      else patches.push(p);
    }
    const r = renderMachineConfig(host, cls, base, patches);
    if (!r.ok) {
      issues.push(...r.issues.map((i) => ({ ...i, message: `host ${host.name}: ${i.message}` })));
      continue;
    }
    texts.set(host.name, r.value.text);
    if (r.value.installDisk !== undefined) installs.push({ name: host.name, disk: r.value.installDisk, wipe: r.value.wipe });
  }
  if (issues.length > 0) {
    const unique = [...new Map(issues.map((i) => [JSON.stringify(i), i])).values()];
    throw new UserError("INVENTORY_INVALID", `${unique.length} problem${unique.length === 1 ? "" : "s"} rendering Talos machine configs; nothing was written`, { issues: unique });
  }
  return { texts, installs, unrendered };
}
