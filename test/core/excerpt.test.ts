import { LineCounter } from "yaml";
import { describe, expect, it } from "vitest";
import { described, escaped, fieldPath, printable, quoted } from "../../src/core/excerpt.ts";
import { parseYaml, YamlDoc } from "../../src/core/yaml-doc.ts";

describe("how messages show input values", () => {
  it("shows a short one-line value whole, quoted", () => {
    expect(quoted("52:54:00:12:34:5g")).toBe('"52:54:00:12:34:5g"');
    expect(quoted('a="b"')).toBe('"a=\\"b\\""');
  });

  it("cuts a long one-line value to its first 40 characters and says how long it is", () => {
    expect(quoted(`${"a".repeat(40)}SECRET`)).toBe(`"${"a".repeat(40)}…" (46 characters)`);
  });

  it("never shows any of a value on several lines (a key, a certificate), only its size", () => {
    expect(quoted("-----BEGIN KEY-----\nMIIEow\n-----END KEY-----\n")).toBe("a string of 45 characters on 3 lines");
    expect(described("line one\r\nline two")).toBe("a string of 18 characters on 2 lines");
    expect(described("one line")).toBe('string "one line"');
  });

  it("escapes control characters, DEL, C1 controls and invisible bidi overrides", () => {
    expect(quoted("\x1b[2J\x07\x7f\x9b\u202e")).toBe('"\\u001b[2J\\u0007\\u007f\\u009b\\u202e"');
    expect(quoted("a\tb")).toBe('"a\\tb"');
  });

  it("gives a whole file's value as its type and size alone when asked to", () => {
    expect(described("ghp_0123456789abcdef", { excerpt: false })).toBe("a string of 20 characters");
    expect(described([1, 2, 3], { excerpt: false })).toBe("a list of 3 entries");
    expect(described(525400000001)).toBe("number 525400000001");
    expect(described(null)).toBe("null");
  });

  it("writes line breaks and backslashes in a one-line excerpt as escapes (\\n, \\r, \\\\), never raw", () => {
    expect(escaped("a\nb\rc\\d")).toBe("a\\nb\\rc\\\\d");
    expect(escaped("\u00ad\ufeff")).toBe("\\u00ad\\ufeff");
  });

  it("keeps line breaks for the terminal but escapes tabs and every other control or invisible character", () => {
    expect(printable("WIPE\n\x1b[8mhidden\x1b[0m\tx\u202e\u0000")).toBe("WIPE\n\\u001b[8mhidden\\u001b[0m\\tx\\u202e\\u0000");
    expect(printable("plain text\nsecond line")).toBe("plain text\nsecond line");
  });

  it("counts in words that agree with the number, with thousands separators", () => {
    expect(quoted("x\n")).toBe("a string of 2 characters on 1 line");
    expect(quoted("\n")).toBe("a string of 1 character on 1 line");
    expect(quoted(`${"y".repeat(1233)}\n`.repeat(2))).toBe("a string of 2,468 characters on 2 lines");
    expect(described([7])).toBe("a list of 1 entry");
    expect(described([])).toBe("a list of 0 entries");
    expect(described("z", { excerpt: false })).toBe("a string of 1 character");
  });

  it("cuts at exactly 40 characters, counting characters, not UTF-16 units; a quote inside is escaped", () => {
    expect(quoted("b".repeat(40))).toBe(`"${"b".repeat(40)}"`);
    expect(quoted(`${"😀".repeat(41)}`)).toBe(`"${"😀".repeat(40)}…" (41 characters)`);
    expect(quoted(`"${"c".repeat(45)}`)).toBe(`"\\"${"c".repeat(39)}…" (46 characters)`);
  });

  it("names what a value is when it is no scalar: nothing, a mapping; a number past 40 digits is cut", () => {
    expect(described(undefined)).toBe("nothing");
    expect(described({ a: 1 })).toBe("a mapping");
    expect(described({ a: 1 }, { excerpt: false })).toBe("a mapping");
    expect(described(true)).toBe("boolean true");
    expect(described(12n ** 45n)).toBe(`bigint ${String(12n ** 45n).slice(0, 40)}…`);
    expect(described(1e20, { excerpt: false })).toBe("number");
    expect(described(10n ** 39n)).toBe(`bigint 1${"0".repeat(39)}`);
  });

  it("writes odd mapping keys in field paths quoted and escaped", () => {
    expect(fieldPath("hosts", "aleph")).toBe("hosts.aleph");
    expect(fieldPath("hosts.a", "\x1b]0;x\x07")).toBe('hosts.a["\\u001b]0;x\\u0007"]');
    expect(fieldPath("", "0")).toBe("0");
    // A plain name is the whole key: not one that only starts or ends like one.
    expect(fieldPath("hosts", "-a")).toBe('hosts["-a"]');
    expect(fieldPath("hosts", "a b")).toBe('hosts["a b"]');
    expect(fieldPath("hosts", "a".repeat(63))).toBe(`hosts.${"a".repeat(63)}`);
    expect(fieldPath("hosts", "a".repeat(64))).toBe(`hosts["${"a".repeat(40)}…" (64 characters)]`);
  });
});

describe("YAML that would exhaust memory or crash the parser", () => {
  const lines = () => new LineCounter();

  it("stops counting at the limit of values, before the document is composed", () => {
    const text = `hosts: [${Array(50).fill("a").join(",")}]\n`;
    expect("docs" in parseYaml(text, { lineCounter: lines() }, false, { values: 100, nesting: 100 })).toBe(true);
    const r = parseYaml(text, { lineCounter: lines() }, false, { values: 20, nesting: 100 });
    expect(r).toEqual({ tooMany: expect.any(Number) });
  });

  it("counts quoted, block and alias values as well as plain ones", () => {
    const text = 'a: &x "q"\nb: |\n  block\nc: *x\nd: [\'s\', {e: f}]\n';
    const under = parseYaml(text, { lineCounter: lines() }, false, { values: 100, nesting: 100 });
    expect("docs" in under && under.docs[0].toJS()).toEqual({ a: "q", b: "block\n", c: "q", d: ["s", { e: "f" }] });
    expect("tooMany" in parseYaml(text, { lineCounter: lines() }, false, { values: 10, nesting: 100 })).toBe(true);
  });

  it("refuses nesting past the limit, in flow and block style, without recursing", () => {
    expect(parseYaml(`a: ${"[".repeat(20_000)}`, { lineCounter: lines() }, false)).toEqual({ tooDeep: expect.any(Number) });
    expect(parseYaml(`a:\n${"- ".repeat(150)}x\n`, { lineCounter: lines() }, false)).toEqual({ tooDeep: expect.any(Number) });
    expect("docs" in parseYaml(`a:\n${"- ".repeat(90)}x\n`, { lineCounter: lines() }, false)).toBe(true);
  });

  it("reports an alias bomb as an issue of its file", () => {
    const doc = new YamlDoc("hosts/lol.yaml", `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);
    expect(doc.clean).toBe(false);
    expect(doc.syntaxIssues).toEqual([expect.objectContaining({ where: { file: "hosts/lol.yaml" }, message: expect.stringContaining("aliases here expand to too much data") })]);
  });
});
