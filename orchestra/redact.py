"""Secret redaction for everything Orchestra writes down: spans, store rows, cassettes, reports.

Two sources of secrets: values of environment variables whose names look secret
(`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, values of 8+ characters) plus any
registered with `add_secret`, and shapes that are secret wherever they appear
(`sk-ant-...`, `Bearer ...`, `x-api-key: ...`, `SOME_TOKEN=...`).
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_SECRET_FIELD = re.compile(
    r"(^|[_\-.])(x[_\-]api[_\-]key|api[_\-]?key|authorization|proxy[_\-]authorization|password|passwd|secret|"
    r"client[_\-]secret|secret[_\-]key|private[_\-]key|access[_\-]token|refresh[_\-]token|auth[_\-]token|"
    r"session[_\-]token|bearer[_\-]token)$",
    re.IGNORECASE,
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]+"), REDACTED),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (
        re.compile(r"""(x-api-key|api[_-]?key|authorization)(["']?\s*[:=]\s*["']?)(?!\[REDACTED\]|Bearer\b|Basic\b)([^\s"',;}\]]+)""", re.IGNORECASE),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"\b([A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*)=(?!\[REDACTED\])([^\s\"',;]{8,})"), r"\1=" + REDACTED),
]

# Cheap pre-checks: a string matching neither cannot match any pattern above.
_TRIGGER_CI = re.compile(r"bearer|basic|api[_-]?key|authorization", re.IGNORECASE)
_TRIGGER_CS = re.compile(r"sk-ant-|KEY|TOKEN|SECRET|PASSWORD")

_extra: set[str] = set()
_extra_version = [0]
_extra_lock = threading.Lock()


@lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def add_secret(value: str | None) -> None:
    """Register a secret that is not in the environment (an API key passed as an argument)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _extra_lock:
            if value not in _extra:
                _extra.add(value)
                _extra_version[0] += 1


def _snapshot() -> tuple[str, ...]:
    """Secret values now; the environment is re-scanned only when it changed (compared at C speed)."""
    data = getattr(os.environ, "_data", None)
    env_key = tuple(data.items()) if isinstance(data, dict) else tuple(os.environ.items())
    with _extra_lock:
        return _snapshot_for(env_key, _extra_version[0])


@lru_cache(maxsize=4)
def _snapshot_for(env_key: tuple, extra_version: int) -> tuple[str, ...]:
    env = tuple(v for k, v in os.environ.items() if _is_secret_name(k) and len(v) >= MIN_SECRET_LEN)
    return tuple(sorted(set(env + tuple(_extra))))


@lru_cache(maxsize=8)
def _values_for(snapshot: tuple[str, ...]) -> tuple[frozenset[str], re.Pattern[str] | None]:
    if not snapshot:
        return frozenset(), None
    ordered = sorted(snapshot, key=len, reverse=True)
    return frozenset(snapshot), re.compile("|".join(re.escape(v) for v in ordered))


def secret_values() -> frozenset[str]:
    """The secret values known right now; recomputed only when the environment's secrets change."""
    return _values_for(_snapshot())[0]


def redact_text(text: str) -> str:
    """Redact one string: known secret values first, then secret-shaped patterns."""
    _, known = _values_for(_snapshot())
    return _redact_str(text, known)


def _redact_str(text: str, known: re.Pattern[str] | None) -> str:
    if known is not None:
        text = known.sub(REDACTED, text)
    if not (_TRIGGER_CS.search(text) or _TRIGGER_CI.search(text)):
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact(value: Any) -> Any:
    """A copy of `value` (str / dict / list / tuple, nested) with secrets replaced by "[REDACTED]"."""
    _, known = _values_for(_snapshot())
    return _walk(value, known)


def _walk(value: Any, known: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return _redact_str(value, known)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = _redact_str(k, known) if isinstance(k, str) else k
            if isinstance(k, str) and isinstance(v, str) and v and _SECRET_FIELD.search(k):
                out[key] = REDACTED
            else:
                out[key] = _walk(v, known)
        return out
    if isinstance(value, list):
        return [_walk(v, known) for v in value]
    if isinstance(value, tuple):
        return tuple(_walk(v, known) for v in value)
    return value
