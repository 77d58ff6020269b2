// Passkeys in a real browser: headless Chromium (Debian's, via playwright-core)
// with the DevTools virtual authenticator (CTAP 2.1, resident keys, user
// verification) against the launched suite at http://localhost (browsers
// refuse an IP address as a relying party):
//   1. the user registers a passkey from the suite's origin (REST, as an app
//      with its own pages does: navigator.credentials.create);
//   2. passwordless sign-in on the sign-in page ("Sign in with a passkey"),
//      through consent, to the relying party with a code; the ID token's amr
//      says `hwk` and `mfa`;
//   3. password, then the passkey as the second factor ("Use your passkey
//      instead");
//   4. the authenticator cloned (its signature counter set back): refused.
// Every CSP violation fails the run. Env: ISSUER, ADMIN_TOKEN, PASSWORD,
// PLAYWRIGHT_PREFIX, RP_PORT.
import { createRequire } from "node:module";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";

const require = createRequire(path.join(process.env.PLAYWRIGHT_PREFIX, "/"));
const { chromium } = require("playwright-core");

const ISSUER = process.env.ISSUER;
const PASSWORD = process.env.PASSWORD;
const REDIRECT = `http://127.0.0.1:${process.env.RP_PORT}/callback`;

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok: ${what}`);
}

async function api(method, p, body, token) {
  const r = await fetch(`${ISSUER}${p}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : {} };
}

const b64url = (buf) => Buffer.from(buf).toString("base64url");

// The relying party: a confidential client, and a listener for its redirects.
const client = await api("POST", "/api/v1/oauth/clients", {
  name: "Passkey shop",
  type: "CLIENT_TYPE_CONFIDENTIAL",
  redirectUris: [REDIRECT],
  grantTypes: ["authorization_code"],
  scopes: ["openid", "profile"],
}, process.env.ADMIN_TOKEN);
check(client.status === 201, `a client is registered (${client.status})`);
const clientId = client.json.client.clientId;
const clientSecret = client.json.clientSecret;

let landed = null;
const rp = http.createServer((req, res) => {
  const url = new URL(req.url, REDIRECT).href;
  if (url.startsWith(REDIRECT)) landed = url;
  res.writeHead(200, { "content-type": "text/plain" }).end("back at the relying party");
});
await new Promise((resolve) => rp.listen(Number(process.env.RP_PORT), "127.0.0.1", resolve));

await api("POST", "/api/v1/users", { username: "pia", email: "pia@example.com", password: PASSWORD });
const login = await api("POST", "/api/v1/auth/login", { login: "pia", password: PASSWORD });
check(login.status === 200 && login.json.accessToken, "pia logs in with her password");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
const violations = [];
try {
  const authenticatorOptions = {
    protocol: "ctap2",
    ctap2Version: "ctap2_1",
    transport: "internal",
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
    automaticPresenceSimulation: true,
  };

  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on("console", (m) => {
    if (process.env.PASSKEY_DEBUG) console.error(`console: ${m.text()}`);
    if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", { options: authenticatorOptions });

  // 1. Registration on the account page: signed in with the password, the
  // page's "Add a passkey" (its script asks the browser for one).
  await page.goto(`${ISSUER}/account`);
  await page.getByLabel("Username or email").fill("pia");
  await page.getByLabel("Password").fill(PASSWORD);
  await Promise.all([page.waitForURL(`${ISSUER}/account`), page.getByRole("button", { name: "Sign in", exact: true }).click()]);
  await page.getByLabel("Name of the passkey (optional)").fill("this browser");
  await Promise.all([page.waitForLoadState(), page.getByRole("button", { name: "Add a passkey" }).click()]);
  await page.getByText("Your passkey is added").waitFor();
  const codes = await page.locator("ul.codes li").allTextContents();
  check(codes.length === 10, "the first factor's ten recovery codes are shown once");
  await page.goto(`${ISSUER}/account`);
  await page.getByText("this browser").first().waitFor();
  check(true, "the account page lists the passkey by its name");
  if (process.env.SCREENSHOTS) await page.screenshot({ path: `${process.env.SCREENSHOTS}/account.png`, fullPage: true });
  await page.getByLabel("New name").fill("my laptop");
  await Promise.all([page.waitForURL(/done=factor-renamed/), page.getByRole("button", { name: "Rename" }).click()]);
  await page.getByText("my laptop").first().waitFor();
  check(true, "the account page renames it");
  const registered = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  check(registered.credentials.length === 1 && registered.credentials[0].isResidentCredential, "the passkey is discoverable (a resident credential)");

  // The code flow's start, with PKCE; the redirect's code exchanged.
  const authorize = () => {
    const verifier = b64url(randomBytes(32));
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const url = new URL(`${ISSUER}/oauth2/authorize`);
    for (const [k, v] of Object.entries({
      client_id: clientId, redirect_uri: REDIRECT, response_type: "code", scope: "openid profile",
      state: "st", nonce: "n", code_challenge: challenge, code_challenge_method: "S256",
    })) url.searchParams.set(k, v);
    return { url: url.href, verifier };
  };
  const waitLanded = async () => {
    for (let i = 0; i < 300 && landed === null; i++) await page.waitForTimeout(100);
    const got = landed;
    landed = null;
    if (!got) throw new Error(`never redirected; at ${page.url()}:\n${await page.content()}`);
    const params = new URL(got).searchParams;
    if (!params.get("code")) throw new Error(`redirected without a code: ${got}`);
    return params;
  };
  const idToken = async (code, verifier) => {
    const r = await fetch(`${ISSUER}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    const tokens = await r.json();
    if (!tokens.id_token) throw new Error(`no ID token for ${code}: ${JSON.stringify(tokens)}`);
    return JSON.parse(Buffer.from(tokens.id_token.split(".")[1], "base64url").toString());
  };
  const allowIfAsked = async () => {
    const allow = page.getByRole("button", { name: "Allow" });
    await page.waitForLoadState();
    if (await allow.count()) await allow.click();
  };

  // 2. Passwordless, on the sign-in page: the login field's suggestions
  // (conditional mediation), which the virtual authenticator answers at
  // once, or else the button.
  // (prompt=login: the browser is signed in already, from the account page.)
  let flow = authorize();
  await page.goto(`${flow.url}&prompt=login`);
  const passkeyButton = page.getByRole("button", { name: "Sign in with a passkey" });
  await Promise.race([
    page.waitForURL((u) => !u.href.includes("/oauth2/authorize")),
    passkeyButton.waitFor({ state: "visible" }).then(() => passkeyButton.click()).catch(() => {}),
  ]);
  await allowIfAsked();
  let params = await waitLanded();
  check(params.get("code") && params.get("state") === "st", "passwordless: back at the relying party with a code");
  let claims = await idToken(params.get("code"), flow.verifier);
  check(JSON.stringify(claims.amr) === JSON.stringify(["hwk", "mfa"]) && claims.acr === "mfa", `passwordless: amr ${JSON.stringify(claims.amr)}, acr ${claims.acr}`);

  // 3. The password, then the passkey as the second factor (a new browser
  // session: prompt=login).
  // The authenticator waits for a touch meanwhile: the login field's
  // suggestions stay suggestions.
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: false });
  // The first step without its script (as a browser without passkeys):
  // no passkey request pending while the password form is posted.
  await page.route("**/oauth2/assets/passkey.js", (route) => route.abort());
  flow = authorize();
  await page.goto(`${flow.url}&prompt=login`);
  await page.getByLabel("Username or email").fill("pia");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.unroute("**/oauth2/assets/passkey.js");
  await Promise.all([page.waitForURL((u) => u.pathname === "/oauth2/signin"), page.getByRole("button", { name: "Sign in", exact: true }).click()]);
  const instead = page.getByRole("button", { name: "Use your passkey instead" });
  await instead.waitFor({ state: "visible" });
  check(true, "the second step offers the passkey");
  if (process.env.SCREENSHOTS) await page.screenshot({ path: `${process.env.SCREENSHOTS}/signin-factor.png`, fullPage: true });
  // The code field is reachable with the keyboard alone: it has the focus.
  check(await page.evaluate(() => document.activeElement && document.activeElement.id === "code"), "the code field has the focus");
  await cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled: true });
  await instead.click();
  await allowIfAsked();
  params = await waitLanded();
  claims = await idToken(params.get("code"), flow.verifier);
  check(JSON.stringify(claims.amr) === JSON.stringify(["pwd", "hwk", "mfa"]), `password and passkey: amr ${JSON.stringify(claims.amr)}`);

  // 4. A clone: the same key with its signature counter set back.
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  check(credentials.length === 1 && credentials[0].signCount >= 2, `the authenticator counted its signatures (${credentials[0].signCount})`);
  await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: credentials[0].credentialId });
  await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...credentials[0], signCount: 0 } });
  flow = authorize();
  await page.goto(`${flow.url}&prompt=login`);
  await Promise.race([
    page.waitForURL((u) => !u.href.includes("/oauth2/authorize")),
    passkeyButton.waitFor({ state: "visible" }).then(() => passkeyButton.click()).catch(() => {}),
  ]);
  await page.getByText("the passkey was not accepted").waitFor();
  check(landed === null, "a cloned authenticator (its counter gone back) is refused");
} finally {
  await browser.close();
  rp.close();
}
check(violations.length === 0, `no CSP violations${violations.length ? `: ${violations.join("\n")}` : ""}`);
console.log("passkeys in the browser: all checks passed");
