// Types of bin/compiled.js (plain JavaScript beside the bin), for bench/scale.ts.
/** Whether dist/ is current: see bin/compiled.js. */
export function compiledIsCurrent(root?: URL): boolean;
