import { defineConfig } from "vite";

// Run as `vite build src/dashboard`: the root is this folder. The output goes next to the
// compiled library (dist/dashboard) so src/http/dashboard.ts finds it from dist and from src.
export default defineConfig({
  // Relative asset URLs: the dashboard keeps working when the Hono app is mounted under a prefix.
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../../dist/dashboard",
    emptyOutDir: true,
    assetsDir: "assets",
    // No inline <script> or data: URLs: the server's CSP forbids both.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
