// What build, deploy and plan share about out/'s tree, kept apart from build.ts so that deploy and
// plan do not load what only a build needs (Nix, the Talos tooling, the inventory schemas: a deploy
// whose inventory is unchanged since the build never loads zod or yaml for it).
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Inventory } from "../core/inventory.ts";
import { codeHash, runningModules } from "../adapters/code-hash.ts";
import { parseKernelParam, PLACEHOLDER_KEY_DATA, type ClassName, type KernelParam } from "../core/names.ts";
import { IPXE_DIR, IPXE_NAMES, planTree, type ClassBuild, type IpxeFile, type PlanTreeInput, type Tree } from "../core/tree.ts";
import { outBytesReader, type TreeManifest } from "../adapters/local-tree.ts";
import { UserError } from "../errors.ts";
import { ipxeTemplates, TEMPLATE_DIR } from "../templates.ts";
import { packagePath } from "../package-files.ts";
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
export function treeOf(inv: Inventory, builds: ReadonlyMap<ClassName, ClassBuild>, manifest: TreeManifest | undefined, machineConfigs?: ReadonlyMap<string, string>, ipxe?: readonly IpxeFile[]): Tree {
  const before: PlanTreeInput["before"] = new Map(
    Object.entries(manifest?.classes ?? {}).map(([name, rec]) => [name as ClassName, { kernel: rec.kernel.path, initrd: rec.initrd.path, previous: rec.previous }]),
  );
  const tree = planTree({ inventory: inv, builds, before, templates: ipxeTemplates(), ...(machineConfigs ? { machineConfigs } : {}), ...(ipxe ? { ipxe } : {}) });
  tree.inputs = treeInputs(inv, tree.classes);
  return tree;
}

/**
 * The iPXE binaries out/'s manifest records (ipxe/<name>), read back from out/ and checked against
 * it: a deploy that plans the tree again serves the ones the build wrote, never a folder's newer ones.
 */
export async function recordedIpxe(out: string, manifest: TreeManifest): Promise<IpxeFile[]> {
  const found: IpxeFile[] = [];
  for (const name of IPXE_NAMES) {
    const rel = `${IPXE_DIR}/${name}`;
    const e = manifest.entries[rel];
    if (e?.kind === "file") found.push({ name, content: await outBinary(out, rel, e.sha256) });
  }
  return found;
}

/** An iPXE binary of out/, as bytes, checked against the sha256 recorded (or planned) for it, as deploy checks scripts. */
export async function outBinary(out: string, rel: string, sha: string): Promise<Buffer> {
  const bytes = await outBytesReader(out)(rel);
  if (bytes === undefined || createHash("sha256").update(bytes).digest("hex") !== sha) {
    throw new UserError("OUT_NOT_A_TREE", `${path.join(out, rel)} is not what netbuild wrote there (${bytes === undefined ? "missing, or not a plain file in a real folder" : "changed since"}), so nothing was deployed`, {
      hint: "run `netbuild build`: it writes the tree again",
    });
  }
  return bytes;
}

/** A host that will format its disks, for messages and --json: its name, its file, its provisioning id. */
export interface Wipe {
  name: string;
  file: string;
  id: string;
  /** `provision.force`: it also formats disks whose last provision cannot be read. */
  force: boolean;
}

/** The hosts named, as wipes (each of them sets provision.disks, so has an id). */
export function wipesOf(inv: Inventory, names: readonly string[]): Wipe[] {
  const hosts = new Map(inv.hosts.map((h) => [h.name as string, h]));
  return names.map((name) => ({ name, file: hosts.get(name)?.file ?? "?", id: hosts.get(name)?.provisionId ?? "", force: hosts.get(name)?.provisionForce ?? false }));
}

/** Where the inventory still gives the examples' placeholder SSH key (nobody can log in with it), as a warning. */
export function placeholderKeyWarning(inv: Inventory): string | undefined {
  const isPlaceholder = (k: string) => k.split(" ")[1] === PLACEHOLDER_KEY_DATA;
  const where = [
    ...(inv.site.sshAuthorizedKeys.some(isPlaceholder) ? [inv.site.file ?? "netbuild.yaml"] : []),
    ...inv.classes.flatMap((c) => (c.kind === "nixos" && c.sshAuthorizedKeys.some(isPlaceholder) ? [c.file] : [])),
    ...inv.hosts.flatMap((h) => (h.sshAuthorizedKeys.some(isPlaceholder) ? [h.file] : [])),
  ];
  if (where.length === 0) return undefined;
  return `ssh.authorizedKeys in ${[...new Set(where)].join(", ")} still holds the example's placeholder key (AAAAC3…AAAA REPLACE-ME): nobody can log in with it. Replace it with your public key (the line of ~/.ssh/id_ed25519.pub)`;
}

export function announceWipes(reporter: Reporter, wipes: Wipe[]): void {
  if (wipes.length === 0) return;
  reporter.danger(`!!! ${wipes.length} host${wipes.length === 1 ? "" : "s"} will FORMAT (WIPE) ${wipes.length === 1 ? "ITS" : "THEIR"} DISKS on the next boot (once per provisioning id):`);
  for (const w of wipes) reporter.danger(`!!!   ${w.name}  id ${w.id}${w.force ? ", FORCED: also disks of another install" : ""}  (provision.disks: true in ${w.file})`);
}

let treeCode: string | undefined;

/** The code that plans a tree (this module, the planner, the templates, Handlebars), as a hash. */
function treeCodeHash(): string {
  if (treeCode !== undefined) return treeCode;
  const self = fileURLToPath(import.meta.url);
  const templates = fileURLToPath(TEMPLATE_DIR);
  let files: string[] = [];
  try {
    files = readdirSync(templates).filter((f) => f.endsWith(".hbs")).sort().map((f) => path.join(templates, f));
  } catch {
    // unreadable: the hash says so (no file), and rendering fails where it is used
  }
  return (treeCode = codeHash(runningModules(self), [...files, packagePath("package.json")], ["handlebars"]));
}

/**
 * What a tree is planned from, as a hash: the inventory (site, classes, hosts), the classes' builds
 * as out/'s manifest records them (with the generations they continue), and the code that plans
 * it. Recorded in out/'s manifest with the tree, sealed with its entries (core/tree.ts sealInputs);
 * a deploy whose inventory and manifest give the same takes the tree as it stands (its files
 * checked against the manifest's hashes as they are read) instead of planning it again. None where machine configs are rendered from files outside the
 * inventory (a Talos host): those are planned again.
 */
export function treeInputs(inv: Inventory, classes: readonly { name: string; kind: string; kernel: { path: string; storeFile: string; size: number }; initrd: { path: string; storeFile: string; size: number }; kernelParams: readonly string[]; previous?: { kernel: string; initrd: string } | undefined }[]): string | undefined {
  if (inv.hosts.some((h) => h.talos)) return undefined;
  const builds = [...classes]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((c) => [c.name, c.kind, c.kernel.path, c.kernel.storeFile, c.kernel.size, c.initrd.path, c.initrd.storeFile, c.initrd.size, [...c.kernelParams], c.previous?.kernel ?? null, c.previous?.initrd ?? null]);
  // Where the tree is deployed to (targets, and how many generations they keep) is not what it holds.
  const { targets: _targets, keep: _keep, ...site } = inv.site;
  return createHash("sha256").update(JSON.stringify([1, treeCodeHash(), site, inv.classes, inv.hosts, builds])).digest("hex");
}

/** out/'s manifest's classes as treeInputs reads them. */
export function recordedClasses(manifest: TreeManifest): Parameters<typeof treeInputs>[1] {
  return Object.entries(manifest.classes).map(([name, c]) => ({ name, kind: c.kind, kernel: c.kernel, initrd: c.initrd, kernelParams: c.kernelParams, previous: c.previous }));
}
