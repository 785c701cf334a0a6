// Commander wiring only: options → domain options, lazy-imported commands, one error handler that
// prints and picks the exit code (0 ok, 1 the work failed, 2 invalid input or usage).
import path from "node:path";
import { Command, CommanderError, Option } from "commander";
import { formatIssue, UserError } from "./errors.ts";
import type { Context } from "./commands/context.ts";
import { formatBytes, streamReporter } from "./ui/reporter.ts";

interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

const rootOption = () => new Option("--root <dir>", "the inventory root (holds classes/, hosts/, netbuild.yaml)").default(undefined, "the current folder");
const outOption = () => new Option("--out <dir>", "the output tree (default: the site's `out`, ./out)");
const jsonOption = () => new Option("--json", "print the result as JSON on stdout");

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function print(io: Io, json: boolean, result: unknown, human: () => string): void {
  io.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : human());
}

function rel(io: Io, p: string): string {
  return path.relative(io.cwd, p) || ".";
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }): Promise<number> {
  const reporter = streamReporter(io.stderr, io.env);
  const ctx: Context = { cwd: io.cwd, reporter, env: io.env };
  let json = false;

  const program = new Command("netbuild")
    .description("Typed inventory → Nix-built netboot images → a by-MAC iPXE tree")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError("(run with --help for usage)");

  program
    .command("generate")
    .description("write the Nix expressions for every class into <root>/.netbuild/nix")
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (o: { root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { generate } = await import("./commands/generate.ts");
      const r = await generate({ root: o.root }, ctx);
      print(io, json, r, () => `generated ${rel(io, r.dir)}: ${r.written.length} written, ${r.unchanged.length} unchanged, ${r.removed.length} removed${r.wroteRootDefault ? " (and default.nix)" : ""}\n`);
    });

  program
    .command("build")
    .description("generate, nix-build the classes, and write the iPXE tree")
    .addOption(new Option("--class <name>", "build only this class (repeatable); other classes keep their current build").argParser(collect).default([]))
    .addOption(new Option("--nixpkgs <path>", "nixpkgs for NixOS classes (default: $NETBUILD_NIXPKGS, else npins/)"))
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (o: { class: string[]; nixpkgs?: string; root?: string; out?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { build } = await import("./commands/build.ts");
      const r = await build({ classes: o.class, nixpkgs: o.nixpkgs, root: o.root, out: o.out }, ctx);
      print(io, json, r, () => {
        const lines = [`built ${r.built.length} class${r.built.length === 1 ? "" : "es"} into ${rel(io, r.out)}/ (${r.tree.written.length} written, ${r.tree.unchanged} unchanged, ${r.tree.removed.length} removed)`];
        for (const c of r.built) lines.push(`  ${c.name} (${c.kind}): kernel ${formatBytes(c.kernel.size)}, initrd ${formatBytes(c.initrd.size)}`);
        if (r.kept.length > 0) lines.push(`  kept from the previous build: ${r.kept.join(", ")}`);
        lines.push(`  ${r.hostsInTree} host${r.hostsInTree === 1 ? "" : "s"} in by-host/, boot entry ${rel(io, path.join(r.out, "boot.ipxe"))}`);
        if (r.wipes.length > 0) lines.push(`  WIPE on next boot: ${r.wipes.map((w) => w.name).join(", ")}`);
        return `${lines.join("\n")}\n`;
      });
    });

  program
    .command("plan")
    .description("show what each machine will boot (hosts, kernel command lines, disk wipes); builds and writes nothing")
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (o: { root?: string; out?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { plan } = await import("./commands/plan.ts");
      const r = await plan({ root: o.root, out: o.out }, ctx);
      print(io, json, r, () => {
        const lines = ["classes:"];
        for (const c of r.classes) lines.push(`  ${c.name} (${c.kind}, ${c.file})${c.built ? "" : "  [not built yet]"}`);
        lines.push("hosts:");
        for (const h of r.hosts) lines.push(`  ${h.wipe ? "!!" : "  "}${h.name}  ${h.className}  ${h.macs.join(",")}  ${h.cmdline.join(" ")}`);
        lines.push(`unknown machines: ${r.unknownMachines}`);
        return `${lines.join("\n")}\n`;
      });
    });

  program
    .command("schema")
    .description("print the JSON Schemas of the inventory files (for editors)")
    .action(async () => {
      const { jsonSchemas } = await import("./core/schema.ts");
      io.stdout.write(`${JSON.stringify(jsonSchemas(), null, 2)}\n`);
    });

  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? 0 : 2;
    }
    if (e instanceof UserError) {
      if (json) {
        io.stdout.write(`${JSON.stringify({ ok: false, code: e.code, message: e.message, hint: e.hint, issues: e.issues, detail: e.detail }, null, 2)}\n`);
      }
      for (const issue of e.issues) io.stderr.write(`${formatIssue(issue)}\n`);
      io.stderr.write(`netbuild: ${e.message}\n`);
      if (e.detail) io.stderr.write(`${e.detail.replace(/^/gm, "  ")}\n`);
      if (e.hint) io.stderr.write(`  hint: ${e.hint}\n`);
      return e.exitCode;
    }
    io.stderr.write(`netbuild: internal error (please report it with this output):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
