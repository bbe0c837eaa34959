"""The logging choke point: every record, from any logger, reaches every handler redacted."""

from __future__ import annotations

import logging

import httpx
import pytest

from ainfluencer.logging_setup import redact, register_secret

pytestmark = pytest.mark.nodb

BOT_TOKEN = "7012345678:AAH-unregistered_secret_value_0123456789"


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        (f"HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage \"HTTP/1.1 200 OK\"",
         BOT_TOKEN.split(":")[1]),
        (f"GET https://api.telegram.org/file/bot{BOT_TOKEN}/photos/a.jpg", BOT_TOKEN.split(":")[1]),
        ("GET https://graph.facebook.com/v21.0/me?fields=id&access_token=EAAGm0PX4ZCpsBA HTTP/1.1", "EAAGm0PX4ZCpsBA"),
        ("GET /v1/models?key=AIzaSyD-very-secret-key&alt=json", "AIzaSyD-very-secret-key"),
        ("GET /feed?token=tok_4f9a8b7c6d5e&page=2", "tok_4f9a8b7c6d5e"),
        ("Headers: {'User-Agent': 'x', 'Authorization': 'Bearer sk-live-abcdef123456'}", "sk-live-abcdef123456"),
        ("headers=[(b'authorization', b'Basic dXNlcjpwYXNzd29yZA==')]", "dXNlcjpwYXNzd29yZA=="),
        ("Authorization: OAuth oauth_consumer_key=abc", "oauth_consumer_key=abc"),
        ("proxy http://user:hunter2secret@proxy.local:3128", "hunter2secret"),
    ],
)
def test_patterns_mask_unregistered_secrets(raw: str, secret: str) -> None:
    assert secret not in redact(raw)


def test_registered_secret_is_masked_in_any_shape() -> None:
    register_secret("plain-registered-value-42")
    assert "plain-registered-value-42" not in redact("body was {'x': 'plain-registered-value-42'}")


def test_third_party_record_reaches_caplog_redacted(caplog: pytest.LogCaptureFixture) -> None:
    # caplog's handler is not one of ours: redaction must happen where the record is made.
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").debug('HTTP Request: %s %s "%s"', "POST",
                                     httpx.URL(f"https://api.telegram.org/bot{BOT_TOKEN}/getMe"), "HTTP/1.1 200 OK")
    try:
        raise httpx.ConnectError(f"failed https://api.telegram.org/bot{BOT_TOKEN}/getMe")
    except httpx.ConnectError:
        logging.getLogger("telegram.ext").exception("network error")
    assert "/bot***/getMe" in caplog.text
    assert BOT_TOKEN.split(":")[1] not in caplog.text
