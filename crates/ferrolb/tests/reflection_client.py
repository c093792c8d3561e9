"""A ferrolb status client built from server reflection alone: no .proto files, no generated
code. Debian packages grpcio and protobuf but not grpcio-reflection, so this speaks the
grpc.reflection.v1 protocol with hand-encoded messages (three fields), then builds the
ferrolb.v1 message classes from the descriptors the server returns.

Usage: python3 reflection_client.py HOST:PORT  ->  JSON on stdout:
  {"services": [...], "method": "ferrolb.v1.Status/ListSessions", "reply": {...}}
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def fields(buf):
    """(number, bytes) of the length-delimited fields of one message; others skipped."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, i = read_varint(buf, i)
            yield number, buf[i:i + size]
            i += size
        elif wire == 0:
            _, i = read_varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    grpc.channel_ready_future(channel).result(timeout=5)
    reflect = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )

    def ask(request):
        return next(iter(reflect(iter([request]), timeout=5)))

    # ServerReflectionRequest.list_services = 7 -> response.list_service_response = 6,
    # ListServiceResponse.service = 1, ServiceResponse.name = 1.
    reply = ask(field(7, b""))
    services = []
    for number, listing in fields(reply):
        if number == 6:
            for _, service in fields(listing):
                for n, name in fields(service):
                    if n == 1:
                        services.append(name.decode())

    # file_containing_symbol = 4 -> file_descriptor_response = 4, file_descriptor_proto = 1.
    target = next(s for s in services if s.startswith("ferrolb."))
    reply = ask(field(4, target.encode()))
    pool = descriptor_pool.DescriptorPool()
    for number, response in fields(reply):
        if number == 4:
            for n, raw in fields(response):
                if n == 1:
                    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(raw))
    service = pool.FindServiceByName(target)
    method = service.methods_by_name["ListSessions"]
    factory = message_factory.MessageFactory(pool)
    make = getattr(message_factory, "GetMessageClass", None) or factory.GetPrototype
    request_class = make(method.input_type)
    reply_class = make(method.output_type)
    call = channel.unary_unary(
        "/%s/%s" % (service.full_name, method.name),
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    answer = call(request_class(), timeout=5)
    print(json.dumps({
        "services": sorted(services),
        "method": "%s/%s" % (service.full_name, method.name),
        "reply": json_format.MessageToDict(answer, preserving_proto_field_name=True),
    }))


if __name__ == "__main__":
    main()
