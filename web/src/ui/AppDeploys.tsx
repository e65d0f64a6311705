// The gray-release view (/apps/NS/APPID): the app's DEPLOY runs, newest
// first, and the one a rollback would return to now, as the server decides
// it. Live: an event of one of the app's runs loads the list again
// (coalesced).
import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { Deploys } from "../api/types";
import { elapsedSeconds, formatDuration } from "../state/format";
import { coalesce } from "../state/reload";
import { appPath, runPath } from "../state/route";
import { ErrorNote, Link, Phase, When } from "./bits";
import { useNow } from "./hooks";

interface Props {
  api: Api;
  namespace: string;
  appId: string;
  /** Only this scope's runs ("" = every scope's). */
  scope: string;
  go(href: string): void;
  askToken(): void;
}

export function AppDeploys({ api, namespace, appId, scope, go, askToken }: Props) {
  const [deploys, setDeploys] = useState<Deploys | undefined>(undefined);
  const [error, setError] = useState("");
  const now = useNow(5000);

  useEffect(() => {
    const ac = new AbortController();
    const reloader = coalesce(async () => {
      try {
        setDeploys(await api.appDeploys(namespace, appId, scope, ac.signal));
        setError("");
      } catch (e) {
        if (ac.signal.aborted) return;
        setError((e as Error).message);
        if (e instanceof ApiError && e.status === 401) askToken();
      }
    });
    void reloader.request();
    const close = api.events({ namespace, app: appId, category: "DEPLOY" }, { run: () => void reloader.request(), deleted: () => void reloader.request() });
    return () => {
      reloader.stop();
      ac.abort();
      close();
    };
  }, [api, namespace, appId, scope]);

  const target = deploys?.rollbackTarget;
  const isTarget = (ns: string, name: string) => target !== null && target !== undefined && target.namespace === ns && target.name === name;

  return (
    <section aria-labelledby="app-h">
      <p>
        <Link href={`/?namespace=${encodeURIComponent(namespace)}&app=${encodeURIComponent(appId)}`} go={go}>
          ← The app's runs
        </Link>
      </p>
      <h1 id="app-h">
        <span class="muted">{namespace}/</span>
        {appId} <span class="muted">· deploys</span>
      </h1>
      {deploys?.scope && (
        <p class="muted" data-testid="deploy-scope">
          Scope {deploys.scope}
          {scope ? (
            <>
              {" "}
              ·{" "}
              <Link href={appPath(namespace, appId)} go={go}>
                every scope's runs
              </Link>
            </>
          ) : (
            " (the newest run's), where a rollback returns"
          )}
        </p>
      )}
      <ErrorNote error={error} />
      {!deploys && !error && <p class="muted">Loading…</p>}
      {deploys && (
        <p data-testid="rollback-target">
          {target ? (
            <>
              A rollback now returns to{" "}
              <Link href={runPath(target.namespace, target.name)} go={go}>
                {target.name}
              </Link>
              .
            </>
          ) : (
            <span class="muted">No run to roll back to: this app has no succeeded deploy.</span>
          )}
        </p>
      )}
      {deploys && deploys.items.length === 0 && <p class="muted">This app has no DEPLOY runs.</p>}
      {deploys && deploys.items.length > 0 && (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Phase</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
              <th scope="col">Finished</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {deploys.items.map((r) => {
              const t = isTarget(r.namespace, r.name);
              return (
                <tr key={r.name} data-testid="deploy-row" data-name={r.name} data-target={t ? "true" : undefined} class={t ? "target" : undefined}>
                  <td>
                    <Link href={runPath(r.namespace, r.name)} go={go}>
                      {r.name}
                    </Link>
                    {t && <span class="badge"> rollback target</span>}
                    {r.message && <div class="msg">{r.message}</div>}
                  </td>
                  <td>
                    <Phase phase={r.phase} />
                  </td>
                  <td>{r.progress}</td>
                  <td>
                    <When t={r.created} now={now} />
                  </td>
                  <td>
                    <When t={r.finished} now={now} />
                  </td>
                  <td>{formatDuration(r.started ? elapsedSeconds(r.started, r.finished, now) : r.durationSeconds)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
