"""Each kind of secret is masked; signature text and ordinary numbers are left alone."""

from __future__ import annotations

import pytest

from bot.diagnosis.redaction import MASK, redact

SECRETS = {
    "bearer": ("Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
    "bare bearer": ("calling with bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
    "jwt": ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.SflKxwRJSMeKKF2QT4fwpM",
            "SflKxwRJSMeKKF2QT4fwpM"),
    "aws key id": ("using AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "aws secret": ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                   "wJalrXUtnFEMI/K7MDENG"),
    "gcp api key": ("key=AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890"),
    "gcp sa key": ('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv..."}', "MIIEv"),
    "azure": ("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123+/def==;",
              "abc123+/def=="),
    "slack bot": ("xoxb-1234567890-0987654321-abcdefABCDEF", "xoxb-1234567890"),
    "slack app": ("xapp-1-A0123456789-1234567890-abcdef", "xapp-1-A0123456789"),
    "github": ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789"),
    "private key block": ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
                          "-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk"),
    "password=": ("login password=hunter2 ok", "hunter2"),
    "passwd:": ("passwd: correcthorse", "correcthorse"),
    "secret=": ("client secret=s3cr3tvalue", "s3cr3tvalue"),
    "quoted json password": ('{"password": "p@ss word"}', "p@ss word"),
    "dsn": ("postgres://app:Sup3rS3cret@db.prod:5432/app", "Sup3rS3cret"),
    "url creds": ("fetching https://user:pa55@example.com/x", "pa55"),
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_is_masked_and_counted(kind: str) -> None:
    text, secret = SECRETS[kind]
    out, count = redact(f"before\n{text}\nafter")
    assert secret not in out
    assert MASK in out
    assert count >= 1
    assert out.startswith("before\n") and out.endswith("\nafter")


@pytest.mark.parametrize("text", [
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a1f2c]",
    "KeyError: 'curl_settings'",
    "tokens processed=512 in 30ms",
    "psycopg.OperationalError: connection to server at \"10.96.14.7\", port 5432 failed",
    "Caused by: com.zaxxer.hikari.pool.HikariPool$PoolInitializationException: Failed",
    "password reset email sent to user 42",
])
def test_crash_text_is_left_intact(text: str) -> None:
    assert redact(text) == (text, 0)


def test_count_is_the_number_of_values_masked() -> None:
    _, count = redact("password=a\npassword=b\nAKIAIOSFODNN7EXAMPLE")
    assert count == 3
