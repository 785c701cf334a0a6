// The inventory's error reporting does work linear in what it reports, however many hosts have an
// error: the collector's error list is not rebuilt each time a host's check reads it, and a MAC or
// address shared by thousands of hosts is not compared pairwise (each message names three others
// and counts the rest). Checked by counting the work (reads of each issue and host), never by
// timing; bench/inventory-errors.ts times the CLI at 20,000 hosts. The messages themselves are
// checked against a pairwise reference on random groups.
import { describe, expect, it } from "vitest";
import type { Issue } from "../../src/errors.ts";
import { Collector, type HostPlace } from "../../src/core/inventory-rules.ts";
import { uniqueIps, uniqueMacs, type SharedValues } from "../../src/core/hosts.ts";
import { parseHostName, parseMac, type Mac } from "../../src/core/names.ts";
import { YamlDoc } from "../../src/core/yaml-doc.ts";
import { seeded } from "../support/random.ts";

/** `value` behind a proxy that counts every property read into `reads.n`. */
function counted<T extends object>(value: T, reads: { n: number }): T {
  return new Proxy(value, {
    get(target, key, receiver) {
      reads.n++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

const MAC = parseMac("52:54:00:00:00:01");
if (!MAC.ok) throw new Error("test MAC");
const MAC_VALUE: Mac = MAC.value;

/**
 * Hosts `keys[i]` each, all with MAC `MAC` and address 10.0.0.1, written 3 lines per host under
 * `hosts:` (its `mac:` at line 3 of its entry): all in hosts/all.yaml (the mac of host i at line
 * 3i+3), or with `apart` each in a file of its own, hosts/i.yaml (so that a name may repeat).
 */
function manyHosts(keys: readonly string[], reads: { n: number }, apart = false): SharedValues[] {
  const entry = (k: string) => `  ${k}:\n    mac: "52:54:00:00:00:01"\n    ip: 10.0.0.1\n`;
  const all = apart ? undefined : new YamlDoc("hosts/all.yaml", `hosts:\n${keys.map(entry).join("")}`);
  return keys.map((key, i): SharedValues => {
    const doc = all ?? new YamlDoc(`hosts/${i}.yaml`, `hosts:\n${entry(key)}`);
    const name = parseHostName(key);
    const at = ["hosts", key];
    const raw: HostPlace = counted({ doc, at, label: `hosts.${key}`, name: name.ok ? name.value : undefined }, reads);
    return { raw, macs: [{ mac: MAC_VALUE, at: [...at, "mac"], field: `hosts.${key}.mac` }], ip: "10.0.0.1" };
  });
}

describe("inventory error reporting at scale: work linear in the hosts", () => {
  it("reads each issue a bounded number of times when the error list is read after every issue (as hostOf does per host)", () => {
    const n = 3000;
    const reads = { n: 0 };
    const c = new Collector();
    let last = 0;
    for (let i = 0; i < n; i++) {
      const issue: Issue = { severity: i % 3 === 0 ? "warning" : "error", where: { file: "hosts/all.yaml", line: i + 1 }, message: `issue ${i}` };
      c.issues.push(counted(issue, reads));
      const errors = c.errors;
      expect(errors.length).toBeGreaterThanOrEqual(last);
      last = errors.length;
    }
    expect(c.errors.length).toBe(n - Math.ceil(n / 3));
    expect(c.errors.every((i) => i.severity === "error")).toBe(true);
    // Filtering every issue at each read: n²/2 reads, 4.5 million here.
    expect(reads.n).toBeLessThanOrEqual(2 * n);
  });

  it("reports a MAC and an address 3,000 hosts share at each host, naming three others and counting the rest, reading each host a bounded number of times", () => {
    const n = 3000;
    const reads = { n: 0 };
    const keys = Array.from({ length: n }, (_, i) => `h${i}`);
    const hosts = manyHosts(keys, reads);
    const c = new Collector();
    uniqueMacs(hosts, c);
    uniqueIps(hosts, c);
    // Every host compared with every other: about 2n² reads, 18 million here.
    expect(reads.n).toBeLessThanOrEqual(40 * n);
    const macErrors = c.issues.filter((i) => i.message.startsWith("MAC "));
    const ipErrors = c.issues.filter((i) => i.message.startsWith("IP "));
    expect(macErrors.length).toBe(n);
    expect(ipErrors.length).toBe(n);
    expect(macErrors.map((i) => i.where.line)).toEqual(keys.map((_, i) => 3 * i + 3));
    expect(macErrors[0]!.message).toBe(`MAC 52:54:00:00:00:01 is also used by host h1 (hosts/all.yaml:6), host h2 (hosts/all.yaml:9), host h3 (hosts/all.yaml:12) and ${n - 4} more`);
    expect(macErrors[2]!.message).toBe(`MAC 52:54:00:00:00:01 is also used by host h0 (hosts/all.yaml:3), host h1 (hosts/all.yaml:6), host h3 (hosts/all.yaml:12) and ${n - 4} more`);
    expect(macErrors[n - 1]!.message).toBe(`MAC 52:54:00:00:00:01 is also used by host h0 (hosts/all.yaml:3), host h1 (hosts/all.yaml:6), host h2 (hosts/all.yaml:9) and ${n - 4} more`);
    expect(ipErrors[0]!.message).toBe(`IP 10.0.0.1 is also used by host h1 (hosts/all.yaml:7), host h2 (hosts/all.yaml:10), host h3 (hosts/all.yaml:13) and ${n - 4} more`);
    expect(Math.max(...c.issues.map((i) => i.message.length))).toBeLessThan(200);
  });

  it("says what comparing every pair of hosts says, on random groups with repeated and invalid names", () => {
    const rnd = seeded(20240611);
    const names = ["a", "b", "c", "d", "e", "f", "Bad", "Worse"];
    for (let round = 0; round < 300; round++) {
      const size = 1 + Math.floor(rnd.random() * 12);
      const keys = Array.from({ length: size }, () => rnd.pick(names));
      const hosts = manyHosts(keys, { n: 0 }, true);
      const c = new Collector();
      uniqueMacs(hosts, c);
      expect(c.issues.map((i) => `${i.where.file}:${i.where.line}: ${i.message}`), keys.join(" ")).toEqual(pairwise(hosts));
    }
  });
});

/** What uniqueMacs says for hosts in files of their own that all share one MAC, worked out pairwise: a host is its name, or itself when its name is invalid. */
function pairwise(hosts: SharedValues[]): string[] {
  const same = (x: HostPlace, y: HostPlace) => (x.name === undefined || y.name === undefined ? x === y : x.name === y.name);
  const label = (h: HostPlace, i: number) => `host ${h.name ?? `"${String(h.at[1])}"`} (hosts/${i}.yaml:3)`;
  const out: string[] = [];
  hosts.forEach((h, i) => {
    const others = hosts.map((o, j) => ({ o, j })).filter(({ o }) => !same(o.raw, h.raw));
    if (others.length === 0) return;
    const shown = others.slice(0, 3).map(({ o, j }) => label(o.raw, j));
    if (others.length > 3) shown.push(`${others.length - 3} more`);
    const names = shown.length === 1 ? shown[0]! : `${shown.slice(0, -1).join(", ")} and ${shown.at(-1)!}`;
    out.push(`hosts/${i}.yaml:3: MAC 52:54:00:00:00:01 is also used by ${names}`);
  });
  return out;
}
