// `netbuild dhcp`'s core (core/dhcp.ts): which settings each server and mode needs, which file each
// client architecture gets, reservations, and the exact text of every format (golden files, each
// also checked by the server's own syntax check in test/dhcp.test.ts).
import { describe, expect, it } from "vitest";
import { DHCP_FORMATS, DHCP_MODES, renderDhcp, type DhcpFormat, type DhcpInput, type DhcpMode } from "../../src/core/dhcp.ts";
import { loadInventory } from "../../src/core/inventory.ts";
import type { InventoryFile } from "../../src/core/inventory-source.ts";
import { expectGolden } from "../support/golden.ts";
import { LAN_HOSTS, LAN_SITE } from "../support/lan.ts";

const f = (path: string, text: string): InventoryFile => ({ path, text });

const BINARIES = { bios: { name: "undionly.kpxe", sha256: "a".repeat(64), size: 1000 }, efi: { name: "snponly.efi", sha256: "b".repeat(64), size: 2000 } };

function inputOf(format: DhcpFormat, mode: DhcpMode, site = LAN_SITE, hosts = LAN_HOSTS): DhcpInput {
  const r = loadInventory({ site: f("netbuild.yaml", site), classes: [f("classes/demo.yaml", "kind: prebuilt\nkernel: { path: k }\ninitrd: { path: i }\n")], hosts: [f("hosts/all.yaml", hosts)], probe: () => "file" });
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return { format, mode, site: r.inventory.site, hosts: r.inventory.hosts, binaries: BINARIES, defaultTftpRoot: "/usr/lib/ipxe" };
}

function text(format: DhcpFormat, mode: DhcpMode, site = LAN_SITE, hosts = LAN_HOSTS): string {
  const r = renderDhcp(inputOf(format, mode, site, hosts));
  if (!r.ok) throw new Error(JSON.stringify(r.missing));
  return r.text;
}

/** The lines that are not comments. */
const body = (t: string) => t.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

describe("netbuild dhcp: the configuration of each server", () => {
  for (const format of DHCP_FORMATS) {
    for (const mode of DHCP_MODES) {
      it(`${format}, ${mode}: the reviewed text, the same bytes every time`, () => {
        const t = text(format, mode);
        expectGolden(`dhcp/${format}-${mode}.conf`, t);
        expect(text(format, mode)).toBe(t);
        // Every configuration says what it covers and what not, and the binaries' hashes.
        expect(t).toContain("BIOS x86 (client architecture 0) → undionly.kpxe");
        expect(t).toContain("UEFI x86-64 (client architectures 7 and 9) → snponly.efi");
        expect(t).toContain("arm64 UEFI (11: it needs an arm64 iPXE build");
        expect(t).toContain(`undionly.kpxe: sha256 ${"a".repeat(64)} (1000 bytes)`);
        expect(t).toContain(`snponly.efi: sha256 ${"b".repeat(64)} (2000 bytes)`);
      });
    }
  }

  it("dnsmasq proxy: addresses stay with the LAN's server; plain PXE gets iPXE by architecture, iPXE gets boot.ipxe", () => {
    expect(body(text("dnsmasq", "proxy"))).toEqual([
      "port=0",
      "interface=br0",
      "bind-interfaces",
      "dhcp-range=192.168.77.0,proxy,255.255.255.0",
      "enable-tftp",
      "tftp-root=/srv/tftp",
      "dhcp-userclass=set:ipxe,iPXE",
      "dhcp-match=set:ipxe,175",
      'pxe-service=tag:!ipxe,x86PC,"netbuild: iPXE",undionly.kpxe',
      'pxe-service=tag:!ipxe,X86-64_EFI,"netbuild: iPXE",snponly.efi',
      'pxe-service=tag:!ipxe,BC_EFI,"netbuild: iPXE",snponly.efi',
      'pxe-service=tag:ipxe,x86PC,"netbuild",http://192.168.77.1:8099/boot.ipxe',
      'pxe-service=tag:ipxe,X86-64_EFI,"netbuild",http://192.168.77.1:8099/boot.ipxe',
      'pxe-service=tag:ipxe,BC_EFI,"netbuild",http://192.168.77.1:8099/boot.ipxe',
    ]);
  });

  it("dnsmasq full: the range, router, DNS and lease time; a reservation per host with an IPv4 address in the subnet (all its MACs); each boot file needs its architecture and not-iPXE", () => {
    const lines = body(text("dnsmasq", "full"));
    expect(lines).toContain("dhcp-range=192.168.77.100,192.168.77.200,255.255.255.0,7200");
    expect(lines).toContain("dhcp-option=option:router,192.168.77.254");
    expect(lines).toContain("dhcp-option=option:dns-server,192.168.77.254,192.168.77.253");
    expect(lines.filter((l) => l.startsWith("dhcp-host="))).toEqual(["dhcp-host=52:54:00:00:00:01,192.168.77.10,a1", "dhcp-host=52:54:00:ab:cd:02,52:54:00:ab:cd:03,192.168.77.11,web-2"]);
    expect(lines.filter((l) => l.startsWith("dhcp-boot="))).toEqual(["dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe", "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi", "dhcp-boot=tag:ipxe,http://192.168.77.1:8099/boot.ipxe"]);
    expect(lines.filter((l) => l.startsWith("dhcp-match="))).toEqual(["dhcp-match=set:ipxe,175", "dhcp-match=set:bios,option:client-arch,0", "dhcp-match=set:efi64,option:client-arch,7", "dhcp-match=set:efi64,option:client-arch,9"]);
    // No router or DNS given: no such option.
    const bare = body(text("dnsmasq", "full", LAN_SITE.replace(/ {2}router:.*\n {2}dns:.*\n/, "")));
    expect(bare.some((l) => l.startsWith("dhcp-option="))).toBe(false);
  });

  it("reservations: sorted by host, IPv6 and out-of-subnet addresses skipped with the reason; RouterOS leases on a host's first MAC only", () => {
    const r = renderDhcp(inputOf("kea", "full"));
    expect(r.ok && r.reservations).toEqual([
      { host: "a1", mac: "52:54:00:00:00:01", ip: "192.168.77.10" },
      { host: "web-2", mac: "52:54:00:ab:cd:02", ip: "192.168.77.11" },
      { host: "web-2", mac: "52:54:00:ab:cd:03", ip: "192.168.77.11" },
    ]);
    expect(r.ok && r.skipped).toEqual([
      { host: "c3", ip: "10.0.0.1", why: "gets no reservation: it is not in dhcp.subnet 192.168.77.0/24" },
      { host: "d4", ip: "fd00::5", why: "gets no reservation: it is an IPv6 address (this configuration is DHCPv4)" },
      // An IPv4-mapped IPv6 address is IPv6 all the same.
      { host: "f6", ip: "::ffff:192.168.77.12", why: "gets no reservation: it is an IPv6 address (this configuration is DHCPv4)" },
    ]);
    // Sorted by host whatever order the hosts come in.
    const reversed = inputOf("dnsmasq", "full");
    const again = renderDhcp({ ...reversed, hosts: [...reversed.hosts].reverse() });
    expect(again.ok && again.reservations.map((x) => x.host)).toEqual(["a1", "web-2", "web-2"]);
    const ros = renderDhcp(inputOf("routeros", "full"));
    expect(ros.ok && ros.reservations.map((x) => x.mac)).toEqual(["52:54:00:00:00:01", "52:54:00:ab:cd:02"]);
    expect(ros.ok && ros.skipped[3]).toEqual({ host: "web-2", ip: "192.168.77.11", why: "has a static lease on its first MAC only, not on 52:54:00:ab:cd:03: RouterOS holds one lease per address" });
    // Proxy mode hands out no address: no reservations, nothing skipped.
    const proxy = renderDhcp(inputOf("dnsmasq", "proxy"));
    expect(proxy.ok && [proxy.reservations, proxy.skipped]).toEqual([[], []]);
  });

  it("RouterOS leases name MACs in upper case; OpenWrt host sections are named with _ for -", () => {
    expect(body(text("routeros", "full"))).toContain('add server=dhcp1 mac-address=52:54:00:AB:CD:02 address=192.168.77.11 comment="netbuild: web-2"');
    expect(body(text("openwrt", "full"))).toEqual(expect.arrayContaining(["set dhcp.netbuild_host_web_2=host", "set dhcp.netbuild_host_web_2.name='web-2'", "set dhcp.netbuild_host_web_2.mac='52:54:00:ab:cd:02 52:54:00:ab:cd:03'"]));
    expect(body(text("openwrt", "proxy")).some((l) => l.includes("=host"))).toBe(false);
  });

  it("Kea: the router and DNS options only as given", () => {
    const noOptions = LAN_SITE.replace(/ {2}router:.*\n {2}dns:.*\n/, "");
    expect(text("kea", "full", noOptions)).not.toContain("option-data");
    const dnsOnly = JSON.parse(body(text("kea", "full", LAN_SITE.replace(/ {2}router:.*\n/, ""))).join("\n"));
    expect(dnsOnly.Dhcp4.subnet4[0]["option-data"]).toEqual([{ name: "domain-name-servers", data: "192.168.77.254, 192.168.77.253" }]);
    const routerOnly = JSON.parse(body(text("kea", "full", LAN_SITE.replace(/ {2}dns:.*\n/, ""))).join("\n"));
    expect(routerOnly.Dhcp4.subnet4[0]["option-data"]).toEqual([{ name: "routers", data: "192.168.77.254" }]);
  });

  it("Kea: several MACs with one address need ip-reservations-unique false; one MAC per host does not", () => {
    expect(text("kea", "full")).toContain('"ip-reservations-unique": false');
    expect(text("kea", "full", LAN_SITE, "hosts:\n  a1: { class: demo, mac: 52:54:00:00:00:01, ip: 192.168.77.10 }\n")).not.toContain("ip-reservations-unique");
  });

  it("ISC: one host block per MAC; no router or DNS given, no such option", () => {
    const t = text("isc", "full", LAN_SITE.replace(/ {2}router:.*\n {2}dns:.*\n/, ""));
    expect(t.match(/^host .*$/gm)).toEqual(["host netbuild-a1-1 {", "host netbuild-web-2-1 {", "host netbuild-web-2-2 {"]);
    expect(t).not.toMatch(/option (routers|domain-name-servers)/);
  });

  it("ipxe.efi instead of snponly.efi when the site says so", () => {
    const t = renderDhcp({ ...inputOf("dnsmasq", "full", `${LAN_SITE}ipxe: { efi: ipxe.efi }\n`), binaries: { ...BINARIES, efi: { ...BINARIES.efi, name: "ipxe.efi" } } });
    expect(t.ok && body(t.text)).toContain("dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi");
  });
});

describe("netbuild dhcp: the settings each server needs", () => {
  const missing = (format: DhcpFormat, mode: DhcpMode, site: string) => {
    const r = renderDhcp({ ...inputOf(format, mode, site), defaultTftpRoot: undefined });
    return r.ok ? [] : r.missing.map((m) => m.field);
  };

  it("with no settings at all, each format and mode names every setting it needs", () => {
    expect(Object.fromEntries(DHCP_FORMATS.flatMap((format) => DHCP_MODES.map((mode) => [`${format} ${mode}`, missing(format, mode, "")])))).toEqual({
      "dnsmasq proxy": ["url", "dhcp.tftpRoot", "dhcp.interface", "dhcp.subnet"],
      "dnsmasq full": ["url", "dhcp.tftpRoot", "dhcp.interface", "dhcp.subnet", "dhcp.range"],
      "kea proxy": ["url", "dhcp.tftpServer"],
      "kea full": ["url", "dhcp.tftpServer", "dhcp.interface", "dhcp.subnet", "dhcp.range"],
      "isc proxy": ["url", "dhcp.tftpServer"],
      "isc full": ["url", "dhcp.tftpServer", "dhcp.subnet", "dhcp.range"],
      "routeros proxy": ["url", "dhcp.tftpServer", "dhcp.server", "dhcp.subnet"],
      "routeros full": ["url", "dhcp.tftpServer", "dhcp.server", "dhcp.subnet"],
      "openwrt proxy": ["url", "dhcp.tftpRoot"],
      "openwrt full": ["url", "dhcp.tftpRoot", "dhcp.subnet"],
    });
  });

  it("every missing setting of every format and mode, with why and what to write: the reviewed list", () => {
    const all = Object.fromEntries(DHCP_FORMATS.flatMap((format) => DHCP_MODES.map((mode) => {
      const r = renderDhcp({ ...inputOf(format, mode, ""), defaultTftpRoot: undefined });
      return [`${format} ${mode}`, r.ok ? [] : r.missing];
    })));
    expectGolden("dhcp/missing.json", `${JSON.stringify(all, null, 2)}\n`);
  });

  it("a default TFTP root (ipxe.binaries) a configuration cannot hold is unusable for the formats that serve TFTP, and no matter for the others; dhcp.tftpRoot given, it is not used", () => {
    const site = "url: http://10.1.2.3\ndhcp: { interface: eth0, subnet: 10.1.2.0/24, server: r1 }\n";
    const odd = (format: DhcpFormat, s = site) => renderDhcp({ ...inputOf(format, "proxy", s), defaultTftpRoot: "/opt/my ipxe,x" });
    const r = odd("dnsmasq");
    expect(!r.ok && r.missing).toEqual([{ field: "dhcp.tftpRoot", unusable: true, why: "dnsmasq serves the iPXE binaries over TFTP from a folder, and the one ipxe.binaries names has characters a configuration cannot hold as they are (a space, a comma, a quote, a line break…)", example: "dhcp: { tftpRoot: /srv/tftp } (a folder holding the binaries)" }]);
    for (const format of ["kea", "isc", "routeros"] as const) expect(odd(format).ok, format).toBe(true);
    const given = odd("dnsmasq", "url: http://10.1.2.3\ndhcp: { interface: eth0, subnet: 10.1.2.0/24, tftpRoot: /srv/tftp }\n");
    expect(given.ok && body(given.text)).toContain("tftp-root=/srv/tftp");
  });

  it("the TFTP server from `url` only when its host is exactly an IPv4 address", () => {
    expect(text("isc", "proxy", "url: http://10.1.2.34:8080\n")).toContain("next-server 10.1.2.34;");
    const named = renderDhcp({ ...inputOf("isc", "proxy", "url: http://1.2.3.4.example/nb\n"), defaultTftpRoot: undefined });
    expect(!named.ok && named.missing.map((m) => m.field)).toEqual(["dhcp.tftpServer"]);
  });

  it("each missing setting says why it is needed and what to write", () => {
    const r = renderDhcp({ ...inputOf("kea", "proxy", "url: http://boot.example:8080\n"), defaultTftpRoot: undefined });
    expect(r).toEqual({ ok: false, missing: [{ field: "dhcp.tftpServer", why: "PXE firmware fetches the iPXE binaries over TFTP, and the host of `url` is not an IPv4 address to take the server from", example: "dhcp: { tftpServer: 192.168.1.10 }" }] });
    const none = renderDhcp({ ...inputOf("isc", "proxy", ""), defaultTftpRoot: undefined });
    expect(!none.ok && none.missing).toEqual([
      { field: "url", why: "iPXE fetches <url>/boot.ipxe", example: "url: http://192.168.1.10:8080" },
      { field: "dhcp.tftpServer", why: "PXE firmware fetches the iPXE binaries over TFTP, and there is no `url` to take the server from", example: "dhcp: { tftpServer: 192.168.1.10 }" },
    ]);
  });

  it("the TFTP server is the host of `url` when that is an IPv4 address, unless dhcp.tftpServer says otherwise", () => {
    expect(text("isc", "proxy", "url: http://10.1.2.3/nb\n")).toContain("next-server 10.1.2.3;");
    expect(text("isc", "proxy", "url: http://10.1.2.3/nb\ndhcp: { tftpServer: 10.1.2.4 }\n")).toContain("next-server 10.1.2.4;");
    expect(text("isc", "proxy", "url: http://10.1.2.3/nb\n")).toContain('filename "http://10.1.2.3/nb/boot.ipxe";');
  });

  it("dnsmasq serves TFTP from ipxe.binaries when dhcp.tftpRoot is not set; OpenWrt (the router's folder) has no such default", () => {
    const site = "url: http://10.1.2.3\ndhcp: { interface: eth0, subnet: 10.1.2.0/24 }\n";
    const r = renderDhcp(inputOf("dnsmasq", "proxy", site));
    expect(r.ok && body(r.text)).toContain("tftp-root=/usr/lib/ipxe");
    const o = renderDhcp(inputOf("openwrt", "proxy", site));
    expect(!o.ok && o.missing.map((m) => m.field)).toEqual(["dhcp.tftpRoot"]);
  });
});
