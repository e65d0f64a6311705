// The entry point: wires the real browser objects (fetch, EventSource,
// sessionStorage, history) into the app.
import { render } from "preact";
import { Api } from "./api/client";
import { loadToken } from "./state/token";
import { App } from "./ui/App";
import "./styles.css";

const root = document.getElementById("app");
if (root) {
  let token = loadToken(sessionStorage);
  const api = new Api(() => token);
  render(
    <App
      api={api}
      store={sessionStorage}
      initialToken={token}
      onToken={(t) => {
        token = t;
      }}
    />,
    root,
  );
}
