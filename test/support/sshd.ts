// A real OpenSSH sshd on loopback, started and stopped by the tests (no root login changes):
// its own host key, a user key in its own authorized_keys, sftp-server logging every file's
// bytes read/written at INFO so tests can check from the server side what a deploy sent.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface Sshd {
  port: number;
  dir: string;
  /** The server's host key line for known_hosts (`[127.0.0.1]:PORT ssh-ed25519 AAAA…`). */
  knownHostsLine: string;
  /** A private key the server accepts (no passphrase). */
  userKey: string;
  /** An ssh_config file with Host alias `boot` pointing at this server, its known_hosts and the user key. */
  sshConfig: string;
  knownHosts: string;
  user: string;
  /** Everything sftp-server has logged so far. */
  log(): string;
  /** Files the server received bytes into (sftp-server's `close "…" bytes read R written W` lines) since `mark`, with the bytes. */
  written(since?: number): { path: string; bytes: number }[];
  /** A position in the log to count from. */
  mark(): number;
  /** Kills every session process (the per-connection sshd children), leaving the listener up. */
  killSessions(): void;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on now (for a server to start on, or for a connection to be refused). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => {
        c.destroy();
        resolve(true);
      });
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSshd(options: { extraConfig?: string[] } = {}): Promise<Sshd> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "netbuild-sshd-"));
  const port = await freePort();
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path.join(dir, "hostkey")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "netbuild-test", "-f", path.join(dir, "userkey")]);
  await fs.copyFile(path.join(dir, "userkey.pub"), path.join(dir, "authorized_keys"));
  const logFile = path.join(dir, "log");
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${path.join(dir, "hostkey")}`,
    `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    `PidFile ${path.join(dir, "pid")}`,
    // OpenSSH's sftp-server, logging every file's bytes to stderr, which the login shell (sshd runs a
    // subsystem through it) sends to our log: what arrived, seen from the server's side.
    `Subsystem sftp /usr/lib/openssh/sftp-server -e -l INFO 2>>${path.join(dir, "sftp.log")}`,
    "StrictModes no",
    "UsePAM no",
    "LogLevel INFO",
    ...(options.extraConfig ?? []),
  ];
  await fs.writeFile(path.join(dir, "sshd_config"), `${config.join("\n")}\n`);
  mkdirSync("/run/sshd", { recursive: true });
  const child = spawn("/usr/sbin/sshd", ["-D", "-f", path.join(dir, "sshd_config"), "-E", logFile], { stdio: "ignore" });
  await waitForPort(port, 10_000);

  const hostPub = readFileSync(path.join(dir, "hostkey.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  const knownHostsLine = `[127.0.0.1]:${port} ${hostPub}`;
  const knownHosts = path.join(dir, "known_hosts");
  writeFileSync(knownHosts, `${knownHostsLine}\n`);
  const user = os.userInfo().username;
  const sshConfig = path.join(dir, "ssh_config");
  writeFileSync(
    sshConfig,
    [
      "Host boot",
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${path.join(dir, "userkey")}`,
      `  UserKnownHostsFile ${knownHosts}`,
      "",
    ].join("\n"),
  );

  const sftpLog = path.join(dir, "sftp.log");
  const readLog = () => (existsSync(sftpLog) ? readFileSync(sftpLog, "utf8") : "");
  return {
    port,
    dir,
    knownHostsLine,
    userKey: path.join(dir, "userkey"),
    sshConfig,
    knownHosts,
    user,
    log: readLog,
    mark: () => readLog().length,
    written(since = 0) {
      return [...readLog().slice(since).matchAll(/close "([^"]*)" bytes read \d+ written (\d+)/g)].map((m) => ({ path: m[1]!, bytes: Number(m[2]) })).filter((w) => w.bytes > 0);
    },
    killSessions() {
      // Session processes are children of the listener; the listener keeps running.
      const out = execFileSync("ps", ["-o", "pid=", "--ppid", String(child.pid)], { encoding: "utf8" });
      for (const pid of out.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
