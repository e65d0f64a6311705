import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { emptyFilters } from "../state/filters";
import { Api, ApiError } from "./client";

// A real HTTP server on 127.0.0.1 that records each request and answers
// from a table; the client's base URL points at it.
async function server(answers: Record<string, [number, string]>) {
  const seen: { url: string; auth: string | null }[] = [];
  const srv = createServer((req, res) => {
    seen.push({ url: req.url ?? "", auth: req.headers.authorization ?? null });
    const [status, body] = answers[req.url ?? ""] ?? [404, '{"error":"no such path"}'];
    res.writeHead(status, { "Content-Type": "application/json" }).end(body);
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
});
