// Where progress and warnings go: stderr, plain lines (stdout carries only the result, human or
// --json). Colour only on a terminal and never with NO_COLOR.
import { formatIssue, type Issue } from "../errors.ts";

export interface Reporter {
  /** A progress line. */
  info(message: string): void;
  warn(issue: Issue | string): void;
  /** A line of Nix's own output (build progress). */
  nix(line: string): void;
  /** The loud announcement of hosts that will wipe their disks. */
  danger(message: string): void;
}

export function colourEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && env["NO_COLOR"] === undefined && env["TERM"] !== "dumb";
}

export function streamReporter(stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): Reporter {
  const colour = colourEnabled(stream, env);
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  return {
    info: (m) => stream.write(`${m}\n`),
    warn: (i) => stream.write(`${paint("33", "warning:")} ${typeof i === "string" ? i : formatIssue(i).replace(/^(\S+)\s+warning: /, "$1  ")}\n`),
    nix: (line) => stream.write(`  ${paint("2", "nix │")} ${line}\n`),
    danger: (m) => stream.write(`${paint("1;31", m)}\n`),
  };
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}
