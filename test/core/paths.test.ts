// Guards core/paths.ts, the pure half of netbuild's confinement: which relative paths netbuild
// may write, rename or remove under a root (and read back from a record), the folders it makes on
// the way, and the temporary names it writes to and later cleans up. A path let through here could
// write or delete outside out/ or a target folder; a name wrongly taken for a leftover is a user's
// file deleted.
import { describe, expect, it } from "vitest";
import { foldersOf, isLeftoverName, relPathProblem, tempName, treePathProblem } from "../../src/core/paths.ts";

describe("relPathProblem: paths that may be used under a root", () => {
  it.each([
    ["boot.ipxe"],
    ["by-host/aleph/ipxe"],
    ["a"],
    ["a/b/c/d"],
    [".hidden"],
    ["a/.b"],
    ["..."],
    ["a..b"],
    ["a/..b/c"],
    ["b../c"],
    ["with space"],
    ["ä/ü/ß.txt"],
    ["50‰-‐€"],
    ["a~b"],
  ])("accepts %j", (rel) => {
    expect(relPathProblem(rel)).toBeUndefined();
  });

  it("refuses the empty path (it would name the root itself)", () => {
    expect(relPathProblem("")).toBe("is empty");
  });

  it.each([["/"], ["/etc/passwd"], ["/by-host/aleph/ipxe"], ["//server/share"]])("refuses the absolute path %j", (rel) => {
    expect(relPathProblem(rel)).toBe("is absolute");
  });

  it.each([["\x00"], ["a\x00b"], ["a\x01b"], ["a\tb"], ["a\nb"], ["a\rb"], ["a\x1bb"], ["a\x1fb"], ["a\x7fb"], ["trailing\n"], ["\x1fleading"]])(
    "refuses %j, which has a control character",
    (rel) => {
      expect(relPathProblem(rel)).toBe("has a control character");
    },
  );

  it.each([["a\\b"], ["..\\..\\etc"], ["\\"], ["by-host\\aleph"]])("refuses %j, which has a backslash", (rel) => {
    expect(relPathProblem(rel)).toBe("has a backslash");
  });

  it.each([
    ["a\u200bb"],
    ["a\u200cb"],
    ["a\u200db"],
    ["a\u200eb"],
    ["a\u200fb"],
    ["a\u202ab"],
    ["a\u202cb"],
    ["a\u202eb"],
    ["a\u2066b"],
    ["a\u2068b"],
    ["a\u2069b"],
    ["\ufeffboot.ipxe"],
  ])("refuses %j, which would print as another path", (rel) => {
    expect(relPathProblem(rel)).toBe("has an invisible or direction-changing character");
  });

  it.each([[".."], ["../etc"], ["a/.."], ["a/../b"], ["a/b/../../.."], ["by-host/../../x"]])("refuses %j, which has a `..` part", (rel) => {
    expect(relPathProblem(rel)).toBe("has a `..` part (it would leave the folder)");
  });

  it.each([["."], ["./a"], ["a/."], ["a/./b"], ["a//b"], ["a/"], ["by-host/aleph/"], ["a/b//"]])("refuses %j, which has an empty or `.` part", (rel) => {
    expect(relPathProblem(rel)).toBe("has an empty or `.` part");
  });

  it("names the first problem in a fixed order: absolute before control, backslash and `..`", () => {
    expect(relPathProblem("/a\x00/../b\\c")).toBe("is absolute");
    expect(relPathProblem("a\x00/../b\\c\u200b")).toBe("has a control character");
    expect(relPathProblem("a/../b\\c\u200b")).toBe("has a backslash");
    expect(relPathProblem("a/../b\u200b")).toBe("has an invisible or direction-changing character");
    expect(relPathProblem("./a/..")).toBe("has a `..` part (it would leave the folder)");
  });
});

describe("treePathProblem: paths a record may name in the served tree", () => {
  it.each([["boot.ipxe"], ["by-mac/52-54-00-12-34-56"], ["by-mac/52-54-00-12-34-56/ipxe"], ["by-host/aleph/ipxe"], ["by-host/aleph/talos.yaml"], ["by-class/demo/ipxe"], ["by-class/demo/0123abcd/kernel"]])(
    "accepts %j",
    (rel) => {
      expect(treePathProblem(rel)).toBeUndefined();
    },
  );

  it.each([["manifest.json"], ["deployed.json"], ["by-mac"], ["by-host"], ["by-class"], ["boot.ipxe/x"], ["by-other/x"], ["By-Mac/x"], ["x/by-mac/y"], ["netbuild.yaml"]])(
    "refuses %j, which is not netbuild's",
    (rel) => {
      expect(treePathProblem(rel)).toBe("is not a path of the tree (boot.ipxe, ipxe/, by-mac/, by-host/ or by-class/)");
    },
  );

  it.each([["ipxe/undionly.kpxe"], ["ipxe/snponly.efi"], ["ipxe/ipxe.efi"]])("accepts the iPXE binary %j", (rel) => {
    expect(treePathProblem(rel)).toBeUndefined();
  });

  it.each([["ipxe"], ["ipxe/ipxe.lkrn"], ["ipxe/x/undionly.kpxe"], ["ipxe/undionly.kpxe/x"], ["ipxe/.undionly.kpxe.netbuild-tmp"], ["ipxe/UNDIONLY.KPXE"]])("refuses %j, which is not one of the iPXE binaries netbuild copies", (rel) => {
    expect(treePathProblem(rel)).toBe("is not one of the tree's iPXE binaries (ipxe/undionly.kpxe, ipxe/snponly.efi, ipxe/ipxe.efi)");
  });

  it("refuses what relPathProblem refuses, with its reason, even under a tree folder", () => {
    expect(treePathProblem("")).toBe("is empty");
    expect(treePathProblem("/boot.ipxe")).toBe("is absolute");
    expect(treePathProblem("by-host/../../etc/passwd")).toBe("has a `..` part (it would leave the folder)");
    expect(treePathProblem("by-mac/")).toBe("has an empty or `.` part");
    expect(treePathProblem("by-host/a\\b")).toBe("has a backslash");
    expect(treePathProblem("by-host/a\nb")).toBe("has a control character");
  });
});

describe("foldersOf: the folders made before a write", () => {
  it("lists every folder on the way, outermost first", () => {
    expect(foldersOf("a/b/c")).toEqual(["a", "a/b"]);
    expect(foldersOf("by-class/demo/0123abcd/kernel")).toEqual(["by-class", "by-class/demo", "by-class/demo/0123abcd"]);
  });

  it("lists none for a file at the root", () => {
    expect(foldersOf("boot.ipxe")).toEqual([]);
  });
});

describe("tempName: where a write goes before its rename", () => {
  it("is a hidden, fixed name beside the file, in the same folder", () => {
    expect(tempName("by-host/aleph/ipxe")).toBe("by-host/aleph/.ipxe.netbuild-tmp");
    expect(tempName("a/b")).toBe("a/.b.netbuild-tmp");
  });

  it("is at the root for a file at the root", () => {
    expect(tempName("boot.ipxe")).toBe(".boot.ipxe.netbuild-tmp");
  });

  it("is what isLeftoverName recognises, so an interrupted write is cleaned up", () => {
    expect(isLeftoverName(tempName("boot.ipxe"))).toBe(true);
    expect(isLeftoverName(tempName("a/ipxe").split("/").at(-1)!)).toBe(true);
  });
});

describe("isLeftoverName: names netbuild may remove as its own leftovers", () => {
  it.each([[".ipxe.netbuild-tmp"], [".boot.ipxe.netbuild-tmp"], ["...netbuild-tmp"], [".x.tmp-0123abcd"], [".kernel.tmp-deadbeef"], [".a.b.tmp-00000000"]])("takes %j", (name) => {
    expect(isLeftoverName(name)).toBe(true);
  });

  it.each([
    ["ipxe"],
    ["boot.ipxe"],
    [".netbuild-tmp"],
    ["..netbuild-tmp"],
    ["x.netbuild-tmp"],
    ["a.x.netbuild-tmp"],
    [".x.netbuild-tmp.bak"],
    [".x.netbuild-tmpx"],
    [".x-netbuild-tmp"],
    [".tmp-0123abcd"],
    ["x.tmp-0123abcd"],
    ["a.x.tmp-0123abcd"],
    [".x.tmp-0123abc"],
    [".x.tmp-0123abcde"],
    [".x.tmp-0123ABCD"],
    [".x.tmp-0123abcg"],
    [".x-tmp-0123abcd"],
    [".x.tmp-0123abcd.bak"],
    [".x.tmp0123abcd"],
  ])("leaves %j alone (not netbuild's)", (name) => {
    expect(isLeftoverName(name)).toBe(false);
  });
});
