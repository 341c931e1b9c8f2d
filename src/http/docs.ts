/**
 * `/docs`: a small, self-contained API reference rendered from the OpenAPI document by the server
 * itself. No CDN, no external script or stylesheet: one HTML page with inline CSS.
 */

type Json = Record<string, unknown>;

const esc = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

const str = (v: unknown, fallback = ""): string =>
  typeof v === "string" || typeof v === "number" ? String(v) : fallback;

const pretty = (v: unknown): string => esc(JSON.stringify(v, null, 2) ?? "");

function schemaOf(content: unknown): unknown {
  if (!content || typeof content !== "object") return undefined;
  const first = Object.values(content as Json)[0] as Json | undefined;
  return first?.["schema"];
}

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

export function renderDocs(doc: Json): string {
  const info = (doc["info"] ?? {}) as Json;
  const paths = (doc["paths"] ?? {}) as Record<string, Json>;
  const ops: string[] = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const params = (op["parameters"] ?? []) as Json[];
      const body = op["requestBody"] as Json | undefined;
      const responses = (op["responses"] ?? {}) as Record<string, Json>;
      const paramRows = params
        .map(
          (p) =>
            `<tr><td><code>${esc(str(p["name"]))}</code></td><td>${esc(str(p["in"]))}</td><td>${p["required"] ? "yes" : ""}</td><td>${esc(str(p["description"]))}</td></tr>`,
        )
        .join("");
      const responseItems = Object.entries(responses)
        .map(([status, r]) => `<li><code>${esc(status)}</code> ${esc(str(r["description"]))}</li>`)
        .join("");
      ops.push(`<details class="op" id="${esc(`${method}-${path}`)}">
<summary><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code> — ${esc(str(op["summary"]))}</summary>
${op["description"] ? `<p>${esc(str(op["description"]))}</p>` : ""}
${paramRows ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th></th></tr>${paramRows}</table>` : ""}
${body ? `<h4>Request body</h4><pre>${pretty(schemaOf(body["content"]))}</pre>` : ""}
<h4>Responses</h4><ul>${responseItems}</ul>
</details>`);
    }
  }
  const schemas = ((doc["components"] as Json | undefined)?.["schemas"] ?? {}) as Json;
  const schemaBlocks = Object.entries(schemas)
    .map(
      ([n, s]) =>
        `<details class="op" id="schema-${esc(n)}"><summary><code>${esc(n)}</code></summary><pre>${pretty(s)}</pre></details>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(str(info["title"], "API"))} — reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f5f5f7;padding:.75rem;overflow:auto;border-radius:6px}
.op{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.5rem .75rem}
.op summary{cursor:pointer}
.m{display:inline-block;min-width:3.5rem;font-weight:600}
.get{color:#0a7}.post{color:#06c}.delete{color:#c33}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left}
</style></head><body>
<h1>${esc(str(info["title"], "API"))} <small>${esc(str(info["version"]))}</small></h1>
<p>${esc(str(info["description"]))}</p>
<p>The machine-readable document is at <a href="openapi.json">openapi.json</a>.</p>
<h2>Operations</h2>
${ops.join("\n")}
<h2>Schemas</h2>
${schemaBlocks}
</body></html>`;
}
