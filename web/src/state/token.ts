// The bearer token the user pasted, kept for this tab only
// (sessionStorage), and how it is sent: an Authorization header for fetch,
// `access_token` in the URL for EventSource, which cannot set headers.

const key = "stepflow.token";

/** The part of Storage the token needs; sessionStorage in the page, a Map-backed fake in tests. */
export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function loadToken(s: TokenStore): string {
  return s.getItem(key) ?? "";
}

/** Saves a token, trimmed, with a leading "Bearer " dropped; an empty one is removed. */
export function saveToken(s: TokenStore, token: string): string {
  const t = token.trim().replace(/^Bearer\s+/i, "");
  if (t) s.setItem(key, t);
  else s.removeItem(key);
  return t;
}

/** The headers of an API request with this token ("" sends none: --auth none or an OIDC proxy). */
export function authHeaders(token: string): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json" };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

/** A URL with access_token added to its query when a token is set. */
export function withAccessToken(url: string, token: string): string {
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(token)}`;
}
