// The definitions catalogue (/definitions?namespace=NS): the step and
// component definitions runs in NS see, and the Workflows of NS, each
// launchable with a context; and a definition's page
// (/definitions/KIND/NS/NAME?namespace=RUNNS) with a form generated from
// its parameter's JSON Schema that launches a one-step run.
import { useEffect, useMemo, useState } from "preact/hooks";
import { type Api, ApiError } from "../api/client";
import type { DefinitionItem, WorkflowItem } from "../api/types";
import { definitionPath, definitionsPath, runPath } from "../state/route";
import { collect, type Field, fieldsOf, initialValues, jsonOrString, typeLabel, type Values } from "../state/schemaform";
import { ErrorNote, Link } from "./bits";

interface Common {
  api: Api;
  go(href: string, replace?: boolean): void;
  askToken(): void;
}

function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], askToken: () => void): { value: T | undefined; error: string } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState("");
  useEffect(() => {
    const ac = new AbortController();
    setValue(undefined);
    setError("");
    load(ac.signal).then(
      (v) => setValue(v),
      (e: unknown) => {
        if (ac.signal.aborted) return;
        setError((e as Error).message);
        if (e instanceof ApiError && e.status === 401) askToken();
      },
    );
    return () => ac.abort();
  }, deps);
  return { value, error };
}

export function Catalogue({ api, go, askToken, search }: Common & { search: string }) {
  const namespace = new URLSearchParams(search).get("namespace")?.trim() ?? "";
  const [ns, setNs] = useState(namespace);
  useEffect(() => setNs(namespace), [namespace]);
  const defs = useLoad((sig) => api.listDefinitions(namespace, sig), [api, namespace], askToken);
  const flows = useLoad((sig) => (namespace ? api.listWorkflows(namespace, sig) : Promise.resolve([])), [api, namespace], askToken);

  return (
    <section aria-labelledby="defs-h">
      <h1 id="defs-h">Definitions</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go(definitionsPath(ns.trim()), true);
        }}
      >
        <label>
          Namespace of the runs
          <input name="namespace" value={ns} placeholder="system definitions only" onInput={(e) => setNs((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      <ErrorNote error={defs.error} />
      {!defs.value && !defs.error && <p class="muted">Loading…</p>}
      {defs.value && defs.value.length === 0 && <p class="muted">No definitions.</p>}
      {defs.value && defs.value.length > 0 && (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">From</th>
              <th scope="col">Ready</th>
              <th scope="col">Description</th>
              <th scope="col">Parameters</th>
            </tr>
          </thead>
          <tbody>
            {defs.value.map((d) => (
              <tr key={`${d.kind}/${d.namespace}/${d.name}`} data-testid="definition-row" data-name={d.name} data-kind={d.kind}>
                <td>
                  <Link href={definitionPath(d.kind, d.namespace, d.name, namespace)} go={go}>
                    {d.name}
                  </Link>
                </td>
                <td>{kindText(d.kind)}</td>
                <td>{d.source === "system" ? `system (${d.namespace})` : d.namespace}</td>
                <td>
                  {d.ready ? "ready" : <span class="error">not ready{d.message && `: ${d.message}`}</span>}
                </td>
                <td>{d.description || <span class="muted">—</span>}</td>
                <td>
                  <ParamNames fields={fieldsOf(d.schema)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Workflows</h2>
      {!namespace && <p class="muted">Choose a namespace to see its Workflows.</p>}
      <ErrorNote error={flows.error} />
      {namespace && flows.value && flows.value.length === 0 && <p class="muted">No Workflows in {namespace}.</p>}
      {namespace && flows.value && flows.value.length > 0 && (
        <ul class="workflows">
          {flows.value.map((w) => (
            <WorkflowRow key={w.name} api={api} go={go} askToken={askToken} w={w} />
          ))}
        </ul>
      )}
    </section>
  );
}

// The top-level parameters in a catalogue row, required ones marked.
function ParamNames({ fields }: { fields: Field[] }) {
  if (fields.length === 0) return <span class="muted">—</span>;
  return (
    <span class="params">
      {fields.map((f, i) => (
        <span key={f.path}>
          {i > 0 && ", "}
          <code>{f.path || "(JSON)"}</code>
          {f.required && (
            <>
              <Req />
              <span class="visually-hidden"> (required)</span>
            </>
          )}
        </span>
      ))}
    </span>
  );
}

function kindText(kind: string): string {
  return kind === "WorkflowStepDefinition" ? "step" : kind === "ComponentDefinition" ? "component" : kind;
}

interface Pair {
  key: string;
  value: string;
}

// A Workflow with its launch form: context as key/value rows (values JSON
// when they parse, else strings).
function WorkflowRow({ api, go, askToken, w }: Common & { w: WorkflowItem }) {
  const [open, setOpen] = useState(false);
  const [pairs, setPairs] = useState<Pair[]>([{ key: "", value: "" }]);
  const [runName, setRunName] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const id = `wf-${w.name}`;
  const set = (i: number, p: Partial<Pair>) => setPairs((ps) => ps.map((x, j) => (j === i ? { ...x, ...p } : x)));

  return (
    <li data-testid="workflow-row" data-name={w.name}>
      <strong>{w.name}</strong> <span class="muted">· {w.steps} steps</span>
      {w.description && <span> · {w.description}</span>}{" "}
      <button type="button" aria-expanded={open} aria-controls={id} onClick={() => setOpen(!open)}>
        Launch…
      </button>
      {open && (
        <form
          id={id}
          class="launch"
          aria-label={`Launch ${w.name}`}
          onSubmit={async (e) => {
            e.preventDefault();
            const context: Record<string, unknown> = {};
            for (const p of pairs) if (p.key.trim()) context[p.key.trim()] = jsonOrString(p.value);
            setBusy(true);
            setError("");
            try {
              const run = await api.launch({ namespace: w.namespace, workflow: w.name, context, ...(runName.trim() ? { name: runName.trim() } : {}) });
              go(runPath(run.namespace, run.name));
            } catch (err) {
              setError((err as Error).message);
              if (err instanceof ApiError && err.status === 401) askToken();
            } finally {
              setBusy(false);
            }
          }}
        >
          <fieldset>
            <legend>Context</legend>
            {pairs.map((p, i) => (
              <div class="pair" key={i}>
                <label>
                  Key
                  <input value={p.key} onInput={(e) => set(i, { key: (e.target as HTMLInputElement).value })} />
                </label>
                <label>
                  Value <span class="muted">(JSON, else text)</span>
                  <input value={p.value} onInput={(e) => set(i, { value: (e.target as HTMLInputElement).value })} />
                </label>
              </div>
            ))}
            <button type="button" class="quiet" onClick={() => setPairs((ps) => [...ps, { key: "", value: "" }])}>
              Add a value
            </button>
          </fieldset>
          <RunName value={runName} set={setRunName} prefix={w.name} />
          <button type="submit" disabled={busy}>
            Launch {w.name}
          </button>
          <ErrorNote error={error} />
        </form>
      )}
    </li>
  );
}

function RunName({ value, set, prefix }: { value: string; set(v: string): void; prefix: string }) {
  return (
    <label class="field">
      <span>
        Run name <span class="muted">(optional; else {prefix}-…)</span>
      </span>
      <input name="run-name" data-testid="run-name" value={value} onInput={(e) => set((e.target as HTMLInputElement).value)} />
    </label>
  );
}

export function DefinitionPage({
  api,
  go,
  askToken,
  kind,
  namespace,
  name,
  search,
}: Common & { kind: string; namespace: string; name: string; search: string }) {
  const runNs = new URLSearchParams(search).get("namespace")?.trim() ?? "";
  const defs = useLoad((sig) => api.listDefinitions(namespace, sig), [api, namespace], askToken);
  const def = defs.value?.find((d) => d.kind === kind && d.name === name && d.namespace === namespace);

  return (
    <section aria-labelledby="def-h">
      <p>
        <Link href={definitionsPath(runNs)} go={go}>
          ← Definitions
        </Link>
      </p>
      <h1 id="def-h">
        {name} <span class="muted">· {kindText(kind)} definition in {namespace}</span>
      </h1>
      <ErrorNote error={defs.error} />
      {!defs.value && !defs.error && <p class="muted">Loading…</p>}
      {defs.value && !def && <p class="error">There is no {kind} named “{name}” in {namespace}.</p>}
      {def && (
        <>
          {def.description && <p>{def.description}</p>}
          {!def.ready && <p class="error">Not ready{def.message && `: ${def.message}`}</p>}
          {def.kind === "WorkflowStepDefinition" ? (
            <LaunchForm api={api} go={go} askToken={askToken} def={def} runNamespace={runNs || (def.source === "namespace" ? def.namespace : "default")} />
          ) : (
            <Parameters fields={fieldsOf(def.schema)} />
          )}
        </>
      )}
    </section>
  );
}

// A component definition's parameters: listed, not launched (components are
// parts of applications, not steps).
function Parameters({ fields }: { fields: Field[] }) {
  const rows: Field[] = [];
  const walk = (fs: Field[]) => {
    for (const f of fs) {
      rows.push(f);
      if (f.kind === "object") walk(f.fields);
    }
  };
  walk(fields);
  return (
    <>
      <h2>Parameters</h2>
      {rows.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <table class="small">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Required</th>
              <th scope="col">Default</th>
              <th scope="col">Description</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((f) => (
              <tr key={f.path}>
                <td>
                  <code>{f.path || "(parameter)"}</code>
                </td>
                <td>{f.kind === "enum" ? f.options.map((o) => JSON.stringify(o)).join(" | ") : typeLabel(f)}</td>
                <td>{f.required ? "yes" : ""}</td>
                <td>{f.hasDefault ? JSON.stringify(f.default) : ""}</td>
                <td>{f.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function LaunchForm({ api, go, askToken, def, runNamespace }: Common & { def: DefinitionItem; runNamespace: string }) {
  const fields = useMemo(() => fieldsOf(def.schema), [def]);
  const [values, setValues] = useState<Values>(() => initialValues(fields));
  const [ns, setNs] = useState(runNamespace);
  const [runName, setRunName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (path: string, v: string) => setValues((vs) => ({ ...vs, [path]: v }));

  return (
    <form
      class="launch"
      aria-labelledby="launch-h"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        const got = collect(fields, values);
        const nsErr: Record<string, string> = ns.trim() ? {} : { "run-namespace": "required" };
        setErrors({ ...got.errors, ...nsErr });
        if (Object.keys(got.errors).length > 0 || !ns.trim()) {
          setError("Some fields need a change (see the messages beside them).");
          return;
        }
        setBusy(true);
        setError("");
        try {
          const run = await api.launch({
            namespace: ns.trim(),
            definition: def.name,
            properties: got.properties,
            ...(runName.trim() ? { name: runName.trim() } : {}),
          });
          go(runPath(run.namespace, run.name));
        } catch (err) {
          setError((err as Error).message);
          if (err instanceof ApiError && err.status === 401) askToken();
        } finally {
          setBusy(false);
        }
      }}
    >
      <h2 id="launch-h">Launch a run of {def.name}</h2>
      <p class="muted">
        Fields marked <span aria-hidden="true">*</span> are required. Empty optional fields are left out, so the definition's
        defaults apply.
      </p>
      <label class="field">
        <span>
          Namespace of the run <Req />
        </span>
        <input
          name="run-namespace"
          data-testid="run-namespace"
          value={ns}
          required
          aria-invalid={errors["run-namespace"] !== undefined}
          onInput={(e) => setNs((e.target as HTMLInputElement).value)}
        />
        {errors["run-namespace"] && <span class="error">{errors["run-namespace"]}</span>}
      </label>
      <RunName value={runName} set={setRunName} prefix={def.name} />
      {fields.length === 0 && <p class="muted">This definition takes no parameter.</p>}
      <Fields fields={fields} values={values} errors={errors} set={set} />
      <button type="submit" data-testid="launch" disabled={busy}>
        Launch
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

function Req() {
  return (
    <span class="req" aria-hidden="true">
      *
    </span>
  );
}

function Fields(props: { fields: Field[]; values: Values; errors: Record<string, string>; set(path: string, v: string): void }) {
  return (
    <>
      {props.fields.map((f) =>
        f.kind === "object" ? (
          <fieldset key={f.path} data-testid={`field-${f.path}`}>
            <legend>
              {f.name}
              {f.required && <Req />}
            </legend>
            {f.description && <p class="muted">{f.description}</p>}
            <Fields {...props} fields={f.fields} />
          </fieldset>
        ) : (
          <Input key={f.path} f={f} value={props.values[f.path] ?? ""} error={props.errors[f.path] ?? ""} set={(v) => props.set(f.path, v)} />
        ),
      )}
    </>
  );
}

function Input({ f, value, error, set }: { f: Field; value: string; error: string; set(v: string): void }) {
  const id = `f-${f.path || "properties"}`;
  const testid = `field-${f.path || "properties"}`;
  const hint = [f.description, f.hasDefault ? `default ${JSON.stringify(f.default)}` : ""].filter((x) => x).join(" · ");
  const described = [hint ? `${id}-hint` : "", error ? `${id}-err` : ""].filter((x) => x).join(" ") || undefined;
  const common = {
    id,
    name: f.path || "properties",
    "data-testid": testid,
    "aria-invalid": error !== "",
    "aria-required": f.required,
    "aria-describedby": described,
  };
  const text = (e: Event) => set((e.target as HTMLInputElement).value);
  let control;
  switch (f.kind) {
    case "boolean":
      control = <input {...common} type="checkbox" checked={value === "true"} onChange={(e) => set((e.target as HTMLInputElement).checked ? "true" : "false")} />;
      break;
    case "enum":
      control = (
        <select {...common} value={value} onChange={text}>
          <option value="">{f.required ? "choose…" : "(default)"}</option>
          {f.options.map((o, i) => (
            <option key={i} value={String(i)}>
              {typeof o === "string" ? o : JSON.stringify(o)}
            </option>
          ))}
        </select>
      );
      break;
    case "lines":
    case "json":
      control = <textarea {...common} rows={f.kind === "json" ? 4 : 3} value={value} onInput={text} spellcheck={false} />;
      break;
    default:
      control = <input {...common} inputMode={f.kind === "number" || f.kind === "integer" ? "decimal" : undefined} value={value} onInput={text} />;
  }
  return (
    <div class={`field${f.kind === "boolean" ? " check" : ""}`}>
      <label for={id}>
        {f.name}
        {f.required && <Req />} <span class="muted">({typeLabel(f)})</span>
      </label>
      {control}
      {hint && (
        <span id={`${id}-hint`} class="muted hint">
          {hint}
        </span>
      )}
      {error && (
        <span id={`${id}-err`} class="error">
          {error}
        </span>
      )}
    </div>
  );
}
