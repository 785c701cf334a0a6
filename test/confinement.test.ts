// "Never touch what is not netbuild's": netbuild writes and deletes only inside out/ and a target's
// folder, and only what it recorded. Each case below was a real bug on main: a hand-edited manifest
// entry or a folder swapped for a symlink steered a write, rename or removal outside; a damaged
// manifest ended in a stack trace; two builds on one out/ left a manifest that lies. Every refusal is
// a conflict (exit 2) whose message names the offending path and what is there, with no stack trace,
// and leaves everything as it was: a "victim" folder outside (someone else's files, some named like
// what netbuild writes) and out/ or the target, checked by checksum before and after.
import { createHash } from "node:crypto";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, cliProcess, inventory, tempDir, treeChecksum, type CliRun } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const noNix = missing({ commands: ["nix-build"] });
const noSsh = noNix ?? missing({ commands: ["ssh", "ssh-keygen"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });

const MANIFEST = ".netbuild/manifest.json";
const DEPLOYED = ".netbuild/deployed.json";

/** A small prebuilt inventory (like bad-input's BASE); its site file is written per world (siteFile). */
const BASE: Record<string, string> = {
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
  "classes/demo/kernel": "not really a kernel (confinement)\n",
  "classes/demo/initrd": "not really an initrd (confinement)\n",
  "hosts/h1.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
  "hosts/h2.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\n',
};

/** Someone else's folder: a few files, some named exactly like what netbuild writes (a host script, by-mac entries). */
const VICTIM: Record<string, string> = {
  file: "precious: not netbuild's\n",
  x: "also not netbuild's\n",
  "h1/ipxe": "#!ipxe\necho someone else's h1 script\n",
  "52-54-00-00-00-01/ipxe": "#!ipxe\necho a folder named like a copy-mode by-mac entry\n",
  "52-54-00-00-00-03": "a file named like a by-mac entry\n",
  ".file.netbuild-tmp": "named like netbuild's temporary file for `file`\n",
};

/**
 * One test's world, side by side in a temp folder: `root/` (the inventory, built into `root/out/`),
 * `served/` (the local target `here`, deployed once), and `victim/` (not netbuild's).
 */
interface World {
  dir: string;
  root: string;
  out: string;
  served: string;
  victim: string;
}

function worldAt(dir: string): World {
  return { dir, root: path.join(dir, "root"), out: path.join(dir, "root/out"), served: path.join(dir, "served"), victim: path.join(dir, "victim") };
}

let template: World;

/** The site file: one local target, `here`, the world's `served/` (a target path may not hold `..`, so it is absolute). */
function siteFile(w: World): void {
  writeFileSync(path.join(w.root, "netbuild.yaml"), `targets:\n  here: ${w.served}\n`);
}

/** A private copy of the built-and-deployed template, with a fresh victim beside it. */
function freshWorld(options: { deployed?: boolean } = {}): World {
  const w = worldAt(tempDir("netbuild-confine-"));
  cpSync(template.root, w.root, { recursive: true, verbatimSymlinks: true });
  siteFile(w);
  if (options.deployed !== false) cpSync(template.served, w.served, { recursive: true, verbatimSymlinks: true });
  for (const [rel, text] of Object.entries(VICTIM)) {
    mkdirSync(path.dirname(path.join(w.victim, rel)), { recursive: true });
    writeFileSync(path.join(w.victim, rel), text);
  }
  return w;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/**
 * What a tree serves plus what netbuild recorded about it: every path outside `.netbuild/`, and the
 * record file's bytes. (A lock file netbuild creates and removes in `.netbuild/` does not count.)
 */
function stateOf(dir: string, record: string): string {
  const rec = path.join(dir, record);
  return `${treeChecksum(dir, [".netbuild"])} ${existsSync(rec) ? sha256(readFileSync(rec)) : "no record"}`;
}

/** Replaces `<dir>/<name>` (a folder) by a symlink to `to`. */
function swapForLink(dir: string, name: string, to: string): void {
  rmSync(path.join(dir, name), { recursive: true, force: true });
  symlinkSync(to, path.join(dir, name));
}

function editJson(file: string, edit: (data: Record<string, unknown>) => void): void {
  const data = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(data);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}

function setHost(w: World, host: string, body: string): void {
  writeFileSync(path.join(w.root, "hosts", `${host}.yaml`), body);
}

/** Matches `name` as a whole path (or the last part of one), not as the start of a longer path: `by-mac`, not `by-mac/52-…`. */
function mentions(name: string): RegExp {
  const lit = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\w.-])${lit}(?!/?[\\w.-])`);
}

/** Any one of these: an entry may be named by its value (`../victim/x`) or by where it is in the file (`pending[0]`). */
function oneOf(...alternatives: (string | RegExp)[]): RegExp {
  return new RegExp(alternatives.map((a) => (typeof a === "string" ? mentions(a).source : a.source)).join("|"));
}

const A_LINK = /symlink|symbolic link/i;

/**
 * A conflict: exit 2, a message naming each of `names` (strings are matched as whole paths), no
 * stack trace. Soft, so a run reports every way it falls short, not only the first.
 */
function expectRefusal(r: CliRun, names: (string | RegExp)[], label = "") {
  const tag = label ? `${label}: ` : "";
  expect.soft(r.code, `${tag}exit code (stderr:\n${r.stderr})`).toBe(2);
  for (const n of names) expect.soft(r.stderr, `${tag}stderr names ${String(n)}`).toMatch(typeof n === "string" ? mentions(n) : n);
  expect.soft(r.stderr, `${tag}no internal error`).not.toContain("internal error");
  expect.soft(r.stderr, `${tag}no stack frame`).not.toContain("    at ");
}

/** Takes the checksums of the victim and of `tree` (with its record file) now; `.unchanged()` compares. */
function snapshot(w: World, tree: { dir: string; record: string }) {
  const victim = treeChecksum(w.victim);
  const state = stateOf(tree.dir, tree.record);
  return {
    unchanged(label = "") {
      const tag = label ? `${label}: ` : "";
      expect.soft(treeChecksum(w.victim), `${tag}the victim folder outside is untouched`).toBe(victim);
      expect.soft(stateOf(tree.dir, tree.record), `${tag}${path.basename(tree.dir)}/ is unchanged`).toBe(state);
    },
  };
}

/** Files of `dir`, recursively, as `rel` paths (links listed, not followed). */
function listTree(dir: string, rel = ""): string[] {
  return readdirSync(path.join(dir, rel)).flatMap((name) => {
    const r = rel ? `${rel}/${name}` : name;
    return lstatSync(path.join(dir, r)).isDirectory() ? listTree(dir, r) : [r];
  });
}

/** Entries of out/'s manifest that do not match the disk (files and artifacts by sha256, links by target). */
function manifestMismatches(out: string): string[] {
  const m = JSON.parse(readFileSync(path.join(out, MANIFEST), "utf8")) as { entries: Record<string, { kind: string; sha256?: string; target?: string }> };
  const bad: string[] = [];
  for (const [rel, e] of Object.entries(m.entries)) {
    const abs = path.join(out, rel);
    const st = lstatOrUndefined(abs);
    if (e.kind === "symlink") {
      if (!st?.isSymbolicLink() || readlinkSync(abs) !== e.target) bad.push(`${rel} (link)`);
    } else if (!st?.isFile() || sha256(readFileSync(abs)) !== e.sha256) bad.push(`${rel} (${e.kind})`);
  }
  return bad;
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

describe.skipIf(noNix)("confinement: netbuild touches only what it recorded, inside out/ and the target", () => {
  beforeAll(async () => {
    // One built and deployed tree; each test copies it (and gets its own victim) in a few milliseconds.
    template = worldAt(tempDir("netbuild-confine-template-"));
    cpSync(inventory(BASE), template.root, { recursive: true });
    siteFile(template);
    const built = await cli(["build"], template.root);
    expect(built.code, built.stderr).toBe(0);
    const deployed = await cli(["deploy"], template.root);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(existsSync(path.join(template.served, DEPLOYED))).toBe(true);
  });
  afterAll(cleanupTempDirs);

  describe("out/'s manifest is checked before anything is deleted", () => {
    const cases: { name: string; edit: (w: World) => void; names: (w: World) => (string | RegExp)[] }[] = [
      {
        name: "an entry that climbs out of out/ (../../victim/file)",
        edit: (w) => editJson(path.join(w.out, MANIFEST), (m) => void ((m["entries"] as Record<string, unknown>)[path.relative(w.out, path.join(w.victim, "file"))] = { kind: "file", sha256: sha256(VICTIM["file"]!) })),
        names: (w) => [MANIFEST, path.relative(w.out, path.join(w.victim, "file"))],
      },
      {
        name: "an absolute entry",
        edit: (w) => editJson(path.join(w.out, MANIFEST), (m) => void ((m["entries"] as Record<string, unknown>)[path.join(w.victim, "file")] = { kind: "file", sha256: sha256(VICTIM["file"]!) })),
        names: (w) => [MANIFEST, path.join(w.victim, "file")],
      },
      {
        name: "a manifest that is not valid JSON",
        edit: (w) => writeFileSync(path.join(w.out, MANIFEST), '{ "format": 1, "entries": { "boot.ipxe": '),
        names: () => [MANIFEST],
      },
      {
        name: "a manifest whose entries are a number",
        edit: (w) => editJson(path.join(w.out, MANIFEST), (m) => void (m["entries"] = 5)),
        names: () => [MANIFEST, /\bentries\b/],
      },
    ];
    for (const c of cases) {
      it(`refuses ${c.name}: exit 2 naming ${MANIFEST}, nothing deleted or written`, async () => {
        const w = freshWorld();
        c.edit(w);
        const before = snapshot(w, { dir: w.out, record: MANIFEST });
        const r = await cli(["build"], w.root);
        before.unchanged();
        expectRefusal(r, c.names(w));
        expect(existsSync(path.join(w.victim, "file")), "victim/file is still there").toBe(true);
      });
    }
  });

  describe("out/: every folder on the way is a real folder", () => {
    it("refuses a by-mac that is a symlink to a foreign folder, and leaves that folder untouched", async () => {
      const w = freshWorld();
      swapForLink(w.out, "by-mac", w.victim);
      // A new host: the build must write by-mac/52-54-00-00-00-03 (and would rewrite the others).
      setHost(w, "h3", 'class: demo\nmac: "52:54:00:00:00:03"\n');
      const before = snapshot(w, { dir: w.out, record: MANIFEST });
      const r = await cli(["build"], w.root);
      before.unchanged();
      expectRefusal(r, ["by-mac", A_LINK]);
    });

    it("names every obstacle of the whole tree in one refusal, in the tree's order, each once", async () => {
      const w = freshWorld();
      swapForLink(w.out, "by-host/h1", w.victim);
      rmSync(path.join(w.out, "by-mac/52-54-00-00-00-02"));
      writeFileSync(path.join(w.out, "by-mac/52-54-00-00-00-02"), "a file where a link goes\n");
      rmSync(path.join(w.out, "by-class/demo/ipxe"));
      mkdirSync(path.join(w.out, "by-class/demo/ipxe"));
      // A new host whose folder is a file and whose by-mac entry is someone's folder.
      setHost(w, "h3", 'class: demo\nmac: "52:54:00:00:00:03"\n');
      writeFileSync(path.join(w.out, "by-host/h3"), "a file where a folder goes\n");
      mkdirSync(path.join(w.out, "by-mac/52-54-00-00-00-03"));
      writeFileSync(path.join(w.out, "by-mac/52-54-00-00-00-03/notes"), "mine\n");
      const before = snapshot(w, { dir: w.out, record: MANIFEST });
      const r = await cli(["build"], w.root);
      before.unchanged();
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `${w.out}: by-class/demo/ipxe is a folder, where netbuild writes a file; by-host/h1 is a symlink, where netbuild needs a real folder; by-host/h3 is a file, where netbuild needs a real folder; by-mac/52-54-00-00-00-02 is a file, where netbuild writes a link; by-mac/52-54-00-00-00-03 is a folder holding a file netbuild did not write ("notes"), where netbuild puts a link; nothing was changed`,
      );
    });

    it("refuses a by-host that is a symlink to a foreign folder, and leaves that folder's h1/ipxe as it was", async () => {
      const w = freshWorld();
      swapForLink(w.out, "by-host", w.victim);
      setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
      const before = snapshot(w, { dir: w.out, record: MANIFEST });
      const r = await cli(["build"], w.root);
      before.unchanged();
      expectRefusal(r, ["by-host", A_LINK]);
      expect(readFileSync(path.join(w.victim, "h1/ipxe"), "utf8")).toBe(VICTIM["h1/ipxe"]);
    });
  });

  describe("a local target: every folder on the way is a real folder", () => {
    it("refuses a fresh target whose by-class is a symlink to a foreign folder, and writes nothing there", async () => {
      const w = freshWorld({ deployed: false });
      mkdirSync(w.served);
      symlinkSync(w.victim, path.join(w.served, "by-class"));
      const before = snapshot(w, { dir: w.served, record: DEPLOYED });
      const r = await cli(["deploy", "--to", w.served], w.root);
      before.unchanged();
      expectRefusal(r, ["by-class", A_LINK]);
      expect(existsSync(path.join(w.victim, "demo"))).toBe(false);
    });

    it("refuses a deployed target whose by-host was swapped for a look-alike symlink, and leaves the look-alike untouched", async () => {
      const w = freshWorld();
      // The victim looks exactly like the by-host it replaces.
      cpSync(path.join(w.served, "by-host"), w.victim, { recursive: true });
      swapForLink(w.served, "by-host", w.victim);
      setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
      const before = snapshot(w, { dir: w.served, record: DEPLOYED });
      const r = await cli(["deploy", "--to", w.served], w.root);
      before.unchanged();
      expectRefusal(r, ["by-host", A_LINK]);
      expect(readFileSync(path.join(w.victim, "h1/ipxe"), "utf8")).not.toContain("quiet");
    });
  });

  describe("a target's deployed.json is checked before it is acted on", () => {
    const COMMANDS = [["deploy"], ["gc"], ["rollback"], ["status"], ["verify"]];
    const cases: { name: string; edit: (w: World) => void; names: (w: World) => (string | RegExp)[] }[] = [
      {
        name: "an entry that climbs out of the target (../victim/file)",
        edit: (w) =>
          editJson(path.join(w.served, DEPLOYED), (d) => {
            // An artifact no generation references: exactly what deploy and gc delete.
            (d["entries"] as Record<string, unknown>)[path.relative(w.served, path.join(w.victim, "file"))] = { kind: "artifact", size: VICTIM["file"]!.length, sha256: sha256(VICTIM["file"]!) };
          }),
        names: (w) => [DEPLOYED, path.relative(w.served, path.join(w.victim, "file"))],
      },
      {
        name: "an absolute path in pending",
        edit: (w) => editJson(path.join(w.served, DEPLOYED), (d) => void (d["pending"] = [path.join(w.victim, "file")])),
        names: (w) => [DEPLOYED, oneOf(path.join(w.victim, "file"), /pending\[0\]/)],
      },
      {
        name: "a kept generation whose kernel climbs out of the target (../victim/x)",
        edit: (w) =>
          editJson(path.join(w.served, DEPLOYED), (d) => {
            const demo = (d["classes"] as Record<string, { generations: Record<string, unknown>[] }>)["demo"]!;
            const script = "#!ipxe\nkernel ../../../victim/x\nboot\n";
            demo.generations.push({ id: sha256(script).slice(0, 12), kernel: path.relative(w.served, path.join(w.victim, "x")), initrd: path.relative(w.served, path.join(w.victim, "file")), script, sha256: sha256(script) });
          }),
        names: (w) => [DEPLOYED, oneOf(path.relative(w.served, path.join(w.victim, "x")), /generations\[1\]\.kernel/)],
      },
      {
        name: "a deployed.json that is not valid JSON",
        edit: (w) => writeFileSync(path.join(w.served, DEPLOYED), '{ "format": 1, "entries": '),
        names: () => [DEPLOYED],
      },
      {
        name: "a deployed.json whose entries are a number",
        edit: (w) => editJson(path.join(w.served, DEPLOYED), (d) => void (d["entries"] = 5)),
        names: () => [DEPLOYED, /\bentries\b/],
      },
    ];
    for (const c of cases) {
      it(`refuses ${c.name} in deploy, gc, rollback, status and verify, and touches nothing`, async () => {
        const w = freshWorld();
        c.edit(w);
        // A change to deploy, so that deploy has work to do.
        setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
        for (const command of COMMANDS) {
          const before = snapshot(w, { dir: w.served, record: DEPLOYED });
          const r = await cli(command, w.root);
          before.unchanged(command[0]);
          expectRefusal(r, c.names(w), command[0]);
        }
      });
    }
  });

  // 200 hosts make each build's write phase long enough that unlocked builds overlap in most rounds
  // (on main: 1 to 3 rounds of 5 mismatched, every run); about 5 s a round on 2 cores.
  const HOSTS = 200;
  it("serialises two builds racing on one --out: both succeed, and the manifest matches every file on disk", async () => {
    // Two inventories with the same hosts but different host scripts, built at the same instant into
    // one out/: with a lock, one waits for the other and the tree is wholly one build's.
    const w = freshWorld({ deployed: false });
    const shared = path.join(w.dir, "shared-out");
    const hex = (n: number) => n.toString(16).padStart(2, "0");
    const fleet = (tag: string) =>
      `hosts:\n${Array.from({ length: HOSTS }, (_, i) => `  n${String(i).padStart(3, "0")}:\n    class: demo\n    mac: "52:54:00:01:${hex(i >> 8)}:${hex(i & 255)}"\n    kernelParams: [race=${tag}]\n`).join("")}`;
    const roots = ["a", "b"].map((name) => {
      const root = path.join(w.dir, name);
      cpSync(w.root, root, { recursive: true, verbatimSymlinks: true });
      rmSync(path.join(root, "out"), { recursive: true });
      return root;
    });
    writeFileSync(path.join(roots[0]!, "hosts/fleet.yaml"), fleet("a0"));
    const first = await cli(["build", "--out", shared], roots[0]!);
    expect(first.code, first.stderr).toBe(0);

    const problems: string[] = [];
    for (let round = 1; round <= 5; round++) {
      roots.forEach((root, i) => writeFileSync(path.join(root, "hosts/fleet.yaml"), fleet(`${"ab"[i]}${round}`)));
      const runs = await Promise.all(roots.map((root) => cliProcess(["build", "--out", shared], root)));
      runs.forEach((r, i) => {
        if (r.code !== 0) problems.push(`round ${round}: build ${"ab"[i]} exited ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      });
      const bad = manifestMismatches(shared);
      if (bad.length > 0) problems.push(`round ${round}: ${bad.length} manifest entries do not match the disk, e.g. ${bad.slice(0, 3).join(", ")}`);
    }
    expect(problems).toEqual([]);
  }, 180_000);

  it("removes the temporary files a killed build left next to an artifact (old and new names)", async () => {
    const w = freshWorld({ deployed: false });
    const clean = stateOf(w.out, MANIFEST);
    const manifest = JSON.parse(readFileSync(path.join(w.out, MANIFEST), "utf8")) as { classes: { demo: { initrd: { path: string } } } };
    const folder = path.join(w.out, path.dirname(manifest.classes.demo.initrd.path));
    const leftovers = [".initrd.tmp-0badc0de", ".initrd.netbuild-tmp"];
    for (const name of leftovers) writeFileSync(path.join(folder, name), "half an initrd");
    const r = await cli(["build"], w.root);
    expect(r.code, r.stderr).toBe(0);
    expect(listTree(folder).filter((n) => leftovers.includes(n))).toEqual([]);
    // Nothing else went with them.
    expect(stateOf(w.out, MANIFEST)).toBe(clean);
  });

  describe("--out must be a folder (or nothing yet)", () => {
    it("refuses an --out that is a regular file, and leaves the file as it was", async () => {
      const w = freshWorld({ deployed: false });
      const file = path.join(w.root, "not-a-folder");
      writeFileSync(file, "someone's file\n");
      const r = await cli(["build", "--out", "not-a-folder"], w.root);
      expectRefusal(r, ["not-a-folder"]);
      expect(readFileSync(file, "utf8")).toBe("someone's file\n");
    });

    it("refuses an --out that is a dangling symlink, and creates nothing where it points", async () => {
      const w = freshWorld({ deployed: false });
      const nowhere = path.join(w.dir, "nowhere/out");
      symlinkSync(nowhere, path.join(w.root, "dangling-out"));
      const r = await cli(["build", "--out", "dangling-out"], w.root);
      expectRefusal(r, ["dangling-out"]);
      expect(existsSync(path.join(w.dir, "nowhere"))).toBe(false);
      expect(readlinkSync(path.join(w.root, "dangling-out"))).toBe(nowhere);
    });
  });

  // The checkout's own .netbuild/ (generated Nix, the inventory cache, the GC roots) is under the same
  // rule: `generate` once cleared a linked .netbuild/nix, deleting the files of the folder it led to.
  describe("the checkout's .netbuild/: every folder on the way is a real folder", () => {
    const cases = [
      { link: ".netbuild", command: ["generate"] },
      { link: ".netbuild/nix", command: ["generate"] },
      { link: ".netbuild/nix", command: ["build"] },
      { link: ".netbuild/cache", command: ["plan"] },
      // Refused before the Nix expressions are written: "nothing was changed" must hold.
      { link: ".netbuild/gcroots", command: ["build"], unwritten: ".netbuild/nix" },
    ];
    for (const c of cases) {
      it(`refuses ${c.command.join(" ")} with ${c.link} a symlink to a foreign folder, and leaves that folder untouched`, async () => {
        const w = freshWorld({ deployed: false });
        swapForLink(w.root, c.link, w.victim);
        if (c.unwritten) rmSync(path.join(w.root, c.unwritten), { recursive: true });
        const victim = treeChecksum(w.victim);
        const r = await cli(c.command, w.root);
        if (c.unwritten) expect.soft(existsSync(path.join(w.root, c.unwritten)), `${c.unwritten} was not written`).toBe(false);
        expect.soft(treeChecksum(w.victim), "the victim folder is untouched").toBe(victim);
        expect.soft(readlinkSync(path.join(w.root, c.link)), "the link is left as it was").toBe(w.victim);
        expectRefusal(r, [c.link, A_LINK]);
      });
    }
  });

  it("never writes through a link planted at a fixed temporary name (a local target)", async () => {
    const w = freshWorld();
    for (const rel of ["by-host/h1/.ipxe.netbuild-tmp", ".netbuild/.deployed.json.netbuild-tmp"]) symlinkSync(path.join(w.victim, "file"), path.join(w.served, rel));
    setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
    const victim = treeChecksum(w.victim);
    const r = await cli(["deploy"], w.root);
    expect(r.code, r.stderr).toBe(0);
    expect(treeChecksum(w.victim)).toBe(victim);
    expect(lstatSync(path.join(w.served, "by-host/h1/ipxe")).isFile()).toBe(true);
    expect(readFileSync(path.join(w.served, "by-host/h1/ipxe"), "utf8")).toContain("quiet");
  });

  it("finishes a links → copy switch that a killed build left half-done, whichever mode the next build wants", async () => {
    for (const next of ["symlink", "copy"] as const) {
      const w = freshWorld({ deployed: false });
      // What a build killed switching to copy mode leaves: its manifest owns what it was writing
      // (pending), one by-mac entry already a folder of its own, the other still the old link.
      editJson(path.join(w.out, MANIFEST), (m) => void (m["pending"] = ["by-mac/52-54-00-00-00-01/ipxe", "by-mac/52-54-00-00-00-02/ipxe"]));
      rmSync(path.join(w.out, "by-mac/52-54-00-00-00-01"));
      mkdirSync(path.join(w.out, "by-mac/52-54-00-00-00-01"));
      writeFileSync(path.join(w.out, "by-mac/52-54-00-00-00-01/ipxe"), readFileSync(path.join(w.out, "by-host/h1/ipxe")));
      if (next === "copy") writeFileSync(path.join(w.root, "netbuild.yaml"), `links: copy\ntargets:\n  here: ${w.served}\n`);
      const r = await cli(["build"], w.root);
      expect(r.code, `${next}: ${r.stderr}`).toBe(0);
      for (const [mac, host] of [["52-54-00-00-00-01", "h1"], ["52-54-00-00-00-02", "h2"]]) {
        const st = lstatSync(path.join(w.out, "by-mac", mac!));
        expect(next === "copy" ? st.isDirectory() : st.isSymbolicLink(), `${next}: by-mac/${mac}`).toBe(true);
        expect(readFileSync(path.join(w.out, "by-mac", mac!, "ipxe"), "utf8")).toContain(`hostname=${host}`);
      }
      expect(manifestMismatches(w.out)).toEqual([]);
      expect((JSON.parse(readFileSync(path.join(w.out, MANIFEST), "utf8")) as { pending?: string[] }).pending).toBeUndefined();
    }
  });

  describe.skipIf(noSsh)("an SFTP target (a real sshd on loopback): every folder on the way is a real folder", () => {
    let sshd: Sshd;
    beforeAll(async () => {
      sshd = await startSshd();
    });
    afterAll(async () => {
      await sshd?.stop();
    });
    const sftpDeploy = (w: World) => cli(["deploy", "--to", `sftp://boot${w.served}`, "-F", sshd.sshConfig], w.root);

    it("refuses a fresh SFTP target whose by-class is a symlink to a foreign folder, and writes nothing there", async () => {
      const w = freshWorld({ deployed: false });
      mkdirSync(w.served);
      symlinkSync(w.victim, path.join(w.served, "by-class"));
      const before = snapshot(w, { dir: w.served, record: DEPLOYED });
      const r = await sftpDeploy(w);
      before.unchanged();
      expectRefusal(r, ["by-class", A_LINK]);
      expect(existsSync(path.join(w.victim, "demo"))).toBe(false);
    });

    it("never writes through a link planted at a fixed temporary name: the script, the record and an artifact upload (SFTP)", async () => {
      const w = freshWorld({ deployed: false });
      const good = await sftpDeploy(w);
      expect(good.code, good.stderr).toBe(0);
      const kernel = Object.keys((JSON.parse(readFileSync(path.join(w.served, DEPLOYED), "utf8")) as { entries: Record<string, { kind: string }> }).entries).find((p) => p.endsWith("/kernel"))!;
      rmSync(path.join(w.served, kernel));
      for (const rel of ["by-host/h1/.ipxe.netbuild-tmp", ".netbuild/.deployed.json.netbuild-tmp", `${path.posix.dirname(kernel)}/.kernel.netbuild-tmp`]) symlinkSync(path.join(w.victim, "file"), path.join(w.served, rel));
      setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
      const victim = treeChecksum(w.victim);
      const r = await cli(["deploy", "--to", `sftp://boot${w.served}`, "-F", sshd.sshConfig, "--verify"], w.root);
      expect(r.code, r.stderr).toBe(0);
      expect(treeChecksum(w.victim)).toBe(victim);
      for (const rel of ["by-host/h1/ipxe", DEPLOYED, kernel]) expect(lstatSync(path.join(w.served, rel)).isFile(), rel).toBe(true);
      expect(readFileSync(path.join(w.served, "by-host/h1/ipxe"), "utf8")).toContain("quiet");
    });

    it("refuses an SFTP target whose by-host was swapped for a look-alike symlink after a good deploy", async () => {
      const w = freshWorld({ deployed: false });
      const good = await sftpDeploy(w);
      expect(good.code, good.stderr).toBe(0);
      cpSync(path.join(w.served, "by-host"), w.victim, { recursive: true });
      swapForLink(w.served, "by-host", w.victim);
      setHost(w, "h1", 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
      const before = snapshot(w, { dir: w.served, record: DEPLOYED });
      const r = await sftpDeploy(w);
      before.unchanged();
      expectRefusal(r, ["by-host", A_LINK]);
      expect(readFileSync(path.join(w.victim, "h1/ipxe"), "utf8")).not.toContain("quiet");
    });
  });
});
