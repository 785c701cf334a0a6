// classes/<name>.yaml as the loader reads it (core/classes.ts): prebuilt artifacts by path or by
// pinned URL, NixOS modules, the files they name, and where each mistake is reported. Every error
// is listed, so a mistake reported twice, or a second message that follows from the first, fails.
import { describe, expect, it } from "vitest";
import { loadInventory } from "../../src/core/inventory.ts";
import type { InventoryFile, Probe } from "../../src/core/inventory-source.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });
const SRI = `sha256-${"A".repeat(42)}+=`;
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA me";

/** The files a test's inventory has (by path from the root): a folder ends in `/`. */
function probeOf(files: string[]): Probe {
  return (rel) => (files.includes(rel) ? "file" : files.includes(`${rel}/`) ? "dir" : rel === "classes/fifo" ? "special" : "missing");
}

function load(classes: Record<string, string> | InventoryFile[], hosts = "", files: string[] = ["classes/k", "classes/i", "classes/m.nix", "classes/mods/"]) {
  const r = loadInventory({
    site: undefined,
    classes: Array.isArray(classes) ? classes : Object.entries(classes).map(([name, text]) => f(`classes/${name}.yaml`, text)),
    hosts: hosts ? [f("hosts/all.yaml", hosts)] : [],
    probe: probeOf(files),
  });
  const show = (i: { where: { file: string; line?: number | undefined; col?: number | undefined; field?: string | undefined }; message: string }) => `${i.where.file}:${i.where.line ?? "-"}:${i.where.col ?? "-"} ${i.where.field}: ${i.message}`;
  return r.ok ? { classes: r.inventory.classes, errors: [] as string[] } : { classes: undefined, errors: r.issues.filter((i) => i.severity === "error").map(show) };
}

const prebuilt = (kernel: string, initrd = "{ path: ./i }") => `kind: prebuilt\nkernel: ${kernel}\ninitrd: ${initrd}\n`;

describe("prebuilt artifacts", () => {
  it("a file next to the class, or a URL with its hash", () => {
    const { classes } = load({ p: prebuilt("{ path: ./k }", `{ url: "https://x/initrd", hash: "${SRI}" }`) });
    expect(classes).toEqual([{ name: "p", file: "classes/p.yaml", description: undefined, kernelParams: [], kind: "prebuilt", kernel: { from: "path", path: "classes/k" }, initrd: { from: "url", url: "https://x/initrd", hash: SRI } }]);
  });

  const cases: [string, string, string[]][] = [
    ["both path and url", `{ path: ./k, url: "https://x/k", hash: "${SRI}" }`, ["classes/p.yaml:2:9 classes.p.kernel: give exactly one of `path` or `url`"]],
    ["neither", "{}", ["classes/p.yaml:2:9 classes.p.kernel: give exactly one of `path` or `url`"]],
    ["a hash with a path", `{ path: ./k, hash: "${SRI}" }`, ["classes/p.yaml:2:28 classes.p.kernel.hash: `hash` goes with `url`; a local file is hashed by Nix itself"]],
    ["a URL without a hash", '{ url: "https://x/k" }', ["classes/p.yaml:2:16 classes.p.kernel.url: a URL without a pinned hash"]],
    ["a file that is not there", "{ path: ./nope }", ['classes/p.yaml:2:17 classes.p.kernel.path: "./nope" does not exist (looked for "classes/nope")']],
    ["a folder", "{ path: ./mods }", ['classes/p.yaml:2:17 classes.p.kernel.path: "./mods" is a folder, not a file']],
    ["a FIFO", "{ path: ./fifo }", ['classes/p.yaml:2:17 classes.p.kernel.path: "./fifo" is not a regular file (a FIFO, socket or device)']],
    ["a file outside the root", "{ path: ../../k }", ['classes/p.yaml:2:17 classes.p.kernel.path: "../../k" points outside the inventory root']],
  ];
  for (const [name, kernel, errors] of cases) {
    it(`refuses ${name}, once`, () => {
      expect(load({ p: prebuilt(kernel) }).errors).toEqual(errors);
    });
  }

  it("both artifacts wrong: both reported", () => {
    expect(load({ p: prebuilt("{}", "{ path: ./nope }") }).errors).toEqual(["classes/p.yaml:2:9 classes.p.kernel: give exactly one of `path` or `url`", 'classes/p.yaml:3:17 classes.p.initrd.path: "./nope" does not exist (looked for "classes/nope")']);
  });
});

describe("NixOS modules", () => {
  it("files and folders (a folder's default.nix), relative to the class file, in order", () => {
    const { classes } = load({ n: `kind: nixos\nmodules: [./mods, ./m.nix]\nssh: { authorizedKeys: ["${KEY}"] }\n` });
    expect(classes).toEqual([{ name: "n", file: "classes/n.yaml", description: undefined, kernelParams: [], kind: "nixos", modules: ["classes/mods", "classes/m.nix"], system: "x86_64-linux", sshAuthorizedKeys: [KEY] }]);
  });

  it("each module that is not there is reported at its entry", () => {
    expect(load({ n: "kind: nixos\nmodules:\n  - ./m.nix\n  - ./gone.nix\n  - ../../etc/x.nix\n" }).errors).toEqual(['classes/n.yaml:4:5 classes.n.modules[1]: "./gone.nix" does not exist (looked for "classes/gone.nix")', 'classes/n.yaml:5:5 classes.n.modules[2]: "../../etc/x.nix" points outside the inventory root']);
  });
});

describe("class files", () => {
  it("a file that cannot be read: one error naming it", () => {
    expect(load([{ path: "classes/p.yaml", text: "", problem: { kind: "denied" } }]).errors).toEqual(['classes/p.yaml:-:- classes.p: "p.yaml" cannot be read: permission denied']);
  });

  it("YAML that does not parse: its syntax error only, not also every missing field", () => {
    const { errors } = load({ p: "kind: prebuilt\nkernel: { path: ./k\n" });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^classes\/p\.yaml:\d+:\d+ /);
  });

  it("a file name that is no class name: reported at the file, and its fields still checked", () => {
    expect(load([f("classes/Bad Name.yaml", `${prebuilt("{ path: ./k }")}kernelparams: []\n`)]).errors).toEqual([
      'classes/Bad Name.yaml:1:1 classes["Bad Name"]: the class file name "Bad Name.yaml" does not give a valid class name',
      'classes/Bad Name.yaml:4:1 classes["Bad Name"].kernelparams: unknown key "kernelparams"',
    ]);
  });

  it("two files for one class (foo.yaml and foo.yml) are refused at the second, naming both; the first is checked", () => {
    const { errors } = load([f("classes/p.yaml", prebuilt("{ path: ./k }")), f("classes/p.yml", prebuilt("{ path: ./k }")), f("classes/q.yml", `${prebuilt("{ path: ./k }")}kernelparams: []\n`)]);
    expect(errors).toEqual([
      "classes/p.yml:1:1 classes.p: class p is defined twice: in classes/p.yaml and in classes/p.yml",
      'classes/q.yml:4:1 classes.q.kernelparams: unknown key "kernelparams"',
    ]);
    const r = loadInventory({ site: undefined, classes: [f("classes/p.yaml", prebuilt("{ path: ./k }")), f("classes/p.yml", prebuilt("{ path: ./k }"))], hosts: [], probe: probeOf(["classes/k", "classes/i"]) });
    expect(r.ok ? [] : r.issues.map((i) => i.hint)).toEqual(["keep one of the two files (each class is one file, classes/p.yaml)"]);
  });

  it("a wipe flag on a class is refused (it would wipe every machine of the class), and the rest still checked", () => {
    expect(load({ p: `provision: { disks: true }\n${prebuilt("{}")}` }).errors).toEqual(["classes/p.yaml:1:12 classes.p.provision: provisioning flags cannot be set on a class", "classes/p.yaml:3:9 classes.p.kernel: give exactly one of `path` or `url`"]);
  });

  it("a class with an error is not there for its hosts: nothing more is said of them", () => {
    const hosts = `hosts:\n  h1: { class: p, mac: 52:54:00:00:00:01, ssh: { authorizedKeys: ["${KEY}"] } }\n`;
    expect(load({ p: `${prebuilt("{ path: ./k }")}kernelParams: ["a b"]\n` }, hosts).errors).toEqual([expect.stringMatching(/^classes\/p\.yaml:4:\d+ classes\.p\.kernelParams\[0\]: /)]);
    // The same class without the error: the host's ssh is refused, as on any prebuilt class.
    expect(load({ p: prebuilt("{ path: ./k }") }, hosts).errors).toEqual([expect.stringMatching(/^hosts\/all\.yaml:2:\d+ hosts\.h1\.ssh: `ssh` sets who may log in to a NixOS machine, and class p is a prebuilt class$/)]);
  });
});
