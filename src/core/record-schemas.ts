// The records' schemas (see records.ts), in zod: what a record must be, said by where in the file
// and what is wrong. Loaded only for a record the hand-written checks refuse, and by the tests that
// hold those checks to these schemas.
import { z } from "zod";
import { fieldPath } from "./excerpt.ts";
import { treePathProblem } from "./paths.ts";
import { COMMIT, DEPLOYER, GENERATION_ID, HOST_LINK, isRealUtcTime, kindsAt, SHA256_HEX, STAMP_NUMBER, STORE_FILE, UTC_TIME, type RecordResult } from "./records.ts";

const SHA256 = z.string().regex(SHA256_HEX, "expected a sha256 in hex");
const TreePath = z.string().superRefine((p, ctx) => {
  const problem = treePathProblem(p);
  if (problem) ctx.addIssue({ code: "custom", message: `the path ${problem}` });
});
const StoreFile = z.string().regex(STORE_FILE, "expected a file in the Nix store").refine((p) => !p.split("/").includes(".."), "the path has a `..` part");
const Size = z.number().int().nonnegative();

const ManifestEntrySchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("file"), sha256: SHA256 }),
  z.strictObject({ kind: z.literal("artifact"), size: Size, sha256: SHA256 }),
  z.strictObject({ kind: z.literal("symlink"), target: z.string().regex(HOST_LINK, "expected a link to ../by-host/<host>").refine((t) => t !== "../by-host/.." && t !== "../by-host/.", "expected a link to ../by-host/<host>") }),
]);


/** Entries keyed by tree path: the key is checked as strictly as any path value, and against the kind recorded there. */
const Entries = z.record(z.string(), ManifestEntrySchema).superRefine((entries, ctx) => {
  for (const [key, entry] of Object.entries(entries)) {
    const problem = treePathProblem(key);
    if (problem) ctx.addIssue({ code: "custom", path: [key], message: `the path ${problem}` });
    else if (!kindsAt(key).includes(entry.kind)) ctx.addIssue({ code: "custom", path: [key], message: `netbuild never writes ${entry.kind === "artifact" ? "an artifact" : entry.kind === "symlink" ? "a link" : "a file"} there` });
  }
});

const BuiltFileSchema = z.strictObject({ path: TreePath, storeFile: StoreFile, size: Size });

const StampNumber = z.string().regex(STAMP_NUMBER, "expected a whole number in decimal");
const TreeManifestEntrySchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("file"), sha256: SHA256, size: Size.optional(), mtimeNs: StampNumber.optional(), ino: StampNumber.optional() }),
  ManifestEntrySchema.options[1],
  ManifestEntrySchema.options[2],
]);

/** As Entries, for out/'s manifest (its files may carry where they stood). */
const TreeEntries = z.record(z.string(), TreeManifestEntrySchema).superRefine((entries, ctx) => {
  for (const [key, entry] of Object.entries(entries)) {
    const problem = treePathProblem(key);
    if (problem) ctx.addIssue({ code: "custom", path: [key], message: `the path ${problem}` });
    else if (!kindsAt(key).includes(entry.kind)) ctx.addIssue({ code: "custom", path: [key], message: `netbuild never writes ${entry.kind === "artifact" ? "an artifact" : entry.kind === "symlink" ? "a link" : "a file"} there` });
  }
});

export const TreeManifestSchema = z.strictObject({
  format: z.union([z.literal(1), z.literal(2)], { error: "expected 1 or 2" }),
  classes: z.record(
    z.string(),
    z.strictObject({
      kind: z.enum(["nixos", "prebuilt", "talos"]),
      kernel: BuiltFileSchema,
      initrd: BuiltFileSchema,
      kernelParams: z.array(z.string()),
      previous: z.strictObject({ kernel: TreePath, initrd: TreePath }).optional(),
      kernelSha256: SHA256,
      initrdSha256: SHA256,
    }),
  ),
  entries: TreeEntries,
  pending: z.array(TreePath).optional(),
  inputs: SHA256.optional(),
});

const OriginShape = {
  at: z.string().regex(UTC_TIME, "expected a UTC time like 2026-11-29T22:41:18Z").refine(isRealUtcTime, "expected a real UTC time like 2026-11-29T22:41:18Z"),
  by: z.string().regex(DEPLOYER, "expected user@machine"),
  commit: z.string().regex(COMMIT, "expected a git commit").optional(),
};

const GenerationSchema = z.strictObject({
  id: z.string().regex(GENERATION_ID, "expected a 12-hex-digit generation id"),
  kernel: TreePath,
  initrd: TreePath,
  script: z.string(),
  sha256: SHA256,
  deployed: z.strictObject(OriginShape).optional(),
});

// Format 2 (netbuild 0.2) adds who deployed (generations' `deployed`, `last`); format 1 is read as is.
// A netbuild that knows only format 1 then says the record is newer than it, not that it is damaged.
// Format 3 is format 2 naming iPXE binaries (records.ts recordFormat), for the same reason.
export const DeployedManifestSchema = z.strictObject({
  format: z.union([z.literal(1), z.literal(2), z.literal(3)], { error: "expected 1, 2 or 3" }),
  classes: z.record(
    z.string(),
    z.strictObject({
      current: z.string(),
      generations: z.array(GenerationSchema),
      rolledBackFrom: z.array(z.string()).optional(),
    }),
  ),
  entries: Entries,
  pending: z.array(TreePath).optional(),
  last: z.strictObject({ command: z.enum(["deploy", "rollback"]), ...OriginShape }).optional(),
});

/** Where in the record, as `entries["../../x"]` or `classes.demo.generations[1].kernel`, through excerpt.ts (never a whole value, never a control character). */
function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const where = i.path.reduce<string>((at, k) => (typeof k === "number" ? `${at}[${k}]` : fieldPath(at, String(k))), "");
    return `${where || "(the whole file)"}: ${i.message}`;
  });
}

export type StoredDeployed = z.infer<typeof DeployedManifestSchema>;

/** out/'s manifest as the schema reads it, or what is wrong with it. */
export function schemaTreeManifest(data: unknown): RecordResult<z.infer<typeof TreeManifestSchema>> {
  const r = TreeManifestSchema.safeParse(data);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: formatIssues(r.error.issues) };
}

/** A target's record as the schema reads it, or what is wrong with it. */
export function schemaDeployedManifest(data: unknown): RecordResult<StoredDeployed> {
  const r = DeployedManifestSchema.safeParse(data);
  return r.success ? { ok: true, value: r.data } : { ok: false, problems: formatIssues(r.error.issues) };
}
