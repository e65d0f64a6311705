// Builds the single-page app into dist/, which web/embed.go embeds into
// `stepflow server`. `npm run dev` proxies the UI's API to a local server
// (STEPFLOW_API, default http://127.0.0.1:8080, as `make run` starts it).
import { defineConfig } from "vitest/config";

const api = process.env.STEPFLOW_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
  },
  server: {
    proxy: { "/ui/api": { target: api, changeOrigin: false } },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
