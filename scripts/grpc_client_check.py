#!/usr/bin/env python3
"""An independent client's view of a running user service: Python grpcio, no
.proto files, everything discovered through server reflection.

    pip install grpcio grpcio-reflection protobuf
    python3 scripts/grpc_client_check.py 127.0.0.1:50051

Lists the services, registers a user through a message built from the
reflected descriptors, checks that a bad registration names its fields in a
google.rpc.BadRequest, and that health says SERVING. Exits non-zero on failure.
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


def main(target: str) -> int:
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
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"))
