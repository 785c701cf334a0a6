import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { closestName, macColons, paramKey, parseClassName, parseHostName, parseKernelParam, parseMac, parsePublicKey, PLACEHOLDER_KEY_DATA, reservedParam, type KernelParam, type Mac } from "../../src/core/names.ts";
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

describe("MAC addresses: what the messages say", () => {
  it("names why a MAC is refused, quoting the value as written", () => {
    expect(parseMac("01:00:5e:00:00:01")).toEqual({
      ok: false,
      message: '"01:00:5e:00:00:01" is a multicast/broadcast address, not a network card\'s MAC',
      hint: "copy the MAC from the machine's NIC label, BMC or `ip link`",
    });
    expect(parseMac("00-00-00-00-00-00")).toEqual({ ok: false, message: '"00-00-00-00-00-00" is the all-zero MAC', hint: "use the NIC's real MAC" });
    expect(parseMac("nope")).toEqual({
      ok: false,
      message: '"nope" is not a MAC address',
      hint: "six hex pairs, e.g. 52:54:00:12:34:56 (also 52-54-00-12-34-56 or 5254.0012.3456)",
    });
  });

  it("accepts a locally administered unicast MAC and one with zero octets after the first", () => {
    expect(parseMac("02:00:00:00:00:01")).toEqual({ ok: true, value: "02-00-00-00-00-01" });
    expect(parseMac("00:00:00:00:00:01")).toEqual({ ok: true, value: "00-00-00-00-00-01" });
    // Multicast is the first octet's low bit only, whatever the other octets hold.
    expect(parseMac("03:00:00:00:00:00").ok).toBe(false);
    expect(parseMac("52:54:00:12:34:57").ok).toBe(true);
  });

  it("lower-cases every spelling, the dotted and bare ones too", () => {
    expect(parseMac("5254.00AB.CDEF")).toEqual({ ok: true, value: "52-54-00-ab-cd-ef" });
    expect(parseMac("525400ABCDEF")).toEqual({ ok: true, value: "52-54-00-ab-cd-ef" });
  });

  it("writes a MAC with colons for messages", () => {
    expect(macColons("52-54-00-12-34-56" as Mac)).toBe("52:54:00:12:34:56");
  });
});

describe("hostnames and class names: what the messages say", () => {
  it("says an upper-case hostname has upper-case letters, and a bad one what a hostname is", () => {
    expect(parseHostName("Aleph")).toEqual({ ok: false, message: '"Aleph" has upper-case letters', hint: 'write it as "aleph"' });
    expect(parseHostName("a_b")).toEqual({
      ok: false,
      message: '"a_b" is not a valid hostname',
      hint: "one RFC 1123 label: a-z, 0-9 and '-', 1 to 63 characters, not starting or ending with '-' (no dots: use the short name)",
    });
    // Upper case in a name that would be invalid anyway is not "just" upper case.
    expect(parseHostName("A_B")).toMatchObject({ ok: false, message: '"A_B" is not a valid hostname' });
  });

  it("returns the name itself when it is valid", () => {
    expect(parseHostName("node-01")).toEqual({ ok: true, value: "node-01" });
    expect(parseClassName("talos.worker_2")).toEqual({ ok: true, value: "talos.worker_2" });
  });

  it("refuses a class name with `..` anywhere and says what a class name is", () => {
    expect(parseClassName("a..")).toEqual({
      ok: false,
      message: '"a.." is not a valid class name',
      hint: "lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters (the class file is classes/<name>.yaml)",
    });
    expect(parseClassName("a.b.c").ok).toBe(true);
  });
});

describe("kernel parameters: the edges and the messages", () => {
  it("accepts every printable ASCII character iPXE does not interpret, from '!' to '~'", () => {
    expect(parseKernelParam("!")).toEqual({ ok: true, value: "!" });
    expect(parseKernelParam("a~")).toEqual({ ok: true, value: "a~" });
    // '#' and ':' are script syntax only at the start of a word.
    expect(parseKernelParam("a#b").ok).toBe(true);
    expect(parseKernelParam("x:")).toEqual({ ok: true, value: "x:" });
    expect(parseKernelParam("x#")).toEqual({ ok: true, value: "x#" });
  });

  it("takes 1024 characters and refuses 1025", () => {
    expect(parseKernelParam("x".repeat(1024)).ok).toBe(true);
    expect(parseKernelParam("x".repeat(1025))).toEqual({ ok: false, message: "a kernel parameter longer than 1024 characters" });
    expect(parseKernelParam("")).toEqual({ ok: false, message: "an empty kernel parameter", hint: "remove the empty entry" });
  });

  it("names the character that cannot be written, with a hint for spaces of its own", () => {
    const printableHint = "kernel parameters here are printable ASCII without spaces";
    expect(parseKernelParam("a b")).toEqual({
      ok: false,
      message: '"a b" contains a space',
      hint: "each list entry is one parameter: write `a=1 b=2` as two entries; a value cannot contain spaces",
    });
    expect(parseKernelParam("a\rb")).toEqual({ ok: false, message: "a string of 3 characters on 2 lines contains a line break", hint: printableHint });
    expect(parseKernelParam("a\tb")).toEqual({ ok: false, message: '"a\\tb" contains a tab', hint: printableHint });
    expect(parseKernelParam("a\u007f")).toEqual({ ok: false, message: '"a\\u007f" contains the non-ASCII character "\\u007f"', hint: printableHint });
    expect(parseKernelParam("a\u001b")).toEqual({ ok: false, message: '"a\\u001b" contains a control character', hint: printableHint });
    expect(parseKernelParam("\u0020x")).toMatchObject({ ok: false, message: '" x" contains a space' });
  });

  it("refuses quotes, backticks and backslashes with why", () => {
    for (const p of ['a"', "a'", "a`", "a\\"]) {
      expect(parseKernelParam(p)).toEqual({ ok: false, message: `"${p.replace(/["\\]/g, (c) => `\\${c}`)}" contains a quote or backslash`, hint: "iPXE would interpret it; kernel parameters here cannot be quoted" });
    }
  });

  it("refuses '$' and iPXE's script syntax with why", () => {
    expect(parseKernelParam("a$")).toEqual({ ok: false, message: '"a$" contains \'$\'', hint: "iPXE expands ${...} in scripts; netbuild sets iPXE variables itself" });
    for (const p of ["a;b", "a&b", "a|b", "#x", ":x"]) {
      expect(parseKernelParam(p)).toEqual({ ok: false, message: `"${p}" contains a character iPXE treats as script syntax (; & | or a leading # or :)`, hint: "remove it" });
    }
  });

  it("finds the key of key=value, and the whole word without '='", () => {
    expect(paramKey("console=ttyS0,115200" as KernelParam)).toBe("console");
    expect(paramKey("root=LABEL=nixos" as KernelParam)).toBe("root");
    expect(paramKey("quiet" as KernelParam)).toBe("quiet");
    expect(paramKey("=x" as KernelParam)).toBe("");
  });

  it("knows which keys netbuild sets itself, a removal's leading '-' included", () => {
    expect(reservedParam("homelab.provision_disks", "homelab")).toBe("provision");
    expect(reservedParam("-homelab.provision_id", "homelab")).toBe("provision");
    expect(reservedParam("other.provision_disks", "homelab")).toBeUndefined();
    expect(reservedParam("homelab.provisionx", "homelab")).toBeUndefined();
    expect(reservedParam("hostname", "homelab")).toBe("hostname");
    expect(reservedParam("-hostname", "homelab")).toBe("hostname");
    expect(reservedParam("talos.config", "homelab")).toBe("talos.config");
    expect(reservedParam("-talos.config", "homelab")).toBe("talos.config");
    expect(reservedParam("x-hostname", "homelab")).toBeUndefined();
    expect(reservedParam("console", "homelab")).toBeUndefined();
  });
});

describe("parsePublicKey: key blobs checked field by field (built in memory)", () => {
  const str = (b: Buffer | string) => {
    const body = typeof b === "string" ? Buffer.from(b, "latin1") : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, body]);
  };
  const blob = (...fields: (Buffer | string)[]) => Buffer.concat(fields.map(str)).toString("base64");
  const ed = (bytes = 32) => blob("ssh-ed25519", Buffer.alloc(bytes, 7));
  const cutShort = (type: string) => `the base64 part is not a ${type} key (cut short, or from another key)`;

  it("takes the placeholder key and well-formed keys of each field count, spaces folded", () => {
    expect(parsePublicKey(`ssh-ed25519 ${PLACEHOLDER_KEY_DATA}`).ok).toBe(true);
    expect(parsePublicKey(`ssh-ed25519 ${ed()}`)).toEqual({ ok: true, value: `ssh-ed25519 ${ed()}` });
    expect(parsePublicKey(`  ssh-ed25519 ${ed()} me@laptop  two\twords \n`)).toEqual({ ok: true, value: `ssh-ed25519 ${ed()} me@laptop two words` });
    // The comment is the user's own: only a line that starts like a PEM block is taken for a private key.
    expect(parsePublicKey(`ssh-ed25519 ${ed()} copied from -----BEGIN`).ok).toBe(true);
    expect(parsePublicKey(`ssh-rsa ${blob("ssh-rsa", "\x01\x00\x01", Buffer.alloc(64, 9))}`).ok).toBe(true);
    expect(parsePublicKey(`sk-ecdsa-sha2-nistp256@openssh.com ${blob("sk-ecdsa-sha2-nistp256@openssh.com", "nistp256", Buffer.alloc(65, 4), "ssh:")} k`).ok).toBe(true);
  });

  it("refuses a blob whose fields do not fill it exactly, or are empty, or too few or too many", () => {
    const good = Buffer.from(ed(), "base64");
    const variants = {
      "a trailing byte": Buffer.concat([good, Buffer.from([0])]),
      "a short length prefix": Buffer.concat([good, Buffer.from([0, 0])]),
      "a field longer than the blob": good.subarray(0, good.length - 1),
      "an ed25519 key of 31 bytes": Buffer.from(ed(31), "base64"),
      "an ed25519 key of 33 bytes": Buffer.from(ed(33), "base64"),
      "a third field": Buffer.from(blob("ssh-ed25519", Buffer.alloc(32, 7), "x"), "base64"),
      "the type alone": Buffer.from(blob("ssh-ed25519"), "base64"),
    };
    for (const [what, b] of Object.entries(variants)) {
      expect(parsePublicKey(`ssh-ed25519 ${b.toString("base64")}`), what).toEqual({ ok: false, message: cutShort("ssh-ed25519"), hint: "copy the whole line of the .pub file again" });
    }
    expect(parsePublicKey(`ssh-rsa ${blob("ssh-rsa", "", Buffer.alloc(64, 9))}`)).toMatchObject({ ok: false, message: cutShort("ssh-rsa") });
    expect(parsePublicKey(`ssh-rsa ${blob("ssh-rsa", "\x01\x00\x01", "")}`)).toMatchObject({ ok: false, message: cutShort("ssh-rsa") });
    expect(parsePublicKey(`ssh-rsa ${blob("ssh-dss", "\x01\x00\x01", "x")}`)).toMatchObject({ ok: false, message: cutShort("ssh-rsa") });
    // A last field whose length says more bytes than the blob holds: cut short, even with bytes left in it.
    const rsa = Buffer.from(blob("ssh-rsa", "\x01\x00\x01", Buffer.alloc(64, 9)), "base64");
    for (const declared of [65, 68, 100]) {
      rsa.writeUInt32BE(declared, rsa.length - 68);
      expect(parsePublicKey(`ssh-rsa ${rsa.toString("base64")}`), `${declared}`).toMatchObject({ ok: false, message: cutShort("ssh-rsa") });
    }
    expect(parsePublicKey(`ssh-rsa ${blob("ssh-rsa", "\x01\x00\x01", Buffer.alloc(64, 9))}`).ok).toBe(true);
  });

  it("says what is wrong without repeating the value", () => {
    const hint = "give one public key per entry, as in a .pub file: `ssh-ed25519 AAAAC3Nza… you@laptop` (authorized_keys options such as from= are not taken)";
    expect(parsePublicKey(`ssh-ed25519 ${ed()}\rssh-ed25519 ${ed()}`)).toEqual({ ok: false, message: "a public key is one line; this value has several", hint });
    expect(parsePublicKey("ssh-ed25519")).toEqual({ ok: false, message: "not an OpenSSH public key (expected: type, base64 key, optional comment)", hint });
    expect(parsePublicKey(`ssh-ed25519  ${ed()}`)).toMatchObject({ ok: false, message: "not an OpenSSH public key (expected: type, base64 key, optional comment)" });
    expect(parsePublicKey(`x ssh-ed25519 ${ed()}`)).toMatchObject({ ok: false, message: "not an OpenSSH public key (expected: type, base64 key, optional comment)" });
    expect(parsePublicKey(`ssh-dss ${ed()}`)).toEqual({
      ok: false,
      message: '"ssh-dss" is not a key type sshd takes',
      hint: "expected one of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com",
    });
    expect(parsePublicKey(`${"t".repeat(50)} ${ed()}`)).toMatchObject({ ok: false, message: `"${"t".repeat(40)}" is not a key type sshd takes` });
    const priv = parsePublicKey("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
    expect(priv).toEqual({
      ok: false,
      message: "this is a PRIVATE key (it is not repeated here): it must never be in the inventory, which ends up in the Nix store and the repository",
      hint: "remove it now and treat it as exposed; give the public key instead (the .pub file, or `ssh-keygen -y -f KEYFILE`)",
    });
    // Either sign is enough: a PEM block of any kind, or the words anywhere.
    expect(parsePublicKey("-----BEGIN RSA KEY-----")).toMatchObject({ ok: false, message: expect.stringContaining("PRIVATE key") });
    expect(parsePublicKey("x PRIVATE KEY")).toMatchObject({ ok: false, message: expect.stringContaining("PRIVATE key") });
  });
});

describe("closestName: suggestions for a misspelt name", () => {
  it("suggests the nearest candidate when it is close enough, and nothing otherwise", () => {
    expect(closestName("ganeti-nod", ["demo", "ganeti-node", "talos"])).toBe("ganeti-node");
    expect(closestName("deom", ["demo", "ganeti-node"])).toBe("demo");
    expect(closestName("xyz", ["demo"])).toBeUndefined();
    expect(closestName("a", [])).toBeUndefined();
    // Two edits are always close enough; longer names allow a third of their length.
    expect(closestName("ab", ["ba"])).toBe("ba");
    expect(closestName("abc", ["xyz"])).toBeUndefined();
    expect(closestName("abcdefghi", ["abcxyzghi"])).toBe("abcxyzghi");
    expect(closestName("abcdefghi", ["abwxyzghi"])).toBeUndefined();
    // A third of ten characters is three edits, not four.
    expect(closestName("abcdefghij", ["abcxyzghij"])).toBe("abcxyzghij");
    expect(closestName("abcdefghij", ["abwxyzghij"])).toBeUndefined();
    // The first of equally close candidates, not the last.
    expect(closestName("ab", ["ax", "ay"])).toBe("ax");
    expect(closestName("node", ["nodes", "node"])).toBe("node");
    expect(closestName("kitten", ["sittin"])).toBe("sittin");
    expect(closestName("kitten", ["sitting"])).toBeUndefined();
    expect(closestName("", ["ab"])).toBe("ab");
    expect(closestName("abcde", ["abc"])).toBe("abc");
    expect(closestName("abcdef", ["abc"])).toBeUndefined();
    expect(closestName("abc", ["abcde"])).toBe("abcde");
  });
});
