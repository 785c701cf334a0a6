// The tree over HTTP with Node's own http: GET and HEAD of regular files, single byte ranges,
// content types, no directory listings, nothing outside the tree and nothing hidden (.netbuild/:
// the manifest and locks), symlinks followed only while they stay inside. The tree is read live
// at each request: a rebuild is picked up without a restart, and since a build writes every file
// through a temporary name, and a class's new kernel and initrd before the script that names
// them (keeping the ones before), a machine booting meanwhile gets either generation's files whole.
import { constants, type BigIntStats } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { UserError } from "../errors.ts";

/** One request, as an access log records it. */
export interface AccessEntry {
  time: Date;
  remote: string;
  method: string;
  /** The request target exactly as sent (hostile: escaped when written). */
  target: string;
  protocol: string;
  status: number;
  bytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
}

export interface TreeServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A value a client sent, as nginx writes it in a log: `"` and `\` escaped, anything not printable ASCII as \xHH. */
export function logEscaped(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte === 0x22 || byte === 0x5c || byte < 0x20 || byte > 0x7e) out += `\\x${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

/** The "combined" log format of nginx and Apache: `remote - - [time] "request" status bytes "referer" "user-agent"` (UTC). */
export function combinedLogLine(e: AccessEntry): string {
  const t = e.time;
  const p = (n: number) => String(n).padStart(2, "0");
  const time = `${p(t.getUTCDate())}/${MONTHS[t.getUTCMonth()]}/${t.getUTCFullYear()}:${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())} +0000`;
  const field = (v: string | undefined) => (v === undefined || v === "" ? "-" : logEscaped(v));
  return `${logEscaped(e.remote)} - - [${time}] "${logEscaped(`${e.method} ${e.target} ${e.protocol}`)}" ${e.status} ${e.bytes} "${field(e.referer)}" "${field(e.userAgent)}"\n`;
}

/** What a file is served as. iPXE scripts have no extension (ipxe) or .ipxe. */
export function contentType(rel: string): string {
  const base = rel.slice(rel.lastIndexOf("/") + 1);
  if (base === "ipxe" || base.endsWith(".ipxe")) return "text/plain; charset=utf-8";
  if (base.endsWith(".yaml") || base.endsWith(".yml")) return "application/yaml";
  if (base.endsWith(".json")) return "application/json";
  return "application/octet-stream";
}

/**
 * The file a request path names, relative to the tree, or undefined when it names nothing that
 * may be served: a hidden or empty segment, `.` or `..`, a NUL or a `/` or `\` hidden in %-escapes.
 */
export function servedPath(pathname: string): string | undefined {
  if (!pathname.startsWith("/")) return undefined;
  const segments: string[] = [];
  for (const raw of pathname.slice(1).split("/")) {
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (s === "" || s.startsWith(".") || /[/\\\0]/.test(s)) return undefined;
    segments.push(s);
  }
  return segments.join("/");
}

/** A single byte range of a file of `size` bytes: [start, end] inclusive, "whole" for none or several, or unsatisfiable. */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | "whole" | "unsatisfiable" {
  if (header === undefined) return "whole";
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: the whole file (RFC 9110 lets a server ignore Range).
  if (!m || (m[1] === "" && m[2] === "")) return "whole";
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** Serves `out` on host:port until closed; `onAccess` gets every request once it is answered. */
export async function serveTree(out: string, host: string, port: number, onAccess: (e: AccessEntry) => void): Promise<TreeServer> {
  // Responses not yet closed: close() waits for them (each is logged as it closes).
  let active = 0;
  let drained: () => void = () => undefined;
  const server = http.createServer((req, res) => {
    const entry: AccessEntry = { time: new Date(), remote: req.socket.remoteAddress ?? "-", method: req.method ?? "-", target: req.url ?? "-", protocol: `HTTP/${req.httpVersion}`, status: 0, bytes: 0, referer: req.headers.referer, userAgent: req.headers["user-agent"] };
    active++;
    res.on("close", () => {
      entry.status = res.statusCode;
      try {
        onAccess(entry);
      } finally {
        if (--active === 0) drained();
      }
    });
    answer(out, req, res, entry).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on("clientError", (_e, socket) => socket.destroy());
  // A client that stops reading (or never sends its request) is dropped after two idle minutes:
  // each connection holds a file open. A 1 GB initrd over 100 Mbit/s is never idle that long.
  server.timeout = 120_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.maxConnections = 512;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new UserError("SERVE_FAILED", `${host}:${port} is in use: another server listens there`, { hint: "stop it, or give another address: --listen ADDR:PORT" }));
      else if (e.code === "EADDRNOTAVAIL") reject(new UserError("SERVE_FAILED", `${host} is not an address of this machine`, { hint: "give one of its addresses (or 0.0.0.0 for all): --listen ADDR:PORT" }));
      else if (e.code === "EACCES") reject(new UserError("SERVE_FAILED", `no permission to listen on port ${port}`, { hint: "ports below 1024 need root (or CAP_NET_BIND_SERVICE): use another, e.g. --listen 0.0.0.0:8080" }));
      else reject(e);
    });
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const idle = active === 0 ? Promise.resolve() : new Promise<void>((resolve) => (drained = resolve));
      server.closeAllConnections();
      await Promise.all([closed, idle]);
    },
  };
}

async function answer(out: string, req: http.IncomingMessage, res: http.ServerResponse, entry: AccessEntry): Promise<void> {
  const notFound = () => {
    entry.bytes = 10;
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "content-length": 10 }).end("not found\n");
  };
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-length": 0 }).end();
    return;
  }
  let pathname: string;
  try {
    pathname = new URL(req.url ?? "/", "http://x").pathname;
  } catch {
    return notFound();
  }
  const rel = servedPath(pathname);
  if (rel === undefined || rel === "") return notFound();
  const realOut = await fs.realpath(out).catch(() => undefined);
  if (realOut === undefined) return notFound();
  // Symlinks resolve on the server (by-mac/<mac> → ../by-host/<host>), and only to a file inside the tree.
  const real = await fs.realpath(path.join(realOut, rel)).catch(() => undefined);
  if (real === undefined || !real.startsWith(realOut + path.sep)) return notFound();
  if (path.relative(realOut, real).split(path.sep).some((s) => s.startsWith("."))) return notFound();
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return notFound();
  }
  try {
    const st: BigIntStats = await handle.stat({ bigint: true });
    if (!st.isFile()) return notFound();
    const size = Number(st.size);
    const range = byteRange(req.headers.range, size);
    const headers: http.OutgoingHttpHeaders = { "content-type": contentType(rel), "accept-ranges": "bytes", "last-modified": new Date(Number(st.mtimeMs)).toUTCString(), "cache-control": "no-cache" };
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 }).end();
      return;
    }
    const { start, end } = range === "whole" ? { start: 0, end: size - 1 } : range;
    const length = Math.max(0, end - start + 1);
    if (range === "whole") res.writeHead(200, { ...headers, "content-length": length });
    else res.writeHead(206, { ...headers, "content-length": length, "content-range": `bytes ${start}-${end}/${size}` });
    if (req.method === "HEAD" || length === 0) {
      res.end();
      return;
    }
    const stream = handle.createReadStream({ start, end, autoClose: false });
    stream.on("data", (chunk) => (entry.bytes += chunk.length));
    // A read error (the disk) ends this response, not the server.
    stream.on("error", () => res.destroy());
    await new Promise<void>((resolve) => {
      stream.pipe(res);
      res.on("close", () => {
        stream.destroy();
        resolve();
      });
    });
  } finally {
    await handle.close().catch(() => undefined);
  }
}
