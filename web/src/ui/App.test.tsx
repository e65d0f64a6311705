// @vitest-environment happy-dom
// The views rendered in a DOM with contract answers: the list shows runs and
// takes a run event live; the run view draws the graph, opens a step from a
// deep link and reloads on the run's event. (Helpers in testkit.tsx; the
// actions, the step panel, the definitions and the app's deploys have
// their own test files.)
import { act } from "preact/test-utils";
import { describe, expect, it, vi } from "vitest";
import { Api } from "../api/client";
import type { RunDetail, RunSummary } from "../api/types";
import { run, step } from "../state/testdata";
import { FakeES, freshRoot, mount as mountIn, table, until } from "./testkit";

vi.setConfig({ testTimeout: 20_000 });

let root!: HTMLElement;
freshRoot((el) => (root = el));

const mount = (api: Api) => mountIn(root, api);

describe("run list", () => {
  it("shows the runs with phase text and adds a new run from an event", async () => {
    history.replaceState(null, "", "/?namespace=prod");
    const runs: RunSummary[] = [
      run({ namespace: "prod", name: "older", phase: "succeeded", created: "2026-12-06T10:00:00Z" }),
    ];
    const t = table(new Map([["/ui/api/runs?namespace=prod", () => ({ items: runs })]]));
    mount(new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelector("tbody tr") !== null, "the list shows a row");
    expect(t.gets()).toEqual(["/ui/api/runs?namespace=prod"]);
    expect(FakeES.all.map((e) => e.url)).toEqual(["/ui/api/events?namespace=prod"]);
    await act(() => FakeES.all[0].emit("open", null));
    const rows = () => [...root.querySelectorAll("tbody tr")].map((tr) => tr.querySelector("a")?.textContent + " " + tr.querySelector(".phase")?.textContent);
    expect(rows()).toEqual(["prod/older succeeded"]);

    await act(() => {
      FakeES.all[0].emit("run", run({ namespace: "prod", name: "newer", phase: "executing", waitingOn: "approve", appId: "shop", labels: { "stepflow.dev/scope": "daily" }, created: "2026-12-06T11:00:00Z" }));
      FakeES.all[0].emit("run", run({ namespace: "other", name: "elsewhere", created: "2026-12-06T12:00:00Z" }));
    });
    await until(() => rows().length === 2, "the new run's row");
    expect(rows()).toEqual(["prod/newer executing", "prod/older succeeded"]);
    expect(root.querySelector('a[href="/runs/prod/newer/steps/approve"]')?.textContent).toBe("approve");
    expect(root.querySelector('[data-testid="run-row"][data-name="newer"] a[href="/apps/prod/shop?scope=daily"]')?.textContent).toBe("shop");
    expect(t.hits).toHaveLength(1); // live without reloading the list

    // A break in the stream: once it is open again the list is loaded again
    // (a run deleted meanwhile has no event to say so).
    runs.splice(0, 1);
    await act(() => {
      FakeES.all[0].emit("error", null);
      FakeES.all[0].emit("open", null);
    });
    await until(() => t.hits.length === 2, "the list is loaded again");
    await until(() => rows().length === 0, "the deleted runs leave");
  });

  it("shows a page of runs at a time, and more on request", async () => {
    history.replaceState(null, "", "/?namespace=many");
    const runs: RunSummary[] = Array.from({ length: 250 }, (_, i) =>
      run({ namespace: "many", name: `r${String(i).padStart(3, "0")}`, created: new Date(Date.UTC(2026, 11, 6, 0, 0, 250 - i)).toISOString() }),
    );
    const t = table(new Map([["/ui/api/runs?namespace=many", () => ({ items: runs })]]));
    mount(new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelectorAll("tbody tr").length > 0, "the list shows rows");
    const shown = () => root.querySelector('[data-testid="runs-shown"]')?.textContent;
    const more = () => root.querySelector<HTMLButtonElement>('[data-testid="more-runs"]');
    expect(root.querySelectorAll("tbody tr")).toHaveLength(100);
    expect(root.querySelector("tbody tr a")?.textContent).toBe("many/r000");
    expect(shown()).toBe("100 of 250 runs");
    expect(more()?.textContent).toBe("Show 100 more");
    await act(() => more()?.click());
    expect(root.querySelectorAll("tbody tr")).toHaveLength(200);
    await act(() => more()?.click());
    expect(root.querySelectorAll("tbody tr")).toHaveLength(250);
    expect(shown()).toBe("250 of 250 runs");
    expect(more()).toBeNull();
    // A run that arrives live goes to the top of the list.
    await act(() => FakeES.all[0].emit("run", run({ namespace: "many", name: "fresh", created: "2026-12-07T00:00:00Z" })));
    await until(() => root.querySelector("tbody tr a")?.textContent === "many/fresh", "the new run on top");
    expect(shown()).toBe("251 of 251 runs"); // three pages asked for: room for it
  });
});

describe("run view", () => {
  it("draws the graph, opens the deep-linked step and reloads on the run's event", async () => {
    history.replaceState(null, "", "/runs/prod/gray/steps/approve");
    let phase = "running";
    const detail = (): RunDetail => ({
      run: run({ namespace: "prod", name: "gray", phase: "executing" }),
      steps: [
        step("deploy", { phase: "succeeded" }),
        step("checks", { type: "step-group", phase: "running" }),
        step("smoke", { parent: "checks", phase: "succeeded" }),
        step("approve", { parent: "checks", phase, message: "waiting for a person", outputs: [{ name: "ok", value: true }] }),
      ],
      edges: [
        { from: "deploy", to: "checks", kind: "order" },
        { from: "smoke", to: "approve", kind: "dependsOn" },
      ],
      context: {},
    });
    const t = table(new Map([["/ui/api/runs/prod/gray", detail]]));
    mount(new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelector("svg") !== null, "the graph is drawn");
    expect(FakeES.all.map((e) => e.url)).toEqual([
      "/ui/api/events?namespace=prod&run=gray",
      "/ui/api/runs/prod/gray/steps/approve/logs?follow=true",
    ]);
    const nodes = () => [...root.querySelectorAll("svg a")].map((a) => a.getAttribute("aria-label")).sort();
    expect(nodes()).toEqual(["group checks: running", "step approve: running", "step deploy: succeeded", "step smoke: succeeded"]);
    expect(root.querySelectorAll("svg polyline")).toHaveLength(2); // deploy→smoke (into the group), smoke→approve
    const panel = root.querySelector("aside.panel");
    expect(panel?.querySelector("h2")?.textContent).toBe("approve");
    expect(panel?.textContent).toContain("waiting for a person");
    expect(panel?.textContent).toContain("ok");

    phase = "succeeded";
    await act(() => FakeES.all[0].emit("run", run({ namespace: "prod", name: "gray", resourceVersion: "101" })));
    await until(() => nodes().includes("step approve: succeeded"), "approve is shown succeeded");
    expect(t.gets().filter((u) => u === "/ui/api/runs/prod/gray")).toHaveLength(2);

    // Clicking a node opens its details without a reload of the page.
    await act(() => {
      (root.querySelector('svg a[aria-label^="step deploy"]') as HTMLElement).dispatchEvent(new MouseEvent("click", { bubbles: true, button: 0 }));
    });
    expect(location.pathname).toBe("/runs/prod/gray/steps/deploy");
    expect(root.querySelector("aside.panel h2")?.textContent).toBe("deploy");
    // The log stream follows the step shown: approve's is closed, deploy's open.
    expect(FakeES.open("/ui/api/runs/").map((e) => e.url)).toEqual(["/ui/api/runs/prod/gray/steps/deploy/logs?follow=true"]);
  });
});
