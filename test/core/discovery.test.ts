// `netbuild discovered`'s core (core/discovery.ts): access-log lines of every server it reads,
// boot.ipxe's discovery requests in them, and what it makes of hostile or odd values.
import { describe, expect, it } from "vitest";
import { clientValue, discoveryOf, DiscoveryLog, isPlaceholder, parseLogLine } from "../../src/core/discovery.ts";

const Q = "uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32&serial=ABC123&manufacturer=Dell%20Inc.&product=PowerEdge%20R640&asset=&platform=efi&buildarch=x86_64&chip=bnxt";

describe("access-log lines", () => {
  it("nginx/Apache combined and common, lighttpd (a virtual host in the second field), Python's http.server, Caddy's JSON", () => {
    const want = { remote: "10.0.0.7", method: "GET", target: `/nb/discover/aa-bb-cc-dd-ee-01?${Q}`, status: 404 };
    expect(parseLogLine(`10.0.0.7 - - [30/Nov/2026:13:00:02 +0100] "GET /nb/discover/aa-bb-cc-dd-ee-01?${Q} HTTP/1.1" 404 153 "-" "iPXE/1.21.1"`)).toEqual({ ...want, time: new Date("2026-11-30T12:00:02Z") });
    expect(parseLogLine(`10.0.0.7 - - [30/Nov/2026:13:00:02 -0030] "GET /nb/discover/aa-bb-cc-dd-ee-01?${Q} HTTP/1.0" 404 -`)).toEqual({ ...want, time: new Date("2026-11-30T13:30:02Z") });
    expect(parseLogLine(`10.0.0.7 boot.example - [30/Nov/2026:13:00:02 +0000] "GET /nb/discover/aa-bb-cc-dd-ee-01?${Q} HTTP/1.1" 404 345 "-" "iPXE/1.21.1"`)).toEqual({ ...want, time: new Date("2026-11-30T13:00:02Z") });
    expect(parseLogLine(`10.0.0.7 - - [30/Nov/2026 13:00:02] "GET /nb/discover/aa-bb-cc-dd-ee-01?${Q} HTTP/1.1" 404 -`)).toEqual({ ...want, time: new Date("2026-11-30T13:00:02Z") });
    const caddy = JSON.stringify({ level: "info", ts: 1795957202.5, logger: "http.log.access", msg: "handled request", request: { remote_ip: "10.0.0.7", method: "GET", uri: `/nb/discover/aa-bb-cc-dd-ee-01?${Q}` }, status: 404 });
    expect(parseLogLine(caddy)).toEqual({ ...want, time: new Date(1795957202500) });
    // Caddy 2.7 and later: client_ip (after trusted proxies) first.
    const proxied = JSON.stringify({ ts: 1, request: { remote_ip: "10.0.0.1", client_ip: "10.0.0.9", method: "GET", uri: "/x" }, status: 200 });
    expect(parseLogLine(proxied)?.remote).toBe("10.0.0.9");
    // A time past the year 9999 (or before 1970) is no time: it would not sort.
    expect(parseLogLine(JSON.stringify({ ts: 1e12, request: { remote_ip: "a", method: "GET", uri: "/x" }, status: 200 }))?.time).toBeUndefined();
    expect(parseLogLine(JSON.stringify({ ts: -1, request: { remote_ip: "a", method: "GET", uri: "/x" }, status: 200 }))?.time).toBeUndefined();
  });

  it("the request: a method in capitals first, a target, then HTTP/x or HTTP/x.y or nothing (HTTP/0.9)", () => {
    const at = (request: string) => parseLogLine(`10.0.0.7 - - [30/Nov/2026:13:00:02 +0000] "${request}" 200 1`);
    expect(at("GET /x HTTP/2")).toMatchObject({ method: "GET", target: "/x" });
    expect(at("GET /x HTTP/1.1")).toMatchObject({ method: "GET", target: "/x" });
    expect(at("GET /x")).toMatchObject({ method: "GET", target: "/x" });
    for (const r of ["get /x HTTP/1.1", "a GET /x HTTP/1.1", "GET /x HTTP/1.1 y", "GET /x HTTP/1.", "GET /x HTTP/a"]) expect(at(r), r).toBeUndefined();
    // A time with anything around it is no time.
    expect(parseLogLine('10.0.0.7 - - [x30/Nov/2026:13:00:02 +0000] "GET /x HTTP/1.1" 200 1')?.time).toBeUndefined();
    expect(parseLogLine('10.0.0.7 - - [30/Nov/2026:13:00:02 +0000x] "GET /x HTTP/1.1" 200 1')?.time).toBeUndefined();
  });

  it("Caddy's JSON: every field of the right type, or no line; times from 1970 to the year 9999", () => {
    const caddy = (o: unknown) => parseLogLine(JSON.stringify(o));
    const ok = { ts: 0, request: { remote_ip: "10.0.0.7", method: "GET", uri: "/x" }, status: 200 };
    expect(caddy(ok)).toEqual({ remote: "10.0.0.7", time: new Date(0), method: "GET", target: "/x", status: 200 });
    for (const bad of [{ ...ok, request: "x" }, { ...ok, request: null }, { ...ok, request: { ...ok.request, remote_ip: 7 } }, { ...ok, request: { ...ok.request, method: 1 } }, { ...ok, request: { ...ok.request, uri: null } }, { ts: 1, status: 200 }]) {
      expect(caddy(bad), JSON.stringify(bad)).toBeUndefined();
    }
    expect(parseLogLine("null")).toBeUndefined();
    expect(parseLogLine('{"request":{"remote_ip":"a","method":"GET","uri":"/x"},"status":200}')).toMatchObject({ time: undefined });
    expect(caddy({ ...ok, ts: 253_402_300_799 })?.time).toEqual(new Date(253_402_300_799_000));
    expect(caddy({ ...ok, ts: "5" })?.time).toBeUndefined();
    expect(caddy({ ...ok, ts: 253_402_300_800 })?.time).toBeUndefined();
  });

  it("anything else is no line: garbage, a broken request, JSON of another shape, a bad date (kept as a request without a time)", () => {
    for (const line of ["garbage", '10.0.0.7 - - [x] "GET" 200 1', '10.0.0.7 - - [30/Nov/2026:13:00:02 +0000] "GET /a b c HTTP/1.1" 200 1', "{", '{"request":{"method":"GET"},"status":200}', '{"request":{"remote_ip":"a","method":"GET","uri":"/x"},"status":"200"}', '"GET / HTTP/1.1" 200 1']) {
      expect(parseLogLine(line), line).toBeUndefined();
    }
    expect(parseLogLine('10.0.0.7 - - [31/Foo/2026:13:00:02 +0000] "GET /x HTTP/1.1" 200 1')).toMatchObject({ time: undefined, target: "/x" });
    expect(parseLogLine('10.0.0.7 - - [30/Nov/2026:13:00:02 +0000] "GET /a\\"b HTTP/1.1" 200 1')).toMatchObject({ target: '/a\\"b' });
  });
});

describe("discovery requests", () => {
  it("the MAC and the fields boot.ipxe sends, under any prefix; other requests are not discoveries", () => {
    expect(discoveryOf(`/nb/discover/AA-BB-CC-DD-EE-01?${Q}`)).toEqual({
      mac: "aa-bb-cc-dd-ee-01",
      fields: { uuid: "4c4c4544-0042-3510-8052-b4c04f4e4d32", serial: "ABC123", manufacturer: "Dell Inc.", product: "PowerEdge R640", platform: "efi", buildarch: "x86_64", chip: "bnxt" },
    });
    expect(discoveryOf("discover/aa-bb-cc-dd-ee-01")).toEqual({ mac: "aa-bb-cc-dd-ee-01", fields: {} });
    // Without a ?, there is no query: an & in the path is no field.
    expect(discoveryOf("/boot&serial=ABC123/discover/aa-bb-cc-dd-ee-01")).toEqual({ mac: "aa-bb-cc-dd-ee-01", fields: {} });
    expect(discoveryOf("serial=ABC&/discover/aa-bb-cc-dd-ee-01")).toEqual({ mac: "aa-bb-cc-dd-ee-01", fields: {} });
    // A key without a value, or with an empty one, says nothing.
    expect(discoveryOf("/discover/aa-bb-cc-dd-ee-01?serial&uuid=&platform=efi")).toEqual({ mac: "aa-bb-cc-dd-ee-01", fields: { platform: "efi" } });
    for (const t of ["/boot.ipxe", "/by-mac/aa-bb-cc-dd-ee-01/ipxe", "/xdiscover/aa-bb-cc-dd-ee-01", "/discover/aa-bb-cc-dd-ee", "/discover/aa:bb:cc:dd:ee:01", "/discover/aa-bb-cc-dd-ee-01/x", "/discover/01-00-5e-00-00-01", "/discover/00-00-00-00-00-00"]) {
      expect(discoveryOf(t), t).toBeUndefined();
    }
  });

  it("hostile values: decoded, control characters and bidi overrides dropped, cut at 64 characters; a literal + stays a +; unknown keys ignored", () => {
    const d = discoveryOf("/discover/aa-bb-cc-dd-ee-01?manufacturer=%1b%5b31mRed%07&product=a+b%2Bc&serial=%E2%80%AEgnp.exe&asset=%ZZ&x=1&uuid=" + "9".repeat(100));
    expect(d?.fields).toEqual({ manufacturer: "[31mRed", product: "a+b+c", serial: "gnp.exe", asset: "%ZZ", uuid: `${"9".repeat(63)}…` });
    expect(clientValue("%0a%0d%09")).toBe("");
    expect(clientValue("a%E2%81%A6b%E2%81%A9c")).toBe("abc");
    expect(clientValue("x".repeat(64))).toBe("x".repeat(64));
    expect(clientValue("%20%20x%20")).toBe("x");
    // Cut by code points, never inside a surrogate pair.
    expect(clientValue(`${"a".repeat(62)}%F0%9F%98%80%F0%9F%98%80x`)).toBe(`${"a".repeat(62)}\u{1F600}…`);
  });

  it("placeholder UUIDs and serials", () => {
    expect(["00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"].every((u) => isPlaceholder("uuid", u))).toBe(true);
    expect(isPlaceholder("uuid", "4c4c4544-0042-3510-8052-b4c04f4e4d32")).toBe(false);
    expect(isPlaceholder("uuid", "Default string")).toBe(false);
    for (const s of ["To be filled by O.E.M.", "Default string", "System Serial Number", "0", "000000", "Not Specified"]) expect(isPlaceholder("serial", s), s).toBe(true);
    expect(isPlaceholder("serial", "CZ12345678")).toBe(false);
    for (const s of ["None", "N/A", "123456789", "0123456789", "Chassis Serial Number", "serial", " 0000 "]) expect(isPlaceholder("serial", s), s).toBe(true);
    for (const s of ["A00", "00A", "ffA", "Aff"]) expect(isPlaceholder("serial", s), s).toBe(false);
  });
});

describe("the machines of a log", () => {
  const line = (ip: string, time: string, target: string, method = "GET") => `${ip} - - [${time} +0000] "${method} ${target} HTTP/1.1" 404 10 "-" "iPXE"`;

  it("one per MAC: boots counted, first and last seen, what the latest request says; known MACs and other requests left out; malformed lines counted", () => {
    const log = new DiscoveryLog(new Set(["aa-bb-cc-dd-ee-99"]));
    for (const l of [
      line("10.0.0.5", "30/Nov/2026:13:00:00", "/discover/aa-bb-cc-dd-ee-01?platform=pcbios&buildarch=i386&manufacturer=QEMU&serial=0"),
      line("10.0.0.6", "30/Nov/2026:15:00:00", "/discover/aa-bb-cc-dd-ee-01?platform=efi&buildarch=x86_64"),
      line("10.0.0.4", "30/Nov/2026:12:00:00", "/discover/aa-bb-cc-dd-ee-01?platform=pcbios"),
      line("10.0.0.9", "30/Nov/2026:14:00:00", "/discover/aa-bb-cc-dd-ee-99?platform=efi"),
      line("10.0.0.7", "30/Nov/2026:14:30:00", "/discover/aa-bb-cc-dd-ee-02"),
      line("10.0.0.7", "30/Nov/2026:14:30:00", "/discover/aa-bb-cc-dd-ee-03", "HEAD"),
      line("10.0.0.7", "30/Nov/2026:14:30:00", "/boot.ipxe"),
      "not a log line",
      "",
      `x${"y".repeat(20_000)}`,
      "   ",
    ]) log.add(l);
    const r = log.result();
    expect(r.malformed).toBe(2);
    expect(r.known).toBe(1);
    expect(r.machines).toEqual([
      { mac: "aa:bb:cc:dd:ee:01", firstSeen: "2026-11-30T12:00:00.000Z", lastSeen: "2026-11-30T15:00:00.000Z", boots: 3, firmware: "UEFI", arch: "x86_64", vendor: "QEMU", product: undefined, serial: "0", uuid: undefined, asset: undefined, chip: undefined, placeholders: ["serial"], ip: "10.0.0.6" },
      { mac: "aa:bb:cc:dd:ee:02", firstSeen: "2026-11-30T14:30:00.000Z", lastSeen: "2026-11-30T14:30:00.000Z", boots: 1, firmware: undefined, arch: undefined, vendor: undefined, product: undefined, serial: undefined, uuid: undefined, asset: undefined, chip: undefined, placeholders: [], ip: "10.0.0.7" },
    ]);
  });
});

describe("the order of the machines, and their times", () => {
  const at = (mac: string, time: string | undefined, platform = "efi") => `10.0.0.5 - - [${time ?? "31/Foo/2026:00:00:00"} +0000] "GET /discover/${mac}?platform=${platform} HTTP/1.1" 404 10 "-" "iPXE"`;

  it("most recently seen first, then by MAC; machines never seen at a readable time last", () => {
    const log = new DiscoveryLog(new Set());
    for (const l of [at("aa-bb-cc-dd-ee-03", "30/Nov/2026:10:00:00"), at("aa-bb-cc-dd-ee-01", undefined), at("aa-bb-cc-dd-ee-04", "30/Nov/2026:12:00:00"), at("aa-bb-cc-dd-ee-02", "30/Nov/2026:12:00:00"), at("aa-bb-cc-dd-ee-05", undefined)]) log.add(l);
    expect(log.result().machines.map((m) => m.mac)).toEqual(["aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:04", "aa:bb:cc:dd:ee:03", "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:05"]);
  });

  it("a line without a readable time counts a boot and changes neither time nor what the machine is; the same time again is the latest", () => {
    const log = new DiscoveryLog(new Set());
    log.add(at("aa-bb-cc-dd-ee-01", "30/Nov/2026:10:00:00", "pcbios"));
    log.add(at("aa-bb-cc-dd-ee-01", undefined, "efi"));
    expect(log.result().machines[0]).toMatchObject({ boots: 2, firstSeen: "2026-11-30T10:00:00.000Z", lastSeen: "2026-11-30T10:00:00.000Z", firmware: "BIOS" });
    log.add(at("aa-bb-cc-dd-ee-01", "30/Nov/2026:10:00:00", "efi"));
    expect(log.result().machines[0]).toMatchObject({ boots: 3, firmware: "UEFI" });
    // A later line leaves the first time as it was.
    const ordered = new DiscoveryLog(new Set());
    ordered.add(at("aa-bb-cc-dd-ee-01", "30/Nov/2026:10:00:00"));
    ordered.add(at("aa-bb-cc-dd-ee-01", "30/Nov/2026:11:00:00"));
    expect(ordered.result().machines[0]).toMatchObject({ firstSeen: "2026-11-30T10:00:00.000Z", lastSeen: "2026-11-30T11:00:00.000Z" });
    // Never a readable time: each line is the latest there is.
    const timeless = new DiscoveryLog(new Set());
    timeless.add(at("aa-bb-cc-dd-ee-01", undefined, "pcbios"));
    timeless.add(at("aa-bb-cc-dd-ee-01", undefined, "efi"));
    expect(timeless.result().machines[0]).toMatchObject({ boots: 2, firstSeen: undefined, lastSeen: undefined, firmware: "UEFI" });
    const late = new DiscoveryLog(new Set());
    late.add(at("aa-bb-cc-dd-ee-01", undefined, "pcbios"));
    late.add(at("aa-bb-cc-dd-ee-01", "30/Nov/2026:09:00:00", "efi"));
    expect(late.result().machines[0]).toMatchObject({ firstSeen: "2026-11-30T09:00:00.000Z", lastSeen: "2026-11-30T09:00:00.000Z", firmware: "UEFI" });
  });

  it("a line of 16,384 characters is read; a longer one is not", () => {
    const base = at("aa-bb-cc-dd-ee-01", "30/Nov/2026:10:00:00").replace('"iPXE"', '"iPXE/x"');
    const pad = (n: number) => base.replace("iPXE/x", `iPXE/${"x".repeat(n - base.length + 1)}`);
    const log = new DiscoveryLog(new Set());
    log.add(pad(16_384));
    log.add(pad(16_385));
    expect(log.result()).toMatchObject({ malformed: 1, machines: [{ boots: 1 }] });
  });
});
