"""A fake Anthropic Messages API over real HTTP on 127.0.0.1, for testing AnthropicModel without mocks.

It records every request, answers from a script (a queue of bodies or a handler),
and injects the faults a real deployment sees: 429 with retry-after, 529, 5xx,
responses slower than the client's timeout, and connection resets.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
    529: "overloaded_error",
}
FAKE_MODEL = "claude-fake-1"
_ids = itertools.count(1)


def usage(input_tokens: int = 12, output_tokens: int = 5, cache_read: int = 0, cache_creation: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_creation,
    }


def message(content: list[dict[str, Any]], stop_reason: str, *, model: str = FAKE_MODEL, usage_: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Claude-shaped Messages API response body."""
    return {
        "id": f"msg_fake_{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_ or usage(),
    }


def text_response(text: str, *, stop_reason: str = "end_turn", model: str = FAKE_MODEL, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return message([{"type": "text", "text": text}], stop_reason, model=model, usage_=usage)


def tool_use_response(
    name: str,
    input: dict[str, Any],
    id: str | None = None,
    *,
    text: str | None = None,
    model: str = FAKE_MODEL,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": id or f"toolu_fake_{next(_ids):06d}", "name": name, "input": input})
    return message(content, "tool_use", model=model, usage_=usage)


def error_body(status: int, message_: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message_ or kind.replace("_", " ")}}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """One injected failure: an error status, a stall longer than the client waits, or a reset."""

    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    seconds: float = 0.0


Scripted = Union[dict[str, Any], Fault]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake._record(RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path.split("?")[0] != "/v1/messages":
            return self._send(404, error_body(404, f"no route {self.path}"))
        if not (self.headers.get("x-api-key") or self.headers.get("authorization")):
            return self._send(401, error_body(401, "missing x-api-key"))
        if not isinstance(body, dict) or not all(k in body for k in ("model", "max_tokens", "messages")):
            return self._send(400, error_body(400, "model, max_tokens and messages are required"))
        answer = fake._next(body)
        if isinstance(answer, Fault):
            return self._fault(answer)
        self._send(200, answer)

    def _fault(self, fault: Fault) -> None:
        if fault.kind == "status":
            return self._send(fault.status, fault.body or error_body(fault.status), fault.headers)
        if fault.kind == "slow":
            self.server.fake._stopping.wait(fault.seconds)
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_fake_{next(_ids):06d}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: "FakeMessagesServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FakeMessagesServer:
    """`with FakeMessagesServer() as srv:` a live POST /v1/messages on 127.0.0.1 at `srv.base_url`.

    Answers, in order: queued faults (`fail_next`, `slow_next`, `reset_next`), then
    the scripted queue (`script(...)`), then `handler(body)`. With nothing left it
    answers 400 so a test that under-scripts fails loudly.
    """

    def __init__(self, *responses: Scripted, handler: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.requests: list[RecordedRequest] = []
        self.handler = handler
        self._faults: deque[Fault] = deque()
        self._queue: deque[Scripted] = deque(responses)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "FakeMessagesServer":
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeMessagesServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def script(self, *responses: Scripted) -> "FakeMessagesServer":
        with self._lock:
            self._queue.extend(responses)
        return self

    def fail_next(self, status: int = 529, times: int = 1, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> "FakeMessagesServer":
        with self._lock:
            self._faults.extend(Fault("status", status, dict(headers or {}), body) for _ in range(times))
        return self

    def slow_next(self, seconds: float, times: int = 1) -> "FakeMessagesServer":
        """Stall `seconds` then drop the connection: a response slower than the client's timeout."""
        with self._lock:
            self._faults.extend(Fault("slow", seconds=seconds) for _ in range(times))
        return self

    def reset_next(self, times: int = 1) -> "FakeMessagesServer":
        """Close the socket with RST and no response."""
        with self._lock:
            self._faults.extend(Fault("reset") for _ in range(times))
        return self

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _next(self, body: dict[str, Any]) -> Scripted:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(body)
        return Fault("status", 400, {"x-should-retry": "false"}, error_body(400, "fake server: nothing scripted"))
