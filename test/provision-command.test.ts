// `netbuild provision HOST`: arms (or disarms) one host's one-shot disk wipe by editing its own
// file, through the real CLI on temp inventories. The edit keeps every other byte (comments, key
// order, styles, other hosts); it is the fix the "armed without an id" inventory error names, so it
// works on exactly that inventory; and it never writes through a symlink.
import { lstatSync, readFileSync, readlinkSync, symlinkSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory } from "./support/inventory.ts";

const CLASS = {
  "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n",
  "classes/demo/kernel": "not really a kernel (provision)\n",
  "classes/demo/initrd": "not really an initrd (provision)\n",
};

const DB1 = '# db1: the database server\nclass: demo\nmac: "52:54:00:00:00:01"   # onboard NIC\n\n# keep this comment\nkernelParams: [quiet]\n';

const RACK = [
  "# rack 1",
  "hosts:",
  "  web1:",
  "    class: demo",
  '    mac: "52:54:00:00:01:01"',
  "    provision:",
  "      disks: false   # not yet",
  "",
  "  web2: { class: demo, mac: \"52:54:00:00:01:02\" }   # flow style",
  "  web3:",
  "    class: demo",
  "    macs: ['52:54:00:00:01:03']",
  "    provision: { disks: true, id: r1 }",
  "    description: third",
  "",
].join("\n");

/** Today's date in UTC, as the default id is (computed here, not assumed). */
const today = () => new Date().toISOString().slice(0, 10);

const read = (root: string, rel: string) => readFileSync(path.join(root, rel), "utf8");

async function provision(root: string, ...args: string[]) {
  return cli(["provision", ...args], root);
}

describe("netbuild provision", () => {
  afterAll(cleanupTempDirs);

  it("arms a host in a one-host file: the flow form added after its last key, comments and blank lines kept", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1 });
    const r = await provision(root, "db1");
    expect(r.code, r.stderr).toBe(0);
    const id = today();
    expect(read(root, "hosts/db1.yaml")).toBe(`# db1: the database server\nclass: demo\nmac: "52:54:00:00:00:01"   # onboard NIC\n\n# keep this comment\nkernelParams: [quiet]\nprovision: { disks: true, id: ${id} }\n`);
    expect(r.stdout).toContain(`!!! host db1 (hosts/db1.yaml): wipe ARMED with id ${id}: its disks are formatted on its next boot after a deploy`);
    expect(r.stdout).toContain("`netbuild build`, then `netbuild deploy`");
    // The result is an inventory every command loads, with the wipe and its id on the command line.
    const plan = await cli(["plan", "--json"], root);
    expect(plan.code, plan.stderr).toBe(0);
    const host = (JSON.parse(plan.stdout) as { hosts: { name: string; cmdline: string[]; wipe: boolean }[] }).hosts.find((h) => h.name === "db1")!;
    expect(host.wipe).toBe(true);
    expect(host.cmdline).toEqual(["hostname=db1", "homelab.provision_disks=true", `homelab.provision_id=${id}`, "quiet"]);
  });

  it("arms hosts of a `hosts:` file: a block provision edited in place, a flow host extended, every other byte untouched", async () => {
    const root = inventory({ ...CLASS, "hosts/rack.yaml": RACK });
    const id = today();
    const a = await provision(root, "web1");
    expect(a.code, a.stderr).toBe(0);
    const afterWeb1 = RACK.replace("      disks: false   # not yet\n", `      disks: true   # not yet\n      id: ${id}\n`);
    expect(read(root, "hosts/rack.yaml")).toBe(afterWeb1);
    const b = await provision(root, "web2");
    expect(b.code, b.stderr).toBe(0);
    expect(read(root, "hosts/rack.yaml")).toBe(afterWeb1.replace('web2: { class: demo, mac: "52:54:00:00:01:02" }', `web2: { class: demo, mac: "52:54:00:00:01:02", provision: { disks: true, id: ${id} } }`));
    // A host armed already: its id replaced where it stands, previousId reported.
    const c = await provision(root, "web3", "--json");
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toEqual({ ok: true, host: "web3", file: "hosts/rack.yaml", armed: true, id, force: false, previousId: "r1", changed: true });
    expect(read(root, "hosts/rack.yaml")).toBe(
      afterWeb1
        .replace('web2: { class: demo, mac: "52:54:00:00:01:02" }', `web2: { class: demo, mac: "52:54:00:00:01:02", provision: { disks: true, id: ${id} } }`)
        .replace("    provision: { disks: true, id: r1 }\n", `    provision: { disks: true, id: ${id} }\n`),
    );
  });

  it("a second arm the same day gives <date>.2, then <date>.3: the id always changes", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1 });
    const id = today();
    for (const expected of [id, `${id}.2`, `${id}.3`]) {
      const r = await provision(root, "db1", "--json");
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { id: string }).id).toBe(expected);
      expect(read(root, "hosts/db1.yaml")).toContain(`provision: { disks: true, id: ${expected} }\n`);
    }
  });

  it("--id sets the id; one YAML would read as another value is quoted", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1 });
    const r = await provision(root, "db1", "--id", "round-7");
    expect(r.code, r.stderr).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe(`${DB1}provision: { disks: true, id: round-7 }\n`);
    const q = await provision(root, "db1", "--id", "007");
    expect(q.code, q.stderr).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe(`${DB1}provision: { disks: true, id: "007" }\n`);
    const plan = await cli(["plan", "--json"], root);
    expect(plan.stdout).toContain("homelab.provision_id=007");
  });

  it("refuses --id equal to the current id (it would not format again) and an invalid id, writing nothing", async () => {
    const text = 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: r1 }\n';
    const root = inventory({ ...CLASS, "hosts/db1.yaml": text });
    const same = await provision(root, "db1", "--id", "r1");
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/has the id r1 already: the same id would not format its disks again/);
    expect(same.stderr).toContain("hint:");
    for (const bad of ["-r2", "a b", "x".repeat(65), "r/1"]) {
      const r = await provision(root, "db1", "--id", bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/is not a provisioning id\n {2}hint: letters, digits/);
    }
    expect(read(root, "hosts/db1.yaml")).toBe(text);
  });

  it("--disarm sets disks: false and keeps the last id (the next arm picks another); a host that is not armed is left alone (exit 0)", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": `${DB1.replace("kernelParams", "provision: { disks: true, id: r1 }   # wipe it\nkernelParams")}`, "hosts/rack.yaml": RACK });
    const r = await provision(root, "db1", "--disarm");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("host db1 (hosts/db1.yaml): wipe disarmed (`disks: false`; the last id, r1, stays in the file, so that the next `netbuild provision` picks another)");
    expect(read(root, "hosts/db1.yaml")).toBe(DB1.replace("kernelParams", "provision: { disks: false, id: r1 }   # wipe it\nkernelParams"));
    const j = await provision(root, "web3", "--disarm", "--json");
    expect(JSON.parse(j.stdout)).toEqual({ ok: true, host: "web3", file: "hosts/rack.yaml", armed: false, previousId: "r1", changed: true });
    expect(read(root, "hosts/rack.yaml")).toBe(RACK.replace("    provision: { disks: true, id: r1 }\n", "    provision: { disks: false, id: r1 }\n"));
    // Armed again the same day: a new id, never the one its disks may record.
    const again = await provision(root, "web3", "--json");
    expect(JSON.parse(again.stdout)).toMatchObject({ armed: true, id: today(), previousId: "r1" });
    // Not armed: db1 now, and web1 (`disks: false`).
    for (const host of ["db1", "web1"]) {
      const file = host === "db1" ? "hosts/db1.yaml" : "hosts/rack.yaml";
      const before = read(root, file);
      const again = await provision(root, host, "--disarm");
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe(`host ${host} (${file}): no wipe is armed; nothing changed\n`);
      expect(read(root, file)).toBe(before);
    }
  });

  it("--force arms a forced wipe (force: true added); a plain arm after it sets force back to false", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1 });
    const r = await provision(root, "db1", "--id", "r7", "--force", "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ armed: true, id: "r7", force: true });
    expect(read(root, "hosts/db1.yaml")).toBe(DB1.replace(/\n$/, "\nprovision: { disks: true, id: r7, force: true }\n"));
    const plan = await cli(["plan", "--json"], root);
    expect(JSON.parse(plan.stdout).hosts[0].cmdline).toEqual(expect.arrayContaining(["homelab.provision_disks=true", "homelab.provision_id=r7", "homelab.provision_force=true"]));
    expect(plan.stderr).toContain("db1  id r7, FORCED: also disks of another install");
    const again = await provision(root, "db1", "--id", "r8");
    expect(again.code, again.stderr).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe(DB1.replace(/\n$/, "\nprovision: { disks: true, id: r8, force: false }\n"));
    expect((await provision(root, "db1", "--disarm", "--force")).code).toBe(2);
    // Disarmed from forced: force goes too (a `disks: true` written by hand later is not forced).
    expect((await provision(root, "db1", "--id", "r9", "--force")).code).toBe(0);
    expect((await provision(root, "db1", "--disarm")).code).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe(DB1.replace(/\n$/, "\nprovision: { disks: false, id: r9, force: false }\n"));
  });

  it("an unknown host: exit 2 with the closest name", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1, "hosts/rack.yaml": RACK });
    const r = await provision(root, "wep2");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('netbuild: unknown host "wep2"');
    expect(r.stderr).toContain('hint: did you mean "web2"?');
    const j = await provision(root, "nothing-like-it", "--json");
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, code: "USAGE", message: 'unknown host "nothing-like-it"' });
  });

  it("fixes the inventory error of a host armed without an id: then `plan` loads and shows the id", async () => {
    const text = 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true }   # wipe it\n';
    const root = inventory({ ...CLASS, "hosts/h.yaml": text, "hosts/rack.yaml": RACK.replace("web2: { class: demo,", "web2: { class: demo, provision: { disks: true },") });
    const refused = await cli(["plan"], root);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("run `netbuild provision h`");
    const r = await provision(root, "h");
    expect(r.code, r.stderr).toBe(0);
    expect(read(root, "hosts/h.yaml")).toBe(`class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true, id: ${today()} }   # wipe it\n`);
    // web2 is armed without an id too: said, and fixed by its own run.
    expect(r.stderr).toMatch(/host web2 is still armed without an id/);
    expect((await cli(["plan"], root)).code).toBe(2);
    const w = await provision(root, "web2", "--id", "first");
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).not.toMatch(/still armed without an id/);
    const plan = await cli(["plan", "--json"], root);
    expect(plan.code, plan.stderr).toBe(0);
    const hosts = (JSON.parse(plan.stdout) as { hosts: { name: string; cmdline: string[] }[] }).hosts;
    expect(hosts.find((h) => h.name === "h")!.cmdline).toContain(`homelab.provision_id=${today()}`);
    expect(hosts.find((h) => h.name === "web2")!.cmdline).toContain("homelab.provision_id=first");
  });

  it("other inventory errors stand: nothing is written", async () => {
    const text = 'class: demo\nmac: "52:54:00:00:00:01"\nprovision: { disks: true }\n';
    const root = inventory({ ...CLASS, "hosts/h.yaml": text, "hosts/bad.yaml": 'class: nope\nmac: "52:54:00:00:00:02"\n' });
    const r = await provision(root, "h");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown class "nope"');
    expect(read(root, "hosts/h.yaml")).toBe(text);
    // A file that is not valid YAML: reported where, never echoed.
    const secret = "class: demo\nmac: [\"52:54:00:00:00:03\"\nkey: SECRET-VALUE-XYZ\n";
    const root2 = inventory({ ...CLASS, "hosts/h.yaml": text, "hosts/broken.yaml": secret });
    const b = await provision(root2, "h", "--json");
    expect(b.code).toBe(2);
    expect(b.stdout + b.stderr).not.toContain("SECRET-VALUE-XYZ");
    expect(read(root2, "hosts/h.yaml")).toBe(text);
  });

  it("refuses, writing nothing, where the edit would change another value (a kept-newline block scalar last in the host)", async () => {
    const text = 'class: demo\nmac: "52:54:00:00:00:01"\ndescription: |+\n  text\n\n';
    const root = inventory({ ...CLASS, "hosts/db1.yaml": text });
    const r = await provision(root, "db1", "--id", "r2");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("could not be changed without changing something else in the file; nothing was written");
    expect(r.stderr).toContain("hint: set `provision: { disks: true, id: r2 }` in host db1's settings yourself");
    expect(read(root, "hosts/db1.yaml")).toBe(text);
  });

  it("--json prints one document", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": DB1 });
    const r = await provision(root, "db1", "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, host: "db1", file: "hosts/db1.yaml", armed: true, id: today(), force: false, changed: true });
    expect(r.stdout.trim().split("\n").at(-1)).toBe("}");
  });

  it("refuses a hosts file reached through a symlink, and writes nothing through it", async () => {
    const target = 'class: demo\nmac: "52:54:00:00:00:09"\n';
    const root = inventory({ ...CLASS, "shared/db9.yaml": target });
    mkdirSync(path.join(root, "hosts"), { recursive: true });
    symlinkSync("../shared/db9.yaml", path.join(root, "hosts/db9.yaml"));
    expect((await cli(["plan"], root)).code).toBe(0);
    const r = await provision(root, "db9");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"hosts/db9.yaml" cannot be written: it is a symlink');
    expect(lstatSync(path.join(root, "hosts/db9.yaml")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(root, "hosts/db9.yaml"))).toBe("../shared/db9.yaml");
    expect(read(root, "shared/db9.yaml")).toBe(target);
  });

  it("keeps CRLF line endings and a file without a final line break", async () => {
    const root = inventory({ ...CLASS, "hosts/db1.yaml": 'class: demo\r\nmac: "52:54:00:00:00:01"' });
    const r = await provision(root, "db1", "--id", "r2");
    expect(r.code, r.stderr).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe('class: demo\r\nmac: "52:54:00:00:00:01"\r\nprovision: { disks: true, id: r2 }\r\n');
    writeFileSync(path.join(root, "hosts/db1.yaml"), "class: demo\nprovision:\n  disks: true\n  id: r2   # block\nmac: \"52:54:00:00:00:01\"\n");
    const d = await provision(root, "db1", "--disarm");
    expect(d.code, d.stderr).toBe(0);
    expect(read(root, "hosts/db1.yaml")).toBe('class: demo\nprovision:\n  disks: false\n  id: r2   # block\nmac: "52:54:00:00:00:01"\n');
  });
});
