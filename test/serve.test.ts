// `netbuild serve` as users run it (a child process, stopped with Ctrl-C): what it serves and what
// it refuses, over a real HTTP connection to the built demo tree; its access log; a rebuild picked
// up without a restart; and its errors. The DHCP side runs on a virtual LAN (test/lan.test.ts):
// never here, where dnsmasq would answer on a real network.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addDemoFiles, cleanupTempDirs, cli, cliProcess, DEMO_INITRD, DEMO_KERNEL, exampleInventory, REPO, tempDir } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  /** Ctrl-C; the exit code and stdout. */
  stop(): Promise<{ code: number | null; stdout: string }>;
}

/** Starts `netbuild serve` on a free loopback port and waits until it says where it serves. */
async function startServe(root: string, args: string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [path.join(REPO, "bin/netbuild.js"), "serve", "--listen", "127.0.0.1:0", ...args], { cwd: root, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
      const m = /serving \S+ at (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
  });
  return {
    child,
    url,
    stderr: () => stderr,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", (code) => resolve({ code, stdout }));
        child.kill("SIGINT");
      }),
  };
}

/** One request; the raw status, headers and body. */
function request(url: string, options: { method?: string; headers?: Record<string, string>; rawPath?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: options.rawPath ?? u.pathname, method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

const notHere = missing({ commands: ["nix-build"], files: [DEMO_KERNEL, DEMO_INITRD] });

describe.skipIf(notHere)("netbuild serve", () => {
  let root: string;
  let s: Running;

  beforeAll(async () => {
    root = exampleInventory();
    addDemoFiles(root);
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
    // A link out of the tree, planted in it: never followed out.
    symlinkSync("/etc/hostname", path.join(root, "out/escape"));
    s = await startServe(root);
  }, 120_000);

  afterAll(async () => {
    if (s?.child.exitCode === null) await s.stop();
    cleanupTempDirs();
  });

  it("serves the tree's files with their content types; by-mac links resolve inside the tree", async () => {
    const boot = await request(`${s.url}/boot.ipxe`);
    expect(boot.status).toBe(200);
    expect(boot.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(boot.body.toString()).toBe(readFileSync(path.join(root, "out/boot.ipxe"), "utf8"));
    const host = await request(`${s.url}/by-mac/52-54-00-12-34-56/ipxe`);
    expect([host.status, host.headers["content-type"]]).toEqual([200, "text/plain; charset=utf-8"]);
    expect(host.body.toString()).toContain("demo-fresh");
    const kernelPath = /kernel (\S+)/.exec(readFileSync(path.join(root, "out/by-class/demo/ipxe"), "utf8"))![1]!;
    const kernel = await request(`${s.url}/by-class/demo/${kernelPath}`);
    expect([kernel.status, kernel.headers["content-type"], kernel.headers["accept-ranges"]]).toEqual([200, "application/octet-stream", "bytes"]);
    expect(kernel.body.equals(readFileSync(DEMO_KERNEL))).toBe(true);
  });

  it("byte ranges: a range, an open end, a suffix; several ranges give the whole file; past the end is 416", async () => {
    const whole = readFileSync(path.join(root, "out/boot.ipxe"));
    const get = (range: string) => request(`${s.url}/boot.ipxe`, { headers: { range } });
    const a = await get("bytes=2-9");
    expect([a.status, a.headers["content-range"], a.body.toString()]).toEqual([206, `bytes 2-9/${whole.length}`, whole.subarray(2, 10).toString()]);
    const b = await get(`bytes=${whole.length - 5}-`);
    expect([b.status, b.body.toString()]).toEqual([206, whole.subarray(-5).toString()]);
    const c = await get("bytes=-7");
    expect([c.status, c.headers["content-range"], c.body.toString()]).toEqual([206, `bytes ${whole.length - 7}-${whole.length - 1}/${whole.length}`, whole.subarray(-7).toString()]);
    const d = await get("bytes=0-1,4-5");
    expect([d.status, d.body.length]).toEqual([200, whole.length]);
    const e = await get(`bytes=${whole.length}-`);
    expect([e.status, e.headers["content-range"]]).toEqual([416, `bytes */${whole.length}`]);
    // HEAD: the headers of a GET, no body.
    const head = await request(`${s.url}/boot.ipxe`, { method: "HEAD" });
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([200, String(whole.length), 0]);
  });

  it("nothing else: no listings, nothing hidden (.netbuild/), nothing outside the tree by .., an escaped slash or a link; only GET and HEAD", async () => {
    for (const p of ["/", "/by-class/", "/by-class", "/.netbuild/manifest.json", "/../netbuild.yaml", "/by-host/%2e%2e/%2e%2e/netbuild.yaml", "/by-host%2f..%2fboot.ipxe", "/boot.ipxe%00", "/escape", "/nope", "/by-mac/52-54-00-12-34-56/.."]) {
      const r = await request(`${s.url}/`, { rawPath: p });
      expect(r.status, p).toBe(404);
      expect(r.body.toString(), p).toBe("not found\n");
    }
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await request(`${s.url}/boot.ipxe`, { method });
      expect([r.status, r.headers["allow"]], method).toEqual([405, "GET, HEAD"]);
    }
  });

  it("logs every request in the combined format, values from the client escaped", async () => {
    await request(`${s.url}/boot.ipxe`, { headers: { "user-agent": 'iPXE/1.21 "evil" \\ \u00e9', referer: "http://x/" } });
    await request(`${s.url}/`, { rawPath: "/discover/%1b[31m\"x" });
    // Written once each response is closed: a moment after the client has it.
    let log = "";
    for (let i = 0; i < 50 && !log.includes("/discover/"); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      log = readFileSync(path.join(root, ".netbuild/serve/access.log"), "utf8");
    }
    expect(log).toMatch(/^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/boot\.ipxe HTTP\/1\.1" 200 \d+ "http:\/\/x\/" "iPXE\/1\.21 \\x22evil\\x22 \\x5C \\xC3\\xA9"$/m);
    expect(log).toContain('"GET /discover/%1b[31m\\x22x HTTP/1.1" 404 10 "-" "-"');
    // eslint-disable-next-line no-control-regex
    expect(log).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
  });

  it("picks up a rebuilt tree without a restart", async () => {
    const file = path.join(root, "hosts/demo.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("demo.role=fresh", "demo.role=rebuilt"));
    const built = await cli(["build", "--class", "demo"], root);
    expect(built.code, built.stderr).toBe(0);
    expect((await request(`${s.url}/by-mac/52-54-00-12-34-56/ipxe`)).body.toString()).toContain("demo.role=rebuilt");
  });

  it("Ctrl-C: exit 0, and how many requests it served on stdout; the port is free again", async () => {
    const port = Number(new URL(s.url).port);
    const { code, stdout } = await s.stop();
    expect(code).toBe(0);
    expect(stdout).toMatch(/^stopped: \d+ requests served from http:\/\/127\.0\.0\.1:\d+\/\n$/);
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => again.once("error", reject).listen(port, "127.0.0.1", () => resolve()));
    await new Promise((resolve) => again.close(resolve));
  });

  it("Ctrl-C while a client is downloading (and has stopped reading): still exit 0, and that request is in the log", async () => {
    const run = await startServe(root);
    const kernelPath = /kernel (\S+)/.exec(readFileSync(path.join(root, "out/by-class/demo/ipxe"), "utf8"))![1]!;
    const u = new URL(`${run.url}/by-class/demo/${kernelPath}`);
    const got = new Promise<void>((resolve) => {
      const req = http.get({ host: u.hostname, port: u.port, path: u.pathname }, (res) => {
        res.pause();
        resolve();
      });
      req.on("error", () => undefined);
    });
    await got;
    const { code, stdout } = await run.stop();
    expect(code, run.stderr()).toBe(0);
    expect(stdout).toMatch(/^stopped: 1 request served/);
    expect(run.stderr()).not.toContain("Error");
    expect(readFileSync(path.join(root, ".netbuild/serve/access.log"), "utf8")).toContain(`"GET /by-class/demo/${kernelPath} HTTP/1.1" 200 `);
  });

  it("--json: one JSON document on stdout when it stops", async () => {
    const run = await startServe(root, ["--json"]);
    await request(`${run.url}/boot.ipxe`);
    const { code, stdout } = await run.stop();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ ok: true, url: run.url, out: path.join(root, "out"), accessLog: path.join(root, ".netbuild/serve/access.log"), requests: 1 });
  });

  it("errors: a port in use (1), a bad --listen, --dhcp without --interface, an interface that is not here (2); no dnsmasq installed (1)", async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", () => resolve()));
    const port = (busy.address() as net.AddressInfo).port;
    const inUse = await cliProcess(["serve", "--listen", `127.0.0.1:${port}`], root);
    busy.close();
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toContain(`127.0.0.1:${port} is in use: another server listens there`);
    const bad = await cliProcess(["serve", "--listen", "127.0.0.1:99999"], root);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining("--listen 127.0.0.1:99999: expected ADDR:PORT, :PORT or PORT")]);
    const noIf = await cliProcess(["serve", "--dhcp", "proxy"], root);
    expect([noIf.code, noIf.stderr]).toEqual([2, expect.stringContaining("--dhcp proxy needs --interface")]);
    const ghost = await cliProcess(["serve", "--dhcp", "proxy", "--interface", "nb-ghost0"], root);
    expect([ghost.code, ghost.stderr]).toEqual([2, expect.stringContaining("--interface nb-ghost0: this machine has no such interface with an IPv4 address")]);
    // dnsmasq looked up on a PATH without it: refused before anything answers DHCP.
    const lanIf = Object.entries(os.networkInterfaces()).find(([, as]) => as?.some((a) => a.family === "IPv4" && !a.internal))?.[0];
    if (lanIf) {
      const bin = path.join(tempDir(), "bin");
      mkdirSync(bin);
      const noDnsmasq = await cliProcess(["serve", "--listen", "0.0.0.0:0", "--dhcp", "proxy", "--interface", lanIf], root, { PATH: bin });
      expect([noDnsmasq.code, noDnsmasq.stderr]).toEqual([1, expect.stringContaining("dnsmasq is not installed")]);
    }
  });

  it("a tree that is not built: exit 1 saying so; a link where .netbuild/serve should be: refused (2), nothing written through it", async () => {
    const empty = await cliProcess(["serve", "--listen", "127.0.0.1:0", "--out", path.join(tempDir(), "none")], root);
    expect([empty.code, empty.stderr]).toEqual([1, expect.stringContaining("has no boot.ipxe: there is no built tree to serve")]);
    const elsewhere = tempDir();
    rmSync(path.join(root, ".netbuild/serve"), { recursive: true, force: true });
    symlinkSync(elsewhere, path.join(root, ".netbuild/serve"));
    const linked = await cliProcess(["serve", "--listen", "127.0.0.1:0"], root);
    expect(linked.code).toBe(2);
    expect(linked.stderr).toContain(".netbuild/serve is a symlink, where netbuild needs a real folder");
    expect(readdirSync(elsewhere)).toEqual([]);
  });
});
