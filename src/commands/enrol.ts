// netbuild enrol MAC --name NAME --class CLASS: the step after `netbuild discovered`, with the
// inventory in git instead of a database (the Talos setup's pending/approve flow). Writes a new file
// hosts/NAME.yaml, or adds the host under `hosts:` in --file (keeping every other byte of it, as
// `provision` does). Every inventory check runs on the result before anything is written.
import { lstatSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isMap } from "yaml";
import { UserError } from "../errors.ts";
import { quoted } from "../core/excerpt.ts";
import { loadInventory } from "../core/inventory.ts";
import { closestName, macColons, parseHostName, parseMac } from "../core/names.ts";
import { readInventorySource } from "../adapters/inventory-files.ts";
import { writeFileAtomic } from "../adapters/files.ts";
import { localConfinedRoot } from "../adapters/target-fs.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";
import { addPairs, applySplices, CannotEdit, checkOwnFile, dataOf, pairOf, parsedFile, readOwnFile, sameData, todayUtc, type Source } from "./provision.ts";

export interface EnrolOptions extends RootOptions {
  mac: string;
  name: string;
  className: string;
  provisionDisks: boolean;
  /** A file of many hosts under hosts/ (default: a new hosts/NAME.yaml). */
  file?: string | undefined;
}

export interface EnrolResult {
  host: string;
  mac: string;
  className: string;
  file: string;
  /** Whether the file was made (false: the host was added to it). */
  created: boolean;
  wipe: boolean;
  provisionId?: string;
}

export function enrolSummary(r: EnrolResult): string {
  return [
    `enrolled ${r.host} (${r.mac}) as class ${r.className}: ${r.created ? "new file" : "added to"} ${r.file}${r.wipe ? `, its disk wipe ARMED (id ${r.provisionId})` : ""}`,
    `next: \`netbuild build --class ${r.className}\`, then \`netbuild deploy\`; it boots as ${r.host} from its next boot on`,
    "",
  ].join("\n");
}

/** A file under hosts/ that netbuild may write and the loader reads: relative, no part starting with a dot, .yaml or .yml. */
function hostsFile(file: string): string {
  const rel = file.replace(/\\/g, "/");
  // No part starting with a dot: the loader never reads hidden files or folders.
  if (!/^hosts\/([A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*\.ya?ml$/.test(rel)) {
    throw new UserError("USAGE", `--file ${quoted(file)}: expected a .yaml file under hosts/, relative to the root`, { hint: "e.g. --file hosts/rack1.yaml" });
  }
  return rel;
}

export async function enrol(options: EnrolOptions, ctx: Context): Promise<EnrolResult> {
  const mac = parseMac(options.mac);
  if (!mac.ok) throw new UserError("USAGE", `${options.mac === "" ? "the MAC" : "MAC"} ${mac.message}`, mac.hint !== undefined ? { hint: mac.hint } : {});
  const name = parseHostName(options.name);
  if (!name.ok) throw new UserError("USAGE", `--name ${name.message}`, name.hint !== undefined ? { hint: name.hint } : {});
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const classes = inv.classes.map((c) => c.name as string);
  if (!classes.includes(options.className)) {
    const guess = closestName(options.className, classes);
    throw new UserError("USAGE", `unknown class ${quoted(options.className)}`, { hint: guess ? `did you mean ${quoted(guess)}?` : `classes: ${classes.join(", ") || "none (add classes/<name>.yaml)"}` });
  }
  const taken = inv.hosts.find((h) => h.name === name.value);
  if (taken) throw new UserError("USAGE", `host ${name.value} exists already (${taken.file})`, { hint: "give the new machine another --name" });
  const owner = inv.hosts.find((h) => h.macs.includes(mac.value));
  if (owner) throw new UserError("USAGE", `MAC ${macColons(mac.value)} is host ${owner.name}'s already (${owner.file})`, { hint: "a MAC boots one host: change that host, or enrol another MAC" });

  const macText = macColons(mac.value);
  const provisionId = options.provisionDisks ? todayUtc() : undefined;
  const provision = provisionId !== undefined ? `provision: { disks: true, id: ${provisionId} }` : undefined;
  const rel = options.file === undefined ? `hosts/${name.value}.yaml` : hostsFile(options.file);
  const abs = path.join(root, rel);
  const existing = lstatSync(abs, { throwIfNoEntry: false });
  let text: string;
  let before: string | undefined;
  if (existing === undefined) {
    text = options.file === undefined
      ? `# ${name.value}: enrolled with \`netbuild enrol\`.\nclass: ${options.className}\nmac: ${macText}\n${provision !== undefined ? `${provision}\n` : ""}`
      : `hosts:\n  ${name.value}: { class: ${options.className}, mac: ${macText}${provision !== undefined ? `, ${provision}` : ""} }\n`;
  } else {
    if (options.file === undefined) throw new UserError("USAGE", `${rel} exists already`, { hint: "give the machine another --name, or add it to a file of many hosts with --file" });
    checkOwnFile(root, rel);
    before = readOwnFile(root, rel);
    text = addedHost(before, rel, name.value, `{ class: ${options.className}, mac: ${macText}${provision !== undefined ? `, ${provision}` : ""} }`);
  }

  // Every check of the inventory, on the inventory with this file as it would be written.
  const source = await readInventorySource(root);
  const others = source.hosts.filter((f) => f.path !== rel);
  const result = loadInventory({ ...source, hosts: [...others, { path: rel, text }] });
  if (!result.ok) throw new UserError("INVENTORY_INVALID", `${rel} with ${name.value} would make the inventory invalid; nothing was written`, { issues: result.issues });
  const host = result.inventory.hosts.find((h) => h.name === name.value);
  if (!host || host.className !== options.className || !host.macs.includes(mac.value)) throw new UserError("INVENTORY_INVALID", `${rel} would not hold host ${name.value} as asked; nothing was written`);

  if (before === undefined) {
    // New: every folder on the way a real one (made when missing: the confinement rule), the file created, never replaced.
    await localConfinedRoot(root, "ROOT_CONFLICT").prepare(rel);
    try {
      writeFileSync(abs, text, { flag: "wx", mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new UserError("USAGE", `${rel} appeared while netbuild was writing it; nothing was written`, { hint: "run again" });
      throw e;
    }
  } else {
    checkOwnFile(root, rel);
    if (readOwnFile(root, rel) !== before) throw new UserError("USAGE", `${quoted(rel)} changed while netbuild was editing it; nothing was written`, { hint: "run again" });
    await writeFileAtomic(abs, text, lstatSync(abs).mode & 0o7777);
  }
  return { host: name.value, mac: macText, className: options.className, file: rel, created: before === undefined, wipe: provisionId !== undefined, ...(provisionId !== undefined ? { provisionId } : {}) };
}

/** The file's text with `name: value` added at the end of its `hosts:` mapping, checked to mean the original plus that host. */
function addedHost(text: string, rel: string, name: string, value: string): string {
  const parsed = parsedFile(text);
  const top = parsed?.doc.contents;
  const hosts = isMap(top) ? pairOf(top, "hosts")?.value : undefined;
  if (!parsed || !isMap(hosts)) throw new UserError("USAGE", `${rel} is not a file of many hosts (a \`hosts:\` mapping)`, { hint: "give a file that has `hosts:`, or leave out --file for a file of its own" });
  try {
    const src: Source = { text, lines: parsed.lines, eol: text.includes("\r\n") ? "\r\n" : "\n" };
    const out = applySplices(text, addPairs(src, hosts, [[name, value]]));
    const wanted = structuredClone(dataOf(parsed.doc)) as { hosts: Record<string, unknown> };
    const check = parsedFile(out);
    const got = check && (dataOf(check.doc) as { hosts?: Record<string, unknown> } | undefined);
    const added = got?.hosts?.[name];
    if (!check || !got || added === undefined) throw new CannotEdit("the host is not there");
    wanted.hosts[name] = added;
    if (!sameData(got, wanted)) throw new CannotEdit("the edit would change something else");
    return out;
  } catch (e) {
    if (!(e instanceof CannotEdit)) throw e;
    throw new UserError("USAGE", `${name} could not be added to ${rel} without changing something else in it; nothing was written`, { hint: `add \`${name}: ${value}\` under \`hosts:\` yourself, or leave out --file` });
  }
}
