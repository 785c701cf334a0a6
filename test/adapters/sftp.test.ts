// The SFTP target backend (src/adapters/sftp.ts), called in-process against ONE real OpenSSH sshd
// on loopback, each test reading back with node:fs what the server's folder now holds: atomic
// replace (temporary name, then rename), O_EXCL creation, every stat kind, links, listing, touch,
// uploads and their size check, the confinement rule over SFTP (adapters/confine.ts: no link, file
// or FIFO where a folder should be; no path leaving the target), host keys (unknown, changed,
// --accept-new), and a connection the server drops (failing what follows, printing nothing).
//
// Why this file exists: mutation testing (vitest.mutation.config.ts) runs only files that start
// nothing slow, since a file's beforeAll runs again for every mutant it covers; deploy.test.ts and
// confinement.test.ts drive the same code end to end, but build and deploy whole trees first. So
// here: one sshd for the whole file (about 0.2 s to start) and one shared connection; tests needing
// their own (host keys, the target folder itself, a dropped connection) open one each. The
// end-to-end deploys stay in deploy.test.ts.
//
// The sshd serves SFTP in-process (`ForceCommand internal-sftp`, the same OpenSSH code as
// sftp-server): a subsystem command runs through the user's login shell, whose rc files can take
// seconds per session on a developer's machine. Under it `sha256` finds no sha256sum to run and
// reads the file back, which is what it does on such servers.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statfsSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sftpTargetFs } from "../../src/adapters/sftp.ts";
import type { SshOptions } from "../../src/adapters/ssh.ts";
import type { TargetFs } from "../../src/adapters/target-fs.ts";
import { parseTarget } from "../../src/core/target.ts";
import { UserError, type ErrorCode } from "../../src/errors.ts";
import { everyWrite, type OpenTarget } from "../support/deploy-steps.ts";
import { startSshd, type Sshd } from "../support/sshd.ts";
import { cannotRun, missing, onSmallDisk } from "../support/tools.ts";

const notHere = missing({ commands: ["ssh", "ssh-keygen", "mkfifo", "ps"], files: ["/usr/sbin/sshd"] });

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>, what = "the call"): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `${what} should have been refused`).toBeInstanceOf(Error);
  return e as Error;
}

async function userError(p: Promise<unknown>, code: ErrorCode, what = "the call"): Promise<UserError> {
  const e = await rejection(p, what);
  expect(e, `${what}: ${e.message}`).toBeInstanceOf(UserError);
  expect((e as UserError).code, `${what}: ${e.message}`).toBe(code);
  return e as UserError;
}

/** Every entry below `dir`: a link's target, a file's content and mtime, "dir" for a folder. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out[prefix + name] = `-> ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[prefix + name] = "dir";
        walk(p, `${prefix}${name}/`);
      } else out[prefix + name] = `${readFileSync(p, "utf8")} @${st.mtimeMs}`;
    }
  };
  walk(dir, "");
  return out;
}

describe.skipIf(notHere)("the SFTP target backend against a real sshd", () => {
  let sshd: Sshd;
  /** The shared target's folder (on this machine: the sshd is on loopback). */
  let root: string;
  let target: TargetFs;

  /** Opens a target as deploy does: a target spec (URL or scp style) parsed, SSH set up by the sshd's ssh_config. */
  async function open(spec: string, options: Partial<SshOptions> = {}): Promise<TargetFs> {
    const parsed = parseTarget(spec);
    if (!parsed.ok || parsed.value.kind !== "sftp") throw new Error(`not an SFTP target: ${spec}`);
    return sftpTargetFs(parsed.value, { configFile: sshd.sshConfig, env: {}, ...options });
  }

  beforeAll(async () => {
    sshd = await startSshd({ extraConfig: ["ForceCommand internal-sftp"] });
    root = path.join(sshd.dir, "served");
    mkdirSync(root);
    target = await open(`sftp://boot${root}`);
  });
  afterAll(async () => {
    await target?.close();
    await sshd?.stop();
  });

  let areas = 0;
  /** A folder of the shared target of one test's own (its paths are remembered per connection), not made yet. */
  function area(): { rel: (p: string) => string; at: (p?: string) => string } {
    const name = `t${++areas}`;
    return { rel: (p) => `${name}/${p}`, at: (p = "") => path.join(root, name, p) };
  }
  /** A folder outside every target, holding `h1/ipxe`: what a link planted on the target points to. */
  function victim(): string {
    const dir = mkdtempSync(path.join(sshd.dir, "victim-"));
    mkdirSync(path.join(dir, "h1"));
    writeFileSync(path.join(dir, "h1/ipxe"), "victim\n");
    return dir;
  }

  describe("opening a target", () => {
    it("opens sftp://<Host alias>/<folder> with the HostName, port, user and key of the ssh config, and names it by what it reached", async () => {
      expect(target.description).toBe(`sftp://${sshd.user}@127.0.0.1:${sshd.port}${root}`);
      const a = area();
      await target.writeFile(a.rel("hello"), "from netbuild\n");
      expect(readFileSync(a.at("hello"), "utf8")).toBe("from netbuild\n");
    });

    it("names a target folder given relative to the login folder (scp style) as ~/ on that server", async () => {
      const t = await open("boot:netbuild-tests/served");
      try {
        expect(t.description).toBe(`sftp://${sshd.user}@127.0.0.1:${sshd.port}/~/netbuild-tests/served`);
      } finally {
        await t.close();
      }
    });

    it("creates a missing target folder at the first write (not when opened) but never its parents, and refuses a file as the target folder", async () => {
      const fresh = path.join(sshd.dir, "fresh");
      const orphan = path.join(sshd.dir, "no-such-parent", "served");
      const file = path.join(sshd.dir, "a-file");
      writeFileSync(file, "not a folder\n");
      const [f, o, n] = await Promise.all([open(`boot:${fresh}`), open(`sftp://boot${orphan}`), open(`sftp://boot${file}`)]);
      try {
        expect(existsSync(fresh)).toBe(false);
        await f.writeFile("boot.ipxe", "#!ipxe\n");
        expect(lstatSync(fresh).isDirectory()).toBe(true);
        expect(readFileSync(path.join(fresh, "boot.ipxe"), "utf8")).toBe("#!ipxe\n");

        const e = await userError(o.writeFile("boot.ipxe", "#!ipxe\n"), "DEPLOY_FAILED");
        expect(e.message).toMatch(new RegExp(`^cannot create the target folder sftp://\\S+${orphan}: `));
        expect(e.hint).toBe("netbuild creates the target folder but not its parents: check the path, or create them on the server");
        expect(existsSync(path.dirname(orphan))).toBe(false);

        const e2 = await userError(n.writeFile("boot.ipxe", "#!ipxe\n"), "TARGET_NOT_A_TREE");
        expect([e2.message, e2.hint]).toEqual([`${n.description} is not a folder`, "point the target at a folder"]);
        await userError(n.freeBytes(), "TARGET_NOT_A_TREE", "freeBytes");
        expect(readFileSync(file, "utf8")).toBe("not a folder\n");

        // A target folder the server cannot even look at (a name too long for its file system) is
        // reported as such, not taken for a missing one to create.
        const long = await open(`sftp://boot${sshd.dir}/${"x".repeat(300)}/served`);
        try {
          const e3 = await userError(long.writeFile("boot.ipxe", "#!ipxe\n"), "DEPLOY_FAILED", "a target folder with a name too long");
          expect(e3.message).toBe(`checking . on ${long.description} failed: Bad message`);
        } finally {
          await long.close();
        }
      } finally {
        await Promise.all([f, o, n].map((t) => t.close()));
      }
    });
  });

  describe("host keys", () => {
    /** An ssh_config like the sshd's whose UserKnownHostsFile holds `lines`. */
    function clientWith(lines: string[]): { configFile: string; known: string } {
      const dir = mkdtempSync(path.join(sshd.dir, "client-"));
      const known = path.join(dir, "known_hosts");
      writeFileSync(known, lines.map((l) => `${l}\n`).join(""));
      const configFile = path.join(dir, "ssh_config");
      writeFileSync(configFile, readFileSync(sshd.sshConfig, "utf8").replace(`UserKnownHostsFile ${sshd.knownHosts}`, `UserKnownHostsFile ${known}`));
      return { configFile, known };
    }
    const hostKeyBlob = () => Buffer.from(sshd.knownHostsLine.split(" ")[2]!, "base64");

    it("refuses a server whose host key is not in known_hosts (HOST_KEY_UNKNOWN), naming its fingerprint, and touches nothing", async () => {
      const { configFile, known } = clientWith(["# nothing known yet"]);
      const folder = path.join(sshd.dir, "unknown-key-target");
      const e = await userError(open(`sftp://boot${folder}`, { configFile }), "HOST_KEY_UNKNOWN");
      const fp = `SHA256:${createHash("sha256").update(hostKeyBlob()).digest("base64").replace(/=+$/, "")}`;
      expect(e.message).toBe(`the host key of [127.0.0.1]:${sshd.port} is not in known_hosts: ssh-ed25519 ${fp}`);
      expect(readFileSync(known, "utf8")).toBe("# nothing known yet\n");
      expect(existsSync(folder)).toBe(false);
    });

    it("refuses a changed host key (HOST_KEY_CHANGED) naming the known_hosts line, even with --accept-new, and leaves the file as it was", async () => {
      const other = readFileSync(`${sshd.userKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
      const { configFile, known } = clientWith(["# boot servers", `[127.0.0.1]:${sshd.port} ${other}`]);
      const e = await userError(open(`sftp://boot${root}`, { configFile, acceptNew: true }), "HOST_KEY_CHANGED");
      expect(e.message).toContain(`the host key of [127.0.0.1]:${sshd.port} has CHANGED`);
      expect(e.message).toContain(`${known}:2 records a different ssh-ed25519 key`);
      expect(readFileSync(known, "utf8")).toBe(`# boot servers\n[127.0.0.1]:${sshd.port} ${other}\n`);
    });

    it("with --accept-new records an unknown host key in the UserKnownHostsFile, says so, and connects", async () => {
      const { configFile, known } = clientWith([]);
      const infos: string[] = [];
      const t = await open(`sftp://boot${root}`, { configFile, acceptNew: true, onInfo: (m) => infos.push(m) });
      try {
        const a = area();
        await t.writeFile(a.rel("accepted"), "yes\n");
        expect(readFileSync(a.at("accepted"), "utf8")).toBe("yes\n");
      } finally {
        await t.close();
      }
      expect(readFileSync(known, "utf8")).toBe(`${sshd.knownHostsLine}\n`);
      expect(infos).toEqual([expect.stringContaining(`ssh: added the host key of [127.0.0.1]:${sshd.port} (ssh-ed25519 SHA256:`)]);
    });
  });

  describe("reading", () => {
    it("stat tells a file (size, mtime), a folder, a symlink (not followed, even to a folder), something else and nothing apart", async () => {
      const a = area();
      mkdirSync(a.at("dir/sub"), { recursive: true });
      writeFileSync(a.at("file"), "12345");
      const when = new Date("2020-01-02T03:04:05Z");
      utimesSync(a.at("file"), when, when);
      symlinkSync("dir", a.at("link-to-dir"));
      symlinkSync("../nowhere", a.at("dangling"));
      execFileSync("mkfifo", [a.at("fifo")]);
      expect(await target.stat(a.rel("file"))).toEqual({ kind: "file", size: 5, mtimeMs: when.getTime() });
      expect((await target.stat(a.rel("dir")))?.kind).toBe("dir");
      expect(await target.stat(a.rel("link-to-dir"))).toMatchObject({ kind: "symlink", size: "dir".length });
      expect(await target.stat(a.rel("dangling"))).toMatchObject({ kind: "symlink", size: "../nowhere".length });
      expect((await target.stat(a.rel("fifo")))?.kind).toBe("other");
      expect(await target.stat(a.rel("missing"))).toBeUndefined();
      expect(await target.stat(a.rel("missing/deeper"))).toBeUndefined();
    });

    it("readFile returns the bytes the server holds at any size (empty, one read, just past the first read, a few chunks, more than are in flight at once), and undefined for nothing", async () => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      for (const size of [0, 10, 64 * 1024, 64 * 1024 + 1, 255 * 1024 + 7, 1024 * 1024 + 3, 4.5 * 1024 * 1024 + 1]) {
        const data = randomBytes(size);
        writeFileSync(a.at(`f${size}`), data);
        const got = await target.readFile(a.rel(`f${size}`));
        expect(got?.length, `${size} bytes`).toBe(size);
        expect(sha256(got!), `${size} bytes`).toBe(sha256(data));
      }
      expect(await target.readFile(a.rel("missing"))).toBeUndefined();
      // A folder is not a missing file: reading it fails, naming it.
      mkdirSync(a.at("folder"));
      const e = await userError(target.readFile(a.rel("folder")), "DEPLOY_FAILED", "readFile of a folder");
      expect(e.message).toMatch(new RegExp(`^reading ${a.rel("folder")} on `));
    });

    it("readFile reads a file whose size the server does not know (a file of /proc: its size says 0) to its end, however long", async () => {
      const kernel = await open("sftp://boot/proc/sys/kernel");
      const proc = await open("sftp://boot/proc");
      try {
        expect((await kernel.stat("ostype"))?.size).toBe(0);
        expect((await kernel.readFile("ostype"))?.toString()).toBe(readFileSync("/proc/sys/kernel/ostype", "utf8"));
        // Megabytes: many reads past the first, each as large as the server allows.
        const local = readFileSync("/proc/kallsyms");
        expect((await proc.stat("kallsyms"))?.size).toBe(0);
        expect(local.length).toBeGreaterThan(1024 * 1024);
        const got = await proc.readFile("kallsyms");
        expect(got?.length).toBe(local.length);
        expect(sha256(got!)).toBe(sha256(local));
      } finally {
        await kernel.close();
        await proc.close();
      }
    });

    it("readOutside streams a file anywhere on the server (a web server's access log), gives undefined for nothing there, and refuses a folder naming it", async () => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      const data = randomBytes(300 * 1024);
      writeFileSync(a.at("access.log"), data);
      const stream = await target.readOutside(a.at("access.log"));
      const parts: Buffer[] = [];
      for await (const part of stream!) parts.push(part as Buffer);
      expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
      expect(await target.readOutside(a.at("missing.log"))).toBeUndefined();
      const e = await userError(target.readOutside(a.at()), "USAGE", "readOutside of a folder");
      expect(e.message).toBe(`${a.at()} on ${sshd.user}@127.0.0.1:${sshd.port} is not a regular file`);
      expect(e.hint).toBe("name the web server's access log");
      // A path through a file is nothing there too; a name too long for the file system is an error, named.
      expect(await target.readOutside(a.at("access.log/deeper"))).toBeUndefined();
      const long = a.at("x".repeat(300));
      const e2 = await userError(target.readOutside(long), "SSH_FAILED", "readOutside of a name too long");
      expect(e2.message).toBe(`reading ${long} on ${sshd.user}@127.0.0.1:${sshd.port} failed: Bad message`);
      expect(e2.hint).toBe("check the path");
    });

    it("readlink gives a link's target as written; a file or nothing gives undefined", async () => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      symlinkSync("../by-host/h1", a.at("link"));
      writeFileSync(a.at("file"), "x");
      expect(await target.readlink(a.rel("link"))).toBe("../by-host/h1");
      expect(await target.readlink(a.rel("file"))).toBeUndefined();
      expect(await target.readlink(a.rel("missing"))).toBeUndefined();
    });

    it("list names each entry of a folder with its kind (links not followed); a missing folder lists as empty", async () => {
      const a = area();
      mkdirSync(a.at("d/sub"), { recursive: true });
      writeFileSync(a.at("d/file"), "x");
      symlinkSync("sub", a.at("d/link"));
      execFileSync("mkfifo", [a.at("d/fifo")]);
      const entries = await target.list(a.rel("d"));
      expect(entries.sort((x, y) => x.name.localeCompare(y.name))).toEqual([
        { name: "fifo", kind: "other" },
        { name: "file", kind: "file" },
        { name: "link", kind: "symlink" },
        { name: "sub", kind: "dir" },
      ]);
      expect(await target.list(a.rel("missing"))).toEqual([]);
      expect(await target.list(".")).toContainEqual({ name: path.basename(a.at()), kind: "dir" });
    });

    it("sha256 is the hash of the file as the server holds it", async () => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      const data = randomBytes(300 * 1024);
      writeFileSync(a.at("initrd"), data);
      expect(await target.sha256(a.rel("initrd"))).toBe(sha256(data));
    });

    it("freeBytes is the space free on the target's file system", async () => {
      const free = await target.freeBytes();
      const st = statfsSync(root);
      const local = st.bavail * st.bsize;
      expect(free).toBeGreaterThan(0);
      // Other processes write to the same disk meanwhile.
      expect(Math.abs(free! - local)).toBeLessThanOrEqual(local * 0.02);
    });
  });

  describe("writing", () => {
    it("writeFile replaces a file whole through a temporary name and a rename (a hard link to the old one keeps it), leaves no temporary file, and makes the folders on the way", async () => {
      const a = area();
      mkdirSync(a.at("by-host/h1"), { recursive: true });
      writeFileSync(a.at("by-host/h1/ipxe"), "old\n");
      linkSync(a.at("by-host/h1/ipxe"), a.at("kept"));
      await target.writeFile(a.rel("by-host/h1/ipxe"), "new\n");
      expect(readFileSync(a.at("by-host/h1/ipxe"), "utf8")).toBe("new\n");
      expect(readFileSync(a.at("kept"), "utf8")).toBe("old\n");
      expect(readdirSync(a.at("by-host/h1"))).toEqual(["ipxe"]);

      await target.writeFile(a.rel("by-class/demo/gen/ipxe"), "deep\n");
      expect(lstatSync(a.at("by-class/demo")).isDirectory()).toBe(true);
      expect(readdirSync(a.at("by-class/demo/gen"))).toEqual(["ipxe"]);
      expect(readFileSync(a.at("by-class/demo/gen/ipxe"), "utf8")).toBe("deep\n");
    });

    it("writeFile replaces a symlink standing at the path with a file, never writing through it", async () => {
      const a = area();
      const v = victim();
      mkdirSync(a.at(), { recursive: true });
      symlinkSync(path.join(v, "h1/ipxe"), a.at("boot.ipxe"));
      await target.writeFile(a.rel("boot.ipxe"), "#!ipxe\n");
      expect(lstatSync(a.at("boot.ipxe")).isFile()).toBe(true);
      expect(readFileSync(a.at("boot.ipxe"), "utf8")).toBe("#!ipxe\n");
      expect(readFileSync(path.join(v, "h1/ipxe"), "utf8")).toBe("victim\n");
    });

    it("writeFile removes a link left at the temporary name without following it, and refuses a folder there, changing nothing", async () => {
      const a = area();
      const v = victim();
      const before = snapshot(v);
      mkdirSync(a.at(), { recursive: true });
      symlinkSync(path.join(v, "h1/ipxe"), a.at(".boot.ipxe.netbuild-tmp"));
      await target.writeFile(a.rel("boot.ipxe"), "#!ipxe\n");
      expect(readFileSync(a.at("boot.ipxe"), "utf8")).toBe("#!ipxe\n");
      expect(readdirSync(a.at())).toEqual(["boot.ipxe"]);
      expect(snapshot(v)).toEqual(before);

      writeFileSync(a.at("script"), "old\n");
      mkdirSync(a.at(".script.netbuild-tmp"));
      const e = await userError(target.writeFile(a.rel("script"), "new\n"), "TARGET_CONFLICT");
      expect(e.message).toBe(`${target.description}: ${a.rel(".script.netbuild-tmp")} is a folder, where netbuild writes its temporary file; nothing was changed`);
      expect(readFileSync(a.at("script"), "utf8")).toBe("old\n");
      expect(lstatSync(a.at(".script.netbuild-tmp")).isDirectory()).toBe(true);
    });

    it("writeFile direct writes the path itself, only where nothing is: a link there is refused, not followed", async () => {
      const a = area();
      const v = victim();
      await target.writeFile(a.rel("by-host/new/ipxe"), "fresh\n", { direct: true });
      expect(readFileSync(a.at("by-host/new/ipxe"), "utf8")).toBe("fresh\n");
      expect(readdirSync(a.at("by-host/new"))).toEqual(["ipxe"]);

      symlinkSync(path.join(v, "h1/ipxe"), a.at("by-host/taken"));
      const e = await userError(target.writeFile(a.rel("by-host/taken"), "mine\n", { direct: true }), "DEPLOY_FAILED");
      expect(e.message).toMatch(new RegExp(`^writing ${a.rel("by-host/taken")} on sftp://\\S+ failed: `));
      expect(readFileSync(path.join(v, "h1/ipxe"), "utf8")).toBe("victim\n");
      expect(lstatSync(a.at("by-host/taken")).isSymbolicLink()).toBe(true);
    });

    it("writeFile sends a file of many chunks whole", async () => {
      const a = area();
      // Six chunks of 255 KiB, in flight at once; UTF-8, as a record is. (Under 2 MB: past the SSH
      // channel's window, ssh2 and OpenSSH stall for seconds on a connection's first such write.
      // Reads, past 4 MB, show that each of the 16 in flight goes on to the next chunk.)
      const text = `${randomBytes(0.75 * 1024 * 1024).toString("hex")}é→`;
      await target.writeFile(a.rel(".netbuild/deployed.json"), text);
      const got = readFileSync(a.at(".netbuild/deployed.json"));
      expect(got.length).toBe(Buffer.byteLength(text));
      expect(got.toString("utf8") === text).toBe(true);
    });

    it("a write the server's disk cannot hold fails, naming the path, and the file served before it stays as it was", async (t) => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      await onSmallDisk(t, a.at(), async () => {
        await target.writeFile(a.rel("by-host/h1/ipxe"), "#!ipxe\nold\n");
        // Several chunks in flight at once, most of which do not fit.
        const e = await userError(target.writeFile(a.rel("by-host/h1/ipxe"), randomBytes(1024 * 1024).toString("hex")), "DEPLOY_FAILED");
        expect(e.message).toBe(`writing ${a.rel("by-host/h1/ipxe")} on ${target.description} failed: Failure`);
        expect(e.hint).toBe("the server gave no reason (it does so when its disk is full): check its free space (netbuild gc removes old generations), then deploy again; a deploy finishes what an interrupted one left");
        expect(readFileSync(a.at("by-host/h1/ipxe"), "utf8")).toBe("#!ipxe\nold\n");
      });
    });

    it("on a full disk, creating the lock leaves no empty lock behind, and an upload fails naming its path, the old file still served", async (t) => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      await onSmallDisk(t, a.at(), async () => {
        mkdirSync(a.at(".netbuild"));
        mkdirSync(a.at("by-class/demo/abc"), { recursive: true });
        writeFileSync(a.at("by-class/demo/abc/initrd"), "old initrd\n");
        const local = path.join(sshd.dir, "local-initrd");
        writeFileSync(local, randomBytes(1024 * 1024));
        // Fill the disk: what is left cannot hold a byte more.
        try {
          writeFileSync(a.at("filler"), Buffer.alloc(1024 * 1024));
        } catch (e) {
          expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
        }
        const lock = await userError(target.createExclusive(a.rel(".netbuild/lock"), `pid 1 ${"x".repeat(8192)}\n`), "DEPLOY_FAILED", "a lock on a full disk");
        expect(lock.message).toBe(`creating ${a.rel(".netbuild/lock")} on ${target.description} failed: Failure`);
        expect(readdirSync(a.at(".netbuild"))).toEqual([]);

        const up = await userError(target.upload(local, a.rel("by-class/demo/abc/initrd"), 1024 * 1024), "DEPLOY_FAILED", "an upload to a full disk");
        expect(up.message).toBe(`uploading ${a.rel("by-class/demo/abc/initrd")} on ${target.description} failed: Failure`);
        expect(up.hint).toMatch(/^the server gave no reason \(it does so when its disk is full\)/);
        expect(readFileSync(a.at("by-class/demo/abc/initrd"), "utf8")).toBe("old initrd\n");
      });
    });

    it("in a folder the server will not let it change (chattr +i), each write, lock, link and removal fails naming its path, with a hint to check the folder's owner and mode; nothing changes", async (t) => {
      const a = area();
      mkdirSync(a.at("by-host/h1"), { recursive: true });
      writeFileSync(a.at("by-host/h1/ipxe"), "#!ipxe\nold\n");
      try {
        execFileSync("chattr", ["+i", a.at("by-host/h1")], { stdio: ["ignore", "ignore", "pipe"] });
      } catch (e) {
        return cannotRun(t, `a folder the server may not change: chattr +i failed: ${(e as Error).message}`);
      }
      try {
        const hint = `the SSH user ${sshd.user} cannot write there: check the folder's owner and mode`;
        const refused = async (p: Promise<unknown>, what: string) => {
          const e = await userError(p, "DEPLOY_FAILED", what);
          expect(e.message).toBe(`${what} on ${target.description} failed: Permission denied`);
          expect(e.hint).toBe(hint);
        };
        await refused(target.writeFile(a.rel("by-host/h1/ipxe"), "#!ipxe\nnew\n"), `writing ${a.rel("by-host/h1/ipxe")}`);
        await refused(target.createExclusive(a.rel("by-host/h1/lock"), "pid 1\n"), `creating ${a.rel("by-host/h1/lock")}`);
        await refused(target.symlink("../../by-host/h1", a.rel("by-host/h1/link")), `creating the link ${a.rel("by-host/h1/link")}`);
        await refused(target.remove(a.rel("by-host/h1/ipxe")), `removing ${a.rel("by-host/h1/ipxe")}`);
        await refused(target.writeFile(a.rel("by-host/h1/sub/ipxe"), "#!ipxe\n"), `creating the folders of ${a.rel("by-host/h1/sub/ipxe")}`);
        expect(readdirSync(a.at("by-host/h1"))).toEqual(["ipxe"]);
        expect(readFileSync(a.at("by-host/h1/ipxe"), "utf8")).toBe("#!ipxe\nold\n");
      } finally {
        execFileSync("chattr", ["-i", a.at("by-host/h1")]);
      }
    });

    it("createExclusive creates the file with its content once; a file or a link (even a dangling one) already there makes it false, changing nothing", async () => {
      const a = area();
      const v = victim();
      expect(await target.createExclusive(a.rel(".netbuild/lock"), "pid 1\n")).toBe(true);
      expect(readFileSync(a.at(".netbuild/lock"), "utf8")).toBe("pid 1\n");
      expect(await target.createExclusive(a.rel(".netbuild/lock"), "pid 2\n")).toBe(false);
      expect(readFileSync(a.at(".netbuild/lock"), "utf8")).toBe("pid 1\n");

      symlinkSync(path.join(v, "not-yet"), a.at(".netbuild/planted"));
      expect(await target.createExclusive(a.rel(".netbuild/planted"), "pid 3\n")).toBe(false);
      expect(existsSync(path.join(v, "not-yet"))).toBe(false);
      expect(lstatSync(a.at(".netbuild/planted")).isSymbolicLink()).toBe(true);
    });

    it("upload copies a local file into place, reports its progress, and a size that does not match leaves the old file served", async () => {
      const a = area();
      const local = path.join(sshd.dir, "local-kernel");
      const data = randomBytes(600 * 1024 + 5);
      writeFileSync(local, data);
      const steps: [number, number][] = [];
      await target.upload(local, a.rel("by-class/demo/abc/kernel"), data.length, (sent, total) => steps.push([sent, total]));
      expect(sha256(readFileSync(a.at("by-class/demo/abc/kernel")))).toBe(sha256(data));
      expect(readdirSync(a.at("by-class/demo/abc"))).toEqual(["kernel"]);
      expect(steps.at(-1)).toEqual([data.length, data.length]);

      // A temporary file an interrupted upload left is replaced, never appended to.
      writeFileSync(a.at("by-class/demo/abc/.initrd.netbuild-tmp"), "left by an interrupted deploy, longer than what comes\n".repeat(20_000));
      await target.upload(local, a.rel("by-class/demo/abc/initrd"), data.length);
      expect(sha256(readFileSync(a.at("by-class/demo/abc/initrd")))).toBe(sha256(data));
      expect(readdirSync(a.at("by-class/demo/abc")).sort()).toEqual(["initrd", "kernel"]);

      writeFileSync(a.at("by-class/demo/abc/initrd"), "old initrd\n");
      const e = await userError(target.upload(local, a.rel("by-class/demo/abc/initrd"), data.length + 1), "DEPLOY_FAILED");
      expect(e.message).toBe(`${a.rel("by-class/demo/abc/initrd")}: ${data.length} bytes arrived on ${target.description}, ${data.length + 1} were sent`);
      expect(readFileSync(a.at("by-class/demo/abc/initrd"), "utf8")).toBe("old initrd\n");
    });

    it("rename moves a file into place over the one there, making the folders of its new path; a missing source fails, changing nothing", async () => {
      const a = area();
      mkdirSync(a.at(), { recursive: true });
      writeFileSync(a.at("from"), "moved\n");
      await target.rename(a.rel("from"), a.rel("deep/er/to"));
      expect(existsSync(a.at("from"))).toBe(false);
      expect(readFileSync(a.at("deep/er/to"), "utf8")).toBe("moved\n");

      writeFileSync(a.at("x"), "new\n");
      writeFileSync(a.at("y"), "old\n");
      await target.rename(a.rel("x"), a.rel("y"));
      expect(existsSync(a.at("x"))).toBe(false);
      expect(readFileSync(a.at("y"), "utf8")).toBe("new\n");

      const e = await userError(target.rename(a.rel("nope"), a.rel("y")), "DEPLOY_FAILED");
      expect(e.message).toMatch(new RegExp(`^renaming into place ${a.rel("y")} on sftp://\\S+ failed: `));
      expect(readFileSync(a.at("y"), "utf8")).toBe("new\n");
    });

    it("remove unlinks a file, or a link (never what it points to); nothing there is fine; a folder is refused and stays", async () => {
      const a = area();
      const v = victim();
      mkdirSync(a.at("folder"), { recursive: true });
      writeFileSync(a.at("folder/inside"), "x");
      writeFileSync(a.at("file"), "x");
      symlinkSync(path.join(v, "h1"), a.at("link"));
      await target.remove(a.rel("file"));
      await target.remove(a.rel("link"));
      await target.remove(a.rel("missing"));
      expect(readdirSync(a.at())).toEqual(["folder"]);
      expect(readFileSync(path.join(v, "h1/ipxe"), "utf8")).toBe("victim\n");

      const e = await userError(target.remove(a.rel("folder")), "DEPLOY_FAILED");
      expect(e.message).toMatch(new RegExp(`^removing ${a.rel("folder")} on sftp://\\S+ failed: `));
      expect(readFileSync(a.at("folder/inside"), "utf8")).toBe("x");
    });

    it("removeDir removes an empty folder only, and says whether it went", async () => {
      const a = area();
      mkdirSync(a.at("empty"), { recursive: true });
      mkdirSync(a.at("full"));
      writeFileSync(a.at("full/file"), "x");
      expect(await target.removeDir(a.rel("empty"))).toBe(true);
      expect(existsSync(a.at("empty"))).toBe(false);
      expect(await target.removeDir(a.rel("full"))).toBe(false);
      expect(readFileSync(a.at("full/file"), "utf8")).toBe("x");
      expect(await target.removeDir(a.rel("missing"))).toBe(false);
    });

    it("symlink makes a link, replaces one there (and a leftover at the temporary name) through a rename; direct refuses a taken path", async () => {
      const a = area();
      await target.symlink("../by-host/h1", a.rel("by-mac/52-54-00-00-00-01"));
      expect(readlinkSync(a.at("by-mac/52-54-00-00-00-01"))).toBe("../by-host/h1");
      await target.symlink("../by-host/h2", a.rel("by-mac/52-54-00-00-00-01"));
      expect(readlinkSync(a.at("by-mac/52-54-00-00-00-01"))).toBe("../by-host/h2");

      symlinkSync("stale", a.at("by-mac/.52-54-00-00-00-02.netbuild-tmp"));
      await target.symlink("../by-host/h3", a.rel("by-mac/52-54-00-00-00-02"));
      expect(readlinkSync(a.at("by-mac/52-54-00-00-00-02"))).toBe("../by-host/h3");
      expect(readdirSync(a.at("by-mac")).sort()).toEqual(["52-54-00-00-00-01", "52-54-00-00-00-02"]);

      await target.symlink("../by-host/h4", a.rel("by-mac/52-54-00-00-00-03"), { direct: true });
      expect(readlinkSync(a.at("by-mac/52-54-00-00-00-03"))).toBe("../by-host/h4");
      const e = await userError(target.symlink("../by-host/h5", a.rel("by-mac/52-54-00-00-00-03"), { direct: true }), "DEPLOY_FAILED");
      expect(e.message).toMatch(new RegExp(`^creating the link ${a.rel("by-mac/52-54-00-00-00-03")} on sftp://\\S+ failed: `));
      expect(readlinkSync(a.at("by-mac/52-54-00-00-00-03"))).toBe("../by-host/h4");
    });

    it("touch sets the modification time to now", async () => {
      const a = area();
      mkdirSync(a.at(".netbuild"), { recursive: true });
      writeFileSync(a.at(".netbuild/lock"), "pid 1\n");
      const old = new Date("2001-01-01T00:00:00Z");
      utimesSync(a.at(".netbuild/lock"), old, old);
      const before = Date.now();
      await target.touch(a.rel(".netbuild/lock"));
      const after = Date.now();
      const mtime = lstatSync(a.at(".netbuild/lock")).mtimeMs;
      expect(mtime).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(mtime).toBeLessThanOrEqual(after + 1000);
      expect(readFileSync(a.at(".netbuild/lock"), "utf8")).toBe("pid 1\n");
    });
  });

  describe("confinement (adapters/confine.ts) over SFTP", () => {
    it("refuses every write, rename, link, removal, read, listing and touch through a symlink where a folder should be, and touches nothing behind it", async () => {
      const a = area();
      const v = victim();
      mkdirSync(a.at("good"), { recursive: true });
      writeFileSync(a.at("good/file"), "good\n");
      symlinkSync(v, a.at("by-host"));
      const local = path.join(sshd.dir, "small-upload");
      writeFileSync(local, "kernel\n");
      const before = snapshot(v);
      const inside = a.rel("by-host/h1/ipxe");
      expect(await target.blockedAt(inside)).toEqual({ path: a.rel("by-host"), kind: "symlink" });
      const attempts: [string, () => Promise<unknown>][] = [
        ["writeFile", () => target.writeFile(inside, "mine\n")],
        ["writeFile direct", () => target.writeFile(a.rel("by-host/h2/ipxe"), "mine\n", { direct: true })],
        ["createExclusive", () => target.createExclusive(a.rel("by-host/lock"), "pid 1\n")],
        ["upload", () => target.upload(local, inside, 7)],
        ["symlink", () => target.symlink("../by-host/h1", a.rel("by-host/link"))],
        ["rename into", () => target.rename(a.rel("good/file"), inside)],
        ["rename out of", () => target.rename(inside, a.rel("good/taken"))],
        ["remove", () => target.remove(inside)],
        ["removeDir", () => target.removeDir(a.rel("by-host/h1"))],
        ["readFile", () => target.readFile(inside)],
        ["list", () => target.list(a.rel("by-host"))],
        ["touch", () => target.touch(inside)],
        ["sha256", () => target.sha256(inside)],
      ];
      for (const [what, attempt] of attempts) {
        const e = await userError(attempt(), "TARGET_CONFLICT", what);
        expect(e.message, what).toMatch(new RegExp(`^sftp://\\S+: ${a.rel("by-host")} is a symlink, where netbuild needs a real folder \\(to reach ${a.rel("by-host")}/[^)]+\\); nothing was changed$`));
      }
      expect(snapshot(v)).toEqual(before);
      expect(snapshot(a.at())).toEqual({ "by-host": `-> ${v}`, good: "dir", "good/file": expect.stringMatching(/^good\n @/) });
    });

    it("what netbuild itself linked, renamed or removed is looked at again: nothing is later written or removed through a link standing where it knew a folder, or nothing", async () => {
      const a = area();
      const v = victim();
      const before = snapshot(v);
      mkdirSync(a.at("by-mac"), { recursive: true });
      // A link made where nothing was, by a rename and in place; then renamed there. Each time the path was first seen missing.
      for (const [name, make] of [
        ["m1", () => target.symlink(path.join(v, "h1"), a.rel("by-mac/m1"))],
        ["m2", () => target.symlink(path.join(v, "h1"), a.rel("by-mac/m2"), { direct: true })],
        ["m3", async () => (await target.symlink(path.join(v, "h1"), a.rel("by-mac/t3"), { direct: true }), await target.rename(a.rel("by-mac/t3"), a.rel("by-mac/m3")))],
      ] as const) {
        expect(await target.readFile(a.rel(`by-mac/${name}/ipxe`))).toBeUndefined();
        await make();
        await userError(target.remove(a.rel(`by-mac/${name}/ipxe`)), "TARGET_CONFLICT", `remove through ${name}`);
        await userError(target.writeFile(a.rel(`by-mac/${name}/ipxe`), "evil"), "TARGET_CONFLICT", `write through ${name}`);
      }
      // A folder netbuild removed, or renamed away, with a link put in its place by someone else.
      await target.writeFile(a.rel("by-host/a/ipxe"), "a");
      await target.remove(a.rel("by-host/a/ipxe"));
      expect(await target.removeDir(a.rel("by-host/a"))).toBe(true);
      symlinkSync(path.join(v, "h1"), a.at("by-host/a"));
      await userError(target.writeFile(a.rel("by-host/a/ipxe"), "evil"), "TARGET_CONFLICT", "removed");
      await target.writeFile(a.rel("by-host/b/ipxe"), "b");
      await target.rename(a.rel("by-host/b"), a.rel("by-host/.b-old"));
      symlinkSync(path.join(v, "h1"), a.at("by-host/b"));
      await userError(target.writeFile(a.rel("by-host/b/ipxe"), "evil"), "TARGET_CONFLICT", "renamed away");
      expect(snapshot(v)).toEqual(before);
      // And the other way: a link netbuild removed makes way for the real folder (links → copy mode).
      expect(await target.blockedAt(a.rel("by-mac/m1/ipxe"))).toEqual({ path: a.rel("by-mac/m1"), kind: "symlink" });
      await target.remove(a.rel("by-mac/m1"));
      await target.writeFile(a.rel("by-mac/m1/ipxe"), "a copy");
      expect(readFileSync(a.at("by-mac/m1/ipxe"), "utf8")).toBe("a copy");
    });

    it("a file or a FIFO where a folder should be is a conflict too, naming what is there; a missing folder is no obstacle", async () => {
      const a = area();
      mkdirSync(a.at("real"), { recursive: true });
      writeFileSync(a.at("plain"), "a file\n");
      execFileSync("mkfifo", [a.at("fifo")]);
      expect(await target.blockedAt(a.rel("plain/x"))).toEqual({ path: a.rel("plain"), kind: "file" });
      expect(await target.blockedAt(a.rel("fifo/x/y"))).toEqual({ path: a.rel("fifo"), kind: "other" });
      expect(await target.blockedAt(a.rel("real/x"))).toBeUndefined();
      expect(await target.blockedAt(a.rel("missing/x/y"))).toBeUndefined();

      const e = await userError(target.writeFile(a.rel("plain/x"), "x"), "TARGET_CONFLICT");
      expect(e.message).toContain(`: ${a.rel("plain")} is a file, where netbuild needs a real folder (to reach ${a.rel("plain/x")})`);
      const e2 = await userError(target.symlink("t", a.rel("fifo/link")), "TARGET_CONFLICT");
      expect(e2.message).toContain(`: ${a.rel("fifo")} is a special file (device, FIFO or socket), where netbuild needs a real folder`);
      expect(readFileSync(a.at("plain"), "utf8")).toBe("a file\n");
      expect(lstatSync(a.at("fifo")).isFIFO()).toBe(true);
      expect(readdirSync(a.at()).sort()).toEqual(["fifo", "plain", "real"]);
    });

    it("refuses a path that would leave the target folder (or is not a plain relative path) before anything is sent", async () => {
      const outside = path.join(sshd.dir, "outside");
      writeFileSync(outside, "outside\n");
      mkdirSync(path.join(sshd.dir, "outside-empty"), { recursive: true });
      const local = path.join(sshd.dir, "small-upload");
      writeFileSync(local, "kernel\n");
      const attempts: [string, () => Promise<unknown>][] = [
        ["writeFile", () => target.writeFile("../outside", "mine\n")],
        ["writeFile direct", () => target.writeFile("../outside-new", "mine\n", { direct: true })],
        ["writeFile deeper", () => target.writeFile("by-host/../../outside", "mine\n")],
        ["createExclusive", () => target.createExclusive("../outside-new", "pid 1\n")],
        ["upload", () => target.upload(local, "../outside", 7)],
        ["symlink", () => target.symlink("/etc", "../outside-new")],
        ["rename out of", () => target.rename("../outside", "stolen")],
        ["rename into", () => target.rename("stolen", "../outside")],
        ["remove", () => target.remove("../outside")],
        ["removeDir", () => target.removeDir("../outside-empty")],
        ["touch", () => target.touch("../outside")],
        ["readFile", () => target.readFile("../outside")],
        ["sha256", () => target.sha256("../outside")],
        ["list", () => target.list("..")],
      ];
      for (const [what, attempt] of attempts) {
        const e = await rejection(attempt(), what);
        expect(e.message, what).toMatch(/refusing a path that has a `\.\.` part \(it would leave the folder\): "/);
      }
      for (const [bad, problem] of [
        [outside, "is absolute"],
        ["", "is empty"],
        ["by-host//ipxe", "has an empty or `.` part"],
        ["by-host/./ipxe", "has an empty or `.` part"],
        ["by-host\\ipxe", "has a backslash"],
        ["by-host\nipxe", "has a control character"],
      ] as const) {
        const e = await rejection(target.writeFile(bad, "mine\n"), JSON.stringify(bad));
        expect(e.message).toContain(`refusing a path that ${problem}: ${JSON.stringify(bad)}`);
      }
      expect(readFileSync(outside, "utf8")).toBe("outside\n");
      expect(existsSync(path.join(sshd.dir, "outside-new"))).toBe(false);
      expect(existsSync(path.join(sshd.dir, "outside-empty"))).toBe(true);
      expect(existsSync(path.join(root, "stolen"))).toBe(false);
      expect(readdirSync(root).filter((n) => !/^t\d+$/.test(n))).toEqual([]);
    });
  });

  describe("deploys over SFTP stopped at each write", () => {
    it("a links → copies switch with a new class generation, dropped at each write: every machine boots something whole meanwhile (or, for the switch's one rename, nothing, its new entry whole beside it), and the next deploy finishes it or undoes it (test/support/deploy-steps.ts)", async () => {
      const opened: OpenTarget = async () => {
        const a = area();
        const fs = await open(`sftp://boot${a.at()}`);
        return { fs, root: a.at(), close: () => fs.close() };
      };
      expect(await everyWrite(opened, mkdtempSync(path.join(sshd.dir, "out-")), "links", "copy")).toBeGreaterThanOrEqual(10);
    }, 120_000);
  });

  describe("on a server that runs commands (no ForceCommand)", () => {
    let other: Sshd | undefined;
    let fakeBin: string;
    beforeAll(async () => {
      // Its sha256sum hashes the path it is given, not the file: its answers are told from a read-back
      // by that, and show the path arrived whole through the remote shell.
      fakeBin = mkdtempSync(path.join(sshd.dir, "bin-"));
      writeFileSync(
        path.join(fakeBin, "sha256sum"),
        [
          "#!/bin/sh",
          '[ "$1" = -- ] || exit 2',
          'of_path=$(printf %s "$2" | /usr/bin/sha256sum | cut -c1-64)',
          'case "$2" in',
          '  *exit-1*) printf \'%s  %s\\n\' "$of_path" "$2"; exit 1 ;;',
          '  *garbled*) printf \'x%s  %s\\n\' "$of_path" "$2" ;;',
          '  *short*) printf \'%s  %s\\n\' "$(echo "$of_path" | cut -c1-63)" "$2" ;;',
          '  *) printf \'%s  %s\\n\' "$of_path" "$2" ;;',
          "esac",
          "",
        ].join("\n"),
        { mode: 0o755 },
      );
      other = await startSshd({ extraConfig: [`SetEnv PATH=${fakeBin}:/usr/bin:/bin`] });
    });
    afterAll(async () => {
      await other?.stop();
    });

    it("sha256 takes the server's own sha256sum's answer, the path quoted whole for its shell, and reads the file back when sha256sum fails or gives no hash", async () => {
      const dir = path.join(other!.dir, "served");
      mkdirSync(dir);
      const t = await sftpTargetFs({ user: undefined, host: "boot", port: undefined, path: dir }, { configFile: other!.sshConfig, env: {} });
      try {
        const data = randomBytes(100 * 1024);
        for (const name of ["initrd", "it's a $(kernel) `x` \"y\"", "exit-1", "garbled", "short"]) writeFileSync(path.join(dir, name), data);
        const ofPath = (name: string) => createHash("sha256").update(`${dir}/${name}`).digest("hex");
        expect(await t.sha256("initrd")).toBe(ofPath("initrd"));
        expect(await t.sha256("it's a $(kernel) `x` \"y\"")).toBe(ofPath("it's a $(kernel) `x` \"y\""));
        for (const name of ["exit-1", "garbled", "short"]) expect(await t.sha256(name), name).toBe(sha256(data));
      } finally {
        await t.close();
      }
    });
  });

  describe("the connection", () => {
    it("a connection the server drops prints nothing on stdout, and every call after it fails naming the lost connection, sending nothing", async () => {
      const listener = Number(readFileSync(path.join(sshd.dir, "pid"), "utf8"));
      const sessions = () =>
        new Set(
          execFileSync("ps", ["-o", "pid=", "--ppid", String(listener)], { encoding: "utf8" })
            .split(/\s+/)
            .filter(Boolean)
            .map(Number),
        );
      const printed = [vi.spyOn(process.stdout, "write"), vi.spyOn(console, "log"), vi.spyOn(console, "error"), vi.spyOn(console, "info")];
      try {
        const others = sessions();
        const t = await open(`sftp://boot${root}`);
        const a = area();
        await t.writeFile(a.rel("before-the-drop"), "ok\n");
        expect(readFileSync(a.at("before-the-drop"), "utf8")).toBe("ok\n");
        // This connection's server process only: the shared one goes on.
        const mine = [...sessions()].filter((pid) => !others.has(pid));
        expect(mine.length).toBeGreaterThan(0);
        for (const pid of mine) process.kill(pid, "SIGKILL");

        const lost = new RegExp(`^checking ${a.rel("before-the-drop")} on sftp://\\S+ failed: (the connection to ${sshd.user}@127\\.0\\.0\\.1:${sshd.port} was lost|the SFTP session on ${sshd.user}@127\\.0\\.0\\.1:${sshd.port} ended)`);
        const e = await vi.waitFor(
          async () => {
            const err = await t.stat(a.rel("before-the-drop")).then(
              () => undefined,
              (x: unknown) => x as Error,
            );
            if (!err) throw new Error("the connection still answers");
            return err;
          },
          { timeout: 5_000, interval: 20 },
        );
        expect(e).toBeInstanceOf(UserError);
        expect((e as UserError).code).toBe("DEPLOY_FAILED");
        expect(e.message).toMatch(lost);
        await userError(t.writeFile(a.rel("after-the-drop"), "x\n"), "DEPLOY_FAILED", "a write after the drop");
        expect(existsSync(a.at("after-the-drop"))).toBe(false);
        await t.close();
        // The shared connection was not touched.
        await target.writeFile(a.rel("still-served"), "yes\n");
        expect(readFileSync(a.at("still-served"), "utf8")).toBe("yes\n");
        for (const spy of printed) expect(spy.mock.calls).toEqual([]);
      } finally {
        for (const spy of printed) spy.mockRestore();
      }
    });
  });
});
