// The transfer progress line as a terminal receives it. The terminal is a fake stream object (the
// one legitimate stand-in here: what is under test is the text written to it, and a fake with
// `isTTY` and `columns` is exactly what the reporter sees of a real one); time is vitest's fake clock.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { shortenMiddle, streamReporter } from "../../src/ui/reporter.ts";

const MiB = 1024 * 1024;

/** A terminal `columns` wide (or a pipe, with isTTY false) that keeps what is written to it. */
function terminal(columns: number, isTTY = true): NodeJS.WriteStream & { text: string; screen(): string } {
  const t = {
    text: "",
    isTTY,
    columns,
    write(chunk: string) {
      t.text += chunk;
      return true;
    },
    /** The last line as a terminal would show it now: `\r` returns, `ESC[K` erases to the end. */
    screen() {
      const last = t.text.split("\n").at(-1)!;
      return last.split("\r").at(-1)!.replace(/\x1b\[K/g, "");
    },
  };
  return t as unknown as NodeJS.WriteStream & { text: string; screen(): string };
}

const LABEL = "[boot] by-class/ganeti-node/s4hp6bk5v6apyh0pnx7zgxvaxv3q5bzh/initrd";

describe("progress lines on a terminal", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-11-29T12:00:00Z"));
  });
  afterEach(() => vi.useRealTimers());

  it("shows the whole path when it fits, and no rate before a second has passed", () => {
    const tty = terminal(120);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 1 * MiB, 300 * MiB);
    expect(tty.screen()).toBe(`  [------------------------] 1.0 MiB/300 MiB  ${LABEL}`);
    vi.advanceTimersByTime(500);
    r.transfer(LABEL, 100 * MiB, 300 * MiB);
    expect(tty.screen()).toBe(`  [########----------------] 100 MiB/300 MiB  ${LABEL}`);
  });

  it("shows a rate and ETA measured from the transfer's own first report, once it has run a second", () => {
    const tty = terminal(140);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 10 * MiB, 300 * MiB);
    vi.advanceTimersByTime(2000);
    r.transfer(LABEL, 110 * MiB, 300 * MiB);
    // 100 MiB in 2 s, not 110 MiB: the bytes before the first report took time nobody measured.
    expect(tty.screen()).toBe(`  [#########---------------] 110 MiB/300 MiB 50 MiB/s ETA 3.8 s  ${LABEL}`);
  });

  it("never shows a rate for a copy that reports only its end (a local target), and draws nothing for it", () => {
    const tty = terminal(100);
    const r = streamReporter(tty, {});
    r.transfer("[local] by-class/demo/x/initrd", 48 * MiB, 48 * MiB);
    expect(tty.text).toBe("");
  });

  it("shortens a path that does not fit in the middle, keeping the target and the file name (the bar narrows to leave it room)", () => {
    const tty = terminal(80);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 10 * MiB, 300 * MiB);
    vi.advanceTimersByTime(1000);
    r.transfer(LABEL, 60 * MiB, 300 * MiB);
    const shown = tty.screen();
    expect(shown).toBe("  [##--------] 60 MiB/300 MiB 50 MiB/s ETA 4.8 s  [boot] by-c…vaxv3q5bzh/initrd");
    expect(shown.length).toBe(79);
  });

  it("gives the bar up before the path on a narrow terminal", () => {
    const tty = terminal(60);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 10 * MiB, 300 * MiB);
    vi.advanceTimersByTime(1000);
    r.transfer(LABEL, 60 * MiB, 300 * MiB);
    expect(tty.screen()).toBe("  60 MiB/300 MiB 50 MiB/s ETA 4.8 s  [boot] b…3q5bzh/initrd");
    expect(tty.screen().length).toBe(59);
  });

  it("measures the rate over the last seconds, so a slow start does not leave the ETA minutes too long", () => {
    const tty = terminal(140);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 0, 2000 * MiB);
    vi.advanceTimersByTime(1000);
    r.transfer(LABEL, 1 * MiB, 2000 * MiB);
    expect(tty.screen()).toContain(" 1.0 MiB/s ETA 33 min 19 s ");
    for (let s = 1; s <= 8; s++) {
      vi.advanceTimersByTime(1000);
      r.transfer(LABEL, (1 + 100 * s) * MiB, 2000 * MiB);
    }
    expect(tty.screen()).toContain(" 801 MiB/2.0 GiB 100 MiB/s ETA 12.0 s ");
  });

  it("keeps the bar's width, and the path's place while the numbers fit their room, as the numbers change length", () => {
    const tty = terminal(80);
    const r = streamReporter(tty, {});
    const frames: string[] = [];
    r.transfer(LABEL, 0, 381 * MiB);
    for (const [ms, sent] of [[300, 0.2], [1000, 0.7], [1000, 9], [1000, 40], [1000, 120]] as const) {
      vi.advanceTimersByTime(ms);
      r.transfer(LABEL, sent * MiB, 381 * MiB);
      frames.push(tty.screen());
    }
    expect(new Set(frames.map((f) => f.indexOf("]")))).toEqual(new Set([13]));
    // Once the numbers are as long as they get (a rate and an ETA), the path stays put; only an
    // ETA longer than the room planned for it (the first seconds' "11 min 46 s") pushes it right.
    expect(frames.map((f) => f.indexOf("[boot]"))).toEqual([32, 58, 57, 55, 55]);
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(79);
    expect(frames.at(-1)).toBe("  [###-------] 120 MiB/381 MiB 28 MiB/s ETA 9.4 s      [boot] by…v3q5bzh/initrd");
  });

  it("keeps each target's rate apart when two upload at once", () => {
    const tty = terminal(200);
    const r = streamReporter(tty, {});
    r.transfer("[a] initrd", 0, 100 * MiB);
    r.transfer("[b] initrd", 0, 100 * MiB);
    vi.advanceTimersByTime(1000);
    r.transfer("[a] initrd", 10 * MiB, 100 * MiB);
    expect(tty.screen()).toContain("10 MiB/s");
    vi.advanceTimersByTime(1000);
    r.transfer("[b] initrd", 60 * MiB, 100 * MiB);
    expect(tty.screen()).toContain("30 MiB/s");
  });

  it("clears the line when the transfer ends, so the next output (stdout included) starts on a clean line", () => {
    const tty = terminal(120);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 1 * MiB, 300 * MiB);
    vi.advanceTimersByTime(200);
    r.transfer(LABEL, 300 * MiB, 300 * MiB);
    expect(tty.text.endsWith("\r\x1b[K")).toBe(true);
    expect(tty.screen()).toBe("");
    r.info("[boot] upload by-class/demo/x/kernel (10 MiB)");
    expect(tty.text.endsWith("\r\x1b[K[boot] upload by-class/demo/x/kernel (10 MiB)\n")).toBe(true);
  });

  it("with NO_COLOR still draws the bar (it has no colour), but not with TERM=dumb or when stderr is not a terminal", () => {
    for (const [tty, env, drawn] of [
      [terminal(100), { NO_COLOR: "1" }, true],
      [terminal(100), { TERM: "dumb" }, false],
      [terminal(100, false), {}, false],
    ] as const) {
      const r = streamReporter(tty, env);
      r.transfer(LABEL, 1 * MiB, 300 * MiB);
      expect(tty.text !== "", JSON.stringify(env)).toBe(drawn);
      expect(tty.text).not.toContain("\x1b[3");
    }
  });
});

describe("shortenMiddle", () => {
  it("keeps text that fits, and otherwise its start and (more of) its end around one …", () => {
    expect(shortenMiddle("by-host/aleph/ipxe", 18)).toBe("by-host/aleph/ipxe");
    expect(shortenMiddle("by-host/aleph/ipxe", 11)).toBe("by-h…h/ipxe");
    expect(Array.from(shortenMiddle("by-host/aleph/ipxe", 11))).toHaveLength(11);
    expect(shortenMiddle("abc", 1)).toBe("…");
    expect(shortenMiddle("abc", 0)).toBe("");
  });
});

describe("holding lines back while a question is on the terminal", () => {
  afterEach(() => vi.useRealTimers());

  it("clears a progress bar drawn when it starts holding, so the question starts on a clean line", () => {
    vi.useFakeTimers();
    const tty = terminal(120);
    const r = streamReporter(tty, {});
    r.transfer(LABEL, 10 * MiB, 300 * MiB);
    expect(tty.screen()).toContain("10 MiB/300 MiB");
    const release = r.hold();
    expect(tty.screen()).toBe("");
    vi.advanceTimersByTime(1000);
    r.transfer(LABEL, 20 * MiB, 300 * MiB);
    expect(tty.screen(), "nothing drawn while held").toBe("");
    release();
  });

  it("writes nothing while held, draws no progress, then writes every line in order once the last hold is released (each release counts once)", () => {
    const tty = terminal(120);
    const r = streamReporter(tty, { NO_COLOR: "1" });
    r.info("before");
    const first = r.hold();
    const second = r.hold();
    r.info("[far] upload a");
    r.warn("[farther] not built here");
    r.danger("!!! wipe");
    r.transfer(LABEL, 10 * MiB, 300 * MiB);
    expect(tty.text).toBe("before\n");
    first();
    first();
    expect(tty.text, "one of two holds released, twice: still held").toBe("before\n");
    second();
    expect(tty.text).toBe("before\n[far] upload a\nwarning: [farther] not built here\n!!! wipe\n");
    r.info("after");
    expect(tty.text.endsWith("!!! wipe\nafter\n")).toBe(true);
  });
});
