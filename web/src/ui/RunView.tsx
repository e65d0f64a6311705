// One run: its summary, its actions, the graph of its steps, and the
// details of the selected step (/runs/NS/NAME/steps/STEP). Live: each event
// of the run reloads its details (coalesced).
import { Fragment } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { RunDetail } from "../api/types";
import { elapsedSeconds, formatDuration, formatValue } from "../state/format";
import { buildGraph, layoutGraph } from "../state/graph";
import { phaseTone } from "../state/phase";
import { coalesce, type Reloader } from "../state/reload";
import { appPath, runPath, scopeLabel } from "../state/route";
import { ActionBar, useActions } from "./Actions";
import { ErrorNote, Link, Phase, When } from "./bits";
import { useNow } from "./hooks";
import { StepPanel } from "./StepPanel";

interface Props {
  api: Api;
  namespace: string;
  name: string;
  step: string;
  go(href: string): void;
  askToken(): void;
}

export function RunView({ api, namespace, name, step, go, askToken }: Props) {
  const [detail, setDetail] = useState<RunDetail | undefined>(undefined);
  const [error, setError] = useState("");
  const [gone, setGone] = useState(false);
  const now = useNow(1000);
  const reloaderRef = useRef<Reloader | undefined>(undefined);
  const act = useActions({
    api,
    namespace,
    name,
    detail,
    reload: () => reloaderRef.current?.request() ?? Promise.resolve(),
    askToken,
  });

  useEffect(() => {
    const ac = new AbortController();
    const reloader = coalesce(async () => {
      try {
        const d = await api.getRun(namespace, name, ac.signal);
        setDetail(d);
        setError("");
      } catch (e) {
        if (ac.signal.aborted) return;
        setError((e as Error).message);
        if (e instanceof ApiError && e.status === 401) askToken();
        if (e instanceof ApiError && e.status === 404) setGone(true);
      }
    });
    reloaderRef.current = reloader;
    void reloader.request();
    const close = api.events(
      { namespace, run: name },
      {
        run: (r) => {
          if (r.namespace === namespace && r.name === name) void reloader.request();
        },
        deleted: (d) => {
          if (d.namespace === namespace && d.name === name) setGone(true);
        },
      },
    );
    return () => {
      reloader.stop();
      ac.abort();
      close();
    };
  }, [api, namespace, name]);

  const model = useMemo(() => (detail ? buildGraph(detail.steps ?? [], detail.edges ?? []) : undefined), [detail]);
  const selected = step && model ? model.steps.get(step) : undefined;
  const r = detail?.run;

  return (
    <section aria-labelledby="run-h">
      <p>
        <Link href="/" go={go}>
          ← Runs
        </Link>
      </p>
      <div class="title">
        <h1 id="run-h">
          <span class="muted">{namespace}/</span>
          {name}
        </h1>
        {r && <Phase phase={r.phase} />}
      </div>
      {gone && <p class="error">This run was deleted, or does not exist.</p>}
      <ErrorNote error={error} />
      {!detail && !error && <p class="muted">Loading…</p>}
      {r && (
        <dl class="facts">
          <dt>Progress</dt>
          <dd>{r.progress}</dd>
          <dt>Duration</dt>
          <dd>{formatDuration(r.started ? elapsedSeconds(r.started, r.finished, now) : r.durationSeconds)}</dd>
          <dt>Created</dt>
          <dd>
            <When t={r.created} now={now} />
          </dd>
          {r.waitingOn && (
            <>
              <dt>Waiting on</dt>
              <dd>
                <Link href={runPath(namespace, name, r.waitingOn)} go={go}>
                  {r.waitingOn}
                </Link>
              </dd>
            </>
          )}
          {r.appId && (
            <>
              <dt>App</dt>
              <dd>
                <Link href={appPath(namespace, r.appId, r.labels?.[scopeLabel] ?? "")} go={go}>
                  {r.appId}
                </Link>
                {r.category && ` · ${r.category}`}
                <span class="muted"> (its deploys and rollback target)</span>
              </dd>
            </>
          )}
          {r.message && (
            <>
              <dt>Message</dt>
              <dd class="msg">{r.message}</dd>
            </>
          )}
        </dl>
      )}
      {detail && Object.keys(detail.context ?? {}).length > 0 && (
        <details class="context" data-testid="run-context">
          <summary>Context ({Object.keys(detail.context).length})</summary>
          <dl class="values">
            {Object.entries(detail.context).map(([k, v]) => (
              <Fragment key={k}>
                <dt>{k}</dt>
                <dd>
                  <pre>{formatValue(v)}</pre>
                </dd>
              </Fragment>
            ))}
          </dl>
        </details>
      )}
      {detail && <ActionBar detail={detail} act={act} runName={`${namespace}/${name}`} />}
      {act.notes}
      {act.dialog}
      {model && (
        <div class="run-body">
          <Graph model={model} namespace={namespace} name={name} selected={step} go={go} />
          {step && (
            <StepPanel
              key={step}
              api={api}
              namespace={namespace}
              name={name}
              stepName={step}
              step={selected}
              version={r?.resourceVersion ?? ""}
              actions={detail?.actions}
              act={act}
              now={now}
              go={go}
              close={() => go(runPath(namespace, name))}
            />
          )}
        </div>
      )}
    </section>
  );
}

function Graph(props: {
  model: ReturnType<typeof buildGraph>;
  namespace: string;
  name: string;
  selected: string;
  go(href: string): void;
}) {
  const { model } = props;
  const layout = useMemo(() => layoutGraph(model), [model]);
  if (model.steps.size === 0) return <p class="muted">This run has no steps.</p>;
  return (
    <figure class="graph">
      <svg
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="group"
        aria-label="Steps of the run"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
          </marker>
        </defs>
        {layout.boxes
          .filter((b) => b.group)
          .map((b) => {
            const s = model.steps.get(b.name);
            return (
              <a
                key={b.name}
                href={runPath(props.namespace, props.name, b.name)}
                class={`node group tone-${phaseTone(s?.phase ?? "")}${props.selected === b.name ? " selected" : ""}`}
                data-testid="step-node"
                data-step={b.name}
                data-phase={s?.phase || "pending"}
                aria-label={`group ${b.name}: ${s?.phase || "pending"}`}
                onClick={(e) => {
                  e.preventDefault();
                  props.go(runPath(props.namespace, props.name, b.name));
                }}
              >
                <rect x={b.x} y={b.y} width={b.width} height={b.height} rx="8" />
                <text x={b.x + 8} y={b.y + 15}>
                  {b.name} · {s?.phase || "pending"}
                </text>
              </a>
            );
          })}
        {layout.edges.map((e) => (
          <polyline
            key={`${e.edge.from}>${e.edge.to}`}
            class={`edge edge-${e.edge.kind}`}
            points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
            marker-end="url(#arrow)"
          >
            <title>
              {e.edge.of.from} → {e.edge.of.to} ({e.edge.kind})
            </title>
          </polyline>
        ))}
        {layout.boxes
          .filter((b) => !b.group)
          .map((b) => {
            const s = model.steps.get(b.name);
            const phase = s?.phase || "pending";
            return (
              <a
                key={b.name}
                href={runPath(props.namespace, props.name, b.name)}
                class={`node step tone-${phaseTone(phase)}${props.selected === b.name ? " selected" : ""}`}
                data-testid="step-node"
                data-step={b.name}
                data-phase={phase}
                aria-label={`step ${b.name}: ${phase}`}
                aria-current={props.selected === b.name ? "true" : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  props.go(runPath(props.namespace, props.name, b.name));
                }}
              >
                <rect x={b.x} y={b.y} width={b.width} height={b.height} rx="6" />
                <text x={b.x + b.width / 2} y={b.y + 18} text-anchor="middle" class="label">
                  {b.name}
                </text>
                <text x={b.x + b.width / 2} y={b.y + 34} text-anchor="middle" class="sub">
                  {phase}
                </text>
              </a>
            );
          })}
      </svg>
      {model.problems.length > 0 && (
        <figcaption class="muted">
          {model.problems.map((p) => (
            <div key={p}>{p}</div>
          ))}
        </figcaption>
      )}
    </figure>
  );
}
