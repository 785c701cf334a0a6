// Questions on the terminal: the confirmation of a new disk wipe (answered with a line the user
// sees as they type) and a key's passphrase (nothing echoed). One at a time, whoever asks: a deploy
// to several targets may ask for one target's passphrase while another's wipe waits for its yes,
// and two readers of one terminal would both take the line typed, the one that echoes showing a
// passphrase on the screen.
import readline from "node:readline";
import { Writable } from "node:stream";

let turn: Promise<unknown> = Promise.resolve();

/**
 * Runs `ask` once every question asked before it in this process has been answered. `hold` (a
 * reporter's): other output is held back while it asks, and written once it is answered.
 */
function inTurn<T>(ask: () => Promise<T>, output: NodeJS.WriteStream, hold?: () => () => void): Promise<T> {
  const mine = turn.then(async () => {
    const release = hold?.();
    // A process that exits while it asks (a signal) still says what it held back, its own last words too.
    const atExit = () => {
      output.write("\n");
      release?.();
    };
    process.once("exit", atExit);
    try {
      return await ask();
    } finally {
      process.off("exit", atExit);
      release?.();
    }
  });
  turn = mine.catch(() => undefined);
  return mine;
}

/** One line read from `input`, echoed to `output` as typed unless `hidden`. Ctrl-D (or a closed terminal) is an empty answer. */
function readAnswer(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string, hidden: boolean): Promise<string> {
  return new Promise((resolve) => {
    // Hidden: the question is written here, and readline (which would echo) writes into nothing.
    if (hidden) output.write(question);
    const rl = readline.createInterface({ input, output: hidden ? new Writable({ write: (_c, _e, cb) => cb() }) : output, terminal: true });
    let answered = false;
    rl.question(hidden ? "" : question, (answer) => {
      answered = true;
      rl.close();
      if (hidden) output.write("\n");
      resolve(answer);
    });
    rl.on("close", () => {
      if (!answered) {
        output.write("\n");
        resolve("");
      }
    });
  });
}

/** A question answered with a line the user sees as they type. */
export function askOnTerminal(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string, hold?: () => () => void): Promise<string> {
  return inTurn(() => readAnswer(input, output, question, false), output, hold);
}

/**
 * A passphrase prompt (nothing echoed). The same question (the same key) is asked once per
 * process: a deploy to several targets with one key asks for its passphrase once.
 */
export function passphrasePrompt(input: NodeJS.ReadStream, output: NodeJS.WriteStream, hold?: () => () => void): (question: string) => Promise<string> {
  return (question) => {
    let answer = passphrases.get(question);
    if (!answer) passphrases.set(question, (answer = inTurn(() => readAnswer(input, output, question, true), output, hold)));
    return answer;
  };
}
const passphrases = new Map<string, Promise<string>>();
