import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type Harness } from "../http/support.js";
import { until } from "../support/sqlite.js";
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot } from "./support.js";

type Json = Record<string, unknown>;

/** A handler that runs until its task is cancelled. */
const blockUntilAborted = (_task: unknown, ctx: { signal: AbortSignal }) =>
  new Promise<never>((_, reject) => {
    ctx.signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
  });

describe("dashboard in a real Chromium", () => {
  let h: Harness;
  let browser: Browser;
  let release: () => void = () => {};
  const submit = async (body: Json): Promise<Json> => {
    const res = await h.call("/api/v1/tasks", { body });
    expect(res.status).toBe(201);
    return (await res.json()) as Json;
  };
  const getTask = async (id: string) =>
    (await (await h.call(`/api/v1/tasks/${id}`)).json()) as Json;

  beforeAll(async () => {
    ensureDashboardBuilt();
    h = await startServer();
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.engine.register("echo", async (task) => ({ echoed: task.input }));
    h.engine.register("slow", async () => {
      await gate;
      return { ok: true };
    });
    h.engine.register("block", blockUntilAborted);
    h.engine.register("laned", blockUntilAborted, { lane: "gpu" });
    h.engine.register(
      "boom",
      async () => {
        throw new Error("upstream said no; see https://user:hunter2@example.com/x");
      },
      { maxRetries: 0 },
    );
    await h.engine.start();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    release();
    await browser?.close();
    await h?.close();
  });

  it("serves the shell at / without a token, with a strict CSP and immutable hashed assets", async () => {
    const res = await h.call("/");
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<)/); // no inline script bodies
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await h.call(`/${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect(js.headers.get("cache-control")).toContain("immutable");
    expect((await h.call("/assets/..%2findex.html")).status).toBe(404);
    expect((await h.call("/assets/..%2f..%2fpackage.json")).status).toBe(404);
    expect((await h.call("/assets/nope.js")).status).toBe(404);
  });

  it("shows a submitted task appear and complete without a reload, then its detail", async () => {
    const { page, problems, close } = await openPage(browser);
    await page.goto(`${h.url}/#/tasks`);
    await page.getByRole("heading", { name: "Tasks" }).waitFor();
    await page.locator(".stream.live").waitFor();
    await page.evaluate("window.__sameDocument = true");

    const task = await submit({ type: "slow", input: { n: 42 }, project: "demo" });
    const id = task["id"] as string;
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor();
    await until(async () => (await getTask(id))["status"] === "running");
    await page.locator(`tr[data-task-id="${id}"][data-status="running"]`).waitFor();
    release();
    await page.locator(`tr[data-task-id="${id}"][data-status="completed"]`).waitFor();
    expect(await page.evaluate<unknown>("window.__sameDocument")).toBe(true);
    await screenshot(page, "live-tasks");

    await row.getByRole("link", { name: "slow" }).click();
    await page.getByRole("heading", { name: /slow/ }).waitFor();
    await expect.poll(() => page.getByLabel("Task input").textContent()).toContain('"n": 42');
    await expect.poll(() => page.getByLabel("Task result").textContent()).toContain('"ok": true');
    await page.getByLabel("Task timeline").getByText("completed").waitFor();
    expect(await page.getByTestId("attempts").textContent()).toMatch(/^1 of/);
    await screenshot(page, "live-task-detail");
    expect(problems).toEqual([]);
    await close();
  });

  it("cancels a running task from its page", async () => {
    const { page, problems, close } = await openPage(browser);
    const task = await submit({ type: "block", input: { wait: true } });
    const id = task["id"] as string;
    await until(async () => (await getTask(id))["status"] === "running");
    await page.goto(`${h.url}/#/tasks/${id}`);
    await page.locator(".badge.s-running").first().waitFor();
    await page.getByRole("button", { name: "Cancel task" }).click();
    await page.locator("h1 .badge.s-cancelled").waitFor();
    expect((await getTask(id))["status"]).toBe("cancelled");
    expect(await page.getByRole("button", { name: "Cancel task" }).isDisabled()).toBe(true);

    // Retry submits a copy and opens it; the cancelled original stays as it was.
    await page.getByRole("button", { name: "Retry (submit a copy)" }).click();
    await page.waitForURL((u) => u.hash.startsWith("#/tasks/") && !u.hash.endsWith(id));
    const copyId = decodeURIComponent(new URL(page.url()).hash.slice("#/tasks/".length));
    const copy = await getTask(copyId);
    expect(copy).toMatchObject({ type: "block", input: { wait: true } });
    expect((copy["metadata"] as Json)["retryOf"]).toBe(id);
    await page.locator("h1 .badge.s-running").waitFor();
    expect((await h.call(`/api/v1/tasks/${copyId}/cancel`, { body: {} })).status).toBe(200);
    await page.locator("h1 .badge.s-cancelled").waitFor();
    expect(problems).toEqual([]);
    await close();
  });

  it("renders an XSS payload in a task's input and type as inert text", async () => {
    const { page, problems, close } = await openPage(browser);
    const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;
    const task = await submit({
      type: `<svg onload="window.__xss=3">`,
      input: { html: payload },
      labels: { note: `<b onmouseover="window.__xss=4">hi</b>` },
      runAt: Date.now() + 3_600_000,
    });
    const id = task["id"] as string;
    await page.goto(`${h.url}/#/tasks`);
    await page.locator(`tr[data-task-id="${id}"]`).waitFor();
    await page.goto(`${h.url}/#/tasks/${id}`);
    const input = page.getByLabel("Task input");
    await input.waitFor();
    // The payload is visible as text (JSON-escaped quotes aside) and nothing executed.
    expect(await input.textContent()).toContain(`<img src=x onerror=\\"window.__xss=1\\">`);
    await page.getByText(`<b onmouseover="window.__xss=4">hi</b>`, { exact: false }).waitFor();
    expect(await page.locator("main img, main script, main svg[onload]").count()).toBe(0);
    expect(await page.evaluate<unknown>("window.__xss")).toBeUndefined();
    expect(problems).toEqual([]);
    await close();
  });

  it("shows counts, recent failures (redacted) and degrades for missing features", async () => {
    const failed = await submit({ type: "boom" });
    await until(async () => (await getTask(failed["id"] as string))["status"] === "failed");
    const { page, problems, close } = await openPage(browser);
    await page.goto(`${h.url}/`);
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.locator('[data-count="completed"]').waitFor();
    await expect.poll(() => page.locator('[data-count="completed"]').textContent()).not.toBe("0");
    const failures = page.getByRole("region", { name: "Recent failures" });
    await failures.getByRole("link", { name: "boom" }).waitFor();
    const text = (await failures.textContent()) ?? "";
    expect(text).toContain("upstream said no");
    expect(text).not.toContain("hunter2");
    await screenshot(page, "live-overview");

    // Routes another part of Loom adds: either their view or a clear "not available" state.
    for (const [hash, heading, name] of [
      ["#/workflows", "Workflows", "workflows"],
      ["#/lanes", "Lanes", "lanes"],
      ["#/schedules", "Schedules", "schedules"],
      ["#/flows", "Flows", "flows"],
    ] as const) {
      await page.goto(`${h.url}/${hash}`);
      await page.getByRole("heading", { name: heading, exact: true }).waitFor();
      await page.locator("main :is(table, .empty, .error)").first().waitFor();
      expect(await page.locator("main .error").count()).toBe(0);
      await screenshot(page, `live-${name}`);
    }
    expect(problems).toEqual([]);
    await close();
  });

  it("switches to the dark theme and keeps it", async () => {
    const { page, close } = await openPage(browser);
    await page.goto(`${h.url}/`);
    await page.getByLabel("Theme").selectOption("dark");
    // The theme is applied by an effect after the change event: poll for it, do not read once.
    await expect
      .poll(() => page.evaluate<string | undefined>("document.documentElement.dataset.theme"))
      .toBe("dark");
    const bg = await page.evaluate<string>("getComputedStyle(document.body).backgroundColor");
    expect(bg).toBe("rgb(18, 20, 24)");
    await page.reload();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    // The theme is applied by an effect after the change event: poll for it, do not read once.
    await expect
      .poll(() => page.evaluate<string | undefined>("document.documentElement.dataset.theme"))
      .toBe("dark");
    await screenshot(page, "live-overview-dark");
    await close();
  });

  it("draws a flow's DAG coloured by task status", async (ctx) => {
    const res = await h.call("/api/v1/flows", {
      body: {
        name: "etl",
        tasks: [
          { key: "extract", type: "echo", input: 1 },
          { key: "left", type: "echo", input: 2, dependsOn: ["extract"] },
          { key: "right", type: "block", input: 3, dependsOn: ["extract"] },
          { key: "load", type: "echo", input: 4, dependsOn: ["left", "right"] },
        ],
      },
    });
    if (res.status === 404 && ((await res.json()) as Json)["detail"] === "no such route") {
      ctx.skip(); // the flows routes come from another branch; this runs once they are merged
      return;
    }
    expect(res.status).toBe(201);
    const flow = (await res.json()) as { id: string; tasks: { key: string; taskId: string }[] };
    const extract = flow.tasks.find((t) => t.key === "extract")!.taskId;
    await until(async () => (await getTask(extract))["status"] === "completed");

    const { page, problems, close } = await openPage(browser);
    await page.goto(`${h.url}/#/flows/${encodeURIComponent(flow.id)}`);
    const graph = page.getByRole("group", { name: /Task graph of flow etl/ });
    await graph.waitFor();
    expect(await graph.locator(".node").count()).toBe(4);
    expect(await graph.locator(".edge").count()).toBe(4);
    await graph.locator('[data-node="extract"].s-completed').waitFor();
    await graph.locator('[data-node="right"].s-running').waitFor();
    await screenshot(page, "live-flow-graph");
    await graph.locator('[data-node="extract"]').click();
    await page.getByLabel("Task input").waitFor();
    expect(problems).toEqual([]);
    await close();
  });

  it("shows a lane's callers and changes its concurrency from the page", async (ctx) => {
    const declared = await h.call("/api/v1/lanes/gpu", { method: "PUT", body: { concurrency: 1 } });
    if (
      declared.status === 404 &&
      ((await declared.json()) as Json)["detail"] === "no such route"
    ) {
      ctx.skip(); // the lanes routes come from another branch; this runs once they are merged
      return;
    }
    expect(declared.status).toBe(200);
    const ids: string[] = [];
    for (const caller of ["alice", "alice", "bob"]) {
      ids.push((await submit({ type: "laned", caller }))["id"] as string);
    }
    const lane = async () => (await (await h.call("/api/v1/lanes/gpu")).json()) as Json;
    await until(async () => {
      const l = await lane();
      return l["running"] === 1 && l["queued"] === 2;
    });

    const { page, problems, close } = await openPage(browser);
    await page.goto(`${h.url}/#/lanes`);
    const region = page.getByRole("region", { name: "Lane gpu" });
    await region.getByText("1 running / 1 slots, 2 queued").waitFor();
    await region.getByRole("table", { name: "Callers of lane gpu" }).getByText("bob").waitFor();
    await region.getByRole("spinbutton", { name: "Concurrency" }).fill("2");
    await region.getByRole("button", { name: "Set" }).click();
    await until(async () => (await lane())["concurrency"] === 2);
    await region.getByText(/\/ 2 slots/).waitFor();
    await screenshot(page, "live-lanes-gpu");
    for (const id of ids) await h.call(`/api/v1/tasks/${id}/cancel`, { body: {} });
    expect(problems).toEqual([]);
    await close();
  });
});
