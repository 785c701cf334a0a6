// netbuild.yaml as the loader reads it (core/site.ts): its settings and defaults, where each error
// is reported, and that a setting with an error of its own is not reported again by the rules that
// need it (a Talos host is not also "without a config URL" when the URL is wrong).
import { describe, expect, it } from "vitest";
import { loadInventory, loadSite } from "../../src/core/inventory.ts";
import type { InventoryFile } from "../../src/core/inventory-source.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });
const TALOS_CLASS = "kind: talos\ntalos:\n  version: v1.12.2\n  machine: { role: worker }\n";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA site";

/** Every issue as `file:line field: message`, or the inventory. */
function load(site: InventoryFile | undefined, classes: Record<string, string> = {}, hosts = "") {
  const r = loadInventory({
    site,
    classes: Object.entries(classes).map(([name, text]) => f(`classes/${name}.yaml`, text)),
    hosts: hosts ? [f("hosts/all.yaml", hosts)] : [],
    probe: () => "file",
  });
  return r.ok ? { inventory: r.inventory, issues: r.inventory.warnings.map(show) } : { inventory: undefined, issues: r.issues.map(show) };
}
const show = (i: { severity: string; where: { file: string; line?: number | undefined; field?: string | undefined }; message: string }) => `${i.severity === "warning" ? "warning " : ""}${i.where.file}:${i.where.line ?? "-"} ${i.where.field}: ${i.message}`;
const site = (text: string) => f("netbuild.yaml", text);

describe("the site's settings", () => {
  it("with no netbuild.yaml: the defaults, no targets and no keys", () => {
    const { inventory } = load(undefined);
    expect(inventory!.site).toEqual({ file: undefined, flagPrefix: "homelab", links: "symlink", unknownClass: null, out: "out", talosFactory: "https://factory.talos.dev", talosConfigBaseUrl: undefined, talosBaseConfigs: {}, targets: [], keep: 3, sshAuthorizedKeys: [],
      url: undefined,
      dhcp: { interface: undefined, subnet: undefined, tftpServer: undefined, tftpRoot: undefined, server: undefined, range: undefined, router: undefined, dns: [], leaseSeconds: 3600 },
      ipxe: { binaries: undefined, efi: "snponly.efi" },
    });
  });

  it("an empty file: the same defaults, from that file", () => {
    expect(load(site("")).inventory!.site).toMatchObject({ file: "netbuild.yaml", targets: [], sshAuthorizedKeys: [], unknownClass: null });
  });

  it("targets: sorted by name, each with its own keep or the site's", () => {
    const { inventory } = load(site("keep: 5\ntargets:\n  zeta: /srv/z\n  alpha: { url: 'admin@boot:/srv/a', keep: 2 }\n  mid: { url: sftp://boot/srv/m }\n"));
    expect(inventory!.site.targets.map((t) => [t.name, t.spec, t.keep, t.location.kind])).toEqual([
      ["alpha", "admin@boot:/srv/a", 2, "sftp"],
      ["mid", "sftp://boot/srv/m", 5, "sftp"],
      ["zeta", "/srv/z", 5, "local"],
    ]);
    // The URL as written, whichever form holds it.
    expect(inventory!.site.targets.map((t) => t.location.kind === "local" ? t.location.path : `${t.location.host}:${t.location.path}`)).toEqual(["boot:/srv/a", "boot:/srv/m", "/srv/z"]);
  });

  it("a target that cannot be reached is reported at its URL, written either way", () => {
    const { issues } = load(site("targets:\n  a: 'sftp://boot//'\n  b:\n    keep: 4\n    url: 'sftp://boot//'\n"));
    expect(issues.map((i) => i.replace(/: .*$/s, ""))).toEqual(["netbuild.yaml:2 site.targets.a", "netbuild.yaml:5 site.targets.b"]);
  });

  it("Talos: the factory and the config URL lose their trailing slashes; base configs resolve from the root", () => {
    const { inventory } = load(site("talos:\n  factory: https://mirror.example/factory///\n  configBaseUrl: https://boot.example/tree//\n  baseConfigs: { worker: ./secrets/../secrets/w.yaml, controlplane: secrets/cp.yaml }\n"));
    expect(inventory!.site).toMatchObject({ talosFactory: "https://mirror.example/factory", talosConfigBaseUrl: "https://boot.example/tree", talosBaseConfigs: { worker: "secrets/w.yaml", controlplane: "secrets/cp.yaml" } });
  });

  it("keys that may log in everywhere", () => {
    expect(load(site(`ssh:\n  authorizedKeys: ["${KEY}"]\n`)).inventory!.site.sshAuthorizedKeys).toEqual([KEY]);
  });
});

describe("the output folder", () => {
  for (const out of ["out", "served/", "./a/../b", "a..", "..a", ".netbuild/tree", "hosts-tree"]) {
    it(`${JSON.stringify(out)} is inside the root`, () => {
      expect(load(site(`out: ${JSON.stringify(out)}\n`)).issues).toEqual([]);
    });
  }
  for (const out of ["/srv/tree", "..", "../x", "a/../../x"]) {
    it(`${JSON.stringify(out)} leaves it`, () => {
      expect(load(site(`\nout: ${JSON.stringify(out)}\n`)).issues).toEqual([`netbuild.yaml:2 site.out: ${JSON.stringify(out)} leaves the inventory root`]);
    });
  }
  it("the root itself, or a folder netbuild reads the inventory from, is refused", () => {
    expect(load(site("out: .\n")).issues).toEqual(['netbuild.yaml:1 site.out: "." is the inventory root itself']);
    expect(load(site("out: a/..\n")).issues).toEqual(['netbuild.yaml:1 site.out: "a/.." is the inventory root itself']);
    expect(load(site("out: ./\n")).issues).toEqual(['netbuild.yaml:1 site.out: "./" is the inventory root itself']);
    expect(load(site("out: a/../\n")).issues).toEqual(['netbuild.yaml:1 site.out: "a/../" is the inventory root itself']);
    expect(load(site("out: hosts\n")).issues).toEqual(['netbuild.yaml:1 site.out: "hosts" is inside hosts/, which netbuild reads as the inventory']);
    expect(load(site("out: ./classes/tree\n")).issues).toEqual(['netbuild.yaml:1 site.out: "./classes/tree" is inside classes/, which netbuild reads as the inventory']);
  });
});

describe("a setting with an error is reported once, where it is written", () => {
  const talosHost = "hosts:\n  t1: { class: tal, mac: 52:54:00:00:00:01 }\n";

  it("a config URL that cannot go on a kernel command line: at the URL, not again at each Talos host", () => {
    const { issues } = load(site("talos:\n  configBaseUrl: 'https://boot.example/a b'\n  baseConfigs: { worker: w.yaml }\n"), { tal: TALOS_CLASS }, talosHost);
    expect(issues.filter((i) => !i.startsWith("warning"))).toEqual([expect.stringMatching(/^netbuild\.yaml:2 site\.talos\.configBaseUrl: the URL cannot go on a kernel command line: .+/)]);
  });

  it("a config URL with a query: at the URL only", () => {
    const { issues } = load(site("talos:\n  configBaseUrl: 'https://boot.example/tree?x=1'\n  baseConfigs: { worker: w.yaml }\n"), { tal: TALOS_CLASS }, talosHost);
    expect(issues.filter((i) => !i.startsWith("warning"))).toEqual(["netbuild.yaml:2 site.talos.configBaseUrl: the URL has a query or fragment"]);
  });

  it("a base config outside the root: at the base config only", () => {
    const { issues } = load(site("talos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs:\n    worker: ../w.yaml\n"), { tal: TALOS_CLASS }, talosHost);
    expect(issues.filter((i) => !i.startsWith("warning"))).toEqual(['netbuild.yaml:4 site.talos.baseConfigs.worker: "../w.yaml" points outside the inventory root']);
  });

  it("without those settings, each Talos host says what it misses", () => {
    expect(load(site("{}\n"), { tal: TALOS_CLASS }, talosHost).issues.filter((i) => !i.startsWith("warning"))).toEqual([
      "hosts/all.yaml:2 hosts.t1.talos: host t1 boots Talos, which fetches its machine config from a URL, and netbuild.yaml does not say where the tree is served",
    ]);
    expect(load(site("talos: { configBaseUrl: https://b/t }\n"), { tal: TALOS_CLASS }, talosHost).issues.filter((i) => !i.startsWith("warning"))).toEqual(["hosts/all.yaml:2 hosts.t1.talos.role: role worker has no base config"]);
  });

  it("a site file that is not a mapping: one error; its settings are unknown, so Talos hosts say nothing of them", () => {
    const { issues } = load(site("- a\n- b\n"), { tal: TALOS_CLASS }, talosHost);
    expect(issues.filter((i) => !i.startsWith("warning"))).toEqual([expect.stringMatching(/^netbuild\.yaml:1 site: /)]);
  });

  it("a site file that cannot be read: one error naming it; the same silence", () => {
    const { issues } = load({ path: "netbuild.yaml", text: "", problem: { kind: "denied" } }, { tal: TALOS_CLASS }, talosHost);
    expect(issues.filter((i) => !i.startsWith("warning"))).toEqual(['netbuild.yaml:- site: "netbuild.yaml" cannot be read: permission denied']);
  });

  it("an unknown machines class that is no class name", () => {
    expect(load(site("unknownMachines: { class: 'Bad Name' }\n")).issues).toEqual([expect.stringMatching(/^netbuild\.yaml:1 site\.unknownMachines\.class: /)]);
  });

  it("an unknown machines class with no class file: at the setting, with what to write instead; a class file with errors of its own is a class", () => {
    const r = loadInventory({ site: site("# site\nunknownMachines:\n  class: rescue\n"), classes: [f("classes/demo.yaml", "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n")], hosts: [], probe: () => "file" });
    expect(r.ok ? [] : r.issues.map((i) => [show(i), i.where.col, i.hint])).toEqual([['netbuild.yaml:3 site.unknownMachines.class: unknown class "rescue"', 10, "name a class from classes/, or write `unknownMachines: strict`"]]);
    const broken = load(site("unknownMachines: { class: rescue }\n"), { rescue: "kind: prebuilt\n" });
    expect(broken.issues.filter((i) => i.includes("unknownMachines"))).toEqual([]);
    expect(broken.issues.length).toBeGreaterThan(0);
    expect(load(site("unknownMachines: { class: rescue }\n"), { rescue: "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n" }).inventory!.site.unknownClass).toBe("rescue");
  });

  it("a folder of the inventory that cannot be read: one error naming it, under the folder's own field", () => {
    const r = loadInventory({ site: undefined, classes: [], hosts: [], folders: [{ path: "hosts/rack2", problem: { kind: "denied" } }, { path: "classes", problem: { kind: "not-a-folder" } }], probe: () => "file" });
    expect(r.ok ? [] : r.issues.map((i) => [show(i), i.hint])).toEqual([
      ['classes:- classes: "classes" is not a folder', "classes/ and hosts/ are folders of YAML files"],
      ['hosts/rack2:- hosts: "rack2" cannot be read: permission denied', "make it readable by the user running netbuild"],
    ]);
  });

  it("hosts and classes come out sorted by name, whatever order their files and keys are in", () => {
    const prebuilt = "kind: prebuilt\nkernel: { path: ./k }\ninitrd: { path: ./i }\n";
    const r = loadInventory({
      site: undefined,
      classes: [f("classes/zeta.yaml", prebuilt), f("classes/alpha.yaml", prebuilt), f("classes/mid.yaml", prebuilt)],
      hosts: [f("hosts/z.yaml", "hosts:\n  web3: { class: zeta, mac: '52:54:00:00:00:03' }\n  web1: { class: alpha, mac: '52:54:00:00:00:01' }\n"), f("hosts/a.yaml", "hosts:\n  web2: { class: mid, mac: '52:54:00:00:00:02' }\n  db: { class: mid, mac: '52:54:00:00:00:04' }\n")],
      probe: () => "file",
    });
    expect(r.ok && [r.inventory.classes.map((c) => c.name), r.inventory.hosts.map((h) => h.name)]).toEqual([
      ["alpha", "mid", "zeta"],
      ["db", "web1", "web2", "web3"],
    ]);
  });
});

describe("loadSite (targets before the inventory is read)", () => {
  it("the site, or undefined when it has an error", () => {
    expect(loadSite(site("targets: { boot: /srv/b }\n"))!.targets.map((t) => t.name)).toEqual(["boot"]);
    expect(loadSite(site("targets: { boot: 'sftp://boot//' }\n"))).toBeUndefined();
    expect(loadSite(undefined)!.targets).toEqual([]);
  });
});

describe("the site's DHCP settings (`url`, `dhcp:`, `ipxe:`)", () => {
  it("read as given: the URL without its trailing slash, the subnet split, the lease in seconds", () => {
    const { inventory, issues } = load(site("url: http://192.168.77.1:8080/netboot/\ndhcp:\n  interface: br0\n  subnet: 192.168.77.0/24\n  tftpServer: 192.168.77.1\n  tftpRoot: /srv/tftp/\n  server: dhcp1\n  range: { start: 192.168.77.100, end: 192.168.77.200 }\n  router: 192.168.77.254\n  dns: [192.168.77.254, 9.9.9.9]\n  leaseTime: 12h\nipxe: { binaries: /opt/ipxe, efi: ipxe.efi }\n"));
    expect(issues).toEqual([]);
    expect(inventory!.site).toMatchObject({
      url: "http://192.168.77.1:8080/netboot",
      dhcp: { interface: "br0", subnet: { address: "192.168.77.0", prefix: 24 }, tftpServer: "192.168.77.1", tftpRoot: "/srv/tftp", server: "dhcp1", range: { start: "192.168.77.100", end: "192.168.77.200" }, router: "192.168.77.254", dns: ["192.168.77.254", "9.9.9.9"], leaseSeconds: 43200 },
      ipxe: { binaries: "/opt/ipxe", efi: "ipxe.efi" },
    });
    expect(["90s", "30m", "2d"].map((t) => load(site(`dhcp: { leaseTime: ${t} }\n`)).inventory!.site.dhcp.leaseSeconds)).toEqual([90, 1800, 172800]);
    // The root folder as the TFTP root keeps its slash.
    expect(load(site("dhcp: { tftpRoot: / }\n")).inventory!.site.dhcp.tftpRoot).toBe("/");
  });

  it("a URL that would break a DHCP configuration or an iPXE script is refused at its line", () => {
    const refused = "site.url: the URL cannot go into a DHCP configuration or an iPXE script as it is";
    for (const url of ["http://u:p@h/x", "http://h/x?y=1", "http://h/x#f", "http://h/a,b", "http://h/a;b", "http://h/${x}", "'http://h/a\"b'"]) {
      expect(load(site(`flagPrefix: lab\nurl: ${url}\n`)).issues, url).toEqual([`netbuild.yaml:2 ${refused}`]);
    }
    expect(load(site("url: ftp://h/x\n")).issues).toEqual(["netbuild.yaml:1 site.url: expected the http:// or https:// URL machines fetch this tree at, like http://192.168.1.10:8080 (got \"ftp://h/x\")"]);
    for (const url of ["https://boot.example", "http://[fd00::1]:8080/a/b", "http://h/a_b~c%20d+e-f.g"]) expect(load(site(`url: ${url}\n`)).issues, url).toEqual([]);
  });

  it("a subnet with host bits, an odd prefix, or addresses outside it: refused where each is written", () => {
    expect(load(site("dhcp:\n  subnet: 192.168.77.5/24\n")).issues).toEqual(["netbuild.yaml:2 site.dhcp.subnet: \"192.168.77.5/24\" has host bits set"]);
    expect(load(site("dhcp:\n  subnet: 10.0.0.0/31\n")).issues).toEqual(["netbuild.yaml:2 site.dhcp.subnet: a /31 network cannot be a boot LAN"]);
    expect(load(site("dhcp:\n  subnet: 10.0.0.0/7\n")).issues).toEqual(["netbuild.yaml:2 site.dhcp.subnet: a /7 network cannot be a boot LAN"]);
    expect(load(site("dhcp:\n  subnet: 10.0.0.0/8\n")).inventory!.site.dhcp.subnet).toEqual({ address: "10.0.0.0", prefix: 8 });
    expect(load(site("dhcp:\n  subnet: 10.1.2.0/30\n  router: 10.1.2.3\n")).issues).toEqual([]);
    expect(load(site("dhcp:\n  subnet: 192.168.77.0/24\n  range:\n    start: 192.168.78.1\n    end: 192.168.77.1\n  router: 192.168.76.255\n")).issues).toEqual([
      "netbuild.yaml:4 site.dhcp.range.start: the range's first address 192.168.78.1 is not in dhcp.subnet 192.168.77.0/24",
      "netbuild.yaml:5 site.dhcp.range.end: the range ends (192.168.77.1) before it starts (192.168.78.1)",
      "netbuild.yaml:6 site.dhcp.router: the router 192.168.76.255 is not in dhcp.subnet 192.168.77.0/24",
    ]);
    expect(load(site("dhcp:\n  subnet: 192.168.77.0/24\n  range: { start: 192.168.77.9, end: 192.168.77.9 }\n")).issues).toEqual([]);
    expect(load(site("dhcp:\n  interface: 'br0;x'\n  leaseTime: 0h\n")).issues).toEqual([
      "netbuild.yaml:2 site.dhcp.interface: expected a network interface name like eth0 or br0 (got \"br0;x\")",
      "netbuild.yaml:3 site.dhcp.leaseTime: expected a duration like 1h, 30m or 12h (got \"0h\")",
    ]);
  });
});
