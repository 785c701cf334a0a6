// A parsed YAML file that can say where any value came from (line:column), so that every
// inventory error points at the text the user has to change.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import type { z } from "zod";
import type { Issue, Where } from "../errors.ts";

export type Path = readonly (string | number)[];

export class YamlDoc {
  readonly file: string;
  readonly data: unknown;
  readonly syntaxIssues: Issue[];
  private readonly text: string;
  private parsed: { doc: Document.Parsed; lines: LineCounter } | undefined;
  /** Key → pair per mapping, built on first use: a 10,000-host mapping is searched once, not per host. */
  private readonly keys = new WeakMap<YAMLMap, Map<string, Pair>>();

  /**
   * `known`: the data of this exact text, parsed cleanly before (a cache). The positioned parse
   * (the slow part, and what messages need) then happens only if a message asks where something is.
   */
  constructor(file: string, text: string, known?: { data: unknown }) {
    this.file = file;
    this.text = text;
    if (known) {
      this.data = known.data;
      this.syntaxIssues = [];
      return;
    }
    const { doc, lines } = this.positioned();
    this.syntaxIssues = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return {
        severity: "error" as const,
        where: { file, line: pos.line, col: pos.col },
        message: `YAML syntax: ${firstLine(e.message)}`,
        hint: "check indentation, colons and quoting on this line or the one before",
      };
    });
    if (this.syntaxIssues.length === 0) this.syntaxIssues.push(...this.duplicateKeys());
    this.data = this.syntaxIssues.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : undefined;
  }

  /** Parsed without errors (so its data may be cached). */
  get clean(): boolean {
    return this.syntaxIssues.length === 0;
  }

  private positioned(): { doc: Document.Parsed; lines: LineCounter } {
    if (!this.parsed) {
      const lines = new LineCounter();
      // uniqueKeys is checked in one pass (duplicateKeys): the library's own check compares every
      // key with every other, which took seconds for a 10,000-host file.
      const doc = parseDocument(this.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true });
      this.parsed = { doc, lines };
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
            message: `the key ${JSON.stringify(key)} appears twice in the same mapping`,
            hint: "each host/field may appear once per mapping; remove or rename the second one",
          });
        });
      },
    });
    return issues;
  }

  /** The mapping's key → pair index, built once per mapping; `onDuplicate` sees repeated keys while it is built. */
  private pairs(map: YAMLMap, onDuplicate?: (key: string, pair: Pair) => void): Map<string, Pair> {
    let index = this.keys.get(map);
    if (!index) {
      index = new Map();
      for (const pair of map.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (index.has(key)) onDuplicate?.(key, pair);
        else index.set(key, pair);
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

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

/**
 * zod issues → inventory issues. `base` is the data path of the validated value inside the file,
 * `label` the field prefix users read (`hosts.aleph`).
 */
export function zodIssues(doc: YamlDoc, error: z.ZodError, base: Path, label: string): Issue[] {
  const out: Issue[] = [];
  for (const issue of error.issues) {
    const path = [...base, ...(issue.path as (string | number)[])];
    const field = [label, ...issue.path.map(String)].filter(Boolean).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          severity: "error",
          where: doc.whereKey(path, key, field ? `${field}.${key}` : key),
          message: `unknown key ${JSON.stringify(key)}`,
          hint: "remove it, or check its spelling against the inventory reference in README.md",
        });
      }
      continue;
    }
    const actual = valueAt(doc.data, path);
    out.push({ severity: "error", where: doc.where(path, field), message: describeIssue(issue, actual), hint: hintFor(issue, actual) });
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

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function describeIssue(issue: z.core.$ZodIssue, actual: unknown): string {
  if (issue.code === "invalid_type") {
    return actual === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, got ${show(actual)}`;
  }
  if (issue.code === "invalid_value" && "values" in issue) {
    return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${show(actual)}`;
  }
  return actual === undefined || typeof actual === "object" ? issue.message : `${issue.message} (got ${JSON.stringify(actual)})`;
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
