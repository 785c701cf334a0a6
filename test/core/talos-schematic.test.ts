// Schematic IDs computed offline must be the IDs the Image Factory assigns. Expected values come
// from the factory's own tests (pkg/schematic/schematic_test.go, internal/integration) and the
// Talos docs, never from this implementation. The encoding of everything else is checked against
// the real gopkg.in/yaml.v3 (Debian's golang-gopkg-yaml.v3-dev, the version the factory pinned),
// driven by a small Go oracle that decodes and re-encodes schematics as the factory does.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { missing } from "../support/tools.ts";
import { canonicalSchematic, EMPTY_SCHEMATIC_ID } from "../../src/core/talos-schematic.ts";
import type { SchematicInput } from "../../src/core/schema.ts";
import { SchematicSchema } from "../../src/core/schema.ts";

function idOf(s: SchematicInput): string {
  const r = canonicalSchematic(SchematicSchema.parse(s));
  if (!r.ok) throw new Error(r.message);
  return r.value.id;
}

describe("schematic IDs the Image Factory published", () => {
  const published: [string, string, SchematicInput][] = [
    ["empty (factory unit test; the value the issue quotes)", EMPTY_SCHEMATIC_ID, {}],
    ["empty customization (factory unit test)", EMPTY_SCHEMATIC_ID, { customization: {} }],
    ["empty extraKernelArgs list (factory unit test)", EMPTY_SCHEMATIC_ID, { customization: { extraKernelArgs: [] } }],
    ["kernel args noapic nolapic (factory unit test config1)", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c", { customization: { extraKernelArgs: ["noapic", "nolapic"] } }],
    ["kernel args with an empty systemExtensions (factory unit test)", "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c", { customization: { extraKernelArgs: ["noapic", "nolapic"], systemExtensions: {} } }],
    ["kernel args nolapic nomodeset (factory integration test)", "e0fb1129bbbdfb5d002e94af4cdce712a8370e850950a33a242d4c3f178c532d", { customization: { extraKernelArgs: ["nolapic", "nomodeset"] } }],
    ["meta key 0xa = foo (factory unit test)", "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f", { customization: { meta: [{ key: 0x0a, value: "foo" }] } }],
    ["meta with a JSON value, written single-quoted (factory integration test)", "fe866116408a5a13dab7d5003eb57a00954ea81ebeec3fbbcd1a6d4462a00036", { customization: { meta: [{ key: 0xa, value: '{"externalIPs":["1.2.3.4"]}' }] } }],
    ["three extensions, in the order given (factory integration test)", "51ff3e49313773332729a5c04e57af0dbe2e6d3f65ff638e6d4c3a05065fefff", { customization: { systemExtensions: { officialExtensions: ["siderolabs/amd-ucode", "siderolabs/gvisor", "siderolabs/gasket-driver"] } } }],
    ["one extension (Talos docs, boot assets)", "d9ff89777e246792e7642abd3220a616afb4e49822382e4213a2e528ab826fe5", { customization: { systemExtensions: { officialExtensions: ["siderolabs/gvisor"] } } }],
    ["kernel arg and two extensions (Talos docs, boot assets)", "b8e8fbbe1b520989e6c52c8dc8303070cb42095997e76e812fa8892393e1d176", { customization: { extraKernelArgs: ["net.ifnames=0"], systemExtensions: { officialExtensions: ["siderolabs/gvisor", "siderolabs/intel-ucode"] } } }],
    ["overlay rpi_generic (factory unit test)", "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9", { overlay: { name: "rpi_generic", image: "siderolabs/sbc-raspberrypi" } }],
    ["overlay with an empty customization (factory unit test)", "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9", { overlay: { name: "rpi_generic", image: "siderolabs/sbc-raspberrypi" }, customization: {} }],
    ["secureboot well-known certificates (factory unit test)", "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6", { customization: { secureboot: { includeWellKnownCertificates: true } } }],
  ];
  it.each(published)("%s", (_what, id, schematic) => {
    expect(idOf(schematic)).toBe(id);
  });

  it("prints the canonical YAML the ID is the hash of (what POST /schematics accepts)", () => {
    const r = canonicalSchematic(SchematicSchema.parse({ customization: { extraKernelArgs: ["noapic", "nolapic"] } }));
    expect(r.ok && r.value.yaml).toBe("customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n");
  });

  it("keeps extension order (the factory does not sort), so a reordered list is another schematic", () => {
    const a = idOf({ customization: { systemExtensions: { officialExtensions: ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"] } } });
    const b = idOf({ customization: { systemExtensions: { officialExtensions: ["siderolabs/util-linux-tools", "siderolabs/iscsi-tools"] } } });
    expect(a).not.toBe(b);
  });
});

describe("zero values the factory omits, and what netbuild refuses", () => {
  const raw = (s: unknown) => canonicalSchematic(s as SchematicInput);
  it.each<[string, unknown]>([
    ["bootloader none (the enum's zero value)", { customization: { bootloader: "none" } }],
    ["an empty enrollKeys", { customization: { secureboot: { enrollKeys: "" } } }],
    ["sector size 0", { customization: { diskImage: { sectorSize: 0 } } }],
    ["an overlay with no image, name or options", { overlay: { image: "", name: "", options: {} } }],
  ])("%s is the empty schematic", (_what, s) => {
    const r = raw(s);
    expect(r.ok && r.value.id).toBe(EMPTY_SCHEMATIC_ID);
  });

  it("names the overlay option it cannot spell", () => {
    expect(raw({ overlay: { image: "i", name: "n", options: { a: 1.5 } } })).toEqual({ ok: false, message: "overlay.options.a: 1.5 is not a whole number; netbuild cannot be sure how the factory spells it (quote it to make it a string)" });
  });

  it("lets an error that is not about spelling through (here the stack running out)", () => {
    let options: unknown = 1;
    for (let i = 0; i < 20000; i++) options = { a: options };
    expect(() => raw({ overlay: { image: "i", name: "n", options } })).toThrow(RangeError);
  });
});

// Every spelling yaml.v3 resolves to a bool, null, or number (resolve.go's table in all its cases,
// YAML 1.1's y/n/yes/no/on/off that its encoder still quotes, Go-parsable integers and floats) must
// be double-quoted, or the factory's bytes (and so the ID) differ; their near misses stay plain.
// Expectations as yaml.v3 writes them (checked against it by the oracle below, where Go is here);
// this table runs without Go.
const QUOTED_SPELLINGS = [
  "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
  "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
  ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
  "0x1F", "0X1F", "+0x1F", "-0x1f", "1e3", "1E3", "1e+3", "1E-3", "-1e3", ".5e3", "1.e5", "1.5E+10", "0b101", "0B101", "0o17", "0O17", "0777", "-0", "+0", "0.", "1__0",
];
const PLAIN_NEAR_MISSES = ["nan", "inf", "NaN", "Inf", "yEs", "oN", "tRUE", "nULL", "Nul", "ONE", "off_", "yes.", "TRUE1", "0x", "0xg", "1e", "e3", "+", ".", ".."];

describe("strings YAML would read as something else", () => {
  const valueOf = (s: string) => {
    const r = canonicalSchematic(SchematicSchema.parse({ customization: { meta: [{ key: 7, value: s }] } }));
    if (!r.ok) throw new Error(r.message);
    return /\n {10}value: (.*)\n$/.exec(r.value.yaml)?.[1];
  };
  it.each(QUOTED_SPELLINGS)("double-quotes %j", (s) => expect(valueOf(s)).toBe(`"${s}"`));
  it.each(PLAIN_NEAR_MISSES)("leaves %j plain", (s) => expect(valueOf(s)).toBe(s));
});

describe("what the encoder refuses, and why", () => {
  const meta = (value: string) => ({ customization: { meta: [{ key: 1, value }] } });
  const options = (o: Record<string, unknown>) => ({ overlay: { image: "i", name: "n", options: o } });
  it.each<[string, unknown, string]>([
    ["a control character", meta("a\u0001b"), '"a\\u0001b" contains a control character (U+0001)'],
    ["a byte-order mark", meta("a\ufeffb"), '"a\\ufeffb" contains a control character (U+FEFF)'],
    ["a noncharacter", meta("a\ufffeb"), '"a\ufffeb" contains a control character (U+FFFE)'],
    ["a character beyond U+FFFF", meta("a\u{1F600}"), '"a\u{1F600}" contains the character U+1F600, which yaml.v3 writes as an escape netbuild does not reproduce'],
    ["a carriage return", meta("a\rb"), "a string of 3 characters on 2 lines contains a control character (U+000D)"],
    ["a line separator", meta("a\u2028b"), "a string of 3 characters on 2 lines contains a line break other than \\n"],
    ["a multi-line value starting with a space", meta(" a\nb"), "a string of 4 characters on 2 lines: a multi-line value that starts with a space or a blank line"],
    ["a multi-line value starting with a blank line", meta("\na"), "a string of 2 characters on 2 lines: a multi-line value that starts with a space or a blank line"],
    ["a multi-line value ending in blank lines", meta("a\nb\n\n"), "a multi-line value that ends in blank lines: remove them"],
    ["a multi-line value with a trailing space on a line", meta("a \nb"), "a string of 4 characters on 2 lines: a multi-line value with trailing spaces on a line cannot be written as the Image Factory would"],
    ["a date and time", meta("2024-01-01T10:00:00Z"), '"2024-01-01T10:00:00Z" looks like a date and time: netbuild cannot tell how the Image Factory would spell it'],
    ["a date with more after it", meta("2024-01-01x"), '"2024-01-01x" looks like a date and time: netbuild cannot tell how the Image Factory would spell it'],
    ["a date after a date", meta("2024-2024-01-01"), '"2024-2024-01-01" looks like a date and time: netbuild cannot tell how the Image Factory would spell it'],
    ["a binary prefix without binary digits", meta("0b2"), '"0b2" looks like a date and time: netbuild cannot tell how the Image Factory would spell it'],
    ["a signed octal prefix without octal digits", meta("-0o9"), '"-0o9" looks like a date and time: netbuild cannot tell how the Image Factory would spell it'],
    ["the first character beyond U+FFFF", meta("a\u{10000}"), '"a\u{10000}" contains the character U+10000, which yaml.v3 writes as an escape netbuild does not reproduce'],
    ["a paragraph separator", meta("a\u2029b"), "a string of 3 characters on 2 lines contains a line break other than \\n"],
    ["a next-line character", meta("a\u0085b"), "a string of 3 characters on 2 lines contains a line break other than \\n"],
    ["a value that is not YAML's, in a list", options({ a: [1, undefined] }), "overlay.options.a[1]: unsupported value"],
    ["a number past 2^53", options({ a: 2 ** 60 }), "overlay.options.a: 1152921504606847000 is not a whole number; netbuild cannot be sure how the factory spells it (quote it to make it a string)"],
    ["a list directly in a list", options({ a: [[1]] }), "a list directly inside a list is not supported"],
    ["a key with digits other than 0-9", options({ "a\u0663": 1 }), 'overlay.options: the key "a\u0663" has digits other than 0-9; netbuild cannot be sure where the factory sorts it'],
    ["a value that is not YAML's", options({ a: undefined }), "overlay.options.a: unsupported value"],
  ])("%s", (_what, input, message) => {
    const r = canonicalSchematic(input as SchematicInput);
    expect(r.ok ? r.value.yaml : r.message).toBe(message);
  });
});

// --- against the real yaml.v3 ---------------------------------------------------------------

const GOPATH = "/usr/share/gocode";
const oracleHere = !missing({ commands: ["go"], files: [path.join(GOPATH, "src/gopkg.in/yaml.v3/yaml.go")] });

function oracle(schematics: unknown[]): string[] {
  const out = execFileSync("go", ["run", "main.go"], {
    cwd: path.join(import.meta.dirname, "../support/schematic-oracle"),
    input: schematics.map((s) => JSON.stringify(s)).join("\n") + "\n",
    env: { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "", GOCACHE: "/tmp/netbuild-go-cache" },
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return out.trim().split("\n").map((l) => JSON.parse(l) as string);
}

const TRICKY_STRINGS = [
  "plain", "true", "True", "false", "null", "Null", "~", "", " ", "yes", "No", "on", "OFF", "y", "n",
  "123", "-5", "+7", "0x1f", "0o17", "017", "08", "1_000", "1e3", "1.5", ".5", "5.", ".inf", "-.Inf", ".nan", "1:20", "190:20:30.15",
  "2024-01-01", "2024-1-2", "2024-13-01x", "2024-02-30", "2024-02-29", "2023-02-29", "2024-13-01", "9999-99-99", "2000-2-29", "1900-02-29", "a: b", "a:b", "a:", ":a", "? a", "?a", "- a", "-a", "--", "---", "--- a", "...x",
  "#c", "a #c", "a#c", "[a]", "a,b", "{a", "a}", "&a", "*a", "!a", "|a", ">a", "'a", "\"a", "%a", "@a", "`a", "a'b", "a\"b", "a\\b",
  " lead", "trail ", "in side", "tab\there", "café", "日本", "emoji 😀", "=", "console=ttyS0,115200", "-console", "net.ifnames=0",
  "line1\nline2", "line1\nline2\n", "a\n\nb\n", "x\n  indented\n", "ends space \nx", "a\tb\nc", "<<", "=x",
  "2024-12-31", "1-2", "7+7", "0b12", "10b1", "10b2", "1a2", "0x1g9", "_1", "_12", "2024-01-00", "2024-1-0", "2024-00-10", "12024-01-01", ".55", ".5e+1", ".5e10", ".5E-3",
  "a\nb ", "x\n ", "a\n b", "a\n\tb", "a\n", " \na", ": a", ":", "a\t\"b", "a\t\\b", "a  b", "a   b", "a b  c",
  ...QUOTED_SPELLINGS, ...PLAIN_NEAR_MISSES,
];

describe.skipIf(!oracleHere)("the canonical YAML, byte for byte against gopkg.in/yaml.v3", () => {
  it("encodes tricky strings as kernel args, meta values, extension-free options and overlay names exactly as yaml.v3 does (or refuses them)", () => {
    const cases: SchematicInput[] = [];
    for (const s of TRICKY_STRINGS) {
      cases.push({ customization: { extraKernelArgs: [s] } });
      cases.push({ customization: { meta: [{ key: 7, value: s }] } });
      cases.push({ overlay: { image: "x/y", name: "n", options: { [s || "k"]: s, nested: { list: [s, 1, true, null], map: { inner: s } } } } });
    }
    let compared = 0;
    const refused: string[] = [];
    const ours = cases.map((c) => canonicalSchematic(c));
    const theirs = oracle(cases);
    ours.forEach((r, i) => {
      if (!r.ok) {
        refused.push(`${JSON.stringify(cases[i])}: ${r.message}`);
        return;
      }
      expect(r.value.yaml, JSON.stringify(cases[i])).toBe(theirs[i]);
      compared++;
    });
    // Most of the table is encoded, not refused; refusals are for things netbuild says it cannot spell.
    expect(compared).toBeGreaterThan(cases.length * 0.9);
    // Dates, and strings near a date or a number, are written (yaml.v3's spelling is known), not refused.
    for (const v of ["2024-01-01", "2024-1-2", "2024-12-31", "2024-02-29", "2023-02-29", "2024-01-00", "12024-01-01", "10b2", "1-2", "_1", ".55"]) {
      expect(refused.filter((l) => l.includes(JSON.stringify(v))), v).toEqual([]);
      expect(TRICKY_STRINGS, v).toContain(v);
    }
    for (const line of refused) expect(line).toMatch(/date and time|ends in blank lines|starts with a space|trailing spaces|writes as an escape|control character/);
  });

  it("sorts overlay option keys as yaml.v3 does (natural order, letters first) and writes nested values", () => {
    const keys = ["b", "B", "a10", "a9", "a09", "a_1", "_x", "x1y", "x10", "x1", "1", "10", "9", "Z", "zz", "a.b", "a-b", "ä"];
    // Zeros after a digit (yaml.v3 counts the digits before them, keyList.Less), leading zeros, and digits against letters.
    const zeros = ["109", "1008", "a109", "a1008", "x05", "x005", "x5", "0", "00", "000", "01", "001", "010", "a0b", "a00b", "2a", "20", "2_", "a1b", "a1", "a", "9z", "09z", "900", "0900"];
    const cases: SchematicInput[] = [
      { overlay: { image: "siderolabs/sbc-raspberrypi", name: "rpi_generic", options: Object.fromEntries(keys.map((k, i) => [k, i])) } },
      { overlay: { image: "i", name: "n", options: Object.fromEntries(zeros.map((k, i) => [k, i])) } },
      { overlay: { image: "i", name: "n", options: Object.fromEntries([...zeros].reverse().map((k, i) => [k, i])) } },
      // Pairs alone, so that the two are compared with each other, both ways round.
      ...[["109", "1008"], ["x109", "x1008"], ["205", "2004"], ["05", "004"], ["a", "a1"], ["1", "10"], ["a.b", "a-b"], ["_x", ".x"], ["k119999999999999999", "k120000000000000000"]].flatMap(([a, b]) => [{ overlay: { image: "i", name: "n", options: { [a!]: 1, [b!]: 2 } } }, { overlay: { image: "i", name: "n", options: { [b!]: 1, [a!]: 2 } } }]),
      { overlay: { image: "i", name: "n", options: { configTxt: "gpu_mem=128\nkernel=u-boot.bin\narm_64bit=1\n", list: [{ a: 1, b: [] }, {}, "x", false], empty: {}, none: [], off: false } } },
      { overlay: { image: "", name: "" }, customization: { bootloader: "sd-boot", secureboot: { enrollKeys: "if-safe" }, diskImage: { sectorSize: 4096 }, meta: [{ key: 0, value: "" }, { key: 255, value: "x" }] } },
    ];
    const theirs = oracle(cases);
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c);
      expect(r.ok && r.value.yaml, JSON.stringify(c)).toBe(theirs[i]);
    });
  });

  it("omits zero values and empty overlays as yaml.v3's omitempty does, and writes an overlay's empty image or name", () => {
    const cases: unknown[] = [
      {},
      { customization: {} },
      { customization: { bootloader: "none" } },
      { customization: { bootloader: "grub", secureboot: { enrollKeys: "" }, diskImage: { sectorSize: 0 } } },
      { overlay: { image: "", name: "x" } },
      { overlay: { image: "x", name: "" } },
      { overlay: { image: "", name: "", options: { a: 1 } } },
      { overlay: { image: "", name: "" } },
      { overlay: { image: "x", name: "y", options: {} } },
    ];
    const theirs = oracle(cases);
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c as SchematicInput);
      expect(r.ok && r.value.yaml, JSON.stringify(c)).toBe(theirs[i]);
    });
  });

  /** A deterministic pseudo-random source (the same corpus every run). */
  function random(seed: number): (n: number) => number {
    return (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
  }

  /**
   * `count` strings of 1 to `maxPieces` random pieces, each as a meta value: every one netbuild
   * encodes is byte for byte yaml.v3's, and more than `atLeast` are encoded (not refused).
   */
  function agreesOnRandomStrings(pieces: string[], seed: number, count: number, maxPieces: number, atLeast: number): void {
    const rand = random(seed);
    const strings = Array.from({ length: count }, () => Array.from({ length: 1 + rand(maxPieces) }, () => pieces[rand(pieces.length)]).join(""));
    const cases: SchematicInput[] = strings.map((v) => ({ customization: { meta: [{ key: 1, value: v }] } }));
    const theirs = oracle(cases);
    let compared = 0;
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c);
      if (!r.ok) return;
      expect(r.value.yaml, JSON.stringify(strings[i])).toBe(theirs[i]);
      compared++;
    });
    expect(compared).toBeGreaterThan(atLeast);
  }

  it("agrees on 2,000 random strings built from YAML's special characters", () => {
    const alphabet = ["a", "b", "1", "0", " ", ":", "#", "-", "?", "'", '"', "\n", "\t", ",", "[", "{", "&", "*", "!", "|", ">", "%", "@", "`", ".", "=", "é", "~", "_", "+", "e", "x"];
    agreesOnRandomStrings(alphabet, 42, 2000, 8, 1500);
  });

  it("agrees on 3,000 random strings of number, date and indicator pieces in upper and lower case", () => {
    // Pieces that make yaml.v3 read a plain scalar as something else: bases (0x, 0b, 0o, 0), signs,
    // exponents, dates, base-60, booleans and nulls in every case, and the characters that need quoting.
    const pieces = ["0", "1", "7", "9", "0x", "0X", "0b", "0B", "0o", "0O", "1f", "AF", "e", "E", "+", "-", ".", "_", ":", " ", "\n", "\t", "#", "'", '"', "2024-", "01-", "31", "T", "Z", "y", "Y", "n", "N", "on", "ON", "Off", "true", "TRUE", "False", "null", "NULL", "~", "inf", "NaN", "a", "Q", "é", "?", "!", ",", "[", "{", "|", ">", "%", "@", "`", "&", "*"];
    agreesOnRandomStrings(pieces, 7, 3000, 5, 2000);
  });

  it("sorts 300 random sets of option keys (letters, digits, leading zeros) in yaml.v3's natural order", () => {
    const pieces = ["a", "b", "B", "z", "0", "00", "1", "01", "9", "10", "007", "x", "_", ".", "-", "Z"];
    const rand = random(11);
    const cases: SchematicInput[] = Array.from({ length: 300 }, () => {
      const keys = Array.from({ length: 2 + rand(6) }, () => Array.from({ length: 1 + rand(4) }, () => pieces[rand(pieces.length)]).join(""));
      return { overlay: { image: "i", name: "n", options: Object.fromEntries(keys.map((k, i) => [k, i])) } };
    });
    const theirs = oracle(cases);
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c);
      expect(r.ok && r.value.yaml, JSON.stringify(c)).toBe(theirs[i]);
    });
  });

  it("sorts option keys whose runs of digits overflow Go's int64 (yaml.v3 lets them wrap) as yaml.v3 does", () => {
    const rand = random(19);
    const digits = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 1 + rand(9) : rand(10))).join("");
    const cases: SchematicInput[] = [["k99999999999999999999", "k100000000000000000000"], ["k9223372036854775807", "k9223372036854775808"], ["k18446744073709551615", "k18446744073709551616"]].flatMap(([a, b]) => [
      { overlay: { image: "i", name: "n", options: { [a!]: 1, [b!]: 2 } } },
      { overlay: { image: "i", name: "n", options: { [b!]: 1, [a!]: 2 } } },
    ]);
    for (let n = 0; n < 200; n++) {
      const keys = Array.from({ length: 2 + rand(4) }, () => `${rand(2) === 0 ? "k" : ""}${rand(3) === 0 ? "0" : ""}${digits(15 + rand(12))}${rand(2) === 0 ? "x" : ""}`);
      cases.push({ overlay: { image: "i", name: "n", options: Object.fromEntries(keys.map((k, i) => [k, i])) } });
    }
    const theirs = oracle(cases);
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c);
      expect(r.ok && r.value.yaml, JSON.stringify(c)).toBe(theirs[i]);
    });
  });

  it("agrees on the characters at the edges of what it writes as they are, and an empty list inside a list", () => {
    const cases: SchematicInput[] = ["a\u00a0b", "\ue000", "\ufffd", "\ud7ff", "tab\tinside"].map((v) => ({ customization: { meta: [{ key: 1, value: v }] } }));
    cases.push({ overlay: { image: "i", name: "n", options: { a: [[]], b: [{}], c: [[], "x"] } } } as unknown as SchematicInput);
    const theirs = oracle(cases);
    cases.forEach((c, i) => {
      const r = canonicalSchematic(c);
      expect(r.ok ? r.value.yaml : r.message, JSON.stringify(c)).toBe(theirs[i]);
    });
  });
});
