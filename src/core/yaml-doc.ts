// A parsed YAML file that can say where any value came from (line:column), so that every
// inventory error points at the text the user has to change.
import { Composer, CST, isAlias, isMap, isPair, isScalar, isSeq, Lexer, LineCounter, Parser, Scalar, visit, YAMLParseError, type Document, type DocumentOptions, type Node, type Pair, type ParseOptions, type SchemaOptions, type YAMLMap } from "yaml";
import type { z } from "zod";
import type { Issue, Where } from "../errors.ts";
import { described, escaped, fieldPath, quoted } from "./excerpt.ts";

/**
 * How deep mappings and lists may nest. Inventory files nest a few levels; composing a YAML
 * document recurses once per level, and a few thousand levels crash Node itself (not a
 * catchable stack overflow), so deeper input is refused before it is composed.
 */
export const MAX_NESTING = 100;

/** Aliases a document may expand when read: a few are handy, thousands are a "billion laughs" bomb. */
export const MAX_ALIASES = 100;

/**
 * Values (scalars, aliases, lists, mappings, entries) one file may hold: a million. The parsed
 * document takes about 1 KiB of memory per value, so a file of tiny values (`[a,a,a,…]`) well
 * under the size limit could otherwise exhaust Node's heap; 10,000 hosts are about 200,000.
 */
export const MAX_VALUES = 1_000_000;

type YamlOptions = ParseOptions & DocumentOptions & SchemaOptions;

/** The lexical tokens that start a value other than a plain scalar: a list or mapping, an entry; and the first characters of aliases, quoted and block scalars. */
const VALUE_TOKENS = new Set(["[", "{", "-", "?", ":"]);
const VALUE_START = new Set(["*", '"', "'", "|", ">"]);

/** The offset of the first collection nested deeper than MAX_NESTING, walked without recursion. */
function tooDeep(tokens: readonly CST.Token[], maxNesting: number): number | undefined {
  const stack: [CST.Token, number][] = tokens.map((t) => [t, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (token.type === "document") {
      if (token.value) stack.push([token.value, depth]);
    } else if (token.type === "block-map" || token.type === "block-seq" || token.type === "flow-collection") {
      if (depth >= maxNesting) return token.offset;
      for (const item of token.items) {
        if ("key" in item && item.key) stack.push([item.key, depth + 1]);
        if (item.value) stack.push([item.value, depth + 1]);
      }
    }
  }
  return undefined;
}

/** Where a text goes over a limit (an offset into it). */
export type Unparsable = { tooDeep: number } | { tooMany: number };

export interface YamlLimits {
  values: number;
  nesting: number;
}
const LIMITS: YamlLimits = { values: MAX_VALUES, nesting: MAX_NESTING };

/**
 * `parseDocument` (one document) or `parseAllDocuments` (`all`), the same steps the library takes,
 * with the values counted while parsing and the nesting checked between parsing (iterative) and
 * composing (recursive).
 */
export function parseYaml(text: string, options: YamlOptions & { lineCounter: LineCounter }, all: true, limits?: YamlLimits): { docs: Document.Parsed[]; values: number } | Unparsable;
export function parseYaml(text: string, options: YamlOptions & { lineCounter: LineCounter }, all: false, limits?: YamlLimits): { docs: [Document.Parsed]; values: number } | Unparsable;
export function parseYaml(text: string, options: YamlOptions & { lineCounter: LineCounter }, all: boolean, limits: YamlLimits = LIMITS): { docs: Document.Parsed[]; values: number } | Unparsable {
  // Parser.parse(), with each lexical token counted on the way: too many values stop it early.
  const parser = new Parser(options.lineCounter.addNewLine);
  const tokens: CST.Token[] = [];
  let values = 0;
  let content = false;
  options.lineCounter.addNewLine(0);
  for (const lexeme of new Lexer().lex(text)) {
    // A plain scalar is a marker, then its text (which may start with anything): the marker counts.
    const value = !content && (lexeme === CST.SCALAR || VALUE_TOKENS.has(lexeme) || VALUE_START.has(lexeme[0]!));
    content = lexeme === CST.SCALAR;
    if (value && ++values > limits.values) return { tooMany: parser.offset };
    for (const token of parser.next(lexeme)) tokens.push(token);
  }
  for (const token of parser.end()) tokens.push(token);
  const deep = tooDeep(tokens, limits.nesting);
  if (deep !== undefined) return { tooDeep: deep };
  const composer = new Composer(options);
  if (all) return { docs: [...composer.compose(tokens)] as Document.Parsed[], values };
  let doc: Document.Parsed | undefined;
  for (const next of composer.compose(tokens, true, text.length)) {
    if (!doc) doc = next as Document.Parsed;
    else {
      doc.errors.push(new YAMLParseError(next.range.slice(0, 2) as [number, number], "MULTIPLE_DOCS", "Source contains multiple documents; please use YAML.parseAllDocuments()"));
      break;
    }
  }
  return { docs: [doc!], values };
}

export type Path = readonly (string | number)[];

/**
 * A message asked where a value is written, in a document read without its text (see
 * YamlDoc.unplaced). The loader then starts again and reads every file with positions, so that
 * each message points at its line and column.
 */
export class Unplaced extends Error {
  constructor(readonly file: string) {
    super(`${file}: a position was asked of a document read without its text`);
  }
}

export class YamlDoc {
  readonly file: string;
  readonly data: unknown;
  readonly syntaxIssues: Issue[];
  /**
   * The data could be read: there are no syntax issues, or only keys repeated in a mapping (the
   * last one counts, as positions do), so the rules can still check the rest of the file.
   */
  readonly readable: boolean;
  /** Undefined for a document made by unplaced(): asking it where anything is throws Unplaced. */
  private readonly text: string | undefined;
  private parsed: { doc: Document.Parsed; lines: LineCounter; unparsable: Unparsable | undefined } | undefined;
  /** Key → pair per mapping, built on first use: a 10,000-host mapping is searched once, not per host. */
  private readonly keys = new WeakMap<YAMLMap, Map<string, Pair>>();

  /**
   * `known`: the data of this exact text, parsed cleanly before (a cache). The positioned parse
   * (the slow part, and what messages need) then happens only if a message asks where something is.
   */
  constructor(file: string, text: string | undefined, known?: { data: unknown }) {
    this.file = file;
    this.text = text;
    if (known || text === undefined) {
      this.data = known?.data;
      this.syntaxIssues = [];
      this.readable = true;
      return;
    }
    const { doc, lines, unparsable } = this.positioned();
    if (unparsable) {
      const pos = lines.linePos("tooDeep" in unparsable ? unparsable.tooDeep : unparsable.tooMany);
      const message = "tooDeep" in unparsable ? `mappings and lists nest more than ${MAX_NESTING} levels deep here` : `the file holds more than ${MAX_VALUES.toLocaleString("en-US")} values (this is the first one over)`;
      const hint = "tooDeep" in unparsable ? "inventory files nest a few levels; is this file meant to be in the inventory?" : "split the hosts into several files under hosts/ (10,000 hosts are about 200,000 values)";
      this.syntaxIssues = [{ severity: "error", where: { file, line: pos.line, col: pos.col }, message, hint }];
      this.data = undefined;
      this.readable = false;
      return;
    }
    this.syntaxIssues = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return {
        severity: "error" as const,
        where: { file, line: pos.line, col: pos.col },
        // The library's message may quote the text around the error: kept to its first line, cut and escaped.
        message: `YAML syntax: ${cut(firstLine(e.message), 100)}`,
        hint: "check indentation, colons and quoting on this line or the one before",
      };
    });
    // A repeated key is reported, and the file still read: it says nothing about the rest of it.
    let readable = this.syntaxIssues.length === 0;
    if (readable) this.syntaxIssues.push(...this.duplicateKeys());
    // An alias of no anchor (a misspelt *name) makes the library throw when the data is read. (No
    // `*` in the text, no alias: a 10,000-host file is not walked for none.)
    const unresolved = readable && text.includes("*") ? unresolvedAliases(doc, lines, file) : [];
    if (unresolved.length > 0) {
      this.syntaxIssues.push(...unresolved);
      readable = false;
    }
    let data: unknown;
    if (readable) {
      try {
        data = doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (e) {
        // The library throws (a ReferenceError) when aliases would expand past maxAliasCount.
        if (!(e instanceof ReferenceError)) throw e;
        this.syntaxIssues.push({
          severity: "error",
          where: { file },
          message: "YAML aliases here expand to too much data (an alias used over and over, as in a \"billion laughs\" file)",
          hint: "write the values out, or use fewer aliases (*name) of large anchors (&name)",
        });
        readable = false;
      }
    }
    this.data = data;
    this.readable = readable;
  }

  /**
   * A file whose hosts were read apart (host-chunks.ts) or taken from an earlier run
   * (inventory-memo.ts): it cannot say where anything is, and a message about it throws Unplaced.
   */
  static unplaced(file: string): YamlDoc {
    return new YamlDoc(file, undefined);
  }

  /** Parsed without errors (so its data may be cached). */
  get clean(): boolean {
    return this.syntaxIssues.length === 0;
  }

  private positioned(): { doc: Document.Parsed; lines: LineCounter; unparsable: Unparsable | undefined } {
    if (this.text === undefined) throw new Unplaced(this.file);
    if (!this.parsed) {
      const lines = new LineCounter();
      // uniqueKeys is checked in one pass (duplicateKeys): the library's own check compares every
      // key with every other, which took seconds for a 10,000-host file.
      const options = { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true } as const;
      const parsed = parseYaml(this.text, options, false);
      // Too deep or too large to compose: an empty document stands in, so positions fall back to the file.
      const doc = "docs" in parsed ? parsed.docs[0] : (parseYaml("", { ...options, lineCounter: new LineCounter() }, false) as { docs: [Document.Parsed] }).docs[0];
      this.parsed = { doc, lines, unparsable: "docs" in parsed ? undefined : parsed };
    }
    return this.parsed;
  }

  private get doc(): Document.Parsed {
    return this.positioned().doc;
  }

  private get lines(): LineCounter {
    return this.positioned().lines;
  }

  /** Where the value at `path` is written; for a missing key, where its parent is. */
  where(path: Path, field: string): Where {
    const node = this.nodeAt(path);
    const offset = node?.range?.[0];
    if (offset === undefined) return { file: this.file, field };
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, col: pos.col, field };
  }

  /** Where the key `key` of the mapping at `path` is written (for unknown keys). */
  whereKey(path: Path, key: string, field: string): Where {
    const map = this.nodeAt(path);
    const pair = isMap(map) ? this.pairs(map).get(key) : undefined;
    const range = (pair?.key as Node | undefined)?.range;
    if (range) {
      const pos = this.lines.linePos(range[0]);
      return { file: this.file, line: pos.line, col: pos.col, field };
    }
    return this.where(path, field);
  }

  /** Indexes every mapping once (see pairs()), reporting keys that appear twice on the way. */
  private duplicateKeys(): Issue[] {
    const issues: Issue[] = [];
    visit(this.doc, {
      Map: (_, map) => {
        this.pairs(map, (key, pair) => {
          const pos = this.lines.linePos((pair.key as Node).range?.[0] ?? 0);
          issues.push({
            severity: "error",
            where: { file: this.file, line: pos.line, col: pos.col },
            message: `the key ${quoted(key)} appears twice in the same mapping`,
            hint: "each host/field may appear once per mapping; remove or rename the second one",
          });
        });
      },
    });
    return issues;
  }

  /**
   * The mapping's key → pair index, built once per mapping; `onDuplicate` sees repeated keys while
   * it is built. A repeated key's last pair is indexed: it is the one the data holds.
   */
  private pairs(map: YAMLMap, onDuplicate?: (key: string, pair: Pair) => void): Map<string, Pair> {
    let index = this.keys.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (index.has(key)) onDuplicate?.(key, pair);
        index.set(key, pair);
      }
      this.keys.set(map, index);
    }
    return index;
  }

  /** The YAML node at `path`, or the nearest ancestor that exists. */
  private nodeAt(path: Path): Node | undefined {
    let node = this.doc.contents as Node | null;
    for (const key of path) {
      let next: unknown;
      if (isMap(node)) next = this.pairs(node).get(String(key))?.value;
      else if (isSeq(node)) next = node.items[Number(key)];
      if (!next || typeof next !== "object" || !("range" in next)) break;
      node = next as Node;
    }
    return node ?? undefined;
  }
}

/**
 * One host's text cut out of a hosts file (see host-chunks.ts), read on its own: the host's value
 * and how many values the text holds (toward the file's MAX_VALUES). Undefined when anything
 * about it is unusual, so that the whole file is read instead: a syntax error or warning, a key
 * repeated in a mapping or one that is not a scalar, an anchor or alias (an alias may name an
 * anchor in another host), or a top level other than the plain key `key` with the host below it.
 */
export function parseHostChunk(text: string, key: string): { value: unknown; values: number } | undefined {
  const options = { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false, strict: true } as const;
  // In its file the host lies one level deeper, under `hosts:`.
  const parsed = parseYaml(text, options, false, { values: MAX_VALUES, nesting: MAX_NESTING - 1 });
  if (!("docs" in parsed)) return undefined;
  const doc = parsed.docs[0];
  if (doc.errors.length > 0 || doc.warnings.length > 0) return undefined;
  const top = doc.contents;
  if (!isMap(top) || top.items.length !== 1) return undefined;
  const pair = top.items[0]!;
  if (!isScalar(pair.key) || pair.key.type !== Scalar.PLAIN || pair.key.value !== key) return undefined;
  let usual = true;
  visit(doc, (_, node) => {
    if (isAlias(node) || ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor !== undefined)) usual = false;
    else if (isMap(node)) {
      const keys = new Set<string>();
      for (const p of node.items) {
        if (!isScalar(p.key) || keys.has(String(p.key.value))) usual = false;
        else keys.add(String(p.key.value));
      }
    }
    return usual ? undefined : visit.BREAK;
  });
  if (!usual) return undefined;
  const data = doc.toJS() as Record<string, unknown>;
  return { value: data[key], values: parsed.values };
}

/** Each alias (*name) that names no anchor (&name) set before it, at the alias: in document order, as the library resolves them. */
function unresolvedAliases(doc: Document.Parsed, lines: LineCounter, file: string): Issue[] {
  const anchors = new Set<string>();
  const issues: Issue[] = [];
  visit(doc, (_, node) => {
    if (isAlias(node)) {
      if (anchors.has(node.source)) return;
      const pos = lines.linePos(node.range?.[0] ?? 0);
      issues.push({
        severity: "error",
        where: { file, line: pos.line, col: pos.col },
        message: `the alias *${cut(node.source, 40)} names no anchor: no value before it in this file is marked &${cut(node.source, 40)}`,
        hint: "an alias (*name) repeats a value marked &name earlier in the same file: check its spelling, or write the value out",
      });
    } else if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor !== undefined) anchors.add(node.anchor);
  });
  return issues;
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

/** Text of ours that may carry pieces of the input: at most `max` characters, escaped. */
function cut(s: string, max: number): string {
  const chars = [...s];
  return escaped(chars.length <= max ? s : `${chars.slice(0, max).join("")}…`);
}

/**
 * zod issues → inventory issues. `base` is the data path of the validated value inside the file,
 * `label` the field prefix users read (`hosts.aleph`).
 */
export function zodIssues(doc: YamlDoc, error: z.ZodError, base: Path, label: string): Issue[] {
  const out: Issue[] = [];
  for (const issue of error.issues) {
    const path = [...base, ...(issue.path as (string | number)[])];
    const field = issue.path.reduce<string>((f, k) => (typeof k === "number" ? `${f}[${k}]` : fieldPath(f, k as string)), label);
    if (issue.code === "invalid_key") {
      // A record's key (a target's name): the key is what is wrong, so that is where it points.
      const key = String(issue.path.at(-1));
      out.push({
        severity: "error",
        where: doc.whereKey(path.slice(0, -1), key, field),
        message: `${issue.issues[0]?.message ?? issue.message} (got ${quoted(key)})`,
        hint: "rename the key",
      });
      continue;
    }
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          severity: "error",
          where: doc.whereKey(path, key, fieldPath(field, key)),
          message: `unknown key ${quoted(key)}`,
          hint: "remove it, or check its spelling against the inventory reference in README.md",
        });
      }
      continue;
    }
    const actual = valueAt(doc.data, path);
    // A whole file that is not a mapping is likely no inventory file at all (a key, a copy of
    // /etc/passwd): its type and size only, never an excerpt.
    out.push({ severity: "error", where: doc.where(path, field), message: describeIssue(issue, actual, path.length > 0), hint: hintFor(issue, actual) });
  }
  return out;
}

function valueAt(data: unknown, path: Path): unknown {
  let v: unknown = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, actual: unknown, excerpt: boolean): string {
  const got = described(actual, { excerpt });
  if (issue.code === "invalid_type") {
    return actual === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${got}`;
  }
  if (issue.code === "invalid_value" && "values" in issue) {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${got}`;
  }
  // A string is shown as quoted() has it, without the "string" before it.
  return actual === undefined || typeof actual === "object" ? issue.message : `${issue.message} (got ${typeof actual === "string" && excerpt ? quoted(actual) : got})`;
}

function hintFor(issue: z.core.$ZodIssue, actual: unknown): string | undefined {
  if (issue.code === "invalid_type" && issue.expected === "string" && (typeof actual === "number" || typeof actual === "boolean")) {
    return "YAML read this as a number/boolean: put it in quotes";
  }
  if (issue.code === "invalid_type" && issue.expected === "array" && typeof actual === "string") {
    return "write a list: [a, b] or one `- item` per line";
  }
  return undefined;
}
