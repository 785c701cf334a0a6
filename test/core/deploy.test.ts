// The pure parts of deploy: reading target URLs, and planning what a deploy, a rollback and a gc
// do from what is built and what the target's manifest says.
import { describe, expect, it } from "vitest";
import { emptyManifest, generationId, isNoop, planDeploy, planGc, planRollback, sameEntry, type DeployedManifest, type SourceTree } from "../../src/core/deploy.ts";
import { parseTarget } from "../../src/core/target.ts";

describe("target URLs", () => {
  it.each([
    ["sftp://admin@boot.homelab.tel:2222/srv/http/nixos", { kind: "sftp", user: "admin", host: "boot.homelab.tel", port: 2222, path: "/srv/http/nixos" }],
    ["sftp://boot/srv/tftp/", { kind: "sftp", user: undefined, host: "boot", port: undefined, path: "/srv/tftp" }],
    ["admin@boot.homelab.tel:/usb1-part1/http/nixos", { kind: "sftp", user: "admin", host: "boot.homelab.tel", port: undefined, path: "/usb1-part1/http/nixos" }],
    ["boot:netboot", { kind: "sftp", user: undefined, host: "boot", port: undefined, path: "netboot" }],
    ["sftp://[::1]:22/srv", { kind: "sftp", user: undefined, host: "::1", port: 22, path: "/srv" }],
    ["served", { kind: "local", path: "served" }],
    ["/srv/http/netboot", { kind: "local", path: "/srv/http/netboot" }],
  ])("reads %s", (spec, want) => {
    expect(parseTarget(spec)).toEqual({ ok: true, value: want });
  });

  it.each([
    ["sftp://boot/srv/../etc", "`..`"],
    ["boot:/", "root of the file system"],
    ["https://boot/tree", "only sftp:// and local folders"],
    ["sftp://boot:99999/srv", "out of range"],
    ["sftp://bad host/srv", "is not a host name"],
    ["a;b@boot:/srv", "is not a user name"],
  ])("refuses %s", (spec, why) => {
    const r = parseTarget(spec);
    expect(r.ok).toBe(false);
    expect((r as { message: string }).message).toContain(why);
  });
});

const K1 = "by-class/c/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/kernel";
const I1 = "by-class/c/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/initrd";
const I2 = "by-class/c/cccccccccccccccccccccccccccccccc/initrd";

function built(initrd: string, script: string, hosts: Record<string, string>): { source: SourceTree; classScripts: Map<string, string> } {
  const entries: SourceTree["entries"] = {
    [K1]: { kind: "artifact", size: 10, sha256: "k1" },
    [initrd]: { kind: "artifact", size: 20, sha256: `sha-${initrd}` },
    "by-class/c/ipxe": { kind: "file", sha256: script.padEnd(64, "0") },
    "boot.ipxe": { kind: "file", sha256: "boot" },
  };
  for (const [host, sha] of Object.entries(hosts)) {
    entries[`by-host/${host}/ipxe`] = { kind: "file", sha256: sha };
    entries[`by-mac/${host}`] = { kind: "symlink", target: `../by-host/${host}` };
  }
  return { source: { classes: { c: { kernel: { path: K1 }, initrd: { path: initrd } } }, entries }, classScripts: new Map([["by-class/c/ipxe", `#!ipxe ${script}`]]) };
}

function deployOnce(deployed: DeployedManifest, b: ReturnType<typeof built>, keep = 3) {
  return planDeploy({ ...b, deployed, keep });
}

describe("planning a deploy", () => {
  it("sends the iPXE binaries after boot.ipxe, replaces one that changed, removes one the tree dropped, and keeps the target's when the tree has none", () => {
    const withIpxe = (b: ReturnType<typeof built>, files: Record<string, string>) => {
      for (const [name, sha] of Object.entries(files)) b.source.entries[`ipxe/${name}`] = { kind: "file", sha256: sha };
      return b;
    };
    const first = deployOnce(emptyManifest(), withIpxe(built(I1, "s1", {}), { "undionly.kpxe": "u1", "snponly.efi": "s1" }));
    expect(first.switches.map((s) => [s.path, s.layer])).toEqual([["by-class/c/ipxe", "class"], ["boot.ipxe", "entry"], ["ipxe/snponly.efi", "entry"], ["ipxe/undionly.kpxe", "entry"]]);
    // Not text the plan holds: read from out/ (as bytes) when written.
    expect(first.switches.filter((s) => s.path.startsWith("ipxe/")).map((s) => s.kind === "file" && s.content)).toEqual([undefined, undefined]);
    // A new undionly.kpxe, and ipxe.efi instead of snponly.efi.
    const next = deployOnce(first.manifest, withIpxe(built(I1, "s1", {}), { "undionly.kpxe": "u2", "ipxe.efi": "e1" }));
    expect(next.switches.map((s) => s.path)).toEqual(["ipxe/ipxe.efi", "ipxe/undionly.kpxe"]);
    expect(next.deletions).toEqual(["ipxe/snponly.efi"]);
    // A tree built where there were no binaries to copy: the target keeps serving its own.
    const none = deployOnce(next.manifest, built(I1, "s1", {}));
    expect([none.switches, none.deletions]).toEqual([[], []]);
    expect(Object.keys(none.manifest.entries).filter((p) => p.startsWith("ipxe/"))).toEqual(["ipxe/ipxe.efi", "ipxe/undionly.kpxe"]);
    expect(none.manifest.entries["ipxe/undionly.kpxe"]).toEqual({ kind: "file", sha256: "u2" });
    // One a deploy that did not finish was creating (pending, not recorded yet): a tree without binaries neither removes nor writes it; it stays pending.
    const half = { ...none.manifest, pending: ["ipxe/snponly.efi"] };
    const after = deployOnce(half, built(I1, "s1", {}));
    expect([after.deletions, after.switches, after.manifest.pending]).toEqual([[], [], ["ipxe/snponly.efi"]]);
    // A tree with binaries that does not hold that one removes it, as anything pending it does not want.
    const withThem = deployOnce(half, withIpxe(built(I1, "s1", {}), { "undionly.kpxe": "u2", "ipxe.efi": "e1" }));
    expect([withThem.deletions, withThem.manifest.pending]).toEqual([["ipxe/snponly.efi"], []]);
  });

  it("uploads artifacts first and switches scripts class → host → mac → boot.ipxe on a first deploy", () => {
    const plan = deployOnce(emptyManifest(), built(I1, "s1", { aleph: "a1" }));
    expect(plan.uploads.map((u) => u.path)).toEqual([K1, I1]);
    expect(plan.switches.map((s) => s.path)).toEqual(["by-class/c/ipxe", "by-host/aleph/ipxe", "by-mac/aleph", "boot.ipxe"]);
    expect(plan.bytes).toBe(30);
    expect(plan.classes).toEqual([{ name: "c", from: undefined, to: "s10000000000", alreadyThere: false }]);
  });

  it("plans nothing when the target already holds the build", () => {
    const b = built(I1, "s1", { aleph: "a1" });
    const plan = deployOnce(deployOnce(emptyManifest(), b).manifest, b);
    expect([plan.uploads, plan.switches, plan.deletions]).toEqual([[], [], []]);
    expect(plan.unchanged).toBe(6);
  });

  it("switches only the changed host's script", () => {
    const first = deployOnce(emptyManifest(), built(I1, "s1", { aleph: "a1", bet: "b1" })).manifest;
    const plan = deployOnce(first, built(I1, "s1", { aleph: "a2", bet: "b1" }));
    expect(plan.uploads).toEqual([]);
    expect(plan.switches.map((s) => s.path)).toEqual(["by-host/aleph/ipxe"]);
  });

  it("removes a removed host's entries, by-mac before by-host", () => {
    const first = deployOnce(emptyManifest(), built(I1, "s1", { aleph: "a1", bet: "b1" })).manifest;
    const plan = deployOnce(first, built(I1, "s1", { bet: "b1" }));
    expect(plan.deletions).toEqual(["by-mac/aleph", "by-host/aleph/ipxe"]);
  });

  it("keeps `keep` generations of a rebuilt class and drops the artifacts of older ones", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {}), 2).manifest;
    m = deployOnce(m, built(I2, "s2", {}), 2).manifest;
    expect(m.classes["c"]!.generations.map((g) => g.id)).toEqual(["s20000000000", "s10000000000"]);
    expect(Object.keys(m.entries)).toEqual(expect.arrayContaining([I1, I2]));
    const third = deployOnce(m, built("by-class/c/dddddddddddddddddddddddddddddddd/initrd", "s3", {}), 2);
    expect(third.deletions).toEqual([I1]);
  });

  // keep is at least 2 whatever the caller passes (the site schema and `gc --keep` refuse 1; the
  // planner does not rely on them): the generation switched away from keeps its files for machines
  // that were fetching them mid-boot.
  it("keeps at least 2 generations even when asked to keep 1", () => {
    const m = deployOnce(emptyManifest(), built(I1, "s1", {}), 1).manifest;
    const next = deployOnce(m, built(I2, "s2", {}), 1);
    expect(next.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual(["s20000000000", "s10000000000"]);
    expect(next.deletions).toEqual([]);
    expect(Object.keys(next.manifest.entries)).toEqual(expect.arrayContaining([I1, I2]));
  });

  it("rolls back by rewriting the class script only, and goes forward again only when asked", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {})).manifest;
    m = deployOnce(m, built(I2, "s2", {})).manifest;
    const { plan, changes } = planRollback(m, [], undefined);
    expect(changes).toEqual([{ name: "c", from: "s20000000000", to: "s10000000000", direction: "back" }]);
    expect(plan.uploads).toEqual([]);
    expect(plan.switches).toEqual([{ kind: "file", layer: "class", path: "by-class/c/ipxe", sha256: "s1".padEnd(64, "0"), content: "#!ipxe s1" }]);
    // Going forward again is explicit; after it, the same build deploys as a no-op.
    const forward = planRollback(plan.manifest, ["c"], "s2");
    expect(forward.changes).toEqual([{ name: "c", from: "s10000000000", to: "s20000000000", direction: "forward" }]);
    expect(forward.plan.manifest.classes["c"]!.rolledBackFrom).toBeUndefined();
    const after = deployOnce(forward.plan.manifest, built(I2, "s2", {}));
    expect([after.uploads, after.switches, after.held]).toEqual([[], [], []]);
    expect(planRollback(deployOnce(emptyManifest(), built(I1, "s1", {})).manifest, [], undefined).problems[0]).toContain("no generation older");
  });

  it("rewrites paths verify found drifted even when the manifest says they are there", () => {
    const b = built(I1, "s1", { aleph: "a1" });
    const plan = planDeploy({ ...b, deployed: deployOnce(emptyManifest(), b).manifest, keep: 3, drifted: new Set([I1, "by-host/aleph/ipxe"]) });
    expect(plan.uploads.map((u) => u.path)).toEqual([I1]);
    expect(plan.switches.map((s) => s.path)).toEqual(["by-host/aleph/ipxe"]);
  });

  it("gc removes a removed class's artifacts and generations beyond keep, never unrecorded paths", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {})).manifest;
    m = deployOnce(m, built(I2, "s2", {})).manifest;
    m = deployOnce(m, built("by-class/c/dddddddddddddddddddddddddddddddd/initrd", "s3", {})).manifest;
    expect(planGc(m, 2).plan.deletions).toEqual([I1]);
    expect(planGc(m, 3).plan.deletions).toEqual([]);
    // Never fewer than 2: the generation served before the current one stays.
    expect(planGc(m, 1).plan.deletions).toEqual([I1]);
    // The class left the inventory: deploy removed its script, gc its artifacts.
    const gone = planDeploy({ source: { classes: {}, entries: { "boot.ipxe": { kind: "file", sha256: "boot" } } }, classScripts: new Map(), deployed: m, keep: 3 });
    expect(gone.deletions).toEqual(["by-class/c/ipxe"]);
    expect(planGc(gone.manifest, 3).plan.deletions.sort()).toEqual([I1, I2, K1, "by-class/c/dddddddddddddddddddddddddddddddd/initrd"].sort());
  });

  it("gc finishes what a stopped gc was removing (pending, no longer recorded, referenced by no kept generation), never what a stopped deploy may be serving", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {})).manifest;
    m = deployOnce(m, built(I2, "s2", {})).manifest;
    const D = "by-class/c/dddddddddddddddddddddddddddddddd/initrd";
    m = deployOnce(m, built(D, "s3", {})).manifest;
    const first = planGc(m, 2);
    expect([first.plan.deletions, first.leftovers]).toEqual([[I1], []]);
    // That gc stopped after recording (I1 no longer in the record), before removing I1: pending.
    const stopped: DeployedManifest = { ...first.plan.manifest, pending: [I1] };
    const again = planGc(stopped, 2);
    expect([again.plan.deletions, again.leftovers, again.plan.manifest.pending]).toEqual([[I1], [I1], []]);
    // Of any class, by its name in the path (one that left the inventory too).
    const W = "by-class/web-01/ffffffffffffffffffffffffffffffff/initrd";
    expect(planGc({ ...stopped, pending: [I1, W] }, 2).leftovers).toEqual([I1, W]);
    // A deploy stopped with the class script pending may already serve a pending artifact: left to the next deploy.
    const deploying: DeployedManifest = { ...first.plan.manifest, pending: ["by-class/c/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee/initrd", "by-class/c/ipxe"] };
    expect([planGc(deploying, 2).plan.deletions, planGc(deploying, 2).plan.manifest.pending]).toEqual([[], deploying.pending]);
    // A rollback or deploy stopped while switching the class script may serve any recorded generation: gc keeps them all.
    const switching: DeployedManifest = { ...m, pending: ["by-class/c/ipxe"] };
    expect([planGc(switching, 2).plan.deletions, planGc(switching, 2).plan.manifest.classes["c"]]).toEqual([[], m.classes["c"]]);
    // Or a class script it was removing (the class left the inventory): its generations stay too.
    const { ["by-class/c/ipxe"]: _script, ...withoutScript } = m.entries;
    expect(planGc({ ...m, entries: withoutScript, pending: ["by-class/c/ipxe"] }, 2).plan.deletions).toEqual([]);
    // Pending but recorded, or referenced by a kept generation, or not an artifact: not a leftover.
    const kept: DeployedManifest = { ...m, pending: [D, "by-host/h/ipxe", "by-class/c/ipxe.netbuild-tmp"] };
    expect([planGc(kept, 3).leftovers, planGc(kept, 3).plan.deletions]).toEqual([[], []]);
    // A record (edited, or another tool's) may list deeper paths as pending: only an artifact's own
    // path, by-class/<class>/<generation>/<file>, is a leftover; by-class/ inside another path, or below a file, is not.
    const deep: DeployedManifest = { ...stopped, pending: [I1, "by-host/h/by-class/c/gggggggggggggggggggggggggggggggg/kernel", `${I2}/x`] };
    expect([planGc(deep, 2).leftovers, planGc(deep, 2).plan.deletions]).toEqual([[I1], [I1]]);
  });

  it("drops no generation of a class whose script a stopped deploy or rollback was switching (any of them may be served); the next deploy keeps `keep` again", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {})).manifest;
    m = deployOnce(m, built(I2, "s2", {})).manifest;
    const D = "by-class/c/dddddddddddddddddddddddddddddddd/initrd";
    const E = "by-class/c/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee/initrd";
    m = deployOnce(m, built(D, "s3", {})).manifest;
    const stopped: DeployedManifest = { ...m, pending: ["by-class/c/ipxe"] };
    const plan = planDeploy({ ...built(E, "s4", {}), deployed: stopped, keep: 2 });
    expect(plan.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual(["s40000000000", "s30000000000", "s20000000000", "s10000000000"]);
    expect(plan.deletions).toEqual([]);
    // Nothing pending: the same deploy keeps 2, and the other generations' initrds go.
    const clean = planDeploy({ ...built(E, "s4", {}), deployed: m, keep: 2 });
    expect(clean.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual(["s40000000000", "s30000000000"]);
    expect(clean.deletions.sort()).toEqual([I1, I2].sort());
    expect(planDeploy({ ...built(E, "s4", {}), deployed: plan.manifest, keep: 2 }).manifest.classes["c"]!.generations).toHaveLength(2);
  });

  it("keeps the generation served before the current one even when it was rolled back to, and holds a rollback against the same build", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {}), 2).manifest;
    m = deployOnce(m, built(I2, "s2", {}), 2).manifest;
    m = planRollback(m, [], undefined).plan.manifest; // serving s1 again
    // The same build (s2) deployed again does not undo the rollback.
    const again = deployOnce(m, built(I2, "s2", {}), 2);
    expect(again.held).toEqual([{ name: "c", current: "s10000000000", built: "s20000000000" }]);
    expect(again.switches).toEqual([]);
    // A new build goes out, and s1 (served until now) stays as the previous generation.
    const next = deployOnce(m, built("by-class/c/dddddddddddddddddddddddddddddddd/initrd", "s3", {}), 2);
    expect(next.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual(["s30000000000", "s10000000000"]);
    expect(next.deletions).toEqual([I2]);
  });

  it("rewrites every path a deploy that did not finish was creating, and removes the ones no longer wanted", () => {
    const b = built(I1, "s1", { aleph: "a1" });
    const done = deployOnce(emptyManifest(), b).manifest;
    // A deploy that switched by-host/aleph and created by-mac/bet, then died.
    const crashed: DeployedManifest = { ...done, pending: ["by-host/aleph/ipxe", "by-mac/bet", "by-host/bet/ipxe"] };
    const plan = deployOnce(crashed, b);
    expect(plan.switches.map((s) => s.path)).toEqual(["by-host/aleph/ipxe"]);
    expect(plan.deletions).toEqual(["by-mac/bet", "by-host/bet/ipxe"]);
    expect(plan.manifest.pending).toEqual([]);
  });
});

// Several classes, each with its own kernel and initrd, and hosts: what a machine has built.
function builtClasses(classes: Record<string, { script: string; kernel?: number; initrd?: number }>, hosts: Record<string, string> = {}): { source: SourceTree; classScripts: Map<string, string> } {
  const entries: SourceTree["entries"] = { "boot.ipxe": { kind: "file", sha256: "boot" } };
  const srcClasses: SourceTree["classes"] = {};
  const classScripts = new Map<string, string>();
  for (const [name, c] of Object.entries(classes)) {
    const k = `by-class/${name}/${c.script.padEnd(32, "k")}/kernel`;
    const i = `by-class/${name}/${c.script.padEnd(32, "i")}/initrd`;
    entries[k] = { kind: "artifact", size: c.kernel ?? 10, sha256: `sha-${k}` };
    entries[i] = { kind: "artifact", size: c.initrd ?? 20, sha256: `sha-${i}` };
    entries[`by-class/${name}/ipxe`] = { kind: "file", sha256: c.script.padEnd(64, "0") };
    srcClasses[name] = { kernel: { path: k }, initrd: { path: i } };
    classScripts.set(`by-class/${name}/ipxe`, `#!ipxe ${c.script}`);
  }
  for (const [host, sha] of Object.entries(hosts)) {
    entries[`by-host/${host}/ipxe`] = { kind: "file", sha256: sha };
    entries[`by-mac/${host}`] = { kind: "symlink", target: `../by-host/${host}` };
  }
  return { source: { classes: srcClasses, entries }, classScripts };
}
const gid = (script: string) => script.padEnd(12, "0");
const ALICE = { at: "2026-11-01T10:00:00Z", by: "alice@laptop", commit: "0123456789ab" };
const BOB = { at: "2026-11-02T10:00:00Z", by: "bob@desk" };

describe("what a deploy plan records", () => {
  it("stamps new generations and the manifest's last change with who deployed, and only when something changed", () => {
    const b = builtClasses({ c: { script: "s1" } }, { aleph: "a1" });
    const first = planDeploy({ ...b, deployed: emptyManifest(), keep: 3, origin: ALICE });
    expect(first.manifest.classes["c"]!.generations[0]!.deployed).toEqual(ALICE);
    expect(first.manifest.last).toEqual({ command: "deploy", ...ALICE });
    // Nothing to do: the record keeps the last change that did something.
    const again = planDeploy({ ...b, deployed: first.manifest, keep: 3, origin: BOB });
    expect(again.manifest.last).toEqual({ command: "deploy", ...ALICE });
    expect(again.manifest.classes["c"]).toEqual(first.manifest.classes["c"]);
    // A host changed: the last change is Bob's, but the class's generation keeps when it first came.
    const hostOnly = planDeploy({ ...builtClasses({ c: { script: "s1" } }, { aleph: "a2" }), deployed: first.manifest, keep: 3, origin: BOB });
    expect(hostOnly.manifest.last).toEqual({ command: "deploy", ...BOB });
    expect(hostOnly.manifest.classes["c"]!.generations[0]!.deployed).toEqual(ALICE);
    expect(hostOnly.manifest.classes["c"]!.generations).toHaveLength(1);
    // A removal alone is a change too.
    const removal = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: first.manifest, keep: 3, origin: BOB });
    expect([removal.uploads, removal.switches, removal.deletions.length]).toEqual([[], [], 2]);
    expect(removal.manifest.last).toEqual({ command: "deploy", ...BOB });
  });

  it("records no origin and no last change when none is given", () => {
    const plan = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: emptyManifest(), keep: 3 });
    expect(plan.manifest.classes["c"]!.generations[0]).not.toHaveProperty("deployed");
    expect(plan.manifest).not.toHaveProperty("last");
    expect(plan.manifest.pending).toEqual([]);
    expect(plan.manifest.format).toBe(2);
  });

  it("refuses a built tree without a class's script", () => {
    const b = builtClasses({ c: { script: "s1" } });
    expect(() => planDeploy({ ...b, classScripts: new Map(), deployed: emptyManifest(), keep: 3 })).toThrow("the built tree has no class script for c");
    const asLink = { ...b.source, entries: { ...b.source.entries, "by-class/c/ipxe": { kind: "symlink" as const, target: "x" } } };
    expect(() => planDeploy({ ...b, source: asLink, deployed: emptyManifest(), keep: 3 })).toThrow("no class script for c");
  });

  it("uploads the smallest artifacts first, by path among equal sizes, and counts their bytes", () => {
    const b = builtClasses({ big: { script: "b1", kernel: 50, initrd: 300 }, small: { script: "a1", kernel: 5, initrd: 50 } });
    const plan = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 });
    expect(plan.uploads.map((u) => [u.size, u.path.split("/")[1]])).toEqual([
      [5, "small"],
      [50, "big"],
      [50, "small"],
      [300, "big"],
    ]);
    expect(plan.uploads[0]).toEqual({ path: "by-class/small/a1kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk/kernel", size: 5, sha256: "sha-by-class/small/a1kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk/kernel" });
    expect(plan.bytes).toBe(405);
    expect(plan.switches.map((s) => s.path)).toEqual(["by-class/big/ipxe", "by-class/small/ipxe", "boot.ipxe"]);
    expect(plan.classes.map((c) => c.name)).toEqual(["big", "small"]);
  });

  it("writes the manifest's classes and entries in name order", () => {
    const first = planDeploy({ ...builtClasses({ zeta: { script: "z1" }, alpha: { script: "a1" } }, { bet: "b1", aleph: "a1" }), deployed: emptyManifest(), keep: 3 });
    expect(first.classes.map((c) => c.name)).toEqual(["alpha", "zeta"]);
    const m = first.manifest;
    expect(Object.keys(m.classes)).toEqual(["alpha", "zeta"]);
    const paths = Object.keys(m.entries);
    expect(paths).toEqual([...paths].sort());
    // Kept artifacts of an older generation join the sorted entries.
    const next = planDeploy({ ...builtClasses({ zeta: { script: "z2" }, alpha: { script: "a1" } }, { bet: "b1", aleph: "a1" }), deployed: m, keep: 3 }).manifest;
    const nextPaths = Object.keys(next.entries);
    expect(nextPaths).toEqual([...nextPaths].sort());
    expect(nextPaths).toContain(`by-class/zeta/${"z1".padEnd(32, "i")}/initrd`);
  });

  it("keeps the served generation second and older ones after it, up to keep", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2", "s3"]) m = planDeploy({ ...builtClasses({ c: { script: s } }), deployed: m, keep: 3 }).manifest;
    expect(m.classes["c"]!.generations.map((g) => g.id)).toEqual([gid("s3"), gid("s2"), gid("s1")]);
    // Back to s1, a build already on the target: nothing to upload, and it moves to the front.
    const back = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: m, keep: 3 });
    expect(back.classes).toEqual([{ name: "c", from: gid("s3"), to: gid("s1"), alreadyThere: true }]);
    expect(back.uploads).toEqual([]);
    expect(back.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual([gid("s1"), gid("s3"), gid("s2")]);
    // A new build with keep 3 drops the oldest one other than the served one.
    const s4 = planDeploy({ ...builtClasses({ c: { script: "s4" } }), deployed: back.manifest, keep: 3 });
    expect(s4.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual([gid("s4"), gid("s1"), gid("s3")]);
    expect(s4.classes).toEqual([{ name: "c", from: gid("s1"), to: gid("s4"), alreadyThere: false }]);
    expect(s4.deletions.sort()).toEqual([`by-class/c/${"s2".padEnd(32, "i")}/initrd`, `by-class/c/${"s2".padEnd(32, "k")}/kernel`]);
  });

  it("keeps a class that left the tree in the record, with its artifacts, until gc", () => {
    const m = planDeploy({ ...builtClasses({ c: { script: "s1" }, d: { script: "d1" } }), deployed: emptyManifest(), keep: 3 }).manifest;
    const plan = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: m, keep: 3 });
    expect(plan.deletions).toEqual(["by-class/d/ipxe"]);
    expect(plan.manifest.classes["d"]).toEqual(m.classes["d"]);
    expect(plan.manifest.entries).toHaveProperty(`by-class/d/${"d1".padEnd(32, "k")}/kernel`);
  });

  it("leaves another machine's classes exactly as deployed, and rewrites their drifted script from the kept generation", () => {
    const m = planDeploy({ ...builtClasses({ c: { script: "s1" }, d: { script: "d1" } }, { aleph: "a1" }), deployed: emptyManifest(), keep: 3 }).manifest;
    const mine = builtClasses({ c: { script: "s1" } });
    const keepAsDeployed = new Set(["by-class/d/ipxe", "by-host/aleph/ipxe", "by-mac/aleph", "by-mac/never-deployed"]);
    const plan = planDeploy({ ...mine, deployed: m, keep: 3, keepAsDeployed });
    expect([plan.uploads, plan.switches, plan.deletions]).toEqual([[], [], []]);
    expect(plan.manifest.entries["by-class/d/ipxe"]).toEqual(m.entries["by-class/d/ipxe"]);
    expect(plan.manifest.entries).not.toHaveProperty("by-mac/never-deployed");

    const drifted = planDeploy({ ...mine, deployed: m, keep: 3, keepAsDeployed, drifted: new Set(["by-class/d/ipxe", "by-class/c/ipxe", "by-mac/aleph"]) });
    expect(drifted.switches).toEqual([
      { kind: "file", layer: "class", path: "by-class/c/ipxe", sha256: "s1".padEnd(64, "0") },
      { kind: "file", layer: "class", path: "by-class/d/ipxe", sha256: "d1".padEnd(64, "0"), content: "#!ipxe d1" },
      { kind: "symlink", layer: "mac", path: "by-mac/aleph", target: "../by-host/aleph" },
    ]);
    // The built tree's own version wins over what another machine deployed under the same path.
    const rebuilt = planDeploy({ ...builtClasses({ c: { script: "s1" } }, { aleph: "a9" }), deployed: m, keep: 3, keepAsDeployed });
    expect(rebuilt.switches).toEqual([{ kind: "file", layer: "host", path: "by-host/aleph/ipxe", sha256: "a9" }]);
  });

  it("rewrites what stands where a folder or a file inside it was being switched", () => {
    const b = builtClasses({ c: { script: "s1" } }, { aleph: "a1", bet: "b1" });
    const done = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 }).manifest;
    // A copy-mode by-mac/aleph folder was being replaced by a link: the link is rewritten.
    const intoLink = planDeploy({ ...b, deployed: { ...done, pending: ["by-mac/aleph/ipxe"] }, keep: 3 });
    expect(intoLink.switches.map((s) => s.path)).toEqual(["by-mac/aleph"]);
    // The half-made file is unrecorded and unwanted: it goes (the applier does not follow the new link to it).
    expect(intoLink.deletions).toEqual(["by-mac/aleph/ipxe"]);
    // A host folder was being replaced: the script inside it is rewritten.
    const inFolder = planDeploy({ ...b, deployed: { ...done, pending: ["by-host/bet"] }, keep: 3 });
    expect(inFolder.switches.map((s) => s.path)).toEqual(["by-host/bet/ipxe"]);
    expect(inFolder.deletions).toEqual(["by-host/bet"]);
    expect(inFolder.unchanged).toBe(Object.keys(done.entries).length - 1);
  });
});

describe("sameEntry and isNoop", () => {
  it("compares files and artifacts by hash, links by target, and never across kinds", () => {
    expect(sameEntry(undefined, { kind: "file", sha256: "a" })).toBe(false);
    expect(sameEntry({ kind: "file", sha256: "a" }, { kind: "file", sha256: "a" })).toBe(true);
    expect(sameEntry({ kind: "file", sha256: "a" }, { kind: "file", sha256: "b" })).toBe(false);
    expect(sameEntry({ kind: "file", sha256: "a" }, { kind: "artifact", size: 1, sha256: "a" })).toBe(false);
    expect(sameEntry({ kind: "artifact", size: 1, sha256: "a" }, { kind: "artifact", size: 1, sha256: "a" })).toBe(true);
    expect(sameEntry({ kind: "symlink", target: "x" }, { kind: "symlink", target: "x" })).toBe(true);
    expect(sameEntry({ kind: "symlink", target: "x" }, { kind: "symlink", target: "y" })).toBe(false);
  });

  it("calls a plan a no-op only with nothing to upload, switch or delete", () => {
    const b = builtClasses({ c: { script: "s1" } }, { aleph: "a1" });
    const m = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 });
    expect(isNoop(m)).toBe(false);
    expect(isNoop(planDeploy({ ...b, deployed: m.manifest, keep: 3 }))).toBe(true);
    expect(isNoop(planDeploy({ ...builtClasses({ c: { script: "s1" } }, { aleph: "a2" }), deployed: m.manifest, keep: 3 }))).toBe(false);
    expect(isNoop(planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: m.manifest, keep: 3 }))).toBe(false);
    expect(isNoop(planDeploy({ ...b, deployed: m.manifest, keep: 3, drifted: new Set([`by-class/c/${"s1".padEnd(32, "k")}/kernel`]) }))).toBe(false);
  });

  it("names a generation by the first 12 hex digits of its class script's hash", () => {
    expect(generationId("0123456789abcdef0123")).toBe("0123456789ab");
  });
});

describe("planning a rollback", () => {
  function deployed(scripts: string[], origins: ({ at: string; by: string } | undefined)[] = []) {
    let m = emptyManifest();
    scripts.forEach((s, i) => (m = planDeploy({ ...builtClasses({ c: { script: s }, d: { script: `d${i % 2}` } }), deployed: m, keep: 3, origin: origins[i] }).manifest));
    return m;
  }

  it("says which classes cannot be rolled back, and why", () => {
    const m = deployed(["s1"]);
    const r = planRollback(m, ["zz", "c"], undefined);
    expect(r.problems).toEqual(["class c has no generation older than s10000000000 on this target", "class zz has never been deployed to this target"]);
    expect(r.plan.switches).toEqual([]);
    const to = planRollback(deployed(["s1", "s2"]), ["c"], "ff");
    expect(to.problems).toEqual(["class c has no kept generation ff (kept: s20000000000, s10000000000)"]);
  });

  it("goes back one generation per rollback, remembering every generation it left", () => {
    const m = deployed(["s1", "s2", "s3"]);
    const once = planRollback(m, ["c"], undefined);
    expect(once.changes).toEqual([{ name: "c", from: gid("s3"), to: gid("s2"), direction: "back" }]);
    const twice = planRollback(once.plan.manifest, ["c"], undefined);
    expect(twice.changes).toEqual([{ name: "c", from: gid("s2"), to: gid("s1"), direction: "back" }]);
    expect(twice.plan.manifest.classes["c"]).toMatchObject({ current: gid("s1"), rolledBackFrom: [gid("s3"), gid("s2")] });
    expect(twice.plan.manifest.entries["by-class/c/ipxe"]).toEqual({ kind: "file", sha256: "s1".padEnd(64, "0") });
    // Forward to s2 by a prefix of its id: s3 stays remembered, s2 does not.
    const fwd = planRollback(twice.plan.manifest, ["c"], "s2");
    expect(fwd.changes).toEqual([{ name: "c", from: gid("s1"), to: gid("s2"), direction: "forward" }]);
    expect(fwd.plan.manifest.classes["c"]!.rolledBackFrom).toEqual([gid("s3")]);
  });

  it("rolls back every class that has a script on the target, in name order, and leaves one already there alone", () => {
    const m = deployed(["s1", "s2"]);
    const all = planRollback(m, [], undefined);
    expect(all.changes.map((c) => [c.name, c.from, c.to])).toEqual([
      ["c", gid("s2"), gid("s1")],
      ["d", gid("d1"), gid("d0")],
    ]);
    expect(all.plan.switches.map((s) => s.path)).toEqual(["by-class/c/ipxe", "by-class/d/ipxe"]);
    expect([all.plan.uploads, all.plan.deletions, all.plan.bytes]).toEqual([[], [], 0]);
    // A class that left the tree (no script on the target) is not rolled back.
    const withoutD = planDeploy({ ...builtClasses({ c: { script: "s2" } }), deployed: m, keep: 3 }).manifest;
    expect(planRollback(withoutD, [], undefined).changes.map((c) => c.name)).toEqual(["c"]);
    // Switching to the generation already served changes nothing and is no problem.
    const same = planRollback(m, ["c"], "s2");
    expect([same.changes, same.problems, same.plan.switches]).toEqual([[], [], []]);
  });

  it("records who rolled back, only when it switched something, and keeps pending paths", () => {
    const m = { ...deployed(["s1", "s2"], [ALICE, ALICE]), pending: ["by-host/x/ipxe"] };
    const r = planRollback(m, ["c"], undefined, BOB);
    expect(r.plan.manifest.last).toEqual({ command: "rollback", ...BOB });
    expect(r.plan.manifest.pending).toEqual(["by-host/x/ipxe"]);
    expect(planRollback(m, ["c"], "s2", BOB).plan.manifest.last).toEqual({ command: "deploy", ...ALICE });
    expect(planRollback(deployed(["s1", "s2"]), ["c"], undefined, undefined).plan.manifest).not.toHaveProperty("last");
  });

  it("tells back from forward by when each generation was first deployed, else by the kept list", () => {
    const gen = (id: string, at?: string) => ({ id: gid(id), kernel: `k${id}`, initrd: `i${id}`, script: id, sha256: id.padEnd(64, "0"), ...(at ? { deployed: { at, by: "x" } } : {}) });
    const target = (gens: ReturnType<typeof gen>[], current: string): DeployedManifest => ({ ...emptyManifest(), classes: { c: { current: gid(current), generations: gens } }, entries: { "by-class/c/ipxe": { kind: "file", sha256: current.padEnd(64, "0") } } });
    const dir = (m: DeployedManifest, to: string | undefined) => planRollback(m, ["c"], to).changes[0]!.direction;
    // Listed after the current one but deployed later: forward.
    expect(dir(target([gen("a", "2026-01-01"), gen("b", "2026-01-05")], "a"), undefined)).toBe("forward");
    // Listed after and deployed earlier: back.
    expect(dir(target([gen("a", "2026-01-05"), gen("b", "2026-01-01")], "a"), undefined)).toBe("back");
    // Listed before but deployed earlier: back.
    expect(dir(target([gen("b", "2026-01-01"), gen("a", "2026-01-05")], "a"), "b")).toBe("back");
    // Same time, or a time missing: the list decides.
    expect(dir(target([gen("a", "2026-01-01"), gen("b", "2026-01-01")], "a"), undefined)).toBe("back");
    expect(dir(target([gen("b", "2026-01-01"), gen("a", "2026-01-01")], "a"), "b")).toBe("forward");
    expect(dir(target([gen("a"), gen("b", "2026-01-05")], "a"), undefined)).toBe("back");
    expect(dir(target([gen("a", "2026-01-01"), gen("b")], "a"), undefined)).toBe("back");
  });
});

describe("planning a gc", () => {
  it("frees the artifacts of generations beyond keep, keeping the served one, and reports temps", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2", "s3"]) m = planDeploy({ ...builtClasses({ c: { script: s, kernel: 100, initrd: 1000 } }), deployed: m, keep: 3, origin: ALICE }).manifest;
    // Rolled back twice: s1 is served, the oldest kept.
    m = planRollback(planRollback(m, ["c"], undefined).plan.manifest, ["c"], undefined).plan.manifest;
    m = { ...m, pending: ["by-host/x/ipxe"] };
    const { plan, temps } = planGc(m, 2);
    const s2 = [`by-class/c/${"s2".padEnd(32, "i")}/initrd`, `by-class/c/${"s2".padEnd(32, "k")}/kernel`];
    expect(plan.deletions.sort()).toEqual(s2);
    expect(temps).toEqual(["by-host/x/ipxe"]);
    expect(plan.manifest.classes["c"]!.generations.map((g) => g.id)).toEqual([gid("s3"), gid("s1")]);
    expect(plan.manifest.pending).toEqual(["by-host/x/ipxe"]);
    expect(plan.manifest.last).toEqual(m.last);
    expect(plan.unchanged).toBe(Object.keys(m.entries).length - 2);
    expect(Object.keys(plan.manifest.entries)).toEqual(Object.keys(m.entries).filter((p) => !s2.includes(p)).sort());
    expect([plan.uploads, plan.switches, plan.bytes]).toEqual([[], [], 0]);
  });

  it("forgets a class whose script is gone, with all its artifacts, in delete order", () => {
    const m = planDeploy({ ...builtClasses({ c: { script: "s1" }, d: { script: "d1" } }), deployed: emptyManifest(), keep: 3 }).manifest;
    const gone = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: m, keep: 3 }).manifest;
    const gc = planGc(gone, 3);
    expect(gc.plan.deletions).toEqual([`by-class/d/${"d1".padEnd(32, "k")}/kernel`, `by-class/d/${"d1".padEnd(32, "i")}/initrd`]);
    expect(Object.keys(gc.plan.manifest.classes)).toEqual(["c"]);
    expect(gc.plan.manifest).not.toHaveProperty("last");
    expect(planGc(m, 3).plan.deletions).toEqual([]);
  });
});

describe("what a deploy takes from the built tree", () => {
  it("sends only each class's current artifacts, not the previous generation out/ keeps", () => {
    const b = builtClasses({ c: { script: "s2" } });
    const old = "by-class/c/s1kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk/kernel";
    b.source.entries[old] = { kind: "artifact", size: 7, sha256: "old" };
    const plan = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 });
    expect(plan.uploads.map((u) => u.path)).not.toContain(old);
    expect(plan.manifest.entries).not.toHaveProperty(old);
  });

  it("deploys a class that came back after leaving the tree, even one rolled back before it left", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2"]) m = planDeploy({ ...builtClasses({ c: { script: s }, d: { script: "d1" } }), deployed: m, keep: 3 }).manifest;
    m = planRollback(m, ["c"], undefined).plan.manifest;
    m = planDeploy({ ...builtClasses({ d: { script: "d1" } }), deployed: m, keep: 3 }).manifest;
    expect(m.entries).not.toHaveProperty("by-class/c/ipxe");
    const back = planDeploy({ ...builtClasses({ c: { script: "s2" }, d: { script: "d1" } }), deployed: m, keep: 3 });
    expect(back.held).toEqual([]);
    expect(back.switches).toEqual([{ kind: "file", layer: "class", path: "by-class/c/ipxe", sha256: "s2".padEnd(64, "0") }]);
    expect(back.manifest.classes["c"]!.current).toBe(gid("s2"));
  });

  it("removes what an unfinished deploy left, in reverse path order within a layer", () => {
    const done = planDeploy({ ...builtClasses({ c: { script: "s1" } }, { x: "x1" }), deployed: emptyManifest(), keep: 3 }).manifest;
    // Host x is removed while its script is still listed as pending: it goes, once.
    const pending = ["by-host/b/ipxe", "by-host/x/ipxe", "by-host/a/ipxe", "by-host/c/ipxe", "by-host/a/ipxe"];
    const plan = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: { ...done, pending }, keep: 3 });
    expect(plan.deletions).toEqual(["by-mac/x", "by-host/x/ipxe", "by-host/c/ipxe", "by-host/b/ipxe", "by-host/a/ipxe"]);
  });

  it("lists the record's classes in name order, those that left the tree included", () => {
    const m = planDeploy({ ...builtClasses({ a: { script: "a1" }, z: { script: "z1" } }), deployed: emptyManifest(), keep: 3 }).manifest;
    const plan = planDeploy({ ...builtClasses({ z: { script: "z1" } }), deployed: m, keep: 3 });
    expect(Object.keys(plan.manifest.classes)).toEqual(["a", "z"]);
    // A record written in another order (an older netbuild, an edit by hand) is written back in order.
    const unordered: DeployedManifest = { ...m, classes: { z: m.classes["z"]!, a: m.classes["a"]! }, entries: Object.fromEntries(Object.entries(m.entries).reverse()) };
    const gc = planGc(unordered, 3).plan.manifest;
    expect(Object.keys(gc.classes)).toEqual(["a", "z"]);
    expect(Object.keys(gc.entries)).toEqual(Object.keys(m.entries));
    const rb = planRollback(unordered, ["a"], undefined).plan.manifest;
    expect(Object.keys(rb.classes)).toEqual(["a", "z"]);
    expect(Object.keys(rb.entries)).toEqual(Object.keys(m.entries));
  });
});

describe("a held rollback", () => {
  it("keeps the class's record as the rollback left it while the same build is deployed again", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2"]) m = planDeploy({ ...builtClasses({ c: { script: s } }, { aleph: "a1" }), deployed: m, keep: 3 }).manifest;
    m = planRollback(m, ["c"], undefined).plan.manifest;
    const again = planDeploy({ ...builtClasses({ c: { script: "s2" } }, { aleph: "a2" }), deployed: m, keep: 3, origin: BOB });
    expect(again.held).toEqual([{ name: "c", current: gid("s1"), built: gid("s2") }]);
    expect(again.classes).toEqual([]);
    expect(again.manifest.classes["c"]).toEqual(m.classes["c"]);
    expect(again.manifest.entries["by-class/c/ipxe"]).toEqual({ kind: "file", sha256: "s1".padEnd(64, "0") });
    expect(again.switches).toEqual([{ kind: "file", layer: "host", path: "by-host/aleph/ipxe", sha256: "a2" }]);
  });
});

describe("plans' edges", () => {
  it("starts from an empty record: no classes, no entries, nothing pending", () => {
    expect(emptyManifest()).toEqual({ format: 2, classes: {}, entries: {}, pending: [] });
  });

  it("gives rollback and gc plans no class builds to record (they switch or delete only)", () => {
    let m = deployOnce(emptyManifest(), built(I1, "s1", {})).manifest;
    m = deployOnce(m, built(I2, "s2", {})).manifest;
    expect(planRollback(m, [], undefined).plan.classes).toEqual([]);
    expect(planGc(m, 2).plan.classes).toEqual([]);
  });

  it("refuses a built tree whose class has no script entry at all, with its own message", () => {
    const b = built(I1, "s1", {});
    delete b.source.entries["by-class/c/ipxe"];
    expect(() => deployOnce(emptyManifest(), b)).toThrow("the built tree has no class script for c");
  });
});

// Records netbuild itself never writes (a hand edit, another version), and orders nothing else
// pins down: what the planner does with them.
describe("plans from unusual records", () => {
  it("says no class changed when the target already serves the build", () => {
    const b = builtClasses({ c: { script: "s1" } }, { aleph: "a1" });
    const first = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 });
    expect(planDeploy({ ...b, deployed: first.manifest, keep: 3 }).classes).toEqual([]);
  });

  it("holds nothing when the generation a record says was rolled back from is the one it serves", () => {
    const b = builtClasses({ c: { script: "s1" } });
    const m = planDeploy({ ...b, deployed: emptyManifest(), keep: 3 }).manifest;
    const odd = { ...m, classes: { c: { ...m.classes["c"]!, rolledBackFrom: [gid("s1")] } } };
    const plan = planDeploy({ ...b, deployed: odd, keep: 3 });
    expect(plan.held).toEqual([]);
    expect(plan.classes).toEqual([]);
    expect(plan.manifest.classes["c"]!.rolledBackFrom).toBeUndefined();
  });

  it("stamps a new generation with who deploys it, not with the stamp of one kept before it", () => {
    const m = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: emptyManifest(), keep: 3, origin: ALICE }).manifest;
    const next = planDeploy({ ...builtClasses({ c: { script: "s2" } }), deployed: m, keep: 3, origin: BOB });
    expect(next.manifest.classes["c"]!.generations.map((g) => [g.id, g.deployed])).toEqual([
      [gid("s2"), BOB],
      [gid("s1"), ALICE],
    ]);
  });

  it("removes a half-uploaded artifact of a kept generation (pending, unrecorded), and never records it", () => {
    let m = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: emptyManifest(), keep: 3 }).manifest;
    m = planDeploy({ ...builtClasses({ c: { script: "s2" } }), deployed: m, keep: 3 }).manifest;
    const old = m.classes["c"]!.generations[1]!.initrd;
    const { [old]: _gone, ...entries } = m.entries;
    const plan = planDeploy({ ...builtClasses({ c: { script: "s2" } }), deployed: { ...m, entries, pending: [old] }, keep: 3 });
    expect(plan.deletions).toContain(old);
    expect(old in plan.manifest.entries).toBe(false);
    expect(Object.values(plan.manifest.entries).every((e) => e !== undefined)).toBe(true);
  });

  it("records what stays pending in path order, whatever order the record listed it in", () => {
    const m = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: emptyManifest(), keep: 3 }).manifest;
    const plan = planDeploy({ ...builtClasses({ c: { script: "s1" } }), deployed: { ...m, pending: ["ipxe/undionly.kpxe", "ipxe/ipxe.efi"] }, keep: 3 });
    expect(plan.manifest.pending).toEqual(["ipxe/ipxe.efi", "ipxe/undionly.kpxe"]);
  });

  it("switches to a kept generation by --generation without inventing a rollback to remember", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2"]) m = planDeploy({ ...builtClasses({ c: { script: s } }), deployed: m, keep: 3 }).manifest;
    const r = planRollback(m, ["c"], "s1");
    expect(r.changes).toEqual([{ name: "c", from: gid("s2"), to: gid("s1"), direction: "back" }]);
    expect(r.plan.manifest.classes["c"]!.rolledBackFrom).toBeUndefined();
  });

  it("rolls back a class whose record serves a generation it no longer lists, to the one named, as going back", () => {
    let m = emptyManifest();
    for (const s of ["s1", "s2", "s3"]) m = planDeploy({ ...builtClasses({ c: { script: s } }), deployed: m, keep: 3, origin: { at: `2026-11-0${s[1]}T10:00:00Z`, by: "alice@laptop" } }).manifest;
    const odd = { ...m, classes: { c: { ...m.classes["c"]!, current: gid("s9") } } };
    const r = planRollback(odd, ["c"], "s2");
    expect(r.problems).toEqual([]);
    expect(r.changes).toEqual([{ name: "c", from: gid("s9"), to: gid("s2"), direction: "back" }]);
  });
});
