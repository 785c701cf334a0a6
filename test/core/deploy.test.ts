// The pure parts of deploy: reading target URLs, and planning what a deploy, a rollback and a gc
// do from what is built and what the target's manifest says.
import { describe, expect, it } from "vitest";
import { emptyManifest, planDeploy, planGc, planRollback, type DeployedManifest, type SourceTree } from "../../src/core/deploy.ts";
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
