// The UI's API client: fetch for the reads, actions and launches under
// /ui/api, EventSource for /ui/api/events and a step's log stream. fetch and
// EventSource are passed in, so tests can hand in a real local server's
// fetch or a fake EventSource.

import type { Filters } from "../state/filters";
import { authHeaders, withAccessToken } from "../state/token";
import type {
  DefinitionItem,
  Deploys,
  LaunchRequest,
  LogLine,
  RunDetail,
  RunRef,
  RunSummary,
  StepDetail,
  Verb,
  WorkflowItem,
} from "./types";

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

export interface LogHandlers {
  log(l: LogLine): void;
  /** The step or run finished, or the stream's time bound was reached; the stream is closed. */
  end(): void;
  /** The stream opened (again): the server sends the step's lines from the first. */
  open?(): void;
  error?(): void;
}

type EventSourceCtor = new (url: string) => EventSource;

export class Api {
  constructor(
    private readonly token: () => string,
    private readonly fetchFn: typeof fetch = (...a) => fetch(...a),
    private readonly ES: EventSourceCtor = EventSource,
    private readonly base = "",
  ) {}

  private async request<T>(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<T> {
    const headers: Record<string, string> = { ...authHeaders(this.token()), ...init.headers };
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await this.fetchFn(this.base + path, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
    const text = await res.text();
    if (!res.ok) {
      let msg = text;
      try {
        const body = JSON.parse(text) as { error?: string };
        if (body.error) msg = body.error;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(res.status, `${method} ${path}: ${res.status} ${msg}`.trim());
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new ApiError(res.status, `${method} ${path}: the answer is not JSON: ${(e as Error).message}`);
    }
  }

  private get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, { signal });
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
    return this.get<RunDetail>(runURL(namespace, name), signal);
  }

  /**
   * Asks for an action on a run. With ifMatch (the RunSummary's
   * resourceVersion) the server answers 409 when the run changed since.
   */
  async act(namespace: string, name: string, verb: Verb, body: unknown, ifMatch?: string): Promise<RunSummary> {
    const r = await this.request<{ run: RunSummary }>("POST", `${runURL(namespace, name)}/actions/${verb}`, {
      body: body ?? {},
      headers: ifMatch ? { "If-Match": ifMatch } : {},
    });
    return r.run;
  }

  /** One step's attempts, op calls, log lines and definition. */
  getStep(namespace: string, name: string, step: string, signal?: AbortSignal): Promise<StepDetail> {
    return this.get<StepDetail>(`${runURL(namespace, name)}/steps/${encodeURIComponent(step)}`, signal);
  }

  /** The step definitions and component definitions runs in namespace see ("" = the system namespace's). */
  async listDefinitions(namespace: string, signal?: AbortSignal): Promise<DefinitionItem[]> {
    const qs = namespace ? `?namespace=${encodeURIComponent(namespace)}` : "";
    const body = await this.get<{ items: DefinitionItem[] | null }>(`/ui/api/definitions${qs}`, signal);
    return body.items ?? [];
  }

  async listWorkflows(namespace: string, signal?: AbortSignal): Promise<WorkflowItem[]> {
    const qs = namespace ? `?namespace=${encodeURIComponent(namespace)}` : "";
    const body = await this.get<{ items: WorkflowItem[] | null }>(`/ui/api/workflows${qs}`, signal);
    return body.items ?? [];
  }

  /** Creates a run of a definition or of a Workflow; returns it as created. */
  async launch(req: LaunchRequest): Promise<RunSummary> {
    const r = await this.request<{ run: RunSummary }>("POST", "/ui/api/runs", { body: req });
    return r.run;
  }

  /** An app's DEPLOY runs, newest first, and the one a rollback would return to. */
  async appDeploys(namespace: string, appId: string, scope = "", signal?: AbortSignal): Promise<Deploys> {
    const q = scope ? `?scope=${encodeURIComponent(scope)}` : "";
    const d = await this.get<Deploys>(`/ui/api/apps/${encodeURIComponent(namespace)}/${encodeURIComponent(appId)}/deploys${q}`, signal);
    return { items: d.items ?? [], rollbackTarget: d.rollbackTarget ?? null, scope: d.scope ?? "" };
  }

  /**
   * Follows a step's #Log lines (follow=true): the existing ones first,
   * then new ones. Returns the function that closes the stream; it is
   * closed by itself at `event: end`, so EventSource does not reconnect
   * and send the lines again.
   */
  stepLogs(namespace: string, name: string, step: string, h: LogHandlers): () => void {
    const url = `${this.base}${runURL(namespace, name)}/steps/${encodeURIComponent(step)}/logs?follow=true`;
    const es = new this.ES(withAccessToken(url, this.token()));
    es.addEventListener("log", (ev) => {
      try {
        h.log(JSON.parse((ev as MessageEvent<string>).data) as LogLine);
      } catch {
        // a malformed line is skipped
      }
    });
    es.addEventListener("end", () => {
      es.close();
      h.end();
    });
    es.addEventListener("open", () => h.open?.());
    es.addEventListener("error", () => h.error?.());
    return () => es.close();
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

function runURL(namespace: string, name: string): string {
  return `/ui/api/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}
