// Values that end up in a path, an iPXE script or a kernel command line. Each is a branded string
// that only its parser can make, so an unchecked value cannot reach a path or a script.

import { quoted } from "./excerpt.ts";

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type Mac = Brand<string, "Mac">;
export type HostName = Brand<string, "HostName">;
export type ClassName = Brand<string, "ClassName">;
export type KernelParam = Brand<string, "KernelParam">;

/** A parse result: the value, or why it is not one and how to write it. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

const MAC_SPELLINGS = [
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i,
];

/**
 * Accepts `52:54:00:12:34:56`, `52-54-00-12-34-56`, `5254.0012.3456` and `525400123456` in any case
 * and returns iPXE's `${mac:hexhyp}` spelling, which names the by-mac/ entry.
 */
export function parseMac(input: string): Parsed<Mac> {
  const text = input.trim();
  for (const re of MAC_SPELLINGS) {
    const m = re.exec(text);
    if (!m) continue;
    const octets = m.slice(1).map((o) => o.toLowerCase());
    // The I/G bit: a multicast or broadcast address is never a NIC's own address.
    if (parseInt(octets[0]!, 16) & 1) {
      return {
        ok: false,
        message: `${quoted(input)} is a multicast/broadcast address, not a network card's MAC`,
        hint: "copy the MAC from the machine's NIC label, BMC or `ip link`",
      };
    }
    if (octets.every((o) => o === "00")) {
      return { ok: false, message: `${quoted(input)} is the all-zero MAC`, hint: "use the NIC's real MAC" };
    }
    return { ok: true, value: octets.join("-") as Mac };
  }
  return {
    ok: false,
    message: `${quoted(input)} is not a MAC address`,
    hint: "six hex pairs, e.g. 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456)",
  };
}

/** The colon spelling, for messages. */
export function macColons(mac: Mac): string {
  return mac.replaceAll("-", ":");
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A hostname is one RFC 1123 label, lower case: it names a folder (by-host/<name>) and case-only
 * differences would collide on the FAT disks and case-insensitive servers some boot servers use.
 */
export function parseHostName(input: string): Parsed<HostName> {
  if (LABEL.test(input)) return { ok: true, value: input as HostName };
  if (LABEL.test(input.toLowerCase())) {
    return { ok: false, message: `${quoted(input)} has upper-case letters`, hint: `write it as ${quoted(input.toLowerCase())}` };
  }
  return {
    ok: false,
    message: `${quoted(input)} is not a valid hostname`,
    hint: "one RFC 1123 label: a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-' (no dots: use the short name)",
  };
}

const CLASS = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A class name becomes a folder (by-class/<name>) and part of a Nix store path name. */
export function parseClassName(input: string): Parsed<ClassName> {
  if (CLASS.test(input) && !input.includes("..")) return { ok: true, value: input as ClassName };
  return {
    ok: false,
    message: `${quoted(input)} is not a valid class name`,
    hint: "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters (the class file is classes/<name>.yaml)",
  };
}

/**
 * One kernel command-line word as it will be written into an iPXE script. iPXE expands `${...}`,
 * splits on whitespace, treats `||`, `&&` and quotes specially, and a newline would start a new
 * command: a value that cannot be written safely is refused here, never patched when rendering.
 */
export function parseKernelParam(input: string): Parsed<KernelParam> {
  if (input.length === 0) return { ok: false, message: "an empty kernel parameter", hint: "remove the empty entry" };
  if (input.length > 1024) return { ok: false, message: "a kernel parameter longer than 1024 characters" };
  for (const ch of input) {
    const code = ch.codePointAt(0)!;
    if (code < 0x21 || code > 0x7e) {
      const what = ch === " " ? "a space" : ch === "\n" || ch === "\r" ? "a line break" : ch === "\t" ? "a tab" : code > 0x7e ? `the non-ASCII character ${quoted(ch)}` : "a control character";
      return {
        ok: false,
        message: `${quoted(input)} contains ${what}`,
        hint: code === 0x20 ? "each list entry is one parameter: write `a=1 b=2` as two entries; a value cannot contain spaces" : "kernel parameters here are printable ASCII without spaces",
      };
    }
  }
  if (/["'`\\]/.test(input)) {
    return { ok: false, message: `${quoted(input)} contains a quote or backslash`, hint: "iPXE would interpret it; kernel parameters here cannot be quoted" };
  }
  if (input.includes("${") || input.includes("$")) {
    return { ok: false, message: `${quoted(input)} contains '$'`, hint: "iPXE expands ${...} in scripts; netbuild sets iPXE variables itself" };
  }
  if (/[;&|]/.test(input) || input.startsWith("#") || input.startsWith(":")) {
    return { ok: false, message: `${quoted(input)} contains a character iPXE treats as script syntax (; & | or a leading # or :)`, hint: "remove it" };
  }
  return { ok: true, value: input as KernelParam };
}

/** The key of `key=value` (or the whole word), for conflict checks. */
export function paramKey(param: KernelParam): string {
  const eq = param.indexOf("=");
  return eq === -1 ? param : param.slice(0, eq);
}

/**
 * Which of the parameters netbuild sets itself a key names: the wipe flags (`<prefix>.provision_*`),
 * `hostname` or `talos.config`; a removal's leading `-` (`-talos.config`) counts as the same key.
 */
export function reservedParam(key: string, flagPrefix: string): "provision" | "hostname" | "talos.config" | undefined {
  const k = key.startsWith("-") ? key.slice(1) : key;
  if (k.startsWith(`${flagPrefix}.provision_`)) return "provision";
  return k === "hostname" || k === "talos.config" ? k : undefined;
}

export type PublicKey = Brand<string, "PublicKey">;

/** The example classes' placeholder: a well-formed ed25519 key of 32 zero bytes, which no private key matches. */
export const PLACEHOLDER_KEY_DATA = "AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/** Key types sshd takes, with how many length-prefixed fields their key blob holds (the type name included). */
const KEY_FIELDS: Record<string, number> = {
  "ssh-ed25519": 2,
  "ssh-rsa": 3,
  "ecdsa-sha2-nistp256": 3,
  "ecdsa-sha2-nistp384": 3,
  "ecdsa-sha2-nistp521": 3,
  "sk-ssh-ed25519@openssh.com": 3,
  "sk-ecdsa-sha2-nistp256@openssh.com": 4,
};
const KEY_TYPES = Object.keys(KEY_FIELDS);

/** A key blob's length-prefixed fields (RFC 4253 strings), or undefined unless they fill it exactly. */
function blobFields(bytes: Buffer): Buffer[] | undefined {
  const fields: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    if (at + 4 > bytes.length) return undefined;
    const len = bytes.readUInt32BE(at);
    if (at + 4 + len > bytes.length) return undefined;
    fields.push(bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return fields;
}

/**
 * An OpenSSH public key line (`ssh-ed25519 AAAA… comment`), as authorized_keys takes it without
 * options. The key's own bytes must name the type the line gives (a truncated or pasted-wrong key
 * is caught here, not when nobody can log in). Messages never repeat the value: what was pasted
 * may be a private key.
 */
export function parsePublicKey(input: string): Parsed<PublicKey> {
  const text = input.trim();
  if (/PRIVATE KEY/.test(text) || /^-----BEGIN/.test(text)) {
    return { ok: false, message: "this is a PRIVATE key (it is not repeated here): it must never be in the inventory, which ends up in the Nix store and the repository", hint: "remove it now and treat it as exposed; give the public key instead (the .pub file, or `ssh-keygen -y -f KEYFILE`)" };
  }
  const hint = "give one public key per entry, as in a .pub file: `ssh-ed25519 AAAAC3Nza… you@laptop` (authorized_keys options such as from= are not taken)";
  if (/[\r\n]/.test(text)) return { ok: false, message: "a public key is one line; this value has several", hint };
  const m = /^(\S+) ([A-Za-z0-9+/]+={0,3})(?: (.*))?$/.exec(text);
  if (!m) return { ok: false, message: "not an OpenSSH public key (expected: type, base64 key, optional comment)", hint };
  const [, type, data] = m;
  if (!KEY_TYPES.includes(type!)) return { ok: false, message: `${quoted(type!.slice(0, 40))} is not a key type sshd takes`, hint: `expected one of ${KEY_TYPES.join(", ")}` };
  const fields = blobFields(Buffer.from(data!, "base64"));
  const whole = fields !== undefined && fields.length === KEY_FIELDS[type!] && fields[0]!.toString("latin1") === type && fields.slice(1).every((f) => f.length > 0) && (type !== "ssh-ed25519" || fields[1]!.length === 32);
  if (!whole) return { ok: false, message: `the base64 part is not a ${type} key (cut short, or from another key)`, hint: "copy the whole line of the .pub file again" };
  return { ok: true, value: text.replace(/\s+/g, " ") as PublicKey };
}

/** The candidate closest to a misspelt `name` (edit distance), when it is close enough to suggest. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const cand of candidates) {
    const d = editDistance(name, cand);
    if (d < bestScore) [best, bestScore] = [cand, d];
  }
  return bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
