// A boot LAN's settings and hosts, shared by the tests of `netbuild dhcp` (addresses of the
// virtual LAN the LAN test builds: 192.168.77.0/24), and that LAN.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";

export const LAN_SITE = `url: http://192.168.77.1:8099
dhcp:
  interface: br0
  subnet: 192.168.77.0/24
  range: { start: 192.168.77.100, end: 192.168.77.200 }
  router: 192.168.77.254
  dns: [192.168.77.254, 192.168.77.253]
  leaseTime: 2h
  server: dhcp1
  tftpRoot: /srv/tftp
`;
export const LAN_HOSTS = `hosts:
  web-2: { class: demo, macs: [52:54:00:ab:cd:02, 52:54:00:ab:cd:03], ip: 192.168.77.11 }
  a1: { class: demo, mac: 52:54:00:00:00:01, ip: 192.168.77.10 }
  c3: { class: demo, mac: 52:54:00:00:00:04, ip: 10.0.0.1 }
  d4: { class: demo, mac: 52:54:00:00:00:05, ip: "fd00::5" }
  e5: { class: demo, mac: 52:54:00:00:00:06 }
  f6: { class: demo, mac: 52:54:00:00:00:07, ip: "::ffff:192.168.77.12" }
`;

/**
 * A virtual LAN (../shared/notes/environment.md, "A virtual LAN"): network namespace `lan` with a
 * bridge br0 (192.168.77.1/24) and a tap for QEMU, and a `router` namespace joined to it by a veth,
 * running its own plain DHCP server (dnsmasq with no boot options: addresses only, like a home
 * router). Only addresses inside the namespaces; everything is removed by `remove()`.
 */
export interface Lan {
  netns: string;
  tap: string;
  /** Runs a command inside the LAN namespace. */
  spawnIn(cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  remove(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

export function createLan(dir: string): Lan {
  const id = `${process.pid}`;
  const netns = `nb-lan-${id}`;
  const router = `nb-rtr-${id}`;
  const children: ChildProcess[] = [];
  const remove = async () => {
    // SIGTERM first, as a user would stop them (netbuild serve then stops its dnsmasq); SIGKILL after 10 s.
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = running.map((c) => new Promise((r) => c.once("exit", r)));
    for (const c of running) c.kill("SIGTERM");
    const late = setTimeout(() => running.forEach((c) => c.kill("SIGKILL")), 10_000);
    await Promise.all(exited);
    clearTimeout(late);
    for (const ns of [netns, router]) {
      try {
        ip("netns", "del", ns);
      } catch {
        // Not made.
      }
    }
  };
  try {
    ip("netns", "add", netns);
    ip("netns", "add", router);
    const inLan = (...args: string[]) => ip("-n", netns, ...args);
    inLan("link", "set", "lo", "up");
    inLan("link", "add", "br0", "type", "bridge");
    inLan("addr", "add", "192.168.77.1/24", "dev", "br0");
    inLan("tuntap", "add", "dev", "tap0", "mode", "tap");
    inLan("link", "set", "tap0", "master", "br0");
    inLan("link", "set", "tap0", "up");
    inLan("link", "set", "br0", "up");
    inLan("link", "add", "vr0", "type", "veth", "peer", "name", "vr1", "netns", router);
    inLan("link", "set", "vr0", "master", "br0");
    inLan("link", "set", "vr0", "up");
    ip("-n", router, "link", "set", "lo", "up");
    ip("-n", router, "addr", "add", "192.168.77.254/24", "dev", "vr1");
    ip("-n", router, "link", "set", "vr1", "up");
    const dhcp = spawn("ip", ["netns", "exec", router, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--interface=vr1", "--bind-interfaces", "--dhcp-range=192.168.77.100,192.168.77.200,255.255.255.0,1h", `--dhcp-leasefile=${dir}/router.leases`, `--pid-file=${dir}/router.pid`, "--log-facility=-"], { stdio: ["ignore", "ignore", "pipe"] });
    children.push(dhcp);
  } catch (e) {
    void remove();
    throw e;
  }
  return {
    netns,
    tap: "tap0",
    spawnIn(cmd, args, env) {
      const c = spawn("ip", ["netns", "exec", netns, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
      children.push(c);
      return c;
    },
    remove,
  };
}
