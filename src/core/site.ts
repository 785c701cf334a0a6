// netbuild.yaml: the site's settings (flag prefix, links, unknown machines, output folder, Talos
// factory and base configs, deploy targets), with their defaults when the file is absent.
import { parseClassName, parseKernelParam, type ClassName, type PublicKey } from "./names.ts";
import { SiteSchema, type SiteInput, type TalosRole } from "./schema.ts";
import { fieldPath, quoted } from "./excerpt.ts";
import type { YamlDoc } from "./yaml-doc.ts";
import { parseTarget, type Target } from "./target.ts";
import { fileIssue, type InventoryFile } from "./inventory-source.ts";
import { authorizedKeysOf, docOf, resolveRef, validated, type Collector } from "./inventory-rules.ts";

export const SITE_FILE = "netbuild.yaml";

export interface Site {
  file: string | undefined;
  flagPrefix: string;
  links: "symlink" | "copy";
  /** The class unknown machines boot; null = strict (they boot nothing). */
  unknownClass: ClassName | null;
  out: string;
  talosFactory: string;
  /** Where machines fetch the tree over HTTP(S), without a trailing slash (Talos hosts' talos.config= starts with it). */
  talosConfigBaseUrl: string | undefined;
  /** Base machine configs by role (paths relative to the root), from `talosctl gen config`. */
  talosBaseConfigs: Partial<Record<TalosRole, string>>;
  /** Deploy targets by name, sorted. */
  targets: Target[];
  /** Class generations a target keeps unless it says otherwise. */
  keep: number;
  /** Public keys that may log in as root on every NixOS machine (`ssh.authorizedKeys`). */
  sshAuthorizedKeys: PublicKey[];
}

function targetsOf(doc: YamlDoc, input: SiteInput, c: Collector): Target[] {
  const targets: Target[] = [];
  for (const [name, value] of Object.entries(input.targets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = typeof value === "string" ? value : value.url;
    const at = typeof value === "string" ? ["targets", name] : ["targets", name, "url"];
    const parsed = parseTarget(spec);
    if (!parsed.ok) {
      c.error(doc, at, fieldPath("site.targets", name), parsed.message, parsed.hint);
      continue;
    }
    targets.push({ name, location: parsed.value, keep: (typeof value === "string" ? undefined : value.keep) ?? input.keep, spec });
  }
  return targets;
}

export function parseSite(given: InventoryFile | undefined, c: Collector): Site {
  const defaults = SiteSchema.parse({});
  let input = defaults;
  if (given?.problem) {
    c.issues.push(fileIssue(given.path, "site", given.problem));
    // Its settings are unknown, not the defaults: rules that need them stay silent.
    c.refuse(given.path, []);
  }
  const file = given?.problem ? undefined : given;
  // Parsed once (the messages below all point into it).
  const doc = file ? docOf(file, c) : undefined;
  if (doc) {
    c.issues.push(...doc.syntaxIssues);
    // Fields with errors fall back to their defaults and are refused; the rest of the file still counts.
    const parsed = doc.readable ? validated(SiteSchema, doc, doc.data ?? {}, [], "site", c) : undefined;
    if (parsed) input = parsed;
    else c.refuse(doc.file, []);
    const out = resolveRef(SITE_FILE, input.out);
    const top = out?.split("/")[0];
    if (out === null) {
      c.error(doc, ["out"], "site.out", `${quoted(input.out)} leaves the inventory root`, "give a folder inside the root (a tree elsewhere: `--out DIR` on the command line)");
    } else if (top === "." || top === "classes" || top === "hosts") {
      // The tree's by-host/<host>/talos.yaml written under hosts/ would be read back as a host.
      c.error(doc, ["out"], "site.out", top === "." ? `${quoted(input.out)} is the inventory root itself` : `${quoted(input.out)} is inside ${top}/, which netbuild reads as the inventory`, "give a folder of its own inside the root, such as out");
    }
  }
  const unknown = input.unknownMachines;
  let unknownClass: ClassName | null = null;
  if (unknown !== "strict" && doc) {
    const parsed = parseClassName(unknown.class);
    if (parsed.ok) unknownClass = parsed.value;
    // Not strict by accident: a name that cannot be a class is an error, like an unknown class.
    else c.error(doc, ["unknownMachines", "class"], "site.unknownMachines.class", parsed.message, parsed.hint);
  }
  const baseConfigs: Partial<Record<TalosRole, string>> = {};
  for (const role of ["controlplane", "worker"] as const) {
    const ref = input.talos.baseConfigs?.[role];
    if (ref === undefined || !doc) continue;
    const rel = resolveRef(SITE_FILE, ref);
    if (rel === null) {
      c.error(doc, ["talos", "baseConfigs", role], `site.talos.baseConfigs.${role}`, `${quoted(ref)} points outside the inventory root`, "keep base configs inside the root (and out of git: add them to .gitignore, or encrypt them)");
      c.refuse(doc.file, ["talos", "baseConfigs", role]);
    } else baseConfigs[role] = rel;
  }
  let talosConfigBaseUrl: string | undefined;
  if (input.talos.configBaseUrl !== undefined && doc) {
    const url = input.talos.configBaseUrl.replace(/\/+$/, "");
    const probe = parseKernelParam(`talos.config=${url}/by-host/x/talos.yaml`);
    if (!probe.ok || /[?#]/.test(url)) {
      c.error(doc, ["talos", "configBaseUrl"], "site.talos.configBaseUrl", probe.ok ? "the URL has a query or fragment" : `the URL cannot go on a kernel command line: ${probe.message}`, "give the plain base URL the boot server serves this tree at, e.g. https://boot.example/nixos");
      c.refuse(doc.file, ["talos", "configBaseUrl"]);
    } else talosConfigBaseUrl = url;
  }
  return {
    file: given?.path,
    flagPrefix: input.flagPrefix,
    links: input.links,
    unknownClass,
    out: input.out,
    talosFactory: input.talos.factory.replace(/\/+$/, ""),
    talosConfigBaseUrl,
    talosBaseConfigs: baseConfigs,
    targets: doc ? targetsOf(doc, input, c) : [],
    keep: input.keep,
    sshAuthorizedKeys: doc ? authorizedKeysOf(doc, [], "site", input.ssh?.authorizedKeys, c) : [],
  };
}
