// `netbuild build [--class NAME]...`: validate → generate → nix-build every selected class → check
// sizes → plan the tree → write it. Everything that can fail on input or in Nix fails before the
// tree is touched.
import path from "node:path";
import { UserError } from "../errors.ts";
import { hostsShortOfRam, MAX_IMAGE_BYTES, oversizedImages } from "../core/checks.ts";
import { talosArtifactUrl, TALOS_ARTIFACTS, unpinnedArtifacts, type Inventory, type TalosClass } from "../core/inventory.ts";
import type { PinnedDownload } from "../adapters/nix.ts";
import { GENERATED_DIR } from "../core/nix-render.ts";
import { reservedParam, type ClassName } from "../core/names.ts";
import { IPXE_BIOS, IPXE_DIR, type ClassBuild, type IpxeFile, type Tree } from "../core/tree.ts";
import type { IpxeBinary } from "../core/dhcp.ts";
import { DEBIAN_IPXE, ipxeFolder, readIpxeFiles } from "../adapters/ipxe-binaries.ts";
import { hasNpinsNixpkgs } from "../adapters/inventory-files.ts";
import { applyTree, checkOutFolder, withOutLock, type ApplyResult } from "../adapters/local-tree.ts";
import { buildClasses } from "../adapters/nix.ts";
import { localConfinedRoot } from "../adapters/target-fs.ts";
import { checkNixpkgsTree, checkNixVersion, describeNixpkgs, nixpkgsFromOptions, type NixpkgsSource } from "../adapters/nix-version.ts";
import { formatBytes } from "../ui/reporter.ts";
import { announceWipes, keptBuilds, placeholderKeyWarning, treeOf, wipesOf, type Wipe } from "./out-tree.ts";
import { writeGenerated } from "./generate.ts";
import { announceInstalls, renderTalosConfigs, secretsNotice, type TalosInstall } from "./talos.ts";
import { GC_ROOTS, loadRoot, outOf, rootOf, saveInventoryCaches, selectClasses, type Context, type OutOptions } from "./context.ts";

export interface BuildOptions extends OutOptions {
  /** Classes to build; empty = all. */
  classes: string[];
  /** nixpkgs for NixOS classes (else $NETBUILD_NIXPKGS, else the npins pin). */
  nixpkgs?: string | undefined;
  /** Read back every script and link in out/ (drift by hand that kept a file's size, mtime and inode), instead of trusting what lstat says. */
  verify?: boolean | undefined;
}

export interface BuildResult {
  out: string;
  built: { name: string; kind: string; kernel: { path: string; size: number }; initrd: { path: string; size: number } }[];
  /** Classes in the tree from an earlier build (not selected this time). */
  kept: string[];
  tree: { written: string[]; unchanged: number; removed: string[] };
  hostsInTree: number;
  skippedHosts: Tree["skippedHosts"];
  /** Hosts that will format their disks on their next boot. */
  wipes: Wipe[];
  /** Talos hosts whose machine config installs Talos onto a disk. */
  talosInstalls: TalosInstall[];
  /** Machine configs written into the tree (they hold cluster secrets). */
  machineConfigs: string[];
  /** The iPXE binaries in the tree (ipxe/), and the folder they were read from; undefined when the tree has none. */
  ipxe: { folder: string; files: { path: string; sha256: string; size: number }[] } | undefined;
  warnings: string[];
}

/** What Nix downloads for a Talos class, so a hash mismatch can name the artifact, its URL and the fix. */
export function talosDownloads(inv: Inventory, c: TalosClass): PinnedDownload[] {
  const tag = `talos-${c.schematicId.slice(0, 8)}-${c.version}`;
  const name = (a: string) => (a === "kernel" ? `${tag}-${c.arch}-kernel` : a === "initramfs" ? `${tag}-${c.arch}-initramfs.xz` : `${tag}-${c.platform}-${c.arch}-cmdline`);
  return TALOS_ARTIFACTS.map((a) => ({
    drvName: name(a),
    className: c.name,
    what: a,
    pinned: c.hashes[a],
    url: talosArtifactUrl(inv.site.talosFactory, c, a),
    file: c.file,
    fix: `if the factory's file changed and you trust it (or you changed the schematic, version, platform or factory), run \`netbuild pin --class ${c.name}\`; otherwise check the factory setting in netbuild.yaml`,
  }));
}

/**
 * The iPXE binaries the tree serves (ipxe/: undionly.kpxe and the site's ipxe.efi choice), read
 * before Nix runs: from the folder netbuild.yaml names (missing ones are an error), or from
 * /usr/lib/ipxe where it exists. Without either the tree has no ipxe/, and a deploy leaves what a
 * target serves there as it is.
 */
async function ipxeOfTree(root: string, inv: Inventory, ctx: Context): Promise<{ folder: string; files: (IpxeBinary & IpxeFile)[] } | undefined> {
  const folder = ipxeFolder(root, inv.site.ipxe.binaries);
  const names = [IPXE_BIOS, inv.site.ipxe.efi];
  if (folder === undefined) {
    ctx.reporter.info(`ipxe: the tree holds no iPXE binaries (${DEBIAN_IPXE} does not exist and netbuild.yaml sets no ipxe.binaries)`);
    return undefined;
  }
  try {
    return { folder, files: await readIpxeFiles(folder, names) };
  } catch (e) {
    if (inv.site.ipxe.binaries !== undefined || !(e instanceof UserError)) throw e;
    ctx.reporter.warn(`ipxe: ${e.message}: the tree holds no iPXE binaries (set ipxe.binaries in netbuild.yaml to a folder that has ${names.join(" and ")})`);
    return undefined;
  }
}

export async function build(options: BuildOptions, ctx: Context): Promise<BuildResult> {
  let stopped = true;
  try {
    const result = await buildWith(options, ctx);
    stopped = false;
    return result;
  } finally {
    // Written while nix-build runs (below); here when the build stopped before it, whose own error
    // is the one reported.
    try {
      saveInventoryCaches(ctx);
    } catch (e) {
      if (!stopped) throw e;
    }
  }
}

async function buildWith(options: BuildOptions, ctx: Context): Promise<BuildResult> {
  // NETBUILD_TRACE=1: when each phase ended, in ms since the process started (as deploy does).
  const trace = ctx.env["NETBUILD_TRACE"] ? (m: string) => ctx.reporter.info(`trace ${performance.now().toFixed(0).padStart(6)} ms  ${m}`) : () => undefined;
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx, { deferCache: true });
  trace("inventory");
  const selected = selectClasses(inv, options.classes);
  const out = outOf(options, ctx, root, inv);
  // Refused before Nix runs (a file, a foreign folder, a record that cannot be trusted); read again under the lock below.
  const before = await checkOutFolder(out);
  trace("out/ checked");
  // A nixpkgs path is resolved against the current folder (Nix takes only absolute paths) and, when
  // NixOS classes need it, checked to be nixpkgs before Nix is asked to evaluate it.
  const given = nixpkgsFromOptions(options.nixpkgs, ctx.env["NETBUILD_NIXPKGS"], ctx.cwd);
  const nixpkgs = given?.path;
  const nixos = selected.filter((c) => c.kind === "nixos");
  const nixpkgsSource: NixpkgsSource | undefined = nixos.length === 0 ? undefined : (given ?? (hasNpinsNixpkgs(root) ? { kind: "npins", root } : undefined));
  if (given && nixos.length > 0) checkNixpkgsTree(given);
  if (nixos.length > 0 && !nixpkgsSource) {
    throw new UserError("NIX_EVAL_FAILED", `class${nixos.length > 1 ? "es" : ""} ${nixos.map((c) => c.name).join(", ")} need${nixos.length > 1 ? "" : "s"} nixpkgs, and none is pinned`, {
      hint: "pin it with `npins add --name nixpkgs channel nixos-unstable`, or pass --nixpkgs PATH (or set NETBUILD_NIXPKGS)",
    });
  }

  const talos = selected.filter((c): c is TalosClass => c.kind === "talos");
  const unpinned = talos.filter((c) => unpinnedArtifacts(c).length > 0);
  if (unpinned.length > 0) {
    const lines = unpinned.flatMap((c) => unpinnedArtifacts(c).map((a) => `class ${c.name}: no pinned hash for the ${a} (talos.hashes.${a} in ${c.file}), ${talosArtifactUrl(inv.site.talosFactory, c, a)}`));
    throw new UserError("NOT_PINNED", `${lines.join("\n")}\nso ${unpinned.length > 1 ? "these classes" : "this class"} cannot be built; nothing was written`, {
      hint: `run \`netbuild pin${unpinned.length === 1 ? ` --class ${unpinned[0]!.name}` : ""}\` (it downloads the files once and writes their hashes into the class file, keeping its comments), or build other classes with --class`,
    });
  }
  const downloads = talos.flatMap((c) => talosDownloads(inv, c));
  const ipxe = await ipxeOfTree(root, inv, ctx);

  // Only for NixOS classes (the others need no nixpkgs, and no extra Nix process): a Nix older than
  // the nixpkgs' lib/minver.nix would fail deep in its evaluation, and `nix-shell` cannot bring a
  // newer one when shell.nix imports that same nixpkgs.
  if (nixpkgsSource) {
    // The pin is fetched here the first time (nix-build then finds it in the store): say why it may take a while.
    if (nixpkgsSource.kind === "npins") ctx.reporter.info("nixpkgs: reading the npins pin's lib/minver.nix (Nix downloads the pin the first time)");
    await checkNixVersion({
      source: nixpkgsSource,
      nixosClasses: nixos.map((c) => c.name),
      otherClasses: inv.classes.filter((c) => c.kind !== "nixos").map((c) => c.name),
      env: ctx.env,
      onLine: (l) => ctx.reporter.nix(l),
    });
    trace("nix version");
  }

  // Checked (and made) before anything is written: a link there is refused with nothing changed.
  await localConfinedRoot(root, "ROOT_CONFLICT").prepare(`${GC_ROOTS}/x`);
  const gen = await writeGenerated(root, inv);
  trace("generate");
  ctx.reporter.info(`generate: ${gen.written.length} written, ${gen.unchanged.length} unchanged (${path.relative(ctx.cwd, gen.dir) || "."})`);

  const names = selected.map((c) => c.name);
  ctx.reporter.info(`build: ${names.join(", ")} (nix-build)`);
  // nix-build runs in its own process: meanwhile this one writes the inventory's caches (a failure
  // to is reported once nix-build is done, never left to race it).
  let cacheFailure: { error: unknown } | undefined;
  const fresh = await buildClasses({
    generated: path.join(root, GENERATED_DIR),
    nixpkgs,
    classes: names,
    gcroots: path.join(root, GC_ROOTS),
    onLine: (l) => ctx.reporter.nix(l),
    env: ctx.env,
    ...(nixpkgsSource ? { nixpkgsLabel: describeNixpkgs(nixpkgsSource) } : {}),
    downloads,
    reserved: (key) => reservedParam(key, inv.site.flagPrefix) !== undefined,
    onStarted: () => {
      try {
        saveInventoryCaches(ctx);
      } catch (error) {
        cacheFailure = { error };
      }
    },
  });
  if (cacheFailure) throw cacheFailure.error;
  trace("nix-build");

  const tooBig = oversizedImages(fresh);
  if (tooBig.length > 0) {
    throw new UserError("ARTIFACT_TOO_LARGE", tooBig.map((p) => `class ${p.className}: the ${p.what} is ${formatBytes(p.size)}, over the ${formatBytes(MAX_IMAGE_BYTES)} that firmware and iPXE load reliably`).join("\n"), {
      hint: "move the Nix store out of the initrd (e.g. fetch a squashfs at boot) or trim the system; nothing was written to the tree",
    });
  }

  // From here on out/ is this build's alone (its lock): its manifest is read again under the lock,
  // in case another build finished meanwhile.
  return withOutLock(out, "build", (m) => ctx.reporter.info(m), async () => {
    const current = await checkOutFolder(out, before);
    trace("lock, out/'s manifest");
    const kept = keptBuilds(inv, current, new Set(names));
    const builds = new Map<ClassName, ClassBuild>([...kept, ...fresh]);
    const configs = await renderTalosConfigs(root, inv, builds, ctx);
    const tree = treeOf(inv, builds, current, configs.texts, ipxe?.files);
    if (ipxe) ctx.reporter.info(`ipxe: ${ipxe.files.map((f) => `${IPXE_DIR}/${f.name} (${formatBytes(f.size)}, sha256 ${f.sha256})`).join(", ")}, from ${ipxe.folder}`);
    trace("tree planned");

    const warnings: string[] = [];
    for (const { host, needed } of hostsShortOfRam(inv, builds)) {
      warnings.push(`host ${host.name} (${host.file}) declares ${formatBytes(host.ramBytes!)} of RAM; class ${host.className} needs about ${formatBytes(needed)} to netboot (kernel + 2 × initrd + 512 MiB)`);
    }
    if (tree.skippedHosts.length > 0) {
      const byClass = new Map<string, number>();
      for (const h of tree.skippedHosts) byClass.set(h.className, (byClass.get(h.className) ?? 0) + 1);
      const classes = [...byClass.keys()].sort();
      const n = tree.skippedHosts.length;
      warnings.push(`${n} host${n === 1 ? "" : "s"} left out of the tree (they boot as unknown machines) because ${classes.length === 1 ? "their class has" : "their classes have"} not been built yet: ${classes.map((c) => `${c} (${byClass.get(c)} host${byClass.get(c) === 1 ? "" : "s"})`).join(", ")}; to build ${classes.length === 1 ? "it" : "them"}: netbuild build ${classes.map((c) => `--class ${c}`).join(" ")}`);
    }
    const placeholder = placeholderKeyWarning(inv);
    if (placeholder && names.some((n) => inv.classes.find((c) => c.name === n)?.kind === "nixos")) warnings.push(placeholder);
    if (inv.site.unknownClass !== null && !builds.has(inv.site.unknownClass)) {
      warnings.push(`unknownMachines names class ${inv.site.unknownClass}, which has no build yet: unknown machines boot nothing until it is built`);
    }
    for (const w of warnings) ctx.reporter.warn(w);

    const wipes = wipesOf(inv, tree.wipes);
    announceWipes(ctx.reporter, wipes);
    announceInstalls(ctx.reporter, configs.installs);
    if (configs.texts.size > 0) {
      const notice = secretsNotice(inv);
      if (notice) ctx.reporter.warn(notice);
    }

    const applied: ApplyResult = await applyTree(
      out,
      tree,
      current,
      (e) => {
        if (e.action === "copy") ctx.reporter.info(`tree: copy ${e.path} (${formatBytes(e.bytes ?? 0)})`);
      },
      { verify: options.verify === true },
    );
    trace("tree written");

    return {
      out,
      built: tree.classes
        .filter((c) => fresh.has(c.name))
        .map((c) => ({ name: c.name, kind: c.kind, kernel: { path: c.kernel.path, size: c.kernel.size }, initrd: { path: c.initrd.path, size: c.initrd.size } })),
      kept: [...kept.keys()].filter((k) => tree.classes.some((c) => c.name === k)),
      tree: { written: applied.written, unchanged: applied.unchanged, removed: applied.removed },
      hostsInTree: inv.hosts.length - tree.skippedHosts.length,
      skippedHosts: tree.skippedHosts,
      wipes,
      talosInstalls: configs.installs,
      machineConfigs: [...configs.texts.keys()].map((h) => `by-host/${h}/talos.yaml`),
      ipxe: ipxe && { folder: ipxe.folder, files: ipxe.files.map((f) => ({ path: `${IPXE_DIR}/${f.name}`, sha256: f.sha256, size: f.size })) },
      warnings,
    };
  });
}
