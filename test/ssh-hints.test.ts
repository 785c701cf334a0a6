// What netbuild tells a user whose SSH setup is not the default one: hints that name the
// known_hosts file netbuild actually reads (the UserKnownHostsFile of the -F config), commands that
// work when pasted into a shell (checked by running them), and host names DNS does not know,
// reported as such; a server that takes the connection and never answers. Against a real OpenSSH sshd on loopback, real ssh -G and real ssh-keygen.
import { execFileSync } from "node:child_process";
import dns from "node:dns/promises";
import net from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSsh, removeHostKeyCommand, shellWord, unresolvedHostError } from "../src/adapters/ssh.ts";
import { UserError } from "../src/errors.ts";
import { cleanupTempDirs, cli, inventory, tempDir } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const notHere = missing({ commands: ["ssh", "ssh-keygen"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });

/** The UserError a promise rejects with (fails the test if it resolves or throws anything else). */
async function userError(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

/** The command a hint gives in parentheses, e.g. `(ssh-keygen -R … -f …)`. */
function commandIn(hint: string | undefined, start: RegExp): string {
  const m = new RegExp(`\\((${start.source}.*?)\\)(?: and|;)`).exec(hint ?? "");
  expect(m, hint).not.toBeNull();
  return m![1]!;
}

/** `ssh-keygen -F name -f file`: the line numbers OpenSSH finds for `name` (none: []). */
function keygenFind(file: string, name: string): number[] {
  try {
    const out = execFileSync("ssh-keygen", ["-F", name, "-f", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return [...out.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
  } catch (e) {
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
}

describe("hint commands", () => {
  it("names the known_hosts file with -f unless it is ~/.ssh/known_hosts, which ssh-keygen edits by default", () => {
    const home = os.userInfo().homedir;
    expect(removeHostKeyCommand(path.join(home, ".ssh/known_hosts"), "boot.example.org")).toBe("ssh-keygen -R boot.example.org");
    expect(removeHostKeyCommand(path.join(home, ".ssh/known_hosts2"), "boot.example.org")).toBe(`ssh-keygen -R boot.example.org -f ${home}/.ssh/known_hosts2`);
    expect(removeHostKeyCommand("/srv/fleet/known hosts", "[10.0.0.2]:2222")).toBe("ssh-keygen -R '[10.0.0.2]:2222' -f '/srv/fleet/known hosts'");
    // The global file belongs to root: the hint says so rather than failing with "Permission denied".
    expect(removeHostKeyCommand("/etc/ssh/ssh_known_hosts", "boot", { sudo: true })).toBe("sudo ssh-keygen -R boot -f /etc/ssh/ssh_known_hosts");
  });

  it("quotes for a POSIX shell only what needs it", () => {
    expect(shellWord("/home/ops/.ssh/known_hosts")).toBe("/home/ops/.ssh/known_hosts");
    expect(shellWord("[127.0.0.1]:2222")).toBe("'[127.0.0.1]:2222'");
    expect(shellWord("~/kh")).toBe("'~/kh'");
    expect(execFileSync("sh", ["-c", `printf %s ${shellWord("it's a $HOME `x` \\ file")}`], { encoding: "utf8" })).toBe("it's a $HOME `x` \\ file");
  });

  it("says DNS did not answer, not that the host does not exist, for EAI_AGAIN", () => {
    const e = unresolvedHostError({ host: "boot", hostname: "boot.lan", configFile: "~/.ssh/config" }, "EAI_AGAIN");
    expect(e.message).toBe("boot: cannot look up boot.lan (the HostName of boot in ~/.ssh/config): DNS did not answer (EAI_AGAIN)");
    expect(e.hint).toMatch(/network/);
  });
});

describe.skipIf(notHere)("SSH hints against a real sshd", () => {
  let sshd: Sshd;
  let otherKey: string;
  beforeAll(async () => {
    sshd = await startSshd();
    const file = path.join(tempDir(), "otherkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file]);
    otherKey = readFileSync(`${file}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
  });
  afterAll(async () => {
    await sshd?.stop();
    cleanupTempDirs();
  });

  /** An ssh_config like the sshd's, whose UserKnownHostsFile is `known` (a name a shell must quote; a space is not possible: \`ssh -G\` prints the file list unquoted), plus `extra` lines for Host boot. */
  function configWith(known: string, extra = ""): string {
    const config = path.join(tempDir(), "ssh_config");
    writeFileSync(config, readFileSync(sshd.sshConfig, "utf8").replace(`UserKnownHostsFile ${sshd.knownHosts}`, `UserKnownHostsFile "${known}"`) + extra);
    return config;
  }

  it("a changed host key: the ssh-keygen -R hint names the -F config's known_hosts with -f, and works as given", async () => {
    const known = path.join(tempDir(), "fleet's_known_hosts");
    writeFileSync(known, `# boot servers\n[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    const configFile = configWith(known);
    const e = await userError(connectSsh("boot", undefined, undefined, { configFile, env: {} }));
    expect(e.code).toBe("HOST_KEY_CHANGED");
    expect(e.message).toContain(`${known}:2 records a different ssh-ed25519 key`);
    const command = commandIn(e.hint, /ssh-keygen -R /);
    expect(command).toBe(`ssh-keygen -R '[127.0.0.1]:${sshd.port}' -f ${shellWord(known)}`);
    expect(command).toContain(`-f '${path.dirname(known)}/fleet'\\''s_known_hosts'`);

    // Pasted into a shell, it removes the old key from that file (and only it), as the hint says.
    execFileSync("sh", ["-c", command], { stdio: "ignore" });
    expect(keygenFind(known, `[127.0.0.1]:${sshd.port}`)).toEqual([]);
    expect(readFileSync(known, "utf8")).toContain("# boot servers");
    // ...after which --accept-new, the hint's next step, connects.
    const conn = await connectSsh("boot", undefined, undefined, { configFile, env: {}, acceptNew: true });
    await conn.sftp.end();
    expect(keygenFind(known, `[127.0.0.1]:${sshd.port}`)).toEqual([2]);
  });

  it("a changed host key under a HostKeyAlias: the hint removes the alias, as known_hosts stores it (no port)", async () => {
    const known = path.join(tempDir(), "known_hosts");
    writeFileSync(known, `bootbox ${otherKey}\n`);
    const e = await userError(connectSsh("boot", undefined, undefined, { configFile: configWith(known, "  HostKeyAlias bootbox\n"), env: {} }));
    expect(e.code).toBe("HOST_KEY_CHANGED");
    expect(commandIn(e.hint, /ssh-keygen -R /)).toBe(`ssh-keygen -R bootbox -f ${known}`);
  });

  it("an unknown host key: the hint says where --accept-new records it, and its ssh command (with -F) records it where netbuild looks", async () => {
    const known = path.join(tempDir(), "fleet's_known_hosts");
    writeFileSync(known, "# nothing known yet\n");
    const configFile = configWith(known);
    const e = await userError(connectSsh("boot", undefined, undefined, { configFile, env: {} }));
    expect(e.code).toBe("HOST_KEY_UNKNOWN");
    expect(e.hint).toContain(`deploy once with --accept-new (it records the key in ${known})`);
    const ssh = commandIn(e.hint, /ssh -F /);
    expect(ssh).toBe(`ssh -F ${configFile} boot`);
    expect(e.hint).toContain(`searched: ${known}, /etc/ssh/ssh_known_hosts`);

    // What a user's first `ssh` does when they answer yes, without the question (and a command, so no shell stays open).
    execFileSync("sh", ["-c", `${ssh.replace(/^ssh /, "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new ")} true`], { stdio: "ignore" });
    const conn = await connectSsh("boot", undefined, undefined, { configFile, env: {} });
    await conn.sftp.end();
  });

  it("the ssh command in the hint keeps the user and port the target URL gives", async () => {
    const known = path.join(tempDir(), "known_hosts");
    writeFileSync(known, "");
    const configFile = configWith(known);
    const e = await userError(connectSsh("boot", sshd.user, sshd.port, { configFile, env: {} }));
    expect(commandIn(e.hint, /ssh -F /)).toBe(`ssh -F ${configFile} -p ${sshd.port} ${sshd.user}@boot`);
  });
});

describe.skipIf(missing({ commands: ["ssh"] }))("host names nothing resolves", () => {
  afterAll(() => cleanupTempDirs());

  // `.invalid` never resolves (RFC 6761). What getaddrinfo says here decides which message is right:
  // a resolver that cannot be reached answers EAI_AGAIN, and netbuild must not call that "no such host".
  const lookupCode = (name: string) =>
    dns.lookup(name).then(
      () => "resolved",
      (e: NodeJS.ErrnoException) => e.code,
    );

  function sshConfig(): string {
    const file = path.join(tempDir(), "ssh_config");
    writeFileSync(file, "Host bootalias\n  HostName boot2.invalid\n  User admin\n");
    return file;
  }

  it("an alias that is neither a Host in the -F file nor a DNS name: one clear line naming it, exit 1, no getaddrinfo", async () => {
    const configFile = sshConfig();
    const root = inventory({ "netbuild.yaml": "targets:\n  boot: sftp://admin@boot-missing.invalid/srv\n", "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n", "classes/k": "k", "classes/i": "i" });
    const r = await cli(["status", "-F", configFile], root);
    expect(r.code).toBe(1);
    if ((await lookupCode("boot-missing.invalid")) === "ENOTFOUND") {
      expect(r.stderr).toBe(
        `netbuild: boot-missing.invalid: no such host (not a Host with a HostName in ${configFile}, and DNS does not know it)\n` +
          `  hint: check the host in the target URL for a typo; if boot-missing.invalid is meant as an SSH alias, give it a HostName in ${configFile} (Host boot-missing.invalid, then HostName and the boot server's address)\n`,
      );
    } else expect(r.stderr).toMatch(/^netbuild: boot-missing\.invalid: cannot look up boot-missing\.invalid: DNS did not answer \(EAI_AGAIN\)\n/);
    expect(r.stderr).not.toMatch(/getaddrinfo|getConnection/);

    const json = await cli(["status", "--json", "-F", configFile], root);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: "SSH_FAILED" });
  });

  it("without -F, the message names ~/.ssh/config", async () => {
    const e = await userError(connectSsh("boot-missing.invalid", "admin", undefined, { env: {} }));
    if ((await lookupCode("boot-missing.invalid")) === "ENOTFOUND") {
      expect(e.message).toBe("boot-missing.invalid: no such host (not a Host with a HostName in ~/.ssh/config, and DNS does not know it)");
    }
  });

  it("an alias whose HostName DNS does not know: names the alias, the HostName and where it is set", async () => {
    const configFile = sshConfig();
    const e = await userError(connectSsh("bootalias", undefined, undefined, { configFile, env: {} }));
    expect(e.code).toBe("SSH_FAILED");
    if ((await lookupCode("boot2.invalid")) === "ENOTFOUND") {
      expect(e.message).toBe(`bootalias: no such host: ${configFile} gives it HostName boot2.invalid, and DNS does not know boot2.invalid`);
      expect(e.hint).toBe(`check the HostName that ${configFile} sets for bootalias (a typo, or a name only another network's DNS knows)`);
    } else expect(e.message).toBe(`bootalias: cannot look up boot2.invalid (the HostName of bootalias in ${configFile}): DNS did not answer (EAI_AGAIN)`);
  });
});

// A boot server that takes the TCP connection and then says nothing (a hung sshd, a firewall that
// swallows the handshake): ConnectTimeout 600 in the -F config, so anything that waits for it
// would outlast these tests' time limit.
describe.skipIf(missing({ commands: ["ssh"] }))("a server that accepts the connection and never answers", () => {
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  let configFile: string;
  beforeAll(async () => {
    // It reads (and drops) what comes, so it sees the client close.
    server = net.createServer((s) => void sockets.add(s.resume()));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    configFile = path.join(tempDir(), "ssh_config");
    writeFileSync(configFile, `Host stalled\n  HostName 127.0.0.1\n  Port ${(server.address() as net.AddressInfo).port}\n  User admin\n  ConnectTimeout 600\n`);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    cleanupTempDirs();
  });

  it("connecting, given up, fails at once and closes its socket", async () => {
    const controller = new AbortController();
    const connecting = connectSsh("stalled", undefined, undefined, { configFile, env: {}, signal: controller.signal });
    await expect.poll(() => sockets.size).toBeGreaterThan(0);
    controller.abort();
    const e = await userError(connecting);
    expect(e.message).toBe(`connecting to admin@127.0.0.1:${(server.address() as net.AddressInfo).port} was given up`);
    await expect.poll(() => [...sockets].every((s) => s.closed)).toBe(true);
    // Given up before it starts: it fails the same way, at once.
    expect((await userError(connectSsh("stalled", undefined, undefined, { configFile, env: {}, signal: AbortSignal.abort() }))).message).toBe(e.message);
  }, 20_000);

  const CLASS = { "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n", "classes/k": "k", "classes/i": "i" };
  /** A deploy that connected (the server saw it) and then refused: its connections all closed. */
  async function refusedAfterConnecting(root: string): Promise<{ code: number; stderr: string }> {
    const before = sockets.size;
    const r = await cli(["deploy", "-F", configFile], root);
    expect(sockets.size, "the deploy connected").toBeGreaterThan(before);
    await expect.poll(() => [...sockets].every((s) => s.closed)).toBe(true);
    return r;
  }

  it("deploy refusing a broken inventory says so and exits, without waiting for the handshake", async () => {
    const root = inventory({ "netbuild.yaml": "targets:\n  boot: sftp://stalled/srv/boot\n", ...CLASS, "hosts/a.yaml": "class: demo\nmac: [\n" });
    const r = await refusedAfterConnecting(root);
    expect(r.stderr).toContain("hosts/a.yaml:");
    expect(r.stderr).toContain("nothing was written");
    expect(r.code).toBe(2);
  }, 20_000);

  it("the same for a refusal once the inventory is loaded (nothing built), the target written with its settings (its connection started from the site file, kept, then given up)", async () => {
    for (const target of ["sftp://stalled/srv/boot", "{ url: sftp://stalled/srv/boot, keep: 2, accessLog: /var/log/nginx/access.log }"]) {
      const root = inventory({ "netbuild.yaml": `targets:\n  boot: ${target}\n`, ...CLASS, "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n' });
      const before = sockets.size;
      const r = await refusedAfterConnecting(root);
      expect(r.stderr, target).toContain("holds no built classes");
      expect(r.code).toBe(1);
      // One connection: the one started from the site file is the one used (and given up).
      expect(sockets.size - before, target).toBe(1);
    }
  }, 40_000);
});
