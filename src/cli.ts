// Commander wiring only: options → domain options, lazy-imported commands, one error handler that
// prints and picks the exit code (0 ok, 1 the work failed, 2 invalid input or usage).
import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { printable } from "./core/excerpt.ts";
import { formatIssue, UserError } from "./errors.ts";
import { packageFile } from "./package-files.ts";
import type { Context } from "./commands/context.ts";
import type { DeployInterrupted } from "./commands/deploy.ts";
import { formatBytes, streamReporter } from "./ui/reporter.ts";

interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

const rootOption = () => new Option("--root <dir>", "the inventory root, holding netbuild.yaml, classes/ and hosts/ (default: the current folder)");
const outOption = () => new Option("--out <dir>", "the output tree (default: the site's `out`, ./out)");
const jsonOption = () => new Option("--json", "print the result as JSON on stdout");

const targetOptions = () => [
  new Option("--target <name>", "a target from the site file (repeatable; default: every target)").argParser(collect),
  new Option("-F, --ssh-config <file>", "an ssh_config to use instead of ~/.ssh/config (like ssh -F)"),
  new Option("--accept-new", "record an unknown host key in known_hosts (like StrictHostKeyChecking=accept-new); a changed key is always refused"),
];

// The SSH options of a command whose --target is optional (plan, discovered).
const sshConfigOption = () => new Option("-F, --ssh-config <file>", "with --target: an ssh_config to use instead of ~/.ssh/config (like ssh -F)");
const acceptNewOption = () => new Option("--accept-new", "with --target: record an unknown host key in known_hosts (like StrictHostKeyChecking=accept-new)");

/** A repeatable option's values (commander's default would print "(default: [])" in the help). */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A whole number of at least 1, for an option. */
function positiveInt(option: string): (value: string) => number {
  return (value) => {
    if (!/^[1-9]\d{0,6}$/.test(value)) throw new InvalidArgumentError(`${option} takes a whole number of at least 1`);
    return Number(value);
  };
}

/** The version in package.json. */
function version(): string {
  try {
    return (JSON.parse(readFileSync(packageFile("package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/** The result: for people, or (--json) one JSON document with `ok` (true unless the result says otherwise). */
function print(io: Io, json: boolean, result: object, human: () => string): void {
  // A result may quote what a boot server serves (parameters, class names): never a control character of it.
  io.stdout.write(json ? `${JSON.stringify({ ok: true, ...result }, null, 2)}\n` : printable(human()));
}

/** A failure, for --json: `{ ok: false, code, message, hint, issues, detail, targets }`. */
function errorDocument(e: { code: string; message: string; hint: string | undefined; issues: readonly unknown[]; detail: string | undefined; targets: readonly unknown[] | undefined }): string {
  return `${JSON.stringify({ ok: false, code: e.code, message: e.message, hint: e.hint, issues: e.issues, detail: e.detail, targets: e.targets }, null, 2)}\n`;
}

function rel(io: Io, p: string): string {
  return path.relative(io.cwd, p) || ".";
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }): Promise<number> {
  const reporter = streamReporter(io.stderr, io.env);
  const ctx: Context = { cwd: io.cwd, reporter, env: io.env };
  // --json anywhere on the line: a usage error found before any command ran is JSON too.
  let json = argv.slice(2).includes("--json");
  let exitCode = 0;
  let usage = "";
  let shown = "";

  const program = new Command("netbuild")
    .description("Typed inventory → Nix-built netboot images → a by-MAC iPXE tree")
    .version(version(), "-V, --version", "print netbuild's version")
    .exitOverride()
    // Help and the version: text on stdout, or (--json) kept for the one document printed below.
    .configureOutput({ writeOut: (s) => (json ? (shown += s) : io.stdout.write(s)), writeErr: (s) => ((usage += s), io.stderr.write(s)) })
    .showHelpAfterError("(run with --help for usage)");

  type TargetFlags = { target?: string[]; sshConfig?: string; acceptNew?: boolean; root?: string; json?: boolean };
  const targetFlags = (o: TargetFlags) => ({ targets: o.target ?? [], sshConfig: o.sshConfig, acceptNew: o.acceptNew, root: o.root });

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
    .addOption(new Option("--class <name>", "build only this class (repeatable); other classes keep their current build").argParser(collect))
    .addOption(new Option("--nixpkgs <path>", "nixpkgs for NixOS classes (default: $NETBUILD_NIXPKGS, else npins/)"))
    .addOption(new Option("--verify", "read back every script and link in the output tree and rewrite what differs (a plain build trusts a file whose size, mtime and inode are as recorded)"))
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (o: { class?: string[]; nixpkgs?: string; verify?: boolean; root?: string; out?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { build } = await import("./commands/build.ts");
      const r = await build({ classes: o.class ?? [], nixpkgs: o.nixpkgs, verify: o.verify, root: o.root, out: o.out }, ctx);
      print(io, json, r, () => {
        const lines = [`built ${r.built.length} class${r.built.length === 1 ? "" : "es"} into ${rel(io, r.out)}/ (${r.tree.written.length} written, ${r.tree.unchanged} unchanged, ${r.tree.removed.length} removed)`];
        for (const c of r.built) lines.push(`  ${c.name} (${c.kind}): kernel ${formatBytes(c.kernel.size)}, initrd ${formatBytes(c.initrd.size)}`);
        if (r.kept.length > 0) lines.push(`  kept from the previous build: ${r.kept.join(", ")}`);
        lines.push(`  ${r.hostsInTree} host${r.hostsInTree === 1 ? "" : "s"} in by-host/, boot entry ${rel(io, path.join(r.out, "boot.ipxe"))}`);
        if (r.wipes.length > 0) lines.push(`  WIPE on next boot: ${r.wipes.map((w) => `${w.name} (id ${w.id})`).join(", ")}`);
        return `${lines.join("\n")}\n`;
      });
    });

  program
    .command("plan")
    .description("show what each machine will boot (hosts, kernel command lines, disk wipes); with --target, what a deploy would change there, per machine, against what the target serves; builds and writes nothing")
    .addOption(new Option("--target <name>", "also plan against this target from the site file (repeatable): machines added, removed or changed, wipes armed or disarmed, then the files").argParser(collect))
    .addOption(sshConfigOption())
    .addOption(acceptNewOption())
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (o: TargetFlags & { out?: string }) => {
      json = Boolean(o.json);
      const { plan } = await import("./commands/plan.ts");
      const { planSummary } = await import("./commands/deploy.ts");
      const r = await plan({ ...targetFlags(o), out: o.out }, ctx);
      print(io, json, r, () => {
        const lines = ["classes:"];
        for (const c of r.classes) lines.push(`  ${c.name} (${c.kind}, ${c.file})${c.built ? "" : "  [not built yet]"}`);
        lines.push("hosts:");
        for (const h of r.hosts) lines.push(`  ${h.wipe ? "!!" : "  "}${h.name}  ${h.className}  ${h.macs.join(",")}  ${h.cmdline.join(" ")}`);
        lines.push(`unknown machines: ${r.unknownMachines}`);
        if (r.talos.hosts.length > 0) {
          lines.push("talos machine configs (cluster secrets):");
          for (const t of r.talos.hosts) lines.push(`  ${t.name}  ${t.role}  ${t.configUrl}${t.installDisk ? `  installs onto ${t.installDisk}` : ""}`);
        }
        if (r.deployRefuses) lines.push(`NOTE: ${r.deployRefuses}`);
        for (const t of r.targets ?? []) {
          const [first, ...rest] = planSummary(t);
          lines.push(`against ${t.name} (${t.target}): ${first}`, ...rest.map((l) => `  ${l}`));
        }
        return `${lines.join("\n")}\n`;
      });
    });

  program
    .command("pin")
    .description("download each Talos class's kernel, initramfs and command line from the Image Factory and write their hashes into the class file (comments kept)")
    .addOption(new Option("--class <name>", "pin only this Talos class (repeatable; default: every Talos class)").argParser(collect))
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (o: { class?: string[]; root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { pin } = await import("./commands/pin.ts");
      const r = await pin({ classes: o.class ?? [], root: o.root }, ctx);
      print(io, json, r, () => `${r.classes.map((c) => `${c.name}: ${c.written ? `hashes written to ${c.file}` : "already pinned, unchanged"}\n${c.artifacts.map((a) => `  ${a.what.padEnd(9)} ${formatBytes(a.size).padStart(9)}  ${a.hash}`).join("\n")}`).join("\n")}\n`);
    });

  program
    .command("provision")
    .description("arm a one-shot disk wipe for a host: write `provision: { disks: true, id: NEW }` into its file (comments kept); --disarm disarms it")
    .argument("<host>", "a host from hosts/")
    .addOption(new Option("--id <id>", "the new provisioning id (default: today's UTC date, YYYY-MM-DD, or YYYY-MM-DD.N when the host has that already)"))
    .addOption(new Option("--disarm", "disarm the host's wipe instead (`disks: false`; the last id stays, so the next arm picks another)"))
    .addOption(new Option("--force", "also format disks whose last provision cannot be read (the class cannot mount them: another install's); without it such disks are left alone"))
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (host: string, o: { id?: string; disarm?: boolean; force?: boolean; root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { provision, provisionSummary } = await import("./commands/provision.ts");
      const r = await provision({ host, id: o.id, disarm: o.disarm, force: o.force, root: o.root }, ctx);
      print(io, json, r, () => provisionSummary(r));
    });

  const talos = program.command("talos").description("Talos helpers");
  talos
    .command("schematic")
    .description("print a Talos class's schematic ID (computed offline, as the Image Factory does) and its canonical YAML")
    .argument("<class>", "a Talos class")
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (className: string, o: { root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { schematic } = await import("./commands/talos.ts");
      const r = await schematic({ className, root: o.root }, ctx);
      print(io, json, r, () => `# class ${r.class}: schematic ${r.id}\n# kernel    ${r.urls.kernel}\n# initramfs ${r.urls.initramfs}\n# cmdline   ${r.urls.cmdline}\n${r.yaml}`);
    });

  const withTargets = (cmd: Command) => {
    for (const o of targetOptions()) cmd.addOption(o);
    return cmd.addOption(rootOption()).addOption(jsonOption());
  };

  withTargets(
    program
      .command("deploy")
      .description("push the built tree to the boot servers: new artifacts uploaded and renamed into place, then scripts and links switched atomically")
      .addOption(new Option("--to <url>", "deploy to this target instead of the site's (sftp://user@host:port/path, user@host:/path, or a folder)"))
      .addOption(new Option("--dry-run", "print the plan (uploads with sizes, switches, removals, hosts that will wipe), change nothing"))
      .addOption(new Option("--verify", "re-check every deployed file first (hashes included); rewrite what drifted"))
      .addOption(new Option("--wait", "wait for another deploy's lock instead of failing"))
      .addOption(new Option("--break-lock", "remove another deploy's lock (after a crash on another machine)"))
      .addOption(new Option("--yes", "deploy even when a target would serve a disk wipe it did not serve before (asked on a terminal otherwise)"))
      .addOption(outOption()),
  ).action(async (o: TargetFlags & { to?: string; dryRun?: boolean; verify?: boolean; wait?: boolean; breakLock?: boolean; yes?: boolean; out?: string }) => {
    json = Boolean(o.json);
    const { deploy, deploySummary } = await import("./commands/deploy.ts");
    // Interrupted (it exits 130 once this returns): the one document, as an error's.
    const onInterrupted = (i: DeployInterrupted) => {
      if (json) io.stdout.write(errorDocument({ code: "INTERRUPTED", message: i.message, hint: i.hint, issues: [], detail: i.detail, targets: i.targets }));
    };
    const r = await deploy({ ...targetFlags(o), to: o.to, dryRun: o.dryRun, verify: o.verify, wait: o.wait, breakLock: o.breakLock, yes: o.yes, out: o.out, onInterrupted }, ctx);
    print(io, json, r, () => {
      const lines: string[] = [];
      for (const t of r.targets) {
        const [first, ...rest] = deploySummary(t, r.dryRun);
        lines.push(`${first!.replace(/^(would deploy|deployed)/, `$1 to ${t.name} (${t.target})`)}`, ...rest.map((l) => `  ${l}`));
      }
      return `${lines.join("\n")}\n`;
    });
  });

  withTargets(
    program
      .command("rollback")
      .description("switch class scripts on the targets back to the previous kept generation (no upload; holds until the class is rebuilt, or --generation switches again)")
      .addOption(new Option("--class <name>", "roll back only this class (repeatable; default: every class)").argParser(collect))
      .addOption(new Option("--generation <id>", "switch to this kept generation (see netbuild status) instead of the previous one"))
      .addOption(new Option("--dry-run", "say what would switch, change nothing"))
      .addOption(new Option("--wait", "wait for another deploy's lock instead of failing")),
  ).action(async (o: TargetFlags & { class?: string[]; generation?: string; dryRun?: boolean; wait?: boolean }) => {
    json = Boolean(o.json);
    const { rollback } = await import("./commands/rollback.ts");
    const r = await rollback({ ...targetFlags(o), classes: o.class ?? [], generation: o.generation, dryRun: o.dryRun, wait: o.wait }, ctx);
    const verb = (c: { direction: "back" | "forward" }) => (r.dryRun ? (c.direction === "back" ? "would roll back" : "would switch forward") : c.direction === "back" ? "rolled back" : "switched forward");
    print(io, json, r, () => `${r.targets.flatMap((t) => (t.changes.length === 0 ? [`${t.name}: nothing to roll back`] : t.changes.map((c) => `${t.name}: class ${c.name} ${verb(c)}: ${c.from} → ${c.to}`))).join("\n")}\n`);
  });

  withTargets(
    program
      .command("gc")
      .description("remove from the targets what no kept generation references (and leftovers of interrupted deploys)")
      .addOption(new Option("--keep <n>", "generations to keep per class (default: the site's keep)").argParser((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError("expected a whole number of at least 2 (the generation served before the current one stays for machines that were booting it)");
        return n;
      }))
      .addOption(new Option("--dry-run", "list what would be removed"))
      .addOption(new Option("--wait", "wait for another deploy's lock instead of failing")),
  ).action(async (o: TargetFlags & { keep?: number; dryRun?: boolean; wait?: boolean }) => {
    json = Boolean(o.json);
    const { gc } = await import("./commands/gc.ts");
    const r = await gc({ ...targetFlags(o), keep: o.keep, dryRun: o.dryRun, wait: o.wait }, ctx);
    print(io, json, r, () => `${r.targets.map((t) => `${t.name}: ${o.dryRun ? "would remove" : "removed"} ${t.removed.length} file${t.removed.length === 1 ? "" : "s"} (${formatBytes(t.freed)})${t.temps > 0 ? ` and ${t.temps} temporary file${t.temps === 1 ? "" : "s"} of interrupted deploys` : ""}`).join("\n")}\n`);
  });

  withTargets(program.command("status").description("what each target serves: classes and their kept generations, hosts, locks")).action(async (o: TargetFlags) => {
    json = Boolean(o.json);
    const { status } = await import("./commands/status.ts");
    const r = await status(targetFlags(o), ctx);
    print(io, json, r, () => {
      const lines: string[] = [];
      const origin = (o: { at: string; by: string; commit?: string | undefined }) => `${o.at.replace("T", " ").replace("Z", " UTC")} by ${o.by}${o.commit === "unknown" ? ", from a commit git could not name" : o.commit ? ` from commit ${o.commit}` : ", not from a git commit"}`;
      for (const t of r.targets) {
        lines.push(`${t.name} (${t.target}): ${t.deployed ? `${t.hosts} hosts, ${t.macs} MACs` : "nothing deployed"}${t.locked ? `, LOCKED by ${t.locked}` : ""}${t.unfinished ? ", a deploy did not finish (the next deploy completes it)" : ""}`);
        if (t.last) lines.push(`  last changed by \`netbuild ${t.last.command}\` ${origin(t.last)}`);
        for (const c of t.classes) {
          lines.push(`  class ${c.name}${c.served ? "" : " (removed from the inventory; netbuild gc deletes it)"}`);
          for (const g of c.generations) lines.push(`    ${g.current ? "*" : " "} ${g.id}  ${g.kernel.split("/")[2]}${g.deployed ? `  deployed ${origin(g.deployed)}` : ""}`);
          if (c.pinned) lines.push(`    pinned by a rollback: a deploy of a build it was rolled back from (${c.pinned.from.join(", ")}) does not switch to it again (\`netbuild rollback --class ${c.name} --generation ID\` does)`);
        }
        for (const w of t.armed) {
          const forced = (f: boolean) => (f ? ", forced" : "");
          const served = !w.served ? "not served by this target" : !w.served.wipe ? "the target serves it no wipe yet (a deploy arms it)" : w.served.id === w.id && w.served.force === w.force ? "armed on the target" : `the target serves id ${w.served.id || "(none)"}${forced(w.served.force)} (a deploy brings it in line)`;
          lines.push(`  !!! WIPE armed for ${w.host}, id ${w.id}${forced(w.force)}: ${served}`);
        }
      }
      return `${lines.join("\n")}\n`;
    });
  });

  withTargets(
    program
      .command("verify")
      .description("check the targets against what was deployed, or (--http URL) follow every machine's boot chain over HTTP and check what it would boot")
      .addOption(new Option("--http <url>", "the URL the boot server serves the tree at; checks every MAC in the inventory as a booting machine would"))
      .addOption(outOption()),
  ).action(async (o: TargetFlags & { http?: string; out?: string }) => {
    json = Boolean(o.json);
    const { verify } = await import("./commands/verify.ts");
    const r = await verify({ ...targetFlags(o), http: o.http, out: o.out }, ctx);
    print(io, json, r, () => {
      const lines: string[] = [];
      if (r.http) {
        for (const m of r.http.machines) lines.push(`${m.ok ? "ok  " : "FAIL"} ${m.mac}  ${m.host ?? "(unknown machine)"}  ${m.outcome === "boot" ? `boots ${m.kernel}` : m.outcome === "exit" ? "boots nothing" : "broken chain"}${[...m.problems, ...m.notes.map((n) => `(${n})`)].map((p) => `\n       ${p}`).join("")}`);
        const hosts = new Set(r.http.machines.flatMap((m) => (m.host ? [m.host] : [])));
        const failedHosts = new Set(r.http.machines.flatMap((m) => (m.host && !m.ok ? [m.host] : [])));
        lines.push(`${r.http.machines.filter((m) => m.ok).length} of ${r.http.machines.length} machines verified over ${r.http.url} (every MAC of ${hosts.size === 1 ? "the one host" : `all ${hosts.size} hosts`}, ${failedHosts.size} with a problem, and one unknown machine; ${formatBytes(r.http.bytesChecked)} of kernels and initrds hashed)`);
      }
      for (const t of r.targets) {
        const d = t.drift;
        lines.push(`${t.name} (${t.target}): ${d.checked} files checked (${formatBytes(d.hashedBytes)} hashed): ${d.missing.length} missing, ${d.changed.length} changed, ${d.extra.length} not netbuild's`);
        const wrong = t.hosts.problems.filter((h) => !h.orphan).length;
        const scripts = t.hosts.problems.filter((h) => h.orphan && h.mac === undefined).length;
        const macs = t.hosts.problems.filter((h) => h.mac !== undefined).length;
        const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
        const orphans = [...(scripts > 0 ? [count(scripts, "host script")] : []), ...(macs > 0 ? [count(macs, "MAC")] : [])];
        lines.push(`${t.name}: ${t.hosts.checked === 1 ? "the one host" : `all ${t.hosts.checked} hosts`} of the inventory checked: ${t.hosts.checked - wrong} served as the inventory says, ${wrong} not${orphans.length > 0 ? `; ${orphans.join(" and ")} served that the inventory does not have` : ""}`);
        for (const h of t.hosts.problems) for (const p of h.problems) lines.push(`  FAIL ${h.host}: ${p}`);
      }
      return `${lines.join("\n")}\n`;
    });
    if (!r.ok) exitCode = 1;
  });

  program
    .command("dhcp")
    .description("print a DHCP server's configuration that gets machines to boot.ipxe: iPXE binaries over TFTP for PXE firmware by architecture, then boot.ipxe for iPXE; reservations for hosts with an ip in --mode full")
    .addOption(new Option("--format <server>", "the DHCP server").choices(["dnsmasq", "kea", "isc", "routeros", "openwrt"]).makeOptionMandatory())
    .addOption(new Option("--mode <mode>", "proxy: boot information only, next to (or added to) the LAN's DHCP server; full: also addresses and reservations").choices(["proxy", "full"]).default("proxy"))
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (o: { format: "dnsmasq" | "kea" | "isc" | "routeros" | "openwrt"; mode: "proxy" | "full"; root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { dhcp } = await import("./commands/dhcp.ts");
      const r = await dhcp({ format: o.format, mode: o.mode, root: o.root }, ctx);
      // The configuration itself, byte for byte: every value in it was checked (core/dhcp.ts), none holds a control character.
      if (json) print(io, json, r, () => "");
      else io.stdout.write(r.config);
    });

  program
    .command("serve")
    .description("serve the built tree over HTTP (range requests, no listings, nothing outside the tree), logging each request to .netbuild/serve/access.log; with --dhcp proxy --interface IF, also run dnsmasq for proxy DHCP and TFTP of the iPXE binaries. Ctrl-C stops it")
    .addOption(new Option("--listen <addr:port>", "where to listen: ADDR:PORT, :PORT or PORT (default: 0.0.0.0:8080, every address)"))
    .addOption(new Option("--dhcp <mode>", "also answer DHCP: proxy (boot information only, next to the LAN's DHCP server) with dnsmasq").choices(["proxy"]))
    .addOption(new Option("--interface <if>", "with --dhcp: the LAN interface to answer on"))
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (o: { listen?: string; dhcp?: "proxy"; interface?: string; root?: string; out?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { serve } = await import("./commands/serve.ts");
      const r = await serve({ listen: o.listen, dhcp: o.dhcp, interface: o.interface, root: o.root, out: o.out }, ctx);
      print(io, json, r, () => `stopped: ${r.requests} request${r.requests === 1 ? "" : "s"} served from ${r.url}/\n`);
    });

  program
    .command("discovered")
    .description("list machines that booted and are not in the inventory (boot.ipxe makes each one request discover/<mac>), from netbuild serve's access log, --log FILE, or --target NAME (the access log the target names)")
    .addOption(new Option("--log <file>", "a web server's access log: nginx/Apache combined or common, lighttpd, Caddy JSON, Python's http.server (repeatable; default: netbuild serve's)").argParser(collect))
    .addOption(new Option("--target <name>", "read the access log the target names (its accessLog in netbuild.yaml), over SFTP for a remote target"))
    .addOption(sshConfigOption())
    .addOption(acceptNewOption())
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (o: { log?: string[]; target?: string; sshConfig?: string; acceptNew?: boolean; root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { discovered, discoveredSummary } = await import("./commands/discovered.ts");
      const r = await discovered({ logs: o.log ?? [], target: o.target, sshConfig: o.sshConfig, acceptNew: o.acceptNew, root: o.root }, ctx);
      print(io, json, r, () => discoveredSummary(r, io.cwd));
    });

  program
    .command("enrol")
    .description("add a machine to the inventory (a discovered one, usually): a new file hosts/NAME.yaml, or an entry under `hosts:` in --file; every inventory check runs on the result first")
    .argument("<mac>", "the machine's MAC (from `netbuild discovered`)")
    .requiredOption("--name <name>", "its hostname (one RFC 1123 label)")
    .requiredOption("--class <class>", "the class it boots")
    .addOption(new Option("--provision-disks", "arm its one-shot disk wipe (FORMATS ITS DISKS on its next boot after a deploy)"))
    .addOption(new Option("--file <file>", "a file of many hosts under hosts/ to add it to (made when missing), instead of hosts/NAME.yaml"))
    .addOption(rootOption())
    .addOption(jsonOption())
    .action(async (mac: string, o: { name: string; class: string; provisionDisks?: boolean; file?: string; root?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { enrol, enrolSummary } = await import("./commands/enrol.ts");
      const r = await enrol({ mac, name: o.name, className: o.class, provisionDisks: Boolean(o.provisionDisks), file: o.file, root: o.root }, ctx);
      if (r.wipe && !json) reporter.danger(`!!! host ${r.host} will FORMAT (WIPE) ITS DISKS on its next boot after a deploy (provision id ${r.provisionId})`);
      print(io, json, r, () => enrolSummary(r));
    });

  program
    .command("try")
    .description("boot one host in a local VM (QEMU, through the real iPXE, the built tree served on loopback), its serial console on stderr; prints the kernel command line it received")
    .argument("<host>", "a host of the inventory (its first MAC is the VM's)")
    .addOption(new Option("--firmware <firmware>", "the VM's firmware").choices(["bios", "uefi"]).default("bios"))
    .addOption(new Option("--timeout <seconds>", "the longest the VM runs").default("120").argParser(positiveInt("--timeout")))
    .addOption(new Option("--memory <MiB>", "the VM's memory (default: what netbuild estimates the class needs, at least 512)").argParser(positiveInt("--memory")))
    .addOption(rootOption())
    .addOption(outOption())
    .addOption(jsonOption())
    .action(async (host: string, o: { firmware: "bios" | "uefi"; timeout: string | number; memory?: number; root?: string; out?: string; json?: boolean }) => {
      json = Boolean(o.json);
      const { tryHost } = await import("./commands/try.ts");
      const r = await tryHost({ host, firmware: o.firmware, timeout: Number(o.timeout), memoryMiB: o.memory, root: o.root, out: o.out, console: (t) => void io.stderr.write(t) }, ctx);
      if (r.stoppedBy === "interrupted") {
        const message = `netbuild try ${r.host} interrupted`;
        if (json) io.stdout.write(errorDocument({ code: "INTERRUPTED", message, hint: undefined, issues: [], detail: undefined, targets: undefined }));
        io.stderr.write(`\n${message}\n`);
        exitCode = 130;
        return;
      }
      print(io, json, r, () =>
        [
          r.cmdline !== undefined ? `${r.host} booted a kernel with the command line:\n  ${r.cmdline}` : `${r.host} booted a kernel (it did not print its command line: \`quiet\`, or no console=ttyS0?)`,
          r.stoppedBy === "poweroff" ? `it powered off by itself after ${r.seconds} s` : `it was still running after --timeout ${Number(o.timeout)} s: stopped (that is how a class that runs on ends a try)`,
          "",
        ].join("\n"),
      );
    });

  program
    .command("schema")
    .description("print the JSON Schemas of the inventory files (for editors); always JSON")
    .addOption(new Option("--json", "accepted: the output is JSON anyway"))
    .action(async () => {
      const { jsonSchemas } = await import("./core/schema.ts");
      io.stdout.write(`${JSON.stringify(jsonSchemas(), null, 2)}\n`);
    });

  // Ctrl-C or SIGTERM in a command that does not say more itself (deploy does): it exits 130, and
  // with --json prints the one document even then. Only for the process's own streams (a test
  // calling main() in-process keeps the default).
  // The command that runs (as commander dispatched it: `--root DIR build` is build, not DIR).
  let command = "";
  program.hook("preAction", (_program, action) => {
    command = action.name();
  });
  let stopHandling = () => undefined as void;
  if (io.stdout === process.stdout) {
    const { onInterrupt } = await import("./adapters/interrupt.ts");
    stopHandling = onInterrupt((signal) => {
      const message = `netbuild ${command ? `${command} ` : ""}interrupted (${signal})`;
      const hint = command === "build" ? "out/ holds what was written so far, recorded as such: the next `netbuild build` finishes it" : undefined;
      if (json) io.stdout.write(errorDocument({ code: "INTERRUPTED", message, hint, issues: [], detail: undefined, targets: undefined }));
      io.stderr.write(`${message}${hint ? `\n  hint: ${hint}` : ""}\n`);
      process.exit(130);
    });
  }
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.version") {
        if (json) io.stdout.write(`${JSON.stringify({ ok: true, version: version() }, null, 2)}\n`);
        return 0;
      }
      if (e.code === "commander.helpDisplayed" || e.code === "commander.help") {
        // (A command group alone, `netbuild talos`, shows its help on stderr.)
        if (json) io.stdout.write(`${JSON.stringify({ ok: true, help: shown || usage }, null, 2)}\n`);
        return 0;
      }
      if (json) io.stdout.write(`${JSON.stringify({ ok: false, code: "USAGE", message: (usage.split("\n")[0] ?? e.message).replace(/^error: /, "") }, null, 2)}\n`);
      return 2;
    }
    if (e instanceof UserError) {
      if (json) io.stdout.write(errorDocument(e));
      for (const issue of e.issues) io.stderr.write(`${printable(formatIssue(issue))}\n`);
      io.stderr.write(`netbuild: ${printable(e.message)}\n`);
      if (e.detail) io.stderr.write(`${printable(e.detail).replace(/^/gm, "  ")}\n`);
      if (e.hint) io.stderr.write(`  hint: ${printable(e.hint)}\n`);
      return e.exitCode;
    }
    io.stderr.write(`netbuild: internal error (please report it with this output):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    if (json) io.stdout.write(`${JSON.stringify({ ok: false, code: "INTERNAL", message: "internal error: netbuild has a bug (the details are on stderr; please report them)" }, null, 2)}\n`);
    return 1;
  } finally {
    stopHandling();
  }
}
