// The inventory caches (.netbuild/cache/) never serve what the files no longer say: after any edit a
// run says exactly what a first run in a root without caches says — the same model, the same
// errors at the same file:line:col. A host made invalid, a site setting its hosts depend on, lines
// inserted above a host, a file a class or host names going away, hosts files that cannot be cut
// into hosts, a damaged cache, and random edits of all of these.
import { appendFileSync, cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadInventory } from "../src/core/inventory.ts";
import { INVENTORY_CACHE, readInventory, readInventorySource, YAML_CACHE } from "../src/adapters/inventory-files.ts";
import { cleanupTempDirs, cli, inventory, tempDir, type CliRun } from "./support/inventory.ts";
import { seeded } from "./support/random.ts";

const mac = (i: number) => `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;

function hostYaml(i: number, cls = "small"): string {
  return `  h${i}:\n    class: ${cls}\n    mac: "${mac(i)}"\n    ip: 10.0.${(i >> 8) & 255}.${i & 255}\n    kernelParams: [console=ttyS0]\n`;
}

function rack(n: number): string {
  let text = "# rack 1\nhosts:\n";
  for (let i = 1; i <= n; i++) text += hostYaml(i);
  return text;
}

const BASE: Record<string, string> = {
  "netbuild.yaml": "flagPrefix: homelab\ntalos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: secrets/worker.yaml }\n",
  "classes/small.yaml": "kind: prebuilt\nkernel: { path: ./small/kernel }\ninitrd: { path: ./small/initrd }\n",
  "classes/small/kernel": "k\n",
  "classes/small/initrd": "i\n",
  "classes/tal.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  machine: { role: worker }\n",
  "hosts/rack.yaml": rack(20),
  "hosts/solo.yaml": 'class: small\nmac: "52:54:00:10:00:01"\n',
  "hosts/t1.yaml": 'class: tal\nmac: "52:54:00:20:00:01"\ntalos: { patches: [../patches/p.yaml] }\n',
  "patches/p.yaml": "machine: {}\n",
};

/** The first line of each error or warning, as printed. */
function messages(r: CliRun): string[] {
  return r.stderr.split("\n").filter((l) => /^\S+:\d+:\d+ {2}|^warning: |^netbuild: /.test(l));
}

/** plan --json in `root`, with the caches earlier runs left, and in a copy of it without them: the same exit code, output and messages. */
async function expectAsFirstRun(root: string): Promise<CliRun> {
  const cached = await cli(["plan", "--json"], root);
  const fresh = tempDir();
  cpSync(root, fresh, { recursive: true });
  rmSync(path.join(fresh, ".netbuild"), { recursive: true, force: true });
  const first = await cli(["plan", "--json"], fresh);
  const same = (r: CliRun, dir: string) => ({ code: r.code, stdout: r.stdout.replaceAll(dir, "<root>"), stderr: r.stderr.replaceAll(dir, "<root>") });
  expect(same(cached, root)).toEqual(same(first, fresh));
  return cached;
}

/** Runs plan in `root` until its caches hold it (the second run takes the model whole). */
async function cached(root: string): Promise<void> {
  expect((await cli(["plan"], root)).code).toBe(0);
  expect(existsSync(path.join(root, INVENTORY_CACHE))).toBe(true);
}

function edit(root: string, rel: string, change: (text: string) => string): void {
  const file = path.join(root, rel);
  const before = readFileSync(file, "utf8");
  const after = change(before);
  expect(after, `the edit of ${rel} changed nothing`).not.toBe(before);
  writeFileSync(file, after);
}

describe("the inventory caches", () => {
  afterAll(cleanupTempDirs);

  it("reports a MAC made invalid after a cached run at its line, in a file of many hosts and in a file of one", async () => {
    const root = inventory(BASE);
    await cached(root);
    edit(root, "hosts/rack.yaml", (t) => t.replace(`mac: "${mac(7)}"`, 'mac: "52:54:00:00:00:0g"'));
    edit(root, "hosts/solo.yaml", (t) => t.replace('"52:54:00:10:00:01"', '"52:54:00:10:00"'));
    const r = await expectAsFirstRun(root);
    expect(r.code).toBe(2);
    // `  h7:` is line 2 + 5*6 + 1: hosts start on line 3, five lines each.
    expect(messages(r)).toEqual(expect.arrayContaining(['hosts/rack.yaml:35:10  hosts.h7.mac: "52:54:00:00:00:0g" is not a MAC address', 'hosts/solo.yaml:2:6  hosts.solo.mac: "52:54:00:10:00" is not a MAC address']));
    // Fixed again: the hosts that never changed still come from the cache, the fixed ones are checked.
    edit(root, "hosts/rack.yaml", (t) => t.replace('mac: "52:54:00:00:00:0g"', `mac: "${mac(7)}"`));
    edit(root, "hosts/solo.yaml", (t) => t.replace('"52:54:00:10:00"', '"52:54:00:10:00:01"'));
    expect((await expectAsFirstRun(root)).code).toBe(0);
  });

  it("names the other host's file and line when an edited host takes the MAC of one that came from the cache", async () => {
    const root = inventory(BASE);
    await cached(root);
    edit(root, "hosts/solo.yaml", (t) => t.replace('"52:54:00:10:00:01"', `"${mac(12)}"`));
    const r = await expectAsFirstRun(root);
    expect(messages(r)).toContain(`hosts/rack.yaml:60:10  hosts.h12.mac: MAC ${mac(12)} is also used by host solo (hosts/solo.yaml:2)`);
  });

  it("checks every host again when the site's flagPrefix changes", async () => {
    const root = inventory({ ...BASE, "hosts/rack.yaml": rack(20).replace("  h3:\n", "  h3:\n    description: lab.provision_disks is its own flag here\n").replace(/(  h3:\n(?:    .*\n)*?    kernelParams: \[)console=ttyS0/, "$1lab.provision_disks=true") });
    await cached(root);
    edit(root, "netbuild.yaml", (t) => t.replace("flagPrefix: homelab", "flagPrefix: lab"));
    const r = await expectAsFirstRun(root);
    expect(r.code).toBe(2);
    expect(messages(r)).toContain('hosts/rack.yaml:18:20  hosts.h3.kernelParams[0]: "lab.provision_disks=true" sets a provisioning flag by hand');
    edit(root, "netbuild.yaml", (t) => t.replace("flagPrefix: lab", "flagPrefix: homelab"));
    expect((await expectAsFirstRun(root)).code).toBe(0);
  });

  it("points at the right lines after lines are inserted above a host it has cached", async () => {
    const root = inventory(BASE);
    await cached(root);
    // Comments and a new host above h10, then h10's MAC broken: every line below moved by 8.
    edit(root, "hosts/rack.yaml", (t) => t.replace("  h10:\n", `  # moved here from rack 2\n  #\n\n${hostYaml(99)}  h10:\n`).replace(`mac: "${mac(10)}"`, 'mac: "nope"'));
    const r = await expectAsFirstRun(root);
    expect(messages(r)).toContain('hosts/rack.yaml:58:10  hosts.h10.mac: "nope" is not a MAC address');
    // And lines inserted above with nothing wrong: h10 fixed, h99's MAC taken by h15, reported where both are now.
    edit(root, "hosts/rack.yaml", (t) => t.replace('mac: "nope"', `mac: "${mac(10)}"`));
    expect((await expectAsFirstRun(root)).code).toBe(0);
    edit(root, "hosts/rack.yaml", (t) => `# a note\n# another\n${t}`.replace(`mac: "${mac(15)}"`, `mac: "${mac(99)}"`));
    const dup = await expectAsFirstRun(root);
    expect(messages(dup)).toEqual(
      expect.arrayContaining([`hosts/rack.yaml:55:10  hosts.h99.mac: MAC ${mac(99)} is also used by host h15 (hosts/rack.yaml:85)`, `hosts/rack.yaml:85:10  hosts.h15.mac: MAC ${mac(99)} is also used by host h99 (hosts/rack.yaml:55)`]),
    );
  });

  it("checks a Talos host again when its class's machine defaults change or a patch it names goes away", async () => {
    const root = inventory(BASE);
    await cached(root);
    edit(root, "classes/tal.yaml", (t) => t.replace("machine: { role: worker }", "machine: {}"));
    const role = await expectAsFirstRun(root);
    expect(messages(role).join("\n")).toContain("hosts/t1.yaml:3:8  hosts.t1.talos.role: host t1 of Talos class tal has no role");
    edit(root, "classes/tal.yaml", (t) => t.replace("machine: {}", "machine: { role: worker }"));
    expect((await expectAsFirstRun(root)).code).toBe(0);
    await cached(root);
    rmSync(path.join(root, "patches/p.yaml"));
    const gone = await expectAsFirstRun(root);
    expect(messages(gone)).toContain('hosts/t1.yaml:3:20  hosts.t1.talos.patches[0]: "../patches/p.yaml" does not exist (looked for "patches/p.yaml")');
  });

  it("takes nothing from the cache when a file a class names goes away, though no inventory file changed", async () => {
    const root = inventory(BASE);
    await cached(root);
    rmSync(path.join(root, "classes/small/initrd"));
    const r = await expectAsFirstRun(root);
    expect(messages(r)).toContain('classes/small.yaml:3:17  classes.small.initrd.path: "./small/initrd" does not exist (looked for "classes/small/initrd")');
  });

  it("reads a hosts file whole when it cannot be cut into hosts, and says what a first run says", async () => {
    const variants: [string, (t: string) => string][] = [
      ["an alias of another host's anchor", (t) => t.replace("kernelParams: [console=ttyS0]", "kernelParams: &kp [console=ttyS0]").replace(/(  h2:\n(?:    .*\n)*?    kernelParams: )\[console=ttyS0\]/, "$1*kp")],
      ["the same host twice", (t) => `${t}${hostYaml(3).replace(mac(3), mac(77))}`],
      ["flow style at the top", () => `hosts: { h1: { class: small, mac: "${mac(1)}" }, h2: { class: small, mac: "${mac(2)}" } }\n`],
      ["a quoted key", (t) => t.replace("  h4:", '  "h4":')],
      ["a numeric key", (t) => t.replace("  h4:", "  0x10:")],
      ["a string spanning hosts", (t) => t.replace("  h5:\n    class: small\n", '  h5:\n    class: small\n    description: "open\n  h6:\n    shut"\n')],
      ["a line outdented into the next host", (t) => t.replace("  h5:\n    class: small\n", "  h5:\n  class: small\n")],
      ["a second top-level key", (t) => `${t}extra: 1\n`],
      ["CRLF line ends", (t) => t.replaceAll("\n", "\r\n")],
      ["a tab", (t) => t.replace("    class: small\n", "\tclass: small\n")],
    ];
    for (const [what, change] of variants) {
      const root = inventory(BASE);
      await cached(root);
      edit(root, "hosts/rack.yaml", change);
      const r = await expectAsFirstRun(root);
      expect([0, 2], what).toContain(r.code);
      // Once more, from whatever the first of these runs cached.
      await expectAsFirstRun(root);
    }
  });

  it("remembers a hosts file it had to read whole, and still reads the others one host at a time", async () => {
    const root = inventory({ ...BASE, "hosts/odd.yaml": `hosts:\n  o1:\n    class: small\n    mac: "${mac(201)}"\n    kernelParams: &kp [quiet]\n  o2:\n    class: small\n    mac: "${mac(202)}"\n    kernelParams: *kp\n` });
    const first = await readInventory(root);
    const loaded = loadInventory(first.source);
    if (!loaded.ok) throw new Error("not loaded");
    expect([...loaded.memo.whole].map((k) => k.split("\0")[0])).toEqual(["hosts/odd.yaml"]);
    // o1 and o2 come from the whole file; rack's 20 hosts, solo and t1 are remembered one by one.
    expect(loaded.memo.hosts.size).toBe(22);
    expect(loaded.inventory.hosts.find((h) => h.name === "o2")?.kernelParams).toEqual(["quiet"]);
    first.save(loaded);
    edit(root, "hosts/odd.yaml", (t) => t.replace("[quiet]", "[quiet, x=1]"));
    edit(root, "hosts/rack.yaml", (t) => t.replace(`mac: "${mac(4)}"`, `mac: "${mac(202)}"`));
    const r = await expectAsFirstRun(root);
    expect(messages(r)).toContain(`hosts/rack.yaml:20:10  hosts.h4.mac: MAC ${mac(202)} is also used by host o2 (hosts/odd.yaml:8)`);
  });

  it("checks only the edited file of a root with one file per host, and says what a first run says", async () => {
    const files: Record<string, string> = { ...BASE };
    delete files["hosts/rack.yaml"];
    for (let i = 1; i <= 30; i++) files[`hosts/n${i}.yaml`] = `class: small\nmac: "${mac(i)}"\nip: 10.0.0.${i}\n`;
    const root = inventory(files);
    await cached(root);
    edit(root, "hosts/n17.yaml", (t) => `# moved to rack 2\n${t.replace("10.0.0.17", "10.0.0.3")}`);
    const dup = await expectAsFirstRun(root);
    expect(messages(dup)).toContain("hosts/n17.yaml:4:5  hosts.n17.ip: IP 10.0.0.3 is also used by host n3 (hosts/n3.yaml:3)");
    edit(root, "hosts/n17.yaml", (t) => t.replace("10.0.0.3", "10.0.0.17"));
    expect((await expectAsFirstRun(root)).code).toBe(0);
    const read = await readInventory(root);
    expect(read.known).toBeDefined();
  });

  it("never caches bad input: a run with an error writes no cache, and the next valid run checks everything", async () => {
    const root = inventory({ ...BASE, "hosts/solo.yaml": 'class: small\nmac: "52:54:00:10:00:0x"\n' });
    const bad = await cli(["plan"], root);
    expect(bad.code).toBe(2);
    expect(existsSync(path.join(root, ".netbuild")), ".netbuild/ was written").toBe(false);
    edit(root, "hosts/solo.yaml", (t) => t.replace(":0x", ":01"));
    expect((await expectAsFirstRun(root)).code).toBe(0);
    expect(existsSync(path.join(root, YAML_CACHE))).toBe(true);
    // And after a valid run, a bad one leaves the caches of the valid one as they were.
    const before = readFileSync(path.join(root, INVENTORY_CACHE));
    edit(root, "hosts/rack.yaml", (t) => t.replace("class: small", "class: smal"));
    expect((await expectAsFirstRun(root)).code).toBe(2);
    expect(readFileSync(path.join(root, INVENTORY_CACHE)).equals(before)).toBe(true);
  });

  it("starts afresh from a damaged or truncated cache", async () => {
    const root = inventory(BASE);
    await cached(root);
    const file = path.join(root, INVENTORY_CACHE);
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    writeFileSync(file, bytes);
    expect((await expectAsFirstRun(root)).code).toBe(0);
    writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    edit(root, "hosts/rack.yaml", (t) => t.replace(`mac: "${mac(2)}"`, 'mac: "x"'));
    expect(messages(await expectAsFirstRun(root))).toContain('hosts/rack.yaml:10:10  hosts.h2.mac: "x" is not a MAC address');
    writeFileSync(path.join(root, YAML_CACHE), "{ not json");
    appendFileSync(file, "more");
    expect((await expectAsFirstRun(root)).code).toBe(2);
  });

  it("gives the same model from its caches as a first load, undefined values and all", async () => {
    const root = inventory(BASE);
    const first = loadInventory(await readInventorySource(root));
    expect(first.ok).toBe(true);
    const miss = await readInventory(root);
    expect(miss.known).toBeUndefined();
    const loaded = loadInventory(miss.source);
    if (!loaded.ok || !first.ok) throw new Error("not loaded");
    expect(loaded.inventory).toStrictEqual(first.inventory);
    miss.save(loaded);
    const hit = await readInventory(root);
    expect(hit.known).toStrictEqual(first.inventory);
    // One host edited: that host is read and checked, every other one recalled, and the model is a first load's.
    edit(root, "hosts/rack.yaml", (t) => t.replace(/(  h9:\n(?:    .*\n)*?    kernelParams: \[console=ttyS0)\]/, "$1, quiet]"));
    const edited = await readInventory(root);
    expect(edited.known).toBeUndefined();
    const again = loadInventory(edited.source);
    const fresh = loadInventory(await readInventorySource(root));
    if (!again.ok || !fresh.ok) throw new Error("not loaded");
    expect(again.inventory).toStrictEqual(fresh.inventory);
    expect(again.inventory.hosts.find((h) => h.name === "h9")?.kernelParams).toEqual(["console=ttyS0", "quiet"]);
    // The other 21 are the very hosts the cache held, not checked again.
    const remembered = new Set([...edited.source.earlier!.hosts.values()].map((m) => m.host));
    expect(again.inventory.hosts.filter((h) => remembered.has(h)).map((h) => h.name)).toEqual(first.inventory.hosts.map((h) => h.name).filter((n) => n !== "h9"));
    expect(again.memo.hosts.size).toBe(22);
  });

  it("says what a first run says after each of 80 random edits", { timeout: 300_000 }, async () => {
    const { random, pick } = seeded(20261129);
    const host = () => `h${1 + Math.floor(random() * 20)}`;
    /** Replaces the first match of `re` inside host `h`'s lines of rack.yaml (or leaves the text as it is). */
    const inHost = (t: string, h: string, re: RegExp, by: string) => {
      const at = t.indexOf(`  ${h}:\n`);
      if (at === -1) return t;
      const end = t.indexOf("\n  h", at + 1);
      const stop = end === -1 ? t.length : end;
      return t.slice(0, at) + t.slice(at, stop).replace(re, by) + t.slice(stop);
    };
    const edits: ((t: string) => string)[] = [
      (t) => inHost(t, host(), /kernelParams: \[[^\]]*\]/, `kernelParams: [console=ttyS0, r=${Math.floor(random() * 1e6)}]`),
      (t) => inHost(t, host(), /mac: "[^"]*"/, pick(['mac: "zz:54:00:00:00:01"', `mac: "${mac(1 + Math.floor(random() * 20))}"`, "mac: 52:54:00:00:0a:0b", 'mac: "52-54-00-00-0a-0c"'])),
      (t) => t.replace(`  ${host()}:\n`, (m) => `${pick(["# note\n", "\n\n", "  # indented note\n", hostYaml(100 + Math.floor(random() * 50))])}${m}`),
      (t) => inHost(t, host(), /class: \w+/, pick(["class: small", "class: tal", "class: nope", "class: Small"])),
      (t) => inHost(t, host(), /ip: [\d.]+/, pick(["ip: 10.0.0.1", "ip: 10.0.0.300", "ip: 10.9.9.9"])),
      (t) => inHost(t, host(), /\n {4}kernelParams/, pick(["\n    provision: { disks: true }\n    kernelParams", "\n    bogus: 1\n    kernelParams", "\n  kernelParams", "\n    kernelParams: &a [x=1]\n    kernelParams"])),
      (t) => t.replace(`  ${host()}:`, (m) => pick([m.replace(/h(\d+)/, "H$1"), m.replace(/h(\d+)/, "h1"), `${m}  # trailing comment`, m.replace(":", ": {}")])),
      (t) => (random() < 0.5 ? t.replaceAll("\r\n", "\n") : t.replace(/\r?\n/g, "\r\n")),
    ];
    const root = inventory(BASE);
    const good = readFileSync(path.join(root, "hosts/rack.yaml"), "utf8");
    const codes: number[] = [];
    for (let i = 0; i < 80; i++) {
      const r = random();
      if (r < 0.1) writeFileSync(path.join(root, "hosts/rack.yaml"), good);
      else if (r < 0.15) edit(root, "netbuild.yaml", (t) => (t.includes("flagPrefix: homelab") ? t.replace("flagPrefix: homelab", "flagPrefix: lab") : t.replace("flagPrefix: lab", "flagPrefix: homelab")));
      else if (r < 0.2) writeFileSync(path.join(root, "classes/small.yaml"), `kind: prebuilt\nkernel: { path: ./small/kernel }\ninitrd: { path: ./small/initrd }\nkernelParams: [${pick(["quiet", "lab.provision_disks=true", "homelab.provision_disks=true", "x=1"])}]\n`);
      else {
        const file = path.join(root, "hosts/rack.yaml");
        writeFileSync(file, pick(edits)(readFileSync(file, "utf8")));
      }
      const run = await expectAsFirstRun(root);
      expect([0, 2], `edit ${i}:\n${run.stderr}`).toContain(run.code);
      codes.push(run.code);
    }
    // Both valid inventories (which the caches then hold) and invalid ones, often.
    expect(codes.filter((c) => c === 0).length).toBeGreaterThan(15);
    expect(codes.filter((c) => c === 2).length).toBeGreaterThan(15);
  });
});
