// Deploys that die part-way, on a real local target folder: the applier is made to fail at a
// chosen step (the one thing mocked here: a crash cannot be scheduled otherwise), and the next
// deploy must finish the job from what the target's manifest recorded, whatever changed meanwhile.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { emptyManifest, planDeploy, planGc, planRollback, type DeployPlan, type SourceTree } from "../src/core/deploy.ts";
import { localTargetFs, type TargetFs } from "../src/adapters/target-fs.ts";
import { acquireLock, applyDeploy, changedSince, checkReachable, conflicts, conflictsAgain, machineIdFrom, notRemoved, readDeployed, removeTemps, verifyTarget } from "../src/adapters/target-tree.ts";
import type { DeployedManifest } from "../src/core/deploy.ts";
import { boots, deployStepTree, droppingAt, everyWrite, stepTree, type OpenTarget } from "./support/deploy-steps.ts";
import { cleanupTempDirs, tempDir } from "./support/inventory.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** A built tree of one class and the given hosts (name → flags line), scripts in memory. */
function built(hosts: Record<string, string>): { source: SourceTree; classScripts: Map<string, string>; contents: Map<string, string> } {
  const contents = new Map<string, string>([
    ["by-class/c/ipxe", "#!ipxe\nkernel k/kernel\n"],
    ["boot.ipxe", "#!ipxe\nchain by-mac/${mac:hexhyp}/ipxe\n"],
  ]);
  for (const [h, flags] of Object.entries(hosts)) contents.set(`by-host/${h}/ipxe`, `#!ipxe\nset cmdline hostname=${h} ${flags}\n`);
  const entries: SourceTree["entries"] = {};
  for (const [p, text] of contents) entries[p] = { kind: "file", sha256: sha(text) };
  for (const h of Object.keys(hosts)) entries[`by-mac/${h}`] = { kind: "symlink", target: `../by-host/${h}` };
  return { source: { classes: { c: { kernel: { path: "by-class/c/k/kernel" }, initrd: { path: "by-class/c/k/initrd" } } }, entries }, classScripts: new Map([["by-class/c/ipxe", contents.get("by-class/c/ipxe")!]]), contents };
}

/** A target whose `failAt` operation on `path` throws (on its `nth` call), as a dropped connection would. */
function failing(fs: TargetFs, failAt: { op: "writeFile" | "remove"; path: string; nth?: number }): TargetFs {
  let calls = 0;
  const hit = (op: string, rel: string) => op === failAt.op && rel === failAt.path && ++calls === (failAt.nth ?? 1);
  const boom = () => Promise.reject(new Error("connection lost (injected)"));
  return {
    ...fs,
    writeFile: (rel, content, o) => (hit("writeFile", rel) ? boom() : fs.writeFile(rel, content, o)),
    remove: (rel) => (hit("remove", rel) ? boom() : fs.remove(rel)),
  };
}

/** Dies when it records the switched state (a small change of a target deployed before: in the record's delta): after every switch, before anything is removed. */
const AFTER_SWITCHES = { op: "writeFile" as const, path: ".netbuild/deployed.delta.json", nth: 1 };

async function deploy(fs: TargetFs, b: ReturnType<typeof built>): Promise<DeployPlan> {
  const deployed = (await readDeployed(fs)) ?? emptyManifest();
  const plan = planDeploy({ source: b.source, classScripts: b.classScripts, deployed, keep: 3 });
  for (const s of plan.switches) if (s.kind === "file" && s.content === undefined) s.content = b.contents.get(s.path);
  const { absent } = await conflicts(fs, plan, deployed);
  // No artifacts in these trees: uploads never happen, so no source folder is read.
  await applyDeploy(fs, "/nonexistent", { ...plan, uploads: [] }, deployed, {}, absent);
  return plan;
}

/** The same tree in copy mode: by-mac/<host>/ipxe holds a copy of the host's script. */
function builtCopy(hosts: Record<string, string>): ReturnType<typeof built> {
  const b = built(hosts);
  for (const h of Object.keys(hosts)) {
    delete b.source.entries[`by-mac/${h}`];
    const text = b.contents.get(`by-host/${h}/ipxe`)!;
    b.contents.set(`by-mac/${h}/ipxe`, text);
    b.source.entries[`by-mac/${h}/ipxe`] = { kind: "file", sha256: sha(text) };
  }
  return b;
}

describe("a deploy that died part-way is finished by the next one", () => {
  afterAll(cleanupTempDirs);

  it("serves every MAC again when a deploy that died switching copy mode to links is followed by a copy-mode deploy", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, builtCopy({ a: "", b: "" }));
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ a: "", b: "" }))).rejects.toThrow("injected");
    expect(lstatSync(path.join(root, "by-mac/a")).isSymbolicLink()).toBe(true);
    await deploy(fs, builtCopy({ a: "", b: "" }));
    for (const h of ["a", "b"]) {
      expect(lstatSync(path.join(root, `by-mac/${h}`)).isDirectory(), h).toBe(true);
      expect(readFileSync(path.join(root, `by-mac/${h}/ipxe`), "utf8")).toContain(`hostname=${h}`);
    }
    const deployed = (await readDeployed(fs))!;
    expect(deployed.pending).toEqual([]);
    expect(await verifyTarget(fs, deployed)).toMatchObject({ missing: [], changed: [] });
  });

  it("rewrites a host script the dead deploy had switched, when the flag was taken back meanwhile", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ h: "" }));
    // The flag goes on; the deploy switches by-host/h/ipxe, then dies.
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ h: "homelab.provision_disks=true" }))).rejects.toThrow("injected");
    expect(readFileSync(path.join(root, "by-host/h/ipxe"), "utf8")).toContain("provision_disks");
    // The owner takes the flag back and deploys: the server must not keep serving the wipe.
    const plan = await deploy(fs, built({ h: "" }));
    expect(plan.switches.map((s) => s.path)).toContain("by-host/h/ipxe");
    expect(readFileSync(path.join(root, "by-host/h/ipxe"), "utf8")).not.toContain("provision_disks");
    expect((await readDeployed(fs))!.pending).toEqual([]);
  });

  it("removes what the dead deploy created for a host that is gone by the next deploy", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ a: "", n: "" }))).rejects.toThrow("injected");
    expect(lstatSync(path.join(root, "by-mac/n")).isSymbolicLink()).toBe(true);
    await deploy(fs, built({ a: "" }));
    expect(() => lstatSync(path.join(root, "by-mac/n"))).toThrow();
    expect(existsSync(path.join(root, "by-host/n"))).toBe(false);
    expect(Object.keys((await readDeployed(fs))!.entries)).not.toContain("by-mac/n");
  });

  it("puts back what a dead removal took, when the host is back by the next deploy", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "", h: "" }));
    // h is removed; the deploy dies after removing by-mac/h, before by-host/h/ipxe.
    await expect(deploy(failing(fs, { op: "remove", path: "by-host/h/ipxe" }), built({ a: "" }))).rejects.toThrow("injected");
    expect(() => lstatSync(path.join(root, "by-mac/h"))).toThrow();
    await deploy(fs, built({ a: "", h: "" }));
    expect(readFileSync(path.join(root, "by-mac/h/ipxe"), "utf8")).toContain("hostname=h");
  });
});

describe("a deploy whose connection drops at any write: every machine boots something whole meanwhile, and the next deploy finishes it, or undoes it", () => {
  afterAll(cleanupTempDirs);
  const local: OpenTarget = async () => {
    const root = tempDir();
    return { fs: localTargetFs(root), root, close: async () => undefined };
  };

  it.each([
    ["a new class generation, a host added and one removed, a wipe flag added", "links", "links"],
    ["the same, switching links to copies", "links", "copy"],
    ["the same, switching copies to links", "copy", "links"],
  ] as const)("%s (test/support/deploy-steps.ts)", async (_what, fromMode, toMode) => {
    expect(await everyWrite(local, tempDir(), fromMode, toMode)).toBeGreaterThanOrEqual(10);
    // The write done on the server, its answer lost with the connection.
    expect(await everyWrite(local, tempDir(), fromMode, toMode, "reply")).toBeGreaterThanOrEqual(10);
  }, 120_000);
});

describe("a rollback or a gc whose connection drops at any write leaves every machine booting a kept generation whole", () => {
  afterAll(cleanupTempDirs);

  /** A target that served g1, g2 and g3 of class c (keep 3) to hosts a and b, then was rolled back to `to`. */
  async function rolledBack(out: string, to: "g1" | "g2", k = Infinity, count = { n: 0 }): Promise<{ root: string; fs: TargetFs; dropped: boolean }> {
    const root = tempDir();
    const fs = localTargetFs(root);
    for (const g of ["g1", "g2", "g3"]) await deployStepTree(fs, out, stepTree(out, g, { a: "", b: "" }, "links"), 3);
    const deployed = (await readDeployed(fs))!;
    const id = deployed.classes["c"]!.generations.find((g) => g.kernel.includes(`/${to}/`))!.id;
    const { plan, problems } = planRollback(deployed, ["c"], id);
    expect(problems).toEqual([]);
    const dropped = await applyDeploy(droppingAt(fs, k, count), out, plan, deployed).then(
      () => false,
      (e: Error) => (expect(e.message).toContain("injected"), true),
    );
    return { root, fs, dropped };
  }

  it.each(["g2", "g1"] as const)("rolling back to %s: at each write, a and b boot the newest or that generation whole; then a gc keeping 2 that drops at each write never takes the generation served, and the next gc finishes it", async (to) => {
    const out = tempDir();
    const count = { n: 0 };
    await rolledBack(out, to, Infinity, count);
    expect(count.n).toBeGreaterThan(0);
    for (let k = 0; k < count.n; k++) {
      const { root, fs } = await rolledBack(out, to, k);
      for (const mac of ["a", "b"]) expect(boots(root, mac), `rollback dropped at write ${k + 1}: ${mac}`).toBe(`hostname=${mac}`);
      // A gc right after (what deploy's out-of-space hint says to run) takes nothing the target may
      // serve: the class script may name the generation rolled back to while the record still names g3.
      const d = (await readDeployed(fs))!;
      await applyDeploy(fs, out, planGc(d, 2).plan, d);
      for (const mac of ["a", "b"]) expect(boots(root, mac), `rollback dropped at write ${k + 1}, then gc: ${mac}`).toBe(`hostname=${mac}`);
    }
    // gc with keep 2 after the rollback: g3 (the newest) and the one served stay; the third goes.
    const probe = await rolledBack(out, to);
    const gcCount = { n: 0 };
    const before = (await readDeployed(probe.fs))!;
    const { plan } = planGc(before, 2);
    await applyDeploy(droppingAt(probe.fs, Infinity, gcCount), out, plan, before);
    const gone = to === "g1" ? "g2" : "g1";
    expect(plan.deletions.sort()).toEqual([`by-class/c/${gone}/initrd`, `by-class/c/${gone}/kernel`]);
    for (let k = 0; k < gcCount.n; k++) {
      const { root, fs } = await rolledBack(out, to);
      const deployed = (await readDeployed(fs))!;
      await expect(applyDeploy(droppingAt(fs, k), out, planGc(deployed, 2).plan, deployed)).rejects.toThrow("injected");
      const classScript = readFileSync(path.join(root, "by-class/c/ipxe"), "utf8");
      expect(classScript, `gc dropped at write ${k + 1}`).toContain(`kernel ${to}/kernel`);
      for (const mac of ["a", "b"]) expect(boots(root, mac), `gc dropped at write ${k + 1}: ${mac}`).toBe(`hostname=${mac}`);
      // The next gc finishes: the record and the target agree, and the served generation is whole.
      const again = (await readDeployed(fs))!;
      await applyDeploy(fs, out, planGc(again, 2).plan, again);
      const after = (await readDeployed(fs))!;
      expect(await verifyTarget(fs, after)).toMatchObject({ missing: [], changed: [] });
      expect(after.classes["c"]!.generations.map((g) => g.kernel.split("/")[2]).sort()).toEqual(["g3", to].sort());
      expect(existsSync(path.join(root, `by-class/c/${gone}`)), `gc dropped at write ${k + 1} of ${gcCount.n}, then run again: ${JSON.stringify(again.pending)} pending; left: ${existsSync(path.join(root, `by-class/c/${gone}`)) ? readdirSync(path.join(root, `by-class/c/${gone}`)).join(", ") : ""}`).toBe(false);
    }
  }, 60_000);

  it("what a stopped gc was removing behind a link made by hand stays pending, and is said", async () => {
    const out = tempDir();
    const { root, fs } = await rolledBack(out, "g2");
    const deployed = (await readDeployed(fs))!;
    // That gc stopped after recording, before removing g1's files.
    const stop = (e: { action: string }) => {
      if (e.action === "remove") throw new Error("connection lost (injected)");
    };
    await expect(applyDeploy(fs, out, planGc(deployed, 2).plan, deployed, { onEvent: stop })).rejects.toThrow("injected");
    expect((await readDeployed(fs))!.pending).toEqual(["by-class/c/g1/initrd", "by-class/c/g1/kernel"]);
    // Someone moved g1's folder to another disk, linking it back.
    const elsewhere = tempDir();
    execFileSync("mv", [path.join(root, "by-class/c/g1"), path.join(elsewhere, "g1")]);
    symlinkSync(path.join(elsewhere, "g1"), path.join(root, "by-class/c/g1"));
    // The next gc (another run: a connection of its own).
    const next = localTargetFs(root);
    const again = (await readDeployed(next))!;
    const gc = planGc(again, 2);
    expect(gc.leftovers).toEqual(["by-class/c/g1/initrd", "by-class/c/g1/kernel"]);
    const r = await applyDeploy(next, out, gc.plan, again);
    expect(r.kept.sort()).toEqual(["by-class/c/g1/initrd", "by-class/c/g1/kernel"]);
    expect(readdirSync(path.join(elsewhere, "g1")).sort()).toEqual(["initrd", "kernel"]);
    expect((await readDeployed(fs))!.pending).toEqual(["by-class/c/g1/initrd", "by-class/c/g1/kernel"]);
    // What deploy and gc say of each: pending here; recorded for a path the record still lists.
    expect(notRemoved("by-class/c/g1/kernel", again)).toBe("by-class/c/g1/kernel was not removed: a folder on its way is a link made by hand (it stays pending)");
    expect(notRemoved("by-class/c/ipxe", again)).toBe("by-class/c/ipxe was not removed: a folder on its way is a link made by hand (it stays recorded)");
  });
});

describe("what a deploy is changing is listed in a small journal beside the record", () => {
  afterAll(cleanupTempDirs);
  const RECORD = ".netbuild/deployed.json";
  const JOURNAL = ".netbuild/pending.json";

  it("lists the paths it is about to switch in the journal, leaving the record as it was until the switch is done", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "", b: "" }));
    const before = readFileSync(path.join(root, RECORD), "utf8");
    expect(existsSync(path.join(root, JOURNAL))).toBe(false);
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ a: "console=ttyS1", b: "" }))).rejects.toThrow("injected");
    expect(readFileSync(path.join(root, RECORD), "utf8")).toBe(before);
    expect(JSON.parse(readFileSync(path.join(root, JOURNAL), "utf8"))).toEqual({ format: 1, pending: ["by-host/a/ipxe"] });
    expect((await readDeployed(fs))!.pending).toEqual(["by-host/a/ipxe"]);
    await deploy(fs, built({ a: "console=ttyS1", b: "" }));
    expect(existsSync(path.join(root, JOURNAL))).toBe(false);
    const deployed = (await readDeployed(fs))!;
    expect(deployed.pending).toEqual([]);
    expect(JSON.parse(readFileSync(path.join(root, RECORD), "utf8")).pending).toEqual([]);
    expect(await verifyTarget(fs, deployed)).toMatchObject({ missing: [], changed: [] });
  });

  it("adds to the journal what a second deploy that dies too was switching, keeping what the first left", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "", b: "", c: "" }));
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ a: "console=ttyS1", b: "", c: "" }))).rejects.toThrow("injected");
    expect(JSON.parse(readFileSync(path.join(root, JOURNAL), "utf8")).pending).toEqual(["by-host/a/ipxe"]);
    // The next one changes b too (a is written again, as pending), and dies at the same point.
    await expect(deploy(failing(fs, AFTER_SWITCHES), built({ a: "console=ttyS1", b: "console=ttyS1", c: "" }))).rejects.toThrow("injected");
    expect(JSON.parse(readFileSync(path.join(root, JOURNAL), "utf8")).pending).toEqual(["by-host/a/ipxe", "by-host/b/ipxe"]);
    await deploy(fs, built({ a: "console=ttyS1", b: "console=ttyS1", c: "" }));
    expect(existsSync(path.join(root, JOURNAL))).toBe(false);
    expect(await verifyTarget(fs, (await readDeployed(fs))!)).toMatchObject({ missing: [], changed: [], extra: [] });
  });

  it("keeps what goes owned until it is gone: a deploy that dies removing a host leaves its paths pending, and the next one removes them", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "", h: "" }));
    await expect(deploy(failing(fs, { op: "remove", path: "by-host/h/ipxe" }), built({ a: "" }))).rejects.toThrow("injected");
    // The record no longer lists h, the journal does: nothing on the target is unowned.
    const record = (await readDeployed(fs))!;
    expect(Object.keys(record.entries)).not.toContain("by-host/h/ipxe");
    expect(record.pending).toContain("by-host/h/ipxe");
    await deploy(fs, built({ a: "" }));
    expect(existsSync(path.join(root, "by-host/h"))).toBe(false);
    expect(existsSync(path.join(root, JOURNAL))).toBe(false);
  });

  it("finishes the job when a deploy died after recording the new state, before clearing the journal", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    await expect(deploy(failing(fs, { op: "remove", path: JOURNAL }), built({ a: "x=1" }))).rejects.toThrow("injected");
    expect((await readDeployed(fs))!.pending).toEqual(["by-host/a/ipxe"]);
    const plan = await deploy(fs, built({ a: "x=1" }));
    // The path it was not sure of is written again, whatever the record says.
    expect(plan.switches.map((sw) => sw.path)).toEqual(["by-host/a/ipxe"]);
    expect(existsSync(path.join(root, JOURNAL))).toBe(false);
    expect(readFileSync(path.join(root, "by-host/a/ipxe"), "utf8")).toContain("x=1");
  });

  it("honours the pending paths a record of netbuild 0.2 lists itself (before the journal)", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    const record = JSON.parse(readFileSync(path.join(root, RECORD), "utf8")) as { pending: string[] };
    writeFileSync(path.join(root, RECORD), JSON.stringify({ ...record, pending: ["by-host/n/ipxe"] }));
    writeFileSync(path.join(root, JOURNAL), JSON.stringify({ format: 1, pending: ["by-mac/n"] }));
    expect((await readDeployed(fs))!.pending).toEqual(["by-host/n/ipxe", "by-mac/n"]);
  });

  it("refuses a damaged journal, or a journal that is not a plain file, and changes nothing", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    const record = readFileSync(path.join(root, RECORD), "utf8");
    for (const [text, problem] of [
      ["{", "it is not valid JSON"],
      [JSON.stringify({ format: 1, pending: ["../../etc/passwd"] }), "pending[0]: the path"],
      [JSON.stringify({ format: 1, pending: "by-host/a/ipxe" }), "pending: expected a list of paths"],
      [JSON.stringify({ format: 1, pending: [], extra: true }), "expected {"],
      [JSON.stringify({ format: 9, pending: [] }), "format 9"],
    ] as const) {
      writeFileSync(path.join(root, JOURNAL), text);
      await expect(readDeployed(fs), text).rejects.toThrow(problem);
      await expect(readDeployed(fs), text).rejects.toMatchObject({ code: "TARGET_NOT_A_TREE" });
    }
    writeFileSync(path.join(root, JOURNAL), "");
    await expect(readDeployed(fs)).rejects.toMatchObject({ code: "TARGET_NOT_A_TREE" });
    (await import("node:fs")).rmSync(path.join(root, JOURNAL));
    mkdirSync(path.join(root, JOURNAL));
    await expect(readDeployed(fs)).rejects.toMatchObject({ code: "TARGET_CONFLICT" });
    expect(readFileSync(path.join(root, RECORD), "utf8")).toBe(record);
  });
});

describe("a few changes are recorded in a delta beside the record, not by rewriting it", () => {
  afterAll(cleanupTempDirs);
  const RECORD = ".netbuild/deployed.json";
  const DELTA = ".netbuild/deployed.delta.json";
  const hosts = (n: number, flags = (_i: number) => "") => Object.fromEntries(Array.from({ length: n }, (_, i) => [`h${i}`, flags(i)]));
  const read = (root: string, rel: string) => readFileSync(path.join(root, rel), "utf8");

  it("writes the record whole once, then only what changed; every read sees the record with its delta applied", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built(hosts(20)));
    expect(existsSync(path.join(root, DELTA))).toBe(false);
    const record = read(root, RECORD);
    await deploy(fs, built(hosts(20, (i) => (i === 3 ? "x=1" : ""))));
    expect(read(root, RECORD)).toBe(record);
    const delta = JSON.parse(read(root, DELTA)) as { base: string; set: Record<string, unknown>; removed: string[] };
    expect(delta.base).toBe(sha(record));
    expect(Object.keys(delta.set)).toEqual(["by-host/h3/ipxe"]);
    expect(delta.removed).toEqual([]);
    // A host goes: the delta says so (what it set before stays in it: it is against the record).
    await deploy(fs, built(Object.fromEntries(Object.entries(hosts(20, (i) => (i === 3 ? "x=1" : ""))).filter(([h]) => h !== "h7"))));
    expect(read(root, RECORD)).toBe(record);
    expect(JSON.parse(read(root, DELTA))).toMatchObject({ set: { "by-host/h3/ipxe": {} }, removed: ["by-host/h7/ipxe", "by-mac/h7"] });
    const deployed = (await readDeployed(fs))!;
    expect(deployed.entries["by-host/h3/ipxe"]).toEqual({ kind: "file", sha256: sha(built(hosts(20, (i) => (i === 3 ? "x=1" : ""))).contents.get("by-host/h3/ipxe")!) });
    expect(Object.keys(deployed.entries)).not.toContain("by-mac/h7");
    expect(await verifyTarget(fs, deployed)).toMatchObject({ missing: [], changed: [], extra: [] });
  });

  it("writes the record whole again, and drops the delta, when the changes outgrow it", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built(hosts(80)));
    const record = read(root, RECORD);
    await deploy(fs, built(hosts(80, (i) => `x=${i}`)));
    expect(read(root, RECORD)).not.toBe(record);
    expect(existsSync(path.join(root, DELTA))).toBe(false);
    expect(JSON.parse(read(root, RECORD)).entries["by-host/h5/ipxe"].sha256).toBe(sha(built(hosts(80, (i) => `x=${i}`)).contents.get("by-host/h5/ipxe")!));
  });

  it("leaves aside a delta that names another record (a deploy stopped after rewriting the record whole, before removing it)", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built(hosts(80)));
    await deploy(fs, built(hosts(80, (i) => (i === 1 ? "x=1" : ""))));
    const staleDelta = read(root, DELTA);
    // The changes outgrow the delta; the deploy dies when it removes the old delta.
    await expect(deploy(failing(fs, { op: "remove", path: DELTA }), built(hosts(80, (i) => `y=${i}`)))).rejects.toThrow("injected");
    expect(read(root, DELTA)).toBe(staleDelta);
    const deployed = (await readDeployed(fs))!;
    expect(deployed.entries["by-host/h1/ipxe"]).toEqual({ kind: "file", sha256: sha(built(hosts(80, (i) => `y=${i}`)).contents.get("by-host/h1/ipxe")!) });
    await deploy(fs, built(hosts(80, (i) => `y=${i}`)));
    expect(await verifyTarget(fs, (await readDeployed(fs))!)).toMatchObject({ missing: [], changed: [], extra: [] });
  });

  it("refuses a delta that is damaged or would make a record netbuild cannot trust, naming the delta, and changes nothing", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built(hosts(3)));
    const base = sha(read(root, RECORD));
    const good = { format: 1, base, classes: JSON.parse(read(root, RECORD)).classes, set: {}, removed: [] };
    for (const [delta, problem] of [
      ["{", "it is not valid JSON"],
      [JSON.stringify({ ...good, format: 2 }), "format 2"],
      [JSON.stringify({ ...good, extra: 1 }), 'expected { "format": 1'],
      [JSON.stringify({ ...good, base: "x" }), "base: expected the sha256"],
      [JSON.stringify({ ...good, removed: ["../x"] }), "removed: expected a list of tree paths"],
      [JSON.stringify({ ...good, set: { "../../etc/passwd": { kind: "file", sha256: "ab".repeat(32) } } }), "the path"],
      [JSON.stringify({ ...good, set: { "by-host/h0/ipxe": { kind: "artifact", size: 1, sha256: "ab".repeat(32) } } }), "netbuild never writes an artifact there"],
    ] as const) {
      writeFileSync(path.join(root, DELTA), delta);
      await expect(readDeployed(fs), delta).rejects.toThrow(`${root}/${DELTA} is not a record netbuild can trust`);
      await expect(readDeployed(fs), delta).rejects.toThrow(problem);
    }
  });

  it("names the record, not its delta, when the record itself is wrong", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built(hosts(3)));
    await deploy(fs, built(hosts(3, (i) => (i === 0 ? "x=1" : ""))));
    const record = JSON.parse(read(root, RECORD)) as { entries: Record<string, unknown> };
    record.entries["by-host/../etc/x"] = { kind: "file", sha256: "ab".repeat(32) };
    const text = JSON.stringify(record);
    writeFileSync(path.join(root, RECORD), text);
    const delta = JSON.parse(read(root, DELTA)) as { base: string };
    writeFileSync(path.join(root, DELTA), JSON.stringify({ ...delta, base: sha(text) }));
    await expect(readDeployed(fs)).rejects.toThrow(`${root}/${RECORD} is not a record netbuild can trust`);
  });
});

describe("a host script that changes is replaced whole, never rewritten in place", () => {
  afterAll(cleanupTempDirs);

  // Guards the temporary name + rename of TargetFs.writeFile: a boot server sending the old script
  // while the deploy runs must send all of it, and a new reader must get all of the new one. Written
  // in place, the file keeps its inode and an open reader sees the new (or half-new) bytes.
  it("writes the new script under another name and renames it over the old one (a new inode; an open reader keeps the old text)", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    const file = path.join(root, "by-host/h/ipxe");
    await deploy(fs, built({ h: "" }));
    const old = readFileSync(file, "utf8");
    const before = statSync(file).ino;
    const reader = openSync(file, "r");
    try {
      await deploy(fs, built({ h: "homelab.provision_disks=true" }));
      expect(readFileSync(file, "utf8")).toContain("provision_disks");
      expect(statSync(file).ino).not.toBe(before);
      expect(readFileSync(reader, "utf8")).toBe(old);
    } finally {
      closeSync(reader);
    }
    expect(existsSync(path.join(root, "by-host/h/.ipxe.netbuild-tmp"))).toBe(false);
  });
});

describe("a file the plan does not hold is read from out/, as bytes, and only as planned", () => {
  afterAll(cleanupTempDirs);

  it("sends out/'s bytes unchanged (an iPXE binary: not text), and refuses a file whose content is not the planned one, sending nothing of it", async () => {
    const out = tempDir();
    const fs = localTargetFs(tempDir());
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 13) % 256));
    mkdirSync(path.join(out, "ipxe"));
    writeFileSync(path.join(out, "ipxe/undionly.kpxe"), bytes);
    const b = built({});
    b.source.entries["ipxe/undionly.kpxe"] = { kind: "file", sha256: createHash("sha256").update(bytes).digest("hex") };
    const deployed = emptyManifest();
    const plan = planDeploy({ source: b.source, classScripts: b.classScripts, deployed, keep: 3 });
    for (const sw of plan.switches) if (sw.kind === "file" && sw.content === undefined && !sw.path.startsWith("ipxe/")) sw.content = b.contents.get(sw.path);
    const { absent } = await conflicts(fs, plan, deployed);
    // Changed in out/ since it was planned: refused, and nothing of it reaches the target.
    writeFileSync(path.join(out, "ipxe/undionly.kpxe"), Buffer.concat([bytes.subarray(1), Buffer.from([0])]));
    await expect(applyDeploy(fs, out, { ...plan, uploads: [] }, deployed, {}, absent)).rejects.toMatchObject({ code: "OUT_CONFLICT", message: expect.stringContaining(`${path.join(out, "ipxe/undionly.kpxe")} changed since the deploy was planned`), hint: expect.stringContaining("run `netbuild build` again") });
    expect(await fs.stat("ipxe/undionly.kpxe")).toBeUndefined();
    // As planned: byte for byte.
    writeFileSync(path.join(out, "ipxe/undionly.kpxe"), bytes);
    const again = (await readDeployed(fs)) ?? emptyManifest();
    const retry = planDeploy({ source: b.source, classScripts: b.classScripts, deployed: again, keep: 3 });
    for (const sw of retry.switches) if (sw.kind === "file" && sw.content === undefined && !sw.path.startsWith("ipxe/")) sw.content = b.contents.get(sw.path);
    await applyDeploy(fs, out, { ...retry, uploads: [] }, again, {}, (await conflicts(fs, retry, again)).absent);
    expect((await fs.readFile("ipxe/undionly.kpxe"))!.equals(bytes)).toBe(true);
  });
});

describe("the lock on a local folder", () => {
  afterAll(cleanupTempDirs);

  // Guards the exclusive create of .netbuild/lock and the judgement of a lock this very process
  // holds: two deploys at once (two commands, or two target names for one folder) must not both go
  // ahead. A lock of this pid is stale only when this process no longer holds it.
  it("lets one holder at a time take it, from this process too: the second is DEPLOY_LOCKED until the first releases it", async () => {
    const root = tempDir();
    const first = await acquireLock(localTargetFs(root), "deploy", {});
    const lock = readFileSync(path.join(root, ".netbuild/lock"), "utf8");
    await expect(acquireLock(localTargetFs(root), "deploy", {})).rejects.toMatchObject({ code: "DEPLOY_LOCKED" });
    await expect(acquireLock(localTargetFs(root), "gc", {})).rejects.toMatchObject({ code: "DEPLOY_LOCKED" });
    expect(readFileSync(path.join(root, ".netbuild/lock"), "utf8")).toBe(lock);
    await first.release();
    expect(existsSync(path.join(root, ".netbuild/lock"))).toBe(false);
    const second = await acquireLock(localTargetFs(root), "deploy", {});
    await second.release();
  });

  // The moment between the lock file's creation and its taker counting it as held: another taker
  // in this process (two target names for one folder) that reads the lock then must find it live,
  // not left behind by a failed deploy of this pid, and must not break it. Made deterministic by
  // running the second taker inside the first one's create.
  it("is live from the moment its file exists: a second taker in this process that reads it then is DEPLOY_LOCKED and breaks nothing", async () => {
    const root = tempDir();
    const base = localTargetFs(root);
    let second: Promise<unknown> | undefined;
    const messages: string[] = [];
    const slow: TargetFs = Object.assign(Object.create(base) as TargetFs, {
      async createExclusive(rel: string, text: string) {
        const made = await base.createExclusive(rel, text);
        if (made && !second) {
          second = acquireLock(base, "deploy", { onWait: (m) => messages.push(m) }).then(
            (held) => held.release().then(() => "taken"),
            (e: unknown) => (e as { code?: string }).code,
          );
          await second;
        }
        return made;
      },
    });
    const first = await acquireLock(slow, "deploy", {});
    expect(await second).toBe("DEPLOY_LOCKED");
    expect(messages).toEqual([]);
    await first.release();
    expect(existsSync(path.join(root, ".netbuild/lock"))).toBe(false);
  });

  // The same moment at the other end: while the holder releases (it reads the lock to check it is
  // still its own, then removes it), a taker in this process that reads the lock then must find it
  // live, and the release must not remove a lock someone else took meanwhile.
  it("stays live until its release has removed it: a taker reading it mid-release is DEPLOY_LOCKED", async () => {
    const root = tempDir();
    const base = localTargetFs(root);
    let second: Promise<unknown> | undefined;
    const messages: string[] = [];
    const slow: TargetFs = Object.assign(Object.create(base) as TargetFs, {
      async readFile(rel: string) {
        const got = await base.readFile(rel);
        if (rel === ".netbuild/lock" && !second) {
          second = acquireLock(base, "deploy", { onWait: (m) => messages.push(m) }).then(
            (held) => held.release().then(() => "taken"),
            (e: unknown) => (e as { code?: string }).code,
          );
          await second;
        }
        return got;
      },
    });
    const first = await acquireLock(slow, "deploy", {});
    await first.release();
    expect(await second).toBe("DEPLOY_LOCKED");
    expect(messages).toEqual([]);
    expect(existsSync(path.join(root, ".netbuild/lock"))).toBe(false);
  });

  // A pid is judged gone only on the machine that took the lock: host names repeat (two laptops
  // both called `nixos`), so a lock of this host name from another machine, or from a netbuild that
  // did not record the machine, is never broken by itself.
  it.skipIf(!existsSync("/etc/machine-id"))("is judged left behind only by the machine that took it, not by another of the same host name", async () => {
    const root = tempDir();
    mkdirSync(path.join(root, ".netbuild"));
    const lockFile = path.join(root, ".netbuild/lock");
    const here = readFileSync("/etc/machine-id", "utf8").trim();
    const gone = { owner: "ops", host: os.hostname(), pid: 999_999, command: "deploy", started: "2026-11-30T00:00:00.000Z", token: "t" };
    for (const other of [{ ...gone, machine: "0".repeat(32) }, gone]) {
      writeFileSync(lockFile, JSON.stringify(other));
      await expect(acquireLock(localTargetFs(root), "deploy", {})).rejects.toMatchObject({ code: "DEPLOY_LOCKED" });
      expect(readFileSync(lockFile, "utf8")).toBe(JSON.stringify(other));
    }
    writeFileSync(lockFile, JSON.stringify({ ...gone, machine: here }));
    const messages: string[] = [];
    const taken = await acquireLock(localTargetFs(root), "deploy", { onWait: (m) => messages.push(m) });
    expect(messages).toEqual([expect.stringContaining("breaking the stale lock of `netbuild deploy` by ops")]);
    expect(JSON.parse(readFileSync(lockFile, "utf8"))).toMatchObject({ host: os.hostname(), machine: here, pid: process.pid });
    await taken.release();
  });

  // --break-lock is for a deploy that is gone; two target names for one folder in one deploy with
  // --break-lock must still not both go ahead.
  it("is never broken by --break-lock from the process that holds it", async () => {
    const root = tempDir();
    const first = await acquireLock(localTargetFs(root), "deploy", {});
    const lock = readFileSync(path.join(root, ".netbuild/lock"), "utf8");
    await expect(acquireLock(localTargetFs(path.join(root, ".")), "deploy", { breakLock: true })).rejects.toMatchObject({ code: "DEPLOY_LOCKED" });
    expect(readFileSync(path.join(root, ".netbuild/lock"), "utf8")).toBe(lock);
    await first.release();
    // A lock this process no longer holds (left by a deploy of this pid that failed) is broken as before.
    writeFileSync(path.join(root, ".netbuild/lock"), lock);
    const again = await acquireLock(localTargetFs(root), "deploy", {});
    await again.release();
  });
});

describe("what stands in a deploy's way on the target is found before anything is changed", () => {
  afterAll(cleanupTempDirs);

  /** A plan of just these paths (files, `>target` for links, `^` for an upload), for checkReachable and conflicts. */
  const planOf = (...paths: string[]): DeployPlan =>
    ({
      uploads: paths.filter((p) => p.startsWith("^")).map((p) => ({ path: p.slice(1), size: 1, sha256: sha(p) })),
      switches: paths.filter((p) => !p.startsWith("^")).map((p) => (p.includes(">") ? { kind: "symlink", layer: "mac", path: p.split(">")[0]!, target: p.split(">")[1]! } : { kind: "file", layer: "host", path: p, sha256: sha(p) })),
      deletions: [],
      classes: [],
      bytes: 0,
      unchanged: 0,
      manifest: emptyManifest(),
    }) as unknown as DeployPlan;
  /** A record owning these paths (`>target` for links), with these pending. */
  const recordOf = (paths: string[], pending: string[] = []): DeployedManifest => ({
    ...emptyManifest(),
    entries: Object.fromEntries(paths.map((p) => [p.split(">")[0]!, p.includes(">") ? { kind: "symlink", target: p.split(">")[1]! } : { kind: "file", sha256: sha(p) }])),
    pending,
  });
  const put = (root: string, rel: string, text = "x") => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(() => undefined, (err: unknown) => err as { code?: string; message: string });
    expect(e, "refused").toBeDefined();
    expect(e!.code).toBe("TARGET_CONFLICT");
    return e!.message;
  };

  it("refuses a plan whose folders are a link or a file, naming each once, in order, and writes nothing through them", async () => {
    const root = tempDir();
    const victim = tempDir();
    symlinkSync(victim, path.join(root, "by-host"));
    put(root, "by-class", "a file");
    const fs = localTargetFs(root);
    const plan = planOf("by-host/a/ipxe", "by-host/b/ipxe", "by-class/c/ipxe", "^by-class/c/k/kernel");
    expect(await refusal(checkReachable(fs, plan, recordOf(["by-host/a/ipxe"])))).toBe(`${root}: by-class is a file, where netbuild needs a real folder; by-host is a symlink, where netbuild needs a real folder; nothing was changed`);
    await expect(conflicts(fs, plan, emptyManifest())).rejects.toMatchObject({ code: "TARGET_CONFLICT" });
    expect(readdirSync(victim)).toEqual([]);
  });

  it("refuses a folder or a special file where it owns a file or a link, and replaces a file, a link or nothing there", async () => {
    const root = tempDir();
    mkdirSync(path.join(root, "by-host/a/ipxe"), { recursive: true });
    mkdirSync(path.join(root, "by-mac/m1"), { recursive: true });
    mkdirSync(path.join(root, "by-host/e"), { recursive: true });
    execFileSync("mkfifo", [path.join(root, "by-host/e/ipxe")]);
    put(root, "by-host/b/ipxe");
    mkdirSync(path.join(root, "by-host/d"), { recursive: true });
    symlinkSync("elsewhere", path.join(root, "by-host/d/ipxe"));
    symlinkSync("../by-host/b", path.join(root, "by-mac/m2"));
    const fs = localTargetFs(root);
    const owned = ["by-host/a/ipxe", "by-host/b/ipxe", "by-host/c/ipxe", "by-host/d/ipxe", "by-host/e/ipxe", "by-mac/m1>../by-host/a", "by-mac/m2>../by-host/b"];
    const message = await refusal(checkReachable(fs, planOf(...owned), recordOf(owned)));
    expect(message).toBe(
      `${root}: by-host/a/ipxe is a folder, where netbuild writes a file; by-host/e/ipxe is a special file (device, FIFO or socket), where netbuild writes a file; by-mac/m1 is a folder, where netbuild writes a link; nothing was changed`,
    );
    // The same paths with what netbuild replaces there (a file, a link, nothing): no conflict.
    // An artifact netbuild recorded, where a folder now stands; a file where its by-mac link was, on the way to a copy-mode script.
    mkdirSync(path.join(root, "by-class/c/k/kernel"), { recursive: true });
    put(root, "by-mac/m6", "not a link");
    expect(await refusal(checkReachable(fs, planOf("^by-class/c/k/kernel", "by-mac/m6/ipxe"), recordOf(["by-class/c/k/kernel", "by-mac/m6>../by-host/b"])))).toBe(
      `${root}: by-class/c/k/kernel is a folder, where netbuild writes a file; by-mac/m6 is a file, where netbuild needs a real folder; nothing was changed`,
    );
    const fine = ["by-host/b/ipxe", "by-host/c/ipxe", "by-host/d/ipxe", "by-mac/m2>../by-host/b"];
    await checkReachable(fs, planOf(...fine), recordOf(fine));
    // Paths it does not own are conflicts()'s to judge: a folder there is not checkReachable's refusal.
    await checkReachable(fs, planOf("by-host/a/ipxe"), emptyManifest());
  });

  it("switches copy mode to links over a by-mac folder holding only its own ipxe (and its temporary name), never over one holding other files", async () => {
    const root = tempDir();
    put(root, "by-mac/m1/ipxe");
    put(root, "by-mac/m1/.ipxe.netbuild-tmp");
    put(root, "by-mac/m2/ipxe");
    put(root, "by-mac/m2/notes.txt");
    put(root, "by-mac/m3/ipxe");
    for (const n of ["d", "c", "b", "a"]) put(root, `by-mac/m3/${n}`);
    put(root, "by-mac/m4/other");
    put(root, "by-mac/m5", "someone's file where the folder was");
    const fs = localTargetFs(root);
    const record = recordOf(["by-mac/m1/ipxe", "by-mac/m2/ipxe", "by-mac/m3/ipxe", "by-mac/m4>../by-host/a", "by-mac/m5/ipxe"]);
    await checkReachable(fs, planOf("by-mac/m1>../by-host/a"), record);
    // An SFTP server lists a folder in any order: the names shown are the first three in order, whatever it sent.
    const reversed: TargetFs = { ...fs, list: async (rel) => (await fs.list(rel)).sort((x, y) => (x.name < y.name ? 1 : -1)) };
    expect(await refusal(checkReachable(reversed, planOf("by-mac/m3>../by-host/c"), record))).toBe(`${root}: by-mac/m3 is a folder holding files netbuild did not write ("a", "b", "c"), where netbuild puts a link; nothing was changed`);
    expect(await refusal(checkReachable(fs, planOf("by-mac/m1>../by-host/a", "by-mac/m2>../by-host/b", "by-mac/m3>../by-host/c", "by-mac/m4>../by-host/a", "by-mac/m5>../by-host/a"), record))).toBe(
      `${root}: by-mac/m2 is a folder holding a file netbuild did not write ("notes.txt"), where netbuild puts a link; by-mac/m3 is a folder holding files netbuild did not write ("a", "b", "c"), where netbuild puts a link; by-mac/m4 is a folder, where netbuild writes a link; by-mac/m5 is a file, where netbuild writes a link; nothing was changed`,
    );
    // A folder where netbuild's own file goes (not a link) is refused as such, whatever it holds.
    expect(await refusal(checkReachable(fs, planOf("by-mac/m1"), recordOf(["by-mac/m1", "by-mac/m1/ipxe"])))).toBe(`${root}: by-mac/m1 is a folder, where netbuild writes a file; nothing was changed`);
  });

  it("takes only regular files named ipxe and .ipxe.netbuild-tmp in a copy-mode folder as netbuild's: a folder so named is someone's", async () => {
    const root = tempDir();
    for (const [m, name] of [["m1", "ipxe"], ["m2", ".ipxe.netbuild-tmp"]]) put(root, `by-mac/${m}/${name}/notes.txt`);
    put(root, "by-mac/m2/ipxe");
    const fs = localTargetFs(root);
    const record = recordOf(["by-mac/m1/ipxe", "by-mac/m2/ipxe"]);
    expect(await refusal(checkReachable(fs, planOf("by-mac/m1>../by-host/a", "by-mac/m2>../by-host/a"), record))).toBe(
      `${root}: by-mac/m1 is a folder holding a file netbuild did not write ("ipxe"), where netbuild puts a link; by-mac/m2 is a folder holding a file netbuild did not write (".ipxe.netbuild-tmp"), where netbuild puts a link; nothing was changed`,
    );
  });

  it("leaves a copy-mode folder that holds someone's file where it is: the deploy that would switch it to a link is refused, changing nothing", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, builtCopy({ a: "", b: "" }));
    writeFileSync(path.join(root, "by-mac/a/notes.txt"), "someone's notes");
    const before = JSON.stringify(await readDeployed(fs));
    await expect(deploy(fs, built({ a: "", b: "" }))).rejects.toThrow(`by-mac/a is a folder holding a file netbuild did not write ("notes.txt"), where netbuild puts a link`);
    expect(readFileSync(path.join(root, "by-mac/a/notes.txt"), "utf8")).toBe("someone's notes");
    expect(lstatSync(path.join(root, "by-mac/b")).isDirectory()).toBe(true);
    expect(readdirSync(path.join(root, "by-mac")).sort()).toEqual(["a", "b"]);
    expect(JSON.stringify(await readDeployed(fs))).toBe(before);
    // Without it (and with a stopped deploy's temporary copy of the script there), the switch leaves nothing aside.
    rmSync(path.join(root, "by-mac/a/notes.txt"));
    writeFileSync(path.join(root, "by-mac/a/.ipxe.netbuild-tmp"), "a stopped deploy's");
    await deploy(fs, built({ a: "", b: "" }));
    expect(readdirSync(path.join(root, "by-mac")).sort()).toEqual(["a", "b"]);
    expect(lstatSync(path.join(root, "by-mac/a")).isSymbolicLink()).toBe(true);
  });

  it("looks at the target afresh after a wait (conflictsAgain): someone's file put in a copy-mode folder, or by-host/ swapped for a link, since the first check is found", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, builtCopy({ a: "", b: "" }));
    const b = built({ a: "", b: "" });
    const deployed = (await readDeployed(fs))!;
    // The one plan object, checked and then checked again, as deploy does (no artifacts in these trees: no uploads).
    const plan = { ...planDeploy({ source: b.source, classScripts: b.classScripts, deployed, keep: 3 }), uploads: [] };
    await conflicts(fs, plan, deployed);
    writeFileSync(path.join(root, "by-mac/a/notes.txt"), "someone's notes");
    await expect(conflictsAgain(fs, plan, deployed)).rejects.toThrow(`by-mac/a is a folder holding a file netbuild did not write ("notes.txt"), where netbuild puts a link`);
    rmSync(path.join(root, "by-mac/a/notes.txt"));

    // A change of a's flags, checked; then by-host/ moved to another disk and linked in its place.
    const c = built({ a: "x=2", b: "" });
    const change = { ...planDeploy({ source: c.source, classScripts: c.classScripts, deployed, keep: 3 }), uploads: [] };
    await conflicts(fs, change, deployed);
    const elsewhere = path.join(tempDir(), "by-host");
    renameSync(path.join(root, "by-host"), elsewhere);
    symlinkSync(elsewhere, path.join(root, "by-host"));
    await expect(conflictsAgain(fs, change, deployed)).rejects.toThrow("by-host is a symlink, where netbuild needs a real folder");
    expect(readFileSync(path.join(elsewhere, "a/ipxe"), "utf8")).not.toContain("x=2");
  });

  it("finds someone's file where a new host's by-mac entry goes, however short its name, beside the by-mac entries netbuild owns", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    put(root, "by-mac/web1", "someone's file");
    const b = built({ a: "", web1: "" });
    const deployed = (await readDeployed(fs))!;
    const plan = planDeploy({ source: b.source, classScripts: b.classScripts, deployed, keep: 3 });
    expect((await conflicts(fs, plan, deployed)).found).toEqual(["by-mac/web1"]);
  });

  it("writes behind no link but a by-mac one: a record or journal that lists another folder (by-host/<host>) as netbuild's link does not open it", async () => {
    const root = tempDir();
    const elsewhere = tempDir();
    mkdirSync(path.join(root, "by-host"), { recursive: true });
    symlinkSync(elsewhere, path.join(root, "by-host/n"));
    const fs = localTargetFs(root);
    const plan = planOf("by-host/n/ipxe");
    expect(await refusal(checkReachable(fs, plan, recordOf(["by-host/a/ipxe"], ["by-host/n"])))).toBe(`${root}: by-host/n is a symlink, where netbuild needs a real folder; nothing was changed`);
    expect(await refusal(checkReachable(fs, plan, recordOf(["by-host/a/ipxe", `by-host/n>${elsewhere}`])))).toBe(`${root}: by-host/n is a symlink, where netbuild needs a real folder; nothing was changed`);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("writes a copy-mode by-mac/<mac>/ipxe behind its own by-mac link (recorded, or being written), and nothing else behind it", async () => {
    const root = tempDir();
    mkdirSync(path.join(root, "by-host/a"), { recursive: true });
    mkdirSync(path.join(root, "by-mac"));
    for (const m of ["m1", "m2", "m3"]) symlinkSync("../by-host/a", path.join(root, `by-mac/${m}`));
    const fs = localTargetFs(root);
    const record = recordOf(["by-mac/m1>../by-host/a", "by-host/a/ipxe"], ["by-mac/m2"]);
    const plan = planOf("by-mac/m1/ipxe", "by-mac/m2/ipxe");
    await checkReachable(fs, plan, record);
    expect(await conflicts(fs, plan, record)).toEqual({ found: [], absent: new Set() });
    expect(await refusal(checkReachable(fs, planOf("by-mac/m3/ipxe"), record))).toBe(`${root}: by-mac/m3 is a symlink, where netbuild needs a real folder; nothing was changed`);
    expect(await refusal(checkReachable(fs, planOf("by-mac/m1/other"), record))).toBe(`${root}: by-mac/m1 is a symlink, where netbuild needs a real folder; nothing was changed`);
    expect(await refusal(checkReachable(fs, planOf("by-mac/m1/ipxe"), recordOf(["by-mac/m1/ipxe"])))).toBe(`${root}: by-mac/m1 is a symlink, where netbuild needs a real folder; nothing was changed`);
  });

  it("names the planned paths that stand on the target without netbuild having written them, in order, and which planned paths are free", async () => {
    const root = tempDir();
    put(root, "by-host/z/ipxe");
    put(root, "by-class/c/k/kernel");
    mkdirSync(path.join(root, "by-host/y"), { recursive: true });
    put(root, "by-host/a/ipxe");
    put(root, "by-host/p/ipxe");
    put(root, "by-mac/q/ipxe");
    mkdirSync(path.join(root, "by-host/w/ipxe"), { recursive: true });
    put(root, "by-host/t/talos.yaml");
    put(root, "by-host/t/ipxe");
    const fs = localTargetFs(root);
    const record = recordOf(["by-host/a/ipxe", "by-mac/q/ipxe", "by-host/t/talos.yaml"], ["by-host/p/ipxe"]);
    const plan = planOf("by-host/z/ipxe", "by-host/y/ipxe", "by-host/x/ipxe", "by-host/w/ipxe", "by-host/t/ipxe", "by-host/a/ipxe", "by-host/p/ipxe", "by-mac/q>../by-host/a", "boot.ipxe", "^by-class/c/k/kernel", "^by-class/c/k/initrd");
    const result = await conflicts(fs, plan, record);
    // A folder where a file goes is as much in the way as a file; a script beside one netbuild recorded is still not its own.
    expect(result.found).toEqual(["by-class/c/k/kernel", "by-host/t/ipxe", "by-host/w/ipxe", "by-host/z/ipxe"]);
    expect([...result.absent].sort()).toEqual(["boot.ipxe", "by-class/c/k/initrd", "by-host/x/ipxe", "by-host/y/ipxe"]);
  });
});

describe("verifying a target against its record", () => {
  afterAll(cleanupTempDirs);

  it("finds what is missing, changed (content, link target, kind; an artifact by size or hash) and extra, in order, and hashes only artifacts of the recorded size", async () => {
    const root = tempDir();
    const put = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    };
    const file = (text: string) => ({ kind: "file" as const, sha256: sha(text) });
    const artifact = (text: string) => ({ kind: "artifact" as const, sha256: sha(text), size: Buffer.byteLength(text) });
    put("by-class/c/ipxe", "class script");
    put("by-class/c/k1/kernel", "kernel one");
    put("by-class/c/k1/initrd", "initrd tw0");
    put("by-class/c/k2/kernel", "a longer kernel");
    put("by-host/a/ipxe", "host a");
    put("by-host/b/ipxe", "host B");
    put("by-host/d/ipxe", "host d");
    put("by-host/e/ipxe", "host e");
    mkdirSync(path.join(root, "by-host/f/ipxe"), { recursive: true });
    mkdirSync(path.join(root, "by-mac"));
    symlinkSync("../by-host/a", path.join(root, "by-mac/m1"));
    symlinkSync("../by-host/x", path.join(root, "by-mac/m2"));
    put("by-mac/m3", "a file where a link was");
    put("by-host/a/notes.txt", "mine");
    put("by-host/zz/other", "mine too");
    put("by-host/.b.ipxe.netbuild-tmp", "a stopped deploy's");
    put("by-host/b/.ipxe.netbuild-tmp", "a stopped deploy's");
    put("boot.ipxe", "unrecorded");
    put("ipxe/undionly.kpxe", "someone's");
    const deployed: DeployedManifest = {
      ...emptyManifest(),
      entries: {
        "by-class/c/ipxe": file("class script"),
        "by-class/c/k1/kernel": artifact("kernel one"),
        "by-class/c/k1/initrd": artifact("initrd two"),
        "by-class/c/k2/kernel": artifact("kernel two"),
        "by-host/a/ipxe": file("host a"),
        "by-host/b/ipxe": file("host b"),
        "by-host/c/ipxe": file("host c"),
        "by-host/d/ipxe": { kind: "symlink", target: "elsewhere" },
        "by-host/f/ipxe": file("host f"),
        "by-mac/m1": { kind: "symlink", target: "../by-host/a" },
        "by-mac/m2": { kind: "symlink", target: "../by-host/b" },
        "by-mac/m3": { kind: "symlink", target: "../by-host/a" },
      },
      pending: ["by-host/b/ipxe"],
    };
    const hashed: [string, number][] = [];
    const drift = await verifyTarget(localTargetFs(root), deployed, (p, bytes) => hashed.push([p, bytes]));
    expect(drift).toEqual({
      missing: ["by-host/c/ipxe"],
      changed: ["by-class/c/k1/initrd", "by-class/c/k2/kernel", "by-host/b/ipxe", "by-host/d/ipxe", "by-host/f/ipxe", "by-mac/m2", "by-mac/m3"],
      // by-host/e/ipxe was never recorded; by-host/.b.ipxe.netbuild-tmp is no pending path's temporary name, by-host/b/.ipxe.netbuild-tmp is.
      extra: ["boot.ipxe", "by-host/.b.ipxe.netbuild-tmp", "by-host/a/notes.txt", "by-host/e/ipxe", "by-host/zz/other"],
      checked: 12,
      hashedBytes: 20,
    });
    expect(hashed.sort()).toEqual([["by-class/c/k1/initrd", 10], ["by-class/c/k1/kernel", 10]]);
    // ipxe/ is walked once netbuild has recorded files there: then a file it did not write is extra too.
    const withIpxe = { ...deployed, entries: { ...deployed.entries, "ipxe/snponly.efi": file("x") } };
    const again = await verifyTarget(localTargetFs(root), withIpxe);
    expect(again.extra).toContain("ipxe/undionly.kpxe");
    expect(again.missing).toEqual(["by-host/c/ipxe", "ipxe/snponly.efi"]);
  });
});

describe("artifacts a stopped deploy left are kept when whole, sent again otherwise", () => {
  afterAll(cleanupTempDirs);

  it("resumes a pending artifact of the right size and hash, and sends one of another size or content, or one not pending", async () => {
    const source = tempDir();
    const root = tempDir();
    const texts: Record<string, string> = { "by-class/c/k1/kernel": "kernel one", "by-class/c/k1/initrd": "initrd one", "by-class/c/k2/kernel": "kernel two", "by-class/c/k2/initrd": "initrd two" };
    for (const [rel, text] of Object.entries(texts)) {
      mkdirSync(path.dirname(path.join(source, rel)), { recursive: true });
      writeFileSync(path.join(source, rel), text);
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    }
    // On the target: k1/kernel whole (resumed), k1/initrd of the right size but other bytes, k2/kernel cut short, k2/initrd whole but not pending.
    writeFileSync(path.join(root, "by-class/c/k1/kernel"), "kernel one");
    writeFileSync(path.join(root, "by-class/c/k1/initrd"), "initrd 0ne");
    writeFileSync(path.join(root, "by-class/c/k2/kernel"), "kernel");
    writeFileSync(path.join(root, "by-class/c/k2/initrd"), "initrd two");
    const uploads = Object.entries(texts).map(([p, text]) => ({ path: p, size: text.length, sha256: sha(text) }));
    const manifest: DeployedManifest = { ...emptyManifest(), entries: Object.fromEntries(uploads.map((u) => [u.path, { kind: "artifact", size: u.size, sha256: u.sha256 }])) };
    const plan = { uploads, switches: [], deletions: [], classes: [], bytes: 40, unchanged: 0, manifest } as unknown as DeployPlan;
    const deployed: DeployedManifest = { ...emptyManifest(), pending: ["by-class/c/k1/initrd", "by-class/c/k1/kernel", "by-class/c/k2/kernel"] };
    const events: string[] = [];
    const progress: string[] = [];
    const fs = localTargetFs(root);
    // The last artifact exists although no record owns it: applyDeploy's caller refuses that (conflicts()); here it is replaced, as planned.
    const result = await applyDeploy(fs, source, plan, deployed, { onEvent: (e) => events.push(`${e.action} ${e.path} ${e.bytes}`), onProgress: (p, sent, total) => progress.push(`${p} ${sent}/${total}`) });
    expect(result).toEqual({ uploaded: 3, resumed: 1, switched: 0, removed: 0, bytes: 30, kept: [] });
    expect(events).toEqual(["resume by-class/c/k1/kernel 10", "upload by-class/c/k1/initrd 10", "upload by-class/c/k2/kernel 10", "upload by-class/c/k2/initrd 10"]);
    expect(progress.at(-1)).toBe("by-class/c/k2/initrd 10/10");
    for (const [rel, text] of Object.entries(texts)) expect(readFileSync(path.join(root, rel), "utf8"), rel).toBe(text);
    const recorded = (await readDeployed(fs))!;
    expect(recorded.entries).toEqual(manifest.entries);
    expect(recorded.pending).toEqual([]);
  });

  it("records a change of classes or of what is pending when nothing is to be written, and removes the temporary files of paths no longer pending", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    mkdirSync(path.join(root, "by-host/a"), { recursive: true });
    writeFileSync(path.join(root, "by-host/a/.ipxe.netbuild-tmp"), "a stopped deploy's");
    writeFileSync(path.join(root, "by-host/a/ipxe"), "host a");
    const entries: DeployedManifest["entries"] = { "by-host/a/ipxe": { kind: "file", sha256: sha("host a") } };
    const deployed: DeployedManifest = { ...emptyManifest(), entries, pending: ["by-host/a/ipxe"] };
    const noop = (manifest: DeployedManifest) => ({ uploads: [], switches: [], deletions: [], classes: [], bytes: 0, unchanged: 1, manifest }) as unknown as DeployPlan;
    // Nothing changes at all: nothing is written (not even the record).
    await applyDeploy(fs, "/nonexistent", noop(deployed), deployed);
    expect(existsSync(path.join(root, ".netbuild"))).toBe(false);
    // Only the pending list changes: the record says so, and the leftover of the path no longer pending goes.
    await applyDeploy(fs, "/nonexistent", noop({ ...deployed, pending: [] }), deployed);
    expect((await readDeployed(fs))!.pending).toEqual([]);
    expect(existsSync(path.join(root, "by-host/a/.ipxe.netbuild-tmp"))).toBe(false);
    expect(readFileSync(path.join(root, "by-host/a/ipxe"), "utf8")).toBe("host a");
    // Only the classes change (a rollback to a generation already there): recorded.
    const now = (await readDeployed(fs))!;
    const classes = { c: { current: "g1", generations: [] } } as unknown as DeployedManifest["classes"];
    await applyDeploy(fs, "/nonexistent", noop({ ...now, classes }), now);
    expect((await readDeployed(fs))!.classes).toEqual(classes);
  });
});

describe("who holds a target's lock, and when it may be broken", () => {
  afterAll(cleanupTempDirs);

  const other = { owner: "ops", host: "elsewhere", machine: "0".repeat(32), pid: 4242, command: "gc", started: "2026-11-30T00:00:00.000Z", token: "theirs" };
  /** A target whose lock is `text`, its heartbeat `ageS` seconds ago. */
  const lockedBy = (text: string, ageS = 0) => {
    const root = tempDir();
    mkdirSync(path.join(root, ".netbuild"));
    const file = path.join(root, ".netbuild/lock");
    writeFileSync(file, text);
    const t = new Date(Date.now() - ageS * 1000);
    utimesSync(file, t, t);
    return { root, file };
  };
  const refused = async (root: string, options: Parameters<typeof acquireLock>[2] = {}) => {
    const e = await acquireLock(localTargetFs(root), "deploy", options).then(
      async (held) => (await held.release(), undefined),
      (err: unknown) => err as { code?: string; message: string; hint?: string },
    );
    expect(e, "refused").toBeDefined();
    return e!;
  };

  it("says what changed while a deploy waited: its lock broken and taken, or its record changed by another deploy; nothing when neither", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    await deploy(fs, built({ a: "" }));
    const lock = await acquireLock(fs, "deploy", {});
    const deployed = (await readDeployed(fs))!;
    expect(await lock.stillHeld()).toBe(true);
    expect(await changedSince(fs, lock, deployed)).toBeUndefined();
    // Another deploy (a process of its own: a lock of this process is never broken) breaks the lock and takes the target.
    writeFileSync(path.join(root, ".netbuild/lock"), `${JSON.stringify(other)}\n`);
    expect(await lock.stillHeld()).toBe(false);
    expect(await changedSince(fs, lock, deployed)).toBe("its lock was broken (--break-lock) and may have been taken by another deploy");
    rmSync(path.join(root, ".netbuild/lock"));
    expect(await changedSince(fs, lock, deployed), "no lock at all").toBe("its lock was broken (--break-lock) and may have been taken by another deploy");
    await lock.release();

    const again = await acquireLock(fs, "deploy", {});
    const before = (await readDeployed(fs))!;
    await deploy(fs, built({ a: "", b: "" }));
    expect(await changedSince(fs, again, before)).toBe("another deploy changed its record");
    expect(await changedSince(fs, again, (await readDeployed(fs))!)).toBeUndefined();
    await again.release();
  });

  it("names a live lock's holder and heartbeat, and calls it probably stale once it has been quiet for 90 s", async () => {
    const text = `${JSON.stringify(other)}\n`;
    for (const [age, stale] of [[0, false], [60, false], [100, true]] as const) {
      const { root, file } = lockedBy(text, age);
      const e = await refused(root);
      expect(e.code).toBe("DEPLOY_LOCKED");
      expect(e.message).toBe(`${root} is locked by \`netbuild gc\` by ops on elsewhere (pid 4242), started 2026-11-30T00:00:00.000Z, last heartbeat ${age} s ago`);
      expect(e.hint).toBe(stale ? "it has not shown a heartbeat for a while, so it is probably stale: if that deploy is really gone, run again with --break-lock (this deploy then finishes its work)" : "wait for it (--wait), or, if that deploy is gone, --break-lock");
      expect(readFileSync(file, "utf8")).toBe(text);
    }
  });

  it("breaks another machine's lock only with --break-lock, saying whose, and then holds it", async () => {
    const { root, file } = lockedBy(JSON.stringify(other), 5);
    const messages: string[] = [];
    const held = await acquireLock(localTargetFs(root), "deploy", { breakLock: true, onWait: (m) => messages.push(m) });
    expect(messages).toEqual(["breaking the lock of `netbuild gc` by ops on elsewhere (pid 4242), started 2026-11-30T00:00:00.000Z, last heartbeat 5 s ago"]);
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ pid: process.pid, command: "deploy", host: os.hostname() });
    expect(readdirSync(path.join(root, ".netbuild"))).toEqual(["lock"]);
    await held.release();
    expect(existsSync(file)).toBe(false);
  });

  it("never breaks a lock it cannot read (not JSON, no token, over 4 KiB) by itself, however quiet: once quiet it says --break-lock, which breaks it", async () => {
    for (const text of ["", "{not json", JSON.stringify({ ...other, token: 7 }), JSON.stringify({ ...other, owner: "x".repeat(4096) })]) {
      for (const [age, hint] of [[10, "wait for it (--wait)"], [100, "probably stale"]] as const) {
        const { root, file } = lockedBy(text, age);
        const e = await refused(root);
        expect(e.message).toBe(`${root} is locked by a lock file netbuild cannot read, last heartbeat ${age} s ago`);
        expect(e.hint).toContain(hint);
        expect(readFileSync(file, "utf8")).toBe(text);
      }
      const { root } = lockedBy(text, 100);
      const messages: string[] = [];
      const held = await acquireLock(localTargetFs(root), "deploy", { breakLock: true, onWait: (m) => messages.push(m) });
      expect(messages).toEqual(["breaking the lock of a lock file netbuild cannot read, last heartbeat 100 s ago"]);
      expect(readdirSync(path.join(root, ".netbuild"))).toEqual(["lock"]);
      await held.release();
    }
    // A lock just under the limit is read.
    const big = JSON.stringify({ ...other, owner: "x".repeat(4096 - JSON.stringify({ ...other, owner: "" }).length) });
    expect(big.length).toBe(4096);
    expect((await refused(lockedBy(big, 10).root)).message).toContain("by xxx");
  });

  it("refuses a lock that is not a regular file (a link, a folder), reading nothing through it", async () => {
    for (const make of [(f: string) => symlinkSync("/etc/hostname", f), (f: string) => mkdirSync(f)]) {
      const root = tempDir();
      mkdirSync(path.join(root, ".netbuild"));
      make(path.join(root, ".netbuild/lock"));
      const e = await refused(root);
      expect(e.code).toBe("TARGET_CONFLICT");
      expect(e.message).toMatch(new RegExp(`^${root}: \\.netbuild/lock is a (symlink|folder), where netbuild keeps its lock \\(a regular file\\); nothing was changed$`));
    }
  });

  it("with --wait, says once whom it waits for, and takes the lock once it is released", async () => {
    const root = tempDir();
    const first = await acquireLock(localTargetFs(root), "gc", {});
    const messages: string[] = [];
    const second = acquireLock(localTargetFs(root), "deploy", { wait: true, onWait: (m) => messages.push(m) });
    await new Promise((r) => setTimeout(r, 2500));
    await first.release();
    const held = await second;
    expect(messages).toEqual([expect.stringMatching(new RegExp(`^waiting for the lock held by \`netbuild gc\` by \\S+ on ${os.hostname()} \\(pid ${process.pid}\\), started \\S+, last heartbeat \\d s ago$`))]);
    expect(JSON.parse(readFileSync(path.join(root, ".netbuild/lock"), "utf8"))).toMatchObject({ command: "deploy" });
    await held.release();
  });

  it("a held lock shows a heartbeat every 10 s (its mtime set to now) until it is released, whether or not a beat fails", async () => {
    // Fake interval timers only (the one thing faked: waiting 10 s a beat); the file operations are real.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const root = tempDir();
      const touched: string[] = [];
      let failing = false;
      const base = localTargetFs(root);
      const fs: TargetFs = { ...base, touch: (rel) => (touched.push(rel), failing ? Promise.reject(new Error("connection lost")) : base.touch(rel)) };
      const held = await acquireLock(fs, "deploy", {});
      const file = path.join(root, ".netbuild/lock");
      const past = new Date(Date.now() - 120_000);
      utimesSync(file, past, past);
      vi.advanceTimersByTime(9_999);
      expect(touched).toEqual([]);
      vi.advanceTimersByTime(1);
      await vi.waitFor(() => expect(Date.now() - statSync(file).mtimeMs).toBeLessThan(10_000));
      expect(touched).toEqual([".netbuild/lock"]);
      // A beat that fails (a dropped connection) is no crash: the next one comes all the same.
      failing = true;
      vi.advanceTimersByTime(10_000);
      failing = false;
      vi.advanceTimersByTime(10_000);
      expect(touched).toHaveLength(3);
      await held.release();
      vi.advanceTimersByTime(60_000);
      expect(touched).toHaveLength(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it("reads the machine id from the first file that holds one (32 hex digits)", () => {
    const dir = tempDir();
    const id = "0123456789abcdef0123456789abcdef";
    const file = (name: string, text: string) => (writeFileSync(path.join(dir, name), text), path.join(dir, name));
    const bad = [file("upper", id.toUpperCase()), file("short", id.slice(1)), file("long", `${id}0`), file("spaced", `x${id}`), file("empty", "")];
    expect(machineIdFrom([...bad, path.join(dir, "none"), file("good", `${id}\n`), file("other", "f".repeat(32))])).toBe(id);
    expect(machineIdFrom([file("first", `  ${"e".repeat(32)}  `), file("second", id)])).toBe("e".repeat(32));
    expect(machineIdFrom([...bad, path.join(dir, "none")])).toBeUndefined();
  });

  it.skipIf(machineIdFrom(["/etc/machine-id", "/var/lib/dbus/machine-id"]) === undefined)("judges a lock of this machine by its pid: live while that process runs, and only with this host name", async () => {
    const here = machineIdFrom(["/etc/machine-id", "/var/lib/dbus/machine-id"])!;
    // pid 1 always runs; 999,999 is past any pid here. Another host name with this machine id: a cloned machine.
    for (const lock of [{ ...other, host: os.hostname(), machine: here, pid: 1 }, { ...other, host: "a-clone", machine: here, pid: 999_999 }]) {
      const { root, file } = lockedBy(JSON.stringify(lock), 5);
      expect((await refused(root)).code).toBe("DEPLOY_LOCKED");
      expect(readFileSync(file, "utf8")).toBe(JSON.stringify(lock));
    }
  });

  it("releases only its own lock: one someone took after breaking it stays", async () => {
    const root = tempDir();
    const held = await acquireLock(localTargetFs(root), "deploy", {});
    const theirs = JSON.stringify(other);
    writeFileSync(path.join(root, ".netbuild/lock"), theirs);
    await held.release();
    expect(readFileSync(path.join(root, ".netbuild/lock"), "utf8")).toBe(theirs);
  });
});

describe("a kept generation's script is what rollback writes back", () => {
  afterAll(cleanupTempDirs);

  it("refuses a record (or its delta) whose kept script does not match its sha256, or whose id is not that sha256's start, naming the class and generation", async () => {
    const root = tempDir();
    const fs = localTargetFs(root);
    const b = built({ a: "" });
    await deploy(fs, b);
    const file = path.join(root, ".netbuild/deployed.json");
    const good = readFileSync(file, "utf8");
    const record = JSON.parse(good) as { classes: { c: { generations: { id: string; script: string; sha256: string }[] } } };
    const id = record.classes.c.generations[0]!.id;
    const cases: [string, (g: { id: string; script: string; sha256: string }) => void][] = [
      ["edited script", (g) => void (g.script += "kernel evil\n")],
      ["id of another script", (g) => void (g.id = g.id.replace(/^./, (c) => (c === "0" ? "1" : "0")))],
    ];
    for (const [what, change] of cases) {
      const bad = JSON.parse(good) as typeof record;
      change(bad.classes.c.generations[0]!);
      writeFileSync(file, JSON.stringify(bad));
      const e = await readDeployed(localTargetFs(root)).then(() => undefined, (err: unknown) => err as { code: string; message: string; hint: string });
      expect(e, what).toMatchObject({ code: "TARGET_NOT_A_TREE" });
      expect(e!.message, what).toBe(`${root}/.netbuild/deployed.json is not a record netbuild can trust, so nothing was changed: classes.c.generations: the script of ${bad.classes.c.generations[0]!.id} does not match its sha256`);
      expect(e!.hint).toBe("it was changed by hand or is damaged: restore it (a copy of it from a backup), or deploy to an empty folder");
    }
    writeFileSync(file, good);
    expect((await readDeployed(localTargetFs(root)))!.classes["c"]!.current).toBe(id);
  });
});

describe("what goes is removed only through real folders", () => {
  afterAll(cleanupTempDirs);

  it("keeps (recorded, and says so) a path to remove that lies behind a link made by hand, and removes the others with their empty folders", async () => {
    const root = tempDir();
    const disk = tempDir();
    const fs = localTargetFs(root);
    mkdirSync(path.join(disk, "k1"), { recursive: true });
    writeFileSync(path.join(disk, "k1/kernel"), "old kernel");
    mkdirSync(path.join(root, "by-class"));
    symlinkSync(disk, path.join(root, "by-class/moved"));
    mkdirSync(path.join(root, "by-host/gone"), { recursive: true });
    writeFileSync(path.join(root, "by-host/gone/ipxe"), "gone");
    writeFileSync(path.join(root, "by-host/gone/talos.yaml"), "gone");
    const kernel = { kind: "artifact" as const, size: 10, sha256: sha("old kernel") };
    const deployed: DeployedManifest = {
      ...emptyManifest(),
      entries: { "by-class/moved/k1/kernel": kernel, "by-host/gone/ipxe": { kind: "file", sha256: sha("gone") }, "by-host/gone/talos.yaml": { kind: "file", sha256: sha("gone") } },
    };
    const manifest: DeployedManifest = { ...emptyManifest() };
    const plan = { uploads: [], switches: [], deletions: ["by-host/gone/talos.yaml", "by-host/gone/ipxe", "by-class/moved/k1/kernel", "by-host/never/ipxe"], classes: [], bytes: 0, unchanged: 0, manifest } as unknown as DeployPlan;
    const events: string[] = [];
    const result = await applyDeploy(fs, "/nonexistent", plan, deployed, { onEvent: (e) => events.push(`${e.action} ${e.path}`) });
    expect(result).toEqual({ uploaded: 0, resumed: 0, switched: 0, removed: 3, bytes: 0, kept: ["by-class/moved/k1/kernel"] });
    expect(events).toEqual(["remove by-host/gone/talos.yaml", "remove by-host/gone/ipxe", "remove by-class/moved/k1/kernel", "remove by-host/never/ipxe"]);
    expect(readFileSync(path.join(disk, "k1/kernel"), "utf8")).toBe("old kernel");
    expect(existsSync(path.join(root, "by-host/gone"))).toBe(false);
    expect(existsSync(path.join(root, "by-host"))).toBe(true);
    const recorded = (await readDeployed(fs))!;
    expect(recorded.entries).toEqual({ "by-class/moved/k1/kernel": kernel });
    expect(recorded.pending).toEqual([]);
  });
});

describe("the temporary files of stopped deploys", () => {
  afterAll(cleanupTempDirs);

  it("removes a pending path's temporary file and a by-mac entry's folders set aside, counting them, never through a link nor a folder so named", async () => {
    const root = tempDir();
    const elsewhere = tempDir();
    const put = (rel: string, text = "x") => {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    };
    put("by-host/a/.ipxe.netbuild-tmp");
    mkdirSync(path.join(root, "by-host/b/.ipxe.netbuild-tmp"), { recursive: true });
    put("by-mac/.m1.netbuild-old/ipxe");
    put("by-mac/.m1.netbuild-new/ipxe");
    put("by-mac/.m2.netbuild-old/ipxe");
    put("by-mac/.m2.netbuild-old/notes.txt", "someone's");
    put("by-mac/m3/.ipxe.netbuild-tmp");
    // A links → copy switch stopped with m4's folder complete aside; m4 is a link again (that switch undone).
    put("by-mac/.m4.netbuild-new/ipxe", "a copy of the script");
    put("by-mac/.m4.netbuild-new/.ipxe.netbuild-tmp", "half of it");
    symlinkSync("../by-host/a", path.join(root, "by-mac/m4"));
    mkdirSync(path.join(elsewhere, "c"));
    writeFileSync(path.join(elsewhere, "c/.ipxe.netbuild-tmp"), "not ours to reach");
    symlinkSync(elsewhere, path.join(root, "by-class"));
    const n = await removeTemps(localTargetFs(root), ["by-host/a/ipxe", "by-host/b/ipxe", "by-mac/m1", "by-mac/m2", "by-mac/m3/ipxe", "by-mac/m4/ipxe", "by-class/c/ipxe", "by-host/z/ipxe"]);
    // a's file, m1's two folders, m3's file, m4's folder; b's is a folder, m2's holds someone's file, c's lies behind a link.
    expect(n).toBe(5);
    expect(readlinkSync(path.join(root, "by-mac/m4"))).toBe("../by-host/a");
    expect(existsSync(path.join(root, "by-host/a/.ipxe.netbuild-tmp"))).toBe(false);
    expect(existsSync(path.join(root, "by-host/b/.ipxe.netbuild-tmp"))).toBe(true);
    expect(readdirSync(path.join(root, "by-mac")).sort()).toEqual([".m2.netbuild-old", "m3", "m4"]);
    expect(readdirSync(path.join(root, "by-mac/.m2.netbuild-old"))).toEqual(["notes.txt"]);
    expect(readdirSync(path.join(root, "by-mac/m3"))).toEqual([]);
    expect(readFileSync(path.join(elsewhere, "c/.ipxe.netbuild-tmp"), "utf8")).toBe("not ours to reach");
  });
});

describe("what a deploy writes in place, and what it replaces by a rename", () => {
  afterAll(cleanupTempDirs);

  /** The target, recording each write and link it is asked for, and whether in place (direct). */
  const recording = (fs: TargetFs, calls: string[]): TargetFs => ({
    ...fs,
    writeFile: (rel, content, o) => (calls.push(`write ${rel}${o?.direct ? " in place" : ""}`), fs.writeFile(rel, content, o)),
    symlink: (target, rel, o) => (calls.push(`link ${rel}${o?.direct ? " in place" : ""}`), fs.symlink(target, rel, o)),
  });
  const switches = (calls: string[]) => calls.filter((c) => !c.includes(".netbuild/")).sort();

  it("writes in place only what nothing reaches yet (a new class or host script, a new by-mac link), never boot.ipxe nor a by-mac copy, and renames over what is there", async () => {
    const root = tempDir();
    const calls: string[] = [];
    const fs = recording(localTargetFs(root), calls);
    await deploy(fs, built({ a: "", b: "" }));
    expect(switches(calls)).toEqual(["link by-mac/a in place", "link by-mac/b in place", "write boot.ipxe", "write by-class/c/ipxe in place", "write by-host/a/ipxe in place", "write by-host/b/ipxe in place"]);
    calls.length = 0;
    await deploy(fs, built({ a: "console=ttyS1", b: "", c: "" }));
    expect(switches(calls)).toEqual(["link by-mac/c in place", "write by-host/a/ipxe", "write by-host/c/ipxe in place"]);
    // Links → copy mode: each by-mac folder is made whole aside (in place there), then renamed over its link.
    calls.length = 0;
    await deploy(fs, builtCopy({ a: "console=ttyS1", b: "", c: "", d: "" }));
    expect(switches(calls)).toEqual(["write by-host/d/ipxe in place", "write by-mac/.a.netbuild-new/ipxe in place", "write by-mac/.b.netbuild-new/ipxe in place", "write by-mac/.c.netbuild-new/ipxe in place", "write by-mac/d/ipxe"]);
    for (const h of ["a", "b", "c", "d"]) expect(lstatSync(path.join(root, `by-mac/${h}`)).isDirectory(), h).toBe(true);
    // Copy → links: each link made aside (in place there), renamed over the folder.
    calls.length = 0;
    await deploy(fs, built({ a: "console=ttyS1", b: "", c: "", d: "" }));
    expect(switches(calls)).toEqual(["link by-mac/.a.netbuild-tmp in place", "link by-mac/.b.netbuild-tmp in place", "link by-mac/.c.netbuild-tmp in place", "link by-mac/.d.netbuild-tmp in place"]);
    for (const h of ["a", "b", "c", "d"]) expect(lstatSync(path.join(root, `by-mac/${h}`)).isSymbolicLink(), h).toBe(true);
    expect(readdirSync(path.join(root, "by-mac")).sort()).toEqual(["a", "b", "c", "d"]);
  });
});
