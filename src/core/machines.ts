// What a deploy changes per machine, from what the target serves now and what it will serve: the
// view a person checks before a deploy (and that --json, the dry run and the real deploy share).
// Pure: the scripts are given as text, read from the target (before) and the planned trees (after).
import { scriptClass, scriptParams, scriptWipes } from "./tree.ts";

export interface MachineChange {
  host: string;
  change: "added" | "removed" | "changed";
  /** The class the host's script chains, before → after (absent before for an added host, after for a removed one). */
  class: { from: string | undefined; to: string | undefined };
  /** The generation of that class the target serves, before → after (a class not served: undefined). */
  generation: { from: string | undefined; to: string | undefined };
  /** Kernel parameters the host's script sets, beyond what stayed. */
  params: { added: string[]; removed: string[] };
  macs: { added: string[]; removed: string[] };
  /** The wipe flag: armed (served from now on), disarmed, or unchanged (undefined). */
  wipe: "armed" | "disarmed" | undefined;
  /** Whether the host's script will set the wipe flag after the deploy. */
  wipes: boolean;
  /** Its Talos machine config is rewritten. */
  config?: "changed";
}

export interface ServedHost {
  /** The host's script, as served (before) or planned (after). */
  script: string;
  /** MACs (aa-bb-cc-dd-ee-ff) whose by-mac entry leads to it. */
  macs: readonly string[];
}

/** MACs as people write them (aa:bb:…), sorted. */
const colons = (macs: string[]) => macs.map((m) => m.replace(/-/g, ":")).sort();

/** Per host, what changes: only hosts whose script or MACs differ are listed, sorted by name. */
export function machineChanges(before: ReadonlyMap<string, ServedHost>, after: ReadonlyMap<string, ServedHost>, flagPrefix: string, generations: { before: Readonly<Record<string, string>>; after: Readonly<Record<string, string>> } = { before: {}, after: {} }, configs: ReadonlySet<string> = new Set()): MachineChange[] {
  const flag = `${flagPrefix}.provision_disks=true`;
  const out: MachineChange[] = [];
  for (const host of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(host);
    const a = after.get(host);
    const was = b ? scriptParams(b.script).filter((p) => p !== flag) : [];
    const will = a ? scriptParams(a.script).filter((p) => p !== flag) : [];
    const macsBefore = new Set(b?.macs ?? []);
    const macsAfter = new Set(a?.macs ?? []);
    const wipedBefore = b !== undefined && scriptWipes(b.script, flagPrefix);
    const wipesAfter = a !== undefined && scriptWipes(a.script, flagPrefix);
    const classFrom = b && scriptClass(b.script);
    const classTo = a && scriptClass(a.script);
    const change: MachineChange = {
      host,
      change: !b ? "added" : !a ? "removed" : "changed",
      class: { from: classFrom, to: classTo },
      generation: { from: classFrom === undefined ? undefined : generations.before[classFrom], to: classTo === undefined ? undefined : generations.after[classTo] },
      params: { added: will.filter((p) => !was.includes(p)), removed: was.filter((p) => !will.includes(p)) },
      macs: { added: colons([...macsAfter].filter((m) => !macsBefore.has(m))), removed: colons([...macsBefore].filter((m) => !macsAfter.has(m))) },
      wipe: wipesAfter && !wipedBefore ? "armed" : wipedBefore && !wipesAfter ? "disarmed" : undefined,
      wipes: wipesAfter,
      ...(a && b && configs.has(host) ? { config: "changed" as const } : {}),
    };
    // A script rewritten with nothing a machine sees changed (a comment, the host file's name) is no machine change.
    const same = b && a && change.class.from === change.class.to && change.params.added.length + change.params.removed.length === 0 && change.macs.added.length + change.macs.removed.length === 0 && change.wipe === undefined && change.config === undefined && was.join(" ") === will.join(" ");
    if (!same) out.push(change);
  }
  return out;
}

const gen = (id: string | undefined) => (id === undefined ? "" : ` (${id})`);

/** One line per machine, for people: `~ aleph  class demo → other, +quiet, MAC +52-54-…, WIPE ARMED`. */
export function formatMachineChange(c: MachineChange): string {
  const parts: string[] = [];
  if (c.change === "added") parts.push(`new, class ${c.class.to ?? "?"}`);
  else if (c.change === "removed") parts.push(`removed (was class ${c.class.from ?? "?"})`);
  else if (c.class.from !== c.class.to) parts.push(`class ${c.class.from ?? "?"}${gen(c.generation.from)} → ${c.class.to ?? "?"}${gen(c.generation.to)}`);
  // A new host's hostname= is its name: not worth a word.
  if (c.change !== "removed") for (const p of c.params.added) if (!(c.change === "added" && p === `hostname=${c.host}`)) parts.push(`+${p}`);
  if (c.change === "changed") for (const p of c.params.removed) parts.push(`-${p}`);
  for (const m of c.macs.added) parts.push(`MAC +${m}`);
  for (const m of c.macs.removed) parts.push(`MAC -${m}`);
  if (c.wipe === "armed") parts.push("!!! WIPE ARMED (formats its disks on the next boot)");
  if (c.wipe === "disarmed") parts.push("wipe disarmed");
  if (c.config) parts.push("Talos machine config changed");
  const mark = c.change === "added" ? "+" : c.change === "removed" ? "-" : "~";
  return `${mark} ${c.host}  ${parts.join(", ") || "script rewritten"}`;
}
