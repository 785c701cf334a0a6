// The records' schemas (src/core/record-schemas.ts) said directly: netbuild's own rules (tree paths,
// what is written where) are custom issues at the entry they concern, with their message.
import { describe, expect, it } from "vitest";
import { DeployedManifestSchema, TreeManifestSchema } from "../../src/core/record-schemas.ts";

const SHA = "ab".repeat(32);

describe("schema messages: the records' own rules as issues", () => {
  it("out/'s manifest: a path outside the tree, a kind at the wrong path", () => {
    const r = TreeManifestSchema.safeParse({
      format: 1,
      classes: {},
      entries: { "../x": { kind: "file", sha256: SHA }, "by-mac/m/x/y": { kind: "symlink", target: "../by-host/h" } },
      pending: ["boot.ipxe", "by-other/x"],
    });
    expect(r.success ? [] : r.error.issues.map((i) => ({ code: i.code, path: i.path, message: i.message }))).toEqual([
      { code: "custom", path: ["entries", "../x"], message: "the path has a `..` part (it would leave the folder)" },
      { code: "custom", path: ["entries", "by-mac/m/x/y"], message: "netbuild never writes a link there" },
      { code: "custom", path: ["pending", 1], message: "the path is not a path of the tree (boot.ipxe, ipxe/, by-mac/, by-host/ or by-class/)" },
    ]);
  });

  it("a target's record: the same rules", () => {
    const r = DeployedManifestSchema.safeParse({
      format: 2,
      classes: {},
      entries: { "/x": { kind: "file", sha256: SHA }, "boot.ipxe": { kind: "artifact", size: 1, sha256: SHA } },
      pending: ["by-host/h/./x"],
    });
    expect(r.success ? [] : r.error.issues.map((i) => ({ code: i.code, path: i.path, message: i.message }))).toEqual([
      { code: "custom", path: ["entries", "/x"], message: "the path is absolute" },
      { code: "custom", path: ["entries", "boot.ipxe"], message: "netbuild never writes an artifact there" },
      { code: "custom", path: ["pending", 0], message: "the path has an empty or `.` part" },
    ]);
  });
});
