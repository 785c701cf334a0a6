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
  /** Bytes of a large transfer so far: a progress bar on a terminal, nothing otherwise (the start and end lines say it). */
  transfer(label: string, sent: number, total: number): void;
}

export function colourEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && env["NO_COLOR"] === undefined && env["TERM"] !== "dumb";
}

export function streamReporter(stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): Reporter {
  const colour = colourEnabled(stream, env);
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bar = stream.isTTY && env["TERM"] !== "dumb" ? progressBar(stream) : undefined;
  const line = (m: string) => {
    bar?.clear();
    stream.write(`${m}\n`);
  };
  return {
    info: line,
    warn: (i) => line(`${paint("33", "warning:")} ${typeof i === "string" ? i : formatIssue(i).replace(/^(\S+)\s+warning: /, "$1  ")}`),
    nix: (l) => line(`  ${paint("2", "nix │")} ${l}`),
    danger: (m) => line(paint("1;31", m)),
    transfer: (label, sent, total) => bar?.update(label, sent, total),
  };
}

/** One redrawn line: what, how far, how fast, how long to go. */
function progressBar(stream: NodeJS.WriteStream): { update(label: string, sent: number, total: number): void; clear(): void } {
  let shown = false;
  let started = new Map<string, number>();
  let last = 0;
  return {
    update(label, sent, total) {
      const now = Date.now();
      if (!started.has(label)) started = new Map([[label, now]]);
      if (now - last < 100 && sent < total) return;
      last = now;
      const secs = Math.max((now - started.get(label)!) / 1000, 0.001);
      const rate = sent / secs;
      const width = 24;
      const filled = Math.round((sent / Math.max(total, 1)) * width);
      const eta = rate > 0 ? formatDuration((total - sent) / rate) : "?";
      const text = `  [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(sent)}/${formatBytes(total)} ${formatBytes(rate)}/s ETA ${eta}  ${label}`;
      stream.write(`\r\x1b[K${text.slice(0, (stream.columns ?? 100) - 1)}`);
      shown = true;
    },
    clear() {
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
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
