// `netbuild verify`: the proof after a deploy.
//   --http URL   does what each machine does: for every MAC in the inventory, fetch boot.ipxe from
//                the boot server, follow the chain to the host and class scripts, and check the
//                kernel command line and every kernel/initrd they name (size and sha256) against the
//                built tree; a MAC in no host must boot nothing (or the unknown-machine class).
//   otherwise    checks each target against its manifest: missing, changed and added files.
import path from "node:path";
import { UserError } from "../errors.ts";
import { macVariables, walkBootChain } from "../core/boot-chain.ts";
import { hostOfScript, hostParams, isWipeParam, scriptClass, scriptHeld, scriptParams, scriptWipe, scriptWipeForced, scriptWipes } from "../core/tree.ts";
import type { DeployedManifest } from "../core/deploy.ts";
import type { Inventory } from "../core/inventory.ts";
import { macColons, type Mac } from "../core/names.ts";
import type { TargetFs } from "../adapters/target-fs.ts";
import { checkOutFolder } from "../adapters/local-tree.ts";
import { fetchDigest, fetchText } from "../adapters/http.ts";
import { pool, readDeployed, verifyTarget, type Drift } from "../adapters/target-tree.ts";
import { formatBytes } from "../ui/reporter.ts";
import { loadRoot, outOf, rootOf, type Context, type OutOptions } from "./context.ts";
import { withEachTarget, selectTargets, type TargetOptions } from "./targets.ts";

export interface VerifyOptions extends OutOptions, TargetOptions {
  /** The URL the boot server serves the tree at (what DHCP hands out, minus boot.ipxe). */
  http?: string | undefined;
}

export interface MachineCheck {
  mac: string;
  host: string | undefined;
  ok: boolean;
  outcome: "boot" | "exit" | "error";
  scripts: string[];
  kernel: string | undefined;
  initrd: string | undefined;
  cmdline: string[];
  problems: string[];
  /** What was not checked, and why (a class not built here has no build to compare its files with). */
  notes: string[];
}

export interface VerifyResult {
  http: { url: string; machines: MachineCheck[]; bytesChecked: number } | undefined;
  targets: { name: string; target: string; drift: Drift; hosts: { checked: number; problems: HostProblems[] } }[];
  ok: boolean;
}

export interface HostProblems {
  host: string;
  problems: string[];
  /** Served by the target for no host (or MAC) of the inventory. */
  orphan?: boolean;
  /** The MAC an orphan entry is about (`52:54:00:…`), when it is a MAC no host has; absent for a host script. */
  mac?: string;
}

/**
 * Every host of the inventory against what the target serves for it, whatever this checkout has
 * built: its script (the class it chains, its wipe flag, its parameters) and a by-mac entry for
 * each of its MACs leading to that script. Hosts the target does not serve are reported too.
 */
async function checkHosts(fs: TargetFs, deployed: DeployedManifest, inv: Inventory): Promise<HostProblems[]> {
  const out: HostProblems[] = [];
  const flag = `${inv.site.flagPrefix}.provision_disks=true`;
  // What the target serves that no host of the inventory explains: a removed host or MAC still
  // served (and loudly so when its script wipes).
  const known = new Set(inv.hosts.map((h) => h.name as string));
  const macs = new Set(inv.hosts.flatMap((h) => h.macs.map((m) => m as string)));
  // The host whose script a copy-mode by-mac/<mac>/ipxe is (by content), worked out only if one is asked about.
  let scriptsBySha: Map<string, string> | undefined;
  const copyOf = (sha: string) => {
    if (!scriptsBySha) {
      scriptsBySha = new Map();
      for (const [p, e] of Object.entries(deployed.entries)) {
        const host = hostOfScript(p);
        if (host !== undefined && e.kind === "file") scriptsBySha.set(e.sha256, host);
      }
    }
    return scriptsBySha.get(sha);
  };
  // Found in whatever order the reads finish; reported by host, its script before its MACs.
  const orphans: (HostProblems & { order: string })[] = [];
  await pool(Object.keys(deployed.entries), 16, async (p) => {
    const host = hostOfScript(p);
    if (host !== undefined && !known.has(host)) {
      const text = (await fs.readFile(p))?.toString("utf8") ?? "";
      orphans.push({ order: `${host}\0`, host, orphan: true, problems: [`served, but in no host file of the inventory${scriptWipes(text, inv.site.flagPrefix) ? `, WITH ${flag}: a machine with its MACs WOULD BE WIPED` : ""} (a deploy removes it)`] });
    }
    const mac = /^by-mac\/([^/]+)(\/ipxe)?$/.exec(p)?.[1];
    if (mac !== undefined && !macs.has(mac) && !(p.endsWith("/ipxe") && `by-mac/${mac}` in deployed.entries)) {
      // A link names its host; a copy (copy mode) is the host script it is the same as.
      const e = deployed.entries[p]!;
      const to = e.kind === "symlink" ? e.target.slice("../by-host/".length) : e.kind === "file" ? (copyOf(e.sha256) ?? "(a copy of no host's script)") : "(not a script)";
      orphans.push({ order: `${to}\0${mac}`, host: to, orphan: true, mac: macColons(mac as Mac), problems: [`MAC ${macColons(mac as Mac)} is served (it leads to ${to}), but no host of the inventory has it (a deploy removes it)`] });
    }
  });
  const checks = new Map<string, HostProblems>();
  await pool(inv.hosts, 16, async (h) => {
    const problems: string[] = [];
    const scriptPath = `by-host/${h.name}/ipxe`;
    const text = deployed.entries[scriptPath] ? (await fs.readFile(scriptPath))?.toString("utf8") : undefined;
    if (text === undefined) {
      checks.set(h.name, { host: h.name, problems: [`not served (class ${h.className}${deployed.entries[`by-class/${h.className}/ipxe`] ? "" : ", which this target does not serve either"})`] });
      return;
    }
    const chained = scriptClass(text);
    if (chained !== h.className) problems.push(`served class ${chained ?? "(none)"}, but the inventory says class ${h.className}${scriptHeld(text) ? " (held there when its wipe was dropped)" : ""}`);
    const served = scriptParams(text);
    const servedId = scriptWipe(text, inv.site.flagPrefix);
    if (servedId !== undefined && !h.provisionDisks) problems.push(`served ${flag}, but the inventory does not set provision.disks: ITS DISKS WOULD BE WIPED`);
    else if (servedId === undefined && h.provisionDisks) problems.push(`not served its wipe flag (${flag}, id ${h.provisionId}), which the inventory sets`);
    else if (servedId !== undefined && servedId !== h.provisionId) problems.push(`served its wipe with ${servedId ? `id ${servedId}` : "no id"}, but the inventory says id ${h.provisionId}`);
    if (servedId !== undefined && h.provisionDisks && scriptWipeForced(text, inv.site.flagPrefix) !== h.provisionForce) problems.push(h.provisionForce ? "served its wipe without the force the inventory sets" : "served its wipe FORCED (it formats disks of another install), which the inventory does not set");
    const wanted = hostParams(h, inv.site.flagPrefix).filter((p) => !isWipeParam(p, inv.site.flagPrefix));
    const stale = [...wanted.filter((p) => !served.includes(p)).map((p) => `lacks ${p}`), ...served.filter((p) => !isWipeParam(p, inv.site.flagPrefix) && !wanted.includes(p)).map((p) => `has ${p}, which the inventory does not`)];
    if (stale.length > 0) problems.push(`stale parameters: ${stale.join(", ")}`);
    for (const mac of h.macs) {
      const link = deployed.entries[`by-mac/${mac}`];
      const copy = deployed.entries[`by-mac/${mac}/ipxe`];
      if (link?.kind === "symlink" ? link.target !== `../by-host/${h.name}` : copy?.kind !== "file" || copy.sha256 !== (deployed.entries[scriptPath] as { sha256?: string }).sha256) {
        problems.push(`MAC ${macColons(mac)} does not lead to its script`);
      }
    }
    if (problems.length > 0) checks.set(h.name, { host: h.name, problems });
  });
  for (const h of inv.hosts) if (checks.has(h.name)) out.push(checks.get(h.name)!);
  return [...out, ...orphans.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0)).map(({ order: _, ...o }) => o)];
}

/** A MAC no host uses (locally administered, so no NIC ships with it). */
function unusedMac(used: ReadonlySet<string>): string {
  for (let i = 0; ; i++) {
    const mac = `02-00-00-00-${(i >> 8).toString(16).padStart(2, "0")}-${(i & 255).toString(16).padStart(2, "0")}`;
    if (!used.has(mac)) return mac;
  }
}

export async function verify(options: VerifyOptions, ctx: Context): Promise<VerifyResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  if (options.http === undefined) {
    const targets = await withEachTarget(
      selectTargets(inv, options),
      root,
      options,
      ctx,
      async (t, fs) => {
        const deployed = await readDeployed(fs);
        if (!deployed) throw new UserError("VERIFY_FAILED", `nothing has been deployed to ${fs.description}`);
        const drift = await verifyTarget(fs, deployed);
        for (const p of drift.missing) ctx.reporter.warn(`[${t.name}] missing: ${p}`);
        for (const p of drift.changed) ctx.reporter.warn(`[${t.name}] changed on the target: ${p}`);
        for (const p of drift.extra) ctx.reporter.warn(`[${t.name}] not written by netbuild: ${p}`);
        const hosts = await checkHosts(fs, deployed, inv);
        for (const h of hosts) for (const p of h.problems) ctx.reporter.warn(`[${t.name}] host ${h.host}: ${p}`);
        return { name: t.name, target: fs.description, drift, hosts: { checked: inv.hosts.length, problems: hosts } };
      },
    );
    const ok = targets.every((t) => t.drift.missing.length + t.drift.changed.length + t.drift.extra.length + t.hosts.problems.length === 0);
    return { http: undefined, targets, ok };
  }

  let base: URL;
  try {
    base = new URL(options.http.endsWith("/") ? options.http : `${options.http}/`);
    if (!/^https?:$/.test(base.protocol)) throw new Error("not http");
  } catch {
    throw new UserError("USAGE", `--http ${options.http} is not an http(s) URL`, { hint: "the URL of the served tree, e.g. http://boot.example.org/netboot/" });
  }
  const out = outOf(options, ctx, root, inv);
  const manifest = await checkOutFolder(out);
  if (!manifest) throw new UserError("OUT_NOT_BUILT", `${path.relative(ctx.cwd, out) || "."} is not a built tree: there is nothing to compare the boot server with`, { hint: "run `netbuild build`" });

  const digests = new Map<string, Promise<{ status: number; size: number; sha256: string }>>();
  const digest = (url: string) => {
    if (!digests.has(url)) digests.set(url, fetchDigest(url));
    return digests.get(url)!;
  };
  const scripts = new Map<string, Promise<string | undefined>>();
  const script = (url: string) => {
    if (!scripts.has(url)) scripts.set(url, fetchText(url));
    return scripts.get(url)!;
  };
  const rel = (url: string) => (url.startsWith(base.href) ? url.slice(base.href.length) : url);

  /** Only for a class of the built tree. */
  const checkArtifact = async (url: string, className: string, what: "kernel" | "initrd", problems: string[]) => {
    const built = manifest.classes[className]!;
    const want = built[what];
    const sha = what === "kernel" ? built.kernelSha256 : built.initrdSha256;
    if (rel(url) !== want.path) problems.push(`the class script names ${rel(url)}, but the built tree's ${what} is ${want.path} (deployed before the last build, or rolled back?)`);
    const got = await digest(url);
    if (got.status !== 200) return problems.push(`${rel(url)}: HTTP ${got.status}`);
    const recorded = manifest.entries[rel(url)];
    const size = recorded?.kind === "artifact" ? recorded.size : want.size;
    const hash = recorded?.kind === "artifact" ? recorded.sha256 : sha;
    if (got.size !== size) problems.push(`${rel(url)}: ${formatBytes(got.size)} served, ${formatBytes(size)} expected`);
    else if (got.sha256 !== hash) problems.push(`${rel(url)}: sha256 ${got.sha256} served, ${hash} expected`);
  };

  // Every MAC of every host, whatever this checkout has built: the boot server serves them all.
  const machines: { mac: string; host: (typeof inv.hosts)[number] | undefined }[] = inv.hosts.flatMap((h) => h.macs.map((mac) => ({ mac: mac as string, host: h })));
  machines.push({ mac: unusedMac(new Set(machines.map((m) => m.mac))), host: undefined });

  const checks: MachineCheck[] = [];
  for (const { mac, host } of machines) {
    const outcome = await walkBootChain(new URL("boot.ipxe", base).href, macVariables(mac), script);
    const problems: string[] = outcome.problem ? [outcome.problem] : [];
    const notes: string[] = [];
    const className = host?.className ?? inv.site.unknownClass ?? undefined;
    const built = className !== undefined && manifest.classes[className] !== undefined;
    const unknownClass = inv.site.unknownClass;
    if (host === undefined && unknownClass === null) {
      if (outcome.result !== "exit") problems.push(`an unknown machine (${mac}) must boot nothing, but the chain ends in ${outcome.result}`);
    } else if (host === undefined && outcome.result === "exit" && !outcome.problem && manifest.classes[unknownClass!] === undefined) {
      // A class built elsewhere, or nowhere: boot.ipxe chains it only where the server serves it.
      notes.push(`unknown machines boot nothing: unknownMachines names class ${unknownClass}, which is not built here and which the boot server does not serve to them`);
    } else if (outcome.result !== "boot") {
      if (host && outcome.result === "exit" && !outcome.problem) problems.push(`not served: the boot server does not know this MAC (boots nothing), but the inventory has it as ${host.name} of class ${host.className}`);
      else if (!host && outcome.result === "exit" && !outcome.problem) problems.push(`an unknown machine (${mac}) boots nothing, but unknownMachines says class ${unknownClass}`);
      else if (!outcome.problem) problems.push(`the chain ends in ${outcome.result}, not in a boot`);
    } else {
      // The class the chain really boots, from the class script it fetched.
      const chained = outcome.steps.map((st) => /(?:^|\/)by-class\/([^/]+)\/ipxe$/.exec(rel(st.url))?.[1]).filter((c): c is string => c !== undefined).at(-1);
      if (host && chained !== undefined && chained !== host.className) problems.push(`served class ${chained}, but the inventory says class ${host.className}`);
      if (!host && chained !== unknownClass) problems.push(`an unknown machine (${mac}) boots class ${chained ?? "(none)"}, but unknownMachines says ${unknownClass === null ? "boot nothing" : `class ${unknownClass}`}`);
      const args = outcome.kernel!.args;
      for (const p of manifest.classes[className!]?.kernelParams ?? []) if (!args.includes(p)) problems.push(`the kernel command line lacks the class parameter ${p}`);
      if (host) {
        // A Talos host's talos.config= has a check of its own, below.
        for (const p of hostParams(host, inv.site.flagPrefix)) if (!args.includes(p) && !(host.talos && p.startsWith("talos.config="))) problems.push(`the kernel command line lacks ${p}`);
        const flag = `${inv.site.flagPrefix}.provision_disks=true`;
        if (!host.provisionDisks && args.includes(flag)) problems.push(`the kernel command line holds ${flag}, but ${host.name} does not set provision.disks: ITS DISKS WOULD BE WIPED`);
        if (host.talos) {
          // Exactly one talos.config=, netbuild's; and what it names is served as built (fetched
          // at that URL, as the machine will).
          const configs = args.filter((a) => a.startsWith("talos.config="));
          if (configs.length !== 1 || configs[0] !== host.talos.configUrl) problems.push(`the kernel command line has ${configs.length === 0 ? "no talos.config=" : configs.join(" ")}, and only ${host.talos.configUrl} was expected`);
          const file = `by-host/${host.name}/talos.yaml`;
          const url = host.talos.configUrl.slice("talos.config=".length);
          const recorded = manifest.entries[file];
          try {
            const got = await digest(url);
            if (got.status !== 200) problems.push(`${url} (its machine config): HTTP ${got.status}`);
            else if (!built) notes.push(`its machine config is served; class ${host.className} is not built here, so it was not compared with a build`);
            else if (recorded?.kind !== "file" || recorded.sha256 !== got.sha256) problems.push(`${url} (its machine config) is not the one in the built tree`);
          } catch (e) {
            problems.push(`${url} (its machine config): ${(e as Error).message}`);
          }
        }
      }
      if (outcome.initrds.length !== 1) problems.push(`${outcome.initrds.length} initrds named, 1 expected`);
      if (built) {
        await checkArtifact(outcome.kernel!.url, className!, "kernel", problems);
        if (outcome.initrds.length === 1) await checkArtifact(outcome.initrds[0]!, className!, "initrd", problems);
      } else {
        // Not built here: its files are checked for being served, not against a build.
        for (const url of [outcome.kernel!.url, ...outcome.initrds]) {
          const got = await digest(url);
          if (got.status !== 200) problems.push(`${rel(url)}: HTTP ${got.status}`);
        }
        notes.push(`class ${className} is not built here: its kernel and initrd are checked for being served, not against a build`);
      }
    }
    const check: MachineCheck = {
      mac,
      host: host?.name,
      ok: problems.length === 0,
      outcome: outcome.result,
      scripts: outcome.steps.map((s) => `${rel(s.url)}${s.status === "missing" ? " (404)" : ""}`),
      kernel: outcome.kernel && rel(outcome.kernel.url),
      initrd: outcome.initrds[0] && rel(outcome.initrds[0]),
      cmdline: outcome.kernel?.args ?? [],
      problems,
      notes,
    };
    checks.push(check);
    for (const p of problems) ctx.reporter.warn(`${mac} (${host?.name ?? "unknown machine"}): ${p}`);
  }
  let bytesChecked = 0;
  // A fetch that failed was reported with its machine (a Talos config's URL may be another server's).
  for (const d of digests.values()) bytesChecked += (await d.catch(() => ({ size: 0 }))).size;
  return { http: { url: base.href, machines: checks, bytesChecked }, targets: [], ok: checks.every((c) => c.ok) };
}
