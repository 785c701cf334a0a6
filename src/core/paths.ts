// The path half of netbuild's confinement rule, pure. Every path netbuild writes, renames, links
// or removes under a root (out/, a target folder) is a relative, `/`-separated path that cannot
// leave it; every path read back from a record (out/'s manifest, a target's deployed.json) must
// also name a place of the tree. The file-system half (no link where a folder should be) is
// adapters/confine.ts.

/** Why `rel` cannot be used as a path under a root, or undefined when it can. */
export function relPathProblem(rel: string): string | undefined {
  if (rel === "") return "is empty";
  if (rel.startsWith("/")) return "is absolute";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(rel)) return "has a control character";
  if (rel.includes("\\")) return "has a backslash";
  // Invisible and direction-changing characters (U+200B–U+200F, U+202A–U+202E, U+2066–U+2069, U+FEFF) would make a path print as another.
  if (/[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/.test(rel)) return "has an invisible or direction-changing character";
  const parts = rel.split("/");
  if (parts.includes("..")) return "has a `..` part (it would leave the folder)";
  if (parts.some((p) => p === "" || p === ".")) return "has an empty or `.` part";
  return undefined;
}

/** Where the tree holds the iPXE binaries (ipxe/undionly.kpxe, …): a TFTP server's root, or fetched over HTTP. */
export const IPXE_DIR = "ipxe";

/** What BIOS firmware gets (UEFI gets the site's ipxe.efi: snponly.efi or ipxe.efi). */
export const IPXE_BIOS = "undionly.kpxe";

/** The iPXE binaries a tree may hold: BIOS's, and the two UEFI builds a site chooses from (ipxe.efi). */
export const IPXE_NAMES: readonly string[] = [IPXE_BIOS, "snponly.efi", "ipxe.efi"];

/** Whether a tree path holds bytes rather than text (an iPXE binary). */
export function isBinaryPath(p: string): boolean {
  return p.startsWith(`${IPXE_DIR}/`);
}

/** The top-level names of the served tree; a record naming anything else is not netbuild's. */
const TREE_TOP = ["by-mac", "by-host", "by-class"];

/** Why `rel` is not a path of the served tree (boot.ipxe, ipxe/<binary>, by-mac/…, by-host/…, by-class/…), or undefined. */
export function treePathProblem(rel: string): string | undefined {
  const problem = relPathProblem(rel);
  if (problem) return problem;
  if (rel === "boot.ipxe") return undefined;
  const [top, ...rest] = rel.split("/");
  if (top === IPXE_DIR) return rest.length === 1 && IPXE_NAMES.includes(rest[0]!) ? undefined : `is not one of the tree's iPXE binaries (${IPXE_NAMES.map((n) => `${IPXE_DIR}/${n}`).join(", ")})`;
  if (!TREE_TOP.includes(top!) || rest.length === 0) return "is not a path of the tree (boot.ipxe, ipxe/, by-mac/, by-host/ or by-class/)";
  return undefined;
}

/** Every folder on the way to `rel`, outermost first (`a/b/c` → `a`, `a/b`). */
export function foldersOf(rel: string): string[] {
  const parts = rel.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/**
 * The temporary name a write of `rel` goes to before its rename: fixed and recognisable, so an
 * interrupted run's leftover is overwritten or removed by the next one (never piles up).
 */
export function tempName(rel: string): string {
  const i = rel.lastIndexOf("/");
  return `${rel.slice(0, i + 1)}.${rel.slice(i + 1)}.netbuild-tmp`;
}

/** Netbuild's own leftovers in a folder: fixed temporary names, and the random ones netbuild used before them (`.<name>.tmp-<8 hex>`). */
export function isLeftoverName(name: string): boolean {
  return /^\..+\.netbuild-tmp$/.test(name) || /^\..+\.tmp-[0-9a-f]{8}$/.test(name);
}
