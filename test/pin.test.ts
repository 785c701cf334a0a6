// `netbuild pin` edits the class file a user wrote: hashes are replaced where they stand or added
// next to their neighbours, and every other byte (comments, blank lines, styles) stays.
import { describe, expect, it } from "vitest";
import { withHashes } from "../src/commands/pin.ts";

const H = { kernel: "sha256-KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK=", initramfs: "sha256-IIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIIII=", cmdline: "sha256-CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=" };
const block = (indent: string) => `${indent}hashes:\n${indent}${indent}kernel: ${H.kernel}\n${indent}${indent}initramfs: ${H.initramfs}\n${indent}${indent}cmdline: ${H.cmdline}\n`;

describe("pin's edit of the class file", () => {
  it("adds hashes after the last entry of talos (a nested block), before what follows, with a trailing comment kept", () => {
    const text = "# top comment\nkind: talos\ntalos:\n  version: v1.12.2 # release\n  machine:\n    role: worker   # the role\n\n# before kernelParams\nkernelParams: [ console=ttyS0 ]\n";
    expect(withHashes(text, H)).toBe(text.replace("# the role\n", `# the role\n${block("  ")}`));
  });

  it("follows a file's 4-space indentation", () => {
    const text = "kind: talos\ntalos:\n    version: v1.12.2\n";
    expect(withHashes(text, H)).toBe(`${text}${block("    ")}`);
  });

  it("replaces existing values in place and adds only the missing one, quoted or not", () => {
    const text = `kind: talos\ntalos:\n  version: v1.12.2\n  hashes:\n    kernel: "sha256-old"   # pinned 2026-01\n    initramfs: sha256-old2\n  machine: { role: worker }\n`;
    expect(withHashes(text, H)).toBe(`kind: talos\ntalos:\n  version: v1.12.2\n  hashes:\n    kernel: ${H.kernel}   # pinned 2026-01\n    initramfs: ${H.initramfs}\n    cmdline: ${H.cmdline}\n  machine: { role: worker }\n`);
  });

  it("copes with a file without a final line break", () => {
    expect(withHashes("kind: talos\ntalos:\n  version: v1.12.2", H)).toBe(`kind: talos\ntalos:\n  version: v1.12.2\n${block("  ")}`);
  });

  it("rewrites a flow-style talos mapping through the document API, keeping comments", () => {
    const out = withHashes("# keep me\nkind: talos\ntalos: { version: v1.12.2 } # and me\n", H);
    expect(out).toContain("# keep me");
    expect(out).toContain("# and me");
    expect(out).toContain(H.cmdline);
  });

  it("keeps CRLF line endings", () => {
    const text = "kind: talos\r\ntalos:\r\n  version: v1.12.2\r\n";
    expect(withHashes(text, H)).toBe(`${text}${block("  ").replaceAll("\n", "\r\n")}`);
  });

  it("refuses, changing nothing, where inserting would change another value (a kept-newline block last in talos)", () => {
    const text = "kind: talos\ntalos:\n  version: v1.12.2\n  schematic:\n    overlay:\n      image: i\n      name: n\n      options:\n        configTxt: |+\n          gpu_mem=128\n\n";
    expect(() => withHashes(text, H)).toThrow(/could not add the hashes to this class file without changing something else/);
  });
});
