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
import { isAlias, isMap, isScalar, isSeq, LineCounter, Scalar, type Document, type Node } from "yaml";
import type { Issue } from "../errors.ts";
import type { Host, TalosClass, TalosHost } from "./inventory.ts";
import { macColons } from "./names.ts";
import { MAX_NESTING, MAX_VALUES, parseYaml } from "./yaml-doc.ts";
import { fieldPath, quoted } from "./excerpt.ts";

/** A path into a config as messages show it (keys with odd characters quoted and escaped). */
function shownPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((f, k) => fieldPath(f, k), "");
}

export interface ConfigFile {
  /** Relative to the inventory root. */
  file: string;
  text: string;
}

/**
 * A scalar as written in its file: its YAML text, emitted verbatim, and its value (for matching
 * and zero checks only). Talos reads configs with Go's yaml.v3, which reads `0644` as octal and
 * `01` into a string field as "01": re-printing a parsed value could change what Talos reads.
 */
class Raw {
  constructor(
    readonly text: string,
    readonly value: string | number | boolean | null,
  ) {}
}
type Val = Raw | Val[] | Obj;
type Obj = { [k: string]: Val };

interface ParsedDoc {
  data: Obj;
  /** Where it came from, for messages; undefined for netbuild's own documents. */
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

type Path = readonly (string | number)[];

function isObj(v: Val | undefined): v is Obj {
  return typeof v === "object" && !(v instanceof Raw) && !Array.isArray(v);
}

function valueOf(v: Val | undefined): Raw["value"] | undefined {
  return v instanceof Raw ? v.value : undefined;
}

function fail(where: NonNullable<ParsedDoc["source"]> | { file: string }, path: Path, message: string, hint?: string): never {
  let line: number | undefined;
  if ("doc" in where) {
    const node = (path.length === 0 ? where.doc.contents : where.doc.getIn(path, true)) as { range?: [number, number, number] } | null | undefined;
    const start = node?.range?.[0];
    if (start !== undefined) line = where.lines.linePos(start).line;
  }
  throw new RenderError({ severity: "error", where: { file: where.file, ...(line !== undefined ? { line } : {}), field: shownPath(path) || undefined }, message, ...(hint ? { hint } : {}) });
}

/** The document's tree with every scalar kept as written. */
function valOf(node: Node | null, text: string, source: NonNullable<ParsedDoc["source"]>, path: (string | number)[], what: string): Val {
  if (node === null) return new Raw("null", null);
  if (isAlias(node) || (node as { anchor?: string }).anchor) fail(source, path, `anchors and aliases are not supported in a ${what}`, "write the value out in full");
  if (node.tag !== undefined && !isMap(node) && !isSeq(node)) fail(source, path, `explicit tags (${quoted(node.tag)}) are not supported in a ${what}`, "remove the tag");
  if (isMap(node)) {
    const out: Obj = {};
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      if (!isScalar(key) || typeof key.value === "object") fail(source, path, `a ${what} may only have plain keys`);
      const k = String(key.value);
      if (k === "$patch") fail(source, [...path, k], `\`$patch\` directives are not supported in a ${what}`, "netbuild renders configs with plain strategic merges only; remove the setting from the base config instead of deleting it with a patch");
      out[k] = valOf(pair.value as Node | null, text, source, [...path, k], what);
    }
    return out;
  }
  if (isSeq(node)) return node.items.map((item, i) => valOf(item as Node | null, text, source, [...path, i], what));
  const scalar = node as Scalar;
  const value = scalar.value as Raw["value"];
  if (scalar.type === Scalar.PLAIN && scalar.range) {
    const written = text.slice(scalar.range[0], scalar.range[1]);
    if (!written.includes("\n")) return new Raw(written, value);
  }
  // Quoted, block and multi-line plain scalars are strings: written back double-quoted, exactly.
  return new Raw(JSON.stringify(String(value)), String(value));
}

function parseFile(f: ConfigFile, what: "base config" | "patch"): ParsedDoc[] {
  const lines = new LineCounter();
  // logLevel error: the library would otherwise print warnings quoting the (secret) text.
  const parsed = parseYaml(f.text, { lineCounter: lines, prettyErrors: false, logLevel: "error" }, true);
  if ("tooDeep" in parsed) throw new RenderError({ severity: "error", where: { file: f.file, line: lines.linePos(parsed.tooDeep).line }, message: `this ${what} nests mappings and lists more than ${MAX_NESTING} levels deep` });
  if ("tooMany" in parsed) throw new RenderError({ severity: "error", where: { file: f.file }, message: `this ${what} holds more than ${MAX_VALUES.toLocaleString("en-US")} values` });
  const docs = parsed.docs;
  const out: ParsedDoc[] = [];
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) {
      // The parser's message quotes the text around the error; a base config's text is secret.
      throw new RenderError({ severity: "error", where: { file: f.file, line: lines.linePos(err.pos[0]).line }, message: `this ${what} is not valid YAML (${err.code})` });
    }
    const source = { file: f.file, doc, lines };
    // An empty document (a trailing `---`, or two in a row): nothing to merge. The parser gives it a
    // null scalar of no text, not null contents. A written `null` or `~` is not empty.
    const c = doc.contents;
    if (c === null || (isScalar(c) && c.value === null && c.range?.[0] === c.range?.[1])) continue;
    if (isSeq(doc.contents)) {
      fail(source, [], `a ${what} that is a list: JSON patches (lists of operations) are not supported`, "write a strategic merge patch instead: the part of the config to change, as YAML (see README, Talos)");
    }
    const data = valOf(doc.contents as Node, f.text, source, [], what);
    if (!isObj(data)) fail(source, [], `a ${what} document must be a mapping`);
    out.push({ data, source });
  }
  return out;
}

/** The key that matches a document to its counterpart; the v1alpha1 config is the one without `kind`. */
function docKey(d: ParsedDoc): string {
  const { data } = d;
  if (data["kind"] === undefined) return "v1alpha1";
  const kind = valueOf(data["kind"]);
  const api = valueOf(data["apiVersion"]);
  if (typeof kind !== "string" || typeof api !== "string") fail(d.source ?? { file: "netbuild" }, [], "a document with `kind` needs `apiVersion` as well (both strings)");
  const name = valueOf(data["name"]);
  return `${api}/${kind}${typeof name === "string" ? `/${name}` : ""}`;
}

/** Plain data, for comparing sub-trees. */
function plain(v: Val): unknown {
  if (v instanceof Raw) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, plain(v[k]!)]));
}

const REPLACED = new Set(["cluster.network.podSubnets", "cluster.network.serviceSubnets", "cluster.apiServer.auditPolicy"]);
const same = (a: Val | undefined, b: Val | undefined) => a !== undefined && b !== undefined && JSON.stringify(plain(a)) === JSON.stringify(plain(b));
const KEYED: Record<string, (a: Obj, b: Obj) => boolean> = {
  "machine.network.interfaces": (a, b) => (a["interface"] !== undefined && same(a["interface"], b["interface"])) || (a["deviceSelector"] !== undefined && same(a["deviceSelector"], b["deviceSelector"])),
  "machine.network.interfaces.vlans": (a, b) => same(a["vlanId"], b["vlanId"]),
  "cluster.apiServer.admissionControl": (a, b) => same(a["name"], b["name"]),
  configFiles: (a, b) => same(a["mountPath"], b["mountPath"]),
};

function isZero(v: Val): boolean {
  return v instanceof Raw && (v.value === null || v.value === "" || v.value === 0);
}

function genericPath(path: readonly string[]): string {
  return path.filter((p) => !/^\d+$/.test(p)).join(".");
}

function keyedBy(path: readonly string[], docKind: string): ((a: Obj, b: Obj) => boolean) | undefined {
  const generic = genericPath(path);
  if (docKind === "v1alpha1") return KEYED[generic];
  return path.length === 1 && docKind.endsWith("/ExtensionServiceConfig") ? KEYED[generic] : undefined;
}

interface MergeCtx {
  docKind: string;
  patch: ParsedDoc;
  base: ParsedDoc;
}

/**
 * Merges `right` (from the patch, at `ppath` in the patch's own document) into `left` (at `path`
 * in the merged document, `bpath` in the base's, when it came from there).
 */
function merge(left: Val | undefined, right: Val, path: string[], ppath: (string | number)[], ctx: MergeCtx): Val {
  // Absent and null are the same to Talos (a nil pointer takes the patch's value). A keyed list
  // merges its own items too (two entries for eth0 in one patch become one).
  if (left === undefined || (left instanceof Raw && left.value === null)) {
    return Array.isArray(right) && keyedBy(path, ctx.docKind) ? merge([], right, path, ppath, ctx) : right;
  }
  if (isZero(right)) return left;
  const dotted = path.join(".");
  if (isObj(left) && isObj(right)) {
    if (ctx.docKind === "v1alpha1" && REPLACED.has(dotted)) return right;
    const out: Obj = { ...left };
    for (const [k, v] of Object.entries(right)) out[k] = merge(left[k], v, [...path, k], [...ppath, k], ctx);
    return out;
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    if (ctx.docKind === "v1alpha1" && REPLACED.has(genericPath(path))) return right;
    const keyed = keyedBy(path, ctx.docKind);
    if (!keyed) return [...left, ...right];
    const out = [...left];
    right.forEach((item, i) => {
      const at = isObj(item) ? out.findIndex((x) => isObj(x) && keyed(x, item)) : -1;
      if (at === -1) out.push(item);
      else out[at] = merge(out[at], item, [...path, String(at)], [...ppath, i], ctx);
    });
    return out;
  }
  if (left instanceof Raw && right instanceof Raw) return right;
  const shape = (v: Val) => (Array.isArray(v) ? "a list" : isObj(v) ? "a mapping" : "a single value");
  if (ctx.patch.source) {
    return fail(ctx.patch.source, ppath, `the patch gives ${shape(right)} at ${shownPath(path)}, where the base config has ${shape(left)}`, "a strategic merge patch must keep the base config's shape");
  }
  // One of netbuild's own settings meets a base config of another shape: point at the base.
  return fail(ctx.base.source ?? { file: "netbuild" }, path, `the base config has ${shape(left)} at ${shownPath(path)}, where netbuild sets ${shape(right)} from the host's talos settings`, "fix the base config (it should be as `talosctl gen config` writes it)");
}

function applyPatch(docs: ParsedDoc[], patch: ParsedDoc): ParsedDoc[] {
  const key = docKey(patch);
  const i = docs.findIndex((d) => docKey(d) === key);
  if (i === -1) return [...docs, { data: merge(undefined, patch.data, [], [], { docKind: key, patch, base: patch }) as Obj, source: patch.source }];
  const merged = merge(docs[i]!.data, patch.data, [], [], { docKind: key, patch, base: docs[i]! }) as Obj;
  const out = [...docs];
  out[i] = { data: merged, source: docs[i]!.source };
  return out;
}

// --- writing -------------------------------------------------------------------------------

const SPECIAL = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

/** A string netbuild itself writes: plain when that cannot read as anything else, else double-quoted. */
function str(s: string): Raw {
  return new Raw(/^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(s) && !SPECIAL.test(s) ? s : JSON.stringify(s), s);
}

/** Plain data from netbuild's typed settings, as a document tree. */
function own(data: unknown): Val {
  if (typeof data === "string") return str(data);
  if (typeof data === "number" || typeof data === "boolean") return new Raw(String(data), data);
  if (Array.isArray(data)) return data.map(own);
  return Object.fromEntries(Object.entries(data as object).map(([k, v]) => [k, own(v)]));
}

function keyText(k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_./-]*$/.test(k) && !SPECIAL.test(k) ? k : JSON.stringify(k);
}

function emitMap(o: Obj, indent: number, out: string[]): void {
  const pad = " ".repeat(indent);
  for (const [k, v] of Object.entries(o)) {
    const key = `${pad}${keyText(k)}:`;
    if (v instanceof Raw) out.push(`${key} ${v.text}`);
    else if (Array.isArray(v)) {
      if (v.length === 0) out.push(`${key} []`);
      else {
        out.push(key);
        emitSeq(v, indent + 2, out);
      }
    } else if (Object.keys(v).length === 0) out.push(`${key} {}`);
    else {
      out.push(key);
      emitMap(v, indent + 2, out);
    }
  }
}

function emitSeq(items: Val[], indent: number, out: string[]): void {
  const pad = " ".repeat(indent);
  for (const v of items) {
    if (v instanceof Raw) out.push(`${pad}- ${v.text}`);
    else if (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0) out.push(`${pad}- ${Array.isArray(v) ? "[]" : "{}"}`);
    else {
      const inner: string[] = [];
      if (Array.isArray(v)) emitSeq(v, indent + 2, inner);
      else emitMap(v, indent + 2, inner);
      out.push(`${pad}- ${inner[0]!.slice(indent + 2)}`, ...inner.slice(1));
    }
  }
}

function emitDoc(o: Obj): string {
  const out: string[] = [];
  emitMap(o, 0, out);
  return `${out.join("\n")}\n`;
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

function ownDoc(data: Record<string, unknown>): ParsedDoc {
  return { data: own(data) as Obj, source: undefined };
}

/** The documents netbuild writes from a host's typed settings, as patches over the base config. */
export function typedPatches(host: Host & { talos: TalosHost }, cls: TalosClass): ParsedDoc[] {
  const t = host.talos;
  const multidoc = usesMultidocNetwork(cls.version);
  const patches: ParsedDoc[] = [];
  if (multidoc) patches.push(ownDoc({ apiVersion: "v1alpha1", kind: "HostnameConfig", hostname: host.name, auto: "off" }));
  const machine: Record<string, unknown> = {};
  if (!multidoc) machine["network"] = { hostname: host.name };
  if (t.installDisk !== undefined) machine["install"] = { disk: t.installDisk };
  if (t.network) {
    const n = t.network;
    const v6 = n.address.includes(":");
    if (multidoc) {
      patches.push(ownDoc({ apiVersion: "v1alpha1", kind: "LinkAliasConfig", name: "net0", selector: { match: `mac(link.permanent_addr) == "${macColons(n.mac)}"` } }));
      const link: Record<string, unknown> = { apiVersion: "v1alpha1", kind: "LinkConfig", name: "net0", up: true, addresses: [{ address: n.address }] };
      if (n.gateway !== undefined) link["routes"] = [{ gateway: n.gateway }];
      patches.push(ownDoc(link));
      if (n.nameservers.length > 0) patches.push(ownDoc({ apiVersion: "v1alpha1", kind: "ResolverConfig", nameservers: n.nameservers.map((a) => ({ address: a })) }));
    } else {
      const iface: Record<string, unknown> = { deviceSelector: { hardwareAddr: macColons(n.mac) }, dhcp: false, addresses: [n.address] };
      if (n.gateway !== undefined) iface["routes"] = [{ network: v6 ? "::/0" : "0.0.0.0/0", gateway: n.gateway }];
      const network = (machine["network"] ?? {}) as Record<string, unknown>;
      network["interfaces"] = [iface];
      if (n.nameservers.length > 0) network["nameservers"] = n.nameservers;
      machine["network"] = network;
    }
  }
  if (Object.keys(machine).length > 0) patches.unshift(ownDoc({ machine }));
  for (const [name, v] of Object.entries(t.volumes).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const provisioning: Record<string, unknown> = {};
    if (v.diskSelector !== undefined) provisioning["diskSelector"] = { match: v.diskSelector };
    if (v.minSize !== undefined) provisioning["minSize"] = v.minSize;
    if (v.maxSize !== undefined) provisioning["maxSize"] = v.maxSize;
    if (v.grow !== undefined) provisioning["grow"] = v.grow;
    patches.push(ownDoc({ apiVersion: "v1alpha1", kind: "VolumeConfig", name, provisioning }));
  }
  return patches;
}

function roleOfType(type: Val | undefined): string | undefined {
  const v = valueOf(type);
  return v === "init" ? "controlplane" : typeof v === "string" ? v : undefined;
}

export function renderMachineConfig(host: Host & { talos: TalosHost }, cls: TalosClass, base: ConfigFile, patches: readonly ConfigFile[]): RenderResult {
  try {
    let docs = parseFile(base, "base config");
    const main = docs.filter((d) => docKey(d) === "v1alpha1");
    if (main.length !== 1) {
      fail({ file: base.file }, [], main.length === 0 ? "the base config has no v1alpha1 document (`version: v1alpha1` with `machine:` and `cluster:`)" : "the base config has more than one v1alpha1 document", "use the controlplane.yaml or worker.yaml that `talosctl gen config` writes");
    }
    const baseMain = main[0]!;
    if (valueOf(baseMain.data["version"]) !== "v1alpha1") fail(baseMain.source!, ["version"], "the base config's main document is not `version: v1alpha1`");
    const type = roleOfType(isObj(baseMain.data["machine"]) ? baseMain.data["machine"]["type"] : undefined);
    if (type !== host.talos.role) {
      fail(baseMain.source!, ["machine", "type"], `this base config is for ${type === undefined ? "no role (machine.type is missing)" : `role ${type === "controlplane" || type === "worker" ? type : quoted(type)}`}, and host ${host.name} is a ${host.talos.role}`, `point talos.baseConfigs.${host.talos.role} in netbuild.yaml at the ${host.talos.role}.yaml from \`talosctl gen config\``);
    }
    if (usesMultidocNetwork(cls.version)) {
      const machine = baseMain.data["machine"] as Obj;
      if (isObj(machine["network"]) && machine["network"]["hostname"] !== undefined && !isZero(machine["network"]["hostname"])) {
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
    const disk = valueOf(install?.["disk"]);
    const installDisk = install ? (typeof disk === "string" && disk !== "" ? disk : isObj(install["diskSelector"]) ? "the disk chosen by machine.install.diskSelector" : undefined) : undefined;
    const header = [
      `# Talos machine config for ${host.name} (${host.talos.role}, class ${cls.name}), rendered by netbuild.`,
      `# From ${base.file}${patches.length > 0 ? ` with patches ${patches.map((p) => p.file).join(", ")}` : ""}.`,
      "# It holds cluster secrets: it belongs only in the tree and on the boot server. Do not edit: run netbuild build.",
    ];
    const text = `${header.join("\n")}\n${docs.map((d) => emitDoc(d.data)).join("---\n")}`;
    return { ok: true, value: { text, installDisk, wipe: valueOf(install?.["wipe"]) === true } };
  } catch (e) {
    if (e instanceof RenderError) return { ok: false, issues: [e.issue] };
    throw e;
  }
}
