// Ctrl-C and SIGTERM: one listener for the process, which hands the signal to the handler that
// registered last (deploy's, which says per target what it serves now, over the CLI's, which says
// only that a command was interrupted). Each handler ends the process (exit 130).
type Handler = (signal: NodeJS.Signals) => void;

const handlers: Handler[] = [];
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

function dispatch(signal: NodeJS.Signals): void {
  handlers.at(-1)?.(signal);
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
