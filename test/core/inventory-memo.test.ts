// What a load takes from an earlier run (Recall), and only while all it depended on is unchanged:
// the host's own text (the key), its class's and the site's settings (dependencies), the files its
// check looked for (probes). The cache file itself is tested in test/inventory-cache.test.ts.
import { describe, expect, it } from "vitest";
import type { Host } from "../../src/core/hosts.ts";
import { emptyMemo, Recall, unitKey, type HostMemo, type Memo } from "../../src/core/inventory-memo.ts";
import type { Probe } from "../../src/core/inventory-source.ts";

const host = (name: string) => ({ name, className: "demo" }) as unknown as Host;

function earlier(hosts: Record<string, HostMemo>, classes: Record<string, string>, whole: string[] = []): Memo {
  return { hosts: new Map(Object.entries(hosts)), whole: new Set(whole), classes: new Map(Object.entries(classes)) };
}

/** dependencies() that counts its calls, from a table that a test may change. */
function deps(table: Record<string, string>) {
  const calls: string[] = [];
  return { calls, table, fn: (c: string) => (calls.push(c), table[c] ?? "none") };
}

const files: Record<string, ReturnType<Probe>> = { "talos/a.yaml": "file" };
const probe: Probe = (rel) => files[rel] ?? "missing";

describe("Recall: a host checked in an earlier run is taken again only while nothing it depended on changed", () => {
  it("takes a host whose class settings and looked-for files are as they were, and learns it (with its class's settings, asked once per class)", () => {
    const a = { class: "demo", host: host("a"), probes: [["talos/a.yaml", "file"]] as [string, ReturnType<Probe>][] };
    const b = { class: "demo", host: host("b") };
    const d = deps({ demo: "v1" });
    const r = new Recall(earlier({ ka: a, kb: b }, { demo: "v1" }), d.fn, probe);
    expect(r.host("ka")).toBe(a.host);
    expect(r.host("kb")).toBe(b.host);
    expect([...r.learnt.hosts]).toEqual([["ka", a], ["kb", b]]);
    expect([...r.learnt.classes]).toEqual([["demo", "v1"]]);
    // Asked to check each host (twice), and once more to learn the class: not again for the second host.
    expect(d.calls).toEqual(["demo", "demo", "demo"]);
  });

  it("checks again a host whose class settings changed, or a file its check looked for, or that no earlier run knew; and learns none of them", () => {
    const a = { class: "demo", host: host("a"), probes: [["talos/a.yaml", "missing"]] as [string, ReturnType<Probe>][] };
    const b = { class: "other", host: host("b") };
    const r = new Recall(earlier({ ka: a, kb: b }, { demo: "v1", other: "v1" }), deps({ demo: "v1", other: "v2" }).fn, probe);
    expect(r.host("ka")).toBeUndefined(); // talos/a.yaml is there now
    expect(r.host("kb")).toBeUndefined(); // class other's settings changed
    expect(r.host("kc")).toBeUndefined();
    expect(r.learnt).toEqual(emptyMemo());
  });

  it("gives a host cut from a file of many: its count of values and its value, from this run's data or from JSON (parsed only when asked)", () => {
    const withData = { class: "demo", host: host("a"), values: 3, data: { class: "demo", mac: "x" } };
    const withJson = { class: "demo", host: host("b"), values: 4, json: '{"class":"demo","mac":"y"}' };
    const neither = { class: "demo", host: host("c"), values: 5 };
    const whole = { class: "demo", host: host("d"), json: "{}" };
    const r = new Recall(earlier({ ka: withData, kb: withJson, kc: neither, kd: whole }, {}), deps({}).fn, probe);
    const a = r.read("ka")!;
    expect([a.values, a.json, a.value()]).toEqual([3, undefined, { class: "demo", mac: "x" }]);
    expect(a.value()).toBe(withData.data);
    const b = r.read("kb")!;
    expect([b.values, b.json, b.value()]).toEqual([4, withJson.json, { class: "demo", mac: "y" }]);
    // No value that JSON could hold exactly: its text is read again. No count: it was a file of its own.
    expect(r.read("kc")).toBeUndefined();
    expect(r.read("kd")).toBeUndefined();
    expect(r.read("nope")).toBeUndefined();
    // A value kept as `data: undefined` is still a value.
    const undef = new Recall(earlier({ k: { class: "demo", host: host("e"), values: 1, data: undefined } }, {}), deps({}).fn, probe).read("k");
    expect(undef && [undef.values, undef.value()]).toEqual([1, undefined]);
  });

  it("remembers the files that must be read whole, for the next run too", () => {
    const r = new Recall(earlier({}, {}, ["w1"]), deps({}).fn, probe);
    expect(r.whole("w2")).toBe(false);
    expect([...r.learnt.whole]).toEqual([]);
    expect(r.whole("w1")).toBe(true);
    r.readWhole("w3");
    expect([...r.learnt.whole]).toEqual(["w1", "w3"]);
  });

  it("keys a host by its file and its exact text", () => {
    expect(unitKey("hosts/a.yaml", "class: demo\n")).toBe("hosts/a.yaml\0class: demo\n");
    expect(unitKey("hosts/a.yaml", "x")).not.toBe(unitKey("hosts/a.yam", "lx"));
  });
});
