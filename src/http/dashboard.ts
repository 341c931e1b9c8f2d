import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hono } from "hono";
import type { AuthEnv } from "./auth.js";

/**
 * The dashboard's own policy: scripts and styles only from this origin (no inline code), API
 * calls only to this origin, nothing embedded elsewhere. Built assets contain no inline code.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

/**
 * Where the built dashboard lives: `dist/dashboard` beside the compiled `dist/http`, or, when this
 * module runs from `src/http` (tsx), the package's `dist/dashboard` after `npm run build`.
 */
export function dashboardDir(): string | null {
  const candidates = [
    new URL("../dashboard/", import.meta.url),
    new URL("../../dist/dashboard/", import.meta.url),
  ];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    // src/dashboard holds the sources (an index.html too): only a build has an assets folder.
    if (existsSync(join(dir, "index.html")) && existsSync(join(dir, "assets"))) return dir;
  }
  return null;
}

const securityHeaders = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const NOT_BUILT = `<!doctype html><title>Loom</title><p>The Loom dashboard is not built. Run <code>npm run build</code>.</p>`;

/** Serves the dashboard shell at `/` and its hashed files at `/assets/*`. No token needed. */
export function dashboardRoutes(app: Hono<AuthEnv>, dir: string | null = dashboardDir()): void {
  let shell: Promise<string> | null = null;
  const index = (): Promise<string> =>
    (shell ??= dir ? readFile(join(dir, "index.html"), "utf8") : Promise.resolve(NOT_BUILT));

  const serveShell = async () =>
    new Response(await index(), {
      status: dir ? 200 : 503,
      headers: {
        ...securityHeaders,
        "content-type": "text/html; charset=utf-8",
        // The shell names the current hashed assets: always revalidate it.
        "cache-control": "no-cache",
      },
    });
  app.get("/", serveShell);
  app.get("/index.html", serveShell);

  app.get("/assets/*", async (c) => {
    if (!dir) return c.notFound();
    const rel = normalize(decodeURIComponent(c.req.path).replace(/^\/+/, ""));
    const file = join(dir, rel);
    // Only files inside the assets folder; `..` and absolute paths fall through to 404.
    if (!file.startsWith(join(dir, "assets") + sep)) return c.notFound();
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return c.notFound();
    }
    return new Response(new Uint8Array(body), {
      status: 200,
      headers: {
        ...securityHeaders,
        "content-type": TYPES[extname(file)] ?? "application/octet-stream",
        // File names carry a content hash: cache them for good.
        "cache-control": "public, max-age=31536000, immutable",
      },
    });
  });
}
