// HTTP as a booting machine uses it: GET scripts as text, GET kernels and initrds streamed through
// a hash (never held whole in memory).
import { createHash } from "node:crypto";
import { UserError, type ErrorCode } from "../errors.ts";

/** How a request that never got an answer is reported (the default: a boot server being verified). */
export interface Unreachable {
  code: ErrorCode;
  /** Goes before the URL, e.g. "cannot fetch". */
  what: string;
  hint: string;
}

const BOOT_SERVER: Unreachable = { code: "VERIFY_FAILED", what: "cannot fetch", hint: "is the boot server's web server up, and is this its URL?" };

/** Why fetch() failed, in the words of the network layer (refused, not found, timed out). */
export function causeOf(e: unknown): string {
  return (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
}

async function get(url: string, unreachable: Unreachable = BOOT_SERVER): Promise<Response> {
  try {
    return await fetch(url, { redirect: "follow" });
  } catch (e) {
    throw new UserError(unreachable.code, `${unreachable.what} ${url}: ${causeOf(e)}`, { hint: unreachable.hint });
  }
}

/** The body of a script; undefined for a 404 (what iPXE treats as "no such file"); other failures throw with the status. */
export async function fetchText(url: string): Promise<string | undefined> {
  const res = await get(url);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new UserError("VERIFY_FAILED", `HTTP ${res.status}`);
  return res.text();
}

/** Status, size and sha256 (hex) of what the URL serves, streamed through the hash. */
export async function fetchDigest(url: string, unreachable?: Unreachable): Promise<{ status: number; size: number; sha256: string }> {
  const res = await get(url, unreachable);
  const hash = createHash("sha256");
  let size = 0;
  if (res.ok && res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
    }
  } else await res.body?.cancel();
  return { status: res.status, size, sha256: hash.digest("hex") };
}
