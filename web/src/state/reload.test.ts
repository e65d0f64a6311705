import { describe, expect, it } from "vitest";
import { coalesce } from "./reload";

// A load whose calls are counted and finished by the test, one at a time.
function gatedLoad() {
  const gates: (() => void)[] = [];
  let calls = 0;
  const load = () =>
    new Promise<void>((ok) => {
      calls++;
      gates.push(ok);
    });
  const finishOne = async () => {
    gates.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { load, finishOne, calls: () => calls, waiting: () => gates.length };
}

describe("coalesce", () => {
  it("runs one load for one request", async () => {
    const g = gatedLoad();
    const r = coalesce(g.load);
    const done = r.request();
    expect(g.calls()).toBe(1);
    await g.finishOne();
    await done;
    expect(g.calls()).toBe(1);
  });

  it("turns a burst of requests during a load into exactly one more load", async () => {
    const g = gatedLoad();
    const r = coalesce(g.load);
    const first = r.request();
    for (let i = 0; i < 10; i++) void r.request();
    expect(g.calls()).toBe(1);
    await g.finishOne();
    expect(g.calls()).toBe(2);
    await g.finishOne();
    await first;
    expect(g.calls()).toBe(2);
    expect(g.waiting()).toBe(0);
  });

  it("goes on after a failed load", async () => {
    let calls = 0;
    const r = coalesce(async () => {
      calls++;
      throw new Error("boom");
    });
    await r.request();
    await r.request();
    expect(calls).toBe(2);
  });

  it("starts nothing after stop", async () => {
    const g = gatedLoad();
    const r = coalesce(g.load);
    const first = r.request();
    void r.request();
    r.stop();
    await g.finishOne();
    await first;
    await r.request();
    expect(g.calls()).toBe(1);
  });
});
