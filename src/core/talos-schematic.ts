// Image Factory schematics, computed offline. The factory (siderolabs/image-factory,
// pkg/schematic) decodes a schematic into Go structs and names it by the sha256 of
// `yaml.Marshal(schematic)`; netbuild builds the same value in the same field order and encodes it
// byte for byte as yaml.v3 does (go-yaml.ts), so the ID here is the ID the factory assigns.
import { createHash } from "node:crypto";
import { fromPlain, goMap, GoYamlError, marshalGoYaml, type GoMap, type GoValue } from "./go-yaml.ts";
import type { SchematicInput } from "./schema.ts";

/** The empty schematic's ID (no extensions, no arguments): published by the factory. */
export const EMPTY_SCHEMATIC_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

export interface CanonicalSchematic {
  id: string;
  /** The exact bytes the ID is the hash of; also what `POST /schematics` accepts. */
  yaml: string;
}

function nonEmpty(entries: [string, GoValue | undefined][]): [string, GoValue][] {
  return entries.filter((e): e is [string, GoValue] => {
    const v = e[1];
    if (v === undefined) return false;
    if (Array.isArray(v)) return v.length > 0;
    if (typeof v === "object" && v !== null) return v.entries.length > 0;
    return v !== false && v !== "" && v !== 0;
  });
}

/**
 * The Go value of a schematic: the factory's fields in its struct order (overlay, customization;
 * extraKernelArgs, meta, systemExtensions, bootloader, secureboot, diskImage), with `omitempty`
 * applied where its struct tags have it: `overlay` and every customization field are omitted when
 * empty; `customization` itself is always written (`customization: {}` for none). Two factory
 * fields are not accepted by the schema: `owner` (Enterprise only) and
 * `embeddedMachineConfiguration` (netbuild serves machine configs per host instead).
 */
function goValueOf(s: SchematicInput): GoMap {
  const c = s.customization ?? {};
  const customization = goMap(
    nonEmpty([
      ["extraKernelArgs", c.extraKernelArgs ?? []],
      ["meta", (c.meta ?? []).map((m) => goMap([["key", m.key], ["value", m.value]]))],
      ["systemExtensions", goMap(nonEmpty([["officialExtensions", c.systemExtensions?.officialExtensions ?? []]]))],
      // An enum with a text form; its zero value ("none") is omitted.
      ["bootloader", c.bootloader === "none" ? undefined : c.bootloader],
      [
        "secureboot",
        goMap(
          nonEmpty([
            ["enrollKeys", c.secureboot?.enrollKeys],
            ["includeWellKnownCertificates", c.secureboot?.includeWellKnownCertificates ?? false],
          ]),
        ),
      ],
      ["diskImage", goMap(nonEmpty([["sectorSize", c.diskImage?.sectorSize]]))],
    ]),
  );
  const entries: [string, GoValue][] = [];
  const o = s.overlay;
  if (o && (o.image !== "" || o.name !== "" || Object.keys(o.options ?? {}).length > 0)) {
    // Overlay's image and name have no omitempty: written even when empty.
    const overlay: [string, GoValue][] = [["image", o.image], ["name", o.name]];
    if (o.options && Object.keys(o.options).length > 0) overlay.push(["options", fromPlain(o.options, "overlay.options")]);
    entries.push(["overlay", goMap(overlay)]);
  }
  entries.push(["customization", customization]);
  return goMap(entries);
}

/** The canonical YAML and the ID, or why netbuild cannot be sure of them. */
export function canonicalSchematic(s: SchematicInput): { ok: true; value: CanonicalSchematic } | { ok: false; message: string } {
  try {
    const yaml = marshalGoYaml(goValueOf(s));
    return { ok: true, value: { yaml, id: createHash("sha256").update(yaml, "utf8").digest("hex") } };
  } catch (e) {
    if (e instanceof GoYamlError) return { ok: false, message: e.message };
    throw e;
  }
}
