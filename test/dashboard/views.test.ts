import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFixtureServer, type FixtureServer } from "./fixture-server.js";
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot } from "./support.js";

// The views of features served by other parts of Loom, against their agreed response shapes.
describe("dashboard views on the agreed shapes (lanes, workflows, flows, schedules, stats)", () => {
  let s: FixtureServer;
  let browser: Browser;

  beforeAll(async () => {
    ensureDashboardBuilt();
    s = await startFixtureServer();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it("renders each view, changes a lane's concurrency and sends a signal", async () => {
    const { page, problems, close } = await openPage(browser);

    await page.goto(`${s.url}/`);
    await page
      .getByRole("img", { name: /Throughput per minute over the last 60 minutes/ })
      .waitFor();
    expect(await page.locator('[data-count="completed"]').textContent()).toBe("1412");
    await page.getByRole("region", { name: "Lanes" }).getByRole("link", { name: "ocr" }).waitFor();
    await screenshot(page, "overview");
    await page.getByLabel("Theme").selectOption("dark");
    await screenshot(page, "overview-dark");
    await page.getByLabel("Theme").selectOption("light");

    await page.goto(`${s.url}/#/tasks`);
    await page.locator('tr[data-task-id="t-ocr-2"]').waitFor();
    await screenshot(page, "tasks");
    await page.goto(`${s.url}/#/tasks/t-notify`);
    await page.getByLabel("Task error").getByText("[REDACTED]").waitFor();
    await screenshot(page, "task-detail");

    await page.goto(`${s.url}/#/lanes`);
    const ocr = page.getByRole("region", { name: "Lane ocr" });
    await ocr.getByRole("table", { name: "Callers of lane ocr" }).getByText("alice").waitFor();
    expect(await ocr.getByLabel("alice share").getAttribute("value")).toBe("50");
    await ocr.getByRole("spinbutton", { name: "Concurrency" }).fill("8");
    await ocr.getByRole("button", { name: "Set" }).click();
    await expect
      .poll(() => s.received.map((r) => r.route))
      .toContain("POST /api/v1/lanes/ocr/concurrency");
    expect(s.received.find((r) => r.route.endsWith("/concurrency"))?.body).toEqual({
      concurrency: 8,
    });
    await screenshot(page, "lanes");

    await page.goto(`${s.url}/#/workflows`);
    await page.getByRole("link", { name: "invoice.approve" }).first().click();
    await page.getByLabel("Workflow history").getByText("ACTIVITY_COMPLETED").waitFor();
    await page.getByText("signal “manager-approval”").waitFor();
    const calls = page.getByRole("group", { name: "Calls of workflow invoice.approve" });
    await calls.waitFor();
    expect(await calls.locator(".node").count()).toBe(4); // start, 2 calls, the signal wait
    expect(await calls.locator(".edge").count()).toBe(3);
    expect(await calls.locator('[data-node="#2"]').getAttribute("class")).toContain("s-completed");
    expect(await calls.locator('[data-node="waiting"]').getAttribute("class")).toContain(
      "s-waiting",
    );
    await page.getByLabel("Signal name").fill("manager-approval");
    await page.getByLabel("Data (JSON, optional)").fill('{"ok":true}');
    await page.getByRole("button", { name: "Send signal" }).click();
    await expect
      .poll(() => s.received.find((r) => r.route.includes("/signals/"))?.body)
      .toEqual({ data: { ok: true } });
    expect(
      s.received.some(
        (r) => r.route === "POST /api/v1/workflows/wf-invoice-42/signals/manager-approval",
      ),
    ).toBe(true);
    await screenshot(page, "workflow-detail");

    await page.goto(`${s.url}/#/flows/flow-7`);
    const graph = page.getByRole("group", { name: "Task graph of flow monthly-report" });
    await graph.waitFor();
    expect(await graph.locator(".node").count()).toBe(6);
    expect(await graph.locator(".edge").count()).toBe(7);
    expect(await graph.locator('[data-node="notify"]').getAttribute("class")).toContain("s-failed");
    await screenshot(page, "flow-graph");

    await page.goto(`${s.url}/#/schedules`);
    await page.getByRole("cell", { name: "nightly-report" }).waitFor();
    await screenshot(page, "schedules");

    expect(problems).toEqual([]);
    await close();
  });
});
