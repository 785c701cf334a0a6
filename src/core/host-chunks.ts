// A file of many hosts cut into one piece of text per host, so that a run after one host changed
// reads (and checks) that host alone instead of the whole file. Only the plainest layout is cut:
//
//   # comments and blank lines
//   hosts:
//     aleph:            <- one key per host, all at one indentation
//       class: demo     <- the host's lines, indented deeper (comments and blank lines anywhere)
//
// Anything else (flow style, a second top-level key, `---`, tabs, a key that needs quotes) is
// read whole, as before. The pieces are the file's own lines, so a host read alone is read as in
// the file: what could join two hosts (an open quote or bracket, an alias of another host's anchor)
// makes a piece fail to read alone, and the file is then read whole (yaml-doc.ts: parseHostChunk).

/** One host's lines: from its key's line up to the next host's key (comments and blank lines after it included). */
export interface HostChunk {
  /** The host's key, as written (a plain scalar). */
  key: string;
  text: string;
}

const TOP = /^hosts:(?:[ \t]+#.*)?[ \t]*\r?$/;
const KEY = /^ +([A-Za-z0-9][A-Za-z0-9_.-]*):(?:[ \t]+#.*)?[ \t]*\r?$/;

/** The hosts of a `hosts:` file as pieces of its text, in order; undefined when the file is not laid out as above. */
export function hostChunks(text: string): HostChunk[] | undefined {
  // A lone CR ends a line in YAML but not here: such a file is read whole.
  if (/\r(?!\n)/.test(text)) return undefined;
  const chunks: HostChunk[] = [];
  let top = false;
  let indent = -1;
  let key: string | undefined;
  let start = 0;
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf("\n", pos);
    const end = nl === -1 ? text.length : nl;
    let sp = pos;
    while (sp < end && text.charCodeAt(sp) === 32) sp++;
    const first = sp < end ? text[sp] : "\n";
    const blank = first === "\n" || (first === "\r" && sp + 1 === end) || first === "#";
    if (!blank) {
      const depth = sp - pos;
      if (!top) {
        if (depth !== 0 || !TOP.test(text.slice(pos, end))) return undefined;
        top = true;
      } else if (depth <= indent || indent === -1) {
        const m = KEY.exec(text.slice(pos, end));
        if (!m || (indent !== -1 && depth !== indent)) return undefined;
        if (key !== undefined) chunks.push({ key, text: text.slice(start, pos) });
        indent = depth;
        key = m[1]!;
        start = pos;
      }
    }
    pos = nl === -1 ? text.length : nl + 1;
  }
  if (key === undefined) return undefined;
  chunks.push({ key, text: text.slice(start) });
  return chunks;
}
