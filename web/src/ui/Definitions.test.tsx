// @vitest-environment happy-dom
// The definitions catalogue and a definition's launch form: rows from
// /ui/api/definitions, a namespace filter, labelled fields generated from
// the schema with required ones marked, messages before anything is sent,
// and a launch that opens the new run; a Workflow launched with context;
// the gray-release view with its rollback target.
import { act } from "preact/test-utils";
import { describe, expect, it, vi } from "vitest";
import { Api } from "../api/client";
import type { DefinitionItem, RunDetail } from "../api/types";
import { run } from "../state/testdata";
import { byTestId, click, FakeES, freshRoot, mount, table, type, until } from "./testkit";

vi.setConfig({ testTimeout: 20_000 });

let root!: HTMLElement;
freshRoot((el) => (root = el));

const deploy: DefinitionItem = {
  kind: "WorkflowStepDefinition",
  name: "deploy",
  namespace: "stepflow-system",
  source: "system",
  description: "Deploys an image",
  ready: true,
  message: "",
  schema: {
    type: "object",
    required: ["image"],
    properties: {
      image: { type: "string", description: "The image to run" },
      replicas: { type: "integer", minimum: 1, default: 2 },
      strategy: { type: "string", enum: ["rolling", "recreate"], default: "rolling" },
      hosts: { type: "array", items: { type: "string" } },
      probe: { type: "object", required: ["path"], properties: { path: { type: "string" } } },
    },
  },
};
const web: DefinitionItem = { ...deploy, kind: "ComponentDefinition", name: "webservice", description: "A web service", ready: false, message: "template does not compile" };

describe("definitions", () => {
  it("lists the definitions of a namespace and its Workflows, launching one with context", async () => {
    history.replaceState(null, "", "/definitions");
    const t = table(
      new Map<string, () => unknown>([
        ["/ui/api/definitions", () => ({ items: [deploy] })],
        ["/ui/api/definitions?namespace=prod", () => ({ items: [deploy, { ...web, namespace: "prod", source: "namespace" }] })],
        ["/ui/api/workflows?namespace=prod", () => ({ items: [{ namespace: "prod", name: "release", description: "Gray release", steps: 4 }] })],
        ["POST /ui/api/runs", () => [201, { run: run({ namespace: "prod", name: "release-7x2" }) }]],
        ["/ui/api/runs/prod/release-7x2", (): RunDetail => ({ run: run({ namespace: "prod", name: "release-7x2" }), steps: [], edges: [], context: {} })],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    const rows = () => [...root.querySelectorAll('[data-testid="definition-row"]')].map((r) => r.getAttribute("data-name"));
    await until(() => rows().length === 1, "the system's definitions are listed");
    expect(root.querySelector('nav a[aria-current="page"]')?.textContent).toBe("Definitions");
    expect(root.textContent).toContain("Choose a namespace to see its Workflows.");

    await act(() => type(root.querySelector('input[name="namespace"]'), "prod", "namespace"));
    await act(() => {
      (root.querySelector("form.filters") as HTMLFormElement).dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
    });
    expect(location.pathname + location.search).toBe("/definitions?namespace=prod");
    await until(() => rows().length === 2, "prod's definitions are listed");
    expect(rows()).toEqual(["deploy", "webservice"]);
    const [row1, row2] = root.querySelectorAll('[data-testid="definition-row"]');
    expect(row1.querySelector("a")?.getAttribute("href")).toBe("/definitions/WorkflowStepDefinition/stepflow-system/deploy?namespace=prod");
    expect(row2.textContent).toContain("not ready: template does not compile");
    expect(row1.querySelector(".params")?.textContent).toBe("image* (required), replicas, strategy, hosts, probe");

    await until(() => byTestId(root, "workflow-row") !== null, "the Workflows are listed");
    await act(() => click(byTestId(root, "workflow-row")?.querySelector("button") ?? null, "launch"));
    const form = root.querySelector('form[aria-label="Launch release"]') as HTMLFormElement;
    const inputs = form.querySelectorAll("fieldset input");
    await act(() => {
      type(inputs[0], "continueRollout", "key");
      type(inputs[1], "false", "value");
    });
    await act(() => {
      form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
    });
    await until(() => location.pathname === "/runs/prod/release-7x2", "the new run is opened");
    expect(t.hits.find((h) => h.method === "POST")?.body).toEqual({ namespace: "prod", workflow: "release", context: { continueRollout: false } });
  });

  it("validates the launch form and launches a one-step run", async () => {
    history.replaceState(null, "", "/definitions/WorkflowStepDefinition/stepflow-system/deploy?namespace=prod");
    const t = table(
      new Map<string, () => unknown>([
        ["/ui/api/definitions?namespace=stepflow-system", () => ({ items: [deploy] })],
        ["POST /ui/api/runs", () => [201, { run: run({ namespace: "prod", name: "deploy-abc12" }) }]],
        ["/ui/api/runs/prod/deploy-abc12", (): RunDetail => ({ run: run({ namespace: "prod", name: "deploy-abc12" }), steps: [], edges: [], context: {} })],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => byTestId(root, "launch") !== null, "the form is shown");
    const field = (n: string) => byTestId(root, `field-${n}`) as HTMLInputElement;
    const label = (n: string) => root.querySelector(`label[for="${field(n).id}"]`)?.textContent;
    expect(label("image")).toBe("image* (string)");
    expect(field("image").getAttribute("aria-required")).toBe("true");
    expect(label("replicas")).toBe("replicas (integer)");
    expect(field("replicas").value).toBe("2");
    expect(field("strategy").tagName).toBe("SELECT");
    expect(field("hosts").tagName).toBe("TEXTAREA");
    expect(byTestId(root, "field-probe")?.tagName).toBe("FIELDSET");
    expect((byTestId(root, "run-namespace") as HTMLInputElement).value).toBe("prod");

    // Messages beside the fields, nothing sent.
    await act(() => type(field("replicas"), "0", "replicas"));
    await act(() => click(byTestId(root, "launch"), "launch"));
    expect(t.hits.filter((h) => h.method === "POST")).toEqual([]);
    const msg = (n: string) => root.querySelector(`#${CSS.escape(field(n).id)}-err`)?.textContent;
    expect(msg("image")).toBe("required");
    expect(msg("replicas")).toBe("must be at least 1");
    expect(field("image").getAttribute("aria-invalid")).toBe("true");
    expect(field("image").getAttribute("aria-describedby")).toContain(`${field("image").id}-err`);

    await act(() => {
      type(field("image"), "nginx:1.27", "image");
      type(field("replicas"), "3", "replicas");
      type(field("hosts"), "a.example\nb.example", "hosts");
    });
    await act(() => click(byTestId(root, "launch"), "launch"));
    await until(() => location.pathname === "/runs/prod/deploy-abc12", "the new run is opened");
    expect(t.hits.find((h) => h.method === "POST")?.body).toEqual({
      namespace: "prod",
      definition: "deploy",
      properties: { image: "nginx:1.27", replicas: 3, strategy: "rolling", hosts: ["a.example", "b.example"] },
    });
  });

  it("shows a component definition's parameters without a launch form", async () => {
    history.replaceState(null, "", "/definitions/ComponentDefinition/stepflow-system/webservice");
    const t = table(new Map([["/ui/api/definitions?namespace=stepflow-system", () => ({ items: [deploy, web] })]]));
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelector("table") !== null, "the parameters are shown");
    expect(byTestId(root, "launch")).toBeNull();
    expect([...root.querySelectorAll("tbody tr td:first-child")].map((td) => td.textContent)).toEqual(["image", "replicas", "strategy", "hosts", "probe", "probe.path"]);
    expect(root.textContent).toContain("Not ready: template does not compile");
  });
});

describe("gray-release view", () => {
  it("lists the app's deploys newest first with the rollback target marked, live", async () => {
    history.replaceState(null, "", "/apps/prod/shop");
    let target = "shop-v2";
    const t = table(
      new Map([
        [
          "/ui/api/apps/prod/shop/deploys",
          () => ({
            items: [
              run({ namespace: "prod", name: "shop-v3", phase: "executing" }),
              run({ namespace: "prod", name: "shop-v2", phase: "succeeded" }),
              run({ namespace: "prod", name: "shop-v1", phase: "succeeded" }),
            ],
            rollbackTarget: { namespace: "prod", name: target },
          }),
        ],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    const rows = () => [...root.querySelectorAll('[data-testid="deploy-row"]')].map((r) => `${r.getAttribute("data-name")}${r.getAttribute("data-target") === "true" ? " (target)" : ""}`);
    await until(() => rows().length === 3, "the deploys are listed");
    expect(rows()).toEqual(["shop-v3", "shop-v2 (target)", "shop-v1"]);
    expect(root.querySelector('[data-target="true"]')?.textContent).toContain("rollback target");
    expect(root.querySelector('[data-target="true"] .phase')?.textContent).toBe("succeeded");
    expect(FakeES.all.map((e) => e.url)).toEqual(["/ui/api/events?namespace=prod&app=shop&category=DEPLOY"]);

    target = "shop-v3";
    await act(() => FakeES.all[0].emit("run", run({ namespace: "prod", name: "shop-v3", phase: "succeeded" })));
    await until(() => rows()[0] === "shop-v3 (target)", "the new target is marked");
  });

  it("keeps to one scope when the link names it, and says which", async () => {
    history.replaceState(null, "", "/apps/prod/shop?scope=eu");
    const t = table(
      new Map([
        [
          "/ui/api/apps/prod/shop/deploys?scope=eu",
          () => ({ items: [run({ namespace: "prod", name: "eu-v1", phase: "succeeded" })], rollbackTarget: { namespace: "prod", name: "eu-v1" }, scope: "eu" }),
        ],
      ]),
    );
    mount(root, new Api(() => "", t.f, FakeES as never));
    await until(() => root.querySelector('[data-testid="deploy-row"]') !== null, "the scope's deploys are listed");
    expect(t.gets()).toEqual(["/ui/api/apps/prod/shop/deploys?scope=eu"]);
    expect(root.querySelector('[data-testid="deploy-scope"]')?.textContent).toContain("Scope eu");
    expect(root.querySelector<HTMLAnchorElement>('[data-testid="deploy-scope"] a')?.getAttribute("href")).toBe("/apps/prod/shop");
  });
});
