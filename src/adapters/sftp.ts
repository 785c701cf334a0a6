// The target file system over SFTP (OpenSSH's sftp-server, internal-sftp, or any server with
// `posix-rename@openssh.com`). Every replace is a rename of a complete file onto its final name;
// large files go with many writes in flight and the largest chunk the server accepts (that is what
// makes it as fast as OpenSSH's own client); nothing is held in memory whole.
import { createHash } from "node:crypto";
import type { SFTPWrapper, Stats } from "ssh2";
import { UserError } from "../errors.ts";
import { connectSsh, type SshOptions } from "./ssh.ts";
import { ConfinedRoot, conflictError } from "./confine.ts";
import { checkRel, tempName, type TargetFs, type TargetStat } from "./target-fs.ts";

const NO_SUCH_FILE = 2;
/** OpenSSH's sftp-server accepts writes of up to 255 KiB (limits@openssh.com). */
const MAX_CHUNK = 255 * 1024;
const IN_FLIGHT = 16;
/** A file's first read, asked for with its size: scripts and the lock fit in it. */
const FIRST_READ = 64 * 1024;

function errno(e: unknown): number | undefined {
  return (e as { code?: number }).code;
}

function kindOf(st: Stats): TargetStat["kind"] {
  return st.isSymbolicLink() ? "symlink" : st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
}

/** Single-quoted for a POSIX shell (the remote side of an exec request is always a shell string). */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

export async function sftpTargetFs(location: { user: string | undefined; host: string; port: number | undefined; path: string }, options: SshOptions): Promise<TargetFs> {
  const conn = await connectSsh(location.host, location.user, location.port, options);
  const client = conn.sftp;
  const sftp = (client as unknown as { sftp: SFTPWrapper }).sftp;
  const root = location.path;
  const abs = (rel: string) => `${root}/${checkRel(rel)}`;
  const description = `sftp://${conn.label}${root.startsWith("/") ? "" : "/~/"}${root}`;
  const fail = (what: string, rel: string, e: unknown): never => {
    if (e instanceof UserError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    throw new UserError("DEPLOY_FAILED", `${what} ${rel} on ${description} failed: ${message}`, {
      hint: failureHint(message),
    });
  };
  /** What to do about a request the server refused, by what it said. */
  const failureHint = (message: string): string => {
    if (/permission/i.test(message)) return `the SSH user ${conn.resolved.user} cannot write there: check the folder's owner and mode`;
    if (/space|quota/i.test(message)) return "the boot server's disk is full: free space (netbuild gc removes old generations) and deploy again";
    // SSH_FX_FAILURE: OpenSSH's sftp-server says only "Failure" when its disk is full, among other things.
    if (message === "Failure") return "the server gave no reason (it does so when its disk is full): check its free space (netbuild gc removes old generations), then deploy again; a deploy finishes what an interrupted one left";
    return "run it again: a deploy finishes what an interrupted one left (what arrived complete is not sent twice)";
  };
  // A dropped connection must fail what is in flight (ssh2 leaves some callbacks, fastPut's among them, unanswered).
  let lost: Error | undefined;
  const waiting = new Set<(e: Error) => void>();
  const lose = (e: Error) => {
    lost ??= e;
    for (const reject of waiting) reject(lost);
    waiting.clear();
  };
  const ssh = (client as unknown as { client: import("ssh2").Client }).client;
  ssh.on("close", () => lose(new Error(`the connection to ${conn.label} was lost`)));
  // After the session is up, an error of the connection (ECONNRESET, a timeout) is the connection lost.
  ssh.on("error", (e: Error) => lose(new Error(`the connection to ${conn.label} was lost (${e.message})`)));
  sftp.on("close", () => lose(new Error(`the SFTP session on ${conn.label} ended`)));
  const call = <T>(fn: (cb: (err: Error | undefined | null, value?: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => {
      if (lost) return reject(lost);
      waiting.add(reject);
      fn((err, value) => {
        waiting.delete(reject);
        if (err) reject(err);
        else resolve(value as T);
      });
    });

  let rootReady = false;
  /** The target folder itself is created when missing, but not its parents: a mistyped path should fail, not grow a tree. */
  async function ensureRoot(): Promise<void> {
    if (rootReady) return;
    try {
      const st = await call<Stats>((cb) => sftp.stat(root, cb));
      if (!st.isDirectory()) throw new UserError("TARGET_NOT_A_TREE", `${description} is not a folder`, { hint: "point the target at a folder" });
    } catch (e) {
      if (e instanceof UserError) throw e;
      if (errno(e) !== NO_SUCH_FILE) fail("checking", ".", e);
      try {
        await call((cb) => sftp.mkdir(root, cb));
      } catch (e2) {
        throw new UserError("DEPLOY_FAILED", `cannot create the target folder ${description}: ${(e2 as Error).message}`, { hint: "netbuild creates the target folder but not its parents: check the path, or create them on the server" });
      }
    }
    rootReady = true;
  }
  // Folders are checked (lstat: a link where a folder should be is a conflict, never followed) and made one by one, each once per connection.
  const confined = new ConfinedRoot(description, { lstat: async (rel) => (await stat(rel))?.kind, mkdir: (rel) => call((cb) => sftp.mkdir(abs(rel), cb)) }, "TARGET_CONFLICT");
  async function prepare(rel: string): Promise<void> {
    await ensureRoot();
    await confined.prepare(rel).catch((e: unknown) => fail("creating the folders of", rel, e));
  }

  async function stat(rel: string): Promise<TargetStat | undefined> {
    try {
      const st = await call<Stats>((cb) => sftp.lstat(abs(rel), cb));
      return { kind: kindOf(st), size: st.size, mtimeMs: st.mtime * 1000 };
    } catch (e) {
      if (errno(e) === NO_SUCH_FILE) return undefined;
      return fail("checking", rel, e);
    }
  }

  async function rename(from: string, to: string): Promise<void> {
    await confined.check(from);
    await prepare(to);
    try {
      await call((cb) => sftp.ext_openssh_rename(abs(from), abs(to), cb));
      confined.forget(from);
      confined.forget(to);
    } catch (e) {
      if (/not supported|extension/i.test(String(e))) {
        throw new UserError("DEPLOY_FAILED", `${description} does not support posix-rename@openssh.com, so files cannot be replaced atomically`, { hint: "use an OpenSSH server (its sftp-server or internal-sftp), or a local target on a mounted folder" });
      }
      fail("renaming into place", to, e);
    }
  }

  /** Removes what is at a temporary name (a file or a link: unlink never follows); a folder there is a conflict. */
  async function clearTemp(rel: string): Promise<void> {
    const st = await stat(rel);
    if (st === undefined) return;
    if (st.kind === "dir") throw conflictError("TARGET_CONFLICT", description, [{ path: rel, what: "a folder, where netbuild writes its temporary file" }]);
    await call((cb) => sftp.unlink(abs(rel), cb));
  }

  /** Runs `fn` for each item, IN_FLIGHT at a time; the first failure is rethrown once all in flight have settled. */
  async function inFlight<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    let failed: { e: unknown } | undefined;
    const worker = async () => {
      while (next < items.length && failed === undefined) {
        const item = items[next++]!;
        await fn(item).catch((e: unknown) => void (failed ??= { e }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
    if (failed) throw failed.e;
  }

  /** Offsets of the chunks of `size` bytes from `from`. */
  const chunksOf = (from: number, size: number, chunk: number) => Array.from({ length: Math.ceil(Math.max(0, size - from) / chunk) }, (_, i) => from + i * chunk);

  /**
   * Writes `content` to a file it creates (`wx`: never through a link that is there). `temp`: `rel`
   * is a temporary name, cleared (clearTemp) when something already stands there; only then, so a
   * free name, the usual case, costs no look first.
   */
  async function writeAll(rel: string, content: Buffer, flags: "w" | "wx", temp = false): Promise<void> {
    const open = () => call<Buffer>((cb) => sftp.open(abs(rel), flags, 0o644 as never, cb as never));
    const handle = await open().catch(async (e: unknown) => {
      if (!temp) throw e;
      await clearTemp(rel);
      return open();
    });
    const chunk = Math.min(MAX_CHUNK, (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? MAX_CHUNK);
    try {
      // Several chunks in flight, not one round trip each (a 10,000-host deployed.json is 2 MB): the
      // file is a temporary name or a new one nothing reaches yet, so the order they land in does not matter.
      await inFlight(chunksOf(0, content.length, chunk), (off) => call((cb) => sftp.write(handle, content, off, Math.min(chunk, content.length - off), off, cb)));
    } finally {
      await call((cb) => sftp.close(handle, cb));
    }
  }

  /** Reads `len` bytes at `pos` into `buf` at `off`, however many reads that takes; fewer only at the end of the file. */
  async function readAt(handle: Buffer, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
    let got = 0;
    while (got < len) {
      const n = await call<number>((cb) => sftp.read(handle, buf, off + got, len - got, pos + got, cb as never));
      if (!n) break;
      got += n;
    }
    return got;
  }

  /**
   * The whole file, as ssh2's readFile reads it (its size from fstat, read up to that size or the end
   * of the file), but with its size and first chunk asked for at once, and a large file's other
   * chunks read several at a time: a script or the lock is three round trips, a 2 MB record not ten.
   */
  async function readAll(rel: string): Promise<Buffer> {
    const handle = await call<Buffer>((cb) => sftp.open(abs(rel), "r", 0o666 as never, cb as never));
    try {
      const chunk = Math.min(MAX_CHUNK, (sftp as unknown as { _maxReadLen?: number })._maxReadLen ?? MAX_CHUNK);
      const first = Buffer.allocUnsafe(Math.min(chunk, FIRST_READ));
      const [st, got] = await Promise.all([call<Stats>((cb) => sftp.fstat(handle, cb)).catch(() => call<Stats>((cb) => sftp.stat(abs(rel), cb))), readAt(handle, first, 0, first.length, 0)]);
      if (st.size === 0) {
        // A size the server does not know (a file of /proc, say): read until nothing comes.
        const parts = [first.subarray(0, got)];
        for (let pos = got, n = got; n > 0; pos += n) {
          const buf = Buffer.allocUnsafe(chunk);
          n = await readAt(handle, buf, 0, chunk, pos);
          parts.push(buf.subarray(0, n));
        }
        return Buffer.concat(parts);
      }
      if (got >= st.size || got < first.length) return Buffer.from(first.subarray(0, Math.min(got, st.size)));
      const data = Buffer.allocUnsafe(st.size);
      first.copy(data, 0, 0, got);
      const short: number[] = [];
      await inFlight(chunksOf(got, st.size, chunk), async (off) => {
        const len = Math.min(chunk, st.size - off);
        const n = await readAt(handle, data, off, len, off);
        if (n < len) short.push(off + n);
      });
      // The file ended early (it shrank meanwhile): what was there up to that end.
      return short.length > 0 ? data.subarray(0, Math.min(...short)) : data;
    } finally {
      await call((cb) => sftp.close(handle, cb));
    }
  }

  return {
    description,
    blockedAt: (rel) => confined.blockedAt(rel),
    lookAgain: () => confined.forgetAll(),
    stat,
    async readFile(rel) {
      await confined.check(rel);
      try {
        return await readAll(rel);
      } catch (e) {
        if (errno(e) === NO_SUCH_FILE) return undefined;
        return fail("reading", rel, e);
      }
    },
    async readlink(rel) {
      try {
        return await call<string>((cb) => sftp.readlink(abs(rel), cb));
      } catch {
        return undefined;
      }
    },
    async createExclusive(rel, content) {
      await prepare(rel);
      let handle: Buffer;
      try {
        handle = await call<Buffer>((cb) => sftp.open(abs(rel), "wx", 0o644 as never, cb as never));
      } catch (e) {
        if (await stat(rel)) return false;
        return fail("creating", rel, e);
      }
      try {
        const data = Buffer.from(content);
        await call((cb) => sftp.write(handle, data, 0, data.length, 0, cb));
      } catch (e) {
        // Never leave an empty lock behind: it would read as a lock nobody can explain.
        await call((cb) => sftp.close(handle, cb)).catch(() => undefined);
        await call((cb) => sftp.unlink(abs(rel), cb)).catch(() => undefined);
        return fail("creating", rel, e);
      }
      await call((cb) => sftp.close(handle, cb));
      return true;
    },
    async writeFile(rel, content, options) {
      await prepare(rel);
      const to = options?.direct ? rel : tempName(rel);
      try {
        // Always O_EXCL: in place only where nothing is, and the temporary name (fixed, so
        // predictable) cleared when taken, never written through a link someone left there.
        await writeAll(to, Buffer.from(content), "wx", to !== rel);
      } catch (e) {
        fail("writing", rel, e);
      }
      if (to !== rel) await rename(to, rel);
    },
    async upload(localFile, rel, size, progress) {
      await prepare(rel);
      const tmp = tempName(rel);
      const chunkSize = Math.min(MAX_CHUNK, (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? MAX_CHUNK);
      try {
        // fastPut opens its file with O_TRUNC, no O_EXCL: the temporary name is made here first, a
        // new regular file of ours, so the upload cannot land behind a link.
        await writeAll(tmp, Buffer.alloc(0), "wx", true);
        await call((cb) =>
          sftp.fastPut(localFile, abs(tmp), { concurrency: IN_FLIGHT, chunkSize, mode: 0o644, step: (sent: number, _chunk: number, total: number) => progress?.(sent, total) }, cb),
        );
      } catch (e) {
        fail("uploading", rel, e);
      }
      const arrived = await stat(tmp);
      if (arrived?.kind !== "file" || arrived.size !== size) {
        throw new UserError("DEPLOY_FAILED", `${rel}: ${arrived?.size ?? 0} bytes arrived on ${description}, ${size} were sent`, { hint: "deploy again; the served tree was not switched to it" });
      }
      await rename(tmp, rel);
    },
    async symlink(target, rel, options) {
      await prepare(rel);
      const to = options?.direct ? rel : tempName(rel);
      const make = () => call((cb) => sftp.symlink(target, abs(to), cb));
      try {
        await make();
      } catch (e) {
        // A leftover temporary link of an interrupted deploy: replace it.
        if (to === rel || !(await stat(to))) fail("creating the link", rel, e);
        await call((cb) => sftp.unlink(abs(to), cb));
        await make().catch((e2: unknown) => fail("creating the link", rel, e2));
      }
      if (to !== rel) await rename(to, rel);
      else confined.forget(rel);
    },
    rename: (from, to) => rename(from, to),
    async remove(rel) {
      await confined.check(rel);
      try {
        await call((cb) => sftp.unlink(abs(rel), cb));
        confined.forget(rel);
      } catch (e) {
        if (errno(e) !== NO_SUCH_FILE) fail("removing", rel, e);
      }
    },
    async removeDir(rel) {
      await confined.check(rel);
      try {
        await call((cb) => sftp.rmdir(abs(rel), cb));
        confined.forget(rel);
        return true;
      } catch {
        return false;
      }
    },
    async list(rel) {
      if (rel !== ".") await confined.check(`${rel}/x`);
      try {
        const entries = await call<{ filename: string; attrs: Stats }[]>((cb) => sftp.readdir(rel === "." ? root : abs(rel), cb as never));
        return entries.map((e) => ({ name: e.filename, kind: kindOf(e.attrs) }));
      } catch (e) {
        if (errno(e) === NO_SUCH_FILE) return [];
        return fail("listing", rel, e);
      }
    },
    async touch(rel) {
      await confined.check(rel);
      const now = Date.now() / 1000;
      await call((cb) => sftp.utimes(abs(rel), now, now, cb));
    },
    async sha256(rel) {
      // Hash on the server when it lets us run sha256sum; otherwise read the file back.
      // Under `ForceCommand internal-sftp` the command runs an SFTP server instead: ending our side
      // ends it, and no 64-hex-digit answer means "read it back" (so does a silent server, after a while).
      await confined.check(rel);
      const st = await stat(rel);
      const remote = await new Promise<string | undefined>((resolve) => {
        if (lost) return resolve(undefined);
        let settled = false;
        const done = (v: string | undefined) => {
          if (!settled) resolve(v);
          settled = true;
        };
        const timer = setTimeout(() => done(undefined), 30_000 + ((st?.size ?? 0) / (20 * 1024 * 1024)) * 1000);
        timer.unref();
        ssh.exec(`sha256sum -- ${shellQuote(abs(rel))}`, (err, stream) => {
          if (err) return done(undefined);
          let out = "";
          stream.on("data", (d: Buffer) => (out += d.toString()));
          stream.stderr.on("data", () => undefined);
          stream.on("close", (code: number) => {
            clearTimeout(timer);
            done(code === 0 ? /^([0-9a-f]{64})\s/.exec(out)?.[1] : undefined);
          });
          stream.end();
        });
      });
      if (remote) return remote;
      const h = createHash("sha256");
      await new Promise<void>((resolve, reject) => {
        sftp
          .createReadStream(abs(rel))
          .on("data", (d: Buffer) => h.update(d))
          .on("end", () => resolve())
          .on("error", reject);
      });
      return h.digest("hex");
    },
    async freeBytes() {
      try {
        await ensureRoot();
        const st = await call<{ f_frsize: number | bigint; f_bavail: number | bigint }>((cb) => sftp.ext_openssh_statvfs(root, cb));
        return Number(st.f_bavail) * Number(st.f_frsize);
      } catch (e) {
        if (e instanceof UserError) throw e;
        return undefined; // the server does not offer statvfs@openssh.com
      }
    },
    async readOutside(absolute) {
      let st: Stats;
      try {
        st = await call<Stats>((cb) => sftp.stat(absolute, cb));
      } catch (e) {
        if (errno(e) === NO_SUCH_FILE) return undefined;
        throw new UserError("SSH_FAILED", `reading ${absolute} on ${conn.label} failed: ${(e as Error).message}`, { hint: /permission/i.test(String(e)) ? `the SSH user ${conn.resolved.user} cannot read it: web servers' logs are often readable by the adm group only` : "check the path" });
      }
      if (!st.isFile()) throw new UserError("USAGE", `${absolute} on ${conn.label} is not a regular file`, { hint: "name the web server's access log" });
      const stream = sftp.createReadStream(absolute);
      // A connection lost mid-read ends the stream with an error (ssh2 would leave it waiting).
      const onLost = (e: Error) => stream.destroy(e);
      waiting.add(onLost);
      stream.once("close", () => waiting.delete(onLost));
      return stream;
    },
    async close() {
      lost ??= new Error("closed");
      await client.end().catch(() => undefined);
    },
  };
}
