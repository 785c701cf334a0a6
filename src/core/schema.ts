// The inventory's only definition: every type the rest of netbuild sees is inferred from these
// schemas. Objects are strict, because a misspelt key (`provison:`) silently ignored is how a
// machine ends up booting without the flag its owner thought they set.
import { z } from "zod";

/** A provisioning round's id: a plain token, safe on the kernel command line and in a file name. */
export const PROVISION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PROVISION_ID_EXPECTED = "expected an id of letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit), like 2026-11-30, or a counter like 3";

const kernelParams = z.array(z.string()).describe("Extra kernel command-line parameters, one per entry (no spaces inside an entry)");

/** `sha256-` + base64 of 32 bytes: the SRI form Nix prints and accepts. */
export const SRI_SHA256 = /^sha256-[A-Za-z0-9+/]{43}=$/;
const sriHash = z.string().regex(SRI_SHA256, { error: "expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU=" });

export const ArtifactSchema = z
  .strictObject({
    path: z.string().min(1).optional().describe("A file, relative to the class file"),
    url: z.url({ protocol: /^(https?|file)$/, error: "expected an http(s):// or file:// URL" }).optional().describe("A URL; needs `hash`"),
    hash: sriHash.optional().describe("The file's sha256 in SRI form; required with `url`"),
  })
  .describe("Either { path } or { url, hash }");

/** Who may log in to NixOS machines (as root), from the site, a class and a host; the keys add up. */
const sshSettings = z
  .strictObject({
    authorizedKeys: z.array(z.string()).default([]).describe("OpenSSH public keys (one `ssh-ed25519 AAAA… comment` line each) that may log in as root on NixOS machines; public keys only: they end up in the Nix store and the boot tree"),
  })
  .describe("SSH access to NixOS machines");

const classCommon = {
  description: z.string().optional(),
  kernelParams: kernelParams.default([]),
};

export const NixosClassSchema = z.strictObject({
  kind: z.literal("nixos"),
  ...classCommon,
  modules: z.array(z.string().min(1)).min(1, { error: "a nixos class needs at least one module" }).describe("NixOS modules, relative to the class file"),
  system: z.enum(["x86_64-linux", "aarch64-linux"]).default("x86_64-linux"),
  ssh: sshSettings.optional(),
});

export const PrebuiltClassSchema = z.strictObject({
  kind: z.literal("prebuilt"),
  ...classCommon,
  kernel: ArtifactSchema,
  initrd: ArtifactSchema,
});

/** A schematic exactly as the Image Factory takes it (its fields, its names); unknown fields are refused, as the factory does. */
export const SchematicSchema = z
  .strictObject({
    overlay: z
      .strictObject({
        image: z.string().min(1).describe("The overlay's container image, e.g. siderolabs/sbc-raspberrypi"),
        name: z.string().min(1).describe("The overlay's name, e.g. rpi_generic"),
        options: z.record(z.string(), z.unknown()).optional().describe("Options passed to the overlay"),
      })
      .optional(),
    customization: z
      .strictObject({
        extraKernelArgs: z.array(z.string().min(1)).optional().describe("Kernel arguments the factory adds to its command line (`-arg` removes a default)"),
        meta: z
          .array(
            z.strictObject({
              key: z.number().int().min(0, { error: "expected a META key from 0 to 255 (e.g. 0xa)" }).max(255, { error: "expected a META key from 0 to 255 (e.g. 0xa)" }),
              value: z.string(),
            }),
          )
          .optional()
          .describe("Initial META values"),
        systemExtensions: z
          .strictObject({
            officialExtensions: z
              .array(z.string().regex(/^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/, { error: "expected an official extension name like siderolabs/iscsi-tools" }))
              .optional(),
          })
          .optional(),
        bootloader: z.enum(["none", "dual-boot", "sd-boot", "grub"], { error: "expected none, dual-boot, sd-boot or grub" }).optional(),
        secureboot: z
          .strictObject({
            enrollKeys: z.enum(["off", "manual", "if-safe", "force"], { error: "expected off, manual, if-safe or force" }).optional(),
            includeWellKnownCertificates: z.boolean().optional(),
          })
          .optional(),
        diskImage: z.strictObject({ sectorSize: z.number().int().min(1).optional() }).optional(),
      })
      .optional(),
  })
  .describe("The Image Factory schematic, in the factory's own format");

const talosRole = z.enum(["controlplane", "worker"], { error: "expected controlplane or worker" });

/** A size Talos parses (go-humanize): 100GB, 2GiB, 512MiB; or a percentage of the disk for maxSize. */
const talosSize = z.string().regex(/^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)$/, { error: "expected a size like 100GB or 2GiB" });

export const TalosVolumeSchema = z.strictObject({
  diskSelector: z.string().min(1).optional().describe("CEL expression choosing the disk (Talos default: system_disk)"),
  minSize: talosSize.optional(),
  maxSize: z.union([talosSize, z.string().regex(/^\d{1,3}%$/)], { error: "expected a size like 100GB, 2GiB, or a percentage like 50%" }).optional(),
  grow: z.boolean().optional().describe("Grow the volume to fill the disk up to maxSize"),
});

/** Per-host machine-config settings; a class's `talos.machine` gives defaults for its hosts. */
const talosMachineFields = {
  role: talosRole.optional().describe("Which base config the host's machine config starts from (controlplane.yaml or worker.yaml)"),
  installDisk: z.string().regex(/^\/dev\/[A-Za-z0-9._\/-]+$/, { error: "expected a device path like /dev/sda or /dev/disk/by-id/..." }).optional().describe("machine.install.disk"),
  volumes: z
    // Keys checked by a pattern, not an enum: zod reports a key outside an enum as unknown, without
    // this message naming the two there are. The names are listed for editors to complete.
    .record(z.string().regex(/^(EPHEMERAL|IMAGE-CACHE)$/, { error: "expected a system volume Talos lets VolumeConfig size: EPHEMERAL or IMAGE-CACHE" }).meta({ enum: ["EPHEMERAL", "IMAGE-CACHE"] }), TalosVolumeSchema)
    .optional()
    .describe("VolumeConfig documents by volume name, e.g. EPHEMERAL: { maxSize: 100GB }"),
  patches: z.array(z.string().min(1)).optional().describe("Strategic merge patch files (YAML, multi-document), relative to this file"),
};

export const TalosClassSchema = z.strictObject({
  kind: z.literal("talos"),
  ...classCommon,
  talos: z.strictObject({
    version: z.string().regex(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/, { error: "expected a Talos release like v1.12.2" }),
    arch: z.enum(["amd64", "arm64"]).default("amd64"),
    platform: z.string().regex(/^[a-z0-9-]+$/, { error: "expected a platform name like metal" }).default("metal"),
    schematic: SchematicSchema.default({}),
    schematicId: z
      .string()
      .regex(/^[0-9a-f]{64}$/, { error: "expected the 64-hex-digit schematic ID from the Image Factory" })
      .optional()
      .describe("Optional check: netbuild computes the ID from `schematic` and refuses the class if it differs"),
    hashes: z
      .strictObject({
        kernel: sriHash.optional().describe("sha256 of kernel-<arch>"),
        initramfs: sriHash.optional().describe("sha256 of initramfs-<arch>.xz"),
        cmdline: sriHash.optional().describe("sha256 of cmdline-<platform>-<arch>"),
      })
      .optional()
      .describe("The pinned artifacts (`netbuild pin` fills them); a class without all three loads but cannot be built"),
    machine: z.strictObject(talosMachineFields).optional().describe("Machine-config defaults for this class's hosts"),
  }),
});

export const ClassSchema = z.discriminatedUnion("kind", [NixosClassSchema, PrebuiltClassSchema, TalosClassSchema], {
  error: (issue) => (issue.code === "invalid_union" ? "expected `kind: nixos`, `kind: talos` or `kind: prebuilt`" : undefined),
});

export const HostSchema = z.strictObject({
  class: z.string().describe("The class this machine boots"),
  mac: z.string().optional().describe("The MAC the machine PXE-boots from"),
  macs: z.array(z.string()).min(1).optional().describe("Several MACs (one per NIC that may PXE-boot)"),
  ip: z.union([z.ipv4(), z.ipv6()], { error: "expected an IPv4 or IPv6 address" }).optional(),
  ram: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(MiB|GiB|TiB|MB|GB|TB)$/, { error: "expected a size like 16GiB or 512MiB" })
    .optional()
    .describe("Installed memory; netbuild warns when the class's image will not fit"),
  provision: z
    .strictObject({
      disks: z.boolean().default(false).describe("Format this host's disks on its next boot (wipes them)"),
      id: z
        .union([z.string().regex(PROVISION_ID, { error: PROVISION_ID_EXPECTED }), z.number().int({ error: PROVISION_ID_EXPECTED }).min(0, { error: PROVISION_ID_EXPECTED }).max(Number.MAX_SAFE_INTEGER, { error: PROVISION_ID_EXPECTED })], { error: PROVISION_ID_EXPECTED })
        .optional()
        .describe("This round of provisioning: the host formats once per id (the id of its last successful provision is recorded on its disks). `netbuild provision HOST` writes a new one"),
      force: z
        .boolean()
        .optional()
        .describe("Also format disks that hold data whose last provision cannot be read (the class's mount script fails on them: disks of another install). Without it, only blank disks or disks provisioned with another id are formatted"),
    })
    .default({ disks: false }),
  kernelParams: kernelParams.default([]),
  description: z.string().optional(),
  ssh: sshSettings.optional().describe("More keys that may log in as root on this machine (a host of a NixOS class), besides the site's and its class's"),
  talos: z
    .strictObject({
      ...talosMachineFields,
      network: z
        .strictObject({
          address: z.union([z.cidrv4(), z.cidrv6()], { error: "expected an address with its prefix length, like 10.0.0.5/24" }),
          gateway: z.union([z.ipv4(), z.ipv6()], { error: "expected an IPv4 or IPv6 address" }).optional(),
          nameservers: z.array(z.union([z.ipv4(), z.ipv6()], { error: "expected an IPv4 or IPv6 address" })).optional(),
          mac: z.string().optional().describe("The NIC the address goes on (default: the host's first MAC)"),
        })
        .optional()
        .describe("A static address instead of DHCP"),
    })
    .optional()
    .describe("Machine-config settings for a host of a Talos class"),
});

/** A file of many hosts; each host is then checked with HostSchema on its own. */
export const HostsFileSchema = z.strictObject({
  hosts: z.record(z.string(), z.unknown(), { error: "expected a mapping of hostname → host" }),
});

export const SiteSchema = z.strictObject({
  flagPrefix: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,31}$/, { error: "expected a short lower-case word like homelab" })
    .default("homelab")
    .describe("Prefix of provisioning flags on the kernel command line (<prefix>.provision_disks=true)"),
  links: z.enum(["symlink", "copy"]).default("symlink").describe("by-mac entries as symlinks, or real files for servers that cannot follow symlinks"),
  unknownMachines: z
    .union([z.literal("strict"), z.strictObject({ class: z.string() })], { error: "expected `strict` or `{ class: NAME }`" })
    .default("strict")
    .describe("What a machine whose MAC is in no host boots: nothing (strict), or a named class"),
  out: z.string().min(1).default("out").describe("The output tree, relative to the inventory root"),
  ssh: sshSettings.optional().describe("Keys that may log in as root on every NixOS machine"),
  talos: z
    .strictObject({
      factory: z.url({ protocol: /^https?$/ }).default("https://factory.talos.dev").describe("Image Factory base URL (or a mirror, or a self-hosted factory)"),
      configBaseUrl: z
        .url({ protocol: /^https?$/, error: "expected the http:// or https:// URL the boot server serves this tree at" })
        .optional()
        .describe("Where machines fetch the tree over HTTP(S); Talos hosts get talos.config=<this>/by-host/<host>/talos.yaml"),
      baseConfigs: z
        .strictObject({
          controlplane: z.string().min(1).optional().describe("controlplane.yaml from `talosctl gen config` (keep it out of git, or encrypted)"),
          worker: z.string().min(1).optional().describe("worker.yaml from `talosctl gen config` (keep it out of git, or encrypted)"),
        })
        .optional()
        .describe("Base machine configs by role, relative to the inventory root"),
    })
    .default({ factory: "https://factory.talos.dev" }),
  targets: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { error: "expected a short lower-case name like boot or local" }),
      z.union([
        z.string().min(1),
        z.strictObject({
          url: z.string().min(1).describe("sftp://user@host:port/path, user@host:/path, or a local folder"),
          keep: z.number().int().min(2, { error: "keep at least 2: the generation just switched away from stays for machines that were booting it" }).max(100).optional().describe("Class generations kept on this target (default: the site's keep)"),
          accessLog: z
            .string()
            .regex(/^\/[^\x00-\x1f\x7f]*$/, { error: "expected an absolute path on the target's machine, e.g. /var/log/nginx/access.log" })
            .refine((p) => !p.split("/").includes(".."), { error: "expected a path without a `..` part" })
            .optional()
            .describe("The access log of the web server that serves this target, on the target's machine (read by `netbuild discovered --target NAME`, over SFTP for a remote target)"),
        }),
      ], { error: "expected a target URL (sftp://user@host/path, user@host:/path, a folder) or { url, keep, accessLog }" }),
    )
    .default({})
    .describe("Where `netbuild deploy` puts the tree: name → sftp://user@host:port/path, user@host:/path, or a local folder"),
  keep: z.number().int().min(2, { error: "keep at least 2: the generation just switched away from stays for machines that were booting it" }).max(100).default(3).describe("Class generations kept on deploy targets, for `netbuild rollback` (the current one included)"),
  url: z
    .url({ protocol: /^https?$/, error: "expected the http:// or https:// URL machines fetch this tree at, like http://192.168.1.10:8080" })
    .optional()
    .describe("Where machines fetch this tree over HTTP(S): iPXE gets <url>/boot.ipxe from DHCP, and Talos hosts their machine configs (unless talos.configBaseUrl says otherwise)"),
  dhcp: z
    .strictObject({
      interface: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,14}$/, { error: "expected a network interface name like eth0 or br0" }).optional().describe("The interface the DHCP server answers on (dnsmasq, Kea, ISC)"),
      subnet: z.cidrv4({ error: "expected an IPv4 network with its prefix length, like 192.168.1.0/24" }).optional().describe("The LAN machines boot on"),
      tftpServer: z.ipv4({ error: "expected an IPv4 address" }).optional().describe("The TFTP server PXE firmware fetches the iPXE binaries from (default: the host of `url`, when it is an IPv4 address)"),
      tftpRoot: z.string().regex(/^\/[A-Za-z0-9._\/+-]*$/, { error: "expected an absolute folder path of letters, digits, '.', '_', '+', '-' and '/'" }).optional().describe("dnsmasq and OpenWrt serve TFTP themselves: the folder holding the iPXE binaries on that machine (default: ipxe.binaries)"),
      server: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/, { error: "expected a DHCP server name like dhcp1" }).optional().describe("RouterOS: the name of the router's DHCP server (/ip dhcp-server) the boot options go on"),
      range: z
        .strictObject({ start: z.ipv4({ error: "expected an IPv4 address" }), end: z.ipv4({ error: "expected an IPv4 address" }) })
        .optional()
        .describe("--mode full: the addresses handed out to machines without a reservation"),
      router: z.ipv4({ error: "expected an IPv4 address" }).optional().describe("--mode full: the default gateway machines get"),
      dns: z.array(z.ipv4({ error: "expected an IPv4 address" })).optional().describe("--mode full: the DNS servers machines get"),
      leaseTime: z.string().regex(/^[1-9][0-9]{0,6}[smhd]$/, { error: "expected a duration like 1h, 30m or 12h" }).default("1h").describe("--mode full: how long a lease lasts"),
    })
    .optional()
    .describe("What `netbuild dhcp` needs to write a DHCP server's configuration"),
  ipxe: z
    .strictObject({
      binaries: z.string().min(1).optional().describe("The folder holding undionly.kpxe, snponly.efi and ipxe.efi (default: /usr/lib/ipxe, where Debian's ipxe package puts them; nixpkgs: ${pkgs.ipxe})"),
      efi: z.enum(["snponly.efi", "ipxe.efi"], { error: "expected snponly.efi or ipxe.efi" }).default("snponly.efi").describe("What UEFI firmware gets: snponly.efi (uses the firmware's network driver, works on most machines) or ipxe.efi (iPXE's own drivers)"),
    })
    .optional()
    .describe("The iPXE binaries PXE firmware is given over TFTP"),
});

export type SchematicInput = z.infer<typeof SchematicSchema>;
export type TalosVolumeInput = z.infer<typeof TalosVolumeSchema>;
export type TalosRole = z.infer<typeof talosRole>;
export type ArtifactInput = z.infer<typeof ArtifactSchema>;
export type ClassInput = z.infer<typeof ClassSchema>;
export type HostInput = z.infer<typeof HostSchema>;
export type SiteInput = z.infer<typeof SiteSchema>;

/** JSON Schemas for editors (yaml-language-server). */
export function jsonSchemas(): Record<string, unknown> {
  return {
    site: z.toJSONSchema(SiteSchema, { io: "input" }),
    class: z.toJSONSchema(ClassSchema, { io: "input" }),
    host: z.toJSONSchema(HostSchema, { io: "input" }),
    hostsFile: z.toJSONSchema(z.strictObject({ hosts: z.record(z.string(), HostSchema) }), { io: "input" }),
  };
}
