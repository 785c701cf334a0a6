// A deploy interrupted by a signal (Ctrl-C, SIGTERM) exits 130 and says, per target, what it serves
// now and what became of its lock; with --json, as one error document on stdout (code INTERRUPTED).
// Real child processes: `node bin/netbuild.js deploy`, over SFTP to a real sshd (killed while it
// uploads), and on a pseudo-terminal (script(1)) to a local folder (killed while it asks to confirm
// a wipe: its lock taken, nothing changed yet).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, REPO, tempDir } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const noSsh = missing({ commands: ["nix-build", "ssh", "ssh-keygen"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });
const noScript = missing({ commands: ["nix-build", "script"] });

const CLASS = "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n";
const LEFT = "this deploy's lock (.netbuild/lock) is left behind, not released: the next `netbuild deploy` (or rollback, gc) from this machine removes it, as its process is gone; from another machine, run it with --break-lock";

function site(target: string): string {
  return inventory({
    "netbuild.yaml": `targets:\n  boot: ${target}\n`,
    "classes/demo.yaml": CLASS,
    "classes/demo/kernel": `kernel ${Math.random()}\n`,
    "classes/demo/initrd": `initrd ${Math.random()}\n`,
    "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
    "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1 }\n',
  });
}

async function ok(root: string, ...args: string[]) {
  const r = await cli(args, root);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** stdout is exactly one JSON document (an object, pretty-printed, one final newline). */
function oneDocument(stdout: string, stderr: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    expect.fail(`stdout is not exactly one JSON document:\n---- stdout ----\n${stdout}\n---- stderr ----\n${stderr}`);
  }
  expect(stdout, "nothing but the document on stdout").toBe(`${JSON.stringify(doc, null, 2)}\n`);
  return doc as Record<string, unknown>;
}

function lockPid(served: string): number {
  return (JSON.parse(readFileSync(path.join(served, ".netbuild/lock"), "utf8")) as { pid: number }).pid;
}

describe("a deploy interrupted by a signal", () => {
  afterAll(cleanupTempDirs);

  describe.skipIf(noSsh)("over SFTP, while it uploads", () => {
    let sshd: Sshd;
    beforeAll(async () => {
      sshd = await startSshd();
    });
    afterAll(async () => {
      await sshd?.stop();
    });

    it("SIGTERM with --json: exit 130, one INTERRUPTED document with the target's phase, what it serves and its lock left", async () => {
      const served = path.join(sshd.dir, `srv-${Math.random().toString(36).slice(2)}`);
      const root = site(`sftp://boot${served}`);
      await ok(root, "build");
      await ok(root, "deploy", "-F", sshd.sshConfig, "--yes");
      const classScript = readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8");
      writeFileSync(path.join(root, "classes/demo/initrd"), Buffer.alloc(200_000_000, `initrd v2 ${Math.random()} `));
      await ok(root, "build");
      const built = JSON.parse(readFileSync(path.join(root, "out/.netbuild/manifest.json"), "utf8")) as { classes: { demo: { initrd: { path: string } } } };
      const initrdTmp = path.join(served, path.dirname(built.classes.demo.initrd.path), `.${path.basename(built.classes.demo.initrd.path)}.netbuild-tmp`);

      const child = spawn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "deploy", "-F", sshd.sshConfig, "--yes", "--json"], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      for (let i = 0; i < 600 && !(existsSync(initrdTmp) && statSync(initrdTmp).size > 20_000_000); i++) await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGTERM");
      expect(await exited, stderr).toBe(130);

      const serves = "it still serves the previous tree, unchanged (new files were being uploaded beside it)";
      const doc = oneDocument(stdout, stderr);
      expect(doc).toMatchObject({
        ok: false,
        code: "INTERRUPTED",
        message: "deploy interrupted (SIGTERM)",
        hint: expect.stringContaining("Run `netbuild deploy` again to finish the job"),
        targets: [{ name: "boot", ok: false, phase: "uploading", serves, lock: "left", error: { code: "INTERRUPTED", message: `interrupted (SIGTERM): ${serves}; ${LEFT}` } }],
      });
      expect(stderr).toContain(`netbuild deploy interrupted (SIGTERM):\n  boot: ${serves}\n    ${LEFT}\n`);
      // What it says is so: the previous tree is served, and the lock of the killed process is there.
      expect(readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8")).toBe(classScript);
      expect(lockPid(served)).toBe(child.pid);
    });
  });

  describe.skipIf(noScript)("on a terminal, while it asks to confirm a wipe (its lock taken, nothing changed yet)", () => {
    const QUESTION = 'Type "yes" to deploy:';
    const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

    it("SIGTERM: exit 130, says nothing was changed and that its lock is left (--json: one document); the next deploy from here removes the lock", async () => {
      const served = path.join(tempDir("netbuild-interrupt-"), "served");
      const root = site(served);
      await ok(root, "build");
      const out = path.join(tempDir("netbuild-interrupt-out-"), "stdout.json");
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", TERM: "dumb", SHELL: "/bin/sh" };
      delete env["CI"];
      // stdin and stderr on the pseudo-terminal (so it asks), stdout into a file (the JSON document).
      const command = `${[process.execPath, path.join(REPO, "bin/netbuild.js"), "deploy", "--json"].map(shq).join(" ")} > ${shq(out)}`;
      const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
      let screen = "";
      let asked: () => void = () => undefined;
      const question = new Promise<void>((resolve) => (asked = resolve));
      const onData = (d: Buffer) => {
        screen += d.toString("utf8");
        if (screen.includes(QUESTION)) asked();
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await Promise.race([question, exited]);
      expect(screen).toContain(QUESTION);
      // The deploy that asks holds the lock: its pid is in it.
      const pid = lockPid(served);
      process.kill(pid, "SIGTERM");
      const code = await exited;
      clearTimeout(timer);
      const text = screen.replace(/\r/g, "");
      expect(code, text).toBe(130);

      const before = "nothing was changed there: it serves what it served before";
      expect(text).toContain(`netbuild deploy interrupted (SIGTERM):\n  boot: ${before}\n    ${LEFT}\n`);
      expect(text).not.toContain("Run `netbuild deploy` again to finish the job");
      const doc = oneDocument(readFileSync(out, "utf8"), text);
      expect(doc).toMatchObject({ ok: false, code: "INTERRUPTED", message: "deploy interrupted (SIGTERM)", targets: [{ name: "boot", ok: false, phase: "before", serves: before, lock: "left" }] });
      // So it is: nothing served yet, and the lock of the killed process left.
      expect(existsSync(path.join(served, "boot.ipxe"))).toBe(false);
      expect(lockPid(served)).toBe(pid);

      const next = await ok(root, "deploy", "--yes");
      expect(next.stderr).toContain(`breaking the stale lock of \`netbuild deploy\``);
      expect(next.stderr).toContain(`(pid ${pid})`);
      expect(existsSync(path.join(served, ".netbuild/lock"))).toBe(false);
      expect(existsSync(path.join(served, "boot.ipxe"))).toBe(true);
    });
  });

  describe.skipIf(noScript)("in a command that does not say more itself", () => {
    it("gc --wait --json waiting for another deploy's lock, then SIGTERM: exit 130 and one INTERRUPTED document naming the command", async () => {
      const served = path.join(tempDir(), "served");
      const root = site(served);
      await ok(root, "build");
      await ok(root, "deploy", "--yes");
      const lock = path.join(served, ".netbuild/lock");
      writeFileSync(lock, JSON.stringify({ owner: "ops", host: "laptop.elsewhere", pid: 4242, command: "deploy", started: "2026-11-23T10:00:00.000Z", token: "x" }));
      const child = spawn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "gc", "--wait", "--json"], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      const waiting = new Promise<void>((resolve) =>
        child.stderr.on("data", (b: Buffer) => {
          stderr += b.toString();
          if (stderr.includes("waiting for the lock held by")) resolve();
        }),
      );
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await Promise.race([waiting, exited]);
      child.kill("SIGTERM");
      const code = await exited;
      clearTimeout(timer);
      expect(code, stderr).toBe(130);
      expect(oneDocument(stdout, stderr)).toMatchObject({ ok: false, code: "INTERRUPTED", message: "netbuild gc interrupted (SIGTERM)" });
      expect(stderr).toContain("netbuild gc interrupted (SIGTERM)");
      // The other deploy's lock is left as it was.
      expect(readFileSync(lock, "utf8")).toContain("laptop.elsewhere");
    });
  });
});
