// The API explorer in headless Chromium; run by scripts/docs_page_check.sh,
// which launches the suite and passes GATEWAY, TOKEN, SCREENSHOT, CHROMIUM
// and PLAYWRIGHT_PREFIX (where playwright-core is installed).
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.PLAYWRIGHT_PREFIX, "/"));
const { chromium } = require("playwright-core");

const gateway = process.env.GATEWAY;
const origin = new URL(gateway).origin;
const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`FAIL: ${message}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // As root in CI, Chromium's sandbox cannot start.
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
  page.setDefaultTimeout(30_000);
  // Every CSP violation, as the page itself sees it.
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const requests = [];
  page.on("request", (r) => requests.push(r));
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) {
      fail(`console: ${m.text()}`);
    }
  });

  const reply = await page.goto(`${gateway}/api/docs`, { waitUntil: "load" });
  if (reply.status() !== 200) fail(`GET /api/docs: ${reply.status()}`);
  const csp = reply.headers()["content-security-policy"] || "";
  if (!csp.includes("script-src 'self'")) fail(`page CSP: ${csp}`);

  // The operations, from the served document.
  await page.waitForSelector(".opblock", { state: "attached" });
  const documented = await (await fetch(`${gateway}/api/openapi.json`)).json();
  const expected = Object.values(documented.paths).reduce(
    (n, ops) => n + Object.keys(ops).length,
    0,
  );
  const listed = await page.locator(".opblock").count();
  console.log(`operations listed: ${listed} (document: ${expected})`);
  if (listed !== expected) fail(`listed ${listed} operations, the document has ${expected}`);
  for (const p of ["/api/v1/auth/login", "/api/v1/users/{id}", "/api/health"]) {
    if ((await page.locator(`.opblock-summary-path[data-path="${p}"]`).count()) === 0) {
      fail(`${p} is not listed`);
    }
  }

  // Expands an operation, presses "Try it out", fills its parameters,
  // executes, and returns the live response's status code.
  async function tryIt(id, parameters = {}) {
    const op = page.locator(`[id="${id}"]`);
    await op.locator(".opblock-summary").first().click();
    await op.locator(".try-out__btn").click();
    for (const [name, value] of Object.entries(parameters)) {
      await op.locator(`tr[data-param-name="${name}"] input`).fill(value);
    }
    await op.locator(".btn.execute").click();
    const status = op.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor();
    return (await status.innerText()).trim();
  }

  const health = await tryIt("operations-Gateway-Gateway_Health");
  console.log(`try it out, GET /api/health: ${health}`);
  if (health !== "200") fail(`GET /api/health from the page: ${health}`);

  // "Authorize" with the bearer token, then a protected call.
  await page.locator(".auth-wrapper .btn.authorize").click();
  const dialog = page.locator(".modal-ux");
  // The dialog lists every scheme (bearerAuth, oauth2, openIdConnect): the
  // bearer token goes into bearerAuth's.
  const bearer = dialog.locator(".auth-container").filter({ hasText: "bearerAuth" });
  await bearer.locator("input").first().fill(process.env.TOKEN);
  await bearer.getByRole("button", { name: "Apply credentials" }).click();
  await dialog.locator(".btn-done, .close-modal").first().click();
  const me = await tryIt("operations-UserService-UserService_GetUser", { id: "me" });
  console.log(`try it out, GET /api/v1/users/me with the bearer token: ${me}`);
  if (me !== "200") fail(`GET /api/v1/users/me from the page: ${me}`);
  const call = requests.find((r) => new URL(r.url()).pathname === "/api/v1/users/me");
  if (!call) fail("no request to /api/v1/users/me was seen");
  else if (call.headers()["authorization"] !== `Bearer ${process.env.TOKEN}`) {
    fail("the call to /api/v1/users/me did not carry the bearer token");
  }
  const body = await page
    .locator('[id="operations-UserService-UserService_GetUser"] .live-responses-table tbody .response-col_description pre')
    .first()
    .innerText();
  if (!body.includes('"username": "explorer"')) fail(`unexpected body: ${body}`);

  // Same origin only: nothing fetched from anywhere else, no violation.
  for (const r of requests) {
    const url = new URL(r.url());
    if (url.protocol !== "data:" && url.origin !== origin) fail(`fetched ${r.url()}`);
  }
  const violations = await page.evaluate(() => window.__violations);
  for (const v of violations) fail(`CSP violation: ${v}`);
  console.log(`requests: ${requests.length}, all same-origin; CSP violations: ${violations.length}`);

  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: false });
  console.log(`screenshot: ${process.env.SCREENSHOT}`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(`docs page check: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log("docs page check: passed");
