// The local target backend (src/adapters/target-fs.ts, localTargetFs) on a real folder: what each
// operation does where nothing is, where something is, and where something is in the way (a link,
// a folder, a FIFO), read back with node:fs. The SFTP backend has the same tests in sftp.test.ts.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statfsSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localTargetFs } from "../../src/adapters/target-fs.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";
import { onSmallDisk } from "../support/tools.ts";

describe("a local folder as a deploy target", () => {
  afterAll(cleanupTempDirs);

  it("reports each kind of path by lstat, with its size and mtime, and nothing for a missing one", async () => {
    const root = tempDir();
    writeFileSync(path.join(root, "f"), "12345");
    mkdirSync(path.join(root, "d"));
    symlinkSync("f", path.join(root, "l"));
    execFileSync("mkfifo", [path.join(root, "p")]);
    const fs = localTargetFs(root);
    const f = await fs.stat("f");
    expect(f).toEqual({ kind: "file", size: 5, mtimeMs: statSync(path.join(root, "f")).mtimeMs });
    expect((await fs.stat("d"))?.kind).toBe("dir");
    expect((await fs.stat("l"))?.kind).toBe("symlink");
    expect((await fs.stat("p"))?.kind).toBe("other");
    expect(await fs.stat("none")).toBeUndefined();
    expect((await fs.list(".")).sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual([
      { name: "d", kind: "dir" },
      { name: "f", kind: "file" },
      { name: "l", kind: "symlink" },
      { name: "p", kind: "other" },
    ]);
    expect(await fs.list("none")).toEqual([]);
    await expect(fs.list("f")).rejects.toMatchObject({ code: "TARGET_CONFLICT" });
    expect(await fs.readlink("l")).toBe("f");
    expect(await fs.readlink("f")).toBeUndefined();
    expect(await fs.readFile("none")).toBeUndefined();
    await expect(fs.readFile("d")).rejects.toMatchObject({ code: "EISDIR" });
    expect((await fs.readFile("f"))?.toString()).toBe("12345");
    expect(await fs.sha256("f")).toBe(createHash("sha256").update("12345").digest("hex"));
    await expect(fs.sha256("none")).rejects.toMatchObject({ code: "ENOENT" });
    // A target folder that is a file: listing it fails, it is not "empty".
    writeFileSync(path.join(root, "plain"), "");
    await expect(localTargetFs(path.join(root, "plain")).list(".")).rejects.toMatchObject({ code: "ENOTDIR" });
    // A name the file system refuses is that error, not "someone holds it".
    await expect(fs.createExclusive(`.netbuild/${"x".repeat(300)}`, "lock")).rejects.toMatchObject({ code: "ENAMETOOLONG" });
  });

  it("replaces a file through its fixed temporary name (a new inode), clearing a link there without following it, and refuses a folder there", async () => {
    const root = tempDir();
    const elsewhere = tempDir();
    writeFileSync(path.join(elsewhere, "victim"), "keep");
    const fs = localTargetFs(root);
    await fs.writeFile("by-host/a/ipxe", "one");
    const first = statSync(path.join(root, "by-host/a/ipxe")).ino;
    symlinkSync(path.join(elsewhere, "victim"), path.join(root, "by-host/a/.ipxe.netbuild-tmp"));
    await fs.writeFile("by-host/a/ipxe", "two");
    expect(readFileSync(path.join(root, "by-host/a/ipxe"), "utf8")).toBe("two");
    expect(statSync(path.join(root, "by-host/a/ipxe")).ino).not.toBe(first);
    expect(readFileSync(path.join(elsewhere, "victim"), "utf8")).toBe("keep");
    expect(readdirSync(path.join(root, "by-host/a"))).toEqual(["ipxe"]);
    mkdirSync(path.join(root, "by-host/a/.ipxe.netbuild-tmp"));
    await expect(fs.writeFile("by-host/a/ipxe", "three")).rejects.toMatchObject({ code: "TARGET_CONFLICT", message: `${root}: by-host/a/.ipxe.netbuild-tmp is a folder, where netbuild writes its temporary file; nothing was changed` });
    expect(readFileSync(path.join(root, "by-host/a/ipxe"), "utf8")).toBe("two");
    // In place only where nothing is.
    await fs.writeFile("by-host/b/ipxe", "new", { direct: true });
    expect(readFileSync(path.join(root, "by-host/b/ipxe"), "utf8")).toBe("new");
    await expect(fs.writeFile("by-host/b/ipxe", "again", { direct: true })).rejects.toMatchObject({ code: "EEXIST" });
    expect(readFileSync(path.join(root, "by-host/b/ipxe"), "utf8")).toBe("new");
  });

  it("uploads a file whole or not at all: a size other than planned fails and leaves neither the file nor its temporary name", async () => {
    const root = tempDir();
    const source = path.join(tempDir(), "initrd");
    writeFileSync(source, "x".repeat(1000));
    const fs = localTargetFs(root);
    const progress: [number, number][] = [];
    await fs.upload(source, "by-class/c/k1/initrd", 1000, (sent, total) => progress.push([sent, total]));
    expect(readFileSync(path.join(root, "by-class/c/k1/initrd"), "utf8")).toBe("x".repeat(1000));
    expect(progress).toEqual([[1000, 1000]]);
    await expect(fs.upload(source, "by-class/c/k2/initrd", 999)).rejects.toThrow("by-class/c/k2/initrd: 1000 bytes arrived, 999 expected");
    expect(readdirSync(path.join(root, "by-class/c/k2"))).toEqual([]);
    // Without a progress callback; and a local file that is not there fails as such, leaving nothing.
    await fs.upload(source, "by-class/c/k3/initrd", 1000);
    expect(statSync(path.join(root, "by-class/c/k3/initrd")).size).toBe(1000);
    await expect(fs.upload(path.join(root, "no-such-initrd"), "by-class/c/k4/initrd", 5)).rejects.toThrow(`ENOENT: no such file or directory, open '${path.join(root, "no-such-initrd")}'`);
    expect(readdirSync(path.join(root, "by-class/c/k4"))).toEqual([]);
  });

  it("on a full disk, a lock that cannot be written is not left behind, and a file that cannot be written leaves the served one and no temporary file", async (t) => {
    const root = tempDir();
    await onSmallDisk(t, root, async () => {
      const fs = localTargetFs(root);
      await fs.writeFile("by-host/h1/ipxe", "#!ipxe\nold\n");
      mkdirSync(path.join(root, ".netbuild"));
      try {
        writeFileSync(path.join(root, "filler"), Buffer.alloc(1024 * 1024));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      await expect(fs.createExclusive(".netbuild/lock", `pid 1 ${"x".repeat(64 * 1024)}\n`)).rejects.toMatchObject({ code: "ENOSPC" });
      expect(readdirSync(path.join(root, ".netbuild"))).toEqual([]);
      await expect(fs.writeFile("by-host/h1/ipxe", "x".repeat(64 * 1024))).rejects.toMatchObject({ code: "ENOSPC" });
      expect(readdirSync(path.join(root, "by-host/h1"))).toEqual(["ipxe"]);
      expect(readFileSync(path.join(root, "by-host/h1/ipxe"), "utf8")).toBe("#!ipxe\nold\n");
    });
  });

  it("creates a file exclusively (once), makes links in place or by a rename, renames, removes files but not folders, and removes only empty folders", async () => {
    const root = path.join(tempDir(), "not", "yet");
    const fs = localTargetFs(root);
    expect(await fs.createExclusive(".netbuild/lock", "mine\n")).toBe(true);
    expect(await fs.createExclusive(".netbuild/lock", "theirs\n")).toBe(false);
    expect(readFileSync(path.join(root, ".netbuild/lock"), "utf8")).toBe("mine\n");
    await fs.symlink("../by-host/a", "by-mac/m1", { direct: true });
    await expect(fs.symlink("../by-host/b", "by-mac/m1", { direct: true })).rejects.toMatchObject({ code: "EEXIST" });
    await fs.symlink("../by-host/b", "by-mac/m1");
    expect(readlinkSync(path.join(root, "by-mac/m1"))).toBe("../by-host/b");
    await fs.rename("by-mac/m1", "by-mac/m2");
    expect(readdirSync(path.join(root, "by-mac"))).toEqual(["m2"]);
    await fs.remove("by-mac/m2");
    await fs.remove("by-mac/none");
    expect(readdirSync(path.join(root, "by-mac"))).toEqual([]);
    mkdirSync(path.join(root, "by-host/a"), { recursive: true });
    writeFileSync(path.join(root, "by-host/a/ipxe"), "x");
    await expect(fs.remove("by-host/a")).rejects.toThrow();
    expect(await fs.removeDir("by-host/a")).toBe(false);
    await fs.remove("by-host/a/ipxe");
    expect(await fs.removeDir("by-host/a")).toBe(true);
    expect(existsSync(path.join(root, "by-host/a"))).toBe(false);
    expect(lstatSync(path.join(root, "by-host")).isDirectory()).toBe(true);
  });

  it("refreshes a file's mtime (the lock's heartbeat), and says how much space is free, or nothing when it cannot tell", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    writeFileSync(path.join(root, "f"), "x");
    const old = new Date(Date.now() - 100_000);
    utimesSync(path.join(root, "f"), old, old);
    await fs.touch("f");
    expect(Date.now() - statSync(path.join(root, "f")).mtimeMs).toBeLessThan(10_000);
    const free = await fs.freeBytes();
    const st = statfsSync(root);
    // Other processes write to the same disk meanwhile.
    expect(Math.abs(free! - st.bavail * st.bsize)).toBeLessThanOrEqual(st.bavail * st.bsize * 0.02);
    expect(free).toBeGreaterThan(1024 * 1024);
    writeFileSync(path.join(root, "file"), "");
    expect(await localTargetFs(path.join(root, "file", "below")).freeBytes()).toBeUndefined();
  });

  it("what netbuild itself linked, renamed or removed is looked at again: nothing is later written or removed through a link standing where it knew a folder, or nothing", async () => {
    const root = tempDir();
    const elsewhere = tempDir();
    writeFileSync(path.join(elsewhere, "ipxe"), "keep");
    const fs = localTargetFs(root);
    const refused = { code: "TARGET_CONFLICT" };
    mkdirSync(path.join(root, "by-mac"));
    // A link made where nothing was (as the deploy links by-mac/<mac>), by a rename and in place;
    // then renamed there. Each time the path was first seen missing.
    for (const [name, make] of [
      ["m1", () => fs.symlink(elsewhere, "by-mac/m1")],
      ["m2", () => fs.symlink(elsewhere, "by-mac/m2", { direct: true })],
      ["m3", async () => (await fs.symlink(elsewhere, "by-mac/t3", { direct: true }), await fs.rename("by-mac/t3", "by-mac/m3"))],
    ] as const) {
      expect(await fs.readFile(`by-mac/${name}/ipxe`)).toBeUndefined();
      await make();
      await expect(fs.remove(`by-mac/${name}/ipxe`), name).rejects.toMatchObject(refused);
      await expect(fs.writeFile(`by-mac/${name}/ipxe`, "evil"), name).rejects.toMatchObject(refused);
    }
    // A folder netbuild removed, or renamed away, with a link put in its place by someone else.
    await fs.writeFile("by-host/a/ipxe", "a");
    await fs.remove("by-host/a/ipxe");
    expect(await fs.removeDir("by-host/a")).toBe(true);
    symlinkSync(elsewhere, path.join(root, "by-host/a"));
    await expect(fs.writeFile("by-host/a/ipxe", "evil"), "removed").rejects.toMatchObject(refused);
    await fs.writeFile("by-host/b/ipxe", "b");
    await fs.rename("by-host/b", "by-host/.b-old");
    symlinkSync(elsewhere, path.join(root, "by-host/b"));
    await expect(fs.writeFile("by-host/b/ipxe", "evil"), "renamed away").rejects.toMatchObject(refused);
    expect(readdirSync(elsewhere)).toEqual(["ipxe"]);
    expect(readFileSync(path.join(elsewhere, "ipxe"), "utf8")).toBe("keep");
    // And the other way: a link netbuild removed makes way for the real folder (links → copy mode).
    expect(await fs.blockedAt("by-mac/m1/ipxe")).toEqual({ path: "by-mac/m1", kind: "symlink" });
    await fs.remove("by-mac/m1");
    await fs.writeFile("by-mac/m1/ipxe", "a copy");
    expect(readFileSync(path.join(root, "by-mac/m1/ipxe"), "utf8")).toBe("a copy");
    expect(lstatSync(path.join(root, "by-mac/m1")).isDirectory()).toBe(true);
  });

  it("reads a file of the machine outside the target (an access log) as a stream, only a regular file, never waiting on a FIFO", async () => {
    const dir = tempDir();
    const fs = localTargetFs(tempDir());
    writeFileSync(path.join(dir, "access.log"), "GET /boot.ipxe\n");
    const stream = await fs.readOutside(path.join(dir, "access.log"));
    const chunks: Buffer[] = [];
    for await (const c of stream!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("GET /boot.ipxe\n");
    expect(await fs.readOutside(path.join(dir, "none.log"))).toBeUndefined();
    expect(await fs.readOutside(path.join(dir, "access.log", "below"))).toBeUndefined();
    // Any other reason it cannot be opened is said (exit 2), with a hint.
    symlinkSync("loop", path.join(dir, "loop"));
    await expect(fs.readOutside(path.join(dir, "loop"))).rejects.toMatchObject({ code: "USAGE", message: `cannot read ${path.join(dir, "loop")}: ELOOP: too many symbolic links encountered, open '${path.join(dir, "loop")}'`, hint: "check the path, and that the user running netbuild may read it" });
    execFileSync("mkfifo", [path.join(dir, "fifo")]);
    await expect(fs.readOutside(path.join(dir, "fifo"))).rejects.toMatchObject({ code: "USAGE", message: `${path.join(dir, "fifo")} is not a regular file` });
    await expect(fs.readOutside(dir)).rejects.toMatchObject({ code: "USAGE", message: `${dir} is not a regular file` });
  });
});
