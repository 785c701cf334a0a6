// classes/<name>.yaml: what a kind of machine boots. NixOS and prebuilt classes are checked here,
// Talos classes in talos-inventory.ts.
import path from "node:path";
import { parseClassName, type PublicKey } from "./names.ts";
import { ClassSchema, type ArtifactInput } from "./schema.ts";
import { fieldPath, quoted } from "./excerpt.ts";
import { fileIssue, type InventoryFile, type Probe } from "./inventory-source.ts";
import { authorizedKeysOf, baseName, docOf, kernelParamsOf, referencedFile, reservedParams, validated, validParams, type ClassBase, type Collector, type RawClass } from "./inventory-rules.ts";
import type { Site } from "./site.ts";
import { talosClassOf, type TalosClass } from "./talos-inventory.ts";

/** A kernel or initrd: a file in the inventory, or a URL pinned by hash. */
export type Artifact = { from: "path"; path: string } | { from: "url"; url: string; hash: string };

export interface NixosClass extends ClassBase {
  kind: "nixos";
  /** Module files, relative to the inventory root. */
  modules: string[];
  system: "x86_64-linux" | "aarch64-linux";
  /** Public keys that may log in as root on this class's machines, besides the site's. */
  sshAuthorizedKeys: PublicKey[];
}

export interface PrebuiltClass extends ClassBase {
  kind: "prebuilt";
  kernel: Artifact;
  initrd: Artifact;
}

export type ClassDef = NixosClass | PrebuiltClass | TalosClass;

export function readClasses(files: InventoryFile[], c: Collector): RawClass[] {
  const out: RawClass[] = [];
  // classes/foo.yaml and classes/foo.yml would both be class foo: one name, two definitions.
  const fileOf = new Map<string, string>();
  for (const file of files) {
    const rawName = baseName(file.path);
    if (file.problem) {
      c.issues.push(fileIssue(file.path, fieldPath("classes", rawName), file.problem));
      continue;
    }
    const doc = docOf(file, c);
    c.issues.push(...doc.syntaxIssues);
    const name = parseClassName(rawName);
    const label = fieldPath("classes", rawName);
    // A bad file name is reported, and the file still checked: its other mistakes show in the same run.
    if (!name.ok) c.error(doc, [], label, `the class file name ${quoted(path.posix.basename(file.path))} does not give a valid class name`, name.hint);
    const twin = fileOf.get(rawName);
    if (twin !== undefined) {
      c.error(doc, [], label, `class ${rawName} is defined twice: in ${twin} and in ${file.path}`, `keep one of the two files (each class is one file, classes/${rawName}.yaml)`);
      continue;
    }
    fileOf.set(rawName, file.path);
    if (!doc.readable) continue;
    let data = doc.data ?? {};
    if (typeof data === "object" && !Array.isArray(data) && "provision" in data) {
      // A class is shared by many machines: a wipe flag there would wipe all of them.
      c.error(doc, ["provision"], `${label}.provision`, "provisioning flags cannot be set on a class", "set `provision: { disks: true }` on each host that must be wiped, in hosts/");
      const { provision: _, ...rest } = data as Record<string, unknown>;
      data = rest;
    }
    const input = validated(ClassSchema, doc, data, [], label, c);
    if (input && name.ok) out.push({ doc, name: name.value, input });
  }
  return out;
}

function artifactOf(raw: RawClass, key: "kernel" | "initrd", a: ArtifactInput, probe: Probe, c: Collector): Artifact | null {
  const field = `classes.${raw.name}.${key}`;
  if ((a.path === undefined) === (a.url === undefined)) {
    c.error(raw.doc, [key], field, "give exactly one of `path` or `url`", "{ path: ./file } for a file next to the class, { url: ..., hash: sha256-... } for a download");
    return null;
  }
  if (a.path !== undefined) {
    if (a.hash !== undefined) {
      c.error(raw.doc, [key, "hash"], `${field}.hash`, "`hash` goes with `url`; a local file is hashed by Nix itself", "remove `hash`");
      return null;
    }
    const rel = referencedFile(raw.doc, [key, "path"], `${field}.path`, raw.doc.file, a.path, "file", probe, c);
    return rel === null ? null : { from: "path", path: rel };
  }
  if (a.hash === undefined) {
    c.error(raw.doc, [key, "url"], `${field}.url`, "a URL without a pinned hash", "add `hash: sha256-...` (the file's SRI sha256, e.g. from `nix-prefetch-url URL` then `nix hash to-sri`)");
    return null;
  }
  return { from: "url", url: a.url!, hash: a.hash };
}

export function classOf(raw: RawClass, site: Site, probe: Probe, c: Collector): ClassDef | null {
  const label = `classes.${raw.name}`;
  const before = c.errors.length;
  const params = kernelParamsOf(raw.doc, [], label, raw.input.kernelParams, c);
  reservedParams(raw.doc, [], label, params, site, c, true);
  const base = { name: raw.name, file: raw.doc.file, description: raw.input.description, kernelParams: validParams(params) };
  const input = raw.input;
  let def: ClassDef | null = null;
  if (input.kind === "nixos") {
    const modules: string[] = [];
    input.modules.forEach((m, i) => {
      const rel = referencedFile(raw.doc, ["modules", i], `${label}.modules[${i}]`, raw.doc.file, m, "file-or-dir", probe, c);
      if (rel !== null) modules.push(rel);
    });
    def = { ...base, kind: "nixos", modules, system: input.system, sshAuthorizedKeys: authorizedKeysOf(raw.doc, [], label, input.ssh?.authorizedKeys, c) };
  } else if (input.kind === "prebuilt") {
    const kernel = artifactOf(raw, "kernel", input.kernel, probe, c);
    const initrd = artifactOf(raw, "initrd", input.initrd, probe, c);
    if (kernel && initrd) def = { ...base, kind: "prebuilt", kernel, initrd };
  } else {
    def = talosClassOf(raw, base, site, probe, c);
  }
  return c.errors.length === before ? def : null;
}
