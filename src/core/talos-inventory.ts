// Talos in the inventory: a `kind: talos` class (its schematic, pinned artifacts and machine-config
// defaults) and the Talos settings of a host of such a class (role, network, volumes, patches).
// The machine configs themselves are rendered by talos-config.ts.
import { macColons, parseKernelParam, parseMac, type HostName, type KernelParam, type Mac } from "./names.ts";
import type { SchematicInput, TalosRole, TalosVolumeInput } from "./schema.ts";
import { canonicalSchematic } from "./talos-schematic.ts";
import type { Path, YamlDoc } from "./yaml-doc.ts";
import type { Probe } from "./inventory-source.ts";
import { referencedFile, reservedParams, type ClassBase, type Collector, type RawClass, type RawHost } from "./inventory-rules.ts";
import type { Site } from "./site.ts";

export const TALOS_ARTIFACTS = ["kernel", "initramfs", "cmdline"] as const;

export type TalosArtifact = (typeof TALOS_ARTIFACTS)[number];

/** Machine-config settings (a class's defaults, or a host's own merged over them). */
export interface TalosMachine {
  role: TalosRole | undefined;
  installDisk: string | undefined;
  volumes: Record<string, TalosVolumeInput>;
  /** Patch files, relative to the root, in the order they apply. */
  patches: string[];
}

export interface TalosClass extends ClassBase {
  kind: "talos";
  version: string;
  arch: "amd64" | "arm64";
  platform: string;
  schematic: SchematicInput;
  /** Computed from the schematic, exactly as the Image Factory does. */
  schematicId: string;
  /** The canonical schematic (what the ID hashes; what `POST /schematics` takes). */
  schematicYaml: string;
  /** The pinned hashes; the class builds only when all three are set. */
  hashes: Partial<Record<TalosArtifact, string>>;
  machine: TalosMachine;
}

/** The factory URL of one of a Talos class's artifacts. */
export function talosArtifactUrl(factory: string, def: Pick<TalosClass, "schematicId" | "version" | "arch" | "platform">, what: TalosArtifact): string {
  const file = what === "kernel" ? `kernel-${def.arch}` : what === "initramfs" ? `initramfs-${def.arch}.xz` : `cmdline-${def.platform}-${def.arch}`;
  return `${factory}/image/${def.schematicId}/${def.version}/${file}`;
}

export function unpinnedArtifacts(def: TalosClass): TalosArtifact[] {
  return TALOS_ARTIFACTS.filter((a) => def.hashes[a] === undefined);
}

export interface TalosHost extends TalosMachine {
  role: TalosRole;
  /** talos.config= for this host: <configBaseUrl>/by-host/<host>/talos.yaml */
  configUrl: KernelParam;
  network: { address: string; gateway: string | undefined; nameservers: string[]; mac: Mac } | undefined;
}

// ---------------------------------------------------------------------------------------------
// Rules

/** Patch files a class or host names: inside the root, and there. */
function patchFiles(doc: YamlDoc, at: Path, label: string, refs: readonly string[] | undefined, probe: Probe, c: Collector): string[] {
  const out: string[] = [];
  (refs ?? []).forEach((ref, i) => {
    const rel = referencedFile(doc, [...at, "patches", i], `${label}.patches[${i}]`, doc.file, ref, "file", probe, c);
    if (rel !== null) out.push(rel);
  });
  return out;
}

/**
 * minSize over maxSize, which Talos could not provision. A host's volume settings merge field by
 * field over its class's (`inherited`): a host's maxSize under the class's minSize is the same
 * error, reported at the host's field and naming the class's. (A host that sets neither size has
 * the class's, which the class's own check passed: a class whose sizes cross is refused, and its
 * hosts are not checked against it.)
 */
function checkVolumes(doc: YamlDoc, at: Path, label: string, volumes: Record<string, TalosVolumeInput> | undefined, c: Collector, inherited?: { className: string; volumes: Record<string, TalosVolumeInput> }): void {
  for (const [name, own] of Object.entries(volumes ?? {})) {
    const from = inherited?.volumes[name];
    const minSize = own.minSize ?? from?.minSize;
    const maxSize = own.maxSize ?? from?.maxSize;
    if (minSize === undefined || maxSize === undefined || maxSize.endsWith("%") || talosBytes(minSize) <= talosBytes(maxSize)) continue;
    const fix = "Talos could not provision the volume; lower minSize or raise maxSize";
    if (own.minSize !== undefined) {
      const whose = own.maxSize === undefined ? ` (class ${inherited!.className}'s)` : "";
      c.error(doc, [...at, "volumes", name, "minSize"], `${label}.volumes.${name}.minSize`, `minSize ${minSize} is larger than maxSize ${maxSize}${whose}`, fix);
    } else {
      c.error(doc, [...at, "volumes", name, "maxSize"], `${label}.volumes.${name}.maxSize`, `maxSize ${maxSize} is smaller than minSize ${minSize} (class ${inherited!.className}'s)`, fix);
    }
  }
}

export function talosClassOf(raw: RawClass, base: ClassBase, site: Site, probe: Probe, c: Collector): TalosClass | null {
  if (raw.input.kind !== "talos") return null;
  const t = raw.input.talos;
  const label = `classes.${raw.name}.talos`;
  const canonical = canonicalSchematic(t.schematic);
  if (!canonical.ok) {
    // Reported, and the rest of the class still checked; without an ID there is no class to build.
    c.error(raw.doc, ["talos", "schematic"], `${label}.schematic`, `netbuild cannot compute this schematic's ID exactly: ${canonical.message}`, "change the value, or use the factory's web page for this schematic");
  }
  // These reach every host's command line ahead of netbuild's own parameters (and Talos reads the
  // first talos.config=): the same reserved names as kernelParams, removals (`-arg`) included.
  const args = (t.schematic.customization?.extraKernelArgs ?? []).map((arg, i) => {
    const p = parseKernelParam(arg.startsWith("-") ? arg.slice(1) || "-" : arg);
    if (!p.ok) c.error(raw.doc, ["talos", "schematic", "customization", "extraKernelArgs", i], `${label}.schematic.customization.extraKernelArgs[${i}]`, p.message, p.hint);
    return p.ok ? (arg as KernelParam) : undefined;
  });
  reservedParams(raw.doc, ["talos", "schematic", "customization"], `${label}.schematic.customization`, args, site, c, true, "extraKernelArgs");
  const m = t.machine;
  checkVolumes(raw.doc, ["talos", "machine"], `${label}.machine`, m?.volumes, c);
  const patches = patchFiles(raw.doc, ["talos", "machine"], `${label}.machine`, m?.patches, probe, c);
  if (!canonical.ok) return null;
  const { id, yaml } = canonical.value;
  if (t.schematicId !== undefined && t.schematicId !== id) {
    c.error(raw.doc, ["talos", "schematicId"], `${label}.schematicId`, `the schematic's ID is ${id}, not ${t.schematicId}`, "netbuild computes the ID from `schematic` as the Image Factory does: remove schematicId, or set it to the computed ID if the schematic is what you meant (run `netbuild talos schematic` to see it)");
  }
  const def: TalosClass = {
    ...base,
    kind: "talos",
    version: t.version,
    arch: t.arch,
    platform: t.platform,
    schematic: t.schematic,
    schematicId: id,
    schematicYaml: yaml,
    hashes: { ...t.hashes },
    machine: { role: m?.role, installDisk: m?.installDisk, volumes: { ...m?.volumes }, patches },
  };
  const missing = unpinnedArtifacts(def);
  if (missing.length > 0) {
    c.warn(
      raw.doc,
      ["talos"],
      `${label}.hashes`,
      `not pinned (${missing.join(", ")}): this class cannot be built until ${missing.length === 1 ? "its hash is" : "these hashes are"} set`,
      `run \`netbuild pin --class ${raw.name}\` (it downloads them from ${site.talosFactory} and writes their hashes into ${raw.doc.file}; \`netbuild talos schematic ${raw.name}\` shows the URLs)`,
    );
  }
  return def;
}

const TALOS_UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50 };

function talosBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(\w+)$/.exec(size)!;
  return Number(m[1]) * TALOS_UNITS[m[2]!]!;
}

/** `name`: the host's, when it is a valid hostname (a host without one is not checked here). */
export function talosHostOf(raw: RawHost, name: HostName, cls: TalosClass | (ClassBase & { kind: "nixos" | "prebuilt" }) | undefined, site: Site, macs: Mac[], probe: Probe, c: Collector): TalosHost | undefined {
  const { doc, at, label, input } = raw;
  const t = input.talos;
  if (cls?.kind !== "talos") {
    if (t !== undefined && cls !== undefined) c.error(doc, [...at, "talos"], `${label}.talos`, `talos settings on a host of class ${cls.name}, which is not a Talos class`, "remove them, or move the host to a Talos class");
    return undefined;
  }
  // What the machine config needs (a role, its base config, the URL it is served at) is checked
  // first, then the host's own settings, whatever the first checks found.
  let ready = true;
  const role = t?.role ?? cls.machine.role;
  // A site setting that has an error of its own (reported in netbuild.yaml) is not missing here.
  const siteRefused = (setting: Path) => site.file !== undefined && c.isRefused(site.file, setting);
  if (role === undefined) {
    c.error(doc, t ? [...at, "talos"] : at, `${label}.talos.role`, `host ${name} of Talos class ${cls.name} has no role, so netbuild cannot tell which base config to render its machine config from`, "set `talos: { role: worker }` (or controlplane) on the host, or `talos.machine.role` on the class");
    ready = false;
  }
  if (site.talosConfigBaseUrl === undefined) {
    if (!siteRefused(["talos", "configBaseUrl"]) && !siteRefused(["url"])) c.error(doc, at, `${label}.talos`, `host ${name} boots Talos, which fetches its machine config from a URL, and netbuild.yaml does not say where the tree is served`, "set `url: https://boot.example/path` in netbuild.yaml (the URL the boot server serves this tree at; `talos.configBaseUrl` overrides it for Talos)");
    ready = false;
  } else if (role !== undefined && site.talosBaseConfigs[role] === undefined) {
    if (!siteRefused(["talos", "baseConfigs", role])) c.error(doc, t?.role !== undefined ? [...at, "talos", "role"] : [...at, "class"], `${label}.talos.role`, `role ${role} has no base config`, `set \`talos: { baseConfigs: { ${role}: secrets/${role}.yaml } }\` in netbuild.yaml (the file \`talosctl gen config\` writes; keep it out of git or encrypted)`);
    ready = false;
  }
  checkVolumes(doc, [...at, "talos"], `${label}.talos`, t?.volumes, c, { className: cls.name, volumes: cls.machine.volumes });
  let network: TalosHost["network"];
  if (t?.network) {
    const n = t.network;
    let mac = macs[0];
    if (n.mac !== undefined) {
      const parsed = parseMac(n.mac);
      // The host's own MACs with an error (reported there) are no list to look this one up in.
      const macsKnown = !c.isRefused(doc.file, [...at, "mac"]) && !c.isRefused(doc.file, [...at, "macs"]);
      if (!parsed.ok) c.error(doc, [...at, "talos", "network", "mac"], `${label}.talos.network.mac`, parsed.message, parsed.hint);
      else if (!macs.includes(parsed.value) && macsKnown) c.error(doc, [...at, "talos", "network", "mac"], `${label}.talos.network.mac`, `${macColons(parsed.value)} is not one of this host's MACs`, "give one of the MACs listed in `mac`/`macs`");
      else mac = parsed.value;
    }
    const ip = n.address.split("/")[0]!;
    if (input.ip !== undefined && input.ip !== ip) c.error(doc, [...at, "talos", "network", "address"], `${label}.talos.network.address`, `the address ${n.address} is not the host's ip ${input.ip}`, "make them the same address (ip without the prefix length)");
    if (mac !== undefined) network = { address: n.address, gateway: n.gateway, nameservers: n.nameservers ?? [], mac };
  }
  const patches = patchFiles(doc, [...at, "talos"], `${label}.talos`, t?.patches, probe, c);
  if (!ready || role === undefined) return undefined;
  const configUrl = parseKernelParam(`talos.config=${site.talosConfigBaseUrl}/by-host/${name}/talos.yaml`);
  if (!configUrl.ok) return undefined;
  return {
    role,
    installDisk: t?.installDisk ?? cls.machine.installDisk,
    // Each volume's settings merge field by field: a host's maxSize keeps the class's grow and minSize.
    volumes: Object.fromEntries([...new Set([...Object.keys(cls.machine.volumes), ...Object.keys(t?.volumes ?? {})])].sort().map((v) => [v, { ...cls.machine.volumes[v], ...(t?.volumes as Record<string, TalosVolumeInput> | undefined)?.[v] }])),
    patches: [...cls.machine.patches, ...patches],
    configUrl: configUrl.value,
    network,
  };
}
