// The inventory's only definition: every type the rest of netbuild sees is inferred from these
// schemas. Objects are strict, because a misspelt key (`provison:`) silently ignored is how a
// machine ends up booting without the flag its owner thought they set.
import { z } from "zod";

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

const classCommon = {
  description: z.string().optional(),
  kernelParams: kernelParams.default([]),
};

export const NixosClassSchema = z.strictObject({
  kind: z.literal("nixos"),
  ...classCommon,
  modules: z.array(z.string().min(1)).min(1, { error: "a nixos class needs at least one module" }).describe("NixOS modules, relative to the class file"),
  system: z.enum(["x86_64-linux", "aarch64-linux"]).default("x86_64-linux"),
});

export const PrebuiltClassSchema = z.strictObject({
  kind: z.literal("prebuilt"),
  ...classCommon,
  kernel: ArtifactSchema,
  initrd: ArtifactSchema,
});

export const TalosClassSchema = z.strictObject({
  kind: z.literal("talos"),
  ...classCommon,
  talos: z.strictObject({
    version: z.string().regex(/^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/, { error: "expected a Talos release like v1.12.2" }),
    arch: z.enum(["amd64", "arm64"]).default("amd64"),
    platform: z.string().regex(/^[a-z0-9-]+$/, { error: "expected a platform name like metal" }).default("metal"),
    schematicId: z.string().regex(/^[0-9a-f]{64}$/, { error: "expected the 64-hex-digit schematic ID from the Image Factory" }),
    hashes: z
      .strictObject({
        kernel: sriHash.describe("sha256 of kernel-<arch>"),
        initramfs: sriHash.describe("sha256 of initramfs-<arch>.xz"),
      })
      .optional()
      .describe("The pinned artifacts; a class without them loads but cannot be built"),
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
    })
    .default({ disks: false }),
  kernelParams: kernelParams.default([]),
  description: z.string().optional(),
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
  talos: z
    .strictObject({
      factory: z.url({ protocol: /^https?$/ }).default("https://factory.talos.dev").describe("Image Factory base URL"),
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
        }),
      ], { error: "expected a target URL (sftp://user@host/path, user@host:/path, a folder) or { url, keep }" }),
    )
    .default({})
    .describe("Where `netbuild deploy` puts the tree: name → sftp://user@host:port/path, user@host:/path, or a local folder"),
  keep: z.number().int().min(2, { error: "keep at least 2: the generation just switched away from stays for machines that were booting it" }).max(100).default(3).describe("Class generations kept on deploy targets, for `netbuild rollback` (the current one included)"),
});

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
