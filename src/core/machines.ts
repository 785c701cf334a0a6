// What a deploy changes per machine, from what the target serves now and what it will serve: the
// view a person checks before a deploy (and that --json, the dry run and the real deploy share).
// Pure: the scripts are given as text, read from the target (before) and the planned trees (after).
import { isWipeParam, scriptClass, scriptParams, scriptWipe, scriptWipeForced } from "./tree.ts";

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
  /** The wipe flag: armed (served from now on), re-armed (served before, now with another id: the host formats again), disarmed, or unchanged (undefined). */
  wipe: "armed" | "re-armed" | "disarmed" | undefined;
  /** Whether the host's script will set the wipe flag after the deploy. */
  wipes: boolean;
  /** The provisioning id of the wipe served before and after ("" for a script served without one), where there is a wipe. */
  wipeId?: { from: string | undefined; to: string | undefined };
  /** Whether the wipe is forced (formats disks whose last provision cannot be read), before and after, where either is. */
  wipeForce?: { from: boolean; to: boolean };
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
  const out: MachineChange[] = [];
  for (const host of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(host);
    const a = after.get(host);
    const was = b ? scriptParams(b.script).filter((p) => !isWipeParam(p, flagPrefix)) : [];
    const will = a ? scriptParams(a.script).filter((p) => !isWipeParam(p, flagPrefix)) : [];
    const macsBefore = new Set(b?.macs ?? []);
    const macsAfter = new Set(a?.macs ?? []);
    const idBefore = b && scriptWipe(b.script, flagPrefix);
    const idAfter = a && scriptWipe(a.script, flagPrefix);
    const wipedBefore = idBefore !== undefined;
    const wipesAfter = idAfter !== undefined;
    const forcedBefore = b !== undefined && scriptWipeForced(b.script, flagPrefix);
    const forcedAfter = a !== undefined && scriptWipeForced(a.script, flagPrefix);
    const classFrom = b && scriptClass(b.script);
    const classTo = a && scriptClass(a.script);
    const change: MachineChange = {
      host,
      change: !b ? "added" : !a ? "removed" : "changed",
      class: { from: classFrom, to: classTo },
      generation: { from: classFrom === undefined ? undefined : generations.before[classFrom], to: classTo === undefined ? undefined : generations.after[classTo] },
      params: { added: will.filter((p) => !was.includes(p)), removed: was.filter((p) => !will.includes(p)) },
      macs: { added: colons([...macsAfter].filter((m) => !macsBefore.has(m))), removed: colons([...macsBefore].filter((m) => !macsAfter.has(m))) },
      wipe: wipesAfter && !wipedBefore ? "armed" : wipedBefore && !wipesAfter ? "disarmed" : wipesAfter && (idBefore !== idAfter || (forcedAfter && !forcedBefore)) ? "re-armed" : undefined,
      wipes: wipesAfter,
      ...(wipedBefore || wipesAfter ? { wipeId: { from: idBefore, to: idAfter } } : {}),
      ...(forcedBefore || forcedAfter ? { wipeForce: { from: forcedBefore, to: forcedAfter } } : {}),
      ...(a && b && configs.has(host) ? { config: "changed" as const } : {}),
    };
    // A script rewritten with nothing a machine sees changed (a comment, the host file's name) is no
    // machine change. Its parameters are compared whole, in order (the kernel reads the last of a key).
    const same = b && a && change.class.from === change.class.to && change.macs.added.length + change.macs.removed.length === 0 && change.wipe === undefined && forcedBefore === forcedAfter && change.config === undefined && was.join(" ") === will.join(" ");
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
  // A new host's hostname= is its name: not worth a word. (A removed host has no parameters after.)
  for (const p of c.params.added) if (!(c.change === "added" && p === `hostname=${c.host}`)) parts.push(`+${p}`);
  if (c.change === "changed") for (const p of c.params.removed) parts.push(`-${p}`);
  for (const m of c.macs.added) parts.push(`MAC +${m}`);
  for (const m of c.macs.removed) parts.push(`MAC -${m}`);
  const id = (v: string | undefined, forced = false) => `${v ? `id ${v}` : "no id"}${forced ? ", FORCED" : ""}`;
  if (c.wipe === "armed") parts.push(`!!! WIPE ARMED, ${id(c.wipeId?.to, c.wipeForce?.to)} (formats its disks on the next boot)`);
  if (c.wipe === "re-armed") parts.push(`!!! WIPE RE-ARMED, ${id(c.wipeId?.from, c.wipeForce?.from)} → ${id(c.wipeId?.to, c.wipeForce?.to)} (formats its disks again on the next boot)`);
  if (c.wipe === undefined && c.wipeForce && c.wipeForce.from && !c.wipeForce.to) parts.push("wipe no longer forced");
  if (c.wipe === "disarmed") parts.push("wipe disarmed");
  if (c.config) parts.push("Talos machine config changed");
  const mark = c.change === "added" ? "+" : c.change === "removed" ? "-" : "~";
  return `${mark} ${c.host}  ${parts.join(", ") || "script rewritten"}`;
}
