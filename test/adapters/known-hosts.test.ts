// known_hosts verification against real OpenSSH: keys made by ssh-keygen, hashed entries made by
// `ssh-keygen -H`, and where it matters the lines we pick cross-checked with `ssh-keygen -F`.
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addHostKey, checkHostKey, fingerprint, keyTypeOf, knownHostsName, knownKeyTypes } from "../../src/adapters/known-hosts.ts";
import { missing } from "../support/tools.ts";

const notHere = missing({ commands: ["ssh-keygen"] });
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "netbuild-known-hosts-"));
  dirs.push(d);
  return d;
}

interface Key { pub: string; line: string; blob: Buffer; type: string }

/** A fresh key pair from ssh-keygen; `line` is the public part as `type base64` (no comment). */
function makeKey(type: "ed25519" | "ecdsa"): Key {
  const file = path.join(tempDir(), "key");
  execFileSync("ssh-keygen", ["-q", "-t", type, ...(type === "ecdsa" ? ["-b", "256"] : []), "-N", "", "-C", "", "-f", file]);
  const [kt, b64] = readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/) as [string, string];
  return { pub: `${file}.pub`, line: `${kt} ${b64}`, blob: Buffer.from(b64, "base64"), type: kt };
}

function knownHosts(lines: string[]): string {
  const file = path.join(tempDir(), "known_hosts");
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

/** The line numbers `ssh-keygen -F name -f file` reports as matching (none: exit status 1). */
function sshKeygenFind(file: string, name: string): number[] {
  let out: string;
  try {
    out = execFileSync("ssh-keygen", ["-F", name, "-f", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
  return [...out.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
}

describe.skipIf(notHere)("known_hosts", () => {
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  const a = notHere ? undefined! : makeKey("ed25519");
  const b = notHere ? undefined! : makeKey("ed25519");
  const ec = notHere ? undefined! : makeKey("ecdsa");

  it("accepts a key listed under the plain host name for port 22, but not for another port", async () => {
    const file = knownHosts(["# deploy targets", "", `other.example.org ${b.line}`, `boot.example.org ${a.line} root@boot`]);
    expect(await checkHostKey([file], "boot.example.org", 22, a.blob)).toEqual({ status: "known", match: { file, line: 4, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "boot.example.org")).toEqual([4]);
    expect(await checkHostKey([file], "boot.example.org", 2222, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(sshKeygenFind(file, "[boot.example.org]:2222")).toEqual([]);
  });

  it("accepts a key listed as [host]:port only for that port", async () => {
    const file = knownHosts([`127.0.0.1 ${b.line}`, `[127.0.0.1]:2200 ${b.line}`, `[127.0.0.1]:2222 ${a.line}`]);
    expect(await checkHostKey([file], "127.0.0.1", 2222, a.blob)).toEqual({ status: "known", match: { file, line: 3, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "[127.0.0.1]:2222")).toEqual([3]);
    expect((await checkHostKey([file], "127.0.0.1", 22, a.blob)).status).toBe("changed");
  });

  it("matches entries hashed by ssh-keygen -H, and only for the hashed name and port", async () => {
    const file = knownHosts([`other.example.org ${b.line}`, `[127.0.0.1]:2222 ${a.line}`, `boot.example.org ${ec.line}`]);
    execFileSync("ssh-keygen", ["-q", "-H", "-f", file], { stdio: "ignore" });
    expect(readFileSync(file, "utf8")).not.toMatch(/127\.0\.0\.1|example\.org/);
    const [line] = sshKeygenFind(file, "[127.0.0.1]:2222");
    expect(await checkHostKey([file], "127.0.0.1", 2222, a.blob)).toEqual({ status: "known", match: { file, line, keyType: "ssh-ed25519" } });
    const [ecLine] = sshKeygenFind(file, "boot.example.org");
    expect(await checkHostKey([file], "boot.example.org", 22, ec.blob)).toEqual({ status: "known", match: { file, line: ecLine, keyType: "ecdsa-sha2-nistp256" } });
    expect(await checkHostKey([file], "127.0.0.1", 2223, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(await checkHostKey([file], "127.0.0.2", 2222, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
  });

  it("matches * and ? wildcards, including inside [host]:port", async () => {
    const file = knownHosts([`*.boot.example.org ${a.line}`, `[10.0.0.?]:2222 ${b.line}`]);
    expect((await checkHostKey([file], "n1.boot.example.org", 22, a.blob)).status).toBe("known");
    expect((await checkHostKey([file], "boot.example.org", 22, a.blob)).status).toBe("unknown");
    expect(sshKeygenFind(file, "n1.boot.example.org")).toEqual([1]);
    expect(await checkHostKey([file], "10.0.0.7", 2222, b.blob)).toEqual({ status: "known", match: { file, line: 2, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "[10.0.0.7]:2222")).toEqual([2]);
    expect((await checkHostKey([file], "10.0.0.17", 2222, b.blob)).status).toBe("unknown");
  });

  it("treats a line whose !pattern matches the host as not about that host", async () => {
    const file = knownHosts([`*.example.org,!bad.example.org ${a.line}`, `bad.example.org ${b.line}`]);
    expect((await checkHostKey([file], "good.example.org", 22, a.blob)).status).toBe("known");
    expect(await checkHostKey([file], "bad.example.org", 22, a.blob)).toEqual({ status: "changed", match: { file, line: 2, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "bad.example.org")).toEqual([2]);
    expect(sshKeygenFind(file, "good.example.org")).toEqual([1]);
  });

  it("refuses a changed key and names the file and line of the old key of that type", async () => {
    const user = knownHosts([`[127.0.0.1]:2222 ${ec.line}`]);
    const global = knownHosts(["# fleet", `other ${a.line}`, `[127.0.0.1]:2222 ${a.line}`]);
    expect(await checkHostKey([user, global], "127.0.0.1", 2222, b.blob)).toEqual({
      status: "changed",
      match: { file: global, line: 3, keyType: "ssh-ed25519" },
    });
    expect(sshKeygenFind(global, "[127.0.0.1]:2222")).toEqual([3]);
  });

  it("calls a key unknown when only other key types are recorded, and lists them", async () => {
    const file = knownHosts([`boot ${ec.line}`, `other ${a.line}`]);
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({
      status: "unknown",
      otherTypes: [{ file, line: 1, keyType: "ecdsa-sha2-nistp256" }],
    });
    expect(await knownKeyTypes([file], "boot", 22)).toEqual(["ecdsa-sha2-nistp256"]);
  });

  it("refuses a @revoked key even when it is also listed as known", async () => {
    const file = knownHosts([`boot ${a.line}`, `@revoked * ${a.line}`]);
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({ status: "revoked", match: { file, line: 2, keyType: "ssh-ed25519" } });
    expect((await checkHostKey([file], "boot", 22, b.blob)).status).toBe("changed");
  });

  it("does not take a @cert-authority line as the host's own key", async () => {
    const file = knownHosts([`@cert-authority boot ${a.line}`]);
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(await knownKeyTypes([file], "boot", 22)).toEqual([]);
  });

  it("skips missing files and reports the file the key was found in", async () => {
    const dir = tempDir();
    const file = knownHosts([`boot ${a.line}`]);
    const gone = [path.join(dir, "nope"), path.join(dir, "nope", "deeper")];
    expect(await checkHostKey([...gone, file], "boot", 22, a.blob)).toEqual({ status: "known", match: { file, line: 1, keyType: "ssh-ed25519" } });
    expect(await checkHostKey(gone, "boot", 22, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
  });

  it("lists known key types in file order across files, once each", async () => {
    const user = knownHosts([`[boot]:2222 ${a.line}`, `boot ${ec.line}`]);
    const global = knownHosts([`[boot]:2222 ${ec.line}`, `[boot]:2222 ${b.line}`]);
    expect(await knownKeyTypes([user, global], "boot", 2222)).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256"]);
    expect(await knownKeyTypes([user, global], "boot", 22)).toEqual(["ecdsa-sha2-nistp256"]);
  });

  it("records a new key so that we and ssh-keygen -F both find it", async () => {
    const file = path.join(tempDir(), "new", ".ssh", "known_hosts");
    await addHostKey(file, "127.0.0.1", 2222, a.blob);
    await addHostKey(file, "boot.example.org", 22, ec.blob);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, "utf8")).toBe(`[127.0.0.1]:2222 ${a.line}\nboot.example.org ${ec.line}\n`);
    expect(await checkHostKey([file], "127.0.0.1", 2222, a.blob)).toEqual({ status: "known", match: { file, line: 1, keyType: "ssh-ed25519" } });
    expect(await checkHostKey([file], "boot.example.org", 22, ec.blob)).toEqual({ status: "known", match: { file, line: 2, keyType: "ecdsa-sha2-nistp256" } });
    expect(sshKeygenFind(file, "[127.0.0.1]:2222")).toEqual([1]);
    expect(sshKeygenFind(file, "boot.example.org")).toEqual([2]);
  });

  it("starts a new line when the existing file lacks a final newline", async () => {
    const file = path.join(tempDir(), "known_hosts");
    writeFileSync(file, `other ${b.line}`);
    await addHostKey(file, "127.0.0.1", 2222, a.blob);
    expect(readFileSync(file, "utf8")).toBe(`other ${b.line}\n[127.0.0.1]:2222 ${a.line}\n`);
    expect(sshKeygenFind(file, "[127.0.0.1]:2222")).toEqual([2]);
    expect(sshKeygenFind(file, "other")).toEqual([1]);
  });

  it("reads lines as ssh does: leading blanks and runs of spaces and tabs between fields", async () => {
    const [kt, b64] = a.line.split(" ") as [string, string];
    const file = knownHosts([`  \tboot \t ${kt}\t\t${b64}  `, `other  ${kt}   ${b64}`]);
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({ status: "known", match: { file, line: 1, keyType: "ssh-ed25519" } });
    expect(await checkHostKey([file], "other", 22, a.blob)).toEqual({ status: "known", match: { file, line: 2, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "boot")).toEqual([1]);
    expect(sshKeygenFind(file, "other")).toEqual([2]);
  });

  it("ignores commented-out lines, lines without a key, keys with junk around them, and keys of another type than they say", async () => {
    const [kt, b64] = a.line.split(" ") as [string, string];
    const file = knownHosts([
      `#boot ${a.line}`,
      `# boot ${a.line}`,
      "boot",
      `boot ${kt}`,
      `boot ${kt} *${b64}`,
      `boot ${kt} ${b64}!!`,
      `boot ecdsa-sha2-nistp256 ${b64}`,
      `boot ${kt} ${ec.line.split(" ")[1]}`,
    ]);
    // The last line says ed25519 but holds an ecdsa key. (ssh-keygen -F matches host names only, so it lists lines 5 to 8; ssh itself skips them, as keys it cannot read.)
    expect(await checkHostKey([file], "#boot", 22, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(await knownKeyTypes([file], "boot", 22)).toEqual([]);
    expect(await checkHostKey([file], "boot", 22, ec.blob)).toEqual({ status: "unknown", otherTypes: [] });
    expect(sshKeygenFind(file, "#boot")).toEqual([]);
  });

  it("skips a line with a marker ssh does not know, and a hashed entry of another kind or with a salt that is not 20 bytes", async () => {
    const hashed = (salt: Buffer, name: string, magic = "1") => `|${magic}|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
    const file = knownHosts([
      `@marker boot ${a.line}`,
      "@revoked",
      "@revoked boot",
      `@revoked boot ${a.line.split(" ")[0]}`,
      `${hashed(randomBytes(20), "boot", "2")} ${a.line}`,
      `${hashed(randomBytes(16), "boot")} ${a.line}`,
      `|1|${randomBytes(20).toString("base64")} ${a.line}`,
      `|1| ${a.line}`,
      `|1 ${a.line}`,
      `${hashed(randomBytes(20), "boot")} ${b.line}`,
    ]);
    expect(await checkHostKey([file], "boot", 22, a.blob)).toEqual({ status: "changed", match: { file, line: 10, keyType: "ssh-ed25519" } });
    expect(sshKeygenFind(file, "boot")).toEqual([10]);
  });

  it("reads a pattern's other characters as themselves: a dot is a dot", async () => {
    const file = knownHosts([`boot.example.org ${a.line}`, `[10.0.0.1]:2222 ${a.line}`]);
    expect((await checkHostKey([file], "bootxexample.org", 22, a.blob)).status).toBe("unknown");
    expect((await checkHostKey([file], "10x0.0.1", 2222, a.blob)).status).toBe("unknown");
    expect((await checkHostKey([file], "boot.example.org", 22, a.blob)).status).toBe("known");
  });

  it("skips a known_hosts path under a file (as missing), but fails on one it cannot read as a file", async () => {
    const file = knownHosts([`boot ${a.line}`]);
    expect(await checkHostKey([path.join(file, "x"), file], "boot", 22, a.blob)).toEqual({ status: "known", match: { file, line: 1, keyType: "ssh-ed25519" } });
    const dir = path.join(tempDir(), "known_hosts");
    mkdirSync(dir);
    await expect(checkHostKey([dir, file], "boot", 22, a.blob)).rejects.toMatchObject({ code: "EISDIR" });
  });

  it("reads the key type from a blob, refusing blobs too short or with no valid type", () => {
    const blob = (len: number, type: string, rest = 0) => Buffer.concat([Buffer.from([len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255]), Buffer.from(type, "latin1"), Buffer.alloc(rest)]);
    expect(() => keyTypeOf(Buffer.alloc(3))).toThrow("SSH public key blob too short");
    expect(() => keyTypeOf(Buffer.alloc(4))).toThrow("SSH public key blob has no valid key type");
    expect(() => keyTypeOf(blob(65, "x".repeat(65)))).toThrow("SSH public key blob has no valid key type");
    expect(() => keyTypeOf(blob(11, "ssh-ed2551"))).toThrow("SSH public key blob has no valid key type");
    expect(keyTypeOf(blob(64, "t".repeat(64)))).toBe("t".repeat(64));
    expect(keyTypeOf(blob(11, "ssh-ed25519"))).toBe("ssh-ed25519");
    expect(keyTypeOf(blob(11, "ssh-ed25519", 32))).toBe("ssh-ed25519");
  });

  it("records only host names that mean themselves on a known_hosts line, and closes the file", async () => {
    const file = path.join(tempDir(), "known_hosts");
    for (const bad of ["", "a b", "a\tb", "a,b", "a*", "a?", "!a", "#a", "|a", "@a"]) {
      await expect(addHostKey(file, bad, 22, a.blob)).rejects.toThrow(`cannot record host key for ${JSON.stringify(bad)}`);
    }
    expect(() => statSync(file)).toThrow();
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    await addHostKey(file, "fleet@boot#2|x", 22, a.blob);
    expect(fds()).toBe(before);
    expect(readFileSync(file, "utf8")).toBe(`fleet@boot#2|x ${a.line}\n`);
    expect((await checkHostKey([file], "fleet@boot#2|x", 22, a.blob)).status).toBe("known");
    expect(knownHostsName("Boot.Example.ORG", 2222)).toBe("[boot.example.org]:2222");
  });

  it("prints the same SHA256 fingerprint and key type as ssh-keygen", () => {
    for (const k of [a, ec]) {
      const out = execFileSync("ssh-keygen", ["-lf", k.pub], { encoding: "utf8" }).trim().split(/\s+/);
      expect(fingerprint(k.blob)).toBe(out[1]);
      expect(keyTypeOf(k.blob)).toBe(k.type);
    }
  });
});
