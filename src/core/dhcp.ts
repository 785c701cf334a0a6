// The inventory → a DHCP server's configuration that gets machines to boot.ipxe: plain PXE firmware
// first gets an iPXE binary over TFTP (by its architecture, DHCP option 93), then iPXE (user class
// "iPXE", or option 175) gets the URL of boot.ipxe. Five servers, two modes:
//   proxy  boot information only; addresses stay with the LAN's DHCP server. dnsmasq answers as a
//          proxy DHCP server next to it; Kea, ISC, RouterOS and OpenWrt are that server, and get
//          the boot part to add to their configuration.
//   full   also addresses: dnsmasq, Kea and ISC get a range, the router and DNS options, and a
//          reservation for every host with an `ip:` in the subnet; RouterOS and OpenWrt (whose
//          own DHCP server already has its range) get those reservations as static leases.
// Every value written comes from a checked setting (site.ts), a checked name, MAC or address, or a
// folder checked here (SAFE_FOLDER), so none can break out of the syntax it is written into. The
// output is the same bytes for the same input.
import type { Host } from "./hosts.ts";
import { macColons, type Mac } from "./names.ts";
import { inSubnet, ipv4String, type Site } from "./site.ts";

export const DHCP_FORMATS = ["dnsmasq", "kea", "isc", "routeros", "openwrt"] as const;
export type DhcpFormat = (typeof DHCP_FORMATS)[number];
export const DHCP_MODES = ["proxy", "full"] as const;
export type DhcpMode = (typeof DHCP_MODES)[number];

/** An iPXE binary as the boot server has it. */
export interface IpxeBinary {
  name: string;
  sha256: string;
  size: number;
}

/** An IPv4 address as the schema checked it (dotted quad): not an IPv6 one, IPv4-mapped or not, nor a host name. */
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/** A folder every format takes as it is (what the site's dhcp.tftpRoot must be): no space, quote, comma or line break. */
export const SAFE_FOLDER = /^\/[A-Za-z0-9._\/+-]*$/;

export interface DhcpInput {
  format: DhcpFormat;
  mode: DhcpMode;
  site: Site;
  hosts: readonly Host[];
  /** What BIOS and x86-64 UEFI firmware get (undionly.kpxe; snponly.efi or ipxe.efi). */
  binaries: { bios: IpxeBinary; efi: IpxeBinary };
  /** The folder dnsmasq serves over TFTP when the site does not name one (ipxe.binaries, absolute). */
  defaultTftpRoot: string | undefined;
}

/** A setting a format needs and the site does not give: what to write, and where. */
export interface MissingSetting {
  field: string;
  /** Given, but not usable as it is (the default TFTP root), rather than not set. */
  unusable?: true;
  why: string;
  example: string;
}

export interface Reservation {
  host: string;
  mac: string;
  ip: string;
}

export type DhcpResult =
  | { ok: true; text: string; reservations: Reservation[]; skipped: { host: string; ip: string; why: string }[]; covered: string[]; notCovered: string[] }
  | { ok: false; missing: MissingSetting[] };

/** Client architectures (DHCP option 93, RFC 4578 and IANA's registry) and what each gets. */
const COVERED = (bios: string, efi: string) => [`BIOS x86 (client architecture 0) → ${bios}`, `UEFI x86-64 (client architectures 7 and 9) → ${efi}`, "iPXE itself (user class iPXE, or option 175) → boot.ipxe over HTTP"];
const NOT_COVERED = ["32-bit UEFI (6)", "arm64 UEFI (11: it needs an arm64 iPXE build, which ipxe.binaries does not have)", "UEFI HTTP boot (16)"];

interface Settings {
  url: string | undefined;
  bootUrl: string;
  tftpServer: string | undefined;
  tftpRoot: string | undefined;
  interface: string | undefined;
  subnet: { address: string; prefix: number } | undefined;
  netmask: string | undefined;
  range: { start: string; end: string } | undefined;
  server: string | undefined;
}

function netmaskOf(prefix: number): string {
  return ipv4String(2 ** 32 - 2 ** (32 - prefix));
}

/** The settings this format and mode need, or every one that is missing (or cannot be written as it is). */
export function settingsOf(input: Omit<DhcpInput, "binaries" | "hosts">): { ok: true; s: Partial<Settings> } | { ok: false; missing: MissingSetting[] } {
  const { site, format, mode } = input;
  const d = site.dhcp;
  const missing: MissingSetting[] = [];
  const need = (value: string | object | undefined, field: string, why: string, example: string) => {
    if (value === undefined) missing.push({ field, why, example });
  };
  need(site.url, "url", "iPXE fetches <url>/boot.ipxe", "url: http://192.168.1.10:8080");
  const host = site.url === undefined ? undefined : new URL(site.url).hostname;
  const tftpServer = d.tftpServer ?? (host !== undefined && IPV4.test(host) ? host : undefined);
  // dnsmasq and OpenWrt serve TFTP themselves; the others name the machine that does.
  const servesTftp = format === "dnsmasq" || format === "openwrt";
  if (!servesTftp) need(tftpServer, "dhcp.tftpServer", `PXE firmware fetches the iPXE binaries over TFTP, and ${site.url === undefined ? "there is no `url`" : "the host of `url` is not an IPv4 address"} to take the server from`, "dhcp: { tftpServer: 192.168.1.10 }");
  let tftpRoot = d.tftpRoot ?? (format === "dnsmasq" ? input.defaultTftpRoot : undefined);
  if (servesTftp && tftpRoot !== undefined && !SAFE_FOLDER.test(tftpRoot)) {
    // The default (ipxe.binaries, resolved) is a path of this machine: it may hold anything.
    missing.push({ field: "dhcp.tftpRoot", unusable: true, why: "dnsmasq serves the iPXE binaries over TFTP from a folder, and the one ipxe.binaries names has characters a configuration cannot hold as they are (a space, a comma, a quote, a line break…)", example: "dhcp: { tftpRoot: /srv/tftp } (a folder holding the binaries)" });
    tftpRoot = undefined;
  } else if (servesTftp) need(tftpRoot, "dhcp.tftpRoot", `${format === "openwrt" ? "the router" : "dnsmasq"} serves the iPXE binaries over TFTP from this folder`, "dhcp: { tftpRoot: /srv/tftp }");
  if (format === "dnsmasq" || (format === "kea" && mode === "full")) need(d.interface, "dhcp.interface", "the server answers only on this interface", "dhcp: { interface: eth0 }");
  if (format === "routeros") need(d.server, "dhcp.server", "the boot options and leases go on this DHCP server of the router", "dhcp: { server: dhcp1 }");
  const needsSubnet = mode === "full" || (format === "dnsmasq" || format === "routeros");
  if (needsSubnet) need(d.subnet, "dhcp.subnet", mode === "full" ? "the network the addresses are handed out in" : "the network the boot information is for", "dhcp: { subnet: 192.168.1.0/24 }");
  if (mode === "full" && (format === "dnsmasq" || format === "kea" || format === "isc")) need(d.range, "dhcp.range", "the addresses handed out to machines without a reservation", "dhcp: { range: { start: 192.168.1.100, end: 192.168.1.200 } }");
  if (missing.length > 0) return { ok: false, missing };
  // What this format and mode do not need may be undefined: its renderer does not read it.
  const s: Partial<Settings> = { url: site.url, bootUrl: `${site.url}/boot.ipxe`, tftpServer, tftpRoot, interface: d.interface, subnet: d.subnet, netmask: d.subnet && netmaskOf(d.subnet.prefix), range: d.range, server: d.server };
  return { ok: true, s };
}

/** Hosts with an IPv4 `ip:` in the subnet, one reservation per MAC; the others, and why they have none. */
function reservationsOf(hosts: readonly Host[], subnet: { address: string; prefix: number } | undefined) {
  const reservations: Reservation[] = [];
  const skipped: { host: string; ip: string; why: string }[] = [];
  // Host names are unique: no two compare equal.
  for (const h of [...hosts].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (h.ip === undefined) continue;
    if (!IPV4.test(h.ip)) skipped.push({ host: h.name, ip: h.ip, why: "gets no reservation: it is an IPv6 address (this configuration is DHCPv4)" });
    else if (subnet && !inSubnet(h.ip, subnet)) skipped.push({ host: h.name, ip: h.ip, why: `gets no reservation: it is not in dhcp.subnet ${subnet.address}/${subnet.prefix}` });
    else for (const mac of h.macs) reservations.push({ host: h.name, mac: macColons(mac as Mac), ip: h.ip });
  }
  return { reservations, skipped };
}

/** The header: what made it and from what (a site file: every format needs its url), what is covered, the binaries' hashes. */
function header(input: DhcpInput, lines: string[], comment: string): string {
  const { bios, efi } = input.binaries;
  const all = [
    `netbuild dhcp --format ${input.format} --mode ${input.mode}, from ${input.site.file!}. Generated: run it again after changing the inventory rather than editing this.`,
    ...lines,
    "Covered:",
    ...COVERED(bios.name, efi.name).map((l) => `  ${l}`),
    `Not covered (these get no boot file, never another architecture's): ${NOT_COVERED.join(", ")}.`,
    `${bios.name}: sha256 ${bios.sha256} (${bios.size} bytes)`,
    `${efi.name}: sha256 ${efi.sha256} (${efi.size} bytes)`,
  ];
  return all.map((l) => `${comment} ${l}`).join("\n");
}

function dnsmasq(input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]): string {
  const { bios, efi } = input.binaries;
  const full = input.mode === "full";
  const lines = [
    header(input, full ? ["The LAN's DHCP server, with TFTP of the iPXE binaries. No DNS (port=0)."] : ["Proxy DHCP: boot information only, next to the LAN's own DHCP server, which keeps handing out addresses.", "With TFTP of the iPXE binaries. No DNS (port=0)."], "#"),
    "port=0",
    `interface=${s.interface}`,
    "bind-interfaces",
  ];
  if (full) {
    lines.push(`dhcp-range=${s.range!.start},${s.range!.end},${s.netmask},${input.site.dhcp.leaseSeconds}`);
    if (input.site.dhcp.router !== undefined) lines.push(`dhcp-option=option:router,${input.site.dhcp.router}`);
    if (input.site.dhcp.dns.length > 0) lines.push(`dhcp-option=option:dns-server,${input.site.dhcp.dns.join(",")}`);
    const byHost = new Map<string, Reservation[]>();
    for (const r of reservations) byHost.set(r.host, [...(byHost.get(r.host) ?? []), r]);
    for (const [host, rs] of byHost) lines.push(`dhcp-host=${rs.map((r) => r.mac).join(",")},${rs[0]!.ip},${host}`);
  } else {
    lines.push(`dhcp-range=${s.subnet!.address},proxy,${s.netmask}`);
  }
  lines.push("enable-tftp", `tftp-root=${s.tftpRoot}`, "dhcp-userclass=set:ipxe,iPXE", "dhcp-match=set:ipxe,175");
  if (full) {
    // Each plain-PXE file needs both its architecture and "not iPXE": no line depends on which dnsmasq tries first.
    lines.push(
      "dhcp-match=set:bios,option:client-arch,0",
      "dhcp-match=set:efi64,option:client-arch,7",
      "dhcp-match=set:efi64,option:client-arch,9",
      `dhcp-boot=tag:!ipxe,tag:bios,${bios.name}`,
      `dhcp-boot=tag:!ipxe,tag:efi64,${efi.name}`,
      `dhcp-boot=tag:ipxe,${s.bootUrl}`,
    );
  } else {
    // dnsmasq's names for option 93: x86PC = 0, X86-64_EFI = 7, BC_EFI = 9.
    for (const csa of ["x86PC", "X86-64_EFI", "BC_EFI"]) lines.push(`pxe-service=tag:!ipxe,${csa},"netbuild: iPXE",${csa === "x86PC" ? bios.name : efi.name}`);
    for (const csa of ["x86PC", "X86-64_EFI", "BC_EFI"]) lines.push(`pxe-service=tag:ipxe,${csa},"netbuild",${s.bootUrl}`);
  }
  return `${lines.join("\n")}\n`;
}

function kea(input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]): string {
  const { bios, efi } = input.binaries;
  const isIpxe = "substring(option[77].hex,0,4) == 'iPXE' or option[175].exists";
  const classes = [
    { name: "netbuild-ipxe", test: isIpxe, "boot-file-name": s.bootUrl },
    { name: "netbuild-bios", test: "not member('netbuild-ipxe') and option[93].hex == 0x0000", "next-server": s.tftpServer, "boot-file-name": bios.name },
    { name: "netbuild-efi64", test: "not member('netbuild-ipxe') and (option[93].hex == 0x0007 or option[93].hex == 0x0009)", "next-server": s.tftpServer, "boot-file-name": efi.name },
  ];
  if (input.mode === "proxy") {
    const head = header(input, ["Kea cannot answer as a proxy DHCP server: this is the boot part for your kea-dhcp4.conf.", 'Add the three classes below to the "client-classes" list of its "Dhcp4" section.'], "#");
    return `${head}\n${JSON.stringify({ "client-classes": classes }, null, 2)}\n`;
  }
  const d = input.site.dhcp;
  const options = [...(d.router !== undefined ? [{ name: "routers", data: d.router }] : []), ...(d.dns.length > 0 ? [{ name: "domain-name-servers", data: d.dns.join(", ") }] : [])];
  const macsPerIp = new Map<string, number>();
  for (const r of reservations) macsPerIp.set(r.ip, (macsPerIp.get(r.ip) ?? 0) + 1);
  const config = {
    Dhcp4: {
      "interfaces-config": { interfaces: [s.interface] },
      "lease-database": { type: "memfile", persist: true },
      "valid-lifetime": d.leaseSeconds,
      // A host with several NICs has one reservation per MAC, all with its address.
      ...([...macsPerIp.values()].some((n) => n > 1) ? { "ip-reservations-unique": false } : {}),
      "client-classes": classes,
      subnet4: [
        {
          id: 1,
          subnet: `${s.subnet!.address}/${s.subnet!.prefix}`,
          pools: [{ pool: `${s.range!.start} - ${s.range!.end}` }],
          ...(options.length > 0 ? { "option-data": options } : {}),
          reservations: reservations.map((r) => ({ "hw-address": r.mac, "ip-address": r.ip, hostname: r.host })),
        },
      ],
    },
  };
  return `${header(input, ["The LAN's DHCP server (kea-dhcp4.conf)."], "#")}\n${JSON.stringify(config, null, 2)}\n`;
}

function isc(input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]): string {
  const { bios, efi } = input.binaries;
  const boot = (indent: string) =>
    [
      `next-server ${s.tftpServer};`,
      'if exists user-class and option user-class = "iPXE" {',
      `  filename "${s.bootUrl}";`,
      "} elsif option netbuild-client-arch = 00:00 {",
      `  filename "${bios.name}";`,
      "} elsif option netbuild-client-arch = 00:07 or option netbuild-client-arch = 00:09 {",
      `  filename "${efi.name}";`,
      "}",
    ].map((l) => `${indent}${l}`);
  const arch = "option netbuild-client-arch code 93 = unsigned integer 16;";
  if (input.mode === "proxy") {
    const head = header(input, ["ISC dhcpd cannot answer as a proxy DHCP server: this is the boot part for your dhcpd.conf.", "Put it at the top level of dhcpd.conf (or inside the subnet of the LAN the machines boot on)."], "#");
    return `${[head, arch, ...boot("")].join("\n")}\n`;
  }
  const d = input.site.dhcp;
  const lines = [header(input, ["The LAN's DHCP server (dhcpd.conf)."], "#"), arch, "authoritative;", `default-lease-time ${d.leaseSeconds};`, `max-lease-time ${d.leaseSeconds};`, `subnet ${s.subnet!.address} netmask ${s.netmask} {`, `  range ${s.range!.start} ${s.range!.end};`];
  if (d.router !== undefined) lines.push(`  option routers ${d.router};`);
  if (d.dns.length > 0) lines.push(`  option domain-name-servers ${d.dns.join(", ")};`);
  lines.push(...boot("  "), "}");
  const count = new Map<string, number>();
  for (const r of reservations) {
    const n = (count.get(r.host) ?? 0) + 1;
    count.set(r.host, n);
    lines.push(`host netbuild-${r.host}-${n} {`, `  hardware ethernet ${r.mac};`, `  fixed-address ${r.ip};`, `  option host-name "${r.host}";`, "}");
  }
  return `${lines.join("\n")}\n`;
}

/** A router's static leases: one per address, so a host with several MACs has it on its first. */
function firstPerHost(reservations: readonly Reservation[]): Reservation[] {
  const seen = new Set<string>();
  return reservations.filter((r) => !seen.has(r.host) && (seen.add(r.host), true));
}

function routeros(input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]): string {
  const { bios, efi } = input.binaries;
  const server = s.server!;
  const lines = [
    header(
      input,
      [
        `RouterOS 7.4 or later (/ip dhcp-server matcher). Paste into the router's terminal, or /import this file. It adds to DHCP server ${server}; addresses stay as they are.`,
        `The iPXE matcher is added first: iPXE on BIOS also sends client architecture 0, and must get boot.ipxe (given undionly.kpxe again, it loads itself in a loop). Check that a BIOS machine reaches boot.ipxe.`,
        "Run again: remove the previous ones first (/ip dhcp-server matcher remove [find name~\"^netbuild-\"], and the same under option sets and option).",
      ],
      "#",
    ),
    "/ip dhcp-server option",
    // s'…': sent as text (RouterOS would send '192.168.1.10' as 4 address bytes).
    `add name=netbuild-ipxe code=67 value="s'${s.bootUrl}'"`,
    `add name=netbuild-bios code=67 value="s'${bios.name}'"`,
    `add name=netbuild-efi64 code=67 value="s'${efi.name}'"`,
    `add name=netbuild-tftp code=66 value="s'${s.tftpServer}'"`,
    "/ip dhcp-server option sets",
    "add name=netbuild-ipxe options=netbuild-ipxe",
    "add name=netbuild-bios options=netbuild-tftp,netbuild-bios",
    "add name=netbuild-efi64 options=netbuild-tftp,netbuild-efi64",
    "/ip dhcp-server network",
    `set [find address="${s.subnet!.address}/${s.subnet!.prefix}"] next-server=${s.tftpServer}`,
    "/ip dhcp-server matcher",
    `add name=netbuild-ipxe server=${server} code=77 value="iPXE" option-set=netbuild-ipxe`,
    `add name=netbuild-bios server=${server} code=93 value=0x0000 option-set=netbuild-bios`,
    `add name=netbuild-efi64-7 server=${server} code=93 value=0x0007 option-set=netbuild-efi64`,
    `add name=netbuild-efi64-9 server=${server} code=93 value=0x0009 option-set=netbuild-efi64`,
  ];
  if (reservations.length > 0) {
    lines.push("/ip dhcp-server lease");
    for (const r of reservations) lines.push(`add server=${server} mac-address=${r.mac.toUpperCase()} address=${r.ip} comment="netbuild: ${r.host}"`);
  }
  return `${lines.join("\n")}\n`;
}

function openwrt(input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]): string {
  const { bios, efi } = input.binaries;
  // OpenWrt's dnsmasq init script writes a `boot` section as --dhcp-boot=net:<networkid>,<filename>,...:
  // the filename's own tag:!ipxe makes each plain-PXE file need both its architecture and "not iPXE".
  const lines = [
    header(
      input,
      [
        "OpenWrt (its dnsmasq): `uci batch < this-file && uci commit dhcp && /etc/init.d/dnsmasq restart` on the router.",
        `The router serves the iPXE binaries over TFTP from ${s.tftpRoot} (copy them there). Addresses stay as they are.`,
      ],
      "#",
    ),
    "set dhcp.@dnsmasq[0].enable_tftp='1'",
    `set dhcp.@dnsmasq[0].tftp_root='${s.tftpRoot}'`,
    "set dhcp.netbuild_ipxe=userclass",
    "set dhcp.netbuild_ipxe.networkid='ipxe'",
    "set dhcp.netbuild_ipxe.userclass='iPXE'",
    "set dhcp.netbuild_ipxe175=match",
    "set dhcp.netbuild_ipxe175.networkid='ipxe'",
    "set dhcp.netbuild_ipxe175.match='175'",
    "set dhcp.netbuild_bios=match",
    "set dhcp.netbuild_bios.networkid='bios'",
    "set dhcp.netbuild_bios.match='option:client-arch,0'",
    "set dhcp.netbuild_efi7=match",
    "set dhcp.netbuild_efi7.networkid='efi64'",
    "set dhcp.netbuild_efi7.match='option:client-arch,7'",
    "set dhcp.netbuild_efi9=match",
    "set dhcp.netbuild_efi9.networkid='efi64'",
    "set dhcp.netbuild_efi9.match='option:client-arch,9'",
    "set dhcp.netbuild_boot_bios=boot",
    "set dhcp.netbuild_boot_bios.networkid='bios'",
    `set dhcp.netbuild_boot_bios.filename='tag:!ipxe,${bios.name}'`,
    "set dhcp.netbuild_boot_efi64=boot",
    "set dhcp.netbuild_boot_efi64.networkid='efi64'",
    `set dhcp.netbuild_boot_efi64.filename='tag:!ipxe,${efi.name}'`,
    "set dhcp.netbuild_boot_ipxe=boot",
    "set dhcp.netbuild_boot_ipxe.networkid='ipxe'",
    `set dhcp.netbuild_boot_ipxe.filename='${s.bootUrl}'`,
  ];
  // Static leases (none in proxy mode: there are no reservations then).
  const byHost = new Map<string, Reservation[]>();
  for (const r of reservations) byHost.set(r.host, [...(byHost.get(r.host) ?? []), r]);
  for (const [host, rs] of byHost) {
    const id = `netbuild_host_${host.replaceAll("-", "_")}`;
    lines.push(`set dhcp.${id}=host`, `set dhcp.${id}.name='${host}'`, `set dhcp.${id}.mac='${rs.map((r) => r.mac).join(" ")}'`, `set dhcp.${id}.ip='${rs[0]!.ip}'`);
  }
  return `${lines.join("\n")}\n`;
}

const RENDER: Record<DhcpFormat, (input: DhcpInput, s: Partial<Settings>, reservations: Reservation[]) => string> = { dnsmasq, kea, isc, routeros, openwrt };

export function renderDhcp(input: DhcpInput): DhcpResult {
  const settings = settingsOf(input);
  if (!settings.ok) return settings;
  const all = input.mode === "full" ? reservationsOf(input.hosts, input.site.dhcp.subnet) : { reservations: [], skipped: [] };
  const reservations = input.format === "routeros" ? firstPerHost(all.reservations) : all.reservations;
  const skipped = [...all.skipped];
  for (const r of all.reservations) if (!reservations.includes(r)) skipped.push({ host: r.host, ip: r.ip, why: `has a static lease on its first MAC only, not on ${r.mac}: RouterOS holds one lease per address` });
  return {
    ok: true,
    text: RENDER[input.format](input, settings.s, reservations),
    reservations,
    skipped,
    covered: COVERED(input.binaries.bios.name, input.binaries.efi.name),
    notCovered: NOT_COVERED,
  };
}
