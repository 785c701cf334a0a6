// `netbuild dhcp` as users run it, each configuration checked by the real server's own syntax check:
// dnsmasq --test, kea-dhcp4 -t, dhcpd -t (Debian's dnsmasq-base, kea-dhcp4-server, isc-dhcp-server),
// with the real iPXE binaries of Debian's ipxe package. RouterOS and OpenWrt cannot run here: their
// output is checked against their documented syntax (see each test). The DHCP exchange itself is
// proven on a virtual LAN (test/lan.test.ts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTempDirs, cli, inventory, tempDir } from "./support/inventory.ts";
import { missing } from "./support/tools.ts";
import { LAN_HOSTS, LAN_SITE } from "./support/lan.ts";

const IPXE = "/usr/lib/ipxe";
const CLASS = "kind: prebuilt\nkernel: { path: k }\ninitrd: { path: i }\n";

function lan(site = LAN_SITE, hosts = LAN_HOSTS): string {
  return inventory({ "netbuild.yaml": site, "classes/demo.yaml": CLASS, "classes/k": "k", "classes/i": "i", "hosts/all.yaml": hosts });
}

/** Runs a syntax check; its exit code and output. */
function check(cmd: string, args: string[]): { code: number; output: string } {
  try {
    const output = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { code: 0, output };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, output: `${err.stdout}${err.stderr}` };
  }
}

/** The text without comment lines (Kea's JSON with its `#` header). */
const uncommented = (t: string) => t.split("\n").filter((l) => !l.startsWith("#")).join("\n");

describe.skipIf(missing({ commands: ["dnsmasq", "kea-dhcp4", "dhcpd"], files: [`${IPXE}/undionly.kpxe`, `${IPXE}/snponly.efi`, `${IPXE}/ipxe.efi`] }))("netbuild dhcp, checked by the servers themselves", () => {
  afterAll(cleanupTempDirs);
  const dir = tempDir();
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const run = async (format: string, mode: string, root = lan(), extra: string[] = []) => {
    const r = await cli(["dhcp", "--format", format, "--mode", mode, ...extra], root);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };

  it("dnsmasq, proxy and full: dnsmasq --test accepts both; a broken line is refused (the check can fail)", async () => {
    for (const mode of ["proxy", "full"]) {
      const { stdout } = await run("dnsmasq", mode);
      const r = check("dnsmasq", ["--test", "-C", file(`dnsmasq-${mode}.conf`, stdout)]);
      expect(r.code, r.output).toBe(0);
    }
    const broken = check("dnsmasq", ["--test", "-C", file("broken.conf", (await run("dnsmasq", "full")).stdout.replace("dhcp-range=192.168.77.100,", "dhcp-range=192.168.77.1000,"))]);
    expect(broken.code).not.toBe(0);
  });

  it("Kea, full: kea-dhcp4 -t accepts it (on an interface that exists here); proxy: the classes, in a Kea config", async () => {
    const full = JSON.parse(uncommented((await run("kea", "full")).stdout));
    full.Dhcp4["interfaces-config"].interfaces = ["lo"];
    // The header's `#` comments are Kea's own comment syntax: the file is checked as printed, but for the interface.
    const printed = (await run("kea", "full")).stdout.replace('"br0"', '"lo"');
    expect(check("kea-dhcp4", ["-t", file("kea-full.conf", printed)]).code).toBe(0);
    const proxy = JSON.parse(uncommented((await run("kea", "proxy")).stdout));
    const wrapped = { Dhcp4: { "interfaces-config": { interfaces: ["lo"] }, ...proxy, subnet4: [{ id: 1, subnet: "192.168.77.0/24", pools: [{ pool: "192.168.77.100 - 192.168.77.200" }] }] } };
    const r = check("kea-dhcp4", ["-t", file("kea-proxy.conf", JSON.stringify(wrapped))]);
    expect(r.code, r.output).toBe(0);
    // A class test Kea cannot parse is refused: the check can fail.
    full.Dhcp4["client-classes"][1].test = "option[93].hex == 0x000Z";
    expect(check("kea-dhcp4", ["-t", file("kea-bad.conf", JSON.stringify(full))]).code).not.toBe(0);
  });

  it("ISC, full: dhcpd -t accepts it; proxy: the boot part, at the top of a dhcpd.conf", async () => {
    const full = check("dhcpd", ["-4", "-t", "-cf", file("isc-full.conf", (await run("isc", "full")).stdout)]);
    expect(full.code, full.output).toBe(0);
    const boot = (await run("isc", "proxy")).stdout;
    const proxy = check("dhcpd", ["-4", "-t", "-cf", file("isc-proxy.conf", `${boot}subnet 192.168.77.0 netmask 255.255.255.0 {\n  range 192.168.77.100 192.168.77.200;\n}\n`)]);
    expect(proxy.code, proxy.output).toBe(0);
    expect(check("dhcpd", ["-4", "-t", "-cf", file("isc-bad.conf", boot.replace("elsif", "elsiff"))]).code).not.toBe(0);
  });

  it("RouterOS: every command is one its manual documents, with that menu's properties (RouterOS cannot run here)", async () => {
    // From the RouterOS manual: /ip dhcp-server option (code, name, value), option sets (name,
    // options), network (next-server), matcher (7.4+: name, server, code, value, option-set), lease
    // (server, mac-address, address, comment).
    const properties: Record<string, Record<string, readonly string[]>> = {
      "/ip dhcp-server option": { add: ["name", "code", "value"] },
      "/ip dhcp-server option sets": { add: ["name", "options"] },
      "/ip dhcp-server network": { set: ["next-server"] },
      "/ip dhcp-server matcher": { add: ["name", "server", "code", "value", "option-set"] },
      "/ip dhcp-server lease": { add: ["server", "mac-address", "address", "comment"] },
    };
    for (const mode of ["proxy", "full"]) {
      let menu = "";
      const menus: string[] = [];
      for (const line of uncommented((await run("routeros", mode)).stdout).split("\n").filter(Boolean)) {
        if (line.startsWith("/")) {
          expect(Object.keys(properties), line).toContain(line);
          menus.push((menu = line));
          continue;
        }
        const m = /^(add|set)( \[find address="[0-9./]+"\])?((?: [a-z-]+=(?:"[^"]*"|[^ "]+))+)$/.exec(line);
        expect(m, line).not.toBeNull();
        const keys = [...m![3]!.matchAll(/ ([a-z-]+)=/g)].map((k) => k[1]);
        for (const k of keys) expect(properties[menu]![m![1]!], `${menu} ${line}`).toContain(k);
      }
      expect(menus).toEqual(Object.keys(properties).slice(0, mode === "full" ? 5 : 4));
    }
  });

  it("OpenWrt: the uci commands, translated to dnsmasq options as OpenWrt's /etc/init.d/dnsmasq does, pass dnsmasq --test (OpenWrt cannot run here: its translation is emulated)", async () => {
    for (const mode of ["proxy", "full"]) {
      const sections = new Map<string, { type: string; options: Map<string, string> }>();
      const dnsmasqOptions: string[] = ["port=0", "interface=lo", "bind-interfaces", "dhcp-range=192.168.77.100,192.168.77.200,255.255.255.0"];
      for (const line of uncommented((await run("openwrt", mode)).stdout).split("\n").filter(Boolean)) {
        const m = /^set dhcp\.([@\w[\]]+?)(?:\.(\w+))?=(?:'([^']*)'|(\w+))$/.exec(line);
        expect(m, line).not.toBeNull();
        const [, id, option, quotedValue, type] = m!;
        if (id === "@dnsmasq[0]") {
          if (option === "enable_tftp") dnsmasqOptions.push("enable-tftp");
          else if (option === "tftp_root") dnsmasqOptions.push(`tftp-root=${dir}`);
          else expect.fail(line);
        } else if (option === undefined) sections.set(id!, { type: type!, options: new Map() });
        else sections.get(id!)!.options.set(option, quotedValue!);
      }
      for (const { type, options: o } of sections.values()) {
        if (type === "userclass") dnsmasqOptions.push(`dhcp-userclass=${o.get("networkid")},${o.get("userclass")}`);
        else if (type === "match") dnsmasqOptions.push(`dhcp-match=${o.get("networkid")},${o.get("match")}`);
        else if (type === "boot") dnsmasqOptions.push(`dhcp-boot=net:${o.get("networkid")},${o.get("filename")}`);
        else if (type === "host") dnsmasqOptions.push(`dhcp-host=${o.get("mac")!.split(" ").join(",")},${o.get("ip")},${o.get("name")}`);
        else expect.fail(`section type ${type}`);
      }
      expect(dnsmasqOptions.filter((o) => o.startsWith("dhcp-boot=")), mode).toEqual(["dhcp-boot=net:bios,tag:!ipxe,undionly.kpxe", "dhcp-boot=net:efi64,tag:!ipxe,snponly.efi", "dhcp-boot=net:ipxe,http://192.168.77.1:8099/boot.ipxe"]);
      const r = check("dnsmasq", ["--test", "-C", file(`openwrt-${mode}.conf`, `${dnsmasqOptions.join("\n")}\n`)]);
      expect(r.code, r.output).toBe(0);
    }
  });

  it("shows the real binaries' sha256; --json gives the same text and what it covers", async () => {
    const { stdout } = await run("dnsmasq", "proxy");
    for (const name of ["undionly.kpxe", "snponly.efi"]) {
      const data = readFileSync(path.join(IPXE, name));
      expect(stdout).toContain(`# ${name}: sha256 ${createHash("sha256").update(data).digest("hex")} (${data.length} bytes)`);
    }
    const json = await run("dnsmasq", "full", lan(), ["--json"]);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ ok: true, format: "dnsmasq", mode: "full", config: (await run("dnsmasq", "full")).stdout, notCovered: expect.arrayContaining(["UEFI HTTP boot (16)"]) });
    expect(doc.binaries.map((b: { name: string; folder: string }) => [b.name, b.folder])).toEqual([["undionly.kpxe", IPXE], ["snponly.efi", IPXE]]);
    expect(doc.reservations).toHaveLength(3);
    // Hosts with an address that gets no reservation: a warning on stderr each, never on stdout.
    expect(json.stderr).toContain("host c3 (ip 10.0.0.1) gets no reservation: it is not in dhcp.subnet 192.168.77.0/24");
  });

  it("a missing setting: exit 2, every missing one named with where it goes, nothing on stdout", async () => {
    const r = await cli(["dhcp", "--format", "kea", "--mode", "full"], lan("url: http://boot.example/nb\n"));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("netbuild.yaml lacks 4 settings that --format kea --mode full needs: dhcp.tftpServer, dhcp.interface, dhcp.subnet, dhcp.range");
    expect(r.stderr).toContain("netbuild.yaml  site.dhcp.interface: not set: the server answers only on this interface\n  hint: add to netbuild.yaml:  dhcp: { interface: eth0 }");
    const json = await cli(["dhcp", "--format", "kea", "--json"], lan("url: http://boot.example/nb\n"));
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: "SITE_INCOMPLETE", issues: [{ where: { field: "site.dhcp.tftpServer" } }] });
  });

  it("iPXE binaries that are not there: exit 2 naming the folder and what is missing; never a download", async () => {
    const empty = path.join(dir, "no-ipxe");
    mkdirSync(empty);
    writeFileSync(path.join(empty, "undionly.kpxe"), "x");
    const r = await cli(["dhcp", "--format", "dnsmasq"], lan(`${LAN_SITE}ipxe: { binaries: ${empty} }\n`));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${empty} has no snponly.efi`);
    expect(r.stderr).toContain("apt install ipxe");
    const gone = await cli(["dhcp", "--format", "dnsmasq"], lan(`${LAN_SITE}ipxe: { binaries: ./nowhere }\n`));
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/the iPXE binaries' folder \S+\/nowhere does not exist/);
  });

  it("a binaries folder whose path a configuration cannot hold (a comma, a line break) is refused (2), never written into tftp-root; with settings and binaries both missing, the settings are named (2)", async () => {
    const odd = path.join(dir, "bin\ndhcp-script=evil.sh\n#,x");
    mkdirSync(odd);
    for (const name of ["undionly.kpxe", "snponly.efi"]) writeFileSync(path.join(odd, name), readFileSync(path.join(IPXE, name)));
    const site = `url: http://192.168.77.1:8099\ndhcp: { interface: br0, subnet: 192.168.77.0/24 }\nipxe: { binaries: ${JSON.stringify(odd)} }\n`;
    const r = await cli(["dhcp", "--format", "dnsmasq"], lan(site));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("site.dhcp.tftpRoot: dnsmasq serves the iPXE binaries over TFTP from a folder, and the one ipxe.binaries names has characters a configuration cannot hold as they are");
    // With dhcp.tftpRoot set, the binaries are only read (their hashes shown): fine.
    const given = await cli(["dhcp", "--format", "dnsmasq"], lan(site.replace("subnet: 192.168.77.0/24", "subnet: 192.168.77.0/24, tftpRoot: /srv/tftp")));
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).not.toContain("evil");
    const both = await cli(["dhcp", "--format", "kea"], lan(`ipxe: { binaries: ${JSON.stringify(path.join(dir, "none"))} }\n`));
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining("netbuild.yaml lacks 2 settings that --format kea --mode proxy needs: url, dhcp.tftpServer")]);
  });

  it("an unknown format or mode is a usage error (exit 2) naming the choices", async () => {
    const r = await cli(["dhcp", "--format", "pfsense"], lan());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Allowed choices are dnsmasq, kea, isc, routeros, openwrt");
    expect((await cli(["dhcp", "--format", "isc", "--mode", "relay"], lan())).code).toBe(2);
    expect((await cli(["dhcp"], lan())).code).toBe(2);
  });
});
