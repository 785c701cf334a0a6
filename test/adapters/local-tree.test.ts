// The tree writer (src/adapters/local-tree.ts, applyTree) on a real out/ folder, with trees made in
// memory (no Nix: artifacts come from files added to the real Nix store with `nix-store --add`): what
// stands in the way is refused before anything is written, naming it; nothing is written through a
// link or over something netbuild did not write; what it removes it recorded; what stopped builds
// left is cleaned up. In this process, so the mutation run counts it. The CLI side (build) is in
// test/tree.test.ts; every writer's confinement end to end in test/confinement.test.ts.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyTree, checkOutFolder, MANIFEST_PATH, outFileReader, readManifest, withOutLock, type TreeManifest } from "../../src/adapters/local-tree.ts";
import { quoted } from "../../src/core/excerpt.ts";
import { NEWER_FORMAT_HINT } from "../../src/core/records.ts";
import { inWriteOrder, sealInputs, type Tree, type TreeClass, type TreeEntry } from "../../src/core/tree.ts";
import { UserError } from "../../src/errors.ts";
import { boots, snapshot } from "../support/deploy-steps.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";
import { missing } from "../support/tools.ts";

const file = (p: string, content: string): TreeEntry => ({ kind: "file", layer: p === "boot.ipxe" ? "entry" : p.startsWith("by-mac/") ? "mac" : p.startsWith("by-host/") ? "host" : "class", path: p, content });
const link = (p: string, target: string): TreeEntry => ({ kind: "symlink", layer: "mac", path: p, target });
const tree = (...entries: TreeEntry[]): Tree => ({ entries, classes: [], skippedHosts: [], wipes: [] });

/** A small tree: boot.ipxe, one class script, hosts a and b with a by-mac link each (or copies, in copy mode). */
function hosts(names: string[], mode: "links" | "copy" = "links", version = "1"): Tree {
  const entries: TreeEntry[] = [file("boot.ipxe", "#!ipxe\nchain by-mac/${mac:hexhyp}/ipxe\n"), file("by-class/c/ipxe", `#!ipxe\nkernel k v${version}\n`)];
  for (const h of names) {
    const script = `#!ipxe\nset host ${h} v${version}\nchain ../../by-class/c/ipxe\n`;
    entries.push(file(`by-host/${h}/ipxe`, script));
    entries.push(mode === "links" ? link(`by-mac/m-${h}`, `../by-host/${h}`) : file(`by-mac/m-${h}/ipxe`, script));
  }
  return tree(...entries);
}

async function refusal(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

/** Builds `t` into a new out/ (and returns it with its manifest). */
async function built(t: Tree): Promise<{ out: string; manifest: TreeManifest }> {
  const out = path.join(tempDir(), "out");
  await applyTree(out, t, undefined);
  return { out, manifest: (await readManifest(out))! };
}

afterAll(cleanupTempDirs);

describe("applyTree: writing a tree into out/", () => {
  it("writes every entry and records it; again, nothing changes and the manifest is not rewritten; one changed script is the one write", async () => {
    const { out, manifest } = await built(hosts(["a", "b"]));
    expect(snapshot(out)).toMatchObject({ "by-mac/m-a": "-> ../by-host/a", "by-host/b/ipxe": expect.stringContaining("set host b v1") });
    expect(Object.keys(manifest.entries).sort()).toEqual(["boot.ipxe", "by-class/c/ipxe", "by-host/a/ipxe", "by-host/b/ipxe", "by-mac/m-a", "by-mac/m-b"]);
    const before = lstatSync(path.join(out, MANIFEST_PATH)).ino;
    const again = await applyTree(out, hosts(["a", "b"]), manifest);
    expect([again.written, again.removed, again.unchanged]).toEqual([[], [], 6]);
    expect(lstatSync(path.join(out, MANIFEST_PATH)).ino).toBe(before);
    const t = hosts(["a", "b"]);
    (t.entries.find((e) => e.path === "by-host/b/ipxe") as { content: string }).content += "# changed\n";
    const one = await applyTree(out, t, manifest);
    expect(one.written).toEqual(["by-host/b/ipxe"]);
    expect(readFileSync(path.join(out, "by-host/b/ipxe"), "utf8")).toContain("# changed");
    // The manifest records it as it now is (its hash and where it stands), and the next build trusts it.
    const after = (await readManifest(out))!;
    const st = lstatSync(path.join(out, "by-host/b/ipxe"), { bigint: true });
    expect(after.entries["by-host/b/ipxe"]).toEqual({ kind: "file", sha256: createHash("sha256").update(readFileSync(path.join(out, "by-host/b/ipxe"))).digest("hex"), size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString() });
    expect((await applyTree(out, t, after)).written).toEqual([]);
  });

  it("removes a host that went, its script, its link and its emptied folder, and nothing it did not record", async () => {
    const { out, manifest } = await built(hosts(["a", "b"]));
    writeFileSync(path.join(out, "by-host/b/notes.txt"), "mine\n");
    writeFileSync(path.join(out, "by-host/mine.txt"), "mine\n");
    const r = await applyTree(out, hosts(["a"]), manifest);
    expect(r.removed.sort()).toEqual(["by-host/b/ipxe", "by-mac/m-b"]);
    expect(existsSync(path.join(out, "by-mac/m-b"))).toBe(false);
    expect(readdirSync(path.join(out, "by-host/b"))).toEqual(["notes.txt"]);
    expect(readFileSync(path.join(out, "by-host/mine.txt"), "utf8")).toBe("mine\n");
    const after = (await readManifest(out))!;
    expect(Object.keys(after.entries)).not.toContain("by-host/b/ipxe");
    // A folder emptied by the removal goes too.
    const next = await applyTree(out, tree(file("boot.ipxe", "x")), after);
    expect(next.removed).toContain("by-host/a/ipxe");
    expect(existsSync(path.join(out, "by-host/a"))).toBe(false);
    expect(existsSync(path.join(out, "by-host"))).toBe(true);
  });

  it("refuses, before writing anything, a link, a file or a special file where a folder goes, and a folder, a special file or a foreign link where a file or link goes, listing each once", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const elsewhere = tempDir();
    writeFileSync(path.join(elsewhere, "ipxe"), "keep\n");
    symlinkSync(elsewhere, path.join(out, "by-host/x"));
    writeFileSync(path.join(out, "by-host/y"), "a file\n");
    execFileSync("mkfifo", [path.join(out, "by-host/z")]);
    mkdirSync(path.join(out, "by-host/w/ipxe"), { recursive: true });
    execFileSync("mkfifo", [path.join(out, "by-class/fifo")]);
    symlinkSync(path.join(elsewhere, "ipxe"), path.join(out, "by-class/linked"));
    const before = snapshot(out);
    const t = hosts(["a", "x", "y", "z", "w"]);
    t.entries.push(file("by-host/x/other", "more\n"), file("by-class/fifo", "x"), file("by-class/linked", "x"));
    const e = await refusal(applyTree(out, t, manifest));
    expect([e.code, e.exitCode]).toEqual(["OUT_CONFLICT", 2]);
    expect(e.message).toBe(
      `${out}: ` +
        // In the tree's order; by-host/x once, though two paths lie behind it.
        [
          "by-host/x is a symlink, where netbuild needs a real folder",
          "by-host/y is a file, where netbuild needs a real folder",
          "by-host/z is a special file (device, FIFO or socket), where netbuild needs a real folder",
          "by-host/w/ipxe is a folder, where netbuild writes a file",
          "by-class/fifo is a special file (device, FIFO or socket), where netbuild writes a file",
          "by-class/linked is a symlink, where netbuild writes a file",
        ].join("; ") +
        "; nothing was changed",
    );
    expect(snapshot(out)).toEqual(before);
    expect(readFileSync(path.join(elsewhere, "ipxe"), "utf8")).toBe("keep\n");
    expect(await readManifest(out)).toEqual(manifest);
  });

  it("a link of its own where a file now goes is replaced, never followed; one of someone else's where a link goes is left and refused", async () => {
    const elsewhere = tempDir();
    writeFileSync(path.join(elsewhere, "target"), "keep\n");
    const { out, manifest } = await built(tree(file("boot.ipxe", "x"), link("by-mac/m1", "../by-host/a")));
    // by-mac/m1 was netbuild's link; now a file goes there (it was recorded as a link: replaced).
    rmSync(path.join(out, "by-mac/m1"));
    symlinkSync(path.join(elsewhere, "target"), path.join(out, "by-mac/m1"));
    await applyTree(out, tree(file("boot.ipxe", "x"), link("by-mac/m1", "../by-host/b")), manifest);
    expect(readlinkSync(path.join(out, "by-mac/m1"))).toBe("../by-host/b");
    expect(readFileSync(path.join(elsewhere, "target"), "utf8")).toBe("keep\n");
    // A file of the tree whose path holds a link netbuild did not record there: refused.
    symlinkSync(path.join(elsewhere, "target"), path.join(out, "by-host-file"));
    const e = await refusal(applyTree(out, tree(file("boot.ipxe", "x"), link("by-mac/m1", "../by-host/b"), file("by-host-file", "y")), (await readManifest(out))!));
    expect(e.message).toContain("by-host-file is a symlink, where netbuild writes a file");
    expect(readFileSync(path.join(elsewhere, "target"), "utf8")).toBe("keep\n");
  });

  it("switches by-mac entries between links and copies both ways; a copy-mode folder holding someone's file is refused, naming it", async () => {
    const { out, manifest } = await built(hosts(["a", "b"], "links"));
    await applyTree(out, hosts(["a", "b"], "copy"), manifest);
    expect(lstatSync(path.join(out, "by-mac/m-a")).isDirectory()).toBe(true);
    expect(readFileSync(path.join(out, "by-mac/m-a/ipxe"), "utf8")).toBe(readFileSync(path.join(out, "by-host/a/ipxe"), "utf8"));
    const copied = (await readManifest(out))!;
    writeFileSync(path.join(out, "by-mac/m-b/notes.txt"), "mine\n");
    const e = await refusal(applyTree(out, hosts(["a", "b"], "links"), copied));
    expect(e.message).toBe(`${out}: by-mac/m-b is a folder holding a file netbuild did not write ("notes.txt"), where netbuild puts a link; nothing was changed`);
    expect(lstatSync(path.join(out, "by-mac/m-a")).isDirectory()).toBe(true);
    rmSync(path.join(out, "by-mac/m-b/notes.txt"));
    await applyTree(out, hosts(["a", "b"], "links"), copied);
    expect(snapshot(out)).toMatchObject({ "by-mac/m-a": "-> ../by-host/a", "by-mac/m-b": "-> ../by-host/b" });
    // The host scripts behind the new links are untouched by the removal of the copies.
    expect(readFileSync(path.join(out, "by-host/a/ipxe"), "utf8")).toContain("set host a");
  });

  it("what a stopped build was writing is recorded as pending first, read back by the next build, and the tree finished", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    // A build stopped after recording its pending paths, before writing them.
    const t = hosts(["a", "b"], "links", "2");
    const stopped: TreeManifest = { ...manifest, pending: ["by-host/b/ipxe", "by-mac/m-b"] };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(stopped, null, 2)}\n`);
    mkdirSync(path.join(out, "by-host/b"));
    writeFileSync(path.join(out, "by-host/b/ipxe"), "half");
    await applyTree(out, t, (await readManifest(out))!);
    const after = (await readManifest(out))!;
    expect(after.pending).toBeUndefined();
    expect(readFileSync(path.join(out, "by-host/b/ipxe"), "utf8")).toContain("set host b v2");
    expect(Object.keys(after.entries)).toContain("by-mac/m-b");
  });

  it("clears what interrupted copies left in artifact folders: only regular files with netbuild's temporary names, in real folders", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const dir = path.join(out, "by-class/c/0123456789abcdfghijklmnpqrsvwxyz");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, ".initrd.netbuild-tmp"), "half a copy");
    writeFileSync(path.join(dir, ".kernel.tmp-0123abcd"), "half a copy");
    writeFileSync(path.join(dir, "keep.txt"), "mine");
    mkdirSync(path.join(dir, ".folder.netbuild-tmp"));
    const t = hosts(["a"]);
    t.entries.push({ kind: "artifact", layer: "artifact", path: "by-class/c/0123456789abcdfghijklmnpqrsvwxyz/initrd", source: undefined, size: 3 });
    await applyTree(out, t, manifest);
    expect(readdirSync(dir).sort()).toEqual([".folder.netbuild-tmp", "keep.txt"]);
  });
});

describe("applyTree: what it says it does, in what order, and what it trusts", () => {
  /** applyTree with its progress events as `action path` lines. */
  async function logged(out: string, t: Tree, old: TreeManifest | undefined, verify = false): Promise<string[]> {
    const events: string[] = [];
    await applyTree(out, t, old, (e) => events.push(`${e.action} ${e.path}${e.bytes === undefined ? "" : ` ${e.bytes}`}`), { verify });
    return events;
  }

  it("reports each write in the tree's order (the planner's), nothing for what is unchanged, and each removal from what leads to a file down to the file (entries, MACs, hosts, classes)", async () => {
    const out = path.join(tempDir(), "out");
    expect(await logged(out, hosts(["a"]), undefined)).toEqual(["write boot.ipxe", "write by-class/c/ipxe", "write by-host/a/ipxe", "write by-mac/m-a"]);
    expect(await logged(out, hosts(["a"]), await readManifest(out))).toEqual([]);
    expect(await logged(out, tree(file("boot.ipxe", "#!ipxe\nchain by-mac/${mac:hexhyp}/ipxe\n")), await readManifest(out))).toEqual(["remove by-mac/m-a", "remove by-host/a/ipxe", "remove by-class/c/ipxe"]);
  });

  it("keeps the manifest's entries sorted as hosts come and go, and sorts one that was edited out of order", async () => {
    const { out } = await built(hosts(["a", "c"]));
    await applyTree(out, hosts(["a", "b", "c", "d"]), await readManifest(out));
    const keys = () => Object.keys(JSON.parse(readFileSync(path.join(out, MANIFEST_PATH), "utf8")).entries as object);
    expect(keys()).toEqual([...keys()].sort());
    expect(keys()).toHaveLength(10);
    // Edited by hand into another order (still valid): a build that changes nothing leaves it as
    // it is (bytes and inode); the next write sorts it, from the first (the paths it is about to write).
    const text = JSON.parse(readFileSync(path.join(out, MANIFEST_PATH), "utf8")) as { entries: Record<string, unknown> };
    text.entries = Object.fromEntries(Object.entries(text.entries).reverse());
    const edited = `${JSON.stringify(text, null, 2)}\n`;
    writeFileSync(path.join(out, MANIFEST_PATH), edited);
    const ino = lstatSync(path.join(out, MANIFEST_PATH)).ino;
    expect((await applyTree(out, hosts(["a", "b", "c", "d"]), await readManifest(out))).written).toEqual([]);
    expect([readFileSync(path.join(out, MANIFEST_PATH), "utf8"), lstatSync(path.join(out, MANIFEST_PATH)).ino]).toEqual([edited, ino]);
    let first: string[] | undefined;
    await applyTree(out, hosts(["a", "b", "c", "e"]), await readManifest(out), () => void (first ??= keys()));
    expect(first).toContain("by-host/a/ipxe");
    expect(first).toEqual([...first!].sort());
    expect(keys()).toEqual([...keys()].sort());
    await applyTree(out, hosts(["a", "b", "c"]), await readManifest(out));
    expect(keys()).toEqual([...keys()].sort());
    expect(keys()).toHaveLength(8);
    // Paths new to it whose write order is not their sorted order (a machine config is written
    // before its host's script; boot.ipxe last), added to it together.
    const config = (h: string): TreeEntry => ({ kind: "file", layer: "config", path: `by-host/${h}/talos.yaml`, content: `machine: ${h}\n` });
    const t = hosts(["a", "b", "c", "e"]);
    t.entries.push(config("a"), config("e"), file("by-class/b/ipxe", "#!ipxe\n"));
    (t.entries.find((e) => e.path === "boot.ipxe") as { content: string }).content += "# v2\n";
    t.entries = inWriteOrder(t.entries);
    expect(t.entries.findIndex((e) => e.path === "by-host/e/talos.yaml")).toBeLessThan(t.entries.findIndex((e) => e.path === "by-host/a/ipxe"));
    await applyTree(out, t, await readManifest(out));
    expect(keys()).toEqual([...keys()].sort());
    expect(keys()).toHaveLength(13);
  });

  it("trusts a recorded file whose size, mtime and inode are unchanged, and a recorded link, until --verify reads them back", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const script = path.join(out, "by-host/a/ipxe");
    const was = readFileSync(script, "utf8");
    // The same size, written in place (the same inode); its mtime "put back": recorded as it now
    // stands (touch -r cannot set nanoseconds). And a link pointed elsewhere by hand.
    writeFileSync(script, was.replace("set host a", "set host A"));
    rmSync(path.join(out, "by-mac/m-a"));
    symlinkSync("../by-host/evil", path.join(out, "by-mac/m-a"));
    const now = lstatSync(script, { bigint: true });
    const trusting: TreeManifest = { ...manifest, entries: { ...manifest.entries, "by-host/a/ipxe": { ...manifest.entries["by-host/a/ipxe"]!, mtimeNs: now.mtimeNs.toString() } as never } };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(trusting, null, 2)}\n`);
    expect(await logged(out, hosts(["a"]), await readManifest(out))).toEqual([]);
    expect(readFileSync(script, "utf8")).toContain("set host A");
    expect(await logged(out, hosts(["a"]), await readManifest(out), true)).toEqual(["write by-host/a/ipxe", "write by-mac/m-a"]);
    expect(readFileSync(script, "utf8")).toBe(was);
    expect(readlinkSync(path.join(out, "by-mac/m-a"))).toBe("../by-host/a");
  });

  it("reads the manifest again only when the file changed", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    expect(await readManifest(out, manifest)).toBe(manifest);
    await applyTree(out, hosts(["a", "b"]), manifest);
    const after = await readManifest(out, manifest);
    expect(after).not.toBe(manifest);
    expect(Object.keys(after!.entries)).toContain("by-host/b/ipxe");
    // Another out/ with a manifest of the same text is read for itself.
    const other = (await built(hosts(["a"]))).out;
    expect(await readManifest(other, manifest)).not.toBe(manifest);
  });
});

describe("applyTree: what appears in out/ after its look, before its writes", () => {
  // Someone else's process writing into out/ while a build runs (the build holds out/'s lock; this
  // one ignores it): simulated by acting in the progress callback, which runs just before each write.
  async function withPlanted(out: string, t: Tree, old: TreeManifest | undefined, before: string, act: () => void): Promise<unknown> {
    let done = false;
    return applyTree(out, t, old, (e) => {
      if (!done && e.path === before) {
        done = true;
        act();
      }
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
  }

  it("a link put where a new host's folder goes, after the scan found nothing there, is refused, and nothing is written through it", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const victim = path.join(tempDir(), "victim");
    mkdirSync(victim);
    const e = await withPlanted(out, hosts(["a", "b"]), manifest, "by-host/b/ipxe", () => symlinkSync(victim, path.join(out, "by-host/b")));
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).code).toBe("OUT_CONFLICT");
    expect((e as UserError).message).toContain("by-host/b");
    expect(readdirSync(victim)).toEqual([]);
    expect(readlinkSync(path.join(out, "by-host/b"))).toBe(victim);
  });

  it("a folder put there instead is used; a file put where a new script goes, or a link where a new by-mac link goes, is replaced by netbuild's", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const e = await withPlanted(out, hosts(["a", "b"]), manifest, "by-host/b/ipxe", () => {
      mkdirSync(path.join(out, "by-host/b"));
      writeFileSync(path.join(out, "by-host/b/ipxe"), "planted\n");
      symlinkSync("../by-host/a", path.join(out, "by-mac/m-b"));
    });
    expect(e).toBeUndefined();
    expect(readFileSync(path.join(out, "by-host/b/ipxe"), "utf8")).toContain("set host b v1");
    expect(readlinkSync(path.join(out, "by-mac/m-b"))).toBe("../by-host/b");
    const after = (await readManifest(out))!;
    expect(after.entries["by-host/b/ipxe"]).toMatchObject({ kind: "file", sha256: createHash("sha256").update(readFileSync(path.join(out, "by-host/b/ipxe"))).digest("hex") });
    expect(after.entries["by-mac/m-b"]).toEqual({ kind: "symlink", target: "../by-host/b" });
    expect(after.pending).toBeUndefined();
    expect((await applyTree(out, hosts(["a", "b"]), after)).written).toEqual([]);
  });
});

describe("applyTree: the manifest at the edges", () => {
  it("an empty tree into a new out/ is recorded as an empty manifest", async () => {
    const out = path.join(tempDir(), "out");
    expect(await applyTree(out, tree(), undefined)).toEqual({ written: [], unchanged: 0, removed: [], missingKept: [] });
    expect((await readManifest(out))!.entries).toEqual({});
  });

  it("a kept artifact that is neither recorded nor in out/ is reported missing, and not left pending once the build is done", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const gone = "by-class/c/dddddddddddddddddddddddddddddddd/initrd";
    const t = hosts(["a"]);
    t.entries.unshift({ kind: "artifact", layer: "artifact", path: gone, source: undefined, size: 5 });
    const r = await applyTree(out, t, manifest);
    expect([r.written, r.missingKept]).toEqual([[], [gone]]);
    const after = (await readManifest(out))!;
    expect([after.pending, after.entries[gone]]).toEqual([undefined, undefined]);
  });
});

describe("applyTree: a file changed by hand in out/ is found by its stamp", () => {
  it("one edited in place to the same size (same inode, new mtime) is read back and written again", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const script = path.join(out, "by-host/a/ipxe");
    const was = readFileSync(script, "utf8");
    const st = lstatSync(script, { bigint: true });
    writeFileSync(script, was.replace("set host a", "set host X"));
    utimesSync(script, new Date(), new Date(Date.now() + 5_000));
    expect(lstatSync(script, { bigint: true }).ino).toBe(st.ino);
    expect(lstatSync(script).size).toBe(Buffer.byteLength(was));
    expect((await applyTree(out, hosts(["a"]), manifest)).written).toEqual(["by-host/a/ipxe"]);
    expect(readFileSync(script, "utf8")).toBe(was);
  });

  it("one replaced by another file of the same size (new inode) is read back and written again", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const script = path.join(out, "by-host/a/ipxe");
    const was = readFileSync(script, "utf8");
    const st = lstatSync(script, { bigint: true });
    writeFileSync(`${script}.x`, was.replace("set host a", "set host X"));
    // Its stamp, but for the inode: the recorded mtime written into the manifest as the new file's.
    renameSync(`${script}.x`, script);
    const now = lstatSync(script, { bigint: true });
    expect(now.ino).not.toBe(st.ino);
    const forged: TreeManifest = { ...manifest, entries: { ...manifest.entries, "by-host/a/ipxe": { ...manifest.entries["by-host/a/ipxe"]!, mtimeNs: now.mtimeNs.toString() } as never } };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(forged, null, 2)}\n`);
    expect((await applyTree(out, hosts(["a"]), await readManifest(out))).written).toEqual(["by-host/a/ipxe"]);
    expect(readFileSync(script, "utf8")).toBe(was);
  });

  it("one recorded without a stamp (an earlier netbuild's) is read back, left as it is when unchanged, and its stamp recorded", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const { size: _s, mtimeNs: _m, ino: _i, ...bare } = manifest.entries["by-host/a/ipxe"] as { size: number; mtimeNs: string; ino: string; kind: "file"; sha256: string };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify({ ...manifest, entries: { ...manifest.entries, "by-host/a/ipxe": bare } }, null, 2)}\n`);
    const ino = lstatSync(path.join(out, "by-host/a/ipxe")).ino;
    expect((await applyTree(out, hosts(["a"]), await readManifest(out))).written).toEqual([]);
    expect(lstatSync(path.join(out, "by-host/a/ipxe")).ino).toBe(ino);
    expect((await readManifest(out))!.entries["by-host/a/ipxe"]).toEqual(manifest.entries["by-host/a/ipxe"]);
  });
});

describe("withOutLock: one writer of out/ at a time", () => {
  it("a second run waits for the first, says for whom, and goes on once it is done; the lock is gone after both", async () => {
    const out = path.join(tempDir(), "out");
    const order: string[] = [];
    const waits: string[] = [];
    let release!: () => void;
    const first = withOutLock(out, "build", () => undefined, async () => {
      order.push("first in");
      await new Promise<void>((r) => (release = r));
      order.push("first out");
      return 1;
    });
    await expect.poll(() => order).toEqual(["first in"]);
    const second = withOutLock(out, "build", (m) => waits.push(m), async () => (order.push("second"), 2));
    await new Promise((r) => setTimeout(r, 1500));
    expect(order).toEqual(["first in"]);
    release();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(order).toEqual(["first in", "first out", "second"]);
    expect(waits).toEqual([expect.stringMatching(new RegExp(`^${out}: waiting for the lock held by \`netbuild build\` by `))]);
    expect(existsSync(path.join(out, ".netbuild/lock"))).toBe(false);
    // A run that fails still releases it.
    await expect(withOutLock(out, "build", () => undefined, () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(existsSync(path.join(out, ".netbuild/lock"))).toBe(false);
  }, 20_000);
});

describe.skipIf(missing({ commands: ["nix-store"] }))("applyTree: artifacts from the Nix store", () => {
  let store: { kernel: string; initrd: string; link: string; folder: string };
  beforeAll(() => {
    const dir = tempDir();
    const add = (name: string, content: string) => (writeFileSync(path.join(dir, name), content), execFileSync("nix-store", ["--add", path.join(dir, name)], { encoding: "utf8" }).trim());
    // A store path that is a link leading out of the store (as a hostile manifest could name).
    symlinkSync("/etc/hostname", path.join(dir, "escape"));
    // A store path that is a folder (a NixOS build's result is one; its kernel is a file in it).
    mkdirSync(path.join(dir, "folder"));
    writeFileSync(path.join(dir, "folder", "kernel"), "in a folder\n");
    const addPath = (name: string) => execFileSync("nix-store", ["--add", path.join(dir, name)], { encoding: "utf8" }).trim();
    store = { kernel: add("kernel", "kernel bytes\n"), initrd: add("initrd", "initrd bytes, more of them\n"), link: addPath("escape"), folder: addPath("folder") };
  });
  const artifact = (p: string, source: string | undefined, size: number): TreeEntry => ({ kind: "artifact", layer: "artifact", path: p, source, size });

  it("copies each from the store whole, with its sha256, once; a kept one (no source) stays as recorded; one gone from out/ is reported, not invented", async () => {
    const k = "by-class/c/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/kernel";
    const i = "by-class/c/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/initrd";
    const t = tree(file("boot.ipxe", "x"), artifact(k, store.kernel, 13), artifact(i, store.initrd, 27));
    const { out, manifest } = await built(t);
    expect(readFileSync(path.join(out, k), "utf8")).toBe("kernel bytes\n");
    // A copy is reported with its size, and counted as written.
    const other = path.join(tempDir(), "out");
    const events: string[] = [];
    const first = await applyTree(other, t, undefined, (e) => events.push(`${e.action} ${e.path} ${e.bytes ?? ""}`));
    expect(events).toEqual(["write boot.ipxe ", `copy ${k} 13`, `copy ${i} 27`]);
    expect(first.written).toEqual(["boot.ipxe", k, i]);
    expect(manifest.entries[i]).toEqual({ kind: "artifact", size: 27, sha256: createHash("sha256").update("initrd bytes, more of them\n").digest("hex") });
    const again = await applyTree(out, t, manifest);
    expect(again.written).toEqual([]);
    // Kept from an earlier build: no source; recorded and there → kept; gone → left out and said.
    const kept = tree(file("boot.ipxe", "x"), artifact(k, undefined, 13), artifact(i, undefined, 27));
    rmSync(path.join(out, i));
    const r = await applyTree(out, kept, manifest);
    expect(r.missingKept).toEqual([i]);
    expect([r.written, r.unchanged]).toEqual([[], 2]);
    expect(Object.keys((await readManifest(out))!.entries)).toEqual(["boot.ipxe", k]);
  });

  it.each([
    ["links", "links"],
    ["links", "copy"],
    ["copy", "links"],
  ] as const)("stopped before each write of a new class generation (hosts added and removed, a wipe flag added, %s → %s), out/ serves every machine something whole, and the next build finishes it", async (fromMode, toMode) => {
    const dir = tempDir();
    const stored = new Map<string, string>();
    const storeFile = (gen: string, a: string) => {
      const key = `${gen}-${a}`;
      if (!stored.has(key)) {
        writeFileSync(path.join(dir, key), `${a} of generation ${gen}\n`);
        stored.set(key, execFileSync("nix-store", ["--add", path.join(dir, key)], { encoding: "utf8" }).trim());
      }
      return stored.get(key)!;
    };
    /** Class c at generation `gen` and hosts (name → flags) chaining it, as deploy-steps.ts's trees (its boots() reads them). */
    const generation = (gen: string, names: Record<string, string>, mode: "links" | "copy"): Tree => {
      const entries: TreeEntry[] = [];
      for (const a of ["kernel", "initrd"]) entries.push(artifact(`by-class/c/${gen}/${a}`, storeFile(gen, a), `${a} of generation ${gen}\n`.length));
      entries.push(file("by-class/c/ipxe", `#!ipxe\nkernel ${gen}/kernel\ninitrd ${gen}/initrd\nboot\n`));
      for (const [h, flags] of Object.entries(names)) {
        const script = `#!ipxe\nset cmdline hostname=${h} ${flags}\nchain ../../by-class/c/ipxe\n`;
        entries.push(file(`by-host/${h}/ipxe`, script));
        entries.push(mode === "links" ? link(`by-mac/${h}`, `../by-host/${h}`) : file(`by-mac/${h}/ipxe`, script));
      }
      entries.push(file("boot.ipxe", "#!ipxe\nchain by-mac/${mac:hexhyp}/ipxe || exit\n"));
      // In the planner's write order (core/tree.ts), from entries given the other way round.
      return tree(...inWriteOrder(entries.reverse()));
    };
    const before = generation("g1", { a: "", b: "", gone: "" }, fromMode);
    const after = generation("g2", { a: "homelab.provision_disks=true", b: "", added: "" }, toMode);
    const want = snapshot((await built(after)).out);
    const probe = (await built(before)).out;
    let steps = 0;
    await applyTree(probe, after, await readManifest(probe), () => void steps++);
    const stop = new Error("stopped");
    for (let k = 0; k < steps; k++) {
      const { out, manifest } = await built(before);
      let n = 0;
      let at = "";
      await expect(
        applyTree(out, after, manifest, (e) => {
          if (n++ === k) throw ((at = e.path), stop);
        }),
      ).rejects.toBe(stop);
      const where = `stopped before step ${k + 1} of ${steps} (${at})`;
      // out/ may be what a boot server serves (netbuild serve): each machine kept boots its old or
      // new script, whole; or, stopped as its by-mac entry switches between a link and a folder
      // (which no one rename can do), nothing, as an unknown machine, until the next build.
      const switching = (mac: string) => fromMode !== toMode && (at === `by-mac/${mac}` || at === `by-mac/${mac}/ipxe`);
      expect(["hostname=a", "hostname=a homelab.provision_disks=true", ...(switching("a") ? ["nothing"] : [])], `${where}: a`).toContain(boots(out, "a"));
      expect(["hostname=b", ...(switching("b") ? ["nothing"] : [])], `${where}: b`).toContain(boots(out, "b"));
      expect(["hostname=gone", "nothing"], `${where}: gone`).toContain(boots(out, "gone"));
      expect(["hostname=added", "nothing"], `${where}: added`).toContain(boots(out, "added"));
      await applyTree(out, after, await readManifest(out));
      expect(snapshot(out), where).toEqual(want);
    }
  }, 60_000);

  it("records each class sorted by name, with its artifacts' sha256, and its previous build only while both its files are in the tree", async () => {
    const sha = (t: string) => createHash("sha256").update(t).digest("hex");
    const cls = (name: string, gen: string, previous?: string): TreeClass => ({
      name: name as TreeClass["name"],
      kind: "prebuilt",
      kernel: { path: `by-class/${name}/${gen}/kernel`, storeFile: store.kernel, size: 13 },
      initrd: { path: `by-class/${name}/${gen}/initrd`, storeFile: store.initrd, size: 27 },
      kernelParams: [],
      previous: previous ? { kernel: `by-class/${name}/${previous}/kernel`, initrd: `by-class/${name}/${previous}/initrd` } : undefined,
    });
    const files = (c: TreeClass) => [artifact(c.kernel.path, store.kernel, 13), artifact(c.initrd.path, store.initrd, 27), file(`by-class/${c.name}/ipxe`, `#!ipxe\nkernel ${c.kernel.path}\n`)];
    const z1 = cls("zeta", "g1");
    const a1 = cls("alpha", "g1");
    // Classes come in the inventory's order, not sorted: four of them, so that sorting compares them both ways.
    const [mu, beta] = [cls("mu", "g1"), cls("beta", "g1")];
    const { out } = await built({ ...tree(...files(z1), ...files(a1), ...files(mu), ...files(beta)), classes: [z1, a1, mu, beta] });
    const m1 = (await readManifest(out))!;
    expect(Object.keys(m1.classes)).toEqual(["alpha", "beta", "mu", "zeta"]);
    expect(m1.classes["zeta"]).toEqual({ kind: "prebuilt", kernel: z1.kernel, initrd: z1.initrd, kernelParams: [], previous: undefined, kernelSha256: sha("kernel bytes\n"), initrdSha256: sha("initrd bytes, more of them\n") });
    // zeta's next build keeps g1 as its previous: recorded while both of g1's files are in the tree.
    const z2 = cls("zeta", "g2", "g1");
    const kept = [artifact(z1.kernel.path, undefined, 13), artifact(z1.initrd.path, undefined, 27)];
    await applyTree(out, { ...tree(...files(z2), ...kept, ...files(a1)), classes: [z2, a1] }, m1);
    expect((await readManifest(out))!.classes["zeta"]!.previous).toEqual({ kernel: z1.kernel.path, initrd: z1.initrd.path });
    // Its initrd gone from the tree (say removed by hand from out/ and not copied again): no previous.
    rmSync(path.join(out, z1.initrd.path));
    await applyTree(out, { ...tree(...files(z2), ...kept, ...files(a1)), classes: [z2, a1] }, (await readManifest(out))!);
    expect((await readManifest(out))!.classes["zeta"]!.previous).toBeUndefined();
    // Only a class's record changed (its parameters, not any file): the manifest is written again.
    const z3 = { ...z2, previous: undefined };
    await applyTree(out, { ...tree(...files(z2), ...files(a1)), classes: [z3, a1] }, (await readManifest(out))!);
    const ino = lstatSync(path.join(out, MANIFEST_PATH)).ino;
    const z4 = { ...z3, kernelParams: ["quiet"] as TreeClass["kernelParams"] };
    expect((await applyTree(out, { ...tree(...files(z2), ...files(a1)), classes: [z4, a1] }, (await readManifest(out))!)).written).toEqual([]);
    expect(lstatSync(path.join(out, MANIFEST_PATH)).ino).not.toBe(ino);
    expect((await readManifest(out))!.classes["zeta"]!.kernelParams).toEqual(["quiet"]);
  });

  it("refuses a source that is not a regular file in the store (a link out of it, or gone), naming it, and copies nothing", async () => {
    for (const [source, why] of [
      [store.link, `leads out of the Nix store (to "/etc/hostname")`],
      [store.folder, "is not a regular file"],
      ["/nix/store/00000000000000000000000000000000-gone", "does not exist (the Nix store was garbage-collected?)"],
    ] as const) {
      const out = path.join(tempDir(), "out");
      const e = await refusal(applyTree(out, tree(artifact("by-class/c/cccccccccccccccccccccccccccccccc/kernel", source, 13)), undefined));
      expect([e.code, e.message], source).toEqual(["OUT_NOT_A_TREE", `${path.join(out, MANIFEST_PATH)} names ${quoted(source)} as a build's file, which ${why}; nothing was copied`]);
      expect(e.hint).toBe("build that class again (`netbuild build --class NAME`), which records its files anew");
      expect(existsSync(path.join(out, "by-class/c/cccccccccccccccccccccccccccccccc/kernel"))).toBe(false);
    }
  });
});

describe("out/ itself, and reading it", () => {
  it("checkOutFolder: nothing there, an empty folder or a stopped build's lock is a new tree; anything else without a manifest is refused; a link must lead to a folder", async () => {
    const base = tempDir();
    expect(await checkOutFolder(path.join(base, "none"))).toBeUndefined();
    mkdirSync(path.join(base, "empty"));
    expect(await checkOutFolder(path.join(base, "empty"))).toBeUndefined();
    mkdirSync(path.join(base, "locked/.netbuild"), { recursive: true });
    writeFileSync(path.join(base, "locked/.netbuild/lock"), "{}");
    expect(await checkOutFolder(path.join(base, "locked"))).toBeUndefined();
    mkdirSync(path.join(base, "home"));
    writeFileSync(path.join(base, "home/.bashrc"), "");
    expect((await refusal(checkOutFolder(path.join(base, "home")))).message).toBe(`${path.join(base, "home")} is not empty and is not a netbuild tree (it has no ${MANIFEST_PATH})`);
    writeFileSync(path.join(base, "file"), "");
    expect((await refusal(checkOutFolder(path.join(base, "file")))).message).toBe(`${path.join(base, "file")} is a file, not a folder`);
    symlinkSync(path.join(base, "nowhere"), path.join(base, "dangling"));
    expect((await refusal(checkOutFolder(path.join(base, "dangling")))).message).toBe(`${path.join(base, "dangling")} is a symlink to "${path.join(base, "nowhere")}", which does not exist (or cannot be reached)`);
    symlinkSync(path.join(base, "empty"), path.join(base, "linked"));
    expect(await checkOutFolder(path.join(base, "linked"))).toBeUndefined();
  });

  it("checkOutFolder: each refusal with its code and hint; only netbuild's lock files in .netbuild/, and nothing beside it, make a stopped build's folder", async () => {
    const base = tempDir();
    const refused = async (dir: string) => {
      const e = await refusal(checkOutFolder(path.join(base, dir)));
      return [e.code, e.exitCode, e.hint];
    };
    const folder = (dir: string, files: Record<string, string>) => {
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(base, dir, rel)), { recursive: true });
        writeFileSync(path.join(base, dir, rel), text);
      }
    };
    folder("stopped", { ".netbuild/lock": "{}", ".netbuild/lock.broken-1": "{}" });
    expect(await checkOutFolder(path.join(base, "stopped"))).toBeUndefined();
    const notATree = ["OUT_NOT_A_TREE", 2, "give --out an empty or new folder; netbuild only writes into folders it made"];
    folder("more", { ".netbuild/lock": "{}", ".netbuild/notes": "x" });
    expect(await refused("more")).toEqual(notATree);
    folder("beside", { ".netbuild/lock": "{}", "index.html": "x" });
    expect(await refused("beside")).toEqual(notATree);
    folder("other", { ".other/lock": "{}" });
    expect(await refused("other")).toEqual(notATree);
    folder("flat", { ".netbuild": "a file, not a folder" });
    expect(await refused("flat")).toEqual(["OUT_CONFLICT", 2, expect.any(String)]);
    writeFileSync(path.join(base, "file"), "");
    expect(await refused("file")).toEqual(["OUT_NOT_A_TREE", 2, "pass --out with a folder"]);
    symlinkSync(path.join(base, "nowhere"), path.join(base, "dangling"));
    expect(await refused("dangling")).toEqual(["OUT_NOT_A_TREE", 2, "create the folder it points to, or pass --out with a folder"]);
  });

  it("readManifest: a damaged manifest names its first five problems and counts the rest, and says to restore it; one from a newer netbuild says so instead", async () => {
    const { out, manifest } = await built(hosts(["a"]));
    const damaged = { ...manifest, entries: Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`by-host/h${i}/ipxe`, { kind: "file", sha256: "not a hash" }])) };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(damaged, null, 2)}\n`);
    const e = await refusal(readManifest(out));
    expect([e.code, e.exitCode, e.hint]).toEqual(["OUT_NOT_A_TREE", 2, "it was edited or damaged: restore it (from a backup or git), or remove out/ and build again (netbuild then starts a new tree; nothing outside out/ is touched)"]);
    const problems = e.message.slice(e.message.indexOf("nothing was changed: ") + "nothing was changed: ".length);
    expect(problems.split("; ")).toHaveLength(6);
    expect(problems).toMatch(/; and 2 more$/);
    // Five problems exactly: no count.
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify({ ...damaged, entries: Object.fromEntries(Object.entries(damaged.entries).slice(0, 5)) }, null, 2)}\n`);
    expect((await refusal(readManifest(out))).message).not.toMatch(/more$/);
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify({ ...manifest, format: 99 }, null, 2)}\n`);
    expect((await refusal(readManifest(out))).hint).toBe(NEWER_FORMAT_HINT);
  });

  it("readManifest: a link or a folder where the manifest or its folder goes is a conflict; a damaged one is refused, not trusted", async () => {
    const { out } = await built(hosts(["a"]));
    const text = readFileSync(path.join(out, MANIFEST_PATH), "utf8");
    writeFileSync(path.join(out, MANIFEST_PATH), "{ not json");
    const damaged = await refusal(readManifest(out));
    expect(damaged.code).toBe("OUT_NOT_A_TREE");
    expect(damaged.message).toMatch(new RegExp(`^${path.join(out, MANIFEST_PATH)} is not a manifest netbuild can trust, so nothing was changed: `));
    rmSync(path.join(out, MANIFEST_PATH));
    symlinkSync("/etc/hostname", path.join(out, MANIFEST_PATH));
    expect((await refusal(readManifest(out))).message).toBe(`${out}: ${MANIFEST_PATH} is a symlink, where netbuild keeps its manifest (a regular file); nothing was changed`);
    rmSync(path.join(out, MANIFEST_PATH));
    writeFileSync(path.join(out, MANIFEST_PATH), text);
    expect(await readManifest(out)).toBeDefined();
    const other = path.join(tempDir(), "out");
    mkdirSync(other);
    writeFileSync(path.join(other, ".netbuild"), "");
    expect((await refusal(readManifest(other))).message).toBe(`${other}: .netbuild is a file, where netbuild keeps its records (a real folder); nothing was changed`);
  });

  it("outFileReader reads a regular file of the tree through real folders only: a link there, or on the way, reads as nothing", async () => {
    const { out } = await built(hosts(["a"]));
    const read = outFileReader(out);
    expect(await read("by-host/a/ipxe")).toContain("set host a");
    expect(await read("by-mac/m-a/ipxe")).toBeUndefined();
    expect(await read("by-host/none")).toBeUndefined();
    expect(await read("by-host/a")).toBeUndefined();
    symlinkSync("/etc/hostname", path.join(out, "by-host/a/linked"));
    expect(await read("by-host/a/linked")).toBeUndefined();
  });
});

describe("applyTree: a build stopped at any point leaves an out/ that knows what it owns", () => {
  /** out/'s manifest as it stands on disk (not through readManifest's reuse). */
  const onDisk = (out: string): TreeManifest | undefined => (existsSync(path.join(out, MANIFEST_PATH)) ? (JSON.parse(readFileSync(path.join(out, MANIFEST_PATH), "utf8")) as TreeManifest) : undefined);
  const manifestIno = (out: string) => lstatSync(path.join(out, MANIFEST_PATH)).ino;

  /**
   * applyTree, looking at out/'s manifest on disk at each write: the path must already be recorded
   * or pending there. Returns what was pending at each write, and the manifest's inode then.
   */
  async function owning(out: string, t: Tree, old: TreeManifest | undefined): Promise<{ path: string; pending: string[]; ino: number }[]> {
    const seen: { path: string; pending: string[]; ino: number }[] = [];
    await applyTree(out, t, old, (e) => {
      if (e.action === "remove") return;
      const m = onDisk(out);
      expect(m?.entries[e.path] !== undefined || m?.pending?.includes(e.path), `${e.path} written before out/'s manifest owns it`).toBe(true);
      seen.push({ path: e.path, pending: m?.pending ?? [], ino: manifestIno(out) });
    });
    return seen;
  }

  it("records every path it is about to write (pending) before writing it; a file recorded with its stamp is not listed first, so one changed script writes the manifest once", async () => {
    const out = path.join(tempDir(), "out");
    const first = await owning(out, hosts(["a", "b"]), undefined);
    const all = ["boot.ipxe", "by-class/c/ipxe", "by-host/a/ipxe", "by-host/b/ipxe", "by-mac/m-a", "by-mac/m-b"];
    expect(first.map((w) => w.pending)).toEqual(all.map(() => all));
    expect(onDisk(out)!.pending).toBeUndefined();

    // One host's script changed: it is recorded with a stamp, so the manifest is not written before it.
    const t = hosts(["a", "b"]);
    (t.entries.find((e) => e.path === "by-host/b/ipxe") as { content: string }).content += "# changed\n";
    const ino = manifestIno(out);
    const one = await owning(out, t, await readManifest(out));
    expect(one).toEqual([{ path: "by-host/b/ipxe", pending: [], ino }]);
    expect(manifestIno(out)).not.toBe(ino);
    expect(onDisk(out)!.entries["by-host/b/ipxe"]).toMatchObject({ sha256: createHash("sha256").update((t.entries.find((e) => e.path === "by-host/b/ipxe") as { content: string }).content).digest("hex") });

    // A host added (and b's script changed back): the new host's script and link, and nothing else, are pending while written.
    const added = await owning(out, hosts(["a", "b", "c"]), await readManifest(out));
    expect(added.map((w) => [w.path, w.pending])).toEqual([
      ["by-host/b/ipxe", ["by-host/c/ipxe", "by-mac/m-c"]],
      ["by-host/c/ipxe", ["by-host/c/ipxe", "by-mac/m-c"]],
      ["by-mac/m-c", ["by-host/c/ipxe", "by-mac/m-c"]],
    ]);

    // A link pointed elsewhere (links carry no stamp): pending first.
    const moved = hosts(["a", "b", "c"]);
    (moved.entries.find((e) => e.path === "by-mac/m-a") as { target: string }).target = "../by-host/b";
    expect((await owning(out, moved, await readManifest(out))).map((w) => [w.path, w.pending])).toEqual([["by-mac/m-a", ["by-mac/m-a"]]]);

    // A file recorded by an older netbuild (no stamp) that changes: pending first.
    const m = onDisk(out)!;
    const { sha256: shaOfA } = m.entries["by-host/a/ipxe"] as { sha256: string };
    m.entries["by-host/a/ipxe"] = { kind: "file", sha256: shaOfA };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(m, null, 2)}\n`);
    const v2 = hosts(["a", "b", "c"]);
    (v2.entries.find((e) => e.path === "by-mac/m-a") as { target: string }).target = "../by-host/b";
    (v2.entries.find((e) => e.path === "by-host/a/ipxe") as { content: string }).content += "# v2\n";
    expect((await owning(out, v2, await readManifest(out))).map((w) => [w.path, w.pending])).toEqual([["by-host/a/ipxe", ["by-host/a/ipxe"]]]);
  });

  it("lists a path it removes in the manifest until it is gone, without the tree's inputs (it is not that tree yet); the inputs once it is", async () => {
    const { out } = await built({ ...hosts(["a", "b"]), inputs: "planned-1" });
    const withInputs = onDisk(out)!;
    expect(withInputs.inputs).toBe(sealInputs("planned-1", withInputs.entries, withInputs.classes));
    const seenAtRemoval: { path: string; listed: boolean; inputs: string | undefined }[] = [];
    await applyTree(out, { ...hosts(["a"]), inputs: "planned-2" }, await readManifest(out), (e) => {
      if (e.action !== "remove") return;
      const m = onDisk(out)!;
      seenAtRemoval.push({ path: e.path, listed: m.entries[e.path] !== undefined, inputs: m.inputs });
    });
    expect(seenAtRemoval).toEqual([
      { path: "by-mac/m-b", listed: true, inputs: undefined },
      { path: "by-host/b/ipxe", listed: true, inputs: undefined },
    ]);
    const after = onDisk(out)!;
    expect(Object.keys(after.entries)).toEqual(["boot.ipxe", "by-class/c/ipxe", "by-host/a/ipxe", "by-mac/m-a"]);
    expect(after.inputs).toBe(sealInputs("planned-2", after.entries, after.classes));
  });

  it("writes the manifest again when only what the tree was planned from changed, and drops the inputs when none are given", async () => {
    const { out } = await built({ ...hosts(["a"]), inputs: "planned-1" });
    const ino = manifestIno(out);
    expect((await applyTree(out, { ...hosts(["a"]), inputs: "planned-1" }, await readManifest(out))).written).toEqual([]);
    expect(manifestIno(out)).toBe(ino);
    await applyTree(out, { ...hosts(["a"]), inputs: "planned-2" }, await readManifest(out));
    const m = onDisk(out)!;
    expect(m.inputs).toBe(sealInputs("planned-2", m.entries, m.classes));
    await applyTree(out, hosts(["a"]), await readManifest(out));
    expect(onDisk(out)!.inputs).toBeUndefined();
    expect(onDisk(out)!.entries).toEqual(m.entries);
  });

  it("a file touched but unchanged is read back and left; its new stamp is recorded once the manifest is written anyway, and at once for a file recorded without one", async () => {
    const { out } = await built(hosts(["a", "b"]));
    const script = path.join(out, "by-host/a/ipxe");
    const ino = manifestIno(out);
    utimesSync(script, new Date(2001, 0, 1), new Date(2001, 0, 1));
    const touched = lstatSync(script, { bigint: true }).mtimeNs.toString();
    expect(onDisk(out)!.entries["by-host/a/ipxe"]).not.toMatchObject({ mtimeNs: touched });
    const r = await applyTree(out, hosts(["a", "b"]), await readManifest(out));
    expect([r.written, r.unchanged]).toEqual([[], 6]);
    expect(manifestIno(out)).toBe(ino);
    // Something else changes: the manifest is written, with a's stamp as it stands now.
    const t = hosts(["a", "b"]);
    (t.entries.find((e) => e.path === "by-host/b/ipxe") as { content: string }).content += "# changed\n";
    await applyTree(out, t, await readManifest(out));
    expect(onDisk(out)!.entries["by-host/a/ipxe"]).toMatchObject({ kind: "file", mtimeNs: touched, size: readFileSync(script).length, ino: lstatSync(script, { bigint: true }).ino.toString() });
    // Recorded without a stamp (an earlier netbuild): read back, and the stamp recorded now.
    const m = onDisk(out)!;
    m.entries["by-host/a/ipxe"] = { kind: "file", sha256: (m.entries["by-host/a/ipxe"] as { sha256: string }).sha256 };
    writeFileSync(path.join(out, MANIFEST_PATH), `${JSON.stringify(m, null, 2)}\n`);
    expect((await applyTree(out, t, await readManifest(out))).written).toEqual([]);
    expect(onDisk(out)!.entries["by-host/a/ipxe"]).toMatchObject({ mtimeNs: touched });
  });

  /** Everything out/ holds and records, stamps left out: what two ways of getting there must agree on. */
  function state(out: string): { files: Record<string, string>; entries: Record<string, unknown>; pending: string[] | undefined } {
    const m = onDisk(out)!;
    const entries = Object.fromEntries(Object.entries(m.entries).map(([p, e]) => [p, e.kind === "file" ? { kind: e.kind, sha256: e.sha256 } : e]));
    return { files: snapshot(out), entries, pending: m.pending };
  }

  it.each([
    ["links to copies, a host replaced, every script changed", hosts(["a", "b"], "links", "1"), hosts(["a", "c"], "copy", "2")],
    ["copies to links, a host replaced, every script changed", hosts(["a", "b"], "copy", "1"), hosts(["a", "c"], "links", "2")],
    ["every host removed", hosts(["a", "b", "c"]), tree(file("boot.ipxe", "#!ipxe\nexit\n"))],
  ])("stopped at each step of a change (%s), the next build finishes it; or, run with the old tree, undoes it", async (_what, before, after) => {
    const clean = async (t: Tree) => state((await built(t)).out);
    const [want, wantBefore] = [await clean(after), await clean(before)];
    expect(want.pending).toBeUndefined();
    // How many steps the change takes, each a point to stop at.
    const probe = (await built(before)).out;
    let steps = 0;
    await applyTree(probe, after, await readManifest(probe), () => void steps++);
    expect(steps).toBeGreaterThanOrEqual(5);
    const stop = new Error("stopped");
    for (let k = 0; k < steps; k++) {
      for (const [next, expected] of [
        [after, want],
        [before, wantBefore],
      ] as const) {
        const { out, manifest } = await built(before);
        let n = 0;
        await expect(
          applyTree(out, after, manifest, () => {
            if (n++ === k) throw stop;
          }),
        ).rejects.toBe(stop);
        await applyTree(out, next, await readManifest(out));
        expect(state(out), `stopped before step ${k + 1} of ${steps}, then built ${next === after ? "to the end" : "back"}`).toEqual(expected);
      }
    }
  }, 60_000);
});
