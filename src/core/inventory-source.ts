// What the inventory loader reads, given by an adapter (so the loader does no I/O): the text of
// each file, or why a file could not be read, and a probe for the files classes and hosts name.
import path from "node:path";
import type { Issue } from "../errors.ts";
import { quoted } from "./excerpt.ts";
import type { Memo } from "./inventory-memo.ts";

export interface InventoryFile {
  /** Relative to the inventory root, with `/` separators. */
  path: string;
  text: string;
  /** The data of this exact text, from an earlier clean parse (a cache): positions are then worked out only if a message needs them. */
  known?: { data: unknown } | undefined;
  /** Why the file could not be read (`text` is then empty): reported as an error naming it. */
  problem?: FileProblem | undefined;
}

/**
 * The largest inventory file netbuild reads: 16 MiB. A 10,000-host file as the benchmark writes it
 * is about 1.3 MiB, so this leaves over 1.6 KiB per host for comments, descriptions and Talos
 * settings. Without a limit a symlink to /dev/zero is read until memory runs out. How much the
 * text may hold once parsed is limited apart (yaml-doc.ts: MAX_VALUES, MAX_NESTING).
 */
export const MAX_FILE_BYTES = 16 * 2 ** 20;

/** What kept a file from being read, as an adapter found it out (this module words the message). */
export type FileProblem =
  | { kind: "missing" }
  | { kind: "dangling" }
  | { kind: "loop" }
  | { kind: "outside" }
  | { kind: "folder" }
  | { kind: "special"; what: "FIFO (named pipe)" | "socket" | "character device" | "block device" | "special file" }
  /** `bytes` undefined: the file grew past the limit while it was read. */
  | { kind: "too-large"; bytes: number | undefined }
  | { kind: "denied" }
  | { kind: "not-a-folder" }
  | { kind: "io"; code: string };

/** `<file> <predicate>`: the predicate for a problem, with a hint. */
export function fileProblemMessage(p: FileProblem): { message: string; hint: string } {
  switch (p.kind) {
    case "missing":
      return { message: "does not exist", hint: "check the path" };
    case "dangling":
      return { message: "is a symlink to a file that does not exist", hint: "fix or remove the symlink" };
    case "loop":
      return { message: "is a symlink loop (it leads back to itself)", hint: "fix or remove the symlink" };
    case "outside":
      return { message: "resolves (through a symlink) outside the inventory root", hint: "netbuild reads only files inside the root: copy the file in instead of linking to it" };
    case "folder":
      return { message: "is a folder, not a file", hint: "rename or move the folder" };
    case "special":
      return { message: `is a ${p.what}, not a regular file`, hint: "inventory files must be regular files (or symlinks to regular files inside the root)" };
    case "too-large":
      return {
        message: `is over the ${MAX_FILE_BYTES / 2 ** 20} MiB limit for inventory files${p.bytes === undefined ? "" : ` (${(p.bytes / 2 ** 20).toFixed(1)} MiB)`}`,
        hint: "split the hosts into several files under hosts/ (10,000 hosts take about 1.3 MiB); is this file meant to be in the inventory?",
      };
    case "denied":
      return { message: "cannot be read: permission denied", hint: "make it readable by the user running netbuild" };
    case "not-a-folder":
      return { message: "is not a folder", hint: "classes/ and hosts/ are folders of YAML files" };
    case "io":
      return { message: `cannot be read (${p.code})`, hint: "check the file and the disk it is on" };
  }
}

export function fileIssue(file: string, field: string, problem: FileProblem): Issue {
  const { message, hint } = fileProblemMessage(problem);
  return { severity: "error", where: { file, field }, message: `${quoted(path.posix.basename(file))} ${message}`, hint };
}

/** Told the data of each file parsed cleanly and not already known (to fill a cache). */
export type OnParsed = (file: InventoryFile, data: unknown) => void;

/**
 * What a referenced file is: a regular file, a folder, `special` (a FIFO, socket or device, which
 * Nix would read forever or not at all), or `outside` when it (or a symlink on the way) leaves the root.
 */
export type Probe = (relPath: string) => "file" | "dir" | "special" | "missing" | "outside";

export interface InventorySource {
  site: InventoryFile | undefined;
  classes: InventoryFile[];
  hosts: InventoryFile[];
  /** Folders (`classes`, `hosts` or one below hosts/) that could not be listed. */
  folders?: { path: string; problem: FileProblem }[] | undefined;
  probe: Probe;
  onParsed?: OnParsed | undefined;
  /** What earlier runs read and checked (a cache an adapter keeps): hosts whose text did not change are not read or checked again. */
  earlier?: Memo | undefined;
}
