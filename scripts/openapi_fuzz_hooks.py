"""Schemathesis hooks for scripts/openapi_fuzz.sh (SCHEMATHESIS_HOOKS).

They set only what a schema cannot say, and only in positive cases (data the
document calls valid, which must then be accepted): each is named in the
document, so a client reading it knows the same.

- `x-zxcvbn-min-score`: a password must be hard to guess. Generated strings
  rarely are, so a positive case gets a random 24-character one.
- `x-visible-text`: no invisible or direction-changing characters, which a
  portable pattern cannot list; they are dropped from positive cases.
- The current password (ChangePassword's `currentPassword`) is a secret the
  fuzzer knows (FUZZ_PASSWORD) and no schema could.
- Page tokens are opaque (their descriptions): only tokens the service
  issued are valid, so positive cases send none.
- UpdateUser sets the fields `updateMask` names (all with `*`) or, without
  it, the fields its body names, to the body's values; an absent, "" or null
  value clears the field, "which a field that must have a value refuses"
  (the operation's description): a rule tying the query to the body, which
  no schema can state. Only `displayName` may be empty. So positive cases
  without a mask drop the other keys set to "" or null (one with nothing
  left to update gets the mask `displayName`, clearing it; in the stateful
  phase, whose links fill the body later, just before the call), and those whose
  mask names `username` or `email` without a value get a fresh valid one.
  (Only UpdateUser: other PATCHes take their bodies as generated.)
- Durations (the Duration pattern): every one in the contract is a lifetime
  whose description bounds it (positive, at most an hour; a rotated secret's
  overlap not negative), which a pattern cannot say of a number; positive
  cases send 300s.

Everything else, negative cases included, is as schemathesis generated it.
"""

import os
import secrets
import threading
import unicodedata

import schemathesis

# The blank fillers that are letters by category (services/user/src/domain.rs).
FILLERS = set("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")

# The OpenAPI document's pattern of a google.protobuf.Duration (seconds).
DURATION_PATTERN = "[0-9]{1,11}"

# The user fields that may be empty, so that PATCH may clear them.
CLEARABLE = {"displayName"}

_lock = threading.Lock()
_password = {"current": os.environ.get("FUZZ_PASSWORD", "")}


def _visible(text):
    return "".join(
        c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") and c not in FILLERS
    )


def _strong_password():
    return secrets.token_urlsafe(18)


def _positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _schema_properties(case):
    """The body schema's properties, whether inline or a component."""
    try:
        content = case.operation.definition.raw["requestBody"]["content"]["application/json"]
        schema = content["schema"]
        ref = schema.get("$ref")
        if ref:
            schema = case.operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return schema.get("properties", {})
    except (KeyError, TypeError, AttributeError):
        return {}


@schemathesis.hook
def map_case(context, case):
    if not _positive(case):
        return case
    if isinstance(case.query, dict):
        case.query.pop("pageToken", None)
    if isinstance(case.body, dict):
        for name, schema in _schema_properties(case).items():
            value = case.body.get(name)
            if not isinstance(value, str) or not isinstance(schema, dict):
                continue
            if DURATION_PATTERN in str(schema):
                case.body[name] = "300s"
            elif schema.get("x-zxcvbn-min-score"):
                case.body[name] = _strong_password()
            elif schema.get("x-visible-text"):
                case.body[name] = _visible(value)
        # "Required unless an admin changes another user's password."
        if case.path.endswith(":changePassword"):
            with _lock:
                case.body["currentPassword"] = _password["current"]
    return case


def _fix_user_patch(body, query):
    """UpdateUser's rule tying the mask to the body (see the module's
    docstring); `body` is changed in place, the query returned."""
    mask = query.get("updateMask")
    if not mask:
        for name in [k for k, v in body.items() if v in ("", None) and k not in CLEARABLE]:
            del body[name]
        if not any(body.get(f) for f in ("username", "email", "displayName", "roles")):
            query = {**query, "updateMask": "displayName"}
    else:
        named = set(str(mask).split(","))
        fresh = secrets.token_hex(6)
        if ("*" in named or "username" in named) and not body.get("username"):
            body["username"] = f"u{fresh}"
        if ("*" in named or "email" in named) and not body.get("email"):
            body["email"] = f"u{fresh}@example.com"
    return query


@schemathesis.hook
def before_call(context, case, kwargs):
    # Just before the call: the stateful phase fills a PATCH from a link (the
    # id, the etag) after map_case would have run.
    if not _positive(case) or case.method.upper() != "PATCH" or not case.path.startswith("/api/v1/users"):
        return
    body = kwargs.get("json")
    if not isinstance(body, dict):
        body = case.body
    if not isinstance(body, dict):
        return
    params = kwargs.get("params")
    query = dict(params) if isinstance(params, dict) else dict(case.query or {})
    query = _fix_user_patch(body, query)
    if isinstance(params, dict):
        params.clear()
        params.update(query)
    case.query = query
    case.body = body
    if "json" in kwargs:
        kwargs["json"] = body


@schemathesis.hook
def after_call(context, case, response):
    # The fuzzer's own password changed: later cases need the new one.
    if (
        case.path.endswith(":changePassword")
        and 200 <= response.status_code < 300
        and isinstance(case.body, dict)
        and (case.path_parameters or {}).get("id") == "me"
    ):
        with _lock:
            _password["current"] = case.body.get("newPassword", _password["current"])
