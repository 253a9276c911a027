"""Category precision: an application's own exception is not a configuration error; a
configuration error is what the process says it rejected at start-up; a taken port, an
unreachable dependency and an exec failure are recognised by their general shapes in every
runtime and in event text. Each case is written for this test."""

from __future__ import annotations

import pytest

from bot.diagnosis.engine import EventNote, Evidence, diagnose


def category_of(log: str, exit_code: int | None = 1) -> str:
    d = diagnose(Evidence(exit_code=exit_code, log=log))
    assert d.signature, "a category must come with the lines that prove it"
    return str(d.category)


# ---- application exceptions are not config errors --------------------------------------------
@pytest.mark.parametrize(("log", "category"), [
    ("TypeError: Cannot read properties of undefined (reading 'settings')\n"
     "    at getProfile (/srv/routes/profile.js:14:31)\n"
     "    at Layer.handle [as handle_request] "
     "(/srv/node_modules/express/lib/router/layer.js:95:5)\n",
     "node-exception"),
    ("Traceback (most recent call last):\n  File \"/srv/views.py\", line 30, in get\n"
     "    return self.options.config[key]\n"
     "AttributeError: 'NoneType' object has no attribute 'config'\n", "python-exception"),
    ("Exception in thread \"main\" java.lang.NullPointerException: Cannot invoke "
     "\"Settings.parse()\" because the return value of \"Options.config()\" is null\n"
     "\tat com.acme.App.main(App.java:12)\n", "jvm-exception"),
])
def test_a_programming_error_that_mentions_configuration_is_not_a_config_error(
        log: str, category: str) -> None:
    d = diagnose(Evidence(exit_code=1, log=log))
    assert d.category == category
    assert not any("ConfigMap" in hint for hint in d.hints)


@pytest.mark.parametrize("log", [
    "Error: Unable to parse config file /etc/acme/app.yaml: bad indentation at line 4\n"
    "    at load (/srv/config.js:9:11)\n",
    "Traceback (most recent call last):\n  File \"/srv/manage.py\", line 3, in <module>\n"
    "    setup()\ndjango.core.exceptions.ImproperlyConfigured: SECRET_KEY must not be empty\n",
    "Traceback (most recent call last):\n  File \"/srv/settings.py\", line 2, in <module>\n"
    "    DB = os.environ[\"ACME_DB_URL\"]\nKeyError: 'ACME_DB_URL'\n",
    "usage: acme [-h] --store STORE\nacme: error: the following arguments are required: --store\n",
])
def test_a_configuration_the_process_rejects_at_start_up_is_a_config_error(log: str) -> None:
    assert category_of(log) == "config-error"


# ---- a taken port in every runtime --------------------------------------------------------------
@pytest.mark.parametrize("log", [
    "2026/11/27 09:00:00 listen tcp :9090: bind: address already in use\n",
    "Traceback (most recent call last):\n  File \"/srv/serve.py\", line 4, in <module>\n"
    "    sock.bind((\"\", 9090))\nOSError: [Errno 98] Address already in use\n",
    "Error: Os { code: 98, kind: AddrInUse, message: \"Address already in use\" }\n",
    "Unhandled exception. System.IO.IOException: Failed to bind to address http://[::]:9090: "
    "address already in use.\n",
    "/srv/vendor/bundle/puma/binder.rb:334:in `initialize': Address already in use - bind(2) "
    "for \"0.0.0.0\" port 9090 (Errno::EADDRINUSE)\n",
    "** (Mix) Could not start application acme: exited in: Acme.Application.start(:normal, [])\n"
    "    ** (EXIT) an exception was raised:\n"
    "        ** (RuntimeError) failed to start listener: {:shutdown, :eaddrinuse}\n",
    "Exception in thread \"main\" java.net.BindException: Address already in use\n"
    "\tat java.base/sun.nio.ch.Net.bind0(Native Method)\n",
    "2026/11/27 09:00:00 [emerg] 1#1: bind() to 0.0.0.0:9090 failed (98: Address already in "
    "use)\n",
])
def test_a_taken_port_in_every_runtime(log: str) -> None:
    assert category_of(log) == "port-in-use"


# ---- an unreachable dependency in every runtime -------------------------------------------------
@pytest.mark.parametrize("log", [
    "2026/11/27 09:00:00 dial tcp 10.0.4.2:5432: connect: connection refused\n",
    "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in "
    "/srv/db.php:4\n",
    "** (DBConnection.ConnectionError) tcp connect (db:5432): connection refused - "
    ":econnrefused\n",
    "** (Mix) Could not start application acme: exited in: Acme.Application.start(:normal, [])\n"
    "    ** (EXIT) an exception was raised:\n"
    "        ** (RuntimeError) cache unreachable: {:error, :nxdomain}\n",
    "Error: connect ECONNREFUSED 10.0.4.3:6379\n    at TCPConnectWrap.afterConnect [as "
    "oncomplete] (node:net:1595:16)\n",
])
def test_an_unreachable_dependency_in_every_runtime(log: str) -> None:
    assert category_of(log) == "dependency-unavailable"


# ---- event text states what the log cannot -----------------------------------------------------
def test_an_exec_failure_in_a_failed_event_is_quoted_when_there_is_no_log() -> None:
    event = EventNote("Warning", "Failed", "Error: failed to create containerd task: failed to "
                      "create shim task: OCI runtime create failed: runc create failed: unable "
                      "to start container process: exec: \"/srv/run\": permission denied: "
                      "unknown", 4)
    d = diagnose(Evidence(exit_code=128, reason="StartError", events=(event,)))
    assert d.category == "exec-error"
    assert d.signature == (event.message,)
    assert d.summary == ("The container's command could not run: exec: \"/srv/run\": "
                         "permission denied")


def test_an_event_does_not_override_what_the_log_says() -> None:
    event = EventNote("Warning", "Failed", "Error: configmap \"acme-env\" not found")
    log = "2026/11/27 09:00:00 listen tcp :9090: bind: address already in use\n"
    d = diagnose(Evidence(exit_code=1, log=log, events=(event,)))
    assert d.category == "port-in-use"


def test_a_termination_message_in_describe_text_names_a_taken_port() -> None:
    text = ("Name:         acme-6c8d7f9b5-x2x9q\nNamespace:    prod\nContainers:\n  acme:\n"
            "    Last State:     Terminated\n      Reason:       Error\n"
            "      Message:      listen tcp :9090: bind: address already in use\n"
            "      Exit Code:    1\n")
    d = diagnose(Evidence(log=text))
    assert d.category == "port-in-use" and d.exit_code == 1
