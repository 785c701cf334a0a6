// hosts/**/*.yaml: one machine each (its MACs, class, flags), one host per file or many under
// `hosts:`, and the rules across files (unique MACs, names and IPs; known classes).
import { macColons, parseClassName, parseHostName, parseMac, type ClassName, type KernelParam, type Mac, type HostName } from "./names.ts";
import { HostSchema, HostsFileSchema } from "./schema.ts";
import { described, fieldPath, quoted } from "./excerpt.ts";
import { zodIssues } from "./yaml-doc.ts";
import { fileIssue, type InventoryFile, type Probe } from "./inventory-source.ts";
import { baseName, docOf, kernelParamsOf, reservedParams, type Collector, type RawHost } from "./inventory-rules.ts";
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
  /** Set only on the host itself, never inherited: the next boot formats its disks. */
  provisionDisks: boolean;
  kernelParams: KernelParam[];
  description: string | undefined;
  /** For a host of a Talos class: its machine config settings, and where it fetches the config. */
  talos: TalosHost | undefined;
}

const SAFE_FILE = /^[A-Za-z0-9._\/-]+$/;

export function readHosts(files: InventoryFile[], c: Collector): RawHost[] {
  const out: RawHost[] = [];
  for (const file of files) {
    if (file.problem) {
      c.issues.push(fileIssue(file.path, "hosts", file.problem));
      continue;
    }
    const doc = docOf(file, c);
    // The file's path is written into the host's iPXE script (as a comment): nothing that could end it.
    if (!SAFE_FILE.test(file.path)) {
      c.error(doc, [], "hosts", `the file name ${quoted(file.path)} has characters netbuild will not write into boot scripts`, "use letters, digits, '.', '_', '-' and '/' in file names under hosts/");
      continue;
    }
    c.issues.push(...doc.syntaxIssues);
    if (doc.syntaxIssues.length > 0) continue;
    const data = doc.data;
    if (data !== null && data !== undefined && (typeof data !== "object" || Array.isArray(data))) {
      // A key, a certificate or a note saved under hosts/: never quoted back (see excerpt.ts).
      c.error(doc, [], "hosts", `this file holds ${described(data, { excerpt: false })}, not a mapping of host settings`, "every *.yaml file under hosts/ is read as hosts: one host's settings, or `hosts:` with several; keep other files outside hosts/");
      continue;
    }
    if (data && typeof data === "object" && !Array.isArray(data) && "hosts" in data) {
      // Many hosts, keyed by name. Each host is validated once, on its own.
      const top = HostsFileSchema.safeParse(data);
      if (!top.success) {
        c.issues.push(...zodIssues(doc, top.error, [], ""));
        continue;
      }
      for (const [key, value] of Object.entries(top.data.hosts)) {
        const label = fieldPath("hosts", key);
        const name = parseHostName(key);
        if (!name.ok) {
          c.issues.push({ severity: "error", where: doc.whereKey(["hosts"], key, label), message: name.message, ...(name.hint ? { hint: name.hint } : {}) });
          continue;
        }
        const host = HostSchema.safeParse(value);
        if (!host.success) {
          c.issues.push(...zodIssues(doc, host.error, ["hosts", key], label));
          continue;
        }
        out.push({ doc, at: ["hosts", key], label, name: name.value, input: host.data });
      }
    } else {
      // One host, named by the file.
      const key = baseName(file.path);
      const name = parseHostName(key);
      if (!name.ok) {
        c.error(doc, [], fieldPath("hosts", key), `the host file name: ${name.message}`, name.hint ? `${name.hint}; a file holding one host is named <hostname>.yaml` : undefined);
        continue;
      }
      const host = HostSchema.safeParse(data ?? {});
      if (!host.success) {
        c.issues.push(...zodIssues(doc, host.error, [], `hosts.${key}`));
        continue;
      }
      out.push({ doc, at: [], label: `hosts.${key}`, name: name.value, input: host.data });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rules

const UNITS: Record<string, number> = { MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, MB: 1e6, GB: 1e9, TB: 1e12 };

function bytesOf(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(size)!;
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const cand of candidates) {
    const d = editDistance(name, cand);
    if (d < bestScore) [best, bestScore] = [cand, d];
  }
  return bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

export function hostOf(raw: RawHost, site: Site, classNames: ReadonlySet<string>, classes: ReadonlyMap<string, ClassDef>, probe: Probe, c: Collector): Host | null {
  const { doc, at, label, input } = raw;
  const before = c.errors.length;
  if ((input.mac === undefined) === (input.macs === undefined)) {
    c.error(doc, at, label, input.mac === undefined ? "no MAC address" : "both `mac` and `macs`", "give `mac: 52:54:00:12:34:56`, or `macs: [...]` for a machine that may boot from several NICs");
  }
  const macs: Mac[] = [];
  const rawMacs = input.mac !== undefined ? [{ value: input.mac, at: [...at, "mac"], field: `${label}.mac` }] : (input.macs ?? []).map((m, i) => ({ value: m, at: [...at, "macs", i], field: `${label}.macs[${i}]` }));
  for (const m of rawMacs) {
    const mac = parseMac(m.value);
    if (!mac.ok) c.error(doc, m.at, m.field, mac.message, mac.hint);
    else if (macs.includes(mac.value)) c.error(doc, m.at, m.field, `${macColons(mac.value)} is listed twice for this host`, "remove the repeated entry");
    else macs.push(mac.value);
  }
  const className = parseClassName(input.class);
  if (!className.ok) {
    c.error(doc, [...at, "class"], `${label}.class`, className.message, className.hint);
  } else if (!classNames.has(className.value)) {
    const guess = closest(className.value, [...classNames]);
    c.error(
      doc,
      [...at, "class"],
      `${label}.class`,
      `unknown class ${quoted(input.class)}`,
      guess ? `did you mean ${quoted(guess)}? (classes are the files in classes/)` : `classes are the files in classes/: ${[...classNames].sort().join(", ") || "there are none"}`,
    );
  }
  const kernelParams = kernelParamsOf(doc, at, label, input.kernelParams, c);
  reservedParams(doc, at, label, kernelParams, site, c, false);
  const talos = className.ok ? talosHostOf(raw, classes.get(className.value), site, macs, probe, c) : undefined;
  if (c.errors.length !== before || !className.ok) return null;
  return {
    name: raw.name,
    file: doc.file,
    className: className.value,
    macs,
    ip: input.ip,
    ramBytes: input.ram === undefined ? undefined : bytesOf(input.ram),
    provisionDisks: input.provision.disks,
    kernelParams,
    description: input.description,
    talos,
  };
}

/** The same MAC on two hosts would boot one machine as the other: always an error. */
export function uniqueMacs(raws: RawHost[], hosts: Map<RawHost, Host>, c: Collector): void {
  const seen = new Map<Mac, RawHost>();
  for (const raw of raws) {
    const host = hosts.get(raw);
    if (!host) continue;
    host.macs.forEach((mac) => {
      const first = seen.get(mac);
      if (first && first.name !== raw.name) {
        const where = first.doc.where(first.at, first.label);
        const macField = raw.input.mac !== undefined ? "mac" : `macs`;
        c.error(raw.doc, [...raw.at, macField], `${raw.label}.${macField}`, `MAC ${macColons(mac)} is already used by host ${first.name} (${where.file}${where.line ? `:${where.line}` : ""})`, "each MAC belongs to one host; MACs are compared in any spelling (aa:bb:.., aa-bb-.., aabb.cc..)");
      } else if (!first) {
        seen.set(mac, raw);
      }
    });
  }
}

export function uniqueNames(raws: RawHost[], c: Collector): void {
  const seen = new Map<string, RawHost>();
  for (const raw of raws) {
    const first = seen.get(raw.name);
    if (first) {
      const where = first.doc.where(first.at, first.label);
      c.error(raw.doc, raw.at, raw.label, `host ${raw.name} is already defined in ${where.file}${where.line ? `:${where.line}` : ""}`, "hostnames must be unique across all files in hosts/");
    } else seen.set(raw.name, raw);
  }
}

export function uniqueIps(raws: RawHost[], c: Collector): void {
  const seen = new Map<string, RawHost>();
  for (const raw of raws) {
    const ip = raw.input.ip;
    if (ip === undefined) continue;
    const first = seen.get(ip);
    if (first && first.name !== raw.name) c.error(raw.doc, [...raw.at, "ip"], `${raw.label}.ip`, `IP ${ip} is already used by host ${first.name}`, "each host needs its own address");
    else seen.set(ip, raw);
  }
}
