// Tests use real tools. A missing one skips its tests with a plain message on a developer's
// machine, and fails them in CI (CI=true), where .ci/run must have installed it.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";

export const inCI = process.env["CI"] === "true";

export function hasCommand(name: string): boolean {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The reason a test cannot run here, or undefined when everything it needs is present. */
export function missing(needs: { commands?: string[]; files?: string[] }): string | undefined {
  const absent = [...(needs.commands ?? []).filter((c) => !hasCommand(c)), ...(needs.files ?? []).filter((f) => !existsSync(f))];
  if (absent.length === 0) return undefined;
  const reason = `missing: ${absent.join(", ")}`;
  if (inCI) throw new Error(`${reason} (CI must install it: see .ci/run)`);
  console.warn(`NOT RUN — ${reason}`);
  return reason;
}

/**
 * A test that cannot run here for want of something other than a command (rights to mount a tmpfs,
 * `chattr +i`, root): as for a missing tool, skipped with a plain message on a developer's machine,
 * and a failure in CI. `what` names what is missing.
 */
export function cannotRun(t: { skip(note?: string): void }, what: string): void {
  if (inCI) throw new Error(`missing: ${what} (CI must provide it: see .ci/run)`);
  console.warn(`NOT RUN — ${what}`);
  t.skip(`NOT RUN — ${what}`);
}

/**
 * Runs `fn` with a 256 KiB tmpfs mounted on `dir` (a folder that exists), then unmounts it: a
 * small file system is the only honest full disk. Without the rights to mount one, cannotRun.
 */
export async function onSmallDisk(t: { skip(note?: string): void }, dir: string, fn: () => Promise<void>): Promise<void> {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    return cannotRun(t, `a full disk: a small tmpfs (mount -t tmpfs failed: ${(e as Error).message})`);
  }
  try {
    await fn();
  } finally {
    execFileSync("umount", [dir]);
  }
}
