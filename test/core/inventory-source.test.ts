// What a user reads when an inventory file cannot be read: every kind of problem an adapter can
// find, worded once here (the adapters' own tests make each happen on a real file system).
import { describe, expect, it } from "vitest";
import { fileIssue, fileProblemMessage, MAX_FILE_BYTES, type FileProblem } from "../../src/core/inventory-source.ts";

const SYMLINK_HINT = "fix or remove the symlink";

describe("fileProblemMessage: each problem, said with what to do", () => {
  const cases: [FileProblem, string, string][] = [
    [{ kind: "missing" }, "does not exist", "check the path"],
    [{ kind: "dangling" }, "is a symlink to a file that does not exist", SYMLINK_HINT],
    [{ kind: "loop" }, "is a symlink loop (it leads back to itself)", SYMLINK_HINT],
    [{ kind: "outside" }, "resolves (through a symlink) outside the inventory root", "netbuild reads only files inside the root: copy the file in instead of linking to it"],
    [{ kind: "folder" }, "is a folder, not a file", "rename or move the folder"],
    [{ kind: "special", what: "FIFO (named pipe)" }, "is a FIFO (named pipe), not a regular file", "inventory files must be regular files (or symlinks to regular files inside the root)"],
    [{ kind: "special", what: "block device" }, "is a block device, not a regular file", "inventory files must be regular files (or symlinks to regular files inside the root)"],
    [{ kind: "too-large", bytes: 20 * 2 ** 20 + 2 ** 19 }, "is over the 16 MiB limit for inventory files (20.5 MiB)", "split the hosts into several files under hosts/ (10,000 hosts take about 1.3 MiB); is this file meant to be in the inventory?"],
    // Grew past the limit while it was read: its size is not known.
    [{ kind: "too-large", bytes: undefined }, "is over the 16 MiB limit for inventory files", "split the hosts into several files under hosts/ (10,000 hosts take about 1.3 MiB); is this file meant to be in the inventory?"],
    [{ kind: "denied" }, "cannot be read: permission denied", "make it readable by the user running netbuild"],
    [{ kind: "not-a-folder" }, "is not a folder", "classes/ and hosts/ are folders of YAML files"],
    [{ kind: "io", code: "EIO" }, "cannot be read (EIO)", "check the file and the disk it is on"],
  ];
  it.each(cases)("%j: %s", (problem, message, hint) => {
    expect(fileProblemMessage(problem)).toEqual({ message, hint });
  });

  it("the limit is 16 MiB", () => {
    expect(MAX_FILE_BYTES).toBe(16 * 1024 * 1024);
  });
});

describe("fileIssue: an error at the file, naming it by its own name", () => {
  it("quotes the file's base name and keeps where it is (file and field) for the report", () => {
    expect(fileIssue("hosts/rack/a1.yaml", "hosts.a1", { kind: "dangling" })).toEqual({
      severity: "error",
      where: { file: "hosts/rack/a1.yaml", field: "hosts.a1" },
      message: '"a1.yaml" is a symlink to a file that does not exist',
      hint: SYMLINK_HINT,
    });
  });
});
