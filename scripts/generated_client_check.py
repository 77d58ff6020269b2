"""A client generated from the served document (openapi-python-client) in
use: register, log in, read oneself, update, list. Run by
scripts/generated_client_check.sh, which generates the `suite_client`
package and passes the gateway's URL.

Usage: python3 generated_client_check.py http://127.0.0.1:20786
"""

import datetime
import sys
import uuid

from suite_client import AuthenticatedClient, Client
from suite_client.api.auth_service import auth_service_login
from suite_client.api.user_service import (
    user_service_create_user,
    user_service_get_user,
    user_service_list_users,
    user_service_update_user,
)
from suite_client.models import (
    Problem,
    SuiteAuthV1LoginRequest,
    SuiteUserV1CreateUserRequest,
    SuiteUserV1User,
)


def expect(reply, status, what):
    if reply.status_code != status:
        sys.exit(f"{what}: HTTP {int(reply.status_code)}, expected {status}: {reply.content!r}")
    if isinstance(reply.parsed, Problem) or reply.parsed is None:
        sys.exit(f"{what}: no parsed answer: {reply.content!r}")
    print(f"{what}: {int(reply.status_code)}")
    return reply.parsed


def main(base_url):
    name = f"gen_{uuid.uuid4().hex[:12]}"
    password = "correct horse battery staple"
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

    created = expect(
        user_service_create_user.sync_detailed(
            client=anonymous,
            body=SuiteUserV1CreateUserRequest(
                username=name, email=f"{name}@example.com", password=password
            ),
        ),
        201,
        "register",
    )
    tokens = expect(
        auth_service_login.sync_detailed(
            client=anonymous, body=SuiteAuthV1LoginRequest(login=name, password=password)
        ),
        200,
        "login",
    )
    if not tokens.access_token or tokens.token_type != "Bearer":
        sys.exit(f"login: no bearer token in {tokens}")
    client = AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )

    me = expect(user_service_get_user.sync_detailed(id="me", client=client), 200, "me")
    if me.username != name or me.id != created.id:
        sys.exit(f"me: {me} is not the registered {created}")
    # A date-time the document declares comes out as one, not as "any".
    if not isinstance(me.create_time, datetime.datetime):
        sys.exit(f"me: createTime {me.create_time!r} is not read as a datetime")

    updated = expect(
        user_service_update_user.sync_detailed(
            id=uuid.UUID(str(me.id)),
            client=client,
            body=SuiteUserV1User(display_name="Generated Client", etag=me.etag),
            update_mask="displayName",
        ),
        200,
        "update",
    )
    if updated.display_name != "Generated Client" or updated.etag == me.etag:
        sys.exit(f"update: not applied: {updated}")

    page = expect(
        user_service_list_users.sync_detailed(client=client, page_size=100), 200, "list"
    )
    if not any(u.username == name for u in page.users):
        sys.exit(f"list: {name} is not in {page.users}")
    print(f"generated client check: passed ({len(page.users)} users listed)")


if __name__ == "__main__":
    main(sys.argv[1])
