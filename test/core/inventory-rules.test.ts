// What the parts of the inventory loader share (core/inventory-rules.ts), as users meet it: the
// files a class names, the kernel parameters and SSH keys classes and hosts both list, host and
// class names taken from file names, one mistake reported without hiding the others next to it
// (or what is reported elsewhere), warnings with their hints, and which files feed the parse cache.
import { describe, expect, it } from "vitest";
import { loadInventory, type InventoryFile, type Probe } from "../../src/core/inventory.ts";
import { baseName, Collector, kernelParamsOf, validParams } from "../../src/core/inventory-rules.ts";
import { YamlDoc } from "../../src/core/yaml-doc.ts";
import type { Issue } from "../../src/errors.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA alice";
const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB bob";
const MAC = "52:54:00:12:34:56";
const PREBUILT = "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n";
const TALOS = "kind: talos\ntalos:\n  version: v1.12.2\n  machine: { role: worker }\n";

/**
 * The files of a test's inventory, by path from the root: classes/mods is a folder, classes/fifo
 * a FIFO, classes/link a symlink leading out of the root, and classes/nope is not there.
 */
const probe: Probe = (rel) => (rel.replace(/\/$/, "") === "classes/mods" ? "dir" : rel === "classes/fifo" ? "special" : rel === "classes/link" ? "outside" : rel === "classes/nope" ? "missing" : "file");

/** An issue as `file:line:col field: message`. */
const show = (i: Issue) => `${i.where.file}:${i.where.line ?? "-"}:${i.where.col ?? "-"} ${i.where.field}: ${i.message}`;
/** An issue with the hint shown under it (undefined when it has none). */
const withHint = (i: Issue) => ({ issue: show(i), hint: i.hint });

function load(inv: { site?: string; classes?: Record<string, string>; hosts?: Record<string, string> | InventoryFile[]; onParsed?: (file: InventoryFile, data: unknown) => void }) {
  const r = loadInventory({
    site: inv.site === undefined ? undefined : f("netbuild.yaml", inv.site),
    classes: Object.entries(inv.classes ?? {}).map(([name, text]) => f(`classes/${name}.yaml`, text)),
    hosts: Array.isArray(inv.hosts) ? inv.hosts : Object.entries(inv.hosts ?? {}).map(([file, text]) => f(`hosts/${file}`, text)),
    probe,
    onParsed: inv.onParsed,
  });
  return r.ok ? { inventory: r.inventory, errors: [] as string[], issues: [] as Issue[] } : { inventory: undefined, errors: r.issues.filter((i) => i.severity === "error").map(show), issues: r.issues };
}

describe("files a class names", () => {
  it("relative to the class file, anywhere inside the root", () => {
    const { inventory, errors } = load({ classes: { p: "kind: prebuilt\nkernel: { path: ../boot/vmlinuz }\ninitrd: { path: ./i }\n" } });
    expect(errors).toEqual([]);
    expect(inventory!.classes[0]).toMatchObject({ kernel: { from: "path", path: "boot/vmlinuz" }, initrd: { from: "path", path: "classes/i" } });
  });

  it("a NixOS module may be a folder (its default.nix), written with or without a trailing slash", () => {
    const { inventory, errors } = load({ classes: { a: "kind: nixos\nmodules: [./mods, ./m.nix]\n", b: "kind: nixos\nmodules: [./mods/]\n" } });
    expect(errors).toEqual([]);
    expect(inventory!.classes.map((c) => c.name)).toEqual(["a", "b"]);
    expect(inventory!.classes[0]).toMatchObject({ modules: ["classes/mods", "classes/m.nix"] });
  });

  const cases: [string, string, { issue: string; hint: string | undefined }][] = [
    ["an absolute path", "/boot/vmlinuz", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "/boot/vmlinuz" points outside the inventory root', hint: "keep referenced files inside the repository, relative to the class file" }],
    ["the folder above the root", "../..", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "../.." points outside the inventory root', hint: "keep referenced files inside the repository, relative to the class file" }],
    ["a symlink out of the root", "./link", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "./link" resolves (through a symlink) outside the inventory root', hint: "copy the file into the repository" }],
    ["a file that is not there", "./nope", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "./nope" does not exist (looked for "classes/nope")', hint: "paths are relative to the class file" }],
    ["a folder where a file is needed", "./mods", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "./mods" is a folder, not a file', hint: undefined }],
    ["a FIFO", "./fifo", { issue: 'classes/p.yaml:2:17 classes.p.kernel.path: "./fifo" is not a regular file (a FIFO, socket or device)', hint: "name a regular file (or a symlink to one inside the root)" }],
  ];
  for (const [name, path, issue] of cases) {
    it(`refuses ${name}, with what to do about it`, () => {
      expect(load({ classes: { p: `kind: prebuilt\nkernel: { path: ${path} }\ninitrd: { path: ./i }\n` } }).issues.map(withHint)).toEqual([issue]);
    });
  }
});

describe("kernel parameters netbuild sets itself", () => {
  it("talos.config= and hostname= on a host: each refused at its entry, saying what to do instead", () => {
    const { issues } = load({ classes: { c: PREBUILT }, hosts: { "web1.yaml": `class: c\nmac: ${MAC}\nkernelParams: [quiet, talos.config=http://x/y, hostname=z]\n` } });
    expect(issues.map(withHint)).toEqual([
      { issue: 'hosts/web1.yaml:3:23 hosts.web1.kernelParams[1]: "talos.config=http://x/y": netbuild sets talos.config= for each Talos host', hint: "remove it; set `talos.configBaseUrl` in netbuild.yaml instead" },
      { issue: "hosts/web1.yaml:3:48 hosts.web1.kernelParams[2]: \"hostname=z\": netbuild sets hostname= from the host's name", hint: "remove it; rename the host instead" },
    ]);
  });

  it("a list with a bad entry: that entry reported at its index, the valid ones kept in order", () => {
    const c = new Collector();
    const doc = new YamlDoc("classes/c.yaml", "kernelParams: [quiet, 'a b', console=ttyS0]\n");
    expect(validParams(kernelParamsOf(doc, [], "classes.c", ["quiet", "a b", "console=ttyS0"], c))).toEqual(["quiet", "console=ttyS0"]);
    expect(c.issues.map(show)).toEqual(['classes/c.yaml:1:23 classes.c.kernelParams[1]: "a b" contains a space']);
  });
});

describe("SSH keys", () => {
  it("each key once, in the order written", () => {
    const { inventory, errors } = load({ classes: { n: `kind: nixos\nmodules: [./m.nix]\nssh:\n  authorizedKeys:\n    - ${KEY}\n    - ${OTHER_KEY}\n    - ${KEY}\n` } });
    expect(errors).toEqual([]);
    expect(inventory!.classes[0]).toMatchObject({ sshAuthorizedKeys: [KEY, OTHER_KEY] });
  });
});

describe("host and class names from file names", () => {
  it("a host file may end in .yml", () => {
    const { inventory, errors } = load({ classes: { c: PREBUILT }, hosts: { "web1.yml": `class: c\nmac: ${MAC}\n` } });
    expect(errors).toEqual([]);
    expect(inventory!.hosts.map((h) => [h.name, h.file])).toEqual([["web1", "hosts/web1.yml"]]);
  });

  it("only the extension comes off, and only the last one", () => {
    expect(["hosts/web1.yaml", "hosts/web1.yml", "classes/a.yml.yaml", "hosts/notes.yaml.bak", "web1"].map(baseName)).toEqual(["web1", "web1", "a.yml", "notes.yaml.bak", "web1"]);
  });
});

describe("one mistake is reported once, and hides nothing else", () => {
  it("a host whose class has the wrong type is still checked: its missing MAC is reported too", () => {
    expect(load({ classes: { c: PREBUILT }, hosts: { "solo.yaml": "class: 5\n" } }).errors).toEqual(["hosts/solo.yaml:1:1 hosts.solo: no MAC address", "hosts/solo.yaml:1:8 hosts.solo.class: expected string, got number 5"]);
  });

  it("a wrong MAC silences only its own host, even for a host whose name starts with that host's name", () => {
    expect(load({ classes: { c: PREBUILT }, hosts: { "all.yaml": "hosts:\n  db: { class: c, mac: 5 }\n  dbmac: { class: c }\n" } }).errors).toEqual(["hosts/all.yaml:2:24 hosts.db.mac: expected string, got number 5", "hosts/all.yaml:3:10 hosts.dbmac: no MAC address"]);
  });

  it("a Talos host is not also 'without a config URL' when netbuild.yaml's Talos settings have an error", () => {
    expect(load({ site: "talos: { configBaseUrl: 5 }\n", classes: { t: TALOS }, hosts: { "t1.yaml": `class: t\nmac: ${MAC}\n` } }).errors).toEqual(["netbuild.yaml:1:25 site.talos.configBaseUrl: expected string, got number 5"]);
  });

  it("an unknown key inside a setting: the setting's other fields and the class's other mistakes still count", () => {
    expect(load({ classes: { p: "kind: prebuilt\nkernelParams: [hostname=x]\nkernel: { path: ./k, sha: x }\ninitrd: { path: ./i }\n" } }).errors).toEqual([
      "classes/p.yaml:2:16 classes.p.kernelParams[0]: \"hostname=x\": netbuild sets hostname= from the host's name",
      'classes/p.yaml:3:22 classes.p.kernel.sha: unknown key "sha"',
    ]);
  });

  it("an unknown key in an entry of a list: the other entries and the class's other mistakes still count", () => {
    const meta = "  schematic: { customization: { meta: [{ key: 10, value: a, extra: 1 }, { key: 11, value: b }] } }\n";
    expect(load({ classes: { t: TALOS.replace("talos:\n", `kernelParams: [hostname=x]\ntalos:\n${meta}`) } }).errors).toEqual([
      "classes/t.yaml:2:16 classes.t.kernelParams[0]: \"hostname=x\": netbuild sets hostname= from the host's name",
      'classes/t.yaml:4:61 classes.t.talos.schematic.customization.meta[0].extra: unknown key "extra"',
    ]);
  });
});

describe("warnings", () => {
  it("come with their hint, and do not stop the load", () => {
    const { inventory } = load({ classes: { t: TALOS } });
    expect(inventory!.warnings.map(withHint)).toEqual([
      {
        issue: "classes/t.yaml:3:3 classes.t.talos.hashes: not pinned (kernel, initramfs, cmdline): this class cannot be built until these hashes are set",
        hint: "run `netbuild pin --class t` (it downloads them from https://factory.talos.dev and writes their hashes into classes/t.yaml; `netbuild talos schematic t` shows the URLs)",
      },
    ]);
  });
});

describe("the parse cache", () => {
  it("is told the data of each file parsed cleanly and not already known", () => {
    const parsed: [string, unknown][] = [];
    const hosts = [{ path: "hosts/known.yaml", text: `class: c\nmac: ${MAC}\n`, known: { data: { class: "c", mac: MAC } } }, f("hosts/broken.yaml", "class: [\n")];
    const { errors } = load({ classes: { c: PREBUILT }, hosts, onParsed: (file, data) => parsed.push([file.path, data]) });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^hosts\/broken\.yaml:2:1 .*YAML syntax/);
    expect(parsed).toEqual([["classes/c.yaml", { kind: "prebuilt", kernel: { path: "./k" }, initrd: { path: "./i" } }]]);
  });
});

describe("a record key its check refuses", () => {
  it("a Talos volume of another name: that entry reported, and every other setting next to it still checked", () => {
    const host = 'class: tw\nmac: "52:54:00:00:00:01"\ntalos:\n  volumes:\n    STATE: { maxSize: 10GB }\n    EPHEMERAL: { maxSize: 10GB }\n  patches: [../classes/nope]\n';
    const { errors } = load({ site: "talos: { configBaseUrl: https://b/t, baseConfigs: { worker: w.yaml } }\n", classes: { tw: TALOS }, hosts: { "h1.yaml": host } });
    expect(errors).toEqual([
      'hosts/h1.yaml:5:5 hosts.h1.talos.volumes.STATE: expected a system volume Talos lets VolumeConfig size: EPHEMERAL or IMAGE-CACHE (got "STATE")',
      'hosts/h1.yaml:7:13 hosts.h1.talos.patches[0]: "../classes/nope" does not exist (looked for "classes/nope")',
    ]);
  });
});
