// netbuild.yaml: the site's settings (flag prefix, links, unknown machines, output folder, Talos
// factory and base configs, deploy targets), with their defaults when the file is absent.
import { parseClassName, parseKernelParam, type ClassName, type PublicKey } from "./names.ts";
import { SiteSchema, type SiteInput, type TalosRole } from "./schema.ts";
import { fieldPath, quoted } from "./excerpt.ts";
import type { YamlDoc } from "./yaml-doc.ts";
import { parseTarget, type Target } from "./target.ts";
import { fileIssue, type InventoryFile } from "./inventory-source.ts";
import { authorizedKeysOf, docOf, resolveRef, validated, type Collector } from "./inventory-rules.ts";

export const SITE_FILE = "netbuild.yaml";

export interface Site {
  file: string | undefined;
  flagPrefix: string;
  links: "symlink" | "copy";
  /** The class unknown machines boot; null = strict (they boot nothing). */
  unknownClass: ClassName | null;
  out: string;
  talosFactory: string;
  /** Where machines fetch the tree over HTTP(S), without a trailing slash (Talos hosts' talos.config= starts with it). */
  talosConfigBaseUrl: string | undefined;
  /** Base machine configs by role (paths relative to the root), from `talosctl gen config`. */
  talosBaseConfigs: Partial<Record<TalosRole, string>>;
  /** Deploy targets by name, sorted. */
  targets: Target[];
  /** Class generations a target keeps unless it says otherwise. */
  keep: number;
  /** Public keys that may log in as root on every NixOS machine (`ssh.authorizedKeys`). */
  sshAuthorizedKeys: PublicKey[];
  /** Where machines fetch the tree (`url`), without a trailing slash: boot.ipxe is <url>/boot.ipxe. */
  url: string | undefined;
  /** What `netbuild dhcp` writes from (`dhcp:`); each field is checked, none is required until a format needs it. */
  dhcp: DhcpSettings;
  ipxe: { binaries: string | undefined; efi: "snponly.efi" | "ipxe.efi" };
}

export interface DhcpSettings {
  interface: string | undefined;
  /** The LAN, as network address and prefix length (the network address itself, host bits zero). */
  subnet: { address: string; prefix: number } | undefined;
  tftpServer: string | undefined;
  tftpRoot: string | undefined;
  server: string | undefined;
  range: { start: string; end: string } | undefined;
  router: string | undefined;
  dns: string[];
  leaseSeconds: number;
}

/** An IPv4 address as a number (the address was checked by the schema). */
export function ipv4Number(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

export function ipv4String(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** Whether `ip` is inside the subnet. */
export function inSubnet(ip: string, subnet: { address: string; prefix: number }): boolean {
  const size = 2 ** (32 - subnet.prefix);
  return Math.floor(ipv4Number(ip) / size) === Math.floor(ipv4Number(subnet.address) / size);
}

/** A URL every DHCP server's configuration and iPXE take as it is: no quotes, spaces, commas, `$`, query or user info. */
const PLAIN_URL = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\/[A-Za-z0-9._~%+\/-]*)?$/;

const NO_DHCP: DhcpSettings = { interface: undefined, subnet: undefined, tftpServer: undefined, tftpRoot: undefined, server: undefined, range: undefined, router: undefined, dns: [], leaseSeconds: 3600 };

const SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

function dhcpOf(doc: YamlDoc, input: SiteInput, c: Collector): DhcpSettings {
  const d = input.dhcp;
  let subnet: DhcpSettings["subnet"];
  if (d?.subnet !== undefined) {
    const [address, bits] = d.subnet.split("/") as [string, string];
    const prefix = Number(bits);
    const network = ipv4String(Math.floor(ipv4Number(address) / 2 ** (32 - prefix)) * 2 ** (32 - prefix));
    if (prefix < 8 || prefix > 30) c.error(doc, ["dhcp", "subnet"], "site.dhcp.subnet", `a /${prefix} network cannot be a boot LAN`, "give the LAN's network with a prefix from /8 to /30, like 192.168.1.0/24");
    else if (network !== address) c.error(doc, ["dhcp", "subnet"], "site.dhcp.subnet", `${quoted(d.subnet)} has host bits set`, `give the network address: ${network}/${prefix}`);
    else subnet = { address, prefix };
  }
  const inside = (ip: string | undefined, at: (string | number)[], what: string): void => {
    if (ip !== undefined && subnet && !inSubnet(ip, subnet)) c.error(doc, ["dhcp", ...at], `site.dhcp.${at.join(".")}`, `${what} ${ip} is not in dhcp.subnet ${subnet.address}/${subnet.prefix}`, "give an address of the LAN the machines boot on");
  };
  inside(d?.range?.start, ["range", "start"], "the range's first address");
  inside(d?.range?.end, ["range", "end"], "the range's last address");
  inside(d?.router, ["router"], "the router");
  if (d?.range && ipv4Number(d.range.start) > ipv4Number(d.range.end)) c.error(doc, ["dhcp", "range", "end"], "site.dhcp.range.end", `the range ends (${d.range.end}) before it starts (${d.range.start})`, "give start ≤ end");
  const lease = d?.leaseTime ?? "1h";
  return {
    interface: d?.interface,
    subnet,
    tftpServer: d?.tftpServer,
    tftpRoot: d?.tftpRoot?.replace(/(.)\/+$/, "$1"),
    server: d?.server,
    range: d?.range,
    router: d?.router,
    dns: d?.dns ?? [],
    leaseSeconds: Number(lease.slice(0, -1)) * SECONDS[lease.slice(-1) as keyof typeof SECONDS],
  };
}

function targetsOf(doc: YamlDoc, input: SiteInput, c: Collector): Target[] {
  const targets: Target[] = [];
  for (const [name, value] of Object.entries(input.targets).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const spec = typeof value === "string" ? value : value.url;
    const at = typeof value === "string" ? ["targets", name] : ["targets", name, "url"];
    const parsed = parseTarget(spec);
    if (!parsed.ok) {
      c.error(doc, at, fieldPath("site.targets", name), parsed.message, parsed.hint);
      continue;
    }
    const accessLog = typeof value === "string" ? undefined : value.accessLog;
    targets.push({ name, location: parsed.value, keep: (typeof value === "string" ? undefined : value.keep) ?? input.keep, spec, ...(accessLog !== undefined ? { accessLog } : {}) });
  }
  return targets;
}

export function parseSite(given: InventoryFile | undefined, c: Collector): Site {
  const defaults = SiteSchema.parse({});
  let input = defaults;
  if (given?.problem) {
    c.issues.push(fileIssue(given.path, "site", given.problem));
    // Its settings are unknown, not the defaults: rules that need them stay silent.
    c.refuse(given.path, []);
  }
  const file = given?.problem ? undefined : given;
  // Parsed once (the messages below all point into it).
  const doc = file ? docOf(file, c) : undefined;
  if (doc) {
    c.issues.push(...doc.syntaxIssues);
    // Fields with errors fall back to their defaults and are refused; the rest of the file still counts.
    const parsed = doc.readable ? validated(SiteSchema, doc, doc.data ?? {}, [], "site", c) : undefined;
    if (parsed) input = parsed;
    else c.refuse(doc.file, []);
    const out = resolveRef(SITE_FILE, input.out);
    const top = out?.split("/")[0];
    if (out === null) {
      c.error(doc, ["out"], "site.out", `${quoted(input.out)} leaves the inventory root`, "give a folder inside the root (a tree elsewhere: `--out DIR` on the command line)");
    } else if (top === "." || top === "classes" || top === "hosts") {
      // The tree's by-host/<host>/talos.yaml written under hosts/ would be read back as a host.
      c.error(doc, ["out"], "site.out", top === "." ? `${quoted(input.out)} is the inventory root itself` : `${quoted(input.out)} is inside ${top}/, which netbuild reads as the inventory`, "give a folder of its own inside the root, such as out");
    }
  }
  const unknown = input.unknownMachines;
  let unknownClass: ClassName | null = null;
  if (unknown !== "strict" && doc) {
    const parsed = parseClassName(unknown.class);
    if (parsed.ok) unknownClass = parsed.value;
    // Not strict by accident: a name that cannot be a class is an error, like an unknown class.
    else c.error(doc, ["unknownMachines", "class"], "site.unknownMachines.class", parsed.message, parsed.hint);
  }
  const baseConfigs: Partial<Record<TalosRole, string>> = {};
  for (const role of ["controlplane", "worker"] as const) {
    const ref = input.talos.baseConfigs?.[role];
    if (ref === undefined || !doc) continue;
    const rel = resolveRef(SITE_FILE, ref);
    if (rel === null) {
      c.error(doc, ["talos", "baseConfigs", role], `site.talos.baseConfigs.${role}`, `${quoted(ref)} points outside the inventory root`, "keep base configs inside the root (and out of git: add them to .gitignore, or encrypt them)");
      c.refuse(doc.file, ["talos", "baseConfigs", role]);
    } else baseConfigs[role] = rel;
  }
  let url: string | undefined;
  if (input.url !== undefined && doc) {
    const plain = input.url.replace(/\/+$/, "");
    if (PLAIN_URL.test(plain)) url = plain;
    else {
      c.error(doc, ["url"], "site.url", "the URL cannot go into a DHCP configuration or an iPXE script as it is", "give a plain URL of letters, digits and . _ ~ % + - / after the host, with no user info, query or fragment, like http://192.168.1.10:8080/netboot");
      c.refuse(doc.file, ["url"]);
    }
  }
  let talosConfigBaseUrl: string | undefined;
  if (input.talos.configBaseUrl === undefined) talosConfigBaseUrl = url;
  else if (doc) {
    const url = input.talos.configBaseUrl.replace(/\/+$/, "");
    const probe = parseKernelParam(`talos.config=${url}/by-host/x/talos.yaml`);
    if (!probe.ok || /[?#]/.test(url)) {
      c.error(doc, ["talos", "configBaseUrl"], "site.talos.configBaseUrl", probe.ok ? "the URL has a query or fragment" : `the URL cannot go on a kernel command line: ${probe.message}`, "give the plain base URL the boot server serves this tree at, e.g. https://boot.example/nixos");
      c.refuse(doc.file, ["talos", "configBaseUrl"]);
    } else talosConfigBaseUrl = url;
  }
  return {
    file: given?.path,
    flagPrefix: input.flagPrefix,
    links: input.links,
    unknownClass,
    out: input.out,
    talosFactory: input.talos.factory.replace(/\/+$/, ""),
    talosConfigBaseUrl,
    talosBaseConfigs: baseConfigs,
    targets: doc ? targetsOf(doc, input, c) : [],
    keep: input.keep,
    sshAuthorizedKeys: doc ? authorizedKeysOf(doc, [], "site", input.ssh?.authorizedKeys, c) : [],
    url,
    dhcp: doc ? dhcpOf(doc, input, c) : NO_DHCP,
    ipxe: { binaries: input.ipxe?.binaries, efi: input.ipxe?.efi ?? "snponly.efi" },
  };
}
