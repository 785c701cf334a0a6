// The confinement rule's synchronous form (prepareSync), on a real folder: what the inventory cache
// uses for the root's .netbuild/. The async form is proven through every writer in
// test/confinement.test.ts; this one runs in-process, so Stryker's mutants of it are tested here.
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.ts";
import { localKind, prepareSync } from "../../src/adapters/confine.ts";
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
