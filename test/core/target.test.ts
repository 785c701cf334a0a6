// Deploy targets as users write them (--to, netbuild.yaml's targets): which folder on which boot
// server a spec names, what a malformed one is refused with (message and hint, as `deploy` and
// `targets` print them), and how a target is labelled in output. The common specs are read in
// test/core/deploy.test.ts; this file guards the edges: bounds, anchors, line breaks, labels.
import { describe, expect, it } from "vitest";
import { describeTarget, parseTarget } from "../../src/core/target.ts";

const sftp = (host: string, path: string, user?: string, port?: number) => ({ ok: true, value: { kind: "sftp", user, host, port, path } });
const SFTP_HINT = "sftp://user@host:port/path, e.g. sftp://admin@boot.example.org/srv/http/netboot";
const REMOTE_PATH_HINT = "name the folder the boot server's web server serves, e.g. /srv/http/netboot";
const LOCAL_PATH_HINT = "a folder the boot server's web server serves, e.g. /srv/http/netboot";

describe("reading a target", () => {
  it("accepts every port from 1 to 65535 and refuses 0", () => {
    expect(parseTarget("sftp://boot:1/srv")).toEqual(sftp("boot", "/srv", undefined, 1));
    expect(parseTarget("sftp://boot:65535/srv")).toEqual(sftp("boot", "/srv", undefined, 65535));
    expect(parseTarget("sftp://boot:0/srv")).toEqual({ ok: false, message: "port 0 is out of range", hint: "1–65535" });
  });

  it("drops every trailing slash of the folder", () => {
    expect(parseTarget("sftp://boot/srv/tftp//")).toEqual(sftp("boot", "/srv/tftp"));
    expect(parseTarget("admin@boot:/srv/tftp///")).toEqual(sftp("boot", "/srv/tftp", "admin"));
  });

  it("reads a local folder whose name holds a colon or `://` further on as a folder, not a server", () => {
    expect(parseTarget("/srv/http/boot:8080")).toEqual({ ok: true, value: { kind: "local", path: "/srv/http/boot:8080" } });
    expect(parseTarget("./mirrors/https://boot")).toEqual({ ok: true, value: { kind: "local", path: "./mirrors/https://boot" } });
  });

  it("refuses an sftp: spec that is not a whole sftp:// URL, saying how one is written", () => {
    for (const spec of ["sftp:/boot/srv", "sftp:sftp://boot/srv", "sftp://boot:2222x/srv"]) {
      expect(parseTarget(spec), spec).toEqual({ ok: false, message: `"${spec}" is not an sftp:// URL`, hint: SFTP_HINT });
    }
  });

  it("refuses a spec with a line break rather than reading its first line as the target", () => {
    const url = parseTarget("sftp://boot/srv\nrm");
    expect(url.ok).toBe(false);
    expect(url).toMatchObject({ message: expect.stringContaining("is not an sftp:// URL") as string, hint: SFTP_HINT });
    expect(parseTarget("boot:/srv\nrm")).toEqual({ ok: false, message: "the path holds a control character", hint: LOCAL_PATH_HINT });
    expect(parseTarget("served\tnew")).toEqual({ ok: false, message: "the path holds a control character", hint: LOCAL_PATH_HINT });
    expect(parseTarget("sftp://boot/srv%0Anew")).toEqual({ ok: false, message: "the path holds a control character", hint: REMOTE_PATH_HINT });
    // C1 controls too (U+009B is a terminal's CSI: the path is printed in messages).
    expect(parseTarget("sftp://boot/srv%C2%9B31m")).toEqual({ ok: false, message: "the path holds a control character", hint: REMOTE_PATH_HINT });
    expect(parseTarget("served\u0085x")).toEqual({ ok: false, message: "the path holds a control character", hint: LOCAL_PATH_HINT });
  });

  it("refuses a target that names no folder: an empty spec, or a server with no path", () => {
    expect(parseTarget("")).toEqual({ ok: false, message: "the path is the root of the file system", hint: LOCAL_PATH_HINT });
    expect(parseTarget("sftp://boot")).toEqual({ ok: false, message: "the path is the root of the file system", hint: REMOTE_PATH_HINT });
    expect(parseTarget("admin@boot:")).toEqual({ ok: false, message: "the path is the root of the file system", hint: REMOTE_PATH_HINT });
    // The root spelt otherwise: never "." (the login folder on an SFTP server), never / on this machine.
    for (const spec of ["sftp://boot//", "sftp://boot/%2F", "sftp://boot/./", "sftp://boot/.", "admin@boot://", "boot:/./", "//", "/.", "/./"]) {
      const r = parseTarget(spec);
      expect(r.ok ? r.value : r.message, spec).toBe("the path is the root of the file system");
    }
    // A relative "." is a folder (the login folder on a server, the inventory root here), as before.
    expect(parseTarget("boot:.")).toMatchObject({ ok: true, value: { kind: "sftp", path: "." } });
  });

  it("refuses a URL whose %-escape is not one, as a usage error rather than a crash", () => {
    for (const spec of ["sftp://boot/%zz", "sftp://boot/srv/%", "sftp://boot/%E0%A4%A"]) expect(parseTarget(spec), spec).toEqual({ ok: false, message: `"${spec}" holds a %-escape that is not one`, hint: "write a % in a path as %25" });
    expect(parseTarget("sftp://boot/srv/a%25b")).toMatchObject({ ok: true, value: { path: "/srv/a%b" } });
  });

  it("refuses a local folder that climbs out with `..`", () => {
    expect(parseTarget("../served")).toEqual({ ok: false, message: "the path holds a `..` segment", hint: LOCAL_PATH_HINT });
  });

  it("gives each refusal of a server spec a hint with the next step", () => {
    expect(parseTarget("a;b@boot:/srv")).toEqual({ ok: false, message: '"a;b" is not a user name', hint: "e.g. admin@boot.example.org:/srv/http/netboot" });
    expect(parseTarget("sftp://bad_host/srv")).toEqual({ ok: false, message: '"bad_host" is not a host name', hint: "a DNS name, an IP address, or a Host alias from ~/.ssh/config" });
    expect(parseTarget("boot:/srv/../etc")).toEqual({ ok: false, message: "the path holds a `..` segment", hint: REMOTE_PATH_HINT });
    expect(parseTarget("ftp://boot/srv")).toEqual({ ok: false, message: '"ftp://boot/srv": only sftp:// and local folders are supported', hint: "sftp://user@host/path, user@host:/path, or a folder" });
  });
});

describe("labelling a target", () => {
  it("shows a local folder as written", () => {
    expect(describeTarget({ kind: "local", path: "./served" })).toBe("./served");
  });

  it("shows a server as an sftp:// URL, with the user and port only where given", () => {
    expect(describeTarget({ kind: "sftp", user: "admin", host: "boot.homelab.tel", port: 2222, path: "/srv/http/nixos" })).toBe("sftp://admin@boot.homelab.tel:2222/srv/http/nixos");
    expect(describeTarget({ kind: "sftp", user: undefined, host: "boot", port: undefined, path: "/srv/tftp" })).toBe("sftp://boot/srv/tftp");
  });

  it("marks a folder relative to the login folder with /~/", () => {
    expect(describeTarget({ kind: "sftp", user: "admin", host: "boot", port: undefined, path: "netboot" })).toBe("sftp://admin@boot/~/netboot");
  });

  it("labels what a spec reads as the same server and folder", () => {
    const parsed = parseTarget("admin@boot.homelab.tel:/usb1-part1/http/nixos/");
    expect(parsed.ok && describeTarget(parsed.value)).toBe("sftp://admin@boot.homelab.tel/usb1-part1/http/nixos");
  });
});
