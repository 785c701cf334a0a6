// The confinement rule on a real folder, in-process (so Stryker's mutants of it are tested here):
// its synchronous form (prepareSync, what the inventory cache uses for the root's .netbuild/) and
// the one every tree writer and target uses (ConfinedRoot), each folder looked at once per run. That
// every writer goes through it is proven in test/confinement.test.ts.
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { checkRel, ConfinedRoot, conflictError, describeKind, localKind, prepareSync, type FolderProbe } from "../../src/adapters/confine.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";

function probe(root: string, make = true) {
  const lstat = (rel: string) => localKind(lstatSync(path.join(root, rel), { throwIfNoEntry: false }));
  return make ? { lstat, mkdir: (rel: string) => mkdirSync(path.join(root, rel)) } : { lstat };
}

/** What prepareSync threw (or undefined). */
function refusal(fn: () => void): UserError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  return undefined;
}

describe("prepareSync: the confinement rule for synchronous callers", () => {
  afterAll(cleanupTempDirs);

  it("makes each missing folder on the way, real, one at a time, and not the file itself", () => {
    const root = tempDir();
    prepareSync(root, probe(root), "ROOT_CONFLICT", ".netbuild/cache/inventory.v8");
    expect(lstatSync(path.join(root, ".netbuild")).isDirectory()).toBe(true);
    expect(lstatSync(path.join(root, ".netbuild/cache")).isDirectory()).toBe(true);
    expect(existsSync(path.join(root, ".netbuild/cache/inventory.v8"))).toBe(false);
    // Again, with everything there: nothing to do, nothing refused.
    expect(refusal(() => prepareSync(root, probe(root), "ROOT_CONFLICT", ".netbuild/cache/inventory.v8"))).toBeUndefined();
  });

  it("refuses a link or a file where a folder should be (exit 2, naming it and what is there), makes nothing below it and never follows it", () => {
    const root = tempDir();
    const elsewhere = tempDir();
    mkdirSync(path.join(root, ".netbuild"));
    symlinkSync(elsewhere, path.join(root, ".netbuild/cache"));
    const link = refusal(() => prepareSync(root, probe(root), "ROOT_CONFLICT", ".netbuild/cache/x/inventory.v8"));
    expect([link?.code, link?.exitCode, link?.message]).toEqual(["ROOT_CONFLICT", 2, `${root}: .netbuild/cache is a symlink, where netbuild needs a real folder (to reach .netbuild/cache/x/inventory.v8); nothing was changed`]);
    expect(existsSync(path.join(elsewhere, "x"))).toBe(false);
    expect(readlinkSync(path.join(root, ".netbuild/cache"))).toBe(elsewhere);

    const other = tempDir();
    writeFileSync(path.join(other, ".netbuild"), "a file\n");
    const file = refusal(() => prepareSync(other, probe(other), "TARGET_CONFLICT", ".netbuild/cache/y"));
    expect([file?.code, file?.message]).toEqual(["TARGET_CONFLICT", `${other}: .netbuild is a file, where netbuild needs a real folder (to reach .netbuild/cache/y); nothing was changed`]);
  });

  it("without mkdir only checks: a missing folder ends the check, unmade; a link before it is still refused", () => {
    const root = tempDir();
    expect(refusal(() => prepareSync(root, probe(root, false), "ROOT_CONFLICT", ".netbuild/cache/inventory.v8"))).toBeUndefined();
    expect(existsSync(path.join(root, ".netbuild"))).toBe(false);
    symlinkSync(tempDir(), path.join(root, ".netbuild"));
    expect(refusal(() => prepareSync(root, probe(root, false), "ROOT_CONFLICT", ".netbuild/cache/inventory.v8"))?.message).toContain(".netbuild is a symlink");
  });

  it("a mkdir that fails with nothing there is mkdir's own error; one that fails because a link appeared is the conflict", () => {
    const root = tempDir();
    const denied = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    const lstat = probe(root).lstat;
    expect(() => prepareSync(root, { lstat, mkdir: () => { throw denied; } }, "ROOT_CONFLICT", "a/b")).toThrow(denied);
    // Another process made a link there between lstat and mkdir.
    const raced = () => {
      symlinkSync(tempDir(), path.join(root, "a"));
      throw Object.assign(new Error("EEXIST"), { code: "EEXIST" });
    };
    expect(refusal(() => prepareSync(root, { lstat, mkdir: raced }, "ROOT_CONFLICT", "a/b"))?.message).toBe(`${root}: a is a symlink, where netbuild needs a real folder (to reach a/b); nothing was changed`);
  });

  it("refuses a path that would leave the root before looking at anything", () => {
    const root = tempDir();
    const away = `${path.basename(root)}-escaped`;
    expect(() => prepareSync(root, probe(root), "ROOT_CONFLICT", `../${away}/y`)).toThrow(/refusing a path that has a `\.\.` part/);
    expect(existsSync(path.join(root, "..", away))).toBe(false);
  });
});

/** A probe on a real folder that counts its calls (by path), and can be told to fail or to race. */
function countingProbe(root: string) {
  const calls = { lstat: [] as string[], mkdir: [] as string[] };
  const hooks: { lstat?: (rel: string) => void; mkdir?: (rel: string) => void } = {};
  const probe: FolderProbe = {
    async lstat(rel) {
      calls.lstat.push(rel);
      await Promise.resolve();
      hooks.lstat?.(rel);
      return localKind(lstatSync(path.join(root, rel), { throwIfNoEntry: false }));
    },
    async mkdir(rel) {
      calls.mkdir.push(rel);
      await new Promise((resolve) => setTimeout(resolve, 5));
      hooks.mkdir?.(rel);
      mkdirSync(path.join(root, rel));
    },
  };
  return { probe, calls, hooks };
}

async function refusedAsync(p: Promise<unknown>): Promise<UserError | undefined> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  return undefined;
}

describe("ConfinedRoot: the confinement rule for the tree writers and targets", () => {
  afterAll(cleanupTempDirs);

  it("prepare makes each missing folder, real; each folder is looked at once per run, and made once however many paths below it are prepared at the same time", async () => {
    const root = tempDir();
    const { probe, calls } = countingProbe(root);
    const confined = new ConfinedRoot(root, probe, "TARGET_CONFLICT");
    await Promise.all(["by-host/a/ipxe", "by-host/b/ipxe", "by-host/c/ipxe", "by-host/a/talos.yaml"].map((p) => confined.prepare(p)));
    for (const d of ["by-host", "by-host/a", "by-host/b", "by-host/c"]) expect(lstatSync(path.join(root, d)).isDirectory(), d).toBe(true);
    expect(existsSync(path.join(root, "by-host/a/ipxe"))).toBe(false);
    expect(calls.mkdir.sort()).toEqual(["by-host", "by-host/a", "by-host/b", "by-host/c"]);
    expect(new Set(calls.lstat).size).toBe(calls.lstat.length);
    // Later checks and prepares of the same folders ask nothing more.
    const before = calls.lstat.length;
    await confined.prepare("by-host/b/ipxe");
    await confined.check("by-host/c/x");
    expect(await confined.blockedAt("by-host/a/ipxe")).toBeUndefined();
    expect(calls.lstat.length).toBe(before);
    expect(calls.mkdir.length).toBe(4);
  });

  it("a link, a file or a special file where a folder should be is a conflict naming it, what is there and the path; nothing is made below it, and a missing folder is no obstacle to check", async () => {
    const root = tempDir();
    const elsewhere = tempDir();
    mkdirSync(path.join(root, "by-host"));
    symlinkSync(elsewhere, path.join(root, "by-host/a"));
    writeFileSync(path.join(root, "by-class"), "a file\n");
    execFileSync("mkfifo", [path.join(root, "ipxe")]);
    const confined = new ConfinedRoot("sftp://boot/srv", countingProbe(root).probe, "TARGET_CONFLICT");
    expect(await confined.blockedAt("by-host/a/ipxe")).toEqual({ path: "by-host/a", kind: "symlink" });
    expect(await confined.blockedAt("by-class/x/ipxe")).toEqual({ path: "by-class", kind: "file" });
    expect(await confined.blockedAt("ipxe/snponly.efi")).toEqual({ path: "ipxe", kind: "other" });
    expect(await confined.blockedAt("by-mac/x/ipxe")).toBeUndefined();
    expect(await confined.blockedAt("boot.ipxe")).toBeUndefined();
    for (const [rel, what] of [
      ["by-host/a/ipxe", "by-host/a is a symlink"],
      ["by-class/x/ipxe", "by-class is a file"],
      ["ipxe/snponly.efi", "ipxe is a special file (device, FIFO or socket)"],
    ] as const) {
      for (const op of ["check", "prepare"] as const) {
        const e = await refusedAsync(confined[op](rel));
        expect([e?.code, e?.exitCode, e?.message], `${op} ${rel}`).toEqual(["TARGET_CONFLICT", 2, `sftp://boot/srv: ${what}, where netbuild needs a real folder (to reach ${rel}); nothing was changed`]);
      }
    }
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(await refusedAsync(confined.check("by-mac/x/ipxe"))).toBeUndefined();
    expect(existsSync(path.join(root, "by-mac"))).toBe(false);
  });

  it("a mkdir that fails with nothing there is mkdir's own error (and is tried again next time); one that fails because a link appeared is the conflict", async () => {
    const root = tempDir();
    const { probe, hooks, calls } = countingProbe(root);
    const confined = new ConfinedRoot(root, probe, "OUT_CONFLICT");
    const denied = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    hooks.mkdir = () => {
      throw denied;
    };
    await expect(confined.prepare("a/b")).rejects.toBe(denied);
    delete hooks.mkdir;
    await confined.prepare("a/b");
    expect(lstatSync(path.join(root, "a")).isDirectory()).toBe(true);
    expect(calls.mkdir).toEqual(["a", "a"]);

    hooks.mkdir = (rel) => symlinkSync(tempDir(), path.join(root, rel));
    const e = await refusedAsync(confined.prepare("c/d"));
    expect(e?.message).toBe(`${root}: c is a symlink, where netbuild needs a real folder (to reach c/d); nothing was changed`);
  });

  it("an lstat that fails is not remembered: the next look asks again", async () => {
    const root = tempDir();
    const { probe, hooks, calls } = countingProbe(root);
    const confined = new ConfinedRoot(root, probe, "TARGET_CONFLICT");
    hooks.lstat = () => {
      throw new Error("connection lost");
    };
    await expect(confined.check("a/b")).rejects.toThrow("connection lost");
    delete hooks.lstat;
    mkdirSync(path.join(root, "a"));
    await confined.check("a/b");
    expect(calls.lstat).toEqual(["a", "a"]);
  });

  it("forget: what netbuild itself renamed or removed is looked at again, with everything known below it, and nothing else", async () => {
    const root = tempDir();
    const { probe, calls } = countingProbe(root);
    const confined = new ConfinedRoot(root, probe, "TARGET_CONFLICT");
    await confined.prepare("by-mac/m1/x/y/ipxe");
    await confined.prepare("by-mac/m1/z/ipxe");
    await confined.prepare("by-host/h/ipxe");
    // A folder replaced by a link (copy mode → links): the old folder is forgotten, and the link is then seen.
    rmSync(path.join(root, "by-mac/m1"), { recursive: true });
    symlinkSync("../by-host/h", path.join(root, "by-mac/m1"));
    expect(await confined.blockedAt("by-mac/m1/x/y/ipxe")).toBeUndefined();
    calls.lstat.length = 0;
    confined.forget("by-mac/m1");
    expect(await confined.blockedAt("by-mac/m1/x/y/ipxe")).toEqual({ path: "by-mac/m1", kind: "symlink" });
    // Only what was forgotten was asked again (by-mac was not).
    expect(calls.lstat).toEqual(["by-mac/m1"]);
    // Below a forgotten folder nothing stays known: a made-again folder is looked at afresh.
    rmSync(path.join(root, "by-mac/m1"));
    confined.forget("by-mac/m1");
    calls.lstat.length = 0;
    await confined.prepare("by-mac/m1/x/y/ipxe");
    await confined.prepare("by-mac/m1/z/ipxe");
    // Every folder that was known below it (m1/x/y, and m1/z beside m1/x) is looked at again.
    expect(calls.lstat).toEqual(["by-mac/m1", "by-mac/m1/x", "by-mac/m1/x/y", "by-mac/m1/z"]);
    // Forgetting a path never looked at, or a file, is harmless.
    confined.forget("nothing/here");
    confined.forget("by-host/h/ipxe");
    calls.lstat.length = 0;
    await confined.check("by-host/h/ipxe");
    expect(calls.lstat).toEqual([]);
  });

  it("paths that would leave the root are refused before any lookup", async () => {
    const root = tempDir();
    const { probe, calls } = countingProbe(root);
    const confined = new ConfinedRoot(root, probe, "TARGET_CONFLICT");
    for (const bad of ["../x", "/etc/passwd", "a/../../b", ""]) {
      for (const op of ["check", "prepare", "blockedAt"] as const) await expect(confined[op](bad), `${op} ${JSON.stringify(bad)}`).rejects.toThrow(/^refusing a path that /);
    }
    expect(() => checkRel("by-host/../../x")).toThrow(/^refusing a path that .*: "by-host\/\.\.\/\.\.\/x"$/);
    expect(checkRel("by-host/a/ipxe")).toBe("by-host/a/ipxe");
    expect(calls.lstat).toEqual([]);
  });
});

describe("conflict messages", () => {
  it("names up to eight paths and counts the rest; each kind in words", () => {
    const problems = Array.from({ length: 10 }, (_, i) => ({ path: `by-mac/m${i}`, what: "a symlink" }));
    const e = conflictError("TARGET_CONFLICT", "/srv/boot", problems);
    expect(e.message).toBe(`/srv/boot: ${problems.slice(0, 8).map((p) => `${p.path} is a symlink`).join("; ")}; and 2 more; nothing was changed`);
    expect(e.exitCode).toBe(2);
    expect(e.hint).toMatch(/^netbuild never writes through a link/);
    expect(conflictError("OUT_CONFLICT", "out", problems.slice(0, 8)).message).not.toContain("more");
    // A name with a control character is shown escaped, never as is.
    expect(conflictError("OUT_CONFLICT", "out", [{ path: "by-host/a\u001b[31m", what: "a file" }]).message).not.toContain("\u001b");
    expect((["file", "dir", "symlink", "other"] as const).map(describeKind)).toEqual(["a file", "a folder", "a symlink", "a special file (device, FIFO or socket)"]);
    const root = tempDir();
    mkdirSync(path.join(root, "d"));
    writeFileSync(path.join(root, "f"), "");
    symlinkSync("d", path.join(root, "l"));
    execFileSync("mkfifo", [path.join(root, "p")]);
    expect(["d", "f", "l", "p", "none"].map((n) => localKind(lstatSync(path.join(root, n), { throwIfNoEntry: false })))).toEqual(["dir", "file", "symlink", "other", undefined]);
  });
});
