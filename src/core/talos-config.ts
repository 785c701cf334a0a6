// A Talos host's machine config: the site's base config for its role (from `talosctl gen
// config`), then netbuild's typed settings for the host, then the class's and the host's patch
// files, merged with Talos's strategic-merge rules, written as multi-document YAML.
//
// Merge rules (Talos's "strategic merge patches", as documented for `talosctl --config-patch`):
//   - documents are matched by kind (`apiVersion`/`kind`, and `name` for named ones; a document
//     without `kind` is the v1alpha1 config); a patch document matching none is appended;
//   - mappings merge key by key; a scalar in the patch replaces the base's, except an empty
//     string or 0 (Talos never merges zero values; `false` is merged);
//   - lists are appended to, except `cluster.network.podSubnets`/`serviceSubnets` and
//     `cluster.apiServer.auditPolicy` (replaced), `machine.network.interfaces` (merged by
//     `interface` or `deviceSelector`), their `vlans` (by `vlanId`), and
//     `cluster.apiServer.admissionControl` (by `name`);
// Refused, rather than guessed: `$patch: delete`, JSON patches (a list of operations), a patch
// that changes `machine.type`, and a value of another shape than the base's at the same path.
// Messages name files, lines and paths, never values: these files hold cluster secrets.
import { LineCounter, parseAllDocuments, stringify, type Document } from "yaml";
import type { Issue } from "../errors.ts";
import type { Host, TalosClass, TalosHost } from "./inventory.ts";
import { macColons } from "./names.ts";

export interface ConfigFile {
  /** Relative to the inventory root. */
  file: string;
  text: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface ParsedDoc {
  data: Obj;
  /** Where it came from, for messages. */
  source: { file: string; doc: Document.Parsed; lines: LineCounter } | undefined;
}

export interface RenderedConfig {
  text: string;
  /** machine.install.disk (or "a disk chosen by diskSelector") after all patches, if Talos will install. */
  installDisk: string | undefined;
  /** machine.install.wipe is true. */
  wipe: boolean;
}

export type RenderResult = { ok: true; value: RenderedConfig } | { ok: false; issues: Issue[] };

class RenderError extends Error {
  constructor(readonly issue: Issue) {
    super(issue.message);
  }
}

function isObj(v: Json | undefined): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(where: NonNullable<ParsedDoc["source"]> | { file: string }, path: readonly (string | number)[], message: string, hint?: string): never {
  let line: number | undefined;
  if ("doc" in where) {
    const node = path.length === 0 ? where.doc.contents : (where.doc.getIn(path, true) as { range?: [number, number, number] } | undefined);
    const start = (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
    if (start !== undefined) line = where.lines.linePos(start).line;
  }
  throw new RenderError({ severity: "error", where: { file: where.file, ...(line !== undefined ? { line } : {}), field: path.join(".") || undefined }, message, ...(hint ? { hint } : {}) });
}

function parseFile(f: ConfigFile, what: "base config" | "patch"): ParsedDoc[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(f.text, { lineCounter: lines, prettyErrors: false });
  if (!Array.isArray(docs)) return [];
  const out: ParsedDoc[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) {
      // The parser's message quotes the text around the error; a base config's text is secret.
      throw new RenderError({ severity: "error", where: { file: f.file, line: lines.linePos(err.pos[0]).line }, message: `this ${what} is not valid YAML (${err.code})` });
    }
    const source = { file: f.file, doc, lines };
    const data = doc.toJS({ maxAliasCount: 100 }) as Json;
    if (data === null || data === undefined) continue;
    if (Array.isArray(data)) {
      fail(source, [], `a ${what} that is a list: JSON patches (lists of operations) are not supported`, "write a strategic merge patch instead: the part of the config to change, as YAML (see README, Talos)");
    }
    if (!isObj(data)) fail(source, [], `a ${what} document must be a mapping`);
    findDelete(data, [], source, what);
    out.push({ data, source });
  }
  return out;
}

function findDelete(v: Json, path: (string | number)[], source: NonNullable<ParsedDoc["source"]>, what: string): void {
  if (Array.isArray(v)) v.forEach((x, i) => findDelete(x, [...path, i], source, what));
  else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$patch") fail(source, [...path, k], `\`$patch\` directives are not supported in a ${what}`, "netbuild renders configs with plain strategic merges only; remove the setting from the base config instead of deleting it with a patch");
      findDelete(x, [...path, k], source, what);
    }
  }
}

/** The key that matches a document to its counterpart; the v1alpha1 config is the one without `kind`. */
function docKey(d: ParsedDoc): string {
  const { data } = d;
  if (data["kind"] === undefined) return "v1alpha1";
  if (typeof data["kind"] !== "string" || typeof data["apiVersion"] !== "string") {
    fail(d.source ?? { file: "netbuild" }, [], "a document with `kind` needs `apiVersion` as well (both strings)");
  }
  return `${data["apiVersion"]}/${data["kind"]}${typeof data["name"] === "string" ? `/${data["name"]}` : ""}`;
}

const REPLACED = new Set(["cluster.network.podSubnets", "cluster.network.serviceSubnets", "cluster.apiServer.auditPolicy"]);
const KEYED: Record<string, (a: Obj, b: Obj) => boolean> = {
  "machine.network.interfaces": (a, b) =>
    (a["interface"] !== undefined && a["interface"] === b["interface"]) || (a["deviceSelector"] !== undefined && b["deviceSelector"] !== undefined && JSON.stringify(sortKeys(a["deviceSelector"])) === JSON.stringify(sortKeys(b["deviceSelector"]))),
  "machine.network.interfaces.vlans": (a, b) => a["vlanId"] !== undefined && a["vlanId"] === b["vlanId"],
  "cluster.apiServer.admissionControl": (a, b) => a["name"] !== undefined && a["name"] === b["name"],
  "configFiles": (a, b) => a["mountPath"] !== undefined && a["mountPath"] === b["mountPath"],
};

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k]!)]));
  return v;
}

function isZero(v: Json): boolean {
  return v === null || v === "" || v === 0;
}

function keyedBy(path: string[], docKind: string): ((a: Obj, b: Obj) => boolean) | undefined {
  const generic = path.join(".").replace(/\.\d+\./g, ".").replace(/\.\d+$/, "");
  if (docKind === "v1alpha1") return KEYED[generic];
  return path.length === 1 && docKind.endsWith("/ExtensionServiceConfig") ? KEYED[generic] : undefined;
}

function merge(left: Json | undefined, right: Json, path: string[], docKind: string, patch: ParsedDoc): Json {
  // A keyed list merges its own items too (two entries for eth0 in one patch become one).
  if (left === undefined) return Array.isArray(right) && keyedBy(path, docKind) ? merge([], right, path, docKind, patch) : right;
  if (isZero(right)) return left;
  const dotted = path.join(".");
  if (isObj(left) && isObj(right)) {
    if (docKind === "v1alpha1" && REPLACED.has(dotted)) return right;
    const out: Obj = { ...left };
    for (const [k, v] of Object.entries(right)) out[k] = merge(left[k], v, [...path, k], docKind, patch);
    return out;
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    const generic = dotted.replace(/\.\d+\./g, ".");
    if (docKind === "v1alpha1" && REPLACED.has(generic)) return right.length > 0 ? right : left;
    const keyed = keyedBy(path, docKind);
    if (!keyed) return [...left, ...right];
    const out = [...left];
    for (const item of right) {
      const at = isObj(item) ? out.findIndex((x) => isObj(x) && keyed(x, item)) : -1;
      if (at === -1) out.push(item);
      else out[at] = merge(out[at], item, [...path, String(at)], docKind, patch);
    }
    return out;
  }
  if (!isObj(left) && !Array.isArray(left) && !isObj(right) && !Array.isArray(right)) return right;
  const shape = (v: Json) => (Array.isArray(v) ? "a list" : isObj(v) ? "a mapping" : "a single value");
  return fail(patch.source ?? { file: "netbuild" }, patch.source ? docPath(path, docKind) : [], `the patch gives ${shape(right)} at ${dotted}, where the base config has ${shape(left)}`, "a strategic merge patch must keep the base config's shape");
}

/** A merged path as it is in the patch's own document (v1alpha1 paths are the same). */
function docPath(path: string[], _kind: string): (string | number)[] {
  return path;
}

function applyPatch(docs: ParsedDoc[], patch: ParsedDoc): ParsedDoc[] {
  const key = docKey(patch);
  const i = docs.findIndex((d) => docKey(d) === key);
  if (i === -1) return [...docs, patch];
  const merged = merge(docs[i]!.data, patch.data, [], key, patch) as Obj;
  const out = [...docs];
  out[i] = { data: merged, source: docs[i]!.source };
  return out;
}

function talosMinor(version: string): [number, number] {
  const m = /^v(\d+)\.(\d+)/.exec(version)!;
  return [Number(m[1]), Number(m[2])];
}

/** Talos 1.12 moved hostname and network settings to their own documents. */
export function usesMultidocNetwork(version: string): boolean {
  const [major, minor] = talosMinor(version);
  return major > 1 || (major === 1 && minor >= 12);
}

function own(data: Obj): ParsedDoc {
  return { data, source: undefined };
}

/** The documents netbuild writes from a host's typed settings, as patches over the base config. */
export function typedPatches(host: Host & { talos: TalosHost }, cls: TalosClass): ParsedDoc[] {
  const t = host.talos;
  const multidoc = usesMultidocNetwork(cls.version);
  const patches: ParsedDoc[] = [];
  if (multidoc) patches.push(own({ apiVersion: "v1alpha1", kind: "HostnameConfig", hostname: host.name, auto: "off" }));
  const machine: Obj = {};
  if (!multidoc) machine["network"] = { hostname: host.name };
  if (t.installDisk !== undefined) machine["install"] = { disk: t.installDisk };
  if (t.network) {
    const n = t.network;
    const v6 = n.address.includes(":");
    if (multidoc) {
      patches.push(own({ apiVersion: "v1alpha1", kind: "LinkAliasConfig", name: "net0", selector: { match: `mac(link.permanent_addr) == "${macColons(n.mac)}"` } }));
      const link: Obj = { apiVersion: "v1alpha1", kind: "LinkConfig", name: "net0", up: true, addresses: [{ address: n.address }] };
      if (n.gateway !== undefined) link["routes"] = [{ gateway: n.gateway }];
      patches.push(own(link));
      if (n.nameservers.length > 0) patches.push(own({ apiVersion: "v1alpha1", kind: "ResolverConfig", nameservers: n.nameservers.map((a) => ({ address: a })) }));
    } else {
      const iface: Obj = { deviceSelector: { hardwareAddr: macColons(n.mac) }, dhcp: false, addresses: [n.address] };
      if (n.gateway !== undefined) iface["routes"] = [{ network: v6 ? "::/0" : "0.0.0.0/0", gateway: n.gateway }];
      const network = (machine["network"] ?? {}) as Obj;
      network["interfaces"] = [iface];
      if (n.nameservers.length > 0) network["nameservers"] = n.nameservers;
      machine["network"] = network;
    }
  }
  if (Object.keys(machine).length > 0) patches.unshift(own({ machine }));
  for (const [name, v] of Object.entries(t.volumes).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const provisioning: Obj = {};
    if (v.diskSelector !== undefined) provisioning["diskSelector"] = { match: v.diskSelector };
    if (v.minSize !== undefined) provisioning["minSize"] = v.minSize;
    if (v.maxSize !== undefined) provisioning["maxSize"] = v.maxSize;
    if (v.grow !== undefined) provisioning["grow"] = v.grow;
    patches.push(own({ apiVersion: "v1alpha1", kind: "VolumeConfig", name, provisioning }));
  }
  return patches;
}

function roleOfType(type: Json | undefined): string | undefined {
  return type === "init" ? "controlplane" : typeof type === "string" ? type : undefined;
}

export function renderMachineConfig(host: Host & { talos: TalosHost }, cls: TalosClass, base: ConfigFile, patches: readonly ConfigFile[]): RenderResult {
  try {
    let docs = parseFile(base, "base config");
    const main = docs.filter((d) => docKey(d) === "v1alpha1");
    if (main.length !== 1) {
      fail({ file: base.file }, [], main.length === 0 ? "the base config has no v1alpha1 document (`version: v1alpha1` with `machine:` and `cluster:`)" : "the base config has more than one v1alpha1 document", "use the controlplane.yaml or worker.yaml that `talosctl gen config` writes");
    }
    const baseMain = main[0]!;
    if (baseMain.data["version"] !== "v1alpha1") fail(baseMain.source!, ["version"], "the base config's main document is not `version: v1alpha1`");
    const type = roleOfType(isObj(baseMain.data["machine"]) ? baseMain.data["machine"]["type"] : undefined);
    if (type !== host.talos.role) {
      fail(baseMain.source!, ["machine", "type"], `this base config is for ${type === undefined ? "no role (machine.type is missing)" : `role ${type}`}, and host ${host.name} is a ${host.talos.role}`, `point talos.baseConfigs.${host.talos.role} in netbuild.yaml at the ${host.talos.role}.yaml from \`talosctl gen config\``);
    }
    if (usesMultidocNetwork(cls.version)) {
      const machine = baseMain.data["machine"] as Obj;
      if (isObj(machine["network"]) && machine["network"]["hostname"] !== undefined) {
        fail(baseMain.source!, ["machine", "network", "hostname"], `Talos ${cls.version} refuses machine.network.hostname next to the HostnameConfig document netbuild writes for each host`, "remove machine.network.hostname from the base config");
      }
    }
    for (const p of typedPatches(host, cls)) docs = applyPatch(docs, p);
    for (const f of patches) {
      for (const p of parseFile(f, "patch")) {
        const key = docKey(p);
        if (key === "v1alpha1" && isObj(p.data["machine"]) && p.data["machine"]["type"] !== undefined && roleOfType(p.data["machine"]["type"]) !== host.talos.role) {
          fail(p.source!, ["machine", "type"], `a patch cannot change machine.type (host ${host.name} is a ${host.talos.role})`, "set the host's talos.role instead");
        }
        docs = applyPatch(docs, p);
      }
    }
    const merged = docs.find((d) => docKey(d) === "v1alpha1")!.data;
    const install = isObj(merged["machine"]) && isObj(merged["machine"]["install"]) ? merged["machine"]["install"] : undefined;
    const installDisk = install ? (typeof install["disk"] === "string" && install["disk"] !== "" ? install["disk"] : isObj(install["diskSelector"]) ? "the disk chosen by machine.install.diskSelector" : undefined) : undefined;
    const header = [
      `# Talos machine config for ${host.name} (${host.talos.role}, class ${cls.name}), rendered by netbuild.`,
      `# From ${base.file}${patches.length > 0 ? ` with patches ${patches.map((p) => p.file).join(", ")}` : ""}.`,
      "# It holds cluster secrets: it belongs only in the tree and on the boot server. Do not edit: run netbuild build.",
    ];
    const text = `${header.join("\n")}\n${docs.map((d) => stringify(d.data, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n")}`;
    return { ok: true, value: { text, installDisk, wipe: install?.["wipe"] === true } };
  } catch (e) {
    if (e instanceof RenderError) return { ok: false, issues: [e.issue] };
    throw e;
  }
}
