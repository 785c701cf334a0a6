// `netbuild discovered` then `netbuild enrol`, as users run them on the example inventory: a
// machine seen in an access log, enrolled into a new file or a file of many hosts (every other
// byte kept), and everything enrol refuses, with nothing written.
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, exampleInventory, tempDir } from "./support/inventory.ts";
import { startSshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const LOG = [
  '192.168.77.150 - - [30/Nov/2026:13:00:02 +0000] "GET /discover/52-54-00-99-99-99?uuid=00000000-0000-0000-0000-000000000000&serial=&manufacturer=QEMU&product=Standard%20PC%20(Q35%20+%20ICH9,%202009)&asset=&platform=efi&buildarch=x86_64&chip=virtio-net HTTP/1.1" 404 10 "-" "iPXE/1.21.1+"',
  '192.168.77.152 - - [30/Nov/2026:13:05:00 +0000] "GET /discover/52-54-00-12-34-56?platform=efi HTTP/1.1" 404 10 "-" "iPXE"',
  "\u001b]0;title\u0007garbage",
  "",
].join("\n");

function withLog(): string {
  const root = exampleInventory();
  mkdirSync(path.join(root, ".netbuild/serve"), { recursive: true });
  writeFileSync(path.join(root, ".netbuild/serve/access.log"), LOG);
  return root;
}

describe("netbuild discovered and netbuild enrol", () => {
  afterAll(cleanupTempDirs);

  it("lists the machine that is not in the inventory (not the known one), then enrols it into a new file; it is no longer listed", async () => {
    const root = withLog();
    const listed = await cli(["discovered"], root);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toBe(
      [
        "1 machine not in the inventory booted (read .netbuild/serve/access.log; 1 line in no known log format skipped):",
        "  52:54:00:99:99:99  UEFI x86_64 QEMU Standard PC (Q35 + ICH9, 2009)  uuid 00000000-0000-0000-0000-000000000000 (placeholder)",
        "      from 192.168.77.150, 1 boot, first 2026-11-30T13:00:02.000Z, last 2026-11-30T13:00:02.000Z",
        "",
        "to boot one: netbuild enrol MAC --name NAME --class CLASS, then netbuild build and deploy",
        "",
      ].join("\n"),
    );
    const json = JSON.parse((await cli(["discovered", "--json"], root)).stdout);
    expect(json).toMatchObject({ ok: true, malformed: 1, known: 1, machines: [{ mac: "52:54:00:99:99:99", firmware: "UEFI", placeholders: ["uuid"], boots: 1 }] });

    const enrolled = await cli(["enrol", "52-54-00-99-99-99", "--name", "he", "--class", "demo"], root);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toBe("enrolled he (52:54:00:99:99:99) as class demo: new file hosts/he.yaml\nnext: `netbuild build --class demo`, then `netbuild deploy`; it boots as he from its next boot on\n");
    expect(readFileSync(path.join(root, "hosts/he.yaml"), "utf8")).toBe("# he: enrolled with `netbuild enrol`.\nclass: demo\nmac: 52:54:00:99:99:99\n");
    expect((await cli(["discovered"], root)).stdout).toMatch(/^no machine outside the inventory has booted/);
    const plan = await cli(["plan"], root);
    expect(plan.stdout).toMatch(/ he +demo +52:54:00:99:99:99 +hostname=he/);
  });

  it("into a file of many hosts: one line added under hosts:, every other byte kept; --provision-disks arms the wipe, loudly", async () => {
    const root = withLog();
    const before = readFileSync(path.join(root, "hosts/vms.yaml"), "utf8");
    const r = await cli(["enrol", "52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/vms.yaml", "--provision-disks"], root);
    expect(r.code, r.stderr).toBe(0);
    const id = new Date().toISOString().slice(0, 10);
    expect(readFileSync(path.join(root, "hosts/vms.yaml"), "utf8")).toBe(`${before}  he: { class: demo, mac: 52:54:00:99:99:99, provision: { disks: true, id: ${id} } }\n`);
    expect(r.stderr).toContain(`!!! host he will FORMAT (WIPE) ITS DISKS on its next boot after a deploy (provision id ${id})`);
    // A file that does not exist yet: made as a file of many hosts.
    const made = await cli(["enrol", "52:54:00:99:99:98", "--name", "she", "--class", "demo", "--file", "hosts/rack/new.yaml", "--json"], root);
    expect(JSON.parse(made.stdout)).toEqual({ ok: true, host: "she", mac: "52:54:00:99:99:98", className: "demo", file: "hosts/rack/new.yaml", created: true, wipe: false });
    expect(readFileSync(path.join(root, "hosts/rack/new.yaml"), "utf8")).toBe("hosts:\n  she: { class: demo, mac: 52:54:00:99:99:98 }\n");
  });

  it("refuses, writing nothing: a bad MAC or name, an unknown class, a taken name or MAC, a file outside hosts/ or of one host, a link on the way", async () => {
    const root = withLog();
    const listing = () => JSON.stringify([readdirSync(path.join(root, "hosts"), { recursive: true }).sort(), readFileSync(path.join(root, "hosts/vms.yaml"), "utf8")]);
    const was = listing();
    const refused = async (args: string[], message: string) => {
      const r = await cli(["enrol", ...args], root);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(message);
      expect(listing()).toBe(was);
    };
    await refused(["52:54:00:99:99:9", "--name", "he", "--class", "demo"], 'MAC "52:54:00:99:99:9" is not a MAC address');
    await refused(["01:00:5e:00:00:01", "--name", "he", "--class", "demo"], "is a multicast/broadcast address");
    await refused(["52:54:00:99:99:99", "--name", "He", "--class", "demo"], '--name "He" has upper-case letters');
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "dmeo"], 'unknown class "dmeo"');
    await refused(["52:54:00:99:99:99", "--name", "demo-fresh", "--class", "demo"], "host demo-fresh exists already (hosts/demo.yaml)");
    await refused(["52:54:00:12:34:56", "--name", "he", "--class", "demo"], "MAC 52:54:00:12:34:56 is host demo-fresh's already (hosts/demo.yaml)");
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "../x.yaml"], '--file "../x.yaml": expected a .yaml file under hosts/');
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/../netbuild.yaml"], "expected a .yaml file under hosts/");
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/aleph.yaml"], "hosts/aleph.yaml is not a file of many hosts");
    // Hidden files and folders are never read as inventory: a host written there would not exist.
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/.hidden.yaml"], "expected a .yaml file under hosts/");
    await refused(["52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/.d/x.yaml"], "expected a .yaml file under hosts/");
    symlinkSync(tempDir(), path.join(root, "hosts/linked"));
    const was2 = listing();
    const r = await cli(["enrol", "52:54:00:99:99:99", "--name", "he", "--class", "demo", "--file", "hosts/linked/x.yaml"], root);
    expect([r.code, listing()]).toEqual([2, was2]);
    expect(r.stderr).toContain("hosts/linked is a symlink, where netbuild needs a real folder (to reach hosts/linked/x.yaml); nothing was changed");
  });

  it("refuses a host the inventory checks reject (an IP another host has, here), naming the issue; nothing written", async () => {
    const root = withLog();
    writeFileSync(path.join(root, "hosts/many.yaml"), "hosts:\n  x1: { class: demo, mac: 52:54:00:99:99:97, ip: 10.10.1.21 }\n");
    const r = await cli(["enrol", "52:54:00:99:99:99", "--name", "he", "--class", "demo"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("IP 10.10.1.21 is also used by");
  });

  it("discovered: no log yet, or a log that is not there: exit 2 saying where it looked", async () => {
    const root = exampleInventory();
    const none = await cli(["discovered"], root);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining("there is no access log to read: .netbuild/serve/access.log does not exist (netbuild serve writes it)")]);
    const gone = await cli(["discovered", "--log", "nope.log"], root);
    expect([gone.code, gone.stderr]).toEqual([2, expect.stringContaining("nope.log: it does not exist")]);
  });
});

// A boot server's own web server: its access log, named by the target (accessLog), read where it is.
describe("netbuild discovered --target: the access log a target names", () => {
  afterAll(cleanupTempDirs);
  const noSsh = missing({ commands: ["ssh", "ssh-keygen"], files: ["/usr/sbin/sshd", "/usr/lib/openssh/sftp-server"] });

  /** The example inventory with one more target, `boot` (its spec and accessLog as given). */
  function withTarget(spec: string, accessLog: string | undefined): string {
    const root = exampleInventory();
    const site = readFileSync(path.join(root, "netbuild.yaml"), "utf8");
    const entry = accessLog === undefined ? `  boot: ${spec}\n` : `  boot: { url: ${JSON.stringify(spec)}, accessLog: ${accessLog} }\n`;
    writeFileSync(path.join(root, "netbuild.yaml"), site.replace(/^targets:\n/m, `targets:\n${entry}`));
    return root;
  }

  it("reads a local target's log, and refuses a target that names none, a log that is not there, and --log with --target", async () => {
    const logs = tempDir();
    writeFileSync(path.join(logs, "access.log"), LOG);
    const root = withTarget(path.join(logs, "served"), path.join(logs, "access.log"));
    const r = await cli(["discovered", "--target", "boot", "--json"], root);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { logs: string[]; machines: { mac: string }[]; malformed: number };
    expect([json.logs, json.machines.map((m) => m.mac), json.malformed]).toEqual([[`boot:${path.join(logs, "access.log")}`], ["52:54:00:99:99:99"], 1]);

    const none = await cli(["discovered", "--target", "local"], root);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining("target local names no access log")]);
    expect(none.stderr).toContain('targets: { local: { url: "served", accessLog: /var/log/nginx/access.log } }');
    const gone = await cli(["discovered", "--target", "boot"], withTarget(path.join(logs, "served"), path.join(logs, "nope.log")));
    expect([gone.code, gone.stderr]).toEqual([2, expect.stringContaining(`the access log of target boot (${path.join(logs, "nope.log")}) does not exist`)]);
    // A folder where the log should be, and a path through a file: said, exit 2.
    const folder = await cli(["discovered", "--target", "boot"], withTarget(path.join(logs, "served"), logs));
    expect([folder.code, folder.stderr]).toEqual([2, expect.stringContaining(`${logs} is not a regular file`)]);
    expect(folder.stderr).toContain("hint: name the web server's access log");
    const through = await cli(["discovered", "--target", "boot"], withTarget(path.join(logs, "served"), path.join(logs, "access.log", "x")));
    expect([through.code, through.stderr]).toEqual([2, expect.stringContaining(`(${path.join(logs, "access.log", "x")}) does not exist`)]);
    const both = await cli(["discovered", "--target", "boot", "--log", "x.log"], root);
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining("--target and --log name different logs")]);
    const unknown = await cli(["discovered", "--target", "nowhere"], root);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('unknown target "nowhere"')]);
  });

  it("refuses an accessLog that is not an absolute path, at its line", async () => {
    const root = withTarget("served", "logs/access.log");
    const r = await cli(["discovered", "--target", "boot"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/netbuild\.yaml:\d+:\d+ +site\.targets\.boot\.accessLog: expected an absolute path on the target's machine/);
  });

  it.skipIf(noSsh)("reads a remote target's log over SFTP (a real sshd), with its host key checked", async () => {
    const sshd = await startSshd();
    try {
      const log = path.join(sshd.dir, "nginx-access.log");
      writeFileSync(log, LOG.repeat(2000));
      const root = withTarget(`sftp://boot${path.join(sshd.dir, "served")}`, log);
      const r = await cli(["discovered", "--target", "boot", "-F", sshd.sshConfig, "--json"], root);
      expect(r.code, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout) as { logs: string[]; machines: { mac: string; boots: number }[]; malformed: number };
      expect([json.logs, json.machines.map((m) => [m.mac, m.boots]), json.malformed]).toEqual([[`boot:${log}`], [["52:54:00:99:99:99", 2000]], 2000]);
      const gone = await cli(["discovered", "--target", "boot", "-F", sshd.sshConfig], withTarget(`sftp://boot${path.join(sshd.dir, "served")}`, `${log}.gone`));
      expect([gone.code, gone.stderr]).toEqual([2, expect.stringContaining(`the access log of target boot (${log}.gone) does not exist`)]);
      const folder = await cli(["discovered", "--target", "boot", "-F", sshd.sshConfig], withTarget(`sftp://boot${path.join(sshd.dir, "served")}`, sshd.dir));
      expect([folder.code, folder.stderr]).toEqual([2, expect.stringMatching(new RegExp(`${sshd.dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} on \\S+ is not a regular file`))]);
      expect(folder.stderr).toContain("hint: name the web server's access log");
    } finally {
      await sshd.stop();
    }
  });
});
