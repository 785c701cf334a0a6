// Expected failures carry a code, where they happened and a hint; only cli.ts prints them and
// picks the exit code. Anything else that escapes is a bug in netbuild.

export type ErrorCode =
  | "INVENTORY_INVALID"
  | "USAGE"
  | "OUT_NOT_A_TREE"
  | "OUT_CONFLICT"
  | "NIX_NOT_FOUND"
  | "NIX_EVAL_FAILED"
  | "NIX_BUILD_FAILED"
  | "NIX_FETCH_FAILED"
  | "NIX_TOO_OLD"
  | "NIXPKGS_NOT_FOUND"
  | "ARTIFACT_TOO_LARGE"
  | "ARTIFACT_UNSAFE"
  | "COMMAND_FAILED"
  | "NOT_PINNED"
  | "COMMAND_NOT_FOUND"
  | "SSH_FAILED"
  | "SSH_AUTH_FAILED"
  | "HOST_KEY_UNKNOWN"
  | "HOST_KEY_CHANGED"
  | "TARGET_NOT_A_TREE"
  | "TARGET_CONFLICT"
  | "WIPE_NOT_CONFIRMED"
  | "CLASS_NOT_SERVED"
  | "OUT_NOT_BUILT"
  | "DEPLOY_LOCKED"
  | "DEPLOY_FAILED"
  | "TARGETS_FAILED"
  | "NOTHING_TO_ROLL_BACK"
  | "VERIFY_FAILED"
  | "PIN_FAILED"
  | "SITE_INCOMPLETE"
  | "IPXE_NOT_FOUND"
  | "ROOT_CONFLICT"
  | "SERVE_FAILED"
  | "TRY_FAILED";

/** One target of a command run on several: what it did, or why it failed. */
export type TargetOutcome = { name: string; ok: true; result: unknown } | { name: string; ok: false; error: { code: string; message: string; hint?: string | undefined } };

/** A position in an inventory file: 1-based line and column. */
export interface Where {
  file: string;
  line?: number;
  col?: number;
  /** The field path as the user reads it, e.g. `hosts.aleph.mac`. */
  field?: string;
}

export interface Issue {
  severity: "error" | "warning";
  where: Where;
  message: string;
  hint?: string;
}

/** Exit code 2: the input (inventory, flags) is wrong; 1: something failed while doing the work. */
// A Nix evaluation error is the input's (a class's modules, the nixpkgs given): the same input fails
// the same way every time. A Nix too old for the nixpkgs, or a path that is no nixpkgs, is the setup's.
const INPUT_CODES: ReadonlySet<ErrorCode> = new Set(["INVENTORY_INVALID", "USAGE", "OUT_NOT_A_TREE", "OUT_CONFLICT", "NOT_PINNED", "TARGET_NOT_A_TREE", "TARGET_CONFLICT", "WIPE_NOT_CONFIRMED", "CLASS_NOT_SERVED", "NIX_EVAL_FAILED", "NIX_TOO_OLD", "NIXPKGS_NOT_FOUND", "SITE_INCOMPLETE", "ROOT_CONFLICT", "IPXE_NOT_FOUND"]);

export class UserError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly issues: readonly Issue[];
  /** Extra text shown under the message (e.g. the tail of a command's stderr). */
  readonly detail: string | undefined;
  /** Several targets, some failed: each target's outcome (its result, or its error), for --json. */
  readonly targets: readonly TargetOutcome[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { hint?: string; issues?: readonly Issue[]; detail?: string; targets?: readonly TargetOutcome[] } = {},
  ) {
    super(message);
    this.name = "UserError";
    this.code = code;
    this.hint = options.hint;
    this.issues = options.issues ?? [];
    this.detail = options.detail;
    this.targets = options.targets;
  }

  get exitCode(): 1 | 2 {
    return INPUT_CODES.has(this.code) ? 2 : 1;
  }
}

export function formatWhere(where: Where): string {
  // A file name with a line break or other control character is shown quoted, never raw.
  // eslint-disable-next-line no-control-regex
  let s = /[\x00-\x1f\x7f]/.test(where.file) ? JSON.stringify(where.file) : where.file;
  if (where.line !== undefined) s += `:${where.line}`;
  if (where.line !== undefined && where.col !== undefined) s += `:${where.col}`;
  return s;
}

/** One issue, compiler style: `file:line:col  field: message` and an indented hint. */
export function formatIssue(issue: Issue): string {
  const field = issue.where.field ? `${issue.where.field}: ` : "";
  const tag = issue.severity === "warning" ? "warning: " : "";
  let s = `${formatWhere(issue.where)}  ${tag}${field}${issue.message}`;
  if (issue.hint) s += `\n  hint: ${issue.hint}`;
  return s;
}
