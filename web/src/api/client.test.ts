import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { emptyFilters } from "../state/filters";
import { Api, ApiError } from "./client";

// A real HTTP server on 127.0.0.1 that records each request and answers
// from a table; the client's base URL points at it.
// An answer's key is the URL, or "METHOD URL" for other methods than GET.
async function server(answers: Record<string, [number, string]>) {
  const seen: { url: string; auth: string | null; method?: string; body?: string; ifMatch?: string; type?: string }[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "";
      const rec: (typeof seen)[number] = { url, auth: req.headers.authorization ?? null };
      if (req.method !== "GET") {
        rec.method = req.method;
        rec.body = Buffer.concat(chunks).toString();
        rec.type = req.headers["content-type"];
        if (req.headers["if-match"]) rec.ifMatch = req.headers["if-match"];
      }
      seen.push(rec);
      const [status, body] = answers[req.method === "GET" ? url : `${req.method} ${url}`] ?? [404, '{"error":"no such path"}'];
      res.writeHead(status, { "Content-Type": "application/json" }).end(body);
    });
  });
  await new Promise<void>((ok) => srv.listen(0, "127.0.0.1", ok));
  servers.push(srv);
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { base, seen };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((ok) => s.close(ok))));
});

class FakeES {
  static last: FakeES;
  listeners = new Map<string, ((e: Event) => void)[]>();
  closed = false;
  constructor(readonly url: string) {
    FakeES.last = this;
  }
  addEventListener(type: string, fn: (e: Event) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string, data?: string) {
    for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data }));
  }
  close() {
    this.closed = true;
  }
}

describe("Api", () => {
  it("lists runs with the filters as query and the token as Bearer", async () => {
    const s = await server({ "/ui/api/runs?namespace=prod&phase=failed&label=a%3Db": [200, '{"items":[{"name":"r1"}]}'] });
    const api = new Api(() => "tok", fetch, FakeES as never, s.base);
    const runs = await api.listRuns({ ...emptyFilters, namespace: "prod", phase: "failed", label: "a=b" });
    expect(runs.map((r) => r.name)).toEqual(["r1"]);
    expect(s.seen).toEqual([{ url: "/ui/api/runs?namespace=prod&phase=failed&label=a%3Db", auth: "Bearer tok" }]);
  });

  it("sends no Authorization without a token, and reads a null items as none", async () => {
    const s = await server({ "/ui/api/runs": [200, '{"items":null}'] });
    const api = new Api(() => "", fetch, FakeES as never, s.base);
    expect(await api.listRuns(emptyFilters)).toEqual([]);
    expect(s.seen[0].auth).toBeNull();
  });

  it("turns an error answer into an ApiError with the server's message", async () => {
    const s = await server({ "/ui/api/runs/ns/r%2F1": [403, '{"error":"runs is forbidden"}'] });
    const api = new Api(() => "", fetch, FakeES as never, s.base);
    const err = await api.getRun("ns", "r/1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(403);
    expect((err as ApiError).message).toBe("GET /ui/api/runs/ns/r%2F1: 403 runs is forbidden");
  });

  it("names a 2xx answer that is not JSON", async () => {
    const s = await server({ "/ui/api/runs": [200, "<html>"] });
    const api = new Api(() => "", fetch, FakeES as never, s.base);
    await expect(api.listRuns(emptyFilters)).rejects.toThrow(/^GET \/ui\/api\/runs: the answer is not JSON/);
    expect(s.seen).toHaveLength(1);
  });

  it("opens the event stream with access_token and hands events on, skipping malformed ones", () => {
    const api = new Api(() => "t k", fetch, FakeES as never);
    const got: string[] = [];
    const close = api.events(
      { namespace: "prod", run: "r1", phase: "", label: "a in (x)" },
      {
        run: (r) => got.push(`run ${r.name}`),
        deleted: (d) => got.push(`deleted ${d.name}`),
        dropped: () => got.push("dropped"),
      },
    );
    const es = FakeES.last;
    expect(es.url).toBe("/ui/api/events?namespace=prod&run=r1&label=a+in+%28x%29&access_token=t%20k");
    es.emit("run", '{"name":"r1","phase":"executing"}');
    es.emit("run", "{not json");
    es.emit("deleted", '{"namespace":"prod","name":"r1"}');
    es.emit("dropped", "");
    expect(got).toEqual(["run r1", "deleted r1", "dropped"]);
    close();
    expect(es.closed).toBe(true);
  });

  it("posts an action with its body, the token and If-Match, and reads the run back", async () => {
    const s = await server({ "POST /ui/api/runs/prod/gray/actions/retry-from": [200, '{"run":{"name":"gray","resourceVersion":"8"}}'] });
    const api = new Api(() => "tok", fetch, FakeES as never, s.base);
    const r = await api.act("prod", "gray", "retry-from", { step: "deploy" }, "7");
    expect(r.resourceVersion).toBe("8");
    expect(s.seen).toEqual([
      {
        url: "/ui/api/runs/prod/gray/actions/retry-from",
        auth: "Bearer tok",
        method: "POST",
        body: '{"step":"deploy"}',
        type: "application/json",
        ifMatch: "7",
      },
    ]);
  });

  it("names the action and the server's message when it is refused", async () => {
    const s = await server({ "POST /ui/api/runs/prod/gray/actions/resume": [409, '{"error":"the run is succeeded, not suspended"}'] });
    const api = new Api(() => "", fetch, FakeES as never, s.base);
    const err = await api.act("prod", "gray", "resume", undefined).catch((e: unknown) => e);
    expect((err as ApiError).status).toBe(409);
    expect((err as ApiError).message).toBe("POST /ui/api/runs/prod/gray/actions/resume: 409 the run is succeeded, not suspended");
    expect(s.seen[0].body).toBe("{}");
    expect(s.seen[0].ifMatch).toBeUndefined();
  });

  it("launches a run, and reads steps, definitions, workflows and an app's deploys", async () => {
    const s = await server({
      "POST /ui/api/runs": [201, '{"run":{"namespace":"prod","name":"deploy-x1"}}'],
      "/ui/api/runs/prod/gray/steps/a%20b": [200, '{"step":{"name":"a b"},"attempts":[],"calls":[],"logs":[],"definition":null}'],
      "/ui/api/definitions?namespace=prod": [200, '{"items":[{"name":"deploy"}]}'],
      "/ui/api/definitions": [200, '{"items":null}'],
      "/ui/api/workflows?namespace=prod": [200, '{"items":[{"name":"release","steps":3}]}'],
      "/ui/api/apps/prod/shop/deploys": [200, '{"items":null,"rollbackTarget":null}'],
      "/ui/api/apps/prod/shop/deploys?scope=eu%20west": [200, '{"items":[],"rollbackTarget":{"namespace":"prod","name":"v1"},"scope":"eu west"}'],
    });
    const api = new Api(() => "", fetch, FakeES as never, s.base);
    const run = await api.launch({ namespace: "prod", definition: "deploy", properties: { replicas: 2 } });
    expect(run.name).toBe("deploy-x1");
    expect(JSON.parse(s.seen[0].body ?? "")).toEqual({ namespace: "prod", definition: "deploy", properties: { replicas: 2 } });
    expect((await api.getStep("prod", "gray", "a b")).step.name).toBe("a b");
    expect((await api.listDefinitions("prod")).map((d) => d.name)).toEqual(["deploy"]);
    expect(await api.listDefinitions("")).toEqual([]);
    expect((await api.listWorkflows("prod")).map((w) => w.steps)).toEqual([3]);
    expect(await api.appDeploys("prod", "shop")).toEqual({ items: [], rollbackTarget: null, scope: "" });
    expect(await api.appDeploys("prod", "shop", "eu west")).toEqual({ items: [], rollbackTarget: { namespace: "prod", name: "v1" }, scope: "eu west" });
  });

  it("follows a step's logs with access_token and closes the stream at its end", () => {
    const api = new Api(() => "tk", fetch, FakeES as never);
    const got: string[] = [];
    api.stepLogs("prod", "gray", "smoke", { log: (l) => got.push(l.line), end: () => got.push("end"), open: () => got.push("open") });
    const es = FakeES.last;
    expect(es.url).toBe("/ui/api/runs/prod/gray/steps/smoke/logs?follow=true&access_token=tk");
    es.emit("open");
    es.emit("log", '{"time":"","level":0,"line":"pulling"}');
    es.emit("log", "not json");
    expect(es.closed).toBe(false);
    es.emit("end", "");
    expect(got).toEqual(["open", "pulling", "end"]);
    expect(es.closed).toBe(true);
  });
});
