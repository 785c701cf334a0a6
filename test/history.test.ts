// What a target records about who changed it, and the plan against it: `status` shows each class's
// generations with when, by whom and from which commit they were deployed, the last change, and a
// rollback's pin; `rollback --dry-run` changes nothing; a forward `--generation` is not called a
// rollback; `plan --target` diffs the inventory with what the target serves, per machine, and
// writes nothing; a deploy to two targets of which one fails says what happened on each; gc keeps
// the generation a rollback serves; verify --http checks served files by hash, not size alone.
// Local folder targets (the SFTP side of the same code is in deploy.test.ts) and a real git.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, treeChecksum, type CliRun } from "./support/inventory.ts";
import { serveFolder } from "./support/http.ts";
import { missing } from "./support/tools.ts";
import { localTargetFs } from "../src/adapters/target-fs.ts";
import { readDeployed } from "../src/adapters/target-tree.ts";

// (Debian's iPXE binaries: the trees here hold them, and their records are of the format that says so.)
const noGit = missing({ commands: ["git"], files: ["/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/snponly.efi"] });

const CLASS = "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n";

function site(targets = "targets:\n  local: served\n"): string {
  return inventory({
    "netbuild.yaml": targets,
    "classes/demo.yaml": CLASS,
    "classes/demo/kernel": "kernel one\n",
    "classes/demo/initrd": "initrd one\n",
    "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
    "hosts/bet.yaml": 'class: demo\nmac: "52:54:00:00:00:02"\nprovision: { disks: true, id: r1 }\n',
  });
}

const git = (root: string, ...args: string[]) => execFileSync("git", ["-C", root, "-c", "user.email=t@example.org", "-c", "user.name=t", ...args], { encoding: "utf8" }).trim();

async function ok(r: Promise<CliRun>): Promise<CliRun> {
  const done = await r;
  expect(done.code, done.stderr).toBe(0);
  return done;
}

interface Status {
  targets: {
    name: string;
    last?: { command: string; at: string; by: string; commit?: string };
    classes: { name: string; current: string; pinned?: { from: string[] }; generations: { id: string; current: boolean; deployed?: { at: string; by: string; commit?: string } }[] }[];
  }[];
}

const status = async (root: string) => JSON.parse((await ok(cli(["status", "--json"], root))).stdout) as Status;
const record = (served: string) => readFileSync(path.join(served, ".netbuild/deployed.json"), "utf8");

afterAll(() => cleanupTempDirs());

describe.skipIf(noGit)("status and history", () => {
  it("records who deployed each generation from which commit, shows a rollback's pin, and labels a forward switch as one", async () => {
    const root = site();
    const served = path.join(root, "served");
    writeFileSync(path.join(root, ".gitignore"), "/out/\n/.netbuild/\n/served/\n");
    git(root, "init", "-q");
    git(root, "add", "-A");
    git(root, "commit", "-qm", "first");
    const head = git(root, "rev-parse", "HEAD").slice(0, 12);
    const me = `${os.userInfo().username}@${os.hostname().split(".")[0]}`;

    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    let s = await status(root);
    const first = s.targets[0]!.classes[0]!.generations[0]!;
    expect(first.deployed).toEqual({ at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), by: me, commit: head });
    expect(s.targets[0]!.last).toEqual({ command: "deploy", ...first.deployed });

    // An uncommitted edit is deployed as such; the first generation keeps its own record.
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd two\n");
    await ok(cli(["build"], root));
    await ok(cli(["deploy"], root));
    s = await status(root);
    const [second, again] = s.targets[0]!.classes[0]!.generations;
    expect(second!.current).toBe(true);
    expect(second!.deployed!.commit).toBe(`${head}-dirty`);
    expect(again).toEqual({ ...first, current: false });

    // A deploy that changes nothing records nothing.
    const before = record(served);
    await ok(cli(["deploy"], root));
    expect(record(served)).toBe(before);

    // rollback --dry-run: what would switch, and nothing switched.
    const sum = treeChecksum(served, []);
    const dry = await ok(cli(["rollback", "--dry-run"], root));
    expect(dry.stdout).toBe(`local: class demo would roll back: ${second!.id} → ${first.id}\n`);
    const dryJson = JSON.parse((await ok(cli(["rollback", "--dry-run", "--json"], root))).stdout) as { dryRun: boolean; targets: { changes: unknown[] }[] };
    expect(dryJson.dryRun).toBe(true);
    expect(dryJson.targets[0]!.changes).toEqual([{ name: "demo", from: second!.id, to: first.id, direction: "back" }]);
    expect(treeChecksum(served, [])).toBe(sum);

    const back = await ok(cli(["rollback"], root));
    expect(back.stdout).toBe(`local: class demo rolled back: ${second!.id} → ${first.id}\n`);
    expect(back.stderr).not.toContain("rolled back"); // said once, on stdout
    s = await status(root);
    expect(s.targets[0]!.last).toMatchObject({ command: "rollback", by: me });
    expect(s.targets[0]!.classes[0]!.pinned).toEqual({ from: [second!.id] });
    const human = (await ok(cli(["status"], root))).stdout;
    expect(human).toContain(`last changed by \`netbuild rollback\``);
    expect(human).toMatch(new RegExp(`\\* ${first.id}  \\w{32}  deployed \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC by ${me.replace(/[.?]/g, "\\$&")} from commit ${head}\\n`));
    expect(human).toContain(`pinned by a rollback: a deploy of a build it was rolled back from (${second!.id}) does not switch to it again`);

    // Forward again, explicitly: a switch forward, not a rollback; the pin is gone.
    const fwdDry = await ok(cli(["rollback", "--generation", second!.id, "--dry-run"], root));
    expect(fwdDry.stdout).toBe(`local: class demo would switch forward: ${first.id} → ${second!.id}\n`);
    const fwd = await ok(cli(["rollback", "--generation", second!.id, "--json"], root));
    expect((JSON.parse(fwd.stdout) as { targets: { changes: { direction: string }[] }[] }).targets[0]!.changes[0]!.direction).toBe("forward");
    s = await status(root);
    expect(s.targets[0]!.classes[0]!.current).toBe(second!.id);
    expect(s.targets[0]!.classes[0]!.pinned).toBeUndefined();
  });

  it("counts a new host file not yet committed as -dirty, and reads git without writing to it (no index refresh, nothing for a dry run)", async () => {
    const root = site();
    writeFileSync(path.join(root, ".gitignore"), "/out/\n/.netbuild/\n/served/\n");
    git(root, "init", "-q");
    git(root, "add", "-A");
    git(root, "commit", "-qm", "first");
    const head = git(root, "rev-parse", "HEAD").slice(0, 12);
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    expect((await status(root)).targets[0]!.last!.commit).toBe(head);
    writeFileSync(path.join(root, "hosts/gimel.yaml"), 'class: demo\nmac: "52:54:00:00:00:03"\n');
    const index = path.join(root, ".git/index");
    const before = statSync(index).mtimeMs;
    await ok(cli(["plan", "--target", "local"], root));
    await ok(cli(["deploy", "--dry-run", "--yes"], root));
    expect(statSync(index).mtimeMs).toBe(before);
    await ok(cli(["deploy", "--yes"], root));
    expect(statSync(index).mtimeMs).toBe(before);
    expect((await status(root)).targets[0]!.last!.commit).toBe(`${head}-dirty`);
  });

  it("reads a format 1 record of netbuild 0.1 and writes the current format; refuses a format it does not know, changing nothing", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    const rec = JSON.parse(record(served)) as { format: number; last?: unknown; classes: Record<string, { generations: { deployed?: unknown }[] }> };
    // Format 2, or 3 for a record that names the iPXE binaries (this tree has Debian's).
    expect(rec.format).toBe(3);
    // As netbuild 0.1 wrote it: format 1, no stamps.
    rec.format = 1;
    delete rec.last;
    for (const c of Object.values(rec.classes)) for (const g of c.generations) delete g.deployed;
    writeFileSync(path.join(served, ".netbuild/deployed.json"), JSON.stringify(rec));
    expect((await status(root)).targets[0]!.classes[0]!.generations[0]!.deployed).toBeUndefined();
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
    await ok(cli(["deploy"], root));
    expect((JSON.parse(record(served)) as { format: number }).format).toBe(3);
    const future = record(served).replace('"format": 3', '"format": 4');
    writeFileSync(path.join(served, ".netbuild/deployed.json"), future);
    const r = await cli(["deploy"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("it has format 4, which this netbuild does not know");
    expect(r.stderr).toContain("a newer netbuild wrote it");
    expect(record(served)).toBe(future);
  });

  it("outside git, records no commit and says so", async () => {
    const root = site();
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    const s = await status(root);
    expect(s.targets[0]!.classes[0]!.generations[0]!.deployed!.commit).toBeUndefined();
    expect((await ok(cli(["status"], root))).stdout).toContain(", not from a git commit");
  });

  it("refuses a record whose deployer or time is not what netbuild writes (an impossible date too), without echoing it", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    const rec = JSON.parse(record(served)) as { last: { by: string } };
    rec.last.by = "root@box\u001b[2Jevil";
    writeFileSync(path.join(served, ".netbuild/deployed.json"), JSON.stringify(rec));
    const r = await cli(["status"], root);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("last.by");
    expect(r.stderr).not.toContain("\u001b[2J");
    const dated = JSON.parse(record(served)) as { last: { by: string; at: string } };
    dated.last = { ...rec.last, by: "root@box", at: "2026-13-45T99:99:99Z" };
    writeFileSync(path.join(served, ".netbuild/deployed.json"), JSON.stringify(dated));
    const r2 = await cli(["status"], root);
    expect(r2.code, r2.stderr).toBe(2);
    expect(r2.stderr).toContain("last.at: expected a real UTC time");
  });
});

describe("plan against a target", () => {
  it("lists per machine what a deploy would change there, and writes nothing", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    // Before any deploy: every machine is new, and bet's wipe would be new too.
    const fresh = await ok(cli(["plan", "--target", "local"], root));
    expect(fresh.stdout).toContain("against local (");
    expect(fresh.stdout).toContain("a deploy would change 2 machines");
    expect(fresh.stdout).toContain("\n  + aleph  new, class demo, MAC +52:54:00:00:00:01\n");
    expect(fresh.stdout).toContain("\n  + bet  new, class demo, MAC +52:54:00:00:00:02, !!! WIPE ARMED, id r1 (formats its disks on the next boot)\n");
    expect(fresh.stdout).toMatch(/a deploy would serve a disk WIPE to bet, which local did not wipe before/);
    await ok(cli(["deploy", "--yes"], root));

    // The inventory changes: bet's wipe dropped, aleph moved to a new MAC and given a parameter, gimel added.
    writeFileSync(path.join(root, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\n');
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:11"\nkernelParams: [quiet]\n');
    writeFileSync(path.join(root, "hosts/gimel.yaml"), 'class: demo\nmac: "52:54:00:00:00:03"\n');
    const sum = treeChecksum(served, []);
    const outSum = treeChecksum(path.join(root, "out"), []);
    const r = await ok(cli(["plan", "--target", "local"], root));
    const lines = r.stdout.split("\n");
    const at = lines.findIndex((l) => l.startsWith("against local"));
    // Machines first, then the files that make it so.
    expect(lines.slice(at + 1, at + 4)).toEqual(["  ~ aleph  +quiet, MAC +52:54:00:00:00:11, MAC -52:54:00:00:00:01", "  ~ bet  wipe disarmed", "  + gimel  new, class demo, MAC +52:54:00:00:00:03"]);
    expect(lines[at + 4]).toMatch(/^ {2}files: 0 uploads \(0 B\), \d+ switches, 1 removal$/);
    expect(r.stdout).toContain("    remove  by-mac/52-54-00-00-00-01\n");
    expect(r.stdout).not.toContain("WIPE on next boot after a deploy");
    const json = JSON.parse((await ok(cli(["plan", "--target", "local", "--json"], root))).stdout) as { ok: boolean; targets: { name: string; machines: { host: string; wipe?: string }[]; newWipes: string[] }[] };
    expect(json.ok).toBe(true);
    expect(json.targets[0]!.machines.map((m) => [m.host, m.wipe])).toEqual([["aleph", undefined], ["bet", "disarmed"], ["gimel", undefined]]);
    expect(json.targets[0]!.newWipes).toEqual([]);
    // Nothing written: not the target, not out/ (whose scripts deploy would refresh), no lock.
    expect(treeChecksum(served, [])).toBe(sum);
    expect(treeChecksum(path.join(root, "out"), [])).toBe(outSum);
  });

  it("escapes what a served script says before it reaches the terminal (a conceal escape cannot hide the wipe line)", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    const file = path.join(served, "by-host/aleph/ipxe");
    writeFileSync(file, readFileSync(file, "utf8").replace(/^set cmdline (.*)$/m, "set cmdline $1 \u001b[8m"));
    writeFileSync(path.join(root, "hosts/aleph.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: r1 }\n');
    for (const args of [["plan", "--target", "local"], ["deploy", "--dry-run"]]) {
      const r = await ok(cli(args, root));
      expect(r.stdout + r.stderr, args.join(" ")).not.toContain("\u001b");
      expect(r.stdout + r.stderr, args.join(" ")).toContain("-\\u001b[8m");
      expect(r.stdout + r.stderr, args.join(" ")).toMatch(/a deploy would serve a disk WIPE to aleph/);
    }
  });

  it("works before anything is built here: hosts follow the classes the target serves, and it says deploy would refuse", async () => {
    const root = site();
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    // A second checkout with nothing built, where bet's wipe is dropped.
    const other = site();
    execFileSync("cp", ["-a", path.join(root, "served"), path.join(other, "served")]);
    writeFileSync(path.join(other, "hosts/bet.yaml"), 'class: demo\nmac: "52:54:00:00:00:02"\n');
    const r = await ok(cli(["plan", "--target", "local", "--json"], other));
    expect((JSON.parse(r.stdout) as { deployRefuses?: string }).deployRefuses).toMatch(/^nothing is built here: `netbuild deploy` refuses/);
    expect((await ok(cli(["plan", "--target", "local"], other))).stdout).toContain("\nNOTE: nothing is built here: `netbuild deploy` refuses until `netbuild build` has built a class");
    expect((await cli(["deploy", "--yes"], other)).code).toBe(1);
    const t = (JSON.parse(r.stdout) as { targets: { machines: { host: string; wipe?: string }[]; uploads: unknown[] }[] }).targets[0]!;
    expect(t.machines).toMatchObject([{ host: "bet", wipe: "disarmed" }]);
    expect(t.uploads).toEqual([]);
  });
});

describe("several targets, one failing", () => {
  it("says what happened on each, the wipes of those deployed included, as text and as JSON", async () => {
    const root = site("targets:\n  good: served-good\n  bad: served-bad\n");
    await ok(cli(["build"], root));
    // Something netbuild did not write where it would write: the bad target refuses.
    mkdirSync(path.join(root, "served-bad/by-host/aleph"), { recursive: true });
    writeFileSync(path.join(root, "served-bad/by-host/aleph/ipxe"), "#!ipxe\n# made by hand\n");
    const r = await cli(["deploy", "--yes"], root);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("netbuild: 1 of 2 targets failed: bad; the other finished");
    expect(r.stderr).toMatch(/\n {2}good: deployed: 2 uploads \([^)]+\), \d+ switches, 0 removals in [^\n]+\n/);
    expect(r.stderr).toContain("\n    WIPE on next boot: bet (id r1) (new: bet)\n");
    expect(r.stderr).toMatch(/\n {2}bad: FAILED: bad \([^)]+\) already has 1 path netbuild would write but did not create: by-host\/aleph\/ipxe\n/);
    const j = await cli(["deploy", "--yes", "--json"], root);
    expect(j.code).toBe(1);
    const doc = JSON.parse(j.stdout) as { ok: boolean; code: string; targets: { name: string; ok: boolean }[] };
    expect(doc.ok).toBe(false);
    expect(doc.code).toBe("DEPLOY_FAILED");
    expect(doc.targets.map((t) => [t.name, t.ok])).toEqual([["bad", false], ["good", true]]);

    // rollback and gc say per target what they did, next to the one that failed.
    writeFileSync(path.join(root, "classes/demo/initrd"), "initrd two\n");
    await ok(cli(["build"], root));
    await cli(["deploy", "--yes"], root);
    const back = await cli(["rollback"], root);
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(/\n {2}good: class demo rolled back: \w{12} → \w{12}\n/);
    writeFileSync(path.join(root, "served-bad/.netbuild/lock"), JSON.stringify({ owner: "ops", host: "elsewhere", pid: 1, command: "deploy", started: "2026-11-29T00:00:00.000Z", token: "x" }));
    const gc = await cli(["gc"], root);
    expect(gc.stderr).toMatch(/\n {2}good: removed 0 files \(0 B\)\n/);
    expect(gc.stderr).toContain("netbuild: 1 of 2 targets failed: bad; the other finished");
  });

  it("says when every target failed, not that the others finished", async () => {
    const root = site("targets:\n  one: served-one\n  two: served-two\n");
    await ok(cli(["build"], root));
    const r = await cli(["deploy"], root); // a new wipe, no --yes, no terminal: each refuses
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("netbuild: all 2 targets refused: one, two; nothing was changed on any");
    for (const name of ["one", "two"]) mkdirSync(path.join(root, `served-${name}/.netbuild`), { recursive: true });
    writeFileSync(path.join(root, "served-one/.netbuild/lock"), JSON.stringify({ owner: "ops", host: "elsewhere", pid: 1, command: "deploy", started: "2026-11-29T00:00:00.000Z", token: "x" }));
    const mixed = await cli(["deploy"], root);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain("netbuild: all 2 targets failed: one, two\n");
  });
});

describe("gc after a rollback", () => {
  // Guards planGc's pin: after two rollbacks the class serves its oldest kept generation, which is
  // beyond `gc --keep 2`; gc must keep that generation's files, not remove what machines boot now.
  it("keeps the generation a rollback serves, even when it is older than --keep would keep", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    for (const n of ["two", "three"]) {
      writeFileSync(path.join(root, "classes/demo/initrd"), `initrd ${n}\n`);
      await ok(cli(["build"], root));
      await ok(cli(["deploy"], root));
    }
    await ok(cli(["rollback"], root));
    await ok(cli(["rollback"], root));
    const before = (await readDeployed(localTargetFs(served)))!.classes["demo"]!;
    expect(before.generations.map((g) => g.id).indexOf(before.current), "serving the oldest of three").toBe(2);
    const servedGen = before.generations[2]!;
    const middle = before.generations[1]!;

    const middleSize = statSync(path.join(served, middle.initrd)).size;
    const r = await ok(cli(["gc", "--keep", "2", "--json"], root));
    const { removed, freed } = (JSON.parse(r.stdout) as { targets: { removed: string[]; freed: number }[] }).targets[0]!;
    expect(removed).not.toContain(servedGen.initrd);
    expect(removed).toEqual([middle.initrd]); // the other one beyond keep goes
    expect(freed).toBe(middleSize);
    expect(existsSync(path.join(served, servedGen.initrd))).toBe(true);
    // The class script still names files that are there, and the record keeps the served generation.
    const script = readFileSync(path.join(served, "by-class/demo/ipxe"), "utf8");
    for (const m of script.matchAll(/^(?:kernel|initrd --name initrd) (\S+)/gm)) expect(existsSync(path.join(served, "by-class/demo", m[1]!)), m[1]).toBe(true);
    const after = (await readDeployed(localTargetFs(served)))!.classes["demo"]!;
    expect(after.current).toBe(servedGen.id);
    expect(after.generations.map((g) => g.id)).toContain(servedGen.id);
    await ok(cli(["verify"], root));
  });
});

// verify --http against a local folder target served by the test HTTP server (the SFTP side, and a
// tampered file of another size, are in deploy.test.ts).
describe("verify --http over a local target", () => {
  // Guards the sha256 comparison: a file replaced by one of the same size (a bit flip, a
  // truncated-then-padded download) must fail verify as much as one of another size.
  it("fails on a served initrd of the expected size but other content", async () => {
    const root = site();
    const served = path.join(root, "served");
    await ok(cli(["build"], root));
    await ok(cli(["deploy", "--yes"], root));
    const server = await serveFolder(served);
    try {
      await ok(cli(["verify", "--http", server.url], root));
      const initrd = (await readDeployed(localTargetFs(served)))!.classes["demo"]!.generations[0]!.initrd;
      const file = path.join(served, initrd);
      const was = readFileSync(file);
      const same = Buffer.from(was.toString("latin1").toUpperCase(), "latin1");
      expect(same.length).toBe(was.length);
      expect(same.equals(was)).toBe(false);
      // A new file renamed over it: out/ (which deploy may have linked from) keeps its copy.
      writeFileSync(`${file}.new`, same);
      renameSync(`${file}.new`, file);
      const r = await cli(["verify", "--http", server.url, "--json"], root);
      expect(r.code, r.stderr).toBe(1);
      const machines = (JSON.parse(r.stdout) as { http: { machines: { host?: string; ok: boolean; problems: string[] }[] } }).http.machines;
      for (const host of ["aleph", "bet"]) {
        const m = machines.find((x) => x.host === host)!;
        expect(m.ok, host).toBe(false);
        expect(m.problems, host).toContainEqual(expect.stringMatching(new RegExp(`^${initrd}: sha256 [0-9a-f]{64} served, [0-9a-f]{64} expected$`)));
      }
    } finally {
      await server.close();
    }
  });
});
