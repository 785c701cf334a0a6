// Guards core/boot-chain.ts, the iPXE walker behind `netbuild verify --http`: what a machine with a
// given MAC boots from a served tree. It must follow scripts as iPXE does (relative URIs against the
// current script's URI, `|| goto` fallbacks, labels, imgfetch --name/imgexec, set/clear/echo with
// ${var} expansion) and, when the chain is broken, say where and why (the URL, the failed command,
// the fetch error) instead of guessing: verify's verdict on every machine rests on it.
import { describe, expect, it } from "vitest";
import { macVariables, walkBootChain, type FetchScript } from "../../src/core/boot-chain.ts";

const BASE = "http://boot.example/nb/";

/** A boot server serving `files` (paths under BASE): absent paths are a 404, Error values a failed fetch. */
function server(files: Record<string, string | Error>): FetchScript & { fetched: string[] } {
  const fetched: string[] = [];
  const fetch = async (url: string) => {
    fetched.push(url);
    if (!url.startsWith(BASE)) return undefined;
    const body = files[url.slice(BASE.length)];
    if (body instanceof Error) throw body;
    return body;
  };
  return Object.assign(fetch, { fetched });
}

const walk = (files: Record<string, string | Error>, mac = "52-54-00-12-34-56", maxScripts?: number) =>
  walkBootChain(`${BASE}boot.ipxe`, macVariables(mac), server(files), maxScripts);

const ipxe = (...lines: string[]) => ["#!ipxe", ...lines].join("\n");

// netbuild's own templates, in the shape src/templates/*.hbs render them.
const BOOT = ipxe(
  "# netbuild boot entry",
  "imgfetch --name netbuild-host by-mac/${mac:hexhyp}/ipxe || goto unknown",
  "imgexec netbuild-host || goto failed",
  "",
  ":unknown",
  "echo netbuild: unknown machine ${mac}, booting nothing",
  "exit 1",
  "",
  ":failed",
  "echo netbuild: boot of ${mac} failed, trying the next boot device",
  "exit 1",
);
const HOST = ipxe("echo netbuild: aleph boots class demo", "set cmdline hostname=aleph homelab.provision_disks=true", "chain ../../by-class/demo/ipxe");
const CLASS = ipxe("kernel 0123abcd/kernel initrd=initrd console=ttyS0 ${cmdline}", "initrd --name initrd 0123abcd/initrd", "boot");
const TREE = { "boot.ipxe": BOOT, "by-mac/52-54-00-12-34-56/ipxe": HOST, "by-class/demo/ipxe": CLASS };

describe("macVariables", () => {
  it("gives iPXE's ${mac:hexhyp} and ${mac} for a NIC", () => {
    expect([...macVariables("52-54-00-ab-cd-ef")]).toEqual([
      ["mac:hexhyp", "52-54-00-ab-cd-ef"],
      ["mac", "52:54:00:ab:cd:ef"],
    ]);
  });
});

describe("a known machine", () => {
  it("boots its class's kernel with the host's command line appended, as netbuild's scripts chain", async () => {
    const r = await walk(TREE);
    expect(r).toEqual({
      steps: [
        { url: `${BASE}boot.ipxe`, status: "ok" },
        { url: `${BASE}by-mac/52-54-00-12-34-56/ipxe`, status: "ok" },
        { url: `${BASE}by-class/demo/ipxe`, status: "ok" },
      ],
      result: "boot",
      kernel: { url: `${BASE}by-class/demo/0123abcd/kernel`, args: ["initrd=initrd", "console=ttyS0", "hostname=aleph", "homelab.provision_disks=true"] },
      initrds: [`${BASE}by-class/demo/0123abcd/initrd`],
      console: ["netbuild: aleph boots class demo"],
      exitStatus: undefined,
      problem: undefined,
    });
  });

  it("resolves each relative URI against the script that names it, after imgexec too", async () => {
    // The host script is fetched under by-mac/ and run with imgexec: its `../../` leads from there.
    const s = server(TREE);
    await walkBootChain(`${BASE}boot.ipxe`, macVariables("52-54-00-12-34-56"), s);
    expect(s.fetched).toEqual([`${BASE}boot.ipxe`, `${BASE}by-mac/52-54-00-12-34-56/ipxe`, `${BASE}by-class/demo/ipxe`]);
  });

  it("follows absolute URLs and absolute paths as a browser (and iPXE) does", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("chain /nb/by-class/demo/ipxe"),
      "by-class/demo/ipxe": ipxe("kernel http://mirror.example/k", "initrd /i", "initrd ./sub/../j", "boot"),
    });
    expect(r.problem).toBeUndefined();
    expect(r.kernel?.url).toBe("http://mirror.example/k");
    expect(r.initrds).toEqual(["http://boot.example/i", `${BASE}by-class/demo/j`]);
  });

  it("expands ${var} in the URIs it fetches", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("set class demo", "chain by-class/${class}/ipxe"),
      "by-class/demo/ipxe": ipxe("set v 0123abcd", "kernel ${v}/kernel", "initrd ${v}/initrd", "boot"),
    });
    expect(r.problem).toBeUndefined();
    expect(r.kernel).toEqual({ url: `${BASE}by-class/demo/0123abcd/kernel`, args: [] });
    expect(r.initrds).toEqual([`${BASE}by-class/demo/0123abcd/initrd`]);
  });

  it("collects every initrd, with or without --name", async () => {
    const r = await walk({ "boot.ipxe": ipxe("kernel k", "initrd a", "initrd --name b b.img", "initrd c --name c", "boot") });
    expect(r.initrds).toEqual([`${BASE}a`, `${BASE}b.img`, `${BASE}c`]);
    expect(r.result).toBe("boot");
  });

  it("splits a variable's words into separate kernel arguments and drops empty ones", async () => {
    const r = await walk({ "boot.ipxe": ipxe("set cmdline a=1   b=2", "kernel k x ${cmdline} ${unset} y", "boot") });
    expect(r.kernel?.args).toEqual(["x", "a=1", "b=2", "y"]);
  });

  it("boots with a kernel named but no initrd (the walker does not judge that)", async () => {
    const r = await walk({ "boot.ipxe": ipxe("kernel k", "boot") });
    expect(r).toMatchObject({ result: "boot", initrds: [], problem: undefined, exitStatus: undefined });
  });

  it("reads scripts with CRLF line ends, indentation, comments and blank lines", async () => {
    const r = await walk({ "boot.ipxe": "#!ipxe\r\n# a comment\r\n\r\n   echo  hi  there  \r\n\tkernel k a\r\n  boot\r\n" });
    expect(r).toMatchObject({ result: "boot", console: ["hi there"], kernel: { url: `${BASE}k`, args: ["a"] }, problem: undefined });
  });

  it("stops at the first boot: nothing after it runs", async () => {
    const r = await walk({ "boot.ipxe": ipxe("kernel k", "boot", "echo after", "kernel other", "exit 3") });
    expect(r).toMatchObject({ result: "boot", console: [], kernel: { url: `${BASE}k` }, exitStatus: undefined });
  });
});

describe("variables and the console", () => {
  it("sets, expands and clears variables as the script runs", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("set a one two", "set b ${a}-three", "echo a=${a} b=${b}", "clear a", "echo a=[${a}] b=${b}", "set empty", "echo [${empty}] [${never}]", "exit"),
    });
    expect(r.console).toEqual(["a=one two b=one two-three", "a=[] b=one two-three", "[] []"]);
  });

  it("shows the MAC in both spellings", async () => {
    const r = await walk({ "boot.ipxe": ipxe("echo ${mac} ${mac:hexhyp}", "exit") }, "0c-c4-7a-1e-52-1f");
    expect(r.console).toEqual(["0c:c4:7a:1e:52:1f 0c-c4-7a-1e-52-1f"]);
  });

  it("keeps variables across chained scripts", async () => {
    const r = await walk({ "boot.ipxe": ipxe("set who aleph", "chain next"), next: ipxe("echo hello ${who}", "exit") });
    expect(r.console).toEqual(["hello aleph"]);
  });

  it("echoes an empty line for a bare echo", async () => {
    const r = await walk({ "boot.ipxe": ipxe("echo", "exit") });
    expect(r.console).toEqual([""]);
  });
});

describe("exit", () => {
  it("is status 0 when no status is given, as in iPXE", async () => {
    const r = await walk({ "boot.ipxe": ipxe("exit") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 0, problem: undefined, kernel: undefined });
  });

  it.each([["0", 0], ["1", 1], ["7", 7]])("reports `exit %s` as status %d", async (arg, status) => {
    const r = await walk({ "boot.ipxe": ipxe(`exit ${arg}`, "kernel k", "boot") });
    expect(r).toMatchObject({ result: "exit", exitStatus: status, problem: undefined, kernel: undefined });
  });

  it("is an exit even after a kernel was named", async () => {
    const r = await walk({ "boot.ipxe": ipxe("kernel k", "exit 1") });
    expect(r.result).toBe("exit");
    expect(r.exitStatus).toBe(1);
  });
});

describe("fallbacks and labels", () => {
  it("takes `|| goto unknown` when the machine's script is not served, and exits to the next boot device", async () => {
    const r = await walk(TREE, "52-54-00-99-99-99");
    expect(r).toEqual({
      steps: [
        { url: `${BASE}boot.ipxe`, status: "ok" },
        { url: `${BASE}by-mac/52-54-00-99-99-99/ipxe`, status: "missing" },
      ],
      result: "exit",
      kernel: undefined,
      initrds: [],
      console: ["netbuild: unknown machine 52:54:00:99:99:99, booting nothing"],
      exitStatus: 1,
      problem: undefined,
    });
  });

  it("takes the fallback on any failed fetch, not only a 404", async () => {
    const r = await walk({ ...TREE, "by-mac/52-54-00-12-34-56/ipxe": new Error("HTTP 403") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 1, problem: undefined, console: ["netbuild: unknown machine 52:54:00:12:34:56, booting nothing"] });
    expect(r.steps.at(-1)).toEqual({ url: `${BASE}by-mac/52-54-00-12-34-56/ipxe`, status: "missing" });
  });

  it("takes `chain … || goto` when the chained script is missing", async () => {
    const r = await walk({ "boot.ipxe": ipxe("chain nowhere || goto failed", "echo not here", ":failed", "echo failed", "exit 2") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 2, console: ["failed"], problem: undefined });
    expect(r.steps).toEqual([
      { url: `${BASE}boot.ipxe`, status: "ok" },
      { url: `${BASE}nowhere`, status: "missing" },
    ]);
  });

  it("takes `imgexec … || goto` when no image of that name was fetched", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name a a.ipxe", "imgexec b || goto failed", "exit 0", ":failed", "exit 5"), "a.ipxe": ipxe("exit 9") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 5, problem: undefined });
  });

  it("does not take the fallback when the command succeeds", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name a a.ipxe || goto failed", "imgexec a || goto failed", ":failed", "exit 5"), "a.ipxe": ipxe("exit 9") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 9, problem: undefined });
  });

  it("runs an image fetched without --name under its URL", async () => {
    // iPXE names such an image after its file, and `imgexec <URI>` runs that URI either way;
    // netbuild's scripts always give --name, so the walker keeps such an image under its URL.
    const r = await walk({ "boot.ipxe": ipxe(`imgfetch a.ipxe || goto failed`, `imgexec ${BASE}a.ipxe || goto failed`, ":failed", "exit 5"), "a.ipxe": ipxe("exit 9") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 9, problem: undefined });
  });

  it("runs the image fetched last under a name", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name x a.ipxe", "imgfetch --name x b.ipxe", "imgexec x"), "a.ipxe": ipxe("exit 1"), "b.ipxe": ipxe("exit 2") });
    expect(r.exitStatus).toBe(2);
  });

  it("fetches with imgfetch without running the image", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name a a.ipxe", "exit 3"), "a.ipxe": ipxe("exit 9") });
    expect(r).toMatchObject({ result: "exit", exitStatus: 3 });
    expect(r.steps.map((s) => s.url)).toEqual([`${BASE}boot.ipxe`, `${BASE}a.ipxe`]);
  });

  it("jumps forward and backward with goto, skipping what lies between", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("goto second", ":first", "echo first", "goto end", ":second", "echo second", "goto first", "echo skipped", ":end", "echo end", "exit"),
    });
    expect(r.console).toEqual(["second", "first", "end"]);
    expect(r.problem).toBeUndefined();
  });

  it("takes only lines starting with `:` as labels, not a comment that spells one", async () => {
    const r = await walk({ "boot.ipxe": ipxe("goto end", "echo skipped", ":end", "echo at end", "exit 0", "#end") });
    expect(r).toMatchObject({ result: "exit", console: ["at end"], problem: undefined });
  });

  it("reads `|| goto` with any whitespace around it, as iPXE's tokenizer does", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("set greeting hello   ||   goto failed", "echo ${greeting}!", "imgfetch --name h gone \t||\t goto \t unknown", "exit 0", ":unknown", "echo unknown", "exit 1", ":failed", "exit 2"),
    });
    expect(r).toMatchObject({ result: "exit", exitStatus: 1, console: ["hello!", "unknown"], problem: undefined });
  });

  it("falls through a label line as iPXE does", async () => {
    const r = await walk({ "boot.ipxe": ipxe("echo a", ":here", "echo b", "exit") });
    expect(r.console).toEqual(["a", "b"]);
  });

  it("reports a goto to a label that does not exist, with the script's URL", async () => {
    const r = await walk({ "boot.ipxe": ipxe("goto nowhere", "exit 0") });
    expect(r).toMatchObject({ result: "error", exitStatus: undefined, problem: `${BASE}boot.ipxe: goto nowhere, which is not a label` });
  });

  it("reports a fallback to a label that does not exist", async () => {
    const r = await walk({ "boot.ipxe": ipxe("chain nowhere || goto nolabel", ":nolabel2", "exit 0") });
    expect(r).toMatchObject({ result: "error", problem: `${BASE}boot.ipxe: goto nolabel, which is not a label` });
  });

  it("finds labels only in the script that runs, not in the one that chained it", async () => {
    const r = await walk({ "boot.ipxe": ipxe("chain next", ":there", "exit 0"), next: ipxe("goto there") });
    expect(r).toMatchObject({ result: "error", problem: `${BASE}next: goto there, which is not a label` });
  });
});

describe("a broken chain is reported with the URL and the reason", () => {
  it("names the entry script when it is not served", async () => {
    const r = await walk({});
    expect(r).toEqual({
      steps: [{ url: `${BASE}boot.ipxe`, status: "missing" }],
      result: "error",
      kernel: undefined,
      initrds: [],
      console: [],
      exitStatus: undefined,
      problem: `${BASE}boot.ipxe is missing`,
    });
  });

  it("names the entry script and the fetch error when it cannot be fetched", async () => {
    const r = await walk({ "boot.ipxe": new Error("connect ECONNREFUSED 10.0.0.1:80") });
    expect(r.problem).toBe(`${BASE}boot.ipxe is missing (connect ECONNREFUSED 10.0.0.1:80)`);
    expect(r.result).toBe("error");
  });

  it("shows a thrown value that is not an Error as text", async () => {
    const r = await walkBootChain(`${BASE}boot.ipxe`, macVariables("52-54-00-12-34-56"), () => Promise.reject("timed out"));
    expect(r.problem).toBe(`${BASE}boot.ipxe is missing (timed out)`);
  });

  it("names the command that failed, with no fallback", async () => {
    const r = await walk({ "boot.ipxe": ipxe("echo before", "chain by-class/gone/ipxe", "echo after", "exit 0") });
    expect(r).toMatchObject({ result: "error", console: ["before"], exitStatus: undefined, problem: `${BASE}boot.ipxe: \`chain by-class/gone/ipxe\` failed` });
  });

  it("names the command that failed and the fetch error", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name h host.ipxe", "exit 0"), "host.ipxe": new Error("HTTP 500") });
    expect(r).toMatchObject({ result: "error", problem: `${BASE}boot.ipxe: \`imgfetch --name h host.ipxe\` failed (HTTP 500)` });
  });

  it("names a failed imgexec of an image never fetched", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgexec netbuild-host", "exit 0") });
    expect(r).toMatchObject({ result: "error", problem: `${BASE}boot.ipxe: \`imgexec netbuild-host\` failed` });
  });

  it("treats a fallback other than a plain `goto LABEL` as no fallback", async () => {
    for (const orElse of ["echo oops", "echo goto a", "goto a b", "goto"]) {
      const line = `chain gone || ${orElse}`;
      const r = await walk({ "boot.ipxe": ipxe(line, ":a", "exit 0") });
      expect(r.problem, orElse).toBe(`${BASE}boot.ipxe: \`${line}\` failed`);
    }
  });

  it("says which script is not an iPXE script (an HTML error page, a shell script)", async () => {
    for (const text of ["<html><body>Not Found</body></html>", "#!/bin/sh\nexit 0", "", " #!ipxe\nexit 0"]) {
      const r = await walk({ "boot.ipxe": ipxe("chain page"), page: text });
      expect(r, JSON.stringify(text)).toMatchObject({ result: "error", problem: `${BASE}page is not an iPXE script` });
      expect(r.steps.at(-1)).toEqual({ url: `${BASE}page`, status: "ok" });
    }
  });

  it("reports a command it does not know instead of guessing what it does", async () => {
    const r = await walk({ "boot.ipxe": ipxe("echo start", "sanboot iscsi:10.0.0.1::::iqn.x", "exit 0") });
    expect(r).toMatchObject({ result: "error", console: ["start"], exitStatus: undefined, problem: `${BASE}boot.ipxe: netbuild does not know the iPXE command \`sanboot\`` });
  });

  it("reports `boot` with no kernel named", async () => {
    const r = await walk({ "boot.ipxe": ipxe("initrd i", "boot", "exit 0") });
    expect(r).toMatchObject({ result: "error", kernel: undefined, exitStatus: undefined, problem: `${BASE}boot.ipxe: boot without a kernel` });
  });

  it("reports a script that ends without booting or exiting", async () => {
    const r = await walk({ "boot.ipxe": ipxe("chain next"), next: ipxe("kernel k", "echo done") });
    expect(r).toMatchObject({ result: "error", console: ["done"], problem: `${BASE}next ends without booting or exiting` });
  });

  it("stops a loop of chained scripts after maxScripts, the default 16", async () => {
    const s = server({ "boot.ipxe": ipxe("chain boot.ipxe") });
    const r = await walkBootChain(`${BASE}boot.ipxe`, macVariables("52-54-00-12-34-56"), s);
    expect(r).toMatchObject({ result: "error", problem: "more than 16 scripts chained (a loop?)" });
    expect(s.fetched).toHaveLength(17);
  });

  it("follows a chain of exactly maxScripts scripts, and stops at one more", async () => {
    const files = { "boot.ipxe": ipxe("chain 2"), "2": ipxe("chain 3"), "3": ipxe("kernel k", "boot") };
    expect(await walk(files, undefined, 3)).toMatchObject({ result: "boot", problem: undefined });
    const r = await walk(files, undefined, 2);
    expect(r).toMatchObject({ result: "error", problem: "more than 2 scripts chained (a loop?)" });
    expect(r.steps.map((s) => s.url)).toEqual([`${BASE}boot.ipxe`, `${BASE}2`, `${BASE}3`]);
  });
});

describe("the reason a broken chain gives", () => {
  // A fetch error a `|| goto` handled is not the reason a later fetch failed: a script that is
  // simply missing is reported as missing, not with an earlier fetch's HTTP 503.
  it("is the failed fetch's own, never an earlier one's", async () => {
    const r = await walk({
      "boot.ipxe": ipxe("imgfetch --name a first.ipxe || goto next", ":next", "chain second.ipxe"),
      "first.ipxe": new Error("HTTP 503"),
    });
    expect(r.result).toBe("error");
    expect(r.problem).toBe(`${BASE}boot.ipxe: \`chain second.ipxe\` failed`);
    const thrown = await walk({
      "boot.ipxe": ipxe("imgfetch --name a first.ipxe || goto next", ":next", "chain second.ipxe"),
      "first.ipxe": new Error("HTTP 503"),
      "second.ipxe": new Error("HTTP 403"),
    });
    expect(thrown.problem).toBe(`${BASE}boot.ipxe: \`chain second.ipxe\` failed (HTTP 403)`);
  });
});

describe("boot.ipxe's discovery request", () => {
  it("an unknown machine's walk of the real boot.ipxe never sends it (the access log would record a machine that never booted), and still boots nothing", async () => {
    const { ipxeTemplates } = await import("../../src/templates.ts");
    const boot = ipxeTemplates().boot({ unknownClass: null });
    expect(boot).toContain("imgfetch --name netbuild-discover discover/${mac:hexhyp}?uuid=${uuid}&serial=${serial:uristring}&manufacturer=${manufacturer:uristring}&product=${product:uristring}&asset=${asset:uristring}&platform=${platform:uristring}&buildarch=${buildarch:uristring}&chip=${netX/chip:uristring} || goto discovered");
    const r = await walk({ ...TREE, "boot.ipxe": boot, "discover/52-54-00-99-99-99": "#!ipxe\necho served anyway" }, "52-54-00-99-99-99");
    expect(r.steps.map((s) => s.url)).toEqual([`${BASE}boot.ipxe`, `${BASE}by-mac/52-54-00-99-99-99/ipxe`]);
    expect(r).toMatchObject({ result: "exit", exitStatus: 1, problem: undefined, console: ["netbuild: unknown machine 52:54:00:99:99:99, booting nothing", "netbuild: to boot it, add a host with this MAC under hosts/"] });
    // With an unknown-machines class, the request is made too, then the class boots.
    const withClass = await walk({ ...TREE, "boot.ipxe": ipxeTemplates().boot({ unknownClass: "demo" }) }, "52-54-00-99-99-99");
    expect(withClass).toMatchObject({ result: "boot", problem: undefined });
  });

  it("imgfree forgets a fetched image: imgexec of it then fails", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name x a", "imgfree x", "imgexec x || goto gone", "exit 0", ":gone", "exit 3"), a: "#!ipxe\nexit 0" });
    expect(r).toMatchObject({ result: "exit", exitStatus: 3 });
  });
});

describe("a discovery request without a fallback", () => {
  it("is a broken chain at that line: nothing after it runs (a walk never sends it, so it fails there as on a static server)", async () => {
    const r = await walk({ "boot.ipxe": ipxe("imgfetch --name d discover/${mac:hexhyp}", "echo after", "exit 0") }, "52-54-00-99-99-99");
    expect(r).toMatchObject({ result: "error", console: [], exitStatus: undefined, problem: `${BASE}boot.ipxe: \`imgfetch --name d discover/\${mac:hexhyp}\` failed` });
    expect(r.steps).toEqual([{ url: `${BASE}boot.ipxe`, status: "ok" }]);
  });
});
