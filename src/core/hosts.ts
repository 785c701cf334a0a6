// hosts/**/*.yaml: one machine each (its MACs, class, flags), one host per file or many under
// `hosts:`, and the rules across files (unique MACs, names and IPs; known classes).
import { formatWhere } from "../errors.ts";
import { closestName, macColons, parseClassName, parseHostName, parseMac, type ClassName, type KernelParam, type Mac, type HostName, type PublicKey } from "./names.ts";
import { HostSchema, HostsFileSchema } from "./schema.ts";
import { described, fieldPath, quoted } from "./excerpt.ts";
import { MAX_VALUES, parseHostChunk, YamlDoc, type Path } from "./yaml-doc.ts";
import { fileIssue, type InventoryFile, type Probe } from "./inventory-source.ts";
import { authorizedKeysOf, baseName, docOf, kernelParamsOf, reservedParams, validated, validParams, type Collector, type HostPlace, type RawHost, type RecalledHost } from "./inventory-rules.ts";
import { hostChunks, type HostChunk } from "./host-chunks.ts";
import { unitKey, type Recall } from "./inventory-memo.ts";
import type { Site } from "./site.ts";
import type { ClassDef } from "./classes.ts";
import { talosHostOf, type TalosHost } from "./talos-inventory.ts";

export interface Host {
  name: HostName;
  file: string;
  className: ClassName;
  macs: Mac[];
  ip: string | undefined;
  ramBytes: number | undefined;
  /** Set only on the host itself, never inherited: the next boot formats its disks (once per provisionId). */
  provisionDisks: boolean;
  /** The provisioning round (`provision.id`): set whenever provisionDisks is; a boot formats only when it differs from the one its disks record. */
  provisionId: string | undefined;
  /** `provision.force`: the wipe also formats disks whose last provision cannot be read (another install's). */
  provisionForce: boolean;
  /** More public keys that may log in as root on this machine (a host of a NixOS class). */
  sshAuthorizedKeys: PublicKey[];
  kernelParams: KernelParam[];
  description: string | undefined;
  /** For a host of a Talos class: its machine config settings, and where it fetches the config. */
  talos: TalosHost | undefined;
}

const SAFE_FILE = /^[A-Za-z0-9._\/-]+$/;

/** The keys a host's settings may have. */
const HOST_KEYS: ReadonlySet<string> = new Set(Object.keys(HostSchema.shape));

/** A host read with a stand-in for a `class` that has an error (reported): the rules then check the rest of it. */
const HOST_STAND_INS = { class: "" };

/**
 * The hosts of every file, each validated on its own. With `recall` (what earlier runs read and
 * checked), a host whose text is unchanged comes back as it was checked, and a file of many hosts
 * is read one host at a time when it can be (host-chunks.ts), else whole. A host read alone, or
 * recalled, has no positions: a message about it throws Unplaced (see inventory.ts).
 */
export function readHosts(files: InventoryFile[], c: Collector, recall?: Recall): (RawHost | RecalledHost)[] {
  const out: (RawHost | RecalledHost)[] = [];
  for (const file of files) {
    if (file.problem) {
      c.issues.push(fileIssue(file.path, "hosts", file.problem));
      continue;
    }
    const unit = recall ? unitKey(file.path, file.text) : undefined;
    if (recall && unit !== undefined) {
      const chunks = recall.whole(unit) ? undefined : hostChunks(file.text);
      const hosts = chunks && readChunks(file, chunks, recall, c);
      if (hosts) {
        out.push(...hosts);
        continue;
      }
      if (chunks) recall.readWhole(unit);
      const recalled = recall.host(unit);
      if (recalled) {
        // A file of one host, unchanged: what was checked of it holds, name and file name included.
        out.push({ doc: YamlDoc.unplaced(file.path), at: [], label: fieldPath("hosts", baseName(file.path)), name: recalled.name, host: recalled });
        continue;
      }
    }
    const doc = docOf(file, c);
    // The file's path is written into the host's iPXE script (as a comment): nothing that could end it.
    // Reported, and the hosts in it still checked (no tree is written while there is an error).
    if (!SAFE_FILE.test(file.path)) {
      c.error(doc, [], "hosts", `the file name ${quoted(file.path)} has characters netbuild will not write into boot scripts`, "use letters, digits, '.', '_', '-' and '/' in file names under hosts/");
    }
    c.issues.push(...doc.syntaxIssues);
    if (!doc.readable) continue;
    const data = doc.data;
    if (data !== null && data !== undefined && (typeof data !== "object" || Array.isArray(data))) {
      // A key, a certificate or a note saved under hosts/: never quoted back (see excerpt.ts).
      c.error(doc, [], "hosts", `this file holds ${described(data, { excerpt: false })}, not a mapping of host settings`, "every *.yaml file under hosts/ is read as hosts: one host's settings, or `hosts:` with several; keep other files outside hosts/");
      continue;
    }
    const map = (data ?? {}) as Record<string, unknown>;
    if ("hosts" in map) {
      // Many hosts, keyed by name. Each host is validated once, on its own.
      const top = validated(HostsFileSchema, doc, map, [], "", c);
      if (!top) continue;
      for (const [key, value] of Object.entries(top.hosts)) {
        const label = fieldPath("hosts", key);
        const name = parseHostName(key);
        if (!name.ok) c.issues.push({ severity: "error", where: doc.whereKey(["hosts"], key, label), message: name.message, ...(name.hint ? { hint: name.hint } : {}) });
        const input = validated(HostSchema, doc, value, ["hosts", key], label, c, HOST_STAND_INS);
        if (input) out.push({ doc, at: ["hosts", key], label, name: name.ok ? name.value : undefined, input });
      }
      continue;
    }
    const topLevel = hostsAtTopLevel(map);
    if (topLevel.length > 0) {
      // Several hosts (or one) written as a file of many, without `hosts:` above them: one error,
      // not "unknown key" for each host and "class: missing" for the file.
      const names = topLevel.slice(0, 3).map(quoted).join(", ") + (topLevel.length > 3 ? `, and ${topLevel.length - 3} more` : "");
      c.issues.push({
        severity: "error",
        where: doc.whereKey([], topLevel[0]!, "hosts"),
        message: `${topLevel.length === 1 ? "a host" : `${topLevel.length} hosts`} (${names}) at the top level of the file, where a host's own settings (class, mac, ...) are expected`,
        hint: `a file of several hosts puts them under \`hosts:\`: write \`hosts:\` as the first line and indent every host below it; a file of one host is named <hostname>.yaml and holds its settings at the top level`,
      });
      continue;
    }
    // One host, named by the file.
    const key = baseName(file.path);
    const label = fieldPath("hosts", key);
    const name = parseHostName(key);
    if (!name.ok) c.error(doc, [], label, `the host file name: ${name.message}`, name.hint ? `${name.hint}; a file holding one host is named <hostname>.yaml` : undefined);
    const input = validated(HostSchema, doc, map, [], label, c, HOST_STAND_INS);
    if (input) out.push({ doc, at: [], label, name: name.ok ? name.value : undefined, input, ...(unit !== undefined ? { unit: { key: unit } } : {}) });
  }
  return out;
}

/**
 * A file of many hosts, one host at a time: each host's text read on its own (unless an earlier run
 * read this very text) and validated, or taken as an earlier run checked it. Undefined when the
 * file is to be read whole, as it says something only the whole file can say where: a host whose
 * text is unusual to read alone, a key twice, a key that is no hostname, too many values in all.
 */
function readChunks(file: InventoryFile, chunks: HostChunk[], recall: Recall, c: Collector): (RawHost | RecalledHost)[] | undefined {
  if (!SAFE_FILE.test(file.path)) return undefined;
  const doc = YamlDoc.unplaced(file.path);
  const hosts: ({ name: HostName; at: Path; label: string } & ({ host: Host } | { key: string; read: NonNullable<ReturnType<Recall["read"]>> }))[] = [];
  const keys = new Set<string>();
  // `hosts:` and its mapping; each host's key and value a few more (see MAX_VALUES).
  let values = 2;
  for (const chunk of chunks) {
    const name = parseHostName(chunk.key);
    if (!name.ok || keys.has(chunk.key)) return undefined;
    keys.add(chunk.key);
    const key = unitKey(file.path, chunk.text);
    const at = ["hosts", chunk.key];
    const label = fieldPath("hosts", chunk.key);
    const host = recall.host(key);
    let read = recall.read(key);
    if (!read) {
      const parsed = parseHostChunk(chunk.text, chunk.key);
      if (!parsed) return undefined;
      read = { values: parsed.values, value: () => parsed.value };
    }
    values += read.values + 2;
    hosts.push(host ? { name: name.value, at, label, host } : { name: name.value, at, label, key, read });
  }
  if (values > MAX_VALUES) return undefined;
  // Validated once the whole file is known to read one host at a time (a message throws Unplaced).
  const out: (RawHost | RecalledHost)[] = [];
  for (const h of hosts) {
    if ("host" in h) {
      out.push({ doc, ...h });
      continue;
    }
    const data = h.read.value();
    const input = validated(HostSchema, doc, data, h.at, h.label, c, HOST_STAND_INS);
    if (input) out.push({ doc, at: h.at, label: h.label, name: h.name, input, unit: { key: h.key, data, json: h.read.json, values: h.read.values } });
  }
  return out;
}

/**
 * The keys of a file's top-level mapping that look like hosts, when none of its keys is a host
 * setting: mappings holding `class`, `mac` or `macs`. Empty otherwise.
 */
function hostsAtTopLevel(map: Record<string, unknown>): string[] {
  const keys = Object.keys(map);
  if (keys.some((k) => HOST_KEYS.has(k))) return [];
  const looksLikeHost = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v) && ["class", "mac", "macs"].some((k) => k in v);
  return keys.filter((k) => looksLikeHost(map[k]));
}

// ---------------------------------------------------------------------------------------------
// Rules

const UNITS: Record<string, number> = { MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, MB: 1e6, GB: 1e9, TB: 1e12 };

function bytesOf(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(size)!;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** A MAC as a host lists it, and where: `mac`, or an entry of `macs`. */
export interface PlacedMac {
  mac: Mac;
  at: Path;
  field: string;
}

/** The host's MACs, each checked where it is written; the valid ones, once each. */
export function macsOf(raw: RawHost, c: Collector): PlacedMac[] {
  const { doc, at, label, input } = raw;
  const refused = c.isRefused(doc.file, [...at, "mac"]) || c.isRefused(doc.file, [...at, "macs"]);
  if (!refused && (input.mac === undefined) === (input.macs === undefined)) {
    c.error(doc, at, label, input.mac === undefined ? "no MAC address" : "both `mac` and `macs`", "give `mac: 52:54:00:12:34:56`, or `macs: [...]` for a machine that may boot from several NICs");
  }
  const out: PlacedMac[] = [];
  const written = input.mac !== undefined ? [{ value: input.mac, at: [...at, "mac"], field: `${label}.mac` }] : (input.macs ?? []).map((m, i) => ({ value: m, at: [...at, "macs", i], field: `${label}.macs[${i}]` }));
  for (const m of written) {
    const mac = parseMac(m.value);
    if (!mac.ok) c.error(doc, m.at, m.field, mac.message, mac.hint);
    else if (out.some((o) => o.mac === mac.value)) c.error(doc, m.at, m.field, `${macColons(mac.value)} is listed twice for this host`, "remove the repeated entry");
    else out.push({ mac: mac.value, at: m.at, field: m.field });
  }
  return out;
}

/** The host as the model has it, or null when it has an error (every rule has run on it, whatever failed). */
export function hostOf(raw: RawHost, placed: PlacedMac[], site: Site, classNames: ReadonlySet<string>, classes: ReadonlyMap<string, ClassDef>, probe: Probe, c: Collector): Host | null {
  const { doc, at, label, input } = raw;
  const before = c.errors.length;
  const macs = placed.map((m) => m.mac);
  // A refused class (its error is reported) stands in as "": nothing more is said about it.
  const className = c.isRefused(doc.file, [...at, "class"]) ? undefined : parseClassName(input.class);
  if (className && !className.ok) {
    c.error(doc, [...at, "class"], `${label}.class`, className.message, className.hint);
  } else if (className?.ok && !classNames.has(className.value)) {
    const guess = closestName(className.value, [...classNames]);
    c.error(
      doc,
      [...at, "class"],
      `${label}.class`,
      `unknown class ${quoted(input.class)}`,
      guess ? `did you mean ${quoted(guess)}? (classes are the files in classes/)` : `classes are the files in classes/: ${[...classNames].sort().join(", ") || "there are none"}`,
    );
  }
  const params = kernelParamsOf(doc, at, label, input.kernelParams, c);
  reservedParams(doc, at, label, params, site, c, false);
  if (input.provision.disks && input.provision.id === undefined && !c.isRefused(doc.file, [...at, "provision"])) {
    c.error(doc, [...at, "provision", "disks"], `${label}.provision`, "`disks: true` without an `id`: a wipe is one round of provisioning, and the host formats once per id", `run \`netbuild provision ${raw.name ?? "HOST"}\` (it writes a new id next to the flag), or add an id next to it yourself (\`provision: { disks: true, id: first }\`: any token this host has not used)`);
  }
  const sshAuthorizedKeys = authorizedKeysOf(doc, at, label, input.ssh?.authorizedKeys, c);
  const cls = className?.ok ? classes.get(className.value) : undefined;
  if (input.ssh !== undefined && cls !== undefined && cls.kind !== "nixos") {
    c.error(doc, [...at, "ssh"], `${label}.ssh`, `\`ssh\` sets who may log in to a NixOS machine, and class ${cls.name} is a ${cls.kind} class`, cls.kind === "talos" ? "Talos machines have no SSH: use talosctl with the cluster's client config" : "a prebuilt image brings its own login setup: remove `ssh` here");
  }
  const talos = className?.ok && raw.name !== undefined && !c.isRefused(doc.file, [...at, "talos"]) ? talosHostOf(raw, raw.name, classes.get(className.value), site, macs, probe, c) : undefined;
  if (c.errors.length !== before || !className?.ok || raw.name === undefined) return null;
  return {
    name: raw.name,
    file: doc.file,
    className: className.value,
    macs,
    ip: input.ip,
    ramBytes: input.ram === undefined ? undefined : bytesOf(input.ram),
    provisionDisks: input.provision.disks,
    provisionId: input.provision.disks && input.provision.id !== undefined ? String(input.provision.id) : undefined,
    provisionForce: input.provision.disks && input.provision.force === true,
    sshAuthorizedKeys,
    kernelParams: validParams(params),
    description: input.description,
    talos,
  };
}

/**
 * What checking a host of class `className` reads besides the host (hostOf, talosHostOf): the
 * site's settings, whether the class exists, its kind and a Talos class's machine defaults. A host
 * checked in an earlier run holds while this is the same (inventory-memo.ts); the files a Talos
 * host's patches name are looked at again apart.
 */
export function hostDependencies(className: string, site: Site, classNames: ReadonlySet<string>, classes: ReadonlyMap<string, ClassDef>): string {
  const cls = classes.get(className);
  const own = cls ? [cls.kind, cls.name, cls.kind === "talos" ? cls.machine : null] : null;
  return JSON.stringify([site.file ?? null, site.flagPrefix, site.talosConfigBaseUrl ?? null, site.talosBaseConfigs, classNames.has(className), own]);
}

/** file:line of a value, for naming it in another value's message (a file name with a control character quoted, as formatWhere does). */
function lineOf(doc: YamlDoc, at: Path): string {
  const { file, line } = doc.where(at, "");
  return formatWhere(line === undefined ? { file } : { file, line });
}

/** Where a host writes a value two hosts may not share (a MAC, an IP). */
interface Shared {
  raw: HostPlace;
  at: Path;
  field: string;
}

/** How many other hosts a message about a shared value names, with file:line each; the rest are counted ("and 41 more"). */
const NAMED_OTHERS = 3;

/**
 * Who a host is, for the rules across hosts: its name, or, for a host whose name is invalid
 * (reported), the host itself, as no other host is that one.
 */
function identity(raw: HostPlace): unknown {
  return raw.name ?? raw;
}

/** A host as another host's message names it: `host aleph`, or `host "Bee"` for a name that is not valid (reported at that host). */
function hostLabel(raw: HostPlace): string {
  if (raw.name !== undefined) return `host ${raw.name}`;
  const key = raw.at.length === 2 && raw.at[0] === "hosts" ? String(raw.at[1]) : baseName(raw.doc.file);
  return `host ${quoted(key)}`;
}

/**
 * A value two hosts may not share: reported where each host writes it, naming up to NAMED_OTHERS
 * of the other hosts (the first in file order) and where they write it, and counting the rest.
 * `entries` are the values in one spelling; where each is written is worked out only for values
 * that are shared (a 10,000-host inventory has none), and for the hosts a message names. Linear
 * in the entries, however many hosts share one value.
 */
function reportShared<T>(entries: Iterable<T>, keyOf: (e: T) => string, place: (e: T) => Shared, c: Collector, message: (key: string, others: string) => string, hint: string): void {
  const byKey = new Map<string, T | T[]>();
  for (const e of entries) {
    const key = keyOf(e);
    const known = byKey.get(key);
    if (known === undefined) byKey.set(key, e);
    else if (Array.isArray(known)) known.push(e);
    else byKey.set(key, [known, e]);
  }
  for (const [key, group] of byKey) {
    if (!Array.isArray(group)) continue;
    const list = group.map(place);
    // The same hostname twice is uniqueNames' error, not this one: a host's others are the
    // entries of other hosts, as many as the group less the entries of its own name.
    const perHost = new Map<unknown, number>();
    for (const e of list) perHost.set(identity(e.raw), (perHost.get(identity(e.raw)) ?? 0) + 1);
    if (perHost.size < 2) continue;
    // The first NAMED_OTHERS entries not of a host are among the first NAMED_OTHERS entries of
    // each of the first NAMED_OTHERS + 1 hosts in the list: those are the only ones ever named.
    const nameable: { e: Shared; id: unknown; shown?: string }[] = [];
    const taken = new Map<unknown, number>();
    for (const e of list) {
      const id = identity(e.raw);
      const n = taken.get(id);
      if (n === undefined && taken.size > NAMED_OTHERS) break;
      if ((n ?? 0) >= NAMED_OTHERS) continue;
      taken.set(id, (n ?? 0) + 1);
      nameable.push({ e, id });
    }
    for (const e of list) {
      const id = identity(e.raw);
      const others = list.length - perHost.get(id)!;
      if (others === 0) continue;
      const shown: string[] = [];
      for (const o of nameable) {
        if (shown.length === NAMED_OTHERS) break;
        if (o.id === id) continue;
        o.shown ??= `${hostLabel(o.e.raw)} (${lineOf(o.e.raw.doc, o.e.at)})`;
        shown.push(o.shown);
      }
      if (others > shown.length) shown.push(`${others - shown.length} more`);
      const names = shown.length === 1 ? shown[0]! : `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)!}`;
      c.error(e.raw.doc, e.at, e.field, message(key, names), hint);
    }
  }
}

/** What the rules across hosts compare: where the host is, its MACs and its address. */
export interface SharedValues {
  raw: HostPlace;
  macs: PlacedMac[];
  ip: string | undefined;
}

/** The same MAC on two hosts would boot one machine as the other: always an error, at each host that lists it. */
export function uniqueMacs(hosts: SharedValues[], c: Collector): void {
  // A host whose name is invalid too (that is reported apart): one run reports both.
  const entries = hosts.flatMap(({ raw, macs }) => macs.map((m) => ({ raw, m })));
  reportShared(entries, (e) => e.m.mac, (e) => ({ raw: e.raw, at: e.m.at, field: e.m.field }), c, (mac, others) => `MAC ${macColons(mac as Mac)} is also used by ${others}`, "each MAC belongs to one host; MACs are compared in any spelling (aa:bb:.., aa-bb-.., aabb.cc..)");
}

export function uniqueNames(raws: HostPlace[], c: Collector): void {
  const seen = new Map<string, HostPlace>();
  for (const raw of raws) {
    if (raw.name === undefined) continue;
    const first = seen.get(raw.name);
    if (first) {
      c.error(raw.doc, raw.at, raw.label, `host ${raw.name} is already defined in ${lineOf(first.doc, first.at)}`, "hostnames must be unique across all files in hosts/");
    } else seen.set(raw.name, raw);
  }
}

/** Two hosts with one address: an error at each of them. */
export function uniqueIps(hosts: SharedValues[], c: Collector): void {
  const entries = hosts.flatMap(({ raw, ip }) => (ip !== undefined ? [{ raw, ip }] : []));
  reportShared(entries, (e) => e.ip, (e) => ({ raw: e.raw, at: [...e.raw.at, "ip"], field: `${e.raw.label}.ip` }), c, (ip, others) => `IP ${ip} is also used by ${others}`, "each host needs its own address");
}
