// A question on the terminal, answered with a line the user sees as they type (the confirmation of
// a new disk wipe). Passphrases use ssh.ts's terminalPrompt, which echoes nothing.
import readline from "node:readline";

export function askOnTerminal(input: NodeJS.ReadStream, output: NodeJS.WriteStream, question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input, output, terminal: true });
    let answered = false;
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer);
    });
    // Ctrl-D (or a closed terminal) is a no.
    rl.on("close", () => {
      if (!answered) {
        output.write("\n");
        resolve("");
      }
    });
  });
}
