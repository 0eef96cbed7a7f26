"""redact(): environment secrets and secret-shaped strings never reach spans, stores or cassettes."""

from __future__ import annotations

import pytest

from orchestra.redact import REDACTED, add_secret, redact, redact_text, secret_values


def test_secret_env_values_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_KEY", "hunter2hunter2")
    monkeypatch.setenv("github_token", "gh-abcdefgh")
    monkeypatch.setenv("DB_PASSWORD", "correct horse")
    monkeypatch.setenv("Client_Secret_X", "s3cr3t-value")
    monkeypatch.setenv("SHORT_KEY", "abc")
    monkeypatch.setenv("HOME_DIR_PLAIN", "not-a-secret-value")
    text = "k=hunter2hunter2 t=gh-abcdefgh p=correct horse s=s3cr3t-value short=abc plain=not-a-secret-value"
    out = redact(text)
    for secret in ("hunter2hunter2", "gh-abcdefgh", "correct horse", "s3cr3t-value"):
        assert secret not in out
    assert "short=abc" in out and "plain=not-a-secret-value" in out


def test_env_changes_are_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATING_TOKEN", "first-value-1")
    assert redact("first-value-1") == REDACTED
    first = secret_values()
    assert secret_values() is first
    monkeypatch.setenv("ROTATING_TOKEN", "second-value-2")
    assert "second-value-2" in secret_values() and "first-value-1" not in secret_values()
    assert redact("second-value-2") == REDACTED


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("key sk-ant-api03-AbC_d-123 in a log", "sk-ant-api03-AbC_d-123"),
        ("Authorization: Bearer eyJhbGciOi.J9.abc", "eyJhbGciOi.J9.abc"),
        ("x-api-key: abcdefgh12345", "abcdefgh12345"),
        ('{"x-api-key": "zzzzyyyy9999"}', "zzzzyyyy9999"),
        ("export OPENAI_API_KEY=qwertyuiop123", "qwertyuiop123"),
    ],
)
def test_secret_shapes_are_redacted(text: str, gone: str) -> None:
    out = redact_text(text)
    assert gone not in out and REDACTED in out


def test_structures_are_walked_and_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-PLANTED-123456")
    value = {
        "headers": {"x-api-key": "opaque-value-1", "Authorization": "Basic dXNlcjpwYXNz", "accept": "application/json"},
        "messages": [{"text": "my key is sk-ant-test-PLANTED-123456"}, ("tuple", "PLANTED-123456 alone")],
        "usage": {"input_tokens": 12, "max_tokens": 4096, "cache_read_input_tokens": 3},
        "tokenizer": "cl100k-base",
        "n": 3.5,
        "none": None,
    }
    out = redact(value)
    assert out["headers"] == {"x-api-key": REDACTED, "Authorization": REDACTED, "accept": "application/json"}
    assert out["messages"][0]["text"] == f"my key is {REDACTED}"
    assert isinstance(out["messages"][1], tuple)
    assert out["usage"] == value["usage"] and out["tokenizer"] == "cl100k-base" and out["n"] == 3.5 and out["none"] is None
    assert value["headers"]["x-api-key"] == "opaque-value-1"
    assert "sk-ant-test-PLANTED-123456" not in repr(out)


def test_added_secrets_are_redacted() -> None:
    add_secret("explicit-arg-key-42")
    add_secret("short")
    assert redact_text("using explicit-arg-key-42") == f"using {REDACTED}"
    assert redact_text("short") == "short"


def test_plain_text_is_untouched() -> None:
    text = "Landing at site A: shadow_fraction 0.31, max_tokens=4096, token budget 8000."
    assert redact(text) == text
