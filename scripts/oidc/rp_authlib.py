#!/usr/bin/env python3
"""A server-side relying party on authlib (PyPI) against the launched suite.

Discovery; the code flow with PKCE (S256) through the real pages in headless
Chromium (browser.mjs); the `iss` of the response (RFC 9207); the ID token
validated by authlib's own rules (signature against the JWKS, iss, aud, exp,
nonce, at_hash); userinfo; refresh; client credentials; introspection;
revocation; RP-initiated logout, after which the session's refresh token is
dead; back-channel logout, received by a small HTTP server here and
validated with authlib's JWT rules (OpenID Connect Back-Channel Logout 1.0). Run by scripts/oidc_rp_check.sh, which passes ISSUER, ADMIN_TOKEN,
LOGIN, PASSWORD, BROWSER_STATE and PLAYWRIGHT_PREFIX.
"""

import base64
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
import warnings

with warnings.catch_warnings():
    # authlib.jose is deprecated for joserfc, yet it is what authlib's own
    # OpenID Connect client validates ID tokens with (CodeIDToken).
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

ISSUER = os.environ["ISSUER"]
REDIRECT = "http://127.0.0.1:20799/authlib/callback"
BYE = "http://127.0.0.1:20799/authlib/bye"
# This relying party's back-channel logout endpoint (a port below the
# ephemeral range, like the suite's).
BACKCHANNEL_PORT = 20798
BACKCHANNEL = f"http://127.0.0.1:{BACKCHANNEL_PORT}/authlib/backchannel-logout"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
BROWSER = Path(__file__).with_name("browser.mjs")
SCOPE = "openid profile email offline_access user:read"


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def browser(*args):
    out = subprocess.run(["node", str(BROWSER), *args], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        check(False, f"the browser ({args[0]})")
    return out.stdout.strip().splitlines()[-1]


def register_client():
    r = requests.post(
        f"{ISSUER}/api/v1/oauth/clients",
        headers={"authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"},
        json={
            "name": "authlib relying party",
            "type": "CLIENT_TYPE_CONFIDENTIAL",
            "redirectUris": [REDIRECT],
            "postLogoutRedirectUris": [BYE],
            "backchannelLogoutUri": BACKCHANNEL,
            "grantTypes": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes": SCOPE.split(),
        },
        timeout=30,
    )
    r.raise_for_status()
    body = r.json()
    return body["client"]["clientId"], body["clientSecret"]


def backchannel_receiver():
    """Starts the back-channel logout endpoint; the logout tokens it got."""
    received = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            ok = (
                self.path == urlparse(BACKCHANNEL).path
                and self.headers.get("content-type") == "application/x-www-form-urlencoded"
                and len(form.get("logout_token", [])) == 1
            )
            if ok:
                received.put(form["logout_token"][0])
            self.send_response(200 if ok else 400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", BACKCHANNEL_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return received


def check_logout_token(received, jwks, client_id, id_claims):
    """Waits for the logout token of the ID token's session, and checks it
    as section 2.6 tells a receiver to."""
    try:
        token = received.get(timeout=30)
    except queue.Empty:
        check(False, "a logout token reaches the back-channel URI")
    header = jwt_header(token)
    check(header.get("typ") == "logout+jwt", "the logout token's type is logout+jwt")
    claims = jwt.decode(
        token,
        jwks,
        claims_options={
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "value": client_id},
            "iat": {"essential": True},
            "exp": {"essential": True},
            "jti": {"essential": True},
        },
    )
    claims.validate()
    check(LOGOUT_EVENT in claims.get("events", {}), "the logout token carries the logout event")
    check("nonce" not in claims, "the logout token has no nonce")
    check(claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"],
          "the logout token names the ID token's user and session (sub, sid)")


def main():
    received = backchannel_receiver()
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=30).json()
    check(meta["issuer"] == ISSUER, "discovery names the issuer")
    jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    client_id, secret = register_client()

    session = OAuth2Session(
        client_id,
        secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    landed = browser(
        "sign-in", url, os.environ["LOGIN"], os.environ["PASSWORD"], REDIRECT,
        os.environ["BROWSER_STATE"],
    )
    query = parse_qs(urlparse(landed).query)
    check(query.get("state") == [state], "the state comes back")
    check(query.get("iss") == [ISSUER], "the response names the issuer (RFC 9207)")
    token = session.fetch_token(
        meta["token_endpoint"], authorization_response=landed, code_verifier=verifier
    )
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": ISSUER}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate()
    check(claims["aud"] in (client_id, [client_id]), "the ID token is for this client")
    check(jwt_header_alg(token["id_token"]) == "RS256", "the ID token is RS256")

    info = session.get(meta["userinfo_endpoint"]).json()
    check(info["sub"] == claims["sub"], "userinfo's subject is the ID token's")

    refreshed = session.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    check(refreshed.get("access_token") not in (None, token["access_token"]), "refresh gives a new access token")

    machine = OAuth2Session(client_id, secret, scope="user:read", token_endpoint_auth_method="client_secret_post")
    cc = machine.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    check("refresh_token" not in cc, "client credentials give no refresh token")

    def introspect(t):
        return session.introspect_token(meta["introspection_endpoint"], token=t).json()

    check(introspect(cc["access_token"])["active"] is True, "introspection: the machine token is active")
    check(introspect(cc["access_token"]).get("sub") == client_id, "a machine token's subject is its client")
    r = session.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"])
    check(r.status_code == 200, "revocation answers 200")
    check(introspect(refreshed["access_token"]) == {"active": False}, "a revoked token is inactive")

    logout = meta["end_session_endpoint"] + "?" + urlencode(
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE, "state": "bye-state"}
    )
    landed = browser("sign-out", logout, BYE, os.environ["BROWSER_STATE"])
    check(landed == f"{BYE}?state=bye-state", "logout returns to the registered URI with the state")
    dead = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        auth=(client_id, secret),
        timeout=30,
    )
    check(dead.status_code == 400 and dead.json()["error"] == "invalid_grant",
          "after logout the session's refresh token is dead")
    check(meta.get("backchannel_logout_supported") is True
          and meta.get("backchannel_logout_session_supported") is True,
          "discovery offers back-channel logout with sid")
    check_logout_token(received, jwks, client_id, claims)
    print("authlib relying party: all checks passed")


def jwt_header(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def jwt_header_alg(token):
    return jwt_header(token)["alg"]


if __name__ == "__main__":
    main()
