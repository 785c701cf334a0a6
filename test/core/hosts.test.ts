// hosts/**/*.yaml as the loader reads them (core/hosts.ts): a file of one host named by the file, or
// many under `hosts:`, each host's own rules (MACs, class, flags, ssh, Talos) and the rules across
// hosts, with every error at its file:line:col and its hint. And a second run that recalls what a
// first run checked says exactly what a first run says, while taking the unchanged hosts as they were.
import { describe, expect, it } from "vitest";
import { loadInventory, type LoadResult } from "../../src/core/inventory.ts";
import type { InventoryFile, Probe } from "../../src/core/inventory-source.ts";
import { emptyMemo, unitKey, type Memo } from "../../src/core/inventory-memo.ts";
import { MAX_VALUES } from "../../src/core/yaml-doc.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });
const PREBUILT = "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n";
const TALOS = (role: string) => `kind: talos\ntalos:\n  version: v1.12.2\n  machine: { role: ${role} }\n`;
const NIXOS = "kind: nixos\nmodules: [./m.nix]\n";
const CLASSES = { small: PREBUILT, tal: TALOS("worker"), nix: NIXOS };
const SITE = "talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: secrets/w.yaml, controlplane: secrets/cp.yaml }\n";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA me";

interface Setup {
  hosts: InventoryFile[];
  classes?: Record<string, string>;
  site?: string;
  /** The files that exist (default: every file asked about). */
  probe?: Probe;
}

function load({ hosts, classes = CLASSES, site = SITE, probe = () => "file" }: Setup, earlier?: Memo): LoadResult {
  return loadInventory({
    site: f("netbuild.yaml", site),
    classes: Object.entries(classes).map(([name, text]) => f(`classes/${name}.yaml`, text)),
    hosts,
    probe,
    ...(earlier ? { earlier } : {}),
  });
}

type Shown = { severity: string; where: { file: string; line?: number | undefined; col?: number | undefined; field?: string | undefined }; message: string; hint?: string | undefined };
const show = (i: Shown) => `${i.where.file}:${i.where.line ?? "-"}:${i.where.col ?? "-"} ${i.where.field}: ${i.message}`;
const withHint = (i: Shown) => `${show(i)} (hint: ${i.hint ?? "none"})`;

/** Every error as `file:line:col field: message` (warnings, such as a Talos class without pinned hashes, left out). */
function errors(setup: Setup, how: (i: Shown) => string = show): string[] {
  return errorsOf(load(setup), how);
}
function errorsOf(r: LoadResult, how: (i: Shown) => string = show): string[] {
  return r.ok ? [] : r.issues.filter((i) => i.severity === "error").map(how);
}

function hostsOf(setup: Setup) {
  const r = load(setup);
  if (!r.ok) throw new Error(r.issues.map(withHint).join("\n"));
  return r.inventory.hosts;
}

const one = (name: string, text: string): Setup => ({ hosts: [f(`hosts/${name}.yaml`, text)] });
const many = (text: string, file = "hosts/all.yaml"): Setup => ({ hosts: [f(file, text)] });

describe("a file of one host", () => {
  it("is named by the file, with its settings at the top level; sizes in any unit the README lists", () => {
    const hosts = hostsOf({
      hosts: [
        f("hosts/aleph.yaml", "class: small\nmac: 52:54:00:00:00:01\nip: 10.0.0.1\nram: 16GiB\ndescription: rack 1\n"),
        f("hosts/lab/bet.yaml", "class: small\nmacs: [52:54:00:00:00:02, 52-54-00-00-00-03]\nram: 1.25 GiB\nprovision: { disks: true, id: 7, force: true }\n"),
        f("hosts/gimel.yaml", "class: small\nmac: 52:54:00:00:00:04\nram: 2TB\n"),
        f("hosts/dalet.yaml", "class: small\nmac: 52:54:00:00:00:05\nram: 512MiB\n"),
      ],
    });
    expect(hosts.map((h) => [h.name, h.file, h.ramBytes])).toEqual([
      ["aleph", "hosts/aleph.yaml", 16 * 2 ** 30],
      ["bet", "hosts/lab/bet.yaml", 1.25 * 2 ** 30],
      ["dalet", "hosts/dalet.yaml", 512 * 2 ** 20],
      ["gimel", "hosts/gimel.yaml", 2e12],
    ]);
    expect(hosts[0]).toStrictEqual({
      name: "aleph",
      file: "hosts/aleph.yaml",
      className: "small",
      macs: ["52-54-00-00-00-01"],
      ip: "10.0.0.1",
      ramBytes: 16 * 2 ** 30,
      provisionDisks: false,
      provisionId: undefined,
      provisionForce: false,
      sshAuthorizedKeys: [],
      kernelParams: [],
      description: "rack 1",
      talos: undefined,
    });
    expect(hosts[1]).toMatchObject({ macs: ["52-54-00-00-00-02", "52-54-00-00-00-03"], provisionDisks: true, provisionId: "7", provisionForce: true });
  });

  it("a file name netbuild will not write into a boot script: reported at the file, and the host still checked", () => {
    expect(errors(one("a b", "class: small\nmac: 52:54:00:00:00:01\n"), withHint)).toEqual([
      `hosts/a b.yaml:1:1 hosts: the file name "hosts/a b.yaml" has characters netbuild will not write into boot scripts (hint: use letters, digits, '.', '_', '-' and '/' in file names under hosts/)`,
      `hosts/a b.yaml:1:1 hosts["a b"]: the host file name: "a b" is not a valid hostname (hint: one RFC 1123 label: a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-' (no dots: use the short name); a file holding one host is named <hostname>.yaml)`,
    ]);
  });

  it("a file name that is no hostname: reported at the file, with how to name it", () => {
    expect(errors(one("Bad_Name", "class: small\nmac: 52:54:00:00:00:01\n"), withHint)).toEqual([
      `hosts/Bad_Name.yaml:1:1 hosts.Bad_Name: the host file name: "Bad_Name" is not a valid hostname (hint: one RFC 1123 label: a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-' (no dots: use the short name); a file holding one host is named <hostname>.yaml)`,
    ]);
  });

  it("YAML that does not parse: its syntax error only", () => {
    const found = errors(one("bad", "class: [small\nmac: 52:54:00:00:00:01\n"));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^hosts\/bad\.yaml:\d+:\d+ .*YAML syntax/);
  });

  it("an empty file: a host with nothing set", () => {
    expect(errors(one("e", ""))).toEqual(["hosts/e.yaml:-:- hosts.e.class: missing (expected string)", "hosts/e.yaml:-:- hosts.e: no MAC address"]);
  });

  it("a file that holds no mapping (a key, a note) is never quoted back", () => {
    const hint = "every *.yaml file under hosts/ is read as hosts: one host's settings, or `hosts:` with several; keep other files outside hosts/";
    expect(errors(one("note", "my secret token\n"), withHint)).toEqual([`hosts/note.yaml:1:1 hosts: this file holds a string of 15 characters, not a mapping of host settings (hint: ${hint})`]);
  });
});

describe("a file of many hosts, under `hosts:`", () => {
  it("each host keyed by its name", () => {
    const hosts = hostsOf(many("hosts:\n  a: { class: small, mac: 52:54:00:00:00:01 }\n  b: { class: small, mac: 52:54:00:00:00:02 }\n"));
    expect(hosts.map((h) => [h.name, h.file])).toEqual([
      ["a", "hosts/all.yaml"],
      ["b", "hosts/all.yaml"],
    ]);
  });

  it("`hosts:` that is not a mapping: one error, at it", () => {
    expect(errors(many("hosts: 5\n"))).toEqual(["hosts/all.yaml:1:8 hosts: expected record, got number 5"]);
  });

  it("a key that is no hostname is reported at the key, with how to name it; a host that is not a mapping, at the host", () => {
    expect(errors(many("hosts:\n  Bad_Name: { class: small, mac: 52:54:00:00:00:01 }\n  c: 5\n"), withHint)).toEqual([
      `hosts/all.yaml:2:3 hosts.Bad_Name: "Bad_Name" is not a valid hostname (hint: one RFC 1123 label: a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-' (no dots: use the short name))`,
      "hosts/all.yaml:3:6 hosts.c: expected object, got number 5 (hint: none)",
    ]);
  });

  it("hosts written at the top level, without `hosts:`: one error naming three and counting the rest", () => {
    const hint = "a file of several hosts puts them under `hosts:`: write `hosts:` as the first line and indent every host below it; a file of one host is named <hostname>.yaml and holds its settings at the top level";
    const expected = (what: string, line = 1) => [`hosts/x.yaml:${line}:1 hosts: ${what} at the top level of the file, where a host's own settings (class, mac, ...) are expected (hint: ${hint})`];
    // A host is a mapping with `class`, `mac` or `macs`; anything else at the top level is not named.
    const odd = "note: text\nextra:\nlist: [class, mac]\nnumber: 5\nother: { ip: 10.0.0.1 }\n";
    expect(errors(one("x", `${odd}a: { class: small }\nb: { mac: 52:54:00:00:00:01 }\nc: { macs: [52:54:00:00:00:02] }\n`), withHint)).toEqual(expected('3 hosts ("a", "b", "c")', 6));
    expect(errors(one("x", "a: { class: small }\nb: { class: small }\nc: { class: small }\nd: { class: small }\ne: { class: small }\n"), withHint)).toEqual(expected('5 hosts ("a", "b", "c", and 2 more)'));
    expect(errors(one("x", "a: { class: small }\nb: { class: small }\nc: { class: small }\nd: { class: small }\n"), withHint)).toEqual(expected('4 hosts ("a", "b", "c", and 1 more)'));
    expect(errors(one("x", `${odd}solo: { class: small, mac: 52:54:00:00:00:01 }\n`), withHint)).toEqual(expected('a host ("solo")', 6));
  });

  it("keys that are no host setting and hold no host: each an unknown key of the one host the file names", () => {
    expect(errors(one("x", "clas: small\nmak: 5\nother:\nlist: [class]\n"))).toEqual([
      "hosts/x.yaml:1:1 hosts.x.class: missing (expected string)",
      'hosts/x.yaml:1:1 hosts.x.clas: unknown key "clas"',
      "hosts/x.yaml:1:1 hosts.x: no MAC address",
      'hosts/x.yaml:2:1 hosts.x.mak: unknown key "mak"',
      'hosts/x.yaml:3:1 hosts.x.other: unknown key "other"',
      'hosts/x.yaml:4:1 hosts.x.list: unknown key "list"',
    ]);
  });
});

describe("a host's own rules", () => {
  const MAC_HINT = "give `mac: 52:54:00:12:34:56`, or `macs: [...]` for a machine that may boot from several NICs";

  it("MACs: one of `mac` or `macs`, each valid, none twice", () => {
    expect(errors(one("h", "class: small\n"), withHint)).toEqual([`hosts/h.yaml:1:1 hosts.h: no MAC address (hint: ${MAC_HINT})`]);
    expect(errors(one("h", "class: small\nmac: 52:54:00:00:00:01\nmacs: [52:54:00:00:00:02]\n"), withHint)).toEqual([`hosts/h.yaml:1:1 hosts.h: both \`mac\` and \`macs\` (hint: ${MAC_HINT})`]);
    expect(errors(one("h", "class: small\nmacs: [52:54:00:00:00:01, 52-54-00-00-00-01]\n"), withHint)).toEqual(["hosts/h.yaml:2:27 hosts.h.macs[1]: 52:54:00:00:00:01 is listed twice for this host (hint: remove the repeated entry)"]);
  });

  it("a class name that is not valid, or no class file: at `class`, listing the classes when none is close", () => {
    expect(errors(one("h", "class: Bad Name\nmac: 52:54:00:00:00:01\n"))).toEqual(['hosts/h.yaml:1:8 hosts.h.class: "Bad Name" is not a valid class name']);
    const unknown = one("h", "class: qqqqqqqq\nmac: 52:54:00:00:00:01\n");
    expect(errors({ ...unknown, classes: { zeta: PREBUILT, alpha: PREBUILT } }, withHint)).toEqual(['hosts/h.yaml:1:8 hosts.h.class: unknown class "qqqqqqqq" (hint: classes are the files in classes/: alpha, zeta)']);
    expect(errors({ ...unknown, classes: {} }, withHint)).toEqual(['hosts/h.yaml:1:8 hosts.h.class: unknown class "qqqqqqqq" (hint: classes are the files in classes/: there are none)']);
  });

  it("a class of the wrong type: that error only, and the rest of the host still checked", () => {
    expect(errors(one("h", "class: 5\nmac: 52:54:00:00:00:01\n"))).toEqual(["hosts/h.yaml:1:8 hosts.h.class: expected string, got number 5"]);
    expect(errors(one("h", "class: 5\nmac: nope\nssh: { authorizedKeys: [] }\n"))).toEqual(["hosts/h.yaml:1:8 hosts.h.class: expected string, got number 5", 'hosts/h.yaml:2:6 hosts.h.mac: "nope" is not a MAC address']);
  });

  it("a provisioning flag set by hand in kernelParams: refused, pointing at `provision:`", () => {
    expect(errors(one("h", "class: small\nmac: 52:54:00:00:00:01\nkernelParams: [quiet, homelab.provision_disks=true]\n"), withHint)).toEqual([
      'hosts/h.yaml:3:23 hosts.h.kernelParams[1]: "homelab.provision_disks=true" sets a provisioning flag by hand (hint: use `provision: { disks: true }` on this host instead)',
    ]);
  });

  it("`disks: true` without an id: at `disks`, with the command for this host (or HOST when its name is not valid)", () => {
    const hint = (host: string) => `run \`netbuild provision ${host}\` (it writes a new id next to the flag), or add an id next to it yourself (\`provision: { disks: true, id: first }\`: any token this host has not used)`;
    const message = "`disks: true` without an `id`: a wipe is one round of provisioning, and the host formats once per id";
    expect(errors(one("ok", "class: small\nmac: 52:54:00:00:00:01\nprovision:\n  disks: true\n"), withHint)).toEqual([`hosts/ok.yaml:4:10 hosts.ok.provision: ${message} (hint: ${hint("ok")})`]);
    expect(errors(one("Bad_Name", "class: small\nmac: 52:54:00:00:00:01\nprovision: { disks: true }\n"), withHint).slice(1)).toEqual([`hosts/Bad_Name.yaml:3:21 hosts.Bad_Name.provision: ${message} (hint: ${hint("HOST")})`]);
  });

  it("`ssh` on a NixOS host: its keys; on any other class: refused, saying what to do instead", () => {
    const ssh = `ssh: { authorizedKeys: ["${KEY}"] }\n`;
    expect(hostsOf(one("n", `class: nix\nmac: 52:54:00:00:00:01\n${ssh}`))[0]!.sshAuthorizedKeys).toEqual([KEY]);
    expect(errors(one("p", `class: small\nmac: 52:54:00:00:00:01\n${ssh}`), withHint)).toEqual(["hosts/p.yaml:3:6 hosts.p.ssh: `ssh` sets who may log in to a NixOS machine, and class small is a prebuilt class (hint: a prebuilt image brings its own login setup: remove `ssh` here)"]);
    expect(errors(one("t", `class: tal\nmac: 52:54:00:00:00:01\n${ssh}`), withHint)).toEqual(["hosts/t.yaml:3:6 hosts.t.ssh: `ssh` sets who may log in to a NixOS machine, and class tal is a talos class (hint: Talos machines have no SSH: use talosctl with the cluster's client config)"]);
    // A class that is not there: "unknown class" only.
    expect(errors(one("u", `class: gone\nmac: 52:54:00:00:00:01\n${ssh}`))).toEqual(['hosts/u.yaml:1:8 hosts.u.class: unknown class "gone"']);
    // Each key checked where it is written, never quoted back; the same key twice is one key.
    const keys = `ssh:\n  authorizedKeys:\n    - "${KEY}"\n    - "ssh-rsa not-base64!"\n    - "${KEY}"\n`;
    const bad = errors(one("k", `class: nix\nmac: 52:54:00:00:00:01\n${keys}`), withHint);
    expect(bad).toEqual([expect.stringMatching(/^hosts\/k\.yaml:6:7 hosts\.k\.ssh\.authorizedKeys\[1\]: .* \(hint: .+\)$/)]);
    expect(bad[0]).not.toContain("not-base64");
    expect(hostsOf(one("k", `class: nix\nmac: 52:54:00:00:00:01\nssh:\n  authorizedKeys: ["${KEY}", "${KEY}"]\n`))[0]!.sshAuthorizedKeys).toEqual([KEY]);
  });

  it("a Talos host: its settings checked only when its name and its `talos` are valid", () => {
    expect(hostsOf(one("t", "class: tal\nmac: 52:54:00:00:00:01\n"))[0]!.talos).toEqual({ role: "worker", volumes: {}, patches: [], configUrl: "talos.config=https://boot.example/tree/by-host/t/talos.yaml" });
    const noUrl = { site: "{}\n" };
    expect(errors({ ...one("Bad_Name", "class: tal\nmac: 52:54:00:00:00:01\n"), ...noUrl })).toEqual(['hosts/Bad_Name.yaml:1:1 hosts.Bad_Name: the host file name: "Bad_Name" is not a valid hostname']);
    expect(errors({ ...one("t", "class: tal\nmac: 52:54:00:00:00:01\ntalos: 5\n"), ...noUrl })).toEqual(["hosts/t.yaml:3:8 hosts.t.talos: expected object, got number 5"]);
  });
});

describe("the rules across hosts", () => {
  it("a hostname twice: at the second, naming where the first is (a file without a position by its name only)", () => {
    const dup = "hosts:\n  dup: { class: small, mac: 52:54:00:00:00:02 }\n";
    expect(errors({ hosts: [f("hosts/dup.yaml", "class: small\nmac: 52:54:00:00:00:01\n"), f("hosts/all.yaml", dup)] }, withHint)).toEqual(["hosts/all.yaml:2:8 hosts.dup: host dup is already defined in hosts/dup.yaml:1 (hint: hostnames must be unique across all files in hosts/)"]);
    expect(errors({ hosts: [f("hosts/dup.yaml", ""), f("hosts/all.yaml", dup)] })).toEqual(["hosts/all.yaml:2:8 hosts.dup: host dup is already defined in hosts/dup.yaml", "hosts/dup.yaml:-:- hosts.dup.class: missing (expected string)", "hosts/dup.yaml:-:- hosts.dup: no MAC address"]);
  });

  it("a MAC on many hosts: at each, naming the first three others in file order and counting the rest; a host that lists it twice is one host", () => {
    const lines = ["hosts:"];
    for (const h of ["h1", "h2", "h3", "h4", "h5", "h6"]) lines.push(`  ${h}: { class: small, macs: [52:54:00:00:00:01${h === "h2" ? ", 52-54-00-00-00-01" : ""}] }`);
    const got = errors(many(`${lines.join("\n")}\n`));
    const line = (h: string) => Number(h.slice(1)) + 1;
    const named = (hs: string[], more: number) => `${hs.map((h) => `host ${h} (hosts/all.yaml:${line(h)})`).join(", ")} and ${more} more`;
    // h2's second spelling of it is its own error (a MAC listed twice), and is not counted again here.
    const others = (h: string) => ["h1", "h2", "h3", "h4", "h5", "h6"].filter((o) => o !== h).slice(0, 3);
    expect(got.filter((e) => e.includes("is also used by"))).toEqual(["h1", "h2", "h3", "h4", "h5", "h6"].map((h) => `hosts/all.yaml:${line(h)}:30 hosts.${h}.macs[0]: MAC 52:54:00:00:00:01 is also used by ${named(others(h), 2)}`));
    expect(got.filter((e) => e.startsWith("hosts/all.yaml:3:49"))).toEqual([expect.stringContaining("hosts.h2.macs[1]")]);
    // One host listing a MAC twice shares it with nobody (its own rule says so).
    expect(errors(many("hosts:\n  solo: { class: small, macs: [52:54:00:00:00:01, 52:54:00:00:00:01] }\n")).filter((e) => e.includes("is also used by"))).toEqual([]);
  });

  it("a host whose name is not valid is named by its key in another's message (or by its file's name)", () => {
    const setup = { hosts: [f("hosts/all.yaml", "hosts:\n  Bee: { class: small, mac: 52:54:00:00:00:01 }\n"), f("hosts/Odd_One.yaml", "class: small\nmac: 52:54:00:00:00:01\n"), f("hosts/ok.yaml", "class: small\nmac: 52:54:00:00:00:01\n")] };
    expect(errors(setup).filter((e) => e.includes("is also used by") && e.startsWith("hosts/ok.yaml"))).toEqual(['hosts/ok.yaml:2:6 hosts.ok.mac: MAC 52:54:00:00:00:01 is also used by host "Bee" (hosts/all.yaml:2) and host "Odd_One" (hosts/Odd_One.yaml:2)']);
  });

  it("a hosts file that cannot be read: one error naming it, and the other files still read", () => {
    const r = load({ hosts: [{ path: "hosts/big.yaml", text: "", problem: { kind: "too-large", bytes: 17 * 2 ** 20 } }, f("hosts/ok.yaml", "class: small\nmac: 52:54:00:00:00:01\nram: nope\n")] });
    expect(errorsOf(r, withHint)).toEqual([
      'hosts/big.yaml:-:- hosts: "big.yaml" is over the 16 MiB limit for inventory files (17.0 MiB) (hint: split the hosts into several files under hosts/ (10,000 hosts take about 1.3 MiB); is this file meant to be in the inventory?)',
      expect.stringMatching(/^hosts\/ok\.yaml:3:6 hosts\.ok\.ram: /),
    ]);
  });

  it("a provisioning id without `disks: true` arms nothing: the host has no wipe and no id", () => {
    const [h] = hostsOf(one("h", "class: small\nmac: 52:54:00:00:00:01\nprovision: { disks: false, id: r1 }\n"));
    expect([h!.provisionDisks, h!.provisionId]).toEqual([false, undefined]);
    const [w] = hostsOf(one("w", "class: small\nmac: 52:54:00:00:00:01\nprovision: { disks: true, id: 7 }\n"));
    expect([w!.provisionDisks, w!.provisionId]).toEqual([true, "7"]);
  });

  it("a MAC or an address on two hosts: at each, naming the other", () => {
    const setup = many("hosts:\n  a: { class: small, mac: 52:54:00:00:00:01, ip: 10.0.0.1 }\n  b: { class: small, mac: 52-54-00-00-00-01, ip: 10.0.0.1 }\n");
    expect(errors(setup, withHint)).toEqual([
      "hosts/all.yaml:2:27 hosts.a.mac: MAC 52:54:00:00:00:01 is also used by host b (hosts/all.yaml:3) (hint: each MAC belongs to one host; MACs are compared in any spelling (aa:bb:.., aa-bb-.., aabb.cc..))",
      "hosts/all.yaml:2:50 hosts.a.ip: IP 10.0.0.1 is also used by host b (hosts/all.yaml:3) (hint: each host needs its own address)",
      "hosts/all.yaml:3:27 hosts.b.mac: MAC 52:54:00:00:00:01 is also used by host a (hosts/all.yaml:2) (hint: each MAC belongs to one host; MACs are compared in any spelling (aa:bb:.., aa-bb-.., aabb.cc..))",
      "hosts/all.yaml:3:50 hosts.b.ip: IP 10.0.0.1 is also used by host a (hosts/all.yaml:2) (hint: each host needs its own address)",
    ]);
  });
});

describe("a run that recalls what an earlier run checked", () => {
  const rack = (n: number, cls = "small") => `# rack 1\nhosts:\n${Array.from({ length: n }, (_, i) => `  r${i + 1}:\n    class: ${cls}\n    mac: 52:54:00:00:01:0${i + 1}\n`).join("")}`;
  const BASE: InventoryFile[] = [f("hosts/solo.yaml", "class: small\nmac: 52:54:00:00:00:01\nram: 8GiB\n"), f("hosts/rack.yaml", rack(3))];
  const strip = (r: LoadResult) => (r.ok ? { ok: true, inventory: r.inventory } : r);
  /** Where each remembered host came from (its file), and the files remembered as read whole. */
  const memoOf = (r: LoadResult) => {
    if (!r.ok) throw new Error(r.issues.map(withHint).join("\n"));
    return { hosts: [...r.memo.hosts.keys()].map((k) => k.split("\0")[0]), whole: [...r.memo.whole].map((k) => k.split("\0")[0]) };
  };

  /** A first run that remembers, then `after` loaded with what it learnt: that must say what a first run of `after` says. */
  function recalled(before: Setup, after: Setup = before) {
    const first = load(before, emptyMemo());
    if (!first.ok) throw new Error(first.issues.map(withHint).join("\n"));
    const second = load(after, first.memo);
    expect(strip(second)).toStrictEqual(strip(load(after)));
    const remembered = new Set([...first.memo.hosts.values()].map((m) => m.host));
    const taken = second.ok ? second.inventory.hosts.filter((h) => remembered.has(h)).map((h) => h.name) : [];
    return { first, second, taken };
  }

  it("remembers each host checked cleanly, one by one in a file of many, and takes them back unchanged", () => {
    const { first, second, taken } = recalled({ hosts: BASE });
    expect(memoOf(first)).toEqual({ hosts: ["hosts/solo.yaml", "hosts/rack.yaml", "hosts/rack.yaml", "hosts/rack.yaml"], whole: [] });
    expect(taken).toEqual(["r1", "r2", "r3", "solo"]);
    expect(memoOf(second)).toEqual(memoOf(first));
  });

  it("an edited host is read and checked again, alone; the others are taken as they were", () => {
    const edited = [BASE[0]!, f("hosts/rack.yaml", rack(3).replace("mac: 52:54:00:00:01:02", "mac: 52:54:00:00:01:02\n    ip: 10.0.0.2"))];
    const { second, taken } = recalled({ hosts: BASE }, { hosts: edited });
    expect(taken).toEqual(["r1", "r3", "solo"]);
    expect(memoOf(second)).toEqual({ hosts: ["hosts/solo.yaml", "hosts/rack.yaml", "hosts/rack.yaml", "hosts/rack.yaml"], whole: [] });
    // And the errors an edit brings are a first run's, at their lines.
    const broken = [f("hosts/solo.yaml", "class: small\nmac: 52:54:00:00:01:03\n"), BASE[1]!];
    const { second: dup } = recalled({ hosts: BASE }, { hosts: broken });
    expect(errorsOf(dup)).toEqual(["hosts/rack.yaml:11:10 hosts.r3.mac: MAC 52:54:00:00:01:03 is also used by host solo (hosts/solo.yaml:2)", "hosts/solo.yaml:2:6 hosts.solo.mac: MAC 52:54:00:00:01:03 is also used by host r3 (hosts/rack.yaml:11)"]);
  });

  it("a file of many hosts that cannot be cut into hosts is read whole, and remembered as such", () => {
    const aliased = f("hosts/odd.yaml", "hosts:\n  o1:\n    class: small\n    mac: 52:54:00:00:02:01\n    kernelParams: &kp [quiet]\n  o2:\n    class: small\n    mac: 52:54:00:00:02:02\n    kernelParams: *kp\n");
    const { first, second, taken } = recalled({ hosts: [...BASE, aliased] });
    expect(memoOf(first).whole).toEqual(["hosts/odd.yaml"]);
    expect(memoOf(second).whole).toEqual(["hosts/odd.yaml"]);
    expect(taken).toEqual(["r1", "r2", "r3", "solo"]);
    // Files read whole because of their keys: a key twice, a key that is no hostname.
    for (const text of ["hosts:\n  a:\n    class: small\n    mac: 52:54:00:00:03:01\n  a:\n    class: small\n    mac: 52:54:00:00:03:02\n", "hosts:\n  A:\n    class: small\n    mac: 52:54:00:00:03:01\n"]) {
      const first = load({ hosts: [f("hosts/k.yaml", text)] }, emptyMemo());
      expect(first.ok).toBe(false);
      expect(strip(load({ hosts: [f("hosts/k.yaml", text)] }, emptyMemo()))).toStrictEqual(strip(load({ hosts: [f("hosts/k.yaml", text)] })));
    }
  });

  it("checks a host again when a file its check looked for (a Talos patch) is gone, or is there now", () => {
    const patched = [f("hosts/t1.yaml", "class: tal\nmac: 52:54:00:00:00:09\ntalos:\n  patches: [../patches/t1.yaml]\n")];
    const there: Probe = () => "file";
    const gone: Probe = (rel) => (rel === "patches/t1.yaml" ? "missing" : "file");
    const { first, second: removed } = recalled({ hosts: patched, probe: there }, { hosts: patched, probe: gone });
    expect([...first.memo.hosts.values()].map((m) => m.probes)).toEqual([[["patches/t1.yaml", "file"]]]);
    expect(errorsOf(removed)).toEqual([expect.stringMatching(/^hosts\/t1\.yaml:4:\d+ hosts\.t1\.talos\.patches\[0\]: /)]);
    // A host whose check looked for no file remembers none.
    expect([...load({ hosts: BASE }, emptyMemo()).ok ? (load({ hosts: BASE }, emptyMemo()) as { memo: Memo }).memo.hosts.values() : []].map((m) => m.probes)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("an edited host with errors in a file of many: the errors are a first run's, at their lines, with the others' too", () => {
    const edited = [BASE[0]!, f("hosts/rack.yaml", rack(3).replace("mac: 52:54:00:00:01:02", "mac: 52:54:00:00:01:0Z\n    ram: lots"))];
    const { second } = recalled({ hosts: BASE }, { hosts: edited });
    expect(errorsOf(second)).toEqual([`hosts/rack.yaml:8:10 hosts.r2.mac: "52:54:00:00:01:0Z" is not a MAC address`, `hosts/rack.yaml:9:10 hosts.r2.ram: expected a size like 16GiB or 512MiB (got "lots")`]);
  });

  it("checks a host again when its class changes kind or machine defaults, or the site settings it reads change", () => {
    const talosHost = [f("hosts/t1.yaml", "class: tal\nmac: 52:54:00:00:00:09\n")];
    // Prebuilt → Talos: the host gains its Talos settings.
    const { second: kind } = recalled({ hosts: talosHost, classes: { tal: PREBUILT } }, { hosts: talosHost });
    expect(kind.ok && kind.inventory.hosts[0]!.talos?.role).toBe("worker");
    // Worker → control plane.
    const { second: role } = recalled({ hosts: talosHost }, { hosts: talosHost, classes: { ...CLASSES, tal: TALOS("controlplane") } });
    expect(role.ok && role.inventory.hosts[0]!.talos?.role).toBe("controlplane");
    // Where the tree is served.
    const { second: url } = recalled({ hosts: talosHost }, { hosts: talosHost, site: SITE.replace("boot.example", "mirror.example") });
    expect(url.ok && url.inventory.hosts[0]!.talos?.configUrl).toBe("talos.config=https://mirror.example/tree/by-host/t1/talos.yaml");
    // The flag prefix: a parameter that was the host's own becomes a provisioning flag set by hand.
    const flag = [f("hosts/solo.yaml", "class: small\nmac: 52:54:00:00:00:01\nkernelParams: [lab.provision_disks=true]\n")];
    const { second: prefix } = recalled({ hosts: flag }, { hosts: flag, site: `flagPrefix: lab\n${SITE}` });
    expect(errorsOf(prefix)).toEqual(['hosts/solo.yaml:3:16 hosts.solo.kernelParams[0]: "lab.provision_disks=true" sets a provisioning flag by hand']);
  });

  it("counts the values a file's remembered hosts hold toward the file's limit: over it, the file is read whole", () => {
    const text = rack(2);
    const first = load({ hosts: [f("hosts/rack.yaml", text)] }, emptyMemo());
    if (!first.ok) throw new Error("not loaded");
    const [k1, k2] = [...first.memo.hosts.keys()];
    expect([k1, k2]).toEqual([unitKey("hosts/rack.yaml", text.slice(text.indexOf("  r1:"), text.indexOf("  r2:"))), unitKey("hosts/rack.yaml", text.slice(text.indexOf("  r2:")))]);
    /** The memo as if the two hosts' text held `a` and `b` values: the file holds `hosts:`, its mapping, and two more per host (key and value). */
    const claiming = (a: number, b: number): Memo => {
      const hosts = new Map(first.memo.hosts);
      hosts.set(k1!, { ...hosts.get(k1!)!, values: a });
      hosts.set(k2!, { ...hosts.get(k2!)!, values: b });
      return { ...first.memo, hosts };
    };
    const rest = MAX_VALUES - 2 - 4;
    for (const [a, b, whole] of [
      [rest - 1, 1, false],
      [rest - 1, 2, true],
      [1, rest, true],
      [rest, 0, false],
    ] as const) {
      const again = load({ hosts: [f("hosts/rack.yaml", text)] }, claiming(a, b));
      expect(memoOf(again).whole, `${a} + ${b}`).toEqual(whole ? ["hosts/rack.yaml"] : []);
      expect(strip(again)).toStrictEqual(strip(first));
    }
  });
});
