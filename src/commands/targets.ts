// What deploy, rollback, gc and verify share: picking targets (site file, --target, --to) and
// opening one (a local folder or SFTP with the user's SSH setup).
import path from "node:path";
import { UserError, type ErrorCode, type TargetOutcome } from "../errors.ts";
import type { Inventory } from "../core/inventory.ts";
import { describeTarget, parseTarget, type Target } from "../core/target.ts";
import { localTargetFs, type TargetFs } from "../adapters/target-fs.ts";
import type { Reporter } from "../ui/reporter.ts";
import type { Context } from "./context.ts";

export interface TargetOptions {
  /** Target names from the site file; empty = every target there. */
  targets: string[];
  /** An ad-hoc target URL instead of the site's. */
  to?: string | undefined;
  /** `ssh -F`: an ssh_config instead of ~/.ssh/config. */
  sshConfig?: string | undefined;
  /** Record unknown host keys (like StrictHostKeyChecking=accept-new). */
  acceptNew?: boolean | undefined;
}

export function selectTargets(inv: Inventory, options: TargetOptions): Target[] {
  if (options.to !== undefined) {
    const parsed = parseTarget(options.to);
    if (!parsed.ok) throw new UserError("USAGE", `--to ${options.to}: ${parsed.message}`, { hint: parsed.hint });
    return [{ name: "to", location: parsed.value, keep: inv.site.keep, spec: options.to }];
  }
  const all = inv.site.targets;
  if (all.length === 0) {
    throw new UserError("USAGE", "there is nowhere to deploy to: the site file names no targets", {
      hint: `add to ${inv.site.file ?? "netbuild.yaml"}:  targets: { boot: "sftp://admin@boot.example.org/srv/http/netboot" }  — or pass --to URL`,
    });
  }
  if (options.targets.length === 0) return all;
  const known = new Map(all.map((t) => [t.name, t]));
  const unknown = options.targets.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UserError("USAGE", `unknown target${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => JSON.stringify(n)).join(", ")}`, { hint: `the site file names: ${all.map((t) => t.name).join(", ")}` });
  }
  return [...new Set(options.targets)].map((n) => known.get(n)!);
}

/** `onSessionRequested`: see SshOptions (never called for a local folder). */
export async function openTarget(target: Target, root: string, options: TargetOptions, ctx: Context, onSessionRequested?: () => void, signal?: AbortSignal): Promise<TargetFs> {
  const loc = target.location;
  if (loc.kind === "local") return localTargetFs(path.resolve(root, loc.path));
  const { sftpTargetFs } = await import("../adapters/sftp.ts");
  const { passphrasePrompt } = await import("../adapters/terminal.ts");
  const interactive = Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY) && ctx.env["CI"] !== "true";
  return sftpTargetFs(loc, {
    configFile: options.sshConfig,
    acceptNew: options.acceptNew,
    env: ctx.env,
    prompt: interactive ? passphrasePrompt(process.stdin, process.stderr, () => ctx.reporter.hold()) : undefined,
    onInfo: (m) => ctx.reporter.info(`[${target.name}] ${m}`),
    onSessionRequested,
    signal,
  });
}

export function targetLabel(target: Target): string {
  return `${target.name} (${describeTarget(target.location)})`;
}

/**
 * Runs `fn` on every target at once; every target's outcome is reported (a failure on one does not
 * stop the others). When one of several fails, the error carries a tally: each target's outcome
 * (`summarize` says what a finished one did, a deploy's wipes included), in the message's detail
 * and, for --json, as data.
 */
export async function forEachTarget<T>(targets: Target[], fn: (t: Target) => Promise<T>, reporter: Reporter, summarize: (value: T) => string[] = () => ["done"], failure: ErrorCode = "DEPLOY_FAILED"): Promise<T[]> {
  const settled = await Promise.allSettled(targets.map(fn));
  const failed = settled.flatMap((s, i) => (s.status === "rejected" ? [{ t: targets[i]!, e: s.reason as unknown }] : []));
  if (failed.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  if (failed.length === 1 && targets.length === 1) throw failed[0]!.e;
  // An internal error stays one (with its stack), whatever the other targets did.
  const bug = failed.find((f) => !(f.e instanceof UserError));
  if (bug) {
    // The others' outcomes still matter (a wipe armed on one of them): said before the bug's stack.
    settled.forEach((s, i) => {
      const name = targets[i]!.name;
      if (s.status === "fulfilled") reporter.warn(`[${name}] ${summarize(s.value).join("\n  ")}`);
      else if (s.reason !== bug.e) reporter.warn(`[${name}] failed: ${(s.reason as Error).message}`);
    });
    throw bug.e;
  }
  const outcomes: TargetOutcome[] = settled.map((s, i) => {
    const name = targets[i]!.name;
    if (s.status === "fulfilled") return { name, ok: true, result: s.value };
    const e = s.reason as UserError;
    return { name, ok: false, error: { code: e.code, message: e.message, hint: e.hint } };
  });
  const tally = settled.flatMap((s, i) => {
    const name = targets[i]!.name;
    if (s.status === "fulfilled") return summarize(s.value).map((l, j) => (j === 0 ? `${name}: ${l}` : `  ${l}`));
    const e = s.reason as UserError;
    return [`${name}: FAILED: ${e.message}`, ...(e.detail ? [e.detail.replace(/^/gm, "  ")] : []), ...(e.hint ? [`  hint: ${e.hint}`] : [])];
  });
  const names = failed.map((f) => f.t.name).join(", ");
  // Every target refused the same kind of input (a wipe not confirmed, a conflict): exit 2, as for one.
  const refusals = failed.filter((f) => (f.e as UserError).exitCode === 2);
  if (refusals.length === failed.length && failed.length === targets.length) {
    throw new UserError((refusals[0]!.e as UserError).code, `all ${targets.length} targets refused: ${names}; nothing was changed on any`, { detail: tally.join("\n"), targets: outcomes });
  }
  const finished = targets.length - failed.length;
  const what = finished === 0 ? `all ${targets.length} targets failed: ${names}` : `${failed.length} of ${targets.length} targets failed: ${names}; the other${finished === 1 ? "" : "s"} finished`;
  throw new UserError(failure, what, { detail: tally.join("\n"), targets: outcomes, hint: "each target's outcome is above; run again for the ones that failed (with --target NAME)" });
}

/** forEachTarget with each target opened first and closed after, whatever happened. */
export function withEachTarget<T>(targets: Target[], root: string, options: TargetOptions, ctx: Context, fn: (t: Target, fs: TargetFs) => Promise<T>, summarize?: (value: T) => string[]): Promise<T[]> {
  return forEachTarget(
    targets,
    async (t) => {
      const fs = await openTarget(t, root, options, ctx);
      try {
        return await fn(t, fs);
      } finally {
        await fs.close();
      }
    },
    ctx.reporter,
    summarize,
    "TARGETS_FAILED",
  );
}
