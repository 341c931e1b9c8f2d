import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const SCREENSHOTS = "test-results/screenshots";
const CHROMIUM = process.env["LOOM_CHROMIUM"] ?? "/usr/bin/chromium";

/** Builds dist/dashboard once if the package has not been built yet (a fresh checkout). */
export function ensureDashboardBuilt(): void {
  if (existsSync(join("dist", "dashboard", "index.html"))) return;
  execFileSync(
    process.execPath,
    ["node_modules/vite/bin/vite.js", "build", "src/dashboard", "--logLevel", "warn"],
    {
      stdio: "inherit",
    },
  );
}

/** Debian's chromium, headless: never a browser downloaded by npm. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set LOOM_CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/** A page that records uncaught errors, console errors and CSP violations. */
export async function openPage(browser: Browser, opts: { colorScheme?: "light" | "dark" } = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 860 },
    colorScheme: opts.colorScheme ?? "light",
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  return { page, problems, close: () => context.close() };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
