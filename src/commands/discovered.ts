// netbuild discovered: machines that booted and are not in the inventory, from access logs (the
// one `netbuild serve` keeps for this root, --log FILE, or --target NAME: the target's `accessLog`,
// over SFTP for a remote one; nginx, Apache, lighttpd, Caddy JSON, Python's http.server), read line
// by line (a log of gigabytes is never held whole).
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { UserError } from "../errors.ts";
import { DiscoveryLog, type DiscoveredMachine } from "../core/discovery.ts";
import { escaped } from "../core/excerpt.ts";
import { ACCESS_LOG, loadRoot, rootOf, type Context, type RootOptions } from "./context.ts";
import { openTarget, selectTargets, type TargetOptions } from "./targets.ts";

export interface DiscoveredOptions extends RootOptions, Omit<TargetOptions, "targets" | "to"> {
  /** Access logs to read (default: netbuild serve's, in .netbuild/serve/). */
  logs: string[];
  /** A target whose web server's access log (its `accessLog`) is read instead, over SFTP for a remote one. */
  target?: string | undefined;
}

export interface DiscoveredResult {
  logs: string[];
  machines: DiscoveredMachine[];
  malformed: number;
  known: number;
}

export async function discovered(options: DiscoveredOptions, ctx: Context): Promise<DiscoveredResult> {
  const root = rootOf(options, ctx);
  const inv = await loadRoot(root, ctx);
  const known = new Set<string>(inv.hosts.flatMap((h) => h.macs));
  const collected = new DiscoveryLog(known);
  if (options.target !== undefined) {
    if (options.logs.length > 0) throw new UserError("USAGE", "--target and --log name different logs: give one of them");
    const [target] = selectTargets(inv, { targets: [options.target] });
    if (target!.accessLog === undefined) {
      throw new UserError("USAGE", `target ${target!.name} names no access log`, {
        hint: `say where its web server logs, in ${inv.site.file ?? "netbuild.yaml"}:  targets: { ${target!.name}: { url: ${JSON.stringify(target!.spec)}, accessLog: /var/log/nginx/access.log } }`,
      });
    }
    const log = target!.accessLog;
    const label = `${target!.name}:${log}`;
    const fs = await openTarget(target!, root, { targets: [], sshConfig: options.sshConfig, acceptNew: options.acceptNew }, ctx);
    try {
      const stream = await fs.readOutside(log);
      if (stream === undefined) throw new UserError("USAGE", `the access log of target ${target!.name} (${escaped(log)}) does not exist`, { hint: `check accessLog for ${target!.name} in ${inv.site.file ?? "netbuild.yaml"}` });
      // Its error (a file that cannot be read, a connection lost mid-read) ends the read and is the
      // read's; once all is read, the connection is closed only after the stream has closed its
      // file (SFTP: closing the connection first fails that close, as an error nobody hears).
      const lines = createInterface({ input: stream.setEncoding("utf8"), crlfDelay: Infinity });
      let failed: Error | undefined;
      let read = false;
      const closed = new Promise<void>((resolve) => {
        stream.on("error", (e: Error) => {
          // After the last line, a failed close of the file is no failed read (and ends the wait).
          if (!read) {
            failed ??= e;
            lines.close();
          }
          resolve();
        });
        stream.once("close", resolve);
      });
      try {
        for await (const line of lines) collected.add(line);
      } catch (e) {
        failed ??= e as Error;
      }
      read = true;
      if (failed) {
        stream.destroy();
        const local = target!.location.kind === "local";
        const denied = /permission/i.test(failed.message);
        throw new UserError(local ? "USAGE" : "SSH_FAILED", `reading ${escaped(label)} failed: ${escaped(failed.message)}`, {
          hint: denied ? (local ? "the user running netbuild cannot read it" : "the SSH user cannot read it: web servers' logs are often readable by the adm group only") : local ? "check the file" : "run it again",
        });
      }
      await closed;
    } finally {
      await fs.close();
    }
    return { logs: [label], ...collected.result() };
  }
  const logs = options.logs.length > 0 ? options.logs.map((l) => path.resolve(ctx.cwd, l)) : [path.join(root, ACCESS_LOG)];
  for (const log of logs) {
    const st = await fs.stat(log).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      if (st.code === "ENOENT" && options.logs.length === 0) throw new UserError("USAGE", `there is no access log to read: ${path.relative(ctx.cwd, log)} does not exist (netbuild serve writes it)`, { hint: "run `netbuild serve`, or name your web server's access log: --log /var/log/nginx/access.log" });
      throw new UserError("USAGE", `cannot read ${escaped(log)}: ${st.code === "ENOENT" ? "it does not exist" : st.message}`, { hint: "name a web server's access log: --log FILE" });
    }
    if (!st.isFile()) throw new UserError("USAGE", `${escaped(log)} is not a regular file`, { hint: "name a web server's access log: --log FILE" });
    const lines = createInterface({ input: createReadStream(log, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const line of lines) collected.add(line);
  }
  const r = collected.result();
  return { logs, ...r };
}

/** The result, for people: one machine per line, then the next step. */
export function discoveredSummary(r: DiscoveredResult, cwd: string): string {
  const from = r.logs.map((l) => path.relative(cwd, l) || l).join(", ");
  const skipped = r.malformed > 0 ? `; ${r.malformed} line${r.malformed === 1 ? "" : "s"} in no known log format skipped` : "";
  if (r.machines.length === 0) return `no machine outside the inventory has booted (read ${from}${skipped})\n`;
  const lines = [`${r.machines.length} machine${r.machines.length === 1 ? "" : "s"} not in the inventory booted (read ${from}${skipped}):`];
  for (const m of r.machines) {
    const what = [m.firmware, m.arch, m.vendor, m.product].filter(Boolean).join(" ") || "unknown hardware";
    const ids = [m.serial !== undefined ? `serial ${m.serial}${m.placeholders.includes("serial") ? " (placeholder)" : ""}` : undefined, m.uuid !== undefined ? `uuid ${m.uuid}${m.placeholders.includes("uuid") ? " (placeholder)" : ""}` : undefined].filter(Boolean).join(", ");
    lines.push(`  ${m.mac}  ${what}${ids ? `  ${ids}` : ""}`, `      from ${m.ip}, ${m.boots} boot${m.boots === 1 ? "" : "s"}, first ${m.firstSeen ?? "?"}, last ${m.lastSeen ?? "?"}`);
  }
  lines.push("", "to boot one: netbuild enrol MAC --name NAME --class CLASS, then netbuild build and deploy");
  return `${lines.join("\n")}\n`;
}
