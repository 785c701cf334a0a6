// Who is deploying, and from what: user@machine and the inventory's git commit, recorded on the
// target with each new generation and each change (`netbuild status` shows them). Never a reason to
// fail: outside git, or without git, there is no commit.
import os from "node:os";
import type { Origin } from "../core/deploy.ts";
import { UserError } from "../errors.ts";
import { capture } from "./run.ts";

/** user@machine, in the spelling a record accepts (anything else becomes `?`). */
function whoAmI(env: NodeJS.ProcessEnv): string {
  let user = env["USER"] ?? "";
  try {
    user = os.userInfo().username || user;
  } catch {
    // no passwd entry (a container): $USER, or nothing
  }
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "?").slice(0, 63) || "?";
  return `${clean(user)}@${clean(os.hostname().split(".")[0] ?? "")}`;
}

/**
 * The commit the inventory is at, `-dirty` when any file under the root differs from it (edited,
 * added and not committed, or removed; ignored files such as out/ do not count); undefined outside
 * git; `unknown` when git cannot say (not installed, a repository owned by another user). Reads
 * only: no index refresh, no lock taken in the user's repository.
 */
async function commitOf(root: string): Promise<string | undefined> {
  const opts = { failure: "COMMAND_FAILED" as const, what: "git", notFound: "COMMAND_NOT_FOUND" as const };
  const git = (...args: string[]) => capture({ file: "git", args: ["--no-optional-locks", "-C", root, ...args] }, opts);
  let head: string;
  try {
    head = (await git("rev-parse", "--verify", "-q", "HEAD")).stdout.trim();
  } catch (e) {
    // No git, outside any repository, or a repository with no commit yet (git says nothing): nothing
    // to record. Anything else (a repository owned by another user, say) is a commit git would not name.
    if (!(e instanceof UserError) || e.code === "COMMAND_NOT_FOUND") return undefined;
    const said = (e.detail ?? "").split("\n").slice(1).join("\n").trim();
    return said === "" || /not a git repository/i.test(said) ? undefined : "unknown";
  }
  if (!/^[0-9a-f]{40}$/.test(head)) return "unknown";
  try {
    // default.nix at the root is netbuild's own (generate writes one where there is none), not an input.
    const dirty = (await git("status", "--porcelain", "--", ".", ":(exclude)default.nix")).stdout.trim() !== "";
    return `${head.slice(0, 12)}${dirty ? "-dirty" : ""}`;
  } catch {
    return "unknown";
  }
}

export async function deployOrigin(root: string, env: NodeJS.ProcessEnv, now = new Date()): Promise<Origin> {
  const commit = await commitOf(root);
  return { at: now.toISOString().replace(/\.\d{3}Z$/, "Z"), by: whoAmI(env), ...(commit ? { commit } : {}) };
}
