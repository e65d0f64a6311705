// The page's routes, as deep links: "/" (the run list, filters in the
// query), "/runs/NS/NAME", "/runs/NS/NAME/steps/STEP", "/definitions"
// (the catalogue, ?namespace=), "/definitions/KIND/NS/NAME" (a definition
// and its launch form) and "/apps/NS/APPID" (an app's DEPLOY runs,
// ?scope= those of one scope).

export type Route =
  | { view: "list"; search: string }
  | { view: "run"; namespace: string; name: string; step: string }
  | { view: "definitions"; search: string }
  | { view: "definition"; kind: string; namespace: string; name: string; search: string }
  | { view: "app"; namespace: string; appId: string; scope: string }
  | { view: "notfound"; path: string };

/** Reads a route from a location's pathname and search. */
export function parseRoute(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter((p) => p !== "");
  let seg: string[];
  try {
    seg = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { view: "notfound", path: pathname };
  }
  const n = seg.length;
  if (n === 0 || (n === 1 && seg[0] === "runs")) return { view: "list", search };
  if (seg[0] === "runs" && (n === 3 || (n === 5 && seg[3] === "steps"))) {
    return { view: "run", namespace: seg[1], name: seg[2], step: n === 5 ? seg[4] : "" };
  }
  if (seg[0] === "definitions" && n === 1) return { view: "definitions", search };
  if (seg[0] === "definitions" && n === 4) return { view: "definition", kind: seg[1], namespace: seg[2], name: seg[3], search };
  if (seg[0] === "apps" && n === 3) {
    return { view: "app", namespace: seg[1], appId: seg[2], scope: new URLSearchParams(search).get("scope") ?? "" };
  }
  return { view: "notfound", path: pathname };
}

/** The path of a run, or of one of its steps. */
export function runPath(namespace: string, name: string, step = ""): string {
  const base = `/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  return step ? `${base}/steps/${encodeURIComponent(step)}` : base;
}

/** The catalogue, for runs in namespace ("" = the system namespace's definitions). */
export function definitionsPath(namespace = ""): string {
  return namespace ? `/definitions?namespace=${encodeURIComponent(namespace)}` : "/definitions";
}

/** A definition's page; runNamespace is where its form launches runs (kept as ?namespace=). */
export function definitionPath(kind: string, namespace: string, name: string, runNamespace = ""): string {
  const p = `/definitions/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  return runNamespace ? `${p}?namespace=${encodeURIComponent(runNamespace)}` : p;
}

/** The label of a run's scope: a rollback returns to a run of the same scope. */
export const scopeLabel = "stepflow.dev/scope";

/** An app's gray-release view, of one scope's runs when scope is set. */
export function appPath(namespace: string, appId: string, scope = ""): string {
  const p = `/apps/${encodeURIComponent(namespace)}/${encodeURIComponent(appId)}`;
  return scope ? `${p}?scope=${encodeURIComponent(scope)}` : p;
}
