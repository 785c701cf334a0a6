// The tree as the boot server serves it, walked the way iPXE walks it (core/boot-chain.ts), without
// QEMU: what each MAC boots, with which command line. The QEMU boots in test/e2e-boot.test.ts prove
// the real firmware does the same; these check every case in milliseconds, so that a mutation of
// the tree planner or a template is caught by a fast test and not only by a minute of boots.
import { describe, expect, it } from "vitest";
import { walkBootChain, macVariables } from "../../src/core/boot-chain.ts";
import { loadInventory, type Inventory } from "../../src/core/inventory.ts";
import type { InventoryFile } from "../../src/core/inventory-source.ts";
import type { ClassName } from "../../src/core/names.ts";
import { hostEntries, hostOfScript, isWipeParam, layerOf, LAYERS, planTree, scriptClass, scriptHeld, scriptParams, scriptWipe, scriptWipeForced, scriptWipes, sealInputs, storeHashOf, type ClassBuild, type IpxeTemplates, type Tree } from "../../src/core/tree.ts";
import { ipxeTemplates } from "../../src/templates.ts";

const KERNEL = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-demo/bzImage";
const INITRD = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-demo/initrd";
const BUILD: ClassBuild = { kernel: { storeFile: KERNEL, size: 10 }, initrd: { storeFile: INITRD, size: 20 }, kernelParams: ["console=ttyS0", "panic=-1"] as ClassBuild["kernelParams"] };
const CLASS = "kind: prebuilt\nkernel: { path: ./demo/bzImage }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0, panic=-1]\n";

function file(p: string, text: string): InventoryFile {
  return { path: p, text };
}

function load(site: string, hosts: string): Inventory {
  const r = loadInventory({
    site: file("netbuild.yaml", site),
    classes: [file("classes/demo.yaml", CLASS), file("classes/other.yaml", CLASS)],
    hosts: [file("hosts/all.yaml", hosts)],
    probe: () => "file",
  });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.inventory;
}

function plan(inventory: Inventory): Tree {
  const builds = new Map<ClassName, ClassBuild>(inventory.classes.map((c) => [c.name, BUILD]));
  return planTree({ inventory, builds, before: new Map(), templates: ipxeTemplates() });
}

/** What a machine with `mac` boots from the tree, served at http://boot/: symlinks followed as a web server does. */
async function boot(tree: Tree, mac: string) {
  const byPath = new Map(tree.entries.map((e) => [e.path, e]));
  const fetch = async (url: string): Promise<string | undefined> => {
    let rel = new URL(url).pathname.slice(1);
    for (let hops = 0; hops < 8; hops++) {
      const parts = rel.split("/");
      // A symlink anywhere along the path (by-mac/<mac> → ../by-host/<host>).
      const at = parts.findIndex((_, i) => byPath.get(parts.slice(0, i + 1).join("/"))?.kind === "symlink");
      if (at < 0) break;
      const link = byPath.get(parts.slice(0, at + 1).join("/"));
      if (link?.kind !== "symlink") break;
      rel = new URL(link.target, `http://boot/${parts.slice(0, at + 1).join("/")}`).pathname.slice(1) + (at + 1 < parts.length ? `/${parts.slice(at + 1).join("/")}` : "");
    }
    const e = byPath.get(rel);
    return e?.kind === "file" && typeof e.content === "string" ? e.content : undefined;
  };
  return walkBootChain("http://boot/boot.ipxe", macVariables(mac.replace(/:/g, "-")), fetch);
}

const NAMES = ["a1", "b2", "c3", "d4", "e5"];
// MACs in an order that is neither the hosts' nor its reverse, so that by-mac/ must be sorted.
const macOf = (i: number) => `52:54:00:00:00:${(0x50 + [3, 0, 4, 1, 2][i]!).toString(16)}`;

function hostsFile(armed: number | undefined, force = false): string {
  return `hosts:\n${NAMES.map((n, i) => `  ${n}:\n    class: demo\n    mac: "${macOf(i)}"\n    kernelParams: [k${i}=v]\n${i === armed ? `    provision: { disks: true, id: w${i}${force ? ", force: true" : ""} }\n` : ""}`).join("")}`;
}

describe("the iPXE binaries in the tree", () => {
  it("puts each under ipxe/, byte for byte, in the last layer (a machine fetches it first, and it leads to boot.ipxe); none without them", () => {
    const inventory = load("", hostsFile(undefined));
    const builds = new Map<ClassName, ClassBuild>(inventory.classes.map((c) => [c.name, BUILD]));
    // Every byte value, invalid UTF-8 included: nothing may treat them as text.
    const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
    const tree = planTree({ inventory, builds, before: new Map(), templates: ipxeTemplates(), ipxe: [{ name: "undionly.kpxe", content: bytes }, { name: "snponly.efi", content: bytes.subarray(3) }] });
    const ipxe = tree.entries.filter((e) => e.path.startsWith("ipxe/"));
    expect(ipxe.map((e) => [e.kind, e.layer, e.path])).toEqual([["file", "entry", "ipxe/snponly.efi"], ["file", "entry", "ipxe/undionly.kpxe"]]);
    expect(ipxe.map((e) => e.kind === "file" && Buffer.from(e.content as Uint8Array).equals(e.path.endsWith("kpxe") ? bytes : bytes.subarray(3)))).toEqual([true, true]);
    expect(tree.entries.slice(-3).map((e) => e.path)).toEqual(["boot.ipxe", "ipxe/snponly.efi", "ipxe/undionly.kpxe"]);
    expect(layerOf("ipxe/undionly.kpxe")).toBe("entry");
    expect(plan(inventory).entries.filter((e) => e.path.startsWith("ipxe"))).toEqual([]);
  });
});

describe("what each machine boots, walked through the planned tree", () => {
  for (const links of ["symlink", "copy"] as const) {
    it(`sets the wipe flag for the armed host only, whichever position it sorts in (${links} mode)`, async () => {
      for (let armed = 0; armed < NAMES.length; armed++) {
        const tree = plan(load(`links: ${links}\n`, hostsFile(armed, armed === 2)));
        expect(tree.wipes).toEqual([NAMES[armed]]);
        for (let i = 0; i < NAMES.length; i++) {
          const r = await boot(tree, macOf(i));
          expect(r.problem, `${links}, armed ${armed}, host ${i}`).toBeUndefined();
          expect(r.result).toBe("boot");
          const wipe = i === armed ? ["homelab.provision_disks=true", `homelab.provision_id=w${i}`, ...(i === 2 ? ["homelab.provision_force=true"] : [])] : [];
          // The whole command line, in order: the class's own, then the host's (its name, the wipe, its own parameters).
          expect(r.kernel?.args, `${links}, armed ${armed}, host ${i}`).toEqual(["initrd=initrd", "console=ttyS0", "panic=-1", `hostname=${NAMES[i]}`, ...wipe, `k${i}=v`]);
          expect(r.kernel?.url).toBe("http://boot/by-class/demo/0123456789abcdfghijklmnpqrsvwxyz/kernel");
          expect(r.initrds).toEqual(["http://boot/by-class/demo/zyxwvsrqpnmlkjihgfdcba9876543210/initrd"]);
          const banner = r.console.filter((l) => l.includes("WIPED"));
          expect(banner, `${links}, armed ${armed}, host ${i}`).toEqual(i === armed ? [`netbuild: !!! ${NAMES[i]}: DISKS WILL BE FORMATTED (WIPED) ON THIS BOOT !!!`] : []);
          if (i === armed) expect(r.console).toContain(`netbuild: !!! provision id w${i}${i === 2 ? ", FORCED" : ""} (it formats once per id)`);
        }
      }
    });
  }

  it("uses the site's flag prefix for the wipe flag", async () => {
    const tree = plan(load("flagPrefix: rack7\n", hostsFile(1)));
    expect((await boot(tree, macOf(1))).kernel?.args).toContain("rack7.provision_disks=true");
    expect((await boot(tree, macOf(1))).kernel?.args.join(" ")).not.toContain("homelab.");
  });

  it("boots nothing for an unknown machine by default (strict boot.ipxe), and falls through to the next boot device", async () => {
    const tree = plan(load("", hostsFile(0)));
    const r = await boot(tree, "52:54:00:99:99:99");
    expect(r.problem).toBeUndefined();
    expect(r.result).toBe("exit");
    expect(r.exitStatus).toBe(1);
    expect(r.kernel).toBeUndefined();
    expect(r.steps.map((s) => [s.url, s.status])).toEqual([
      ["http://boot/boot.ipxe", "ok"],
      ["http://boot/by-mac/52-54-00-99-99-99/ipxe", "missing"],
    ]);
    expect(r.console).toEqual(["netbuild: unknown machine 52:54:00:99:99:99, booting nothing", "netbuild: to boot it, add a host with this MAC under hosts/"]);
    const entry = tree.entries.find((e) => e.path === "boot.ipxe");
    expect(entry?.kind === "file" && entry.content).not.toMatch(/^chain by-class/m);
  });

  it("boots the named class for an unknown machine, without any host's name or wipe flag", async () => {
    const tree = plan(load("unknownMachines: { class: other }\n", hostsFile(4)));
    const r = await boot(tree, "52:54:00:99:99:99");
    expect(r.result).toBe("boot");
    expect(r.kernel?.args).toEqual(["initrd=initrd", "console=ttyS0", "panic=-1"]);
    expect(r.kernel?.url).toBe("http://boot/by-class/other/0123456789abcdfghijklmnpqrsvwxyz/kernel");
    // A known machine still boots its own host script.
    expect((await boot(tree, macOf(4))).kernel?.args).toContain("homelab.provision_disks=true");
  });

  it("falls back to strict when the class named for unknown machines is not built", async () => {
    const inventory = load("unknownMachines: { class: other }\n", hostsFile(undefined));
    const tree = planTree({ inventory, builds: new Map([["demo" as ClassName, BUILD]]), before: new Map(), templates: ipxeTemplates() });
    const r = await boot(tree, "52:54:00:99:99:99");
    expect(r.result).toBe("exit");
    expect(r.kernel).toBeUndefined();
    // Strict: boot.ipxe names no class at all (not one the server lacks, which would fail into the same exit).
    expect(r.console).toEqual(["netbuild: unknown machine 52:54:00:99:99:99, booting nothing", "netbuild: to boot it, add a host with this MAC under hosts/"]);
  });

  it("leaves out hosts of classes not built, and no wipe of theirs is counted", async () => {
    const inventory = load("", hostsFile(3).replace("  d4:\n    class: demo", "  d4:\n    class: other"));
    const tree = planTree({ inventory, builds: new Map([["demo" as ClassName, BUILD]]), before: new Map(), templates: ipxeTemplates() });
    expect(tree.wipes).toEqual([]);
    expect(tree.skippedHosts).toEqual([{ name: "d4", className: "other" }]);
    expect(tree.entries.filter((e) => e.path.includes("d4") || e.path.includes(macOf(3).replace(/:/g, "-")))).toEqual([]);
    expect((await boot(tree, macOf(3))).result).toBe("exit");
  });
});

describe("the planned tree's paths, layers and scripts", () => {
  it("puts each path in its layer, and writes layer by layer, each in path order, even when hosts and MACs sort differently", () => {
    expect(["boot.ipxe", "by-mac/52-54-00-00-00-01", "by-mac/52-54-00-00-00-01/ipxe", "by-host/h/talos.yaml", "by-host/h/ipxe", "by-class/c/ipxe", "by-class/c/0123/kernel", "by-class/c/talos.yaml"].map(layerOf)).toEqual([
      "entry",
      "mac",
      "mac",
      "config",
      "host",
      "class",
      "artifact",
      "class",
    ]);
    for (const links of ["symlink", "copy"] as const) {
      const tree = plan(load(`links: ${links}\n`, hostsFile(1)));
      const paths = tree.entries.map((e) => e.path);
      const rank = (p: string) => LAYERS.indexOf(layerOf(p));
      const expected = [...paths].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
      expect(paths).toEqual(expected);
      // Every entry is one of the tree's: two classes' artifacts and scripts, five hosts, five MACs, boot.ipxe.
      const macs = NAMES.map((_, i) => `by-mac/${macOf(i).replace(/:/g, "-")}${links === "copy" ? "/ipxe" : ""}`).sort();
      expect(paths).toEqual([
        "by-class/demo/0123456789abcdfghijklmnpqrsvwxyz/kernel",
        "by-class/demo/zyxwvsrqpnmlkjihgfdcba9876543210/initrd",
        "by-class/other/0123456789abcdfghijklmnpqrsvwxyz/kernel",
        "by-class/other/zyxwvsrqpnmlkjihgfdcba9876543210/initrd",
        "by-class/demo/ipxe",
        "by-class/other/ipxe",
        ...NAMES.map((n) => `by-host/${n}/ipxe`),
        ...macs,
        "boot.ipxe",
      ]);
    }
  });

  it("sorts a layer whose entries come in descending order", () => {
    const tree = plan(load("", 'hosts:\n  a:\n    class: demo\n    mac: "52:54:00:00:00:02"\n  b:\n    class: demo\n    mac: "52:54:00:00:00:01"\n'));
    expect(tree.entries.filter((e) => e.layer === "mac").map((e) => e.path)).toEqual(["by-mac/52-54-00-00-00-01", "by-mac/52-54-00-00-00-02"]);
  });

  it("links each MAC to its host's folder (symlink mode) or copies the host's script (copy mode)", () => {
    const sym = plan(load("links: symlink\n", hostsFile(0)));
    const copy = plan(load("links: copy\n", hostsFile(0)));
    const script = (t: Tree, p: string) => {
      const e = t.entries.find((x) => x.path === p);
      return e?.kind === "file" ? e.content : undefined;
    };
    for (let i = 0; i < NAMES.length; i++) {
      const mac = macOf(i).replace(/:/g, "-");
      expect(sym.entries.find((e) => e.path === `by-mac/${mac}`)).toEqual({ kind: "symlink", layer: "mac", path: `by-mac/${mac}`, target: `../by-host/${NAMES[i]}` });
      expect(copy.entries.find((e) => e.path.startsWith(`by-mac/${mac}`))).toEqual({ kind: "file", layer: "mac", path: `by-mac/${mac}/ipxe`, content: script(copy, `by-host/${NAMES[i]}/ipxe`) });
    }
  });

  it("writes the class script with the artifacts' paths relative to it, the class's parameters and the host's ${cmdline}, and records the class", () => {
    const tree = plan(load("", hostsFile(undefined)));
    const cls = tree.entries.find((e) => e.path === "by-class/demo/ipxe");
    expect(cls?.kind === "file" && typeof cls.content === "string" && cls.content.split("\n").filter((l) => !l.startsWith("#"))).toEqual([
      "kernel 0123456789abcdfghijklmnpqrsvwxyz/kernel initrd=initrd console=ttyS0 panic=-1 ${cmdline}",
      "initrd --name initrd zyxwvsrqpnmlkjihgfdcba9876543210/initrd",
      "boot",
      "",
    ]);
    expect(tree.entries.filter((e) => e.kind === "artifact" && e.path.startsWith("by-class/demo/"))).toEqual([
      { kind: "artifact", layer: "artifact", path: "by-class/demo/0123456789abcdfghijklmnpqrsvwxyz/kernel", source: KERNEL, size: 10 },
      { kind: "artifact", layer: "artifact", path: "by-class/demo/zyxwvsrqpnmlkjihgfdcba9876543210/initrd", source: INITRD, size: 20 },
    ]);
    expect(tree.classes.find((c) => c.name === "demo")).toEqual({
      name: "demo",
      kind: "prebuilt",
      kernel: { path: "by-class/demo/0123456789abcdfghijklmnpqrsvwxyz/kernel", storeFile: KERNEL, size: 10 },
      initrd: { path: "by-class/demo/zyxwvsrqpnmlkjihgfdcba9876543210/initrd", storeFile: INITRD, size: 20 },
      kernelParams: ["console=ttyS0", "panic=-1"],
      previous: undefined,
    });
    expect(tree.skippedHosts).toEqual([]);
    expect(() => storeHashOf("/tmp/bzImage")).toThrow("not a Nix store path: /tmp/bzImage");
    expect(storeHashOf(KERNEL)).toBe("0123456789abcdfghijklmnpqrsvwxyz");
  });

  it("keeps the generation the class script pointed at until now, and the one before that only while nothing changed", () => {
    const inventory = load("", hostsFile(undefined));
    const builds = new Map<ClassName, ClassBuild>([["demo" as ClassName, BUILD]]);
    const old = { kernel: "by-class/demo/old0000000000000000000000000000k/kernel", initrd: "by-class/demo/old0000000000000000000000000000i/initrd" };
    const older = { kernel: "by-class/demo/older000000000000000000000000k/kernel", initrd: "by-class/demo/older000000000000000000000000i/initrd" };
    const current = { kernel: "by-class/demo/0123456789abcdfghijklmnpqrsvwxyz/kernel", initrd: "by-class/demo/zyxwvsrqpnmlkjihgfdcba9876543210/initrd" };
    const kept = (t: Tree) => t.entries.filter((e) => e.kind === "artifact" && e.source === undefined).map((e) => [e.path, e.kind === "artifact" && e.size]);

    // A new build: the old generation is kept (no source: it is already there), the older one goes.
    const changed = planTree({ inventory, builds, before: new Map([["demo" as ClassName, { ...old, previous: older }]]), templates: ipxeTemplates() });
    expect(kept(changed)).toEqual([
      [old.initrd, -1],
      [old.kernel, -1],
    ]);
    expect(changed.classes[0]!.previous).toEqual(old);

    // The same build again: what was kept before stays kept.
    const same = planTree({ inventory, builds, before: new Map([["demo" as ClassName, { ...current, previous: old }]]), templates: ipxeTemplates() });
    expect(kept(same)).toEqual([
      [old.initrd, -1],
      [old.kernel, -1],
    ]);
    expect(same.classes[0]!.previous).toEqual(old);

    // Only the initrd changed: the kernel the old generation shares with the new one is not listed twice.
    const initrdOnly = planTree({ inventory, builds, before: new Map([["demo" as ClassName, { kernel: current.kernel, initrd: old.initrd, previous: undefined }]]), templates: ipxeTemplates() });
    expect(kept(initrdOnly)).toEqual([[old.initrd, -1]]);
    expect(initrdOnly.classes[0]!.previous).toEqual({ kernel: current.kernel, initrd: old.initrd });
    // Only the kernel changed: the same for the initrd.
    const kernelOnly = planTree({ inventory, builds, before: new Map([["demo" as ClassName, { kernel: old.kernel, initrd: current.initrd, previous: older }]]), templates: ipxeTemplates() });
    expect(kept(kernelOnly)).toEqual([[old.kernel, -1]]);

    // A first build keeps nothing.
    expect(kept(plan(inventory))).toEqual([]);
  });

  it("holds a host on another class without its wipe flag, and says so in its script", () => {
    const inventory = load("", hostsFile(2, true));
    const host = inventory.hosts.find((h) => h.name === "c3")!;
    const held = hostEntries(host, inventory.site, ipxeTemplates(), undefined, { className: "other", wipe: false });
    const script = held[0]!.kind === "file" ? held[0]!.content : "";
    expect(held[0]!.path).toBe("by-host/c3/ipxe");
    expect(scriptClass(script)).toBe("other");
    expect(scriptHeld(script)).toBe(true);
    expect(scriptWipe(script, "homelab")).toBeUndefined();
    expect(scriptParams(script)).toEqual(["hostname=c3", "k2=v"]);
    expect(script).toContain("echo netbuild: c3 is held on class other until class demo is deployed");
    expect(script).not.toContain("WIPED");
    // The same host not held: its own class, its wipe, forced.
    const own = hostEntries(host, inventory.site, ipxeTemplates(), undefined);
    const ownScript = own[0]!.kind === "file" ? own[0]!.content : "";
    expect(scriptClass(ownScript)).toBe("demo");
    expect(scriptHeld(ownScript)).toBe(false);
    expect(scriptWipe(ownScript, "homelab")).toBe("w2");
    expect(scriptWipeForced(ownScript, "homelab")).toBe(true);
    expect(own.map((e) => [e.kind, e.path])).toEqual([
      ["file", "by-host/c3/ipxe"],
      ["symlink", `by-mac/${macOf(2).replace(/:/g, "-")}`],
    ]);
  });

  it("gives the host template a wipe's id and force only for a host that wipes (held on another class, it does not)", () => {
    const inventory = load("", hostsFile(2, true));
    const host = inventory.hosts.find((h) => h.name === "c3")!;
    const seen: Parameters<IpxeTemplates["host"]>[0][] = [];
    const recording: IpxeTemplates = { ...ipxeTemplates(), host: (data) => (seen.push(data), "#!ipxe\n") };
    hostEntries(host, inventory.site, recording, undefined);
    hostEntries(host, inventory.site, recording, undefined, { className: "other", wipe: false });
    expect(seen.map((d) => [d.className, d.wipe, d.wipeId, d.wipeForce, d.heldFrom])).toEqual([
      ["demo", true, "w2", true, ""],
      ["other", false, "", false, "demo"],
    ]);
  });

  it("writes a Talos host's machine config beside its script, unless it is kept as served", () => {
    const inventory = load("", hostsFile(undefined));
    const host = { ...inventory.hosts[0]!, talos: { configUrl: "talos.config=http://boot/by-host/a1/talos.yaml" } } as unknown as Inventory["hosts"][number];
    const written = hostEntries(host, inventory.site, ipxeTemplates(), "machine: {}\n");
    expect(written.map((e) => [e.layer, e.path])).toEqual([
      ["host", "by-host/a1/ipxe"],
      ["config", "by-host/a1/talos.yaml"],
      ["mac", `by-mac/${macOf(0).replace(/:/g, "-")}`],
    ]);
    expect(written[1]).toMatchObject({ kind: "file", content: "machine: {}\n" });
    expect(scriptParams(written[0]!.kind === "file" ? written[0]!.content : "")).toEqual(["hostname=a1", "talos.config=http://boot/by-host/a1/talos.yaml", "k0=v"]);
    expect(hostEntries(host, inventory.site, ipxeTemplates(), "kept").map((e) => e.path)).toEqual(["by-host/a1/ipxe", `by-mac/${macOf(0).replace(/:/g, "-")}`]);
    expect(() => hostEntries(host, inventory.site, ipxeTemplates(), undefined)).toThrow("internal: no machine config rendered for Talos host a1");
    // Held on another class, it needs none (the class it is held on is not Talos's).
    expect(hostEntries(host, inventory.site, ipxeTemplates(), undefined, { className: "other", wipe: false }).map((e) => e.path)).toEqual(["by-host/a1/ipxe", `by-mac/${macOf(0).replace(/:/g, "-")}`]);
  });
});

describe("reading a host script as served", () => {
  const script = (params: string) => `#!ipxe\n# netbuild host h (class demo), from hosts/h.yaml.\necho netbuild: h boots class demo\nset cmdline ${params}\nchain ../../by-class/demo/ipxe\n`;

  it("finds the wipe and its id on the `set cmdline` line only, the last id winning, for the site's prefix only", () => {
    expect(scriptParams(script("hostname=h a=1"))).toEqual(["hostname=h", "a=1"]);
    expect(scriptParams("#!ipxe\nchain x\n")).toEqual([]);
    expect(scriptWipe(script("hostname=h lab.provision_disks=true lab.provision_id=a lab.provision_id=b"), "lab")).toBe("b");
    expect(scriptWipe(script("hostname=h lab.provision_disks=true"), "lab")).toBe("");
    expect(scriptWipe(script("hostname=h lab.provision_disks=true lab.provision_id=a"), "homelab")).toBeUndefined();
    expect(scriptWipe(script("hostname=h lab.provision_disks=truex lab.provision_id=a"), "lab")).toBeUndefined();
    expect(scriptWipe(script("hostname=h xlab.provision_id=z lab.provision_disks=true"), "lab")).toBe("");
    expect(scriptWipe(`echo lab.provision_disks=true\n${script("hostname=h")}`, "lab")).toBeUndefined();
    expect(scriptWipes(script("lab.provision_disks=true"), "lab")).toBe(true);
    expect(scriptWipes(script("lab.provision_disks=false"), "lab")).toBe(false);
    expect(scriptWipeForced(script("lab.provision_disks=true lab.provision_force=true"), "lab")).toBe(true);
    expect(scriptWipeForced(script("lab.provision_disks=true lab.provision_force=false"), "lab")).toBe(false);
    // Force without the flag forces nothing.
    expect(scriptWipeForced(script("lab.provision_force=true"), "lab")).toBe(false);
  });

  it("tells the wipe's own parameters from the others", () => {
    for (const p of ["lab.provision_disks=true", "lab.provision_id=2026-11-30", "lab.provision_force=true", "lab.provision_force=false"]) expect(isWipeParam(p, "lab"), p).toBe(true);
    for (const p of ["lab.provision_disks=false", "homelab.provision_id=x", "xlab.provision_id=x", "lab.provision_idx", "hostname=lab.provision_id=", "quiet"]) expect(isWipeParam(p, "lab"), p).toBe(false);
  });

  it("names the host of a by-host script, the class a script chains, and a held script", () => {
    expect(hostOfScript("by-host/web-1/ipxe")).toBe("web-1");
    for (const p of ["by-host/web-1/talos.yaml", "by-host/a/b/ipxe", "x/by-host/a/ipxe", "by-host/a/ipxe.tmp", "by-host//ipxe"]) expect(hostOfScript(p), p).toBeUndefined();
    expect(scriptClass(script("a=1"))).toBe("demo");
    expect(scriptClass("#!ipxe\nchain ../../by-class/demo/ipxe extra\n")).toBeUndefined();
    expect(scriptClass("#!ipxe\nchain ../../by-class/de mo/ipxe\n")).toBeUndefined();
    expect(scriptClass("#!ipxe\n#chain ../../by-class/demo/ipxe\n")).toBeUndefined();
    expect(scriptClass("#!ipxe\nchain ../../by-class/a/b/ipxe\n")).toBeUndefined();
    expect(scriptHeld("#!ipxe\n# netbuild: held on class other: …\n")).toBe(true);
    expect(scriptHeld("#!ipxe\necho # netbuild: held on class other\n")).toBe(false);
  });
});

describe("the seal of out/'s manifest", () => {
  const entries = { "b/x": { kind: "file", sha256: "11" }, "a/y": { kind: "symlink", target: "../z" } } as const;
  const classes = { demo: { kernelSha256: "k" }, alpha: { kernelSha256: "a" } } as unknown as Parameters<typeof sealInputs>[2];

  it("is the same for the same content in any key order, and changes with any of it", () => {
    const seal = sealInputs("p", entries, classes);
    expect(seal).toMatch(/^[0-9a-f]{64}$/);
    expect(sealInputs("p", { "a/y": entries["a/y"], "b/x": entries["b/x"] }, { alpha: classes["alpha"]!, demo: classes["demo"]! })).toBe(seal);
    for (const other of [
      sealInputs("q", entries, classes),
      sealInputs("p", { ...entries, "b/x": { kind: "file", sha256: "12" } }, classes),
      sealInputs("p", { ...entries, "a/y": { kind: "symlink", target: "../w" } }, classes),
      sealInputs("p", { ...entries, "a/y": { kind: "file", sha256: "../z" } }, classes),
      sealInputs("p", { "b/x": entries["b/x"] }, classes),
      sealInputs("p", { ...entries, "c": { kind: "artifact", size: 1, sha256: "11" } }, classes),
      sealInputs("p", entries, { ...classes, demo: { kernelSha256: "K" } } as unknown as typeof classes),
      sealInputs("p", entries, {}),
    ]) expect(other).not.toBe(seal);
  });
});
