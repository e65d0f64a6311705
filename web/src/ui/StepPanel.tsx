// The selected step's details beside the graph: what the run's detail says
// of it (phase, times, message, properties, inputs, outputs), and from
// /ui/api/runs/NS/NAME/steps/STEP its attempts, the op calls of the
// current attempt, the definition's template, and its #Log lines followed
// live (one EventSource, closed when the panel closes or the step changes).
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { Actions, LogLine, StepDetail, StepNode } from "../api/types";
import { enabled, question, retryFromAction } from "../state/actions";
import { elapsedSeconds, formatAbsolute, formatDuration, formatValue } from "../state/format";
import { appendLog, refollow } from "../state/logs";
import { definitionPath } from "../state/route";
import type { ActionAsk } from "./Actions";
import { ErrorNote, Link, Phase, When } from "./bits";

interface Props {
  api: Api;
  namespace: string;
  name: string;
  stepName: string;
  /** The step as the run's detail shows it; undefined when the run has no such step. */
  step: StepNode | undefined;
  /** The run's resourceVersion: the details are loaded again when it changes. */
  version: string;
  actions: Actions | undefined;
  act: ActionAsk;
  now: Date;
  go(href: string): void;
  close(): void;
}

export function StepPanel(props: Props) {
  const { api, namespace, name, stepName } = props;
  const s = props.step;
  const [detail, setDetail] = useState<StepDetail | undefined>(undefined);
  const [error, setError] = useState("");

  useEffect(() => {
    setDetail(undefined);
    setError("");
  }, [namespace, name, stepName]);

  useEffect(() => {
    if (!s) return;
    const ac = new AbortController();
    api.getStep(namespace, name, stepName, ac.signal).then(
      (d) => {
        setDetail(d);
        setError("");
      },
      (e: unknown) => {
        if (ac.signal.aborted) return;
        setError(e instanceof ApiError && e.status === 404 ? "" : (e as Error).message);
      },
    );
    return () => ac.abort();
  }, [api, namespace, name, stepName, props.version, s !== undefined]);

  const canRetryFrom = enabled(props.actions, "retry-from", stepName);

  return (
    <aside class="panel" aria-labelledby="step-h" data-testid="step-panel" data-step={stepName}>
      <div class="title">
        <h2 id="step-h">{stepName}</h2>
        <button type="button" class="quiet" onClick={props.close} aria-label="Close the step's details">
          ✕
        </button>
      </div>
      {!s && <p class="error">This run has no step named “{stepName}”.</p>}
      {s && (
        <>
          <dl class="facts">
            <dt>Phase</dt>
            <dd>
              <Phase phase={s.phase} />
              {s.reason && <span class="muted"> {s.reason}</span>}
            </dd>
            <dt>Type</dt>
            <dd>{s.type}</dd>
            {s.parent && (
              <>
                <dt>Group</dt>
                <dd>{s.parent}</dd>
              </>
            )}
            <dt>Attempt</dt>
            <dd>{s.attempt}</dd>
            <dt>Started</dt>
            <dd>
              <When t={s.started} now={props.now} />
            </dd>
            <dt>Finished</dt>
            <dd>
              <When t={s.finished} now={props.now} />
            </dd>
            {s.started && (
              <>
                <dt>Duration</dt>
                <dd>{formatDuration(elapsedSeconds(s.started, s.finished, props.now))}</dd>
              </>
            )}
            {s.dependsOn?.length > 0 && (
              <>
                <dt>Depends on</dt>
                <dd>{s.dependsOn.join(", ")}</dd>
              </>
            )}
          </dl>
          <div class="actions">
            <button
              type="button"
              data-testid="action-retry-from"
              disabled={!canRetryFrom || props.act.busy !== ""}
              title={canRetryFrom ? undefined : "Not valid in the run's state now"}
              onClick={() => props.act.ask(retryFromAction, { step: stepName }, question("retry-from", `${namespace}/${name}`, stepName))}
            >
              {retryFromAction.label}
            </button>
          </div>
          {s.message && (
            <>
              <h3>Message</h3>
              <pre class="msg" data-testid="step-message">
                {s.message}
              </pre>
            </>
          )}
          <Logs api={api} namespace={namespace} name={name} stepName={stepName} phase={s.phase} version={props.version} />
          <ErrorNote error={error} />
          {detail && <Attempts detail={detail} now={props.now} />}
          {detail && <Calls detail={detail} />}
          <Values title="Properties" values={Object.entries(s.properties ?? {}).map(([n, value]) => ({ name: n, value }))} />
          <Values title="Inputs" values={s.inputs ?? []} />
          <Values title="Outputs" values={s.outputs ?? []} />
          {detail?.definition && (
            <details class="definition">
              <summary>
                Definition: {detail.definition.kind} {detail.definition.name}{" "}
                <span class="muted">({detail.definition.source === "system" ? "system" : detail.definition.namespace})</span>
              </summary>
              <p>
                <Link href={definitionPath(detail.definition.kind, detail.definition.namespace, detail.definition.name, namespace)} go={props.go}>
                  Open the definition
                </Link>
                {detail.definition.description && <span class="muted"> · {detail.definition.description}</span>}
              </p>
              <pre class="template">{detail.definition.template}</pre>
            </details>
          )}
        </>
      )}
    </aside>
  );
}

function Attempts({ detail, now }: { detail: StepDetail; now: Date }) {
  const attempts = [...(detail.attempts ?? [])].sort((a, b) => b.attempt - a.attempt);
  return (
    <>
      <h3>Attempts</h3>
      {attempts.length === 0 ? (
        <p class="muted">none yet</p>
      ) : (
        <table class="small">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Phase</th>
              <th scope="col">Started</th>
              <th scope="col">Finished</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map((a) => (
              <Fragment key={a.id || a.attempt}>
                <tr data-testid="attempt" data-attempt={a.attempt}>
                  <td>{a.attempt}</td>
                  <td>
                    <Phase phase={a.phase} />
                    {a.reason && <span class="muted"> {a.reason}</span>}
                  </td>
                  <td>
                    <When t={a.started} now={now} />
                  </td>
                  <td>
                    <When t={a.finished} now={now} />
                  </td>
                </tr>
                {a.message && (
                  <tr>
                    <td />
                    <td colSpan={3} class="msg">
                      {a.message}
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Calls({ detail }: { detail: StepDetail }) {
  const calls = detail.calls ?? [];
  return (
    <>
      <h3>Op calls of this attempt</h3>
      {calls.length === 0 ? (
        <p class="muted">none recorded</p>
      ) : (
        <table class="small">
          <thead>
            <tr>
              <th scope="col">Op</th>
              <th scope="col">Path</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {calls.map((c) => (
              <tr key={c.path} data-testid="op-call">
                <td>{c.op}</td>
                <td>
                  <code>{c.path}</code>
                </td>
                <td>
                  {c.state}
                  {c.message && <div class="msg">{c.message}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

// The step's #Log lines, followed live. The stream starts over on each
// (re)open; after its end it is opened again only when the step, as the
// run now shows it, is not finished.
function Logs(props: { api: Api; namespace: string; name: string; stepName: string; phase: string; version: string }) {
  const { api, namespace, name, stepName } = props;
  const [lines, setLines] = useState<LogLine[]>([]);
  const [ended, setEnded] = useState(false);
  const [gen, setGen] = useState(0);

  useEffect(() => {
    setLines([]);
    setEnded(false);
    return api.stepLogs(namespace, name, stepName, {
      open: () => setLines([]),
      log: (l) => setLines((ls) => appendLog(ls, l)),
      end: () => setEnded(true),
    });
  }, [api, namespace, name, stepName, gen]);

  useEffect(() => {
    if (refollow(ended, props.phase)) setGen((g) => g + 1);
  }, [props.version]);

  return (
    <>
      <h3>Log</h3>
      {lines.length === 0 ? (
        <p class="muted">{ended ? "no lines" : "no lines yet"}</p>
      ) : (
        <ol class="logs" aria-label={`Log of ${stepName}`}>
          {lines.map((l, i) => (
            <li key={i} data-testid="log-line">
              {l.time && (
                <time dateTime={l.time} title={formatAbsolute(l.time)}>
                  {formatAbsolute(l.time).slice(11)}{" "}
                </time>
              )}
              {l.line}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

function Values({ title, values }: { title: string; values: { name: string; value: unknown }[] }) {
  return (
    <>
      <h3>{title}</h3>
      {values.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <dl class="values">
          {values.map((v) => (
            <Fragment key={v.name}>
              <dt>{v.name}</dt>
              <dd>
                <pre>{formatValue(v.value)}</pre>
              </dd>
            </Fragment>
          ))}
        </dl>
      )}
    </>
  );
}
