import { describe, expect, it } from "vitest";
import { authHeaders, loadToken, saveToken, type TokenStore, withAccessToken } from "./token";

function store(): TokenStore & { m: Map<string, string> } {
  const m = new Map<string, string>();
  return {
    m,
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

describe("token", () => {
  it("saves a pasted token trimmed and without a Bearer prefix, and loads it back", () => {
    const s = store();
    expect(loadToken(s)).toBe("");
    expect(saveToken(s, "  Bearer abc.def \n")).toBe("abc.def");
    expect(loadToken(s)).toBe("abc.def");
  });
  it("removes the token when an empty one is saved", () => {
    const s = store();
    saveToken(s, "x");
    saveToken(s, "   ");
    expect(s.m.size).toBe(0);
    expect(loadToken(s)).toBe("");
  });
  it("sends it as a Bearer header, and nothing without one", () => {
    expect(authHeaders("t")).toEqual({ Accept: "application/json", Authorization: "Bearer t" });
    expect(authHeaders("")).toEqual({ Accept: "application/json" });
  });
  it("adds access_token to an EventSource URL, escaped", () => {
    expect(withAccessToken("/ui/api/events", "")).toBe("/ui/api/events");
    expect(withAccessToken("/ui/api/events", "a+b/c")).toBe("/ui/api/events?access_token=a%2Bb%2Fc");
    expect(withAccessToken("/ui/api/events?namespace=x", "t")).toBe("/ui/api/events?namespace=x&access_token=t");
  });
});
