// The browser of the relying-party checks: headless Chromium (Debian's, via
// playwright-core from PLAYWRIGHT_PREFIX) walks the suite's real pages: the
// sign-in form, the consent form, the sign-out confirmation. It never
// follows the final redirect to the relying party: it records its URL (the
// code, state and iss, or the post-logout redirect) and answers it itself.
// Cookies persist between runs in a state file, so a later logout ends the
// session an earlier sign-in opened. Every CSP violation fails the run.
//
// As a module: `signIn(...)` and `signOut(...)`. From the command line (for
// the Python relying party):
//   node browser.mjs sign-in  <authorize-url> <login> <password> <redirect-prefix> <state-file>
//   node browser.mjs sign-out <end-session-url> <redirect-prefix> <state-file>
// prints the URL the provider sent the browser to.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(path.join(process.env.PLAYWRIGHT_PREFIX, "/"));
const { chromium } = require("playwright-core");

async function withPage(stateFile, redirectPrefix, run) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // As root in CI, Chromium's sandbox cannot start.
    args: ["--no-sandbox"],
  });
  try {
    const context = await browser.newContext(
      existsSync(stateFile) ? { storageState: stateFile } : {},
    );
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const violations = [];
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text());
    });
    // The relying party's redirect lands on a listener of ours (a route
    // handler would miss it: Playwright does not intercept redirects).
    let landed = null;
    const target = new URL(redirectPrefix);
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, target.origin).href;
      if (url.startsWith(redirectPrefix)) landed = url;
      res.writeHead(200, { "content-type": "text/plain" }).end("back at the relying party");
    });
    await new Promise((resolve) => server.listen(Number(target.port), target.hostname, resolve));
    try {
      await run(page);
      for (let i = 0; i < 300 && landed === null; i++) await page.waitForTimeout(100);
    } finally {
      server.close();
    }
    if (landed === null) throw new Error(`never redirected to ${redirectPrefix}; at ${page.url()}:\n${await page.content()}`);
    if (violations.length) throw new Error(`CSP violations: ${violations.join("\n")}`);
    await context.storageState({ path: stateFile });
    return landed;
  } finally {
    await browser.close();
  }
}

/** Signs in through the pages (and allows the client if asked): the redirect URL. */
export async function signIn(authorizeUrl, login, password, redirectPrefix, stateFile) {
  return withPage(stateFile, redirectPrefix, async (page) => {
    await page.goto(authorizeUrl);
    if (await page.locator("#password").count()) {
      // The labels name the fields (the accessible way in).
      await page.getByLabel("Username or email").fill(login);
      await page.getByLabel("Password").fill(password);
      await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Sign in", exact: true }).click()]);
    }
    const allow = page.getByRole("button", { name: "Allow" });
    if (await allow.count()) {
      await allow.click();
    }
  });
}

/** RP-initiated logout (confirming if asked): the redirect URL. */
export async function signOut(endSessionUrl, redirectPrefix, stateFile) {
  return withPage(stateFile, redirectPrefix, async (page) => {
    await page.goto(endSessionUrl);
    const confirm = page.getByRole("button", { name: "Sign out" });
    if (await confirm.count()) {
      await confirm.click();
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, ...args] = process.argv.slice(2);
  const landed =
    command === "sign-in"
      ? await signIn(args[0], args[1], args[2], args[3], args[4])
      : await signOut(args[0], args[1], args[2]);
  console.log(landed);
}
