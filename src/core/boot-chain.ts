// What iPXE does with netbuild's scripts, for `netbuild verify --http`: start at boot.ipxe with a
// machine's MAC, follow imgfetch/imgexec/chain (relative URIs resolve against the current script's
// URI, as iPXE does), collect `set` variables, and end at `kernel`/`initrd`/`boot` or `exit`. Only
// the commands netbuild's own templates use are understood; anything else is reported, not guessed.

export interface ChainStep {
  url: string;
  status: "ok" | "missing";
}

export interface BootOutcome {
  /** Every script fetched, in order. */
  steps: ChainStep[];
  /** `boot`: kernel and initrd named; `exit`: the machine boots nothing from the network; `error`: the chain is broken. */
  result: "boot" | "exit" | "error";
  kernel: { url: string; args: string[] } | undefined;
  initrds: string[];
  /** `echo` lines, as the machine's console would show them. */
  console: string[];
  /** `exit`'s status (iPXE's default 0): non-zero makes the firmware try its next boot device. */
  exitStatus: number | undefined;
  problem: string | undefined;
}

export type FetchScript = (url: string) => Promise<string | undefined>;

function expand(word: string, vars: ReadonlyMap<string, string>): string {
  return word.replace(/\$\{([^}]+)\}/g, (_, name: string) => vars.get(name) ?? "");
}

/** `52-54-00-12-34-56` → the variables iPXE derives from the NIC. */
export function macVariables(hexhyp: string): Map<string, string> {
  return new Map([
    ["mac:hexhyp", hexhyp],
    ["mac", hexhyp.replace(/-/g, ":")],
  ]);
}

export async function walkBootChain(entryUrl: string, vars: Map<string, string>, fetch: FetchScript, maxScripts = 16): Promise<BootOutcome> {
  const out: BootOutcome = { steps: [], result: "error", kernel: undefined, initrds: [], console: [], exitStatus: undefined, problem: undefined };
  const images = new Map<string, { url: string; text: string }>();
  // Any failed fetch (a 404, a 403, a refused connection) is what iPXE's `|| goto` sees: a failure.
  // Why the last fetch failed, when it threw (a 404 is just missing): messages name this fetch's
  // reason, never an earlier one that a `|| goto` already handled.
  let failure: string | undefined;
  const load = async (url: string): Promise<string | undefined> => {
    let text: string | undefined;
    failure = undefined;
    try {
      text = await fetch(url);
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
    }
    out.steps.push({ url, status: text === undefined ? "missing" : "ok" });
    return text;
  };
  let current: { url: string; text: string | undefined } = { url: entryUrl, text: await load(entryUrl) };
  for (let scripts = 0; scripts < maxScripts; scripts++) {
    if (current.text === undefined) {
      out.problem = `${current.url} is missing${failure !== undefined ? ` (${failure})` : ""}`;
      return out;
    }
    if (!current.text.startsWith("#!ipxe")) {
      out.problem = `${current.url} is not an iPXE script`;
      return out;
    }
    const lines = current.text.split("\n").map((l) => l.trim());
    const labels = new Map(lines.flatMap((l, i) => (l.startsWith(":") ? [[l.slice(1), i] as const] : [])));
    let next: { url: string; text: string | undefined } | undefined;
    let pc = 0;
    const jump = (label: string) => {
      const at = labels.get(label);
      if (at === undefined) out.problem = `${current.url}: goto ${label}, which is not a label`;
      else pc = at + 1;
    };
    while (pc < lines.length && !next) {
      const raw = lines[pc++]!;
      if (raw === "" || raw.startsWith("#") || raw.startsWith(":")) continue;
      const [command, orElse] = raw.split(/\s+\|\|\s+/);
      const words = command!.split(/\s+/);
      const fallback = () => {
        const m = /^goto\s+(\S+)$/.exec(orElse ?? "");
        if (m) return jump(m[1]!);
        out.problem = `${current.url}: \`${raw}\` failed${failure !== undefined ? ` (${failure})` : ""}`;
      };
      const resolve = (rel: string) => new URL(expand(rel, vars), current.url).toString();
      const [cmd, ...args] = words;
      const named = (list: string[]) => {
        const i = list.indexOf("--name");
        return i >= 0 ? { name: list[i + 1], rest: [...list.slice(0, i), ...list.slice(i + 2)] } : { name: undefined, rest: list };
      };
      switch (cmd) {
        case "echo":
          out.console.push(expand(args.join(" "), vars));
          break;
        case "set":
          vars.set(args[0]!, expand(args.slice(1).join(" "), vars));
          break;
        case "clear":
          vars.delete(args[0]!);
          break;
        case "goto":
          jump(args[0]!);
          if (out.problem) return out;
          break;
        case "imgfetch": {
          const { name, rest } = named(args);
          // boot.ipxe's discovery request is never sent by a walk: the access log would record a
          // machine that never booted. It fails as on a static server (a 404): the script goes on.
          if (rest[0]!.startsWith("discover/")) {
            fallback();
            if (out.problem) return out;
            break;
          }
          const url = resolve(rest[0]!);
          const text = await load(url);
          if (text === undefined) fallback();
          else images.set(name ?? url, { url, text });
          if (out.problem) return out;
          break;
        }
        case "imgfree":
          images.delete(args[0]!);
          break;
        case "imgexec": {
          const image = images.get(args[0]!);
          if (!image) fallback();
          else next = image;
          if (out.problem) return out;
          break;
        }
        case "chain": {
          const url = resolve(args[0]!);
          const text = await load(url);
          if (text === undefined) fallback();
          else next = { url, text };
          if (out.problem) return out;
          break;
        }
        case "kernel":
          out.kernel = { url: resolve(args[0]!), args: args.slice(1).map((a) => expand(a, vars)).flatMap((a) => a.split(/\s+/)).filter(Boolean) };
          break;
        case "initrd":
          out.initrds.push(resolve(named(args).rest[0]!));
          break;
        case "boot":
          out.result = out.kernel ? "boot" : "error";
          if (!out.kernel) out.problem = `${current.url}: boot without a kernel`;
          return out;
        case "exit":
          out.result = "exit";
          out.exitStatus = Number(args[0] ?? "0");
          return out;
        default:
          out.problem = `${current.url}: netbuild does not know the iPXE command \`${cmd}\``;
          return out;
      }
    }
    if (!next) {
      out.problem = `${current.url} ends without booting or exiting`;
      return out;
    }
    current = next;
  }
  out.problem = `more than ${maxScripts} scripts chained (a loop?)`;
  return out;
}
