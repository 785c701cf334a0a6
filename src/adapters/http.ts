// HTTP as a booting machine uses it: GET scripts as text, GET kernels and initrds streamed through
// a hash (never held whole in memory).
import { createHash } from "node:crypto";
import { UserError } from "../errors.ts";

async function get(url: string): Promise<Response> {
  try {
    return await fetch(url, { redirect: "follow" });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new UserError("VERIFY_FAILED", `cannot fetch ${url}: ${cause}`, { hint: "is the boot server's web server up, and is this its URL?" });
  }
}

/** The body of a script; undefined for a 404 (what iPXE treats as "no such file"); other failures throw with the status. */
export async function fetchText(url: string): Promise<string | undefined> {
  const res = await get(url);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new UserError("VERIFY_FAILED", `HTTP ${res.status}`);
  return res.text();
}

export async function fetchDigest(url: string): Promise<{ status: number; size: number; sha256: string }> {
  const res = await get(url);
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
