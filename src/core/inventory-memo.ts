// What the inventory loader remembers between runs (an adapter keeps it in .netbuild/cache/): each
// host it read and checked, by the text it was read from, and what that check read besides the
// host. A later run reads and checks only the hosts whose text changed, or whose class or site
// settings changed under them; all others are taken as they were. Only hosts that were checked
// without an error or a warning are remembered, and a run that finds any error reads everything
// again from the text (see inventory.ts), so what is remembered never needs a position.
// Light on purpose (no zod, no yaml): the adapter reads the caches with it before those load.
import type { Host } from "./hosts.ts";
import type { Probe } from "./inventory-source.ts";

export type ProbeResult = ReturnType<Probe>;

/** One host as an earlier run read it, and checked it. */
export interface HostMemo {
  /**
   * The host's value, when it was cut from a file of many hosts (a file of one host is in the parse
   * cache whole): as this run read it, or as JSON from the cache, parsed only if the host must be
   * checked again. Neither when JSON cannot hold it exactly: its text is then read again.
   */
  data?: unknown;
  json?: string | undefined;
  /** How many YAML values its text holds (a file of many hosts holds at most MAX_VALUES), when it was cut from one. */
  values?: number | undefined;
  /** Its `class`: the check holds while what hostDependencies() says for this class is the same. */
  class: string;
  /** The files its check looked for (a Talos host's patches), and what was there. */
  probes?: [string, ProbeResult][] | undefined;
  /** The host as checked, with no error and no warning. */
  host: Host;
}

export interface Memo {
  /** By unitKey(). */
  hosts: Map<string, HostMemo>;
  /** Files of many hosts (by unitKey() of the whole text) that cannot be read one host at a time: they are read whole. */
  whole: Set<string>;
  /** For each class a remembered host has: what checking a host of that class read besides the host. */
  classes: Map<string, string>;
}

export function emptyMemo(): Memo {
  return { hosts: new Map(), whole: new Set(), classes: new Map() };
}

/** A host's text in its file (a whole file of one host, or one host cut from a file of many), as a key: the text itself, which is exact and cheaper than a hash of it. */
export function unitKey(file: string, text: string): string {
  return `${file}\0${text}`;
}

/** The memo of one load: what an earlier run left, and what this run learns (saved when the inventory is valid). */
export class Recall {
  readonly learnt: Memo = emptyMemo();

  /** `dependencies(className)`: what checking a host of this class reads besides the host (hostDependencies in hosts.ts). */
  constructor(
    private readonly earlier: Memo,
    private readonly dependencies: (className: string) => string,
    private readonly probe: Probe,
  ) {}

  /** The host checked in an earlier run from this very text, when nothing its check read has changed since. */
  host(key: string): Host | undefined {
    const m = this.earlier.hosts.get(key);
    if (m === undefined || this.earlier.classes.get(m.class) !== this.dependencies(m.class)) return undefined;
    if (!(m.probes ?? []).every(([rel, was]) => this.probe(rel) === was)) return undefined;
    this.learn(key, m);
    return m.host;
  }

  /**
   * A host cut from a file of many that an earlier run read from this very text (so it reads alone
   * as it reads in the file): how many values it holds, and its value (which may mean reading it).
   */
  read(key: string): { values: number; json?: string | undefined; value: () => unknown } | undefined {
    const m = this.earlier.hosts.get(key);
    if (m?.values === undefined || (m.json === undefined && !("data" in m))) return undefined;
    return { values: m.values, json: m.json, value: () => ("data" in m ? m.data : JSON.parse(m.json!)) };
  }

  /** Whether an earlier run found it could not read this file one host at a time. */
  whole(key: string): boolean {
    if (!this.earlier.whole.has(key)) return false;
    this.learnt.whole.add(key);
    return true;
  }

  readWhole(key: string): void {
    this.learnt.whole.add(key);
  }

  learn(key: string, memo: HostMemo): void {
    this.learnt.hosts.set(key, memo);
    if (!this.learnt.classes.has(memo.class)) this.learnt.classes.set(memo.class, this.dependencies(memo.class));
  }
}
