// The tree as the boot server serves it, walked the way iPXE walks it (core/boot-chain.ts), without
// QEMU: what each MAC boots, with which command line. The QEMU boots in test/e2e-boot.test.ts prove
// the real firmware does the same; these check every case in milliseconds, so that a mutation of
// the tree planner or a template is caught by a fast test and not only by a minute of boots.
import { describe, expect, it } from "vitest";
import { walkBootChain, macVariables } from "../../src/core/boot-chain.ts";
import { loadInventory, type Inventory } from "../../src/core/inventory.ts";
import type { InventoryFile } from "../../src/core/inventory-source.ts";
import type { ClassName } from "../../src/core/names.ts";
import { planTree, type ClassBuild, type Tree } from "../../src/core/tree.ts";
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
    return e?.kind === "file" ? e.content : undefined;
  };
  return walkBootChain("http://boot/boot.ipxe", macVariables(mac.replace(/:/g, "-")), fetch);
}

const NAMES = ["a1", "b2", "c3", "d4", "e5"];
// MACs in the reverse of the hosts' order, so that by-mac/ and by-host/ sort differently.
const macOf = (i: number) => `52:54:00:00:00:${(0x50 - i).toString(16)}`;

function hostsFile(armed: number | undefined, force = false): string {
  return `hosts:\n${NAMES.map((n, i) => `  ${n}:\n    class: demo\n    mac: "${macOf(i)}"\n    kernelParams: [k${i}=v]\n${i === armed ? `    provision: { disks: true, id: w${i}${force ? ", force: true" : ""} }\n` : ""}`).join("")}`;
}

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
