// One step of scripts/mail_check.sh in headless Chromium with JavaScript off
// (the account pages work without it): STEP=verify|forgot|reset.
import { createRequire } from "node:module";
const require = createRequire(`${process.env.PLAYWRIGHT_PREFIX}/node_modules/`);
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const context = await browser.newContext({ javaScriptEnabled: false });
const page = await context.newPage();
const violations = [];
page.on("console", (m) => {
  // A failed load is named by the response handler below, with its URL.
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) violations.push(m.text());
});
page.on("response", (r) => {
  // The browser's own favicon probe is not the page's doing.
  if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) violations.push(`${r.status()} ${r.url()}`);
});
const fail = (why) => {
  console.error(why);
  process.exitCode = 1;
};

try {
  const step = process.env.STEP;
  if (step === "verify") {
    await page.goto(process.env.LINK);
    await page.locator("form button[type=submit], form input[type=submit]").first().click();
    await page.waitForLoadState();
    const text = await page.locator("body").innerText();
    if (!/confirmed/i.test(text)) fail(`verify: no confirmation on the page: ${text}`);
  } else if (step === "forgot") {
    // The page the sign-in page links to ("Forgot your password?").
    await page.goto(`${process.env.GATEWAY}/account/forgot-password`);
    await page.locator("input[name=login]").fill(process.env.LOGIN);
    await page.locator("form button[type=submit], form input[type=submit]").first().click();
    await page.waitForLoadState();
    const text = await page.locator("body").innerText();
    if (!/link/i.test(text)) fail(`forgot: no answer on the page: ${text}`);
  } else if (step === "reset") {
    await page.goto(process.env.LINK);
    const fields = page.locator("input[type=password]");
    const n = await fields.count();
    if (n < 1) fail("reset: no password field");
    for (let i = 0; i < n; i++) await fields.nth(i).fill(process.env.NEW_PASSWORD);
    await page.locator("form button[type=submit], form input[type=submit]").first().click();
    await page.waitForLoadState();
    const text = await page.locator("body").innerText();
    if (!/changed/i.test(text)) fail(`reset: no success on the page: ${text}`);
  } else {
    fail(`unknown STEP ${step}`);
  }
  if (violations.length) fail(`console errors (CSP?): ${violations.join("; ")}`);
} finally {
  await browser.close();
}
