"""AnthropicModel: Claude through the `anthropic` SDK, speaking the Orchestra model protocol.

Instructions, playbook and tool schemas are sent as a cached prefix (prompt
caching). Retries are ours, not the SDK's: the SDK retries the same failures
(408/409/429/5xx incl. 529, timeouts, connection errors) but its backoff base is
a module constant, it obeys any `retry-after` however long, and it does not say
how many attempts were made; we need all three configurable or reported.
"""

from __future__ import annotations

import email.utils
import inspect
import ipaddress
import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import anthropic

from ..redact import add_secret, redact_text
from .base import (
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    model_requests_allowed,
)

log = logging.getLogger(__name__)

CACHE = {"type": "ephemeral"}
MAX_CACHE_BREAKPOINTS = 4
_NO_CREDENTIALS = "no Anthropic credentials for {}: set ANTHROPIC_API_KEY or pass api_key="
_SDK_SPANS_OPTION = "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters
_CredentialsError: Any = getattr(anthropic, "CredentialsError", ())
_STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}


class AnthropicModel:
    """Claude via the Messages API, with prompt caching, bounded retries and timeouts."""

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout: float = 60.0,
        max_tokens: int | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_retry_after: float = 60.0,
        sdk_spans: bool = False,
    ):
        self.name = model
        self.max_retries = max(0, max_retries)
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.max_retry_after = max_retry_after
        key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        add_secret(key)
        options: dict[str, Any] = {"open_telemetry": None if sdk_spans else False} if _SDK_SPANS_OPTION else {}
        try:
            self._client = anthropic.Anthropic(
                api_key=key,
                base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
                max_retries=0,
                timeout=timeout,
                **options,
            )
        except _CredentialsError as e:
            raise ModelError(f"{_NO_CREDENTIALS.format(model)} ({_one_line(redact_text(str(e)))})") from None
        except Exception as e:
            raise ModelError(f"anthropic client for {model}: {type(e).__name__}: {_one_line(redact_text(str(e)))}") from None

    def __repr__(self) -> str:
        return f"AnthropicModel({self.name!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def close(self) -> None:
        self._client.close()

    def complete(self, request: ModelRequest) -> ModelResponse:
        self._check_allowed()
        c = self._client
        if not (c.api_key or c.auth_token or getattr(c, "credentials", None)):
            raise ModelError(_NO_CREDENTIALS.format(self.name))
        params = to_params(request, self.name, self.max_tokens)
        attempt = 0
        while True:
            attempt += 1
            try:
                message = self._client.messages.create(**params)
                return from_message(message, self.name)
            except anthropic.APIStatusError as e:
                if attempt > self.max_retries or not _retryable_status(e.response):
                    raise ModelError(self._describe(e, attempt)) from None
                delay = self._delay(attempt, e.response.headers)
                reason = f"HTTP {e.status_code}"
            except anthropic.APIConnectionError as e:
                if attempt > self.max_retries:
                    raise ModelError(self._describe(e, attempt)) from None
                delay = self._delay(attempt, None)
                reason = type(e).__name__
            except anthropic.AnthropicError as e:
                raise ModelError(self._describe(e, attempt)) from None
            log.warning("%s: attempt %d failed (%s), retrying in %.2fs", self.name, attempt, reason, delay)
            time.sleep(delay)

    def _check_allowed(self) -> None:
        if not model_requests_allowed() and not is_loopback(self.base_url):
            raise ModelError(
                f"model requests are disabled (allow_model_requests(False)); refusing {self.name} at {self.base_url}"
            )

    def _delay(self, attempt: int, headers: Mapping[str, str] | None) -> float:
        """Server's retry-after (capped) when given, else exponential backoff with jitter."""
        after = retry_after_seconds(headers)
        if after is not None and after > 0:
            return min(after, self.max_retry_after)
        backoff = min(self.retry_base_delay * 2 ** (attempt - 1), self.retry_max_delay)
        return backoff * (1 - 0.25 * random.random())

    def _describe(self, e: Exception, attempt: int) -> str:
        tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
        where = f"{self.name} at {self.base_url}"
        if isinstance(e, anthropic.APIStatusError):
            error = e.body.get("error") if isinstance(e.body, dict) else None
            error = error if isinstance(error, dict) else {}
            kind = getattr(e, "type", None) or error.get("type") or "error"
            msg = getattr(e, "api_message", None) or error.get("message") or ""
            rid = getattr(e, "request_id", None)
            rid = f", request_id {rid}" if rid else ""
            text = f"anthropic {where}: HTTP {e.status_code} {kind}: {msg} (after {tries}{rid})"
        elif isinstance(e, anthropic.APITimeoutError):
            text = f"anthropic {where}: timed out after {self.timeout:g}s (after {tries})"
        elif isinstance(e, anthropic.APIConnectionError):
            cause = type(e.__cause__).__name__ if e.__cause__ else "connection error"
            text = f"anthropic {where}: connection failed: {cause} (after {tries})"
        else:
            text = f"anthropic {where}: {type(e).__name__}: {e} (after {tries})"
        return _one_line(redact_text(text))


def to_params(request: ModelRequest, model: str, max_tokens: int | None = None) -> dict[str, Any]:
    """The messages.create keyword arguments for a request; tools then system form the cached prefix."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens or request.max_tokens,
        "messages": [_message(m) for m in request.messages],
    }
    budget = MAX_CACHE_BREAKPOINTS - (1 if request.tools else 0)
    system = [s for s in request.system if s.text]
    cached = [i for i, s in enumerate(system) if s.cache][-budget:] if budget > 0 else []
    if system:
        params["system"] = [
            {"type": "text", "text": s.text, **({"cache_control": dict(CACHE)} if i in cached else {})}
            for i, s in enumerate(system)
        ]
    if request.tools:
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in request.tools
        ]
        tools[-1]["cache_control"] = dict(CACHE)
        params["tools"] = tools
    return params


def _message(m: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for b in m.content:
        if isinstance(b, TextBlock):
            if b.text or len(m.content) == 1:
                blocks.append({"type": "text", "text": b.text})
        elif isinstance(b, ToolUseBlock):
            blocks.append({"type": "tool_use", "id": b.id, "name": b.name, "input": dict(b.input)})
        elif isinstance(b, ToolResultBlock):
            blocks.append({"type": "tool_result", "tool_use_id": b.tool_use_id, "content": b.content, "is_error": b.is_error})
    return {"role": m.role, "content": blocks}


def from_message(message: Any, fallback_model: str = "") -> ModelResponse:
    """An SDK Message as a ModelResponse; block types the protocol lacks (thinking, server tools) are dropped."""
    content: list[Any] = []
    for b in message.content or []:
        kind = getattr(b, "type", None)
        if kind == "text":
            content.append(TextBlock(text=b.text))
        elif kind == "tool_use":
            content.append(ToolUseBlock(id=b.id, name=b.name, input=dict(b.input or {})))
    u = message.usage
    usage = Usage(
        input_tokens=getattr(u, "input_tokens", 0) or 0,
        output_tokens=getattr(u, "output_tokens", 0) or 0,
        cache_read_input_tokens=getattr(u, "cache_read_input_tokens", 0) or 0,
        cache_creation_input_tokens=getattr(u, "cache_creation_input_tokens", 0) or 0,
    )
    stop = _STOP_REASONS.get(message.stop_reason or "", "end_turn")
    return ModelResponse(content=content, stop_reason=stop, usage=usage, model=message.model or fallback_model)


def _retryable_status(response: Any) -> bool:
    """The SDK's own policy: obey x-should-retry, else 408, 409, 429 and every 5xx (529 overloaded too)."""
    hint = response.headers.get("x-should-retry")
    if hint in ("true", "false"):
        return hint == "true"
    return response.status_code in (408, 409, 429) or response.status_code >= 500


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """`retry-after-ms`, else `retry-after` as seconds or an HTTP date; None when absent or unparsable."""
    if headers is None:
        return None
    try:
        return float(headers.get("retry-after-ms")) / 1000  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else float(email.utils.mktime_tz(parsed) - time.time())


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
