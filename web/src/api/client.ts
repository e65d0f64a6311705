// The UI's API client: fetch for /ui/api/runs and /ui/api/runs/{ns}/{name},
// EventSource for /ui/api/events. fetch and EventSource are passed in, so
// tests can hand in an httptest-like server's or a fake's.

import type { Filters } from "../state/filters";
import { authHeaders, withAccessToken } from "../state/token";
import type { RunDetail, RunRef, RunSummary } from "./types";

/** An API answer that was not 2xx: its status and the server's {"error"} text. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface EventHandlers {
  run(r: RunSummary): void;
  deleted(ref: RunRef): void;
  /** The stream opened (again, after a reconnect). */
  open?(): void;
  /** The stream broke; EventSource reconnects by itself. */
  error?(): void;
  /** The server dropped this client as too far behind; it reconnects to the runs as they are then. */
  dropped?(): void;
}

type EventSourceCtor = new (url: string) => EventSource;

export class Api {
  constructor(
    private readonly token: () => string,
    private readonly fetchFn: typeof fetch = (...a) => fetch(...a),
    private readonly ES: EventSourceCtor = EventSource,
    private readonly base = "",
  ) {}

  private async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const res = await this.fetchFn(this.base + path, { headers: authHeaders(this.token()), signal });
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        const body = JSON.parse(text) as { error?: string };
        if (body.error) msg = body.error;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(res.status, `GET ${path}: ${res.status} ${msg}`.trim());
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new ApiError(res.status, `GET ${path}: the answer is not JSON: ${(e as Error).message}`);
    }
  }

  /** The runs that pass the filters, newest first. */
  async listRuns(f: Filters, signal?: AbortSignal): Promise<RunSummary[]> {
    const q = new URLSearchParams();
    if (f.namespace) q.set("namespace", f.namespace);
    if (f.app) q.set("app", f.app);
    if (f.category) q.set("category", f.category);
    if (f.phase) q.set("phase", f.phase);
    if (f.label) q.set("label", f.label);
    const qs = q.toString();
    const body = await this.get<{ items: RunSummary[] | null }>(`/ui/api/runs${qs ? `?${qs}` : ""}`, signal);
    return body.items ?? [];
  }

  /** One run with its steps and edges. */
  getRun(namespace: string, name: string, signal?: AbortSignal): Promise<RunDetail> {
    return this.get<RunDetail>(`/ui/api/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, signal);
  }

  /**
   * Subscribes to run events: of one run, or of the runs that pass the
   * filters (the server filters too; the list filters again). Returns the
   * function that closes the stream.
   */
  events(scope: Partial<Filters> & { run?: string }, h: EventHandlers): () => void {
    const q = new URLSearchParams();
    for (const k of ["namespace", "run", "app", "category", "phase", "label"] as const) {
      const v = scope[k];
      if (v) q.set(k, v);
    }
    const qs = q.toString();
    const es = new this.ES(withAccessToken(`${this.base}/ui/api/events${qs ? `?${qs}` : ""}`, this.token()));
    const parse = <T>(ev: Event, use: (v: T) => void) => {
      try {
        use(JSON.parse((ev as MessageEvent<string>).data) as T);
      } catch {
        // a malformed event is skipped; the next one or a reload brings the state
      }
    };
    es.addEventListener("run", (ev) => parse<RunSummary>(ev, h.run));
    es.addEventListener("deleted", (ev) => parse<RunRef>(ev, h.deleted));
    es.addEventListener("dropped", () => h.dropped?.());
    es.addEventListener("open", () => h.open?.());
    es.addEventListener("error", () => h.error?.());
    return () => es.close();
  }
}
