// Real block devices for tests of disk provisioning: loop devices over sparse files in a temp
// folder. Partitions, filesystems, mounts, swap and LVM metadata on them are real, and no real
// disk is touched. Needs root. `cleanup()` undoes everything (mounts and swap under the lab,
// loop devices, the folder), also after a failed test: call it from afterAll.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Runs a command (sbin folders on PATH) and returns its stdout; throws with its stderr on failure. */
export function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PATH: sbinPath(), LVM_SUPPRESS_FD_WARNINGS: "1", ...env } });
}

/** PATH with /usr/sbin and /sbin, where losetup, mkfs and lvm live. */
export function sbinPath(): string {
  return [process.env["PATH"] ?? "/usr/bin:/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"].join(":");
}

const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mount table (/proc/self/mountinfo), decoded, in mount order. */
export function mounts(): { target: string; source: string; fstype: string }[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const f = l.split(" ");
      const dash = f.indexOf("-", 6);
      return { target: unescape(f[4]!), fstype: f[dash + 1]!, source: unescape(f[dash + 2]!) };
    });
}

export class LoopLab {
  readonly dir: string;
  private readonly loops: string[] = [];

  constructor(prefix = "netbuild-loop-") {
    this.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  }

  /** A new empty disk of `sizeMiB` (sparse): a loop device with partition scanning, e.g. /dev/loop3. */
  disk(name: string, sizeMiB = 16): string {
    const file = path.join(this.dir, `${name}.img`);
    writeFileSync(file, "");
    truncateSync(file, sizeMiB * 1024 * 1024);
    const dev = sh("losetup", ["--find", "--show", "--partscan", file]).trim();
    this.loops.push(dev);
    return dev;
  }

  /** A folder inside the lab. */
  folder(...parts: string[]): string {
    const d = path.join(this.dir, ...parts);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Unmounts what is mounted under the lab, turns off swap on its disks, detaches them, deletes the folder. */
  cleanup(): void {
    const problems: string[] = [];
    const attempt = (what: string, f: () => void) => {
      try {
        f();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    for (const mp of mounts().map((m) => m.target).reverse()) {
      if (mp.startsWith(this.dir + "/")) {
        attempt(`umount ${mp}`, () => {
          try {
            sh("umount", [mp]);
          } catch {
            sh("umount", ["--lazy", mp]);
          }
        });
      }
    }
    const swaps = readFileSync("/proc/swaps", "utf8");
    for (const dev of this.loops.splice(0)) {
      for (const node of swaps.split("\n").map((l) => l.split(/\s+/)[0]!)) {
        if (node === dev || node.startsWith(`${dev}p`)) attempt(`swapoff ${node}`, () => sh("swapoff", [node]));
      }
      attempt(`losetup -d ${dev}`, () => sh("losetup", ["--detach", dev]));
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`loop lab cleanup:\n${problems.join("\n")}`);
  }
}
