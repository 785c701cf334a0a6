// OpenSSH known_hosts verification for `netbuild deploy`'s SFTP client: ssh2's hostVerifier hands
// us the server's public key blob (SSH wire format), and we decide as ssh would — known, unknown,
// changed or revoked — from the same files ssh reads (see sshd(8), SSH_KNOWN_HOSTS FILE FORMAT).
// Supported: comments, @revoked (and skipping @cert-authority), comma-separated patterns with
// `*`, `?` and `!negation`, `[host]:port`, and hashed `|1|salt|hash` entries. Not supported:
// certificates, CheckHostIP, and the legacy SSH-1 RSA key format (such lines are skipped).
import { createHash, createHmac } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

export interface KnownHostsMatch { file: string; line: number; keyType: string }
export type HostKeyVerdict =
  | { status: "known"; match: KnownHostsMatch }
  | { status: "unknown"; /** key types recorded for this host under other algorithms, if any */ otherTypes: KnownHostsMatch[] }
  | { status: "changed"; match: KnownHostsMatch /* the line holding the old key of the same type */ }
  | { status: "revoked"; match: KnownHostsMatch };

interface Entry extends KnownHostsMatch {
  /** "" (a host key), "@revoked", or another marker (@cert-authority: a line naming no host key of its own). */
  marker: string;
  blob: Buffer;
}

/** keytype from the blob's first string. */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) throw new Error("SSH public key blob too short");
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > key.length) throw new Error("SSH public key blob has no valid key type");
  return key.subarray(4, 4 + len).toString("latin1");
}

/** SHA256 fingerprint like OpenSSH prints: "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprint(key: Buffer): string {
  return "SHA256:" + createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

/** The name ssh looks up: `host` for port 22, `[host]:port` otherwise (OpenSSH's put_host_port). */
function lookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A host as known_hosts spells it (and `ssh-keygen -R` wants it): lower case, `[host]:port` for a port other than 22. */
export function knownHostsName(host: string, port: number): string {
  return lookupName(host.toLowerCase(), port);
}

/** OpenSSH's match_pattern: `*` is any run of characters, `?` exactly one; whole-string match. */
function globMatch(name: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === "*" ? ".*" : c === "?" ? "." : `\\${c}`));
  return new RegExp(`^${re}$`, "s").test(name);
}

/** A host field matches when some hashed entry or plain pattern matches and no `!pattern` does. */
function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) {
    // The whole field is one hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name)). Like
    // OpenSSH, recompute the entry from the salt and compare the text.
    // (`|1|` and the hash are checked by that comparison; the salt must be SHA-1's length, as ssh wants.)
    const saltBytes = Buffer.from(field.split("|")[2] ?? "", "base64");
    if (saltBytes.length !== 20) return false;
    const digest = createHmac("sha1", saltBytes).update(name).digest("base64");
    return field === `|1|${saltBytes.toString("base64")}|${digest}`;
  }
  let positive = false;
  for (const raw of field.split(",")) {
    const negated = raw.startsWith("!");
    if (!globMatch(name, (negated ? raw.slice(1) : raw).toLowerCase())) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

/** Parses one line into an entry if it is well-formed and its host field matches `name`. */
function parseLine(text: string, name: string): Omit<Entry, "file" | "line"> | undefined {
  const fields = text.trim().split(/[ \t]+/);
  if (fields[0]!.startsWith("#")) return undefined;
  // A marker first: only @revoked counts (checkHostKey); a @cert-authority line, or one with a
  // marker ssh does not know (which it skips), is never taken as the host's own key.
  const marker = fields[0]!.startsWith("@") ? fields.shift()! : "";
  if (fields.length < 3) return undefined;
  const [hosts, keyType, b64] = fields as [string, string, string];
  if (!hostFieldMatches(hosts, name) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const blob = Buffer.from(b64, "base64");
  try {
    // ssh refuses a key whose stated type differs from the type inside the blob.
    return keyTypeOf(blob) === keyType ? { marker, keyType, blob } : undefined;
  } catch {
    return undefined;
  }
}

/** Every well-formed line, in file order, whose host field matches this host and port. */
async function matchingEntries(files: string[], host: string, port: number): Promise<Entry[]> {
  // ssh lowercases the host name before the lookup (patterns are compared lowercased too).
  const name = knownHostsName(host, port);
  const out: Entry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (e) {
      // A missing file just has no entries; an unreadable one is an error we should not hide.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw e;
    }
    text.split("\n").forEach((lineText, i) => {
      const entry = parseLine(lineText, name);
      if (entry) out.push({ file, line: i + 1, ...entry });
    });
  }
  return out;
}

const matchOf = (e: Entry): KnownHostsMatch => ({ file: e.file, line: e.line, keyType: e.keyType });

/** host: the name ssh uses to look up (HostKeyAlias or HostName), port: the port; files: UserKnownHostsFile list then GlobalKnownHostsFile list (missing files are skipped). */
export async function checkHostKey(files: string[], host: string, port: number, key: Buffer): Promise<HostKeyVerdict> {
  const type = keyTypeOf(key);
  const entries = await matchingEntries(files, host, port);
  const revoked = entries.find((e) => e.marker === "@revoked" && e.blob.equals(key));
  if (revoked) return { status: "revoked", match: matchOf(revoked) };
  const plain = entries.filter((e) => e.marker === "");
  const known = plain.find((e) => e.blob.equals(key));
  if (known) return { status: "known", match: matchOf(known) };
  const changed = plain.find((e) => e.keyType === type);
  if (changed) return { status: "changed", match: matchOf(changed) };
  return { status: "unknown", otherTypes: plain.map(matchOf) };
}

/** The key types (e.g. ["ssh-ed25519","ecdsa-sha2-nistp256"]) known for this host, in file order, for ordering ssh2's serverHostKey algorithms. */
export async function knownKeyTypes(files: string[], host: string, port: number): Promise<string[]> {
  const entries = await matchingEntries(files, host, port);
  return [...new Set(entries.filter((e) => e.marker === "").map((e) => e.keyType))];
}

/** Appends `[host]:port keytype base64` (or `host keytype base64` when port is 22) to file, creating the file (mode 0600) and its folder (0700) if needed; ensures the existing file ends with a newline first. */
export async function addHostKey(file: string, host: string, port: number, key: Buffer): Promise<void> {
  // Anything here that known_hosts syntax gives a meaning would make the line mean something else.
  if (host === "" || /[\s,*?!]|^[#|@]/.test(host)) throw new Error(`cannot record host key for ${JSON.stringify(host)}`);
  const line = `${lookupName(host, port)} ${keyTypeOf(key)} ${key.toString("base64")}\n`;
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const handle = await fs.open(file, "a+", 0o600);
  try {
    const { size } = await handle.stat();
    let prefix = "";
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = "\n";
    }
    await handle.appendFile(prefix + line);
  } finally {
    await handle.close();
  }
}
