// Questions on the terminal: the confirmation of a new disk wipe (answered with a line the user
// sees as they type) and a key's passphrase (nothing echoed). One at a time, whoever asks: a deploy
// to several targets may ask for one target's passphrase while another's wipe waits for its yes,
// and two readers of one terminal would both take the line typed, the one that echoes showing a
// passphrase on the screen. A line typed before its question was shown answers nothing (a yes to a
// wipe is given to a question that was read).
import readline from "node:readline";
import { Writable } from "node:stream";
import { beforeInterrupt } from "./interrupt.ts";

let turn: Promise<unknown> = Promise.resolve();

/** The question on the screen now: its line, and the other output held back meanwhile. */
let open: { output: NodeJS.WriteStream; release: (() => void) | undefined } | undefined;

/** Ends the question on the screen (its line, then what was held back), for a process that stops while it asks. */
function endQuestion(): void {
  const q = open;
  if (!q) return;
  open = undefined;
  q.output.write("\n");
  q.release?.();
}

/**
 * Runs `ask` once every question asked before it in this process has been answered. `hold` (a
 * reporter's): other output is held back while it asks, and written once it is answered.
 */
function inTurn<T>(ask: () => Promise<T>, output: NodeJS.WriteStream, hold?: () => () => void): Promise<T> {
  const mine = turn.then(async () => {
    const release = hold?.();
    open = { output, release };
    // A signal (Ctrl-C, SIGTERM) or an exit while it asks: the question's line is ended and what was
    // held back is written before the process's last words.
    const off = beforeInterrupt(endQuestion);
    process.once("exit", endQuestion);
    try {
      return await ask();
    } finally {
      off();
      process.off("exit", endQuestion);
      open = undefined;
      release?.();
    }
  });
  turn = mine.catch(() => undefined);
  return mine;
}

/**
 * One line read from `input`, echoed to `output` as typed unless `hidden`. Undefined when there was
 * none: Ctrl-D, a closed terminal, or `signal` aborted. Ctrl-C interrupts the process, as anywhere
 * else (the terminal is in raw mode while it reads, so readline sees it first).
 */
function readAnswer(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string, hidden: boolean, signal?: AbortSignal): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(undefined);
    // Hidden: the question is written here, and readline (which would echo) writes into nothing.
    if (hidden) output.write(question);
    const rl = readline.createInterface({ input, output: hidden ? new Writable({ write: (_c, _e, cb) => cb() }) : output, terminal: true });
    let settled = false;
    const abort = () => rl.close();
    signal?.addEventListener("abort", abort, { once: true });
    rl.question(hidden ? "" : question, (answer) => {
      settled = true;
      signal?.removeEventListener("abort", abort);
      rl.close();
      if (hidden) output.write("\n");
      resolve(answer);
    });
    rl.on("SIGINT", () => {
      // Never answered: the process ends (exit 130) through its interrupt handler, at once (a signal
      // sent to itself could arrive after the event loop, which nothing holds open now, had ended).
      settled = true;
      rl.close();
      if (process.listenerCount("SIGINT") > 0) process.emit("SIGINT", "SIGINT");
      else process.kill(process.pid, "SIGINT");
    });
    rl.on("close", () => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", abort);
      output.write("\n");
      resolve(undefined);
    });
  });
}

/** A question answered with a line the user sees as they type ("" when there was none: Ctrl-D). */
export async function askOnTerminal(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string, hold?: () => () => void): Promise<string> {
  return (await inTurn(() => readAnswer(input, output, question, false), output, hold)) ?? "";
}

/** A passphrase prompt (nothing echoed): undefined when none was given (Ctrl-D, or `signal` aborted while it waited). */
export function passphrasePrompt(input: NodeJS.ReadStream, output: NodeJS.WriteStream, hold?: () => () => void): (question: string, signal?: AbortSignal) => Promise<string | undefined> {
  return (question, signal) => inTurn(() => readAnswer(input, output, question, true, signal), output, hold);
}
