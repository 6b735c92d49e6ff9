#!/usr/bin/python3
"""A tiny gRPC service and client for recording real gRPC traffic, with grpcio's generic
handlers and raw-bytes serializers, so no .proto file or protoc is needed.

Service demo.v1.Echo:
  Say   (unary)             echoes the request
  Count (server streaming)  sends back N messages, N = the request's length
  Find  (unary)             always fails with NOT_FOUND and a message

Usage: echo.py serve ADDR:PORT | echo.py call ADDR:PORT
"""
import sys
from concurrent import futures

import grpc

SERVICE = "demo.v1.Echo"


def say(request, context):
    return request


def count(request, context):
    for i in range(len(request)):
        yield b"item-%d" % i


def find(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such item: " + request.decode())


def serve(addr):
    ident = lambda b: b
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say, ident, ident),
        "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident),
        "Find": grpc.unary_unary_rpc_method_handler(find, ident, ident),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(addr)
    server.start()
    print("serving", addr, flush=True)
    server.wait_for_termination()


def call(addr):
    ident = lambda b: b
    with grpc.insecure_channel(addr) as ch:
        say = ch.unary_unary(f"/{SERVICE}/Say", ident, ident)
        cnt = ch.unary_stream(f"/{SERVICE}/Count", ident, ident)
        find = ch.unary_unary(f"/{SERVICE}/Find", ident, ident)
        print(say(b"hello palisade", timeout=5))
        print(list(cnt(b"12345", timeout=5)))
        try:
            find(b"widget-7", timeout=5)
        except grpc.RpcError as e:
            print(e.code(), e.details())
        # Compressed request and response (grpc-encoding: gzip, compressed flag set).
        print(say(b"squeeze me " * 50, timeout=5, compression=grpc.Compression.Gzip))


if __name__ == "__main__":
    {"serve": serve, "call": call}[sys.argv[1]](sys.argv[2])
