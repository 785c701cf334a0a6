// `netbuild deploy` to a real OpenSSH sshd on loopback (its own host key, known_hosts and
// ssh_config, started and stopped here), with what arrived checked from the server's side: the
// files internal-sftp logs as written, and the target folder itself.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync, statSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { walkBootChain, macVariables } from "../src/core/boot-chain.ts";
import { serveFolder } from "./support/http.ts";
import { cleanupTempDirs, cli, cliProcess, inventory, REPO, treeChecksum } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { cannotRun, missing } from "./support/tools.ts";
import type { DeployedManifest } from "../src/core/deploy.ts";
import { localTargetFs } from "../src/adapters/target-fs.ts";
import { readDeployed } from "../src/adapters/target-tree.ts";

const notHere = missing({ commands: ["nix-build", "ssh", "ssh-keygen", "ssh-agent", "ssh-add"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server", "/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/snponly.efi"] });

const CLASS = "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n";

let sshd: Sshd;

/** An inventory whose site file deploys to `boot` (the sshd's ssh_config alias) into a fresh folder. */
function site(extra = ""): { root: string; served: string } {
  const served = path.join(sshd.dir, `srv-${Math.random().toString(36).slice(2)}`);
  const root = inventory({
    "netbuild.yaml": `targets:\n  boot: sftp://boot${served}\n${extra}`,
    "classes/demo.yaml": CLASS,
    "classes/demo/kernel": `kernel ${Math.random()}\n`,
    "classes/demo/initrd": `initrd ${Math.random()}\n`,
    "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
    "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1 }\n',
  });
  return { root, served };
}

/**
 * The CLI in-process; commands that reach the target use the sshd's ssh_config (`-F`). Every site
 * here has a host that wipes (bet): these deploys say `--yes`, as a user who has seen the list
 * would; the confirmation itself is tested in test/wipe-confirmation.test.ts.
 */
async function run(root: string, ...args: string[]) {
  return cli(args[0] === "build" ? args : [...args, "-F", sshd.sshConfig, ...(args[0] === "deploy" ? ["--yes"] : [])], root);
}

async function ok(root: string, ...args: string[]) {
  const r = await run(root, ...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** Tree content files the server received since `mark` (the manifest and the lock left out). */
function contentWritten(mark: number, served: string): { path: string; bytes: number }[] {
  return sshd
    .written(mark)
    .filter((w) => !w.path.includes("/.netbuild/"))
    .map((w) => ({ path: path.relative(served, w.path), bytes: w.bytes }));
}

/** The target's record as netbuild reads it (deployed.json with its delta applied, the pending journal merged). */
async function deployed(served: string): Promise<DeployedManifest> {
  return (await readDeployed(localTargetFs(served)))!;
}

describe.skipIf(notHere)("deploy over SFTP to a real sshd", () => {
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
    cleanupTempDirs();
  });

  it("first deploy puts the built tree on the server: same paths, same bytes, by-mac links intact", async () => {
    const { root, served } = site();
    await ok(root, "build");
    const mark = sshd.mark();
    const r = await ok(root, "deploy");
    expect(r.stderr).toContain("bet  id r1  (provision.disks: true in hosts/bet.yaml)");
    // 6 scripts and links, and the 2 iPXE binaries the build copied from /usr/lib/ipxe.
    expect(r.stdout).toMatch(/deployed to boot \(sftp:\/\/.*\): 2 uploads .* 8 switches, 0 removals/);
    // Everything served equals out/, link for link: the same paths, types, modes, bytes and link
    // targets (each side's own records under .netbuild/ left out), and no leftover temporary file.
    // The scripts first, compared as text (a readable diff); then the whole tree.
    const out = path.join(root, "out");
    for (const p of ["boot.ipxe", "by-host/aleph/ipxe", "by-host/bet/ipxe", "by-class/demo/ipxe"]) {
      expect(readFileSync(path.join(served, p), "utf8")).toBe(readFileSync(path.join(out, p), "utf8"));
    }
    expect(treeListing(served, [".netbuild"]), "the served tree is the built tree").toEqual(treeListing(out, [".netbuild"]));
    expect(readlinkSync(path.join(served, "by-mac/52-54-00-00-00-01"))).toBe("../by-host/aleph");
    expect(readFileSync(path.join(served, "by-mac/52-54-00-00-00-02/ipxe"), "utf8")).toContain("homelab.provision_disks=true");
    // The iPXE binaries arrive byte for byte (binary, not text: any re-encoding would break them).
    for (const name of ["undionly.kpxe", "snponly.efi"]) expect(readFileSync(path.join(served, "ipxe", name)).equals(readFileSync(path.join("/usr/lib/ipxe", name))), name).toBe(true);
    // Artifacts and boot.ipxe went to a temporary name first and were renamed into place; scripts
    // nothing could reach yet (the links and boot.ipxe that lead to them come later) were written in place.
    const sent = contentWritten(mark, served).map((w) => w.path.replace(/\w{32}/, "HASH")).sort();
    expect(sent).toEqual([".boot.ipxe.netbuild-tmp", "by-class/demo/HASH/.initrd.netbuild-tmp", "by-class/demo/HASH/.kernel.netbuild-tmp", "by-class/demo/ipxe", "by-host/aleph/ipxe", "by-host/bet/ipxe", "ipxe/.snponly.efi.netbuild-tmp", "ipxe/.undionly.kpxe.netbuild-tmp"]);
    expect(existsSync(path.join(served, ".netbuild/lock"))).toBe(false);
  });

  it("sends nothing when nothing changed, and only the host's script when one host's flag changed", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    let mark = sshd.mark();
    const noop = await ok(root, "deploy", "--json");
    expect(JSON.parse(noop.stdout).targets[0]).toMatchObject({ noop: true, bytes: 0, uploads: [], switches: [] });
    expect(sshd.written(mark).filter((w) => !w.path.endsWith("/.netbuild/lock"))).toEqual([]);

    // No `build` needed for a host change: deploy brings out/'s scripts up to date itself.
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: r1 }\n');
    mark = sshd.mark();
    const changed = await ok(root, "deploy", "--json");
    expect(JSON.parse(changed.stdout).targets[0].switches).toEqual(["by-host/aleph/ipxe"]);
    expect(contentWritten(mark, served).map((w) => w.path)).toEqual(["by-host/aleph/.ipxe.netbuild-tmp"]);
    expect(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8")).toContain("set cmdline hostname=aleph homelab.provision_disks=true");
  });

  it("removes a removed host's by-mac and by-host entries and nothing else", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    rmSync(path.join(root, "hosts/aleph.yaml"));
    const r = await ok(root, "deploy", "--json");
    expect(JSON.parse(r.stdout).targets[0].deletions).toEqual(["by-mac/52-54-00-00-00-01", "by-host/aleph/ipxe"]);
    expect(existsSync(path.join(served, "by-host/aleph"))).toBe(false);
    expect(() => lstatSync(path.join(served, "by-mac/52-54-00-00-00-01"))).toThrow();
    expect(existsSync(path.join(served, "by-host/bet/ipxe"))).toBe(true);
    expect(Object.keys((await deployed(served)).entries)).not.toContain("by-host/aleph/ipxe");
  });

  it("keeps the old generation when a class is rebuilt, rolls back without uploading, and gc trims to keep", async () => {
    const { root, served } = site("keep: 2\n");
    await ok(root, "build");
    await ok(root, "deploy");
    const first = readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8");
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd v2\n");
    await ok(root, "build");
    await ok(root, "deploy");
    const second = readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8");
    expect(second).not.toBe(first);
    const d = await deployed(served);
    expect(d.classes["demo"]!.generations).toHaveLength(2);
    for (const g of d.classes["demo"]!.generations) expect(existsSync(path.join(served, g.initrd))).toBe(true);

    const status = await ok(root, "status");
    expect(status.stdout).toMatch(/class demo\n {4}\* \w{12} +\w{32} +deployed [^\n]+\n {6}\w{12}/);

    let mark = sshd.mark();
    const back = await ok(root, "rollback", "--json");
    expect(JSON.parse(back.stdout).targets[0].changes).toHaveLength(1);
    expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).toBe(first);
    expect(contentWritten(mark, served).map((w) => w.path)).toEqual(["by-class/demo/.ipxe.netbuild-tmp"]);
    // Nothing older to go back to.
    const again = await run(root, "rollback");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("has no generation older than");

    // A deploy of the same build (a host edit, say) does not undo the rollback.
    const held = await ok(root, "deploy");
    expect(held.stderr).toMatch(/class demo stays rolled back to \w{12}: out\/ holds (\w{12}), which was rolled back/);
    expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).toBe(first);
    // Going forward again is explicit, and uploads nothing: that generation is still there.
    const secondId = /out\/ holds (\w{12})/.exec(held.stderr)![1]!;
    mark = sshd.mark();
    await ok(root, "rollback", "--class", "demo", "--generation", secondId);
    expect(contentWritten(mark, served).map((w) => w.path)).toEqual(["by-class/demo/.ipxe.netbuild-tmp"]);
    expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).toBe(second);

    // A third build drops the first generation (keep: 2), and its files with it.
    const oldest = (await deployed(served)).classes["demo"]!.generations[1]!;
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd v3\n");
    await ok(root, "build");
    await ok(root, "deploy");
    expect((await deployed(served)).classes["demo"]!.generations.map((g) => g.id)).not.toContain(oldest.id);
    expect(existsSync(path.join(served, oldest.initrd))).toBe(false);
    expect(existsSync(path.join(served, path.dirname(oldest.initrd)))).toBe(false);
    // A class that leaves the inventory loses its script at the next deploy, and its files at gc.
    writeFileSync(path.join(root, "classes/spare.yaml"), CLASS.replace(/demo/g, "spare"));
    mkdirSync(path.join(root, "classes/spare"));
    writeFileSync(path.join(root, "classes/spare/kernel"), "spare kernel\n");
    writeFileSync(path.join(root, "classes/spare/initrd"), "spare initrd\n");
    await ok(root, "build");
    await ok(root, "deploy");
    const spare = (await deployed(served)).classes["spare"]!.generations[0]!;
    rmSync(path.join(root, "classes/spare.yaml"));
    await ok(root, "build");
    await ok(root, "deploy");
    expect(existsSync(path.join(served, "by-class/spare/ipxe"))).toBe(false);
    expect(existsSync(path.join(served, spare.initrd))).toBe(true);
    const gc = await ok(root, "gc", "--json");
    expect(JSON.parse(gc.stdout).targets[0].removed.sort()).toEqual([spare.initrd, spare.kernel].sort());
    expect(existsSync(path.join(served, "by-class/spare"))).toBe(false);
    expect((await deployed(served)).classes["demo"]!.generations).toHaveLength(2);
    await ok(root, "verify");
  });

  it("deploys copy mode as real folders and switches between modes", async () => {
    const { root, served } = site("links: copy\n");
    await ok(root, "build");
    await ok(root, "deploy");
    const mac = path.join(served, "by-mac/52-54-00-00-00-01");
    expect(lstatSync(mac).isDirectory()).toBe(true);
    expect(readFileSync(path.join(mac, "ipxe"), "utf8")).toBe(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8"));
    writeFileSync(path.join(root, "netbuild.yaml"), readFileSync(path.join(root, "netbuild.yaml"), "utf8").replace("links: copy\n", ""));
    await ok(root, "build");
    await ok(root, "deploy");
    expect(readlinkSync(mac)).toBe("../by-host/aleph");
    expect(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8")).toContain("hostname=aleph");
    writeFileSync(path.join(root, "netbuild.yaml"), `${readFileSync(path.join(root, "netbuild.yaml"), "utf8")}links: copy\n`);
    await ok(root, "build");
    await ok(root, "deploy");
    expect(lstatSync(mac).isDirectory()).toBe(true);
    expect(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8")).toContain("hostname=aleph");
  });

  it("refuses an unknown host key unless --accept-new, and a changed one always, naming file and line", async () => {
    const { root, served } = site();
    await ok(root, "build");
    const knownHosts = readFileSync(sshd.knownHosts, "utf8");
    try {
      writeFileSync(sshd.knownHosts, "# nothing known yet\n");
      const unknown = await run(root, "deploy");
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/the host key of \[127\.0\.0\.1\]:\d+ is not in known_hosts.*ssh-ed25519 SHA256:/);
      expect(existsSync(served)).toBe(false);

      // As a process, stdout is exactly one JSON document: nothing from the SSH library reaches it.
      const asJson = await cliProcess(["deploy", "--json", "--yes", "-F", sshd.sshConfig], root);
      expect(asJson.code).toBe(1);
      expect(JSON.parse(asJson.stdout)).toMatchObject({ ok: false, code: "HOST_KEY_UNKNOWN" });

      const accepted = await ok(root, "deploy", "--accept-new");
      expect(accepted.stderr).toContain("added the host key");
      expect(readFileSync(sshd.knownHosts, "utf8")).toContain(sshd.knownHostsLine.split(" ")[2]!);

      // Another ed25519 key recorded for the same host and port: a changed key.
      const other = path.join(sshd.dir, "otherkey");
      if (!existsSync(other)) await cliProcessKeygen(other);
      const otherPub = readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
      writeFileSync(sshd.knownHosts, `# line 1\n[127.0.0.1]:${sshd.port} ${otherPub}\n`);
      for (const args of [["deploy"], ["deploy", "--accept-new"]]) {
        const changed = await run(root, ...args);
        expect(changed.code).toBe(1);
        expect(changed.stderr).toContain(`has CHANGED`);
        expect(changed.stderr).toContain(`${sshd.knownHosts}:2`);
      }
    } finally {
      writeFileSync(sshd.knownHosts, knownHosts);
    }
  });

  it("looks a HostKeyAlias up in known_hosts as OpenSSH does (the alias alone, no port)", async () => {
    const { root } = site();
    await ok(root, "build");
    const known = path.join(sshd.dir, "known_hosts_alias");
    writeFileSync(known, `bootbox ${sshd.knownHostsLine.split(" ").slice(1).join(" ")}\n`);
    const config = path.join(sshd.dir, "ssh_config_alias");
    writeFileSync(config, readFileSync(sshd.sshConfig, "utf8").replace(sshd.knownHosts, known) + "  HostKeyAlias bootbox\n");
    const r = await cli(["deploy", "-F", config, "--yes"], root);
    expect(r.code, r.stderr).toBe(0);
  });

  it("authenticates with a passphrase-protected key through ssh-agent, and says which keys it tried when none works", async () => {
    const { root } = site();
    await ok(root, "build");
    const key = path.join(sshd.dir, "passkey");
    if (!existsSync(key)) await cliProcessKeygen(key, "correct horse");
    writeFileSync(path.join(sshd.dir, "authorized_keys"), readFileSync(`${key}.pub`));
    const config = path.join(sshd.dir, "ssh_config_pass");
    writeFileSync(config, readFileSync(sshd.sshConfig, "utf8").replace(sshd.userKey, key));
    try {
      const noAgent = await cli(["deploy", "-F", config, "--yes"], root, { SSH_AUTH_SOCK: "" });
      expect(noAgent.code).toBe(1);
      expect(noAgent.stderr).toContain(`skipping ${key}: it needs a passphrase`);
      expect(noAgent.stderr).toContain("refused every key netbuild offered");

      const agent = await startAgent();
      try {
        await addToAgent(agent, key, "correct horse");
        const r = await cli(["deploy", "-F", config, "--yes"], root, { SSH_AUTH_SOCK: agent.sock });
        expect(r.code, r.stderr).toBe(0);
        // `IdentityAgent none` in the config: the agent is not asked, as with OpenSSH.
        writeFileSync(config, `${readFileSync(config, "utf8")}  IdentityAgent none\n`);
        const noneAgent = await cli(["deploy", "-F", config, "--yes"], root, { SSH_AUTH_SOCK: agent.sock });
        expect(noneAgent.code).toBe(1);
        expect(noneAgent.stderr).toContain("tried: nothing (no ssh-agent, no readable key files)");
      } finally {
        process.kill(agent.pid);
      }
    } finally {
      writeFileSync(path.join(sshd.dir, "authorized_keys"), readFileSync(`${sshd.userKey}.pub`));
    }
  });

  it("fails at once on a target locked by another deploy, waits with --wait, breaks it with --break-lock", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
    const lock = path.join(served, ".netbuild/lock");
    const foreign = { owner: "ops", host: "laptop.elsewhere", pid: 4242, command: "deploy", started: "2026-11-23T10:00:00.000Z", token: "x" };
    writeFileSync(lock, JSON.stringify(foreign));

    const locked = await run(root, "deploy");
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain("is locked by `netbuild deploy` by ops on laptop.elsewhere (pid 4242)");
    expect(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8")).not.toContain("quiet");

    // The lock goes once the deploy says it waits for it (not after a guessed delay).
    const child = spawn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "deploy", "--wait", "--yes", "-F", sshd.sshConfig], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    let waitedErr = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.stderr.on("data", (b: Buffer) => {
      waitedErr += b.toString();
      if (waitedErr.includes("waiting for the lock held by") && existsSync(lock)) rmSync(lock);
    });
    expect(await exited, waitedErr).toBe(0);
    expect(waitedErr).toContain("waiting for the lock held by");
    expect(readFileSync(path.join(served, "by-host/aleph/ipxe"), "utf8")).toContain("quiet");

    writeFileSync(lock, JSON.stringify(foreign));
    const broken = await ok(root, "deploy", "--break-lock");
    expect(broken.stderr).toContain("breaking the lock of");
    expect(existsSync(lock)).toBe(false);

    // A lock left by a process of this machine that is gone is stale for certain, and broken by itself.
    writeFileSync(lock, JSON.stringify({ ...foreign, host: (await import("node:os")).hostname(), machine: readFileSync("/etc/machine-id", "utf8").trim(), pid: 999_999 }));
    const stale = await ok(root, "deploy");
    expect(stale.stderr).toContain("breaking the stale lock");
  });

  it("leaves the old tree bootable when the connection dies mid-upload, and the next deploy finishes without re-sending", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    const before = await deployed(served);
    // A new build with a kernel that is new and small, and an initrd large enough to kill mid-way.
    writeFileSync(path.join(root, "classes/demo/kernel"), `kernel v2 ${Math.random()}\n`);
    const big = path.join(root, "classes/demo/initrd");
    writeFileSync(big, Buffer.alloc(200_000_000, `initrd v2 ${Math.random()} `));
    await ok(root, "build");

    const child = cliProcess(["deploy", "-F", sshd.sshConfig], root);
    const tmpOf = (p: string) => path.join(served, path.dirname(p), `.${path.basename(p)}.netbuild-tmp`);
    const built = JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")) as { classes: { demo: { initrd: { path: string }; kernel: { path: string } } } };
    const initrdTmp = tmpOf(built.classes.demo.initrd.path);
    for (let i = 0; i < 600 && !(existsSync(initrdTmp) && statSync(initrdTmp).size > 20_000_000); i++) await new Promise((r) => setTimeout(r, 50));
    sshd.killSessions();
    const failed = await child;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/uploading by-class\/demo\/\w{32}\/initrd on sftp:\/\/.* failed/);

    // An HTTP client over the served tree: every reachable path resolves to a complete file of the old generation.
    const server = await serveFolder(served);
    try {
      for (const mac of ["52-54-00-00-00-01", "52-54-00-00-00-02"]) {
        const chain = await walkBootChain(`${server.url}/boot.ipxe`, macVariables(mac), async (u) => {
          const res = await fetch(u);
          return res.status === 404 ? undefined : res.text();
        });
        expect(chain.result, chain.problem).toBe("boot");
        for (const url of [chain.kernel!.url, ...chain.initrds]) {
          const rel = url.slice(server.url.length + 1);
          const body = Buffer.from(await (await fetch(url)).arrayBuffer());
          expect(before.entries[rel], rel).toMatchObject({ size: body.length, sha256: createHash("sha256").update(body).digest("hex") });
        }
      }
    } finally {
      await server.close();
    }

    // The kernel arrived complete before the kill: the next deploy does not send it again.
    const mark = sshd.mark();
    const resumed = await ok(root, "deploy");
    // The killed deploy could not remove its lock; its process is gone, so the lock is provably stale.
    expect(resumed.stderr).toContain("breaking the stale lock");
    expect(resumed.stderr).toContain(`${built.classes.demo.kernel.path} arrived complete in an earlier deploy: not sent again`);
    expect(contentWritten(mark, served).map((w) => w.path)).not.toContain(path.relative(served, tmpOf(built.classes.demo.kernel.path)));
    expect(statSync(path.join(served, built.classes.demo.initrd.path)).size).toBe(200_000_000);
    expect((await deployed(served)).pending).toEqual([]);
    expect(existsSync(initrdTmp)).toBe(false);
    const check = await ok(root, "verify");
    expect(check.stdout).toMatch(/0 missing, 0 changed, 0 not netbuild's/);
  });

  it("says on Ctrl-C what the target serves now, exits 130, and the next deploy finishes the job", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    const classScript = readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8");
    writeFileSync(path.join(root, "classes/demo/initrd"), Buffer.alloc(200_000_000, `initrd v2 ${Math.random()} `));
    await ok(root, "build");
    const built = JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")) as { classes: { demo: { initrd: { path: string } } } };
    const initrdTmp = path.join(served, path.dirname(built.classes.demo.initrd.path), `.${path.basename(built.classes.demo.initrd.path)}.netbuild-tmp`);
    const child = spawn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "deploy", "-F", sshd.sshConfig], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    for (let i = 0; i < 600 && !(existsSync(initrdTmp) && statSync(initrdTmp).size > 20_000_000); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    expect(await exited, stderr).toBe(130);
    expect(stderr).toContain("netbuild deploy interrupted (SIGINT):\n  boot: it still serves the previous tree, unchanged (new files were being uploaded beside it)\n");
    expect(stderr).toContain("Run `netbuild deploy` again to finish the job");
    expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).toBe(classScript);
    const again = await ok(root, "deploy");
    expect(again.stderr).toContain("breaking the stale lock");
    expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).not.toBe(classScript);
    expect((await deployed(served)).pending).toEqual([]);
  });

  it("refuses up front when the server's disk cannot hold the upload, and finishes once there is room", async (t) => {
    const { root, served } = site();
    mkdirSync(served);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", served], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      // A small file system is the only honest full disk; without mount(8) rights it cannot be made here.
      return cannotRun(t, `full-disk deploy: a small tmpfs (mount -t tmpfs failed: ${failure(e)})`);
    }
    try {
      await ok(root, "build");
      await ok(root, "deploy");
      const before = treeChecksum(served);
      writeFileSync(path.join(root, "classes/demo/initrd"), Buffer.alloc(6_000_000, `big ${Math.random()}`));
      await ok(root, "build");
      const full = await run(root, "deploy");
      expect(full.code).toBe(1);
      expect(full.stderr).toMatch(/boot \(sftp:\/\/.*\) has [\d.]+ MiB free, and this deploy uploads 5\.7 MiB; nothing was changed/);
      expect(full.stderr).toContain("netbuild gc --target boot");
      expect(treeChecksum(served)).toBe(before);
      execFileSync("mount", ["-o", "remount,size=16m", served]);
      await ok(root, "deploy");
      await ok(root, "verify");
    } finally {
      execFileSync("umount", [served]);
    }
  });

  it("reports a permission error with the path and the SSH user, leaves the served tree as it was, and finishes next time", async (t) => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    const folder = path.join(served, "by-host/aleph");
    try {
      // Root ignores file modes; an immutable folder refuses even root, as a read-only one refuses a normal user.
      execFileSync("chattr", ["+i", folder], { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      return cannotRun(t, `permission-error deploy: an immutable folder (chattr +i failed: ${failure(e)})`);
    }
    try {
      const before = treeChecksum(served, [".netbuild"]);
      writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
      const denied = await run(root, "deploy");
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/writing by-host\/aleph\/ipxe on sftp:\/\/.* failed: Permission denied/);
      expect(denied.stderr).toContain(`the SSH user ${sshd.user} cannot write there`);
      // Only the manifest's list of paths in flight differs; what machines fetch is untouched.
      expect(treeChecksum(served, [".netbuild"])).toBe(before);
      expect(readFileSync(path.join(folder, "ipxe"), "utf8")).not.toContain("quiet");
    } finally {
      execFileSync("chattr", ["-i", folder]);
    }
    await ok(root, "deploy");
    expect(readFileSync(path.join(folder, "ipxe"), "utf8")).toContain("quiet");
    expect((await deployed(served)).pending).toEqual([]);
  });

  it("verify finds files changed or added by hand; deploy --verify repairs them; verify --http checks every machine's chain", async () => {
    const { root, served } = site();
    await ok(root, "build");
    await ok(root, "deploy");
    const server = await serveFolder(served);
    try {
      const good = await ok(root, "verify", "--http", server.url, "--json");
      const machines = JSON.parse(good.stdout).http.machines as { mac: string; host: string | null; ok: boolean; outcome: string; cmdline: string[] }[];
      expect(machines.map((m) => [m.mac, m.host ?? null, m.ok, m.outcome])).toEqual([
        ["52-54-00-00-00-01", "aleph", true, "boot"],
        ["52-54-00-00-00-02", "bet", true, "boot"],
        ["02-00-00-00-00-00", null, true, "exit"],
      ]);
      expect(machines[1]!.cmdline).toContain("homelab.provision_disks=true");

      const d = await deployed(served);
      const initrd = d.classes["demo"]!.generations[0]!.initrd;
      writeFileSync(path.join(served, initrd), "tampered\n");
      mkdirSync(path.join(served, "by-host/stray"));
      writeFileSync(path.join(served, "by-host/stray/ipxe"), "#!ipxe\n");

      const bad = await run(root, "verify", "--http", server.url);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(`FAIL 52-54-00-00-00-01  aleph`);
      expect(bad.stdout).toMatch(/initrd: .* served, .* expected/);

      const drift = await run(root, "verify");
      expect(drift.code).toBe(1);
      expect(drift.stderr).toContain(`changed on the target: ${initrd}`);
      expect(drift.stderr).toContain("not written by netbuild: by-host/stray/ipxe");

      const repaired = await ok(root, "deploy", "--verify");
      expect(repaired.stderr).toContain(`${initrd} was changed on the target: it will be written again`);
      await ok(root, "verify", "--http", server.url);
      expect(existsSync(path.join(served, "by-host/stray/ipxe"))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("never overwrites files it did not write", async () => {
    const { root, served } = site();
    await ok(root, "build");
    mkdirSync(served, { recursive: true });
    writeFileSync(path.join(served, "boot.ipxe"), "#!ipxe\n# the old hand-made one\n");
    const r = await run(root, "deploy");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("already has 1 path netbuild would write but did not create: boot.ipxe");
    expect(readFileSync(path.join(served, "boot.ipxe"), "utf8")).toContain("hand-made");
  });

  it("refuses a local target that overlaps the build output", async () => {
    const root = inventory({ "netbuild.yaml": "targets:\n  here: out\n", "classes/demo.yaml": CLASS, "classes/demo/kernel": "k\n", "classes/demo/initrd": "i\n", "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n' });
    await ok(root, "build");
    const r = await cli(["deploy"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("target here");
    expect(r.stderr).toContain("overlaps the build output");
  });

  it("prints the plan with --dry-run and changes nothing", async () => {
    const { root, served } = site();
    await ok(root, "build");
    const r = await ok(root, "deploy", "--dry-run");
    expect(r.stderr).toMatch(/\[boot\] upload {2}by-class\/demo\/\w{32}\/kernel \(\d+ B\)/);
    expect(r.stderr).toContain("[boot] switch  by-host/bet/ipxe   !!! WIPES ITS DISKS ON NEXT BOOT");
    expect(r.stdout).toContain("would deploy to boot");
    expect(existsSync(served)).toBe(false);
  });
});

/** Every path under `dir` as a line (type, mode, sha256 of the content, link target), top-level names in `skip` left out: two trees' listings differ where the trees do. */
function treeListing(dir: string, skip: string[] = []): string[] {
  const lines: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      if (rel === "" && skip.includes(name)) continue;
      const abs = path.join(d, name);
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) lines.push(`link ${r} -> ${readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        lines.push(`dir  ${r} ${(st.mode & 0o7777).toString(8)}`);
        walk(abs, r);
      } else lines.push(`file ${r} ${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(readFileSync(abs)).digest("hex")}`);
    }
  };
  walk(dir, "");
  return lines;
}

/** What a failed command said (its stderr's first line), or its error. */
function failure(e: unknown): string {
  const stderr = (e as { stderr?: Buffer | string }).stderr?.toString().trim();
  return stderr ? stderr.split("\n")[0]! : String((e as Error).message ?? e);
}

async function cliProcessKeygen(file: string, passphrase = ""): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "", "-f", file]);
}

async function startAgent(): Promise<{ sock: string; pid: number }> {
  const { execFileSync } = await import("node:child_process");
  const out = execFileSync("ssh-agent", ["-s"], { encoding: "utf8" });
  return { sock: /SSH_AUTH_SOCK=([^;]+);/.exec(out)![1]!, pid: Number(/SSH_AGENT_PID=(\d+);/.exec(out)![1]) };
}

async function addToAgent(agent: { sock: string }, key: string, passphrase: string): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const askpass = path.join(path.dirname(key), "askpass.sh");
  writeFileSync(askpass, `#!/bin/sh\necho '${passphrase}'\n`, { mode: 0o755 });
  execFileSync("ssh-add", [key], { env: { ...process.env, SSH_AUTH_SOCK: agent.sock, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" }, stdio: ["ignore", "ignore", "pipe"] });
}
