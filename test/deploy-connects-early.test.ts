// A deploy over SFTP starts connecting from the site file alone, before the inventory and out/ are
// read, so the SSH handshake's round trips do not wait behind that work (see "No-op" in the
// README's deploy benchmarks). Run as a process, `node bin/netbuild.js`: that is the bundle `npm run
// compile` makes (when it is newer than src/, as in CI), where a dynamic import() of the YAML
// package once gave this early start nothing to connect to; the deploy still worked, connecting
// only after the inventory had loaded, and no other test saw it. Real nix-build of a prebuilt
// class, a real sshd on loopback.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cliProcess, inventory, tempDir } from "./support/inventory.ts";
import { startSshd, type Sshd } from "./support/sshd.ts";
import { missing } from "./support/tools.ts";

const notHere = missing({ commands: ["nix-build", "ssh-keygen"], files: ["/usr/sbin/sshd"] });

describe.skipIf(notHere)("a deploy over SFTP connects first", () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
    cleanupTempDirs();
  });

  it("asks for the SSH session from the site file, before it loads the inventory", async () => {
    const served = path.join(tempDir(), "served");
    const root = inventory({
      "netbuild.yaml": `targets:\n  boot: sftp://boot${served}\n`,
      "classes/demo.yaml": "kind: prebuilt\nkernel: { path: ./demo/kernel }\ninitrd: { path: ./demo/initrd }\n",
      "classes/demo/kernel": "kernel\n",
      "classes/demo/initrd": "initrd\n",
      "hosts/aleph.yaml": 'class: demo\nmac: "52:54:00:00:00:01"\n',
    });
    const build = await cliProcess(["build"], root);
    expect(build.code, build.stderr).toBe(0);
    const r = await cliProcess(["deploy", "--yes", "-F", sshd.sshConfig], root, { NETBUILD_TRACE: "1" });
    expect(r.code, r.stderr).toBe(0);
    const traces = r.stderr.split("\n").filter((l) => l.startsWith("trace "));
    const at = (phase: string) => traces.findIndex((l) => l.endsWith(`ms  ${phase}`));
    expect(at("connecting (from the site file)"), r.stderr).toBe(0);
    expect(at("SSH sessions asked for"), r.stderr).toBe(1);
    expect(at("inventory loaded"), r.stderr).toBe(2);
  });
});
