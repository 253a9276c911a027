"""Crash shapes the engine must recognise whatever the app: each case is written for this
test (not copied from the fixture files), so it checks the shape, not a fixture's words."""

from __future__ import annotations

import json

import pytest

from bot.diagnosis.engine import Evidence, diagnose

GO = ("panic: runtime error: index out of range [3] with length 3\n\n"
      "goroutine 12 [running]:\nmain.pick(...)\n\t/src/pick.go:9\nmain.main()\n"
      "\t/src/main.go:4 +0x1d\n")


def check(log: str, category: str, *quoted: str, exit_code: int | None = None,
          reason: str | None = None) -> None:
    d = diagnose(Evidence(exit_code=exit_code, reason=reason, log=log))
    text = "\n".join(d.signature)
    for part in quoted:
        assert part in text, f"{part!r} not in {d.signature}"
    assert d.category == category, (d.category, d.signature)
    assert 0 < len(d.signature) <= 8


# ---- prefixes are stripped before matching and not quoted ---------------------------------
@pytest.mark.parametrize("prefix", [
    "api_1      | ",  # docker compose v1
    "billing-api-1  | ",  # docker compose v2
    "2026-11-27T09:00:00.123456789Z stdout F ",  # CRI log file
    "2026-11-27T09:00:00.123456789Z ",  # kubectl logs --timestamps
    "Nov 27 09:00:00 node-3 orders[4121]: ",  # journald / syslog
    "[pod/orders-6d9f8b7c5d-x2x9q/app] ",  # kubectl logs --prefix
    "orders-6d9f8b7c5d-x2x9q app ",  # stern
    "orders-6d9f8b7c5d-x2x9q:",  # pod-name prefix
    "1764234000123\t2026-11-27T09:00:00.123Z\t",  # log export columns
    "2026-11-27 09:00:00.123 | ",  # viewer with a timestamp column
])
def test_transport_prefixes_are_stripped_and_not_quoted(prefix: str) -> None:
    log = "\n".join(prefix + line for line in ("starting", *GO.splitlines()))
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.category == "go-panic"
    assert d.signature[0] == "panic: runtime error: index out of range [3] with length 3"
    assert "main.pick(...)" in d.signature


def test_a_plain_log_with_pipes_keeps_its_pipes() -> None:
    log = "a | b\nrow | value\nfatal: worker | queue stalled"
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.signature == ("fatal: worker | queue stalled",)


def test_newest_first_exports_are_put_back_in_order() -> None:
    chronological = [
        'Traceback (most recent call last):', '  File "/srv/app.py", line 3, in <module>',
        "    import yaml", "ModuleNotFoundError: No module named 'yaml'", "worker exiting"]
    stamped = [f"2026-11-27T09:00:{i:02d}.000Z\t{line}" for i, line in enumerate(chronological)]
    log = "\n".join(reversed(stamped))
    check(log, "python-exception", "ModuleNotFoundError: No module named 'yaml'")


@pytest.mark.parametrize(("record", "quoted", "category"), [
    ({"level": 50, "time": 1, "err": {"type": "Error", "message": "connect ECONNREFUSED "
      "10.0.0.4:6379", "stack": "Error: connect ECONNREFUSED 10.0.0.4:6379\n    at "
      "TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)"}, "msg": "boot failed"},
     "connect ECONNREFUSED 10.0.0.4:6379", "dependency-unavailable"),
    ({"severity": "ERROR", "message": "uncaught", "stack": "TypeError: cfg.port is undefined\n"
      "    at start (/app/server.js:12:9)"}, "TypeError: cfg.port is undefined",
     "node-exception"),
    ({"level": "fatal", "msg": "listen failed", "error": "listen tcp :8080: bind: address "
      "already in use"}, "listen tcp :8080: bind: address already in use", "port-in-use"),
])
def test_json_lines_are_read_for_their_message_error_and_stack(
        record: dict, quoted: str, category: str) -> None:
    noise = [json.dumps({"level": 30, "msg": f"request {i}"}) for i in range(5)]
    check("\n".join([*noise, json.dumps(record)]), category, quoted, exit_code=1)


# ---- choosing the root among several errors -----------------------------------------------
def test_go_repanic_quotes_both_panics_and_names_the_last() -> None:
    log = ("panic: bad input [recovered]\n\tpanic: close of nil channel\n\n"
           "goroutine 7 [running]:\npanic({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\n"
           "main.drain()\n\t/src/drain.go:20 +0x2\n")
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.signature[:2] == ("panic: bad input [recovered]", "\tpanic: close of nil channel")
    assert d.summary.startswith("Go panic: close of nil channel in main.drain")


def test_the_final_caused_by_is_the_root() -> None:
    log = ("org.springframework.beans.factory.BeanCreationException: Error creating bean\n"
           "\tat org.springframework.Foo.bar(Foo.java:1)\n"
           "Caused by: org.hibernate.HibernateException: Unable to build session\n"
           "\tat org.hibernate.X.y(X.java:2)\n"
           "Caused by: java.net.ConnectException: Connection refused\n"
           "\tat java.base/sun.nio.ch.Net.connect0(Native Method)\n")
    check(log, "dependency-unavailable", "Caused by: java.net.ConnectException: Connection refused",
          exit_code=1)


def test_raise_from_keeps_the_origin() -> None:
    log = ("Traceback (most recent call last):\n  File \"/app/db.py\", line 4, in connect\n"
           "    sock.connect(addr)\nConnectionRefusedError: [Errno 111] Connection refused\n\n"
           "The above exception was the direct cause of the following exception:\n\n"
           "Traceback (most recent call last):\n  File \"/app/main.py\", line 9, in <module>\n"
           "    boot()\nRuntimeError: storage is not reachable\n")
    check(log, "dependency-unavailable", "ConnectionRefusedError: [Errno 111] Connection refused",
          "RuntimeError: storage is not reachable", exit_code=1)


def test_the_first_alert_of_a_burst_not_the_follow_ons() -> None:
    log = ("[NOTICE]   (1) : haproxy version is 2.8.3\n"
           "[ALERT]    (1) : config : parsing [/etc/haproxy/haproxy.cfg:21] : 'bind :80' "
           "unknown keyword 'tls'.\n"
           "[ALERT]    (1) : config : Error(s) found in configuration file : /etc/haproxy/"
           "haproxy.cfg\n[ALERT]    (1) : config : Fatal errors found in configuration.")
    check(log, "config-error", "unknown keyword 'tls'", exit_code=1)


def test_the_error_line_not_its_code_property() -> None:
    log = ("node:events:497\n      throw er; // Unhandled 'error' event\n      ^\n\n"
           "Error: listen EADDRINUSE: address already in use 0.0.0.0:3000\n"
           "    at Server.setupListenHandle [as _listen2] (node:net:1872:16)\n"
           "    at listenInCluster (node:net:1920:12) {\n  code: 'EADDRINUSE',\n"
           "  errno: -98,\n  syscall: 'listen',\n  address: '0.0.0.0',\n  port: 3000\n}\n")
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.category == "port-in-use"
    assert d.signature[0] == "Error: listen EADDRINUSE: address already in use 0.0.0.0:3000"


# ---- whole shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize(("log", "category", "quoted"), [
    # .NET host start-up failure (Microsoft.Extensions.Logging console format)
    ("info: Microsoft.Hosting.Lifetime[0]\n      Application is starting\n"
     "crit: Microsoft.AspNetCore.Hosting.Diagnostics[6]\n      Application startup exception\n"
     "      System.ArgumentNullException: Value cannot be null. (Parameter 'connectionString')\n"
     "         at Npgsql.NpgsqlConnection..ctor(String connectionString)\n",
     "app-fatal", "System.ArgumentNullException: Value cannot be null."),
    ("Unhandled exception. Npgsql.NpgsqlException (0x80004005): Failed to connect to "
     "10.0.3.7:5432\n ---> System.Net.Sockets.SocketException (111): Connection refused\n"
     "   at Npgsql.Internal.NpgsqlConnector.Connect()\n",
     "dependency-unavailable", "Failed to connect to 10.0.3.7:5432"),
    # Rails boot
    ("=> Booting Puma\nrails aborted!\nActiveRecord::DatabaseConnectionError: There is an issue "
     "connecting to your database: connection to server at \"10.1.1.1\", port 5432 failed: "
     "Connection refused\n/app/bin/rails:4:in `<main>'\n",
     "dependency-unavailable", "ActiveRecord::DatabaseConnectionError"),
    ("/usr/local/bundle/gems/bootsnap/lib/require.rb:30:in `require': cannot load such file -- "
     "sidekiq/web (LoadError)\n\tfrom /app/config/routes.rb:1:in `<main>'\n",
     "app-fatal", "cannot load such file -- sidekiq/web (LoadError)"),
    # Node MODULE_NOT_FOUND
    ("node:internal/modules/cjs/loader:1228\n  throw err;\n  ^\n\nError: Cannot find module "
     "'express'\nRequire stack:\n- /srv/index.js\n    at Module._resolveFilename "
     "(node:internal/modules/cjs/loader:1225:15)\n    at Module._load (node:internal/modules/"
     "cjs/loader:1051:27) {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: [ '/srv/index.js' ]\n}"
     "\n\nNode.js v20.11.0\n", "node-exception", "Error: Cannot find module 'express'"),
    # abseil / glog failure-signal handlers, Check failed, assertions, qemu
    ("*** SIGSEGV received at time=1764234000 on cpu 2 ***\n"
     "PC: @     0x55d4c3a1b2c4  (unknown)  tensorstore::Read()\n"
     "    @     0x7f00aa0e1520  (unknown)  (unknown)\n"
     "    @     0x55d4c3a19f00        208  server::Handle()\n",
     "native-crash", "*** SIGSEGV received at time=1764234000 on cpu 2 ***"),
    ("F1127 09:00:00.000000  1 cache.cc:88] Check failed: size <= capacity_ (12 vs. 8)\n"
     "*** Check failure stack trace: ***\n    @     0x5566 google::LogMessage::Fail()\n"
     "    @     0x5577 cache::Insert()\n*** SIGABRT received by PID 1 (TID 0x7f) from PID 1; "
     "stack trace: ***\n", "native-crash", "Check failed: size <= capacity_ (12 vs. 8)"),
    ("worker: src/queue.c:41: queue_pop: Assertion `q->len > 0' failed.\nAborted (core dumped)",
     "native-crash", "Assertion `q->len > 0' failed"),
    ("qemu: uncaught target signal 11 (Segmentation fault) - core dumped\n",
     "native-crash", "qemu: uncaught target signal 11"),
    # entrypoint scripts
    ("/docker-entrypoint.sh: line 3: $'\\r': command not found\n"
     "/docker-entrypoint.sh: line 9: syntax error: unexpected end of file\n",
     "exec-error", "$'\\r': command not found"),
    ("/usr/bin/env: 'bash\\r': No such file or directory\n", "exec-error", "bash\\r"),
    ("exec /app/run.sh: permission denied\n", "exec-error", "exec /app/run.sh: permission denied"),
    ("/bin/sh: /start: not found\n", "exec-error", "/bin/sh: /start: not found"),
    # proxies with their own timestamps
    ("2026/11/27 09:00:00 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in "
     "use)\nnginx: [emerg] still could not bind()\n", "port-in-use", "[emerg]"),
    ("[WARNING]  (7) : config : missing timeouts for frontend 'web'.\n"
     "[ALERT]    (7) : Starting frontend web: cannot bind socket (Address already in use) "
     "[0.0.0.0:8080]\n[ALERT]    (7) : [haproxy.main()] Some protocols failed to start their "
     "listeners! Exiting.\n", "port-in-use", "cannot bind socket"),
    # unsubstituted placeholders reaching a host name or port
    ("Error: getaddrinfo ENOTFOUND ${REDIS_HOST}\n    at GetAddrInfoReqWrap.onlookup "
     "(node:dns:107:26)\n", "config-error", "ENOTFOUND ${REDIS_HOST}"),
    ("2026/11/27 09:00:00 listen tcp: lookup tcp/$PORT: unknown port\n",
     "config-error", "lookup tcp/$PORT: unknown port"),
    # database servers that fail to start
    ("PostgreSQL Database directory appears to contain a database; Skipping initialization\n\n"
     "2026-11-27 09:00:00.000 UTC [1] FATAL:  database files are incompatible with server\n"
     "2026-11-27 09:00:00.000 UTC [1] DETAIL:  The data directory was initialized by PostgreSQL "
     "version 15, which is not compatible with this version 16.1.\n",
     "config-error", "FATAL:  database files are incompatible with server"),
    ("2026-11-27 09:00:00.000 UTC [1] LOG:  starting PostgreSQL 16.1\n"
     "2026-11-27 09:00:00.000 UTC [1] FATAL:  could not create lock file "
     "\"/var/run/postgresql/.s.PGSQL.5432.lock\": Permission denied\n"
     "2026-11-27 09:00:00.000 UTC [1] LOG:  database system is shut down\n",
     "app-fatal", "could not create lock file"),
    ("2026-11-27T09:00:00.000000Z 0 [System] [MY-010116] [Server] /usr/sbin/mysqld starting\n"
     "2026-11-27T09:00:00.000000Z 0 [ERROR] [MY-010457] [Server] --initialize specified but the "
     "data directory has files in it. Aborting.\n"
     "2026-11-27T09:00:00.000000Z 0 [ERROR] [MY-013236] [Server] The designated data directory "
     "/var/lib/mysql/ is unusable.\n"
     "2026-11-27T09:00:00.000000Z 0 [ERROR] [MY-010119] [Server] Aborting\n",
     "config-error", "data directory has files in it"),
    ("2026-11-27 09:00:00+00:00 [Note] [Entrypoint]: Entrypoint script for MariaDB Server "
     "started.\n"
     "2026-11-27 09:00:00+00:00 [ERROR] [Entrypoint]: Database is uninitialized and password "
     "option is not specified\n\tYou need to specify one of MARIADB_ROOT_PASSWORD\n",
     "config-error", "password option is not specified"),
])
def test_whole_shapes(log: str, category: str, quoted: str) -> None:
    check(log, category, quoted, exit_code=1)


# ---- category precision -------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "redis.exceptions.ConnectionError: Error 111 connecting to cache:6379. Connection refused.",
    "psycopg.OperationalError: connection failed: could not translate host name \"db\" to "
    "address: Temporary failure in name resolution",
    "com.mysql.cj.jdbc.exceptions.CommunicationsException: Communications link failure",
    "pymongo.errors.ServerSelectionTimeoutError: mongo:27017: [Errno -2] Name or service not "
    "known",
    "pika.exceptions.AMQPConnectionError",
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='auth', port=443): Max "
    "retries exceeded with url: / (Caused by NewConnectionError('Failed to establish a new "
    "connection: [Errno 111] Connection refused'))",
    "kafka.errors.NoBrokersAvailable: NoBrokersAvailable",
])
def test_library_wrapped_dependency_failures(line: str) -> None:
    log = ("Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n"
           f"    connect()\n{line}\n")
    check(log, "dependency-unavailable", line, exit_code=1)


@pytest.mark.parametrize(("log", "quoted"), [
    ("Error: required flag(s) \"listen\" not set\nUsage:\n  srv [flags]\n", "required flag"),
    ("2026/11/27 09:00:00 config: required key DB_URL missing value\n", "required key DB_URL"),
    ("Traceback (most recent call last):\n  File \"/app/settings.py\", line 2, in <module>\n"
     "    URL = os.environ[\"DATABASE_URL\"]\n  File \"<frozen os>\", line 714, in __getitem__\n"
     "KeyError: 'DATABASE_URL'\n", "KeyError: 'DATABASE_URL'"),
    ("org.springframework.beans.factory.BeanCreationException: Error creating bean with name "
     "'app'\n\tat org.springframework.X.y(X.java:1)\nCaused by: java.lang.IllegalArgumentException:"
     " Could not resolve placeholder 'DB_URL' in value \"${DB_URL}\"\n\tat org.x.Y.z(Y.java:2)\n",
     "Could not resolve placeholder"),
    ("Error: failed to load configuration: open /etc/app/config.yaml: no such file or directory\n",
     "failed to load configuration"),
])
def test_configuration_errors_are_config_errors(log: str, quoted: str) -> None:
    check(log, "config-error", quoted, exit_code=1)


# ---- Kubernetes text instead of a log -----------------------------------------------------
DESCRIBE = """Name:             shop-7c9d8f6b5-q2w3e
Namespace:        prod
Status:           Running
Containers:
  shop:
    State:          Running
      Started:      Thu, 27 Nov 2026 09:05:00 +0000
    Last State:     Terminated
      Reason:       {reason}
      Exit Code:    {code}
      Started:      Thu, 27 Nov 2026 08:00:00 +0000
      Finished:     Thu, 27 Nov 2026 09:04:58 +0000
    Ready:          True
    Restart Count:  7
Events:
  Type     Reason     Age                  From     Message
  ----     ------     ----                 ----     -------
  Normal   Pulled     5m (x8 over 2h)      kubelet  Container image "shop:1" already present
{events}"""
PROBE_EVENTS = ("  Warning  Unhealthy  5m (x24 over 2h)     kubelet  Liveness probe failed: HTTP "
                "probe failed with statuscode: 503\n"
                "  Normal   Killing    5m (x8 over 2h)      kubelet  Container shop failed "
                "liveness probe, will be restarted\n")


@pytest.mark.parametrize(("reason", "code", "events", "category", "quoted"), [
    ("Error", 137, PROBE_EVENTS, "probe-kill", "Liveness probe failed"),
    ("OOMKilled", 1, "", "oom-killed", "OOMKilled"),
    ("OOMKilled", 0, "", "oom-killed", "OOMKilled"),
    ("ContainerStatusUnknown", 137, "", "unknown", "ContainerStatusUnknown"),
])
def test_kubectl_describe_output_is_read_like_a_termination(
        reason: str, code: int, events: str, category: str, quoted: str) -> None:
    d = diagnose(Evidence(log=DESCRIBE.format(reason=reason, code=code, events=events)))
    assert d.category == category
    assert d.exit_code == code and d.reason == reason
    assert quoted in "\n".join(d.signature)


@pytest.mark.parametrize(("events", "quoted"), [
    ("LAST SEEN   TYPE      REASON    OBJECT              MESSAGE\n"
     "2m          Warning   Evicted   pod/etl-5f6d7-abcde  Pod ephemeral local storage usage "
     "exceeds the total limit of containers 2Gi.\n"
     "2m          Normal    Killing   pod/etl-5f6d7-abcde  Stopping container etl\n",
     "ephemeral local storage"),
    ("LAST SEEN   TYPE      REASON                OBJECT          MESSAGE\n"
     "30s         Warning   Evicted               pod/web-1       The node had condition: "
     "[DiskPressure].\n"
     "30s         Normal    Killing               pod/web-1       Stopping container web\n",
     "[DiskPressure]"),
    ("LAST SEEN   TYPE      REASON      OBJECT        MESSAGE\n"
     "10s         Normal    Preempted   pod/batch-1   Preempted by pod 1f2e on node n-2\n"
     "10s         Normal    Killing     pod/batch-1   Stopping container batch\n",
     "Preempted by pod"),
])
def test_event_lists_say_evicted_or_preempted(events: str, quoted: str) -> None:
    d = diagnose(Evidence(log=events))
    assert d.category == "evicted-or-preempted"
    assert quoted in "\n".join(d.signature) or quoted in d.summary


def test_events_passed_as_evidence_decide_like_pasted_events() -> None:
    from bot.diagnosis.engine import EventNote

    pasted = diagnose(Evidence(exit_code=137, log=DESCRIBE.format(
        reason="Error", code=137, events=PROBE_EVENTS)))
    given = diagnose(Evidence(exit_code=137, reason="Error", events=(
        EventNote("Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with "
                  "statuscode: 503", 24),)))
    evicted = diagnose(Evidence(exit_code=137, reason="Error", events=(
        EventNote("Warning", "Evicted", "The node was low on resource: ephemeral-storage."),)))
    assert pasted.category == given.category == "probe-kill"
    assert evicted.category == "evicted-or-preempted"
    assert "ephemeral" in evicted.summary


def test_a_log_that_mentions_warnings_is_not_taken_for_events() -> None:
    log = "Warning Deprecated flag used\nWarning Slow query took 3s\n" + GO
    assert diagnose(Evidence(exit_code=2, log=log)).category == "go-panic"


def test_the_diagnose_command_reads_describe_text(tmp_path, capsys) -> None:
    from bot.cli import main

    text = tmp_path / "describe.txt"
    text.write_text(DESCRIBE.format(reason="Error", code=137, events=PROBE_EVENTS))
    assert main(["diagnose", "--log-file", str(text), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["category"] == "probe-kill" and out["exit_code"] == 137
    assert any("Liveness probe failed" in line for line in out["signature"])


def test_a_failure_event_can_name_the_cause() -> None:
    events = ("  Warning  Failed     1m (x3 over 2m)  kubelet  Error: configmap \"shop-env\" not "
              "found\n  Warning  BackOff    1m (x9 over 2m)  kubelet  Back-off restarting failed "
              "container\n")
    d = diagnose(Evidence(log=DESCRIBE.format(reason="Error", code=1, events=events)))
    assert d.category == "config-error"
    assert any('configmap "shop-env" not found' in line for line in d.signature)


def test_a_probe_that_cannot_connect_is_still_a_probe_kill() -> None:
    events = ("  Warning  Unhealthy  1m (x3 over 2m)  kubelet  Liveness probe failed: Get "
              "\"http://10.0.0.5:8080/healthz\": dial tcp 10.0.0.5:8080: connect: connection "
              "refused\n  Normal   Killing    1m               kubelet  Container shop failed "
              "liveness probe, will be restarted\n")
    d = diagnose(Evidence(log=DESCRIBE.format(reason="Error", code=137, events=events)))
    assert d.category == "probe-kill"


@pytest.mark.parametrize(("log", "category", "quoted"), [
    ("Error: failed to start the server\n\nCaused by:\n    0: could not open the store\n"
     "    1: Connection refused (os error 111)\n", "dependency-unavailable",
     "1: Connection refused (os error 111)"),
    ("/entrypoint.sh: line 4: DATABASE_URL: unbound variable\n", "config-error",
     "DATABASE_URL: unbound variable"),
    ("bash: ./run.sh: /bin/bash^M: bad interpreter: No such file or directory\n", "exec-error",
     "bad interpreter"),
    ("2026-11-27T09:00:00Z INFO starting\n2026-11-27T09:00:01Z ERROR could not load model "
     "weights: checksum mismatch\n2026-11-27T09:00:01Z ERROR worker stopped\n"
     "2026-11-27T09:00:01Z ERROR giving up\n", "app-fatal", "could not load model weights"),
])
def test_more_shapes_without_an_exit_code(log: str, category: str, quoted: str) -> None:
    check(log, category, quoted)


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # the older .NET format ("Unhandled Exception:"), credentials rejected → configuration
    ("Unhandled Exception: Npgsql.PostgresException: 28P01: password authentication failed for "
     "user \"orders\"\n   at Npgsql.NpgsqlConnector.Open()\n", "config-error",
     "password authentication failed for user"),
    # a summary line and the item it counts
    ("ERROR: 2 startup checks failed\n  - environment variable REGION is not set\n"
     "  - cache directory /var/cache/app is not writable\n", "config-error",
     "environment variable REGION is not set"),
    # an address that cannot be right is configuration, not an unreachable dependency
    ("Traceback (most recent call last):\n  File \"/app/main.py\", line 2, in <module>\n"
     "    connect()\nredis.exceptions.ConnectionError: invalid port number: "
     "\"tcp://10.96.0.12:6379\"\n", "config-error", "invalid port number"),
    # a script run by the wrong interpreter fails line after line: the first failure is quoted
    ("/usr/local/bin/migrate: 2: use: not found\n/usr/local/bin/migrate: 3: use: not found\n"
     "/usr/local/bin/migrate: 5: Syntax error: \"(\" unexpected\n", "exec-error",
     "/usr/local/bin/migrate: 2: use: not found"),
    # an abort under an emulator: the root and how the process died
    ("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n"
     "qemu: uncaught target signal 6 (Aborted) - core dumped\n", "native-crash",
     "qemu: uncaught target signal 6"),
])
def test_roots_and_their_details(log: str, category: str, quoted: str) -> None:
    check(log, category, quoted)


def test_a_lone_events_table_is_kubernetes_text() -> None:
    log = ("Events:\n  Type     Reason     Age   From     Message\n"
           "  ----     ------     ----  ----     -------\n"
           "  Warning  Unhealthy  2m (x9 over 5m)  kubelet  Startup probe failed: Get "
           "\"http://10.0.0.8:9000/ready\": dial tcp 10.0.0.8:9000: connect: connection refused\n")
    d = diagnose(Evidence(log=log))
    assert d.category == "probe-kill" and "startup probe" in d.summary


def test_an_announced_exit_names_its_reason_only_for_a_failed_exit() -> None:
    log = "=> Booting\nA lock file is held by another process (pid 7).\nExiting\n"
    check(log, "app-fatal", "A lock file is held by another process", exit_code=1)
    assert diagnose(Evidence(exit_code=0, log=log)).category == "clean-exit"


def test_describe_of_an_evicted_pod_names_the_pressure_and_reads_the_limit() -> None:
    text = ("Name:         report-7f8d9c6b5-zx7cv\nNamespace:    batch\nStatus:       Failed\n"
            "Reason:       Evicted\nMessage:      The node was low on resource: ephemeral-storage. "
            "Container report was using 12Gi, which exceeds its request of 0.\n"
            "Containers:\n  report:\n    Limits:\n      cpu:     1\n      memory:  2Gi\n"
            "    State:          Terminated\n      Reason:       Error\n      Exit Code:    137\n")
    d = diagnose(Evidence(log=text))
    assert d.category == "evicted-or-preempted"
    assert d.summary == "Stopped by eviction (low on resource: ephemeral-storage), not a crash"
    assert any("ephemeral-storage" in h for h in d.hints)
    assert any("low on resource: ephemeral-storage" in line for line in d.signature)
    oom = diagnose(Evidence(log=text.replace("Error", "OOMKilled")))
    assert oom.category == "oom-killed" and "2Gi" in oom.summary


@pytest.mark.parametrize(("log", "category", "first"), [
    # docker's json-file driver: one JSON object per line, the text in "log"
    ("\n".join(json.dumps({"log": line + "\n", "stream": "stderr", "time": "2026-11-27T09:00:00Z"})
               for line in ("starting", *GO.splitlines())),
     "go-panic", "panic: runtime error: index out of range [3] with length 3"),
    # zap: the level belongs to the message, not to the stack lines that follow it
    (json.dumps({"level": "fatal", "ts": 1.7e9, "msg": "unable to start manager",
                 "error": "no matches for kind \"Widget\"", "stacktrace": "main.main\n\t"
                 "/workspace/main.go:40\nruntime.main\n\t/usr/local/go/src/runtime/proc.go:271"}),
     "app-fatal", "FATAL unable to start manager: no matches for kind \"Widget\""),
    # logstash-style JSON with the Java stack in stack_trace
    (json.dumps({"level": "ERROR", "message": "Application run failed", "stack_trace":
                 "org.springframework.beans.factory.UnsatisfiedDependencyException: Error "
                 "creating bean\n\tat org.x.Y.z(Y.java:1)\nCaused by: java.net."
                 "UnknownHostException: kafka: Name or service not known\n\tat x.Y.z(Y.java:2)"}),
     "dependency-unavailable", "org.springframework.beans.factory.UnsatisfiedDependencyException"),
    # stern with colours
    ("\n".join("\x1b[32mapi-5d4f6c7b8-abcde\x1b[0m \x1b[33mapp\x1b[0m " + line for line in (
        "boot", "Traceback (most recent call last):", '  File "/a.py", line 1, in <module>',
        "    x()", "NameError: name 'x' is not defined")),
     "python-exception", "NameError: name 'x' is not defined"),
    # a malformed connection string is configuration
    ("MongoParseError: Invalid scheme, expected connection string to start with \"mongodb://\"\n"
     "    at new ConnectionString (/app/node_modules/mongodb-connection-string-url/lib/index.js"
     ":86:19)\n", "config-error", "MongoParseError: Invalid scheme"),
])
def test_structured_and_decorated_logs(log: str, category: str, first: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.category == category, (d.category, d.signature)
    assert d.signature[0].startswith(first)


# ---- issue 17, second round: shapes the blind local corpus showed -----------------------------
@pytest.mark.parametrize(("log", "category", "quoted"), [
    # Rust ≥ 1.9x prints the thread id after the name, also when the stack overflows
    ("booting\n\nthread 'worker' (4411) has overflowed its stack\n"
     "fatal runtime error: stack overflow, aborting\n", "native-crash",
     ("has overflowed its stack",)),
    # a sanitizer's report names the fault; its ABORTING line does not
    ("resize: 3 frames\n=================\n==812==ERROR: AddressSanitizer: use-after-free on "
     "address 0x6020 at pc 0x55\nREAD of size 8 at 0x6020 thread T0\n    #0 0x55 in resize "
     "/src/r.c:9\n==812==ABORTING\n", "native-crash",
     ("ERROR: AddressSanitizer: use-after-free",)),
    # the shell's own words for a binary it cannot run
    ("sh: 1: ./worker: cannot execute binary file: Exec format error\n", "exec-error",
     ("Exec format error",)),
    ("bash: line 1: /srv/start.sh: cannot execute: required file not found\n", "exec-error",
     ("required file not found",)),
    # dash's `exec` builtin failing
    ("migrating\n/docker-entrypoint.sh: 7: exec: /srv/bin/queue: not found\n", "exec-error",
     ("exec: /srv/bin/queue: not found",)),
    # Error.cause printed by util.inspect: the deepest [cause] is quoted, not its properties
    ("Error: cache warm-up failed\n    at warm (/srv/cache.js:9:11) {\n  [cause]: Error: connect "
     "ECONNREFUSED 10.1.2.3:6379\n      at TCPConnectWrap.afterConnect (node:net:1:1) {\n"
     "    errno: -111,\n    code: 'ECONNREFUSED'\n  }\n}\n", "dependency-unavailable",
     ("Error: cache warm-up failed", "[cause]: Error: connect ECONNREFUSED")),
    # an Erlang boot function that crashed on a badmatch of an inet error
    ('{"init terminating in do_boot",{{badmatch,{error,eaddrinuse}},[{srv,start,0,[]}]}}\n'
     "init terminating in do_boot ({{badmatch,{error,eaddrinuse}},[{srv,start,0,[]}]})\n",
     "port-in-use", ("{badmatch,{error,eaddrinuse}}",)),
    ('{"init terminating in do_boot",{{badmatch,{error,nxdomain}},[{srv,start,0,[]}]}}\n',
     "dependency-unavailable", ("{error,nxdomain}",)),
    # a database server's FATAL line that is the consequence of the error logged above it
    ('2026-01-02 03:04:05 UTC [7] LOG:  could not bind IPv6 address "::1": Address already in '
     'use\n2026-01-02 03:04:05 UTC [7] HINT:  Is another postmaster running on port 5432?\n'
     "2026-01-02 03:04:05 UTC [7] FATAL:  could not create any TCP/IP sockets\n",
     "port-in-use", ("could not bind IPv6 address", "FATAL:  could not create any TCP/IP")),
])
def test_second_round_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted)


def test_an_errno_line_is_quoted_with_the_statement_above_on_the_same_address() -> None:
    log = ("[12:00:01] [41] [ERROR] Listener busy: ('0.0.0.0', 9000)\n"
           "[12:00:01] [41] [ERROR] bind ('0.0.0.0', 9000) failed: [Errno 98] Address already "
           "in use\n[12:00:02] [41] [ERROR] Giving up on ('0.0.0.0', 9000)\n")
    check(log, "port-in-use", "Listener busy: ('0.0.0.0', 9000)", "[Errno 98] Address already")
    # a line above about another address is not the same failure
    other = ("[12:00:01] [41] [ERROR] metrics on ('0.0.0.0', 9100) slow\n"
             "[12:00:01] [41] [ERROR] bind ('0.0.0.0', 9000) failed: [Errno 98] Address already "
             "in use\n")
    d = diagnose(Evidence(log=other))
    assert not any("metrics" in line for line in d.signature), d.signature


def test_a_failed_cd_in_an_entrypoint_is_quoted_with_the_exec_error_it_leads_to() -> None:
    log = ("/entrypoint.sh: 3: cd: can't cd to /srv/app\nstarting\n"
           "python3: can't open file '/srv/main.py': [Errno 2] No such file or directory\n")
    d = diagnose(Evidence(exit_code=2, log=log))
    assert d.category == "exec-error"
    assert "can't open file" in d.signature[0], d.signature
    assert d.signature[1].endswith("cd: can't cd to /srv/app"), d.signature


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # Perl: the die's own line, not the compile follow-on under it
    ("Can't locate Net/Stomp.pm in @INC (you may need to install the Net::Stomp module) "
     "(@INC contains: /usr/lib/perl5) at bin/relay line 9.\n"
     "BEGIN failed--compilation aborted at bin/relay line 9.\n", "app-fatal",
     ("Can't locate Net/Stomp.pm in @INC",)),
    ("queue: 3 jobs\nNo handler for job type 'resize' at lib/Jobs.pm line 41, <STDIN> line 2.\n",
     "app-fatal", ("No handler for job type 'resize'",)),
    # gunicorn with no traceback: the worker's own words above the master's reason
    ("[2026-01-02 03:04:05 +0000] [8] [INFO] Booting worker with pid: 8\n"
     "Failed to find application object 'wsgi' in 'site.main'\n"
     "[2026-01-02 03:04:05 +0000] [8] [INFO] Worker exiting (pid: 8)\n"
     "[2026-01-02 03:04:05 +0000] [1] [ERROR] Reason: App failed to load.\n", "config-error",
     ("Failed to find application object 'wsgi'",)),
    # a timed-out read or handshake is an unavailable dependency
    ("Traceback (most recent call last):\n  File \"/srv/sync.py\", line 3, in <module>\n"
     "    pull()\nhttpx.ReadTimeout: timed out\n", "dependency-unavailable",
     ("httpx.ReadTimeout",)),
    ("Traceback (most recent call last):\n  File \"/srv/tls.py\", line 3, in <module>\n"
     "    wrap()\nTimeoutError: _ssl.c:1000: The handshake operation timed out\n",
     "dependency-unavailable", ("The handshake operation timed out",)),
    # glibc's tcache double-free report
    ("decoding\nfree(): double free detected in tcache 2\n", "native-crash",
     ("double free detected in tcache 2",)),
    # a jar without Main-Class is the launcher refusing to start
    ("no main manifest attribute, in /srv/service.jar\n", "exec-error",
     ("no main manifest attribute",)),
    # servers refusing to run as root, and a config file a server rejects
    ('"root" execution of the Keystore server is not permitted.\nThe server must be started '
     "under an unprivileged user ID.\n", "config-error", ('"root" execution of',)),
    ("\n*** FATAL CONFIG FILE ERROR (Keystore 2.1) ***\nReading the configuration file, at line "
     "4\n>>> 'maxclients many'\nargument must be a number\n", "config-error",
     ("FATAL CONFIG FILE ERROR",)),
])
def test_second_round_held_out_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted)


@pytest.mark.parametrize(("log", "category", "quoted", "exit_code"), [
    # a Python 3.11 exception group: the group and its first sub-exception
    ("  + Exception Group Traceback (most recent call last):\n  |   File \"/srv/a.py\", line 9, "
     "in <module>\n  | ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)\n"
     "  +-+---------------- 1 ----------------\n    | Traceback (most recent call last):\n"
     "    |   File \"/srv/a.py\", line 4, in pull\n    | socket.gaierror: [Errno -2] Name or "
     "service not known\n    +---------------- 2 ----------------\n    | ValueError: x\n"
     "    +------------------------------------\n", "dependency-unavailable",
     ("ExceptionGroup: unhandled errors in a TaskGroup", "socket.gaierror"), 1),
    # a downloader's final line over its "Resolving … failed" progress line
    ("--2026-01-02 03:04:05--  http://assets.svc.invalid/a.tgz\nResolving assets.svc.invalid "
     "(assets.svc.invalid)... failed: Name or service not known.\n"
     "wget: unable to resolve host address 'assets.svc.invalid'\n", "dependency-unavailable",
     ("unable to resolve host address",), 4),
    # an entrypoint's own check of its config file
    ("checking\nsettings /srv/app.toml not found\n", "config-error",
     ("settings /srv/app.toml not found",), 1),
    # a server's burst: the rejected setting, not the unrelated error before it
    ("2026-01-02 03:04:05 0 [ERROR] Could not open the plugin table. Some plugins may be not "
     "loaded\n2026-01-02 03:04:05 0 [ERROR] mysqld: unknown option '--turbo'\n"
     "2026-01-02 03:04:05 0 [ERROR] Aborting\n", "config-error", ("unknown option '--turbo'",),
     7),
    # a fetch that timed out
    ("DOMException [TimeoutError]: The operation was aborted due to timeout\n    at f (/srv/a.mjs:"
     "1:1)\n", "dependency-unavailable", ("aborted due to timeout",), 1),
    # a clap-style rejected flag value
    ("error: invalid value 'many' for '--workers <N>': invalid digit found in string\n\n"
     "For more information, try '--help'.\n", "config-error", ("invalid value 'many'",), 2),
    # the app's fatal line, then abort(): a native crash quoting that line
    ("codec: frame 12\nfatal: bitstream desynchronised at frame 12\n", "native-crash",
     ("fatal: bitstream desynchronised",), 134),
])
def test_second_blind_set_shapes(log: str, category: str, quoted: tuple[str, ...],
                                 exit_code: int) -> None:
    check(log, category, *quoted, exit_code=exit_code)


def test_an_app_fatal_line_without_a_fault_exit_stays_app_fatal() -> None:
    check("codec: frame 12\nfatal: bitstream desynchronised at frame 12\n", "app-fatal",
          "fatal: bitstream desynchronised", exit_code=1)


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # Node's own "Uncaught" report, its frames printed without `at `
    ("booting\nUncaught TypeError: cfg.map is not a function\nFROM\nModule._compile (node:"
     "internal/modules/cjs/loader:1:1)\n", "node-exception", ("Uncaught TypeError",)),
    # a -javaagent the JVM cannot open: the launcher's line, not its follow-on
    ("Error opening zip file or JAR manifest missing : /srv/agent.jar\nError occurred during "
     "initialization of VM\nagent library failed to init: instrument\n", "exec-error",
     ("JAR manifest missing : /srv/agent.jar",)),
    # a banner and the block under it that names the rejected value
    ("\n*** FATAL CONFIG FILE ERROR (Keystore 2.1) ***\nReading the configuration file, at line "
     "3\n>>> 'evict sometimes'\nargument must be one of: lru, lfu\n", "config-error",
     ("FATAL CONFIG FILE ERROR", ">>> 'evict sometimes'", "argument must be one of")),
])
def test_third_blind_set_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


@pytest.mark.parametrize(("log", "quoted"), [
    # argparse's parser.error(): usage, then `prog: error: why`
    ("usage: sync [-h] [--batch N]\nsync: error: --batch must be at least 1\n",
     "sync: error: --batch must be at least 1"),
    # a program naming the flag it was not given
    ("exporter: missing --target <url>\n", "missing --target"),
    # the JVM refusing its thread stack size
    ("The Java thread stack size specified is too small. Specify at least 136k\nError: Could not "
     "create the Java Virtual Machine.\n", "thread stack size specified is too small"),
])
def test_fourth_blind_set_command_lines_are_config_errors(log: str, quoted: str) -> None:
    check(log, "config-error", quoted, exit_code=2)


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # an environment variable's name said missing, in any words around it
    ("starting exporter\nFATAL: S3_BUCKET is not set\n", "config-error", ("S3_BUCKET is not set",)),
    ("error: KAFKA_BROKERS required\n", "config-error", ("KAFKA_BROKERS required",)),
    # a dependency said unreachable, by a script or an app, as its last words
    ("waiting for cache (1/5)\nwaiting for cache (5/5)\ncache at redis:6379 not reachable, "
     "giving up\n", "dependency-unavailable", ("not reachable, giving up",)),
    ("sync: upstream unreachable after 30s\n", "dependency-unavailable", ("upstream unreachable",)),
])
def test_fifth_blind_set_fold_5a_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_rusts_unreachable_code_is_not_an_unreachable_dependency() -> None:
    check("\nthread 'main' panicked at src/state.rs:40:18:\ninternal error: entered unreachable "
          "code: state 7\nnote: run with `RUST_BACKTRACE=1` environment variable to display a "
          "backtrace\n", "rust-panic", "entered unreachable code", exit_code=101)


def test_a_lower_case_or_unprefixed_word_is_not_an_environment_variable() -> None:
    # "Retry is not set" names no variable: the line is an app's error, not a rejected setting
    d = diagnose(Evidence(exit_code=1, log="ERROR: Retry is not set for job 4\n"))
    assert d.category != "config-error"


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # a call that ran out of time, as the last words of a Go program's log.Fatal
    ("2026/01/02 03:04:05 upstream check: Get \"http://10.0.0.9/ready\": context deadline "
     "exceeded (Client.Timeout exceeded while awaiting headers)\n", "dependency-unavailable",
     ("Client.Timeout exceeded",)),
    ("rpc error: code = DeadlineExceeded desc = context deadline exceeded\n",
     "dependency-unavailable", ("DeadlineExceeded",)),
    # Ruby's ENV.fetch on a missing variable
    ("boot\nworker.rb:9:in `fetch': key not found: \"REDIS_URL\" (KeyError)\n\tfrom worker.rb:9:in"
     " `<main>'\n", "config-error", ('key not found: "REDIS_URL"',)),
    # an exception raised from Ruby's own code (`<internal:…>` paths)
    ("<internal:/usr/lib/ruby/3.3.0/rubygems/core_ext/kernel_require.rb>:136:in `require': "
     "cannot load such file -- nokogiri (LoadError)\n\tfrom app.rb:1:in `<main>'\n", "app-fatal",
     ("cannot load such file -- nokogiri (LoadError)",)),
])
def test_fifth_blind_set_fold_5b_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_a_ruby_key_error_on_a_data_key_is_not_a_missing_setting() -> None:
    d = diagnose(Evidence(exit_code=1, log="app.rb:4:in `fetch': key not found: :email "
                                           "(KeyError)\n\tfrom app.rb:4:in `<main>'\n"))
    assert d.category == "app-fatal"


# ---- an app's own `[ERROR]` lines are not a database server's ---------------------------------
@pytest.mark.parametrize(("log", "category", "quoted"), [
    ("2026-12-03 12:00:00 [INFO] starting\n2026-12-03 12:00:01 [ERROR] cache warmup skipped: key "
     "space empty\n2026-12-03 12:00:02 [INFO] loading config\nconfig file /etc/app/app.yaml not "
     "found\n", "config-error", ("config file /etc/app/app.yaml not found",)),
    ("2026/12/03 12:00:00 [INFO] worker 3 started\n2026/12/03 12:00:01 [ERROR] job 17 retry 1 "
     "failed: timeout\n2026/12/03 12:00:05 [INFO] job 17 done\n2026/12/03 12:00:09 [FATAL] lost "
     "leader lease, exiting\n", "app-fatal", ("[FATAL] lost leader lease",)),
    # MariaDB's own lines (a thread id between the time and the level) still are
    ("2026-12-03 17:52:47 0 [Note] Starting MariaDB\n2026-12-03 17:52:47 0 [ERROR] mysqld: unknown "
     "variable 'frobnicate=3'\n2026-12-03 17:52:47 0 [ERROR] Aborting\n", "config-error",
     ("unknown variable 'frobnicate=3'",)),
])
def test_bracketed_levels_and_database_servers(log: str, category: str,
                                               quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_a_bracketed_error_line_is_not_quoted_over_a_later_fatal_one() -> None:
    d = diagnose(Evidence(exit_code=1, log="12:00:00 [ERROR] job 4 failed\n12:00:01 [INFO] job 5 "
                                           "ok\nlevel=fatal msg=\"cannot open queue\"\n"))
    assert d.signature == ('level=fatal msg="cannot open queue"',)


def test_a_validation_error_quotes_the_first_field_and_its_reason() -> None:
    log = ("Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in <module>\n"
           "    cfg = Config()\npydantic_core._pydantic_core.ValidationError: 2 validation errors "
           "for Config\nbroker_url\n  Field required [type=missing, input_value={}, "
           "input_type=dict]\n    For further information visit https://errors.pydantic.dev/2/v/"
           "missing\nretries\n  Input should be a valid integer [type=int_parsing]\n")
    check(log, "config-error", "2 validation errors for Config", "broker_url", "Field required",
          exit_code=1)
    other = log.replace("broker_url", "queue_name")
    assert diagnose(Evidence(exit_code=1, log=other)).fingerprint != diagnose(
        Evidence(exit_code=1, log=log)).fingerprint


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # a usage text, then the error a CLI library printed under it (click, optparse)
    ("Usage: export [OPTIONS]\nTry 'export --help' for help.\n\nError: No such option '--tagret'."
     "\n", "config-error", ("No such option '--tagret'",)),
    ("Usage: export [OPTIONS]\nTry 'export --help' for help.\n\nError: Missing option '--bucket'."
     "\n", "config-error", ("Missing option '--bucket'",)),
    ("Usage: sync.py [options]\n\nsync.py: error: no such option: --dryrun\n", "config-error",
     ("no such option: --dryrun",)),
    # a listen address the host does not have, and the follow-on that ends the process
    ("server starting\nCould not listen on 198.51.100.4:8080: bind: Cannot assign requested "
     "address\nFailed to start listeners, aborting.\n", "config-error",
     ("Cannot assign requested address", "aborting")),
    ("2026/01/02 03:04:05 [emerg] 1#1: bind() to 198.51.100.4:80 failed (99: Cannot assign "
     "requested address)\n", "config-error", ("Cannot assign requested address",)),
])
def test_sixth_blind_set_fold_6a_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_a_client_out_of_ports_is_not_a_listen_address_error() -> None:
    d = diagnose(Evidence(exit_code=1, log="2026/01/02 03:04:05 post: dial tcp 10.0.0.7:443: "
                                           "connect: cannot assign requested address\n"))
    assert d.category != "config-error"


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # a last statement that announces the list of errors ending the log
    ("2026/01/02 03:04:05 starting\n2026/01/02 03:04:05 config invalid:\n  - listen: required\n"
     "  - workers: must be positive\n", "config-error", ("config invalid:", "- listen: required")),
    ("sync failed:\n  * bucket archive: access denied\n  * bucket media: access denied\n",
     "app-fatal", ("sync failed:", "bucket archive: access denied")),
])
def test_sixth_blind_set_fold_6b_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


@pytest.mark.parametrize("last", [
    'sync: Get "https://vault.internal/v1/kv": x509: certificate signed by unknown authority',
    "connect to broker: certificate verify failed: self-signed certificate in chain",
    "upstream: remote error: tls: handshake failure",
])
def test_seventh_blind_set_fold_7a_an_untrusted_tls_peer_is_quoted_as_last_words(
        last: str) -> None:
    check(f"starting\n2026/01/02 03:04:05 {last}\n", "app-fatal", last, exit_code=1)


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # any Ruby exception class in the uncaught-exception shape, Errno::E… included
    ("boot\nworker.rb:12:in `initialize': No such file or directory @ rb_sysopen - /srv/keys.pem "
     "(Errno::ENOENT)\n\tfrom worker.rb:12:in `open'\n", "app-fatal", ("(Errno::ENOENT)",)),
    # an environment variable named after the word that says it is missing
    ("bootstrapping\nMissing SMTP_HOST\n", "config-error", ("Missing SMTP_HOST",)),
    ("error: missing env var STRIPE_KEY\n", "config-error", ("STRIPE_KEY",)),
    # a database server complaining about a named parameter
    ("2026-01-02 03:04:05.678 UTC [7] FATAL:  70000 is outside the valid range for parameter "
     "\"port\" (1 .. 65535)\n", "config-error", ('for parameter "port"',)),
])
def test_seventh_blind_set_fold_7b_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_missing_followed_by_a_plain_word_is_not_a_missing_setting() -> None:
    d = diagnose(Evidence(exit_code=1, log="ERROR: job 7: missing Invoice row\n"))
    assert d.category != "config-error"


@pytest.mark.parametrize(("log", "category", "quoted"), [
    # Go's wrapping convention: "<verb> config: <cause>" is a config that could not be loaded
    ("2026/01/02 03:04:05 loading rules.yaml\n2026/01/02 03:04:05 load config: yaml: unmarshal "
     "errors:\n", "config-error", ("load config: yaml",)),
    ("2026/01/02 03:04:05 decode settings: json: cannot unmarshal number into Go struct field "
     "S.name of type string\n", "config-error", ("decode settings: json: cannot unmarshal",)),
    # an environment variable's name heading the error its value caused
    ("2026/01/02 03:04:05 CACHE_TTL: time: invalid duration \"ten\"\n", "config-error",
     ('CACHE_TTL: time: invalid duration "ten"',)),
    ("RETRY_LIMIT: strconv.Atoi: parsing \"many\": invalid syntax\n", "config-error",
     ("RETRY_LIMIT: strconv.Atoi",)),
    # a last line saying what was unknown or unsupported is a process's last words
    ("starting\nunsupported storage backend \"tape\"\n", "app-fatal",
     ('unsupported storage backend "tape"',)),
])
def test_eighth_blind_set_fold_8b_shapes(log: str, category: str, quoted: tuple[str, ...]) -> None:
    check(log, category, *quoted, exit_code=1)


def test_a_config_file_named_on_an_info_line_is_not_a_rejected_config() -> None:
    d = diagnose(Evidence(exit_code=1, log="2026/01/02 03:04:05 reading config: config.toml\n"
                                           "2026/01/02 03:04:05 serving\n"))
    assert d.category != "config-error"


def test_an_upper_case_name_heading_a_plain_statement_is_not_a_rejected_value() -> None:
    d = diagnose(Evidence(exit_code=1, log="LOG_LEVEL: debug\nworker stopped: queue drained\n"))
    assert d.category != "config-error"


@pytest.mark.parametrize(("log", "quoted"), [
    # an interpreter's error followed by its trace: an indented "while executing", the
    # quoted command that failed and its position
    ('reading settings\ncan\'t use empty string as operand of "+"\n    while executing\n'
     '"expr {$limit + 1}"\n    (procedure "setup" line 2)\n', 'can\'t use empty string'),
    ("opening spool\ncannot open spool directory /var/spool/out\n    at open_spool (spool:4)\n"
     "    at main (main:9)\n", "cannot open spool directory"),
])
def test_ninth_blind_set_fold_9a_the_statement_before_a_trailing_trace_is_last_words(
        log: str, quoted: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.signature and quoted in d.signature[0], d.signature
    assert d.category == "app-fatal"


def test_a_trailing_indented_block_under_a_progress_line_is_not_a_failure() -> None:
    d = diagnose(Evidence(exit_code=1, log="INFO loading plugins\n    auth\n    metrics\n"))
    assert d.signature == ()


@pytest.mark.parametrize(("log", "code", "category", "quoted"), [
    # a last statement saying, in its own words, that something is wrong
    ("replaying log\nsegment index mismatch at entry 81\n", 134, "native-crash",
     "segment index mismatch at entry 81"),
    ("booting\nlicence file expired, refusing to serve\n", 1, "app-fatal",
     "licence file expired"),
    ("syncing mirrors\nmirror list empty for region eu-2\n", 3, "app-fatal",
     "mirror list empty for region eu-2"),
    ("upstream not ready after 30s\n", 1, "app-fatal", "upstream not ready after 30s"),
])
def test_ninth_blind_set_fold_9b_a_stated_complaint_is_last_words(
        log: str, code: int, category: str, quoted: str) -> None:
    check(log, category, quoted, exit_code=code)


def test_a_last_statement_naming_no_failure_is_quoted_but_decides_nothing() -> None:
    d = diagnose(Evidence(exit_code=1, log="INFO boot\nAll 4 replicas report version 2.1\n"))
    assert d.signature == ("All 4 replicas report version 2.1",)
    assert d.category == "unknown"


@pytest.mark.parametrize("log", [
    "starting\nServer listening on :8080\n",
    "GET /health 200 3ms\nGET /health 200 2ms\nGET /ready 200 1ms\n",
    "processed batch 6\nprocessed batch 7\n",
    "loading settings\ncompacting segments...\n",
    "+ exec /app/server --port 80\n",
    "42\n",
])
def test_progress_chatter_and_data_are_not_last_words(log: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.signature == (), d.signature
    assert d.category == "unknown"


@pytest.mark.parametrize(("log", "cause", "follow_on"), [
    # a follow-on that only says the process gives up is quoted after the statement above it
    ("loading\nfoo.conf: unknown key 'x'\nFATAL: server failed to start\n",
     "foo.conf: unknown key 'x'", "FATAL: server failed to start"),
    ("opening db\nsegment 3 checksum mismatch\ninitialization failed, aborting\n",
     "segment 3 checksum mismatch", "initialization failed, aborting"),
    ("starting\nshared memory segment too small for 4 workers\n"
     "Could not create the server. Exiting.\n",
     "shared memory segment too small", "Could not create the server. Exiting."),
    ("boot\nplugin 'auth' requires api version 3\nERROR: startup failed\n",
     "plugin 'auth' requires api version 3", "ERROR: startup failed"),
    ("compiling rules\nrule 12: unbalanced parenthesis\nCompilation failed: 1 error(s)\n",
     "rule 12: unbalanced parenthesis", "Compilation failed: 1 error(s)"),
])
def test_a_generic_follow_on_is_quoted_after_its_cause(log: str, cause: str,
                                                       follow_on: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert len(d.signature) == 2 and cause in d.signature[0] and d.signature[1] == follow_on, \
        d.signature


@pytest.mark.parametrize("log", [
    # a specific last line needs no cause; a progress line above a follow-on is no cause
    "booting\nfailed to start listener: bind 0.0.0.0:80: permission denied\n",
    "loading plugins...\nFATAL: startup failed\n",
])
def test_a_specific_line_or_a_progress_line_is_not_taken_for_a_cause(log: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert len(d.signature) == 1, d.signature
