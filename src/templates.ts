// The iPXE templates (src/templates/*.hbs), compiled once. Kept out of core/ because reading them
// is I/O; core's render functions receive them.
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import type { IpxeTemplates } from "./core/tree.ts";
import { packageFile } from "./package-files.ts";

/** Where the templates are: src/templates/ (read from there by the compiled bundle too). */
export const TEMPLATE_DIR = packageFile("src/templates/");

function compile(name: string): (data: object) => string {
  const text = readFileSync(new URL(`${name}.hbs`, TEMPLATE_DIR), "utf8");
  // noEscape: iPXE is not HTML; values are made safe by validation (names.ts), not escaping.
  // knownHelpersOnly: the templates use only `if` and `each`, so a {{name}} is compiled as a plain
  // lookup, never a possible helper call (the same output, in about half the time once warm: a build
  // renders 10,000 host scripts). A template using any other helper would fail to compile, not render differently.
  return Handlebars.compile(text, { strict: true, noEscape: true, knownHelpers: { if: true, each: true }, knownHelpersOnly: true });
}

let cached: IpxeTemplates | undefined;

export function ipxeTemplates(): IpxeTemplates {
  cached ??= { boot: compile("boot.ipxe"), host: compile("host.ipxe"), class: compile("class.ipxe") };
  return cached;
}
