// Who is deploying, and from what: user@machine and the inventory's git commit, recorded on the
// target with each new generation and each change (`netbuild status` shows them). Never a reason to
// fail: outside git, or without git, there is no commit.
import os from "node:os";
import type { Origin } from "../core/deploy.ts";
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

async function commitOf(root: string): Promise<string | undefined> {
  const opts = { failure: "COMMAND_FAILED" as const, what: "git" };
  try {
    const head = (await capture({ file: "git", args: ["-C", root, "rev-parse", "--verify", "-q", "HEAD"] }, opts)).stdout.trim();
    if (!/^[0-9a-f]{40}$/.test(head)) return undefined;
    // Tracked files changed (the inventory edited and not committed); untracked ones (out/) do not count.
    const dirty = (await capture({ file: "git", args: ["-C", root, "status", "--porcelain", "--untracked-files=no"] }, opts)).stdout.trim() !== "";
    return `${head.slice(0, 12)}${dirty ? "-dirty" : ""}`;
  } catch {
    return undefined;
  }
}

export async function deployOrigin(root: string, env: NodeJS.ProcessEnv, now = new Date()): Promise<Origin> {
  const commit = await commitOf(root);
  return { at: now.toISOString().replace(/\.\d{3}Z$/, "Z"), by: whoAmI(env), ...(commit ? { commit } : {}) };
}
