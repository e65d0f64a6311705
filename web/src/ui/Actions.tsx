// The run's actions: the buttons (enabled as RunDetail.actions says), the
// set-context form, and the confirmation before anything is sent. Each
// action is sent with If-Match: the run's resourceVersion, so one taken on
// a run that changed meanwhile is refused (409) rather than applied to a
// state the user did not see; success or a refusal reloads the run.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { RunDetail, Verb } from "../api/types";
import { type ActionSpec, contextAction, contextBody, enabled, question, runActions } from "../state/actions";
import { Confirm } from "./Confirm";

export interface ActionAsk {
  /** Opens the confirmation of an action; confirming sends it. */
  ask(spec: ActionSpec, body: unknown, text: string): void;
  /** The verb being sent, or "". */
  busy: Verb | "";
}

interface Pending {
  spec: ActionSpec;
  body: unknown;
  text: string;
}

/**
 * The state of the run's actions: ask opens a confirmation, dialog is it
 * (render it once), notes are the inline result or error.
 */
export function useActions(opts: {
  api: Api;
  namespace: string;
  name: string;
  detail: RunDetail | undefined;
  reload(): Promise<void>;
  askToken(): void;
}): ActionAsk & { dialog: ComponentChildren; notes: ComponentChildren } {
  const [pending, setPending] = useState<Pending | undefined>(undefined);
  const [busy, setBusy] = useState<Verb | "">("");
  const [error, setError] = useState("");
  const [done, setDone] = useState("");

  const send = async (p: Pending) => {
    setPending(undefined);
    setBusy(p.spec.verb);
    setError("");
    setDone("");
    try {
      await opts.api.act(opts.namespace, opts.name, p.spec.verb, p.body, opts.detail?.run.resourceVersion);
      setDone(`${p.spec.label}: sent.`);
      await opts.reload();
    } catch (e) {
      setError((e as Error).message);
      if (e instanceof ApiError && e.status === 401) opts.askToken();
      // A refusal because the run changed or is in another state: show it as it is now.
      if (e instanceof ApiError && e.status === 409) void opts.reload();
    } finally {
      setBusy("");
    }
  };

  return {
    ask: (spec, body, text) => {
      setError("");
      setDone("");
      setPending({ spec, body, text });
    },
    busy,
    dialog: pending && (
      <Confirm
        title={`${pending.spec.label}?`}
        text={pending.text}
        confirmLabel={pending.spec.confirm}
        danger={pending.spec.verb === "terminate"}
        confirm={() => void send(pending)}
        cancel={() => setPending(undefined)}
      />
    ),
    notes: (
      <>
        {error && (
          <p class="error" role="alert" data-testid="action-error">
            {error}
          </p>
        )}
        {done && (
          <p class="muted" role="status">
            {done}
          </p>
        )}
        {busy && (
          <p class="muted" role="status">
            Sending {busy}…
          </p>
        )}
      </>
    ),
  };
}

/** The run-wide action buttons and the set-context form. */
export function ActionBar({ detail, act, runName }: { detail: RunDetail; act: ActionAsk; runName: string }) {
  const [ctxOpen, setCtxOpen] = useState(false);
  const a = detail.actions;
  return (
    <div class="actions-wrap">
      <div class="actions" role="group" aria-label="Actions on the run">
        {runActions.map((spec) => {
          const on = enabled(a, spec.verb);
          return (
            <button
              key={spec.verb}
              type="button"
              data-testid={`action-${spec.verb}`}
              class={spec.verb === "terminate" ? "danger" : undefined}
              disabled={!on || act.busy !== ""}
              title={on ? undefined : "Not valid in the run's state now"}
              onClick={() => act.ask(spec, {}, question(spec.verb, runName))}
            >
              {spec.label}
            </button>
          );
        })}
        <button
          type="button"
          data-testid="action-context"
          disabled={!enabled(a, "context") || act.busy !== ""}
          title={enabled(a, "context") ? undefined : "Not valid in the run's state now"}
          aria-expanded={ctxOpen}
          aria-controls="context-form"
          onClick={() => setCtxOpen(!ctxOpen)}
        >
          {contextAction.label}…
        </button>
      </div>
      {ctxOpen && enabled(a, "context") && (
        <ContextForm
          submit={(context) => act.ask(contextAction, { context }, question("context", runName, "", context))}
          close={() => setCtxOpen(false)}
        />
      )}
    </div>
  );
}

function ContextForm(props: { submit(context: Record<string, unknown>): void; close(): void }) {
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  return (
    <form
      id="context-form"
      class="context-form"
      aria-label="Set a context value"
      onSubmit={(e) => {
        e.preventDefault();
        const b = contextBody(key, value);
        if (!b.ok) {
          setError(b.error);
          return;
        }
        setError("");
        props.submit(b.context);
      }}
    >
      <label>
        Key
        <input
          data-testid="context-key"
          value={key}
          autoFocus
          aria-invalid={error !== ""}
          aria-describedby={error ? "context-error" : undefined}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Value <span class="muted">(JSON, else text)</span>
        <input data-testid="context-value" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit" data-testid="context-submit">
        Set…
      </button>
      <button type="button" class="quiet" onClick={props.close}>
        Close
      </button>
      {error && (
        <span id="context-error" class="error">
          {error}
        </span>
      )}
    </form>
  );
}
