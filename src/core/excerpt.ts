// The one way an input value is shown in a message. Inventory files can hold anything (a private
// key saved in hosts/ by mistake, a file symlinked from /etc), and messages go to terminals, CI
// logs and --json: a value is never echoed whole, only its type and length and, for a single-line
// value, a short excerpt, escaped so that no control character reaches the terminal.

/** The longest excerpt shown, in characters. */
export const EXCERPT_CHARS = 40;

// C0 and C1 controls, DEL, line and paragraph separators, and the invisible bidirectional
// overrides and marks that can make a terminal show text other than what is there.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
// eslint-disable-next-line no-control-regex
const LINE_BREAK = /\r\n|[\n\r\u000b\u000c\u0085\u2028\u2029]/;

/** `s` with every control or invisible formatting character written as an escape (`\n`, `\u001b`). */
export function escaped(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(UNSAFE, (ch) => {
    const short: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
    return short[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/**
 * Text for a terminal, line breaks kept: every other control or invisible formatting character
 * escaped. Messages and results carry values read from boot servers (served scripts, records), which
 * must not be able to drive the terminal (hide a wipe warning with a "conceal" escape, say).
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, (ch) => (ch === "\n" ? ch : ch === "\t" ? "\\t" : `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`));
}

function count(n: number, one: string, many: string): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/**
 * A string as a message shows it: quoted and escaped when it is one line of at most
 * EXCERPT_CHARS characters; cut to that with its length when it is longer; only its length and
 * line count when it spans several lines (a key, a certificate, a file's whole text).
 */
export function quoted(s: string): string {
  const chars = [...s];
  if (LINE_BREAK.test(s)) {
    const lines = s.split(LINE_BREAK);
    return `a string of ${count(chars.length, "character", "characters")} on ${count(lines.length - (lines.at(-1) === "" ? 1 : 0), "line", "lines")}`;
  }
  if (chars.length <= EXCERPT_CHARS) return `"${escaped(s).replace(/"/g, '\\"')}"`;
  return `"${escaped(chars.slice(0, EXCERPT_CHARS).join("")).replace(/"/g, '\\"')}…" (${count(chars.length, "character", "characters")})`;
}

/**
 * Any parsed value, for "expected X, got Y": its type, and for a scalar, `quoted()`'s excerpt.
 * `excerpt: false` gives the type and size alone, for values that may be a whole file that is no
 * inventory file at all.
 */
export function described(v: unknown, opts: { excerpt: boolean } = { excerpt: true }): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list of ${count(v.length, "entry", "entries")}`;
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") {
    if (!opts.excerpt) return `a string of ${count([...v].length, "character", "characters")}`;
    return LINE_BREAK.test(v) ? quoted(v) : `string ${quoted(v)}`;
  }
  // Numbers, booleans and bigints print without control characters; a 300-digit number is still cut.
  const text = String(v);
  return opts.excerpt ? `${typeof v} ${text.length <= EXCERPT_CHARS ? text : `${text.slice(0, EXCERPT_CHARS)}…`}` : typeof v;
}

/** `label` and a mapping key, as a field path users read: `hosts.aleph`, or `hosts["a b"]` for a key that is not a plain name. */
export function fieldPath(label: string, key: string | number): string {
  const k = String(key);
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(k)) return label ? `${label}.${k}` : k;
  return `${label}[${quoted(k)}]`;
}
