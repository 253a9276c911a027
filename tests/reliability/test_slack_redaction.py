"""Redaction, end to end: a corpus of one line per kind of secret, plus look-alikes that
must survive, is put into simulated crash logs (and a termination message, and an event);
then everything the served bot sends to the fake Slack — message text and blocks,
ephemeral answers, uploaded files — is searched for the secrets, for a drill-down (inline
log and uploaded log), a Why? button, `/restarts <ns>` (+ `--all`) and the daily digest.
The drill-down must say how many values were redacted."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cluster.client import connect
from bot.schedule.digest_job import DigestJob
from bot.sim import objects as o
from bot.slack.digests import SlackDigestPoster
from bot.slack.posting import Services
from bot.store import Store
from tests.conftest import Sim, start_sim
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.reliability.conftest import Held
from tests.reliability.slack_served import Bot, sent_to_slack, served_bot
from tests.support.settings import amend

NS = "secrets"

# (kind, line as it appears in a log, the value that must never reach Slack)
SECRETS: list[tuple[str, str, str]] = [
    ("bearer header", "GET /v1/orders Authorization: Bearer 7f9c2ba4e88f827d616045507605853e",
     "7f9c2ba4e88f827d616045507605853e"),
    ("bearer in curl", 'curl -H "Authorization: Bearer sl.BAbCdEfGhIjKlMnOpQrStUvWxYz0123" '
     "https://api.example.com", "sl.BAbCdEfGhIjKlMnOpQrStUvWxYz0123"),
    ("basic auth header", "upstream headers: Authorization: Basic "
     "YWRtaW46Y29ycmVjdGhvcnNlYmF0dGVyeQ==", "YWRtaW46Y29ycmVjdGhvcnNlYmF0dGVyeQ"),
    ("proxy basic auth", "Proxy-Authorization: Basic cHJveHl1c2VyOnByb3h5cGFzcw==",
     "cHJveHl1c2VyOnByb3h5cGFzcw"),
    ("aws access key id", "botocore: using access key AKIA4XJQ7ZT2LMNOPQRS for s3",
     "AKIA4XJQ7ZT2LMNOPQRS"),
    ("aws secret key", "aws_secret_access_key = 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",
     "q8Hk3Lm9Pz2Rt7Wv4Xy6Bn1Cd5Fg0Jh8Kl3Mn7Pq"),
    ("aws secret env", "AWS_SECRET_ACCESS_KEY=Zp4Tq8Wm2Xr6Vn0Bs3Kd7Lf1Hj5Gc9Ya2Ue6Io4Pq",
     "Zp4Tq8Wm2Xr6Vn0Bs3Kd7Lf1Hj5Gc9Ya2Ue6Io4Pq"),
    ("aws session token", "AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQD6x8Zk",
     "IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJHMEUCIQD6x8Zk"),
    ("gcp api key", "maps: key=AIzaSyD3xQ9vL2mN7pR4tK8wZ1cF6hJ0bY5sE3u rejected",
     "AIzaSyD3xQ9vL2mN7pR4tK8wZ1cF6hJ0bY5sE3u"),
    ("gcp service account", '{"type": "service_account", "private_key": "-----BEGIN PRIVATE '
     'KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n", '
     '"client_email": "svc@proj.iam.gserviceaccount.com"}', "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ("gcp oauth token", "google.auth: refreshed access token "
     "ya29.a0AfB_byC3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4z", "a0AfB_byC3dE4fG5hI6jK7lM8nO9pQ0"),
    ("azure storage key", "DefaultEndpointsProtocol=https;AccountName=ledgerstore;AccountKey="
     "Jq3+Xv9/Lm2Pz8Rt4Wy7Bn1Cd6Fg0Hk5Mp3Qs8Tv2Xz4==;EndpointSuffix=core.windows.net",
     "Jq3+Xv9/Lm2Pz8Rt4Wy7Bn1Cd6Fg0Hk5Mp3Qs8Tv2Xz4"),
    ("azure sas signature", "GET https://ledgerstore.blob.core.windows.net/exports/day.csv?"
     "sv=2022-11-02&ss=b&sp=r&se=2026-12-01T00:00:00Z&sig=Xk4pL9mQ2rT7vW1yZ3bN6cF8hJ0dS5gA"
     "%2BuE4iO%3D 403", "Xk4pL9mQ2rT7vW1yZ3bN6cF8hJ0dS5gA"),
    ("azure client secret", "AZURE_CLIENT_SECRET=Q~7xK9pL2mN4vB8cX1zR6tY3wE5uI0oP-aS",
     "Q~7xK9pL2mN4vB8cX1zR6tY3wE5uI0oP-aS"),
    ("slack bot token", "slack: posting with xoxb-2837465019-8273645512-ZqXwCeVrBtNyMuI3kO9pL2mJ",
     "ZqXwCeVrBtNyMuI3kO9pL2mJ"),
    ("slack user token", "SLACK_USER_TOKEN=xoxp-2837465019-2837465020-8273645512-a1b2c3d4e5f6",
     "a1b2c3d4e5f6"),
    ("slack app token", "socket mode: xapp-1-A08QWERTY12-8273645512345-f00dfacecafebeef0123",
     "f00dfacecafebeef0123"),
    ("slack webhook", "notify: https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/"
     "q1W2e3R4t5Y6u7I8o9P0aSdF", "q1W2e3R4t5Y6u7I8o9P0aSdF"),
    ("github token in url", "git clone https://ghp_Q4wE8rT2yU6iO0pA3sD7fG1hJ5kL9zX3cV7b@"
     "github.com/org/repo.git", "ghp_Q4wE8rT2yU6iO0pA3sD7fG1hJ5kL9zX3cV7b"),
    ("github fine-grained", "GITHUB_TOKEN=github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ012345"
     "6789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234", "mNoPqRsTuVwXyZ0123456789"),
    ("github app token", "installation token ghs_Z9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8c",
     "ghs_Z9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8c"),
    ("gitlab token", "GITLAB_TOKEN=glpat-Xy9_Zw8vUt7sRq6pOn5m", "glpat-Xy9_Zw8vUt7sRq6pOn5m"),
    ("stripe key", "stripe: using sk_live_51HqZx2KpL9mN4vB8cX1zR6tY3wE5uI0oP",
     "51HqZx2KpL9mN4vB8cX1zR6tY3wE5uI0oP"),
    ("npm token", "//registry.npmjs.org/:_authToken=npm_Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5",
     "Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5"),
    ("openai key", "OPENAI_API_KEY=sk-proj-Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5Yz7",
     "Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9St1Uv3Wx5Yz7"),
    ("sendgrid key", "sendgrid key SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTu"
     "VwXyZ012", "wXyZ0123456789aBcDeFgHiJkLmNoPqRsTu"),
    ("vault token", "VAULT_TOKEN=hvs.CAESIJlk3Xy9Zw8vUt7sRq6pOn5mLk4jIh3gFe2dCb1aZ",
     "CAESIJlk3Xy9Zw8vUt7sRq6pOn5mLk4jIh3gFe2dCb1aZ"),
    ("rsa private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq9Vx2mK4pL8nR3tW6y"
     "Z1cF5hJ9dS0gA\nq8Hk3Lm9Pz2Rt7Wv4Xy6Bn1Cd5Fg0Jh8Kl3Mn7PqZz\n-----END RSA PRIVATE KEY-----",
     "MIIEpAIBAAKCAQEA7bq9Vx2mK4pL8nR3tW6yZ1cF5hJ9dS0gA"),
    ("ec private key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkq9Vx2mK4pL8nR3tW6yZ1cF5h"
     "J9dS0gAoAoGCCqGSM49\n-----END EC PRIVATE KEY-----", "MHcCAQEEIBkq9Vx2mK4pL8nR3tW6y"),
    ("openssh private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG"
     "5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
    ("encrypted private key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0w"
     "PDAbBgkqhkiG9w0BBQwwDgQI\n-----END ENCRYPTED PRIVATE KEY-----",
     "MIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI"),
    ("pgp private key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBGXk2zQBCADt7Vx9mK4pL8n"
     "R3tW6yZ1cF5hJ9dS0gA\n-----END PGP PRIVATE KEY BLOCK-----", "lQOYBGXk2zQBCADt7Vx9mK4pL8n"),
    ("postgres dsn", "connection to postgresql://ledger:Tr0ub4dor%263@ledger-db.payments.svc:"
     "5432/ledger failed", "Tr0ub4dor%263"),
    ("mongodb dsn", "MongoServerSelectionError: mongodb+srv://reporter:Qz8xWv2pLm4n@cluster0."
     "ab1cd.mongodb.net/reports?retryWrites=true", "Qz8xWv2pLm4n"),
    ("redis dsn without user", "redis.exceptions.ConnectionError: redis://:R3d1sP4ssw0rd@cache."
     "batch.svc:6379/0", "R3d1sP4ssw0rd"),
    ("amqp dsn", "pika: amqp://orders:Rabb1tM4gic@rabbitmq.queue.svc:5672/%2F refused",
     "Rabb1tM4gic"),
    ("jdbc password param", "jdbc:postgresql://db:5432/app?user=app&password=J4vaS3cret!&ssl=1",
     "J4vaS3cret!"),
    ("password=", "login failed: user=admin password=Corr3ctHorse", "Corr3ctHorse"),
    ("env password", "POSTGRES_PASSWORD=PgS3cr3tV4lue", "PgS3cr3tV4lue"),
    ("pgpassword", "env: PGPASSWORD=An0therPgPass", "An0therPgPass"),
    ("prefixed pass", "DB_PASS=Sh0rtN4mePass", "Sh0rtN4mePass"),
    ("password flag", "exec: /app/migrate --db-password=Fl4gP4ssw0rd --verbose", "Fl4gP4ssw0rd"),
    ("secret: yaml", "  client_secret: Yml5ZWxsb3dzdWJtYXJpbmU0", "Yml5ZWxsb3dzdWJtYXJpbmU0"),
    ("json password", 'config: {"username": "svc", "password": "p@ss w0rd;42"}', "p@ss w0rd;42"),
    ("api key header", "X-API-Key: 4f7a9c2e1b8d6f3a0c5e7b9d2f4a6c8e",
     "4f7a9c2e1b8d6f3a0c5e7b9d2f4a6c8e"),
    ("api key query", "GET /v2/rates?apikey=9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a&base=AUD",
     "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"),
    ("jwt", "auth: rejected eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFj"
     "Y291bnQ6ZGVmYXVsdDpib3QifQ.TWFkZVVwU2lnbmF0dXJlRm9yVGVzdHM",
     "TWFkZVVwU2lnbmF0dXJlRm9yVGVzdHM"),
    ("session cookie", "Set-Cookie: session=s%3Aj9Kx2Lm4Np6Qr8Tv0Wx2Yz4.Ab6Cd8Ef0Gh2; Path=/",
     "j9Kx2Lm4Np6Qr8Tv0Wx2Yz4"),
    ("docker registry auth", '{"auths": {"registry.local": {"auth": '
     '"ZGVwbG95OmRvY2tlclBhc3N3b3JkMQ=="}}}', "ZGVwbG95OmRvY2tlclBhc3N3b3JkMQ"),
]

# Lines that look like secrets (or talk about them) and must reach Slack unchanged.
SURVIVORS: list[str] = [
    "pod uid 8cedf506-17d2-4efe-9771-306d2a006238 restarted",
    "INFO starting service version=1.14.2 commit=9f2c1ab3e4d5f6a7b8c9d0e1f2a3b4c5d6e7f8a9",
    "pulled registry.local/orders@sha256:5f2b8e1c9d3a7f4e6b0c2d8a1e5f9b3c7d4a6e8f0b2c4d6e8f0a1"
    "b3c5d7e9f1a",
    "pod pod1-deployment-56744f755c-hx2w7 scheduled on ip-10-0-1-17",
    "checksum/config: 2f9a7c1e4b8d0f3a6c9e2b5d8f1a4c7e",
    "payload=SGVsbG8sIHdvcmxkISBUaGlzIGlzIG5vdCBhIHNlY3JldC4= decoded ok",
    "2026-11-27T09:12:44.310123Z INFO tick ts=1700000000.000100",
    "password reset succeeded for user 42",
    "token bucket refilled: 50 tokens available, max_tokens=512",
    "rotating secret in 3600s; secret rotation scheduled",
    'MountVolume.SetUp failed for volume "creds" : secret "db-credentials" not found',
    "connecting to postgres://ledger-db.payments.svc:5432/ledger?sslmode=require",
    "git fetch ssh://git@github.com:22/org/repo.git",
    "SyntaxError: Unexpected token: punc (;)",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
]

CRASH = [  # a traceback whose last line (the crash signature) carries a DSN password
    "Traceback (most recent call last):",
    '  File "/app/ledger/db.py", line 12, in connect',
    "    return psycopg.connect(url, connect_timeout=5)",
    "psycopg.OperationalError: connection to postgresql://ledger:Cr4shL1neS3cret@ledger-db:5432"
    "/ledger failed: Connection refused",
]
CRASH_SECRET = "Cr4shL1neS3cret"
# Secrets outside the log: the termination message (FallbackToLogsOnError copies the log's
# tail there) and an exec probe's output in an event.
MESSAGE_SECRET, MESSAGE_SECRET_2 = "Msg0nlyS3cretV4l", "Msg0nlyAmqpPa55"
EVENT_SECRET = "Ev3ntPr0beP4ss"

ALL_SECRETS = [s for _, _, s in SECRETS] + [CRASH_SECRET, MESSAGE_SECRET, MESSAGE_SECRET_2,
                                             EVENT_SECRET]


def corpus_log() -> str:
    lines = ["2026-11-27 09:00:00,001 INFO ledger: starting"]
    for (_, secret_line, _), survivor in zip(SECRETS, SURVIVORS * 4, strict=False):
        lines += [secret_line, survivor]
    return "\n".join([*lines, *SURVIVORS, *CRASH])


def scenario() -> dict:
    def deployment(name: str, log: str | list, message: str | None = None) -> dict:
        crash = {"every": "6h", "first_after": "5h", "exit_code": 1, "log": log}
        if message:
            crash["message"] = message
        return {"kind": "Deployment", "name": name, "age": "3d", "containers": [
            {"name": name.rsplit("-", 1)[-1], "image": f"registry.local/{name}:1.0",
             "memory": "256Mi", "restarts": 7, "crash": crash}]}

    return {"cluster": "sim-secrets", "nodes": ["node-1"],
            "logs": {"corpus": corpus_log(),
                     "short": "\n".join([SECRETS[0][1], SURVIVORS[0], *CRASH])},
            "namespaces": {NS: {"workloads": [
                deployment("ledger-api", "corpus"),
                deployment("ledger-worker", "short"),
                deployment("ledger-cron", [], message=(  # nothing but the message
                    f"FATAL: password={MESSAGE_SECRET} rejected; retrying "
                    f"amqp://orders:{MESSAGE_SECRET_2}@mq:5672 failed")),
            ]}}}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Bot, Sim]]:
    """A served bot, its fake Slack and cluster of its own: what each test checks was sent
    by that test's questions only."""
    tmp = tmp_path
    sim = start_sim(tmp, scenario())
    # An exec liveness probe's output, as the kubelet reports it in an event.
    pod = next(p for (ns, _), p, _ in sim.world.items("pods")
               if ns == NS and p["metadata"]["name"].startswith("ledger-worker"))
    involved = {"kind": "Pod", "namespace": NS, "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"], "apiVersion": "v1",
                "fieldPath": "spec.containers{worker}"}
    sim.world.put("events", o.event_object(
        NS, involved, "Unhealthy", "Liveness probe failed: psql: error: connection to "
        f"postgresql://app:{EVENT_SECRET}@db:5432/app failed: FATAL: password authentication "
        'failed for user "app"', sim.world.now))
    slack = FakeSlack().start()
    try:
        with served_bot(tmp, sim, slack) as bot:
            yield bot, sim
    finally:
        slack.stop()
        sim.server.stop()
    assert not slack.violations


def leaked(slack: FakeSlack) -> list[str]:
    """Secrets found in anything sent to Slack (raw, or as mrkdwn/JSON escapes them)."""
    sent = sent_to_slack(slack)
    forms = {s: {s, html.escape(s, quote=False), json.dumps(s)[1:-1]} for s in ALL_SECRETS}
    return [s for s, variants in forms.items() if any(v in sent for v in variants)]


def thread_of(bot: Bot, channel: str, workload: str, containers: int = 1) -> list[dict]:
    parent = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages(channel)
         if not m.get("thread_ts") and f"{NS}/{workload}" in m["text"]), None))

    def replies() -> list[dict] | None:
        found = bot.slack.replies(channel, parent["ts"])
        return found if len(found) >= containers else None

    return bot.slack.wait_for(replies)


def uploaded(bot: Bot, thread_ts: str) -> str:
    done = bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to(
        "files.completeUploadExternal") if c.args.get("thread_ts") == thread_ts])
    files = done[0].args["files"]
    file_id = (json.loads(files) if isinstance(files, str) else files)[0]["id"]
    return bot.slack.uploads[file_id].decode()


def test_uploaded_log_has_no_secret_keeps_look_alikes_and_says_how_many(
        served: tuple[Bot, Sim], held: Held) -> None:
    bot, _ = served
    assert bot.command(f"{NS} ledger-api", channel="CAPI")[0] == 200
    [reply] = thread_of(bot, "CAPI", "ledger-api")
    text = bot.slack.text_of(reply)
    log = uploaded(bot, reply["thread_ts"])
    # every secret line was in the tail: one value each, plus the crash line's password
    expected = len(SECRETS) + 1
    assert re.search(rf"\b{expected} values redacted\b", text), text
    assert "[REDACTED]" in log and CRASH_SECRET not in log
    for survivor in SURVIVORS:
        assert survivor in log, survivor
    assert "psycopg.OperationalError: connection to postgresql://ledger:[REDACTED]@" in text
    assert leaked(bot.slack) == []
    held(f"{len(SECRETS)} kinds of secret + look-alikes in a crash log",
         f"none reached Slack; {len(SURVIVORS)} look-alikes intact; "
         f"\"{expected} values redacted\" stated")


def test_inline_log_and_message_and_event_secrets_stay_in_the_cluster(
        served: tuple[Bot, Sim], held: Held) -> None:
    bot, _ = served
    bot.command(f"{NS} ledger-worker", channel="CWORK")
    [reply] = thread_of(bot, "CWORK", "ledger-worker")
    text = bot.slack.text_of(reply)
    assert "*Previous log*" in text and "2 values redacted" in text, text
    assert html.escape(SURVIVORS[0], quote=False) in text
    assert "Liveness probe failed" in text  # the event is shown, its password is not
    bot.command(f"{NS} ledger-cron", channel="CCRON")
    thread_of(bot, "CCRON", "ledger-cron")
    assert leaked(bot.slack) == []
    held("secrets in a short log, a termination message, an event",
         "none reached Slack; the event and the diagnosis shown with [REDACTED]")


def test_namespace_table_full_table_button_and_digest_leak_nothing(
        served: tuple[Bot, Sim], tmp_path: Path, held: Held) -> None:
    bot, sim = served
    bot.command(NS, channel="CNS")
    table = bot.slack.wait_for(lambda: next(
        (m for m in bot.slack.messages("CNS") if "Restart patrol" in m["text"]), None))
    rows = [b for b in table["blocks"] if b.get("accessory")]
    assert len(rows) == 3 and all("[REDACTED]" in b["text"]["text"] for b in rows), rows
    bot.command(f"{NS} --all", channel="CNS")
    bot.slack.wait_for(lambda: [c for c in bot.slack.calls_to("files.completeUploadExternal")
                                if c.args.get("channel_id") == "CNS"])
    bot.click(rows[0]["accessory"]["value"], "CNS", table["ts"])
    bot.slack.wait_for(lambda: bot.slack.replies("CNS", table["ts"]))

    settings = amend(sim.settings(), SLACK_BOT_TOKEN=TOKEN,
                       SLACK_API_URL=bot.slack.base_url, PATROL_CHANNEL="CDIGEST")
    store = Store.open(f"sqlite:///{tmp_path}/digest.db")
    try:
        services = Services(settings, connect(settings), store)
        DigestJob(services.cluster, store, settings, SlackDigestPoster(services, "CDIGEST"),
                  owner="redaction-test").run_slot(datetime.now(UTC))
    finally:
        store.close()
    digest = bot.slack.messages("CDIGEST")[-1]
    assert "[REDACTED]" in bot.slack.text_of(digest)
    assert leaked(bot.slack) == []
    held("secrets behind /restarts <ns> --all, Why?, the digest",
         "none reached Slack (rows, uploaded table, thread, digest)")


def test_the_recorders_alerts_and_recorded_drilldowns_leak_nothing(tmp_path: Path,
                                                                  held: Held) -> None:
    """The flight recorder (run by serve) captures crashes as they happen; its new-crash
    alerts and the drill-down of a pod that is gone (answered from the record) reach
    Slack too."""
    crashing = scenario()
    for workload in crashing["namespaces"][NS]["workloads"]:  # new crashes, not install's
        for container in workload["containers"]:
            container["restarts"] = 0
    sim = start_sim(tmp_path, crashing)
    later = sim.world.now + timedelta(hours=6)
    pod = next(p for (ns, _), p, _ in sim.world.items("pods")
               if ns == NS and p["metadata"]["name"].startswith("ledger-worker"))
    involved = {"kind": "Pod", "namespace": NS, "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"], "apiVersion": "v1",
                "fieldPath": "spec.containers{worker}"}
    sim.world.put("events", o.event_object(  # still fresh when the next crash comes
        NS, involved, "Unhealthy", f"Liveness probe failed: postgresql://app:{EVENT_SECRET}"
        "@db:5432/app: FATAL: password authentication failed", later))
    slack = FakeSlack().start()
    try:
        with served_bot(tmp_path, sim, slack, ALERT_NEW_CRASHES="true",
                        PATROL_CHANNEL="CALERT", DIGEST_CATCHUP="0") as bot:
            deadline = time.monotonic() + 60  # the recorder must be watching first
            while not any("watch=" in r for r in list(sim.server.requests)):
                assert time.monotonic() < deadline, "the recorder never started watching"
                time.sleep(0.05)
            sim.world.advance(timedelta(hours=6))  # every workload crashes once

            def three_alerts() -> list[dict] | None:
                found = [m for m in slack.messages("CALERT") if "New crash" in m["text"]]
                return found if len(found) >= 3 else None

            alerts = slack.wait_for(three_alerts)
            assert {a["text"].split(": ")[0] for a in alerts} >= {
                f"New crash in {NS} / ledger-{w}" for w in ("api", "worker", "cron")}
            for name in ("ledger-worker", "ledger-cron"):  # gone: the record answers
                gone = next(p for (ns, n), p, _ in sim.world.items("pods")
                            if ns == NS and n.startswith(name))
                sim.world.delete("pods", NS, gone["metadata"]["name"])
                bot.command(f"{NS} {gone['metadata']['name']}", channel="CGONE")
                thread_of(bot, "CGONE", gone["metadata"]["name"])
            assert leaked(slack) == []
            held("the same secrets seen by the flight recorder",
                 "none in its new-crash alerts or in drill-downs of gone pods")
    finally:
        slack.stop()
        sim.server.stop()
