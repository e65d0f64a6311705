// The app shell: the header, the token form and the current route.
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api/client";
import { parseRoute, type Route } from "../state/route";
import { saveToken, type TokenStore } from "../state/token";
import { AppDeploys } from "./AppDeploys";
import { Link } from "./bits";
import { Catalogue, DefinitionPage } from "./Definitions";
import { RunList } from "./RunList";
import { RunView } from "./RunView";

export interface AppProps {
  api: Api;
  store: TokenStore;
  initialToken: string;
  /** Called with the token after the user saves one (the Api reads it from there). */
  onToken(token: string): void;
}

function current(): Route {
  return parseRoute(location.pathname, location.search);
}

export function App({ api, store, initialToken, onToken }: AppProps) {
  const [route, setRoute] = useState<Route>(current);
  const [token, setToken] = useState(initialToken);
  const [showToken, setShowToken] = useState(false);
  // Bumped when the token changes, so the views load again with it.
  const [epoch, setEpoch] = useState(0);

  useEffect(() => {
    const onPop = () => setRoute(current());
    addEventListener("popstate", onPop);
    return () => removeEventListener("popstate", onPop);
  }, []);

  const go = (href: string, replace = false) => {
    if (replace) history.replaceState(null, "", href);
    else history.pushState(null, "", href);
    setRoute(current());
  };

  const saveAndUse = (t: string) => {
    const saved = saveToken(store, t);
    setToken(saved);
    onToken(saved);
    setShowToken(false);
    setEpoch((e) => e + 1);
  };

  return (
    <>
      <header class="top">
        <Link href="/" go={go} class="brand">
          Stepflow
        </Link>
        <nav aria-label="Main">
          <Link href="/" go={go} current={route.view === "list" || route.view === "run" || route.view === "app"}>
            Runs
          </Link>
          <span class="muted" aria-hidden="true">
            {" · "}
          </span>
          <Link href="/definitions" go={go} current={route.view === "definitions" || route.view === "definition"}>
            Definitions
          </Link>
        </nav>
        <button type="button" class="quiet" aria-expanded={showToken} onClick={() => setShowToken(!showToken)}>
          {token ? "Token set" : "Set token"}
        </button>
      </header>
      {showToken && <TokenForm hasToken={token !== ""} save={saveAndUse} cancel={() => setShowToken(false)} />}
      <main>
        {route.view === "list" && (
          <RunList key={`list-${epoch}`} api={api} search={route.search} go={go} askToken={() => setShowToken(true)} />
        )}
        {route.view === "run" && (
          <RunView
            key={`run-${epoch}-${route.namespace}/${route.name}`}
            api={api}
            namespace={route.namespace}
            name={route.name}
            step={route.step}
            go={go}
            askToken={() => setShowToken(true)}
          />
        )}
        {route.view === "definitions" && (
          <Catalogue key={`defs-${epoch}`} api={api} search={route.search} go={go} askToken={() => setShowToken(true)} />
        )}
        {route.view === "definition" && (
          <DefinitionPage
            key={`def-${epoch}-${route.kind}/${route.namespace}/${route.name}`}
            api={api}
            kind={route.kind}
            namespace={route.namespace}
            name={route.name}
            search={route.search}
            go={go}
            askToken={() => setShowToken(true)}
          />
        )}
        {route.view === "app" && (
          <AppDeploys
            key={`app-${epoch}-${route.namespace}/${route.appId}?${route.scope}`}
            api={api}
            namespace={route.namespace}
            appId={route.appId}
            scope={route.scope}
            go={go}
            askToken={() => setShowToken(true)}
          />
        )}
        {route.view === "notfound" && (
          <section>
            <h1>Not found</h1>
            <p>
              Nothing is shown at <code>{route.path}</code>.{" "}
              <Link href="/" go={go}>
                Back to the runs
              </Link>
            </p>
          </section>
        )}
      </main>
    </>
  );
}

function TokenForm(props: { hasToken: boolean; save(t: string): void; cancel(): void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        props.save(value);
      }}
    >
      <label for="token">
        Bearer token <span class="muted">(kept in this tab only; leave empty to send none)</span>
      </label>
      <input
        id="token"
        type="password"
        autoComplete="off"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        autoFocus
      />
      <button type="submit">{value ? "Use token" : props.hasToken ? "Forget token" : "Send none"}</button>
      <button type="button" class="quiet" onClick={props.cancel}>
        Cancel
      </button>
    </form>
  );
}
