// Where progress and warnings go: stderr, plain lines (stdout carries only the result, human or
// --json). Colour only on a terminal and never with NO_COLOR.
import { printable } from "../core/excerpt.ts";
import { formatIssue, type Issue } from "../errors.ts";

export interface Reporter {
  /** A progress line. */
  info(message: string): void;
  warn(issue: Issue | string): void;
  /** A line of Nix's own output (build progress). */
  nix(line: string): void;
  /** The loud announcement of hosts that will wipe their disks. */
  danger(message: string): void;
  /**
   * Bytes of a large transfer so far: a progress bar on a terminal (cleared when the transfer
   * ends), nothing otherwise (the start and end lines say it). `label` is shown whole, or shortened
   * in the middle to fit the terminal.
   */
  transfer(label: string, sent: number, total: number): void;
  /**
   * Holds every line back (and draws no progress) until the function it returns is called, which
   * writes them: a question on the terminal is not broken into by other targets' progress.
   */
  hold(): () => void;
}

export function colourEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && env["NO_COLOR"] === undefined && env["TERM"] !== "dumb";
}

export function streamReporter(stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): Reporter {
  const colour = colourEnabled(stream, env);
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bar = stream.isTTY && env["TERM"] !== "dumb" ? progressBar(stream) : undefined;
  let held: string[] | undefined;
  let holders = 0;
  const line = (m: string) => {
    if (held) return void held.push(m);
    bar?.clear();
    stream.write(`${m}\n`);
  };
  return {
    // What netbuild says may quote what a boot server holds: no control character of it reaches the terminal.
    info: (m) => line(printable(m)),
    warn: (i) => line(`${paint("33", "warning:")} ${printable(typeof i === "string" ? i : formatIssue(i).replace(/^(\S+)\s+warning: /, "$1  "))}`),
    nix: (l) => line(`  ${paint("2", "nix │")} ${l}`),
    danger: (m) => line(paint("1;31", printable(m))),
    transfer: (label, sent, total) => {
      if (!held) bar?.update(label, sent, total);
    },
    hold() {
      // A progress bar is not left drawn where the question is written.
      bar?.clear();
      holders++;
      held ??= [];
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (--holders > 0) return;
        const lines = held ?? [];
        held = undefined;
        for (const m of lines) line(m);
      };
    },
  };
}

/** A rate from less than this much transfer time is noise (a first chunk that sat in a buffer), not a speed. */
const RATE_AFTER_MS = 1000;
/** The rate is measured over about the last this many milliseconds, so the ETA follows the link as it is now (not its slow start). */
const RATE_WINDOW_MS = 5000;
const BAR_WIDTH = 24;
/** Room planned for `381 MiB/381 MiB 29 MiB/s ETA 1 min 10 s`: the bar's width depends on the terminal's only, so it does not jump as numbers grow. */
const STATS_WIDTH = 38;
/** What a path keeps at least before the bar gives up its room. */
const LABEL_MIN = 24;

/**
 * `text` in at most `width` characters: whole when it fits, else with its middle replaced by `…`
 * (a path's head says which target and class, its tail which file: both matter more than the hash between).
 */
export function shortenMiddle(text: string, width: number): string {
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  if (width <= 1) return "…".slice(0, Math.max(width, 0));
  const keep = width - 1;
  const head = Math.floor(keep * 0.4);
  return `${chars.slice(0, head).join("")}…${chars.slice(chars.length - (keep - head)).join("")}`;
}

/**
 * One redrawn line: how far, how fast, how long to go, and what. A rate (and so an ETA) appears only
 * once a transfer has run for a second: before that it measures buffering, not the link. A copy that
 * reports only its end (local targets: the bytes went to the page cache, whose speed says nothing)
 * draws nothing. A finished transfer clears its line, so what is printed next, on stdout or stderr,
 * starts on a clean line.
 */
function progressBar(stream: NodeJS.WriteStream): { update(label: string, sent: number, total: number): void; clear(): void } {
  let shown = false;
  // Per label: targets upload at the same time, and each one's rate is its own.
  const transfers = new Map<string, { t0: number; samples: { t: number; sent: number }[]; statsWidth: number }>();
  let last = 0;
  const clear = () => {
    if (shown) stream.write("\r\x1b[K");
    shown = false;
  };
  return {
    update(label, sent, total) {
      const now = Date.now();
      if (sent >= total) {
        transfers.delete(label);
        return clear();
      }
      let tr = transfers.get(label);
      if (tr === undefined) transfers.set(label, (tr = { t0: now, samples: [{ t: now, sent }], statsWidth: 0 }));
      if (now - last < 100) return;
      last = now;
      tr.samples.push({ t: now, sent });
      while (tr.samples.length > 2 && now - tr.samples[1]!.t >= RATE_WINDOW_MS) tr.samples.shift();
      const from = tr.samples[0]!;
      const rate = now - tr.t0 >= RATE_AFTER_MS && now > from.t ? ((sent - from.sent) / (now - from.t)) * 1000 : 0;
      const speed = rate > 0 ? ` ${formatBytes(rate)}/s ETA ${formatDuration((total - sent) / rate)}` : "";
      // Padded to the widest this transfer has shown (up to the room planned for it), so the path
      // does not shift left and right.
      const stats = `${formatBytes(sent)}/${formatBytes(total)}${speed}`.padEnd(tr.statsWidth);
      tr.statsWidth = Math.min(Math.max(tr.statsWidth, stats.length), STATS_WIDTH);
      const room = (stream.columns || 100) - 1;
      const barWidth = Math.min(BAR_WIDTH, room - (2 + 3 + STATS_WIDTH + 2 + LABEL_MIN));
      const filled = Math.round((sent / Math.max(total, 1)) * Math.max(barWidth, 0));
      const head = barWidth >= 8 ? `  [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ${stats}  ` : `  ${stats}  `;
      // Only a terminal narrower than the numbers themselves cuts the line at its end.
      const text = Array.from(head + shortenMiddle(label, room - head.length)).slice(0, room).join("");
      stream.write(`\r\x1b[K${text}`);
      shown = true;
    },
    clear,
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
