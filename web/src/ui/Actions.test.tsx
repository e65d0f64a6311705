// @vitest-environment happy-dom
// The run's actions: enabled only as RunDetail.actions says, confirmed in a
// dialog (focus in it, Esc cancels, Tab stays in it), sent with If-Match,
// a refusal shown inline, success reloads the run.
import { act } from "preact/test-utils";
import { describe, expect, it, vi } from "vitest";
import { Api } from "../api/client";
import type { Actions, RunDetail } from "../api/types";
import { run, step } from "../state/testdata";
import { byTestId, click, FakeES, freshRoot, mount, table, type, until } from "./testkit";

vi.setConfig({ testTimeout: 20_000 });

let root!: HTMLElement;
freshRoot((el) => (root = el));

const none: Actions = { resume: false, suspend: false, terminate: false, retry: false, setContext: false, retryFrom: [] };

function detail(actions: Actions | undefined, rv = "100"): RunDetail {
  return {
    run: run({ namespace: "prod", name: "gray", phase: "suspended", appId: "shop", resourceVersion: rv }),
    steps: [step("deploy", { phase: "succeeded" }), step("approve", { phase: "suspended" })],
    edges: [{ from: "deploy", to: "approve", kind: "order" }],
    context: {},
    actions,
  };
}

const buttons = () =>
  ["resume", "suspend", "terminate", "retry", "context"].map((v) => [v, !(byTestId(root, `action-${v}`) as HTMLButtonElement | null)?.disabled]);
const dialog = () => root.querySelector('[role="dialog"]');
const key = (k: string, shift = false): void => void document.dispatchEvent(new KeyboardEvent("keydown", { key: k, shiftKey: shift, bubbles: true }));

describe("run actions", () => {
  it("enables what the server allows, confirms in a dialog, and sends with If-Match", async () => {
    history.replaceState(null, "", "/runs/prod/gray");
    let rv = "100";
    const t = table(
      new Map([
        ["/ui/api/runs/prod/gray", () => detail({ ...none, resume: true, terminate: true, setContext: true }, rv)],
        [
          "POST /ui/api/runs/prod/gray/actions/resume",
          () => {
            rv = "101";
            return { run: run({ name: "gray", resourceVersion: "101" }) };
          },
        ],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "action-resume") !== null, "the actions are shown");
    expect(buttons()).toEqual([
      ["resume", true],
      ["suspend", false],
      ["terminate", true],
      ["retry", false],
      ["context", true],
    ]);

    // Esc cancels: nothing is sent, focus goes back to the button.
    const resume = byTestId(root, "action-resume") as HTMLButtonElement;
    resume.focus();
    await act(() => click(resume, "resume"));
    expect(dialog()?.getAttribute("aria-modal")).toBe("true");
    expect(dialog()?.textContent).toContain("Resume prod/gray?");
    expect(document.activeElement).toBe(byTestId(root, "confirm"));
    // Tab stays in the dialog.
    await act(() => key("Tab"));
    expect(document.activeElement?.textContent).toBe("Cancel");
    await act(() => key("Tab"));
    expect(document.activeElement).toBe(byTestId(root, "confirm"));
    await act(() => key("Tab", true));
    expect(document.activeElement?.textContent).toBe("Cancel");
    await act(() => key("Escape"));
    expect(dialog()).toBeNull();
    expect(document.activeElement).toBe(resume);
    expect(t.hits.filter((h) => h.method === "POST")).toEqual([]);

    // Confirmed: sent with the run's resourceVersion, then the run is loaded again.
    await act(() => click(resume, "resume"));
    await act(() => click(byTestId(root, "confirm"), "confirm"));
    await until(() => t.gets().filter((u) => u === "/ui/api/runs/prod/gray").length === 2, "the run is loaded again");
    expect(t.hits.filter((h) => h.method === "POST")).toEqual([
      { method: "POST", url: "/ui/api/runs/prod/gray/actions/resume", body: {}, ifMatch: "100" },
    ]);
    expect(dialog()).toBeNull();
    expect(root.textContent).toContain("Resume: sent.");
  });

  it("sets a context value parsed as JSON after confirmation, and shows the run's context", async () => {
    history.replaceState(null, "", "/runs/prod/gray");
    let context: Record<string, unknown> = { image: "shop:2" };
    const t = table(
      new Map([
        ["/ui/api/runs/prod/gray", () => ({ ...detail({ ...none, resume: true, setContext: true }), context })],
        [
          "POST /ui/api/runs/prod/gray/actions/context",
          () => {
            context = { ...context, continueRollout: true };
            return { run: run({ name: "gray" }) };
          },
        ],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "action-context") !== null, "the actions are shown");
    await act(() => click(byTestId(root, "action-context"), "set context"));
    // An empty key is refused in the form.
    await act(() => click(byTestId(root, "context-submit"), "context submit"));
    expect(root.textContent).toContain("the key is empty");
    expect(dialog()).toBeNull();
    await act(() => {
      type(byTestId(root, "context-key"), "continueRollout", "key");
      type(byTestId(root, "context-value"), "true", "value");
    });
    await act(() => click(byTestId(root, "context-submit"), "context submit"));
    expect(dialog()?.textContent).toContain("Set continueRollout = true in the context of prod/gray?");
    await act(() => click(byTestId(root, "confirm"), "confirm"));
    await until(() => t.hits.some((h) => h.method === "POST"), "the context is sent");
    expect(t.hits.filter((h) => h.method === "POST")).toEqual([
      { method: "POST", url: "/ui/api/runs/prod/gray/actions/context", body: { context: { continueRollout: true } }, ifMatch: "100" },
    ]);
    const shown = () => [...(byTestId(root, "run-context")?.querySelectorAll("dt, dd") ?? [])].map((e) => e.textContent);
    await until(() => shown().length === 4, "the new context is shown");
    expect(shown()).toEqual(["image", "shop:2", "continueRollout", "true"]);
  });

  it("shows a refusal inline and loads the run again", async () => {
    history.replaceState(null, "", "/runs/prod/gray");
    const t = table(
      new Map<string, () => unknown>([
        ["/ui/api/runs/prod/gray", () => detail({ ...none, terminate: true })],
        ["POST /ui/api/runs/prod/gray/actions/terminate", () => [409, { error: "the run changed: resourceVersion 100 is not 104" }]],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "action-terminate") !== null, "the actions are shown");
    await act(() => click(byTestId(root, "action-terminate"), "terminate"));
    expect(byTestId(root, "confirm")?.className).toBe("danger");
    await act(() => click(byTestId(root, "confirm"), "confirm"));
    await until(() => byTestId(root, "action-error") !== null, "the error is shown");
    expect(byTestId(root, "action-error")?.textContent).toBe(
      "POST /ui/api/runs/prod/gray/actions/terminate: 409 the run changed: resourceVersion 100 is not 104",
    );
    await until(() => t.gets().filter((u) => u === "/ui/api/runs/prod/gray").length === 2, "the run is loaded again");
  });

  it("retries from the step the panel shows, only where the server allows it", async () => {
    history.replaceState(null, "", "/runs/prod/gray/steps/deploy");
    const t = table(
      new Map([
        ["/ui/api/runs/prod/gray", () => detail({ ...none, retryFrom: ["deploy"] })],
        ["POST /ui/api/runs/prod/gray/actions/retry-from", () => ({ run: run({ name: "gray" }) })],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "action-retry-from") !== null, "the step panel is shown");
    expect((byTestId(root, "action-retry-from") as HTMLButtonElement).disabled).toBe(false);
    await act(() => click(byTestId(root, "action-retry-from"), "retry from"));
    expect(dialog()?.textContent).toContain("Retry prod/gray from step deploy?");
    await act(() => click(byTestId(root, "confirm"), "confirm"));
    await until(() => t.hits.some((h) => h.method === "POST"), "the retry is sent");
    expect(t.hits.find((h) => h.method === "POST")).toEqual({
      method: "POST",
      url: "/ui/api/runs/prod/gray/actions/retry-from",
      body: { step: "deploy" },
      ifMatch: "100",
    });

    // Another step: not in retryFrom, so disabled.
    await act(() => click(root.querySelector('[data-testid="step-node"][data-step="approve"]'), "approve"));
    await until(() => byTestId(root, "step-panel")?.getAttribute("data-step") === "approve", "approve is shown");
    expect((byTestId(root, "action-retry-from") as HTMLButtonElement).disabled).toBe(true);
  });

  it("enables nothing when the server gives no actions, and links the app's deploys", async () => {
    history.replaceState(null, "", "/runs/prod/gray");
    const t = table(new Map([["/ui/api/runs/prod/gray", () => detail(undefined)]]));
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "action-resume") !== null, "the actions are shown");
    expect(buttons().every(([, on]) => on === false)).toBe(true);
    expect(root.querySelector('a[href="/apps/prod/shop"]')?.textContent).toBe("shop");
  });
});
