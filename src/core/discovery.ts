// Machines that booted and are not in the inventory, from web servers' access logs: boot.ipxe
// makes an unknown machine request discover/<mac>?uuid=…&serial=…&platform=… once per boot (see
// templates/boot.ipxe.hbs). Every value in a log line is the client's: it is decoded, stripped of
// control characters and cut short here, and is never more than text in a report.
import { parseMac, macColons, type Mac } from "./names.ts";

/** One request, as the access log has it. */
export interface LogRequest {
  remote: string;
  time: Date | undefined;
  method: string;
  target: string;
  status: number;
}

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

/** `30/Nov/2026:13:06:35 +0100` (nginx, Apache, lighttpd, netbuild serve) or `30/Nov/2026 13:06:35` (Python's http.server: local time, taken as UTC). */
function clfTime(s: string): Date | undefined {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4})[: ](\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?$/.exec(s);
  if (!m) return undefined;
  // An unknown month is no month: Date.UTC gives NaN, and the time is undefined below.
  const utc = Date.UTC(Number(m[3]), MONTHS[m[2]!] ?? NaN, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const offset = m[7] ? (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000 : 0;
  const t = new Date(utc - offset);
  return Number.isNaN(t.getTime()) ? undefined : t;
}

// remote, identity or virtual host (lighttpd), user, [time], "request", status, bytes, and anything after.
const CLF = /^(\S+) \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)(?: .*)?$/;
// Python's http.server: `127.0.0.1 - - [30/Nov/2026 13:06:35] "GET /x HTTP/1.1" 404 -`.
const PYTHON = /^(\S+) - - \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)$/;

/** A line of an access log in one of the formats netbuild reads (combined/common, Python's, Caddy's JSON), or undefined. */
export function parseLogLine(line: string): LogRequest | undefined {
  if (line.startsWith("{")) return caddyLine(line);
  const m = PYTHON.exec(line) ?? CLF.exec(line);
  if (!m) return undefined;
  const request = /^([A-Z]{1,16}) (\S+)(?: HTTP\/\d(?:\.\d)?)?$/.exec(m[3]!);
  if (!request) return undefined;
  return { remote: m[1]!, time: clfTime(m[2]!), method: request[1]!, target: request[2]!, status: Number(m[4]) };
}

/** Caddy's JSON access log: `{"ts":…,"request":{"remote_ip":…,"method":…,"uri":…},"status":…}`. */
function caddyLine(line: string): LogRequest | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  const o = v as { ts?: unknown; status?: unknown; request?: { remote_ip?: unknown; client_ip?: unknown; method?: unknown; uri?: unknown } };
  // The line starts with "{": o is an object; its request may be anything (a remote found in it makes it an object).
  const r = o.request;
  const remote = r?.client_ip ?? r?.remote_ip;
  if (typeof remote !== "string" || typeof r!.method !== "string" || typeof r!.uri !== "string" || typeof o.status !== "number") return undefined;
  // Seconds since 1970, up to the year 9999 (a later one would not sort as ISO text).
  const time = typeof o.ts === "number" && o.ts >= 0 && o.ts < 253_402_300_800 ? new Date(o.ts * 1000) : undefined;
  return { remote, time, method: r!.method, target: r!.uri, status: o.status };
}

/** A value from the client, as it may be shown: decoded (`+` is a plus), no control characters, at most 64 characters. */
export function clientValue(raw: string): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    s = raw;
  }
  // eslint-disable-next-line no-control-regex
  s = s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  // Cut by code points: never half of a surrogate pair.
  const points = Array.from(s);
  return points.length > 64 ? `${points.slice(0, 63).join("")}…` : s;
}

export const DISCOVERY_FIELDS = ["uuid", "serial", "manufacturer", "product", "asset", "platform", "buildarch", "chip"] as const;
export type DiscoveryField = (typeof DISCOVERY_FIELDS)[number];

/** A discovery request's MAC and what it says of the machine, or undefined for any other request. */
export function discoveryOf(target: string): { mac: Mac; fields: Partial<Record<DiscoveryField, string>> } | undefined {
  const q = target.indexOf("?");
  const pathPart = q === -1 ? target : target.slice(0, q);
  const m = /(?:^|\/)discover\/([0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){5})$/.exec(pathPart);
  if (!m) return undefined;
  const mac = parseMac(m[1]!);
  if (!mac.ok) return undefined;
  const fields: Partial<Record<DiscoveryField, string>> = {};
  for (const pair of q === -1 ? [] : target.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (!(DISCOVERY_FIELDS as readonly string[]).includes(key)) continue;
    const value = clientValue(eq === -1 ? "" : pair.slice(eq + 1));
    if (value !== "") fields[key as DiscoveryField] = value;
  }
  return { mac: mac.value, fields };
}

/** Values firmware leaves in place of a real UUID or serial number. */
export function isPlaceholder(field: "uuid" | "serial" | "asset", value: string): boolean {
  const v = value.trim().toLowerCase();
  if (/^[0-]+$/.test(v) || /^[f-]+$/.test(v)) return true;
  if (field === "uuid") return false;
  return ["to be filled by o.e.m.", "default string", "system serial number", "not specified", "none", "n/a", "123456789", "0123456789", "chassis serial number", "serial"].includes(v);
}

export interface DiscoveredMachine {
  mac: string;
  firstSeen: string | undefined;
  lastSeen: string | undefined;
  /** Discovery requests seen: one per boot. */
  boots: number;
  firmware: "BIOS" | "UEFI" | undefined;
  arch: string | undefined;
  vendor: string | undefined;
  product: string | undefined;
  serial: string | undefined;
  uuid: string | undefined;
  asset: string | undefined;
  chip: string | undefined;
  /** Which of serial, uuid and asset are placeholders (all zeros, all F, "To be filled by O.E.M."…). */
  placeholders: string[];
  /** The address its last request came from. */
  ip: string;
}

export interface Discovery {
  machines: DiscoveredMachine[];
  /** Lines in no format netbuild reads: skipped, never trusted. */
  malformed: number;
  /** Discovery requests from MACs the inventory has: not listed. */
  known: number;
}

/** Collects discovery requests line by line; `result()` lists the MACs not in `known`, most recently seen first. */
export class DiscoveryLog {
  private readonly byMac = new Map<string, Omit<DiscoveredMachine, "placeholders">>();
  private malformed = 0;
  private knownRequests = 0;

  constructor(private readonly known: ReadonlySet<string>) {}

  add(line: string): void {
    if (line.trim() === "") return;
    const r = line.length > 16_384 ? undefined : parseLogLine(line);
    if (!r) {
      this.malformed++;
      return;
    }
    if (r.method !== "GET") return;
    const d = discoveryOf(r.target);
    if (!d) return;
    if (this.known.has(d.mac)) {
      this.knownRequests++;
      return;
    }
    const mac = macColons(d.mac);
    const time = r.time?.toISOString();
    const ip = clientValue(r.remote);
    const m = this.byMac.get(mac);
    const f = d.fields;
    const platform = f.platform === "pcbios" ? "BIOS" : f.platform === "efi" ? "UEFI" : undefined;
    if (!m) {
      this.byMac.set(mac, { mac, firstSeen: time, lastSeen: time, boots: 1, firmware: platform, arch: f.buildarch, vendor: f.manufacturer, product: f.product, serial: f.serial, uuid: f.uuid, asset: f.asset, chip: f.chip, ip });
      return;
    }
    m.boots++;
    if (time !== undefined && (m.firstSeen === undefined || time < m.firstSeen)) m.firstSeen = time;
    // The latest request says what the machine is now (its firmware may have been switched). One
    // without a readable time is the latest only for a machine never seen at one.
    if (time === undefined ? m.lastSeen === undefined : m.lastSeen === undefined || time >= m.lastSeen) {
      if (time !== undefined) m.lastSeen = time;
      m.ip = ip;
      m.firmware = platform ?? m.firmware;
      for (const [k, v] of [["arch", f.buildarch], ["vendor", f.manufacturer], ["product", f.product], ["serial", f.serial], ["uuid", f.uuid], ["asset", f.asset], ["chip", f.chip]] as const) if (v !== undefined) m[k] = v;
    }
  }

  result(): Discovery {
    const machines = [...this.byMac.values()].map((m) => ({ ...m, placeholders: (["serial", "uuid", "asset"] as const).filter((k) => m[k] !== undefined && isPlaceholder(k, m[k]!)) }));
    // Latest first ("" for never at a readable time: last), then by MAC (unique).
    const seen = (m: DiscoveredMachine) => m.lastSeen ?? "";
    machines.sort((a, b) => (seen(b) < seen(a) ? -1 : seen(b) > seen(a) ? 1 : a.mac < b.mac ? -1 : 1));
    return { machines, malformed: this.malformed, known: this.knownRequests };
  }
}
