// Ctrl-C and SIGTERM: one listener for the process, which hands the signal to the handler that
// registered last (deploy's, which says per target what it serves now, over the CLI's, which says
// only that a command was interrupted). Each handler ends the process (exit 130).
type Handler = (signal: NodeJS.Signals) => void;

const handlers: Handler[] = [];
const first: (() => void)[] = [];
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

function dispatch(signal: NodeJS.Signals): void {
  for (const f of [...first]) f();
  handlers.at(-1)?.(signal);
}

/** Runs `fn` on a signal before the handler says anything (a question on the terminal ends its line), until the returned function is called. */
export function beforeInterrupt(fn: () => void): () => void {
  first.push(fn);
  return () => {
    const at = first.indexOf(fn);
    if (at >= 0) first.splice(at, 1);
  };
}

/** Makes `handler` the one a signal goes to until the returned function is called. */
export function onInterrupt(handler: Handler): () => void {
  if (handlers.length === 0) for (const sig of SIGNALS) process.on(sig, dispatch);
  handlers.push(handler);
  return () => {
    const at = handlers.lastIndexOf(handler);
    if (at >= 0) handlers.splice(at, 1);
    if (handlers.length === 0) for (const sig of SIGNALS) process.off(sig, dispatch);
  };
}
