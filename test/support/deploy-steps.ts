// A deploy stopped at each of its writes, for any target backend (a local folder, SFTP to the real
// sshd): the target is wrapped so that every write from the k-th on fails, as after a dropped
// connection (the one thing simulated: a drop cannot be scheduled at a chosen write otherwise).
// At each k: what every machine would boot from the target as it stands (each MAC followed by-mac →
// host script → class script → kernel and initrd, which must be whole), then the next deploy
// (the same tree again, or the old one) must leave exactly what a clean deploy of it leaves.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { emptyManifest, planDeploy, type DeployedManifest, type SourceTree } from "../../src/core/deploy.ts";
import type { TargetFs } from "../../src/adapters/target-fs.ts";
import { applyDeploy, conflicts, readDeployed, verifyTarget } from "../../src/adapters/target-tree.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * A target whose writes all fail from the `k`-th on (0-based), as after a dropped connection;
 * `count` counts them. `lost`: "request" (the k-th write never reaches the server) or "reply" (it
 * is done there, and its answer is lost with the connection).
 */
export function droppingAt(fs: TargetFs, k: number, count = { n: 0 }, lost: "request" | "reply" = "request"): TargetFs {
  const writes = new Set<PropertyKey>(["createExclusive", "writeFile", "upload", "symlink", "rename", "remove", "removeDir", "touch"]);
  const drop = () => Promise.reject(new Error("connection lost (injected)"));
  return new Proxy(fs, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      const f = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
      if (!writes.has(prop)) return f;
      return (...a: unknown[]) => {
        const n = count.n++;
        if (n < k) return f(...a);
        if (n === k && lost === "reply") return f(...a).then(drop, drop);
        return drop();
      };
    },
  });
}

export interface StepTree {
  source: SourceTree;
  classScripts: Map<string, string>;
  contents: Map<string, string>;
}

/**
 * A tree of class c at generation `gen` (its kernel and initrd written into `out`, as a build
 * leaves them), and hosts (name → kernel command-line flags) whose scripts chain the class's
 * script, by-mac entries as links or as copies.
 */
export function stepTree(out: string, gen: string, hosts: Record<string, string>, mode: "links" | "copy"): StepTree {
  const contents = new Map<string, string>([
    ["boot.ipxe", "#!ipxe\nchain by-mac/${mac:hexhyp}/ipxe || exit\n"],
    ["by-class/c/ipxe", `#!ipxe\nkernel ${gen}/kernel\ninitrd ${gen}/initrd\nboot\n`],
  ]);
  const entries: SourceTree["entries"] = {};
  for (const a of ["kernel", "initrd"]) {
    const rel = `by-class/c/${gen}/${a}`;
    const bytes = `${a} of generation ${gen}\n`;
    mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    writeFileSync(path.join(out, rel), bytes);
    entries[rel] = { kind: "artifact", size: bytes.length, sha256: sha(bytes) };
  }
  for (const [h, flags] of Object.entries(hosts)) {
    const script = `#!ipxe\nset cmdline hostname=${h} ${flags}\nchain ../../by-class/c/ipxe\n`;
    contents.set(`by-host/${h}/ipxe`, script);
    if (mode === "copy") contents.set(`by-mac/${h}/ipxe`, script);
    else entries[`by-mac/${h}`] = { kind: "symlink", target: `../by-host/${h}` };
  }
  for (const [p, text] of contents) entries[p] = { kind: "file", sha256: sha(text) };
  return {
    source: { classes: { c: { kernel: { path: `by-class/c/${gen}/kernel` }, initrd: { path: `by-class/c/${gen}/initrd` } } }, entries },
    classScripts: new Map([["by-class/c/ipxe", contents.get("by-class/c/ipxe")!]]),
    contents,
  };
}

/** A deploy of `b` (artifacts read from `out`), as the deploy command runs it under the lock. */
export async function deployStepTree(fs: TargetFs, out: string, b: StepTree, keep = 2): Promise<void> {
  const deployed = (await readDeployed(fs)) ?? emptyManifest();
  const plan = planDeploy({ source: b.source, classScripts: b.classScripts, deployed, keep });
  for (const s of plan.switches) if (s.kind === "file" && s.content === undefined) s.content = b.contents.get(s.path);
  const { absent } = await conflicts(fs, plan, deployed);
  await applyDeploy(fs, out, plan, deployed, {}, absent);
}

const lstatExists = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/**
 * What machine `mac` boots from the target folder `root` as it stands: its by-mac entry followed to
 * a host script, its chain to the class script, and that to a kernel and initrd that are there
 * whole. The host's command line when whole; "nothing" when its by-mac entry leads to no script (the
 * fetch fails and boot.ipxe exits, as for an unknown machine); otherwise what is broken.
 */
export function boots(root: string, mac: string): string {
  const at = (rel: string) => path.join(root, rel);
  const read = (rel: string) => (existsSync(at(rel)) && statSync(at(rel)).isFile() ? readFileSync(at(rel), "utf8") : undefined);
  const host = read(`by-mac/${mac}/ipxe`);
  if (host === undefined) return "nothing";
  const chain = /chain (\S+)/.exec(host)?.[1];
  const classRel = chain && path.posix.normalize(`by-host/x/${chain}`);
  const cls = classRel ? read(classRel) : undefined;
  if (cls === undefined || !classRel) return `a host script whose class script is missing (${chain})`;
  for (const m of cls.matchAll(/^(kernel|initrd) (\S+)$/gm)) {
    const rel = path.posix.join(path.posix.dirname(classRel), m[2]!);
    const bytes = read(rel);
    if (bytes !== `${m[1]} of generation ${m[2]!.split("/")[0]}\n`) return `a class script whose ${m[1]} is ${bytes === undefined ? "missing" : "not whole"} (${rel})`;
  }
  return /set cmdline (.*)$/m.exec(host)![1]!.trim();
}

/** A tree folder's files and links (links as `-> target`, special files as "(special)"), .netbuild/ left out. */
export function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === ".netbuild") continue;
      const st = lstatSync(path.join(root, r));
      if (st.isSymbolicLink()) files[r] = `-> ${readlinkSync(path.join(root, r))}`;
      else if (st.isDirectory()) walk(r);
      else if (st.isFile()) files[r] = readFileSync(path.join(root, r), "utf8");
      else files[r] = "(special)";
    }
  };
  walk("");
  return files;
}

/** What the target folder serves (snapshot) and what its record says it holds. */
export async function served(fs: TargetFs, root: string): Promise<{ files: Record<string, string>; entries: DeployedManifest["entries"]; pending: string[]; drift: unknown }> {
  const files = snapshot(root);
  const deployed = (await readDeployed(fs))!;
  const drift = await verifyTarget(fs, deployed);
  return { files, entries: deployed.entries, pending: deployed.pending, drift: { missing: drift.missing, changed: drift.changed } };
}

/** A new, empty target of the backend under test, with the folder it writes. */
export type OpenTarget = () => Promise<{ fs: TargetFs; root: string; close(): Promise<void> }>;

/**
 * Deploys `before` (hosts a, b and gone, links or copies, generation g1), then `after` (a wipes its
 * disks, gone goes, added comes, generation g2), with the connection dropped at each write in turn:
 * - at each drop, a and b boot their old or their new script with a whole kernel and initrd; in a
 *   links ↔ copies switch a MAC may boot nothing for the one rename that cannot be avoided (rename
 *   will not put a folder over a link, nor a link over a folder), only with its new entry whole
 *   beside it; gone and added boot themselves or nothing;
 * - the next deploy of `after` leaves what it leaves when nothing drops; one of `before` leaves what
 *   `before` alone leaves (or, once the dropped deploy recorded its switch, what deploying it back leaves).
 * `out` is a folder for the trees' artifacts (as a build leaves them). Returns how many writes the change took.
 */
export async function everyWrite(open: OpenTarget, out: string, fromMode: "links" | "copy", toMode: "links" | "copy", lost: "request" | "reply" = "request"): Promise<number> {
  const before = stepTree(out, "g1", { a: "", b: "", gone: "" }, fromMode);
  const after = stepTree(out, "g2", { a: "homelab.provision_disks=true", b: "", added: "" }, toMode);
  const run = async <T>(fn: (fs: TargetFs, root: string) => Promise<T>): Promise<T> => {
    const t = await open();
    try {
      return await fn(t.fs, t.root);
    } finally {
      await t.close();
    }
  };
  // What the same deploys leave when nothing drops.
  const clean = (...trees: StepTree[]) =>
    run(async (fs, root) => {
      for (const t of trees) await deployStepTree(fs, out, t);
      return served(fs, root);
    });
  // Deploying the old tree back undoes a change that was not recorded yet; once the dropped deploy
  // has recorded its switch, it is a deploy of its own (g2 is then kept as the previous generation).
  const [want, wantBefore, wantBack] = [await clean(before, after), await clean(before), await clean(before, after, before)];
  expect(want.drift).toEqual({ missing: [], changed: [] });
  const count = { n: 0 };
  await run(async (fs) => {
    await deployStepTree(fs, out, before);
    await deployStepTree(droppingAt(fs, Infinity, count), out, after);
  });
  const switching = fromMode !== toMode;
  const besideWhole = (root: string, mac: string) =>
    toMode === "copy"
      ? readFileSync(path.join(root, `by-mac/.${mac}.netbuild-new/ipxe`), "utf8") === after.contents.get(`by-mac/${mac}/ipxe`)
      : lstatExists(path.join(root, `by-mac/.${mac}.netbuild-tmp`)) && readlinkSync(path.join(root, `by-mac/.${mac}.netbuild-tmp`)) === `../by-host/${mac}` && readFileSync(path.join(root, `by-host/${mac}/ipxe`), "utf8") === after.contents.get(`by-host/${mac}/ipxe`);
  let windows = 0;
  for (let k = 0; k < count.n; k++) {
    for (const [next, expected] of [
      [after, [want]],
      [before, [wantBefore, wantBack]],
    ] as const) {
      await run(async (fs, root) => {
        await deployStepTree(fs, out, before);
        await expect(deployStepTree(droppingAt(fs, k, { n: 0 }, lost), out, after)).rejects.toThrow("injected");
        const where = `dropped at write ${k + 1} of ${count.n} (its ${lost} lost)`;
        if (next === after) {
          for (const [mac, ok] of [
            ["a", ["hostname=a", "hostname=a homelab.provision_disks=true"]],
            ["b", ["hostname=b"]],
          ] as const) {
            const got = boots(root, mac);
            if (got === "nothing" && switching) {
              expect(besideWhole(root, mac), `${where}: ${mac} boots nothing, and its new by-mac entry is not whole beside it`).toBe(true);
              windows++;
            } else expect(ok, `${where}: ${mac}`).toContain(got);
          }
          expect(["hostname=gone", "nothing"], `${where}: gone`).toContain(boots(root, "gone"));
          expect(["hostname=added", "nothing"], `${where}: added`).toContain(boots(root, "added"));
        }
        await deployStepTree(fs, out, next);
        expect(expected, `${where}, then deployed ${next === after ? "again" : "the old tree"}`).toContainEqual(await served(fs, root));
      });
    }
  }
  // The window exists where the mode changes (this would see a longer one), and nowhere else.
  expect(windows > 0, "a MAC that boots nothing for one rename").toBe(switching);
  return count.n;
}
