// What a user reads about a YAML file: each syntax problem at its line and column with its hint, and
// each schema problem (zodIssues) worded by its kind, with the value shown as excerpt.ts allows.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { MAX_NESTING, zodIssues, YamlDoc } from "../../src/core/yaml-doc.ts";

/** The issues of `text` checked against `schema` (as the inventory checks a file). */
function issuesOf(text: string, schema: z.ZodType) {
  const doc = new YamlDoc("hosts/x.yaml", text);
  const r = schema.safeParse(doc.data);
  return r.success ? [] : zodIssues(doc, r.error, [], "hosts.x");
}

describe("YamlDoc: a file that cannot be read, said at its place", () => {
  it("nesting past the limit: where it goes too deep, and what to make of it", () => {
    const doc = new YamlDoc("hosts/deep.yaml", `a:\n  b: ${"[".repeat(MAX_NESTING + 5)}\n`);
    expect([doc.readable, doc.clean, doc.data]).toEqual([false, false, undefined]);
    expect(doc.syntaxIssues).toEqual([
      { severity: "error", where: { file: "hosts/deep.yaml", line: 2, col: 4 + MAX_NESTING }, message: `mappings and lists nest more than ${MAX_NESTING} levels deep here`, hint: "inventory files nest a few levels; is this file meant to be in the inventory?" },
    ]);
  });

  it("a syntax error: the library's first line, cut and escaped, with where to look", () => {
    const doc = new YamlDoc("hosts/bad.yaml", "class: demo\nmac: [1, 2\n");
    expect(doc.readable).toBe(false);
    expect(doc.syntaxIssues).toHaveLength(1);
    expect(doc.syntaxIssues[0]).toMatchObject({ severity: "error", where: { file: "hosts/bad.yaml", line: expect.any(Number), col: expect.any(Number) }, hint: "check indentation, colons and quoting on this line or the one before" });
    expect(doc.syntaxIssues[0]!.message).toMatch(/^YAML syntax: \S/);
    expect(doc.syntaxIssues[0]!.message).not.toContain("\n");
    // A message quoting a long piece of the file (here a tag) is cut to 100 characters, and marked so.
    const long = new YamlDoc("hosts/long.yaml", `a: !${"x".repeat(300)}!x 1\n`);
    const message = long.syntaxIssues[0]!.message.slice("YAML syntax: ".length);
    expect(message).toBe(`Could not resolve tag: !${"x".repeat(100 - "Could not resolve tag: !".length)}…`);
    // One of 100 characters exactly is not.
    const exact = new YamlDoc("hosts/exact.yaml", `a: !${"x".repeat(100 - "Could not resolve tag: !!x".length)}!x 1\n`);
    expect(exact.syntaxIssues[0]!.message).toMatch(/^YAML syntax: Could not resolve tag: !x+!x$/);
    expect(exact.syntaxIssues[0]!.message.length).toBe("YAML syntax: ".length + 100);
  });

  it("an alias of no anchor (misspelt, or before its anchor): at the alias, naming it, and nothing read", () => {
    const doc = new YamlDoc("hosts/typo.yaml", "base: &workers [quiet]\nhosts:\n  a: { kernelParams: *wokers }\n  b: { kernelParams: *later }\nc: &later 1\nd: *workers\n");
    expect([doc.readable, doc.data]).toEqual([false, undefined]);
    expect(doc.syntaxIssues.map((i) => i.severity)).toEqual(["error", "error"]);
    expect(doc.syntaxIssues.map((i) => [i.where, i.message, i.hint])).toEqual([
      [{ file: "hosts/typo.yaml", line: 3, col: 22 }, "the alias *wokers names no anchor: no value before it in this file is marked &wokers", "an alias (*name) repeats a value marked &name earlier in the same file: check its spelling, or write the value out"],
      [{ file: "hosts/typo.yaml", line: 4, col: 22 }, "the alias *later names no anchor: no value before it in this file is marked &later", "an alias (*name) repeats a value marked &name earlier in the same file: check its spelling, or write the value out"],
    ]);
    // A name too long to repeat whole is cut.
    const long = new YamlDoc("hosts/long.yaml", `a: *${"n".repeat(300)}\n`);
    expect(long.syntaxIssues[0]!.message).toBe(`the alias *${"n".repeat(40)}… names no anchor: no value before it in this file is marked &${"n".repeat(40)}…`);
    // A file that does not parse says its syntax error only, alias or not.
    expect(new YamlDoc("hosts/both.yaml", "a: *nothing\nb: [\n").syntaxIssues.map((i) => i.message)).toEqual([expect.stringMatching(/^YAML syntax: /)]);
    // Aliases of anchors set before them read as always.
    expect(new YamlDoc("hosts/ok.yaml", "a: &k [x]\nb: *k\n").data).toEqual({ a: ["x"], b: ["x"] });
  });

  it("an alias bomb: the whole file, said once, and nothing read", () => {
    const doc = new YamlDoc("hosts/lol.yaml", `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`);
    expect([doc.readable, doc.data]).toEqual([false, undefined]);
    expect(doc.syntaxIssues).toEqual([
      {
        severity: "error",
        where: { file: "hosts/lol.yaml" },
        message: 'YAML aliases here expand to too much data (an alias used over and over, as in a "billion laughs" file)',
        hint: "write the values out, or use fewer aliases (*name) of large anchors (&name)",
      },
    ]);
  });

  it("a repeated key: each after the first, at its own place; the file is still read", () => {
    const doc = new YamlDoc("hosts/dup.yaml", "class: demo\nmac: a\nclass: other\n");
    expect(doc.readable).toBe(true);
    expect(doc.syntaxIssues).toEqual([expect.objectContaining({ severity: "error", where: expect.objectContaining({ file: "hosts/dup.yaml", line: 3, col: 1 }), hint: "each host/field may appear once per mapping; remove or rename the second one" })]);
  });

  it("a document of its own after `---` is one too many", () => {
    const doc = new YamlDoc("hosts/two.yaml", "class: demo\n---\nclass: other\n");
    expect(doc.readable).toBe(false);
    expect(doc.syntaxIssues.map((i) => i.message)).toEqual([expect.stringMatching(/^YAML syntax: Source contains multiple documents/)]);
  });
});

describe("zodIssues: each kind of schema problem in words", () => {
  const host = z.strictObject({ class: z.string(), macs: z.array(z.string()).optional(), mode: z.enum(["copy", "symlink"]).optional(), ram: z.number().int().max(64).optional(), tags: z.record(z.string().regex(/^[a-z]+$/, "expected a lower-case name"), z.string()).optional() });

  it("a wrong type: expected and got, the value shown; numbers and booleans told to be quoted", () => {
    expect(issuesOf("class: 42\n", host)).toEqual([{ severity: "error", where: { file: "hosts/x.yaml", line: 1, col: 8, field: "hosts.x.class" }, message: "expected string, got number 42", hint: "YAML read this as a number/boolean: put it in quotes" }]);
    expect(issuesOf("class: true\n", host)[0]).toMatchObject({ message: "expected string, got boolean true", hint: "YAML read this as a number/boolean: put it in quotes" });
    expect(issuesOf("class: [a]\n", host)[0]).toMatchObject({ message: "expected string, got a list of 1 entry", hint: undefined });
  });

  it("a missing key: missing, and what it should be", () => {
    expect(issuesOf("macs: []\n", host)[0]).toMatchObject({ message: "missing (expected string)", hint: undefined });
  });

  it("a string where a list goes: how to write a list", () => {
    expect(issuesOf("class: demo\nmacs: 52:54:00:00:00:01\n", host)[0]).toMatchObject({ message: 'expected array, got string "52:54:00:00:00:01"', hint: "write a list: [a, b] or one `- item` per line" });
    // A number where a list goes is no quoting matter.
    expect(issuesOf("class: demo\nmacs: 5\n", host)[0]).toMatchObject({ message: "expected array, got number 5", hint: undefined });
  });

  it("a value not among the choices: the choices, and what was written", () => {
    expect(issuesOf("class: demo\nmode: hardlink\n", host)[0]).toMatchObject({ message: 'expected one of "copy", "symlink", got string "hardlink"', hint: undefined });
  });

  it("any other problem: the schema's own words and the value, quoted for a string", () => {
    expect(issuesOf("class: demo\nram: 100\n", host)[0]!.message).toMatch(/^Too big: expected number to be <=64 \(got number 100\)$/);
    // A string is shown quoted, without "string" before it; an object is not shown at all.
    const named = z.strictObject({ name: z.string().regex(/^[a-z]+$/, "expected a lower-case name").optional(), to: z.object({ a: z.string() }).refine(() => false, "never right").optional() });
    expect(issuesOf("name: Big\n", named)[0]!.message).toBe('expected a lower-case name (got "Big")');
    expect(issuesOf("to: { a: x }\n", named)[0]!.message).toBe("never right");
  });

  it("an unknown key: at the key, with where to look; a bad record key: at the key, with its own message", () => {
    expect(issuesOf("class: demo\nclas: x\n", host)).toEqual([{ severity: "error", where: expect.objectContaining({ file: "hosts/x.yaml", line: 2, col: 1, field: "hosts.x.clas" }), message: 'unknown key "clas"', hint: "remove it, or check its spelling against the inventory reference in README.md" }]);
    expect(issuesOf("class: demo\ntags:\n  Big: x\n", host)).toEqual([{ severity: "error", where: expect.objectContaining({ line: 3, col: 3 }), message: 'expected a lower-case name (got "Big")', hint: "rename the key" }]);
  });

  it("a whole file that is not a mapping: its type and size only, never an excerpt", () => {
    const issues = issuesOf("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA\n", host);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).not.toContain("b3Blbn");
    expect(issues[0]!.message).toMatch(/a string of \d+ characters/);
  });
});
