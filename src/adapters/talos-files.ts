// Reads what a Talos machine config is rendered from: the site's base configs (secrets: read only
// here, never cached, never copied anywhere but the rendered tree) and the patch files classes
// and hosts name. Also tells whether a base config is committed to git in clear text.
import { realpathSync } from "node:fs";
import type { FileProblem } from "../core/inventory.ts";
import type { ConfigFile } from "../core/talos-config.ts";
import { readInsideRoot } from "./inventory-files.ts";
import { capture } from "./run.ts";

export type ReadConfig = { ok: true; file: ConfigFile } | { ok: false; problem: FileProblem };

/** A regular file inside the root (symlinks resolved, and refused if they lead out of it), read as inventory files are. */
export function readConfigFile(root: string, rel: string): ReadConfig {
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
  } catch {
    return { ok: false, problem: { kind: "missing" } };
  }
  const r = readInsideRoot(root, realRoot, rel);
  return "text" in r ? { ok: true, file: { file: rel, text: r.text } } : { ok: false, problem: r.problem };
}

/**
 * Whether git tracks this file with no filter (git-crypt and similar set one): then the secrets
 * in it are in the repository in clear. False when the root is not a git work tree.
 */
export async function committedInClear(root: string, rel: string): Promise<boolean> {
  const opts = { failure: "COMMAND_FAILED" as const, what: "git" };
  try {
    await capture({ file: "git", args: ["-C", root, "ls-files", "--error-unmatch", "--", rel] }, opts);
  } catch {
    return false;
  }
  try {
    const attr = await capture({ file: "git", args: ["-C", root, "check-attr", "filter", "--", rel] }, opts);
    return /: filter: (unspecified|unset)\s*$/.test(attr.stdout);
  } catch {
    return true;
  }
}
