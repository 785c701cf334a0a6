// Nix, through its command-line tools. Commands are built as data (unit-tested) and run by run.ts.
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { UserError } from "../errors.ts";
import { paramKey, parseKernelParam, type ClassName, type KernelParam } from "../core/names.ts";
import type { ClassBuild } from "../core/tree.ts";
import { run, type Command } from "./run.ts";

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

export interface BuildClassesOptions extends NixOptions {
  classes: readonly ClassName[];
  /** Where GC roots go (<root>/.netbuild/gcroots), so `nix-collect-garbage` keeps the current builds. */
  gcroots: string;
  onLine?: (line: string) => void;
  /** Pinned downloads of the classes, to explain a hash mismatch. */
  downloads?: readonly PinnedDownload[];
  /** Parameter keys a downloaded command line must not set (netbuild sets them per host). */
  reserved?: (key: string) => boolean;
}

/** Builds the classes in one nix-build (Nix schedules them in parallel) and reads each class's manifest. */
export async function buildClasses(opts: BuildClassesOptions): Promise<Map<ClassName, ClassBuild & { kind: string }>> {
  const cmd = nixBuildCommand(opts, opts.classes);
  let result;
  try {
    result = await run(cmd, { failure: "NIX_BUILD_FAILED", what: `nix-build of ${opts.classes.join(", ")} failed`, ...(opts.onLine ? { onStderrLine: opts.onLine } : {}) });
  } catch (e) {
    if (e instanceof UserError && e.detail) {
      const mismatch = explainHashMismatch(e.detail, opts.downloads ?? []);
      if (mismatch) throw new UserError("NIX_BUILD_FAILED", mismatch.message, { hint: mismatch.hint, detail: e.detail });
    }
    throw e;
  }
  const outs = result.stdout.split("\n").filter((l) => l.startsWith("/nix/store/"));
  const builds = new Map<ClassName, ClassBuild & { kind: string }>();
  await fs.mkdir(opts.gcroots, { recursive: true });
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
