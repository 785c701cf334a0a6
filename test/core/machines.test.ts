// What a deploy changes per machine (core/machines.ts): the lines `plan --target`, `deploy` and its
// confirmation prompt print, and the MachineChange --json carries. People read these lines before a
// deploy that may format disks, so this guards what each one says: new and removed hosts, class and
// generation changes, kernel parameters and MACs added or removed, the wipe armed, re-armed (new id
// or newly forced), no longer forced or disarmed, a Talos config rewritten, and that a script
// rewritten with nothing a machine sees changed is not listed at all.
import { describe, expect, it } from "vitest";
import { formatMachineChange, machineChanges, type MachineChange, type ServedHost } from "../../src/core/machines.ts";

const FLAG = "homelab";

/** A host script as netbuild serves it (src/templates/host.ipxe.hbs), for class `cls` with `params`. */
function script(host: string, cls: string, params: string, file = `hosts/${host}.yaml`): string {
  return [
    "#!ipxe",
    `# netbuild host ${host} (class ${cls}), from ${file}. Generated; do not edit.`,
    `echo netbuild: ${host} boots class ${cls}`,
    `set cmdline hostname=${host}${params ? ` ${params}` : ""}`,
    `chain ../../by-class/${cls}/ipxe`,
    "",
  ].join("\n");
}

const served = (script: string, ...macs: string[]): ServedHost => ({ script, macs });
const hosts = (entries: Record<string, ServedHost>) => new Map(Object.entries(entries));
const wipe = (id: string, force = false) => `${FLAG}.provision_disks=true ${FLAG}.provision_id=${id}${force ? ` ${FLAG}.provision_force=true` : ""}`;

/** The lines a plan prints for these before/after views. */
function lines(before: Record<string, ServedHost>, after: Record<string, ServedHost>, generations?: Parameters<typeof machineChanges>[3], configs?: Set<string>): string[] {
  return machineChanges(hosts(before), hosts(after), FLAG, generations, configs).map(formatMachineChange);
}

describe("machineChanges: which machines a deploy changes", () => {
  it("describes a new host: its class and generation, its parameters and MACs, as people write MACs, sorted", () => {
    const changes = machineChanges(hosts({}), hosts({ aleph: served(script("aleph", "demo", "quiet"), "52-54-00-00-00-02", "52-54-00-00-00-01") }), FLAG, { before: { demo: "g1" }, after: { demo: "g2" } });
    expect(changes).toEqual([
      {
        host: "aleph",
        change: "added",
        class: { from: undefined, to: "demo" },
        generation: { from: undefined, to: "g2" },
        params: { added: ["hostname=aleph", "quiet"], removed: [] },
        macs: { added: ["52:54:00:00:00:01", "52:54:00:00:00:02"], removed: [] },
        wipe: undefined,
        wipes: false,
      } satisfies MachineChange,
    ]);
  });

  it("describes a removed host by what it was served", () => {
    const changes = machineChanges(hosts({ bet: served(script("bet", "demo", "quiet"), "52-54-00-00-00-03") }), hosts({}), FLAG, { before: { demo: "g1" }, after: { demo: "g2" } });
    expect(changes).toEqual([
      {
        host: "bet",
        change: "removed",
        class: { from: "demo", to: undefined },
        generation: { from: "g1", to: undefined },
        params: { added: [], removed: ["hostname=bet", "quiet"] },
        macs: { added: [], removed: ["52:54:00:00:00:03"] },
        wipe: undefined,
        wipes: false,
      } satisfies MachineChange,
    ]);
  });

  it("lists only hosts whose machines see a change, sorted by name, from both sides", () => {
    const same = served(script("mid", "demo", "quiet"), "52-54-00-00-00-05");
    const changes = machineChanges(
      hosts({ zed: served(script("zed", "demo", ""), "52-54-00-00-00-09"), mid: same, bet: served(script("bet", "demo", ""), "52-54-00-00-00-02") }),
      hosts({ mid: same, bet: served(script("bet", "demo", "quiet"), "52-54-00-00-00-02"), aleph: served(script("aleph", "demo", ""), "52-54-00-00-00-01") }),
      FLAG,
    );
    expect(changes.map((c) => [c.host, c.change])).toEqual([
      ["aleph", "added"],
      ["bet", "changed"],
      ["zed", "removed"],
    ]);
  });

  it("lists a host added or removed even when its script shows nothing: no class, no parameters, no MACs", () => {
    const bare = served("#!ipxe\nexit\n");
    expect(lines({}, { x: bare })).toEqual(["+ x  new, class ?"]);
    expect(lines({ x: bare }, {})).toEqual(["- x  removed (was class ?)"]);
  });

  it("does not list a script rewritten with nothing a machine sees changed (a comment, the host file's name)", () => {
    const b = served(script("aleph", "demo", `quiet ${wipe("r1", true)}`, "hosts/aleph.yaml"), "52-54-00-00-00-01");
    const a = served(script("aleph", "demo", `quiet ${wipe("r1", true)}`, "hosts/all.yaml"), "52-54-00-00-00-01");
    expect(b.script).not.toBe(a.script);
    expect(machineChanges(hosts({ aleph: b }), hosts({ aleph: a }), FLAG)).toEqual([]);
  });

  it("lists a script whose parameters only changed order, as a script rewritten", () => {
    const changes = machineChanges(hosts({ aleph: served(script("aleph", "demo", "a=1 b=2")) }), hosts({ aleph: served(script("aleph", "demo", "b=2 a=1")) }), FLAG);
    expect(changes).toMatchObject([{ host: "aleph", change: "changed", params: { added: [], removed: [] }, wipe: undefined }]);
    expect(changes.map(formatMachineChange)).toEqual(["~ aleph  script rewritten"]);
  });

  it("lists a host moved to another class, with each side's generation", () => {
    const changes = machineChanges(hosts({ aleph: served(script("aleph", "demo", "")) }), hosts({ aleph: served(script("aleph", "other", "")) }), FLAG, { before: { demo: "g1", other: "o1" }, after: { demo: "g2", other: "o2" } });
    expect(changes).toMatchObject([{ change: "changed", class: { from: "demo", to: "other" }, generation: { from: "g1", to: "o2" }, params: { added: [], removed: [] } }]);
  });

  it("leaves the generation out for a class the target does not serve, or a side with no class", () => {
    const changes = machineChanges(hosts({ gone: served(script("gone", "undefined", "")) }), hosts({ aleph: served(script("aleph", "demo", "")) }), FLAG, { before: { undefined: "u1" }, after: { undefined: "u2" } });
    expect(changes.map((c) => [c.host, c.generation])).toEqual([
      ["aleph", { from: undefined, to: undefined }],
      ["gone", { from: "u1", to: undefined }],
    ]);
  });

  it("shows parameters added and removed, but not the wipe's own parameters", () => {
    const changes = machineChanges(hosts({ aleph: served(script("aleph", "demo", `a=1 keep=1 ${wipe("r1")}`)) }), hosts({ aleph: served(script("aleph", "demo", `keep=1 b=2 ${wipe("r1")}`)) }), FLAG);
    expect(changes).toMatchObject([{ params: { added: ["b=2"], removed: ["a=1"] }, wipe: undefined, wipes: true }]);
    const armed = machineChanges(hosts({}), hosts({ aleph: served(script("aleph", "demo", wipe("r1", true))) }), FLAG);
    expect(armed[0]!.params).toEqual({ added: ["hostname=aleph"], removed: [] });
  });

  it("lists a host whose MACs changed though its script did not", () => {
    const s = script("aleph", "demo", "");
    const changes = machineChanges(hosts({ aleph: served(s, "52-54-00-00-00-01", "52-54-00-00-00-02") }), hosts({ aleph: served(s, "52-54-00-00-00-02", "52-54-00-00-00-11") }), FLAG);
    expect(changes).toMatchObject([{ change: "changed", macs: { added: ["52:54:00:00:00:11"], removed: ["52:54:00:00:00:01"] } }]);
  });

  it("lists a Talos host whose machine config is rewritten, only while it is served before and after", () => {
    const s = served(script("tav", "talos", "talos.config=http://boot/by-host/tav/talos.yaml"), "52-54-00-00-00-21");
    const configs = new Set(["tav", "new"]);
    expect(machineChanges(hosts({ tav: s }), hosts({ tav: s }), FLAG, undefined, configs)).toMatchObject([{ host: "tav", change: "changed", config: "changed" }]);
    expect(machineChanges(hosts({ tav: s }), hosts({ tav: s }), FLAG)).toEqual([]);
    const added = machineChanges(hosts({}), hosts({ new: s }), FLAG, undefined, configs);
    expect(added).toHaveLength(1);
    expect(added[0]).not.toHaveProperty("config");
    const removed = machineChanges(hosts({ new: s }), hosts({}), FLAG, undefined, configs);
    expect(removed[0]).not.toHaveProperty("config");
  });
});

describe("machineChanges: the wipe", () => {
  const one = (before: string | undefined, after: string | undefined) => {
    const b: Record<string, ServedHost> = before === undefined ? {} : { aleph: served(script("aleph", "demo", before)) };
    const a: Record<string, ServedHost> = after === undefined ? {} : { aleph: served(script("aleph", "demo", after)) };
    return machineChanges(hosts(b), hosts(a), FLAG);
  };

  it("is armed when a served host starts wiping, with its id", () => {
    expect(one("", wipe("r1"))).toMatchObject([{ wipe: "armed", wipes: true, wipeId: { from: undefined, to: "r1" } }]);
    expect(one("", wipe("r1"))[0]).not.toHaveProperty("wipeForce");
  });

  it("is armed for a new host that wipes, and when forced says so", () => {
    expect(one(undefined, wipe("r1", true))).toMatchObject([{ change: "added", wipe: "armed", wipes: true, wipeId: { from: undefined, to: "r1" }, wipeForce: { from: false, to: true } }]);
  });

  it("is disarmed when the flag goes, keeping the id it had", () => {
    expect(one(wipe("r1"), "")).toMatchObject([{ wipe: "disarmed", wipes: false, wipeId: { from: "r1", to: undefined } }]);
  });

  it("is re-armed by a new id: the disks format again", () => {
    expect(one(wipe("r1"), wipe("r2"))).toMatchObject([{ wipe: "re-armed", wipes: true, wipeId: { from: "r1", to: "r2" } }]);
  });

  it("is re-armed when the same id becomes forced, and not re-armed when force is dropped", () => {
    expect(one(wipe("r1"), wipe("r1", true))).toMatchObject([{ wipe: "re-armed", wipeForce: { from: false, to: true } }]);
    const unforced = one(wipe("r1", true), wipe("r1"));
    expect(unforced).toMatchObject([{ change: "changed", wipe: undefined, wipes: true, wipeId: { from: "r1", to: "r1" }, wipeForce: { from: true, to: false } }]);
  });

  it("is unchanged, and the host unlisted, when the same wipe stays armed", () => {
    expect(one(wipe("r1"), wipe("r1"))).toEqual([]);
    expect(one(wipe("r1", true), wipe("r1", true))).toEqual([]);
  });

  it("is disarmed with a removed host: the flag is no longer served", () => {
    expect(one(wipe("r1", true), undefined)).toMatchObject([{ change: "removed", wipe: "disarmed", wipes: false, wipeId: { from: "r1", to: undefined }, wipeForce: { from: true, to: false } }]);
  });

  it("counts a flag served without an id (older netbuild) as a wipe with an empty id", () => {
    expect(one(`${FLAG}.provision_disks=true`, wipe("r1"))).toMatchObject([{ wipe: "re-armed", wipeId: { from: "", to: "r1" } }]);
  });

  it("reads the wipe under the site's own prefix only", () => {
    expect(one("", "lab.provision_disks=true lab.provision_id=r1")).toMatchObject([{ wipe: undefined, wipes: false, params: { added: ["lab.provision_disks=true", "lab.provision_id=r1"] } }]);
    expect(one("", "lab.provision_disks=true")[0]).not.toHaveProperty("wipeId");
  });
});

describe("formatMachineChange: one line per machine", () => {
  it("marks a new host +, names its class, and leaves out its own hostname=", () => {
    expect(lines({}, { bet: served(script("bet", "demo", "quiet hostname=other"), "52-54-00-00-00-02") })).toEqual(["+ bet  new, class demo, +quiet, +hostname=other, MAC +52:54:00:00:00:02"]);
  });

  it("marks a removed host -, with the class it had and its MACs, but not its parameters", () => {
    expect(lines({ o1: served(script("o1", "other", "quiet"), "52-54-00-00-00-21") }, {})).toEqual(["- o1  removed (was class other), MAC -52:54:00:00:00:21"]);
  });

  it("shows ? for a class it cannot read from a script that is not netbuild's", () => {
    const foreign = "#!ipxe\nset cmdline hostname=x\nexit\n";
    expect(lines({}, { x: served(foreign) })).toEqual(["+ x  new, class ?"]);
    expect(lines({ x: served(foreign) }, {})).toEqual(["- x  removed (was class ?)"]);
    expect(lines({ x: served(foreign) }, { x: served(script("x", "demo", "")) }, { before: {}, after: { demo: "g2" } })).toEqual(["~ x  class ? → demo (g2)"]);
    expect(lines({ x: served(script("x", "demo", "")) }, { x: served(foreign) }, { before: { demo: "g1" }, after: {} })).toEqual(["~ x  class demo (g1) → ?"]);
  });

  it("shows hostname= for a host that had none before (only a new host's own is implied)", () => {
    expect(lines({ x: served("#!ipxe\nexit\n") }, { x: served(script("x", "demo", "")) })).toEqual(["~ x  class ? → demo, +hostname=x"]);
  });

  it("marks a changed host ~: class with generations, parameters, MACs, in that order", () => {
    expect(
      lines(
        { aleph: served(script("aleph", "demo", "a=1 keep"), "52-54-00-00-00-01", "52-54-00-00-00-02") },
        { aleph: served(script("aleph", "other", "keep quiet"), "52-54-00-00-00-02", "52-54-00-00-00-11") },
        { before: { demo: "g1" }, after: { other: "o2" } },
      ),
    ).toEqual(["~ aleph  class demo (g1) → other (o2), +quiet, -a=1, MAC +52:54:00:00:00:11, MAC -52:54:00:00:00:01"]);
  });

  it("names no generation for a class the target does not serve", () => {
    expect(lines({ aleph: served(script("aleph", "demo", "")) }, { aleph: served(script("aleph", "other", "")) })).toEqual(["~ aleph  class demo → other"]);
  });

  it("does not repeat an unchanged class", () => {
    expect(lines({ aleph: served(script("aleph", "demo", "")) }, { aleph: served(script("aleph", "demo", "quiet")) }, { before: { demo: "g1" }, after: { demo: "g2" } })).toEqual(["~ aleph  +quiet"]);
  });

  it("shouts an armed wipe, with its id and whether it is forced", () => {
    expect(lines({}, { bet: served(script("bet", "demo", wipe("r1")), "52-54-00-00-00-02") })).toEqual(["+ bet  new, class demo, MAC +52:54:00:00:00:02, !!! WIPE ARMED, id r1 (formats its disks on the next boot)"]);
    expect(lines({ bet: served(script("bet", "demo", "")) }, { bet: served(script("bet", "demo", wipe("r1", true))) })).toEqual(["~ bet  !!! WIPE ARMED, id r1, FORCED (formats its disks on the next boot)"]);
  });

  it("shouts a re-armed wipe, from which id to which", () => {
    expect(lines({ bet: served(script("bet", "demo", wipe("r1"))) }, { bet: served(script("bet", "demo", wipe("r2"))) })).toEqual(["~ bet  !!! WIPE RE-ARMED, id r1 → id r2 (formats its disks again on the next boot)"]);
    expect(lines({ bet: served(script("bet", "demo", wipe("r1"))) }, { bet: served(script("bet", "demo", wipe("r1", true))) })).toEqual(["~ bet  !!! WIPE RE-ARMED, id r1 → id r1, FORCED (formats its disks again on the next boot)"]);
    expect(lines({ bet: served(script("bet", "demo", wipe("r1", true))) }, { bet: served(script("bet", "demo", wipe("r2"))) })).toEqual(["~ bet  !!! WIPE RE-ARMED, id r1, FORCED → id r2 (formats its disks again on the next boot)"]);
  });

  it("says `no id` for an armed or re-armed wipe that carries no ids at all", () => {
    const base: MachineChange = { host: "bet", change: "changed", class: { from: "demo", to: "demo" }, generation: { from: undefined, to: undefined }, params: { added: [], removed: [] }, macs: { added: [], removed: [] }, wipe: "armed", wipes: true };
    expect(formatMachineChange(base)).toBe("~ bet  !!! WIPE ARMED, no id (formats its disks on the next boot)");
    expect(formatMachineChange({ ...base, wipe: "re-armed" })).toBe("~ bet  !!! WIPE RE-ARMED, no id → no id (formats its disks again on the next boot)");
  });

  it("says `no id` for a wipe served without one", () => {
    expect(lines({ bet: served(script("bet", "demo", `${FLAG}.provision_disks=true`)) }, { bet: served(script("bet", "demo", wipe("r1"))) })).toEqual(["~ bet  !!! WIPE RE-ARMED, no id → id r1 (formats its disks again on the next boot)"]);
    expect(lines({}, { bet: served(script("bet", "demo", `${FLAG}.provision_disks=true`)) })).toEqual(["+ bet  new, class demo, !!! WIPE ARMED, no id (formats its disks on the next boot)"]);
  });

  it("says when a wipe that stays armed is no longer forced, and when a wipe is disarmed", () => {
    expect(lines({ bet: served(script("bet", "demo", wipe("r1", true))) }, { bet: served(script("bet", "demo", wipe("r1"))) })).toEqual(["~ bet  wipe no longer forced"]);
    expect(lines({ bet: served(script("bet", "demo", wipe("r1", true))) }, { bet: served(script("bet", "demo", "")) })).toEqual(["~ bet  wipe disarmed"]);
  });

  it("says a removed host's wipe is disarmed", () => {
    expect(lines({ bet: served(script("bet", "demo", wipe("r1"))) }, {})).toEqual(["- bet  removed (was class demo), wipe disarmed"]);
  });

  it("says a Talos machine config changed, last", () => {
    const s = served(script("tav", "talos", "talos.config=http://boot/by-host/tav/talos.yaml"));
    const b = served(script("tav", "talos", "talos.config=http://boot/by-host/tav/talos.yaml", "hosts/old.yaml"));
    expect(lines({ tav: b }, { tav: served(s.script, "52-54-00-00-00-21") }, undefined, new Set(["tav"]))).toEqual(["~ tav  MAC +52:54:00:00:00:21, Talos machine config changed"]);
    expect(lines({ tav: s }, { tav: s }, undefined, new Set(["tav"]))).toEqual(["~ tav  Talos machine config changed"]);
  });
});
