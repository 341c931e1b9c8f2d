import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type Harness } from "../http/support.js";
import { ensureDashboardBuilt, launchBrowser, openPage, screenshot } from "./support.js";

const TOKEN = "dashboard-secret-token";

describe("dashboard against a server that requires a token", () => {
  let h: Harness;
  let browser: Browser;

  beforeAll(async () => {
    ensureDashboardBuilt();
    h = await startServer({ auth: { tokens: [{ token: TOKEN, tenant: "acme" }] } });
    h.engine.register("echo", async (task) => ({ echoed: task.input }));
    await h.engine.start();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it("asks for a token on 401, keeps it in sessionStorage and streams events with it", async () => {
    expect((await h.call("/")).status).toBe(200); // the shell needs no token
    expect((await h.call("/api/v1/tasks")).status).toBe(401);

    const { page, problems, close } = await openPage(browser);
    await page.goto(`${h.url}/#/tasks`);
    const prompt = page.getByRole("form", { name: "Sign in" });
    await prompt.getByText("This server needs a bearer token").waitFor();
    await screenshot(page, "token-prompt");
    await prompt.getByLabel("Token").fill(TOKEN);
    await prompt.getByRole("button", { name: "Use token" }).click();
    await prompt.waitFor({ state: "detached" });
    await page.getByText("No tasks match.").waitFor();
    await page.locator(".stream.live").waitFor(); // GET /api/v1/events accepted the header

    const res = await h.call("/api/v1/tasks", { body: { type: "echo", input: 1 }, token: TOKEN });
    const id = ((await res.json()) as { id: string }).id;
    await page.locator(`tr[data-task-id="${id}"][data-status="completed"]`).waitFor();

    expect(await page.evaluate<string | null>(`sessionStorage.getItem("loom.token")`)).toBe(TOKEN);
    expect(await page.evaluate<string>("JSON.stringify(localStorage)")).not.toContain(TOKEN);
    // A refused token brings the prompt back instead of failing silently.
    await page.evaluate(`sessionStorage.setItem("loom.token", "wrong-token-123")`);
    await page.reload();
    await page.getByText("The saved token was refused.").waitFor();
    expect(problems).toEqual([]);
    await close();
  });
});
