// The bytes Go's gopkg.in/yaml.v3 `yaml.Marshal` writes, for the small set of values a Talos Image
// Factory schematic holds. The factory's schematic ID is the sha256 of exactly those bytes, so
// netbuild reproduces the encoder's choices rather than printing "equivalent" YAML:
//   - block style, 4-space indentation; a sequence under a key is indented like a mapping; a
//     mapping inside a sequence item starts after "- " (2 more); deeper levels align to 4;
//   - empty mappings and sequences as `{}` and `[]`;
//   - a string is plain unless it would read back as something else (a number, a bool, null, a
//     timestamp, YAML 1.1's yes/no/on/off, a base-60 number): then double-quoted; plain strings
//     that YAML syntax forbids (": ", " #", leading indicators, ...) are single-quoted;
//   - a string with a line break is a literal block (`|`, `|-`), indented one level;
//   - no line wrapping (yaml.v3's encoder has an unlimited width).
// Anything whose spelling this module cannot be sure of (control characters, floats, strings that
// only Go's time parser can classify, ...) is refused with a reason, never guessed.
import { fieldPath, quoted } from "./excerpt.ts";

/** A value as the Go struct would hold it. Mappings keep their entries' order (struct field order, or sorted map keys). */
export type GoValue = string | number | boolean | null | GoValue[] | GoMap;
export interface GoMap {
  kind: "map";
  entries: [string, GoValue][];
}

export class GoYamlError extends Error {}

export function goMap(entries: [string, GoValue][]): GoMap {
  return { kind: "map", entries };
}

function isMap(v: GoValue): v is GoMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// --- how yaml.v3 would resolve a plain scalar ------------------------------------------------

const RESOLVE_MAP = new Set(["", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"]);
const OLD_BOOL = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"]);
const YAML_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

/** Go's strconv.ParseInt/ParseUint with base 0 (after yaml.v3 removed every `_`). */
function goParsesAsInteger(s: string): boolean {
  const body = s.replace(/^[-+]/, "");
  if (body === "") return false;
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) return true;
  if (/^0[bB][01]+$/.test(body)) return true;
  if (/^0[oO][0-7]+$/.test(body)) return true;
  if (/^0[0-7]*$/.test(body)) return true;
  return /^[1-9][0-9]*$/.test(body);
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

/** Whether yaml.v3 would write `s` plain; undefined when netbuild cannot know how Go classifies it. */
function resolvesToString(s: string): boolean | undefined {
  if (RESOLVE_MAP.has(s)) return false;
  if (OLD_BOOL.has(s) || BASE60_FLOAT.test(s)) return false;
  const first = s[0]!;
  // Go's strconv.ParseFloat on the text as it is.
  if (first === ".") return !/^\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s);
  if (/[-+0-9]/.test(first)) {
    if (/^[0-9]{4}-/.test(s)) {
      // yaml.v3 tries Go's time.Parse here. A plain date is a timestamp; anything longer is
      // refused rather than guessed.
      const d = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$/.exec(s);
      // Go's time.Parse accepts only real calendar dates; anything else stays a plain string.
      if (d) return !isCalendarDate(Number(d[1]), Number(d[2]), Number(d[3]));
      return undefined;
    }
    const plain = s.replaceAll("_", "");
    if (goParsesAsInteger(plain)) return false;
    if (YAML_FLOAT.test(plain)) return false;
    if (/^[-+]?0[bBoO]/.test(plain)) return undefined;
    return true;
  }
  return true;
}

// --- libyaml's scalar analysis (emitterc.go: yaml_emitter_analyze_scalar) -------------------

interface Analysis {
  multiline: boolean;
  blockPlainAllowed: boolean;
  singleQuotedAllowed: boolean;
  blockAllowed: boolean;
}

function analyze(value: string): Analysis {
  if (value.length === 0) return { multiline: false, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: false };
  let blockIndicators = false;
  let lineBreaks = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let tabs = false;
  let previousSpace = false;
  let previousBreak = false;
  if (value.startsWith("---") || value.startsWith("...")) blockIndicators = true;
  const chars = [...value];
  let precededByWhitespace = true;
  chars.forEach((ch, i) => {
    const next = chars[i + 1];
    const followedByWhitespace = next === undefined || next === " " || next === "\t" || next === "\n";
    if (i === 0) {
      if ("#,[]{}&*!|>'\"%@`".includes(ch)) blockIndicators = true;
      else if ((ch === "?" || ch === ":" || ch === "-") && followedByWhitespace) blockIndicators = true;
    } else if (ch === ":" && followedByWhitespace) blockIndicators = true;
    else if (ch === "#" && precededByWhitespace) blockIndicators = true;
    if (ch === "\t") tabs = true;
    if (ch === " ") {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (ch === "\n") {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = ch === " " || ch === "\t" || ch === "\n";
  });
  let blockPlainAllowed = true;
  let singleQuotedAllowed = true;
  let blockAllowed = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) blockPlainAllowed = false;
  if (trailingSpace) blockAllowed = false;
  if (breakSpace) {
    blockPlainAllowed = false;
    singleQuotedAllowed = false;
  }
  if (spaceBreak || tabs) {
    blockPlainAllowed = false;
    singleQuotedAllowed = false;
  }
  if (spaceBreak) blockAllowed = false;
  if (lineBreaks) blockPlainAllowed = false;
  if (blockIndicators) blockPlainAllowed = false;
  return { multiline: lineBreaks, blockPlainAllowed, singleQuotedAllowed, blockAllowed };
}

/** Characters yaml.v3 writes as-is (is_printable with unicode output on: up to U+FFFD; 4-byte characters are escaped), tabs and newlines handled apart. */
function checkCharacters(s: string): void {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x10000) throw new GoYamlError(`${quoted(s)} contains the character U+${c.toString(16).toUpperCase()}, which yaml.v3 writes as an escape netbuild does not reproduce`);
    const printable = c === 0x0a || (c >= 0x20 && c <= 0x7e) || c === 0x85 || (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff);
    if (!printable && c !== 0x09) throw new GoYamlError(`${quoted(s)} contains a control character (U+${c.toString(16).toUpperCase().padStart(4, "0")})`);
    if (c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029) throw new GoYamlError(`${quoted(s)} contains a line break other than \\n`);
  }
}

type Style = "plain" | "single" | "double" | "literal";

function styleOf(s: string, simpleKey: boolean): Style {
  checkCharacters(s);
  const resolves = resolvesToString(s);
  if (resolves === undefined) throw new GoYamlError(`${quoted(s)} looks like a date and time: netbuild cannot tell how the Image Factory would spell it`);
  const a = analyze(s);
  let style: Style = s.includes("\n") ? "literal" : resolves ? "plain" : "double";
  if (simpleKey && a.multiline) style = "double";
  if (style === "plain" && (!a.blockPlainAllowed || (s.length === 0 && simpleKey))) style = "single";
  if (style === "single" && !a.singleQuotedAllowed) style = "double";
  if (style === "literal" && (!a.blockAllowed || simpleKey)) style = "double";
  return style;
}

function doubleQuoted(s: string): string {
  // Only reached for strings without control characters or line breaks (literal style takes
  // those, or they were refused): the escapes needed are \" \\ and \t.
  if (s.includes("\n")) throw new GoYamlError(`${quoted(s)}: a multi-line value with trailing spaces on a line cannot be written as the Image Factory would`);
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\t/g, "\\t")}"`;
}

/** A scalar after "key: " or "- ", with the indentation a literal block's lines get. */
function scalar(s: string | number | boolean | null, contentIndent: number, simpleKey = false): string {
  if (s === null) return "null";
  if (typeof s === "boolean") return s ? "true" : "false";
  if (typeof s === "number") {
    if (!Number.isSafeInteger(s)) throw new GoYamlError(`${s} is not a whole number netbuild can write exactly; quote it to make it a string`);
    return String(s);
  }
  switch (styleOf(s, simpleKey)) {
    case "plain":
      return s;
    case "single":
      return `'${s.replaceAll("'", "''")}'`;
    case "double":
      return doubleQuoted(s);
    case "literal": {
      if (s.startsWith(" ") || s.startsWith("\n")) throw new GoYamlError(`${quoted(s)}: a multi-line value that starts with a space or a blank line`);
      if (s.endsWith("\n\n")) throw new GoYamlError(`a multi-line value that ends in blank lines: remove them`);
      const chomp = s.endsWith("\n") ? "" : "-";
      const body = (s.endsWith("\n") ? s.slice(0, -1) : s).split("\n").map((line) => (line === "" ? "" : `${" ".repeat(contentIndent)}${line}`));
      return `|${chomp}\n${body.join("\n")}`;
    }
  }
}

/** yaml.v3's indentation rule for anything that is not the first level inside a "- " item. */
function aligned(indent: number): number {
  return 4 * Math.floor((indent + 4) / 4);
}

function emitMap(m: GoMap, indent: number, firstInline: boolean, out: string[]): void {
  m.entries.forEach(([key, value], i) => {
    const pad = i === 0 && firstInline ? "" : " ".repeat(indent);
    const k = scalar(key, 0, true);
    if (isMap(value) && value.entries.length > 0) {
      out.push(`${pad}${k}:\n`);
      emitMap(value, aligned(indent), false, out);
    } else if (Array.isArray(value) && value.length > 0) {
      out.push(`${pad}${k}:\n`);
      emitSeq(value, aligned(indent), out);
    } else {
      out.push(`${pad}${k}: ${leaf(value, aligned(indent))}\n`);
    }
  });
}

function emitSeq(items: GoValue[], indent: number, out: string[]): void {
  for (const item of items) {
    if (isMap(item) && item.entries.length > 0) {
      out.push(`${" ".repeat(indent)}- `);
      emitMap(item, indent + 2, true, out);
    } else if (Array.isArray(item) && item.length > 0) {
      throw new GoYamlError("a list directly inside a list is not supported");
    } else {
      out.push(`${" ".repeat(indent)}- ${leaf(item, indent + 2)}\n`);
    }
  }
}

function leaf(v: GoValue, contentIndent: number): string {
  if (isMap(v)) return "{}";
  if (Array.isArray(v)) return "[]";
  return scalar(v, contentIndent);
}

/** `yaml.Marshal(v)` for a top-level mapping. */
export function marshalGoYaml(doc: GoMap): string {
  if (doc.entries.length === 0) return "{}\n";
  const out: string[] = [];
  emitMap(doc, 0, false, out);
  return out.join("");
}

/**
 * The order yaml.v3 sorts string map keys in (keyList.Less): letters before other characters
 * except after a digit, runs of digits compared as numbers.
 */
export function goKeyLess(a: string, b: string): boolean {
  const ar = [...a];
  const br = [...b];
  const isDigit = (c: string) => c >= "0" && c <= "9";
  const isLetter = (c: string) => /\p{L}/u.test(c);
  let digits = false;
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) {
      digits = isDigit(ar[i]!);
      continue;
    }
    const al = isLetter(ar[i]!);
    const bl = isLetter(br[i]!);
    if (al && bl) return ar[i]! < br[i]!;
    if (al || bl) return digits ? al : bl;
    // Go's int64, which wraps past 2^63 - 1 (a run of 19 digits or more can): a JavaScript number
    // would round instead, and order such runs otherwise than yaml.v3 does.
    let an = 0n;
    let bn = 0n;
    if (ar[i] === "0" || br[i] === "0") {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]!); j--) {
        if (ar[j] !== "0") {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; ai < ar.length && isDigit(ar[ai]!); ai++) an = BigInt.asIntN(64, an * 10n + BigInt(ar[ai]!));
    for (; bi < br.length && isDigit(br[bi]!); bi++) bn = BigInt.asIntN(64, bn * 10n + BigInt(br[bi]!));
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i]! < br[i]!;
  }
  return ar.length < br.length;
}

/** A decoded `map[string]any` (from the class file) as yaml.v3 would hold and order it. */
export function fromPlain(value: unknown, where: string): GoValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new GoYamlError(`${where}: ${value} is not a whole number; netbuild cannot be sure how the factory spells it (quote it to make it a string)`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => fromPlain(v, `${where}[${i}]`));
  if (typeof value === "object") {
    const keys = Object.keys(value as object);
    // yaml.v3 orders keys with Go's unicode.IsDigit; netbuild's ordering knows only 0-9.
    const odd = keys.find((k) => /[^\P{Nd}0-9]/u.test(k));
    if (odd !== undefined) throw new GoYamlError(`${where}: the key ${quoted(odd)} has digits other than 0-9; netbuild cannot be sure where the factory sorts it`);
    keys.sort((x, y) => (goKeyLess(x, y) ? -1 : goKeyLess(y, x) ? 1 : 0));
    return goMap(keys.map((k) => [k, fromPlain((value as Record<string, unknown>)[k], fieldPath(where, k))]));
  }
  throw new GoYamlError(`${where}: unsupported value`);
}
