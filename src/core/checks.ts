// Checks on what a build produced, before anything is written to the tree.
import type { Host, Inventory } from "./inventory.ts";
import type { ClassName } from "./names.ts";
import type { ClassBuild } from "./tree.ts";

/**
 * Firmware and iPXE load images into 32-bit address space: users of nixpkgs' netboot report
 * initrds over 2 GiB arriving malformed and over 4 GiB silently dropped. 2 GiB is the limit.
 */
export const MAX_IMAGE_BYTES = 2 ** 31;

/** Headroom for the kernel and the running system beyond the image itself. */
export const RAM_HEADROOM_BYTES = 512 * 2 ** 20;

export interface SizeProblem {
  className: ClassName;
  what: "kernel" | "initrd";
  size: number;
}

export function oversizedImages(builds: ReadonlyMap<ClassName, ClassBuild>): SizeProblem[] {
  const out: SizeProblem[] = [];
  for (const [className, b] of builds) {
    if (b.kernel.size >= MAX_IMAGE_BYTES) out.push({ className, what: "kernel", size: b.kernel.size });
    if (b.initrd.size >= MAX_IMAGE_BYTES) out.push({ className, what: "initrd", size: b.initrd.size });
  }
  return out;
}

/**
 * RAM a host needs to netboot its class, estimated: the loaded kernel and initrd stay in memory,
 * the initrd's contents are unpacked into RAM as well (the existing setup measured first-boot RAM
 * at about twice the store image), plus headroom to run.
 */
export function ramNeeded(build: { kernel: { size: number }; initrd: { size: number } }): number {
  return build.kernel.size + 2 * build.initrd.size + RAM_HEADROOM_BYTES;
}

export function hostsShortOfRam(inv: Inventory, builds: ReadonlyMap<ClassName, ClassBuild>): { host: Host; needed: number }[] {
  const out: { host: Host; needed: number }[] = [];
  for (const host of inv.hosts) {
    const build = builds.get(host.className);
    if (!build || host.ramBytes === undefined) continue;
    const needed = ramNeeded(build);
    if (host.ramBytes < needed) out.push({ host, needed });
  }
  return out;
}
