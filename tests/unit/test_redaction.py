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
    "env password": ("POSTGRES_PASSWORD=PgS3cr3tV4lue", "PgS3cr3tV4lue"),
    "pgpassword": ("env: PGPASSWORD=An0therPgPass", "An0therPgPass"),
    "prefixed pass": ("DB_PASS=Sh0rtN4mePass", "Sh0rtN4mePass"),
    "azure client secret": ("AZURE_CLIENT_SECRET=Q~7xK9pL2mN4vB8cX1zR6tY3wE5uI0oP-aS",
                            "Q~7xK9pL2mN4vB8cX1zR6tY3wE5uI0oP-aS"),
    "azure sas": ("GET https://x.blob.core.windows.net/a.csv?sv=2022-11-02&sig=Xk4pL9mQ2r%2BuE4i"
                  "O%3D&se=2026", "Xk4pL9mQ2r"),
    "redis empty user": ("redis://:R3d1sP4ssw0rd@cache:6379/0", "R3d1sP4ssw0rd"),
    "gcp oauth": ("token ya29.a0AfB_byC3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4z", "a0AfB_byC3dE4fG5"),
    "npm": ("//registry.npmjs.org/:_authToken=npm_Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5",
            "Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5"),
    "cookie": ("Set-Cookie: session=s%3Aj9Kx2Lm4Np6Qr8Tv0Wx2Yz4; Path=/",
               "j9Kx2Lm4Np6Qr8Tv0Wx2Yz4"),
    "docker auth": ('{"auths": {"r": {"auth": "ZGVwbG95OmRvY2tlclBhc3N3b3JkMQ=="}}}',
                    "ZGVwbG95OmRvY2tlclBhc3N3b3JkMQ"),
    "pgp key": ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBGXk2zQBCADt7Vx9\n"
                "-----END PGP PRIVATE KEY BLOCK-----", "lQOYBGXk2zQBCADt7Vx9"),
    "vault": ("VAULT_TOKEN=hvs.CAESIJlk3Xy9Zw8vUt7sRq6pOn5mLk4jIh3gFe2dCb1aZ", "CAESIJlk3Xy9"),
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
    "SyntaxError: Unexpected token: punc (;)",
    "BYPASS=true COMPASS=north max_tokens=512",
    'MountVolume.SetUp failed for volume "creds" : secret "db-credentials" not found',
    "git fetch ssh://git@github.com:22/org/repo.git",
])
def test_crash_text_is_left_intact(text: str) -> None:
    assert redact(text) == (text, 0)


def test_count_is_the_number_of_values_masked() -> None:
    _, count = redact("password=a\npassword=b\nAKIAIOSFODNN7EXAMPLE")
    assert count == 3


def test_a_service_account_key_counts_once() -> None:
    out, count = redact('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv\\n'
                        '-----END PRIVATE KEY-----\\n", "client_email": "a@b"}')
    assert "MIIEv" not in out and count == 1
