#!/usr/bin/env python3
"""An independent client's view of the running suite: Python grpcio, no
.proto files, everything discovered through server reflection.

    pip install grpcio grpcio-reflection protobuf googleapis-common-protos
    python3 scripts/grpc_client_check.py 127.0.0.1:50051 127.0.0.1:50052

Against the user service: lists the services, registers a user through a
message built from the reflected descriptors, checks that a bad registration
names its fields in a google.rpc.BadRequest, and that health says SERVING.
With the auth service's address too: logs in, calls GetUser as `me` with the
access token, and refreshes. Exits non-zero on failure.
"""
import sys
import uuid

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def unary(channel, pool, service: str, method: str):
    """A callable for one unary method, with message classes from reflection."""
    desc = pool.FindServiceByName(service).methods_by_name[method]
    request_cls = message_factory.GetMessageClass(desc.input_type)
    response_cls = message_factory.GetMessageClass(desc.output_type)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )
    return call, request_cls


def main(target: str, auth_target: str | None) -> int:
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    print("services:", sorted(services))
    for needed in ("suite.user.v1.UserService", "grpc.health.v1.Health"):
        assert needed in services, f"{needed} not listed by reflection"

    pool = descriptor_pool.DescriptorPool(db)
    create, request_cls = unary(channel, pool, "suite.user.v1.UserService", "CreateUser")
    name = "py" + uuid.uuid4().hex[:10]
    reply = create(request_cls(username=name, email=f"{name}@example.com", password="a python wrote this 2026"))
    print("created:", reply.user.id, reply.user.username, list(reply.user.roles))
    assert reply.user.username == name and list(reply.user.roles) == ["user"]

    try:
        create(request_cls(username="x", email="nope", password="short"))
        raise AssertionError("a bad registration was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        details = dict(e.trailing_metadata()).get("grpc-status-details-bin")
        assert details, "no google.rpc.Status details"
        from google.rpc import error_details_pb2, status_pb2  # noqa: PLC0415

        status = status_pb2.Status.FromString(details)
        fields = []
        for any_detail in status.details:
            bad = error_details_pb2.BadRequest()
            if any_detail.Unpack(bad):
                fields += [v.field for v in bad.field_violations]
        print("bad request fields:", fields)
        assert fields == ["username", "email", "password"], fields

    check, hreq = unary(channel, pool, "grpc.health.v1.Health", "Check")
    status = check(hreq(service="suite.user.v1.UserService")).status
    print("health:", status)
    assert status == 1, "not SERVING"

    if auth_target:
        auth_channel = grpc.insecure_channel(auth_target)
        grpc.channel_ready_future(auth_channel).result(timeout=10)
        auth_pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(auth_channel))
        login, login_req = unary(auth_channel, auth_pool, "suite.auth.v1.AuthService", "Login")
        tokens = login(login_req(login=name, password="a python wrote this 2026", user_agent="python"))
        print("logged in: session", tokens.session_id, "expires in", tokens.expires_in)
        get, get_req = unary(channel, pool, "suite.user.v1.UserService", "GetUser")
        me = get(get_req(id="me"), metadata=[("authorization", f"Bearer {tokens.access_token}")])
        assert me.user.username == name, me
        print("GetUser me:", me.user.username, me.user.email)
        refresh, refresh_req = unary(auth_channel, auth_pool, "suite.auth.v1.AuthService", "Refresh")
        again = refresh(refresh_req(refresh_token=tokens.refresh_token))
        assert again.refresh_token != tokens.refresh_token
        print("refreshed")
    print("OK")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0] if args else "127.0.0.1:50051", args[1] if len(args) > 1 else None))
