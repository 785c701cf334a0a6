// `netbuild provision HOST [--id ID] [--disarm]`: arm (or disarm) one host's one-shot disk wipe by
// editing its own file under hosts/. Arming writes `disks: true` and a new id into the host's
// `provision` settings (a new `provision: { disks: true, id: … }` when it has none); disarming
// sets `disks: false` and keeps the id (the last round's). Like `pin`, the edit is made on the
// text: values that exist are replaced where they stand, and keys are added beside their
// neighbours in the file's own indentation and line endings, so comments, key order, styles and
// every other host in the file stay byte for byte. If the edited file would mean anything else than before plus this
// change, nothing is written.
import { lstatSync, realpathSync } from "node:fs";
import path from "node:path";
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import { UserError } from "../errors.ts";
import { quoted } from "../core/excerpt.ts";
import { closestName } from "../core/names.ts";
import { foldersOf } from "../core/paths.ts";
import { PROVISION_ID } from "../core/schema.ts";
import { MAX_ALIASES, parseYaml } from "../core/yaml-doc.ts";
import { loadInventory, type Host, type Inventory } from "../core/inventory.ts";
import { readInsideRoot, readInventorySource } from "../adapters/inventory-files.ts";
import { writeFileAtomic } from "../adapters/files.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";

export interface ProvisionOptions extends RootOptions {
  host: string;
  /** The new id (default: today's UTC date, or its next `.N`). */
  id?: string | undefined;
  /** Remove the wipe instead of arming it. */
  disarm?: boolean | undefined;
  /** Arm it with `force: true`: it also formats disks whose last provision cannot be read (another install's). */
  force?: boolean | undefined;
}

export interface ProvisionResult {
  host: string;
  /** The host's file, relative to the root. */
  file: string;
  /** Whether the host's wipe is armed now. */
  armed: boolean;
  /** The id it is armed with. */
  id?: string;
  /** Whether it is armed with `force: true`. */
  force?: boolean;
  /** The id the file held before (armed or not). */
  previousId?: string;
  /** Whether the file was written (false: disarming a host that was not armed). */
  changed: boolean;
}

/** What the result says, for people. */
export function provisionSummary(r: ProvisionResult): string {
  const where = `host ${r.host} (${r.file})`;
  if (r.armed) {
    return [
      `!!! ${where}: wipe ARMED with id ${r.id}${r.force ? ", FORCED (disks it cannot mount, another install's, are formatted too)" : ""}: its disks are formatted on its next boot after a deploy${r.previousId !== undefined ? ` (the id was ${r.previousId})` : ""}`,
      "next: `netbuild build`, then `netbuild deploy` (it asks you to confirm new wipes)",
      "",
    ].join("\n");
  }
  if (!r.changed) return `${where}: no wipe is armed; nothing changed\n`;
  return [
    `${where}: wipe disarmed (\`disks: false\`${r.previousId !== undefined ? `; the last id, ${r.previousId}, stays in the file, so that the next \`netbuild provision\` picks another` : ""})`,
    "next: `netbuild build`, then `netbuild deploy`, so that the boot servers stop serving the wipe",
    "",
  ].join("\n");
}

/** Today's date in UTC, YYYY-MM-DD: the default id. */
export function todayUtc(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/** The default id: today's date, or the next `<today>.N` when the current id is today's already (the id always changes). */
export function nextId(current: string | undefined, today: string): string {
  if (current === today) return `${today}.2`;
  const m = current !== undefined && current.startsWith(`${today}.`) ? /^\.(\d{1,9})$/.exec(current.slice(today.length)) : null;
  if (m) return `${today}.${Number(m[1]) + 1}`;
  return today;
}

// ---------------------------------------------------------------------------------------------
// The edit of the text.

interface Splice {
  start: number;
  end: number;
  text: string;
}

export interface Source {
  text: string;
  lines: LineCounter;
  eol: string;
}

/** The edit could not be made on the text alone: nothing is written. */
export class CannotEdit extends Error {}

type Range = [number, number, number];

function rangeOf(node: unknown): Range {
  const r = (node as Node | null | undefined)?.range;
  if (!r) throw new CannotEdit("a value without a position");
  return r as Range;
}

export function pairOf(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p) => isScalar(p.key) && String(p.key.value) === key) as Pair | undefined;
}

/** The id as a YAML value that reads back as exactly this id: plain when it does (`2026-11-30`, `3`), else double-quoted (`"007"`, `"true"`). */
export function renderId(id: string): { text: string; value: string | number } {
  const plain = parseDocument(`id: ${id}\n`).get("id");
  if (plain === id) return { text: id, value: id };
  if (typeof plain === "number" && Number.isSafeInteger(plain) && plain >= 0 && String(plain) === id) return { text: id, value: plain };
  // PROVISION_ID has nothing a double-quoted scalar escapes.
  return { text: `"${id}"`, value: id };
}

/** Just after the line break ending the line of a node's last character (or the end of the text). */
function endOfLineAfter(text: string, end: number): number {
  let e = end;
  // A block collection's range can end after its last line break: step back to its last character.
  while (e > 0 && /\s/.test(text[e - 1]!)) e--;
  const nl = text.indexOf("\n", e);
  return nl === -1 ? text.length : nl + 1;
}

/** New entries at the end of a mapping: in a flow mapping after its last entry, in a block mapping as lines at its entries' indentation. */
export function addPairs(src: Source, map: YAMLMap, entries: [string, string][]): Splice[] {
  const written = entries.map(([k, v]) => `${k}: ${v}`);
  const [start, valueEnd] = rangeOf(map);
  if (map.flow) {
    if (map.items.length === 0) return [{ start, end: valueEnd, text: `{ ${written.join(", ")} }` }];
    const last = map.items.at(-1)!;
    const at = rangeOf(last.value ?? last.key)[1];
    return [{ start: at, end: at, text: written.map((w) => `, ${w}`).join("") }];
  }
  if (map.items.length === 0) throw new CannotEdit("an empty block mapping");
  const column = src.lines.linePos(rangeOf(map.items[0]!.key)[0]).col - 1;
  const last = map.items.at(-1)!;
  const at = endOfLineAfter(src.text, rangeOf(last.value ?? last.key)[1]);
  const before = src.text.slice(0, at);
  const pad = " ".repeat(column);
  return [{ start: at, end: at, text: `${before === "" || before.endsWith("\n") ? "" : src.eol}${written.map((w) => `${pad}${w}${src.eol}`).join("")}` }];
}

function replaceValue(node: unknown, text: string): Splice {
  if (!isScalar(node)) throw new CannotEdit("a value that is not a scalar");
  const [start, end] = rangeOf(node);
  return { start, end, text };
}

/** The splices that arm a host's wipe with `id` (and `force: true`, or an existing `force` set to false). */
function armSplices(src: Source, host: YAMLMap, id: string, force = false): Splice[] {
  const rendered = renderId(id).text;
  const provision = pairOf(host, "provision");
  // A new key: the flow form, one line.
  if (!provision) return addPairs(src, host, [["provision", `{ disks: true, id: ${rendered}${force ? ", force: true" : ""} }`]]);
  const map = provision.value;
  if (!isMap(map)) throw new CannotEdit("provision is not a mapping");
  const splices: Splice[] = [];
  const missing: [string, string][] = [];
  const disks = pairOf(map, "disks");
  if (!disks) missing.push(["disks", "true"]);
  else if (!(isScalar(disks.value) && disks.value.value === true)) splices.push(replaceValue(disks.value, "true"));
  const current = pairOf(map, "id");
  if (current) splices.push(replaceValue(current.value, rendered));
  else missing.push(["id", rendered]);
  const forced = pairOf(map, "force");
  if (forced) splices.push(replaceValue(forced.value, String(force)));
  else if (force) missing.push(["force", "true"]);
  if (missing.length > 0) splices.push(...addPairs(src, map, missing));
  return splices;
}

/**
 * The splices that disarm it: `disks: false`, the id kept. The id is the last round's, which the
 * disks may record: kept in the file, it makes the next `netbuild provision` pick another one (a
 * re-arm the same day with the same id would format nothing).
 */
function disarmSplices(host: YAMLMap): Splice[] {
  const map = pairOf(host, "provision")!.value;
  if (!isMap(map)) throw new CannotEdit("provision is not a mapping");
  // A `force: true` left behind would come back with the next `disks: true` written by hand.
  const forced = pairOf(map, "force");
  return [replaceValue(pairOf(map, "disks")!.value, "false"), ...(forced ? [replaceValue(forced.value, "false")] : [])];
}

export function applySplices(text: string, splices: Splice[]): string {
  const sorted = [...splices].sort((a, b) => b.start - a.start);
  let out = text;
  let limit = Infinity;
  for (const s of sorted) {
    if (s.end > limit) throw new CannotEdit("overlapping edits");
    out = out.slice(0, s.start) + s.text + out.slice(s.end);
    limit = s.start;
  }
  return out;
}

/** A hosts file parsed with positions (the loader's limits), or undefined when it is not valid YAML. */
export function parsedFile(text: string): { doc: Document.Parsed; lines: LineCounter } | undefined {
  const lines = new LineCounter();
  const parsed = parseYaml(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true }, false);
  if (!("docs" in parsed) || parsed.docs[0].errors.length > 0) return undefined;
  return { doc: parsed.docs[0], lines };
}

export function dataOf(doc: Document.Parsed): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch {
    return undefined;
  }
}

/** The hosts of a file, as the loader finds them: the data path and mapping node of each (`hosts:` → its entries; else the file's own host). */
function hostNodes(doc: Document.Parsed, file: string): { name: string; at: string[]; node: unknown }[] {
  const top = doc.contents;
  if (!isMap(top)) return [];
  const many = pairOf(top, "hosts");
  if (many) {
    if (!isMap(many.value)) return [];
    return many.value.items.flatMap((p) => (isScalar(p.key) ? [{ name: String(p.key.value), at: ["hosts", String(p.key.value)], node: p.value }] : []));
  }
  return [{ name: path.posix.basename(file).replace(/\.ya?ml$/, ""), at: [], node: top }];
}

export function sameData(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/** The file's text with the host's wipe armed with `id` (or disarmed), checked to mean exactly the original plus that change. */
export function editHostFile(text: string, file: string, hostName: string, change: { arm: string; force?: boolean } | { disarm: true }): string {
  const parsed = parsedFile(text);
  if (!parsed) throw new CannotEdit("not valid YAML");
  const { doc, lines } = parsed;
  const host = hostNodes(doc, file).find((h) => h.name === hostName);
  if (!host || !isMap(host.node)) throw new CannotEdit("the host is not a mapping in this file");
  const src: Source = { text, lines, eol: text.includes("\r\n") ? "\r\n" : "\n" };
  const out = applySplices(text, "arm" in change ? armSplices(src, host.node, change.arm, change.force) : disarmSplices(host.node));
  // The result must mean exactly the original with this host's provision changed; otherwise nothing is written.
  const wanted = structuredClone(dataOf(doc)) as Record<string, unknown>;
  let settings = wanted;
  for (const k of host.at) settings = settings?.[k] as Record<string, unknown>;
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) throw new CannotEdit("the host's settings are not a mapping");
  const before = (settings["provision"] ?? undefined) as Record<string, unknown> | undefined;
  const force = (on: boolean) => (on || (before && "force" in before) ? { force: on } : {});
  settings["provision"] = "arm" in change ? { ...before, disks: true, id: renderId(change.arm).value, ...force(Boolean(change.force)) } : { ...before, disks: false, ...force(false) };
  const check = parsedFile(out);
  if (!check || !sameData(dataOf(check.doc), wanted)) throw new CannotEdit("the edit would change something else");
  return out;
}

// ---------------------------------------------------------------------------------------------
// The inventory, and the host's file.

/** A placeholder id for hosts armed without one, so that the rest of the inventory can be checked (see loadLenient). */
const PLACEHOLDER_ID = "netbuild-provision-placeholder";

/**
 * The inventory as if every host armed without an id had one: a host armed without an id is an
 * inventory error, and `netbuild provision` is its fix, so it must work on exactly that case. Each
 * such host's file is given a placeholder id in memory (the same edit as arming), and the inventory
 * loaded from that. `ok` only when that load has no error: any other error stands.
 */
async function loadLenient(root: string): Promise<{ ok: true; inventory: Inventory; unarmed: Set<string> } | { ok: false }> {
  const source = await readInventorySource(root);
  const unarmed = new Set<string>();
  for (const file of source.hosts) {
    if (file.problem) continue;
    const parsed = parsedFile(file.text);
    if (!parsed) continue;
    const src: Source = { text: file.text, lines: parsed.lines, eol: file.text.includes("\r\n") ? "\r\n" : "\n" };
    const splices: Splice[] = [];
    for (const h of hostNodes(parsed.doc, file.path)) {
      if (!isMap(h.node)) continue;
      const provision = pairOf(h.node, "provision")?.value;
      if (!isMap(provision) || pairOf(provision, "id")) continue;
      const disks = pairOf(provision, "disks")?.value;
      if (!isScalar(disks) || disks.value !== true) continue;
      try {
        splices.push(...armSplices(src, h.node, PLACEHOLDER_ID));
        unarmed.add(h.name);
      } catch (e) {
        if (!(e instanceof CannotEdit)) throw e;
      }
    }
    if (splices.length === 0) continue;
    try {
      file.text = applySplices(file.text, splices);
    } catch (e) {
      if (!(e instanceof CannotEdit)) throw e;
    }
  }
  if (unarmed.size === 0) return { ok: false };
  const result = loadInventory(source);
  return result.ok ? { ok: true, inventory: result.inventory, unarmed } : { ok: false };
}

/** The inventory (loaded as every command loads it, or leniently: see loadLenient), and the hosts armed without an id. */
async function loadForProvision(root: string, ctx: Context): Promise<{ inv: Inventory; unarmed: Set<string> }> {
  try {
    return { inv: await loadRoot(root, ctx), unarmed: new Set() };
  } catch (e) {
    if (!(e instanceof UserError) || e.code !== "INVENTORY_INVALID") throw e;
    const lenient = await loadLenient(root);
    if (!lenient.ok) throw e;
    for (const w of lenient.inventory.warnings) ctx.reporter.warn(w);
    return { inv: lenient.inventory, unarmed: lenient.unarmed };
  }
}

export function unknownHost(name: string, hosts: readonly Host[]): UserError {
  const names = hosts.map((h) => h.name as string);
  const guess = closestName(name, names);
  const hint = guess
    ? `did you mean ${quoted(guess)}? (hosts are defined by the files under hosts/)`
    : names.length === 0
      ? "the inventory has no hosts: a host is a file hosts/<name>.yaml, or an entry under `hosts:` in a file under hosts/"
      : `hosts: ${names.slice(0, 10).join(", ")}${names.length > 10 ? `, and ${names.length - 10} more` : ""}`;
  return new UserError("USAGE", `unknown host ${quoted(name)}`, { hint });
}

/**
 * The host's own file, as netbuild may write it: a regular file under the root's hosts/ folder,
 * reached through real folders only (never a symlink, the file included; the root itself may be one).
 */
export function checkOwnFile(root: string, rel: string): void {
  const refuse = (at: string, what: string) =>
    new UserError("USAGE", `${quoted(rel)} cannot be written: ${at === rel ? "it" : quoted(at)} ${what}; netbuild provision writes only a host's own regular file under hosts/, never through a link; nothing was written`, {
      hint: "set `provision: { disks: true, id: NEW }` in the file yourself, or replace the link with the file and run again",
    });
  if (!rel.startsWith("hosts/") || rel.split("/").some((p) => p === "" || p === "." || p === "..")) throw refuse(rel, "is not under hosts/");
  for (const at of [...foldersOf(rel), rel]) {
    const st = lstatSync(path.join(root, at), { throwIfNoEntry: false });
    const last = at === rel;
    if (!st) throw refuse(at, "does not exist any more");
    if (st.isSymbolicLink()) throw refuse(at, "is a symlink");
    if (last ? !st.isFile() : !st.isDirectory()) throw refuse(at, `is not a ${last ? "regular file" : "folder"}`);
  }
}

export function readOwnFile(root: string, rel: string): string {
  const r = readInsideRoot(root, realpathSync(root), rel);
  if ("problem" in r) throw new UserError("USAGE", `${quoted(rel)} cannot be read any more; nothing was written`, { hint: "check the file, then run again" });
  return r.text;
}

/** The host's wipe as its file holds it now: armed or not, and its id (armed or not), as the loader reads them. */
function currentState(text: string, file: string, hostName: string): { armed: boolean; id: string | undefined } {
  const parsed = parsedFile(text);
  if (!parsed) throw new UserError("INVENTORY_INVALID", `${quoted(file)} is not valid YAML (any more); nothing was written`, { hint: "fix the file (`netbuild plan` shows where), then run again" });
  const host = hostNodes(parsed.doc, file).find((h) => h.name === hostName);
  const provision = isMap(host?.node) ? pairOf(host.node, "provision")?.value : undefined;
  const disks = isMap(provision) ? pairOf(provision, "disks")?.value : undefined;
  const id = isMap(provision) ? pairOf(provision, "id")?.value : undefined;
  return {
    armed: isScalar(disks) && disks.value === true,
    id: isScalar(id) && (typeof id.value === "string" || typeof id.value === "number") ? String(id.value) : undefined,
  };
}

export async function provision(options: ProvisionOptions, ctx: Context): Promise<ProvisionResult> {
  if (options.disarm && options.force) throw new UserError("USAGE", "--force and --disarm do not go together", { hint: "`netbuild provision HOST --force` arms a forced wipe; `netbuild provision HOST --disarm` disarms it" });
  if (options.disarm && options.id !== undefined) throw new UserError("USAGE", "--id and --disarm do not go together", { hint: "`netbuild provision HOST --id ID` arms a wipe with that id; `netbuild provision HOST --disarm` removes it" });
  if (options.id !== undefined && !PROVISION_ID.test(options.id)) {
    throw new UserError("USAGE", `--id ${quoted(options.id)} is not a provisioning id`, { hint: "letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit: like 2026-11-30, r2 or 3" });
  }
  const root = rootOf(options, ctx);
  const { inv } = await loadForProvision(root, ctx);
  const host = inv.hosts.find((h) => h.name === options.host);
  if (!host) throw unknownHost(options.host, inv.hosts);
  const rel = host.file;
  checkOwnFile(root, rel);
  const file = path.join(root, rel);
  const text = readOwnFile(root, rel);
  const { armed: armedNow, id: previousId } = currentState(text, rel, host.name);

  let change: { arm: string; force: boolean } | { disarm: true };
  if (options.disarm) {
    if (!armedNow) return { host: host.name, file: rel, armed: false, ...(previousId !== undefined ? { previousId } : {}), changed: false };
    change = { disarm: true };
  } else {
    const id = options.id ?? nextId(previousId, todayUtc());
    if (id === previousId) {
      throw new UserError("USAGE", `host ${host.name} has the id ${id} already: the same id would not format its disks again (a host formats once per id)`, {
        hint: "give another id, or leave out --id for a new one (today's date)",
      });
    }
    change = { arm: id, force: Boolean(options.force) };
  }

  let edited: string;
  try {
    edited = editHostFile(text, rel, host.name, change);
  } catch (e) {
    if (!(e instanceof CannotEdit)) throw e;
    const by = "arm" in change ? `set \`provision: { disks: true, id: ${change.arm} }\` in host ${host.name}'s settings` : `set \`disks: false\` in host ${host.name}'s \`provision\``;
    throw new UserError("INVENTORY_INVALID", `the provision settings of host ${host.name} in ${quoted(rel)} could not be changed without changing something else in the file; nothing was written`, { hint: `${by} yourself` });
  }
  // Written only over the text this run read (a concurrent edit is not lost), through a temporary name in the same folder.
  checkOwnFile(root, rel);
  if (readOwnFile(root, rel) !== text) throw new UserError("USAGE", `${quoted(rel)} changed while netbuild was editing it; nothing was written`, { hint: "run again" });
  await writeFileAtomic(file, edited, lstatSync(file).mode & 0o7777);

  // Read back, as the next command will: the host must now be as asked, and the inventory valid
  // (but for other hosts armed without an id, each fixed by its own `netbuild provision`).
  const quiet: Context = { ...ctx, reporter: { ...ctx.reporter, warn: () => undefined } };
  let after: { inv: Inventory; unarmed: Set<string> };
  try {
    after = await loadForProvision(root, quiet);
  } catch (e) {
    if (!(e instanceof UserError) || e.code !== "INVENTORY_INVALID") throw e;
    throw new UserError("INVENTORY_INVALID", `${rel} was written, but the inventory now has errors`, { issues: e.issues, hint: "fix them (another edit made meanwhile?), then run `netbuild plan`" });
  }
  const now = after.inv.hosts.find((h) => h.name === host.name);
  const id = "arm" in change ? change.arm : undefined;
  const force = "arm" in change && change.force;
  if (!now || after.unarmed.has(host.name) || now.provisionDisks !== (id !== undefined) || now.provisionId !== id || now.provisionForce !== force) {
    throw new UserError("INVENTORY_INVALID", `${rel} was written, but host ${host.name} does not read back as ${id !== undefined ? `armed with id ${id}` : "disarmed"}`, { hint: "check the file (another edit made meanwhile?), then run `netbuild plan`" });
  }
  const others = [...after.unarmed].sort();
  if (others.length > 0) {
    ctx.reporter.warn(`${others.length === 1 ? "host" : "hosts"} ${others.join(", ")} ${others.length === 1 ? "is" : "are"} still armed without an id (an inventory error): run \`netbuild provision HOST\` for ${others.length === 1 ? "it" : "each"}`);
  }
  return { host: host.name, file: rel, armed: id !== undefined, ...(id !== undefined ? { id, force } : {}), ...(previousId !== undefined ? { previousId } : {}), changed: true };
}
