// The inventory's schemas (core/schema.ts), field by field: what each accepts, what it refuses and
// with which message, and its defaults; and `netbuild schema`, the JSON Schemas editors read, byte
// for byte against a reviewed golden file. The loader's own rules (names, MACs, parameters, files)
// are tested with the inventory (inventory-errors, bad-input); these are the fields' own limits.
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ArtifactSchema, ClassSchema, HostSchema, HostsFileSchema, jsonSchemas, SchematicSchema, SiteSchema, TalosVolumeSchema } from "../../src/core/schema.ts";
import { expectGolden } from "../support/golden.ts";

const SRI = `sha256-${"A".repeat(42)}+=`;
const ID_EXPECTED = "expected an id of letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit), like 2026-11-30, or a counter like 3";
const host = (extra: Record<string, unknown>) => ({ class: "demo", mac: "52:54:00:00:00:01", ...extra });
const talosClass = (talos: Record<string, unknown>) => ({ kind: "talos", talos: { version: "v1.12.2", ...talos } });

/** The first issue's message and path, or "ok". */
function check(schema: z.ZodType, value: unknown): string {
  const r = schema.safeParse(value);
  if (r.success) return "ok";
  const i = r.error.issues[0]!;
  // A record's key: its own check's message, as the loader reports it (yaml-doc.ts).
  const message = i.code === "invalid_key" ? i.issues[0]!.message : i.message;
  return `${i.path.join(".")}: ${message}`;
}

describe("the fields' limits", () => {
  const cases: [string, z.ZodType, unknown, string][] = [
    // provision.id: a token, from its first character to its last.
    ["id: a date", HostSchema, host({ provision: { disks: true, id: "2026-11-30" } }), "ok"],
    ["id: 64 characters", HostSchema, host({ provision: { id: "a".repeat(64) } }), "ok"],
    ["id: 65 characters", HostSchema, host({ provision: { id: "a".repeat(65) } }), `provision.id: ${ID_EXPECTED}`],
    ["id: starts with '-'", HostSchema, host({ provision: { id: "-x" } }), `provision.id: ${ID_EXPECTED}`],
    ["id: ends with '!'", HostSchema, host({ provision: { id: "x!" } }), `provision.id: ${ID_EXPECTED}`],
    ["id: a space", HostSchema, host({ provision: { id: "a b" } }), `provision.id: ${ID_EXPECTED}`],
    ["id: a counter", HostSchema, host({ provision: { id: 0 } }), "ok"],
    ["id: the largest safe counter", HostSchema, host({ provision: { id: Number.MAX_SAFE_INTEGER } }), "ok"],
    ["id: past it", HostSchema, host({ provision: { id: Number.MAX_SAFE_INTEGER + 2 } }), `provision.id: ${ID_EXPECTED}`],
    ["id: negative", HostSchema, host({ provision: { id: -1 } }), `provision.id: ${ID_EXPECTED}`],
    ["id: a fraction", HostSchema, host({ provision: { id: 1.5 } }), `provision.id: ${ID_EXPECTED}`],
    ["id: a boolean", HostSchema, host({ provision: { id: true } }), `provision.id: ${ID_EXPECTED}`],
    // Hashes: the SRI form, whole.
    ["hash: SRI", ArtifactSchema, { url: "https://x/k", hash: SRI }, "ok"],
    ["hash: prefixed", ArtifactSchema, { url: "https://x/k", hash: `x${SRI}` }, "hash: expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU="],
    ["hash: suffixed", ArtifactSchema, { url: "https://x/k", hash: `${SRI}x` }, "hash: expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU="],
    ["hash: short", ArtifactSchema, { url: "https://x/k", hash: `sha256-${"A".repeat(42)}=` }, "hash: expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU="],
    ["hash: not base64", ArtifactSchema, { url: "https://x/k", hash: `sha256-${"!".repeat(43)}=` }, "hash: expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU="],
    // Artifact URLs: http, https, file; nothing else.
    ["url: http", ArtifactSchema, { url: "http://x/k" }, "ok"],
    ["url: https", ArtifactSchema, { url: "https://x/k" }, "ok"],
    ["url: file", ArtifactSchema, { url: "file:///srv/k" }, "ok"],
    ["url: ftp", ArtifactSchema, { url: "ftp://x/k" }, "url: expected an http(s):// or file:// URL"],
    ["url: xhttp", ArtifactSchema, { url: "xhttp://x/k" }, "url: expected an http(s):// or file:// URL"],
    ["url: httpsx", ArtifactSchema, { url: "httpsx://x/k" }, "url: expected an http(s):// or file:// URL"],
    ["path: empty", ArtifactSchema, { path: "" }, "path: Too small: expected string to have >=1 characters"],
    ["artifact: unknown key", ArtifactSchema, { path: "./k", sha: "x" }, ': Unrecognized key: "sha"'],
    // Classes.
    ["class: no kind", ClassSchema, { modules: ["./a.nix"] }, "kind: expected `kind: nixos`, `kind: talos` or `kind: prebuilt`"],
    ["nixos: no module", ClassSchema, { kind: "nixos", modules: [] }, "modules: a nixos class needs at least one module"],
    ["nixos: an empty module", ClassSchema, { kind: "nixos", modules: [""] }, "modules.0: Too small: expected string to have >=1 characters"],
    ["nixos: a long module path", ClassSchema, { kind: "nixos", modules: ["./some/configuration.nix"] }, "ok"],
    ["nixos: aarch64", ClassSchema, { kind: "nixos", modules: ["./a.nix"], system: "aarch64-linux" }, "ok"],
    ["nixos: riscv", ClassSchema, { kind: "nixos", modules: ["./a.nix"], system: "riscv64-linux" }, 'system: Invalid option: expected one of "x86_64-linux"|"aarch64-linux"'],
    ["talos: a release", ClassSchema, talosClass({}), "ok"],
    ["talos: a pre-release", ClassSchema, talosClass({ version: "v1.12.0-beta.1" }), "ok"],
    ["talos: no v", ClassSchema, talosClass({ version: "1.12.2" }), "talos.version: expected a Talos release like v1.12.2"],
    ["talos: two numbers", ClassSchema, talosClass({ version: "v1.12" }), "talos.version: expected a Talos release like v1.12.2"],
    ["talos: trailing text", ClassSchema, talosClass({ version: "v1.12.2 " }), "talos.version: expected a Talos release like v1.12.2"],
    ["talos: leading text", ClassSchema, talosClass({ version: "xv1.12.2" }), "talos.version: expected a Talos release like v1.12.2"],
    ["talos: an empty pre-release", ClassSchema, talosClass({ version: "v1.12.2-" }), "talos.version: expected a Talos release like v1.12.2"],
    ["talos: arm64", ClassSchema, talosClass({ arch: "arm64" }), "ok"],
    ["talos: riscv", ClassSchema, talosClass({ arch: "riscv64" }), 'talos.arch: Invalid option: expected one of "amd64"|"arm64"'],
    ["talos: platform", ClassSchema, talosClass({ platform: "nocloud" }), "ok"],
    ["talos: platform, upper case", ClassSchema, talosClass({ platform: "Metal" }), "talos.platform: expected a platform name like metal"],
    ["talos: platform, prefixed", ClassSchema, talosClass({ platform: "/metal" }), "talos.platform: expected a platform name like metal"],
    ["talos: platform, suffixed", ClassSchema, talosClass({ platform: "metal/" }), "talos.platform: expected a platform name like metal"],
    ["talos: schematic id", ClassSchema, talosClass({ schematicId: "0".repeat(64) }), "ok"],
    ["talos: schematic id, short", ClassSchema, talosClass({ schematicId: "0".repeat(63) }), "talos.schematicId: expected the 64-hex-digit schematic ID from the Image Factory"],
    ["talos: schematic id, upper case", ClassSchema, talosClass({ schematicId: "A".repeat(64) }), "talos.schematicId: expected the 64-hex-digit schematic ID from the Image Factory"],
    ["talos: schematic id, prefixed", ClassSchema, talosClass({ schematicId: `x${"0".repeat(64)}` }), "talos.schematicId: expected the 64-hex-digit schematic ID from the Image Factory"],
    ["talos: schematic id, suffixed", ClassSchema, talosClass({ schematicId: `${"0".repeat(64)}x` }), "talos.schematicId: expected the 64-hex-digit schematic ID from the Image Factory"],
    ["talos: hashes", ClassSchema, talosClass({ hashes: { kernel: SRI, initramfs: SRI, cmdline: SRI } }), "ok"],
    ["talos: a bad hash", ClassSchema, talosClass({ hashes: { cmdline: "x" } }), "talos.hashes.cmdline: expected an SRI sha256 hash like sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hXuFU="],
    ["talos: machine", ClassSchema, talosClass({ machine: { role: "controlplane", installDisk: "/dev/disk/by-id/nvme-x_1", patches: ["./p.yaml"] } }), "ok"],
    ["talos: role", ClassSchema, talosClass({ machine: { role: "master" } }), "talos.machine.role: expected controlplane or worker"],
    ["talos: install disk", ClassSchema, talosClass({ machine: { installDisk: "sda" } }), "talos.machine.installDisk: expected a device path like /dev/sda or /dev/disk/by-id/..."],
    ["talos: install disk, suffixed", ClassSchema, talosClass({ machine: { installDisk: "/dev/sda b" } }), "talos.machine.installDisk: expected a device path like /dev/sda or /dev/disk/by-id/..."],
    ["talos: install disk, prefixed", ClassSchema, talosClass({ machine: { installDisk: "x/dev/sda" } }), "talos.machine.installDisk: expected a device path like /dev/sda or /dev/disk/by-id/..."],
    ["talos: an empty patch", ClassSchema, talosClass({ machine: { patches: [""] } }), "talos.machine.patches.0: Too small: expected string to have >=1 characters"],
    ["talos: a volume", ClassSchema, talosClass({ machine: { volumes: { "IMAGE-CACHE": { maxSize: "50%" } } } }), "ok"],
    ["talos: a volume of another name", ClassSchema, talosClass({ machine: { volumes: { STATE: {} } } }), "talos.machine.volumes.STATE: expected a system volume Talos lets VolumeConfig size: EPHEMERAL or IMAGE-CACHE"],
    // Volume sizes: what Talos parses.
    ["size: 100GB", TalosVolumeSchema, { minSize: "100GB", maxSize: "2 TiB", grow: true }, "ok"],
    ["size: 1.5GiB", TalosVolumeSchema, { minSize: "1.5GiB" }, "ok"],
    ["size: no unit", TalosVolumeSchema, { minSize: "100" }, "minSize: expected a size like 100GB or 2GiB"],
    ["size: no number", TalosVolumeSchema, { minSize: "GB" }, "minSize: expected a size like 100GB or 2GiB"],
    ["size: prefixed", TalosVolumeSchema, { minSize: "x100GB" }, "minSize: expected a size like 100GB or 2GiB"],
    ["size: suffixed", TalosVolumeSchema, { minSize: "100GBx" }, "minSize: expected a size like 100GB or 2GiB"],
    ["size: a fraction without digits", TalosVolumeSchema, { minSize: "1.GB" }, "minSize: expected a size like 100GB or 2GiB"],
    ["size: 100%", TalosVolumeSchema, { maxSize: "100%" }, "ok"],
    ["size: 1000%", TalosVolumeSchema, { maxSize: "1000%" }, "maxSize: expected a size like 100GB, 2GiB, or a percentage like 50%"],
    ["size: x50%", TalosVolumeSchema, { maxSize: "x50%" }, "maxSize: expected a size like 100GB, 2GiB, or a percentage like 50%"],
    ["size: 50%x", TalosVolumeSchema, { maxSize: "50%x" }, "maxSize: expected a size like 100GB, 2GiB, or a percentage like 50%"],
    ["volume: an empty selector", TalosVolumeSchema, { diskSelector: "" }, "diskSelector: Too small: expected string to have >=1 characters"],
    ["volume: a selector", TalosVolumeSchema, { diskSelector: "disk.transport == 'nvme'" }, "ok"],
    // Schematics, as the factory takes them.
    ["schematic: an overlay", SchematicSchema, { overlay: { image: "siderolabs/sbc-raspberrypi", name: "rpi_generic" } }, "ok"],
    ["schematic: an empty overlay image", SchematicSchema, { overlay: { image: "", name: "rpi_generic" } }, "overlay.image: Too small: expected string to have >=1 characters"],
    ["schematic: an empty overlay name", SchematicSchema, { overlay: { image: "x", name: "" } }, "overlay.name: Too small: expected string to have >=1 characters"],
    ["schematic: kernel args", SchematicSchema, { customization: { extraKernelArgs: ["net.ifnames=0", "-console"] } }, "ok"],
    ["schematic: an empty kernel arg", SchematicSchema, { customization: { extraKernelArgs: [""] } }, "customization.extraKernelArgs.0: Too small: expected string to have >=1 characters"],
    ["schematic: META 0 and 255", SchematicSchema, { customization: { meta: [{ key: 0, value: "a" }, { key: 255, value: "b" }] } }, "ok"],
    ["schematic: META -1", SchematicSchema, { customization: { meta: [{ key: -1, value: "a" }] } }, "customization.meta.0.key: expected a META key from 0 to 255 (e.g. 0xa)"],
    ["schematic: META 256", SchematicSchema, { customization: { meta: [{ key: 256, value: "a" }] } }, "customization.meta.0.key: expected a META key from 0 to 255 (e.g. 0xa)"],
    ["schematic: an extension", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["siderolabs/iscsi-tools", "a.b/c_d-1"] } } }, "ok"],
    ["schematic: an extension without owner", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["iscsi-tools"] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: an extension, upper case", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["Siderolabs/x"] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: an extension, three parts", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["a/b/c"] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: an extension, prefixed", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["-a/b"] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: an extension, suffixed", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["a/b "] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: an extension, second part starting with '-'", SchematicSchema, { customization: { systemExtensions: { officialExtensions: ["a/-b"] } } }, "customization.systemExtensions.officialExtensions.0: expected an official extension name like siderolabs/iscsi-tools"],
    ["schematic: bootloader", SchematicSchema, { customization: { bootloader: "sd-boot", secureboot: { enrollKeys: "if-safe", includeWellKnownCertificates: true } } }, "ok"],
    ["schematic: another bootloader", SchematicSchema, { customization: { bootloader: "lilo" } }, "customization.bootloader: expected none, dual-boot, sd-boot or grub"],
    ["schematic: enrollKeys", SchematicSchema, { customization: { secureboot: { enrollKeys: "always" } } }, "customization.secureboot.enrollKeys: expected off, manual, if-safe or force"],
    ["schematic: sector size 0", SchematicSchema, { customization: { diskImage: { sectorSize: 0 } } }, "customization.diskImage.sectorSize: Too small: expected number to be >=1"],
    ["schematic: sector size 4096", SchematicSchema, { customization: { diskImage: { sectorSize: 4096 } } }, "ok"],
    // Hosts.
    ["host: a MAC", HostSchema, host({}), "ok"],
    ["host: no MACs", HostSchema, { class: "demo", macs: [] }, "macs: Too small: expected array to have >=1 items"],
    ["host: IPv4", HostSchema, host({ ip: "10.0.0.5" }), "ok"],
    ["host: IPv6", HostSchema, host({ ip: "fd00::5" }), "ok"],
    ["host: a bad IP", HostSchema, host({ ip: "10.0.0.256" }), "ip: expected an IPv4 or IPv6 address"],
    ["host: ram", HostSchema, host({ ram: "16GiB" }), "ok"],
    ["host: ram, a fraction and a space", HostSchema, host({ ram: "1.5 TB" }), "ok"],
    ["host: ram, no unit", HostSchema, host({ ram: "16" }), "ram: expected a size like 16GiB or 512MiB"],
    ["host: ram, prefixed", HostSchema, host({ ram: "~16GiB" }), "ram: expected a size like 16GiB or 512MiB"],
    ["host: ram, suffixed", HostSchema, host({ ram: "16GiBs" }), "ram: expected a size like 16GiB or 512MiB"],
    ["host: ram in KiB", HostSchema, host({ ram: "16KiB" }), "ram: expected a size like 16GiB or 512MiB"],
    ["host: a static address", HostSchema, host({ talos: { network: { address: "10.0.0.5/24", gateway: "10.0.0.1", nameservers: ["1.1.1.1", "2606:4700::1111"] } } }), "ok"],
    ["host: an address without prefix", HostSchema, host({ talos: { network: { address: "10.0.0.5" } } }), "talos.network.address: expected an address with its prefix length, like 10.0.0.5/24"],
    ["host: a bad gateway", HostSchema, host({ talos: { network: { address: "fd00::5/64", gateway: "fd00::g" } } }), "talos.network.gateway: expected an IPv4 or IPv6 address"],
    ["host: a bad nameserver", HostSchema, host({ talos: { network: { address: "fd00::5/64", nameservers: ["x"] } } }), "talos.network.nameservers.0: expected an IPv4 or IPv6 address"],
    ["hosts file: not a mapping", HostsFileSchema, { hosts: ["a"] }, "hosts: expected a mapping of hostname → host"],
    // The site.
    ["site: empty", SiteSchema, {}, "ok"],
    ["site: flag prefix", SiteSchema, { flagPrefix: "lab_2" }, "ok"],
    ["site: flag prefix, 32 characters", SiteSchema, { flagPrefix: `a${"b".repeat(31)}` }, "ok"],
    ["site: flag prefix, 33 characters", SiteSchema, { flagPrefix: `a${"b".repeat(32)}` }, "flagPrefix: expected a short lower-case word like homelab"],
    ["site: flag prefix with a dot", SiteSchema, { flagPrefix: "home.lab" }, "flagPrefix: expected a short lower-case word like homelab"],
    ["site: flag prefix, a digit first", SiteSchema, { flagPrefix: "1lab" }, "flagPrefix: expected a short lower-case word like homelab"],
    ["site: flag prefix, upper case", SiteSchema, { flagPrefix: "Lab" }, "flagPrefix: expected a short lower-case word like homelab"],
    ["site: links", SiteSchema, { links: "copy" }, "ok"],
    ["site: links, hard", SiteSchema, { links: "hard" }, 'links: Invalid option: expected one of "symlink"|"copy"'],
    ["site: unknown machines", SiteSchema, { unknownMachines: { class: "demo" } }, "ok"],
    ["site: unknown machines, a name", SiteSchema, { unknownMachines: "demo" }, "unknownMachines: expected `strict` or `{ class: NAME }`"],
    ["site: out, empty", SiteSchema, { out: "" }, "out: Too small: expected string to have >=1 characters"],
    ["site: factory, http", SiteSchema, { talos: { factory: "http://mirror:8080" } }, "ok"],
    ["site: factory, file", SiteSchema, { talos: { factory: "file:///srv/factory" } }, "talos.factory: Invalid URL"],
    ["site: factory, xhttp", SiteSchema, { talos: { factory: "xhttp://mirror" } }, "talos.factory: Invalid URL"],
    ["site: config URL", SiteSchema, { talos: { configBaseUrl: "https://boot.example/tree" } }, "ok"],
    ["site: config URL, ftp", SiteSchema, { talos: { configBaseUrl: "ftp://boot/tree" } }, "talos.configBaseUrl: expected the http:// or https:// URL the boot server serves this tree at"],
    ["site: config URL, httpsx", SiteSchema, { talos: { configBaseUrl: "httpsx://boot/tree" } }, "talos.configBaseUrl: expected the http:// or https:// URL the boot server serves this tree at"],
    ["site: base configs", SiteSchema, { talos: { baseConfigs: { controlplane: "s/cp.yaml", worker: "s/w.yaml" } } }, "ok"],
    ["site: base config, empty", SiteSchema, { talos: { baseConfigs: { worker: "" } } }, "talos.baseConfigs.worker: Too small: expected string to have >=1 characters"],
    ["site: targets", SiteSchema, { targets: { boot: "sftp://boot/srv", "local-2": { url: "served", keep: 2 } } }, "ok"],
    ["site: target name, 32 characters", SiteSchema, { targets: { [`a${"b".repeat(31)}`]: "x" } }, "ok"],
    ["site: target name, 33 characters", SiteSchema, { targets: { [`a${"b".repeat(32)}`]: "x" } }, `targets.a${"b".repeat(32)}: expected a short lower-case name like boot or local`],
    ["site: target name, upper case", SiteSchema, { targets: { Boot: "x" } }, "targets.Boot: expected a short lower-case name like boot or local"],
    ["site: target name, '-' first", SiteSchema, { targets: { "-boot": "x" } }, "targets.-boot: expected a short lower-case name like boot or local"],
    ["site: target, empty", SiteSchema, { targets: { boot: "" } }, "targets.boot: Too small: expected string to have >=1 characters"],
    ["site: target, an empty url", SiteSchema, { targets: { boot: { url: "" } } }, "targets.boot.url: Too small: expected string to have >=1 characters"],
    ["site: target keep 1", SiteSchema, { targets: { boot: { url: "x", keep: 1 } } }, "targets.boot.keep: keep at least 2: the generation just switched away from stays for machines that were booting it"],
    ["site: target keep 100", SiteSchema, { targets: { boot: { url: "x", keep: 100 } } }, "ok"],
    ["site: target keep 101", SiteSchema, { targets: { boot: { url: "x", keep: 101 } } }, "targets.boot.keep: Too big: expected number to be <=100"],
    ["site: target, a number", SiteSchema, { targets: { boot: 3 } }, "targets.boot: expected a target URL (sftp://user@host/path, user@host:/path, a folder) or { url, keep, accessLog }"],
    ["site: keep 1", SiteSchema, { keep: 1 }, "keep: keep at least 2: the generation just switched away from stays for machines that were booting it"],
    ["site: keep 2", SiteSchema, { keep: 2 }, "ok"],
    ["site: keep 100", SiteSchema, { keep: 100 }, "ok"],
    ["site: keep 101", SiteSchema, { keep: 101 }, "keep: Too big: expected number to be <=100"],
    ["site: keep 2.5", SiteSchema, { keep: 2.5 }, "keep: Invalid input: expected int, received number"],
    ["site: ssh keys", SiteSchema, { ssh: { authorizedKeys: ["ssh-ed25519 AAAA x"] } }, "ok"],
    ["site: ssh, unknown key", SiteSchema, { ssh: { keys: [] } }, 'ssh: Unrecognized key: "keys"'],
  ];
  it.each(cases)("%s", (_name, schema, value, expected) => {
    expect(check(schema, value)).toBe(expected);
  });
});

describe("defaults", () => {
  it("a host: no wipe, no parameters", () => {
    expect(HostSchema.parse(host({}))).toEqual({ ...host({}), provision: { disks: false }, kernelParams: [] });
    expect(HostSchema.parse(host({ provision: {} })).provision).toEqual({ disks: false });
  });
  it("a class: no parameters; NixOS on x86_64 with its modules; Talos amd64 metal with an empty schematic", () => {
    expect(ClassSchema.parse({ kind: "nixos", modules: ["./a.nix"] })).toEqual({ kind: "nixos", modules: ["./a.nix"], kernelParams: [], system: "x86_64-linux" });
    expect(ClassSchema.parse({ kind: "talos", talos: { version: "v1.12.2" } })).toEqual({ kind: "talos", kernelParams: [], talos: { version: "v1.12.2", arch: "amd64", platform: "metal", schematic: {} } });
    expect(ClassSchema.parse({ kind: "nixos", modules: ["./a.nix"], ssh: {} })).toMatchObject({ ssh: { authorizedKeys: [] } });
  });
  it("the site: homelab, symlinks, strict, out/, the public factory, no targets, keep 3", () => {
    expect(SiteSchema.parse({})).toEqual({ flagPrefix: "homelab", links: "symlink", unknownMachines: "strict", out: "out", talos: { factory: "https://factory.talos.dev" }, targets: {}, keep: 3 });
  });
});

describe("netbuild schema", () => {
  it("prints the JSON Schemas editors read, as reviewed (test/golden/schema.json)", () => {
    expectGolden("schema.json", `${JSON.stringify(jsonSchemas(), null, 2)}\n`);
  });
});
