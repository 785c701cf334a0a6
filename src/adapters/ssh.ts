// SSH as users already have it set up: OpenSSH resolves ~/.ssh/config for us (`ssh -G`: Host
// aliases, Match, Include, User, Port, IdentityFile, UserKnownHostsFile), ssh-agent and key files
// authenticate, and the server's host key is checked against known_hosts before anything is sent.
import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import SftpClient from "ssh2-sftp-client";
import ssh2, { type AuthenticationType, type ConnectConfig } from "ssh2";
import { UserError } from "../errors.ts";
import { addHostKey, checkHostKey, fingerprint, keyTypeOf, knownHostsName, knownKeyTypes } from "./known-hosts.ts";
import { capture } from "./run.ts";

export interface SshOptions {
  /** `ssh -F FILE`: an ssh_config to use instead of ~/.ssh/config. */
  configFile?: string | undefined;
  /** Record an unknown host key in known_hosts (like StrictHostKeyChecking=accept-new). A changed key is always refused. */
  acceptNew?: boolean | undefined;
  env: NodeJS.ProcessEnv;
  /** Where a passphrase prompt goes, when stdin is a terminal: undefined when none was given (Ctrl-D, or `signal` aborted). */
  prompt?: ((question: string, signal?: AbortSignal) => Promise<string | undefined>) | undefined;
  onInfo?: ((message: string) => void) | undefined;
  /**
   * Called once, when the SFTP session has been asked for (or the connection failed before): from
   * then on the server starts its sftp-server, which takes a while (a login shell's startup files
   * run first), and the handshake no longer needs this process. A caller with heavy local work
   * starts it then: every round trip of the handshake before waits for the main thread.
   */
  onSessionRequested?: (() => void) | undefined;
  /** Gives the connection up (a deploy refusing before it needs the target): connecting fails at once. */
  signal?: AbortSignal | undefined;
}

export interface ResolvedSsh {
  host: string;
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  knownHostsFiles: string[];
  hostKeyAlias: string | undefined;
  identityAgent: string | undefined;
  identitiesOnly: boolean;
  connectTimeoutMs: number;
  /** Where these settings came from, for messages: the -F file, `~/.ssh/config`, or undefined when OpenSSH's ssh is not installed (nothing was read). */
  configFile: string | undefined;
}

const HOME = os.userInfo().homedir;
/** The file `ssh-keygen -R` edits when given no `-f` (as ssh, it takes the home folder from the password database). */
const DEFAULT_KNOWN_HOSTS = path.join(HOME, ".ssh", "known_hosts");

const expand = (p: string) => (p === "~" ? HOME : p.startsWith("~/") ? path.join(HOME, p.slice(2)) : p);

/** What `ssh -G` says about a host: the effective settings after ~/.ssh/config. */
export async function resolveSsh(host: string, user: string | undefined, port: number | undefined, options: SshOptions): Promise<ResolvedSsh> {
  const args = ["-G", ...(options.configFile ? ["-F", options.configFile] : []), ...(user ? ["-l", user] : []), ...(port ? ["-p", String(port)] : []), "--", host];
  let text: string;
  try {
    text = (await capture({ file: "ssh", args }, { env: options.env, failure: "SSH_FAILED", what: `ssh -G ${host}`, notFound: "COMMAND_NOT_FOUND" })).stdout;
  } catch (e) {
    if (e instanceof UserError && e.code === "COMMAND_NOT_FOUND") {
      // Without OpenSSH's client there is no ~/.ssh/config to honour: OpenSSH's own defaults.
      options.onInfo?.("ssh: OpenSSH's ssh is not installed, so ~/.ssh/config is not read; using user, port and keys from the target URL and ~/.ssh");
      return {
        host,
        hostname: host,
        port: port ?? 22,
        user: user ?? os.userInfo().username,
        identityFiles: ["id_rsa", "id_ecdsa", "id_ed25519"].map((f) => path.join(HOME, ".ssh", f)),
        knownHostsFiles: [path.join(HOME, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"],
        hostKeyAlias: undefined,
        identityAgent: undefined,
        identitiesOnly: false,
        connectTimeoutMs: 15_000,
        configFile: undefined,
      };
    }
    throw new UserError("SSH_FAILED", `reading the SSH settings for ${host} failed (ssh -G)`, { detail: e instanceof UserError ? e.detail : String(e), hint: options.configFile ? `check ${options.configFile}` : "check ~/.ssh/config" });
  }
  const all = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (m) all.set(m[1]!, [...(all.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => all.get(k)?.[0];
  for (const unsupported of ["proxyjump", "proxycommand"]) {
    const v = one(unsupported);
    if (v && v !== "none") {
      throw new UserError("SSH_FAILED", `${host}: your SSH config sets ${unsupported === "proxyjump" ? "ProxyJump" : "ProxyCommand"} (${v}), which netbuild cannot follow yet`, {
        hint: "deploy from a machine that reaches the boot server directly, or use a local target on a mounted folder",
      });
    }
  }
  const list = (k: string) => (all.get(k) ?? []).flatMap((v) => v.split(/\s+/)).filter((v) => v !== "none").map(expand);
  return {
    host,
    hostname: one("hostname") ?? host,
    port: Number(one("port") ?? 22),
    user: one("user") ?? os.userInfo().username,
    identityFiles: list("identityfile"),
    knownHostsFiles: [...list("userknownhostsfile"), ...list("globalknownhostsfile")],
    hostKeyAlias: one("hostkeyalias"),
    identityAgent: one("identityagent"),
    identitiesOnly: one("identitiesonly") === "yes",
    connectTimeoutMs: one("connecttimeout") && one("connecttimeout") !== "none" ? Number(one("connecttimeout")) * 1000 : 15_000,
    configFile: options.configFile ?? "~/.ssh/config",
  };
}

/** A word for a POSIX shell: as it is when nothing in it is special there, else single-quoted (`[127.0.0.1]:2222` would glob). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/**
 * The command that removes a host's keys from a known_hosts file. Without `-f`, ssh-keygen edits
 * ~/.ssh/known_hosts whatever UserKnownHostsFile says, so any other file must be named; `sudo`
 * when this user cannot rewrite it (ssh-keygen writes a new file beside it, then renames).
 */
export function removeHostKeyCommand(file: string, name: string, options: { sudo?: boolean } = {}): string {
  const f = path.resolve(file) === DEFAULT_KNOWN_HOSTS ? "" : ` -f ${shellWord(file)}`;
  return `${options.sudo ? "sudo " : ""}ssh-keygen -R ${shellWord(name)}${f}`;
}

async function canRewrite(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.W_OK);
    await access(path.dirname(file), fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `ssh` as the user would run it for this target: the same -F file, port and user as netbuild used. */
function sshCommand(host: string, user: string | undefined, port: number | undefined, configFile: string | undefined): string {
  return ["ssh", ...(configFile ? ["-F", shellWord(configFile)] : []), ...(port ? ["-p", String(port)] : []), shellWord(user ? `${user}@${host}` : host)].join(" ");
}

/**
 * A host name the resolver does not know, said in the user's terms: the alias they wrote and, when
 * their SSH config maps it to a HostName, that name too (the one that was looked up).
 */
export function unresolvedHostError(r: Pick<ResolvedSsh, "host" | "hostname" | "configFile">, code: string | undefined): UserError {
  const mapped = r.hostname !== r.host;
  if (code === "EAI_AGAIN") {
    // A temporary failure: the resolver got no answer. Nothing says the name is wrong.
    const what = mapped ? `${r.hostname} (the HostName of ${r.host} in ${r.configFile})` : r.host;
    return new UserError("SSH_FAILED", `${r.host}: cannot look up ${what}: DNS did not answer (EAI_AGAIN)`, { hint: "is the network (or the VPN that knows the boot server) up? Then try again" });
  }
  if (mapped) {
    return new UserError("SSH_FAILED", `${r.host}: no such host: ${r.configFile} gives it HostName ${r.hostname}, and DNS does not know ${r.hostname}`, {
      hint: `check the HostName that ${r.configFile} sets for ${r.host} (a typo, or a name only another network's DNS knows)`,
    });
  }
  if (r.configFile === undefined) {
    return new UserError("SSH_FAILED", `${r.host}: no such host (DNS does not know it, and ~/.ssh/config was not read: OpenSSH's ssh is not installed)`, {
      hint: "check the host in the target URL, or install OpenSSH's client so that Host aliases in ~/.ssh/config work",
    });
  }
  return new UserError("SSH_FAILED", `${r.host}: no such host (not a Host with a HostName in ${r.configFile}, and DNS does not know it)`, {
    hint: `check the host in the target URL for a typo; if ${r.host} is meant as an SSH alias, give it a HostName in ${r.configFile} (Host ${r.host}, then HostName and the boot server's address)`,
  });
}

async function loadKeys(files: string[], options: SshOptions): Promise<{ file: string; key: Buffer; passphrase?: string }[]> {
  const keys: { file: string; key: Buffer; passphrase?: string }[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      continue;
    }
    const parsed = ssh2.utils.parseKey(data);
    if (!(parsed instanceof Error)) {
      keys.push({ file, key: data });
      continue;
    }
    if (!/encrypted|passphrase/i.test(parsed.message)) {
      options.onInfo?.(`ssh: skipping ${file}: ${parsed.message}`);
      continue;
    }
    if (!options.prompt) {
      options.onInfo?.(`ssh: skipping ${file}: it needs a passphrase and this is not a terminal (add it to ssh-agent with ssh-add)`);
      continue;
    }
    // Once per key in this process, however many targets use it (the same file with other content is another key).
    const id = `${file}\0${createHash("sha256").update(data).digest("hex")}`;
    let passphrase: string | undefined | typeof ABORTED;
    for (;;) {
      let asked = passphrases.get(id);
      if (!asked) {
        passphrases.set(id, (asked = askPassphrase(file, data, options.prompt, options.signal)));
        // Not kept: a failure, or an asking given up (the next to need the key asks again).
        asked.then((p) => void (p === ABORTED && passphrases.delete(id)), () => passphrases.delete(id));
      }
      passphrase = await asked;
      // Given up by another connection's deploy, not this one's: asked again.
      if (passphrase !== ABORTED || options.signal?.aborted) break;
    }
    if (passphrase === ABORTED || passphrase === undefined) {
      if (passphrase === undefined) options.onInfo?.(`ssh: skipping ${file}: no passphrase was given`);
      continue;
    }
    keys.push({ file, key: data, passphrase });
  }
  return keys;
}

/** Passphrases of keys opened in this process (or being asked for), by key file and content. */
const passphrases = new Map<string, Promise<string | undefined | typeof ABORTED>>();
const ABORTED = Symbol("aborted");
const PASSPHRASE_TRIES = 3;

/** The passphrase that opens `data`, asked up to 3 times (as OpenSSH does); undefined when none is given (an empty answer, Ctrl-D). */
async function askPassphrase(file: string, data: Buffer, prompt: NonNullable<SshOptions["prompt"]>, signal: AbortSignal | undefined): Promise<string | undefined | typeof ABORTED> {
  for (let i = 1; i <= PASSPHRASE_TRIES; i++) {
    const answer = await prompt(i === 1 ? `Enter passphrase for key '${file}': ` : `Wrong passphrase; try again (${i} of ${PASSPHRASE_TRIES}) for key '${file}': `, signal);
    if (signal?.aborted) return ABORTED;
    if (!answer) return undefined;
    if (!(ssh2.utils.parseKey(data, answer) instanceof Error)) return answer;
  }
  throw new UserError("SSH_AUTH_FAILED", `wrong passphrase for ${file} (asked ${PASSPHRASE_TRIES} times)`, { hint: "or load the key into ssh-agent with ssh-add" });
}

export interface SshConnection {
  sftp: SftpClient;
  resolved: ResolvedSsh;
  /** `user@host:port`, for messages. */
  label: string;
}

/** Connects, verifies the host key against known_hosts, authenticates with the agent and key files. */
export async function connectSsh(host: string, user: string | undefined, port: number | undefined, options: SshOptions): Promise<SshConnection> {
  const r = await resolveSsh(host, user, port, options);
  const label = `${r.user}@${r.hostname}${r.port === 22 ? "" : `:${r.port}`}`;
  // OpenSSH looks a HostKeyAlias up as it is (no [alias]:port form), and the host name with its port.
  const lookup = r.hostKeyAlias ?? r.hostname;
  const lookupPort = r.hostKeyAlias ? 22 : r.port;
  const name = knownHostsName(lookup, lookupPort);
  let hostKeyProblem: UserError | undefined;

  const verify = async (key: Buffer): Promise<boolean> => {
    const verdict = await checkHostKey(r.knownHostsFiles, lookup, lookupPort, key);
    const fp = `${keyTypeOf(key)} ${fingerprint(key)}`;
    if (verdict.status === "known") return true;
    if (verdict.status === "changed") {
      const remove = removeHostKeyCommand(verdict.match.file, name, { sudo: !(await canRewrite(verdict.match.file)) });
      hostKeyProblem = new UserError("HOST_KEY_CHANGED", `the host key of ${name} has CHANGED: it now presents ${fp}, but ${verdict.match.file}:${verdict.match.line} records a different ${verdict.match.keyType} key`, {
        hint: `someone may be intercepting the connection, or the server was reinstalled. If you know why it changed, remove line ${verdict.match.line} of ${verdict.match.file} (${remove}) and deploy with --accept-new. netbuild never accepts a changed key`,
      });
      return false;
    }
    if (verdict.status === "revoked") {
      hostKeyProblem = new UserError("HOST_KEY_CHANGED", `the host key of ${name} (${fp}) is marked @revoked in ${verdict.match.file}:${verdict.match.line}`, { hint: "the server must get a new host key" });
      return false;
    }
    const file = r.knownHostsFiles[0] ?? DEFAULT_KNOWN_HOSTS;
    if (!options.acceptNew) {
      const others = verdict.otherTypes.length > 0 ? ` (known_hosts has a ${verdict.otherTypes[0]!.keyType} key for it at ${verdict.otherTypes[0]!.file}:${verdict.otherTypes[0]!.line}, but the server offered ${keyTypeOf(key)})` : "";
      hostKeyProblem = new UserError("HOST_KEY_UNKNOWN", `the host key of ${name} is not in known_hosts${others}: ${fp}`, {
        // Both ways record the key where netbuild will look next time: a plain `ssh host` would
        // miss the -F file, and with it the UserKnownHostsFile that file names.
        hint: `check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(key).replace(/^ssh-|-sha2-nistp\d+$/g, "")}_key.pub), then deploy once with --accept-new (it records the key in ${file}), or connect once with ssh and answer yes (${sshCommand(host, user, port, options.configFile)}); searched: ${r.knownHostsFiles.join(", ") || "(no files)"}`,
      });
      return false;
    }
    await addHostKey(file, lookup, lookupPort, key);
    options.onInfo?.(`ssh: added the host key of ${name} (${fp}) to ${file}`);
    return true;
  };

  // IdentityAgent: none = no agent; a path or $VAR names it; unset = $SSH_AUTH_SOCK.
  const agentSetting = r.identityAgent;
  const agent =
    agentSetting === "none" ? undefined : agentSetting === undefined || agentSetting === "SSH_AUTH_SOCK" ? options.env["SSH_AUTH_SOCK"] || undefined : agentSetting.startsWith("$") ? options.env[agentSetting.slice(1)] || undefined : expand(agentSetting);
  const keys = await loadKeys(r.identityFiles, options);
  const methods: AuthenticationType[] = keys.map(() => "publickey");
  // With IdentitiesOnly the configured files go first (the agent's many keys can exhaust MaxAuthTries).
  if (agent) {
    if (r.identitiesOnly) methods.push("agent");
    else methods.unshift("agent");
  }
  let keyIndex = 0;
  const tried: string[] = [];

  // Ask first for the key types known_hosts holds for this host (as OpenSSH does), so a server with
  // several host keys presents the one we can check. An RSA key is negotiated as rsa-sha2-*.
  const preferred = (await knownKeyTypes(r.knownHostsFiles, lookup, lookupPort)).flatMap((t) => (t === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [t]));
  // The library's default listeners print "Global end listener: …" with console.log, onto stdout
  // (where --json's one document goes). The connection's fate is reported by sftp.ts's own listeners.
  const quiet = () => undefined;
  let requested = false;
  const sessionRequested = () => {
    if (requested) return;
    requested = true;
    options.onSessionRequested?.();
  };
  const sftp = new SftpClient("netbuild", { error: quiet, end: quiet, close: quiet });
  const config: ConnectConfig = {
    host: r.hostname,
    port: r.port,
    username: r.user,
    readyTimeout: r.connectTimeoutMs,
    keepaliveInterval: 15_000,
    keepaliveCountMax: 4,
    // ssh2 tells of each packet only through its debug output: the request for the SFTP subsystem
    // is the moment sessionRequested waits for (should the text ever change, connecting settling does).
    ...(options.onSessionRequested ? { debug: (m: string) => void (!requested && m.startsWith("Outbound: Sending CHANNEL_REQUEST") && m.endsWith("subsystem: sftp)") && sessionRequested()) } : {}),
    hostVerifier: (key: Buffer, done: (ok: boolean) => void) => {
      verify(key).then(done, (e: unknown) => {
        hostKeyProblem = new UserError("SSH_FAILED", `checking the host key of ${label} failed: ${e instanceof Error ? e.message : String(e)}`);
        done(false);
      });
    },
    ...(preferred.length > 0 ? { algorithms: { serverHostKey: [...new Set([...preferred, "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"])] as never } } : {}),
    authHandler: (_methodsLeft: unknown, _partial: unknown, next: (m: unknown) => void) => {
      const method = methods.shift();
      if (method === undefined) return next(false);
      if (method === "agent") {
        tried.push(`ssh-agent (${agent})`);
        return next({ type: "agent", username: r.user, agent });
      }
      const k = keys[keyIndex++]!;
      tried.push(k.file);
      return next({ type: "publickey", username: r.user, key: k.key, ...(k.passphrase ? { passphrase: k.passphrase } : {}) });
    },
  } as ConnectConfig;
  // Given up before or while connecting: the socket is closed, so a stalled handshake keeps nothing waiting.
  const givenUp = () => new UserError("SSH_FAILED", `connecting to ${label} was given up`);
  const abort = () => void (sftp as unknown as { client: import("ssh2").Client }).client.destroy();
  options.signal?.addEventListener("abort", abort, { once: true });
  try {
    if (options.signal?.aborted) throw givenUp();
    await sftp.connect(config);
  } catch (e) {
    sessionRequested();
    if (options.signal?.aborted) throw givenUp();
    if (hostKeyProblem) throw hostKeyProblem;
    const message = e instanceof Error ? e.message : String(e);
    if (/authentication/i.test(message)) {
      throw new UserError("SSH_AUTH_FAILED", `${label} refused every key netbuild offered`, {
        detail: `tried: ${tried.join(", ") || "nothing (no ssh-agent, no readable key files)"}`,
        hint: `load your key into ssh-agent (ssh-add), or set IdentityFile for ${host} in ${r.configFile ?? "~/.ssh/config"}`,
      });
    }
    // getaddrinfo's answer (ssh2-sftp-client keeps the code and rewrites the message): the name is unknown, or DNS is down.
    const code = (e as { code?: unknown }).code;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /getaddrinfo (ENOTFOUND|EAI_AGAIN)/.test(message)) {
      throw unresolvedHostError(r, typeof code === "string" ? code : /EAI_AGAIN/.test(message) ? "EAI_AGAIN" : "ENOTFOUND");
    }
    throw new UserError("SSH_FAILED", `cannot connect to ${label}: ${message.replace(/^(getConnection|connect): /, "")}`, { hint: "is the boot server up, and is this the right host and port?" });
  } finally {
    options.signal?.removeEventListener("abort", abort);
  }
  // Given up as the session came up: closed all the same.
  if (options.signal?.aborted) {
    await sftp.end().catch(() => undefined);
    throw givenUp();
  }
  sessionRequested();
  return { sftp, resolved: r, label };
}
