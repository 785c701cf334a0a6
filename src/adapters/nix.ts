// Nix, through its command-line tools. Commands are built as data (unit-tested) and run by run.ts.
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { UserError, type ErrorCode } from "../errors.ts";
import { paramKey, parseKernelParam, type ClassName, type KernelParam } from "../core/names.ts";
import type { ClassBuild } from "../core/tree.ts";
import { run, showCommand, type Command, type RunResult } from "./run.ts";

export interface NixOptions {
  /** The generated folder (<root>/.netbuild/nix). */
  generated: string;
  /** A nixpkgs path for NixOS classes; otherwise the generated code uses npins. */
  nixpkgs: string | undefined;
}

function nixpkgsArgs(nixpkgs: string | undefined): string[] {
  return nixpkgs ? ["--argstr", "nixpkgs", nixpkgs] : [];
}

/**
 * `-A`'s attribute path to a class's build. `-A` splits on dots, so a class named `a.b` is quoted
 * (`"a.b".netbuild`, as Nix 2.8 and later read it); class names hold no quote, backslash or `$`.
 */
export function classAttrPath(name: ClassName): string {
  return name.includes(".") ? `"${name}".netbuild` : `${name}.netbuild`;
}

export function nixBuildCommand(opts: NixOptions, classes: readonly ClassName[]): Command {
  return {
    file: "nix-build",
    args: [opts.generated, ...classes.flatMap((c) => ["-A", classAttrPath(c)]), "--no-out-link", ...nixpkgsArgs(opts.nixpkgs)],
  };
}

export function gcRootCommand(root: string, storePath: string): Command {
  return { file: "nix-store", args: ["--add-root", root, "--indirect", "--realise", storePath] };
}

const BundleManifest = z.object({
  class: z.string(),
  kind: z.enum(["nixos", "talos", "prebuilt"]),
  kernel: z.string().startsWith("/nix/store/"),
  initrd: z.string().startsWith("/nix/store/"),
  kernelParams: z.array(z.string()),
  cmdlineFile: z.string().startsWith("/nix/store/").nullable().optional(),
});

/** A download a class pins, for explaining a hash mismatch in the inventory's terms. */
export interface PinnedDownload {
  /** The fixed-output derivation's name (Nix names it in its error). */
  drvName: string;
  className: string;
  what: string;
  /** The hash the class file pins (Nix names it as "specified"), to tell classes sharing a download apart. */
  pinned: string | undefined;
  url: string;
  file: string;
  /** How to fix a mismatch, e.g. run `netbuild pin --class NAME`. */
  fix: string;
}

/** The store path that holds a file (`/nix/store/h-name/bzImage` → `/nix/store/h-name`). */
export function storePathOf(file: string): string {
  return file.split("/").slice(0, 4).join("/");
}

/** Explains Nix's fixed-output hash mismatch in inventory terms. */
function explainHashMismatch(stderr: string, downloads: readonly PinnedDownload[]): { message: string; hint: string } | undefined {
  const m = /hash mismatch in fixed-output derivation '([^']+)':\s*specified:\s*(\S+)\s*got:\s*(\S+)/s.exec(stderr);
  if (!m) return undefined;
  const drv = path.basename(m[1]!).replace(/^[0-9a-z]{32}-/, "").replace(/\.drv$/, "");
  const known = downloads.find((d) => d.drvName === drv && d.pinned === m[2]) ?? downloads.find((d) => d.drvName === drv);
  if (known) {
    return {
      message: `class ${known.className}: the ${known.what} downloaded from ${known.url} does not have the hash pinned in ${known.file} (pinned ${m[2]}, the server sent ${m[3]})`,
      hint: known.fix,
    };
  }
  return {
    message: `the download ${drv} does not have the pinned hash (pinned ${m[2]}, the server sent ${m[3]})`,
    hint: `if the URL is right and the new file is trusted, set the class's hash to ${m[3]}; otherwise check the URL, the version and the factory setting`,
  };
}

/** Lines that mean nix-build has finished evaluating: it plans, fetches or builds store paths. */
const PAST_EVALUATION = /^(these \d+ (derivations|paths) will be (built|fetched)|this (derivation|path) will be (built|fetched)|building '|copying path ')/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
/** As run.ts keeps of a failed command's stderr. */
const ERROR_LINES = 40;

/** How a Nix command failed, from its stderr. */
export interface NixFailure {
  /** Nix's error: its stderr from its first `error:` line on (at most the last 40 lines). */
  error: string;
  /** It failed while evaluating (nothing was being fetched or built yet), so the input is wrong (exit 2). */
  evaluation: boolean;
  /** Nix could not download something (the network, a URL). */
  download: boolean;
  /** "exit code 1" (or the signal). */
  status: string;
}

export interface RunNixOptions {
  /** The message when it fails (its status is added). */
  what: string;
  hint?: string;
  env?: NodeJS.ProcessEnv;
  /** Nix's progress, as it comes: only the lines before its error (the error is shown once, with the message and hint). */
  onLine?: (line: string) => void;
  /** A better code, message or hint for a failure. */
  explain?: (failure: NixFailure) => { code?: ErrorCode; message?: string; hint?: string } | undefined;
  /** See RunOptions.onStarted. */
  onStarted?: () => void;
}

/**
 * Runs a Nix command with its progress streamed, and on failure throws Nix's error once: the lines
 * from its first `error:` on are held back from the stream and become the error's detail (under
 * netbuild's message, above its hint, and in --json's `detail`), instead of being printed as they
 * come and then again. A failure while evaluating is NIX_EVAL_FAILED (exit 2), a download while
 * evaluating NIX_FETCH_FAILED, anything later NIX_BUILD_FAILED.
 */
export async function runNix(cmd: Command, options: RunNixOptions): Promise<RunResult> {
  let pastEvaluation = false;
  const held: string[] = [];
  const onStderrLine = (line: string) => {
    const plain = line.replace(ANSI, "");
    if (held.length === 0 && !plain.startsWith("error:")) {
      if (PAST_EVALUATION.test(plain)) pastEvaluation = true;
      options.onLine?.(line);
    } else {
      held.push(line);
    }
  };
  try {
    // (No hint passed on: a Nix that is not installed keeps run.ts's own.)
    return await run(cmd, { failure: "NIX_BUILD_FAILED", what: options.what, onStderrLine, ...(options.env ? { env: options.env } : {}), ...(options.onStarted ? { onStarted: options.onStarted } : {}) });
  } catch (e) {
    if (!(e instanceof UserError) || e.code !== "NIX_BUILD_FAILED") throw e;
    // Nothing recognisable as Nix's error (killed, or an unusual Nix): its stderr tail, as run.ts has it.
    const error = held.length > 0 ? held.slice(-ERROR_LINES).join("\n").trimEnd() : (e.detail ?? "").split("\n").slice(1).join("\n");
    const plain = error.replace(ANSI, "");
    const download = /unable to download/.test(plain);
    const failure: NixFailure = { error, evaluation: !pastEvaluation && !download, download, status: /\(([^()]*)\)$/.exec(e.message)?.[1] ?? "failed" };
    const better = options.explain?.(failure);
    // A download while evaluating (a pinned nixpkgs, a fetchTarball) is a fetch; one of a build's inputs stays a build failure.
    const code: ErrorCode = better?.code ?? (failure.evaluation ? "NIX_EVAL_FAILED" : download && !pastEvaluation ? "NIX_FETCH_FAILED" : "NIX_BUILD_FAILED");
    const hint = better?.hint ?? options.hint;
    throw new UserError(code, better?.message ?? e.message, { ...(hint ? { hint } : {}), detail: `$ ${showCommand(cmd)}\n${error}` });
  }
}

export interface BuildClassesOptions extends NixOptions {
  classes: readonly ClassName[];
  /** Where GC roots go (<root>/.netbuild/gcroots, a real folder the caller made), so `nix-collect-garbage` keeps the current builds. */
  gcroots: string;
  onLine?: (line: string) => void;
  /** Pinned downloads of the classes, to explain a hash mismatch. */
  downloads?: readonly PinnedDownload[];
  /** Parameter keys a downloaded command line must not set (netbuild sets them per host). */
  reserved?: (key: string) => boolean;
  /** The environment Nix runs in (its PATH decides which Nix). */
  env?: NodeJS.ProcessEnv;
  /** The nixpkgs NixOS classes evaluate with, as a message names it (for the hint of an evaluation error). */
  nixpkgsLabel?: string;
  /** Called once nix-build has been started (see RunOptions.onStarted). */
  onStarted?: () => void;
}

/** Explains a failed nix-build: a hash mismatch in inventory terms, an evaluation error with where to look. */
function explainBuildFailure(failure: NixFailure, opts: BuildClassesOptions, cmd: Command): { code?: ErrorCode; message?: string; hint?: string } | undefined {
  const mismatch = explainHashMismatch(failure.error, opts.downloads ?? []);
  if (mismatch) return { code: "NIX_BUILD_FAILED", ...mismatch };
  const classes = `class${opts.classes.length === 1 ? "" : "es"} ${opts.classes.join(", ")}`;
  if (failure.evaluation) {
    const trace = showCommand({ file: cmd.file, args: [...cmd.args, "--show-trace"] });
    return {
      message: `Nix could not evaluate ${classes} (nix-build, ${failure.status}); nothing was written`,
      hint: `${opts.nixpkgsLabel ? `the error is in the classes' files (their NixOS modules) or in the nixpkgs they use: ${opts.nixpkgsLabel}. ` : ""}To see where in the Nix code, run \`${trace}\``,
    };
  }
  const drv = /builder for '([^']+\.drv)' failed/.exec(failure.error.replace(ANSI, ""));
  if (drv) return { hint: `the builder's whole log: \`nix-store --read-log ${drv[1]}\`` };
  if (failure.download) return { hint: "Nix could not download something the classes need: check the network and the URL in Nix's error" };
  return undefined;
}

/** Builds the classes in one nix-build (Nix schedules them in parallel) and reads each class's manifest. */
export async function buildClasses(opts: BuildClassesOptions): Promise<Map<ClassName, ClassBuild & { kind: string }>> {
  const cmd = nixBuildCommand(opts, opts.classes);
  const result = await runNix(cmd, {
    what: `nix-build of ${opts.classes.join(", ")} failed`,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
    explain: (failure) => explainBuildFailure(failure, opts, cmd),
    ...(opts.onStarted ? { onStarted: opts.onStarted } : {}),
  });
  const outs = result.stdout.split("\n").filter((l) => l.startsWith("/nix/store/"));
  const builds = new Map<ClassName, ClassBuild & { kind: string }>();
  for (const out of outs) {
    const manifest = BundleManifest.parse(JSON.parse(await fs.readFile(path.join(out, "manifest.nix"), "utf8")));
    const className = manifest.class as ClassName;
    const kernelParams: KernelParam[] = [];
    if (manifest.cmdlineFile) {
      // The factory's command line, as downloaded (pinned by hash): it goes first, class and host parameters after it.
      const text = await fs.readFile(manifest.cmdlineFile, "utf8");
      const from = opts.downloads?.find((d) => d.className === className && d.what === "cmdline")?.url ?? manifest.cmdlineFile;
      for (const word of text.split(/\s+/).filter((w) => w !== "")) {
        const parsed = parseKernelParam(word);
        if (!parsed.ok) {
          throw new UserError("ARTIFACT_UNSAFE", `class ${className}: the kernel parameter ${JSON.stringify(word)} in the command line from ${from} cannot be written into an iPXE script: ${parsed.message}`, {
            hint: "check the schematic's extraKernelArgs; netbuild writes nothing it cannot quote safely",
          });
        }
        if (opts.reserved?.(paramKey(parsed.value))) {
          // Talos reads the first talos.config=: one in the factory's line would override every host's.
          throw new UserError("ARTIFACT_UNSAFE", `class ${className}: the command line from ${from} sets ${JSON.stringify(word)}, which netbuild sets per host`, {
            hint: "the factory (or mirror) serves a command line netbuild will not boot with; check talos.factory in netbuild.yaml and the schematic",
          });
        }
        kernelParams.push(parsed.value);
      }
    }
    for (const p of manifest.kernelParams) {
      const parsed = parseKernelParam(p);
      if (!parsed.ok) {
        throw new UserError("ARTIFACT_UNSAFE", `class ${className}: the kernel parameter ${JSON.stringify(p)} from Nix cannot be written into an iPXE script: ${parsed.message}`, {
          hint: "check boot.kernelParams in the class's NixOS modules",
        });
      }
      kernelParams.push(parsed.value);
    }
    const [kernelStat, initrdStat] = await Promise.all([fs.stat(manifest.kernel), fs.stat(manifest.initrd)]);
    const roots: [string, string][] = [["kernel", manifest.kernel], ["initrd", manifest.initrd], ["result", out]];
    if (manifest.cmdlineFile) roots.push(["cmdline", manifest.cmdlineFile]);
    await Promise.all(
      roots.map(async ([what, file]) => {
        const root = path.join(opts.gcroots, `${className}-${what}`);
        // A root already leading to this store path was registered by an earlier build (the link,
        // and Nix's indirect root to it): starting nix-store again would change nothing.
        if ((await fs.readlink(root).catch(() => undefined)) === storePathOf(file)) return;
        await run(gcRootCommand(root, storePathOf(file)), { failure: "COMMAND_FAILED", what: `registering a GC root for ${className}'s ${what}` });
      }),
    );
    builds.set(className, {
      kind: manifest.kind,
      kernel: { storeFile: manifest.kernel, size: kernelStat.size },
      initrd: { storeFile: manifest.initrd, size: initrdStat.size },
      kernelParams,
    });
  }
  const missing = opts.classes.filter((c) => !builds.has(c));
  if (missing.length > 0) throw new UserError("NIX_BUILD_FAILED", `nix-build printed no result for ${missing.join(", ")}`, { detail: result.stdout });
  return builds;
}
