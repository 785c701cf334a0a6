// A seeded pseudo-random source (mulberry32) for tests that try many generated inputs: the same
// seed gives the same sequence on every run and machine, so a failure can be replayed.
export function seeded(seed: number): { random: () => number; pick: <T>(xs: readonly T[]) => T } {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { random, pick: <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]! };
}
