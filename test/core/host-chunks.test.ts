// A file of many hosts cut into one piece of text per host (host-chunks.ts) and each piece read on
// its own (parseHostChunk) must read exactly as the whole file reads, or not be cut at all: the
// cache then checks one host's text where a first run parses the whole file. Checked on the
// layouts people write and on 3,000 random files full of YAML's corners.
import { LineCounter } from "yaml";
import { describe, expect, it } from "vitest";
import { hostChunks } from "../../src/core/host-chunks.ts";
import { MAX_NESTING, MAX_VALUES, parseHostChunk, parseYaml, YamlDoc } from "../../src/core/yaml-doc.ts";
import { seeded } from "../support/random.ts";

/** The file read one host at a time: its data as the whole file's would be, and the values counted; undefined when it is not cut, or a piece is unusual. */
function readCut(text: string): { data: unknown; values: number } | undefined {
  const chunks = hostChunks(text);
  if (!chunks) return undefined;
  const hosts: Record<string, unknown> = {};
  let values = 2;
  for (const c of chunks) {
    if (Object.hasOwn(hosts, c.key)) return undefined;
    const read = parseHostChunk(c.text, c.key);
    if (!read) return undefined;
    hosts[c.key] = read.value;
    values += read.values + 2;
  }
  return { data: { hosts }, values };
}

function expectSameAsWhole(text: string): boolean {
  const cut = readCut(text);
  if (!cut) return false;
  const whole = new YamlDoc("hosts/f.yaml", text);
  expect(whole.syntaxIssues, text).toEqual([]);
  expect(whole.data, text).toStrictEqual(cut.data);
  // Key order too (toStrictEqual ignores it).
  expect(JSON.stringify(whole.data), text).toBe(JSON.stringify(cut.data));
  const counted = parseYaml(text, { lineCounter: new LineCounter() }, false);
  expect("docs" in counted && counted.values <= cut.values, text).toBe(true);
  return true;
}

describe("host chunks", () => {
  it("cuts the plain layout: comments and blank lines anywhere, any indentation, CRLF", () => {
    const text = "# rack 1\n\nhosts:\n  # first\n  a1:\n    class: demo\n    mac: \"52:54:00:00:00:01\"\n\n# col 0\n  a2:   # trailing\n    class: demo\n    kernelParams:\n      - x=1\n      - y\n    description: |\n      line\n       # kept\n";
    expect(hostChunks(text)?.map((c) => c.key)).toEqual(["a1", "a2"]);
    // Each host's lines, from its key to the next host's key; what comes before the first host is no host's.
    expect(hostChunks(text)?.map((c) => c.text).join("")).toBe(text.slice(text.indexOf("  a1:")));
    expect(expectSameAsWhole(text)).toBe(true);
    expect(expectSameAsWhole(text.replaceAll("\n", "\r\n"))).toBe(true);
    expect(expectSameAsWhole(text.replaceAll("\n  ", "\n    "))).toBe(true);
  });

  it("does not cut what is not plainly `hosts:` and one key per host", () => {
    for (const text of [
      "class: demo\nmac: x\n",
      "hosts: { a: { class: demo } }\n",
      "---\nhosts:\n  a:\n    class: demo\n",
      "hosts:\n  a:\n    class: demo\nother: 1\n",
      "hosts:\n    a:\n      class: demo\n  b:\n    class: demo\n",
      "hosts:\n  a: { class: demo }\n",
      "hosts:\n  \"a\":\n    class: demo\n",
      "hosts:\n\ta:\n    class: demo\n",
      "hosts:\n  a:\r    class: demo\n",
      "hosts:\n",
      "\uFEFFhosts:\n  a:\n    class: demo\n",
    ]) {
      expect(hostChunks(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it("sees the lines YAML sees: a lone CR (a line break to YAML) is never cut, a last line without a newline counts, a line of spaces is blank", () => {
    // To YAML, b is a host of its own after the lone CR; cut by \n alone it would hide inside a's text.
    expect(hostChunks("hosts:\n  a:\n    class: demo\r  b:\n    class: x\n")).toBeUndefined();
    expect(hostChunks("hosts:\n  a:\n    k: 1\n  b:")?.map((c) => c.key)).toEqual(["a", "b"]);
    expect(hostChunks("hosts:\n  a:\n    k: 1\n  b:")?.at(-1)?.text).toBe("  b:");
    expect(hostChunks("hosts:\n  a:\n    k: 1\n ")?.map((c) => [c.key, c.text])).toEqual([["a", "  a:\n    k: 1\n "]]);
    expect(hostChunks("hosts:\r\n  a:\r\n\r\n    k: 1\r\n")?.map((c) => c.key)).toEqual(["a"]);
    // One character, shallower than the hosts: not a host key, so the file is not cut.
    expect(hostChunks("hosts:\n  a:\n    k: 1\n b\n")).toBeUndefined();
  });

  it("reads a host as unusual when it could read differently alone: an alias, a key that is no plain string, a repeated key, an open quote", () => {
    expect(parseHostChunk("  a:\n    k: *x\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: &x [1]\n", "a")).toBeUndefined();
    expect(parseHostChunk("  0x10:\n    k: 1\n", "0x10")).toBeUndefined();
    expect(parseHostChunk("  true:\n    k: 1\n", "true")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: 1\n    k: 2\n", "a")).toBeUndefined();
    expect(parseHostChunk('  a:\n    k: "open\n', "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: [1,\n", "a")).toBeUndefined();
    // An anchor on a scalar or a mapping too, a key repeated deeper, a key that is no scalar.
    expect(parseHostChunk("  a:\n    k: &x 1\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: &x { b: 1 }\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: { b: 1, b: 2 }\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    ? [k]\n    : 1\n", "a")).toBeUndefined();
  });

  it("reads a piece as unusual unless it is the one host it is cut as: another key, a quoted key, two keys, a second document, a warning; too many values or too deep", () => {
    expect(parseHostChunk("  a:\n    class: demo\n", "a")).toEqual({ value: { class: "demo" }, values: 5 });
    expect(parseHostChunk("  b:\n    class: demo\n", "a")).toBeUndefined();
    expect(parseHostChunk('  "a":\n    class: demo\n', "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    class: demo\nb: 1\n", "a")).toBeUndefined();
    expect(parseHostChunk("a:\n  class: demo\nb: 1\n", "a")).toBeUndefined();
    expect(parseHostChunk("a\n", "a")).toBeUndefined();
    expect(parseHostChunk("- a\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    class: demo\n---\nb: 1\n", "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    class: !!custom demo\n", "a")).toBeUndefined();
    const many = `  a:\n    list: [${Array.from({ length: MAX_VALUES }, (_, i) => i).join(", ")}]\n`;
    expect(parseHostChunk(many, "a")).toBeUndefined();
    // In its file the host lies a level deeper than alone: the nesting limit counts that level.
    const nested = (depth: number) => `  a:\n    k: ${"[".repeat(depth)}${"]".repeat(depth)}\n`;
    expect(parseHostChunk(nested(MAX_NESTING - 3), "a")).toBeDefined();
    expect(parseHostChunk(nested(MAX_NESTING - 2), "a")).toBeUndefined();
    expect(parseHostChunk("  a:\n    k: 1\n", "a")).toEqual({ value: { k: 1 }, values: 5 });
  });

  it("reads 3,000 random files of hosts one host at a time exactly as it reads them whole, or reads them whole", () => {
    const { random, pick } = seeded(7);
    const keys = ["h1", "h2", "h3", "h4", "h5", "a-b", "x.y", "h_1", "H1", "h1", "h2", "h3", "h4", "h5", "1e3", "0x1F", "true", "123", "null", "h1.5"];
    // Settings by key, each with ways to write it (a host never repeats a key unless it means to).
    const fields = (i: string): string[][] => [
      [`${i}class: demo`, `${i}class: demo\n${i}class: twice`],
      [`${i}mac: "52:54:00:00:00:01"`, `${i}mac: 52:54:00:00:00:02`],
      [`${i}ip: 10.0.0.1`],
      [`${i}ram: 16GiB`, `${i}ram: 16`],
      [`${i}kernelParams: [a=1, "b c", 'd']`, `${i}kernelParams:\n${i}  - a\n${i}  - b: c`, `${i}kernelParams:\n${i}- a\n${i}- b`],
      [`${i}provision: { disks: true }`, `${i}provision:\n${i}  disks: yes`],
      [
        `${i}description: |\n${i}  line one\n${i}  # not a comment\n\n${i}  after a blank`,
        `${i}description: >-\n${i}  folded\n${i}  text`,
        `${i}description: "multi\n${i}  line: # not a comment"`,
        `${i}description: 'it''s'`,
        `${i}description: plain # a comment`,
        `${i}description: plain\n${i}  continued`,
        `${i}description: ~`,
        `${i}description: .inf`,
        `${i}description: !!str 123`,
      ],
      [`${i}talos: { network: { address: 10.0.0.1/24, nameservers: [1.1.1.1] } }`, `${i}talos:\n${i}  network:\n${i}    address: 10.0.0.1/24`],
      [`${i}nested:\n${i}  deeper:\n${i}    deepest: [x, {y: z}]`],
      [`${i}k: &anchor [1, 2]`, `${i}k: *anchor`, `${i}? complex\n${i}: key`, `${i}"quoted key": 1`],
    ];
    const between = ["", "\n", "# col 0 comment\n", "  # indented comment\n", "      # deep comment\n", "   \n"];
    const breakers = [(t: string) => t, (t: string) => t, (t: string) => t, (t: string) => t.replace("\n", "\n\t"), (t: string) => t.replace(/\n/g, "\r\n"), (t: string) => t.replace(/\n {4}/, "\n   "), (t: string) => t.replace(/\n {4}/, "\n  "), (t: string) => `${t}...\n`, (t: string) => t.replace('"', "")];
    let cut = 0;
    for (let n = 0; n < 3000; n++) {
      const indent = pick([1, 2, 4]);
      const inner = " ".repeat(indent + pick([1, 2, 2]));
      let text = `${pick(["", "# head\n", "\n"])}hosts:${pick(["", " # hosts", "  "])}\n`;
      const count = 1 + Math.floor(random() * 4);
      // Mostly without repeating a host or a field (a repeat is never cut, which the rest would not test).
      const once = <T>(xs: T[]): T => (random() < 0.9 ? xs.splice(Math.floor(random() * xs.length), 1)[0]! : pick(xs));
      const hostKeys = [...keys];
      for (let h = 0; h < count; h++) {
        text += pick(between) + `${" ".repeat(indent)}${once(hostKeys)}:${pick(["", "", " # c"])}\n`;
        const lines = 1 + Math.floor(random() * 5);
        const settings = fields(inner);
        // The last group (anchors, aliases, complex and quoted keys) only now and then.
        if (random() < 0.8) settings.pop();
        for (let l = 0; l < lines && settings.length > 0; l++) text += `${pick(once(settings))}\n`;
      }
      if (random() < 0.3) text = pick(breakers)(text);
      if (expectSameAsWhole(text)) cut++;
    }
    // Enough of them were cut for the comparison to mean something.
    expect(cut).toBeGreaterThan(600);
  });

  it("counts at least as many values as the whole file holds, so a file over MAX_VALUES is read whole", () => {
    let text = "hosts:\n";
    for (let i = 0; i < 50; i++) text += `  h${i}:\n    kernelParams: [${Array.from({ length: 20 }, (_, j) => `p${j}`).join(", ")}]\n`;
    const cut = readCut(text)!;
    const whole = parseYaml(text, { lineCounter: new LineCounter() }, false);
    expect("docs" in whole && whole.values).toBeLessThanOrEqual(cut.values);
    expect(MAX_VALUES).toBe(1_000_000);
  });
});
