// What the views' tests share: a fake EventSource the test drives, a fetch
// that answers from a table of contract answers and records the requests,
// a wait for a condition, and mounting the app. (The HTTP client itself is
// tested against a real server in api/client.test.ts.)
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach } from "vitest";
import { App } from "./App";
import type { Api } from "../api/client";

export class FakeES {
  static all: FakeES[] = [];
  listeners = new Map<string, ((e: Event) => void)[]>();
  closed = false;
  constructor(readonly url: string) {
    FakeES.all.push(this);
  }
  addEventListener(type: string, fn: (e: Event) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string, data: unknown) {
    for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data: JSON.stringify(data) }));
  }
  close() {
    this.closed = true;
  }
  /** The open streams whose URL starts with prefix. */
  static open(prefix: string): FakeES[] {
    return FakeES.all.filter((e) => !e.closed && e.url.startsWith(prefix));
  }
}

export interface Hit {
  method: string;
  url: string;
  body?: unknown;
  ifMatch?: string;
}

/** An answer: a value (200) or [status, value]. */
export type Answer = () => unknown;

/**
 * A fetch answering from a table keyed by URL (GET) or "METHOD URL"; an
 * answer returning [status, body] sets the status. Unknown keys are 404.
 */
export function table(answers: Map<string, Answer>) {
  const hits: Hit[] = [];
  const f = (async (url: string, init?: RequestInit) => {
    const method = init?.method ?? "GET";
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const hit: Hit = { method, url };
    if (init?.body) hit.body = JSON.parse(init.body as string);
    if (headers["If-Match"]) hit.ifMatch = headers["If-Match"];
    hits.push(hit);
    const a = answers.get(method === "GET" ? url : `${method} ${url}`);
    if (!a) return new Response('{"error":"not found"}', { status: 404 });
    const v = a();
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number") return new Response(JSON.stringify(v[1]), { status: v[0] });
    return new Response(JSON.stringify(v), { status: 200 });
  }) as unknown as typeof fetch;
  return { f, hits, gets: () => hits.filter((h) => h.method === "GET").map((h) => h.url) };
}

// Lets the fetches and renders run until cond holds; fails after 300 turns of
// 10 ms (a hang, not slowness; the tests' timeout is raised to match).
export async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 300; i++) {
    if (cond()) return;
    await act(() => new Promise<void>((r) => setTimeout(r, 10)));
  }
  throw new Error(`never: ${what}`);
}

export function mount(root: HTMLElement, api: Api) {
  const store = new Map<string, string>();
  render(
    <App
      api={api}
      store={{ getItem: (k) => store.get(k) ?? null, setItem: (k, v) => void store.set(k, v), removeItem: (k) => void store.delete(k) }}
      initialToken=""
      onToken={() => {}}
    />,
    root,
  );
}

export function click(el: Element | null, what: string) {
  if (!el) throw new Error(`no ${what} to click`);
  el.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, button: 0 }));
}

/** Types into an input, textarea or select as a user would (value, then input and change events). */
export function type(el: Element | null, value: string, what: string) {
  if (!el) throw new Error(`no ${what} to type into`);
  (el as HTMLInputElement).value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
}

export function byTestId(root: ParentNode, id: string): HTMLElement | null {
  return root.querySelector(`[data-testid="${id}"]`);
}

/**
 * Gives each test of the file a fresh element in the document to render
 * into (set receives it) and no open fake streams; the app is unmounted
 * and the element removed after it.
 */
export function freshRoot(set: (root: HTMLElement) => void) {
  let root: HTMLElement;
  beforeEach(() => {
    FakeES.all = [];
    root = document.createElement("div");
    document.body.append(root);
    set(root);
  });
  afterEach(() => {
    render(null, root);
    root.remove();
  });
}
