// The one place netbuild starts programs: a command is data ({ file, args }), run with an argument
// array (never a shell string), its stderr streamed line by line to whoever shows progress. execa is
// loaded on first use (it takes ~0.1 s to load, and a deploy runs nothing long).
import { execFile } from "node:child_process";
import { UserError, type ErrorCode } from "../errors.ts";

export interface Command {
  file: string;
  args: string[];
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Each line the program writes to stderr, as it comes (progress). */
  onStderrLine?: (line: string) => void;
  /** The error code when the program fails. */
  failure: ErrorCode;
  /** The message when the program fails (the command and its stderr tail are added). */
  what: string;
  hint?: string;
  /** The error code when the program is not installed (default NIX_NOT_FOUND). */
  notFound?: ErrorCode;
  /** Called once the program has been started (the caller may then work while it runs); must not throw. */
  onStarted?: () => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function showCommand(cmd: Command): string {
  return [cmd.file, ...cmd.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

export async function run(cmd: Command, options: RunOptions): Promise<RunResult> {
  const { execa } = await import("execa");
  const child = execa(cmd.file, cmd.args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: options.env === undefined,
    reject: false,
    stdin: "ignore",
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  options.onStarted?.();
  let pending = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (!options.onStderrLine) return;
    pending += chunk.toString("utf8");
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) options.onStderrLine(line);
  });
  const result = await child;
  if (pending && options.onStderrLine) options.onStderrLine(pending);
  const stdout = String(result.stdout ?? "");
  const stderr = String(result.stderr ?? "");
  if (result.failed) {
    if ((result as { code?: string }).code === "ENOENT") {
      throw new UserError(options.notFound ?? "NIX_NOT_FOUND", `${cmd.file} is not installed or not on PATH`, { hint: options.hint ?? "run inside `nix-shell`, or install Nix" });
    }
    const tail = stderr.trimEnd().split("\n").slice(-40).join("\n");
    const status = result.exitCode !== undefined ? `exit code ${result.exitCode}` : result.signal ? `signal ${result.signal}` : "failed";
    throw new UserError(options.failure, `${options.what} (${status})`, {
      ...(options.hint ? { hint: options.hint } : {}),
      detail: `$ ${showCommand(cmd)}\n${tail}`,
    });
  }
  return { stdout, stderr };
}

/** A short command whose output is read whole (no progress): node's execFile, argument array, no shell. */
export function capture(cmd: Command, options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd.file, cmd.args, { cwd: options.cwd, env: options.env, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout, stderr });
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        return reject(new UserError(options.notFound ?? "NIX_NOT_FOUND", `${cmd.file} is not installed or not on PATH`, { hint: options.hint ?? "install it" }));
      }
      const tail = stderr.trimEnd().split("\n").slice(-40).join("\n");
      reject(new UserError(options.failure, `${options.what} (exit code ${String(error.code)})`, { ...(options.hint ? { hint: options.hint } : {}), detail: `$ ${showCommand(cmd)}\n${tail}` }));
    });
  });
}
