// A strict relying party on openid-client 6 (npm) against the launched
// suite: discovery, the code flow with PKCE through the real pages (in
// headless Chromium, browser.mjs), openid-client's own checks of the
// response (state, iss per RFC 9207) and of the ID token (signature, iss,
// aud, exp, nonce, alg RS256 by default), userinfo with the subject check,
// refresh, client credentials, introspection, revocation, RP-initiated
// logout. Run by scripts/oidc_rp_check.sh, which passes ISSUER, ADMIN_TOKEN,
// LOGIN, PASSWORD, BROWSER_STATE, OPENID_CLIENT_PREFIX and PLAYWRIGHT_PREFIX.
import path from "node:path";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { signIn, signOut } from "./browser.mjs";

// openid-client is ESM only: imported from where .ci/run installed it.
const pkgDir = path.join(process.env.OPENID_CLIENT_PREFIX, "node_modules", "openid-client");
const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const client = await import(pathToFileURL(path.join(pkgDir, pkg.exports["."].default)).href);

const issuer = process.env.ISSUER;
const redirect = "http://127.0.0.1:20799/openid-client/callback";
const bye = "http://127.0.0.1:20799/openid-client/bye";
const scope = "openid profile email offline_access user:read";

function check(condition, message) {
  if (!condition) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
  }
  console.log(`ok: ${message}`);
}

const created = await fetch(`${issuer}/api/v1/oauth/clients`, {
  method: "POST",
  headers: { authorization: `Bearer ${process.env.ADMIN_TOKEN}`, "content-type": "application/json" },
  body: JSON.stringify({
    name: "openid-client relying party",
    type: "CLIENT_TYPE_CONFIDENTIAL",
    redirectUris: [redirect],
    postLogoutRedirectUris: [bye],
    grantTypes: ["authorization_code", "refresh_token", "client_credentials"],
    scopes: scope.split(" "),
  }),
});
check(created.status === 201, `client registered (${created.status})`);
const { client: registered, clientSecret } = await created.json();

// http:// only because CI runs on loopback; everything else is the library's default.
const config = await client.discovery(
  new URL(issuer),
  registered.clientId,
  undefined,
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests] },
);
check(config.serverMetadata().issuer === issuer, "discovery names the issuer");

const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirect,
  scope,
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: "S256",
  nonce,
  state,
});
const stateFile = process.env.BROWSER_STATE;
const landed = await signIn(url.href, process.env.LOGIN, process.env.PASSWORD, redirect, stateFile);
const tokens = await client.authorizationCodeGrant(config, new URL(landed), {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
check(claims.aud === registered.clientId || claims.aud.includes(registered.clientId), "the ID token is for this client");
check(typeof tokens.refresh_token === "string", "offline_access gives a refresh token");

const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
check(info.sub === claims.sub, "userinfo's subject is the ID token's");

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
check(refreshed.access_token !== tokens.access_token, "refresh gives a new access token");

const machine = await client.clientCredentialsGrant(config, { scope: "user:read" });
check(!machine.refresh_token, "client credentials give no refresh token");
const active = await client.tokenIntrospection(config, machine.access_token);
check(active.active === true && active.sub === registered.clientId, "introspection: the machine token is active, its subject the client");
// A user's token (a client-credentials token has no session to end).
await client.tokenRevocation(config, refreshed.access_token);
const inactive = await client.tokenIntrospection(config, refreshed.access_token);
check(inactive.active === false, "a revoked token is inactive");

const logout = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token,
  post_logout_redirect_uri: bye,
  state: "bye-state",
});
const back = await signOut(logout.href, bye, stateFile);
check(back === `${bye}?state=bye-state`, "logout returns to the registered URI with the state");
let refused = false;
try {
  await client.refreshTokenGrant(config, refreshed.refresh_token);
} catch (e) {
  refused = e.error === "invalid_grant";
}
check(refused, "after logout the session's refresh token is dead");
console.log("openid-client relying party: all checks passed");
