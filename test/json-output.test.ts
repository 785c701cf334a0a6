// `--json`: stdout carries exactly one JSON document for every command that has it, on success and
// on failure (errors as JSON: usage errors, refusals, failures on the targets), and nothing from a
// library reaches stdout or the terminal unasked. Every case runs the real CLI: in-process (with
// this process's own stdout, stderr and console watched, where a library would write), and the
// SFTP ones (and a few more) also as a child process (`node bin/netbuild.js`), where a library's
// console.log lands on the real stdout. One built checkout (the repository's demo kernel and
// initrd, class `other`) and one target it deployed to are shared; each case copies them.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { format } from "node:util";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { serveFolder, type StaticServer } from "./support/http.ts";
import { addDemoFiles, cleanupTempDirs, cli, cliProcess, DEMO_INITRD, DEMO_KERNEL, inventory, tempDir, type CliRun } from "./support/inventory.ts";
import { freePort, startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const notHere = missing({ commands: ["nix-build", "ssh", "ssh-keygen"], files: [DEMO_KERNEL, DEMO_INITRD, "/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });

const prebuilt = (name: string, kernel: string, initrd: string) => `kind: prebuilt\nkernel: { path: ./${name}/${kernel} }\ninitrd: { path: ./${name}/${initrd} }\nkernelParams: [console=ttyS0]\n`;
const TALOS_CLASS = "kind: talos\ntalos:\n  version: v1.12.2\n  schematic: {}\n  machine: { role: worker }\nkernelParams: [console=ttyS0]\n";
/** An inventory netbuild refuses: a host of a class that does not exist. */
const BAD = { "hosts/a.yaml": 'class: nope\nmac: "52:54:00:00:00:01"\n' };
/** What ssh2-sftp-client prints (console.log / console.error) when its global listeners fire, and Node's own warnings. */
const LIBRARY_NOISE = /Global (end|close|error) listener|\(node:\d+\)|DeprecationWarning|ExperimentalWarning/;

let sshd: Sshd;
let notSsh: net.Server;
/**
 * An ssh_config with `boot` (the sshd, its key known), `stranger` (the same sshd, its key unknown),
 * `dead` (a closed port), `nokey` (a key the sshd refuses) and `notssh` (a port that hangs up).
 */
let sshConfig: string;
let template: { root: string; served: string };
let templateBuild: CliRun;
let templateDeploy: CliRun;

// ---------------------------------------------------------------------------------------------
// What the in-process CLI writes to this process's own stdout, stderr or console: nothing, ever
// (its output goes to the streams cli() hands it). Checked after every test.
let leaked: string[] = [];
beforeEach(() => {
  leaked = [];
  for (const m of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void leaked.push(`console.${m}: ${format(...a)}`));
  }
  for (const s of ["stdout", "stderr"] as const) {
    vi.spyOn(process[s], "write").mockImplementation((chunk: unknown) => (leaked.push(`process.${s}: ${String(chunk)}`), true));
  }
});
afterEach(() => {
  vi.restoreAllMocks();
  expect(leaked, "written to the real stdout/stderr/console by the in-process CLI (a library's output?)").toEqual([]);
});

// ---------------------------------------------------------------------------------------------
/** stdout is exactly one JSON document (an object, pretty-printed, one final newline) whose `ok` matches the exit code. */
function oneDocument(r: CliRun, label: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    expect.fail(`${label}: stdout is not exactly one JSON document (exit ${r.code}):\n---- stdout ----\n${r.stdout}\n---- stderr ----\n${r.stderr}`);
  }
  expect(doc !== null && typeof doc === "object" && !Array.isArray(doc), `${label}: the document is an object`).toBe(true);
  expect(r.stdout, `${label}: nothing but the document on stdout`).toBe(`${JSON.stringify(doc, null, 2)}\n`);
  const d = doc as Record<string, unknown>;
  expect(d["ok"], `${label}: ok matches exit ${r.code} (stderr:\n${r.stderr})`).toBe(r.code === 0);
  expect(r.stderr, `${label}: no library output on the terminal`).not.toMatch(LIBRARY_NOISE);
  return d;
}

function expectOk(r: CliRun, label: string): Record<string, unknown> {
  expect(r.code, `${label}: exit code (stderr:\n${r.stderr})`).toBe(0);
  return oneDocument(r, label);
}

/** An error document: exit code, `ok: false`, the error code, a message; no internal error. */
function expectError(r: CliRun, exit: 1 | 2, code: string, label: string): Record<string, unknown> {
  const doc = oneDocument(r, label);
  expect(r.code, `${label}: exit code (stderr:\n${r.stderr})`).toBe(exit);
  expect(doc, label).toMatchObject({ ok: false, code });
  expect(typeof doc["message"] === "string" && (doc["message"] as string).length > 0, `${label}: a message`).toBe(true);
  expect(r.stderr, `${label}: no internal error`).not.toContain("internal error");
  return doc;
}

/** cli() in-process; the `args` as given (add --json yourself). */
const run = (root: string, ...args: string[]) => cli(args, root);
/** The same as a child process: `node bin/netbuild.js …`. */
const proc = (root: string, ...args: string[]) => cliProcess(args, root);

// ---------------------------------------------------------------------------------------------
function writeSite(root: string, targets: Record<string, string> | undefined, extra = ""): void {
  const lines = targets ? ["targets:", ...Object.entries(targets).map(([n, t]) => `  ${n}: "${t}"`)] : [];
  writeFileSync(path.join(root, "netbuild.yaml"), `${[...lines, extra].filter(Boolean).join("\n")}\n`);
}

/**
 * A copy of a folder, symlinks as they are; files of 1 MiB or more (the demo kernel and initrd,
 * which nothing here writes in place: netbuild replaces files by rename) hard-linked, not copied.
 */
function copyTree(from: string, to: string, skip: (p: string) => boolean = () => false): void {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const src = path.join(from, name);
    const dest = path.join(to, name);
    if (skip(src)) continue;
    const st = lstatSync(src);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dest);
    else if (st.isDirectory()) copyTree(src, dest, skip);
    else if (st.size >= 1 << 20) linkSync(src, dest);
    else copyFileSync(src, dest);
  }
}

/**
 * A private copy of the template checkout (out/ included unless `built: false`), its site file
 * naming `served` (a fresh folder, holding the template's deploy when `deployed`) as target `local`.
 */
function checkout(options: { built?: boolean; deployed?: boolean } = {}): { root: string; served: string; dir: string } {
  const dir = tempDir("netbuild-json-");
  const root = path.join(dir, "root");
  const served = path.join(dir, "served");
  const out = path.join(template.root, "out");
  copyTree(template.root, root, (src) => options.built === false && src === out);
  if (options.deployed) copyTree(template.served, served);
  writeSite(root, { local: served });
  return { root, served, dir };
}

const FOREIGN_LOCK = JSON.stringify({ owner: "ops", host: "laptop.elsewhere", pid: 4242, command: "deploy", started: "2026-11-23T10:00:00.000Z", token: "x" });
function lock(served: string): void {
  writeFileSync(path.join(served, ".netbuild/lock"), FOREIGN_LOCK);
}

/** A change deploy sends as one script: demo-kept gains a kernel parameter. */
function editHost(root: string): void {
  writeFileSync(path.join(root, "hosts/demo-kept.yaml"), 'class: demo\nmac: "52:54:00:12:34:57"\nkernelParams: [quiet]\n');
}

/** A document's per-target outcomes, by name. */
function byName(targets: unknown): { name: string }[] {
  expect(targets, "the error has each target's outcome").toBeInstanceOf(Array);
  return [...(targets as { name: string }[])].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The child-process runs (each start costs a second or two): started together once the template
 * exists, alongside the in-process tests, and checked in "as a process".
 */
const runs: Record<string, Promise<CliRun>> = {};
const dirs: Record<string, string> = {};
function startProcessRuns(): void {
  const sftp = checkout();
  writeSite(sftp.root, { boot: `sftp://boot${sftp.dir}/sftp-ok`, stranger: `sftp://stranger${sftp.dir}/sftp-stranger`, dead: `sftp://dead${sftp.dir}/sftp-dead` });
  dirs["sftp"] = sftp.dir;
  for (const t of ["boot", "stranger", "dead"]) runs[`deploy ${t}`] = proc(sftp.root, "deploy", "--target", t, "--yes", "-F", sshConfig, "--json");

  const two = checkout({ deployed: true });
  writeSite(two.root, { local: two.served, dead: `sftp://dead${two.dir}/sftp` });
  editHost(two.root);
  runs["deploy two"] = proc(two.root, "deploy", "-F", sshConfig, "--json");

  const wipe = checkout();
  runs["deploy wipe"] = proc(wipe.root, "deploy", "--json");

  const drift = checkout({ deployed: true });
  mkdirSync(path.join(drift.served, "by-host/stray"));
  writeFileSync(path.join(drift.served, "by-host/stray/ipxe"), "#!ipxe\n");
  runs["verify drift"] = proc(drift.root, "verify", "--json");
}

describe.skipIf(notHere)("--json: exactly one JSON document on stdout, for every command, on success and on failure", () => {
  beforeAll(async () => {
    sshd = await startSshd();
    const closed = await freePort();
    const emptyKnownHosts = path.join(sshd.dir, "known_hosts_empty");
    writeFileSync(emptyKnownHosts, "# nothing known\n");
    // A key the server does not accept, and a port that accepts and hangs up at once (not SSH).
    const otherKey = path.join(sshd.dir, "otherkey");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", otherKey]);
    notSsh = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => notSsh.listen(0, "127.0.0.1", resolve));
    const host = (name: string, port: number, known = sshd.knownHosts, key = sshd.userKey) => [`Host ${name}`, "  HostName 127.0.0.1", `  Port ${port}`, `  User ${sshd.user}`, `  IdentityFile ${key}`, "  IdentityAgent none", `  UserKnownHostsFile ${known}`, ""];
    sshConfig = path.join(sshd.dir, "ssh_config_json");
    writeFileSync(
      sshConfig,
      [...host("boot", sshd.port), ...host("stranger", sshd.port, emptyKnownHosts), ...host("dead", closed), ...host("nokey", sshd.port, sshd.knownHosts, otherKey), ...host("notssh", (notSsh.address() as net.AddressInfo).port)].join("\n"),
    );

    const dir = tempDir("netbuild-json-template-");
    template = { root: path.join(dir, "root"), served: path.join(dir, "served") };
    const root = template.root;
    for (const [name, text] of Object.entries({
      "classes/demo.yaml": prebuilt("demo", "bzImage", "initrd"),
      "classes/other.yaml": prebuilt("other", "kernel", "initrd"),
      "classes/other/kernel": "the other class's kernel\n",
      "classes/other/initrd": "the other class's initrd\n",
      "hosts/demo-fresh.yaml": 'class: demo\nmac: "52:54:00:12:34:56"\nprovision: { disks: true, id: r1 }\n',
      "hosts/demo-kept.yaml": 'class: demo\nmac: "52:54:00:12:34:57"\n',
      "hosts/o1.yaml": 'class: other\nmac: "52:54:00:00:00:21"\n',
    })) {
      mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
      writeFileSync(path.join(root, name), text);
    }
    addDemoFiles(root);
    writeSite(root, { local: template.served });
    templateBuild = await run(root, "build", "--json");
    expect(templateBuild.code, templateBuild.stderr).toBe(0);
    templateDeploy = await run(root, "deploy", "--yes", "--json");
    expect(templateDeploy.code, templateDeploy.stderr).toBe(0);
    rmSync(path.join(root, ".netbuild/cache"), { recursive: true, force: true });
    startProcessRuns();
  });
  afterAll(async () => {
    await Promise.all(Object.values(runs));
    await sshd?.stop();
    notSsh?.close();
    cleanupTempDirs();
  });

  it("(the watch on this process's own console and streams sees what a library would print there)", () => {
    console.log("Global end listener: end event raised");
    process.stdout.write("stray\n");
    expect(leaked).toEqual(["console.log: Global end listener: end event raised", "process.stdout: stray\n"]);
    leaked.length = 0;
  });

  it("(the check itself refuses a document with anything after it, two documents, or ok not matching the exit code)", () => {
    const doc = `${JSON.stringify({ ok: true }, null, 2)}\n`;
    expect(() => oneDocument({ code: 0, stdout: `${doc}Global end listener: end event raised\n`, stderr: "" }, "noise")).toThrow();
    expect(() => oneDocument({ code: 0, stdout: `${doc}${doc}`, stderr: "" }, "two")).toThrow();
    expect(() => oneDocument({ code: 1, stdout: doc, stderr: "" }, "exit 1, ok: true")).toThrow();
    expect(() => oneDocument({ code: 0, stdout: doc, stderr: "Global close listener: close event raised\n" }, "noise on stderr")).toThrow();
    expect(oneDocument({ code: 0, stdout: doc, stderr: "" }, "one")).toEqual({ ok: true });
  });

  describe("before any command runs (commander's usage errors)", () => {
    it("an unknown command and an option the program does not have: USAGE, exit 2; `schema --json` is JSON anyway", async () => {
      const { root } = checkout();
      expectError(await run(root, "bogus", "--json"), 2, "USAGE", "bogus --json");
      expectError(await run(root, "--json"), 2, "USAGE", "--json alone");
      expect(expectOk(await run(root, "--help", "--json"), "--help --json")["help"]).toMatch(/^Usage: netbuild \[options\] \[command\]\n/);
      expect(expectOk(await run(root, "deploy", "--help", "--json"), "deploy --help --json")["help"]).toMatch(/^Usage: netbuild deploy \[options\]\n/);
      expect(expectOk(await run(root, "--version", "--json"), "--version --json")["version"]).toMatch(/^\d+\.\d+\.\d+/);
      const schema = await run(root, "schema", "--json");
      expect(schema.code, schema.stderr).toBe(0);
      expect(Object.keys(JSON.parse(schema.stdout) as object).length).toBeGreaterThan(0);
    });
  });

  describe("generate", () => {
    it("succeeds; a bad inventory is INVENTORY_INVALID (exit 2); an unknown option is USAGE (exit 2)", async () => {
      const { root } = checkout();
      const ok = expectOk(await run(root, "generate", "--json"), "generate");
      expect(ok["written"]).toBeInstanceOf(Array);
      const bad = expectError(await run(inventory(BAD), "generate", "--json"), 2, "INVENTORY_INVALID", "generate, bad inventory");
      expect((bad["issues"] as unknown[]).length).toBeGreaterThan(0);
      expectError(await run(root, "generate", "--json", "--bogus"), 2, "USAGE", "generate --bogus");
    });
  });

  describe("build", () => {
    it("succeeds (the shared checkout's build)", () => {
      const doc = expectOk(templateBuild, "build");
      expect((doc["built"] as { name: string }[]).map((c) => c.name).sort()).toEqual(["demo", "other"]);
    });

    it("an unknown --class, an unknown option, a bad inventory: exit 2; a Talos class not pinned: NOT_PINNED (exit 2)", async () => {
      const { root } = checkout();
      expectError(await run(root, "build", "--class", "nope", "--json"), 2, "USAGE", "build --class nope");
      expectError(await run(root, "build", "--klass", "demo", "--json"), 2, "USAGE", "build --klass");
      expectError(await run(inventory(BAD), "build", "--json"), 2, "INVENTORY_INVALID", "build, bad inventory");
      const talos = inventory({ "classes/tw.yaml": TALOS_CLASS });
      expectError(await run(talos, "build", "--json"), 2, "NOT_PINNED", "build, Talos class not pinned");
    });
  });

  describe("plan", () => {
    it("succeeds without and with --target (a local folder); an unknown --target is USAGE; a bad inventory INVENTORY_INVALID", async () => {
      const { root } = checkout({ deployed: true });
      const plain = expectOk(await run(root, "plan", "--json"), "plan");
      expect(plain["targets"]).toBeUndefined();
      const against = expectOk(await run(root, "plan", "--target", "local", "--json"), "plan --target local");
      expect(against["targets"]).toMatchObject([{ name: "local", noop: true }]);
      expectError(await run(root, "plan", "--target", "nope", "--json"), 2, "USAGE", "plan --target nope");
      expectError(await run(inventory(BAD), "plan", "--json"), 2, "INVENTORY_INVALID", "plan, bad inventory");
      expectError(await run(root, "plan", "--json", "--bogus"), 2, "USAGE", "plan --bogus");
    });

    it("against SFTP targets: succeeds; an unknown host key is HOST_KEY_UNKNOWN, a closed port SSH_FAILED (exit 1)", async () => {
      const { root, dir } = checkout();
      writeSite(root, { boot: `sftp://boot${dir}/sftp`, stranger: `sftp://stranger${dir}/sftp`, dead: `sftp://dead${dir}/sftp` });
      expect(expectOk(await run(root, "plan", "--target", "boot", "-F", sshConfig, "--json"), "plan --target boot (sftp)")["targets"]).toMatchObject([{ name: "boot", noop: false }]);
      expectError(await run(root, "plan", "--target", "stranger", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "plan --target stranger (sftp, unknown host key)");
      expectError(await run(root, "plan", "--target", "dead", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "plan --target dead (sftp, closed port)");
    });

    it("two targets, one fails (an unknown host key): TARGETS_FAILED (exit 1), still with the other's full plan, machines and files, in JSON and for people", async () => {
      const { root, dir, served } = checkout({ deployed: true });
      writeSite(root, { local: served, stranger: `sftp://stranger${dir}/sftp` });
      editHost(root);
      const alone = expectOk(await run(root, "plan", "--target", "local", "--json"), "plan --target local");
      const human = await run(root, "plan", "--target", "local");
      const planned = human.stdout.slice(human.stdout.indexOf("against local ("));
      expect(planned, human.stdout).toMatch(/^against local \(.*\): a deploy would change 1 machine\n  ~ demo-kept .*\+quiet.*\n  files: 0 uploads \(0 B\), 1 switch, 0 removals\n    switch  by-host\/demo-kept\/ipxe\n/);
      const args = ["plan", "--target", "local", "--target", "stranger", "-F", sshConfig];
      const doc = expectError(await run(root, ...args, "--json"), 1, "TARGETS_FAILED", "plan --target local --target stranger");
      expect(byName(doc["targets"])).toEqual([
        { name: "local", ok: true, result: { ...(alone["targets"] as object[])[0], seconds: expect.any(Number) } },
        { name: "stranger", ok: false, error: expect.objectContaining({ code: "HOST_KEY_UNKNOWN" }) },
      ]);
      expect((byName(doc["targets"])[0] as unknown as { result: { machines: { host: string }[] } }).result.machines.map((m) => m.host)).toEqual(["demo-kept"]);
      // For people: the same plan lines as `plan --target local` prints, under the error.
      const failed = await run(root, ...args);
      expect(failed.code).toBe(1);
      const lines = planned.trimEnd().split("\n");
      expect(failed.stderr).toContain(`  ${lines[0]!.replace(/^against local \(.*?\): /, "local: ")}\n${lines.slice(1).map((l) => `  ${l}`).join("\n")}\n`);
      expect(failed.stderr).toMatch(/stranger: FAILED: .*host key/);
    });
  });

  describe("talos schematic", () => {
    it("succeeds for a Talos class; an unknown class, a prebuilt class, a missing argument are USAGE; a bad inventory INVENTORY_INVALID", async () => {
      const root = inventory({ "classes/tw.yaml": TALOS_CLASS, "classes/demo.yaml": prebuilt("demo", "bzImage", "initrd") });
      addDemoFiles(root);
      const ok = expectOk(await run(root, "talos", "schematic", "tw", "--json"), "talos schematic tw");
      expect(ok["id"]).toBe(createHash("sha256").update(ok["yaml"] as string).digest("hex"));
      expectError(await run(root, "talos", "schematic", "nope", "--json"), 2, "USAGE", "talos schematic nope");
      expectError(await run(root, "talos", "schematic", "demo", "--json"), 2, "USAGE", "talos schematic demo (prebuilt)");
      expectError(await run(root, "talos", "schematic", "--json"), 2, "USAGE", "talos schematic (no class)");
      expectError(await run(inventory({ ...BAD, "classes/tw.yaml": TALOS_CLASS }), "talos", "schematic", "tw", "--json"), 2, "INVENTORY_INVALID", "talos schematic, bad inventory");
    });
  });

  describe("pin", () => {
    let factory: StaticServer;
    afterAll(async () => {
      await factory?.close();
    });

    it("with no Talos classes, or --class naming one that is not Talos: USAGE (exit 2); a bad inventory: INVENTORY_INVALID", async () => {
      const { root } = checkout();
      expectError(await run(root, "pin", "--json"), 2, "USAGE", "pin, no Talos classes");
      const talos = inventory({ "classes/tw.yaml": TALOS_CLASS, "classes/demo.yaml": prebuilt("demo", "bzImage", "initrd") });
      addDemoFiles(talos);
      expectError(await run(talos, "pin", "--class", "demo", "--json"), 2, "USAGE", "pin --class demo");
      expectError(await run(talos, "pin", "--class", "nope", "--json"), 2, "USAGE", "pin --class nope");
      expectError(await run(inventory(BAD), "pin", "--json"), 2, "INVENTORY_INVALID", "pin, bad inventory");
    });

    it("succeeds against a fixture factory; an unreachable factory is PIN_FAILED (exit 1)", async () => {
      const root = inventory({ "classes/tw.yaml": TALOS_CLASS });
      const id = expectOk(await run(root, "talos", "schematic", "tw", "--json"), "talos schematic")["id"] as string;
      const files = tempDir();
      const at = path.join(files, `image/${id}/v1.12.2`);
      mkdirSync(at, { recursive: true });
      for (const f of ["kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64"]) writeFileSync(path.join(at, f), `${f}\n`);
      factory = await serveFolder(files, (_p, body) => ({ status: 201, json: { id: createHash("sha256").update(body).digest("hex") } }));
      writeSite(root, undefined, `talos:\n  factory: "${factory.url}"`);
      expect(expectOk(await run(root, "pin", "--json"), "pin")["classes"]).toMatchObject([{ name: "tw", written: true }]);
      expect(expectOk(await run(root, "pin", "--class", "tw", "--json"), "pin, already pinned")["classes"]).toMatchObject([{ name: "tw", written: false }]);

      const unreachable = inventory({ "classes/tw.yaml": TALOS_CLASS });
      writeSite(unreachable, undefined, `talos:\n  factory: "http://127.0.0.1:${await freePort()}"`);
      expectError(await run(unreachable, "pin", "--json"), 1, "PIN_FAILED", "pin, factory unreachable");
    });
  });

  describe("deploy", () => {
    it("succeeds: a first deploy with --yes (the shared target), a dry run, a deploy, a deploy that changes nothing", async () => {
      const first = expectOk(templateDeploy, "deploy --yes");
      expect(first["targets"]).toMatchObject([{ name: "local", noop: false }]);
      const { root, served } = checkout({ deployed: true });
      editHost(root);
      const dry = expectOk(await run(root, "deploy", "--dry-run", "--json"), "deploy --dry-run");
      expect(dry["targets"]).toMatchObject([{ switches: ["by-host/demo-kept/ipxe"] }]);
      expectOk(await run(root, "deploy", "--json"), "deploy");
      expect(readFileSync(path.join(served, "by-host/demo-kept/ipxe"), "utf8")).toContain("quiet");
      expect(expectOk(await run(root, "deploy", "--json"), "deploy, nothing to change")["targets"]).toMatchObject([{ noop: true }]);
    });

    it("nothing built: OUT_NOT_BUILT (exit 1)", async () => {
      const { root } = checkout({ built: false });
      expectError(await run(root, "deploy", "--yes", "--json"), 1, "OUT_NOT_BUILT", "deploy, nothing built");
    });

    it("a target holding a file netbuild did not write: TARGET_CONFLICT (exit 2)", async () => {
      const { root, served } = checkout();
      mkdirSync(served);
      writeFileSync(path.join(served, "boot.ipxe"), "#!ipxe\n# hand-made\n");
      expectError(await run(root, "deploy", "--yes", "--json"), 2, "TARGET_CONFLICT", "deploy, conflict");
    });

    it("a new wipe without --yes and without a terminal: WIPE_NOT_CONFIRMED (exit 2)", async () => {
      const { root, served } = checkout();
      expectError(await run(root, "deploy", "--json"), 2, "WIPE_NOT_CONFIRMED", "deploy, wipe not confirmed");
      expect(existsSync(path.join(served, "boot.ipxe"))).toBe(false);
    });

    it("a target locked by another deploy: DEPLOY_LOCKED (exit 1)", async () => {
      const { root, served } = checkout({ deployed: true });
      lock(served);
      expectError(await run(root, "deploy", "--json"), 1, "DEPLOY_LOCKED", "deploy, locked");
    });

    it("an unknown --target, a bad --to, a site without targets, an unknown option: USAGE (exit 2); a bad inventory: INVENTORY_INVALID", async () => {
      const { root } = checkout();
      expectError(await run(root, "deploy", "--target", "nope", "--json"), 2, "USAGE", "deploy --target nope");
      expectError(await run(root, "deploy", "--to", "", "--json"), 2, "USAGE", "deploy --to ''");
      expectError(await run(root, "deploy", "--json", "--bogus"), 2, "USAGE", "deploy --bogus");
      writeSite(root, undefined);
      expectError(await run(root, "deploy", "--json"), 2, "USAGE", "deploy, no targets");
      expectError(await run(inventory(BAD), "deploy", "--json"), 2, "INVENTORY_INVALID", "deploy, bad inventory");
    });

    it("over SFTP: succeeds; an unknown host key is HOST_KEY_UNKNOWN, a closed port or not an SSH server SSH_FAILED, a refused key SSH_AUTH_FAILED, a missing parent folder DEPLOY_FAILED (exit 1)", async () => {
      const { root, dir } = checkout();
      writeSite(root, {
        boot: `sftp://boot${dir}/sftp-ok`,
        stranger: `sftp://stranger${dir}/sftp-stranger`,
        dead: `sftp://dead${dir}/sftp-dead`,
        nokey: `sftp://nokey${dir}/sftp-nokey`,
        notssh: `sftp://notssh${dir}/sftp-notssh`,
        noparent: `sftp://boot${dir}/missing/sftp`,
      });
      expect(expectOk(await run(root, "deploy", "--target", "boot", "--yes", "-F", sshConfig, "--json"), "deploy --target boot (sftp)")["targets"]).toMatchObject([{ name: "boot", noop: false }]);
      expect(existsSync(path.join(dir, "sftp-ok/boot.ipxe"))).toBe(true);
      expectError(await run(root, "deploy", "--target", "stranger", "--yes", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "deploy --target stranger (sftp, unknown host key)");
      expect(existsSync(path.join(dir, "sftp-stranger"))).toBe(false);
      expectError(await run(root, "deploy", "--target", "dead", "--yes", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "deploy --target dead (sftp, closed port)");
      expectError(await run(root, "deploy", "--target", "nokey", "--yes", "-F", sshConfig, "--json"), 1, "SSH_AUTH_FAILED", "deploy --target nokey (sftp, key refused)");
      expectError(await run(root, "deploy", "--target", "notssh", "--yes", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "deploy --target notssh (not an SSH server)");
      expectError(await run(root, "deploy", "--target", "noparent", "--yes", "-F", sshConfig, "--json"), 1, "DEPLOY_FAILED", "deploy --target noparent (sftp, the folder's parent missing)");
    });

    it("two targets, one fails (an SFTP closed port; a locked folder): DEPLOY_FAILED (exit 1) with each target's outcome", async () => {
      const { root, dir } = checkout();
      writeSite(root, { local: path.join(dir, "served"), dead: `sftp://dead${dir}/sftp` });
      const mixed = expectError(await run(root, "deploy", "--yes", "-F", sshConfig, "--json"), 1, "DEPLOY_FAILED", "deploy to local + dead");
      expect(byName(mixed["targets"])).toMatchObject([
        { name: "dead", ok: false, error: { code: "SSH_FAILED" } },
        { name: "local", ok: true, result: { name: "local", noop: false } },
      ]);
      expect(existsSync(path.join(dir, "served/boot.ipxe"))).toBe(true);

      const other = checkout({ deployed: true });
      const second = path.join(other.dir, "second");
      copyTree(template.served, second);
      lock(second);
      writeSite(other.root, { local: other.served, second });
      editHost(other.root);
      const locked = expectError(await run(other.root, "deploy", "--json"), 1, "DEPLOY_FAILED", "deploy to local + a locked folder");
      expect(byName(locked["targets"])).toMatchObject([
        { name: "local", ok: true, result: { switches: ["by-host/demo-kept/ipxe"] } },
        { name: "second", ok: false, error: { code: "DEPLOY_LOCKED" } },
      ]);
    });

    it("two targets that both refuse a new wipe: WIPE_NOT_CONFIRMED (exit 2) with each target's outcome", async () => {
      const { root, dir } = checkout();
      writeSite(root, { a: path.join(dir, "a"), b: path.join(dir, "b") });
      const doc = expectError(await run(root, "deploy", "--json"), 2, "WIPE_NOT_CONFIRMED", "deploy to two new folders without --yes");
      expect(byName(doc["targets"])).toMatchObject([
        { name: "a", ok: false, error: { code: "WIPE_NOT_CONFIRMED" } },
        { name: "b", ok: false, error: { code: "WIPE_NOT_CONFIRMED" } },
      ]);
    });
  });

  describe("rollback", () => {
    it("nothing deployed, one generation, an unknown --generation: NOTHING_TO_ROLL_BACK (exit 1); locked: DEPLOY_LOCKED; unknown option and --target: USAGE", async () => {
      const empty = checkout();
      mkdirSync(empty.served);
      expectError(await run(empty.root, "rollback", "--json"), 1, "NOTHING_TO_ROLL_BACK", "rollback, nothing deployed");
      const { root, served } = checkout({ deployed: true });
      expectError(await run(root, "rollback", "--json"), 1, "NOTHING_TO_ROLL_BACK", "rollback, one generation");
      expectError(await run(root, "rollback", "--generation", "ffffffffffff", "--json"), 1, "NOTHING_TO_ROLL_BACK", "rollback --generation unknown");
      expectError(await run(root, "rollback", "--json", "--bogus"), 2, "USAGE", "rollback --bogus");
      expectError(await run(root, "rollback", "--target", "nope", "--json"), 2, "USAGE", "rollback --target nope");
      lock(served);
      expectError(await run(root, "rollback", "--json"), 1, "DEPLOY_LOCKED", "rollback, locked");
    });

    it("succeeds with a second generation deployed, --dry-run first", async () => {
      const { root } = checkout({ deployed: true });
      rmSync(path.join(root, "classes/other/initrd"));
      writeFileSync(path.join(root, "classes/other/initrd"), "the other class's initrd, v2\n");
      expectOk(await run(root, "build", "--class", "other", "--json"), "build --class other");
      expectOk(await run(root, "deploy", "--json"), "deploy, second generation");
      const dry = expectOk(await run(root, "rollback", "--class", "other", "--dry-run", "--json"), "rollback --dry-run");
      expect(dry).toMatchObject({ dryRun: true, targets: [{ changes: [{ name: "other", direction: "back" }] }] });
      expectOk(await run(root, "rollback", "--class", "other", "--json"), "rollback");
    });

    it("over SFTP: one generation is NOTHING_TO_ROLL_BACK; an unknown host key HOST_KEY_UNKNOWN; a closed port SSH_FAILED", async () => {
      const { root, dir } = checkout({ deployed: true });
      writeSite(root, { boot: `sftp://boot${dir}/served`, stranger: `sftp://stranger${dir}/served`, dead: `sftp://dead${dir}/served` });
      expectError(await run(root, "rollback", "--target", "boot", "--dry-run", "-F", sshConfig, "--json"), 1, "NOTHING_TO_ROLL_BACK", "rollback --target boot (sftp)");
      expectError(await run(root, "rollback", "--target", "stranger", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "rollback --target stranger");
      expectError(await run(root, "rollback", "--target", "dead", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "rollback --target dead");
    });
  });

  describe("gc", () => {
    it("succeeds on a deployed target and on an empty one; --keep 1 and an unknown --target are USAGE; locked: DEPLOY_LOCKED", async () => {
      const { root, served } = checkout({ deployed: true });
      expect(expectOk(await run(root, "gc", "--json"), "gc")["targets"]).toMatchObject([{ name: "local", removed: [] }]);
      expectOk(await run(root, "gc", "--dry-run", "--json"), "gc --dry-run");
      expectError(await run(root, "gc", "--keep", "1", "--json"), 2, "USAGE", "gc --keep 1");
      expectError(await run(root, "gc", "--target", "nope", "--json"), 2, "USAGE", "gc --target nope");
      lock(served);
      expectError(await run(root, "gc", "--json"), 1, "DEPLOY_LOCKED", "gc, locked");
      const empty = checkout();
      expectOk(await run(empty.root, "gc", "--json"), "gc, nothing deployed");
    });

    it("over SFTP: succeeds; an unknown host key is HOST_KEY_UNKNOWN, a closed port SSH_FAILED", async () => {
      const { root, dir } = checkout({ deployed: true });
      writeSite(root, { boot: `sftp://boot${dir}/served`, stranger: `sftp://stranger${dir}/served`, dead: `sftp://dead${dir}/served` });
      expectOk(await run(root, "gc", "--target", "boot", "-F", sshConfig, "--json"), "gc --target boot (sftp)");
      expectError(await run(root, "gc", "--target", "stranger", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "gc --target stranger");
      expectError(await run(root, "gc", "--target", "dead", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "gc --target dead");
    });
  });

  describe("status", () => {
    it("succeeds on a deployed, a locked and an empty target; an unknown --target is USAGE", async () => {
      const { root, served } = checkout({ deployed: true });
      const plain = expectOk(await run(root, "status", "--json"), "status");
      expect(plain["targets"]).toMatchObject([{ name: "local", deployed: true }]);
      expect((plain["targets"] as { locked?: string }[])[0]!.locked).toBeUndefined();
      lock(served);
      const locked = expectOk(await run(root, "status", "--json"), "status, locked");
      expect((locked["targets"] as { locked: string }[])[0]!.locked).toContain("laptop.elsewhere");
      expectError(await run(root, "status", "--target", "nope", "--json"), 2, "USAGE", "status --target nope");
      const empty = checkout();
      expect(expectOk(await run(empty.root, "status", "--json"), "status, nothing deployed")["targets"]).toMatchObject([{ deployed: false }]);
    });

    it("over SFTP: succeeds; an unknown host key, a closed port, and one of two targets failing (TARGETS_FAILED with each outcome)", async () => {
      const { root, dir } = checkout({ deployed: true });
      writeSite(root, { local: path.join(dir, "served"), boot: `sftp://boot${dir}/served`, stranger: `sftp://stranger${dir}/served`, dead: `sftp://dead${dir}/served` });
      expect(expectOk(await run(root, "status", "--target", "boot", "-F", sshConfig, "--json"), "status --target boot (sftp)")["targets"]).toMatchObject([{ name: "boot", deployed: true }]);
      expectError(await run(root, "status", "--target", "stranger", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "status --target stranger");
      expectError(await run(root, "status", "--target", "dead", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "status --target dead");
      const two = expectError(await run(root, "status", "--target", "local", "--target", "dead", "-F", sshConfig, "--json"), 1, "TARGETS_FAILED", "status --target local --target dead");
      expect(byName(two["targets"])).toMatchObject([
        { name: "dead", ok: false, error: { code: "SSH_FAILED" } },
        { name: "local", ok: true, result: { deployed: true } },
      ]);
    });
  });

  describe("verify", () => {
    let server: StaticServer | undefined;
    afterAll(async () => {
      await server?.close();
    });

    it("succeeds on the target as deployed, over the target and over HTTP; a changed file: exit 1 with ok: false, over both", async () => {
      const { root, served } = checkout({ deployed: true });
      expectOk(await run(root, "verify", "--json"), "verify");
      server = await serveFolder(served);
      expectOk(await run(root, "verify", "--http", server.url, "--json"), "verify --http");
      const record = JSON.parse(readFileSync(path.join(served, ".netbuild/deployed.json"), "utf8")) as { classes: Record<string, { generations: { initrd: string }[] }> };
      const initrd = record.classes["other"]!.generations[0]!.initrd;
      rmSync(path.join(served, initrd));
      writeFileSync(path.join(served, initrd), "tampered\n");
      const drift = await run(root, "verify", "--json");
      expect(drift.code, drift.stderr).toBe(1);
      expect(oneDocument(drift, "verify, a changed file")).toMatchObject({ ok: false, targets: [{ drift: { changed: [initrd] } }] });
      const http = await run(root, "verify", "--http", server.url, "--json");
      expect(http.code, http.stderr).toBe(1);
      expect(oneDocument(http, "verify --http, a changed file")).toMatchObject({ ok: false, http: { machines: expect.arrayContaining([expect.objectContaining({ host: "o1", ok: false })]) } });
    });

    it("nothing deployed: VERIFY_FAILED (exit 1); nothing built: OUT_NOT_BUILT; --http not a URL, unknown --target: USAGE", async () => {
      const empty = checkout();
      mkdirSync(empty.served);
      expectError(await run(empty.root, "verify", "--json"), 1, "VERIFY_FAILED", "verify, nothing deployed");
      const unbuilt = checkout({ built: false, deployed: true });
      expectError(await run(unbuilt.root, "verify", "--http", "http://127.0.0.1:9/", "--json"), 1, "OUT_NOT_BUILT", "verify --http, nothing built");
      expectError(await run(empty.root, "verify", "--http", "ftp://x/", "--json"), 2, "USAGE", "verify --http ftp://");
      expectError(await run(empty.root, "verify", "--target", "nope", "--json"), 2, "USAGE", "verify --target nope");
    });

    it("over SFTP: a target not deployed to is VERIFY_FAILED; an unknown host key is HOST_KEY_UNKNOWN, a closed port SSH_FAILED", async () => {
      const { root, dir } = checkout({ deployed: true });
      writeSite(root, { boot: `sftp://boot${dir}`, stranger: `sftp://stranger${dir}/served`, dead: `sftp://dead${dir}/served` });
      expectError(await run(root, "verify", "--target", "boot", "-F", sshConfig, "--json"), 1, "VERIFY_FAILED", "verify --target boot (sftp, nothing deployed there)");
      expectError(await run(root, "verify", "--target", "stranger", "-F", sshConfig, "--json"), 1, "HOST_KEY_UNKNOWN", "verify --target stranger");
      expectError(await run(root, "verify", "--target", "dead", "-F", sshConfig, "--json"), 1, "SSH_FAILED", "verify --target dead");
    });
  });

  // As users run it: a child process, whose real stdout is where a library's console.log would go.
  // Started in the first beforeAll (startProcessRuns), checked here.
  describe("as a process (node bin/netbuild.js)", () => {
    it("deploy over SFTP: succeeds; an unknown host key is HOST_KEY_UNKNOWN, a closed port SSH_FAILED; nothing from the SSH library on stdout", async () => {
      expect(expectOk(await runs["deploy boot"]!, "deploy --target boot (process)")["targets"]).toMatchObject([{ name: "boot", noop: false }]);
      expect(existsSync(path.join(dirs["sftp"]!, "sftp-ok/boot.ipxe"))).toBe(true);
      expectError(await runs["deploy stranger"]!, 1, "HOST_KEY_UNKNOWN", "deploy --target stranger (process)");
      expectError(await runs["deploy dead"]!, 1, "SSH_FAILED", "deploy --target dead (process)");
    });

    it("deploy to two targets, one an SFTP closed port: DEPLOY_FAILED (exit 1) with each target's outcome", async () => {
      expect(byName(expectError(await runs["deploy two"]!, 1, "DEPLOY_FAILED", "deploy to local + dead (process)")["targets"])).toMatchObject([
        { name: "dead", ok: false, error: { code: "SSH_FAILED" } },
        { name: "local", ok: true, result: { switches: ["by-host/demo-kept/ipxe"] } },
      ]);
    });

    it("a wipe not confirmed (exit 2), a verify mismatch (exit 1, ok: false)", async () => {
      expectError(await runs["deploy wipe"]!, 2, "WIPE_NOT_CONFIRMED", "deploy, wipe not confirmed (process)");
      const drift = await runs["verify drift"]!;
      expect(drift.code, drift.stderr).toBe(1);
      expect(oneDocument(drift, "verify, a file not netbuild's (process)")).toMatchObject({ ok: false, targets: [{ drift: { extra: ["by-host/stray/ipxe"] } }] });
    });
  });

  // Last: it kills every SSH session of the sshd (the child processes above are done by then).
  it("a connection lost while deploy --wait waits for a lock (where an SSH library's end/close listeners fire): one error document, exit 1", async () => {
    await Promise.all(Object.values(runs));
    const { root, served, dir } = checkout({ deployed: true });
    writeSite(root, { boot: `sftp://boot${served}` });
    editHost(root);
    lock(served);
    const sftpLog = path.join(sshd.dir, "sftp.log");
    const from = existsSync(sftpLog) ? readFileSync(sftpLog).length : 0;
    const waiting = run(root, "deploy", "--wait", "-F", sshConfig, "--json");
    // The deploy is polling the lock: sftp-server has logged two of its attempts to create it (however loaded the machine).
    const attempts = () => (existsSync(sftpLog) ? readFileSync(sftpLog).subarray(from).toString("utf8").split(`${served}/.netbuild/lock" flags`).length - 1 : 0);
    for (let i = 0; i < 600 && attempts() < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(attempts()).toBeGreaterThanOrEqual(2);
    sshd.killSessions();
    const r = await waiting;
    const doc = expectError(r, 1, "DEPLOY_FAILED", "deploy --wait, connection lost");
    expect(doc["message"]).toMatch(/was lost|ended/);
    expect(existsSync(path.join(dir, "served/.netbuild/lock"))).toBe(true);
  });
});
