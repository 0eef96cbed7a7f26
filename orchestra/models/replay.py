"""ReplayModel: record real model exchanges to a cassette once, replay them offline forever.

Cassette format (JSON, redacted with `orchestra.redact.redact`):

    {"version": 1,
     "model": {"name": ..., "provider": ...},
     "interactions": [{"agent", "request_hash", "request", "response"} | {..., "error"}]}

Matching: a request is answered by the first unused interaction with the same
`request_hash`; an identical request asked again reuses the last such answer;
otherwise (unless `strict`) the agent's next unused interaction in recorded order. The hash covers what the model sees (agent, system text, messages,
tool schemas, max_tokens) with two things normalised away: tool_use ids, which
are minted by the model or policy and differ between runs, are renumbered by
first appearance; and secrets, since the hash is taken over the redacted request.
Cache flags and `rules` (policy-only input) are not part of the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..redact import redact
from .base import Model, ModelError, ModelRequest, ModelResponse

CASSETTE_VERSION = 1


def request_hash(request: ModelRequest) -> str:
    """A stable sha256 of what the model sees, independent of tool_use ids and secrets."""
    data = redact(request.model_dump(mode="json"))
    ids: dict[str, str] = {}

    def norm(tool_id: str) -> str:
        return ids.setdefault(tool_id, f"toolu_{len(ids)}")

    messages = []
    for m in data["messages"]:
        blocks = []
        for b in m["content"]:
            b = dict(b)
            if b["type"] == "tool_use":
                b["id"] = norm(b["id"])
            elif b["type"] == "tool_result":
                b["tool_use_id"] = norm(b["tool_use_id"])
            blocks.append(b)
        messages.append({"role": m["role"], "content": blocks})
    canonical = {
        "agent": data["agent"],
        "system": [s["text"] for s in data["system"]],
        "messages": messages,
        "tools": data["tools"],
        "max_tokens": data["max_tokens"],
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ReplayModel:
    """Records through an inner model (`record`) or answers from a cassette (`replay`); thread-safe."""

    def __init__(self, cassette: Path, *, inner: Model | None = None, strict: bool = False):
        self.cassette = Path(cassette)
        self.inner = inner
        self.strict = strict
        self.fallbacks = 0
        self._lock = threading.Lock()
        self._used: set[int] = set()
        if inner is not None:
            self.name, self.provider = inner.name, inner.provider
            self._interactions: list[dict[str, Any]] = []
            self._save()
        else:
            data = load_cassette(self.cassette)
            meta = data.get("model") or {}
            self.name = meta.get("name", "replay")
            self.provider = meta.get("provider", "orchestra.replay")
            self._interactions = data["interactions"]

    @classmethod
    def record(cls, inner: Model, cassette: Path) -> "ReplayModel":
        """Wrap `inner`; every exchange (or ModelError) is appended to a fresh cassette at `cassette`."""
        return cls(cassette, inner=inner)

    @classmethod
    def replay(cls, cassette: Path, *, strict: bool = False) -> "ReplayModel":
        """Answer from `cassette` without any model; `strict` disables the per-agent order fallback."""
        return cls(cassette, strict=strict)

    @property
    def recording(self) -> bool:
        return self.inner is not None

    def complete(self, request: ModelRequest) -> ModelResponse:
        return self._record(request) if self.inner is not None else self._replay(request)

    def _record(self, request: ModelRequest) -> ModelResponse:
        assert self.inner is not None
        entry: dict[str, Any] = {
            "agent": request.agent,
            "request_hash": request_hash(request),
            "request": redact(request.model_dump(mode="json")),
        }
        try:
            response = self.inner.complete(request)
        except ModelError as e:
            entry["error"] = redact(str(e))
            self._append(entry)
            raise
        entry["response"] = redact(response.model_dump(mode="json"))
        self._append(entry)
        return response

    def _append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._interactions.append(entry)
            self._save()

    def _save(self) -> None:
        data = {
            "version": CASSETTE_VERSION,
            "model": {"name": self.name, "provider": self.provider},
            "interactions": self._interactions,
        }
        self.cassette.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cassette.parent, prefix=f".{self.cassette.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, self.cassette)

    def _replay(self, request: ModelRequest) -> ModelResponse:
        h = request_hash(request)
        with self._lock:
            index = self._find(lambda e: e["request_hash"] == h)
            if index is None:
                index = self._find(lambda e: e["request_hash"] == h, used=True)
            if index is None and not self.strict:
                index = self._find(lambda e: e["agent"] == request.agent)
                if index is not None:
                    self.fallbacks += 1
            if index is None:
                raise ModelError(
                    f"no recorded response for agent {request.agent!r} (request {h[:12]}) in cassette {self.cassette}"
                )
            self._used.add(index)
            entry = self._interactions[index]
        if "error" in entry:
            raise ModelError(entry["error"])
        return ModelResponse.model_validate(entry["response"])

    def _find(self, match: Any, used: bool = False) -> int | None:
        """First unused match, or with `used` the last already-used one (an identical request asked again)."""
        if used:
            return next((i for i in sorted(self._used, reverse=True) if match(self._interactions[i])), None)
        return next((i for i, e in enumerate(self._interactions) if i not in self._used and match(e)), None)


def load_cassette(path: Path) -> dict[str, Any]:
    """Read and check a cassette; a missing, corrupt or future-version file is a ModelError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"cassette not found: {path}") from None
    except ValueError as e:
        raise ModelError(f"cassette {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("version") != CASSETTE_VERSION or not isinstance(data.get("interactions"), list):
        raise ModelError(f"cassette {path}: unsupported format (want version {CASSETTE_VERSION} with interactions)")
    return data
