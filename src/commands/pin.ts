// `netbuild pin [--class NAME]...`: register each Talos class's schematic with the Image Factory
// (checking the ID it assigns), download its kernel, initramfs and command line once, and write
// their sha256 into the class file. Existing hash values are replaced in place; missing keys are
// added as lines beside their neighbours (see withHashes), so comments and layout stay.
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { isMap, isScalar, LineCounter, parseDocument, type YAMLMap } from "yaml";
import { UserError } from "../errors.ts";
import { talosArtifactUrl, TALOS_ARTIFACTS, type TalosArtifact, type TalosClass } from "../core/inventory.ts";
import { writeFileAtomic } from "../adapters/files.ts";
import { causeOf, fetchDigest } from "../adapters/http.ts";
import { formatBytes } from "../ui/reporter.ts";
import { loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";

export interface PinOptions extends RootOptions {
  /** Talos classes to pin; empty = all. */
  classes: string[];
}

export interface PinResult {
  classes: {
    name: string;
    file: string;
    artifacts: { what: TalosArtifact; url: string; size: number; hash: string; was: string | undefined }[];
    written: boolean;
  }[];
}

const NEEDS_FACTORY = "`netbuild pin` needs network access to the Image Factory (talos.factory in netbuild.yaml)";

/**
 * The factory serves images only for schematics it has been given (POST /schematics, which is
 * idempotent): netbuild registers the canonical schematic and checks the ID it answers with.
 */
async function register(factory: string, c: TalosClass): Promise<void> {
  const url = `${factory}/schematics`;
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", body: c.schematicYaml, headers: { "content-type": "application/yaml" } });
  } catch (e) {
    throw new UserError("PIN_FAILED", `class ${c.name}: cannot register its schematic at ${url}: ${causeOf(e)}`, { hint: NEEDS_FACTORY });
  }
  const text = await res.text();
  if (!res.ok) throw new UserError("PIN_FAILED", `class ${c.name}: the factory refused its schematic (HTTP ${res.status} from ${url}): ${text.trim().slice(0, 300)}`, { hint: "check the schematic's extension names and overlay against the factory; nothing was written" });
  let id: unknown;
  try {
    id = (JSON.parse(text) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  if (id !== c.schematicId) {
    throw new UserError("PIN_FAILED", `class ${c.name}: the factory gave the schematic the ID ${JSON.stringify(id)}, and netbuild computed ${c.schematicId}`, {
      hint: "netbuild computes IDs as the factory does; a difference means the factory changed its format or this is not an Image Factory. Nothing was written; please report it",
    });
  }
}

async function download(url: string, cls: string, what: TalosArtifact): Promise<{ size: number; hash: string }> {
  const got = await fetchDigest(url, { code: "PIN_FAILED", what: `class ${cls}: cannot download the ${what} from`, hint: NEEDS_FACTORY });
  if (got.status < 200 || got.status > 299) {
    throw new UserError("PIN_FAILED", `class ${cls}: the factory answered HTTP ${got.status} for the ${what} (${url})`, {
      hint: got.status === 404 ? "check talos.version, talos.arch, talos.platform and the schematic's extension names (the factory serves only what exists for that release)" : "try again later, or check talos.factory in netbuild.yaml",
    });
  }
  return { size: got.size, hash: `sha256-${Buffer.from(got.sha256, "hex").toString("base64")}` };
}

/** The class file's text with talos.hashes set; comments and layout kept. */
export function withHashes(text: string, hashes: Record<TalosArtifact, string>): string {
  const doc = parseDocument(text);
  // Values that exist are replaced where they stand, so nothing else in the file moves.
  const splices: { start: number; end: number; value: string }[] = [];
  const missing: TalosArtifact[] = [];
  for (const what of TALOS_ARTIFACTS) {
    const node = doc.getIn(["talos", "hashes", what], true);
    if (isScalar(node) && node.range) splices.push({ start: node.range[0], end: node.range[1], value: hashes[what] });
    else missing.push(what);
  }
  let out = text;
  for (const s of splices.sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.value + out.slice(s.end);
  if (missing.length > 0) out = insertHashes(out, missing, hashes);
  // The result must mean exactly the original plus these hashes; otherwise nothing is written.
  const check = parseDocument(out);
  const wanted = doc.toJS() as { talos?: Record<string, unknown> };
  if (wanted.talos && typeof wanted.talos === "object") wanted.talos["hashes"] = { ...(wanted.talos["hashes"] as object), ...hashes };
  if (check.errors.length > 0 || !sameData(check.toJS(), wanted)) {
    throw new UserError("PIN_FAILED", "netbuild could not add the hashes to this class file without changing something else in it; nothing was written", {
      hint: `set them by hand under talos.hashes: ${TALOS_ARTIFACTS.map((w) => `${w}: ${hashes[w]}`).join(", ")}`,
    });
  }
  return out;
}

function sameData(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

/**
 * Adds the missing keys as new lines after the last entry of `talos.hashes` (or adds `hashes:`
 * after the last entry of `talos`), indented like their neighbours. Flow-style mappings
 * (`talos: { ... }`) are rewritten through the document API instead, which keeps comments.
 */
function insertHashes(text: string, missing: TalosArtifact[], hashes: Record<TalosArtifact, string>): string {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const talos = doc.get("talos", true);
  const hashesNode = isMap(talos) ? talos.get("hashes", true) : undefined;
  if (hashesNode !== undefined && !isMap(hashesNode)) throw new UserError("INVENTORY_INVALID", "talos.hashes is not a mapping", { hint: "make it `hashes: { kernel: ..., initramfs: ..., cmdline: ... }`" });
  const block = (m: YAMLMap | undefined): m is YAMLMap => m !== undefined && !m.flow && m.items.length > 0;
  const column = (m: YAMLMap) => lines.linePos((m.items[0]!.key as { range: [number, number, number] }).range[0]).col - 1;
  const endOfLastItem = (m: YAMLMap) => {
    const last = m.items.at(-1)!;
    const node = (last.value ?? last.key) as { range?: [number, number, number] };
    // A block collection's range can end after its last line break: step back to its last
    // character. (A kept-newline block scalar there is caught by the check in withHashes.)
    let end = node.range![1];
    while (end > 0 && /\s/.test(text[end - 1]!)) end--;
    const nl = text.indexOf("\n", end);
    return nl === -1 ? text.length : nl + 1;
  };
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const insertAt = (at: number, added: string) => {
    const before = text.slice(0, at);
    return `${before}${before.endsWith("\n") || before === "" ? "" : eol}${added.replaceAll("\n", eol)}${text.slice(at)}`;
  };
  if (block(hashesNode as YAMLMap | undefined)) {
    const m = hashesNode as YAMLMap;
    const pad = " ".repeat(column(m));
    return insertAt(endOfLastItem(m), missing.map((w) => `${pad}${w}: ${hashes[w]}\n`).join(""));
  }
  if (hashesNode === undefined && isMap(talos) && block(talos)) {
    const indent = column(talos);
    const pad = " ".repeat(indent);
    const inner = " ".repeat(indent * 2 || 2);
    return insertAt(endOfLastItem(talos), `${pad}hashes:\n${missing.map((w) => `${inner}${w}: ${hashes[w]}\n`).join("")}`);
  }
  for (const what of missing) doc.setIn(["talos", "hashes", what], hashes[what]);
  return doc.toString({ lineWidth: 0 });
}

export async function pin(options: PinOptions, ctx: Context): Promise<PinResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const talos = inv.classes.filter((c): c is TalosClass => c.kind === "talos");
  const unknown = options.classes.filter((n) => !talos.some((c) => c.name === n));
  if (unknown.length > 0) {
    throw new UserError("USAGE", `not a Talos class: ${unknown.join(", ")}`, { hint: talos.length > 0 ? `Talos classes: ${talos.map((c) => c.name).join(", ")}` : "there are no Talos classes (kind: talos) in classes/" });
  }
  const selected = options.classes.length === 0 ? talos : talos.filter((c) => options.classes.includes(c.name));
  if (selected.length === 0) throw new UserError("USAGE", "there are no Talos classes to pin", { hint: "a Talos class is a file in classes/ with `kind: talos`" });

  const result: PinResult = { classes: [] };
  for (const c of selected) {
    const artifacts: PinResult["classes"][number]["artifacts"] = [];
    ctx.reporter.info(`pin: ${c.name}: registering schematic ${c.schematicId} with ${inv.site.talosFactory}`);
    await register(inv.site.talosFactory, c);
    for (const what of TALOS_ARTIFACTS) {
      const url = talosArtifactUrl(inv.site.talosFactory, c, what);
      ctx.reporter.info(`pin: ${c.name}: downloading the ${what} from ${url}`);
      const got = await download(url, c.name, what);
      artifacts.push({ what, url, size: got.size, hash: got.hash, was: c.hashes[what] });
      ctx.reporter.info(`pin: ${c.name}: ${what} ${formatBytes(got.size)} ${got.hash}${c.hashes[what] === undefined ? " (new)" : c.hashes[what] === got.hash ? " (unchanged)" : ` (was ${c.hashes[what]})`}`);
    }
    const changed = artifacts.some((a) => a.was !== a.hash);
    if (changed) {
      const file = path.join(root, c.file);
      const text = readFileSync(file, "utf8");
      const hashes = Object.fromEntries(artifacts.map((a) => [a.what, a.hash])) as Record<TalosArtifact, string>;
      await writeFileAtomic(file, withHashes(text, hashes), statSync(file).mode & 0o7777);
    }
    result.classes.push({ name: c.name, file: c.file, artifacts, written: changed });
  }
  return result;
}
