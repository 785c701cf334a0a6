// Where netbuild's own files are (package.json, the iPXE templates, the Nix library, the NixOS
// module): found from this module, one folder below the package whichever way the code runs (src/
// through tsx, or dist/cli.js, the bundle `npm run compile` makes, which holds this module).
import { fileURLToPath } from "node:url";

const PACKAGE_ROOT = new URL("../", import.meta.url);

/** A file of the package, by its path in the package (`nix/lib.nix`; a folder ends with `/`). */
export function packageFile(rel: string): URL {
  return new URL(rel, PACKAGE_ROOT);
}

/** The same, as a path. */
export function packagePath(rel: string): string {
  return fileURLToPath(packageFile(rel));
}
