// The NixOS module's boot scripts, run as the module installs them, with real bash against real
// block devices (loop devices over sparse files; root needed). The scripts are the files in
// nixos/modules/ themselves, not copies:
//   netbuild-cmdline.sh   the one parser of the kernel command line (sourced by the others)
//   netbuild-hostname.sh  hostname= → the kernel hostname and a static /etc/hostname
//   provision-disks.sh    one-shot provisioning: format when <prefix>.provision_disks=true and
//                         <prefix>.provision_id=<id> differs from the id recorded on the disks
//                         by the last successful provision; mount on every boot.
// A "boot" here is: a fresh run directory (the per-boot marker lives on /run, a tmpfs) and a
// command line file standing in for /proc/cmdline. The class's format script wipes the disk and
// makes ext4 on it, either on the whole disk or on a GPT partition made with sgdisk, as a real
// class would; it also logs what it found on the disk before wiping, which is how the tests count
// formats.
//
// LVM: this kernel has no device-mapper, so logical volumes cannot be created the usual way nor
// activated. Covered: a physical volume and volume group (pvcreate, vgcreate) on the disk are
// deactivated (`vgchange --activate n` on a group with no active volumes) and removed
// (vgremove, pvremove) before the wipe; a group that also has a physical volume on a device not
// listed is refused; a logical volume written into the metadata (vgcfgrestore) whose state LVM
// cannot tell is refused. Not covered: an active or open logical volume (refused, but needs
// device-mapper), `vgchange --activate n` failing, and a volume mounted from an LV (the mount
// check by major:minor covers it, untested here).
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cleanupTempDirs, REPO, tempDir } from "./support/inventory.ts";
import { LoopLab, mounts, sbinPath, sh } from "./support/loop.ts";
import { inCI } from "./support/tools.ts";

const MODULES = path.join(REPO, "nixos/modules");
const CMDLINE_LIB = path.join(MODULES, "netbuild-cmdline.sh");
const HOSTNAME = path.join(MODULES, "netbuild-hostname.sh");
const PROVISION = path.join(MODULES, "provision-disks.sh");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bash SCRIPT` as the systemd unit runs it, with the given environment on top of this process's. */
function bash(script: string, env: Record<string, string>, args: string[] = []): Run {
  const r = spawnSync("bash", [script, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, PATH: sbinPath(), LVM_SUPPRESS_FD_WARNINGS: "1", ...env } });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The reason the loop-device tests cannot run here; in CI a missing tool fails the file instead. */
function loopToolsMissing(): string | undefined {
  const tools = ["bash", "losetup", "wipefs", "mkfs.ext4", "blkid", "sgdisk", "partx", "lsblk", "findmnt", "mount", "umount", "mkswap", "swapon", "lvm", "pvcreate", "vgcreate", "vgcfgbackup", "vgcfgrestore"];
  const absent = tools.filter((t) => spawnSync("sh", ["-c", 'command -v "$1"', "sh", t], { env: { ...process.env, PATH: sbinPath() } }).status !== 0);
  if (process.getuid?.() !== 0) absent.push("root (loop devices and mounts)");
  if (absent.length === 0) return undefined;
  const reason = `missing: ${absent.join(", ")}`;
  if (inCI) throw new Error(`${reason} (CI must install it: see scripts/setup)`);
  console.warn(`NOT RUN — ${reason}`);
  return reason;
}

// Every test here runs its scripts synchronously (spawnSync), and vitest runs one synchronous test
// after another without the event loop turning: the worker then answers none of vitest's own
// messages for the whole file, and vitest reports "Timeout calling onTaskUpdate" once that passes a
// minute (a loaded machine). A turn of the event loop before each test keeps it answering.
beforeEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

const ARMED = (id: string) => `initrd=initrd init=/nix/store/aaaa-nixos-system/init hostname=aleph homelab.provision_disks=true homelab.provision_id=${id} console=ttyS0`;
const PLAIN = "initrd=initrd init=/nix/store/aaaa-nixos-system/init hostname=aleph console=ttyS0";

describe("the kernel command line parser (netbuild-cmdline.sh)", () => {
  const dir = tempDir("netbuild-cmdline-");
  afterAll(() => cleanupTempDirs());

  /** What `netbuild_cmdline_value KEY` prints and returns for a command line. */
  function value(cmdline: string | undefined, key = "homelab.provision_disks"): string {
    const file = path.join(dir, "cmdline");
    rmSync(file, { force: true });
    if (cmdline !== undefined) writeFileSync(file, cmdline + "\n");
    const r = spawnSync("bash", ["-c", 'set -euo pipefail; source "$1"; if v=$(netbuild_cmdline_value "$2"); then echo "[$v]"; else echo absent; fi', "bash", CMDLINE_LIB, key], {
      encoding: "utf8",
      env: { ...process.env, NETBUILD_CMDLINE: file },
    });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  it("takes whole whitespace-separated tokens only, and the last occurrence wins", () => {
    expect(value("quiet homelab.provision_disks=true console=ttyS0")).toBe("[true]");
    expect(value("xhomelab.provision_disks=true")).toBe("absent");
    expect(value('"homelab.provision_disks=true"')).toBe("absent");
    expect(value("homelab.provision_disks")).toBe("absent");
    expect(value("homelab.provision_disks=true homelab.provision_disks=false")).toBe("[false]");
    expect(value("homelab.provision_disks=false\thomelab.provision_disks=true")).toBe("[true]");
    expect(value("homelab.provision_disks=")).toBe("[]");
    expect(value("")).toBe("absent");
    expect(value(undefined)).toBe("absent"); // no command line file at all
  });

  it("returns values exactly as written, so callers compare `true` exactly", () => {
    expect(value("homelab.provision_disks=truex")).toBe("[truex]");
    expect(value("homelab.provision_disks=TRUE")).toBe("[TRUE]");
    expect(value("homelab.provision_disks=a=b")).toBe("[a=b]");
    // A key is matched literally, never as a pattern.
    expect(value("homelab.provision_disks=true", "homelab.*")).toBe("absent");
  });
});

describe("netbuild-hostname.sh: hostname= on the command line → the kernel and a static /etc/hostname", () => {
  afterAll(() => cleanupTempDirs());

  /** A stand-in machine: the kernel's hostname file, and an /etc whose hostname links into a read-only "store". */
  function machine() {
    const root = tempDir("netbuild-hostname-");
    const kernel = path.join(root, "kernel-hostname");
    const etc = path.join(root, "etc");
    const store = path.join(root, "store-etc-hostname");
    writeFileSync(kernel, "nixos\n");
    mkdirSync(etc);
    writeFileSync(store, "nixos\n", { mode: 0o444 });
    symlinkSync(store, path.join(etc, "hostname"));
    const boot = (cmdline: string) => {
      writeFileSync(path.join(root, "cmdline"), cmdline + "\n");
      return bash(HOSTNAME, { NETBUILD_CMDLINE: path.join(root, "cmdline"), NETBUILD_KERNEL_HOSTNAME: kernel, NETBUILD_ETC: etc });
    };
    return { kernel, etc, store, boot };
  }

  it("sets the kernel hostname and replaces the /etc/hostname symlink with a regular file, never writing through it", () => {
    const m = machine();
    const r = m.boot(PLAIN);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("hostname set to aleph");
    expect(readFileSync(m.kernel, "utf8")).toBe("aleph");
    const etcHostname = path.join(m.etc, "hostname");
    expect(lstatSync(etcHostname).isFile()).toBe(true);
    expect(readFileSync(etcHostname, "utf8")).toBe("aleph\n");
    expect(statSync(etcHostname).mode & 0o777).toBe(0o644);
    expect(readFileSync(m.store, "utf8")).toBe("nixos\n"); // the link's target is untouched
    // No temp file is left behind, and a second boot with another name replaces the file.
    const again = m.boot("hostname=aleph hostname=bet");
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(etcHostname, "utf8")).toBe("bet\n");
    expect(readFileSync(m.kernel, "utf8")).toBe("bet");
    expect(spawnSync("ls", ["-A", m.etc], { encoding: "utf8" }).stdout.trim()).toBe("hostname");
  });

  it("refuses a value that is not an RFC 1123 label and changes nothing", () => {
    const m = machine();
    for (const bad of ["-aleph", "aleph-", "al_eph", "al.eph", "", "a".repeat(64), "$(reboot)"]) {
      const r = m.boot(`hostname=${bad}`);
      expect(r.code, `hostname=${bad}`).toBe(1);
      expect(r.stderr).toContain("not a valid host name");
      expect(readFileSync(m.kernel, "utf8")).toBe("nixos\n");
      expect(readlinkSync(path.join(m.etc, "hostname"))).toBe(m.store);
    }
    expect(m.boot(`hostname=${"a".repeat(63)}`).code).toBe(0);
  });

  it("leaves everything alone when there is no hostname= (a partial token does not count)", () => {
    const m = machine();
    for (const cmdline of ["initrd=initrd console=ttyS0", "xhostname=evil", '"hostname=evil"']) {
      const r = m.boot(cmdline);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("no hostname= on the kernel command line; keeping hostname 'nixos'");
      expect(readFileSync(m.kernel, "utf8")).toBe("nixos\n");
      expect(readlinkSync(path.join(m.etc, "hostname"))).toBe(m.store);
    }
  });
});

const notHere = loopToolsMissing();

describe.skipIf(notHere)("provision-disks.sh on real loop devices", () => {
  let lab: LoopLab;
  let count = 0;
  const vgSuffix = `${process.pid}${Date.now() % 100000}`;

  beforeAll(() => {
    lab = new LoopLab("netbuild-provision-");
  });

  afterAll(() => {
    lab?.cleanup();
  });

  // Two layouts a class might use. The format scripts run after the prelude's `wipefs -a`, which
  // also erases any partition table. sgdisk waits a second for the kernel on every call, so only
  // the tests about partitions use it.
  const LAYOUTS = {
    /** A GPT partition (sgdisk) with ext4 on it: the data device is `<dev>p1`. */
    gpt: {
      data: (dev: string) => `${dev}p1`,
      format: (dev: string) => `sgdisk --new=1:0:0 --typecode=1:8300 ${dev} >/dev/null
partx --update ${dev}   # this kernel does not re-read partition tables of loop devices itself
mkfs.ext4 -q -F -L data ${dev}p1
`,
    },
    /** ext4 on the whole disk. */
    disk: {
      data: (dev: string) => dev,
      format: (dev: string) => `mkfs.ext4 -q -F -L data ${dev}\n`,
    },
  };

  /**
   * A machine with one class disk, `srv` as the persistent folder on its data device, and the
   * class's format and mount scripts (bash, `set -euo pipefail`, as the module writes them).
   */
  function machine(opts: { layout?: keyof typeof LAYOUTS; format?: (dev: string) => string; mount?: (data: string, srv: string) => string } = {}) {
    const layout = LAYOUTS[opts.layout ?? "disk"];
    const name = `m${++count}`;
    const dev = lab.disk(name);
    const data = layout.data(dev);
    const home = lab.folder(name);
    const srv = path.join(home, "srv");
    const run = path.join(home, "run");
    const formats = path.join(home, "formats.log");
    const cmdlineFile = path.join(home, "cmdline");
    const formatScript = path.join(home, "format.sh");
    const mountScript = path.join(home, "mount.sh");
    const setFormat = (body: (dev: string) => string) =>
      writeFileSync(
        formatScript,
        `set -euo pipefail
found=$(blkid -p -o value -s TYPE -s PTTYPE ${dev} | paste -sd ' ' || true)
echo "before the wipe: \${found:-nothing}" >> ${formats}
wipefs -a -q ${dev}
${body(dev)}`,
      );
    setFormat(opts.format ?? layout.format);
    writeFileSync(mountScript, `set -euo pipefail\nmkdir -p ${srv}\n` + (opts.mount ?? ((d: string, s: string) => `mountpoint -q ${s} || mount ${d} ${s}\n`))(data, srv));
    const run_ = (cmdline: string, extra: Record<string, string> = {}) => {
      writeFileSync(cmdlineFile, cmdline + "\n");
      return bash(PROVISION, {
        NETBUILD_CMDLINE: cmdlineFile,
        NETBUILD_FLAG_PREFIX: "homelab",
        NETBUILD_DEVICES: dev,
        NETBUILD_FORMAT: formatScript,
        NETBUILD_MOUNT: mountScript,
        NETBUILD_PERSISTENT_DIR: srv,
        NETBUILD_RUN_DIR: run,
        ...extra,
      });
    };
    return {
      dev,
      /** The device the filesystem is on. */
      data,
      home,
      srv,
      /** A new boot: /run is empty again. Unmounts srv first, as a reboot would. */
      boot(cmdline: string, extra: Record<string, string> = {}): Run {
        if (mounted(srv)) sh("umount", [srv]);
        rmSync(run, { recursive: true, force: true });
        return run_(cmdline, extra);
      },
      /** `systemctl restart provision-disks` in the same boot. */
      restart(cmdline: string): Run {
        return run_(cmdline);
      },
      setFormat,
      /** How many times the format script ran, and what it found on the disk each time. */
      formats(): string[] {
        return existsSync(formats) ? readFileSync(formats, "utf8").trim().split("\n") : [];
      },
      recordedId(): string | undefined {
        const f = path.join(srv, ".netbuild/provision-id");
        return existsSync(f) ? readFileSync(f, "utf8") : undefined;
      },
    };
  }

  /** The source device of the filesystem mounted exactly at `dir` (the topmost), or undefined. */
  function mounted(dir: string): string | undefined {
    return mounts()
      .filter((m) => m.target === dir)
      .at(-1)?.source;
  }

  /** A machine provisioned with id `one` and holding a file. */
  function provisioned(layout: keyof typeof LAYOUTS = "disk") {
    const m = machine({ layout });
    const r = m.boot(ARMED("one"));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    writeFileSync(path.join(m.srv, "precious.txt"), "keep me\n");
    return m;
  }

  describe("one host, boot after boot", () => {
    let m: ReturnType<typeof machine>;

    it("formats a fresh disk when the flag and an id are on the command line, records the id and mounts", () => {
      m = machine({ layout: "gpt" });
      const r = m.boot(ARMED("2024-06-01.1"));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("!!! provision-disks: homelab.provision_disks=true homelab.provision_id=2024-06-01.1 is on the kernel command line");
      expect(r.stdout).toContain(`!!! provision-disks: WIPING AND FORMATTING DISKS NOW: ${m.dev}`);
      expect(r.stdout).toContain("provisioned with id 2024-06-01.1");
      expect(m.formats()).toEqual(["before the wipe: nothing"]);
      expect(m.recordedId()).toBe("2024-06-01.1\n");
      expect(mounted(m.srv)).toBe(m.data);
      writeFileSync(path.join(m.srv, "precious.txt"), "keep me\n");
    });

    it("keeps the data on a reboot with the same id (the flag was never removed)", () => {
      const r = m.boot(ARMED("2024-06-01.1"));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("already provisioned with id 2024-06-01.1: not formatting");
      expect(r.stdout).not.toContain("WIPING");
      expect(m.formats()).toHaveLength(1);
      expect(mounted(m.srv)).toBe(m.data);
      expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
    });

    it("formats again, once, for a new id", () => {
      const r = m.boot(ARMED("2024-07-15.2"));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("the disks were provisioned with id 2024-06-01.1: provisioning with id 2024-07-15.2");
      expect(r.stdout).toContain(`unmounting ${m.srv} (mounted by the mount script) before formatting`);
      expect(m.formats()).toEqual(["before the wipe: nothing", "before the wipe: gpt"]);
      expect(existsSync(path.join(m.srv, "precious.txt"))).toBe(false);
      expect(m.recordedId()).toBe("2024-07-15.2\n");
      expect(m.boot(ARMED("2024-07-15.2")).stdout).toContain("already provisioned with id 2024-07-15.2");
      expect(m.formats()).toHaveLength(2);
    });

    it("only mounts without the flag", () => {
      const r = m.boot(PLAIN);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("homelab.provision_disks=true is not on the kernel command line; not formatting");
      expect(mounted(m.srv)).toBe(m.data);
      expect(m.formats()).toHaveLength(2);
    });
  });

  it("formats nothing unless the flag is exactly `true` as a whole token and a valid id is given", () => {
    const m = provisioned();
    const notFlagged = [
      `${PLAIN} homelab.provision_id=two`,
      `${PLAIN} homelab.provision_disks=truex homelab.provision_id=two`,
      `${PLAIN} homelab.provision_disks=false homelab.provision_id=two`,
      `${PLAIN} homelab.provision_disks=TRUE homelab.provision_id=two`,
      `${PLAIN} "homelab.provision_disks=true" homelab.provision_id=two`,
      `${PLAIN} xhomelab.provision_disks=true homelab.provision_id=two`,
    ];
    for (const cmdline of notFlagged) {
      const r = m.boot(cmdline);
      expect(r.code, cmdline + "\n" + r.stdout + r.stderr).toBe(0);
      expect(r.stdout, cmdline).toContain("homelab.provision_disks=true is not on the kernel command line; not formatting");
    }
    const badId: [string, string][] = [
      [`${PLAIN} homelab.provision_disks=true`, "there is no homelab.provision_id= on the kernel command line"],
      [`${PLAIN} homelab.provision_disks=true homelab.provision_id=`, "homelab.provision_id='' is not a valid provision id"],
      [`${PLAIN} homelab.provision_disks=true homelab.provision_id=-two`, "homelab.provision_id=-two is not a valid provision id"],
      [`${PLAIN} homelab.provision_disks=true homelab.provision_id=../two`, "homelab.provision_id=../two is not a valid provision id"],
    ];
    for (const [cmdline, why] of badId) {
      const r = m.boot(cmdline);
      expect(r.code, cmdline + "\n" + r.stdout + r.stderr).toBe(0);
      expect(r.stderr, cmdline).toContain(`!!! homelab.provision_disks=true is on the kernel command line, but ${why}`);
      expect(r.stderr).toContain("!!! NOT FORMATTING ANYTHING");
    }
    expect(m.formats()).toHaveLength(1);
    expect(mounted(m.srv)).toBe(m.data);
    expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
    expect(m.recordedId()).toBe("one\n");
  });

  it("never formats on a restart in the same boot, even with a new id", () => {
    const m = provisioned();
    const r = m.restart(ARMED("two"));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("already ran in this boot");
    expect(r.stdout).toContain("only mounting");
    expect(m.formats()).toHaveLength(1);
    expect(mounted(m.srv)).toBe(m.data);
    expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
    expect(m.recordedId()).toBe("one\n");
    // The marker is per boot: the next boot formats for the new id.
    expect(m.boot(ARMED("two")).stdout).toContain("provisioned with id two");
    expect(m.formats()).toHaveLength(2);
  });

  it("refuses to format a device that is mounted elsewhere, and leaves it intact", () => {
    const m = provisioned("gpt");
    sh("umount", [m.srv]);
    const elsewhere = lab.folder(path.basename(m.home), "elsewhere");
    sh("mount", [m.data, elsewhere]);
    const r = m.boot(ARMED("two"));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`REFUSING TO FORMAT: ${m.data} (on ${m.dev}) is mounted at ${elsewhere}`);
    expect(r.stderr).toContain("nothing was formatted");
    expect(r.stdout).not.toContain("WIPING");
    expect(m.formats()).toHaveLength(1);
    expect(readFileSync(path.join(elsewhere, "precious.txt"), "utf8")).toBe("keep me\n");
    expect(readFileSync(path.join(elsewhere, ".netbuild/provision-id"), "utf8")).toBe("one\n");
    // What the mount script had mounted for the id check was unmounted again.
    expect(mounted(m.srv)).toBeUndefined();
    // A restart in this boot only mounts.
    expect(m.restart(ARMED("two")).code).toBe(0);
    expect(mounted(m.srv)).toBe(m.data);
  });

  it("refuses to format a device in use as swap", () => {
    const m = machine();
    sh("mkswap", ["-q", m.dev]);
    sh("swapon", [m.dev]);
    try {
      const r = m.boot(ARMED("one"));
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain(`REFUSING TO FORMAT: ${m.dev} is in use as swap`);
      expect(m.formats()).toHaveLength(0);
    } finally {
      sh("swapoff", [m.dev]);
    }
  });

  it("records nothing when mkfs fails, and the next boot tries again", () => {
    const m = machine({ format: (dev) => LAYOUTS.disk.format(dev).replace("mkfs.ext4 -q -F", "mkfs.ext4 -q -F -N 99999999") });
    const r = m.boot(ARMED("one"));
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stdout).toContain("WIPING AND FORMATTING DISKS NOW");
    expect(r.stderr).toContain("the format script FAILED");
    expect(r.stderr).toContain("provision id one NOT recorded; the next boot with homelab.provision_id=one tries again");
    expect(mounted(m.srv)).toBeUndefined();
    expect(m.recordedId()).toBeUndefined();
    expect(m.formats()).toHaveLength(1);
    // The class's format script is fixed; the same command line formats on the next boot.
    m.setFormat(LAYOUTS.disk.format);
    const next = m.boot(ARMED("one"));
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(next.stdout).toContain("the mount script failed (status 32), so the id of the disks' last provision cannot be read: provisioning with id one");
    expect(next.stdout).toContain(`${m.dev} hold no filesystem, partition table or other signature: blank disks`);
    expect(next.stdout).toContain("provisioned with id one");
    expect(m.formats()).toHaveLength(2);
    expect(m.recordedId()).toBe("one\n");
  });

  it("records nothing and fails when the persistent folder is not on the devices (a tmpfs)", () => {
    const m = machine({ mount: (data, srv) => `mkdir -p ${srv}-data\nmountpoint -q ${srv}-data || mount ${data} ${srv}-data\nmountpoint -q ${srv} || mount -t tmpfs tmpfs ${srv}\n` });
    const r = m.boot(ARMED("one"));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(m.formats()).toHaveLength(1);
    expect(r.stderr).toContain(`!!! ${m.srv} is not on ${m.dev} after formatting and mounting (it is on: tmpfs tmpfs); provision id one NOT recorded`);
    expect(r.stderr).toContain("until the id is recorded on the disks, no boot formats them again without homelab.provision_force=true");
    expect(m.recordedId()).toBeUndefined();
    expect(existsSync(path.join(`${m.srv}-data`, ".netbuild"))).toBe(false);
    // No format loop: the next boot finds data whose provision it cannot read, and leaves it.
    sh("umount", [`${m.srv}-data`]);
    const next = m.boot(ARMED("one"));
    expect(next.code, next.stdout + next.stderr).toBe(1);
    expect(next.stderr).toContain(`REFUSING TO FORMAT: the disks hold data (${m.dev}: ext4) and ${m.srv} is not on ${m.dev} after mounting, so the id of the disks' last provision cannot be read`);
    expect(m.formats()).toHaveLength(1);
  });

  it("never formats disks that hold data it cannot mount (a broken mount script, another install) unless the wipe is forced", () => {
    const m = provisioned();
    // A new image whose mount script fails: the flag is still armed, with a new id even.
    const mountScript = path.join(m.home, "mount.sh");
    const good = readFileSync(mountScript, "utf8");
    writeFileSync(mountScript, "set -euo pipefail\necho 'mount: wrong fs type' >&2\nexit 32\n");
    for (const id of ["one", "two"]) {
      const r = m.boot(ARMED(id));
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain(`REFUSING TO FORMAT: the disks hold data (${m.dev}: ext4) and the mount script failed (status 32), so the id of the disks' last provision cannot be read`);
      expect(r.stderr).toContain("arm the wipe with force (`netbuild provision HOST --force`, which adds homelab.provision_force=true)");
      expect(r.stdout).not.toContain("WIPING");
    }
    expect(m.formats()).toHaveLength(1);
    writeFileSync(mountScript, good);
    expect(m.boot(PLAIN).code).toBe(0);
    expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
    // Forced, with the mount still failing: formatted (the operator said these disks hold nothing of value).
    writeFileSync(mountScript, "set -euo pipefail\nexit 32\n");
    const forced = m.boot(`${ARMED("two")} homelab.provision_force=true`);
    expect(forced.stderr).toContain("homelab.provision_force=true is on the kernel command line: formatting anyway");
    expect(forced.stdout).toContain("WIPING AND FORMATTING DISKS NOW");
    expect(m.formats()).toEqual(["before the wipe: nothing", "before the wipe: ext4"]);
    // `force` counts only as the exact token `…=true`.
    writeFileSync(mountScript, good);
    expect(m.boot(PLAIN).code).toBe(0);
    writeFileSync(mountScript, "set -euo pipefail\nexit 32\n");
    for (const f of ["homelab.provision_force=yes", "homelab.provision_force", "xhomelab.provision_force=true"]) {
      expect(m.boot(`${ARMED("three")} ${f}`).code, f).toBe(1);
    }
    expect(m.formats()).toHaveLength(2);
  });

  it("never formats mounted disks that record no id (another persistentDir, disks provisioned before ids), unless forced", () => {
    const m = provisioned();
    rmSync(path.join(m.srv, ".netbuild"), { recursive: true });
    const r = m.boot(ARMED("two"));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`REFUSING TO FORMAT: the disks hold data (${m.dev}: ext4) and no provision id is recorded in ${m.srv}/.netbuild/provision-id`);
    expect(m.formats()).toHaveLength(1);
    expect(m.boot(PLAIN).code).toBe(0);
    expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
    const forced = m.boot(`${ARMED("two")} homelab.provision_force=true`);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stderr).toContain("force stays armed");
    expect(m.formats()).toHaveLength(2);
    expect(m.recordedId()).toBe("two\n");
  });

  it("keeps disks that record this id even when the mount script fails after mounting them, forced or not", () => {
    const m = provisioned();
    const mountScript = path.join(m.home, "mount.sh");
    writeFileSync(mountScript, `${readFileSync(mountScript, "utf8")}exit 3\n`);
    for (const cmdline of [ARMED("one"), `${ARMED("one")} homelab.provision_force=true`]) {
      const r = m.boot(cmdline);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stdout).toContain("already provisioned with id one: not formatting");
      expect(r.stderr).toContain("the mount script failed (status 3)");
    }
    expect(m.formats()).toHaveLength(1);
    expect(readFileSync(path.join(m.srv, "precious.txt"), "utf8")).toBe("keep me\n");
  });

  it("checks the whole disk when a class lists one of its partitions: another partition mounted refuses the wipe", () => {
    const m = machine({ layout: "gpt", format: (dev) => `sgdisk --new=1:0:+8M --new=2:0:0 ${dev} >/dev/null\npartx --update ${dev}\nmkfs.ext4 -q -F ${dev}p1\nmkfs.ext4 -q -F ${dev}p2\n` });
    expect(m.boot(ARMED("one")).code).toBe(0);
    sh("umount", [m.srv]);
    const elsewhere = lab.folder(path.basename(m.home), "p2");
    sh("mount", [`${m.dev}p2`, elsewhere]);
    writeFileSync(path.join(elsewhere, "other.txt"), "other partition\n");
    const r = m.boot(ARMED("two"), { NETBUILD_DEVICES: `${m.dev}p1` });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`REFUSING TO FORMAT: ${m.dev}p2 (on ${m.dev}) is mounted at ${elsewhere}`);
    expect(m.formats()).toHaveLength(1);
    expect(readFileSync(path.join(elsewhere, "other.txt"), "utf8")).toBe("other partition\n");
  });

  it("deactivates and removes an LVM volume group on the disk before the wipe", () => {
    const m = machine();
    const vg = `nbtest${vgSuffix}a`;
    sh("pvcreate", ["-q", "-y", m.dev]);
    sh("vgcreate", ["-q", vg, m.dev]);
    // Nothing the mount script can mount: a group of another install, left alone unless forced.
    const refused = m.boot(ARMED("one"));
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toContain(`REFUSING TO FORMAT: the disks hold data (${m.dev}: LVM2_member)`);
    expect(sh("vgs", ["--noheadings", "-o", "vg_name", vg]).trim()).toBe(vg);
    const r = m.boot(`${ARMED("one")} homelab.provision_force=true`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`volume group ${vg} is on ${m.dev}: deactivating it`);
    expect(r.stdout).toContain(`removing volume group ${vg}`);
    // The format script found no LVM signature left: pvremove ran before the wipe.
    expect(m.formats()).toEqual(["before the wipe: nothing"]);
    expect(spawnSync("vgs", [vg], { env: { ...process.env, PATH: sbinPath(), LVM_SUPPRESS_FD_WARNINGS: "1" } }).status).not.toBe(0);
    expect(m.recordedId()).toBe("one\n");
  });

  it("refuses a volume group that also has a physical volume on a device that is not listed", () => {
    const m = machine();
    const other = lab.disk(`m${count}-other`);
    const vg = `nbtest${vgSuffix}b`;
    sh("pvcreate", ["-q", "-y", m.dev, other]);
    sh("vgcreate", ["-q", vg, m.dev, other]);
    const r = m.boot(ARMED("one"));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`REFUSING TO FORMAT: volume group ${vg} also has physical volume ${other}, which is not on ${m.dev}`);
    expect(m.formats()).toHaveLength(0);
    expect(sh("vgs", ["--noheadings", "-o", "pv_count", vg]).trim()).toBe("2");
  });

  // With device-mapper (not on this kind of machine) the volume would simply be inactive.
  it.runIf(!readFileSync("/proc/misc", "utf8").includes("device-mapper"))("refuses a volume group whose logical volume's state LVM cannot tell (no device-mapper)", () => {
    const m = machine();
    const vg = `nbtest${vgSuffix}c`;
    sh("pvcreate", ["-q", "-y", m.dev]);
    sh("vgcreate", ["-q", vg, m.dev]);
    // lvcreate needs device-mapper; write a 2-extent linear volume into the metadata instead.
    const cfg = path.join(m.home, `${vg}.cfg`);
    sh("vgcfgbackup", ["-q", "-f", cfg, vg]);
    const text = readFileSync(cfg, "utf8");
    const lv = `\n\tlogical_volumes {\n\t\tdata {\n\t\t\tid = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg"\n\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]\n\t\t\tflags = []\n\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 2\n\t\t\t\ttype = "striped"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = ["pv0", 0]\n\t\t\t}\n\t\t}\n\t}\n`;
    const end = text.lastIndexOf("}");
    writeFileSync(cfg, text.slice(0, end) + lv + text.slice(end));
    sh("vgcfgrestore", ["-q", "-f", cfg, vg]);
    expect(sh("lvs", ["--noheadings", "-o", "lv_name", vg]).trim()).toBe("data");

    const r = m.boot(ARMED("one"));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`REFUSING TO FORMAT: logical volume ${vg}/data on ${m.dev} is still active, open or in an unknown state \\(lv_attr -wi-XX`));
    expect(m.formats()).toHaveLength(0);
    expect(sh("lvs", ["--noheadings", "-o", "lv_name", vg]).trim()).toBe("data");
  });
});
