// @vitest-environment happy-dom
// The step panel: attempts newest first with times relative (absolute on
// hover), the current attempt's op calls, the definition's template in a
// collapsible block, and #Log lines followed live on one stream that is
// closed at its end, when the panel closes, and opened again when the run
// shows the step still running after the stream's end.
import { act } from "preact/test-utils";
import { describe, expect, it, vi } from "vitest";
import { Api } from "../api/client";
import type { RunDetail, StepDetail } from "../api/types";
import { run, step } from "../state/testdata";
import { byTestId, click, FakeES, freshRoot, mount, table, until } from "./testkit";

vi.setConfig({ testTimeout: 20_000 });

let root!: HTMLElement;
freshRoot((el) => (root = el));

const logsURL = "/ui/api/runs/prod/r1/steps/smoke/logs?follow=true";

describe("step panel", () => {
  it("shows attempts, op calls, the definition and live log lines", async () => {
    history.replaceState(null, "", "/runs/prod/r1/steps/smoke");
    let rv = "100";
    const detail = (): RunDetail => ({
      run: run({ namespace: "prod", name: "r1", resourceVersion: rv }),
      steps: [step("smoke", { phase: "failed", type: "http-check", attempt: 2, message: "GET /health: 503" })],
      edges: [],
      context: {},
    });
    const sd: StepDetail = {
      step: step("smoke"),
      attempts: [
        { attempt: 1, id: "a1", phase: "failed", reason: "Retrying", message: "timeout", started: "2026-12-06T11:00:00Z", finished: "2026-12-06T11:00:30Z" },
        { attempt: 2, id: "a2", phase: "failed", reason: "Failed", message: "GET /health: 503", started: "2026-12-06T11:01:00Z", finished: "2026-12-06T11:01:05Z" },
      ],
      calls: [
        { op: "http.#Do", path: "check.req", state: "replayed", message: "" },
        { op: "wait.#Suspend", path: "pause", state: "suspended", message: "" },
      ],
      logs: [],
      definition: {
        kind: "WorkflowStepDefinition",
        name: "http-check",
        namespace: "stepflow-system",
        source: "system",
        description: "Checks a URL",
        template: 'parameter: {url: string}\ncheck: http.#Do & {url: parameter.url}',
      },
    };
    const t = table(
      new Map<string, () => unknown>([
        ["/ui/api/runs/prod/r1", detail],
        ["/ui/api/runs/prod/r1/steps/smoke", () => sd],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelector('[data-testid="attempt"]') !== null, "the attempts are shown");
    const panel = byTestId(root, "step-panel") as HTMLElement;
    expect(byTestId(panel, "step-message")?.textContent).toBe("GET /health: 503");
    expect([...panel.querySelectorAll('[data-testid="attempt"]')].map((r) => r.getAttribute("data-attempt"))).toEqual(["2", "1"]);
    const started = panel.querySelector('[data-testid="attempt"] time');
    expect(started?.getAttribute("title")).toBe("2026-12-06 11:01:00Z");
    expect(started?.textContent).toMatch(/ago$/);
    expect([...panel.querySelectorAll('[data-testid="op-call"]')].map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent))).toEqual([
      ["http.#Do", "check.req", "replayed"],
      ["wait.#Suspend", "pause", "suspended"],
    ]);
    const def = panel.querySelector("details.definition") as HTMLDetailsElement;
    expect(def.open).toBe(false);
    expect(def.querySelector("summary")?.textContent).toContain("WorkflowStepDefinition http-check");
    expect(def.querySelector("pre")?.textContent).toBe(sd.definition?.template);
    expect(def.querySelector("a")?.getAttribute("href")).toBe("/definitions/WorkflowStepDefinition/stepflow-system/http-check?namespace=prod");

    // The log: lines as they come; an open (a reconnect) starts over, as the server resends from the first.
    const [es] = FakeES.open(logsURL);
    const lines = () => [...panel.querySelectorAll('[data-testid="log-line"]')].map((l) => l.textContent);
    await act(() => {
      es.emit("open", null);
      es.emit("log", { time: "", level: 0, line: "starting" });
    });
    await act(() => {
      es.emit("open", null);
      es.emit("log", { time: "", level: 0, line: "starting" });
      es.emit("log", { time: "2026-12-06T11:01:02Z", level: 0, line: "got 503" });
    });
    expect(lines()).toEqual(["starting", "11:01:02Z got 503"]);

    // At its end the stream is closed; the step is finished, so a run event opens no new one.
    await act(() => es.emit("end", {}));
    expect(es.closed).toBe(true);
    rv = "101";
    await act(() => FakeES.all[0].emit("run", run({ namespace: "prod", name: "r1", resourceVersion: "101" })));
    await until(() => t.gets().filter((u) => u === "/ui/api/runs/prod/r1/steps/smoke").length === 2, "the step is loaded again");
    expect(FakeES.open(logsURL)).toEqual([]);
    expect(lines()).toEqual(["starting", "11:01:02Z got 503"]);
  });

  it("follows again after the stream's end while the step runs, and closes the stream with the panel", async () => {
    history.replaceState(null, "", "/runs/prod/r1/steps/smoke");
    let rv = "100";
    const t = table(
      new Map<string, () => unknown>([
        ["/ui/api/runs/prod/r1", () => ({ run: run({ namespace: "prod", name: "r1", resourceVersion: rv }), steps: [step("smoke", { phase: "running" })], edges: [], context: {} })],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => FakeES.open(logsURL).length === 1, "the log is followed");
    const first = FakeES.open(logsURL)[0];
    await act(() => first.emit("end", {})); // the server's time bound
    expect(first.closed).toBe(true);
    rv = "101";
    await act(() => FakeES.all[0].emit("run", run({ namespace: "prod", name: "r1", resourceVersion: "101" })));
    await until(() => FakeES.open(logsURL).length === 1, "the log is followed again");
    const second = FakeES.open(logsURL)[0];
    expect(second).not.toBe(first);

    await act(() => click(root.querySelector('[aria-label="Close the step\'s details"]'), "close"));
    expect(byTestId(root, "step-panel")).toBeNull();
    expect(second.closed).toBe(true);
  });
});
