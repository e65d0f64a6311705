// The run list: filters in the query string, the list from /ui/api/runs,
// kept live by /ui/api/events.
import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { RunSummary } from "../api/types";
import { type Filters, filtersFromQuery, filtersToQuery, parseSelector } from "../state/filters";
import { elapsedSeconds, formatDuration } from "../state/format";
import { appPath, runPath, scopeLabel } from "../state/route";
import { coalesce } from "../state/reload";
import { applyDeleted, applyRunEvent, sortRuns } from "../state/runlist";
import { ErrorNote, Link, Phase, When } from "./bits";
import { useNow } from "./hooks";

interface Props {
  api: Api;
  search: string;
  go(href: string, replace?: boolean): void;
  askToken(): void;
}

type Live = "connecting" | "live" | "reconnecting";

/** How many rows the list shows at first, and how many more each "Show more" adds. */
export const PAGE = 100;

/**
 * How long events wait to be merged together: a stream opens with one event
 * per run, and each merge re-renders the list, so a burst becomes one render.
 */
const BATCH_MS = 50;

export function RunList({ api, search, go, askToken }: Props) {
  const filters = filtersFromQuery(search);
  const fkey = filtersToQuery(filters);
  const [runs, setRuns] = useState<RunSummary[] | undefined>(undefined);
  const [error, setError] = useState("");
  const [live, setLive] = useState<Live>("connecting");
  const [shown, setShown] = useState(PAGE);
  const now = useNow(5000);

  useEffect(() => {
    const ac = new AbortController();
    setRuns(undefined);
    setShown(PAGE);
    setError("");
    // While the list loads, events wait and are merged once it is there
    // (a stale one is then dropped by its resourceVersion); after that they
    // are merged BATCH_MS at a time, in one render.
    let loaded: RunSummary[] | undefined;
    let pending: ((l: RunSummary[]) => RunSummary[])[] = [];
    let batch: ((l: RunSummary[]) => RunSummary[])[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const fns = batch;
      batch = [];
      setRuns((l) => (l ? fns.reduce((l, fn) => fn(l), l) : l));
    };
    const update = (fn: (l: RunSummary[]) => RunSummary[]) => {
      if (!loaded) {
        pending.push(fn);
        return;
      }
      batch.push(fn);
      timer ??= setTimeout(flush, BATCH_MS);
    };
    const reloader = coalesce(async () => {
      loaded = undefined;
      try {
        const items = await api.listRuns(filters, ac.signal);
        loaded = pending.reduce((l, fn) => fn(l), sortRuns(items));
        pending = [];
        setRuns(loaded);
        setError("");
      } catch (e) {
        if (ac.signal.aborted) return;
        setError((e as Error).message);
        if (e instanceof ApiError && e.status === 401) askToken();
      }
    });
    // After a break (the network, or the server dropping a client that fell
    // behind) the stream resends the runs as they are, but not the ones
    // deleted meanwhile: load the list again.
    let broken = false;
    const close = api.events(filters, {
      run: (r) => update((l) => applyRunEvent(l, r, filters)),
      deleted: (d) => update((l) => applyDeleted(l, d)),
      open: () => {
        setLive("live");
        if (broken) {
          broken = false;
          void reloader.request();
        }
      },
      error: () => {
        broken = true;
        setLive("reconnecting");
      },
      dropped: () => {
        broken = true;
      },
    });
    void reloader.request();
    return () => {
      clearTimeout(timer);
      reloader.stop();
      ac.abort();
      close();
    };
  }, [api, fkey]);

  return (
    <section aria-labelledby="runs-h">
      <div class="title">
        <h1 id="runs-h">Runs</h1>
        <span class={`live live-${live}`} role="status">
          {live === "live" ? "live" : live === "connecting" ? "connecting…" : "reconnecting…"}
        </span>
      </div>
      <FilterForm filters={filters} apply={(f) => go(`/${filtersToQuery(f)}`, true)} />
      <ErrorNote error={error} />
      {runs === undefined && !error && <p class="muted">Loading…</p>}
      {runs !== undefined && runs.length === 0 && <p class="muted">No runs match.</p>}
      {runs !== undefined && runs.length > 0 && (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Phase</th>
              <th scope="col">Progress</th>
              <th scope="col">Waiting on</th>
              <th scope="col">Duration</th>
              <th scope="col">Created</th>
              <th scope="col">App</th>
            </tr>
          </thead>
          <tbody>
            {runs.slice(0, shown).map((r) => (
              <tr key={`${r.namespace}/${r.name}`} data-testid="run-row" data-name={r.name} data-namespace={r.namespace}>
                <td>
                  <Link href={runPath(r.namespace, r.name)} go={go}>
                    <span class="muted">{r.namespace}/</span>
                    {r.name}
                  </Link>
                  {r.message && <div class="msg">{r.message}</div>}
                </td>
                <td>
                  <Phase phase={r.phase} />
                </td>
                <td>{r.progress}</td>
                <td>
                  {r.waitingOn ? (
                    <Link href={runPath(r.namespace, r.name, r.waitingOn)} go={go}>
                      {r.waitingOn}
                    </Link>
                  ) : (
                    <span class="muted">—</span>
                  )}
                </td>
                <td>{formatDuration(r.started ? elapsedSeconds(r.started, r.finished, now) : r.durationSeconds)}</td>
                <td>
                  <When t={r.created} now={now} />
                </td>
                <td>
                  {r.appId ? (
                    <Link href={appPath(r.namespace, r.appId, r.labels?.[scopeLabel] ?? "")} go={go}>
                      {r.appId}
                    </Link>
                  ) : (
                    <span class="muted">—</span>
                  )}
                  {r.category && <span class="muted"> · {r.category}</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {runs !== undefined && runs.length > PAGE && (
        <p class="more">
          <span class="muted" data-testid="runs-shown">
            {Math.min(shown, runs.length)} of {runs.length} runs
          </span>{" "}
          {shown < runs.length && (
            <button type="button" data-testid="more-runs" onClick={() => setShown(shown + PAGE)}>
              Show {Math.min(PAGE, runs.length - shown)} more
            </button>
          )}
        </p>
      )}
    </section>
  );
}

function FilterForm({ filters, apply }: { filters: Filters; apply(f: Filters): void }) {
  const [f, setF] = useState(filters);
  useEffect(() => setF(filters), [filtersToQuery(filters)]);
  const sel = parseSelector(f.label);
  const field = (k: keyof Filters, label: string, placeholder: string) => (
    <label>
      {label}
      <input
        name={k}
        value={f[k]}
        placeholder={placeholder}
        onInput={(e) => setF({ ...f, [k]: (e.target as HTMLInputElement).value })}
        aria-invalid={k === "label" && !sel.ok}
      />
    </label>
  );
  return (
    <form
      class="filters"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        if (sel.ok) apply(f);
      }}
    >
      {field("namespace", "Namespace", "all")}
      {field("app", "App", "any")}
      {field("category", "Category", "any")}
      {field("phase", "Phase", "any")}
      {field("label", "Labels", "tier=web,!canary")}
      <button type="submit" disabled={!sel.ok}>
        Filter
      </button>
      {!sel.ok && <span class="error">{sel.error}</span>}
    </form>
  );
}
