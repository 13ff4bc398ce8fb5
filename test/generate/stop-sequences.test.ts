import { describe, expect, it } from "vitest";
import { StopSequenceMatcher } from "../../lib/generate/stop-sequences.js";

function feed(stops: string[], pieces: string[]): { out: string; stopped: boolean } {
  const m = new StopSequenceMatcher(stops);
  let out = "";
  for (const p of pieces) {
    const r = m.push(p);
    out += r.emit;
    if (r.stopped) return { out, stopped: true };
  }
  return { out: out + m.flush(), stopped: false };
}

describe("stop sequences", () => {
  it("passes text through when there are none", () => {
    expect(feed([], ["a", "bc"])).toEqual({ out: "abc", stopped: false });
  });

  it("stops before a sequence split across pieces and never emits it", () => {
    expect(feed(["\nUser:"], ["Hello", "\nUs", "er", ": hi"])).toEqual({ out: "Hello", stopped: true });
  });

  it("releases held text that turned out not to be a stop", () => {
    const m = new StopSequenceMatcher(["END"]);
    expect(m.push("abcE").emit).toBe("abc");
    expect(m.push("N").emit).toBe("");
    expect(m.push("x").emit).toBe("ENx");
  });

  it("uses the earliest match among several sequences", () => {
    expect(feed(["cd", "b"], ["abcd"])).toEqual({ out: "a", stopped: true });
  });

  it("flushes a held prefix at the end", () => {
    expect(feed(["STOP"], ["go ST"])).toEqual({ out: "go ST", stopped: false });
  });
});
