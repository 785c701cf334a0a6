// What the benchmarks share: a command's wall time, as users see it.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import path from "node:path";

/** Runs a command to completion; its wall seconds. Throws on failure (a failed run is no figure). */
export function timed(file: string, args: string[], options: SpawnSyncOptions = {}): number {
  const started = performance.now();
  const r = spawnSync(file, args, { encoding: "utf8", maxBuffer: 256 * 2 ** 20, env: { ...process.env, NO_COLOR: "1" }, ...options });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${path.basename(file)} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${String(r.stderr).slice(-4000)}`);
  return seconds;
}
