// netbuild dhcp: a DHCP server's configuration, from the site settings and the hosts, on stdout.
import { UserError, type Issue } from "../errors.ts";
import { renderDhcp, settingsOf, type DhcpFormat, type DhcpMode, type IpxeBinary, type MissingSetting, type Reservation } from "../core/dhcp.ts";
import { IPXE_BIOS } from "../core/tree.ts";
import { SITE_FILE } from "../core/inventory.ts";
import { ipxeFolder, readIpxeBinaries } from "../adapters/ipxe-binaries.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";

export interface DhcpOptions extends RootOptions {
  format: DhcpFormat;
  mode: DhcpMode;
}

export interface DhcpOutput {
  format: DhcpFormat;
  mode: DhcpMode;
  /** The configuration, as printed without --json. */
  config: string;
  binaries: (IpxeBinary & { folder: string })[];
  reservations: Reservation[];
  /** Hosts with an `ip:` that get no reservation (or not on every MAC), and why. */
  skipped: { host: string; ip: string; why: string }[];
  covered: string[];
  notCovered: string[];
}

function incomplete(file: string, options: DhcpOptions, missing: readonly MissingSetting[]): UserError {
  const issues: Issue[] = missing.map((m) => ({ severity: "error", where: { file, field: `site.${m.field}` }, message: m.unusable ? m.why : `not set: ${m.why}`, hint: `add to ${file}:  ${m.example}` }));
  return new UserError("SITE_INCOMPLETE", `${file} lacks ${missing.length === 1 ? "a setting" : `${missing.length} settings`} that --format ${options.format} --mode ${options.mode} needs: ${missing.map((m) => m.field).join(", ")}`, { issues });
}

export async function dhcp(options: DhcpOptions, ctx: Context): Promise<DhcpOutput> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const folder = ipxeFolder(root, inv.site.ipxe.binaries);
  // The settings first: a site that lacks some is the input's fault (exit 2), whatever the binaries.
  const settings = settingsOf({ format: options.format, mode: options.mode, site: inv.site, defaultTftpRoot: folder });
  if (!settings.ok) throw incomplete(inv.site.file ?? SITE_FILE, options, settings.missing);
  const [bios, efi] = await readIpxeBinaries(folder, [IPXE_BIOS, inv.site.ipxe.efi]);
  const result = renderDhcp({ format: options.format, mode: options.mode, site: inv.site, hosts: inv.hosts, binaries: { bios: bios!, efi: efi! }, defaultTftpRoot: folder });
  if (!result.ok) throw incomplete(inv.site.file ?? SITE_FILE, options, result.missing);
  for (const s of result.skipped) ctx.reporter.warn(`host ${s.host} (ip ${s.ip}) ${s.why}`);
  return { format: options.format, mode: options.mode, config: result.text, binaries: [bios!, efi!].map((b) => ({ ...b, folder: folder! })), reservations: result.reservations, skipped: result.skipped, covered: result.covered, notCovered: result.notCovered };
}
