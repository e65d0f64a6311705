// The page's routes, as deep links: "/" (the run list, filters in the
// query), "/runs/NS/NAME" and "/runs/NS/NAME/steps/STEP".

export type Route =
  | { view: "list"; search: string }
  | { view: "run"; namespace: string; name: string; step: string }
  | { view: "notfound"; path: string };

/** Reads a route from a location's pathname and search. */
export function parseRoute(pathname: string, search = ""): Route {
  const parts = pathname.split("/").filter((p) => p !== "");
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "runs")) return { view: "list", search };
  if (parts[0] === "runs" && (parts.length === 3 || (parts.length === 5 && parts[3] === "steps"))) {
    try {
      const [namespace, name] = [decodeURIComponent(parts[1]), decodeURIComponent(parts[2])];
      const step = parts.length === 5 ? decodeURIComponent(parts[4]) : "";
      return { view: "run", namespace, name, step };
    } catch {
      return { view: "notfound", path: pathname };
    }
  }
  return { view: "notfound", path: pathname };
}

/** The path of a run, or of one of its steps. */
export function runPath(namespace: string, name: string, step = ""): string {
  const base = `/runs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
  return step ? `${base}/steps/${encodeURIComponent(step)}` : base;
}
