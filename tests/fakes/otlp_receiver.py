"""Real OTLP trace receivers on 127.0.0.1 (HTTP/protobuf and gRPC), plus endpoints that fail.

The receivers decode `ExportTraceServiceRequest`s with the OpenTelemetry proto
package and keep every request's path or metadata, raw bytes and flattened
spans, so tests assert on what actually crossed the wire.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def any_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


@dataclass
class Received:
    """One export request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    raw: bytes
    request: trace_service_pb2.ExportTraceServiceRequest

    def resources(self) -> list[dict[str, Any]]:
        return [{kv.key: any_value(kv.value) for kv in rs.resource.attributes} for rs in self.request.resource_spans]

    def spans(self) -> list[dict[str, Any]]:
        out = []
        for rs in self.request.resource_spans:
            res = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append({
                        "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent_id": s.parent_span_id.hex() or None, "kind": KINDS[s.kind], "status": STATUS[s.status.code],
                        "status_message": s.status.message, "attributes": {kv.key: any_value(kv.value) for kv in s.attributes},
                        "scope": ss.scope.name, "schema_url": ss.schema_url, "resource": res,
                    })
        return out


@dataclass
class _Store:
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def add(self, r: Received) -> None:
        with self.arrived:
            self.requests.append(r)
            self.arrived.notify_all()


class _Receiver:
    """What both receivers share: recorded requests and a wait for N spans."""

    def __init__(self) -> None:
        self._store = _Store()

    @property
    def requests(self) -> list[Received]:
        with self._store.lock:
            return list(self._store.requests)

    def spans(self) -> list[dict[str, Any]]:
        return [s for r in self.requests for s in r.spans()]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Spans received so far once at least `n` arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        with self._store.arrived:
            while sum(len(r.spans()) for r in self._store.requests) < n and (left := deadline - time.monotonic()) > 0:
                self._store.arrived.wait(left)
        return self.spans()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.path not in self.server.paths or self.headers.get("Content-Type") != "application/x-protobuf":
            self._reply(404, b"")
            return
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        self.server.store.add(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, request))
        self._reply(200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    store: _Store
    paths: tuple[str, ...]


class HTTPReceiver(_Receiver):
    """OTLP/HTTP protobuf receiver; answers 404 on any path but `paths` (default /v1/traces)."""

    def __init__(self, paths: tuple[str, ...] = ("/v1/traces",)) -> None:
        super().__init__()
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.store, self._server.paths = self._store, paths
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "HTTPReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self.store = store

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        headers = {k.lower(): v for k, v in context.invocation_metadata()}
        self.store.add(Received("/opentelemetry.proto.collector.trace.v1.TraceService/Export", headers, request.SerializeToString(), request))
        return trace_service_pb2.ExportTraceServiceResponse()


class GRPCReceiver(_Receiver):
    """OTLP/gRPC receiver implementing TraceService/Export."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._store), self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> "GRPCReceiver":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"


class BlackHole:
    """A TCP server that accepts connections and never answers (a hung collector)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._conns: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
                self._conns.append(conn)
            except OSError:
                continue

    def __enter__(self) -> "BlackHole":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopped.set()
        self._thread.join(1.0)
        for c in self._conns:
            c.close()
        self._sock.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"


def dead_url() -> str:
    """An http URL on a 127.0.0.1 port nothing listens on."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"
