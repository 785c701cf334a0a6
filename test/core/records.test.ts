// out/'s manifest and a target's record are checked by hand (isTreeManifest, isDeployedManifest:
// 30,000 entries in a fraction of what zod takes) and explained by zod (record-schemas.ts) when the
// hand check refuses them. The two must agree on every input, or a damaged record could be trusted
// (the hand check too lax) or a good one slowed down (too strict). Checked here on thousands of damaged manifests, reproducibly (seeded).
import { describe, expect, it } from "vitest";
import { isDeployedManifest, isTreeManifest, parseDeployedManifest, parseTreeManifest } from "../../src/core/records.ts";
import { DeployedManifestSchema, TreeManifestSchema } from "../../src/core/record-schemas.ts";

/** A small seeded generator (mulberry32): the same cases on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SHA = "ab".repeat(32);
const H1 = "0123456789abcdfghijklmnpqrsvwxyz";
const H2 = "zyxwvsrqpnmlkjihgfdcba9876543210";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A manifest as a build writes it: a class with a kept generation, artifacts, scripts with and without stamps, links, a pending path. */
function goodManifest(): { [k: string]: Json } {
  return {
    format: 1,
    classes: {
      demo: {
        kind: "prebuilt",
        kernel: { path: `by-class/demo/${H1}/kernel`, storeFile: `/nix/store/${H1}-kernel/bzImage`, size: 12 },
        initrd: { path: `by-class/demo/${H1}/initrd`, storeFile: `/nix/store/${H1}-initrd`, size: 34 },
        kernelParams: ["console=ttyS0"],
        previous: { kernel: `by-class/demo/${H2}/kernel`, initrd: `by-class/demo/${H2}/initrd` },
        kernelSha256: SHA,
        initrdSha256: SHA,
      },
    },
    entries: {
      "boot.ipxe": { kind: "file", sha256: SHA, size: 120, mtimeNs: "1764458123456789012", ino: "1234" },
      [`by-class/demo/${H1}/initrd`]: { kind: "artifact", size: 34, sha256: SHA },
      [`by-class/demo/${H1}/kernel`]: { kind: "artifact", size: 12, sha256: SHA },
      [`by-class/demo/${H2}/initrd`]: { kind: "artifact", size: 30, sha256: SHA },
      [`by-class/demo/${H2}/kernel`]: { kind: "artifact", size: 10, sha256: SHA },
      "by-class/demo/ipxe": { kind: "file", sha256: SHA },
      "by-host/h1/ipxe": { kind: "file", sha256: SHA, size: 312, mtimeNs: "1764458123000000000", ino: "98765432109876543210" },
      "by-host/h2/talos.yaml": { kind: "file", sha256: SHA, size: 0, mtimeNs: "-5", ino: "0" },
      "by-mac/52-54-00-00-00-01": { kind: "symlink", target: "../by-host/h1" },
      "by-mac/52-54-00-00-00-02/ipxe": { kind: "file", sha256: SHA },
    },
    pending: ["by-host/h1/ipxe"],
    inputs: SHA,
  };
}

/** Values that break some rule somewhere (and some that are fine somewhere else). */
const VALUES: Json[] = [
  null, true, false, 0, -1, 1.5, 2 ** 53, 2 ** 53 + 2, 1e21, "", "x", "1", "-7", "12a", "1e3", " 1", "0x1f", "9".repeat(24), "9".repeat(25),
  "../x", "/abs", "by-host", "by-host/", "by-host//x", "by-host/./x", "by-host/a/../b", "by-host/a\u0007", "by-host/a\\b", "by-host/a\u200bb", "by-other/x",
  "boot.ipxe", "by-mac/52-54-00-00-00-09", `by-class/demo/${H1}/kernel`, `by-class/other/${H1}/kernel`, `by-class/demo/${H1}`, "by-class/demo/ipxe",
  "../by-host/h1", "../by-host/..", "../by-host/.", "../by-host/a/b", "../by-host/", "../by-mac/x", "../by-host/a\u0001",
  SHA, SHA.toUpperCase(), SHA.slice(1), `${SHA}0`,
  `/nix/store/${H1}-x`, `/nix/store/${H1}-x/../y`, `/nix/store/${H1}-x/`, `/nix/store/${H1.replace("a", "e")}-x`, `/nix/store/${H1}`, "/etc/passwd",
  "file", "artifact", "symlink", "dir", "nixos", "talos", "prebuilt", "debian",
  [], {}, ["x"], [1], [null], ["by-host/h1/ipxe", "../x"],
  { kind: "file" }, { kind: "file", sha256: SHA }, { kind: "file", sha256: SHA, size: 1 }, { kind: "artifact", size: 1, sha256: SHA }, { kind: "symlink", target: "../by-host/h1" }, { kind: "bogus" },
  { kernel: "by-host/x", initrd: "by-host/y" }, { path: "by-host/x", storeFile: `/nix/store/${H1}-x`, size: 1 },
  // A target's record: generation ids, who deployed, when, from which commit.
  "0123456789ab", "0123456789AB", "0123456789a", "2026-11-29T22:41:18Z", "2026-02-30T00:00:00Z", "2026-11-29 22:41:18Z", "2026-11-29T22:41:18.000Z",
  "root@boot", "root@boot\u001b[2J", "a b", "?", "abcdef1", "abcdef1-dirty", "abcdef", "unknown", "deploy", "rollback", "gc",
  { at: "2026-11-29T22:41:18Z", by: "root@boot" }, { at: "2026-11-29T22:41:18Z", by: "root@boot", commit: "unknown", extra: 1 },
];
const KEYS = ["kind", "size", "sha256", "mtimeNs", "ino", "target", "path", "storeFile", "previous", "pending", "format", "extra", "__proto__", "constructor", "by-host/h9/ipxe", "by-mac/52-54-00-00-00-09", `by-class/demo/${H1}/x`, "by-class/demo/x", "../escape", "demo/x", "a.b", "current", "generations", "rolledBackFrom", "id", "script", "deployed", "at", "by", "commit", "command", "last", "inputs"];

/** Every object, array and the root, with a way to change each (replace a member, drop it, add one, rename one). */
function containers(node: Json, out: (Json[] | { [k: string]: Json })[] = []): (Json[] | { [k: string]: Json })[] {
  if (node !== null && typeof node === "object") {
    out.push(node);
    for (const v of Object.values(node)) containers(v, out);
  }
  return out;
}

function mutate(doc: { [k: string]: Json }, rand: () => number): void {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const target = pick(containers(doc));
  const copy = (v: Json): Json => JSON.parse(JSON.stringify(v)) as Json;
  if (Array.isArray(target)) {
    const r = rand();
    if (target.length > 0 && r < 0.4) target[Math.floor(rand() * target.length)] = copy(pick(VALUES));
    else if (target.length > 0 && r < 0.6) target.splice(Math.floor(rand() * target.length), 1);
    else target.push(copy(pick(VALUES)));
    return;
  }
  const keys = Object.keys(target);
  const r = rand();
  if (keys.length > 0 && r < 0.45) target[pick(keys)] = copy(pick(VALUES));
  else if (keys.length > 0 && r < 0.65) delete target[pick(keys)];
  else if (keys.length > 0 && r < 0.85) {
    const from = pick(keys);
    const value = target[from]!;
    delete target[from];
    Object.defineProperty(target, pick(KEYS), { value, enumerable: true, writable: true, configurable: true });
  } else Object.defineProperty(target, pick(KEYS), { value: copy(pick(VALUES)), enumerable: true, writable: true, configurable: true });
}

describe("out/'s manifest: the hand-written check and the schema", () => {
  it("accepts a manifest as a build writes it, by the hand-written check (no zod on the way)", async () => {
    const doc = goodManifest();
    expect(isTreeManifest(doc)).toBe(true);
    expect(TreeManifestSchema.safeParse(doc).success).toBe(true);
    const parsed = await parseTreeManifest(JSON.stringify(doc));
    expect(parsed).toEqual({ ok: true, value: doc });
  });

  it("agrees with the schema on 5,000 damaged manifests: the same verdict, the same value, the same messages", async () => {
    const rand = random(20261129);
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const doc = goodManifest();
      const n = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < n; j++) mutate(doc, rand);
      const text = JSON.stringify(doc);
      const data = JSON.parse(text) as unknown;
      const schema = TreeManifestSchema.safeParse(data).success;
      // Never laxer than the schema (a damaged manifest trusted); stricter only on a class or entry
      // named __proto__, which it leaves to zod (zod's records pass over that key).
      const records = data as { classes: object; entries: object };
      if (isTreeManifest(data)) expect(schema, `case ${i}: ${text}`).toBe(true);
      else if (schema) expect([...Object.keys(records.classes), ...Object.keys(records.entries)], `case ${i}: ${text}`).toContain("__proto__");
      expect(await parseTreeManifest(text), `case ${i}: ${text}`).toEqual(await parseTreeManifest(text, { schemaOnly: true }));
      if (!schema) refused++;
    }
    // Most mutations break something; the rest still exercise the accepting side.
    expect(refused).toBeGreaterThan(3000);
    expect(refused).toBeLessThan(5000);
  });

  it("reports a damaged manifest with the schema's messages (where in the file, and what)", async () => {
    const doc = goodManifest();
    (doc["entries"] as Record<string, Json>)["by-host/h1/ipxe"] = { kind: "file", sha256: SHA, size: -1, mtimeNs: "soon", ino: "1" };
    (doc["entries"] as Record<string, Json>)["../escape"] = { kind: "file", sha256: SHA };
    const text = JSON.stringify(doc);
    const r = await parseTreeManifest(text);
    expect(r).toEqual(await parseTreeManifest(text, { schemaOnly: true }));
    expect(r.ok ? [] : r.problems).toEqual([
      'entries["by-host/h1/ipxe"].size: Too small: expected number to be >=0',
      'entries["by-host/h1/ipxe"].mtimeNs: expected a whole number in decimal',
      'entries["../escape"]: the path has a `..` part (it would leave the folder)',
    ]);
  });
});

const G1 = "0123456789ab";
const G2 = "ba9876543210";

/** A target's record as a deploy writes it (format 2): a class with two generations (who deployed each), a rollback's pin, files, artifacts, links, a pending path, the last deploy. */
function goodDeployed(): { [k: string]: Json } {
  return {
    format: 2,
    classes: {
      demo: {
        current: G1,
        generations: [
          { id: G1, kernel: `by-class/demo/${H1}/kernel`, initrd: `by-class/demo/${H1}/initrd`, script: "#!ipxe\nkernel x\n", sha256: SHA, deployed: { at: "2026-11-29T22:41:18Z", by: "root@boot", commit: "abcdef1-dirty" } },
          { id: G2, kernel: `by-class/demo/${H2}/kernel`, initrd: `by-class/demo/${H2}/initrd`, script: "", sha256: SHA },
        ],
        rolledBackFrom: [G2],
      },
    },
    entries: {
      "boot.ipxe": { kind: "file", sha256: SHA },
      [`by-class/demo/${H1}/initrd`]: { kind: "artifact", size: 34, sha256: SHA },
      [`by-class/demo/${H1}/kernel`]: { kind: "artifact", size: 12, sha256: SHA },
      "by-class/demo/ipxe": { kind: "file", sha256: SHA },
      "by-host/h1/ipxe": { kind: "file", sha256: SHA },
      "by-mac/52-54-00-00-00-01": { kind: "symlink", target: "../by-host/h1" },
      "by-mac/52-54-00-00-00-02/ipxe": { kind: "file", sha256: SHA },
    },
    pending: ["by-host/h1/ipxe"],
    last: { command: "deploy", at: "2026-11-30T01:02:03Z", by: "ops@laptop", commit: "unknown" },
  };
}

describe("a target's record: the hand-written check and the schema", () => {
  it("accepts a record as a deploy writes it, and one of format 1, by the hand-written check", async () => {
    for (const doc of [goodDeployed(), { ...goodDeployed(), format: 1 }]) {
      expect(isDeployedManifest(doc)).toBe(true);
      const text = JSON.stringify(doc);
      expect(await parseDeployedManifest(text)).toEqual(await parseDeployedManifest(text, { schemaOnly: true }));
      expect((await parseDeployedManifest(text)).ok).toBe(true);
    }
  });

  it("agrees with the schema on 5,000 damaged records: the same verdict, the same value, the same messages", async () => {
    const rand = random(20261130);
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const doc = goodDeployed();
      const n = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < n; j++) mutate(doc, rand);
      const text = JSON.stringify(doc);
      const data = JSON.parse(text) as { classes?: unknown; entries?: unknown };
      const schema = DeployedManifestSchema.safeParse(data).success;
      // Never laxer than the schema; stricter only on a class or entry named __proto__ (left to zod).
      if (isDeployedManifest(data)) expect(schema, `case ${i}: ${text}`).toBe(true);
      else if (schema) expect([...Object.keys(data.classes as object), ...Object.keys(data.entries as object)], `case ${i}: ${text}`).toContain("__proto__");
      expect(await parseDeployedManifest(text), `case ${i}: ${text}`).toEqual(await parseDeployedManifest(text, { schemaOnly: true }));
      if (!schema) refused++;
    }
    expect(refused).toBeGreaterThan(3000);
    expect(refused).toBeLessThan(5000);
  });
});
